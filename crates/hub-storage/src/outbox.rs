//! The transactional outbox: events written in the same transaction as the
//! state change they describe, published later by a relay.

use crate::{Result, Tx};
use hub_domain::{Envelope, EventId};
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// The notification channel an insert into `outbox` signals (one per statement).
pub const CHANNEL: &str = "hub_outbox";

/// Adds events to the outbox inside the caller's transaction, in one round trip.
pub async fn enqueue(tx: &mut Tx<'_>, events: &[Envelope]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(events.len());
    let mut tenants = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut bodies = Vec::with_capacity(events.len());
    for e in events {
        ids.push(e.id.0);
        tenants.push(e.tenantid.map(|t| t.0));
        types.push(e.event_type.as_str().to_owned());
        bodies.push(serde_json::to_value(e).expect("an envelope always serializes"));
    }
    sqlx::query(
        "INSERT INTO outbox (id, tenant_id, event_type, envelope)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[])",
    )
    .bind(&ids)
    .bind(&tenants)
    .bind(&types)
    .bind(&bodies)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An unpublished outbox row, locked by the transaction that claimed it.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The event id.
    pub id: EventId,
    /// Routing key.
    pub event_type: String,
    /// The serialized envelope, published as is.
    pub body: Vec<u8>,
    /// The tenant, for logs.
    pub tenant_id: Option<Uuid>,
    /// The producer's W3C trace context, if the event carries one.
    pub traceparent: Option<String>,
}

/// Locks up to `limit` unpublished rows, oldest first, skipping rows another
/// relay holds. The lock lasts as long as `tx`: if the relay dies, the rows are
/// released and published by someone else (at least once, never zero times).
pub async fn claim(tx: &mut Tx<'_>, limit: u32) -> Result<Vec<Pending>> {
    let rows = sqlx::query(
        "SELECT id, event_type, envelope::text AS body, tenant_id, envelope->>'traceparent' AS traceparent FROM outbox
         WHERE published_at IS NULL
         ORDER BY created_at, id
         LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(i64::from(limit))
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Pending {
            id: EventId(r.get("id")),
            event_type: r.get("event_type"),
            body: r.get::<String, _>("body").into_bytes(),
            tenant_id: r.get("tenant_id"),
            traceparent: r.get("traceparent"),
        })
        .collect())
}

/// Marks rows published.
pub async fn mark_published(tx: &mut Tx<'_>, ids: &[Uuid]) -> Result<()> {
    sqlx::query("UPDATE outbox SET published_at = NOW(), attempts = attempts + 1, last_error = NULL WHERE id = ANY($1)")
        .bind(ids)
        .execute(&mut **tx)
        .await?;
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
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COALESCE(EXTRACT(EPOCH FROM NOW() - MIN(created_at)), 0)::float8 AS age
         FROM outbox WHERE published_at IS NULL",
    )
    .fetch_one(pool)
    .await?;
    Ok((row.get("n"), row.get("age")))
}

/// Deletes up to `batch` rows published more than `older_than_secs` ago;
/// returns how many went.
pub async fn prune_published(pool: &PgPool, older_than_secs: i64, batch: i64) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM outbox WHERE id IN (
            SELECT id FROM outbox WHERE published_at < NOW() - make_interval(secs => $1)
            LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(older_than_secs as f64)
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
