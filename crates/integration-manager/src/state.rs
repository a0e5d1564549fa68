//! What the manager's integration routes share: the catalog, the keyring and
//! the outbound HTTP client.

use hub_connectors::client::{TargetPolicy, http_client};
use hub_connectors::manifest::ProviderManifest;
use hub_domain::secret::Keyring;
use std::collections::HashMap;
use std::sync::Arc;

/// The embedded provider catalog, parsed once.
pub fn catalog() -> Result<&'static HashMap<String, ProviderManifest>, String> {
    hub_gateway::assemble::catalog()
}

/// Shared state of the integration routes.
#[derive(Clone)]
pub struct Integrations {
    /// Credential keys.
    pub keyring: Arc<Keyring>,
    /// Keep-alive client with the SSRF guard.
    pub http: reqwest::Client,
    /// Whether private targets are allowed.
    pub policy: TargetPolicy,
}

impl Integrations {
    /// State for a service's configuration, sealing with `keyring`.
    pub fn new(config: &hub_platform::Config, keyring: Arc<Keyring>) -> Self {
        let policy = target_policy(config);
        Self {
            keyring,
            http: http_client(policy),
            policy,
        }
    }
}

/// Which targets outbound calls may reach (`HUB_ALLOW_PRIVATE_TARGETS`).
pub fn target_policy(config: &hub_platform::Config) -> TargetPolicy {
    TargetPolicy::allowing_private(config.hub_allow_private_targets)
}

/// Loads the catalog into `integration_providers` (idempotent: only changed
/// manifests are written).
pub async fn load_catalog(pool: &sqlx::PgPool) -> Result<u64, String> {
    use sha2::{Digest, Sha256};
    let catalog = catalog()?;
    let mut rows = Vec::with_capacity(catalog.len());
    for m in catalog.values() {
        let manifest = serde_json::to_value(m).map_err(|e| e.to_string())?;
        let hash = hex::encode(Sha256::digest(manifest.to_string().as_bytes()));
        rows.push(hub_storage::providers::ProviderUpsert {
            code: m.code.clone(),
            name: m.name.clone(),
            category: m.category.as_str().to_owned(),
            description: Some(m.description.clone()),
            config_schema: m.config_schema.clone(),
            auth_type: m.auth_type.as_str().to_owned(),
            oauth_config: m
                .oauth
                .as_ref()
                .map(|o| serde_json::to_value(o).unwrap_or_default()),
            base_url: Some(m.base_url.clone()),
            api_version: m.api_version.clone(),
            documentation_url: Some(m.documentation_url.clone()),
            supports_webhooks: m.capabilities.supports_webhooks,
            supports_batch: m.capabilities.supports_batch,
            supports_realtime: m.capabilities.supports_realtime,
            rate_limit_requests: i32::try_from(m.rate_limit.requests).ok(),
            rate_limit_window: i32::try_from(m.rate_limit.window_seconds).ok(),
            status: m.status.as_str().to_owned(),
            manifest,
            manifest_hash: hash,
        });
    }
    let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
    let changed = hub_storage::providers::upsert_all(&mut tx, &rows)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(changed)
}
