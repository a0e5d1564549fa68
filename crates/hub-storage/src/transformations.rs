//! Transformation templates (`transformation_templates`), one row per
//! version. A template is its `(tenant_id, code)`: `PUT` adds a row with
//! `version + 1` and marks the previous one inactive. System templates have
//! no tenant and are visible to every tenant; every tenant query here reads
//! the tenant's own rows and the system ones, and writes only its own.

use crate::{Result, Tx};
use chrono::{DateTime, Utc};
use hub_domain::TenantId;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// One version of a template, as stored and shown.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Template {
    /// Id of this version.
    pub id: Uuid,
    /// Owner; `None` for a system template.
    #[serde(skip)]
    pub tenant_id: Option<Uuid>,
    /// Stable code, shared by every version.
    pub code: String,
    /// Display name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Input format: `JSON`, `XML`, `CSV`, `X12`.
    pub source_format: String,
    /// Output format.
    pub target_format: String,
    /// Options of the input format (null: its defaults).
    #[schema(value_type = Object)]
    pub source_options: Option<Value>,
    /// Options of the output format (null: its defaults).
    #[schema(value_type = Object)]
    pub target_options: Option<Value>,
    /// Mapping rules (`docs/transformations.md`).
    #[schema(value_type = Object)]
    pub mapping_rules: Value,
    /// JSON Schema of the output, or `{"input": schema, "output": schema}`.
    #[schema(value_type = Object)]
    pub validation_rules: Option<Value>,
    /// Shipped with the hub, read-only (copy it to change it).
    pub is_system: bool,
    /// `LOAD`, `INVOICE`, `CRM`, …
    pub category: Option<String>,
    /// Version, from 1.
    pub version: i32,
    /// Whether this is the version in use.
    pub is_active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// API key that created this version.
    #[serde(rename = "created_by")]
    pub created_by_key: Option<Uuid>,
}

const COLUMNS: &str =
    "t.id, t.tenant_id, t.code, t.name, t.description, t.source_format, t.target_format,
    t.source_options, t.target_options, t.mapping_rules, t.validation_rules,
    COALESCE(t.is_system, false) AS is_system, t.category, COALESCE(t.version, 1) AS version,
    COALESCE(t.is_active, true) AS is_active, COALESCE(t.created_at, 'epoch') AS created_at,
    COALESCE(t.updated_at, 'epoch') AS updated_at, t.created_by_key";

/// Rows `tenant` may read: its own and the system ones, not deleted.
const VISIBLE: &str = "(t.tenant_id = $1 OR t.tenant_id IS NULL) AND t.deleted_at IS NULL";

/// List filters.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Category (exact).
    pub category: Option<String>,
    /// Input format (upper case).
    pub source_format: Option<String>,
    /// Output format (upper case).
    pub target_format: Option<String>,
    /// Only system templates (`true`) or only the tenant's (`false`).
    pub is_system: Option<bool>,
    /// Only ids after this one (cursor).
    pub after: Option<Uuid>,
}

/// Version `id`, the tenant's or a system one; `None` for another tenant's.
pub async fn get(pool: &PgPool, tenant: TenantId, id: Uuid) -> Result<Option<Template>> {
    let sql =
        format!("SELECT {COLUMNS} FROM transformation_templates t WHERE {VISIBLE} AND t.id = $2");
    crate::fetch_owned(pool, sql, tenant, id).await
}

/// Version `version` of the template that version `id` belongs to.
pub async fn get_version(
    pool: &PgPool,
    tenant: TenantId,
    id: Uuid,
    version: i32,
) -> Result<Option<Template>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM transformation_templates t
           JOIN transformation_templates o ON o.id = $2
                AND (o.tenant_id = $1 OR o.tenant_id IS NULL) AND o.deleted_at IS NULL
          WHERE {VISIBLE} AND t.tenant_id IS NOT DISTINCT FROM o.tenant_id AND t.code = o.code
            AND COALESCE(t.version, 1) = $3"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(id)
        .bind(version)
        .fetch_optional(pool)
        .await?)
}

