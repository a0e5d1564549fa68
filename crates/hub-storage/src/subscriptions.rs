//! Outbound webhook subscriptions (`webhook_subscriptions`).
//!
//! Counters are the row's totals plus the deltas workers appended to
//! `webhook_subscription_counters` since the last fold, so a read is always
//! current while no delivery updates the subscription row.

use crate::{Result, Tx};
use chrono::{DateTime, Utc};
use hub_domain::TenantId;
use hub_domain::status::SubscriptionStatus;
use sqlx::PgPool;
use std::sync::LazyLock;
use uuid::Uuid;

/// A subscription as stored (secrets stay sealed). It serializes as the
/// API shows it, but for what is computed from its secrets and auth
/// settings (the manager's `SubscriptionBody` adds those).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Subscription {
    /// Id.
    pub id: Uuid,
    /// Owner.
    #[serde(skip)]
    pub tenant_id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Target URL.
    pub url: String,
    /// Exact types, `prefix.*` patterns or `*`.
    #[schema(value_type = Vec<String>)]
    pub event_types: serde_json::Value,
    /// NONE, HMAC, BASIC, API_KEY, OAUTH2.
    pub auth_type: String,
    /// Non-secret auth settings.
    #[serde(skip)]
    pub auth_config: Option<serde_json::Value>,
    /// Sealed signing secret.
    #[serde(skip)]
    pub secret_key: Option<String>,
    /// Sealed previous signing secret, still used until it expires.
    #[serde(skip)]
    pub previous_secret_key: Option<String>,
    /// When the previous secret stops signing.
    #[serde(skip)]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Its last four characters.
    #[serde(rename = "secret_last4")]
    pub secret_hint: Option<String>,
    /// Sealed secret part of the auth settings.
    #[serde(skip)]
    pub auth_secret_encrypted: Option<String>,
    /// Last four characters of that secret.
    #[serde(skip)]
    pub auth_secret_hint: Option<String>,
    /// Content-Type of deliveries.
    pub content_type: String,
    /// Extra headers.
    #[schema(value_type = Object)]
    pub headers: serde_json::Value,
    /// A transformation template reference or a field map, applied to the
    /// event before sending.
    #[schema(value_type = Option<Object>)]
    pub transform_template: Option<serde_json::Value>,
    /// Retry failed attempts.
    pub retry_enabled: bool,
    /// Retries after the first attempt.
    pub max_retries: i32,
    /// Seconds between attempts.
    #[schema(value_type = Vec<u32>)]
    pub retry_intervals: serde_json::Value,
    /// ACTIVE, PAUSED, FAILED.
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub status: SubscriptionStatus,
    /// Enabled.
    pub is_enabled: bool,
    /// Why it was disabled automatically.
    pub disabled_reason: Option<String>,
    /// Circuit breaker: CLOSED, OPEN, HALF_OPEN.
    pub circuit_state: String,
    /// When the breaker last opened.
    pub circuit_opened_at: Option<DateTime<Utc>>,
    /// Attempts sent.
    pub total_sent: i64,
    /// Deliveries that succeeded.
    pub total_delivered: i64,
    /// Deliveries that failed for good.
    pub total_failed: i64,
    /// Last attempt.
    pub last_triggered_at: Option<DateTime<Utc>>,
    /// Last success.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Last failed attempt.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Deliveries failed in a row.
    pub consecutive_failures: i32,
    /// The breaker's consecutive failures.
    #[serde(skip)]
    pub circuit_failures: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// API key that created it.
    #[serde(skip)]
    pub created_by_key: Option<Uuid>,
    /// API key that last changed it.
    #[serde(rename = "updated_by")]
    pub updated_by_key: Option<Uuid>,
}

impl Subscription {
    /// What of the subscription is sealed, and its auth settings: what
    /// `hub_connectors::webhook::open_subscription` opens. `id` is the
    /// subscription id as text (the sealing context).
    pub fn sealed<'a>(&'a self, id: &'a str) -> hub_domain::webhook::SealedSubscription<'a> {
        hub_domain::webhook::SealedSubscription {
            id,
            auth_type: &self.auth_type,
            auth_config: self.auth_config.as_ref(),
            secret_key: self.secret_key.as_deref(),
            previous_secret_key: self.previous_secret_key.as_deref(),
            previous_secret_expires_at: self.previous_secret_expires_at,
            auth_secret: self.auth_secret_encrypted.as_deref(),
        }
    }
}

