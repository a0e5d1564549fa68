//! The outbound delivery queue (`webhook_deliveries`, `webhook_delivery_attempts`)
//! and the per-subscription circuit breakers (`circuit_breaker_state`).
//!
//! Deliveries are a Postgres work queue: due rows are claimed in batches with
//! `FOR UPDATE SKIP LOCKED` and a lease; a dispatcher that dies leaves leases
//! that expire and are claimed again. Every write is batched with `UNNEST`.
//!
//! Statuses are bound from `hub_domain::status`, except in the claims
//! ([`claim`], [`claim_probes`]), [`backlog`] and [`backlog_of`]: their status conditions
//! are literals so that the planner matches them to the partial index of due
//! deliveries (`webhook_deliveries_due`, `WHERE status IN ('PENDING',
//! 'RETRYING')`) and plans the claim from the literal values; a parameter
//! would leave a generic plan without either.

use crate::{Bind, Result, Tx};
use chrono::{DateTime, Utc};
use hub_domain::TenantId;
use hub_domain::status::{DeliveryStatus, SubscriptionStatus};
use hub_domain::webhook::BreakerState;
use sqlx::PgPool;
use uuid::Uuid;

/// The notification channel that signals unleased due deliveries.
pub const CHANNEL: &str = "hub_deliveries";

/// A delivery to create: one per (subscription, event).
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Id (time-ordered).
    pub id: Uuid,
    /// Subscription.
    pub subscription_id: Uuid,
    /// Owner.
    pub tenant_id: Uuid,
    /// Event type.
    pub event_type: String,
    /// Event id.
    pub event_id: Uuid,
    /// The event as delivered (its CloudEvents envelope).
    pub payload: serde_json::Value,
    /// The subscription's URL at fan-out time.
    pub request_url: String,
}

/// Stores events in `events` (each id once) and returns the ids that were new:
/// only those fan out, so an event that arrives twice is delivered once.
pub async fn insert_events(tx: &mut Tx<'_>, events: &[hub_domain::Envelope]) -> Result<Vec<Uuid>> {
    let events = crate::events::of_tenants(events);
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let q = sqlx::query_scalar(
        "INSERT INTO events (id, tenant_id, event_type, source, correlation_id, occurred_at, data)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::jsonb[])
         ON CONFLICT (id) DO NOTHING RETURNING id",
    );
    Ok(crate::events::bind_columns(q, &events)
        .fetch_all(&mut **tx)
        .await?)
}

/// Creates deliveries, due now, in one round trip; a (subscription, event)
/// pair that already has one is skipped. Returns the ids created.
///
/// With `lease_secs` the rows are created leased to the caller, who sends
/// them at once (no claimer is woken); without, claimers are notified on
/// commit.
pub async fn insert(
    tx: &mut Tx<'_>,
    ds: &[NewDelivery],
    lease_secs: Option<u32>,
) -> Result<Vec<Uuid>> {
    if ds.is_empty() {
        return Ok(Vec::new());
    }
    use crate::column;
    let rows: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO webhook_deliveries (id, subscription_id, tenant_id, event_type, event_id, payload,
             request_url, status, next_retry_at, attempt_number, lease_until)
         SELECT u.*, $9, NOW(), 0, NOW() + make_interval(secs => $8::float8)
           FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[], $6::jsonb[], $7::text[]) u
         ON CONFLICT ON CONSTRAINT webhook_deliveries_subscription_event DO NOTHING
         RETURNING id",
    )
    .bind(column(ds, |d| d.id))
    .bind(column(ds, |d| d.subscription_id))
    .bind(column(ds, |d| d.tenant_id))
    .bind(column(ds, |d| d.event_type.as_str()))
    .bind(column(ds, |d| d.event_id))
    .bind(column(ds, |d| &d.payload))
    .bind(column(ds, |d| d.request_url.as_str()))
    .bind(lease_secs.map(f64::from))
    .bind(DeliveryStatus::Pending.as_str())
    .fetch_all(&mut **tx)
    .await?;
    if lease_secs.is_none() && !rows.is_empty() {
        crate::notify(&mut **tx, CHANNEL).await?;
    }
    Ok(rows)
}

