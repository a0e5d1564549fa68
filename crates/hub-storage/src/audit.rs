//! The audit trail: every tenant event seen on the bus.

use crate::{Result, Tx};
use chrono::{DateTime, Utc};
use hub_domain::{Envelope, TenantId};
use sqlx::PgPool;
use uuid::Uuid;

/// One entry of the audit trail.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
#[schema(as = AuditEntryBody)]
pub struct AuditEntry {
    /// Entry id.
    pub id: Uuid,
    /// The event's id.
    pub event_id: Uuid,
    /// The event type.
    pub event_type: String,
    /// Producer.
    pub source: String,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Payload.
    pub data: serde_json::Value,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// What an audit insert reports when an event names a tenant that does not
/// exist (`audit_log` has no foreign key to `tenants`: the inserts check).
fn unknown_tenant() -> crate::StorageError {
    crate::StorageError::MissingReference {
        constraint: "audit_log_tenant".to_owned(),
    }
}

/// Records several tenant events in one round trip (events without a tenant
/// are skipped; each event id once per tenant). An event naming an unknown
/// tenant makes it [`crate::StorageError::MissingReference`].
pub async fn record_many(tx: &mut Tx<'_>, events: &[Envelope]) -> Result<()> {
    let events = crate::events::of_tenants(events);
    if events.is_empty() {
        return Ok(());
    }
    let q = sqlx::query_scalar(
        "WITH u AS (
             SELECT u.*, EXISTS (SELECT 1 FROM tenants t WHERE t.id = u.tenant_id) AS known
               FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                           $7::jsonb[], $8::uuid[])
                 AS u(event_id, tenant_id, event_type, source, correlation_id, occurred_at, data, id)
         ), ins AS (
             INSERT INTO audit_log (id, tenant_id, event_id, event_type, source, correlation_id, occurred_at, data)
             SELECT id, tenant_id, event_id, event_type, source, correlation_id, occurred_at, data
               FROM u WHERE known
             ON CONFLICT (tenant_id, event_id) DO NOTHING
         )
         SELECT COUNT(*) FILTER (WHERE NOT known) FROM u",
    );
    let unknown: i64 = crate::events::bind_columns(q, &events)
        .bind(crate::column(&events, |_| Uuid::now_v7()))
        .fetch_one(&mut **tx)
        .await?;
    // The rows of known tenants were written: the caller rolls its
    // transaction back on this error, as on the foreign key's before.
    if unknown == 0 {
        Ok(())
    } else {
        Err(unknown_tenant())
    }
}

/// A page of a tenant's audit trail, newest first.
pub async fn list(
    pool: &PgPool,
    tenant: TenantId,
    event_type: Option<&str>,
    before: Option<Uuid>,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    Ok(sqlx::query_as(
        "SELECT id, event_id, event_type, source, correlation_id, occurred_at, data, recorded_at
         FROM audit_log
         WHERE tenant_id = $1 AND ($2::text IS NULL OR event_type = $2) AND ($3::uuid IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(tenant.0)
    .bind(event_type)
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}
