//! Sync jobs and the records they keep (`sync_jobs`, `sync_records`,
//! `sync_conflicts`, `sync_job_items`, `sync_seen`, `sync_watermarks`;
//! migration 0017). A job is claimed under a lease; each page of records is
//! written in one transaction with the job's progress and checkpoint, so a
//! worker killed mid-job leaves the job resumable from its last committed
//! page. Every statement is tenant-scoped or keyed by a job the caller
//! holds.

use crate::{Result, Tx};
use chrono::{DateTime, Utc};
use hub_domain::TenantId;
use hub_domain::status::{SyncDirection, SyncJobStatus, SyncJobType};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// The NOTIFY channel a new job wakes the workers on.
pub const CHANNEL: &str = "hub_sync_jobs";

/// A sync job, as stored and shown.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Job {
    /// Id.
    pub id: Uuid,
    /// Owner.
    #[serde(skip)]
    pub tenant_id: Uuid,
    /// The integration synced.
    pub integration_id: Uuid,
    /// FULL_SYNC, INCREMENTAL, EXPORT, IMPORT.
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub job_type: SyncJobType,
    /// The provider's entity (`contacts`, `Opportunity`, `invoices`).
    pub entity_type: String,
    /// INBOUND or OUTBOUND.
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub direction: SyncDirection,
    /// Date range (`since`, `until`), `status`, `ids`.
    #[schema(value_type = Object)]
    pub filters: Option<Value>,
    /// PENDING, RUNNING, COMPLETED, FAILED, CANCELLED.
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub status: SyncJobStatus,
    /// First claimed.
    pub started_at: Option<DateTime<Utc>>,
    /// Finished.
    pub completed_at: Option<DateTime<Utc>>,
    /// Records the provider says there are (when it says).
    pub total_records: i32,
    /// Records read so far.
    pub processed_records: i32,
    /// Records taken (created, updated, unchanged or decided by a conflict).
    pub success_count: i32,
    /// Records refused (invalid, unmappable).
    pub error_count: i32,
    /// Created.
    pub created_count: i32,
    /// Updated.
    pub updated_count: i32,
    /// Same content as held: not rewritten.
    pub unchanged_count: i32,
    /// Conflicts recorded.
    pub conflict_count: i32,
    /// Soft-deleted (not seen in a complete FULL_SYNC).
    pub deleted_count: i32,
    /// Pages committed.
    pub current_page: i32,
    /// MANUAL, SCHEDULED or TRIGGER.
    pub scheduled_by: Option<String>,
    /// When it may start.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// A cancel was asked for (honoured between pages).
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// INCREMENTAL: records changed after this.
    pub watermark: Option<DateTime<Utc>>,
    /// The newest provider timestamp seen (the next watermark on success).
    pub high_watermark: Option<DateTime<Utc>>,
    /// FULL_SYNC: delete more than `max_delete_share` of the held records.
    pub confirm_deletions: bool,
    /// FULL_SYNC: the largest share of held records it may delete unconfirmed.
    pub max_delete_share: f64,
    /// Why it failed.
    pub error_message: Option<String>,
    /// When what it wrote was rolled back.
    pub rolled_back_at: Option<DateTime<Utc>>,
    /// Times claimed (more than 1: resumed after a worker died).
    pub runs: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The API key that created it.
    #[serde(rename = "created_by")]
    pub created_by_key: Option<Uuid>,
    /// Where a resumed run starts (the provider's paging state after the
    /// last committed page).
    #[serde(skip)]
    pub checkpoint: Option<Value>,
}

const COLUMNS: &str = "j.id, j.tenant_id, j.integration_id, j.job_type, j.entity_type, j.direction,
    j.filters, COALESCE(j.status, 'PENDING') AS status, j.started_at, j.completed_at,
    COALESCE(j.total_records, 0) AS total_records, COALESCE(j.processed_records, 0) AS processed_records,
    COALESCE(j.success_count, 0) AS success_count, COALESCE(j.error_count, 0) AS error_count,
    j.created_count, j.updated_count, j.unchanged_count, j.conflict_count, j.deleted_count,
    j.current_page, j.scheduled_by, j.scheduled_at, j.cancel_requested_at, j.watermark,
    j.high_watermark, j.confirm_deletions, j.max_delete_share, j.error_message, j.rolled_back_at,
    j.runs, COALESCE(j.created_at, now()) AS created_at, j.updated_at, j.created_by_key, j.checkpoint";