/// A delivery claimed for sending, with what sending needs of its
/// subscription and breaker.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    /// Delivery id.
    #[sqlx(rename = "d_id")]
    pub id: Uuid,
    /// Subscription.
    pub subscription_id: Uuid,
    /// Owner.
    #[sqlx(rename = "d_tenant_id")]
    pub tenant_id: Uuid,
    /// Event type.
    #[sqlx(rename = "d_event_type")]
    pub event_type: String,
    /// Event id (the `webhook-id`).
    pub event_id: Uuid,
    /// The event envelope.
    pub payload: serde_json::Value,
    /// Attempts made so far.
    pub attempt_number: i32,
    /// Attempts made before the last replay (retries count from there).
    pub attempt_base: i32,
    /// When the delivery was created.
    #[sqlx(rename = "d_created_at")]
    pub created_at: DateTime<Utc>,
    /// The subscription's settings.
    #[sqlx(flatten, try_from = "crate::subscriptions::Subscription")]
    pub subscription: std::sync::Arc<crate::subscriptions::Subscription>,
    /// Whether this is the half-open probe of an open breaker.
    pub probe: bool,
}

/// The delivery's columns of a claim (the subscription's come from
/// [`crate::subscriptions::SELECT_LITE`] as `s`, under their own names).
const CLAIM_RETURNING: &str =
    "d.id AS d_id, d.subscription_id, d.tenant_id AS d_tenant_id, d.event_type AS d_event_type,
    d.event_id, d.payload, COALESCE(d.attempt_number, 0) AS attempt_number, d.attempt_base,
    COALESCE(d.created_at, 'epoch') AS d_created_at";

/// Claims up to `limit` due deliveries of live subscriptions whose breaker
/// is closed, leasing them for `lease_secs`.
pub async fn claim(pool: &PgPool, limit: u32, lease_secs: u32) -> Result<Vec<Claimed>> {
    let sql = format!(
        "WITH c AS (
            SELECT d.id FROM webhook_deliveries d
              JOIN webhook_subscriptions s ON s.id = d.subscription_id AND s.is_enabled AND s.status = 'ACTIVE'
             WHERE d.status IN ('PENDING', 'RETRYING') AND d.next_retry_at <= NOW()
               AND (d.lease_until IS NULL OR d.lease_until < NOW())
               AND NOT EXISTS (SELECT 1 FROM circuit_breaker_state cb
                                WHERE cb.subscription_id = d.subscription_id AND cb.state <> 'CLOSED')
             ORDER BY d.next_retry_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED),
         d AS (
            UPDATE webhook_deliveries d SET lease_until = NOW() + make_interval(secs => $2)
              FROM c WHERE d.id = c.id RETURNING d.*)
         SELECT s.*, {CLAIM_RETURNING}, false AS probe FROM d JOIN ({sub}) s ON s.id = d.subscription_id",
        sub = crate::subscriptions::SELECT_LITE,
    );
    let mut tx = pool.begin().await?;
    crate::claim_in_index_order(&mut tx).await?;
    let claimed = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(i64::from(limit))
        .bind(f64::from(lease_secs))
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(claimed)
}

