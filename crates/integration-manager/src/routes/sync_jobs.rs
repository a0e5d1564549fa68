//! Sync jobs (issue 29): create one (integration-sync runs it), list,
//! read, cancel, follow its progress, its item errors and conflicts. Also
//! served under `/api/v1/sync-tasks`.

use super::list::{ListParams, ListQuery, Listed, status_filter};
use super::patch::FieldErrors;
use super::{Call, begin, commit, emit};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use hub_domain::status::{SyncDirection, SyncJobType};
use hub_platform::error::{ApiError, ErrorCode, Problem};
use hub_storage::StorageError;
use hub_storage::sync::{self as store, ConflictRow, ItemError, Job, NewJob};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

const WHAT: &str = "sync job";

impl Listed for Job {
    fn id(&self) -> Uuid {
        self.id
    }
}

impl Listed for ConflictRow {
    fn id(&self) -> Uuid {
        self.id
    }
}

/// A job to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobInput {
    /// The integration to sync.
    pub integration_id: Uuid,
    /// FULL_SYNC, INCREMENTAL (from the provider), EXPORT (the pending
    /// local changes to the provider) or IMPORT (with `file`).
    pub job_type: String,
    /// The provider's entity, as its manifest's `sync.entities` names it
    /// (`contacts`, `Opportunity`, `Invoice`).
    pub entity_type: String,
    /// INBOUND (FULL_SYNC, INCREMENTAL) or OUTBOUND (EXPORT); by default
    /// the job type's.
    pub direction: Option<String>,
    /// `since` (an RFC 3339 time: INCREMENTAL from there instead of the
    /// last watermark).
    #[schema(value_type = Object)]
    pub filters: Option<Value>,
    /// FULL_SYNC: delete more than `max_delete_share` of the held records.
    #[serde(default)]
    pub confirm_deletions: bool,
    /// FULL_SYNC: the largest share of held records it may delete
    /// unconfirmed (default 0.2).
    pub max_delete_share: Option<f64>,
    /// When it may start (default now).
    pub scheduled_at: Option<DateTime<Utc>>,
    /// IMPORT: the file, stored with the job before the answer.
    pub file: Option<FileInput>,
    /// IMPORT: a reference to a transformation template turning the file
    /// into the provider's records (`{"template_id": "…", "version": 2}`);
    /// required for X12.
    #[schema(value_type = Object)]
    pub transform_template: Option<Value>,
    /// IMPORT: over this share of invalid records (0–1, default 0.5) the
    /// import is rolled back and fails.
    pub max_error_share: Option<f64>,
}

/// An IMPORT job's file: JSON (an array of records or an object with a
/// `records` array), CSV (a header row; `properties.email` makes a nested
/// field) or X12 (with a `transform_template`), as text in `content` or
/// base64 in `content_base64`; at most [`MAX_FILE`] bytes (413 beyond).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileInput {
    /// `JSON`, `CSV` or `X12`.
    pub format: String,
    /// The file's text.
    pub content: Option<String>,
    /// The file, base64 (UTF-8 text once decoded).
    pub content_base64: Option<String>,
}

/// Largest IMPORT file (decoded): 8 MiB.
pub const MAX_FILE: usize = 8 * 1024 * 1024;
/// Largest body of `POST /api/v1/sync-jobs` (a file in base64 with the job).
pub const MAX_BODY: usize = 12 * 1024 * 1024;

/// A checked IMPORT file, with what reading it found.
struct CheckedFile {
    format: hub_transform::codec::Format,
    content: String,
}

