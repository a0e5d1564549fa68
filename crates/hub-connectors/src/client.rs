//! The outbound HTTP client for provider calls: credentials injected per the
//! manifest, a per-call timeout, no redirects, and no private, loopback,
//! link-local or metadata targets unless explicitly allowed (SSRF).

use crate::manifest::{AuthType, KeyLocation, ProviderManifest};
use base64::Engine;
use serde_json::Value;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Whether private targets may be called (`HUB_ALLOW_PRIVATE_TARGETS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetPolicy {
    /// Public addresses only (production).
    PublicOnly,
    /// Anything, including loopback (development and tests).
    AllowPrivate,
}

impl TargetPolicy {
    /// The policy `HUB_ALLOW_PRIVATE_TARGETS` asks for.
    pub fn allowing_private(allow: bool) -> Self {
        if allow {
            TargetPolicy::AllowPrivate
        } else {
            TargetPolicy::PublicOnly
        }
    }
}

/// True for addresses an integration must never reach: loopback, private,
/// link-local (which includes cloud metadata at 169.254.169.254), CGNAT,
/// unspecified, multicast, documentation and IPv6 unique-local ranges.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] == 0x2001 && seg[1] == 0x0db8)
        }
    }
}

/// A DNS resolver that drops forbidden addresses, so the rule also holds for
/// names that resolve to private addresses (and cannot be dodged by DNS
/// rebinding between a check and the connect).
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| !is_forbidden(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(
                    format!("{host} resolves only to private or reserved addresses").into(),
                );
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Builds the shared client (keep-alive, no redirects, SSRF guard per policy).
pub fn http_client(policy: TargetPolicy) -> reqwest::Client {
    client_builder(policy)
        .build()
        .expect("static client configuration is valid")
}

/// The client configuration every outbound call uses (no redirects, SSRF
/// guard per policy), for callers that tune the pool further.
pub fn client_builder(policy: TargetPolicy) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("integration-hub/", env!("CARGO_PKG_VERSION")));
    if policy == TargetPolicy::PublicOnly {
        b = b.dns_resolver(Arc::new(GuardedResolver));
    }
    b
}

/// Decrypted credentials of one integration, in memory only. `Debug` redacts.
#[derive(Clone, Default)]
pub struct Credentials {
    /// API key (API_KEY).
    pub api_key: Option<String>,
    /// Username and password (BASIC).
    pub basic: Option<(String, String)>,
    /// OAuth access token (OAUTH2).
    pub access_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials([redacted])")
    }
}

/// Why a call could not even be attempted.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The target URL is invalid or forbidden.
    #[error("{0}")]
    Target(String),
    /// The manifest's call could not be filled in from the config.
    #[error("{0}")]
    Render(String),
    /// The integration has no credentials of the kind its provider needs.
    #[error("{0}")]
    MissingCredentials(String),
}

/// Checks a target URL before any call: http(s) only, and under
/// [`TargetPolicy::PublicOnly`] https to a public host (no private, loopback,
/// link-local or reserved IP literal, no `localhost`). Names are checked again
/// when they resolve.
pub fn check_target(url: &reqwest::Url, policy: TargetPolicy) -> Result<(), CallError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CallError::Target(format!(
            "base_url must be http(s) (got {:?})",
            url.scheme()
        )));
    }
    if policy == TargetPolicy::AllowPrivate {
        return Ok(());
    }
    if url.scheme() != "https" {
        return Err(CallError::Target("base_url must be https".into()));
    }
    let forbidden_literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => is_forbidden(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_forbidden(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost")
        }
        None => true,
    };
    if forbidden_literal {
        return Err(CallError::Target(format!(
            "{} is a private, loopback or reserved address; set HUB_ALLOW_PRIVATE_TARGETS=true only for development",
            url.host_str().unwrap_or("")
        )));
    }
    Ok(())
}

/// A manifest's connection test for an integration: the method, the path
/// (and query) below the base URL, and the body, all filled from `config`
/// (and the API key, for providers that take it in the body).
pub fn test_request(
    manifest: &ProviderManifest,
    config: &Value,
    creds: &Credentials,
) -> Result<(String, String, Option<String>), CallError> {
    let path = manifest
        .render_test_path(config)
        .map_err(|e| CallError::Render(e.to_string()))?;
    let body = manifest
        .render_test_body(config, creds.api_key.as_deref())
        .map_err(|e| CallError::Render(e.to_string()))?;
    Ok((manifest.test_call.method.as_str().to_owned(), path, body))
}

/// What a connection test's answer says: `Ok`, or the provider's error for
/// a human (never containing credentials).
pub fn test_verdict(manifest: &ProviderManifest, status: u16, body: &str) -> Result<(), String> {
    let expected = if manifest.test_call.expect_status.is_empty() {
        (200..300).contains(&status)
    } else {
        manifest.test_call.expect_status.contains(&status)
    };
    if expected {
        Ok(())
    } else {
        Err(describe_failure(status, body))
    }
}

/// Puts the integration's credentials where its provider wants them
/// (header, query, or the body template); returns the names of the headers
/// that hold a secret (lower-case), to redact.
pub fn inject_auth(
    manifest: &ProviderManifest,
    creds: &Credentials,
    url: &mut reqwest::Url,
    headers: &mut Vec<(String, String)>,
) -> Result<Vec<String>, CallError> {
    let mut secret_headers: Vec<String> = Vec::new();
    match manifest.auth_type {
        AuthType::ApiKey => {
            let key = required(creds.api_key.as_deref(), "credentials.api_key is not set")?;
            let placement = manifest
                .api_key
                .as_ref()
                .ok_or_else(|| CallError::Render("manifest has no api_key placement".into()))?;
            match placement.location {
                KeyLocation::Header => {
                    headers.push((placement.name.clone(), placement.value(key)));
                    secret_headers.push(placement.name.to_ascii_lowercase());
                }
                KeyLocation::Query => {
                    url.query_pairs_mut().append_pair(&placement.name, key);
                }
                // Filled into the body template below.
                KeyLocation::Body => {}
            }
        }
        AuthType::OAuth2 => {
            let token = required(
                creds.access_token.as_deref(),
                "credentials.access_token is not set",
            )?;
            let prefix = manifest
                .oauth
                .as_ref()
                .map(|o| o.token_prefix.as_str())
                .unwrap_or("Bearer ");
            headers.push(("Authorization".into(), format!("{prefix}{token}")));
            secret_headers.push("authorization".into());
        }
        AuthType::Basic => {
            let (u, p) = required(
                creds.basic.as_ref(),
                "credentials.username and password are not set",
            )?;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            headers.push(("Authorization".into(), format!("Basic {token}")));
            secret_headers.push("authorization".into());
        }
        AuthType::None => {}
    }
    Ok(secret_headers)
}

/// The credential `value`, or the error saying which one `missing` is.
fn required<T>(value: Option<T>, missing: &str) -> Result<T, CallError> {
    value.ok_or_else(|| CallError::MissingCredentials(missing.to_owned()))
}

fn describe_failure(status: u16, body: &str) -> String {
    let detail = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            [
                "message",
                "Message",
                "error_description",
                "error",
                "detail",
                "Detail",
                "title",
            ]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
            .or_else(|| {
                v.pointer("/Fault/Error/0/Message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    let hint = match status {
        401 | 403 => " (check the credentials)",
        429 => " (rate limited by the provider; retry later)",
        _ => "",
    };
    format!("provider answered {status}: {detail}{hint}")
}

/// An error and its causes, joined with `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "52.1.2.3", "2606:4700::1111"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn targets_are_checked() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(check_target(&u("https://api.hubapi.com/x"), TargetPolicy::PublicOnly).is_ok());
        for bad in [
            "http://api.hubapi.com/x",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest",
            "https://localhost/x",
            "ftp://x/y",
        ] {
            assert!(
                check_target(&u(bad), TargetPolicy::PublicOnly).is_err(),
                "{bad}"
            );
        }
        assert!(check_target(&u("http://127.0.0.1:9/x"), TargetPolicy::AllowPrivate).is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused() {
        let http = http_client(TargetPolicy::PublicOnly);
        let err = http.get("https://localhost:1/").send().await.unwrap_err();
        assert!(
            error_chain(&err).contains("private or reserved"),
            "{}",
            error_chain(&err)
        );
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let c = Credentials {
            api_key: Some("sk_live_secret".into()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("sk_live"));
    }
}
