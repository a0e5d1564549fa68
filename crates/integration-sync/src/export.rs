//! Running one EXPORT job: the pending local changes of an integration's
//! entity pushed to the provider in batches, as its manifest's `export`
//! section says (`hub_connectors::sync::export`), through the gateway.
//!
//! Each record's pending change (or held version) is mapped to the
//! provider's body by the export template. A record the provider does not
//! have yet (held under a placeholder key) is created and re-keyed to the
//! provider's id; another is updated, with the held concurrency token when
//! the provider has one. The provider's version in the answer (or read
//! back) is mapped by the entity's read template and stored, and the local
//! change is cleared unless a newer one came in meanwhile. A stale token
//! (QuickBooks 5010) re-reads the record and lets `hub_domain::sync::decide`
//! judge: the provider's newer version wins (the local change is the loser
//! in `sync_conflicts` and is dropped), or the newer local change wins (the
//! provider's version is the loser) and is sent once more with the fresh
//! token. A record the provider refuses (4xx) is an item error with the
//! provider's message and stays pending; an answer that is no record's
//! fault (5xx, 429, 401/403, no answer after the gateway's retries) fails
//! the job after the batch's earlier pushes are committed, and a new job
//! resumes with what is still pending.
//!
//! Each batch commits with the job's progress and cursor; a cancel is
//! honoured between batches. Every pushed record publishes
//! `integration.<entity>.exported`; a record whose provider version won a
//! conflict publishes `integration.<entity>.updated` (the hub's copy
//! changed).

use crate::pull::Stopped;
use crate::worker::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use hub_connectors::sync::EntitySync;
use hub_connectors::sync::Request;
use hub_connectors::sync::export::{ExportSpec, is_placeholder};
use hub_domain::sync::{Decision, Held, Pulled, Winner, content_hash, decide};
use hub_domain::{Envelope, EventType, TenantId};
use hub_gateway::engine::{Loaded, Outgoing};
use hub_platform::transforms::Resolved;
use hub_storage::export::{self as store, Pending, Pushed};
use hub_storage::sync::{Conflict, Item, Job, Page};
use hub_transform::error::Limits;
use hub_transform::pipeline::Input;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken as Stop;
use uuid::Uuid;

/// Largest provider answer read.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// What a job pushes with, resolved once.
struct Plan {
    it: Arc<Loaded>,
    spec: &'static EntitySync,
    export: &'static ExportSpec,
    /// Provider record → hub record.
    read: Arc<Resolved>,
    /// Hub record → provider body.
    write: Arc<Resolved>,
    exported_event: String,
    updated_event: String,
}

async fn plan(engine: &Engine, job: &Job) -> Result<Plan, Stopped> {
    let tenant = TenantId(job.tenant_id);
    let failed = Stopped::Failed;
    let it = engine
        .gateway
        .load(tenant, job.integration_id)
        .await
        .map_err(|e| crate::pull::gateway_stopped(e, "the integration cannot be loaded"))?
        .ok_or_else(|| failed("the integration no longer exists".into()))?;
    let manifest = it.manifest;
    let spec = manifest
        .sync
        .as_ref()
        .and_then(|s| s.entities.get(&job.entity_type))
        .ok_or_else(|| {
            failed(format!(
                "{} does not sync {:?}",
                manifest.code, job.entity_type
            ))
        })?;
    let export = spec.export.as_ref().ok_or_else(|| {
        failed(format!(
            "{} does not export {:?}",
            manifest.code, job.entity_type
        ))
    })?;
    let read = engine
        .templates
        .by_code(tenant, &spec.template)
        .await
        .map_err(|e| failed(format!("the entity mapping: {e}")))?;
    let write = engine
        .templates
        .by_code(tenant, &export.template)
        .await
        .map_err(|e| failed(format!("the export mapping: {e}")))?;
    let short = spec.entity.strip_prefix("c_").unwrap_or(&spec.entity);
    Ok(Plan {
        it,
        spec,
        export,
        read,
        write,
        exported_event: format!("integration.{short}.exported"),
        updated_event: format!("integration.{short}.updated"),
    })
}

