//! Request and response types of the OAuth routes.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Body of `POST …/oauth/authorize` (optional).
#[derive(Deserialize, ToSchema, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeInput {
    /// Where the callback sends the browser (303) once connected; must be on
    /// `HUB_PUBLIC_URL`'s origin. Without it the callback answers JSON.
    pub redirect_after: Option<String>,
    /// Scopes to ask for on top of the provider's (at most 20).
    pub scopes: Option<Vec<String>>,
}

/// Answer of `POST …/oauth/authorize` for the authorization-code grant.
#[derive(Serialize, ToSchema, Debug)]
pub struct AuthorizeAnswer {
    /// The provider's consent page to send the user to.
    pub authorization_url: String,
    /// When the state in it stops being accepted (10 minutes).
    pub state_expires_at: chrono::DateTime<chrono::Utc>,
}

/// Query of the provider's redirect to `GET /oauth/callback`.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// The state given to the consent page.
    pub state: Option<String>,
    /// QuickBooks: the company (recorded as `config.realm_id`).
    #[serde(rename = "realmId")]
    #[param(rename = "realmId")]
    pub realm_id: Option<String>,
    /// The provider's error (`access_denied`, …) when access was not granted.
    pub error: Option<String>,
    /// The provider's description of the error.
    pub error_description: Option<String>,
}

impl std::fmt::Debug for CallbackQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackQuery([redacted])")
    }
}

/// Answer of the callback (without `redirect_after`) and of a direct
/// (client-credentials or password) connection.
#[derive(Serialize, ToSchema)]
pub struct Connected {
    /// The integration.
    pub integration_id: Uuid,
    /// Its status after the connection test (`ACTIVE` when it passed).
    pub status: String,
    /// The connection test.
    pub test: crate::routes::integrations::body::TestResult,
}

/// Answer of `POST …/refresh-oauth`.
#[derive(Serialize, ToSchema, Debug)]
pub struct Refreshed {
    /// The integration.
    pub integration_id: Uuid,
    /// When the new access token expires, if the provider said.
    pub oauth_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}
