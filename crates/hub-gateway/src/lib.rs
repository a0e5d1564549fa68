//! The API gateway: every call the hub makes to a provider for a tenant
//! (connection tests, the proxy, sync) goes through [`engine::Gateway`].
//!
//! - [`tokens`]: OAuth2 access tokens, refreshed before expiry and after a
//!   401, once across all replicas (the integration's row lock).
//! - [`limiter`]: the integration's rate limit, exact across replicas (fixed
//!   windows counted in `rate_limit_buckets`), with a bounded wait queue.
//! - [`breaker`]: the per-integration circuit breaker (`circuit_breaker_state`).
//! - [`logs`]: one `api_request_logs` row per attempt, redacted, written in
//!   batches off the request path.
//!
//! hub-connectors knows providers and HTTP but no database; this crate joins
//! it to hub-storage's state.

pub mod assemble;
pub mod breaker;
pub mod credentials;
pub mod engine;
pub mod limiter;
pub mod logs;
pub mod tokens;