/// Checks an IMPORT job's file: its size (413), format and encoding, its
/// template reference, and that it reads into at least one record; what is
/// wrong goes into `errs` at its field.
async fn check_file(
    ctx: &hub_platform::server::Context,
    tenant: hub_domain::TenantId,
    input: &JobInput,
    errs: &mut FieldErrors,
) -> Result<Option<CheckedFile>, ApiError> {
    use base64::Engine as _;
    let Some(file) = &input.file else {
        errs.push(
            "file",
            "an IMPORT job needs a file: {\"format\": \"JSON\"|\"CSV\"|\"X12\", \"content\": \"…\"}",
        );
        return Ok(None);
    };
    let content = match (&file.content, &file.content_base64) {
        (Some(c), None) => c.clone(),
        (None, Some(b)) => match base64::engine::general_purpose::STANDARD.decode(b.trim()) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    errs.push("file.content_base64", "the decoded file is not UTF-8 text");
                    return Ok(None);
                }
            },
            Err(e) => {
                errs.push("file.content_base64", format!("not base64: {e}"));
                return Ok(None);
            }
        },
        _ => {
            errs.push(
                "file",
                "give the file in exactly one of content or content_base64",
            );
            return Ok(None);
        }
    };
    if content.len() > MAX_FILE {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the file is {} bytes, over the {MAX_FILE} bytes an import takes; split it into several imports",
                content.len()
            ),
        ));
    }
    let format = match file.format.parse::<hub_transform::codec::Format>() {
        Ok(
            f @ (hub_transform::codec::Format::Json
            | hub_transform::codec::Format::Csv
            | hub_transform::codec::Format::X12),
        ) => f,
        _ => {
            errs.push("file.format", "one of JSON, CSV, X12");
            return Ok(None);
        }
    };
    let template = match input.transform_template.as_ref().filter(|t| !t.is_null()) {
        None => None,
        Some(t) => match hub_platform::transforms::Reference::of(t) {
            None => {
                errs.push(
                    "transform_template",
                    "a reference to a transformation template: {\"template_id\": \"…\", \"version\": n}",
                );
                return Ok(None);
            }
            Some(Err(e)) => {
                errs.push("transform_template", e);
                return Ok(None);
            }
            Some(Ok(r)) => {
                match hub_storage::transformations::resolve(
                    &ctx.pool,
                    tenant,
                    r.template_id,
                    r.version,
                )
                .await?
                {
                    None => {
                        errs.push(
                            "transform_template",
                            "no such transformation template (or version)",
                        );
                        return Ok(None);
                    }
                    Some(t) => match hub_platform::transforms::compile(&t) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            errs.push("transform_template", e);
                            return Ok(None);
                        }
                    },
                }
            }
        },
    };
    match hub_transform::records::read(
        format,
        &content,
        template.as_ref(),
        hub_transform::error::Limits::default(),
    ) {
        Ok(records) if records.is_empty() => errs.push("file", "the file holds no records"),
        Ok(_) => {}
        Err(e) => {
            let at = match (e.location.line, e.location.column) {
                (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
                (Some(l), None) => format!(" (line {l})"),
                _ => String::new(),
            };
            errs.push("file.content", format!("{}{at}", e.message));
        }
    }
    Ok(Some(CheckedFile { format, content }))
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    /// One integration's jobs.
    pub integration_id: Option<Uuid>,
    /// PENDING, RUNNING, COMPLETED, FAILED, CANCELLED.
    pub status: Option<String>,
    /// One entity.
    pub entity_type: Option<String>,
}

/// A job's progress.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct JobProgress {
    /// The job's status.
    pub status: String,
    /// Records the provider says there are (0: it did not say).
    pub total: i32,
    /// Records read.
    pub processed: i32,
    /// Records taken.
    pub success: i32,
    /// Records refused.
    pub errors: i32,
    /// Created.
    pub created: i32,
    /// Updated.
    pub updated: i32,
    /// Unchanged.
    pub unchanged: i32,
    /// Conflicts.
    pub conflicts: i32,
    /// Deleted.
    pub deleted: i32,
    /// Pages committed.
    pub current_page: i32,
    /// Records per second since it started.
    pub rate: f64,
    /// Seconds left at that rate (when the total is known).
    pub eta_seconds: Option<f64>,
    /// Started.
    pub started_at: Option<DateTime<Utc>>,
    /// Last progress.
    pub updated_at: DateTime<Utc>,
}

