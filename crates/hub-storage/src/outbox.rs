//! The transactional outbox: events written in the same transaction as the
//! state change they describe, published later by a relay.

use crate::{Result, Tx};
use hub_domain::{Envelope, EventId};
use sqlx::PgPool;
use uuid::Uuid;

/// The notification channel an insert into `outbox` signals (one per statement).
pub const CHANNEL: &str = "hub_outbox";

/// Adds events to the outbox inside the caller's transaction, in one round
/// trip; any relay publishes them once it commits (the relays are notified).
pub async fn enqueue(tx: &mut Tx<'_>, events: &[Envelope]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    insert(tx, events, None).await?;
    crate::notify(&mut **tx, CHANNEL).await
}

/// Adds events to the outbox like [`enqueue`] but without the notification,
/// for a producer that hands them to its own process's relay: a NOTIFY
/// serializes every notifying commit in the cluster behind one lock, which
/// a hot path cannot afford. With `lease_secs`, the rows are leased to the
/// caller, who publishes the returned rows itself once `tx` commits (and
/// then deletes them with [`delete_published`]); other relays take them only
/// after the lease expires, or once [`release`] gives them back: published
/// at least once even if the caller dies. Without, the caller wakes its
/// claiming relay once `tx` commits; relays elsewhere find the rows on their
/// poll.
pub async fn enqueue_unnotified(
    tx: &mut Tx<'_>,
    events: &[Envelope],
    lease_secs: Option<u32>,
) -> Result<Vec<Pending>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    insert(tx, events, lease_secs).await
}

fn serialize(events: &[Envelope]) -> Vec<Pending> {
    events
        .iter()
        .map(|e| Pending {
            id: e.id,
            event_type: e.event_type.as_str().to_owned(),
            body: serde_json::to_vec(e).expect("an envelope always serializes"),
            tenant_id: e.tenantid.map(|t| t.0),
            traceparent: e.traceparent.clone(),
        })
        .collect()
}

/// Outbox rows ready to insert: the envelopes serialized once, as the relay
/// publishes them, and the id of each one's audit row. A group-commit
/// producer has its request handlers prepare them (in parallel, off the
/// writer's critical path), and the writer only binds them.
#[derive(Debug, Default)]
pub struct Prepared {
    pub(crate) rows: Vec<Pending>,
    audit_ids: Vec<Option<Uuid>>,
}

impl Prepared {
    /// Serializes `events`.
    pub fn of(events: &[Envelope]) -> Self {
        Self {
            rows: serialize(events),
            // The audit trail records the hub's own events when their rows
            // are retired ([`delete_published`]), rather than when they come
            // back from the bus (the relay publishes them where the audit
            // consumer does not listen); the id is chosen now, so the trail
            // lists them in the order they were made.
            audit_ids: events
                .iter()
                .map(|e| hub_domain::audit::records(e).then(Uuid::now_v7))
                .collect(),
        }
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, to publish once they are committed.
    pub fn into_rows(self) -> Vec<Pending> {
        self.rows
    }

    /// Binds the columns of all `parts`' rows, in order, as the parameters
    /// of [`Prepared::params`].
    pub(crate) fn bind_all<'q, Q: crate::Bind<'q>>(parts: &[&'q Prepared], q: Q) -> Q {
        let rows = || parts.iter().flat_map(|p| p.rows.iter());
        q.bind(rows().map(|r| r.id.0).collect::<Vec<Uuid>>())
            .bind(rows().map(|r| r.tenant_id).collect::<Vec<_>>())
            .bind(rows().map(|r| r.event_type.as_str()).collect::<Vec<_>>())
            .bind(
                rows()
                    .map(|r| std::str::from_utf8(&r.body).expect("serde_json writes UTF-8"))
                    .collect::<Vec<_>>(),
            )
            .bind(
                parts
                    .iter()
                    .flat_map(|p| p.audit_ids.iter().copied())
                    .collect::<Vec<_>>(),
            )
    }

    /// The parameters of the bound columns (`id, tenant_id, event_type,
    /// envelope, audit_id`) for an `UNNEST`, the first one `$n`.
    pub(crate) fn params(n: usize) -> String {
        format!(
            "${}::uuid[], ${}::uuid[], ${}::text[], ${}::text[], ${}::uuid[]",
            n,
            n + 1,
            n + 2,
            n + 3,
            n + 4
        )
    }
}

/// The CTE that inserts the rows of CTE `u` (columns `id, tenant_id,
/// event_type, envelope, audit_id`) into the outbox, leased for `$lease`
/// seconds when that parameter is not NULL.
pub(crate) fn insert_cte(lease: usize) -> String {
    format!(
        "o AS (
             INSERT INTO outbox (id, tenant_id, event_type, envelope, audit_id, lease_until)
             SELECT id, tenant_id, event_type, envelope, audit_id, NOW() + make_interval(secs => ${lease}::float8)
               FROM u
         )"
    )
}

static INSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH u AS (
             SELECT * FROM UNNEST({}) AS u(id, tenant_id, event_type, envelope, audit_id)
         ), {}
         SELECT 1",
        Prepared::params(1),
        insert_cte(6)
    )
});

