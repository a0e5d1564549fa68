//! The API gateway's shared state: rate-limit windows and provider blocks
//! (`rate_limit_buckets`, `rate_limit_blocks`) and the per-integration
//! circuit breakers (`circuit_breaker_state` rows with an `integration_id`).
//!
//! Windows are computed from the database's clock, so replicas on machines
//! whose clocks differ still count in the same window.

use crate::{Result, Tx};
use chrono::{DateTime, Utc};
use hub_domain::webhook::{Breaker, BreakerState};
use sqlx::PgPool;
use uuid::Uuid;

/// What a take from the shared count answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Grant {
    /// Tokens granted by this statement (0..=wanted).
    pub granted: i32,
    /// Requests granted in this window so far, every replica together.
    pub used: i32,
    /// The window's limit.
    pub max: i32,
    /// Milliseconds until the window ends (database clock).
    pub window_left_ms: i64,
    /// Milliseconds the provider asked us to wait, if it did and the wait
    /// is not over; nothing is granted meanwhile.
    pub blocked_ms: Option<i64>,
}

const TAKE: &str = "
WITH w AS (
    SELECT to_timestamp(floor(extract(epoch FROM clock_timestamp()) / $2) * $2) AS start,
           clock_timestamp() AS now,
           (SELECT blocked_until FROM rate_limit_blocks
             WHERE integration_id = $1 AND blocked_until > clock_timestamp()) AS blocked_until
), want AS (
    SELECT CASE WHEN w.blocked_until IS NULL THEN $4::int ELSE 0 END AS n FROM w
), up AS (
    INSERT INTO rate_limit_buckets AS b
        (integration_id, bucket_key, window_start, window_end, request_count, max_requests, is_exceeded, last_grant)
    SELECT $1, 'window:' || $2::int, w.start, w.start + make_interval(secs => $2),
           LEAST(want.n, $3), $3, want.n >= $3, LEAST(want.n, $3)
      FROM w, want
    ON CONFLICT (integration_id, bucket_key, window_start) DO UPDATE SET
        last_grant = LEAST(EXCLUDED.last_grant, GREATEST(EXCLUDED.max_requests - b.request_count, 0)),
        request_count = b.request_count + LEAST(EXCLUDED.last_grant, GREATEST(EXCLUDED.max_requests - b.request_count, 0)),
        max_requests = EXCLUDED.max_requests,
        is_exceeded = b.is_exceeded OR b.request_count + EXCLUDED.last_grant >= EXCLUDED.max_requests
    RETURNING last_grant, request_count, max_requests, window_end
)
SELECT up.last_grant AS granted, up.request_count AS used, up.max_requests AS max,
       (extract(epoch FROM up.window_end - w.now) * 1000)::bigint AS window_left_ms,
       (extract(epoch FROM w.blocked_until - w.now) * 1000)::bigint AS blocked_ms
  FROM up, w";

const TAKE_OVER: &str = "
WITH w AS (
    SELECT to_timestamp(floor(extract(epoch FROM clock_timestamp()) / $2) * $2) AS start,
           clock_timestamp() AS now,
           (SELECT blocked_until FROM rate_limit_blocks
             WHERE integration_id = $1 AND blocked_until > clock_timestamp()) AS blocked_until
), up AS (
    INSERT INTO rate_limit_buckets AS b
        (integration_id, bucket_key, window_start, window_end, request_count, max_requests, is_exceeded, last_grant)
    SELECT $1, 'window:' || $2::int, w.start, w.start + make_interval(secs => $2),
           CASE WHEN w.blocked_until IS NULL THEN 1 ELSE 0 END, $3, 1 >= $3,
           CASE WHEN w.blocked_until IS NULL THEN 1 ELSE 0 END
      FROM w
    ON CONFLICT (integration_id, bucket_key, window_start) DO UPDATE SET
        last_grant = EXCLUDED.last_grant,
        request_count = b.request_count + EXCLUDED.last_grant,
        max_requests = EXCLUDED.max_requests,
        is_exceeded = b.is_exceeded OR b.request_count + EXCLUDED.last_grant >= EXCLUDED.max_requests
    RETURNING last_grant, request_count, max_requests, window_end
)
SELECT up.last_grant AS granted, up.request_count AS used, up.max_requests AS max,
       (extract(epoch FROM up.window_end - w.now) * 1000)::bigint AS window_left_ms,
       (extract(epoch FROM w.blocked_until - w.now) * 1000)::bigint AS blocked_ms
  FROM up, w";