/// Creates a job; integration-sync claims it at `scheduled_at`. One job at a
/// time per integration and entity: another while one is pending or
/// running is a 409 naming it (`active_job_id`).
#[utoipa::path(post, path = "/api/v1/sync-jobs", tag = "sync", security(("api_key" = [], "tenant" = [])),
    request_body = JobInput,
    responses((status = 201, body = Job), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    Call { t, ctx }: Call,
    input: web::Json<JobInput>,
) -> Result<HttpResponse, ApiError> {
    let input = input.into_inner();
    let it = hub_storage::integrations::get(&ctx.pool, t.id, input.integration_id)
        .await?
        .ok_or_else(|| ApiError::not_found("integration"))?;
    let mut errs = FieldErrors::default();
    let job_type = match input.job_type.parse::<SyncJobType>() {
        Ok(j) => Some(j),
        Err(_) => {
            errs.push("job_type", "one of FULL_SYNC, INCREMENTAL, EXPORT, IMPORT");
            None
        }
    };
    let wanted = if job_type == Some(SyncJobType::Export) {
        SyncDirection::Outbound
    } else {
        SyncDirection::Inbound
    };
    let direction = match input.direction.as_deref().map(str::parse::<SyncDirection>) {
        None => Some(wanted),
        Some(Ok(d)) if d == wanted => Some(d),
        Some(Ok(d)) => {
            errs.push(
                "direction",
                format!(
                    "{d} does not fit {}: it is {wanted}",
                    job_type.map_or("the job type", |j| j.as_str())
                ),
            );
            None
        }
        Some(Err(_)) => {
            errs.push("direction", "INBOUND or OUTBOUND");
            None
        }
    };
    let catalog = hub_gateway::assemble::catalog().map_err(ApiError::internal)?;
    let synced = catalog.get(&it.provider_code).and_then(|m| m.sync.as_ref());
    let entities: Vec<String> = synced
        .map(|s| {
            s.entities
                .iter()
                .filter(|(_, e)| job_type != Some(SyncJobType::Export) || e.export.is_some())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    if !entities.contains(&input.entity_type) {
        let known = if entities.is_empty() {
            "nothing yet".to_owned()
        } else {
            entities.join(", ")
        };
        let verb = if job_type == Some(SyncJobType::Export) {
            "exports"
        } else {
            "syncs"
        };
        errs.push(
            "entity_type",
            format!("{} {verb} {known}", it.provider_code),
        );
    }
    let share = input.max_delete_share.unwrap_or(0.2);
    if !(0.0..=1.0).contains(&share) {
        errs.push("max_delete_share", "a share from 0 to 1");
    }
    let since = match input.filters.as_ref().and_then(|f| f.get("since")) {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_str().map(DateTime::parse_from_rfc3339) {
            Some(Ok(t)) => Some(t.with_timezone(&Utc)),
            _ => {
                errs.push("filters.since", "an RFC 3339 time");
                None
            }
        },
    };
    if input.filters.as_ref().is_some_and(|f| !f.is_object()) {
        errs.push("filters", "an object");
    }
    let error_share = input.max_error_share.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&error_share) {
        errs.push("max_error_share", "a share from 0 to 1");
    }
    let file = if job_type == Some(SyncJobType::Import) {
        check_file(&ctx, t.id, &input, &mut errs).await?
    } else {
        for (set, field) in [
            (input.file.is_some(), "file"),
            (input.transform_template.is_some(), "transform_template"),
            (input.max_error_share.is_some(), "max_error_share"),
        ] {
            if set {
                errs.push(field, "only IMPORT jobs take it");
            }
        }
        None
    };
    errs.or_invalid(())?;
    let (Some(job_type), Some(direction)) = (job_type, direction) else {
        return Err(ApiError::internal("checked fields missing"));
    };
    let input_template = input.transform_template.clone().filter(|t| !t.is_null());
    let job = NewJob {
        id: Uuid::now_v7(),
        tenant_id: t.id,
        integration_id: it.id,
        job_type,
        entity_type: input.entity_type,
        direction,
        filters: input.filters,
        scheduled_by: "MANUAL",
        scheduled_at: input.scheduled_at.unwrap_or_else(Utc::now),
        watermark: since,
        confirm_deletions: input.confirm_deletions,
        max_delete_share: share,
        created_by_key: Some(t.api_key_id.0),
    };
    let mut tx = begin(&ctx).await?;
    match store::insert(&mut tx, &job).await {
        Ok(()) => {}
        Err(StorageError::Conflict { .. }) => {
            drop(tx);
            let active =
                store::active(&ctx.pool, t.id, job.integration_id, &job.entity_type).await?;
            let mut e = ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "a {} job of this integration's {} is already pending or running; cancel it or wait for it",
                    active.as_ref().map_or("sync", |a| a.job_type.as_str()),
                    job.entity_type
                ),
            );
            if let Some(a) = active {
                e = e.with_extension("active_job_id", json!(a.id));
            }
            return Err(e);
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(f) = &file {
        use sha2::Digest as _;
        hub_storage::sync_import::insert_upload(
            &mut tx,
            &hub_storage::sync_import::NewUpload {
                job_id: job.id,
                tenant_id: t.id,
                format: f.format.as_str(),
                content: &f.content,
                sha256: sha2::Sha256::digest(f.content.as_bytes()).to_vec(),
                transform_template: input_template.as_ref(),
                max_error_share: error_share,
            },
        )
        .await?;
    }
    let data = json!({"job_id": job.id, "integration_id": job.integration_id, "entity_type": job.entity_type,
                      "job_type": job.job_type.as_str(), "scheduled_at": job.scheduled_at, "actor_api_key_id": t.api_key_id});
    emit(&mut tx, "integration.sync.scheduled", t.id, data).await?;
    commit(tx).await?;
    let stored = store::get(&ctx.pool, t.id, job.id)
        .await?
        .ok_or_else(|| ApiError::not_found(WHAT))?;
    Ok(HttpResponse::Created().json(stored))
}

/// The tenant's jobs, newest first.
#[utoipa::path(get, path = "/api/v1/sync-jobs", tag = "sync", security(("api_key" = [], "tenant" = [])),
    params(JobFilter, ListParams), responses((status = 200, description = "`{data: [Job], next_cursor}`")))]