/// Inserts `events`; returns them as the relay publishes them.
async fn insert(
    tx: &mut Tx<'_>,
    events: &[Envelope],
    lease_secs: Option<u32>,
) -> Result<Vec<Pending>> {
    let cols = Prepared::of(events);
    Prepared::bind_all(&[&cols], sqlx::query(INSERT.as_str()))
        .bind(lease_secs.map(f64::from))
        .execute(&mut **tx)
        .await?;
    Ok(cols.rows)
}

/// An unpublished outbox row, locked by the transaction that claimed it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    /// The event id.
    #[sqlx(try_from = "Uuid")]
    pub id: EventId,
    /// Routing key.
    pub event_type: String,
    /// The serialized envelope, published as is (stored as text).
    #[sqlx(try_from = "String")]
    pub body: Vec<u8>,
    /// The tenant, for logs.
    pub tenant_id: Option<Uuid>,
    /// The producer's W3C trace context, if the event carries one.
    pub traceparent: Option<String>,
}

/// Locks up to `limit` unpublished rows, oldest first (ids are UUIDv7, so
/// primary-key order), skipping rows another
/// relay holds and rows leased to their producer. The lock lasts as long as `tx`: if the relay dies, the rows are
/// released and published by someone else (at least once, never zero times).
pub async fn claim(tx: &mut Tx<'_>, limit: u32) -> Result<Vec<Pending>> {
    crate::claim_in_index_order(tx).await?;
    Ok(sqlx::query_as(
        "SELECT id, event_type, envelope AS body, tenant_id, envelope::jsonb->>'traceparent' AS traceparent FROM outbox
         WHERE published_at IS NULL AND (lease_until IS NULL OR lease_until < NOW())
         ORDER BY id
         LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(i64::from(limit))
    .fetch_all(&mut **tx)
    .await?)
}

/// Retires rows whose publish RabbitMQ confirmed (in the claiming
/// transaction, or on their own for rows the producer published itself):
/// deletes them, since a published row has nothing left to do and deleting
/// writes far less than marking, and writes the audit rows of those the
/// audit trail keeps, in the same statement. A row is deleted once, so its
/// event is audited once, however many relays published it; an event of an
/// unknown tenant gets no audit row. Off the producer's transaction, the
/// audit row costs the producer nothing.
///
/// The transaction commits without waiting for its WAL to reach the disk
/// (`synchronous_commit` off, set by the statement for its transaction):
/// a retirement lost in a crash leaves its rows in the outbox, published
/// again and retired then (at least once; consumers are idempotent), so
/// nothing is lost, and the relays' commits no longer queue for the disk
/// with the producers', whose answers wait on theirs.
pub async fn delete_published<'c, E>(conn: E, ids: &[Uuid]) -> Result<()>
where
    E: sqlx::PgExecutor<'c>,
{
    sqlx::query(
        "WITH d AS (
             DELETE FROM outbox
              WHERE id = ANY($1) AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL
             RETURNING audit_id, tenant_id, id, event_type, envelope
         ), e AS MATERIALIZED (
             SELECT d.audit_id, d.tenant_id, d.id, d.event_type, d.envelope::jsonb AS envelope
               FROM d
              WHERE d.audit_id IS NOT NULL AND EXISTS (SELECT 1 FROM tenants t WHERE t.id = d.tenant_id)
         )
         INSERT INTO audit_log (id, tenant_id, event_id, event_type, source, correlation_id, occurred_at, data)
         SELECT e.audit_id, e.tenant_id, e.id, left(e.event_type, 200), left(e.envelope->>'source', 200),
                left(e.envelope->>'correlationid', 100), (e.envelope->>'time')::timestamptz,
                COALESCE(e.envelope->'data', 'null'::jsonb)
           FROM e
         ON CONFLICT (tenant_id, event_id) DO NOTHING",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives leased rows that their producer could not publish to every relay
/// (which retries them with backoff), noting the error.
pub async fn release(pool: &PgPool, ids: &[Uuid], error: &str) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE outbox SET lease_until = NULL, attempts = attempts + 1, last_error = $2 WHERE id = ANY($1) AND published_at IS NULL")
        .bind(ids)
        .bind(error)
        .execute(&mut *tx)
        .await?;
    crate::notify(&mut *tx, CHANNEL).await?;
    tx.commit().await?;
    Ok(())
}

/// Records a failed publish attempt (outside the claiming transaction, which
/// is rolled back).
pub async fn record_failure(pool: &PgPool, ids: &[Uuid], error: &str) -> Result<()> {
    sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1) AND published_at IS NULL")
        .bind(ids)
        .bind(error)
        .execute(pool)
        .await?;
    Ok(())
}

/// Number of unpublished rows and the age in seconds of the oldest (for metrics).
pub async fn backlog(pool: &PgPool) -> Result<(i64, f64)> {
    Ok(sqlx::query_as(
        "SELECT COUNT(*) AS n, COALESCE(EXTRACT(EPOCH FROM NOW() - MIN(created_at)), 0)::float8 AS age
         FROM outbox WHERE published_at IS NULL",
    )
    .fetch_one(pool)
    .await?)
}
