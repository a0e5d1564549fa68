//! The events integration-sync consumes from its queue, each event type
//! routed to a small function of its own.
//!
//! To handle another event type: add it to [`ROUTES`] (which binds the
//! queue to it) and give it an arm in [`Consumer::route`]. A route works
//! inside the consumer's transaction (which also holds the event's
//! `processed_events` marker, so a redelivered event is not handled twice)
//! and may leave work to start once that transaction commits.

use crate::scheduler::{CHECK_DUE, SCHEDULED, Scheduler};
use crate::worker::Engine;
use hub_bus::{AfterCommit, Handler, HandlerError};
use hub_domain::Envelope;
use hub_storage::Tx;
use std::sync::Arc;

/// The event types the queue is bound to, each handled by a route (and
/// the exportable events of [`crate::triggers::BINDINGS`]).
pub const ROUTES: &[&str] = &[CHECK_DUE, SCHEDULED, WEBHOOK_RECEIVED];

/// An inbound webhook's event type in its envelope (published also under
/// the routing key [`WEBHOOK_RECEIVED`], which the queue is bound to).
const WEBHOOK_RECEIVED_TYPE: &str = "webhook.received";

/// Whether `event_type` has a route.
fn routed(event_type: &str) -> bool {
    ROUTES.contains(&event_type)
        || event_type == WEBHOOK_RECEIVED_TYPE
        || crate::triggers::BINDINGS.contains(&event_type)
}

use crate::webhooks::RECEIVED as WEBHOOK_RECEIVED;

/// integration-sync's event handler.
pub struct Consumer {
    scheduler: Arc<Scheduler>,
    engine: Arc<Engine>,
    triggers: crate::triggers::Triggers,
}

impl Consumer {
    /// A consumer that asks `scheduler` for due checks, wakes `engine`'s
    /// worker, and turns exportable events into local changes (`triggers`).
    pub fn new(
        scheduler: Arc<Scheduler>,
        engine: Arc<Engine>,
        triggers: crate::triggers::Triggers,
    ) -> Self {
        Self {
            scheduler,
            engine,
            triggers,
        }
    }

    /// Handles `event` in `tx`; work to start after the commit goes to
    /// `after`.
    async fn route(
        &self,
        tx: &mut Tx<'_>,
        event: &Envelope,
        after: &mut Vec<AfterCommit>,
    ) -> Result<(), HandlerError> {
        match event.event_type.as_str() {
            CHECK_DUE => self.check_due(after),
            SCHEDULED => self.scheduled(after),
            WEBHOOK_RECEIVED | WEBHOOK_RECEIVED_TYPE => {
                if let Some(staged) = crate::webhooks::on_webhook(&self.engine, tx, event).await? {
                    after.push(Box::new(move || staged.publish()));
                }
            }
            t if crate::triggers::BINDINGS.contains(&t) => {
                self.triggers.handle(tx, event).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// `integration.sync.check-due`: a due check at once, on this replica
    /// (safe on any replica, lock holder or not: see [`crate::scheduler`]).
    fn check_due(&self, after: &mut Vec<AfterCommit>) {
        let scheduler = self.scheduler.clone();
        after.push(Box::new(move || scheduler.check_now()));
    }

    /// `integration.sync.scheduled`: a job was created; the worker looks for
    /// it at once (besides the `NOTIFY` its insert sent, which a worker
    /// whose listener is reconnecting misses).
    fn scheduled(&self, after: &mut Vec<AfterCommit>) {
        let engine = self.engine.clone();
        after.push(Box::new(move || engine.wake.notify_one()));
    }
}

#[async_trait::async_trait]
impl Handler for Consumer {
    fn bindings(&self) -> Vec<String> {
        ROUTES
            .iter()
            .chain(crate::triggers::BINDINGS)
            .map(|r| (*r).to_owned())
            .collect()
    }

    fn wants_type(&self, event_type: &str) -> bool {
        routed(event_type)
    }

    fn wants(&self, event: &Envelope) -> bool {
        self.wants_type(event.event_type.as_str())
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
        let mut after = Vec::new();
        for e in events {
            self.route(tx, e, &mut after).await?;
        }
        if after.is_empty() {
            return Ok(None);
        }
        Ok(Some(Box::new(move || {
            for f in after {
                f();
            }
        })))
    }
}
