//! Running one FULL_SYNC or INCREMENTAL job: page after page from the
//! provider, each committed with the job's progress and checkpoint.
//!
//! For each record of a page: its id and timestamp (the manifest's paths),
//! the entity's record schema (an invalid record is an item error, not a
//! job failure), the entity's transformation template, the content hash;
//! then, with the held copies of the page's records locked,
//! `hub_domain::sync::decide` says what each does (create, unchanged,
//! update, conflict). Changed records are upserted in one statement,
//! conflicts and before-images recorded, and `integration.<entity>.updated`
//! published through the outbox in the same transaction. A cancel is
//! honoured between pages. At the end of a complete FULL_SYNC, records not
//! seen are soft-deleted unless that would delete more than the job's share
//! (20 % by default) without confirmation. A job whose records fail more
//! often than [`MAX_ERROR_SHARE`] is rolled back.

use crate::worker::Engine;
use bytes::Bytes;
use futures::StreamExt;
use hub_connectors::sync::EntitySync;
use hub_domain::status::{SyncJobStatus, SyncJobType};
use hub_domain::sync::{Decision, Held, Pulled, Winner, content_hash, decide, deletion_allowed};
use hub_domain::{Envelope, EventType, TenantId};
use hub_gateway::engine::{Loaded, Outgoing};
use hub_platform::transforms::Resolved;
use hub_storage::sync::{self as store, Conflict, HeldRow, Item, Job, Page, Upsert};
use hub_transform::error::Limits;
use hub_transform::pipeline::Input;
use hub_transform::validate::Schema;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken as Stop;
use uuid::Uuid;

/// A job whose records fail more often than this (after at least
/// [`MIN_RECORDS_FOR_SHARE`] records) is rolled back and failed.
pub const MAX_ERROR_SHARE: f64 = 0.5;
/// Records read before the error share is judged.
const MIN_RECORDS_FOR_SHARE: i32 = 100;
/// Largest provider answer read.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// Why a job stopped early (pulls, imports and exports alike).
#[derive(Debug)]
pub enum Stopped {
    /// Failed with this message.
    Failed(String),
    /// The database went away (a restart, a failover, a cut connection):
    /// the job is left leased as it is, its last page committed or not at
    /// all, and is resumed from its checkpoint when the lease lapses.
    Interrupted(String),
    /// Another worker holds the job now.
    LeaseLost,
    /// The service is shutting down: the job stays leased and resumes.
    Shutdown,
    /// A cancel was asked for.
    Cancelled,
}

impl From<hub_storage::StorageError> for Stopped {
    fn from(e: hub_storage::StorageError) -> Self {
        if e.is_transient() {
            Stopped::Interrupted(e.to_string())
        } else {
            Stopped::Failed(format!("the database: {e}"))
        }
    }
}

/// A gateway error as a stop: its own state out of reach (Postgres)
/// interrupts the job; anything else fails it, `what` saying where.
pub(crate) fn gateway_stopped(e: hub_gateway::engine::GatewayError, what: &str) -> Stopped {
    match e {
        hub_gateway::engine::GatewayError::Unavailable(m) => Stopped::Interrupted(m),
        e => Stopped::Failed(format!("{what}: {e}")),
    }
}

impl From<sqlx::Error> for Stopped {
    fn from(e: sqlx::Error) -> Self {
        hub_storage::StorageError::from(e).into()
    }
}