/// For each breaker that is open past its timeout (or half-open with no probe
/// in flight) and has due work: moves it to HALF_OPEN, marks a probe in
/// flight and claims one due delivery as the probe. Returns the probes and the
/// subscriptions whose breaker just went half-open.
pub async fn claim_probes(pool: &PgPool, lease_secs: u32) -> Result<(Vec<Claimed>, Vec<Uuid>)> {
    let mut tx = pool.begin().await?;
    let opened: Vec<(Uuid, String)> = sqlx::query_as(
        "WITH o AS (
            SELECT cb.id, cb.state AS old_state FROM circuit_breaker_state cb
              JOIN webhook_subscriptions s ON s.id = cb.subscription_id AND s.is_enabled AND s.status = 'ACTIVE'
             WHERE cb.subscription_id IS NOT NULL
               AND ((cb.state = 'OPEN' AND cb.opened_at + make_interval(secs => cb.timeout_seconds) <= NOW())
                 OR (cb.state = 'HALF_OPEN' AND (cb.probe_until IS NULL OR cb.probe_until < NOW())))
               AND EXISTS (SELECT 1 FROM webhook_deliveries d
                            WHERE d.subscription_id = cb.subscription_id AND d.status IN ('PENDING', 'RETRYING')
                              AND d.next_retry_at <= NOW() AND (d.lease_until IS NULL OR d.lease_until < NOW()))
             FOR UPDATE OF cb SKIP LOCKED)
         UPDATE circuit_breaker_state cb SET
            state = 'HALF_OPEN',
            half_open_at = CASE WHEN o.old_state = 'OPEN' THEN NOW() ELSE cb.half_open_at END,
            success_count = CASE WHEN o.old_state = 'OPEN' THEN 0 ELSE cb.success_count END,
            probe_until = NOW() + make_interval(secs => $1), updated_at = NOW()
           FROM o WHERE cb.id = o.id
         RETURNING cb.subscription_id, o.old_state",
    )
    .bind(f64::from(lease_secs))
    .fetch_all(&mut *tx)
    .await?;
    if opened.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let subs: Vec<Uuid> = opened.iter().map(|(sub, _)| *sub).collect();
    let half_opened: Vec<Uuid> = opened
        .iter()
        .filter(|(_, old)| old == BreakerState::Open.as_str())
        .map(|(sub, _)| *sub)
        .collect();
    let sql = format!(
        "WITH c AS (
            SELECT DISTINCT ON (d.subscription_id) d.id FROM webhook_deliveries d
             WHERE d.subscription_id = ANY($1) AND d.status IN ('PENDING', 'RETRYING') AND d.next_retry_at <= NOW()
               AND (d.lease_until IS NULL OR d.lease_until < NOW())
             ORDER BY d.subscription_id, d.next_retry_at),
         d AS (
            UPDATE webhook_deliveries d SET lease_until = NOW() + make_interval(secs => $2)
              FROM c WHERE d.id = c.id RETURNING d.*)
         SELECT s.*, {CLAIM_RETURNING}, true AS probe FROM d JOIN ({sub}) s ON s.id = d.subscription_id",
        sub = crate::subscriptions::SELECT_LITE,
    );
    let probes = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&subs)
        .bind(f64::from(lease_secs))
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((probes, half_opened))
}

/// Gives claimed deliveries back unattempted (shutdown, breaker opened).
pub async fn release(pool: &PgPool, ids: &[Uuid]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH r AS (UPDATE webhook_deliveries SET lease_until = NULL WHERE id = ANY($1) RETURNING 1)
         SELECT pg_notify($2, '') FROM (SELECT 1 FROM r LIMIT 1) x",
    )
    .bind(ids)
    .bind(CHANNEL)
    .execute(pool)
    .await?;
    sqlx::query(
        "UPDATE circuit_breaker_state SET probe_until = NULL
          WHERE subscription_id IN (SELECT subscription_id FROM webhook_deliveries WHERE id = ANY($1))",
    )
    .bind(ids)
    .execute(pool)
    .await?;
    Ok(())
}

/// The result of one attempt: as recorded, and as the API shows it
/// (OpenAPI `AttemptBody`, without its ids and the delivery's outcome).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
#[schema(as = AttemptBody, description = "One attempt as shown.")]
pub struct Attempt {
    /// Attempt id.
    #[serde(skip)]
    pub id: Uuid,
    /// Delivery.
    #[serde(skip)]
    pub delivery_id: Uuid,
    /// Which attempt (1-based).
    pub attempt_number: i32,
    /// DELIVERED, RETRYING or FAILED: the delivery's status afterwards
    /// (not stored with the attempt: `None` when read back).
    #[sqlx(skip)]
    #[serde(skip)]
    pub status: Option<DeliveryStatus>,
    /// When the next attempt is due (RETRYING; not stored with the attempt).
    #[sqlx(skip)]
    #[serde(skip)]
    pub next_retry_at: Option<DateTime<Utc>>,
    /// URL called.
    pub request_url: String,
    /// Request headers (secrets redacted).
    #[schema(value_type = Object)]
    pub request_headers: serde_json::Value,
    /// Response status.
    pub response_status: Option<i32>,
    /// Response headers.
    #[schema(value_type = Object)]
    pub response_headers: Option<serde_json::Value>,
    /// Response body (first 64 KiB).
    pub response_body: Option<String>,
    /// Latency.
    pub response_time_ms: i32,
    /// What went wrong.
    pub error_message: Option<String>,
    /// When.
    #[sqlx(rename = "created_at")]
    #[serde(rename = "created_at")]
    pub at: DateTime<Utc>,
}

