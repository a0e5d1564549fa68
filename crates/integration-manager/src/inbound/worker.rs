//! Asynchronous processing of received events: a Postgres work queue.
//!
//! The worker claims due events with `FOR UPDATE SKIP LOCKED` and a lease
//! longer than `WEBHOOK_TIMEOUT_SECONDS`, decides each (filter by
//! `event_types`, apply `transform_template`, check the handler's fields),
//! and commits the outcome with the typed event it publishes (outbox) in one
//! transaction. A failure is retried after `HUB_INBOUND_RETRY_INTERVALS_MS`
//! and is FAILED after `WEBHOOK_MAX_RETRIES` attempts, until replayed. A
//! worker that dies mid-batch leaves leases that expire, and the events are
//! claimed again: a manager killed after answering 200 still processes them
//! after a restart (or on another replica). It is woken by LISTEN/NOTIFY and
//! polls as a safety net; it also folds the endpoint counter deltas.

use hub_domain::inbound::{Decision, HandlerType, Route, parse_body};
use hub_domain::{Envelope, EventType, TenantId};
use hub_platform::server::Context;
use hub_storage::inbound_events::{self, Claimed, Outcome};
use serde_json::{Value, json};
use sqlx::postgres::PgListener;
use std::time::Duration;

/// Events claimed at once.
const BATCH: i64 = 200;
/// Poll interval without notifications (retries become due by time).
const POLL: Duration = Duration::from_millis(500);
/// How often counter deltas are folded into the endpoints.
const FOLD_EVERY: Duration = Duration::from_secs(2);

/// Runs the worker until shutdown (the batch in hand is finished first).
pub async fn run(ctx: Context) {
    let timeout = Duration::from_secs(u64::from(ctx.config.webhook_timeout_seconds));
    // The lease outlives the processing deadline with a margin, so a live
    // worker's events are never claimed twice; a dead worker's are claimed
    // again once it expires.
    let lease = timeout + timeout.max(Duration::from_secs(5));
    let intervals = ctx.config.inbound_retry_intervals();
    let max_attempts = i32::try_from(ctx.config.webhook_max_retries.max(1)).unwrap_or(i32::MAX);
    let mut listener: Option<PgListener> = None;
    let mut last_fold = tokio::time::Instant::now();
    let mut failures = 0u32;
    loop {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        let round = tokio::time::timeout(
            timeout,
            process_batch(&ctx, lease, &intervals, max_attempts),
        )
        .await;
        let busy = match round {
            Ok(Ok(n)) => {
                failures = 0;
                n as i64 == BATCH
            }
            Ok(Err(e)) => {
                failures += 1;
                let wait = hub_domain::redelivery::delay(
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
        if busy {
            continue;
        }
        if listener.is_none() {
            listener = listen(&ctx.pool).await;
        }
        let wait = tokio::time::sleep(POLL);
        match listener.as_mut() {
            Some(l) => tokio::select! {
                r = l.recv() => if r.is_err() { listener = None; },
                _ = wait => {}
                _ = ctx.shutdown.cancelled() => break,
            },
            None => tokio::select! {
                _ = wait => {}
                _ = ctx.shutdown.cancelled() => break,
            },
        }
    }
    tracing::info!("inbound worker stopped");
}

async fn listen(pool: &sqlx::PgPool) -> Option<PgListener> {
    let mut l = PgListener::connect_with(pool).await.ok()?;
    l.listen(inbound_events::CHANNEL).await.ok()?;
    Some(l)
}

/// Claims and processes one batch; returns how many events it held.
async fn process_batch(
    ctx: &Context,
    lease: Duration,
    intervals: &[Duration],
    max_attempts: i32,
) -> Result<usize, hub_storage::StorageError> {
    let claimed = inbound_events::claim(&ctx.pool, BATCH, lease.as_secs_f64()).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let n = claimed.len();
    let mut outbox = Vec::new();
    let mut results = Vec::with_capacity(n);
    for c in claimed {
        let outcome = match decide(&c) {
            Decision::Skip => Outcome::Done {
                status: "SKIPPED",
                published: None,
            },
            Decision::Publish { event_type, data } => {
                let env = typed_event(&c, event_type, data);
                let id = env.id.0;
                outbox.push(env);
                Outcome::Done {
                    status: "PROCESSED",
                    published: Some(id),
                }
            }
            Decision::Fail(error) if c.attempts >= max_attempts => Outcome::Failed { error },
            Decision::Fail(error) => {
                let i = usize::try_from(c.attempts - 1)
                    .unwrap_or(0)
                    .min(intervals.len().saturating_sub(1));
                let delay = intervals.get(i).copied().unwrap_or(Duration::from_secs(60));
                Outcome::Retry {
                    error,
                    retry_in_ms: i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
                }
            }
        };
        match &outcome {
            Outcome::Done { status, .. } => {
                metrics::counter!("hub_inbound_processed_total", "status" => *status).increment(1)
            }
            Outcome::Retry { .. } => metrics::counter!("hub_inbound_retried_total").increment(1),
            Outcome::Failed { .. } => metrics::counter!("hub_inbound_failed_total").increment(1),
        }
        results.push((c, outcome));
    }
    let mut tx = ctx.pool.begin().await?;
    inbound_events::complete(&mut tx, &results).await?;
    hub_storage::outbox::enqueue(&mut tx, &outbox).await?;
    tx.commit().await?;
    Ok(n)
}

fn decide(c: &Claimed) -> Decision {
    let headers: Vec<(String, String)> = match &c.headers {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect(),
        _ => Vec::new(),
    };
    let payload = parse_body(&headers, &c.body);
    let filter: Vec<String> = c
        .event_types
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let route = Route {
        handler: HandlerType::parse(&c.handler_type).unwrap_or(HandlerType::Custom),
        event_types: &filter,
        transform: c.transform_template.as_ref().filter(|t| !t.is_null()),
        target_service: c.target_service.as_deref(),
    };
    hub_domain::inbound::decide(&route, c.event_type.as_deref(), payload.as_ref())
}

fn typed_event(c: &Claimed, event_type: &str, mut data: Value) -> Envelope {
    if let Value::Object(m) = &mut data {
        m.insert("inbound_event_id".into(), json!(c.id));
        m.insert("endpoint_id".into(), json!(c.endpoint_id));
        m.insert("endpoint_path".into(), json!(c.endpoint_path));
        m.insert("integration_id".into(), json!(c.integration_id));
        m.insert("provider_event_id".into(), json!(c.provider_event_id));
    }
    Envelope::new(
        crate::NAME,
        EventType::parse(event_type).expect("handler event types are valid"),
        Some(TenantId(c.tenant_id)),
        data,
    )
    .with_correlation(Some(c.id.to_string()))
}
