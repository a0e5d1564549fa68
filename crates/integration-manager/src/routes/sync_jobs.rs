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
    /// FULL_SYNC, INCREMENTAL (from the provider) or EXPORT (the pending
    /// local changes to the provider); IMPORT is not available yet.
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
        Ok(j @ (SyncJobType::FullSync | SyncJobType::Incremental | SyncJobType::Export)) => Some(j),
        Ok(other) => {
            errs.push(
                "job_type",
                format!("{other} jobs are not available yet; use FULL_SYNC, INCREMENTAL or EXPORT"),
            );
            None
        }
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
    errs.or_invalid(())?;
    let (Some(job_type), Some(direction)) = (job_type, direction) else {
        return Err(ApiError::internal("checked fields missing"));
    };
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

/// The routes, under `/sync-jobs` and its alias `/sync-tasks`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for base in ["/sync-jobs", "/sync-tasks"] {
        cfg.service(
            web::scope(base)
                .route("", web::get().to(list))
                .route("", web::post().to(create))
                .route("/{id}", web::get().to(get))
                .route("/{id}/cancel", web::post().to(cancel))
                .route("/{id}/progress", web::get().to(progress))
                .route("/{id}/errors", web::get().to(errors))
                .route("/{id}/conflicts", web::get().to(job_conflicts)),
        );
    }
    cfg.route("/sync/conflicts", web::get().to(conflicts));
}