pub async fn list(
    Call { t, ctx }: Call,
    ListQuery { filter: q, paging }: ListQuery<JobFilter>,
) -> Result<HttpResponse, ApiError> {
    let filter = store::Filter {
        integration_id: q.integration_id,
        status: status_filter("status", &q.status)?,
        entity_type: q.entity_type,
        before: paging.cursor,
    };
    let rows = store::list(&ctx.pool, t.id, &filter, paging.limit).await?;
    Ok(HttpResponse::Ok().json(paging.page_of(rows)))
}

async fn job(
    ctx: &hub_platform::server::Context,
    t: &hub_platform::auth::Tenant,
    id: Uuid,
) -> Result<Job, ApiError> {
    store::get(&ctx.pool, t.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(WHAT))
}

/// One job.
#[utoipa::path(get, path = "/api/v1/sync-jobs/{id}", tag = "sync", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Job), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(Call { t, ctx }: Call, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(job(&ctx, &t, *id).await?))
}

/// Cancels a job: a pending one at once, a running one after its current
/// page. A finished job is left as it is (200 with it).
#[utoipa::path(post, path = "/api/v1/sync-jobs/{id}/cancel", tag = "sync", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Job), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn cancel(Call { t, ctx }: Call, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let mut tx = begin(&ctx).await?;
    let j = store::cancel(&mut tx, t.id, *id)
        .await?
        .ok_or_else(|| ApiError::not_found(WHAT))?;
    if j.cancel_requested_at.is_some() && j.completed_at.is_none_or(|c| c >= j.updated_at) {
        emit(
            &mut tx,
            "sync.cancel_requested",
            t.id,
            json!({"job_id": j.id, "actor_api_key_id": t.api_key_id}),
        )
        .await?;
    }
    commit(tx).await?;
    Ok(HttpResponse::Ok().json(j))
}