/// The columns of a subscription's own settings, for `SELECT` lists:
/// nullable ones read as their column defaults (the migrations' `DEFAULT`s,
/// literals like them).
macro_rules! settings_columns {
    () => {
        "s.id, s.tenant_id, s.name, s.description, s.url, s.event_types,
    COALESCE(s.auth_type, 'NONE') AS auth_type, s.auth_config, s.secret_key, s.previous_secret_key,
    s.previous_secret_expires_at, s.secret_hint, s.auth_secret_encrypted, s.auth_secret_hint,
    COALESCE(s.content_type, 'application/json') AS content_type, COALESCE(s.headers, '{}') AS headers,
    s.transform_template, COALESCE(s.retry_enabled, true) AS retry_enabled,
    COALESCE(s.max_retries, 5) AS max_retries,
    COALESCE(s.retry_intervals, '[60, 300, 900, 3600, 7200]') AS retry_intervals,
    COALESCE(s.status, 'ACTIVE') AS status, COALESCE(s.is_enabled, true) AS is_enabled, s.disabled_reason,"
    };
}

/// The columns after the counters: the streak, the breaker (`cb`) and the
/// row's bookkeeping.
macro_rules! breaker_columns {
    () => {
        "COALESCE(s.consecutive_failures, 0) AS consecutive_failures,
    COALESCE(cb.state, 'CLOSED') AS circuit_state, cb.opened_at AS circuit_opened_at,
    COALESCE(cb.failure_count, 0) AS circuit_failures, COALESCE(s.created_at, 'epoch') AS created_at,
    COALESCE(s.updated_at, 'epoch') AS updated_at, s.created_by_key, s.updated_by_key
  FROM webhook_subscriptions s"
    };
}

pub(crate) const SELECT: &str = concat!(
    "SELECT ",
    settings_columns!(),
    "
    COALESCE(s.total_sent, 0)::bigint + COALESCE(c.sent, 0) AS total_sent,
    COALESCE(s.total_delivered, 0)::bigint + COALESCE(c.delivered, 0) AS total_delivered,
    COALESCE(s.total_failed, 0)::bigint + COALESCE(c.failed, 0) AS total_failed,
    GREATEST(s.last_triggered_at, c.last_triggered_at) AS last_triggered_at,
    GREATEST(s.last_success_at, c.last_success_at) AS last_success_at,
    GREATEST(s.last_failure_at, c.last_failure_at) AS last_failure_at, ",
    breaker_columns!(),
    "
  LEFT JOIN LATERAL (
    SELECT SUM(sent)::bigint AS sent, SUM(delivered)::bigint AS delivered, SUM(failed)::bigint AS failed,
           MAX(last_triggered_at) AS last_triggered_at, MAX(last_success_at) AS last_success_at,
           MAX(last_failure_at) AS last_failure_at
      FROM webhook_subscription_counters WHERE subscription_id = s.id) c ON true
  LEFT JOIN circuit_breaker_state cb ON cb.subscription_id = s.id"
);

/// [`SELECT`] without the counters (the delivery claim does not need them,
/// and summing deltas per claimed row would cost more than the claim).
pub(crate) const SELECT_LITE: &str = concat!(
    "SELECT ",
    settings_columns!(),
    "
    0::bigint AS total_sent, 0::bigint AS total_delivered, 0::bigint AS total_failed,
    s.last_triggered_at, s.last_success_at, s.last_failure_at, ",
    breaker_columns!(),
    "
  LEFT JOIN circuit_breaker_state cb ON cb.subscription_id = s.id"
);

/// The settings both [`insert`] and [`update`] write, in the order
/// [`bind_settings`] binds them.
const SETTINGS: [&str; 18] = [
    "name",
    "description",
    "url",
    "event_types",
    "auth_type",
    "auth_config",
    "secret_key",
    "secret_hint",
    "auth_secret_encrypted",
    "auth_secret_hint",
    "content_type",
    "headers",
    "transform_template",
    "retry_enabled",
    "max_retries",
    "retry_intervals",
    "status",
    "is_enabled",
];