/// Runs `job` to its end (or to shutdown).
pub async fn run(engine: &Engine, job: Job, stop: &Stop) {
    let started = std::time::Instant::now();
    if job.runs == 1
        && let Err(e) = publish(engine, &job, "sync.started", json!({})).await
    {
        tracing::warn!(error = %e, job = %job.id, "sync.started could not be published");
    }
    let outcome = match job.job_type {
        SyncJobType::FullSync | SyncJobType::Incremental => pull(engine, &job, stop).await,
        SyncJobType::Import => crate::import::run(engine, &job, stop).await,
        SyncJobType::Export => crate::export::run(engine, &job, stop).await,
    };
    let (status, error) = match outcome {
        Ok(()) => (SyncJobStatus::Completed, None),
        Err(Stopped::Cancelled) => (SyncJobStatus::Cancelled, None),
        Err(Stopped::Failed(e)) => (SyncJobStatus::Failed, Some(e)),
        Err(Stopped::LeaseLost) => {
            tracing::warn!(job = %job.id, "lease lost: another worker runs the job");
            return;
        }
        Err(Stopped::Interrupted(e)) => {
            tracing::warn!(error = %e, job = %job.id, "the database went away: the job resumes from its checkpoint when its lease lapses");
            return;
        }
        Err(Stopped::Shutdown) => return,
    };
    if let Err(e) = finish(engine, &job, status, error.as_deref()).await {
        tracing::error!(error = %e, job = %job.id, "finishing the job failed; its lease will lapse and it will be resumed");
        return;
    }
    metrics::counter!("hub_sync_jobs_total", "status" => status.as_str()).increment(1);
    tracing::info!(job = %job.id, status = status.as_str(), seconds = started.elapsed().as_secs_f64(), "sync job ended");
}

/// Ends the job with its events (and the rollback a failure needs).
async fn finish(
    engine: &Engine,
    job: &Job,
    status: SyncJobStatus,
    error: Option<&str>,
) -> Result<(), hub_storage::StorageError> {
    let mut tx = engine.pool.begin().await?;
    let Some(ended) = store::finish(&mut tx, job, &engine.owner, status, error).await? else {
        return Ok(());
    };
    let summary = summary(&ended);
    let mut events = Vec::new();
    match status {
        SyncJobStatus::Completed => {
            for kind in [
                "sync.completed",
                "sync.task.completed",
                "integration.sync.completed",
            ] {
                events.push(event(kind, job, summary.clone()));
            }
        }
        SyncJobStatus::Failed => {
            let mut data = summary;
            data["error"] = json!(error);
            events.push(event("sync.failed", job, data));
        }
        _ => events.push(event("sync.cancelled", job, summary)),
    }
    let staged = engine.outbox.stage(&mut tx, &events).await?;
    tx.commit().await?;
    staged.publish();
    Ok(())
}

fn summary(j: &Job) -> Value {
    json!({
        "processed": j.processed_records, "created": j.created_count, "updated": j.updated_count,
        "unchanged": j.unchanged_count, "conflicts": j.conflict_count, "deleted": j.deleted_count,
        "errors": j.error_count, "pages": j.current_page,
    })
}

/// An event about `job`: its id, integration, entity and type, with `data`.
pub(crate) fn event(kind: &str, job: &Job, mut data: Value) -> Envelope {
    if let Value::Object(m) = &mut data {
        m.insert("job_id".into(), json!(job.id));
        m.insert("integration_id".into(), json!(job.integration_id));
        m.insert("entity_type".into(), json!(job.entity_type));
        m.insert("job_type".into(), json!(job.job_type.as_str()));
    }
    Envelope::new(
        crate::NAME,
        EventType::parse(kind).unwrap_or_else(|_| EventType::parse("sync.event").expect("static")),
        Some(TenantId(job.tenant_id)),
        data,
    )
}

pub(crate) async fn publish(
    engine: &Engine,
    job: &Job,
    kind: &str,
    data: Value,
) -> Result<(), hub_storage::StorageError> {
    let mut tx = engine.pool.begin().await?;
    let staged = engine
        .outbox
        .stage(&mut tx, &[event(kind, job, data)])
        .await?;
    tx.commit().await?;
    staged.publish();
    Ok(())
}

/// What a job reads with, resolved once.
pub(crate) struct Plan {
    pub(crate) it: Arc<Loaded>,
    pub(crate) spec: &'static EntitySync,
    pub(crate) template: Arc<Resolved>,
    pub(crate) schema: Option<Schema>,
    pub(crate) since: Option<chrono::DateTime<chrono::Utc>>,
    /// `integration.<entity>.updated` (`c_opportunity` → `opportunity`).
    pub(crate) updated_event: String,
    pub(crate) deleted_event: String,
}

