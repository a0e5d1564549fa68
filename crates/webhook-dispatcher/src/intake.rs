//! Event intake: every tenant domain event on the bus is stored once in
//! `events`, the source of outbound fan-out.

use hub_bus::{Handler, HandlerError};
use hub_domain::Envelope;
use hub_storage::{StorageError, Tx};

/// Event types the dispatcher itself produces: never taken in again, so a
/// delivery outcome cannot trigger deliveries.
pub const OWN_TYPES: &[&str] = &["webhook.delivered", "webhook.failed"];

/// Stores received events.
pub struct EventIntake;

#[async_trait::async_trait]
impl Handler for EventIntake {
    fn bindings(&self) -> Vec<String> {
        // Subscriptions may name any type, so the dispatcher takes everything.
        vec!["#".to_owned()]
    }

    async fn handle(&self, tx: &mut Tx<'_>, event: &Envelope) -> Result<(), HandlerError> {
        if event.tenantid.is_none() || OWN_TYPES.contains(&event.event_type.as_str()) {
            return Ok(());
        }
        match hub_storage::events::insert(tx, event).await {
            Ok(_) => Ok(()),
            Err(StorageError::MissingReference { .. }) => Err(HandlerError::Failed(format!(
                "event {} names an unknown tenant",
                event.id
            ))),
            Err(e) => Err(e.into()),
        }
    }
}
