//! One gateway per process, assembled the same way by every service that
//! calls providers (the manager's proxy and tests, integration-sync's
//! jobs): the provider catalog, a pooled HTTP client under the SSRF
//! policy, the rate limiter, the breakers, and the caller's token keeper
//! and request-log recorder.

use crate::breaker::Breakers;
use crate::engine::{Gateway, Parts, Settings};
use crate::limiter::{Limiter, QueuePolicy};
use crate::logs::Recorder;
use crate::tokens::Tokens;
use hub_connectors::client::TargetPolicy;
use hub_connectors::manifest::ProviderManifest;
use hub_domain::secret::Keyring;
use hub_domain::webhook::BreakerPolicy;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The shipped provider catalog by code, parsed once per process.
pub fn catalog() -> Result<&'static HashMap<String, ProviderManifest>, String> {
    static CATALOG: OnceLock<Result<HashMap<String, ProviderManifest>, String>> = OnceLock::new();
    CATALOG
        .get_or_init(|| {
            hub_connectors::catalog::catalog()
                .map(|all| all.into_iter().map(|m| (m.code.clone(), m)).collect())
                .map_err(|e| format!("provider catalog: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// What a service sets of its gateway (from its configuration).
pub struct Setup {
    /// The hub database.
    pub pool: sqlx::PgPool,
    /// Opens sealed credentials.
    pub keyring: Arc<Keyring>,
    /// OAuth tokens (shared with the service's refresh loop).
    pub tokens: Tokens,
    /// The request log.
    pub recorder: Recorder,
    /// Whether private targets are allowed (development only).
    pub policy: TargetPolicy,
    /// The wait queue of the rate limiter.
    pub queue: QueuePolicy,
    /// The per-integration breaker.
    pub breaker: BreakerPolicy,
    /// Deadline, default limit, source name.
    pub settings: Settings,
}

/// Assembles the gateway of `setup`.
pub fn gateway(setup: Setup) -> Result<Gateway, String> {
    let http = hub_connectors::client::client_builder(setup.policy)
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Gateway::new(Parts {
        pool: setup.pool.clone(),
        http,
        keyring: setup.keyring,
        catalog: catalog()?,
        tokens: setup.tokens,
        limiter: Limiter::new(setup.pool.clone(), setup.queue),
        breakers: Breakers::new(setup.pool, setup.breaker, setup.settings.source),
        recorder: setup.recorder,
        settings: setup.settings,
    }))
}