/// A job's progress: counts, rate and ETA.
#[utoipa::path(get, path = "/api/v1/sync-jobs/{id}/progress", tag = "sync", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = JobProgress), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn progress(
    Call { t, ctx }: Call,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let j = job(&ctx, &t, *id).await?;
    let end = j.completed_at.unwrap_or_else(Utc::now);
    let seconds = j
        .started_at
        .map_or(0.0, |s| (end - s).num_milliseconds().max(1) as f64 / 1000.0);
    let rate = if seconds > 0.0 {
        f64::from(j.processed_records) / seconds
    } else {
        0.0
    };
    let left = f64::from((j.total_records - j.processed_records).max(0));
    let eta_seconds =
        (j.total_records > 0 && rate > 0.0 && j.completed_at.is_none()).then(|| left / rate);
    Ok(HttpResponse::Ok().json(JobProgress {
        status: j.status.as_str().to_owned(),
        total: j.total_records,
        processed: j.processed_records,
        success: j.success_count,
        errors: j.error_count,
        created: j.created_count,
        updated: j.updated_count,
        unchanged: j.unchanged_count,
        conflicts: j.conflict_count,
        deleted: j.deleted_count,
        current_page: j.current_page,
        rate,
        eta_seconds,
        started_at: j.started_at,
        updated_at: j.updated_at,
    }))
}

/// Paging of a job's item errors (by the record's provider id).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ErrorsQuery {
    /// Errors of records after this provider id.
    pub after: Option<String>,
    /// At most this many (1–200, default 50).
    pub limit: Option<u32>,
}

/// A job's item errors: records it refused (invalid, unmappable), with
/// what was wrong.
#[utoipa::path(get, path = "/api/v1/sync-jobs/{id}/errors", tag = "sync", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), ErrorsQuery), responses((status = 200, description = "`{data: [ItemError], next_after}`"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn errors(
    Call { t, ctx }: Call,
    id: web::Path<Uuid>,
    q: web::Query<ErrorsQuery>,
) -> Result<HttpResponse, ApiError> {
    let j = job(&ctx, &t, *id).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let mut rows: Vec<ItemError> =
        store::item_errors(&ctx.pool, j.id, q.after.as_deref(), limit).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = more
        .then(|| rows.last().map(|r| r.external_id.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({"data": rows, "next_after": next})))
}

/// A job's conflicts, newest first.
#[utoipa::path(get, path = "/api/v1/sync-jobs/{id}/conflicts", tag = "sync", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), ListParams), responses((status = 200, description = "`{data: [ConflictRow], next_cursor}`"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn job_conflicts(
    Call { t, ctx }: Call,
    id: web::Path<Uuid>,
    ListQuery { paging, .. }: ListQuery<super::list::NoFilter>,
) -> Result<HttpResponse, ApiError> {
    let j = job(&ctx, &t, *id).await?;
    let rows = store::conflicts(&ctx.pool, t.id, Some(j.id), paging.cursor, paging.limit).await?;
    Ok(HttpResponse::Ok().json(paging.page_of(rows)))
}

/// The tenant's conflicts, newest first.
#[utoipa::path(get, path = "/api/v1/sync/conflicts", tag = "sync", security(("api_key" = [], "tenant" = [])),
    params(ListParams), responses((status = 200, description = "`{data: [ConflictRow], next_cursor}`")))]
pub async fn conflicts(
    Call { t, ctx }: Call,
    ListQuery { paging, .. }: ListQuery<super::list::NoFilter>,
) -> Result<HttpResponse, ApiError> {
    let rows = store::conflicts(&ctx.pool, t.id, None, paging.cursor, paging.limit).await?;
    Ok(HttpResponse::Ok().json(paging.page_of(rows)))
}

