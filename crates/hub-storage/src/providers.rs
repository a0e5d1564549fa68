//! The provider catalog (`integration_providers`) and per-tenant visibility.

use crate::{Result, Tx};
use hub_domain::TenantId;
use sqlx::PgPool;
use uuid::Uuid;

/// A provider of the catalog.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
#[schema(as = ProviderBody)]
pub struct Provider {
    /// Row id.
    #[serde(skip)]
    pub id: Uuid,
    /// Code (`HUBSPOT`, …).
    pub code: String,
    /// Name.
    pub name: String,
    /// Category.
    pub category: String,
    /// `ACTIVE`, `DEPRECATED`, `COMING_SOON`.
    pub status: String,
    /// The manifest: auth type, OAuth URLs and scopes, base URL, API version,
    /// documentation URL, capabilities, rate limit, config JSON Schema, test call.
    #[schema(value_type = Object)]
    pub manifest: serde_json::Value,
}

/// One manifest to load: spec columns plus the whole document.
#[derive(Debug, Clone)]
pub struct ProviderUpsert {
    /// Code (unique).
    pub code: String,
    /// Name.
    pub name: String,
    /// Category.
    pub category: String,
    /// Description.
    pub description: Option<String>,
    /// JSON Schema of `config`.
    pub config_schema: serde_json::Value,
    /// Auth type.
    pub auth_type: String,
    /// OAuth settings.
    pub oauth_config: Option<serde_json::Value>,
    /// Base URL.
    pub base_url: Option<String>,
    /// API version.
    pub api_version: Option<String>,
    /// Documentation URL.
    pub documentation_url: Option<String>,
    /// Capabilities.
    pub supports_webhooks: bool,
    /// Capabilities.
    pub supports_batch: bool,
    /// Capabilities.
    pub supports_realtime: bool,
    /// Rate limit requests per window.
    pub rate_limit_requests: Option<i32>,
    /// Rate limit window (s).
    pub rate_limit_window: Option<i32>,
    /// Status.
    pub status: String,
    /// The manifest as loaded.
    pub manifest: serde_json::Value,
    /// Content hash: unchanged manifests are not rewritten.
    pub manifest_hash: String,
}

/// The columns of a [`Provider`], of `integration_providers p`.
const PROVIDER: &str = "p.id, p.code, p.name, p.category, p.status, p.manifest";

/// The columns a manifest load writes, in the order [`upsert_all`] binds
/// them after the id; a changed manifest rewrites all but `code`.
const LOADED: [&str; 18] = [
    "code",
    "name",
    "category",
    "description",
    "config_schema",
    "auth_type",
    "oauth_config",
    "base_url",
    "api_version",
    "documentation_url",
    "supports_webhooks",
    "supports_batch",
    "supports_realtime",
    "rate_limit_requests",
    "rate_limit_window",
    "status",
    "manifest",
    "manifest_hash",
];

static UPSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let changed: Vec<String> = LOADED[1..]
        .iter()
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    format!(
        "{} ON CONFLICT (code) DO UPDATE SET {}, updated_at = NOW()
         WHERE integration_providers.manifest_hash IS DISTINCT FROM EXCLUDED.manifest_hash",
        crate::insert_sql("integration_providers", "id", "$1", &LOADED, 2),
        changed.join(", ")
    )
});

/// Loads manifests idempotently: new ones are inserted, changed ones updated,
/// unchanged ones left alone. Returns how many rows changed.
pub async fn upsert_all(tx: &mut Tx<'_>, items: &[ProviderUpsert]) -> Result<u64> {
    // One loader at a time when several replicas start together.
    sqlx::query("SELECT pg_advisory_xact_lock(727275)")
        .execute(&mut **tx)
        .await?;
    let mut changed = 0;
    for p in items {
        let done = sqlx::query(UPSERT.as_str())
            .bind(Uuid::now_v7())
            .bind(&p.code)
            .bind(&p.name)
            .bind(&p.category)
            .bind(&p.description)
            .bind(&p.config_schema)
            .bind(&p.auth_type)
            .bind(&p.oauth_config)
            .bind(&p.base_url)
            .bind(&p.api_version)
            .bind(&p.documentation_url)
            .bind(p.supports_webhooks)
            .bind(p.supports_batch)
            .bind(p.supports_realtime)
            .bind(p.rate_limit_requests)
            .bind(p.rate_limit_window)
            .bind(&p.status)
            .bind(&p.manifest)
            .bind(&p.manifest_hash)
            .execute(&mut **tx)
            .await?;
        changed += done.rows_affected();
    }
    Ok(changed)
}

/// Providers visible to `tenant`, filtered by category, status and a text query.
pub async fn list_visible(
    pool: &PgPool,
    tenant: TenantId,
    category: Option<&str>,
    status: Option<&str>,
    q: Option<&str>,
) -> Result<Vec<Provider>> {
    let sql = format!(
        "SELECT {PROVIDER} FROM integration_providers p
         WHERE NOT EXISTS (SELECT 1 FROM provider_visibility v
                           WHERE v.tenant_id = $1 AND v.provider_id = p.id AND v.hidden)
           AND ($2::text IS NULL OR p.category = $2)
           AND ($3::text IS NULL OR p.status = $3)
           AND ($4::text IS NULL OR p.code ILIKE '%' || $4 || '%' OR p.name ILIKE '%' || $4 || '%'
                OR p.description ILIKE '%' || $4 || '%')
         ORDER BY p.category, p.name"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(category)
        .bind(status)
        .bind(q)
        .fetch_all(pool)
        .await?)
}

/// A provider by code (case-insensitive) if `tenant` may see it.
pub async fn get_visible(pool: &PgPool, tenant: TenantId, code: &str) -> Result<Option<Provider>> {
    let sql = format!(
        "SELECT {PROVIDER} FROM integration_providers p
         WHERE upper(p.code) = upper($2)
           AND NOT EXISTS (SELECT 1 FROM provider_visibility v
                           WHERE v.tenant_id = $1 AND v.provider_id = p.id AND v.hidden)"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(code)
        .fetch_optional(pool)
        .await?)
}

/// A provider by id (no visibility check: for integrations that already use it).
pub async fn get_by_id(pool: &PgPool, id: Uuid) -> Result<Option<Provider>> {
    let sql = format!("SELECT {PROVIDER} FROM integration_providers p WHERE p.id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// Hides or shows a provider for a tenant; `false` when the code is unknown.
pub async fn set_hidden(pool: &PgPool, tenant: TenantId, code: &str, hidden: bool) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO provider_visibility (tenant_id, provider_id, hidden)
         SELECT $1, id, $3 FROM integration_providers WHERE upper(code) = upper($2)
         ON CONFLICT (tenant_id, provider_id) DO UPDATE SET hidden = EXCLUDED.hidden, updated_at = NOW()",
    )
    .bind(tenant.0)
    .bind(code)
    .bind(hidden)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
