//! Tenants and their API keys.

use crate::{Result, Tx};
use chrono::{DateTime, Utc};
use hub_domain::{ApiKeyHash, ApiKeyId, TenantId, TenantName, TenantSlug};
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// A tenant as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// URL slug.
    pub slug: String,
    /// `ACTIVE` or `SUSPENDED`.
    pub status: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// An API key's metadata (never the secret or its hash).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiKey {
    /// Its id.
    pub id: ApiKeyId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// A label given at creation.
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last successful authentication (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

fn tenant_from_row(r: &sqlx::postgres::PgRow) -> Result<Tenant> {
    Ok(Tenant {
        id: TenantId(r.try_get("id")?),
        name: r.try_get("name")?,
        slug: r.try_get("slug")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
    })
}

fn key_from_row(r: &sqlx::postgres::PgRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: ApiKeyId(r.try_get("id")?),
        tenant_id: TenantId(r.try_get("tenant_id")?),
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// Inserts a tenant. A taken slug is a [`crate::StorageError::Conflict`] on `tenants_slug_key`.
pub async fn insert(
    tx: &mut Tx<'_>,
    id: TenantId,
    name: &TenantName,
    slug: &TenantSlug,
) -> Result<Tenant> {
    let row = sqlx::query(
        "INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $3)
         RETURNING id, name, slug, status, created_at",
    )
    .bind(id.0)
    .bind(name.as_str())
    .bind(slug.as_str())
    .fetch_one(&mut **tx)
    .await?;
    tenant_from_row(&row)
}

/// A tenant by id.
pub async fn get(pool: &PgPool, id: TenantId) -> Result<Option<Tenant>> {
    let row = sqlx::query("SELECT id, name, slug, status, created_at FROM tenants WHERE id = $1")
        .bind(id.0)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(tenant_from_row).transpose()
}

/// A page of tenants ordered by id, optionally only the one with `slug`.
pub async fn list(
    pool: &PgPool,
    slug: Option<&str>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Tenant>> {
    let rows = sqlx::query(
        "SELECT id, name, slug, status, created_at FROM tenants
         WHERE ($1::text IS NULL OR slug = $1) AND ($2::uuid IS NULL OR id > $2)
         ORDER BY id LIMIT $3",
    )
    .bind(slug)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(tenant_from_row).collect()
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
    let row = sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, tenant_id, name, prefix, created_at, last_used_at, revoked_at",
    )
    .bind(id.0)
    .bind(tenant.0)
    .bind(name)
    .bind(prefix)
    .bind(&hash.0[..])
    .fetch_one(&mut **tx)
    .await?;
    key_from_row(&row)
}

/// A tenant's keys, newest first.
pub async fn list_api_keys(pool: &PgPool, tenant: TenantId) -> Result<Vec<ApiKey>> {
    let rows = sqlx::query(
        "SELECT id, tenant_id, name, prefix, created_at, last_used_at, revoked_at
         FROM api_keys WHERE tenant_id = $1 ORDER BY id DESC",
    )
    .bind(tenant.0)
    .fetch_all(pool)
    .await?;
    rows.iter().map(key_from_row).collect()
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
    let row = sqlx::query(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, NOW())
         WHERE tenant_id = $1 AND id = $2
         RETURNING id, tenant_id, name, prefix, created_at, last_used_at, revoked_at",
    )
    .bind(tenant.0)
    .bind(id.0)
    .fetch_optional(&mut **tx)
    .await?;
    if row.is_some() {
        crate::notify(&mut **tx, KEYS_CHANNEL).await?;
    }
    row.as_ref().map(key_from_row).transpose()
}

/// The live (not revoked) key with this hash, with its tenant's status.
pub async fn find_active_key(pool: &PgPool, hash: &ApiKeyHash) -> Result<Option<(ApiKey, String)>> {
    let row = sqlx::query(
        "SELECT k.id, k.tenant_id, k.name, k.prefix, k.created_at, k.last_used_at, k.revoked_at,
                t.status AS tenant_status
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
         WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
    )
    .bind(&hash.0[..])
    .fetch_optional(pool)
    .await?;
    row.map(|r| Ok((key_from_row(&r)?, r.try_get("tenant_status")?)))
        .transpose()
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
