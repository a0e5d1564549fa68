//! The OAuth 2.0 client side of a provider connection (RFC 6749, RFC 7636):
//! the consent page's URL with its `state` and PKCE challenge, the token
//! endpoint's grants (authorization code, refresh, client credentials,
//! password), the provider extras of a token answer, tenant discovery (Xero's
//! `/connections`), and the classification of token-endpoint failures.
//!
//! Everything here is pure except [`request_token`] and [`discover_tenants`],
//! which make one HTTP call each through the hub's guarded client (no
//! redirects, the SSRF rules of [`crate::client::check_target`]). Storage,
//! locking and retries are the caller's (`hub_gateway::tokens`).
//!
//! Decisions (issue 27):
//! - The OAuth app (client id and secret) belongs to the integration; the
//!   caller passes it as [`ClientApp`]. How it authenticates to the token
//!   endpoint is the manifest's `oauth.client_auth` (HTTP Basic for
//!   QuickBooks and Xero, form fields for HubSpot, Salesforce, Zoho).
//! - `config.oauth_authorize_url` / `config.oauth_token_url` override the
//!   manifest's URLs ([`OAuthConfig::authorize_url_for`],
//!   [`OAuthConfig::token_url_for`]).
//! - Failures are [`TokenFailure::Revoked`] (the grant or the client is no
//!   longer good: reconnect), [`TokenFailure::Unavailable`] (5xx, 429,
//!   network: retry later) or [`TokenFailure::Rejected`] (any other refusal:
//!   a bug or a misconfiguration, not worth retrying).

use crate::client::{TargetPolicy, check_target};
use crate::manifest::{ClientAuth, OAuthConfig};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::Duration;

/// An integration's OAuth app. `Debug` redacts.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientApp {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
}

impl fmt::Debug for ClientApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientApp([redacted])")
    }
}

/// 32 random bytes, base64url without padding (an OAuth `state`, a PKCE
/// verifier: 43 characters from the unreserved set).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What a `state` is stored as (hex SHA-256): a leaked table holds no
/// usable state.
pub fn state_hash(state: &str) -> String {
    Sha256::digest(state.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The PKCE `S256` challenge of `verifier`: base64url(SHA-256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Why an OAuth step could not even be attempted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The provider has no consent page (not the authorization-code grant).
    #[error("the provider has no authorization URL (its grant is not AUTHORIZATION_CODE)")]
    NoAuthorizeUrl,
    /// A URL (manifest or config override) is not usable.
    #[error("{0}")]
    BadUrl(String),
}

/// The consent page to send the user to: `response_type=code`, the client
/// id, the redirect URI, the manifest's scopes plus `extra_scopes` (joined
/// by the manifest's separator), the state, the PKCE challenge when given,
/// and the manifest's `authorize_params`.
pub fn authorize_url(
    oauth: &OAuthConfig,
    config: &Value,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    extra_scopes: &[String],
    pkce_verifier: Option<&str>,
) -> Result<url::Url, OAuthError> {
    let base = oauth
        .authorize_url_for(config)
        .ok_or(OAuthError::NoAuthorizeUrl)?;
    let mut url = url::Url::parse(base)
        .map_err(|e| OAuthError::BadUrl(format!("authorize URL {base:?}: {e}")))?;
    let mut scopes: Vec<&str> = oauth.scopes.iter().map(String::as_str).collect();
    for s in extra_scopes {
        if !scopes.contains(&s.as_str()) {
            scopes.push(s);
        }
    }
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        if !scopes.is_empty() {
            q.append_pair("scope", &scopes.join(&oauth.scope_separator));
        }
        if let Some(v) = pkce_verifier {
            q.append_pair("code_challenge", &pkce_challenge(v))
                .append_pair("code_challenge_method", "S256");
        }
        for (k, v) in &oauth.authorize_params {
            q.append_pair(k, v);
        }
    }
    Ok(url)
}

/// One request to the token endpoint.
pub enum Grant<'a> {
    /// Exchange the code the callback brought (RFC 6749 §4.1.3).
    AuthorizationCode {
        /// The code.
        code: &'a str,
        /// The redirect URI the consent page was given.
        redirect_uri: &'a str,
        /// The PKCE verifier, when a challenge was sent.
        verifier: Option<&'a str>,
    },
    /// A new access token for a refresh token (§6).
    Refresh {
        /// The refresh token.
        refresh_token: &'a str,
    },
    /// The app's own token (§4.4).
    ClientCredentials {
        /// Extra scopes on top of the manifest's.
        scopes: &'a [String],
    },
    /// A user's name and password (§4.3).
    Password {
        /// User name.
        username: &'a str,
        /// Password.
        password: &'a str,
        /// Extra scopes on top of the manifest's.
        scopes: &'a [String],
    },
}

