//! EXPORT (migration 0018): the integrations that export a platform event,
//! the local changes events make to `sync_records`, the EXPORT job a change
//! triggers (one pending per integration and entity: bursts coalesce), the
//! pending changes a job pushes, and what a push leaves behind (the
//! provider's version, the record re-keyed from its placeholder to the
//! provider's id). Every statement is tenant-scoped or keyed by a job or
//! integration the caller holds.

use crate::sync::{CHANNEL, Job};
use crate::{Result, Tx};
use chrono::{DateTime, Utc};
use hub_domain::TenantId;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// An integration that opted in to exporting an event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Exporter {
    /// The integration.
    pub integration_id: Uuid,
    /// Its provider's code (the manifest says which entities the event
    /// changes).
    pub provider_code: String,
}

/// The tenant's live integrations that export `event_type`.
pub async fn exporting(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    event_type: &str,
) -> Result<Vec<Exporter>> {
    Ok(sqlx::query_as(
        "SELECT i.id AS integration_id, p.code AS provider_code
           FROM integrations i JOIN integration_providers p ON p.id = i.provider_id
          WHERE i.tenant_id = $1 AND i.deleted_at IS NULL AND $2 = ANY(i.export_events)",
    )
    .bind(tenant.0)
    .bind(event_type)
    .fetch_all(&mut **tx)
    .await?)
}

/// A change the platform made to a record, to export.
#[derive(Debug, Clone)]
pub struct LocalChange {
    /// The platform's id of the record.
    pub key: String,
    /// The provider's id when the platform knows it, else the record's
    /// placeholder (`local:<key>`).
    pub external_id: String,
    /// Whether `external_id` is the provider's (a held record is then
    /// found by it first).
    pub known: bool,
    /// The changed fields (laid over what is held).
    pub record: Value,
    /// Its content hash (the held content of a record the hub did not hold).
    pub hash: Vec<u8>,
    /// When the platform changed it.
    pub at: DateTime<Utc>,
    /// The hub's id, should the record be new.
    pub id: Uuid,
}

/// Records local changes of an integration's entity: a held record (by
/// the provider's id, else by the platform's key) gets the fields laid over
/// its pending change (or its held version), the newest change time; a
/// record not held is created under its key with only the local change.
/// Changes must have distinct keys.
pub async fn record_changes(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    integration: Uuid,
    entity: &str,
    changes: &[LocalChange],
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let known: Vec<Option<String>> = changes
        .iter()
        .map(|c| c.known.then(|| c.external_id.clone()))
        .collect();
    let found: Vec<String> = sqlx::query_scalar(
        "UPDATE sync_records r SET local_data = COALESCE(r.local_data, r.data) || x.record,
                local_changed_at = GREATEST(r.local_changed_at, x.at),
                local_key = COALESCE(r.local_key, x.key), updated_at = now()
           FROM UNNEST($4::text[], $5::text[], $6::jsonb[], $7::timestamptz[]) AS x(key, ext, record, at)
          WHERE r.tenant_id = $1 AND r.integration_id = $2 AND r.entity_type = $3
            AND (r.external_id = x.ext OR r.local_key = x.key)
         RETURNING x.key",
    )
    .bind(tenant.0)
    .bind(integration)
    .bind(entity)
    .bind(changes.iter().map(|c| c.key.clone()).collect::<Vec<_>>())
    .bind(&known)
    .bind(changes.iter().map(|c| c.record.clone()).collect::<Vec<_>>())
    .bind(changes.iter().map(|c| c.at).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    let new: Vec<&LocalChange> = changes.iter().filter(|c| !found.contains(&c.key)).collect();
    if new.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO sync_records (integration_id, entity_type, tenant_id, external_id, id, data,
             content_hash, local_changed_at, local_data, local_key)
         SELECT $1, $2, $3, x.ext, x.id, x.record, x.hash, x.at, x.record, x.key
           FROM UNNEST($4::text[], $5::text[], $6::uuid[], $7::jsonb[], $8::bytea[], $9::timestamptz[])
                AS x(key, ext, id, record, hash, at)
         ON CONFLICT (integration_id, entity_type, external_id) DO UPDATE SET
             local_data = COALESCE(sync_records.local_data, sync_records.data) || EXCLUDED.local_data,
             local_changed_at = GREATEST(sync_records.local_changed_at, EXCLUDED.local_changed_at),
             local_key = COALESCE(sync_records.local_key, EXCLUDED.local_key), updated_at = now()",
    )
    .bind(integration)
    .bind(entity)
    .bind(tenant.0)
    .bind(new.iter().map(|c| c.key.clone()).collect::<Vec<_>>())
    .bind(new.iter().map(|c| c.external_id.clone()).collect::<Vec<_>>())
    .bind(new.iter().map(|c| c.id).collect::<Vec<_>>())
    .bind(new.iter().map(|c| c.record.clone()).collect::<Vec<_>>())
    .bind(new.iter().map(|c| c.hash.clone()).collect::<Vec<_>>())
    .bind(new.iter().map(|c| c.at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Creates an EXPORT job (OUTBOUND, scheduled by TRIGGER, due now) for an
/// integration's entity unless one is already pending or running; returns
/// the new job's id.
pub async fn trigger(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    integration: Uuid,
    entity: &str,
) -> Result<Option<Uuid>> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO sync_jobs (id, tenant_id, integration_id, job_type, entity_type, direction,
             status, scheduled_by, scheduled_at, created_at, updated_at)
         VALUES ($1, $2, $3, 'EXPORT', $4, 'OUTBOUND', 'PENDING', 'TRIGGER', now(), now(), now())
         ON CONFLICT (integration_id, entity_type) WHERE status IN ('PENDING', 'RUNNING') DO NOTHING
         RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.0)
    .bind(integration)
    .bind(entity)
    .fetch_optional(&mut **tx)
    .await?;
    if id.is_some() {
        crate::notify(&mut **tx, CHANNEL).await?;
    }
    Ok(id)
}

/// A record with a change waiting to be exported.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    /// The provider's id, or the placeholder of a record it does not have.
    pub external_id: String,
    /// The hub's id.
    pub id: Uuid,
    /// The provider's version held (for a new record: the local one).
    pub data: Value,
    /// Its hash.
    pub content_hash: Vec<u8>,
    /// The provider's timestamp of it.
    pub source_updated_at: Option<DateTime<Utc>>,
    /// When the platform changed it.
    pub local_changed_at: DateTime<Utc>,
    /// The change.
    pub local_data: Option<Value>,
    /// The platform's id of it.
    pub local_key: Option<String>,
}