/// The hub entity (`c_contact`) and the short name of its events
/// (`contact`) of an integration's synced entity, from its manifest.
async fn entity_of(
    ctx: &hub_platform::server::Context,
    tenant: hub_domain::TenantId,
    integration: Uuid,
    entity_type: &str,
) -> Result<(String, String), ApiError> {
    let provider = hub_storage::integrations::get(&ctx.pool, tenant, integration)
        .await?
        .map(|i| i.provider_code);
    let entity = provider
        .and_then(|p| {
            hub_gateway::assemble::catalog()
                .ok()?
                .get(&p)?
                .sync
                .as_ref()?
                .entities
                .get(entity_type)
                .map(|e| e.entity.clone())
        })
        .unwrap_or_else(|| entity_type.to_owned());
    let short = entity.strip_prefix("c_").unwrap_or(&entity).to_owned();
    Ok((entity, short))
}

/// Options of a rollback.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RollbackQuery {
    /// Restore the rest when some records were changed since by another
    /// job, a webhook or an operator (they are left as they are); without
    /// it such a rollback is refused (409 listing them).
    #[serde(default)]
    pub skip_changed: bool,
}

/// Rolls back an ended IMPORT job: every record it wrote gets its
/// before-image back, records it created are removed; an
/// `integration.<entity>.updated` event for each record restored
/// (`.deleted` for each removed) and `sync.rolled_back`. A job not ended,
/// not an IMPORT, or rolled back already is a 409; records changed since by
/// another writer are a 409 naming them (`changed_records`) unless
/// `skip_changed`.
#[utoipa::path(post, path = "/api/v1/sync-jobs/{id}/rollback", tag = "sync", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), RollbackQuery), responses((status = 200, description = "`{job, restored, removed}`"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn rollback(
    Call { t, ctx }: Call,
    id: web::Path<Uuid>,
    q: web::Query<RollbackQuery>,
) -> Result<HttpResponse, ApiError> {
    use hub_domain::status::SyncJobStatus;
    use hub_storage::sync_import::{self as imports, NotRolledBack};
    let j = job(&ctx, &t, *id).await?;
    if j.job_type != SyncJobType::Import {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "only IMPORT jobs are rolled back on demand; this is a {} job",
                j.job_type.as_str()
            ),
        ));
    }
    if matches!(j.status, SyncJobStatus::Pending | SyncJobStatus::Running) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "the import is {}; cancel it or wait for it to end, then roll it back",
                j.status.as_str()
            ),
        ));
    }
    let (entity, short) = entity_of(&ctx, t.id, j.integration_id, &j.entity_type).await?;
    let mut tx = begin(&ctx).await?;
    let restored = match imports::rollback(&mut tx, &j, q.skip_changed).await? {
        Ok(r) => r,
        Err(NotRolledBack::Already(at)) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("the import was rolled back already, at {}", at.to_rfc3339()),
            )
            .with_extension("rolled_back_at", json!(at)));
        }
        Err(NotRolledBack::ChangedSince(ids)) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "{} record(s) the import wrote were changed since by another job, a webhook or an operator; nothing was rolled back (roll back with ?skip_changed=true to leave them as they are)",
                    ids.len()
                ),
            )
            .with_extension("changed_records", json!(ids)));
        }
    };
    let mut removed = 0;
    for r in &restored {
        let (kind, change) = match (&r.data, r.deleted) {
            (Some(_), false) => ("updated", "restored"),
            _ => ("deleted", "removed"),
        };
        if r.data.is_none() {
            removed += 1;
        }
        emit(
            &mut tx,
            &format!("integration.{short}.{kind}"),
            t.id,
            json!({"record_id": r.id, "external_id": r.external_id, "entity": entity, "change": change,
                   "record": r.data, "job_id": j.id, "integration_id": j.integration_id,
                   "entity_type": j.entity_type, "actor_api_key_id": t.api_key_id}),
        )
        .await?;
    }
    emit(
        &mut tx,
        "sync.rolled_back",
        t.id,
        json!({"job_id": j.id, "integration_id": j.integration_id, "entity_type": j.entity_type,
               "job_type": j.job_type.as_str(), "records": restored.len(), "automatic": false,
               "actor_api_key_id": t.api_key_id}),
    )
    .await?;
    commit(tx).await?;
    let now = job(&ctx, &t, j.id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "job": now, "restored": restored.len() - removed, "removed": removed
    })))
}