impl fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Grant::AuthorizationCode { .. } => "Grant::AuthorizationCode([redacted])",
            Grant::Refresh { .. } => "Grant::Refresh([redacted])",
            Grant::ClientCredentials { .. } => "Grant::ClientCredentials",
            Grant::Password { .. } => "Grant::Password([redacted])",
        })
    }
}

/// The form fields of a token request (without the client's own, which
/// [`client_fields`] adds per `client_auth`).
pub fn grant_fields(oauth: &OAuthConfig, grant: &Grant<'_>) -> Vec<(&'static str, String)> {
    let scope = |extra: &[String]| {
        let mut all: Vec<&str> = oauth.scopes.iter().map(String::as_str).collect();
        all.extend(extra.iter().map(String::as_str));
        all.join(&oauth.scope_separator)
    };
    let mut out = Vec::new();
    match grant {
        Grant::AuthorizationCode {
            code,
            redirect_uri,
            verifier,
        } => {
            out.push(("grant_type", "authorization_code".to_owned()));
            out.push(("code", (*code).to_owned()));
            out.push(("redirect_uri", (*redirect_uri).to_owned()));
            if let Some(v) = verifier {
                out.push(("code_verifier", (*v).to_owned()));
            }
        }
        Grant::Refresh { refresh_token } => {
            out.push(("grant_type", "refresh_token".to_owned()));
            out.push(("refresh_token", (*refresh_token).to_owned()));
        }
        Grant::ClientCredentials { scopes } => {
            out.push(("grant_type", "client_credentials".to_owned()));
            let s = scope(scopes);
            if !s.is_empty() {
                out.push(("scope", s));
            }
        }
        Grant::Password {
            username,
            password,
            scopes,
        } => {
            out.push(("grant_type", "password".to_owned()));
            out.push(("username", (*username).to_owned()));
            out.push(("password", (*password).to_owned()));
            let s = scope(scopes);
            if !s.is_empty() {
                out.push(("scope", s));
            }
        }
    }
    out
}

/// How the client authenticates: `(form fields, Authorization header)`.
pub fn client_fields(
    auth: ClientAuth,
    app: &ClientApp,
) -> (Vec<(&'static str, String)>, Option<String>) {
    match auth {
        ClientAuth::Body => (
            vec![
                ("client_id", app.client_id.clone()),
                ("client_secret", app.client_secret.clone()),
            ],
            None,
        ),
        ClientAuth::Basic => {
            // RFC 6749 §2.3.1: each part form-urlencoded before joining.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&app.client_id), enc(&app.client_secret));
            let header = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            );
            (Vec::new(), Some(header))
        }
    }
}

/// A successful token answer. `Debug` redacts the tokens. Serialized as
/// stored (sealed) in the token journal.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenAnswer {
    /// The access token.
    pub access_token: String,
    /// A refresh token, when the provider issued (or rotated) one.
    pub refresh_token: Option<String>,
    /// Seconds until the access token expires, when said (or the
    /// manifest's `access_token_ttl_seconds`).
    pub expires_in: Option<u64>,
    /// Seconds until the refresh token expires (`x_refresh_token_expires_in`,
    /// `refresh_token_expires_in`, or the manifest's `refresh_token_ttl_seconds`).
    pub refresh_expires_in: Option<u64>,
    /// Every other top-level field of the answer (`instance_url`,
    /// `api_domain`, `scope`, `token_type`, …); never a token.
    pub extras: Map<String, Value>,
}

impl fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAnswer")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish_non_exhaustive()
    }
}

/// Fields of a token answer that are secrets (never kept in `extras`).
const SECRET_FIELDS: &[&str] = &["access_token", "refresh_token", "id_token"];

