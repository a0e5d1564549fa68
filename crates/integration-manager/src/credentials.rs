//! Integration credentials: parsed from requests, sealed at rest, shown only
//! as "set, last four characters".
//!
//! OAUTH2 integrations (issue 27): the OAuth app is per integration,
//! `credentials.client_id` and `credentials.client_secret`, sealed like the
//! other secrets; the hint shows the last four characters of the client id
//! only, the secret as set. Such an integration may be created with only the
//! app (it waits in `PENDING_AUTH` for `POST …/oauth/authorize`) or, as
//! before, with an access token (and refresh token) obtained elsewhere; both
//! may be given. `username`/`password` are kept for providers whose grant is
//! the password grant.

use chrono::{DateTime, Utc};
use hub_connectors::manifest::AuthType;
use hub_domain::FieldError;
use hub_domain::secret::{Keyring, SecretError, last_four};
use hub_storage::integrations::{Integration, SealedSecrets};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// Credentials as a client sends them; which fields are needed depends on the
/// provider's auth type.
#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CredentialsInput {
    /// API_KEY providers.
    pub api_key: Option<String>,
    /// BASIC providers.
    pub username: Option<String>,
    /// BASIC providers.
    pub password: Option<String>,
    /// OAUTH2 providers: the current access token.
    pub access_token: Option<String>,
    /// OAUTH2 providers: the refresh token.
    pub refresh_token: Option<String>,
    /// OAUTH2 providers: when the access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// OAUTH2 providers: the OAuth app's client id (for the OAuth connection
    /// and refreshes).
    pub client_id: Option<String>,
    /// OAUTH2 providers: the OAuth app's client secret.
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for CredentialsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsInput([redacted])")
    }
}

use hub_connectors::oauth::ClientApp;
use hub_gateway::credentials::{ctx, seal_client};

fn present(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Credentials that fit their provider's auth type, to be sealed.
pub struct ValidCredentials {
    api_key: Option<String>,
    basic: Option<(String, String)>,
    /// Access token, refresh token, expiry.
    oauth: Option<(String, Option<String>, Option<DateTime<Utc>>)>,
    /// The OAuth app.
    client: Option<ClientApp>,
}

impl std::fmt::Debug for ValidCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValidCredentials([redacted])")
    }
}

