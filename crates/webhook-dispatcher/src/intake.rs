//! Event intake from the bus: every tenant domain event is stored once in
//! `events` and fans out to the matching subscriptions in the same
//! transaction as the consumer's idempotency marker. Deliveries the
//! dispatcher can send at once start when that transaction commits.

use crate::worker::Dispatcher;
use hub_bus::{AfterCommit, Handler, HandlerError};
use hub_domain::Envelope;
use hub_domain::webhook::{ALWAYS_ROUTED, extra_binding_keys};
use hub_storage::{StorageError, Tx};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub use crate::fanout::OWN_TYPES;

/// Stores received events and creates their deliveries.
pub struct EventIntake {
    /// The delivery workers.
    dispatcher: Arc<Dispatcher>,
    /// The queue's bindings beyond [`ALWAYS_ROUTED`].
    bindings: Arc<Bindings>,
}

impl EventIntake {
    /// An intake that hands deliveries to `dispatcher` and takes the event
    /// types of `bindings`.
    pub fn new(dispatcher: Arc<Dispatcher>, bindings: Arc<Bindings>) -> Self {
        Self {
            dispatcher,
            bindings,
        }
    }
}

/// The event types the dispatcher's queue is bound to beyond the families of
/// [`ALWAYS_ROUTED`]: those its subscriptions name (`*` binds everything).
/// The manager binds a subscription's types before it answers; [`keep`]
/// adds any it missed and removes those no subscription names any more.
#[derive(Default)]
pub struct Bindings {
    keys: std::sync::RwLock<BTreeSet<String>>,
}

impl Bindings {
    /// Loads the keys the live subscriptions need.
    pub async fn load(&self, pool: &hub_storage::Pool) -> Result<(), StorageError> {
        let patterns = hub_storage::subscriptions::live_patterns(pool).await?;
        *self.keys.write().expect("bindings") =
            extra_binding_keys(patterns.iter().map(String::as_str));
        Ok(())
    }

    /// Every key the queue is bound to.
    pub fn all(&self) -> Vec<String> {
        let keys = self.keys.read().expect("bindings");
        ALWAYS_ROUTED
            .iter()
            .map(|k| (*k).to_owned())
            .chain(keys.iter().cloned())
            .collect()
    }
}

/// How often [`keep`] compares the bindings with the subscriptions.
const KEEP_EVERY: Duration = Duration::from_secs(5);

/// Keeps the queue's bindings in step with the subscriptions until
/// `shutdown`: binds what a subscription names and the queue lacks (the
/// manager could not bind it, say), unbinds what no subscription has named
/// for two checks in a row (the queue of an older version bound `#`).
pub async fn keep(bindings: Arc<Bindings>, ctx: hub_platform::server::Context) {
    let mut unneeded_once: BTreeSet<String> = BTreeSet::new();
    // The queue of an older version took everything.
    let mut bound: BTreeSet<String> = bindings.keys.read().expect("bindings").clone();
    bound.insert("#".to_owned());
    loop {
        tokio::select! {
            _ = tokio::time::sleep(KEEP_EVERY) => {}
            _ = ctx.shutdown.cancelled() => return,
        }
        let patterns = match hub_storage::subscriptions::live_patterns(&ctx.pool).await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "could not read subscription patterns");
                continue;
            }
        };
        let wanted = extra_binding_keys(patterns.iter().map(String::as_str));
        *bindings.keys.write().expect("bindings") = wanted.clone();
        let add: Vec<String> = wanted.difference(&bound).cloned().collect();
        let gone: BTreeSet<String> = bound.difference(&wanted).cloned().collect();
        let drop: Vec<String> = gone.intersection(&unneeded_once).cloned().collect();
        unneeded_once = gone;
        if !add.is_empty() {
            match ctx.bus.bind(crate::NAME, &add).await {
                Ok(()) => bound.extend(add),
                Err(e) => {
                    tracing::debug!(error = %e, "could not bind the queue to new event types")
                }
            }
        }
        if !drop.is_empty() {
            match ctx.bus.unbind(crate::NAME, &drop).await {
                Ok(()) => {
                    for k in &drop {
                        bound.remove(k);
                        unneeded_once.remove(k);
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "could not unbind event types no subscription names")
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Handler for EventIntake {
    fn bindings(&self) -> Vec<String> {
        self.bindings.all()
    }

    fn idempotent(&self) -> bool {
        // `events` dedupes on the event id: a redelivered event finds its id
        // stored and creates nothing.
        true
    }

    fn wants(&self, event: &Envelope) -> bool {
        event.tenantid.is_some() && self.wants_type(event.event_type.as_str())
    }

    fn wants_type(&self, event_type: &str) -> bool {
        crate::fanout::deliverable(event_type)
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
        match crate::fanout::fan_out(tx, events, &self.dispatcher).await {
            Ok(out) => Ok(out.handoff.map(|h| {
                let d = self.dispatcher.clone();
                Box::new(move || h.start(&d)) as AfterCommit
            })),
            Err(StorageError::MissingReference { .. }) => Err(HandlerError::Failed(
                "the event names an unknown tenant".to_owned(),
            )),
            Err(e) => Err(e.into()),
        }
    }
}
