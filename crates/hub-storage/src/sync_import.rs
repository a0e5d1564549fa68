//! IMPORT jobs' uploads (`sync_uploads`, migration 0019), rolling back what
//! a job wrote with the records it restores, and an operator's
//! re-resolution of a conflict. Every statement is tenant-scoped or keyed
//! by a job the caller has checked is the tenant's.

use crate::sync::Job;
use crate::{Result, Tx};
use chrono::{DateTime, Utc};
use hub_domain::TenantId;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// An IMPORT job's file, stored with the job.
#[derive(Debug, Clone)]
pub struct NewUpload<'a> {
    /// The job.
    pub job_id: Uuid,
    /// Owner.
    pub tenant_id: TenantId,
    /// `JSON`, `CSV` or `X12`.
    pub format: &'a str,
    /// The file's text.
    pub content: &'a str,
    /// Its SHA-256.
    pub sha256: Vec<u8>,
    /// A `{"template_id", "version"}` reference turning the file into
    /// records.
    pub transform_template: Option<&'a Value>,
    /// The share of invalid records over which the import is rolled back.
    pub max_error_share: f64,
}

/// Stores an upload (in the transaction that creates its job).
pub async fn insert_upload(tx: &mut Tx<'_>, u: &NewUpload<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO sync_uploads (job_id, tenant_id, format, content, size_bytes, sha256,
             transform_template, max_error_share)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(u.job_id)
    .bind(u.tenant_id.0)
    .bind(u.format)
    .bind(u.content)
    .bind(i32::try_from(u.content.len()).unwrap_or(i32::MAX))
    .bind(&u.sha256)
    .bind(u.transform_template)
    .bind(u.max_error_share)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An IMPORT job's file, as integration-sync reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Upload {
    /// `JSON`, `CSV` or `X12`.
    pub format: String,
    /// The file's text.
    pub content: String,
    /// The template reference turning it into records, if any.
    pub transform_template: Option<Value>,
    /// The rollback threshold.
    pub max_error_share: f64,
}

/// The upload of job `job` of `tenant`.
pub async fn upload(pool: &PgPool, tenant: TenantId, job: Uuid) -> Result<Option<Upload>> {
    Ok(sqlx::query_as(
        "SELECT format, content, transform_template, max_error_share FROM sync_uploads
          WHERE tenant_id = $1 AND job_id = $2",
    )
    .bind(tenant.0)
    .bind(job)
    .fetch_optional(pool)
    .await?)
}

/// A record a rollback put back.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The provider's id.
    pub external_id: String,
    /// The hub's id.
    pub id: Uuid,
    /// Its content now; `None`: the job had created it, so it was removed.
    pub data: Option<Value>,
    /// It is (again) soft-deleted.
    pub deleted: bool,
}

/// Why a rollback was not done.
#[derive(Debug)]
pub enum NotRolledBack {
    /// The job was rolled back already, at this time.
    Already(DateTime<Utc>),
    /// Records the job wrote were changed since by another job, a webhook
    /// or an operator (their provider ids, at most 100).
    ChangedSince(Vec<String>),
}

/// Puts back what job `job` wrote: records it created are removed (even if
/// it wrote them twice), records it changed or deleted get their
/// before-images back; marks the job
/// rolled back. Records changed since by another writer make it refuse,
/// unless `skip_changed` (then they are left as they are). Returns the
/// records restored or removed.
pub async fn rollback(
    tx: &mut Tx<'_>,
    job: &Job,
    skip_changed: bool,
) -> Result<std::result::Result<Vec<Restored>, NotRolledBack>> {
    let marked: Option<Uuid> = sqlx::query_scalar(
        "UPDATE sync_jobs SET rolled_back_at = now(), updated_at = now()
          WHERE id = $1 AND tenant_id = $2 AND rolled_back_at IS NULL RETURNING id",
    )
    .bind(job.id)
    .bind(job.tenant_id)
    .fetch_optional(&mut **tx)
    .await?;
    if marked.is_none() {
        let at: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT rolled_back_at FROM sync_jobs WHERE id = $1")
                .bind(job.id)
                .fetch_one(&mut **tx)
                .await?;
        return Ok(Err(NotRolledBack::Already(at.unwrap_or_else(Utc::now))));
    }
    // Lock what the job wrote; what another writer changed since is not the
    // job's to put back.
    let changed: Vec<String> = sqlx::query_scalar(
        "SELECT r.external_id FROM sync_records r
          WHERE r.integration_id = $1 AND r.entity_type = $2
            AND (r.created_by_job = $3 OR EXISTS (SELECT 1 FROM sync_job_items i WHERE i.job_id = $3
                     AND i.external_id = r.external_id AND i.before_data IS NOT NULL))
            AND r.updated_by_job IS DISTINCT FROM $3
          ORDER BY r.external_id FOR UPDATE",
    )
    .bind(job.integration_id)
    .bind(&job.entity_type)
    .bind(job.id)
    .fetch_all(&mut **tx)
    .await?;
    if !changed.is_empty() && !skip_changed {
        return Ok(Err(NotRolledBack::ChangedSince(
            changed.into_iter().take(100).collect(),
        )));
    }
    let restored: Vec<(String, Uuid, Value, Option<DateTime<Utc>>)> = sqlx::query_as(
        "UPDATE sync_records r SET data = i.before_data, content_hash = i.before_hash,
                source_updated_at = i.before_source_at, deleted_at = i.before_deleted_at,
                updated_by_job = NULL, updated_at = now()
           FROM sync_job_items i
          WHERE i.job_id = $3 AND i.before_data IS NOT NULL
            AND r.integration_id = $1 AND r.entity_type = $2 AND r.external_id = i.external_id
            AND r.updated_by_job = $3 AND r.created_by_job IS DISTINCT FROM $3
          RETURNING r.external_id, r.id, r.data, r.deleted_at",
    )
    .bind(job.integration_id)
    .bind(&job.entity_type)
    .bind(job.id)
    .fetch_all(&mut **tx)
    .await?;
    let removed: Vec<(String, Uuid)> = sqlx::query_as(
        "DELETE FROM sync_records r WHERE r.integration_id = $1 AND r.entity_type = $2
            AND r.created_by_job = $3 AND r.updated_by_job = $3
          RETURNING r.external_id, r.id",
    )
    .bind(job.integration_id)
    .bind(&job.entity_type)
    .bind(job.id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(Ok(restored
        .into_iter()
        .map(|(external_id, id, data, deleted_at)| Restored {
            external_id,
            id,
            data: Some(data),
            deleted: deleted_at.is_some(),
        })
        .chain(removed.into_iter().map(|(external_id, id)| Restored {
            external_id,
            id,
            data: None,
            deleted: true,
        }))
        .collect()))
}

/// Which version an operator keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The hub's: it becomes a local change to export.
    Local,
    /// The provider's: it replaces the held version, any local change is
    /// dropped.
    Remote,
}