/// Counter deltas of one subscription from one batch.
#[derive(Debug, Clone)]
pub struct CounterDelta {
    /// Subscription.
    pub subscription_id: Uuid,
    /// Attempts sent.
    pub sent: i32,
    /// Deliveries that succeeded.
    pub delivered: i32,
    /// Deliveries that failed for good.
    pub failed: i32,
    /// Last attempt.
    pub last_triggered_at: Option<DateTime<Utc>>,
    /// Last success.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Last failed attempt.
    pub last_failure_at: Option<DateTime<Utc>>,
}

/// Records attempts and the resulting delivery states, releasing their
/// leases. An attempt whose delivery was meanwhile recorded by someone else
/// (its lease expired and was taken over) is dropped. Returns the ids of the
/// deliveries that were updated.
pub async fn record(tx: &mut Tx<'_>, attempts: &[Attempt]) -> Result<Vec<Uuid>> {
    if attempts.is_empty() {
        return Ok(Vec::new());
    }
    let outcomes = Outcomes::of(attempts);
    let applied: Vec<Uuid> = outcomes
        .bind(sqlx::query_scalar(
            "UPDATE webhook_deliveries d SET
                attempt_number = u.num, status = u.status, next_retry_at = u.next, lease_until = NULL,
                request_headers = u.req_headers, response_status = u.code, response_headers = u.resp_headers,
                response_body = u.body, response_time_ms = u.ms, error_message = u.err,
                delivered_at = CASE WHEN u.status = $12 THEN u.at ELSE d.delivered_at END,
                updated_at = u.at
               FROM UNNEST($1::uuid[], $2::int[], $3::jsonb[], $4::int[], $5::jsonb[], $6::text[], $7::int[],
                           $8::text[], $9::timestamptz[], $10::text[], $11::timestamptz[])
                    AS u(id, num, req_headers, code, resp_headers, body, ms, err, at, status, next)
              WHERE d.id = u.id AND d.attempt_number = u.num - 1
             RETURNING d.id",
        ))
        .bind(crate::column(attempts, |a| a.status.map(DeliveryStatus::as_str)))
        .bind(crate::column(attempts, |a| a.next_retry_at))
        .bind(DeliveryStatus::Delivered.as_str())
        .fetch_all(&mut **tx)
        .await?;
    outcomes
        .bind(sqlx::query(
            "INSERT INTO webhook_delivery_attempts (delivery_id, attempt_number, request_headers,
                 response_status, response_headers, response_body, response_time_ms, error_message, created_at,
                 id, request_url)
             SELECT u.* FROM UNNEST($1::uuid[], $2::int[], $3::jsonb[], $4::int[], $5::jsonb[], $6::text[],
                                    $7::int[], $8::text[], $9::timestamptz[], $10::uuid[], $11::text[])
                  AS u(delivery_id, num, req_headers, code, resp_headers, body, ms, err, at, id, url)
              WHERE u.delivery_id = ANY($12)",
        ))
        .bind(crate::column(attempts, |a| a.id))
        .bind(crate::column(attempts, |a| a.request_url.as_str()))
        .bind(&applied)
        .execute(&mut **tx)
        .await?;
    Ok(applied)
}

/// What an attempt writes both to its delivery and to its own row, as the
/// arrays `$1` … `$9` of [`record`]'s statements.
struct Outcomes<'a> {
    delivery_ids: Vec<Uuid>,
    numbers: Vec<i32>,
    req_headers: Vec<&'a serde_json::Value>,
    codes: Vec<Option<i32>>,
    resp_headers: Vec<Option<&'a serde_json::Value>>,
    bodies: Vec<Option<&'a str>>,
    times: Vec<i32>,
    errors: Vec<Option<&'a str>>,
    ats: Vec<DateTime<Utc>>,
}

