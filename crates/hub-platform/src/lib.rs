//! What the three Integration Hub services share.
//!
//! * [`config`]: one typed, validated configuration (defaults → `HUB_CONFIG`
//!   file → environment, the spec's variable names as written).
//! * [`telemetry`]: tracing (`LOG_FORMAT=json|pretty`) and OpenTelemetry export.
//! * [`error`]: `application/problem+json` errors with stable codes.
//! * [`auth`]: the API-key + `X-Tenant-ID` extractor and the operator token.
//! * [`server`]: the actix bootstrap every binary's `App::build` uses, with
//!   `/health`, `/ready`, `/metrics`, `/openapi.json`, `/docs`, request ids,
//!   the outbox relay, the service's consumer and graceful shutdown.

pub mod auth;
pub mod batch;
pub mod config;
pub mod docs;
pub mod error;
pub mod http;
pub mod server;
pub mod telemetry;
pub mod transforms;

pub use config::{Config, ConfigError};
pub use error::{ApiError, ErrorCode};
pub use server::{Service, ServiceApp, StartupError};