/// A job to create.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// Owner.
    pub tenant_id: TenantId,
    /// Integration.
    pub integration_id: Uuid,
    /// Type.
    pub job_type: SyncJobType,
    /// Entity.
    pub entity_type: String,
    /// Direction.
    pub direction: SyncDirection,
    /// Filters.
    pub filters: Option<Value>,
    /// MANUAL, SCHEDULED, TRIGGER.
    pub scheduled_by: &'static str,
    /// When it may start.
    pub scheduled_at: DateTime<Utc>,
    /// INCREMENTAL: the watermark to start from.
    pub watermark: Option<DateTime<Utc>>,
    /// Delete beyond the share.
    pub confirm_deletions: bool,
    /// The deletion guard's share.
    pub max_delete_share: f64,
    /// Creator.
    pub created_by_key: Option<Uuid>,
}

/// Inserts a job; a second pending or running job for the same integration
/// and entity is a `Conflict` on `sync_jobs_one_active`.
pub async fn insert(tx: &mut Tx<'_>, j: &NewJob) -> Result<()> {
    sqlx::query(
        "INSERT INTO sync_jobs (id, tenant_id, integration_id, job_type, entity_type, direction, filters,
             status, scheduled_by, scheduled_at, watermark, confirm_deletions, max_delete_share,
             created_by_key, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'PENDING', $8, $9, $10, $11, $12, $13, now(), now())",
    )
    .bind(j.id)
    .bind(j.tenant_id.0)
    .bind(j.integration_id)
    .bind(j.job_type.as_str())
    .bind(&j.entity_type)
    .bind(j.direction.as_str())
    .bind(&j.filters)
    .bind(j.scheduled_by)
    .bind(j.scheduled_at)
    .bind(j.watermark)
    .bind(j.confirm_deletions)
    .bind(j.max_delete_share)
    .bind(j.created_by_key)
    .execute(&mut **tx)
    .await?;
    crate::notify(&mut **tx, CHANNEL).await
}

/// The tenant's job `id`.
pub async fn get(pool: &PgPool, tenant: TenantId, id: Uuid) -> Result<Option<Job>> {
    let sql = format!("SELECT {COLUMNS} FROM sync_jobs j WHERE j.tenant_id = $1 AND j.id = $2");
    crate::fetch_owned(pool, sql, tenant, id).await
}

/// The pending or running job of an integration and entity, if any.
pub async fn active(
    pool: &PgPool,
    tenant: TenantId,
    integration: Uuid,
    entity: &str,
) -> Result<Option<Job>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sync_jobs j WHERE j.tenant_id = $1 AND j.integration_id = $2
            AND j.entity_type = $3 AND j.status IN ('PENDING', 'RUNNING')"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(integration)
        .bind(entity)
        .fetch_optional(pool)
        .await?)
}

/// List filters.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// One integration.
    pub integration_id: Option<Uuid>,
    /// One status.
    pub status: Option<SyncJobStatus>,
    /// One entity.
    pub entity_type: Option<String>,
    /// Ids before this one (newest first).
    pub before: Option<Uuid>,
}

/// One page of the tenant's jobs, newest first (`limit + 1` rows read).
pub async fn list(pool: &PgPool, tenant: TenantId, f: &Filter, limit: u32) -> Result<Vec<Job>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sync_jobs j
          WHERE j.tenant_id = $1
            AND ($2::uuid IS NULL OR j.integration_id = $2)
            AND ($3::text IS NULL OR j.status = $3)
            AND ($4::text IS NULL OR j.entity_type = $4)
            AND ($5::uuid IS NULL OR j.id < $5)
          ORDER BY j.id DESC LIMIT $6"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(f.integration_id)
        .bind(f.status.map(SyncJobStatus::as_str))
        .bind(&f.entity_type)
        .bind(f.before)
        .bind(i64::from(limit) + 1)
        .fetch_all(pool)
        .await?)
}

