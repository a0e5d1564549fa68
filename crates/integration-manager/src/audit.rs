//! The audit trail, readable at `GET /api/v1/audit-log`: every tenant event
//! in `audit_log` (per [`hub_domain::audit::records`]). The hub's own events
//! are recorded when their outbox rows are retired, once published; this
//! consumer records the events other systems publish. Its queue is bound to
//! everything (`#`) on the entry exchange only, which the hub's relays
//! bypass, so RabbitMQ never carries the hub's events to it.

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

    fn entry_only(&self) -> bool {
        true
    }

    fn wants(&self, event: &Envelope) -> bool {
        hub_domain::audit::records(event)
    }

    fn wants_type(&self, event_type: &str) -> bool {
        hub_domain::audit::records_type(event_type)
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
        match hub_storage::audit::record_many(tx, std::slice::from_ref(event)).await {
            Ok(()) => Ok(()),
            Err(StorageError::MissingReference { .. }) => Err(HandlerError::Failed(format!(
                "event {} names unknown tenant {tenant}",
                event.id
            ))),
            Err(e) => Err(e.into()),
        }
    }
}