pub(crate) async fn plan(engine: &Engine, job: &Job) -> Result<Plan, Stopped> {
    let tenant = TenantId(job.tenant_id);
    let failed = |m: String| Stopped::Failed(m);
    let it = engine
        .gateway
        .load(tenant, job.integration_id)
        .await
        .map_err(|e| gateway_stopped(e, "the integration cannot be loaded"))?
        .ok_or_else(|| failed("the integration no longer exists".into()))?;
    let since = match job.job_type {
        SyncJobType::Incremental => match job.watermark {
            Some(w) => Some(w),
            None => store::watermark(&engine.pool, job.integration_id, &job.entity_type).await?,
        },
        _ => None,
    };
    plan_for(engine, tenant, it, &job.entity_type, since).await
}

/// The plan of `entity` of the loaded integration `it` (a job's, or a
/// webhook's).
pub(crate) async fn plan_for(
    engine: &Engine,
    tenant: TenantId,
    it: Arc<Loaded>,
    entity: &str,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Plan, Stopped> {
    let failed = |m: String| Stopped::Failed(m);
    let manifest = it.manifest;
    let entities = manifest.sync.as_ref().map(|s| &s.entities);
    let spec = entities.and_then(|e| e.get(entity)).ok_or_else(|| {
        let known: Vec<&str> = entities
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect();
        failed(format!(
            "{} does not sync {:?} (it syncs: {})",
            manifest.code,
            entity,
            if known.is_empty() {
                "nothing".into()
            } else {
                known.join(", ")
            }
        ))
    })?;
    let template = engine
        .templates
        .by_code(tenant, &spec.template)
        .await
        .map_err(|e| failed(format!("the entity mapping: {e}")))?;
    let schema = match &spec.record_schema {
        None => None,
        Some(s) => Some(Schema::compile(s).map_err(|e| failed(format!("the record schema: {e}")))?),
    };
    let short = spec
        .entity
        .strip_prefix("c_")
        .unwrap_or(&spec.entity)
        .to_owned();
    Ok(Plan {
        it,
        spec,
        template,
        schema,
        since,
        updated_event: format!("integration.{short}.updated"),
        deleted_event: format!("integration.{short}.deleted"),
    })
}

async fn pull(engine: &Engine, job: &Job, stop: &Stop) -> Result<(), Stopped> {
    let plan = plan(engine, job).await?;
    let mut checkpoint = job.checkpoint.clone();
    let mut page_no = job.current_page;
    let mut errors = job.error_count;
    let mut processed = job.processed_records;
    // A resumed job whose last page was its last goes straight to the end.
    let resumed_at_end = job.runs > 1 && page_no > 0 && checkpoint.is_none();
    if !resumed_at_end {
        loop {
            if stop.is_cancelled() {
                return Err(Stopped::Shutdown);
            }
            let answer = fetch(engine, &plan, checkpoint.as_ref()).await?;
            let read = plan
                .spec
                .read(&answer, checkpoint.as_ref())
                .map_err(|e| Stopped::Failed(format!("the provider's answer: {e}")))?;
            page_no += 1;
            let next = read.next.clone();
            let (records, page) = build_page(
                &plan,
                job.job_type == SyncJobType::FullSync,
                read,
                page_no,
                &next,
            );
            errors += page.progress.errors;
            processed += page.progress.processed;
            let cancel = commit_page(engine, &plan, job, (records, page)).await?;
            if cancel {
                return Err(Stopped::Cancelled);
            }
            if processed >= MIN_RECORDS_FOR_SHARE
                && f64::from(errors) > MAX_ERROR_SHARE * f64::from(processed)
            {
                roll_back(engine, job).await?;
                return Err(Stopped::Failed(format!(
                    "{errors} of {processed} records were invalid (over {} %): everything the job wrote was rolled back",
                    MAX_ERROR_SHARE * 100.0
                )));
            }
            checkpoint = next;
            if checkpoint.is_none() {
                break;
            }
        }
    }
    if job.job_type == SyncJobType::FullSync {
        delete_unseen(engine, &plan, job).await?;
    }
    Ok(())
}

async fn roll_back(engine: &Engine, job: &Job) -> Result<(), Stopped> {
    let mut tx = engine.pool.begin().await?;
    store::rollback(&mut tx, job).await?;
    tx.commit().await?;
    Ok(())
}

/// One page's answer from the provider, as JSON.
async fn fetch(engine: &Engine, plan: &Plan, checkpoint: Option<&Value>) -> Result<Value, Stopped> {
    let req = plan
        .spec
        .request(&plan.it.row.config, checkpoint, plan.since)
        .map_err(|e| Stopped::Failed(format!("the provider request: {e}")))?;
    let (status, bytes) = call(engine, &plan.it, &req).await?;
    // 304: nothing changed since `If-Modified-Since` (Zoho), an empty page.
    if status == 304 {
        return Ok(Value::Null);
    }
    if !(200..300).contains(&status) {
        let text: String = String::from_utf8_lossy(&bytes).chars().take(500).collect();
        return Err(Stopped::Failed(format!(
            "the provider answered {status}: {text}"
        )));
    }
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Stopped::Failed(format!("the provider's answer is not JSON: {e}")))
}