/// Asks job `id` to stop: a pending job is cancelled at once, a running
/// one between pages. Returns the job as it now is (`None`: not the
/// tenant's).
pub async fn cancel(tx: &mut Tx<'_>, tenant: TenantId, id: Uuid) -> Result<Option<Job>> {
    let sql = format!(
        "UPDATE sync_jobs j SET
             status = CASE WHEN j.status = 'PENDING' THEN 'CANCELLED' ELSE j.status END,
             completed_at = CASE WHEN j.status = 'PENDING' THEN now() ELSE j.completed_at END,
             cancel_requested_at = CASE WHEN j.status IN ('PENDING', 'RUNNING')
                 THEN COALESCE(j.cancel_requested_at, now()) ELSE j.cancel_requested_at END,
             updated_at = now()
          WHERE j.tenant_id = $1 AND j.id = $2
          RETURNING {COLUMNS}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?)
}

/// Claims one job for `owner` for `lease_secs`: a due pending one, or a
/// running one whose lease lapsed (its worker died: it resumes from its
/// checkpoint). `runs` counts the claims.
pub async fn claim(pool: &PgPool, owner: &str, lease_secs: f64) -> Result<Option<Job>> {
    let sql = format!(
        "WITH next AS (
             SELECT id FROM sync_jobs
              WHERE (status = 'PENDING' AND scheduled_at <= now())
                 OR (status = 'RUNNING' AND lease_until < now())
              ORDER BY scheduled_at
              LIMIT 1 FOR UPDATE SKIP LOCKED)
         UPDATE sync_jobs j SET status = 'RUNNING', lease_owner = $1,
                lease_until = now() + make_interval(secs => $2), runs = j.runs + 1,
                started_at = COALESCE(j.started_at, now()), updated_at = now()
           FROM next WHERE j.id = next.id
         RETURNING {COLUMNS}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(owner)
        .bind(lease_secs)
        .fetch_optional(pool)
        .await?)
}

/// The earliest time a pending job becomes due, to sleep until then.
pub async fn next_due(pool: &PgPool) -> Result<Option<DateTime<Utc>>> {
    Ok(
        sqlx::query_scalar("SELECT min(scheduled_at) FROM sync_jobs WHERE status = 'PENDING'")
            .fetch_one(pool)
            .await?,
    )
}

/// What the hub holds of a record, for the sync rules.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldRow {
    /// The provider's id.
    pub external_id: String,
    /// The hub's id.
    pub id: Uuid,
    /// Mapped content.
    pub data: Value,
    /// Its hash.
    pub content_hash: Vec<u8>,
    /// The provider's timestamp of it.
    pub source_updated_at: Option<DateTime<Utc>>,
    /// A local change not yet exported.
    pub local_changed_at: Option<DateTime<Utc>>,
    /// The local change's content.
    pub local_data: Option<Value>,
    /// Soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The held records among `ids`, locked until `tx` ends (a webhook's update
/// of the same record waits), in id order (two writers lock in the same
/// order). Each id is looked up in the primary key by a `LATERAL`
/// subquery: with `external_id = ANY($3)`, or a join, a prepared
/// statement's generic plan scans every held record of the entity and
/// filters (seen: 35–90 ms a page at 200,000 held records).
pub async fn lock_held(
    tx: &mut Tx<'_>,
    integration: Uuid,
    entity: &str,
    ids: &[String],
) -> Result<Vec<HeldRow>> {
    let mut sorted: Vec<&str> = ids.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    Ok(sqlx::query_as(
        "SELECT r.external_id, r.id, r.data, r.content_hash, r.source_updated_at, r.local_changed_at,
                r.local_data, r.deleted_at
           FROM UNNEST($3::text[]) WITH ORDINALITY AS k(external_id, n)
          CROSS JOIN LATERAL (
                SELECT s.* FROM sync_records s
                 WHERE s.integration_id = $1 AND s.entity_type = $2 AND s.external_id = k.external_id
                   FOR UPDATE) r
          ORDER BY k.n",
    )
    .bind(integration)
    .bind(entity)
    .bind(&sorted)
    .fetch_all(&mut **tx)
    .await?)
}

/// A record version to store.
#[derive(Debug, Clone)]
pub struct Upsert {
    /// The provider's id.
    pub external_id: String,
    /// The hub's id (kept for an existing record).
    pub id: Uuid,
    /// Mapped content.
    pub data: Value,
    /// Its hash.
    pub hash: Vec<u8>,
    /// The provider's timestamp.
    pub source_updated_at: Option<DateTime<Utc>>,
    /// The local change still pending after this write (the local side
    /// won a conflict: its change waits for export), else `None`.
    pub local_changed_at: Option<DateTime<Utc>>,
    /// That change's content.
    pub local_data: Option<Value>,
}