/// Runs EXPORT job `job` to its end (or to shutdown, cancel or failure).
pub async fn run(engine: &Engine, job: &Job, stop: &Stop) -> Result<(), Stopped> {
    let plan = plan(engine, job).await?;
    let mut cursor = job.checkpoint.as_ref().and_then(cursor_of);
    let mut page_no = job.current_page;
    loop {
        if stop.is_cancelled() {
            return Err(Stopped::Shutdown);
        }
        let rows =
            store::pending(&engine.pool, job, cursor.clone(), plan.export.batch_size()).await?;
        if rows.is_empty() {
            return Ok(());
        }
        page_no += 1;
        let mut batch = Batch::new(page_no);
        let mut fatal = None;
        for row in &rows {
            if let Err(e) = push(engine, &plan, job, row, &mut batch).await {
                fatal = Some(e);
                break;
            }
            cursor = Some((row.local_changed_at, row.external_id.clone()));
        }
        let cancel = commit(engine, job, batch, cursor.as_ref()).await?;
        if let Some(e) = fatal {
            return Err(Stopped::Failed(e));
        }
        if cancel {
            return Err(Stopped::Cancelled);
        }
    }
}

fn cursor_of(v: &Value) -> Option<(DateTime<Utc>, String)> {
    let at = v.get("at")?.as_str()?.parse().ok()?;
    Some((at, v.get("id")?.as_str()?.to_owned()))
}

/// What a batch writes.
struct Batch {
    page: Page,
    pushed: Vec<Pushed>,
    events: Vec<Envelope>,
}

impl Batch {
    fn new(number: i32) -> Self {
        Self {
            page: Page {
                number,
                ..Page::default()
            },
            pushed: Vec::new(),
            events: Vec::new(),
        }
    }

    fn refused(&mut self, row: &Pending, code: &str, message: String) {
        self.page.progress.errors += 1;
        self.page.items.push(Item {
            external_id: row.external_id.clone(),
            outcome: "ERROR",
            before: None,
            error: Some(json!({"code": code, "message": message, "path": null})),
        });
    }
}

/// A provider version of a record, mapped.
struct Version {
    data: Value,
    hash: [u8; 32],
    source_at: Option<DateTime<Utc>>,
}

fn version(plan: &Plan, raw: &Value) -> Result<Version, String> {
    let out = plan
        .read
        .compiled
        .transform(Input::Tree(raw), Limits::default())
        .map_err(|e| format!("the provider's record does not map: {}", e.message))?;
    Ok(Version {
        hash: content_hash(&out.tree),
        source_at: plan.spec.updated_at_of(raw),
        data: out.tree,
    })
}