impl<'a> Outcomes<'a> {
    fn of(attempts: &'a [Attempt]) -> Self {
        use crate::column;
        Self {
            delivery_ids: column(attempts, |a| a.delivery_id),
            numbers: column(attempts, |a| a.attempt_number),
            req_headers: column(attempts, |a| &a.request_headers),
            codes: column(attempts, |a| a.response_status),
            resp_headers: column(attempts, |a| a.response_headers.as_ref()),
            bodies: column(attempts, |a| a.response_body.as_deref()),
            times: column(attempts, |a| a.response_time_ms),
            errors: column(attempts, |a| a.error_message.as_deref()),
            ats: column(attempts, |a| a.at),
        }
    }

    /// Binds the arrays as `$1` … `$9`.
    fn bind<'q, Q: Bind<'q>>(&'q self, q: Q) -> Q {
        q.bind(&self.delivery_ids)
            .bind(&self.numbers)
            .bind(&self.req_headers)
            .bind(&self.codes)
            .bind(&self.resp_headers)
            .bind(&self.bodies)
            .bind(&self.times)
            .bind(&self.errors)
            .bind(&self.ats)
    }
}

/// Appends counter deltas (one row per subscription and batch).
pub async fn add_counters(tx: &mut Tx<'_>, deltas: &[CounterDelta]) -> Result<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    use crate::column;
    sqlx::query(
        "INSERT INTO webhook_subscription_counters
             (subscription_id, sent, delivered, failed, last_triggered_at, last_success_at, last_failure_at)
         SELECT * FROM UNNEST($1::uuid[], $2::int[], $3::int[], $4::int[], $5::timestamptz[],
                              $6::timestamptz[], $7::timestamptz[])",
    )
    .bind(column(deltas, |d| d.subscription_id))
    .bind(column(deltas, |d| d.sent))
    .bind(column(deltas, |d| d.delivered))
    .bind(column(deltas, |d| d.failed))
    .bind(column(deltas, |d| d.last_triggered_at))
    .bind(column(deltas, |d| d.last_success_at))
    .bind(column(deltas, |d| d.last_failure_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A change to a subscription's failed-delivery streak from one batch.
#[derive(Debug, Clone)]
pub struct Streak {
    /// Subscription.
    pub subscription_id: Uuid,
    /// A delivery succeeded: the streak restarts before `failed` is added.
    pub reset: bool,
    /// Deliveries that failed for good after the last success.
    pub failed: i32,
}

/// Applies streaks; a subscription whose streak reaches `limit` is disabled
/// (`FAILED`, `is_enabled = false`). Returns `(id, tenant)` of the
/// subscriptions this call disabled.
pub async fn apply_streaks(
    tx: &mut Tx<'_>,
    streaks: &[Streak],
    limit: i32,
    reason: &str,
) -> Result<Vec<(Uuid, Uuid)>> {
    if streaks.is_empty() {
        return Ok(Vec::new());
    }
    use crate::column;
    let rows: Vec<(Uuid, Uuid, bool)> = sqlx::query_as(
        "WITH u AS (SELECT * FROM UNNEST($1::uuid[], $2::bool[], $3::int[]) AS u(id, reset, failed)),
         old AS (
            SELECT s.id, s.is_enabled,
                   (CASE WHEN u.reset THEN 0 ELSE COALESCE(s.consecutive_failures, 0) END) + u.failed AS streak
              FROM webhook_subscriptions s JOIN u ON u.id = s.id ORDER BY s.id FOR UPDATE OF s)
         UPDATE webhook_subscriptions s SET
            consecutive_failures = old.streak,
            status = CASE WHEN old.is_enabled AND old.streak >= $4 THEN $6 ELSE s.status END,
            is_enabled = CASE WHEN old.streak >= $4 THEN false ELSE s.is_enabled END,
            disabled_reason = CASE WHEN old.is_enabled AND old.streak >= $4 THEN $5 ELSE s.disabled_reason END,
            updated_at = CASE WHEN old.is_enabled AND old.streak >= $4 THEN NOW() ELSE s.updated_at END
           FROM old WHERE s.id = old.id
         RETURNING s.id, s.tenant_id, (old.is_enabled AND old.streak >= $4) AS disabled",
    )
    .bind(column(streaks, |s| s.subscription_id))
    .bind(column(streaks, |s| s.reset))
    .bind(column(streaks, |s| s.failed))
    .bind(limit)
    .bind(reason)
    .bind(SubscriptionStatus::Failed.as_str())
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, _, disabled)| *disabled)
        .map(|(id, tenant, _)| (id, tenant))
        .collect())
}