/// Binds the [`SETTINGS`] of `s`.
fn bind_settings<'q>(q: crate::Query<'q>, s: &'q Subscription) -> crate::Query<'q> {
    q.bind(&s.name)
        .bind(&s.description)
        .bind(&s.url)
        .bind(&s.event_types)
        .bind(&s.auth_type)
        .bind(&s.auth_config)
        .bind(&s.secret_key)
        .bind(&s.secret_hint)
        .bind(&s.auth_secret_encrypted)
        .bind(&s.auth_secret_hint)
        .bind(&s.content_type)
        .bind(&s.headers)
        .bind(&s.transform_template)
        .bind(s.retry_enabled)
        .bind(s.max_retries)
        .bind(&s.retry_intervals)
        .bind(s.status.as_str())
        .bind(s.is_enabled)
}

pub(crate) static INSERT: LazyLock<String> = LazyLock::new(|| {
    crate::insert_sql(
        "webhook_subscriptions",
        "id, tenant_id, created_by_key, updated_by_key",
        "$1, $2, $3, $3",
        &SETTINGS,
        4,
    )
});

pub(crate) static UPDATE: LazyLock<String> = LazyLock::new(|| {
    crate::update_sql(
        "webhook_subscriptions",
        "previous_secret_key = $3, previous_secret_expires_at = $4, disabled_reason = $5,
         consecutive_failures = $6, updated_by_key = $7",
        &SETTINGS,
        8,
        "",
    )
});

/// Inserts `s` with its id, tenant and settings (counters start at zero).
pub async fn insert(tx: &mut Tx<'_>, s: &Subscription) -> Result<()> {
    let q = sqlx::query(INSERT.as_str())
        .bind(s.id)
        .bind(s.tenant_id)
        .bind(s.created_by_key);
    bind_settings(q, s).execute(&mut **tx).await?;
    Ok(())
}

/// Writes every mutable setting of `s` back (after [`get_for_update`]).
/// Re-enabling resets the failure streak.
pub async fn update(tx: &mut Tx<'_>, s: &Subscription) -> Result<()> {
    let q = sqlx::query(UPDATE.as_str())
        .bind(s.tenant_id)
        .bind(s.id)
        .bind(&s.previous_secret_key)
        .bind(s.previous_secret_expires_at)
        .bind(&s.disabled_reason)
        .bind(s.consecutive_failures)
        .bind(s.updated_by_key);
    bind_settings(q, s).execute(&mut **tx).await?;
    Ok(())
}

/// The tenant's subscription, or `None` (also for another tenant's).
pub async fn get(pool: &PgPool, tenant: TenantId, id: Uuid) -> Result<Option<Subscription>> {
    let sql = format!("{SELECT} WHERE s.tenant_id = $1 AND s.id = $2");
    crate::fetch_owned(pool, sql, tenant, id).await
}