/// The version a reference uses: version `version` of the template that
/// version `id` belongs to, or its active version when `version` is `None`;
/// `None` when the tenant cannot see it (another tenant's, or deleted).
pub async fn resolve(
    pool: &PgPool,
    tenant: TenantId,
    id: Uuid,
    version: Option<i32>,
) -> Result<Option<Template>> {
    if let Some(v) = version {
        return get_version(pool, tenant, id, v).await;
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM transformation_templates t
           JOIN transformation_templates o ON o.id = $2
                AND (o.tenant_id = $1 OR o.tenant_id IS NULL) AND o.deleted_at IS NULL
          WHERE {VISIBLE} AND t.tenant_id IS NOT DISTINCT FROM o.tenant_id AND t.code = o.code
            AND COALESCE(t.is_active, true)
          ORDER BY COALESCE(t.version, 1) DESC LIMIT 1"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// The active version of the template `code` the tenant uses: its own if it
/// has one with that code, else the system one.
pub async fn active_by_code(
    pool: &PgPool,
    tenant: TenantId,
    code: &str,
) -> Result<Option<Template>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM transformation_templates t
          WHERE {VISIBLE} AND t.code = $2 AND COALESCE(t.is_active, true)
          ORDER BY t.tenant_id NULLS LAST LIMIT 1"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(code)
        .fetch_optional(pool)
        .await?)
}

/// What uses a template: the tenant's outbound subscriptions and inbound
/// endpoints whose `transform_template` names any version of the template
/// that version `id` belongs to, as `("subscription" | "inbound_endpoint",
/// id)`, at most `limit`.
pub async fn users(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    id: Uuid,
    limit: i64,
) -> Result<Vec<(String, Uuid)>> {
    Ok(sqlx::query_as(
        "WITH versions AS (
            SELECT t.id::text AS id FROM transformation_templates t
              JOIN transformation_templates o ON o.id = $2
                   AND (o.tenant_id = $1 OR o.tenant_id IS NULL)
             WHERE t.tenant_id IS NOT DISTINCT FROM o.tenant_id AND t.code = o.code)
         (SELECT 'subscription', s.id FROM webhook_subscriptions s
           WHERE s.tenant_id = $1 AND s.transform_template->>'template_id' IN (SELECT id FROM versions)
           LIMIT $3)
         UNION ALL
         (SELECT 'inbound_endpoint', e.id FROM webhook_endpoints e
           WHERE e.tenant_id = $1 AND e.transform_template->>'template_id' IN (SELECT id FROM versions)
           LIMIT $3)
         LIMIT $3",
    )
    .bind(tenant.0)
    .bind(id)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?)
}

/// The latest version of the tenant's own template `code`, locked until
/// `tx` ends (system templates are not returned: they are read-only).
pub async fn latest_for_update(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    code: &str,
) -> Result<Option<Template>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM transformation_templates t
          WHERE t.tenant_id = $1 AND t.code = $2 AND t.deleted_at IS NULL
          ORDER BY COALESCE(t.version, 1) DESC LIMIT 1 FOR UPDATE"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(code)
        .fetch_optional(&mut **tx)
        .await?)
}

/// One page of the active templates `tenant` sees (its own and the system
/// ones), by id; `limit + 1` rows are read so the caller knows whether a
/// next page exists.
pub async fn list(
    pool: &PgPool,
    tenant: TenantId,
    f: &Filter,
    limit: u32,
) -> Result<Vec<Template>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM transformation_templates t
          WHERE {VISIBLE} AND COALESCE(t.is_active, true)
            AND ($2::text IS NULL OR t.category = $2)
            AND ($3::text IS NULL OR upper(t.source_format) = $3)
            AND ($4::text IS NULL OR upper(t.target_format) = $4)
            AND ($5::bool IS NULL OR COALESCE(t.is_system, false) = $5)
            AND ($6::uuid IS NULL OR t.id > $6)
          ORDER BY t.id LIMIT $7"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(&f.category)
        .bind(&f.source_format)
        .bind(&f.target_format)
        .bind(f.is_system)
        .bind(f.after)
        .bind(i64::from(limit) + 1)
        .fetch_all(pool)
        .await?)
}