/// A subscription's breaker as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BreakerRow {
    /// Subscription.
    pub subscription_id: Uuid,
    /// CLOSED, OPEN, HALF_OPEN.
    pub state: String,
    /// Consecutive failures (closed).
    pub failure_count: i32,
    /// Consecutive successes (half-open).
    pub success_count: i32,
    /// When it last opened.
    pub opened_at: Option<DateTime<Utc>>,
}

/// Locks and reads the breakers of `subs` that exist (a subscription that
/// never failed has none).
pub async fn breakers_for_update(tx: &mut Tx<'_>, subs: &[Uuid]) -> Result<Vec<BreakerRow>> {
    Ok(sqlx::query_as(
        "SELECT subscription_id, COALESCE(state, $2) AS state, COALESCE(failure_count, 0) AS failure_count,
                COALESCE(success_count, 0) AS success_count, opened_at
           FROM circuit_breaker_state
          WHERE subscription_id = ANY($1) ORDER BY subscription_id FOR UPDATE",
    )
    .bind(subs)
    .bind(BreakerState::Closed.as_str())
    .fetch_all(&mut **tx)
    .await?)
}

/// Writes breakers (creating missing rows); clears the probe marker.
pub async fn save_breakers(
    tx: &mut Tx<'_>,
    rows: &[BreakerRow],
    failure_threshold: i32,
    timeout_seconds: i32,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    use crate::column;
    sqlx::query(
        "INSERT INTO circuit_breaker_state (subscription_id, state, failure_count, success_count, opened_at,
             failure_threshold, timeout_seconds, probe_until, updated_at)
         SELECT u.*, $6, $7, NULL, NOW()
           FROM UNNEST($1::uuid[], $2::text[], $3::int[], $4::int[], $5::timestamptz[]) u
         ON CONFLICT (subscription_id) DO UPDATE SET
            state = EXCLUDED.state, failure_count = EXCLUDED.failure_count,
            success_count = EXCLUDED.success_count, opened_at = EXCLUDED.opened_at,
            failure_threshold = EXCLUDED.failure_threshold, timeout_seconds = EXCLUDED.timeout_seconds,
            probe_until = NULL, updated_at = NOW(),
            last_failure_at = CASE WHEN EXCLUDED.failure_count > circuit_breaker_state.failure_count
                                   THEN NOW() ELSE circuit_breaker_state.last_failure_at END",
    )
    .bind(column(rows, |b| b.subscription_id))
    .bind(column(rows, |b| b.state.as_str()))
    .bind(column(rows, |b| b.failure_count))
    .bind(column(rows, |b| b.success_count))
    .bind(column(rows, |b| b.opened_at))
    .bind(failure_threshold)
    .bind(timeout_seconds)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A delivery as listed in the history. It serializes as the API shows it,
/// but for its attempts (the manager's `DeliveryBody` adds them).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Delivery {
    /// Id.
    pub id: Uuid,
    /// Subscription.
    pub subscription_id: Uuid,
    /// Event type.
    pub event_type: String,
    /// Event id (the `webhook-id` header).
    pub event_id: Uuid,
    /// PENDING, RETRYING, DELIVERED, FAILED.
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempt_number: i32,
    /// Last response status.
    pub response_status: Option<i32>,
    /// Last latency.
    pub response_time_ms: Option<i32>,
    /// Last error.
    pub error_message: Option<String>,
    /// Next attempt.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(skip)]
    pub updated_at: DateTime<Utc>,
    /// Delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// URL.
    #[serde(skip)]
    pub request_url: String,
    /// The event as delivered.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

const DELIVERY_COLUMNS: &str = "id, subscription_id, event_type, event_id, payload,
    COALESCE(attempt_number, 0) AS attempt_number, request_url, status, response_status, response_time_ms,
    error_message, next_retry_at, COALESCE(created_at, 'epoch') AS created_at, updated_at, delivered_at";

/// History filters.
#[derive(Debug, Default, Clone)]
pub struct DeliveryFilter {
    /// Status.
    pub status: Option<DeliveryStatus>,
    /// Event type.
    pub event_type: Option<String>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Created before.
    pub until: Option<DateTime<Utc>>,
    /// Only ids before this one (newest first).
    pub before: Option<Uuid>,
}

