//! Event intake from the bus: every tenant domain event is stored once in
//! `events` and fans out to the matching subscriptions in the same
//! transaction as the consumer's idempotency marker. Deliveries the
//! dispatcher can send at once start when that transaction commits.

use crate::worker::Dispatcher;
use hub_bus::{AfterCommit, Handler, HandlerError};
use hub_domain::Envelope;
use hub_storage::{StorageError, Tx};
use std::sync::{Arc, OnceLock};

pub use crate::fanout::OWN_TYPES;

/// Stores received events and creates their deliveries.
pub struct EventIntake {
    /// The delivery workers (set at start-up).
    dispatcher: Arc<OnceLock<Arc<Dispatcher>>>,
}

impl EventIntake {
    /// An intake that hands deliveries to `dispatcher` once it is set.
    pub fn new(dispatcher: Arc<OnceLock<Arc<Dispatcher>>>) -> Self {
        Self { dispatcher }
    }
}

#[async_trait::async_trait]
impl Handler for EventIntake {
    fn bindings(&self) -> Vec<String> {
        // Subscriptions may name any type, so the dispatcher takes everything.
        vec!["#".to_owned()]
    }

    fn idempotent(&self) -> bool {
        // `events` dedupes on the event id: a redelivered event finds its id
        // stored and creates nothing.
        true
    }

    fn wants(&self, event: &Envelope) -> bool {
        event.tenantid.is_some() && crate::fanout::deliverable(event.event_type.as_str())
    }

    async fn handle(&self, tx: &mut Tx<'_>, event: &Envelope) -> Result<(), HandlerError> {
        self.handle_committing(tx, std::slice::from_ref(event))
            .await
            .map(drop)
    }

    async fn handle_committing(
        &self,
        tx: &mut Tx<'_>,
        events: &[Envelope],
    ) -> Result<Option<AfterCommit>, HandlerError> {
        let dispatcher = self.dispatcher.get();
        match crate::fanout::fan_out(tx, events, dispatcher.map(|d| &**d)).await {
            Ok(out) => Ok(match (out.handoff, dispatcher) {
                (Some(h), Some(d)) => {
                    let d = d.clone();
                    Some(Box::new(move || h.start(&d)))
                }
                _ => None,
            }),
            Err(StorageError::MissingReference { .. }) => Err(HandlerError::Failed(
                "the event names an unknown tenant".to_owned(),
            )),
            Err(e) => Err(e.into()),
        }
    }
}