fn seconds(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Why the token endpoint gave no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFailure {
    /// The grant or the client is no longer valid (`invalid_grant`,
    /// `invalid_client`, `unauthorized_client`, HubSpot `BAD_REFRESH_TOKEN`,
    /// …): the integration must be connected again.
    #[error("the provider refused the grant ({code}): {message}")]
    Revoked {
        /// The provider's error code.
        code: String,
        /// The provider's description, if any (never a token).
        message: String,
    },
    /// 5xx, 429, a timeout or a network error: try again later.
    #[error("the token endpoint is unavailable: {0}")]
    Unavailable(String),
    /// Any other refusal or an unreadable answer.
    #[error("the token endpoint refused the request: {0}")]
    Rejected(String),
}

/// Error codes and description fragments that mean the grant or the client
/// is gone, compared case-insensitively: RFC 6749's, HubSpot's `status`
/// values, Zoho's `invalid_code` (answered with 200), Salesforce's
/// descriptions.
const REVOKED_CODES: &[&str] = &[
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "invalid_code",
    "bad_refresh_token",
    "bad_client_id",
    "bad_auth_code",
    "bad_client_secret",
];
const REVOKED_PHRASES: &[&str] = &[
    "expired access/refresh token",
    "token has been revoked",
    "refresh token is invalid",
    "authentication failure",
];

/// Classifies a token endpoint's answer that carried no access token.
pub fn classify(status: u16, body: &str) -> TokenFailure {
    if status == 429 || status >= 500 {
        return TokenFailure::Unavailable(format!("HTTP {status}"));
    }
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let code = [field("error"), field("status"), field("errorCode")]
        .into_iter()
        .find(|c| !c.is_empty())
        .unwrap_or("")
        .to_owned();
    let message: String = [
        field("error_description"),
        field("message"),
        field("errorDescription"),
    ]
    .into_iter()
    .find(|c| !c.is_empty())
    .unwrap_or("")
    .chars()
    .take(300)
    .collect();
    let lower_code = code.to_ascii_lowercase();
    let lower_msg = message.to_ascii_lowercase();
    if REVOKED_CODES.contains(&lower_code.as_str())
        || REVOKED_PHRASES.iter().any(|p| lower_msg.contains(p))
        || (status == 401 && code.is_empty())
    {
        let code = if code.is_empty() {
            format!("HTTP {status}")
        } else {
            code
        };
        return TokenFailure::Revoked { code, message };
    }
    let what = if code.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status} {code}")
    };
    TokenFailure::Rejected(if message.is_empty() {
        what
    } else {
        format!("{what}: {message}")
    })
}