/// One page of a subscription's deliveries, newest first (`limit + 1` rows).
pub async fn list(
    pool: &PgPool,
    tenant: TenantId,
    subscription: Uuid,
    f: &DeliveryFilter,
    limit: u32,
) -> Result<Vec<Delivery>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
          WHERE tenant_id = $1 AND subscription_id = $2 AND ($3::text IS NULL OR status = $3)
            AND ($4::text IS NULL OR event_type = $4) AND ($5::timestamptz IS NULL OR created_at >= $5)
            AND ($6::timestamptz IS NULL OR created_at < $6) AND ($7::uuid IS NULL OR id < $7)
          ORDER BY id DESC LIMIT $8"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(subscription)
        .bind(f.status.map(DeliveryStatus::as_str))
        .bind(&f.event_type)
        .bind(f.since)
        .bind(f.until)
        .bind(f.before)
        .bind(i64::from(limit) + 1)
        .fetch_all(pool)
        .await?)
}

/// One delivery of the tenant's subscription.
pub async fn get(
    pool: &PgPool,
    tenant: TenantId,
    subscription: Uuid,
    id: Uuid,
) -> Result<Option<Delivery>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant_id = $1 AND subscription_id = $2 AND id = $3"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(subscription)
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// A delivery's attempts, first to last.
pub async fn attempts(pool: &PgPool, delivery: Uuid) -> Result<Vec<Attempt>> {
    Ok(sqlx::query_as(
        "SELECT a.id, a.delivery_id, a.attempt_number, a.request_url, a.request_headers, a.response_status,
                a.response_headers, a.response_body, a.response_time_ms, a.error_message, a.created_at
           FROM webhook_delivery_attempts a WHERE a.delivery_id = $1 ORDER BY a.attempt_number, a.created_at",
    )
    .bind(delivery)
    .fetch_all(pool)
    .await?)
}

/// What to replay.
#[derive(Debug, Clone)]
pub enum ReplaySelection {
    /// Deliveries in a status, created in a window.
    Filter {
        /// Status (FAILED by default).
        status: DeliveryStatus,
        /// Created at or after.
        since: Option<DateTime<Utc>>,
        /// Created before.
        until: Option<DateTime<Utc>>,
    },
    /// These deliveries (finished ones only; in-flight ones are left alone).
    Ids(Vec<Uuid>),
}

/// Re-queues finished deliveries of the tenant's subscription as due now;
/// their retry budget starts again. Returns the re-queued ids.
pub async fn replay(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    subscription: Uuid,
    sel: &ReplaySelection,
    limit: i64,
) -> Result<Vec<Uuid>> {
    let (status, since, until, ids) = match sel {
        ReplaySelection::Filter {
            status,
            since,
            until,
        } => (Some(status.as_str()), *since, *until, None),
        ReplaySelection::Ids(ids) => (None, None, None, Some(ids.clone())),
    };
    let rows: Vec<Uuid> = sqlx::query_scalar(
        "WITH c AS (
            SELECT id FROM webhook_deliveries
             WHERE tenant_id = $1 AND subscription_id = $2 AND status IN ($8, $9)
               AND ($3::text IS NULL OR status = $3) AND ($4::timestamptz IS NULL OR created_at >= $4)
               AND ($5::timestamptz IS NULL OR created_at < $5) AND ($6::uuid[] IS NULL OR id = ANY($6))
             ORDER BY id LIMIT $7 FOR UPDATE)
         UPDATE webhook_deliveries d SET status = $10, next_retry_at = NOW(), lease_until = NULL,
                attempt_base = d.attempt_number, updated_at = NOW()
           FROM c WHERE d.id = c.id RETURNING d.id",
    )
    .bind(tenant.0)
    .bind(subscription)
    .bind(status)
    .bind(since)
    .bind(until)
    .bind(ids)
    .bind(limit)
    .bind(DeliveryStatus::Delivered.as_str())
    .bind(DeliveryStatus::Failed.as_str())
    .bind(DeliveryStatus::Pending.as_str())
    .fetch_all(&mut **tx)
    .await?;
    if !rows.is_empty() {
        crate::notify(&mut **tx, CHANNEL).await?;
    }
    Ok(rows)
}

