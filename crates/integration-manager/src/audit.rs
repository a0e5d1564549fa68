//! The audit trail: the manager consumes every event on the bus (`#`) and keeps
//! the tenant ones in `audit_log`, readable at `GET /api/v1/audit-log`.

use hub_bus::{Handler, HandlerError};
use hub_domain::Envelope;
use hub_storage::{StorageError, Tx};

/// Records every tenant event once.
pub struct AuditTrail;

#[async_trait::async_trait]
impl Handler for AuditTrail {
    fn bindings(&self) -> Vec<String> {
        vec!["#".to_owned()]
    }

    fn wants(&self, event: &Envelope) -> bool {
        // Platform ticks carry no tenant: nothing to audit. Successful
        // deliveries are recorded, with every attempt, in the delivery
        // history; copying each into the audit trail would double the
        // hottest write path for no new information.
        // `integration.webhook.received` is the same fact as the
        // `webhook.received` published with it (for integration consumers).
        event.tenantid.is_some() && self.wants_type(event.event_type.as_str())
    }

    fn wants_type(&self, event_type: &str) -> bool {
        !matches!(
            event_type,
            "webhook.delivered" | "integration.webhook.received"
        )
    }

    fn idempotent(&self) -> bool {
        // `audit_log` keeps each event once per tenant (ON CONFLICT DO
        // NOTHING): a redelivered event changes nothing, so no
        // `processed_events` marker is needed.
        true
    }

    async fn handle_batch(&self, tx: &mut Tx<'_>, events: &[Envelope]) -> Result<(), HandlerError> {
        match hub_storage::audit::record_many(tx, events).await {
            Ok(()) => Ok(()),
            Err(StorageError::MissingReference { .. }) => Err(HandlerError::Failed(
                "an event names an unknown tenant".to_owned(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn handle(&self, tx: &mut Tx<'_>, event: &Envelope) -> Result<(), HandlerError> {
        // Platform ticks carry no tenant: nothing to audit.
        let Some(tenant) = event.tenantid else {
            return Ok(());
        };
        match hub_storage::audit::record(tx, tenant, event).await {
            Ok(()) => Ok(()),
            Err(StorageError::MissingReference { .. }) => Err(HandlerError::Failed(format!(
                "event {} names unknown tenant {tenant}",
                event.id
            ))),
            Err(e) => Err(e.into()),
        }
    }
}
