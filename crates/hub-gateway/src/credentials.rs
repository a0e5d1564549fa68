//! An integration's sealed credentials, opened for a call. Each secret is
//! sealed with a context naming its integration and kind
//! (`integration:<id>:api_key|basic|oauth`), so a sealed value copied to
//! another row or field does not open.

use hub_connectors::client::Credentials;
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
