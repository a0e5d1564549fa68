//! Tenants and their API keys.

use crate::{Result, Tx};
use chrono::{DateTime, Utc};
use hub_domain::status::TenantStatus;
use hub_domain::{ApiKeyHash, ApiKeyId, TenantId, TenantName, TenantSlug};
use sqlx::PgPool;
use uuid::Uuid;

/// A tenant.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
#[schema(as = TenantBody)]
pub struct Tenant {
    /// Its id; send it as `X-Tenant-ID`.
    #[sqlx(try_from = "Uuid")]
    #[schema(value_type = Uuid)]
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// URL slug (used in inbound webhook URLs).
    pub slug: String,
    /// `ACTIVE` or `SUSPENDED`.
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub status: TenantStatus,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// An API key (never its secret).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
#[schema(as = ApiKeyBody)]
pub struct ApiKey {
    /// Its id.
    #[sqlx(try_from = "Uuid")]
    #[schema(value_type = Uuid)]
    pub id: ApiKeyId,
    /// The owning tenant.
    #[sqlx(try_from = "Uuid")]
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// Label.
    pub name: String,
    /// The first characters of the key.
    pub prefix: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last use (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The columns of a [`Tenant`].
const TENANT: &str = "id, name, slug, status, created_at";

/// The columns of an [`ApiKey`].
const KEY: &str = "id, tenant_id, name, prefix, created_at, last_used_at, revoked_at";

/// Inserts a tenant. A taken slug is a [`crate::StorageError::Conflict`] on `tenants_slug_key`.
pub async fn insert(
    tx: &mut Tx<'_>,
    id: TenantId,
    name: &TenantName,
    slug: &TenantSlug,
) -> Result<Tenant> {
    let sql =
        format!("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $3) RETURNING {TENANT}");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id.0)
        .bind(name.as_str())
        .bind(slug.as_str())
        .fetch_one(&mut **tx)
        .await?)
}

/// A tenant by id.
pub async fn get(pool: &PgPool, id: TenantId) -> Result<Option<Tenant>> {
    let sql = format!("SELECT {TENANT} FROM tenants WHERE id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id.0)
        .fetch_optional(pool)
        .await?)
}

/// A page of tenants ordered by id, optionally only the one with `slug`.
pub async fn list(
    pool: &PgPool,
    slug: Option<&str>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Tenant>> {
    let sql = format!(
        "SELECT {TENANT} FROM tenants
         WHERE ($1::text IS NULL OR slug = $1) AND ($2::uuid IS NULL OR id > $2)
         ORDER BY id LIMIT $3"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(slug)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?)
}

/// Stores a new key's hash.
pub async fn insert_api_key(
    tx: &mut Tx<'_>,
    id: ApiKeyId,
    tenant: TenantId,
    name: &str,
    prefix: &str,
    hash: &ApiKeyHash,
) -> Result<ApiKey> {
    let sql = format!(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5)
         RETURNING {KEY}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id.0)
        .bind(tenant.0)
        .bind(name)
        .bind(prefix)
        .bind(&hash.0[..])
        .fetch_one(&mut **tx)
        .await?)
}

/// A tenant's keys, newest first.
pub async fn list_api_keys(pool: &PgPool, tenant: TenantId) -> Result<Vec<ApiKey>> {
    let sql = format!("SELECT {KEY} FROM api_keys WHERE tenant_id = $1 ORDER BY id DESC");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .fetch_all(pool)
        .await?)
}

/// The notification channel a key revocation signals when it commits (API
/// key caches drop what they hold).
pub const KEYS_CHANNEL: &str = "hub_api_keys";

/// Revokes a key of `tenant`; `None` when the tenant has no such key. Revoking
/// twice keeps the first revocation time. Processes caching keys are told on
/// commit ([`KEYS_CHANNEL`]).
pub async fn revoke_api_key(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    id: ApiKeyId,
) -> Result<Option<ApiKey>> {
    let sql = format!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, NOW())
         WHERE tenant_id = $1 AND id = $2
         RETURNING {KEY}"
    );
    let key: Option<ApiKey> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(id.0)
        .fetch_optional(&mut **tx)
        .await?;
    if key.is_some() {
        crate::notify(&mut **tx, KEYS_CHANNEL).await?;
    }
    Ok(key)
}

/// The live (not revoked) key with this hash, with its tenant's status.
pub async fn find_active_key(
    pool: &PgPool,
    hash: &ApiKeyHash,
) -> Result<Option<(ApiKey, TenantStatus)>> {
    /// A key with its tenant's status.
    #[derive(sqlx::FromRow)]
    struct Found {
        #[sqlx(flatten)]
        key: ApiKey,
        #[sqlx(try_from = "String")]
        tenant_status: TenantStatus,
    }
    let found: Option<Found> = sqlx::query_as(
        "SELECT k.id, k.tenant_id, k.name, k.prefix, k.created_at, k.last_used_at, k.revoked_at,
                t.status AS tenant_status
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
         WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
    )
    .bind(&hash.0[..])
    .fetch_optional(pool)
    .await?;
    Ok(found.map(|f| (f.key, f.tenant_status)))
}

/// Records a use of a key, at most once a minute per key so that a busy key
/// does not turn its row into a hot spot.
pub async fn touch_api_key(pool: &PgPool, id: ApiKeyId) -> Result<()> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = NOW()
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < NOW() - INTERVAL '60 seconds')",
    )
    .bind(id.0)
    .execute(pool)
    .await?;
    Ok(())
}
