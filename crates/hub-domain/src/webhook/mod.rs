//! Outbound webhooks: which events a subscription receives, how each request
//! is signed ([Standard Webhooks](https://www.standardwebhooks.com/); its one
//! verifier, [`check`], also verifies inbound requests), when a
//! failed delivery is retried, and the per-subscription circuit breaker.
//!
//! Everything here is pure: time, randomness for jitter and the outcome of
//! each attempt are passed in by the dispatcher, so every rule can be tested
//! without a clock, a network or a database.

mod breaker;
mod pattern;
mod retry;
mod signature;

pub use breaker::{Admission, Breaker, BreakerPolicy, BreakerState, Transition};
pub use pattern::{
    ALWAYS_ROUTED, EventPattern, MAX_PATTERNS, extra_binding_keys, matches_any, parse_patterns,
};
pub use retry::{AUTO_DISABLE_AFTER, RetryPolicy, parse_retry_after};
#[cfg(test)]
pub(crate) use signature::sign_with_key;
pub(crate) use signature::within_tolerance;
pub use signature::{
    DEFAULT_TOLERANCE_SECS, Mismatch, Signed, WebhookSecret, check, sign, signature_header, verify,
};

/// Why a webhook setting was rejected. Messages say what was wrong and what is
/// allowed; they never quote a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// An `event_types` entry or list that is not a valid pattern list.
    #[error("event_types: {0}")]
    InvalidPattern(String),
    /// A signing secret that is not `whsec_` + base64 of 24 to 64 bytes.
    #[error("secret: {0}")]
    InvalidSecret(String),
    /// A `max_retries` or `retry_intervals` value out of bounds.
    #[error("{0}")]
    InvalidRetryPolicy(String),
}

/// The service that delivers outbound webhooks, and so the name of its queue:
/// it binds [`ALWAYS_ROUTED`] there, and whoever saves a subscription binds the
/// event types it names before answering.
pub const DISPATCHER: &str = "webhook-dispatcher";

/// A subscription's sealed secrets and auth settings, as stored (opened by
/// `hub_connectors::webhook::open_subscription`).
#[derive(Debug, Clone, Copy)]
pub struct SealedSubscription<'a> {
    /// Subscription id (the sealing context).
    pub id: &'a str,
    /// NONE, HMAC, BASIC, API_KEY, OAUTH2.
    pub auth_type: &'a str,
    /// Non-secret auth settings.
    pub auth_config: Option<&'a serde_json::Value>,
    /// Sealed signing secret.
    pub secret_key: Option<&'a str>,
    /// Sealed previous signing secret.
    pub previous_secret_key: Option<&'a str>,
    /// Until when the previous secret still signs.
    pub previous_secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Sealed auth secret.
    pub auth_secret: Option<&'a str>,
}
