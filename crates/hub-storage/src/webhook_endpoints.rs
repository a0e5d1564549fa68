//! Inbound webhook endpoints (`webhook_endpoints`) and their counters.
//!
//! Counters are never updated per request: receiving and processing append
//! rows to `webhook_endpoint_counter_deltas`, [`fold_counters`] moves them
//! into the endpoint row now and then, and reads add what is not folded yet.

use crate::{Result, Tx};
use chrono::{DateTime, Utc};
use hub_domain::TenantId;
use hub_domain::status::{EndpointStatus, TenantStatus};
use sqlx::PgPool;
use std::sync::LazyLock;
use uuid::Uuid;

/// An endpoint as stored (the secrets stay sealed). It serializes as the
/// API shows it, but for what is computed from its secrets and
/// verification settings (the manager's `EndpointBody` adds those).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Endpoint {
    /// Id.
    pub id: Uuid,
    /// Owner.
    #[serde(skip)]
    pub tenant_id: Uuid,
    /// The integration it belongs to.
    pub integration_id: Option<Uuid>,
    /// `{path}` of the public URL.
    pub endpoint_path: String,
    /// Sealed current secret.
    #[sqlx(rename = "secret_key")]
    #[serde(skip)]
    pub secret_sealed: String,
    /// Last four characters of the current secret.
    #[serde(skip)]
    pub secret_hint: String,
    /// Sealed previous secret (rotation grace period).
    #[serde(skip)]
    pub secret_previous: Option<String>,
    /// When the previous secret stops working.
    #[serde(skip)]
    pub secret_previous_expires_at: Option<DateTime<Utc>>,
    /// `event_types` filter (JSON array of strings).
    #[serde(skip)]
    pub event_types: serde_json::Value,
    /// `LOAD_STATUS`, `TRACKING`, `INVOICE`, `CUSTOM`.
    pub handler_type: String,
    /// A transformation template reference or a field map, applied before
    /// routing.
    #[schema(value_type = Option<Object>)]
    pub transform_template: Option<serde_json::Value>,
    /// Where processed events are meant to go.
    pub target_service: Option<String>,
    /// Allowed source networks (JSON array of CIDRs), or none = anyone.
    #[serde(skip)]
    pub ip_whitelist: Option<serde_json::Value>,
    /// Header holding the signature.
    #[serde(skip)]
    pub signature_header: Option<String>,
    /// Scheme name.
    #[serde(skip)]
    pub signature_algorithm: Option<String>,
    /// Generic schemes: `hex` or `base64`.
    #[serde(skip)]
    pub signature_encoding: String,
    /// Generic schemes: prefix before the signature.
    pub signature_prefix: Option<String>,
    /// Timestamped schemes: tolerance in seconds.
    pub timestamp_tolerance_seconds: i32,
    /// `ACTIVE`, `PAUSED`, `DISABLED`.
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub status: EndpointStatus,
    /// Whether it accepts requests.
    pub is_enabled: bool,
    /// Events received (repeats of an event are not counted).
    pub total_received: i64,
    /// Events processed (or filtered out by `event_types`).
    pub total_processed: i64,
    /// Events failed for good.
    pub total_failed: i64,
    /// Last event received.
    pub last_received_at: Option<DateTime<Utc>>,
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

/// The endpoint's columns before its counters (nullable ones read as their
/// column defaults).
macro_rules! settings_columns {
    () => {
        "e.id, e.tenant_id, e.integration_id, e.endpoint_path, e.secret_key, e.secret_hint,
    e.secret_previous, e.secret_previous_expires_at, e.event_types, e.handler_type, e.transform_template,
    e.target_service, e.ip_whitelist, e.signature_header, e.signature_algorithm, e.signature_encoding,
    e.signature_prefix, e.timestamp_tolerance_seconds, COALESCE(e.status, 'ACTIVE') AS status,
    COALESCE(e.is_enabled, true) AS is_enabled,"
    };
}

/// The endpoint's columns after its counters.
macro_rules! bookkeeping_columns {
    () => {
        "COALESCE(e.created_at, 'epoch') AS created_at, COALESCE(e.updated_at, 'epoch') AS updated_at,
    e.created_by_key, e.updated_by_key"
    };
}

/// Endpoint columns with counters: the row's plus the deltas of [`DELTAS`].
const COLUMNS: &str = concat!(
    settings_columns!(),
    "
    (COALESCE(e.total_received, 0) + COALESCE(d.received, 0))::int8 AS total_received,
    (COALESCE(e.total_processed, 0) + COALESCE(d.processed, 0))::int8 AS total_processed,
    (COALESCE(e.total_failed, 0) + COALESCE(d.failed, 0))::int8 AS total_failed,
    GREATEST(e.last_received_at, d.last_received_at) AS last_received_at, ",
    bookkeeping_columns!()
);