/// A provider's answer.
struct Answer {
    status: u16,
    body: Value,
    text: String,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Pushes one record's change; `Err` is a failure that is not the
/// record's (the job stops).
async fn push(
    engine: &Engine,
    plan: &Plan,
    job: &Job,
    row: &Pending,
    batch: &mut Batch,
) -> Result<(), String> {
    batch.page.progress.processed += 1;
    let local = row.local_data.as_ref().unwrap_or(&row.data);
    let body = match plan
        .write
        .compiled
        .transform(Input::Tree(local), Limits::default())
    {
        Ok(out) => out.tree,
        Err(e) => {
            batch.refused(row, e.code, e.message);
            return Ok(());
        }
    };
    let config = &plan.it.row.config;
    if is_placeholder(&row.external_id) {
        let req = match plan.export.create_request(body, config) {
            Ok(r) => r,
            Err(e) => {
                batch.refused(row, "export_request", e);
                return Ok(());
            }
        };
        let answer = call(engine, plan, req).await?;
        if !answer.ok() {
            let message = plan.export.error_message(&answer.body, &answer.text);
            batch.refused(
                row,
                "provider_refused",
                format!("{}: {message}", answer.status),
            );
            return Ok(());
        }
        let got = plan.export.read_answer(plan.spec, &answer.body);
        let id = got.id.ok_or_else(|| {
            format!(
                "the provider created {} but its answer names no id (the record stays pending; check the manifest's export.created_id)",
                row.external_id
            )
        })?;
        let theirs = settle(engine, plan, got.record, &id, local).await?;
        stored(plan, job, row, id, theirs, "created", batch);
        batch.page.progress.created += 1;
        return Ok(());
    }
    let mut token = plan.export.held_token(&row.data).cloned();
    for attempt in 1..=2 {
        let req =
            match plan
                .export
                .update_request(&row.external_id, body.clone(), token.as_ref(), config)
            {
                Ok(r) => r,
                Err(e) => {
                    batch.refused(row, "export_request", e);
                    return Ok(());
                }
            };
        let answer = call(engine, plan, req).await?;
        if answer.ok() {
            let got = plan.export.read_answer(plan.spec, &answer.body);
            let theirs = settle(engine, plan, got.record, &row.external_id, local).await?;
            stored(
                plan,
                job,
                row,
                row.external_id.clone(),
                theirs,
                "updated",
                batch,
            );
            batch.page.progress.updated += 1;
            return Ok(());
        }
        if !plan.export.is_stale(answer.status, &answer.body) {
            let message = plan.export.error_message(&answer.body, &answer.text);
            batch.refused(
                row,
                "provider_refused",
                format!("{}: {message}", answer.status),
            );
            return Ok(());
        }
        if attempt == 2 {
            batch.refused(
                row,
                "stale_token",
                "the provider's record changed again while it was exported; the change stays pending for the next export".into(),
            );
            return Ok(());
        }
        // Stale: the provider's version changed since the hub read it.
        let Some(raw) = read(engine, plan, &row.external_id).await? else {
            batch.refused(
                row,
                "provider_refused",
                "the provider refused the token and its record could not be read back".into(),
            );
            return Ok(());
        };
        let theirs = match version(plan, &raw) {
            Ok(v) => v,
            Err(e) => {
                batch.refused(row, "mapping_failed", e);
                return Ok(());
            }
        };
        let held = Held {
            hash: &row.content_hash,
            source_updated_at: row.source_updated_at,
            local_changed_at: Some(row.local_changed_at),
            deleted: false,
        };
        let pulled = Pulled {
            hash: &theirs.hash,
            source_updated_at: theirs.source_at,
        };
        if let Decision::Conflict { winner, rule } = decide(Some(&held), &pulled) {
            batch.page.progress.conflicts += 1;
            batch.page.conflicts.push(Conflict {
                id: Uuid::now_v7(),
                external_id: row.external_id.clone(),
                local: local.clone(),
                remote: theirs.data.clone(),
                local_at: Some(row.local_changed_at),
                remote_at: theirs.source_at,
                winner: winner.as_str(),
                rule: rule.as_str(),
            });
            if winner == Winner::Remote {
                // The provider's newer version stays; the local change is dropped.
                batch.page.progress.success += 1;
                batch.events.push(record_event(
                    plan,
                    job,
                    &plan.updated_event,
                    row,
                    &row.external_id,
                    &theirs.data,
                    "updated",
                ));
                batch.pushed.push(Pushed {
                    from: row.external_id.clone(),
                    to: row.external_id.clone(),
                    data: theirs.data,
                    hash: theirs.hash.to_vec(),
                    source_updated_at: theirs.source_at,
                    pushed: row.local_changed_at,
                });
                return Ok(());
            }
        }
        // The local change is newer (or the provider's content is what the
        // hub holds): sent again with the provider's current token.
        token = plan.export.provider_token(&raw).cloned();
    }
    Ok(())
}

/// The provider's version after a successful write: the one its answer
/// holds, else the one read back, else (no read call) the hub's own.
async fn settle(
    engine: &Engine,
    plan: &Plan,
    answered: Option<Value>,
    id: &str,
    local: &Value,
) -> Result<Version, String> {
    let raw = match answered {
        Some(r) => Some(r),
        None => read(engine, plan, id).await?,
    };
    match raw {
        Some(raw) => version(plan, &raw).or_else(|e| {
            tracing::warn!(error = %e, id, "the provider's version does not map; the hub keeps its own");
            Ok(own(local, id))
        }),
        None => Ok(own(local, id)),
    }
}

fn own(local: &Value, id: &str) -> Version {
    let mut data = local.clone();
    if let Value::Object(m) = &mut data {
        m.insert("external_id".into(), json!(id));
    }
    Version {
        hash: content_hash(&data),
        source_at: None,
        data,
    }
}

fn stored(
    plan: &Plan,
    job: &Job,
    row: &Pending,
    id: String,
    v: Version,
    change: &str,
    batch: &mut Batch,
) {
    batch.page.progress.success += 1;
    batch.events.push(record_event(
        plan,
        job,
        &plan.exported_event,
        row,
        &id,
        &v.data,
        change,
    ));
    batch.pushed.push(Pushed {
        from: row.external_id.clone(),
        to: id,
        data: v.data,
        hash: v.hash.to_vec(),
        source_updated_at: v.source_at,
        pushed: row.local_changed_at,
    });
}

/// Reads record `id` back, if the manifest has a read call (`None`: no
/// call, or the provider does not have it).
async fn read(engine: &Engine, plan: &Plan, id: &str) -> Result<Option<Value>, String> {
    let Some(req) = plan.export.read_request(id, &plan.it.row.config) else {
        return Ok(None);
    };
    let answer = call(engine, plan, req?).await?;
    if !answer.ok() {
        return Ok(None);
    }
    Ok(plan.export.read_answer(plan.spec, &answer.body).record)
}

/// Sends `req` through the gateway; `Err` when the failure is not the
/// record's (no answer, 5xx, throttled, not authorized).
async fn call(engine: &Engine, plan: &Plan, req: Request) -> Result<Answer, String> {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/json"),
    );
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
    let method = http::Method::from_bytes(req.method.as_bytes())
        .map_err(|e| format!("the manifest's method {}: {e}", req.method))?;
    let out = Outgoing {
        method,
        path_and_query: req.path_and_query,
        headers,
        body,
        high_priority: false,
        retries: true,
        request_id: Uuid::now_v7().to_string(),
        connection_test: false,
    };
    let answer = engine
        .gateway
        .send(&plan.it, out)
        .await
        .map_err(|e| format!("the provider call failed: {e}"))?;
    let status = answer.status;
    let bytes = crate::pull::read_answer(answer.body, MAX_ANSWER).await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if matches!(status, 401 | 403 | 408 | 429) || status >= 500 {
        let message = plan.export.error_message(&body, &text);
        return Err(format!("the provider answered {status}: {message}"));
    }
    Ok(Answer { status, body, text })
}

