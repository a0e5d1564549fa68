//! An integration's sealed credentials, opened for a call. Each secret is
//! sealed with a context naming its integration and kind
//! (`integration:<id>:api_key|basic|oauth|oauth_client|oauth_journal`), so a
//! sealed value copied to another row or field does not open.
//!
//! OAuth: the tokens are one sealed JSON blob in `oauth_tokens`
//! (`{"sealed": …}`); the integration's OAuth app (client id and secret) is
//! sealed in `oauth_client_encrypted`; token answers are sealed into the
//! token journal before they are applied ([`crate::tokens`]).

use chrono::{DateTime, Utc};
use hub_connectors::client::Credentials;
use hub_connectors::manifest::OAuthConfig;
use hub_connectors::oauth::{ClientApp, TokenAnswer};
use hub_domain::secret::{Keyring, SecretError};
use hub_storage::integrations::Integration;
use serde_json::Value;
use uuid::Uuid;

/// The sealing context of secret `what` of integration `id`.
pub fn ctx(id: Uuid, what: &str) -> String {
    format!("integration:{id}:{what}")
}

/// Opens the sealed credentials of `row` for a call.
pub fn open(row: &Integration, keyring: &Keyring) -> Result<Credentials, SecretError> {
    let text = |b: Vec<u8>| String::from_utf8(b).map_err(|_| SecretError::Malformed);
    let mut c = Credentials::default();
    if let Some(s) = &row.api_key_encrypted {
        c.api_key = Some(text(keyring.open(&ctx(row.id, "api_key"), s)?)?);
    }
    if let Some(s) = &row.basic_auth_encrypted {
        let v: Value = serde_json::from_str(&text(keyring.open(&ctx(row.id, "basic"), s)?)?)
            .map_err(|_| SecretError::Malformed)?;
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        c.basic = Some((field("username"), field("password")));
    }
    if let Some(sealed) = row
        .oauth_tokens
        .as_ref()
        .and_then(|t| t.get("sealed"))
        .and_then(Value::as_str)
    {
        let v: Value = serde_json::from_str(&text(keyring.open(&ctx(row.id, "oauth"), sealed)?)?)
            .map_err(|_| SecretError::Malformed)?;
        c.access_token = v
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    Ok(c)
}

/// An integration's OAuth tokens, opened. `Debug` redacts.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthTokens {
    /// The access token.
    pub access_token: String,
    /// The refresh token, if there is one.
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for OAuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuthTokens([redacted])")
    }
}

/// The `oauth_tokens` column for `tokens` of integration `id`:
/// `{"sealed": …}` (context `integration:<id>:oauth`).
pub fn seal_tokens(id: Uuid, keyring: &Keyring, tokens: &OAuthTokens) -> Value {
    let blob = serde_json::json!({
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
    })
    .to_string();
    serde_json::json!({"sealed": keyring.seal(&ctx(id, "oauth"), blob.as_bytes())})
}

/// Opens the OAuth tokens of `row`; `None` when it has none.
pub fn open_tokens(
    row: &Integration,
    keyring: &Keyring,
) -> Result<Option<OAuthTokens>, SecretError> {
    let Some(sealed) = row
        .oauth_tokens
        .as_ref()
        .and_then(|t| t.get("sealed"))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let plain = keyring.open(&ctx(row.id, "oauth"), sealed)?;
    let v: Value = serde_json::from_slice(&plain).map_err(|_| SecretError::Malformed)?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(field("access_token").map(|access_token| OAuthTokens {
        access_token,
        refresh_token: field("refresh_token").filter(|s| !s.is_empty()),
    }))
}

/// Seals the OAuth app of integration `id` (context `integration:<id>:oauth_client`).
pub fn seal_client(id: Uuid, keyring: &Keyring, app: &ClientApp) -> String {
    let blob = serde_json::to_vec(app).unwrap_or_default();
    keyring.seal(&ctx(id, "oauth_client"), &blob)
}

/// Opens the OAuth app of `row`; `None` when none was given.
pub fn open_client(row: &Integration, keyring: &Keyring) -> Result<Option<ClientApp>, SecretError> {
    let Some(sealed) = &row.oauth_client_encrypted else {
        return Ok(None);
    };
    let plain = keyring.open(&ctx(row.id, "oauth_client"), sealed)?;
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(|_| SecretError::Malformed)
}

/// Seals a token answer for the journal (context `integration:<id>:oauth_journal`).
pub fn seal_answer(id: Uuid, keyring: &Keyring, answer: &TokenAnswer) -> String {
    let blob = serde_json::to_vec(answer).unwrap_or_default();
    keyring.seal(&ctx(id, "oauth_journal"), &blob)
}

/// Opens a journaled token answer of integration `id`.
pub fn open_answer(id: Uuid, keyring: &Keyring, sealed: &str) -> Result<TokenAnswer, SecretError> {
    let plain = keyring.open(&ctx(id, "oauth_journal"), sealed)?;
    serde_json::from_slice(&plain).map_err(|_| SecretError::Malformed)
}

/// Writes a token answer to `row` (not yet stored): the tokens sealed (a
/// provider that did not rotate the refresh token keeps the old one), their
/// expiries, the refresh time, no pending retry, the provider's base URL
/// from the answer into `config` when the manifest says so
/// (`api_base_from_token`), and the credentials hint (set, never a token's
/// characters).
pub fn apply_answer(
    row: &mut Integration,
    keyring: &Keyring,
    oauth: &OAuthConfig,
    answer: &TokenAnswer,
    now: DateTime<Utc>,
) -> Result<(), SecretError> {
    let old_refresh = open_tokens(row, keyring)
        .ok()
        .flatten()
        .and_then(|t| t.refresh_token);
    let tokens = OAuthTokens {
        access_token: answer.access_token.clone(),
        refresh_token: answer.refresh_token.clone().or(old_refresh),
    };
    row.oauth_tokens = Some(seal_tokens(row.id, keyring, &tokens));
    let secs = |s: u64| chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
    row.oauth_expires_at = answer.expires_in.map(|s| now + secs(s));
    if answer.refresh_token.is_some() || row.oauth_refresh_expires_at.is_none() {
        row.oauth_refresh_expires_at = answer.refresh_expires_in.map(|s| now + secs(s));
    }
    row.oauth_refreshed_at = Some(now);
    row.oauth_retry_at = None;
    row.oauth_failures = 0;
    if let Some(field) = &oauth.api_base_from_token
        && let Some(base) = answer.extras.get(field).and_then(Value::as_str)
        && let Some(config) = row.config.as_object_mut()
    {
        config.insert(field.clone(), Value::String(base.to_owned()));
    }
    let mut hint = row
        .credentials_hint
        .as_object()
        .cloned()
        .unwrap_or_default();
    hint.insert("access_token".into(), serde_json::json!({"set": true}));
    if tokens.refresh_token.is_some() {
        hint.insert("refresh_token".into(), serde_json::json!({"set": true}));
    }
    hint.insert("expires_at".into(), serde_json::json!(row.oauth_expires_at));
    row.credentials_hint = Value::Object(hint);
    Ok(())
}