/// Checks the credentials fit `auth` (every error, `credentials.<field>`).
pub fn check(
    auth: AuthType,
    input: &CredentialsInput,
) -> Result<ValidCredentials, Vec<FieldError>> {
    let mut errors = Vec::new();
    let need = |field: &str, v: Option<&str>, errors: &mut Vec<FieldError>| {
        if v.is_none() {
            errors.push(FieldError::new(
                format!("credentials.{field}"),
                format!("is required for {} providers", auth.as_str()),
            ));
        }
    };
    let forbid = |field: &str, set: bool, errors: &mut Vec<FieldError>| {
        if set {
            errors.push(FieldError::new(
                format!("credentials.{field}"),
                format!("does not apply to {} providers", auth.as_str()),
            ));
        }
    };
    for (field, v) in [
        ("api_key", &input.api_key),
        ("username", &input.username),
        ("password", &input.password),
        ("access_token", &input.access_token),
        ("refresh_token", &input.refresh_token),
        ("client_id", &input.client_id),
        ("client_secret", &input.client_secret),
    ] {
        if v.as_ref().is_some_and(|s| s.len() > 8192) {
            errors.push(FieldError::new(
                format!("credentials.{field}"),
                "must be at most 8192 characters",
            ));
        }
    }
    match auth {
        AuthType::ApiKey => {
            need("api_key", present(&input.api_key), &mut errors);
            forbid("username", input.username.is_some(), &mut errors);
            forbid("access_token", input.access_token.is_some(), &mut errors);
        }
        AuthType::Basic => {
            need("username", present(&input.username), &mut errors);
            need("password", present(&input.password), &mut errors);
            forbid("api_key", input.api_key.is_some(), &mut errors);
        }
        AuthType::OAuth2 => {
            let app = (present(&input.client_id), present(&input.client_secret));
            match app {
                (Some(_), None) => need("client_secret", None, &mut errors),
                (None, Some(_)) => need("client_id", None, &mut errors),
                (None, None) if present(&input.access_token).is_none() => errors.push(
                    FieldError::new(
                        "credentials.access_token",
                        "is required for OAUTH2 providers unless credentials.client_id and client_secret are given (then connect with POST …/oauth/authorize)",
                    ),
                ),
                _ => {}
            }
            forbid("api_key", input.api_key.is_some(), &mut errors);
        }
        AuthType::None => {
            forbid("api_key", input.api_key.is_some(), &mut errors);
            forbid("access_token", input.access_token.is_some(), &mut errors);
            forbid("username", input.username.is_some(), &mut errors);
        }
    }
    if auth != AuthType::OAuth2 {
        forbid("client_id", input.client_id.is_some(), &mut errors);
        forbid("client_secret", input.client_secret.is_some(), &mut errors);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let owned = |s: &Option<String>| present(s).map(str::to_owned);
    Ok(ValidCredentials {
        api_key: owned(&input.api_key),
        basic: owned(&input.username).zip(owned(&input.password)),
        oauth: owned(&input.access_token)
            .map(|t| (t, owned(&input.refresh_token), input.expires_at)),
        client: owned(&input.client_id)
            .zip(owned(&input.client_secret))
            .map(|(client_id, client_secret)| ClientApp {
                client_id,
                client_secret,
            }),
    })
}

impl ValidCredentials {
    /// Seals the credentials into `row` (replacing any it had) and sets the
    /// hint that shows them.
    pub fn seal_into(self, row: &mut Integration, keyring: &Keyring) {
        let mut hint = serde_json::Map::new();
        let shown = |hint: &mut serde_json::Map<String, Value>, field: &str, secret: &str| {
            hint.insert(
                field.into(),
                json!({"set": true, "last4": last_four(secret)}),
            );
        };
        row.api_key_encrypted = None;
        row.basic_auth_encrypted = None;
        row.oauth_tokens = None;
        row.oauth_expires_at = None;
        row.oauth_client_encrypted = None;
        row.oauth_refresh_expires_at = None;
        row.oauth_refreshed_at = None;
        row.oauth_retry_at = None;
        row.oauth_failures = 0;
        row.oauth_tenants = None;
        if let Some(k) = &self.api_key {
            row.api_key_encrypted = Some(keyring.seal(&ctx(row.id, "api_key"), k.as_bytes()));
            shown(&mut hint, "api_key", k);
        }
        if let Some((u, p)) = &self.basic {
            let blob = json!({"username": u, "password": p}).to_string();
            row.basic_auth_encrypted = Some(keyring.seal(&ctx(row.id, "basic"), blob.as_bytes()));
            shown(&mut hint, "username", u);
            shown(&mut hint, "password", p);
        }
        if let Some((t, refresh, expires_at)) = &self.oauth {
            let blob = json!({"access_token": t, "refresh_token": refresh}).to_string();
            row.oauth_tokens =
                Some(json!({"sealed": keyring.seal(&ctx(row.id, "oauth"), blob.as_bytes())}));
            row.oauth_expires_at = *expires_at;
            shown(&mut hint, "access_token", t);
            if let Some(r) = refresh {
                shown(&mut hint, "refresh_token", r);
            }
            if let Some(e) = expires_at {
                hint.insert("expires_at".into(), json!(e));
            }
        }
        if let Some(app) = &self.client {
            row.oauth_client_encrypted = Some(seal_client(row.id, keyring, app));
            shown(&mut hint, "client_id", &app.client_id);
            hint.insert("client_secret".into(), json!({"set": true}));
        }
        row.credentials_hint = Value::Object(hint);
    }
}

/// Re-seals every secret of a row under the current key; `None` when nothing
/// needed it (what [`crate::rotation::rotate_all`] runs per row).
pub fn reseal(
    id: Uuid,
    old: &SealedSecrets,
    keyring: &Keyring,
) -> Result<Option<SealedSecrets>, SecretError> {
    let mut resealer = crate::rotation::Resealer::new(keyring);
    let mut again = |what: &str, sealed: &str| resealer.again(&ctx(id, what), sealed);
    let api_key = old
        .api_key
        .as_deref()
        .map(|s| again("api_key", s))
        .transpose()?;
    let basic = old
        .basic
        .as_deref()
        .map(|s| again("basic", s))
        .transpose()?;
    let oauth = match old
        .oauth
        .as_ref()
        .and_then(|t| t.get("sealed"))
        .and_then(Value::as_str)
    {
        Some(s) => Some(json!({"sealed": again("oauth", s)?})),
        None => old.oauth.clone(),
    };
    let oauth_client = old
        .oauth_client
        .as_deref()
        .map(|s| again("oauth_client", s))
        .transpose()?;
    Ok(resealer.changed.then_some(SealedSecrets {
        api_key,
        oauth,
        basic,
        oauth_client,
    }))
}
