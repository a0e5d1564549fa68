//! Running one IMPORT job: the file uploaded with it (`sync_uploads`) is
//! read into records (JSON, CSV, or any format through the job's
//! transformation template, `hub_transform::records`), then each page of
//! [`PAGE`] records goes through the same machinery as a pull's page: the
//! manifest's id and timestamp paths, the entity's record schema (invalid
//! records are item errors), the entity's mapping, `decide` against the
//! held copies, one transaction with the job's progress and the
//! `integration.<entity>.updated` events. The checkpoint is the offset in
//! the file, so a resumed job goes on from its last committed page.
//!
//! An import whose invalid records exceed its share (`max_error_share`,
//! [`MAX_ERROR_SHARE`] by default) is rolled back as a whole, with an
//! event per record put back, and fails.

use crate::pull::{self, Stopped, build_page, commit_page, item_error};
use crate::worker::Engine;
use hub_connectors::sync::PageRead;
use hub_domain::{Envelope, TenantId};
use hub_platform::transforms::Reference;
use hub_storage::sync::Job;
use hub_storage::sync_import::{self as imports, Restored};
use hub_transform::codec::Format;
use hub_transform::error::Limits;
use serde_json::{Value, json};
use std::collections::HashMap;
use tokio_util::sync::CancellationToken as Stop;

pub use crate::pull::MAX_ERROR_SHARE;

/// Records per page (and per transaction).
pub const PAGE: usize = 500;

/// Runs IMPORT job `job` to its end.
pub(crate) async fn run(engine: &Engine, job: &Job, stop: &Stop) -> Result<(), Stopped> {
    let plan = pull::plan(engine, job).await?;
    let tenant = TenantId(job.tenant_id);
    let upload = imports::upload(&engine.pool, tenant, job.id)
        .await?
        .ok_or_else(|| Stopped::Failed("the job's uploaded file is missing".into()))?;
    let template = match upload.transform_template.as_ref().and_then(Reference::of) {
        None => None,
        Some(Err(e)) => return Err(Stopped::Failed(format!("transform_template: {e}"))),
        Some(Ok(r)) => Some(
            engine
                .templates
                .get(tenant, r)
                .await
                .map_err(|e| Stopped::Failed(format!("transform_template: {e}")))?,
        ),
    };
    let format: Format = upload
        .format
        .parse()
        .map_err(|e: hub_transform::error::TransformError| Stopped::Failed(e.message))?;
    let records = hub_transform::records::read(
        format,
        &upload.content,
        template.as_ref().map(|t| &t.compiled),
        Limits::default(),
    )
    .map_err(|e| Stopped::Failed(format!("the file cannot be read: {e}")))?;
    drop(upload.content);
    let total = records.len();
    // A record whose id comes again later in the file is left for the later
    // one (one version per record and page, the last one wins).
    let mut last: HashMap<String, usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        if let Some(id) = plan.spec.id_of(r) {
            last.insert(id, i);
        }
    }
    let share = upload.max_error_share;
    let mut offset = match &job.checkpoint {
        Some(c) if job.runs > 1 => c
            .get("offset")
            .and_then(Value::as_u64)
            .and_then(|o| usize::try_from(o).ok())
            .unwrap_or(0),
        _ => 0,
    };
    if job.runs > 1 && job.current_page > 0 && job.checkpoint.is_none() {
        offset = total;
    }
    let mut page_no = job.current_page;
    let mut errors = job.error_count;
    while offset < total {
        if stop.is_cancelled() {
            return Err(Stopped::Shutdown);
        }
        let end = (offset + PAGE).min(total);
        page_no += 1;
        let mut kept = Vec::with_capacity(end - offset);
        let mut duplicates = Vec::new();
        for (i, r) in records[offset..end].iter().enumerate() {
            let at = offset + i;
            match plan.spec.id_of(r).and_then(|id| last.get(&id).copied()) {
                Some(later) if later != at => duplicates.push(item_error(
                    format!("#{}", at + 1),
                    "duplicate_id",
                    format!(
                        "record {} has the id of record {} later in the file, which is imported instead",
                        at + 1,
                        later + 1
                    ),
                    None,
                )),
                _ => kept.push(r.clone()),
            }
        }
        let next = (end < total).then(|| json!({"offset": end}));
        let read = PageRead {
            records: kept,
            next: next.clone(),
            total: i64::try_from(total).ok(),
        };
        let (mapped, mut page) = build_page(&plan, false, read, page_no, &next);
        let dup = i32::try_from(duplicates.len()).unwrap_or(i32::MAX);
        page.progress.processed += dup;
        page.progress.errors += dup;
        page.items.extend(duplicates);
        errors += page.progress.errors;
        if commit_page(engine, &plan, job, (mapped, page)).await? {
            return Err(Stopped::Cancelled);
        }
        offset = end;
        // Judged on the whole file: once the errors are over the share of
        // it, the import cannot pass.
        #[allow(clippy::cast_precision_loss)]
        if f64::from(errors) > share * total as f64 {
            let restored = roll_back(engine, job, &plan).await?;
            return Err(Stopped::Failed(format!(
                "{errors} of the file's {total} records are invalid (over the job's {} %): everything the import wrote was rolled back ({restored} records put back)",
                share * 100.0
            )));
        }
    }
    Ok(())
}

/// Rolls back what `job` wrote, with an event per record put back and
/// `sync.rolled_back`; returns how many.
async fn roll_back(engine: &Engine, job: &Job, plan: &pull::Plan) -> Result<usize, Stopped> {
    let mut tx = engine.pool.begin().await?;
    // Its own writes only: a record a webhook changed meanwhile stays.
    let restored = match imports::rollback(&mut tx, job, true).await? {
        Ok(r) => r,
        Err(_) => return Ok(0),
    };
    let events = rollback_events(job, plan, &restored);
    let staged = engine.outbox.stage(&mut tx, &events).await?;
    tx.commit().await?;
    staged.publish();
    Ok(restored.len())
}

/// `integration.<entity>.updated` for each record restored (`.deleted` for
/// each one removed) and `sync.rolled_back`.
fn rollback_events(job: &Job, plan: &pull::Plan, restored: &[Restored]) -> Vec<Envelope> {
    let mut events: Vec<Envelope> = restored
        .iter()
        .map(|r| {
            let (kind, change) = match (&r.data, r.deleted) {
                (Some(_), false) => (&plan.updated_event, "restored"),
                _ => (&plan.deleted_event, "removed"),
            };
            pull::record_event(
                plan,
                job,
                kind,
                &r.external_id,
                r.id,
                r.data.as_ref().unwrap_or(&Value::Null),
                change,
            )
        })
        .collect();
    events.push(pull::event(
        "sync.rolled_back",
        job,
        json!({"records": restored.len(), "automatic": true}),
    ));
    events
}