impl Keep {
    /// `KEEP_LOCAL` or `KEEP_REMOTE`, as stored.
    pub fn resolution(self) -> &'static str {
        match self {
            Keep::Local => "KEEP_LOCAL",
            Keep::Remote => "KEEP_REMOTE",
        }
    }
}

/// What re-resolving a conflict came to.
#[derive(Debug)]
pub enum Resolution {
    /// Not the tenant's conflict.
    NotFound,
    /// Resolved before, at this time.
    Already(DateTime<Utc>),
    /// The record is no longer held (an import that created it was rolled
    /// back).
    RecordGone,
    /// Applied: the record as it now reads.
    Applied {
        /// The integration.
        integration_id: Uuid,
        /// The provider's entity.
        entity_type: String,
        /// The provider's id.
        external_id: String,
        /// The hub's id.
        record_id: Uuid,
        /// The version kept.
        record: Value,
    },
}

#[derive(sqlx::FromRow)]
struct Locked {
    integration_id: Uuid,
    entity_type: String,
    external_id: String,
    local_version: Value,
    remote_version: Value,
    remote_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
}

/// Re-resolves conflict `id` of `tenant` keeping `keep`, by API key `by`:
/// the record gets the chosen version and the conflict its resolution.
pub async fn resolve(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    id: Uuid,
    keep: Keep,
    by: Option<Uuid>,
) -> Result<Resolution> {
    let c: Option<Locked> = sqlx::query_as(
        "SELECT integration_id, entity_type, external_id, local_version, remote_version, remote_at,
                resolved_at
           FROM sync_conflicts WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(tenant.0)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(c) = c else {
        return Ok(Resolution::NotFound);
    };
    if let Some(at) = c.resolved_at {
        return Ok(Resolution::Already(at));
    }
    let (record, applied): (Value, Option<Uuid>) = match keep {
        Keep::Remote => {
            let hash = hub_domain::sync::content_hash(&c.remote_version).to_vec();
            let id = sqlx::query_scalar(
                "UPDATE sync_records SET data = $5, content_hash = $6, source_updated_at = $7,
                        local_changed_at = NULL, local_data = NULL, deleted_at = NULL,
                        updated_by_job = NULL, updated_at = now()
                  WHERE tenant_id = $1 AND integration_id = $2 AND entity_type = $3 AND external_id = $4
                  RETURNING id",
            )
            .bind(tenant.0)
            .bind(c.integration_id)
            .bind(&c.entity_type)
            .bind(&c.external_id)
            .bind(&c.remote_version)
            .bind(hash)
            .bind(c.remote_at)
            .fetch_optional(&mut **tx)
            .await?;
            (c.remote_version, id)
        }
        Keep::Local => {
            let id = sqlx::query_scalar(
                "UPDATE sync_records SET local_data = $5, local_changed_at = now(), deleted_at = NULL,
                        updated_by_job = NULL, updated_at = now()
                  WHERE tenant_id = $1 AND integration_id = $2 AND entity_type = $3 AND external_id = $4
                  RETURNING id",
            )
            .bind(tenant.0)
            .bind(c.integration_id)
            .bind(&c.entity_type)
            .bind(&c.external_id)
            .bind(&c.local_version)
            .fetch_optional(&mut **tx)
            .await?;
            (c.local_version, id)
        }
    };
    let Some(record_id) = applied else {
        return Ok(Resolution::RecordGone);
    };
    sqlx::query(
        "UPDATE sync_conflicts SET resolved_at = now(), resolution = $3, resolved_by_key = $4
          WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.0)
    .bind(id)
    .bind(keep.resolution())
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(Resolution::Applied {
        integration_id: c.integration_id,
        entity_type: c.entity_type,
        external_id: c.external_id,
        record_id,
        record,
    })
}

/// The body of received inbound event `id` of `tenant` (what a provider's
/// webhook sent), for the sync engine to read the records it names.
pub async fn inbound_body(tx: &mut Tx<'_>, tenant: TenantId, id: Uuid) -> Result<Option<Vec<u8>>> {
    Ok(
        sqlx::query_scalar("SELECT body FROM inbound_events WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// The integration and entity of conflict `id` of `tenant`.
pub async fn conflict_of(
    pool: &PgPool,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<(Uuid, String)>> {
    Ok(sqlx::query_as(
        "SELECT integration_id, entity_type FROM sync_conflicts WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.0)
    .bind(id)
    .fetch_optional(pool)
    .await?)
}