/// Unfolded counter deltas of endpoint `e`.
const DELTAS: &str = "LEFT JOIN LATERAL (
    SELECT SUM(received) AS received, SUM(processed) AS processed, SUM(failed) AS failed,
           MAX(last_received_at) AS last_received_at
    FROM webhook_endpoint_counter_deltas WHERE endpoint_id = e.id) d ON true";

/// Endpoint columns without counters (hot path and locking reads).
const PLAIN: &str = concat!(
    settings_columns!(),
    "
    COALESCE(e.total_received, 0)::int8 AS total_received, COALESCE(e.total_processed, 0)::int8 AS total_processed,
    COALESCE(e.total_failed, 0)::int8 AS total_failed, e.last_received_at, ",
    bookkeeping_columns!()
);

/// The settings both [`insert`] and [`update`] write, in the order
/// [`bind_settings`] binds them.
const SETTINGS: [&str; 16] = [
    "integration_id",
    "endpoint_path",
    "secret_key",
    "secret_hint",
    "event_types",
    "handler_type",
    "transform_template",
    "target_service",
    "ip_whitelist",
    "signature_header",
    "signature_algorithm",
    "signature_encoding",
    "signature_prefix",
    "timestamp_tolerance_seconds",
    "status",
    "is_enabled",
];

/// Binds the [`SETTINGS`] of `e`.
fn bind_settings<'q>(q: crate::Query<'q>, e: &'q Endpoint) -> crate::Query<'q> {
    q.bind(e.integration_id)
        .bind(&e.endpoint_path)
        .bind(&e.secret_sealed)
        .bind(&e.secret_hint)
        .bind(&e.event_types)
        .bind(&e.handler_type)
        .bind(&e.transform_template)
        .bind(&e.target_service)
        .bind(&e.ip_whitelist)
        .bind(&e.signature_header)
        .bind(&e.signature_algorithm)
        .bind(&e.signature_encoding)
        .bind(&e.signature_prefix)
        .bind(e.timestamp_tolerance_seconds)
        .bind(e.status.as_str())
        .bind(e.is_enabled)
}

pub(crate) static INSERT: LazyLock<String> = LazyLock::new(|| {
    crate::insert_sql(
        "webhook_endpoints",
        "id, tenant_id, created_by_key, updated_by_key",
        "$1, $2, $3, $3",
        &SETTINGS,
        4,
    )
});

pub(crate) static UPDATE: LazyLock<String> = LazyLock::new(|| {
    crate::update_sql(
        "webhook_endpoints",
        "secret_previous = $3, secret_previous_expires_at = $4, updated_by_key = $5",
        &SETTINGS,
        6,
        "",
    )
});

/// Inserts `e`. A taken path is a [`crate::StorageError::Conflict`] on
/// `webhook_endpoints_tenant_id_endpoint_path_key`.
pub async fn insert(tx: &mut Tx<'_>, e: &Endpoint) -> Result<()> {
    let q = sqlx::query(INSERT.as_str())
        .bind(e.id)
        .bind(e.tenant_id)
        .bind(e.created_by_key);
    bind_settings(q, e).execute(&mut **tx).await?;
    Ok(())
}

/// Writes every mutable field of `e` back (after [`get_for_update`]).
pub async fn update(tx: &mut Tx<'_>, e: &Endpoint) -> Result<()> {
    let q = sqlx::query(UPDATE.as_str())
        .bind(e.tenant_id)
        .bind(e.id)
        .bind(&e.secret_previous)
        .bind(e.secret_previous_expires_at)
        .bind(e.updated_by_key);
    bind_settings(q, e).execute(&mut **tx).await?;
    Ok(())
}

/// One endpoint of `tenant`, with its counters.
pub async fn get(pool: &PgPool, tenant: TenantId, id: Uuid) -> Result<Option<Endpoint>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_endpoints e {DELTAS} WHERE e.tenant_id = $1 AND e.id = $2"
    );
    crate::fetch_owned(pool, sql, tenant, id).await
}

