//! The sync scheduler's SQL: which replica schedules (a Postgres advisory
//! lock held on a connection of its own), the integrations whose next
//! scheduled sync has passed, the jobs created for them, and periodic work
//! done at most once per interval across replicas (`scheduler_ticks`,
//! migration 0018).
//!
//! The lock only says who runs the loop; correctness does not depend on it.
//! Due integrations are locked with `FOR UPDATE SKIP LOCKED` and advanced
//! in the transaction that creates their jobs, jobs skip an (integration,
//! entity) that already has an active one, and a tick moves `last_at` only
//! once its interval has passed: two schedulers at once (a lock holder
//! whose connection died unnoticed, a check run on an event) cannot create
//! a job twice or emit a tick twice.

use crate::{Result, Tx};
use chrono::{DateTime, Utc};
use hub_domain::TenantId;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, PgPool};
use uuid::Uuid;

/// The advisory lock key of the scheduler (`pg_try_advisory_lock`; advisory
/// locks are per database). Any fixed number no other code uses.
pub const SCHEDULER_LOCK: i64 = 0x7379_6e63_7363_6864; // "syncschd"

/// A candidate for the scheduler's lock, on a connection outside the pool
/// (a pooled connection would go back to the pool with the lock held).
///
/// The lock lives as long as the connection's session: a replica that
/// stops or dies closes it and another takes the lock on its next try. The
/// connection asks the server for TCP keepalives every few seconds, so the
/// session of a replica whose host vanished without closing its socket
/// ends within seconds as well, not after the system's default of hours.
pub struct Candidate {
    pool: PgPool,
    conn: Option<PgConnection>,
    leading: bool,
}

impl Candidate {
    /// A candidate on `pool`'s database (it connects on its first try).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            conn: None,
            leading: false,
        }
    }

    /// Whether this process held the lock at its last try.
    pub fn is_leading(&self) -> bool {
        self.leading
    }

    /// Takes the lock if it is free, or checks that the session holding it
    /// is still alive; returns whether this process holds it now. An error
    /// drops the connection (and with it the lock, if the server still had
    /// the session); the next try connects again.
    pub async fn try_lead(&mut self) -> Result<bool> {
        let outcome = self.try_lead_inner().await;
        if outcome.is_err() {
            self.conn = None;
            self.leading = false;
        }
        outcome
    }

    async fn try_lead_inner(&mut self) -> Result<bool> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => {
                let mut c = PgConnection::connect_with(&self.pool.connect_options()).await?;
                // Ignored where the connection is a Unix socket.
                sqlx::raw_sql(
                    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2;
                     SET tcp_keepalives_count = 3",
                )
                .execute(&mut c)
                .await?;
                self.conn.insert(c)
            }
        };
        if self.leading {
            // Same session, so the lock is still ours.
            sqlx::query("SELECT 1").execute(&mut *conn).await?;
        } else {
            // Not re-entered when held: it is tried only while not leading.
            self.leading = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(SCHEDULER_LOCK)
                .fetch_one(&mut *conn)
                .await?;
        }
        Ok(self.leading)
    }

    /// Gives the lock up (closing the connection), so that another replica
    /// takes over at its next try rather than when this one's session ends.
    pub async fn resign(&mut self) {
        self.leading = false;
        if let Some(c) = self.conn.take() {
            let _ = c.close().await;
        }
    }
}

/// An integration whose next scheduled sync has passed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    /// The integration.
    pub id: Uuid,
    /// Its tenant.
    pub tenant_id: Uuid,
    /// Its provider's code (whose manifest lists the entities to sync).
    pub provider_code: String,
    /// Its `sync_frequency` as stored.
    pub sync_frequency: Option<String>,
}

