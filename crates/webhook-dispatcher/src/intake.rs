//! Event intake from the bus: every tenant domain event is stored once in
//! `events` and fans out to the matching subscriptions in the same
//! transaction as the consumer's idempotency marker.

use hub_bus::{Handler, HandlerError};
use hub_domain::Envelope;
use hub_storage::{StorageError, Tx};

pub use crate::fanout::OWN_TYPES;

/// Stores received events and creates their deliveries.
pub struct EventIntake;

#[async_trait::async_trait]
impl Handler for EventIntake {
    fn bindings(&self) -> Vec<String> {
        // Subscriptions may name any type, so the dispatcher takes everything.
        vec!["#".to_owned()]
    }

    fn wants(&self, event: &Envelope) -> bool {
        event.tenantid.is_some() && crate::fanout::deliverable(event.event_type.as_str())
    }

    async fn handle(&self, tx: &mut Tx<'_>, event: &Envelope) -> Result<(), HandlerError> {
        self.handle_batch(tx, std::slice::from_ref(event)).await
    }

    async fn handle_batch(&self, tx: &mut Tx<'_>, events: &[Envelope]) -> Result<(), HandlerError> {
        match crate::fanout::fan_out(tx, events).await {
            Ok(_) => Ok(()),
            Err(StorageError::MissingReference { .. }) => Err(HandlerError::Failed(
                "the event names an unknown tenant".to_owned(),
            )),
            Err(e) => Err(e.into()),
        }
    }
}
