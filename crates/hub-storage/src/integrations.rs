//! Tenant integrations (`integrations`) and their call log (`api_request_logs`).
//!
//! Queries splice in only the constant column list; every value is bound.

use crate::{Result, Tx};
use chrono::{DateTime, Utc};
use hub_domain::TenantId;
use hub_domain::status::IntegrationStatus;
use sqlx::PgPool;
use std::sync::LazyLock;
use uuid::Uuid;

/// An integration as stored, its credentials sealed, and as the API shows
/// it (OpenAPI `IntegrationBody`), without them.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
#[schema(as = IntegrationBody, description = "An integration (never its secrets).")]
pub struct Integration {
    /// Id.
    pub id: Uuid,
    /// Owner.
    #[serde(skip)]
    pub tenant_id: Uuid,
    /// Provider code.
    pub provider_code: String,
    /// Provider row id.
    pub provider_id: Uuid,
    /// Provider category.
    pub category: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Provider-specific settings (validated against the provider's schema).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// `PRODUCTION`, `SANDBOX`, `TEST`.
    pub environment: String,
    /// Auth type of the provider.
    pub auth_type: String,
    /// Sealed API key.
    #[serde(skip)]
    pub api_key_encrypted: Option<String>,
    /// `{"sealed": "..."}` holding the OAuth tokens.
    #[serde(skip)]
    pub oauth_tokens: Option<serde_json::Value>,
    /// When the access token expires.
    #[serde(skip)]
    pub oauth_expires_at: Option<DateTime<Utc>>,
    /// Sealed basic credentials.
    #[serde(skip)]
    pub basic_auth_encrypted: Option<String>,
    /// Sealed OAuth app (`{"client_id", "client_secret"}`).
    #[serde(skip)]
    pub oauth_client_encrypted: Option<String>,
    /// When the refresh token expires, if the provider says.
    #[serde(skip)]
    pub oauth_refresh_expires_at: Option<DateTime<Utc>>,
    /// When the tokens were last obtained (code exchange or refresh).
    #[serde(skip)]
    pub oauth_refreshed_at: Option<DateTime<Utc>>,
    /// No refresh is attempted before this (after a failed one).
    #[serde(skip)]
    pub oauth_retry_at: Option<DateTime<Utc>>,
    /// Consecutive failed refreshes.
    #[serde(skip)]
    pub oauth_failures: i32,
    /// The organisations the OAuth connection may act for (Xero's
    /// `/connections`), as the provider lists them.
    #[schema(value_type = Option<Vec<Object>>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth_tenants: Option<serde_json::Value>,
    /// Which credentials are set, with their last four characters.
    #[serde(rename = "credentials")]
    #[schema(value_type = Object)]
    pub credentials_hint: serde_json::Value,
    /// `PENDING_AUTH`, `ACTIVE`, `ERROR`, `PAUSED`.
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub status: IntegrationStatus,
    /// Whether it processes work.
    pub is_enabled: bool,
    /// Last good call.
    pub last_successful_call: Option<DateTime<Utc>>,
    /// Last error.
    pub last_error: Option<String>,
    /// When.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Errors since the last success.
    pub error_count: i32,
    /// Retry provider calls.
    pub retry_enabled: bool,
    /// Retries.
    pub max_retries: i32,
    /// Per-call timeout.
    pub timeout_seconds: i32,
    /// The integration's own rate limit (requests per window), instead of
    /// its provider's documented one.
    pub rate_limit_requests: Option<i32>,
    /// The window of [`Self::rate_limit_requests`], in seconds.
    pub rate_limit_window_seconds: Option<i32>,
    /// `REALTIME`, `HOURLY`, `DAILY`, `MANUAL`, or a cron expression (UTC).
    pub sync_frequency: Option<String>,
    /// Last sync.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// When the scheduler next syncs it (none: never scheduled).
    pub next_sync_at: Option<DateTime<Utc>>,
    /// Migration support.
    pub external_id: Option<String>,
    /// Migration support.
    pub source_system: Option<String>,
    /// Free-form fields.
    #[schema(value_type = Object)]
    pub custom_fields: serde_json::Value,
    /// The platform events whose changes it exports to the provider
    /// (`invoice.generated`, …; those its manifest's entities export).
    pub export_events: Vec<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// API key that created it.
    #[serde(rename = "created_by")]
    pub created_by_key: Option<Uuid>,
    /// API key that last changed it.
    #[serde(rename = "updated_by")]
    pub updated_by_key: Option<Uuid>,
}

/// The integration columns with the provider's (joined); nullable columns
/// read as their column defaults' Rust counterparts.
pub(crate) const SELECT: &str = "SELECT i.id, i.tenant_id, i.provider_id, p.code AS provider_code, p.category, i.name,
    i.description, i.config, COALESCE(i.environment, '') AS environment, i.auth_type, i.api_key_encrypted,
    i.oauth_tokens, i.oauth_expires_at, i.basic_auth_encrypted, i.oauth_client_encrypted,
    i.oauth_refresh_expires_at, i.oauth_refreshed_at, i.oauth_retry_at, i.oauth_failures, i.oauth_tenants,
    i.credentials_hint,
    COALESCE(i.status, 'ACTIVE') AS status, i.last_successful_call, i.last_error, i.last_error_at,
    COALESCE(i.error_count, 0) AS error_count, COALESCE(i.is_enabled, true) AS is_enabled,
    COALESCE(i.retry_enabled, true) AS retry_enabled, COALESCE(i.max_retries, 3) AS max_retries,
    COALESCE(i.timeout_seconds, 30) AS timeout_seconds, i.rate_limit_requests,
    i.rate_limit_window_seconds, i.sync_frequency, i.last_sync_at, i.next_sync_at,
    i.external_id, i.source_system, COALESCE(i.custom_fields, 'null') AS custom_fields, i.export_events,
    COALESCE(i.created_at, 'epoch') AS created_at, COALESCE(i.updated_at, 'epoch') AS updated_at,
    i.created_by_key, i.updated_by_key
  FROM integrations i JOIN integration_providers p ON p.id = i.provider_id";

/// The settings both [`insert`] and [`update`] write, in the order
/// [`bind_settings`] binds them.
const SETTINGS: [&str; 26] = [
    "name",
    "description",
    "config",
    "api_key_encrypted",
    "oauth_tokens",
    "oauth_expires_at",
    "basic_auth_encrypted",
    "oauth_client_encrypted",
    "oauth_refresh_expires_at",
    "oauth_refreshed_at",
    "oauth_retry_at",
    "oauth_failures",
    "oauth_tenants",
    "credentials_hint",
    "status",
    "is_enabled",
    "retry_enabled",
    "max_retries",
    "timeout_seconds",
    "rate_limit_requests",
    "rate_limit_window_seconds",
    "sync_frequency",
    "external_id",
    "source_system",
    "custom_fields",
    "export_events",
];

/// Binds the [`SETTINGS`] of `i`.
fn bind_settings<'q>(q: crate::Query<'q>, i: &'q Integration) -> crate::Query<'q> {
    q.bind(&i.name)
        .bind(&i.description)
        .bind(&i.config)
        .bind(&i.api_key_encrypted)
        .bind(&i.oauth_tokens)
        .bind(i.oauth_expires_at)
        .bind(&i.basic_auth_encrypted)
        .bind(&i.oauth_client_encrypted)
        .bind(i.oauth_refresh_expires_at)
        .bind(i.oauth_refreshed_at)
        .bind(i.oauth_retry_at)
        .bind(i.oauth_failures)
        .bind(&i.oauth_tenants)
        .bind(&i.credentials_hint)
        .bind(i.status.as_str())
        .bind(i.is_enabled)
        .bind(i.retry_enabled)
        .bind(i.max_retries)
        .bind(i.timeout_seconds)
        .bind(i.rate_limit_requests)
        .bind(i.rate_limit_window_seconds)
        .bind(&i.sync_frequency)
        .bind(&i.external_id)
        .bind(&i.source_system)
        .bind(&i.custom_fields)
        .bind(&i.export_events)
}

pub(crate) static INSERT: LazyLock<String> = LazyLock::new(|| {
    crate::insert_sql(
        "integrations",
        "id, tenant_id, provider_id, environment, auth_type, created_by_key, updated_by_key",
        "$1, $2, $3, $4, $5, $6, $6",
        &SETTINGS,
        7,
    )
});

pub(crate) static UPDATE: LazyLock<String> = LazyLock::new(|| {
    crate::update_sql(
        "integrations",
        "last_successful_call = $3, last_error = $4, last_error_at = $5, error_count = $6, updated_by_key = $7",
        &SETTINGS,
        8,
        "AND deleted_at IS NULL",
    )
});

/// Inserts `i` (its `id`, `tenant_id` and every field as given). A second live
/// integration for the same (tenant, provider, environment) is a
/// [`crate::StorageError::Conflict`] on `integrations_live_environment`.
pub async fn insert(tx: &mut Tx<'_>, i: &Integration) -> Result<()> {
    let q = sqlx::query(INSERT.as_str())
        .bind(i.id)
        .bind(i.tenant_id)
        .bind(i.provider_id)
        .bind(&i.environment)
        .bind(&i.auth_type)
        .bind(i.created_by_key);
    bind_settings(q, i).execute(&mut **tx).await?;
    Ok(())
}

/// Writes every mutable field of `i` back (after [`get_for_update`]).
pub async fn update(tx: &mut Tx<'_>, i: &Integration) -> Result<()> {
    let q = sqlx::query(UPDATE.as_str())
        .bind(i.tenant_id)
        .bind(i.id)
        .bind(i.last_successful_call)
        .bind(&i.last_error)
        .bind(i.last_error_at)
        .bind(i.error_count)
        .bind(i.updated_by_key);
    bind_settings(q, i).execute(&mut **tx).await?;
    Ok(())
}

/// A live integration of `tenant`.
pub async fn get(pool: &PgPool, tenant: TenantId, id: Uuid) -> Result<Option<Integration>> {
    let sql = format!("{SELECT} WHERE i.tenant_id = $1 AND i.id = $2 AND i.deleted_at IS NULL");
    crate::fetch_owned(pool, sql, tenant, id).await
}

/// A live integration of `tenant`, locked until `tx` ends.
pub async fn get_for_update(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<Integration>> {
    let sql = format!(
        "{SELECT} WHERE i.tenant_id = $1 AND i.id = $2 AND i.deleted_at IS NULL FOR UPDATE OF i"
    );
    crate::fetch_owned(&mut **tx, sql, tenant, id).await
}

/// List filters.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    /// Status.
    pub status: Option<hub_domain::status::IntegrationStatus>,
    /// Provider code.
    pub provider: Option<&'a str>,
    /// Provider category.
    pub category: Option<&'a str>,
    /// Environment.
    pub environment: Option<&'a str>,
}

/// A page of `tenant`'s live integrations, oldest first.
pub async fn list(
    pool: &PgPool,
    tenant: TenantId,
    f: &Filter<'_>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Integration>> {
    let sql = format!(
        "{SELECT} WHERE i.tenant_id = $1 AND i.deleted_at IS NULL
           AND ($2::text IS NULL OR i.status = $2)
           AND ($3::text IS NULL OR upper(p.code) = upper($3))
           AND ($4::text IS NULL OR p.category = $4)
           AND ($5::text IS NULL OR i.environment = $5)
           AND ($6::uuid IS NULL OR i.id > $6)
         ORDER BY i.id LIMIT $7"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(f.status.map(|s| s.as_str()))
        .bind(f.provider)
        .bind(f.category)
        .bind(f.environment)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?)
}

/// Soft-deletes a live integration; `false` when `tenant` has no such one.
pub async fn delete(tx: &mut Tx<'_>, tenant: TenantId, id: Uuid, by_key: Uuid) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE integrations SET deleted_at = NOW(), is_enabled = false, updated_by_key = $3, updated_at = NOW()
         WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(tenant.0)
    .bind(id)
    .bind(by_key)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The sealed secrets of one integration, as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SealedSecrets {
    /// `api_key_encrypted`.
    #[sqlx(rename = "api_key_encrypted")]
    pub api_key: Option<String>,
    /// `oauth_tokens` (`{"sealed": …}`).
    #[sqlx(rename = "oauth_tokens")]
    pub oauth: Option<serde_json::Value>,
    /// `basic_auth_encrypted`.
    #[sqlx(rename = "basic_auth_encrypted")]
    pub basic: Option<String>,
    /// `oauth_client_encrypted` (the OAuth app).
    #[sqlx(rename = "oauth_client_encrypted")]
    pub oauth_client: Option<String>,
}

/// Every integration with a sealed secret, a page at a time (for key rotation).
pub async fn with_secrets(
    pool: &PgPool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<(Uuid, SealedSecrets)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        #[sqlx(flatten)]
        secrets: SealedSecrets,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, api_key_encrypted, oauth_tokens, basic_auth_encrypted, oauth_client_encrypted FROM integrations
         WHERE ($1::uuid IS NULL OR id > $1)
           AND (api_key_encrypted IS NOT NULL OR oauth_tokens IS NOT NULL OR basic_auth_encrypted IS NOT NULL
                OR oauth_client_encrypted IS NOT NULL)
         ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.secrets)).collect())
}

