//! Asynchronous processing of received events: a Postgres work queue.
//!
//! The worker claims due events with `FOR UPDATE SKIP LOCKED` and a lease
//! longer than `WEBHOOK_TIMEOUT_SECONDS`, decides each (filter by
//! `event_types`, apply `transform_template`, check the handler's fields),
//! and commits the outcome with the typed event it publishes (outbox) in one
//! transaction (the decision is `hub_domain::inbound::processing`'s, as for
//! the public route's first attempt). A failure is retried after
//! `HUB_INBOUND_RETRY_INTERVALS_MS` and is FAILED after `WEBHOOK_MAX_RETRIES`
//! attempts, until replayed. A
//! worker that dies mid-batch leaves leases that expire, and the events are
//! claimed again: a manager killed after answering 200 still processes them
//! after a restart (or on another replica). It is woken by LISTEN/NOTIFY and
//! polls as a safety net; it also folds the endpoint counter deltas and, once
//! a minute (and at start), deletes received events older than
//! `WEBHOOK_RETENTION_DAYS` whose processing is over.

use hub_domain::TenantId;
use hub_domain::inbound::parse_body;
use hub_domain::inbound::processing::{self, Input, Policy};
use hub_platform::server::Context;
use hub_platform::transforms::Templates;
use hub_storage::inbound_events;
use hub_storage::wake::Wakeup;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Events claimed at once.
const BATCH: i64 = 200;
/// Poll interval without notifications (retries become due by time).
const POLL: Duration = Duration::from_millis(500);
/// How often counter deltas are folded into the endpoints.
const FOLD_EVERY: Duration = Duration::from_secs(2);
/// How often old received events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Rows deleted per statement when pruning (short transactions).
const PRUNE_BATCH: i64 = 5_000;

/// Runs the worker until shutdown (the batch in hand is finished first).
pub async fn run(ctx: Context, templates: Arc<Templates>) {
    let timeout = Duration::from_secs(u64::from(ctx.config.webhook_timeout_seconds));
    // The lease outlives the processing deadline with a margin, so a live
    // worker's events are never claimed twice; a dead worker's are claimed
    // again once it expires.
    let lease = timeout + timeout.max(Duration::from_secs(5));
    let policy = super::policy(&ctx.config);
    let mut wakeup = Wakeup::new(ctx.pool.clone(), inbound_events::CHANNEL);
    let mut last_fold = tokio::time::Instant::now();
    let mut last_prune: Option<tokio::time::Instant> = None;
    let mut failures = 0u32;
    loop {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        let round =
            tokio::time::timeout(timeout, process_batch(&ctx, lease, &policy, &templates)).await;
        let busy = match round {
            Ok(Ok(n)) => {
                failures = 0;
                n as i64 == BATCH
            }
            Ok(Err(e)) => {
                failures += 1;
                let wait = hub_bus::backoff::delay(
                    failures,
                    Duration::from_millis(200),
                    Duration::from_secs(10),
                );
                tracing::error!(error = %e, wait_ms = wait.as_millis() as u64, "inbound processing failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = ctx.shutdown.cancelled() => break,
                }
                continue;
            }
            Err(_) => {
                tracing::error!(
                    timeout_s = timeout.as_secs(),
                    "inbound processing exceeded WEBHOOK_TIMEOUT_SECONDS; leases will expire and the events be retried"
                );
                false
            }
        };
        if last_fold.elapsed() > FOLD_EVERY {
            last_fold = tokio::time::Instant::now();
            if let Err(e) = hub_storage::webhook_endpoints::fold_counters(&ctx.pool, 10_000).await {
                tracing::warn!(error = %e, "folding endpoint counters failed");
            }
        }
        if last_prune.is_none_or(|t| t.elapsed() > PRUNE_EVERY) {
            last_prune = Some(tokio::time::Instant::now());
            prune(&ctx).await;
        }
        if busy {
            continue;
        }
        tokio::select! {
            _ = wakeup.wait(POLL) => {}
            _ = ctx.shutdown.cancelled() => break,
        }
    }
    tracing::info!("inbound worker stopped");
}

/// Deletes received events past their retention, batch after batch.
async fn prune(ctx: &Context) {
    let days = ctx.config.webhook_retention_days;
    let go_on = || !ctx.shutdown.is_cancelled();
    if let Err(e) = inbound_events::prune(&ctx.pool, days, PRUNE_BATCH, go_on).await {
        tracing::warn!(error = %e, "pruning received webhook events failed");
    }
}

/// Claims and processes one batch; returns how many events it held.
async fn process_batch(
    ctx: &Context,
    lease: Duration,
    policy: &Policy,
    templates: &Templates,
) -> Result<usize, hub_storage::StorageError> {
    let claimed = inbound_events::claim(&ctx.pool, BATCH, lease.as_secs_f64()).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let n = claimed.len();
    let mut outbox = Vec::new();
    let mut results = Vec::with_capacity(n);
    for c in claimed {
        let headers: Vec<(String, String)> = match &c.headers {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect(),
            _ => Vec::new(),
        };
        let payload = parse_body(&headers, &c.body);
        let tenant = TenantId(c.tenant_id);
        let template = c.transform_template.as_ref();
        let mapped = super::mapped(templates, tenant, template, payload.as_ref(), &c.body).await;
        let input = Input {
            source: crate::NAME,
            id: c.id,
            tenant_id: tenant,
            endpoint_id: c.endpoint_id,
            endpoint_path: &c.endpoint_path,
            integration_id: c.integration_id,
            provider_event_id: c.provider_event_id.as_deref(),
            event_type: c.event_type.as_deref(),
            handler_type: &c.handler_type,
            event_types: &c.event_types,
            transform_template: c.transform_template.as_ref(),
            mapped: mapped.as_ref(),
            target_service: c.target_service.as_deref(),
            payload: payload.as_ref(),
            attempts: c.attempts,
        };
        let (outcome, typed) = processing::attempt(&input, policy);
        super::count(&outcome);
        outbox.extend(typed);
        results.push((c, outcome));
    }
    let mut tx = ctx.pool.begin().await?;
    inbound_events::complete(&mut tx, &results).await?;
    hub_storage::outbox::enqueue(&mut tx, &outbox).await?;
    tx.commit().await?;
    Ok(n)
}