/// Deletes the deliveries (with their attempts) created more than
/// `older_than_days` ago that are finished, or whose subscription is gone (a
/// fan-out that raced the subscription's deletion can leave such rows),
/// `batch` per statement while `go_on`; returns how many.
pub async fn prune(
    pool: &PgPool,
    older_than_days: u32,
    batch: i64,
    go_on: impl Fn() -> bool,
) -> Result<u64> {
    crate::prune_old(
        pool,
        crate::Aged {
            table: "webhook_deliveries",
            time: "created_at",
            finished: format!(
                "status IN ('{}', '{}')
                 OR NOT EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.id = subscription_id)",
                DeliveryStatus::Delivered,
                DeliveryStatus::Failed
            ),
        },
        older_than_days,
        batch,
        go_on,
    )
    .await
}

/// Due backlog: deliveries due now and the age in seconds of the oldest.
pub async fn backlog(pool: &PgPool) -> Result<(i64, f64)> {
    Ok(sqlx::query_as(
        "SELECT COUNT(*) AS n, COALESCE(EXTRACT(EPOCH FROM NOW() - MIN(next_retry_at)), 0)::float8 AS age
           FROM webhook_deliveries WHERE status IN ('PENDING', 'RETRYING') AND next_retry_at <= NOW()",
    )
    .fetch_one(pool)
    .await?)
}

/// The most a subscription's backlog counts to ([`backlog_of`]): past it
/// the figure reads "at least this many".
pub const BACKLOG_CAP: i64 = 10_000;

/// Each of the tenant's subscriptions `ids`' backlog: its deliveries still
/// to be sent (PENDING or RETRYING, due or not), counted up to
/// [`BACKLOG_CAP`]. One statement for the lot; each count reads at most
/// `BACKLOG_CAP` rows, through the subscription's history index
/// (`webhook_deliveries_history`) and the partial index of unfinished
/// deliveries. Another tenant's ids count 0.
pub async fn backlog_of(pool: &PgPool, tenant: TenantId, ids: &[Uuid]) -> Result<Vec<(Uuid, i64)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as(
        "SELECT s.id, (SELECT COUNT(*) FROM (SELECT 1 FROM webhook_deliveries d
                         WHERE d.tenant_id = $1 AND d.subscription_id = s.id
                           AND d.status IN ('PENDING', 'RETRYING') LIMIT $3) AS u) AS n
           FROM unnest($2::uuid[]) AS s(id)",
    )
    .bind(tenant.0)
    .bind(ids)
    .bind(BACKLOG_CAP)
    .fetch_all(pool)
    .await?)
}

/// Breakers of subscriptions by state.
pub async fn breaker_states(pool: &PgPool) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT COALESCE(state, '') AS state, COUNT(*) AS n FROM circuit_breaker_state
          WHERE subscription_id IS NOT NULL GROUP BY state",
    )
    .fetch_all(pool)
    .await?)
}

/// Locks subscription rows in id order (`FOR NO KEY UPDATE`) so that
/// concurrent recorders changing the same subscriptions' breakers and
/// streaks take their locks in one order and never deadlock.
pub async fn lock_subscriptions(tx: &mut Tx<'_>, ids: &[Uuid]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT id FROM webhook_subscriptions WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(())
}

/// A tenant's failed delivery attempts (not 2xx): how many in all, and the
/// five most frequent reasons (the error, else the HTTP status) with their
/// counts: what an operator or a benchmark looks at when deliveries arrive
/// late.
pub async fn failed_attempts_by_reason(
    pool: &PgPool,
    tenant: TenantId,
) -> Result<(i64, Vec<(String, i64)>)> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT COALESCE(a.error_message, 'HTTP ' || a.response_status::text, 'no answer') AS reason,
                COUNT(*) AS n, SUM(COUNT(*)) OVER ()::int8 AS total
           FROM webhook_delivery_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
          WHERE d.tenant_id = $1 AND (a.response_status IS NULL OR a.response_status NOT BETWEEN 200 AND 299)
          GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
    )
    .bind(tenant.0)
    .fetch_all(pool)
    .await?;
    let total = rows.first().map_or(0, |(_, _, total)| *total);
    Ok((
        total,
        rows.into_iter().map(|(reason, n, _)| (reason, n)).collect(),
    ))
}