/// One endpoint of `tenant`, locked for the rest of `tx`.
pub async fn get_for_update(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<Endpoint>> {
    let sql = format!(
        "SELECT {PLAIN} FROM webhook_endpoints e WHERE e.tenant_id = $1 AND e.id = $2 FOR UPDATE"
    );
    crate::fetch_owned(&mut **tx, sql, tenant, id).await
}

/// A page of `tenant`'s endpoints after `after`, oldest first.
pub async fn list(
    pool: &PgPool,
    tenant: TenantId,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Endpoint>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_endpoints e {DELTAS}
         WHERE e.tenant_id = $1 AND ($2::uuid IS NULL OR e.id > $2)
         ORDER BY e.id LIMIT $3"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?)
}

/// Deletes an endpoint and its received events; `false` if `tenant` has no such endpoint.
pub async fn delete(tx: &mut Tx<'_>, tenant: TenantId, id: Uuid) -> Result<bool> {
    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.0)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The endpoint a public request names: `tenant_ref` is the tenant's id or
/// slug. Only endpoints of active tenants are found (no counters: hot path).
pub async fn find_for_receive(
    pool: &PgPool,
    tenant_ref: &str,
    path: &str,
) -> Result<Option<Endpoint>> {
    let by_id = tenant_ref.parse::<Uuid>().ok();
    let sql = format!(
        "SELECT {PLAIN} FROM webhook_endpoints e JOIN tenants t ON t.id = e.tenant_id
         WHERE (t.id = $1 OR ($1 IS NULL AND t.slug = $2)) AND e.endpoint_path = $3 AND t.status = $4"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(by_id)
        .bind(tenant_ref)
        .bind(path)
        .bind(TenantStatus::Active.as_str())
        .fetch_optional(pool)
        .await?)
}

/// Whether `tenant` has a (live) integration `id`.
pub async fn integration_exists(pool: &PgPool, tenant: TenantId, id: Uuid) -> Result<bool> {
    Ok(sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM integrations WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL)",
    )
    .bind(tenant.0)
    .bind(id)
    .fetch_one(pool)
    .await?)
}

/// One counter delta of an endpoint.
#[derive(Debug, Clone, Default)]
pub struct CounterDelta {
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// Events received.
    pub received: i32,
    /// Events processed.
    pub processed: i32,
    /// Events failed for good.
    pub failed: i32,
    /// Latest receipt among them.
    pub last_received_at: Option<DateTime<Utc>>,
}

/// Appends counter deltas (one row each) in the caller's transaction.
pub async fn add_deltas(tx: &mut Tx<'_>, deltas: &[CounterDelta]) -> Result<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    use crate::column;
    sqlx::query(
        "INSERT INTO webhook_endpoint_counter_deltas (endpoint_id, received, processed, failed, last_received_at)
         SELECT * FROM UNNEST($1::uuid[], $2::int4[], $3::int4[], $4::int4[], $5::timestamptz[])",
    )
    .bind(column(deltas, |d| d.endpoint_id))
    .bind(column(deltas, |d| d.received))
    .bind(column(deltas, |d| d.processed))
    .bind(column(deltas, |d| d.failed))
    .bind(column(deltas, |d| d.last_received_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Folds up to `batch` counter deltas into their endpoints; returns how many
/// rows were folded. Safe with several replicas (`SKIP LOCKED`).
pub async fn fold_counters(pool: &PgPool, batch: i64) -> Result<u64> {
    let done: Vec<i64> = sqlx::query_scalar(
        "WITH picked AS (
             SELECT id FROM webhook_endpoint_counter_deltas ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED),
         gone AS (
             DELETE FROM webhook_endpoint_counter_deltas d USING picked WHERE d.id = picked.id
             RETURNING d.endpoint_id, d.received, d.processed, d.failed, d.last_received_at),
         sums AS (
             SELECT endpoint_id, SUM(received) AS r, SUM(processed) AS p, SUM(failed) AS f,
                    MAX(last_received_at) AS at, COUNT(*) AS n
             FROM gone GROUP BY endpoint_id)
         UPDATE webhook_endpoints e SET
             total_received = COALESCE(e.total_received, 0) + sums.r,
             total_processed = COALESCE(e.total_processed, 0) + sums.p,
             total_failed = COALESCE(e.total_failed, 0) + sums.f,
             last_received_at = GREATEST(e.last_received_at, sums.at)
         FROM sums WHERE e.id = sums.endpoint_id
         RETURNING sums.n",
    )
    .bind(batch)
    .fetch_all(pool)
    .await?;
    Ok(done.into_iter().map(|n| n as u64).sum())
}

/// Sealed secrets of one endpoint (for `rotate-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecrets {
    /// Current.
    pub current: String,
    /// Previous, during a rotation's grace period.
    pub previous: Option<String>,
}

/// A page of endpoints' sealed secrets after `after`.
pub async fn with_secrets(
    pool: &PgPool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<(Uuid, SealedSecrets)>> {
    let rows: Vec<(Uuid, String, Option<String>)> = sqlx::query_as(
        "SELECT id, secret_key, secret_previous FROM webhook_endpoints
         WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, current, previous)| (id, SealedSecrets { current, previous }))
        .collect())
}

/// Swaps an endpoint's sealed secrets if they are still `old`; `false` when
/// they changed meanwhile.
pub async fn reseal(
    pool: &PgPool,
    id: Uuid,
    old: &SealedSecrets,
    new: &SealedSecrets,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET secret_key = $3, secret_previous = $4
         WHERE id = $1 AND secret_key = $2 AND secret_previous IS NOT DISTINCT FROM $5",
    )
    .bind(id)
    .bind(&old.current)
    .bind(&new.current)
    .bind(&new.previous)
    .bind(&old.previous)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
