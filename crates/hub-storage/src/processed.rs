//! Consumer idempotency: `processed_events(consumer, event_id)`.

use crate::{Result, Tx};
use hub_domain::EventId;

/// Claims `event` for `consumer` inside the handler's transaction. Returns
/// `false` when it was already processed (the caller then does nothing and
/// acknowledges). The row commits together with the handler's work, so a
/// crash before commit leaves the event unprocessed, never half-processed.
pub async fn claim(tx: &mut Tx<'_>, consumer: &str, event: EventId) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(event.0)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Claims several events at once; returns the ids that were not processed
/// before (duplicates within `events` count once).
pub async fn claim_many(
    tx: &mut Tx<'_>,
    consumer: &str,
    events: &[EventId],
) -> Result<std::collections::HashSet<EventId>> {
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.0).collect();
    let rows: Vec<uuid::Uuid> = sqlx::query_scalar(
        "INSERT INTO processed_events (consumer, event_id)
         SELECT $1, u FROM (SELECT DISTINCT u FROM UNNEST($2::uuid[]) u) d
         ON CONFLICT DO NOTHING RETURNING event_id",
    )
    .bind(consumer)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(EventId).collect())
}

/// Deletes up to `batch` markers older than `older_than_secs` (well past any
/// redelivery window).
pub async fn prune(pool: &sqlx::PgPool, older_than_secs: i64, batch: i64) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM processed_events WHERE ctid IN (
            SELECT ctid FROM processed_events WHERE processed_at < NOW() - make_interval(secs => $1) LIMIT $2)",
    )
    .bind(older_than_secs as f64)
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