/// A conflict to record.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// Id.
    pub id: Uuid,
    /// The provider's id of the record.
    pub external_id: String,
    /// The hub's version.
    pub local: Value,
    /// The provider's version.
    pub remote: Value,
    /// The hub's timestamp (its local change's, or the held version's).
    pub local_at: Option<DateTime<Utc>>,
    /// The provider's timestamp.
    pub remote_at: Option<DateTime<Utc>>,
    /// LOCAL or REMOTE.
    pub winner: &'static str,
    /// The rule that decided.
    pub rule: &'static str,
}

/// A per-record outcome to remember: a before-image (for rollback) or an
/// error.
#[derive(Debug, Clone)]
pub struct Item {
    /// The provider's id (or `#<n>` for a record without one).
    pub external_id: String,
    /// UPDATED, CONFLICT, DELETED, ERROR.
    pub outcome: &'static str,
    /// The held version before the change.
    pub before: Option<HeldRow>,
    /// What was wrong.
    pub error: Option<Value>,
}

/// Progress a page adds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Read.
    pub processed: i32,
    /// Taken.
    pub success: i32,
    /// Refused.
    pub errors: i32,
    /// Created.
    pub created: i32,
    /// Updated.
    pub updated: i32,
    /// Unchanged.
    pub unchanged: i32,
    /// Conflicts.
    pub conflicts: i32,
}

/// Everything one page writes, with the job's progress.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Versions to store.
    pub upserts: Vec<Upsert>,
    /// Conflicts.
    pub conflicts: Vec<Conflict>,
    /// Outcomes to remember.
    pub items: Vec<Item>,
    /// FULL_SYNC: the ids this page saw.
    pub seen: Vec<String>,
    /// Counters.
    pub progress: Progress,
    /// The provider's total, when it says.
    pub total: Option<i32>,
    /// The newest provider timestamp of the page.
    pub newest: Option<DateTime<Utc>>,
    /// Where the next page starts (`None`: this was the last).
    pub checkpoint: Option<Value>,
    /// The page number.
    pub number: i32,
}

/// Why a page was not written: the job is no longer this worker's.
#[derive(Debug, thiserror::Error)]
#[error("the job's lease was lost (another worker took it over)")]
pub struct LeaseLost;

/// Writes a page of job `job` for `owner` (who must still hold the lease,
/// which is renewed for `lease_secs`): records, conflicts, items, seen ids,
/// progress and checkpoint. Returns whether a cancel was asked for, or
/// `Ok(Err(LeaseLost))` (the caller rolls back).
#[allow(clippy::too_many_lines)]
pub async fn write_page(
    tx: &mut Tx<'_>,
    job: &Job,
    owner: &str,
    lease_secs: f64,
    page: &Page,
) -> Result<std::result::Result<bool, LeaseLost>> {
    let p = page.progress;
    let cancel: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
        "UPDATE sync_jobs SET
             processed_records = COALESCE(processed_records, 0) + $3,
             success_count = COALESCE(success_count, 0) + $4,
             error_count = COALESCE(error_count, 0) + $5,
             created_count = created_count + $6, updated_count = updated_count + $7,
             unchanged_count = unchanged_count + $8, conflict_count = conflict_count + $9,
             total_records = COALESCE($10, total_records),
             high_watermark = GREATEST(high_watermark, $11),
             checkpoint = $12, current_page = $13,
             lease_until = now() + make_interval(secs => $14), updated_at = now()
          WHERE id = $1 AND lease_owner = $2 AND status = 'RUNNING'
          RETURNING cancel_requested_at",
    )
    .bind(job.id)
    .bind(owner)
    .bind(p.processed)
    .bind(p.success)
    .bind(p.errors)
    .bind(p.created)
    .bind(p.updated)
    .bind(p.unchanged)
    .bind(p.conflicts)
    .bind(page.total)
    .bind(page.newest)
    .bind(&page.checkpoint)
    .bind(page.number)
    .bind(lease_secs)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(cancel) = cancel else {
        return Ok(Err(LeaseLost));
    };
    let target = Target {
        tenant: job.tenant_id,
        integration: job.integration_id,
        entity: &job.entity_type,
        job: Some(job.id),
    };
    write_records(tx, &target, &page.upserts, &page.conflicts).await?;
    insert_items(tx, job.id, page.number, &page.items).await?;
    if !page.seen.is_empty() {
        sqlx::query(
            "INSERT INTO sync_seen (job_id, external_id) SELECT $1, x FROM UNNEST($2::text[]) AS x
             ON CONFLICT DO NOTHING",
        )
        .bind(job.id)
        .bind(&page.seen)
        .execute(&mut **tx)
        .await?;
    }
    Ok(Ok(cancel.is_some()))
}

