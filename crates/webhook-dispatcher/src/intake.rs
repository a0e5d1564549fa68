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

    async fn handle(&self, tx: &mut Tx<'_>, event: &Envelope) -> Result<(), HandlerError> {
        match crate::fanout::fan_out(tx, std::slice::from_ref(event)).await {
            Ok(_) => Ok(()),
            Err(StorageError::MissingReference { .. }) => Err(HandlerError::Failed(format!(
                "event {} names an unknown tenant",
                event.id
            ))),
            Err(e) => Err(e.into()),
        }
    }
}