/// Inserts a version (its id, tenant and version chosen by the caller). A
/// second active version of one code, or a version number taken, is a
/// `Conflict`.
pub async fn insert(tx: &mut Tx<'_>, t: &Template) -> Result<()> {
    sqlx::query(
        "INSERT INTO transformation_templates (id, tenant_id, code, name, description, source_format,
            target_format, source_options, target_options, mapping_rules, validation_rules, is_system,
            category, version, is_active, created_by_key, updated_by_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
    )
    .bind(t.id)
    .bind(t.tenant_id)
    .bind(&t.code)
    .bind(&t.name)
    .bind(&t.description)
    .bind(&t.source_format)
    .bind(&t.target_format)
    .bind(&t.source_options)
    .bind(&t.target_options)
    .bind(&t.mapping_rules)
    .bind(&t.validation_rules)
    .bind(t.is_system)
    .bind(&t.category)
    .bind(t.version)
    .bind(t.is_active)
    .bind(t.created_by_key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks every version of the template `(tenant, code)` inactive (`tenant`
/// `None`: a system template).
pub async fn deactivate(tx: &mut Tx<'_>, tenant: Option<Uuid>, code: &str) -> Result<()> {
    sqlx::query(
        "UPDATE transformation_templates SET is_active = false, updated_at = now()
          WHERE tenant_id IS NOT DISTINCT FROM $1 AND code = $2 AND is_active",
    )
    .bind(tenant)
    .bind(code)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Soft-deletes every version of the tenant's own template that version `id`
/// belongs to; `false` when the tenant has no such template.
pub async fn delete(tx: &mut Tx<'_>, tenant: TenantId, id: Uuid) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE transformation_templates SET deleted_at = now(), is_active = false, updated_at = now()
          WHERE tenant_id = $1 AND deleted_at IS NULL
            AND code = (SELECT code FROM transformation_templates
                         WHERE id = $2 AND tenant_id = $1 AND deleted_at IS NULL)",
    )
    .bind(tenant.0)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Stores the shipped system templates (`tenant_id` null, `is_system`):
/// a new code is inserted as version 1; one whose content changed gets a new
/// active version. Safe when several services start at once (one advisory
/// lock). Returns how many versions were written.
pub async fn sync_system(pool: &PgPool, templates: &[Template]) -> Result<usize> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('transformation_templates.system'))")
        .execute(&mut *tx)
        .await?;
    let mut written = 0;
    for t in templates {
        let sql = format!(
            "SELECT {COLUMNS} FROM transformation_templates t
              WHERE t.tenant_id IS NULL AND t.code = $1 AND t.deleted_at IS NULL
              ORDER BY COALESCE(t.version, 1) DESC LIMIT 1"
        );
        let latest: Option<Template> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&t.code)
            .fetch_optional(&mut *tx)
            .await?;
        if latest
            .as_ref()
            .is_some_and(|l| same_content(l, t) && l.is_active)
        {
            continue;
        }
        let mut row = t.clone();
        row.tenant_id = None;
        row.is_system = true;
        row.is_active = true;
        row.version = latest.map_or(1, |l| l.version + 1);
        deactivate(&mut tx, None, &t.code).await?;
        insert(&mut tx, &row).await?;
        written += 1;
    }
    tx.commit().await?;
    Ok(written)
}

fn same_content(a: &Template, b: &Template) -> bool {
    (
        &a.name,
        &a.description,
        &a.source_format,
        &a.target_format,
        &a.source_options,
        &a.target_options,
        &a.mapping_rules,
        &a.validation_rules,
        &a.category,
    ) == (
        &b.name,
        &b.description,
        &b.source_format,
        &b.target_format,
        &b.source_options,
        &b.target_options,
        &b.mapping_rules,
        &b.validation_rules,
        &b.category,
    )
}