/// Sends `req` to the provider through the gateway; its status and body
/// (at most [`MAX_ANSWER`] bytes).
pub(crate) async fn call(
    engine: &Engine,
    it: &Arc<Loaded>,
    req: &hub_connectors::sync::Request,
) -> Result<(u16, Vec<u8>), Stopped> {
    let mut headers = http::HeaderMap::new();
    for (k, v) in &req.headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            headers.insert(k, v);
        }
    }
    let body = match &req.body {
        Some(b) => {
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Bytes::from(serde_json::to_vec(b).unwrap_or_default())
        }
        None => Bytes::new(),
    };
    let out = Outgoing {
        method: http::Method::from_bytes(req.method.as_bytes()).unwrap_or(http::Method::GET),
        path_and_query: relative(it, &req.path_and_query),
        headers,
        body,
        high_priority: false,
        retries: true,
        request_id: Uuid::now_v7().to_string(),
        connection_test: false,
    };
    let answer = engine
        .gateway
        .send(it, out)
        .await
        .map_err(|e| gateway_stopped(e, "the provider call failed"))?;
    let bytes = read_answer(answer.body, MAX_ANSWER)
        .await
        .map_err(Stopped::Failed)?;
    Ok((answer.status, bytes))
}

/// A provider's answer body, read to its end; an error past `limit` bytes
/// or when the stream breaks.
pub(crate) async fn read_answer(
    mut body: hub_gateway::engine::Body,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("reading the provider's answer: {e}"))?;
        if bytes.len() + chunk.len() > limit {
            return Err(format!("the provider's answer is over {limit} bytes"));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// A next-page URL as a path below the integration's API base (providers
/// give it from the host: Salesforce's `/services/data/v60.0/query/…`).
fn relative(it: &Loaded, path: &str) -> String {
    let base = it.manifest.base_url_for(&it.row.config);
    let base_path = url::Url::parse(base)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let path = match url::Url::parse(path) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        },
        Err(_) => path.to_owned(),
    };
    match path.strip_prefix(&base_path) {
        Some(rest) if !base_path.is_empty() && (rest.starts_with('/') || rest.starts_with('?')) => {
            rest.to_owned()
        }
        _ => path,
    }
}

/// A record of a page, read and mapped.
pub(crate) struct Record {
    pub(crate) external_id: String,
    pub(crate) source_at: Option<chrono::DateTime<chrono::Utc>>,
    pub(crate) data: Value,
    pub(crate) hash: [u8; 32],
}

/// Reads, checks and maps a page's records; what fails becomes item errors.
pub(crate) fn build_page(
    plan: &Plan,
    collect_seen: bool,
    read: hub_connectors::sync::PageRead,
    number: i32,
    next: &Option<Value>,
) -> (Vec<Record>, Page) {
    let mut page = Page {
        number,
        checkpoint: next.clone(),
        total: read.total.and_then(|t| i32::try_from(t).ok()),
        ..Page::default()
    };
    let mut records = Vec::with_capacity(read.records.len());
    for (i, raw) in read.records.iter().enumerate() {
        page.progress.processed += 1;
        let Some(external_id) = plan.spec.id_of(raw) else {
            page.items.push(item_error(
                format!("#{number}.{i}"),
                "missing_id",
                format!("the record has no {}", plan.spec.id),
                None,
            ));
            continue;
        };
        if collect_seen {
            page.seen.push(external_id.clone());
        }
        let source_at = plan.spec.updated_at_of(raw);
        if let (Some(since), Some(at), None) = (plan.since, source_at, &plan.spec.incremental)
            && at <= since
        {
            page.progress.unchanged += 1;
            page.progress.success += 1;
            continue;
        }
        if let Some(schema) = &plan.schema {
            let problems = schema.check(raw);
            if let Some(first) = problems.first() {
                page.items.push(item_error(
                    external_id,
                    "invalid_record",
                    first.message.clone(),
                    first.location.path.clone(),
                ));
                continue;
            }
        }
        match plan
            .template
            .compiled
            .transform(Input::Tree(raw), Limits::default())
        {
            Ok(out) => {
                let hash = content_hash(&out.tree);
                page.newest = page.newest.max(source_at);
                records.push(Record {
                    external_id,
                    source_at,
                    data: out.tree,
                    hash,
                });
            }
            Err(e) => page
                .items
                .push(item_error(external_id, e.code, e.message, e.location.path)),
        }
    }
    page.progress.errors = i32::try_from(page.items.len()).unwrap_or(i32::MAX);
    (records, page)
}