/// Takes up to `wanted` tokens of the integration's current window (of
/// `window_seconds`, at most `max` in it, every replica together; windows of
/// another length are other rows, `window:<seconds>`, so changing the limit
/// never finds a row of the old one), unless
/// the provider's block is in force. `over_limit` takes exactly one token
/// even when the window is spent (high-priority requests; the count then
/// exceeds `max` and the window is marked exceeded), but never during a
/// provider block.
pub async fn take(
    pool: &PgPool,
    integration: Uuid,
    window_seconds: u32,
    max: u32,
    wanted: u32,
    over_limit: bool,
) -> Result<Grant> {
    let sql = if over_limit { TAKE_OVER } else { TAKE };
    let mut q = sqlx::query_as(sql)
        .bind(integration)
        .bind(f64::from(window_seconds.max(1)))
        .bind(i32::try_from(max.max(1)).unwrap_or(i32::MAX));
    if !over_limit {
        q = q.bind(i32::try_from(wanted).unwrap_or(i32::MAX));
    }
    Ok(q.fetch_one(pool).await?)
}

/// Records a provider's own throttling answer: no replica is granted
/// tokens for the integration for `for_ms`.
pub async fn block(pool: &PgPool, integration: Uuid, for_ms: i64, reason: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO rate_limit_blocks (integration_id, blocked_until, reason, updated_at)
         VALUES ($1, clock_timestamp() + make_interval(secs => $2), $3, NOW())
         ON CONFLICT (integration_id) DO UPDATE SET
             blocked_until = GREATEST(rate_limit_blocks.blocked_until, EXCLUDED.blocked_until),
             reason = EXCLUDED.reason, updated_at = NOW()",
    )
    .bind(integration)
    .bind(for_ms.max(0) as f64 / 1000.0)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// Requests granted to an integration in its current window, if any were.
pub async fn window_usage(pool: &PgPool, integration: Uuid) -> Result<Option<(i32, i32)>> {
    Ok(sqlx::query_as(
        "SELECT request_count, max_requests FROM rate_limit_buckets
          WHERE integration_id = $1 AND bucket_key LIKE 'window:%'
            AND window_start <= NOW() AND window_end > NOW()
          ORDER BY window_start DESC LIMIT 1",
    )
    .bind(integration)
    .fetch_optional(pool)
    .await?)
}

/// Until when the provider's own "slow down" holds the integration, if it does.
pub async fn blocked_until(pool: &PgPool, integration: Uuid) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(
        "SELECT blocked_until FROM rate_limit_blocks WHERE integration_id = $1 AND blocked_until > NOW()",
    )
    .bind(integration)
    .fetch_optional(pool)
    .await?)
}

/// Deletes rate-limit windows that ended more than an hour ago and blocks
/// that are over, in batches; returns the rows deleted.
pub async fn prune_windows(pool: &PgPool) -> Result<u64> {
    let windows = sqlx::query(
        "DELETE FROM rate_limit_buckets WHERE id IN (
            SELECT id FROM rate_limit_buckets
             WHERE bucket_key LIKE 'window:%' AND window_end < NOW() - INTERVAL '1 hour' LIMIT 10000)",
    )
    .execute(pool)
    .await?
    .rows_affected();
    let blocks = sqlx::query(
        "DELETE FROM rate_limit_blocks WHERE blocked_until < NOW() - INTERVAL '1 hour'",
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(windows + blocks)
}

/// An integration's breaker as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BreakerRow {
    /// CLOSED, OPEN or HALF_OPEN.
    pub state: String,
    /// Consecutive failures while closed.
    pub failure_count: i32,
    /// Consecutive successes while half-open.
    pub success_count: i32,
    /// When it last opened.
    pub opened_at: Option<DateTime<Utc>>,
    /// While set and in the future, a probe is in flight.
    pub probe_until: Option<DateTime<Utc>>,
}

impl BreakerRow {
    /// The domain breaker (an unreadable state counts as closed).
    pub fn breaker(&self) -> Breaker {
        Breaker {
            state: BreakerState::parse(&self.state).unwrap_or(BreakerState::Closed),
            failure_count: u32::try_from(self.failure_count).unwrap_or(0),
            success_count: u32::try_from(self.success_count).unwrap_or(0),
            opened_at: self.opened_at,
        }
    }
}