/// Up to `limit` pending changes of job `job`'s integration and entity,
/// oldest change first, after `after` (a change time and external id).
pub async fn pending(
    pool: &PgPool,
    job: &Job,
    after: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<Pending>> {
    let (at, ext) = after.unzip();
    Ok(sqlx::query_as(
        "SELECT external_id, id, data, content_hash, source_updated_at, local_changed_at, local_data,
                local_key
           FROM sync_records
          WHERE tenant_id = $1 AND integration_id = $2 AND entity_type = $3
            AND local_changed_at IS NOT NULL AND deleted_at IS NULL
            AND ($4::timestamptz IS NULL OR (local_changed_at, external_id) > ($4, $5))
          ORDER BY local_changed_at, external_id LIMIT $6",
    )
    .bind(job.tenant_id)
    .bind(job.integration_id)
    .bind(&job.entity_type)
    .bind(at)
    .bind(ext)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}

/// What a push (or a conflict the provider's version won) leaves.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The key the record was held under.
    pub from: String,
    /// The provider's id (a new record's, after its create).
    pub to: String,
    /// The provider's version, mapped.
    pub data: Value,
    /// Its hash.
    pub hash: Vec<u8>,
    /// The provider's timestamp of it.
    pub source_updated_at: Option<DateTime<Utc>>,
    /// The change time that was pushed: a change made since stays pending.
    pub pushed: DateTime<Utc>,
}

/// Stores what job `job` pushed: the provider's version, the record
/// re-keyed to the provider's id (a copy a pull took meanwhile under that
/// id gives way), the local change cleared unless a newer one came in.
pub async fn exported(tx: &mut Tx<'_>, job: &Job, pushed: &[Pushed]) -> Result<()> {
    if pushed.is_empty() {
        return Ok(());
    }
    let from: Vec<String> = pushed.iter().map(|p| p.from.clone()).collect();
    let to: Vec<String> = pushed.iter().map(|p| p.to.clone()).collect();
    sqlx::query(
        "DELETE FROM sync_records r USING UNNEST($4::text[], $5::text[]) AS x(old, new)
          WHERE r.tenant_id = $1 AND r.integration_id = $2 AND r.entity_type = $3
            AND x.old <> x.new AND r.external_id = x.new",
    )
    .bind(job.tenant_id)
    .bind(job.integration_id)
    .bind(&job.entity_type)
    .bind(&from)
    .bind(&to)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE sync_records r SET external_id = x.new, data = x.data, content_hash = x.hash,
                source_updated_at = x.source_at,
                local_data = CASE WHEN r.local_changed_at <= x.pushed THEN NULL ELSE r.local_data END,
                local_changed_at = CASE WHEN r.local_changed_at <= x.pushed THEN NULL ELSE r.local_changed_at END,
                updated_by_job = $4, updated_at = now()
           FROM UNNEST($5::text[], $6::text[], $7::jsonb[], $8::bytea[], $9::timestamptz[], $10::timestamptz[])
                AS x(old, new, data, hash, source_at, pushed)
          WHERE r.tenant_id = $1 AND r.integration_id = $2 AND r.entity_type = $3 AND r.external_id = x.old",
    )
    .bind(job.tenant_id)
    .bind(job.integration_id)
    .bind(&job.entity_type)
    .bind(job.id)
    .bind(&from)
    .bind(&to)
    .bind(pushed.iter().map(|p| p.data.clone()).collect::<Vec<_>>())
    .bind(pushed.iter().map(|p| p.hash.clone()).collect::<Vec<_>>())
    .bind(pushed.iter().map(|p| p.source_updated_at).collect::<Vec<_>>())
    .bind(pushed.iter().map(|p| p.pushed).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