pub(crate) fn item_error(
    external_id: String,
    code: &str,
    message: String,
    path: Option<String>,
) -> Item {
    Item {
        external_id,
        outcome: "ERROR",
        before: None,
        error: Some(json!({"code": code, "message": message, "path": path})),
    }
}

/// Decides each record against the held copies and commits the page.
pub(crate) async fn commit_page(
    engine: &Engine,
    plan: &Plan,
    job: &Job,
    built: (Vec<Record>, Page),
) -> Result<bool, Stopped> {
    let (records, mut page) = built;
    let mut tx = engine.pool.begin().await?;
    let changed = decide_held(
        &mut tx,
        job.integration_id,
        &job.entity_type,
        records,
        &mut page,
    )
    .await?;
    let events: Vec<Envelope> = changed
        .iter()
        .map(|c| {
            record_event(
                plan,
                job,
                &plan.updated_event,
                &c.external_id,
                c.id,
                &c.data,
                c.change,
            )
        })
        .collect();
    let written = store::write_page(
        &mut tx,
        job,
        &engine.owner,
        engine.lease.as_secs_f64(),
        &page,
    )
    .await?;
    let cancel = match written {
        Ok(cancel) => cancel,
        Err(store::LeaseLost) => return Err(Stopped::LeaseLost),
    };
    let staged = engine.outbox.stage(&mut tx, &events).await?;
    tx.commit().await?;
    staged.publish();
    metrics::counter!("hub_sync_records_total")
        .increment(u64::try_from(page.progress.processed).unwrap_or(0));
    Ok(cancel)
}

/// A record a page changed, for its `integration.<entity>.updated` event.
pub(crate) struct Changed {
    pub(crate) external_id: String,
    pub(crate) id: Uuid,
    pub(crate) data: Value,
    /// `created` or `updated`.
    pub(crate) change: &'static str,
}

