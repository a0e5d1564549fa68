//! Provider connectors for the Integration Hub.
//!
//! Today: the provider catalog as data. Each provider is one JSON file in
//! `providers/` (`<code in lower case>.json`), embedded at build time by
//! `build.rs`, so adding a provider means adding a file, not code. The
//! manifests are checked when the catalog loads ([`catalog()`]) and know how to
//! validate an integration's `config` against the provider's JSON Schema
//! ([`ProviderManifest::validate_config`]) and how to fill the test call
//! ([`ProviderManifest::render_test_path`]).
//!
//! [`oauth`] is the OAuth 2.0 client side: authorization URLs with state and
//! PKCE, the token endpoint's grants, and the classification of its errors.
//!
//! [`client`] is the outbound HTTP client: credentials injected per manifest,
//! per-call timeouts, no redirects, and no private/loopback/link-local targets
//! unless allowed (SSRF guard at DNS resolution and for IP literals).

pub mod catalog;
pub mod client;
pub mod manifest;
pub mod oauth;
pub mod redact;
mod schema_errors;
pub mod sync;
mod template;
pub mod webhook;

pub use catalog::{CatalogError, ManifestProblem, catalog, embedded_files, load, parse_manifest};
pub use manifest::{
    ApiKeyPlacement, AuthType, BASE_URL_FIELD, Capabilities, Category, ClientAuth,
    ConfigFieldError, GrantType, KeyLocation, Method, OAuthConfig, ProviderManifest,
    ProviderStatus, RateLimit, TestCall, UnknownValue,
};
pub use template::RenderError;