/// Commits a batch: progress, cursor, item errors, conflicts, the stored
/// versions and their events. Returns whether a cancel was asked for.
async fn commit(
    engine: &Engine,
    job: &Job,
    mut batch: Batch,
    cursor: Option<&(DateTime<Utc>, String)>,
) -> Result<bool, Stopped> {
    batch.page.checkpoint = cursor.map(|(at, id)| json!({"at": at, "id": id}));
    let mut tx = engine.pool.begin().await?;
    let written = hub_storage::sync::write_page(
        &mut tx,
        job,
        &engine.owner,
        engine.lease.as_secs_f64(),
        &batch.page,
    )
    .await?;
    let cancel = match written {
        Ok(cancel) => cancel,
        Err(hub_storage::sync::LeaseLost) => return Err(Stopped::LeaseLost),
    };
    store::exported(&mut tx, job, &batch.pushed).await?;
    let staged = engine.outbox.stage(&mut tx, &batch.events).await?;
    tx.commit().await?;
    staged.publish();
    metrics::counter!("hub_sync_exported_total")
        .increment(u64::try_from(batch.pushed.len()).unwrap_or(0));
    Ok(cancel)
}

fn record_event(
    plan: &Plan,
    job: &Job,
    kind: &str,
    row: &Pending,
    external_id: &str,
    data: &Value,
    change: &str,
) -> Envelope {
    let data = json!({
        "record_id": row.id, "external_id": external_id, "local_key": row.local_key,
        "entity": plan.spec.entity, "change": change, "record": data,
        "job_id": job.id, "integration_id": job.integration_id,
        "entity_type": job.entity_type, "job_type": job.job_type.as_str(),
    });
    Envelope::new(
        crate::NAME,
        EventType::parse(kind).unwrap_or_else(|_| EventType::parse("sync.event").expect("static")),
        Some(TenantId(job.tenant_id)),
        data,
    )
}