/// Reads a token endpoint's answer: an access token, or the failure it
/// says (Zoho answers errors with 200).
pub fn parse_answer(
    oauth: &OAuthConfig,
    status: u16,
    body: &str,
) -> Result<TokenAnswer, TokenFailure> {
    if !(200..300).contains(&status) {
        return Err(classify(status, body));
    }
    let v: Value = serde_json::from_str(body)
        .map_err(|_| TokenFailure::Rejected(format!("HTTP {status}: the answer is not JSON")))?;
    let Some(obj) = v.as_object() else {
        return Err(TokenFailure::Rejected(format!(
            "HTTP {status}: the answer is not an object"
        )));
    };
    let Some(access) = obj
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return Err(match classify(400, body) {
            TokenFailure::Rejected(_) => {
                TokenFailure::Rejected(format!("HTTP {status}: no access_token in the answer"))
            }
            other => other,
        });
    };
    let extras = obj
        .iter()
        .filter(|(k, _)| !SECRET_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(TokenAnswer {
        access_token: access.to_owned(),
        refresh_token: obj
            .get("refresh_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        expires_in: seconds(obj.get("expires_in")).or(oauth.access_token_ttl_seconds),
        refresh_expires_in: seconds(obj.get("x_refresh_token_expires_in"))
            .or_else(|| seconds(obj.get("refresh_token_expires_in")))
            .or(oauth.refresh_token_ttl_seconds),
        extras,
    })
}

/// Calls the token endpoint (the manifest's or `config.oauth_token_url`)
/// with `grant`, the client authenticated per the manifest.
pub async fn request_token(
    http: &reqwest::Client,
    oauth: &OAuthConfig,
    config: &Value,
    app: &ClientApp,
    grant: &Grant<'_>,
    timeout: Duration,
    policy: TargetPolicy,
) -> Result<TokenAnswer, TokenFailure> {
    let token_url = oauth.token_url_for(config);
    let url = reqwest::Url::parse(token_url)
        .map_err(|e| TokenFailure::Rejected(format!("token URL {token_url:?}: {e}")))?;
    check_target(&url, policy).map_err(|e| TokenFailure::Rejected(e.to_string()))?;
    let (mut fields, authorization) = client_fields(oauth.client_auth, app);
    fields.extend(grant_fields(oauth, grant));
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let mut req = http
        .post(url)
        .timeout(timeout)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .body(body);
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    let resp = req.send().await.map_err(network)?;
    let status = resp.status().as_u16();
    let text = read_capped(resp).await?;
    parse_answer(oauth, status, &text)
}

/// The tenants a token may act for, from the manifest's
/// `tenant_discovery_url` (Xero's `GET /connections`: `[{"tenantId", …}]`);
/// `None` when the provider has none.
pub async fn discover_tenants(
    http: &reqwest::Client,
    oauth: &OAuthConfig,
    config: &Value,
    access_token: &str,
    timeout: Duration,
    policy: TargetPolicy,
) -> Result<Option<Vec<Value>>, TokenFailure> {
    let Some(discovery) = oauth.tenant_discovery_url_for(config) else {
        return Ok(None);
    };
    let url = reqwest::Url::parse(&discovery)
        .map_err(|e| TokenFailure::Rejected(format!("tenant discovery URL: {e}")))?;
    check_target(&url, policy).map_err(|e| TokenFailure::Rejected(e.to_string()))?;
    let resp = http
        .get(url)
        .timeout(timeout)
        .header(
            "Authorization",
            format!("{}{access_token}", oauth.token_prefix),
        )
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(network)?;
    let status = resp.status().as_u16();
    let text = read_capped(resp).await?;
    if !(200..300).contains(&status) {
        return Err(match status {
            429 | 500.. => TokenFailure::Unavailable(format!("tenant discovery: HTTP {status}")),
            _ => TokenFailure::Rejected(format!("tenant discovery: HTTP {status}")),
        });
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => Ok(Some(items)),
        _ => Err(TokenFailure::Rejected(
            "tenant discovery: the answer is not a JSON array".into(),
        )),
    }
}

/// The first tenant id of a discovery answer (`tenantId`, else `id`).
pub fn first_tenant_id(tenants: &[Value]) -> Option<String> {
    tenants.iter().find_map(|t| {
        t.get("tenantId")
            .or_else(|| t.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

fn network(e: reqwest::Error) -> TokenFailure {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "network error"
    };
    TokenFailure::Unavailable(what.to_owned())
}

/// The answer's body, at most 64 KiB.
async fn read_capped(mut resp: reqwest::Response) -> Result<String, TokenFailure> {
    const CAP: usize = 64 * 1024;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(network)? {
        body.extend_from_slice(&chunk);
        if body.len() > CAP {
            return Err(TokenFailure::Rejected(
                "the answer is larger than 64 KiB".into(),
            ));
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn oauth() -> OAuthConfig {
        crate::catalog::manifest("QUICKBOOKS")
            .and_then(|m| m.oauth.clone())
            .expect("QuickBooks is OAuth")
    }

    #[test]
    fn pkce_challenge_is_unpadded_base64url_of_sha256() {
        // Computed independently (Python hashlib + base64.urlsafe_b64encode).
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mJ0U3rwqjKe3ngOsMFcEmtBgP8lM8w"),
            "_GWp3T91tgZhNkdsEYp_KVsj5ufWINfyX4PKWwe55iM"
        );
    }

    #[test]
    fn random_tokens_are_43_url_safe_characters_and_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(state_hash(&a).len(), 64);
    }

    #[test]
    fn authorize_url_carries_state_scopes_pkce_and_the_config_override() {
        let o = oauth();
        let config = json!({"oauth_authorize_url": "http://127.0.0.1:9/auth"});
        let url = authorize_url(
            &o,
            &config,
            "cid",
            "https://hub/oauth/callback",
            "st",
            &["extra".into()],
            Some("v"),
        )
        .unwrap();
        assert!(url.as_str().starts_with("http://127.0.0.1:9/auth?"));
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["state"], "st");
        assert_eq!(q["redirect_uri"], "https://hub/oauth/callback");
        assert_eq!(q["scope"], "com.intuit.quickbooks.accounting extra");
        assert_eq!(q["code_challenge"], pkce_challenge("v"));
        assert_eq!(q["code_challenge_method"], "S256");
        let plain = authorize_url(&o, &json!({}), "cid", "r", "s", &[], None).unwrap();
        assert!(
            plain
                .as_str()
                .starts_with("https://appcenter.intuit.com/connect/oauth2?")
        );
        assert!(!plain.as_str().contains("code_challenge"));
    }

    #[test]
    fn client_auth_is_basic_or_form_fields() {
        let app = ClientApp {
            client_id: "id:1".into(),
            client_secret: "s e".into(),
        };
        let (fields, header) = client_fields(ClientAuth::Basic, &app);
        assert!(fields.is_empty());
        let expected = base64::engine::general_purpose::STANDARD.encode("id%3A1:s+e");
        assert_eq!(header.unwrap(), format!("Basic {expected}"));
        let (fields, header) = client_fields(ClientAuth::Body, &app);
        assert!(header.is_none());
        assert_eq!(fields[0], ("client_id", "id:1".to_owned()));
    }

    #[test]
    fn grants_send_the_rfc_6749_fields() {
        let o = oauth();
        let names = |g: &Grant<'_>| -> Vec<(&str, String)> { grant_fields(&o, g) };
        let code = names(&Grant::AuthorizationCode {
            code: "c",
            redirect_uri: "r",
            verifier: Some("v"),
        });
        assert_eq!(code[0], ("grant_type", "authorization_code".to_owned()));
        assert!(code.contains(&("code_verifier", "v".to_owned())));
        let refresh = names(&Grant::Refresh {
            refresh_token: "rt",
        });
        assert_eq!(refresh[1], ("refresh_token", "rt".to_owned()));
        let cc = names(&Grant::ClientCredentials { scopes: &[] });
        assert_eq!(cc[0], ("grant_type", "client_credentials".to_owned()));
        assert_eq!(
            cc[1],
            ("scope", "com.intuit.quickbooks.accounting".to_owned())
        );
        let pw = names(&Grant::Password {
            username: "u",
            password: "p",
            scopes: &["x".to_owned()],
        });
        assert_eq!(pw[0], ("grant_type", "password".to_owned()));
        assert!(pw.contains(&("scope", "com.intuit.quickbooks.accounting x".to_owned())));
        assert!(
            !format!(
                "{:?}",
                Grant::Refresh {
                    refresh_token: "rt"
                }
            )
            .contains("rt\"")
        );
    }

    #[test]
    fn failures_are_classified() {
        let revoked = |s, b: &str| matches!(classify(s, b), TokenFailure::Revoked { .. });
        assert!(revoked(400, r#"{"error":"invalid_grant"}"#));
        assert!(revoked(401, r#"{"error":"invalid_client"}"#));
        assert!(revoked(400, r#"{"error":"unauthorized_client"}"#));
        assert!(revoked(
            400,
            r#"{"status":"BAD_REFRESH_TOKEN","message":"missing or unknown refresh token"}"#
        ));
        assert!(revoked(400, r#"{"status":"BAD_CLIENT_ID"}"#));
        assert!(revoked(
            400,
            r#"{"error":"invalid_request","error_description":"expired access/refresh token"}"#
        ));
        assert!(revoked(401, ""));
        for s in [500, 502, 503, 429] {
            assert!(matches!(
                classify(s, r#"{"error":"invalid_grant"}"#),
                TokenFailure::Unavailable(_)
            ));
        }
        assert!(matches!(
            classify(400, r#"{"error":"invalid_scope"}"#),
            TokenFailure::Rejected(_)
        ));
    }

    #[test]
    fn answers_keep_extras_but_never_tokens() {
        let o = oauth();
        let a = parse_answer(
            &o,
            200,
            r#"{"access_token":"at","refresh_token":"rt","expires_in":"3600","x_refresh_token_expires_in":8726400,"instance_url":"https://x","id_token":"secret"}"#,
        )
        .unwrap();
        assert_eq!(a.access_token, "at");
        assert_eq!(a.refresh_token.as_deref(), Some("rt"));
        assert_eq!(a.expires_in, Some(3600));
        assert_eq!(a.refresh_expires_in, Some(8_726_400));
        assert_eq!(a.extras.get("instance_url"), Some(&json!("https://x")));
        assert!(!a.extras.contains_key("id_token"));
        assert!(!format!("{a:?}").contains("at\""));
        // Zoho answers an error with 200.
        assert!(matches!(
            parse_answer(&o, 200, r#"{"error":"invalid_code"}"#),
            Err(TokenFailure::Revoked { .. })
        ));
        // Defaults from the manifest.
        let d = parse_answer(&o, 200, r#"{"access_token":"x"}"#).unwrap();
        assert_eq!(d.expires_in, Some(3600));
        assert_eq!(d.refresh_expires_in, Some(8_640_000));
    }

    #[test]
    fn discovery_follows_the_base_url_origin() {
        let xero = crate::catalog::manifest("XERO")
            .and_then(|m| m.oauth.clone())
            .unwrap();
        assert_eq!(
            xero.tenant_discovery_url_for(&json!({})).unwrap(),
            "https://api.xero.com/connections"
        );
        assert_eq!(
            xero.tenant_discovery_url_for(
                &json!({"base_url": "http://127.0.0.1:4000/api.xro/2.0"})
            )
            .unwrap(),
            "http://127.0.0.1:4000/connections"
        );
        assert_eq!(
            first_tenant_id(&[json!({"tenantId": "t1"}), json!({"tenantId": "t2"})]).as_deref(),
            Some("t1")
        );
    }
}