/// Replaces the sealed secrets of one integration, only if they are still
/// `old` (so a concurrent credential change is never overwritten).
pub async fn reseal(
    pool: &PgPool,
    id: Uuid,
    old: &SealedSecrets,
    new: &SealedSecrets,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE integrations SET api_key_encrypted = $6, oauth_tokens = $7, basic_auth_encrypted = $8,
             oauth_client_encrypted = $9
         WHERE id = $1 AND api_key_encrypted IS NOT DISTINCT FROM $2
           AND oauth_tokens IS NOT DISTINCT FROM $3 AND basic_auth_encrypted IS NOT DISTINCT FROM $4
           AND oauth_client_encrypted IS NOT DISTINCT FROM $5",
    )
    .bind(id)
    .bind(&old.api_key)
    .bind(&old.oauth)
    .bind(&old.basic)
    .bind(&old.oauth_client)
    .bind(&new.api_key)
    .bind(&new.oauth)
    .bind(&new.basic)
    .bind(&new.oauth_client)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Calls, errors and latency percentiles of one hour.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct HourStats {
    /// Start of the hour.
    pub hour: DateTime<Utc>,
    /// Calls.
    pub calls: i64,
    /// Calls that did not succeed.
    pub errors: i64,
    /// Median latency (ms).
    pub p50_ms: Option<f64>,
    /// 95th percentile latency (ms).
    pub p95_ms: Option<f64>,
}

