//! The event bus of the Integration Hub, on RabbitMQ (lapin).
//!
//! * [`Topology`]: the durable topic exchange `<prefix>hub.events` other systems
//!   publish to (routing key = event type), forwarding everything to
//!   `<prefix>hub.routed`, where the relays publish the hub's own events and
//!   service queues are bound (the audit trail's alone is bound to the entry
//!   exchange); a dead-letter exchange `<prefix>hub.dlx`; and per service a
//!   durable queue `<prefix><service>.events`, a retry queue and a dead-letter queue.
//! * [`Bus`]: one connection per process that reconnects by itself, and a
//!   confirmed publisher (persistent, publisher confirms).
//! * [`relay`]: publishes the transactional outbox, deleting rows only after
//!   the broker confirmed them.
//! * [`consumer`]: manual acks after the handler's transaction commits,
//!   idempotency through `processed_events`, bounded redelivery with backoff
//!   through the retry queue, then the dead-letter queue.
//! * [`dead_letters`]: the operator's look into a dead-letter queue, re-drive
//!   to the work queue and delete, losing nothing on a crash.
//! * [`backoff`]: the one retry backoff every failing loop of the hub waits by.

pub mod backoff;
pub mod cloudevents;
mod connection;
pub mod consumer;
pub mod dead_letters;
pub mod relay;
mod topology;
pub mod trace;

pub use connection::{Bus, BusConfig, Outgoing, publish_confirmed};
pub use consumer::{AfterCommit, Handler, HandlerError};
pub use topology::Topology;

/// Errors of the bus layer.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker could not be reached or the connection/channel broke.
    #[error("RabbitMQ unavailable: {0}")]
    Unavailable(#[from] lapin::Error),
    /// Connecting took longer than the configured timeout.
    #[error("RabbitMQ did not answer in time")]
    Timeout,
    /// The broker refused a message (negative publisher confirm).
    #[error("RabbitMQ refused message {0}")]
    Nacked(String),
    /// The outbox could not be read or updated.
    #[error(transparent)]
    Storage(#[from] hub_storage::StorageError),
}

/// Header carrying how many times a message has failed in a handler.
pub const ATTEMPT_HEADER: &str = "x-hub-attempt";
/// Header carrying the last handler error of a dead-lettered message.
pub const ERROR_HEADER: &str = "x-hub-error";