/// Locks, until `tx` ends, up to `limit` enabled live integrations whose
/// `next_sync_at` has passed, the longest overdue first; rows another
/// transaction holds are skipped (another scheduler, or an update through
/// the API, has them). An integration waiting for its credentials
/// (`PENDING_AUTH`) is left for when it is connected: its jobs could only
/// fail, and its passed `next_sync_at` makes it due at once then.
pub async fn lock_due(tx: &mut Tx<'_>, limit: i64) -> Result<Vec<Due>> {
    Ok(sqlx::query_as(
        "SELECT i.id, i.tenant_id, p.code AS provider_code, i.sync_frequency
           FROM integrations i JOIN integration_providers p ON p.id = i.provider_id
          WHERE i.next_sync_at <= now() AND i.deleted_at IS NULL
            AND COALESCE(i.is_enabled, true) AND COALESCE(i.status, 'ACTIVE') <> 'PENDING_AUTH'
          ORDER BY i.next_sync_at
          LIMIT $1
          FOR UPDATE OF i SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?)
}

/// The watermarks held for the entities of `integrations`:
/// `(integration, entity, watermark)`.
pub async fn watermarks(
    tx: &mut Tx<'_>,
    integrations: &[Uuid],
) -> Result<Vec<(Uuid, String, DateTime<Utc>)>> {
    Ok(sqlx::query_as(
        "SELECT integration_id, entity_type, watermark FROM sync_watermarks
          WHERE integration_id = ANY($1)",
    )
    .bind(integrations)
    .fetch_all(&mut **tx)
    .await?)
}

/// A scheduled job to create (INBOUND, due now, the default deletion
/// guard).
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// Owner.
    pub tenant_id: TenantId,
    /// Integration.
    pub integration_id: Uuid,
    /// FULL_SYNC or INCREMENTAL.
    pub job_type: hub_domain::status::SyncJobType,
    /// The manifest's entity.
    pub entity_type: String,
    /// INCREMENTAL: the watermark it starts from.
    pub watermark: Option<DateTime<Utc>>,
}

/// Creates `jobs` (`scheduled_by` SCHEDULED) in one statement, skipping
/// each whose integration and entity already has a pending or running job;
/// wakes the workers when any was created. Returns the ids created.
pub async fn insert_jobs(tx: &mut Tx<'_>, jobs: &[ScheduledJob]) -> Result<Vec<Uuid>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let created: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO sync_jobs (id, tenant_id, integration_id, job_type, entity_type, direction,
             status, scheduled_by, scheduled_at, watermark, confirm_deletions, max_delete_share,
             created_at, updated_at)
         SELECT u.id, u.tenant_id, u.integration_id, u.job_type, u.entity_type, 'INBOUND',
                'PENDING', 'SCHEDULED', now(), u.watermark, false, 0.2, now(), now()
           FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[])
                AS u(id, tenant_id, integration_id, job_type, entity_type, watermark)
         ON CONFLICT (integration_id, entity_type) WHERE status IN ('PENDING', 'RUNNING') DO NOTHING
         RETURNING id",
    )
    .bind(jobs.iter().map(|j| j.id).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.tenant_id.0).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.integration_id).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.job_type.as_str()).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.entity_type.as_str()).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.watermark).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    if !created.is_empty() {
        crate::notify(&mut **tx, crate::sync::CHANNEL).await?;
    }
    Ok(created)
}

/// Sets the next scheduled sync of each `(tenant, integration)` (`None`:
/// never), in one statement.
pub async fn advance(
    tx: &mut Tx<'_>,
    next: &[(TenantId, Uuid, Option<DateTime<Utc>>)],
) -> Result<()> {
    if next.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE integrations i SET next_sync_at = u.next
           FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[]) AS u(tenant_id, id, next)
          WHERE i.tenant_id = u.tenant_id AND i.id = u.id",
    )
    .bind(next.iter().map(|n| n.0.0).collect::<Vec<_>>())
    .bind(next.iter().map(|n| n.1).collect::<Vec<_>>())
    .bind(next.iter().map(|n| n.2).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Sets the next scheduled sync of the tenant's integration `id` (after its
/// `sync_frequency` was set or changed; `None`: never).
pub async fn set_next_sync(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    id: Uuid,
    next: Option<DateTime<Utc>>,
) -> Result<()> {
    advance(tx, &[(tenant, id, next)]).await
}

/// Claims periodic work `name` when `every_secs` have passed since it was
/// last claimed by anyone (or it never was): moves its `last_at` to now and
/// returns `true`. The row stays locked until `tx` ends, so a concurrent
/// claimer waits and then finds the interval not passed.
pub async fn claim_tick(tx: &mut Tx<'_>, name: &str, every_secs: f64) -> Result<bool> {
    let claimed: Option<i32> = sqlx::query_scalar(
        "INSERT INTO scheduler_ticks (name, last_at) VALUES ($1, now())
         ON CONFLICT (name) DO UPDATE SET last_at = now()
          WHERE scheduler_ticks.last_at <= now() - make_interval(secs => $2)
         RETURNING 1",
    )
    .bind(name)
    .bind(every_secs)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(claimed.is_some())
}
