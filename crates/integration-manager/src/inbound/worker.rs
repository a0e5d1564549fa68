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
//! polls as a safety net; it also folds the endpoint counter deltas and, once
//! a minute (and at start), deletes received events older than
//! `WEBHOOK_RETENTION_DAYS` whose processing is over.

use hub_domain::inbound::{Decision, HandlerType, Route, parse_body};
use hub_domain::{Envelope, EventType, TenantId};
use hub_platform::server::Context;
use hub_storage::inbound_events::{self, Outcome};
use serde_json::{Value, json};
use sqlx::postgres::PgListener;
use std::time::Duration;
use uuid::Uuid;

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
pub async fn run(ctx: Context) {
    let timeout = Duration::from_secs(u64::from(ctx.config.webhook_timeout_seconds));
    // The lease outlives the processing deadline with a margin, so a live
    // worker's events are never claimed twice; a dead worker's are claimed
    // again once it expires.
    let lease = timeout + timeout.max(Duration::from_secs(5));
    let policy = Policy::of(&ctx.config);
    let mut listener: Option<PgListener> = None;
    let mut last_fold = tokio::time::Instant::now();
    let mut last_prune: Option<tokio::time::Instant> = None;
    let mut failures = 0u32;
    loop {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        let round = tokio::time::timeout(timeout, process_batch(&ctx, lease, &policy)).await;
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

/// Deletes received events past their retention, batch after batch.
async fn prune(ctx: &Context) {
    let days = ctx.config.webhook_retention_days;
    let go_on = || !ctx.shutdown.is_cancelled();
    if let Err(e) = inbound_events::prune(&ctx.pool, days, PRUNE_BATCH, go_on).await {
        tracing::warn!(error = %e, "pruning received webhook events failed");
    }
}

async fn listen(pool: &sqlx::PgPool) -> Option<PgListener> {
    let mut l = PgListener::connect_with(pool).await.ok()?;
    l.listen(inbound_events::CHANNEL).await.ok()?;
    Some(l)
}

/// How failed processing attempts are retried.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Delay before attempt n+1 (the last one repeats).
    pub intervals: Vec<Duration>,
    /// Attempts before an event is FAILED.
    pub max_attempts: i32,
}

impl Policy {
    /// From the service configuration.
    pub fn of(config: &hub_platform::Config) -> Self {
        Self {
            intervals: config.inbound_retry_intervals(),
            max_attempts: i32::try_from(config.webhook_max_retries.max(1)).unwrap_or(i32::MAX),
        }
    }
}

/// What one processing attempt needs: the received event and its endpoint.
pub struct Input<'a> {
    /// The received event's id.
    pub id: Uuid,
    /// Owner.
    pub tenant_id: Uuid,
    /// Endpoint.
    pub endpoint_id: Uuid,
    /// Endpoint path.
    pub endpoint_path: &'a str,
    /// Endpoint's integration.
    pub integration_id: Option<Uuid>,
    /// The provider's event id.
    pub provider_event_id: Option<&'a str>,
    /// The provider's event type.
    pub event_type: Option<&'a str>,
    /// Endpoint handler type.
    pub handler_type: &'a str,
    /// Endpoint filter (JSON array of types).
    pub event_types: &'a Value,
    /// Endpoint mapping.
    pub transform_template: Option<&'a Value>,
    /// Endpoint target.
    pub target_service: Option<&'a str>,
    /// The parsed body (None: neither JSON nor a form).
    pub payload: Option<&'a Value>,
    /// Attempts made, this one included.
    pub attempts: i32,
}

/// One processing attempt (pure): its outcome and the typed event to publish
/// with it, if any.
pub fn attempt(input: &Input<'_>, policy: &Policy) -> (Outcome, Option<Envelope>) {
    let filter: Vec<String> = input
        .event_types
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let route = Route {
        handler: HandlerType::parse(input.handler_type).unwrap_or(HandlerType::Custom),
        event_types: &filter,
        transform: input.transform_template.filter(|t| !t.is_null()),
        target_service: input.target_service,
    };
    let outcome = match hub_domain::inbound::decide(&route, input.event_type, input.payload) {
        Decision::Skip => (
            Outcome::Done {
                status: "SKIPPED",
                published: None,
            },
            None,
        ),
        Decision::Publish { event_type, data } => {
            let env = typed_event(input, event_type, data);
            (
                Outcome::Done {
                    status: "PROCESSED",
                    published: Some(env.id.0),
                },
                Some(env),
            )
        }
        Decision::Fail(error) if input.attempts >= policy.max_attempts => {
            (Outcome::Failed { error }, None)
        }
        Decision::Fail(error) => {
            let i = usize::try_from(input.attempts - 1)
                .unwrap_or(0)
                .min(policy.intervals.len().saturating_sub(1));
            let delay = policy
                .intervals
                .get(i)
                .copied()
                .unwrap_or(Duration::from_secs(60));
            (
                Outcome::Retry {
                    error,
                    retry_in_ms: i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
                },
                None,
            )
        }
    };
    match &outcome.0 {
        Outcome::Done { status, .. } => {
            metrics::counter!("hub_inbound_processed_total", "status" => *status).increment(1)
        }
        Outcome::Retry { .. } => metrics::counter!("hub_inbound_retried_total").increment(1),
        Outcome::Failed { .. } => metrics::counter!("hub_inbound_failed_total").increment(1),
    }
    outcome
}

/// Claims and processes one batch; returns how many events it held.
async fn process_batch(
    ctx: &Context,
    lease: Duration,
    policy: &Policy,
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
        let input = Input {
            id: c.id,
            tenant_id: c.tenant_id,
            endpoint_id: c.endpoint_id,
            endpoint_path: &c.endpoint_path,
            integration_id: c.integration_id,
            provider_event_id: c.provider_event_id.as_deref(),
            event_type: c.event_type.as_deref(),
            handler_type: &c.handler_type,
            event_types: &c.event_types,
            transform_template: c.transform_template.as_ref(),
            target_service: c.target_service.as_deref(),
            payload: payload.as_ref(),
            attempts: c.attempts,
        };
        let (outcome, typed) = attempt(&input, policy);
        outbox.extend(typed);
        results.push((c, outcome));
    }
    let mut tx = ctx.pool.begin().await?;
    inbound_events::complete(&mut tx, &results).await?;
    hub_storage::outbox::enqueue(&mut tx, &outbox).await?;
    tx.commit().await?;
    Ok(n)
}

fn typed_event(c: &Input<'_>, event_type: &str, mut data: Value) -> Envelope {
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