/// An operator's choice for a conflict.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveInput {
    /// `local` (the hub's version, which becomes a local change to export)
    /// or `remote` (the provider's).
    #[schema(pattern = "^(local|remote)$", example = "remote")]
    pub keep: String,
}

/// Re-resolves a conflict: the record gets the chosen version (keeping
/// `local` marks it as a local change to export), the conflict its
/// resolution and who chose; `integration.<entity>.updated` is published.
/// A conflict resolved already is a 409.
#[utoipa::path(post, path = "/api/v1/sync/conflicts/{id}/resolve", tag = "sync", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body = ResolveInput,
    responses((status = 200, description = "`{conflict_id, resolution, record_id, external_id, record}`"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn resolve(
    Call { t, ctx }: Call,
    id: web::Path<Uuid>,
    input: web::Json<ResolveInput>,
) -> Result<HttpResponse, ApiError> {
    use hub_storage::sync_import::{self as imports, Keep, Resolution};
    let keep = match input.keep.as_str() {
        "local" => Keep::Local,
        "remote" => Keep::Remote,
        _ => {
            let mut errs = FieldErrors::default();
            errs.push("keep", "local or remote");
            return errs.or_invalid(HttpResponse::Ok().finish());
        }
    };
    let (integration, entity_type) = imports::conflict_of(&ctx.pool, t.id, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("conflict"))?;
    let (entity, short) = entity_of(&ctx, t.id, integration, &entity_type).await?;
    let mut tx = begin(&ctx).await?;
    match imports::resolve(&mut tx, t.id, *id, keep, Some(t.api_key_id.0)).await? {
        Resolution::NotFound => Err(ApiError::not_found("conflict")),
        Resolution::Already(at) => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("the conflict was resolved already, at {}", at.to_rfc3339()),
        )),
        Resolution::RecordGone => Err(ApiError::new(
            ErrorCode::Conflict,
            "the record is no longer held (the import that created it was rolled back)",
        )),
        Resolution::Applied {
            integration_id,
            entity_type,
            external_id,
            record_id,
            record,
        } => {
            emit(
                &mut tx,
                &format!("integration.{short}.updated"),
                t.id,
                json!({"record_id": record_id, "external_id": external_id, "entity": entity,
                       "change": "resolved", "record": record, "integration_id": integration_id,
                       "entity_type": entity_type, "conflict_id": *id,
                       "resolution": keep.resolution(), "actor_api_key_id": t.api_key_id}),
            )
            .await?;
            commit(tx).await?;
            Ok(HttpResponse::Ok().json(json!({
                "conflict_id": *id, "resolution": keep.resolution(), "record_id": record_id,
                "external_id": external_id, "record": record
            })))
        }
    }
}

/// The routes, under `/sync-jobs` and its alias `/sync-tasks`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for base in ["/sync-jobs", "/sync-tasks"] {
        cfg.service(
            web::scope(base)
                .service(
                    web::resource("")
                        .app_data(hub_platform::http::json_config(MAX_BODY))
                        .route(web::get().to(list))
                        .route(web::post().to(create)),
                )
                .route("/{id}", web::get().to(get))
                .route("/{id}/cancel", web::post().to(cancel))
                .route("/{id}/rollback", web::post().to(rollback))
                .route("/{id}/progress", web::get().to(progress))
                .route("/{id}/errors", web::get().to(errors))
                .route("/{id}/conflicts", web::get().to(job_conflicts)),
        );
    }
    cfg.route("/sync/conflicts", web::get().to(conflicts));
    cfg.route("/sync/conflicts/{id}/resolve", web::post().to(resolve));
}