/// Where records are written: a tenant's integration and entity, by a job
/// or (`job: None`) by a webhook or an operator.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Owner.
    pub tenant: Uuid,
    /// The integration.
    pub integration: Uuid,
    /// The provider's entity.
    pub entity: &'a str,
    /// The job writing (`created_by_job`/`updated_by_job`), if any.
    pub job: Option<Uuid>,
}

/// Upserts record versions and records conflicts at `t`, each in one
/// statement.
pub async fn write_records(
    tx: &mut Tx<'_>,
    t: &Target<'_>,
    upserts: &[Upsert],
    conflicts: &[Conflict],
) -> Result<()> {
    if !upserts.is_empty() {
        let u = upserts;
        sqlx::query(
            "INSERT INTO sync_records (integration_id, entity_type, tenant_id, external_id, id, data,
                 content_hash, source_updated_at, local_changed_at, local_data, created_by_job, updated_by_job)
             SELECT $1, $2, $3, x.external_id, x.id, x.data, x.hash, x.source_at, x.local_at, x.local_data, $4, $4
               FROM UNNEST($5::text[], $6::uuid[], $7::jsonb[], $8::bytea[], $9::timestamptz[],
                           $10::timestamptz[], $11::jsonb[])
                    AS x(external_id, id, data, hash, source_at, local_at, local_data)
             ON CONFLICT (integration_id, entity_type, external_id) DO UPDATE SET
                 data = EXCLUDED.data, content_hash = EXCLUDED.content_hash,
                 source_updated_at = EXCLUDED.source_updated_at, deleted_at = NULL,
                 local_changed_at = EXCLUDED.local_changed_at, local_data = EXCLUDED.local_data,
                 updated_by_job = $4, updated_at = now()",
        )
        .bind(t.integration)
        .bind(t.entity)
        .bind(t.tenant)
        .bind(t.job)
        .bind(u.iter().map(|x| x.external_id.clone()).collect::<Vec<_>>())
        .bind(u.iter().map(|x| x.id).collect::<Vec<_>>())
        .bind(u.iter().map(|x| x.data.clone()).collect::<Vec<_>>())
        .bind(u.iter().map(|x| x.hash.clone()).collect::<Vec<_>>())
        .bind(u.iter().map(|x| x.source_updated_at).collect::<Vec<_>>())
        .bind(u.iter().map(|x| x.local_changed_at).collect::<Vec<_>>())
        .bind(u.iter().map(|x| x.local_data.clone()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !conflicts.is_empty() {
        let c = conflicts;
        sqlx::query(
            "INSERT INTO sync_conflicts (id, tenant_id, integration_id, job_id, entity_type, external_id,
                 local_version, remote_version, local_at, remote_at, winner, rule)
             SELECT x.id, $1, $2, $3, $4, x.external_id, x.local, x.remote, x.local_at, x.remote_at,
                    x.winner, x.rule
               FROM UNNEST($5::uuid[], $6::text[], $7::jsonb[], $8::jsonb[], $9::timestamptz[],
                           $10::timestamptz[], $11::text[], $12::text[])
                    AS x(id, external_id, local, remote, local_at, remote_at, winner, rule)",
        )
        .bind(t.tenant)
        .bind(t.integration)
        .bind(t.job)
        .bind(t.entity)
        .bind(c.iter().map(|x| x.id).collect::<Vec<_>>())
        .bind(c.iter().map(|x| x.external_id.clone()).collect::<Vec<_>>())
        .bind(c.iter().map(|x| x.local.clone()).collect::<Vec<_>>())
        .bind(c.iter().map(|x| x.remote.clone()).collect::<Vec<_>>())
        .bind(c.iter().map(|x| x.local_at).collect::<Vec<_>>())
        .bind(c.iter().map(|x| x.remote_at).collect::<Vec<_>>())
        .bind(c.iter().map(|x| x.winner).collect::<Vec<_>>())
        .bind(c.iter().map(|x| x.rule).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Remembers per-record outcomes of `job` (a record's first outcome in the
/// job is kept: its before-image is the one rollback needs).
async fn insert_items(tx: &mut Tx<'_>, job: Uuid, page: i32, items: &[Item]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let before = |f: fn(&HeldRow) -> Option<Value>| -> Vec<Option<Value>> {
        items
            .iter()
            .map(|i| i.before.as_ref().and_then(f))
            .collect()
    };
    sqlx::query(
        "INSERT INTO sync_job_items (job_id, page, external_id, outcome, before_data, before_hash,
             before_source_at, before_deleted_at, error)
         SELECT $1, $2, x.external_id, x.outcome, x.data, x.hash, x.source_at, x.deleted_at, x.error
           FROM UNNEST($3::text[], $4::text[], $5::jsonb[], $6::bytea[], $7::timestamptz[],
                       $8::timestamptz[], $9::jsonb[])
                AS x(external_id, outcome, data, hash, source_at, deleted_at, error)
         ON CONFLICT (job_id, external_id) DO NOTHING",
    )
    .bind(job)
    .bind(page)
    .bind(
        items
            .iter()
            .map(|i| i.external_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(items.iter().map(|i| i.outcome).collect::<Vec<_>>())
    .bind(before(|h| Some(h.data.clone())))
    .bind(
        items
            .iter()
            .map(|i| i.before.as_ref().map(|h| h.content_hash.clone()))
            .collect::<Vec<_>>(),
    )
    .bind(
        items
            .iter()
            .map(|i| i.before.as_ref().and_then(|h| h.source_updated_at))
            .collect::<Vec<_>>(),
    )
    .bind(
        items
            .iter()
            .map(|i| i.before.as_ref().and_then(|h| h.deleted_at))
            .collect::<Vec<_>>(),
    )
    .bind(items.iter().map(|i| i.error.clone()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// FULL_SYNC: how many of the integration's live records of the entity the
/// job has not seen, and how many it holds.
pub async fn unseen(pool: &PgPool, job: &Job) -> Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT count(*) FILTER (WHERE NOT EXISTS
                    (SELECT 1 FROM sync_seen s WHERE s.job_id = $3 AND s.external_id = r.external_id)),
                count(*)
           FROM sync_records r
          WHERE r.integration_id = $1 AND r.entity_type = $2 AND r.deleted_at IS NULL
            AND NOT starts_with(r.external_id, $4)",
    )
    .bind(job.integration_id)
    .bind(&job.entity_type)
    .bind(job.id)
    .bind(hub_domain::sync::PLACEHOLDER_PREFIX)
    .fetch_one(pool)
    .await?)
}

/// How many live records of the entity a tenant's integration holds.
pub async fn count_held(
    pool: &PgPool,
    tenant: TenantId,
    integration: Uuid,
    entity: &str,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM sync_records
          WHERE tenant_id = $1 AND integration_id = $2 AND entity_type = $3 AND deleted_at IS NULL",
    )
    .bind(tenant.0)
    .bind(integration)
    .bind(entity)
    .fetch_one(pool)
    .await?)
}

/// FULL_SYNC: soft-deletes the live records the job has not seen, keeping
/// their before-images; returns their ids and last content.
pub async fn delete_unseen(tx: &mut Tx<'_>, job: &Job) -> Result<Vec<(String, Uuid, Value)>> {
    let gone: Vec<HeldRow> = sqlx::query_as(
        "UPDATE sync_records r SET deleted_at = now(), updated_by_job = $3, updated_at = now()
          WHERE r.integration_id = $1 AND r.entity_type = $2 AND r.deleted_at IS NULL
            AND NOT starts_with(r.external_id, $4)
            AND NOT EXISTS (SELECT 1 FROM sync_seen s WHERE s.job_id = $3 AND s.external_id = r.external_id)
          RETURNING r.external_id, r.id, r.data, r.content_hash, r.source_updated_at,
                    r.local_changed_at, r.local_data, NULL::timestamptz AS deleted_at",
    )
    .bind(job.integration_id)
    .bind(&job.entity_type)
    .bind(job.id)
    .bind(hub_domain::sync::PLACEHOLDER_PREFIX)
    .fetch_all(&mut **tx)
    .await?;
    let items: Vec<Item> = gone
        .iter()
        .map(|h| Item {
            external_id: h.external_id.clone(),
            outcome: "DELETED",
            before: Some(h.clone()),
            error: None,
        })
        .collect();
    insert_items(tx, job.id, job.current_page, &items).await?;
    sqlx::query("UPDATE sync_jobs SET deleted_count = deleted_count + $2 WHERE id = $1")
        .bind(job.id)
        .bind(i32::try_from(gone.len()).unwrap_or(i32::MAX))
        .execute(&mut **tx)
        .await?;
    Ok(gone
        .into_iter()
        .map(|h| (h.external_id, h.id, h.data))
        .collect())
}

/// Ends job `job` held by `owner` with `status` (and `error`); a
/// COMPLETED INCREMENTAL or FULL_SYNC moves the watermark to the newest
/// timestamp seen. Empties the job's seen ids. Returns the ended job, or
/// `None` when the lease was lost.
pub async fn finish(
    tx: &mut Tx<'_>,
    job: &Job,
    owner: &str,
    status: SyncJobStatus,
    error: Option<&str>,
) -> Result<Option<Job>> {
    let sql = format!(
        "UPDATE sync_jobs j SET status = $3, error_message = $4, completed_at = now(), lease_owner = NULL,
                lease_until = NULL, checkpoint = NULL, updated_at = now()
          WHERE j.id = $1 AND j.lease_owner = $2 AND j.status = 'RUNNING'
          RETURNING {COLUMNS}"
    );
    let ended: Option<Job> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(job.id)
        .bind(owner)
        .bind(status.as_str())
        .bind(error)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(ended) = ended else {
        return Ok(None);
    };
    sqlx::query("DELETE FROM sync_seen WHERE job_id = $1")
        .bind(job.id)
        .execute(&mut **tx)
        .await?;
    if status == SyncJobStatus::Completed {
        sqlx::query(
            "INSERT INTO sync_watermarks (integration_id, entity_type, tenant_id, watermark, job_id)
             SELECT integration_id, entity_type, tenant_id, high_watermark, id FROM sync_jobs
              WHERE id = $1 AND high_watermark IS NOT NULL
             ON CONFLICT (integration_id, entity_type) DO UPDATE SET
                 watermark = GREATEST(sync_watermarks.watermark, EXCLUDED.watermark),
                 job_id = EXCLUDED.job_id, updated_at = now()",
        )
        .bind(job.id)
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE integrations SET last_sync_at = now() WHERE id = $1")
            .bind(job.integration_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(Some(ended))
}

/// The watermark of the last successful run of an integration's entity.
pub async fn watermark(
    pool: &PgPool,
    integration: Uuid,
    entity: &str,
) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(
        "SELECT watermark FROM sync_watermarks WHERE integration_id = $1 AND entity_type = $2",
    )
    .bind(integration)
    .bind(entity)
    .fetch_optional(pool)
    .await?)
}

/// Puts back what job `job` wrote: records it created are deleted, records
/// it changed or deleted get their before-images back. Returns how many
/// records were restored or removed.
pub async fn rollback(tx: &mut Tx<'_>, job: &Job) -> Result<u64> {
    let restored = sqlx::query(
        "UPDATE sync_records r SET data = i.before_data, content_hash = i.before_hash,
                source_updated_at = i.before_source_at, deleted_at = i.before_deleted_at,
                updated_at = now()
           FROM sync_job_items i
          WHERE i.job_id = $1 AND i.before_data IS NOT NULL
            AND r.integration_id = $2 AND r.entity_type = $3 AND r.external_id = i.external_id",
    )
    .bind(job.id)
    .bind(job.integration_id)
    .bind(&job.entity_type)
    .execute(&mut **tx)
    .await?;
    let removed = sqlx::query(
        "DELETE FROM sync_records WHERE integration_id = $1 AND entity_type = $2 AND created_by_job = $3
            AND NOT EXISTS (SELECT 1 FROM sync_job_items i WHERE i.job_id = $3
                             AND i.external_id = sync_records.external_id AND i.before_data IS NOT NULL)",
    )
    .bind(job.integration_id)
    .bind(&job.entity_type)
    .bind(job.id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE sync_jobs SET rolled_back_at = now(), updated_at = now() WHERE id = $1")
        .bind(job.id)
        .execute(&mut **tx)
        .await?;
    Ok(restored.rows_affected() + removed.rows_affected())
}

/// An item error of a job, as shown.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct ItemError {
    /// The provider's id of the record (`#<n>` when it had none).
    pub external_id: String,
    /// The page it was on.
    pub page: i32,
    /// What was wrong: `{code, message, path}`.
    #[schema(value_type = Object)]
    pub error: Option<Value>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// One page of a job's item errors, in order (after `after`, an external
/// id); the job must be the tenant's (checked by the caller).
pub async fn item_errors(
    pool: &PgPool,
    job: Uuid,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<ItemError>> {
    Ok(sqlx::query_as(
        "SELECT external_id, page, error, created_at FROM sync_job_items
          WHERE job_id = $1 AND outcome = 'ERROR' AND ($2::text IS NULL OR external_id > $2)
          ORDER BY external_id LIMIT $3",
    )
    .bind(job)
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?)
}

/// A recorded conflict, as shown.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct ConflictRow {
    /// Id.
    pub id: Uuid,
    /// Integration.
    pub integration_id: Uuid,
    /// The job that met it (none for a webhook's update).
    pub job_id: Option<Uuid>,
    /// Entity.
    pub entity_type: String,
    /// The provider's id of the record.
    pub external_id: String,
    /// The hub's version.
    #[schema(value_type = Object)]
    pub local_version: Value,
    /// The provider's version.
    #[schema(value_type = Object)]
    pub remote_version: Value,
    /// The hub's timestamp.
    pub local_at: Option<DateTime<Utc>>,
    /// The provider's timestamp.
    pub remote_at: Option<DateTime<Utc>>,
    /// LOCAL or REMOTE.
    pub winner: String,
    /// Why (`newest_timestamp`, `tie_remote_wins`, `remote_timestamp_missing`, `operator`).
    pub rule: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When an operator re-resolved it.
    pub resolved_at: Option<DateTime<Utc>>,
    /// KEEP_LOCAL or KEEP_REMOTE.
    pub resolution: Option<String>,
    /// The API key that re-resolved it.
    #[serde(rename = "resolved_by")]
    pub resolved_by_key: Option<Uuid>,
}

/// One page of the tenant's conflicts, newest first; `job` narrows to one
/// job's.
pub async fn conflicts(
    pool: &PgPool,
    tenant: TenantId,
    job: Option<Uuid>,
    before: Option<Uuid>,
    limit: u32,
) -> Result<Vec<ConflictRow>> {
    Ok(sqlx::query_as(
        "SELECT id, integration_id, job_id, entity_type, external_id, local_version, remote_version,
                local_at, remote_at, winner, rule, created_at, resolved_at, resolution,
                resolved_by_key
           FROM sync_conflicts
          WHERE tenant_id = $1 AND ($2::uuid IS NULL OR job_id = $2) AND ($3::uuid IS NULL OR id < $3)
          ORDER BY id DESC LIMIT $4",
    )
    .bind(tenant.0)
    .bind(job)
    .bind(before)
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?)
}

/// Deletes finished (COMPLETED, FAILED, CANCELLED) jobs that ended more
/// than `days` ago, with their items, at most `batch` rows a statement,
/// until none is left or `go_on` says stop. Returns how many jobs were
/// deleted.
///
/// The items go first, in batches of their own: one job may hold a
/// before-image per record it changed (millions for a large FULL_SYNC), which
/// a cascade from a batch of jobs would delete in one statement.
pub async fn prune(pool: &PgPool, days: u32, batch: i64, go_on: impl Fn() -> bool) -> Result<u64> {
    const OLD: &str = "j.completed_at < now() - make_interval(days => $1)
            AND j.status IN ('COMPLETED', 'FAILED', 'CANCELLED')";
    let days = i32::try_from(days).unwrap_or(i32::MAX);
    let full = |n: u64| n >= u64::try_from(batch).unwrap_or(u64::MAX);
    while go_on() {
        let sql = format!(
            "DELETE FROM sync_job_items WHERE ctid = ANY(ARRAY(
                 SELECT i.ctid FROM sync_jobs j JOIN sync_job_items i ON i.job_id = j.id
                  WHERE {OLD} LIMIT $2))"
        );
        let n = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(days)
            .bind(batch)
            .execute(pool)
            .await?
            .rows_affected();
        if !full(n) {
            break;
        }
    }
    let mut total = 0;
    while go_on() {
        let sql = format!(
            "DELETE FROM sync_jobs WHERE id IN (SELECT j.id FROM sync_jobs j WHERE {OLD} LIMIT $2)"
        );
        let n = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(days)
            .bind(batch)
            .execute(pool)
            .await?
            .rows_affected();
        total += n;
        if !full(n) {
            break;
        }
    }
    Ok(total)
}