/// Locks the held copies of `records` (in `tx`) and decides each
/// (`hub_domain::sync::decide`): upserts, conflicts, before-images and
/// counts go into `page`; the records that changed are returned.
pub(crate) async fn decide_held(
    tx: &mut hub_storage::Tx<'_>,
    integration: Uuid,
    entity: &str,
    records: Vec<Record>,
    page: &mut Page,
) -> Result<Vec<Changed>, Stopped> {
    let ids: Vec<String> = records.iter().map(|r| r.external_id.clone()).collect();
    let held: HashMap<String, HeldRow> = store::lock_held(tx, integration, entity, &ids)
        .await?
        .into_iter()
        .map(|h| (h.external_id.clone(), h))
        .collect();
    let mut changed = Vec::new();
    for r in records {
        let h = held.get(&r.external_id);
        let held_view = h.map(|h| Held {
            hash: &h.content_hash,
            source_updated_at: h.source_updated_at,
            local_changed_at: h.local_changed_at,
            deleted: h.deleted_at.is_some(),
        });
        let decision = decide(
            held_view.as_ref(),
            &Pulled {
                hash: &r.hash,
                source_updated_at: r.source_at,
            },
        );
        page.progress.success += 1;
        let id = h.map_or_else(Uuid::now_v7, |h| h.id);
        let change = match decision {
            Decision::Unchanged => {
                page.progress.unchanged += 1;
                continue;
            }
            Decision::Create => {
                page.progress.created += 1;
                if let Some(h) = h {
                    page.items.push(Item {
                        external_id: r.external_id.clone(),
                        outcome: "UPDATED",
                        before: Some(h.clone()),
                        error: None,
                    });
                }
                "created"
            }
            Decision::Update => {
                page.progress.updated += 1;
                page.items.push(Item {
                    external_id: r.external_id.clone(),
                    outcome: "UPDATED",
                    before: h.cloned(),
                    error: None,
                });
                "updated"
            }
            Decision::Conflict { winner, rule } => {
                page.progress.conflicts += 1;
                let Some(h) = h else {
                    continue;
                };
                let local = h.local_data.clone().unwrap_or_else(|| h.data.clone());
                page.conflicts.push(Conflict {
                    id: Uuid::now_v7(),
                    external_id: r.external_id.clone(),
                    local,
                    remote: r.data.clone(),
                    local_at: h.local_changed_at.or(h.source_updated_at),
                    remote_at: r.source_at,
                    winner: winner.as_str(),
                    rule: rule.as_str(),
                });
                if winner == Winner::Local {
                    continue;
                }
                page.items.push(Item {
                    external_id: r.external_id.clone(),
                    outcome: "CONFLICT",
                    before: Some(h.clone()),
                    error: None,
                });
                "updated"
            }
        };
        changed.push(Changed {
            external_id: r.external_id.clone(),
            id,
            data: r.data.clone(),
            change,
        });
        page.upserts.push(Upsert {
            external_id: r.external_id,
            id,
            data: r.data,
            hash: r.hash.to_vec(),
            source_updated_at: r.source_at,
            local_changed_at: None,
            local_data: None,
        });
    }
    Ok(changed)
}

pub(crate) fn record_event(
    plan: &Plan,
    job: &Job,
    kind: &str,
    external_id: &str,
    id: Uuid,
    data: &Value,
    change: &str,
) -> Envelope {
    event(
        kind,
        job,
        json!({"record_id": id, "external_id": external_id, "entity": plan.spec.entity, "change": change, "record": data}),
    )
}

/// FULL_SYNC's end: soft-deletes what the provider no longer has, within
/// the job's share unless confirmed.
async fn delete_unseen(engine: &Engine, plan: &Plan, job: &Job) -> Result<(), Stopped> {
    let (unseen, held) = store::unseen(&engine.pool, job).await?;
    let (share, allowed) = deletion_allowed(
        u64::try_from(unseen).unwrap_or(0),
        u64::try_from(held).unwrap_or(0),
        job.max_delete_share,
        job.confirm_deletions,
    );
    if unseen == 0 {
        return Ok(());
    }
    if !allowed {
        return Err(Stopped::Failed(format!(
            "the provider no longer lists {unseen} of the {held} records held ({:.1} %, over the {:.0} % allowed): nothing was deleted; run a FULL_SYNC with confirm_deletions to delete them",
            share * 100.0,
            job.max_delete_share * 100.0
        )));
    }
    let mut tx = engine.pool.begin().await?;
    let gone = store::delete_unseen(&mut tx, job).await?;
    let events: Vec<Envelope> = gone
        .iter()
        .map(|(external_id, id, data)| {
            record_event(
                plan,
                job,
                &plan.deleted_event,
                external_id,
                *id,
                data,
                "deleted",
            )
        })
        .collect();
    let staged = engine.outbox.stage(&mut tx, &events).await?;
    tx.commit().await?;
    staged.publish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Stopped;
    use hub_storage::StorageError;

    /// A connection cut by a database restart leaves the job to be resumed
    /// (seen in `cargo xtask chaos`: a FULL_SYNC was failed by "Connection
    /// reset by peer"); a real database error still fails it.
    #[test]
    fn a_database_outage_interrupts_a_job_and_a_database_error_fails_it() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let gone = StorageError::from(sqlx::Error::Io(reset));
        assert!(matches!(Stopped::from(gone), Stopped::Interrupted(_)));
        let timed_out = StorageError::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(Stopped::from(timed_out), Stopped::Interrupted(_)));
        let conflict = StorageError::Conflict {
            constraint: "sync_records_id".into(),
        };
        assert!(matches!(Stopped::from(conflict), Stopped::Failed(_)));
    }
}