/// Like [`get`], locking the row until `tx` ends.
pub async fn get_for_update(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<Subscription>> {
    let sql = format!("{SELECT} WHERE s.tenant_id = $1 AND s.id = $2 FOR UPDATE OF s");
    crate::fetch_owned(&mut **tx, sql, tenant, id).await
}

/// Deletes the tenant's subscription with its deliveries, attempts and
/// breaker; `false` when there was none.
pub async fn delete(tx: &mut Tx<'_>, tenant: TenantId, id: Uuid) -> Result<bool> {
    let done = sqlx::query("DELETE FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.0)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    // No foreign keys point here from the per-delivery tables (migration
    // 0006): their rows go explicitly (attempts follow their deliveries).
    sqlx::query(
        "WITH d AS (DELETE FROM webhook_deliveries WHERE subscription_id = $1)
         DELETE FROM webhook_subscription_counters WHERE subscription_id = $1",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

/// List filters.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Status.
    pub status: Option<hub_domain::status::SubscriptionStatus>,
    /// Enabled or not.
    pub is_enabled: Option<bool>,
    /// Only ids after this one (cursor).
    pub after: Option<Uuid>,
}

/// One page of the tenant's subscriptions, by id; `limit + 1` rows are read
/// so the caller knows whether a next page exists.
pub async fn list(
    pool: &PgPool,
    tenant: TenantId,
    f: &Filter,
    limit: u32,
) -> Result<Vec<Subscription>> {
    let sql = format!(
        "{SELECT} WHERE s.tenant_id = $1 AND ($2::text IS NULL OR s.status = $2)
           AND ($3::bool IS NULL OR s.is_enabled = $3) AND ($4::uuid IS NULL OR s.id > $4)
         ORDER BY s.id LIMIT $5"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(f.status.map(|s| s.as_str()))
        .bind(f.is_enabled)
        .bind(f.after)
        .bind(i64::from(limit) + 1)
        .fetch_all(pool)
        .await?)
}

/// The distinct `event_types` entries of every enabled subscription, across
/// tenants: what the dispatcher's queue must be bound to (topology, not
/// tenant data; nothing of it leaves the dispatcher).
pub async fn live_patterns(pool: &PgPool) -> Result<Vec<String>> {
    let rows = sqlx::query_scalar(
        "SELECT DISTINCT p FROM webhook_subscriptions s,
                jsonb_array_elements_text(CASE WHEN jsonb_typeof(s.event_types) = 'array'
                                               THEN s.event_types ELSE '[]' END) p
          WHERE s.is_enabled",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// The enabled subscriptions of `tenants`, with their breaker (a PAUSED one
/// collects deliveries that wait until it is resumed; a disabled one gets
/// none). Fan-out matches events against them and hands deliveries of ACTIVE
/// ones with a closed breaker straight to the sender.
pub async fn targets(tx: &mut Tx<'_>, tenants: &[TenantId]) -> Result<Vec<Subscription>> {
    let sql = format!(
        "{SELECT_LITE} WHERE s.tenant_id = ANY($1) AND s.is_enabled AND s.status IN ($2, $3)"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenants.iter().map(|t| t.0).collect::<Vec<Uuid>>())
        .bind(SubscriptionStatus::Active.as_str())
        .bind(SubscriptionStatus::Paused.as_str())
        .fetch_all(&mut **tx)
        .await?)
}

/// Moves pending counter deltas into the subscription rows (up to `batch`
/// delta rows); returns how many were folded.
pub async fn fold_counters(pool: &PgPool, batch: i64) -> Result<u64> {
    let done = sqlx::query(
        "WITH d AS (
            DELETE FROM webhook_subscription_counters WHERE id IN (
                SELECT id FROM webhook_subscription_counters ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING *),
         agg AS (
            SELECT subscription_id, SUM(sent) AS sent, SUM(delivered) AS delivered, SUM(failed) AS failed,
                   MAX(last_triggered_at) AS lt, MAX(last_success_at) AS ls, MAX(last_failure_at) AS lf
              FROM d GROUP BY subscription_id)
         UPDATE webhook_subscriptions s SET
            total_sent = COALESCE(s.total_sent, 0) + agg.sent,
            total_delivered = COALESCE(s.total_delivered, 0) + agg.delivered,
            total_failed = COALESCE(s.total_failed, 0) + agg.failed,
            last_triggered_at = GREATEST(s.last_triggered_at, agg.lt),
            last_success_at = GREATEST(s.last_success_at, agg.ls),
            last_failure_at = GREATEST(s.last_failure_at, agg.lf)
          FROM agg WHERE s.id = agg.subscription_id",
    )
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Sealed secrets of every subscription, for key rotation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Sealed {
    /// Subscription id.
    pub id: Uuid,
    /// Owner.
    pub tenant_id: Uuid,
    /// Signing secret.
    pub secret_key: Option<String>,
    /// Previous signing secret.
    pub previous_secret_key: Option<String>,
    /// Auth secret.
    pub auth_secret_encrypted: Option<String>,
}

/// Every subscription's sealed secrets, locked until `tx` ends.
pub async fn sealed_for_update(tx: &mut Tx<'_>) -> Result<Vec<Sealed>> {
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, secret_key, previous_secret_key, auth_secret_encrypted
           FROM webhook_subscriptions FOR UPDATE",
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Writes re-sealed secrets back.
pub async fn reseal(tx: &mut Tx<'_>, s: &Sealed) -> Result<()> {
    sqlx::query(
        "UPDATE webhook_subscriptions SET secret_key = $2, previous_secret_key = $3, auth_secret_encrypted = $4
          WHERE id = $1",
    )
    .bind(s.id)
    .bind(&s.secret_key)
    .bind(&s.previous_secret_key)
    .bind(&s.auth_secret_encrypted)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
