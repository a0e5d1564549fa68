//! Domain events received by the hub, each stored once.

use crate::{Bind, Result, Tx, column};
use hub_domain::{Envelope, TenantId};

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

/// The events of `events` that name a tenant, with it.
pub(crate) fn of_tenants(events: &[Envelope]) -> Vec<(&Envelope, TenantId)> {
    events
        .iter()
        .filter_map(|e| Some((e, e.tenantid?)))
        .collect()
}

/// Binds the columns of `events` as arrays, in the order of `events`:
/// `id uuid[], tenant_id uuid[], event_type text[], source text[],
/// correlation_id text[], occurred_at timestamptz[], data jsonb[]`.
pub(crate) fn bind_columns<'q, Q: Bind<'q>>(q: Q, events: &'q [(&'q Envelope, TenantId)]) -> Q {
    q.bind(column(events, |(e, _)| e.id.0))
        .bind(column(events, |(_, t)| t.0))
        .bind(column(events, |(e, _)| e.event_type.as_str()))
        .bind(column(events, |(e, _)| e.source.as_str()))
        .bind(column(events, |(e, _)| e.correlationid.as_deref()))
        .bind(column(events, |(e, _)| e.time))
        .bind(column(events, |(e, _)| &e.data))
}