const BREAKER_COLUMNS: &str =
    "COALESCE(state, 'CLOSED') AS state, COALESCE(failure_count, 0) AS failure_count,
     COALESCE(success_count, 0) AS success_count, opened_at, probe_until";

/// The integration's breaker, if one was ever recorded.
pub async fn breaker(pool: &PgPool, integration: Uuid) -> Result<Option<BreakerRow>> {
    let sql =
        format!("SELECT {BREAKER_COLUMNS} FROM circuit_breaker_state WHERE integration_id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(integration)
        .fetch_optional(pool)
        .await?)
}

/// Locks the integration's breaker row (creating a closed one first), for
/// a read-modify-write in `tx`.
pub async fn breaker_for_update(tx: &mut Tx<'_>, integration: Uuid) -> Result<BreakerRow> {
    sqlx::query(
        "INSERT INTO circuit_breaker_state (integration_id, state) VALUES ($1, 'CLOSED')
         ON CONFLICT (integration_id) DO NOTHING",
    )
    .bind(integration)
    .execute(&mut **tx)
    .await?;
    let sql = format!(
        "SELECT {BREAKER_COLUMNS} FROM circuit_breaker_state WHERE integration_id = $1 FOR UPDATE"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(integration)
        .fetch_one(&mut **tx)
        .await?)
}

/// Writes the integration's breaker (the row exists: see
/// [`breaker_for_update`]); a probe's end clears its marker.
pub async fn save_breaker(
    tx: &mut Tx<'_>,
    integration: Uuid,
    b: &Breaker,
    success: bool,
    policy: (u32, u32, u32),
) -> Result<()> {
    let (failure_threshold, success_threshold, timeout_seconds) = policy;
    sqlx::query(
        "UPDATE circuit_breaker_state SET state = $2, failure_count = $3, success_count = $4,
                opened_at = $5, probe_until = NULL,
                half_open_at = CASE WHEN $2 = 'HALF_OPEN' AND state <> 'HALF_OPEN' THEN NOW() ELSE half_open_at END,
                last_failure_at = CASE WHEN $6 THEN last_failure_at ELSE NOW() END,
                last_success_at = CASE WHEN $6 THEN NOW() ELSE last_success_at END,
                failure_threshold = $7, success_threshold = $8, timeout_seconds = $9,
                updated_at = NOW()
          WHERE integration_id = $1",
    )
    .bind(integration)
    .bind(b.state.as_str())
    .bind(i32::try_from(b.failure_count).unwrap_or(i32::MAX))
    .bind(i32::try_from(b.success_count).unwrap_or(i32::MAX))
    .bind(b.opened_at)
    .bind(success)
    .bind(i32::try_from(failure_threshold).unwrap_or(i32::MAX))
    .bind(i32::try_from(success_threshold).unwrap_or(i32::MAX))
    .bind(i32::try_from(timeout_seconds).unwrap_or(i32::MAX))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Claims the single probe of an open breaker whose timeout has passed (or
/// of a half-open one with no probe in flight), for `probe_seconds`: true
/// for exactly one caller across replicas. Moves OPEN to HALF_OPEN.
pub async fn claim_probe(
    pool: &PgPool,
    integration: Uuid,
    open_seconds: u32,
    probe_seconds: u32,
) -> Result<bool> {
    let claimed = sqlx::query(
        "UPDATE circuit_breaker_state SET
                state = 'HALF_OPEN',
                success_count = CASE WHEN state = 'OPEN' THEN 0 ELSE success_count END,
                failure_count = 0,
                half_open_at = CASE WHEN state = 'OPEN' THEN NOW() ELSE half_open_at END,
                probe_until = NOW() + make_interval(secs => $3), updated_at = NOW()
          WHERE integration_id = $1
            AND ((state = 'OPEN' AND COALESCE(opened_at, '-infinity') + make_interval(secs => $2) <= NOW())
              OR (state = 'HALF_OPEN' AND (probe_until IS NULL OR probe_until < NOW())))",
    )
    .bind(integration)
    .bind(f64::from(open_seconds))
    .bind(f64::from(probe_seconds.max(1)))
    .execute(pool)
    .await?
    .rows_affected();
    Ok(claimed == 1)
}
