//! Pure domain types and rules of the Integration Hub.
//!
//! Nothing here performs I/O: values are parsed once at the edge (HTTP, AMQP,
//! database rows) into these types and are valid wherever they travel.

pub mod api_key;
pub mod audit;
pub mod cursor;
pub mod event;
pub mod gateway;
pub mod ids;
pub mod inbound;
pub mod schedule;
pub mod secret;
pub mod status;
pub mod sync;
pub mod tenant;
pub mod webhook;

pub use api_key::{ApiKeyHash, ApiKeySecret};
pub use event::{Envelope, EventType};
pub use ids::{ApiKeyId, EventId, TenantId};
pub use tenant::{TenantName, TenantSlug};

/// A value that failed validation, with the field it came from and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The input field, in the request's own naming (snake_case).
    pub field: String,
    /// What is wrong and, where it helps, what to send instead.
    pub message: String,
}

impl FieldError {
    /// A validation error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
