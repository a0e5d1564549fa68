//! OAuth2 access tokens (placeholder until the OAuth work lands: hands out
//! the stored access token and cannot refresh).

use hub_connectors::client::TargetPolicy;
use hub_domain::secret::Keyring;
use hub_storage::integrations::Integration;
use std::sync::Arc;

/// Why no access token can be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// The integration has no OAuth connection.
    #[error("{0}")]
    NotConnected(String),
    /// The provider refused the refresh token: reconnect.
    #[error("{0}")]
    Revoked(String),
    /// The provider could not be asked now.
    #[error("{0}")]
    Unavailable(String),
    /// Storage or sealing failed.
    #[error("{0}")]
    Internal(String),
}

/// The access tokens of integrations.
#[derive(Clone)]
pub struct Tokens {
    keyring: Arc<Keyring>,
}

impl Tokens {
    /// Tokens sealed with `keyring`.
    pub fn new(
        _pool: sqlx::PgPool,
        keyring: Arc<Keyring>,
        _http: reqwest::Client,
        _policy: TargetPolicy,
    ) -> Self {
        Self { keyring }
    }

    /// The access token to use now.
    pub async fn access(&self, integration: &Integration) -> Result<String, TokenError> {
        crate::credentials::open(integration, &self.keyring)
            .map_err(|e| TokenError::Internal(e.to_string()))?
            .access_token
            .ok_or_else(|| TokenError::NotConnected("credentials.access_token is not set".into()))
    }

    /// The provider answered 401 to `stale`.
    pub async fn after_unauthorized(
        &self,
        _integration: &Integration,
        _stale: &str,
    ) -> Result<String, TokenError> {
        Err(TokenError::NotConnected(
            "the access token was refused and cannot be refreshed".into(),
        ))
    }
}