/// Per-hour statistics of an integration's calls over the last 24 hours.
pub async fn hourly_stats(pool: &PgPool, tenant: TenantId, id: Uuid) -> Result<Vec<HourStats>> {
    Ok(sqlx::query_as(
        "SELECT date_trunc('hour', created_at) AS hour, COUNT(*) AS calls,
                COUNT(*) FILTER (WHERE status <> 'SUCCESS') AS errors,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY response_time_ms) AS p50_ms,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY response_time_ms) AS p95_ms
         FROM api_request_logs
         WHERE tenant_id = $1 AND integration_id = $2 AND created_at > NOW() - INTERVAL '24 hours'
           AND id >= hub_uuid7_floor(NOW() - INTERVAL '24 hours')
         GROUP BY 1 ORDER BY 1",
    )
    .bind(tenant.0)
    .bind(id)
    .fetch_all(pool)
    .await?)
}

/// Outbound calls of an integration in the current hour (rate-limit usage).
pub async fn calls_this_hour(pool: &PgPool, tenant: TenantId, id: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_request_logs WHERE tenant_id = $1 AND integration_id = $2
           AND direction = 'OUTBOUND' AND created_at >= date_trunc('hour', NOW())",
    )
    .bind(tenant.0)
    .bind(id)
    .fetch_one(pool)
    .await?)
}

/// The breaker state of an integration, if one was recorded.
pub async fn circuit_state(pool: &PgPool, id: Uuid) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT state FROM circuit_breaker_state WHERE integration_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?
            .flatten(),
    )
}
