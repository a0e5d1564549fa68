//! Domain events received by the hub, each stored once.

use crate::{Result, Tx};
use hub_domain::Envelope;

/// Stores a received event; returns `false` when it was already stored. An
/// event of an unknown tenant is a [`crate::StorageError::MissingReference`].
pub async fn insert(tx: &mut Tx<'_>, e: &Envelope) -> Result<bool> {
    let Some(tenant) = e.tenantid else {
        return Ok(false);
    };
    let done = sqlx::query(
        "INSERT INTO events (id, tenant_id, event_type, source, correlation_id, occurred_at, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id.0)
    .bind(tenant.0)
    .bind(e.event_type.as_str())
    .bind(&e.source)
    .bind(&e.correlationid)
    .bind(e.time)
    .bind(&e.data)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
