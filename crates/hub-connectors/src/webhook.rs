//! Sending one outbound webhook attempt: target checks, Standard Webhooks
//! signing, the subscription's auth and headers, a per-attempt timeout, no
//! redirects, and at most 64 KiB of the response kept.
//!
//! Used by the dispatcher's workers and by the manager's `test` route, so a
//! test delivery goes out exactly like a real one.

use crate::client::{TargetPolicy, check_target, is_forbidden};
use base64::Engine as _;
use hub_domain::webhook::{self as wh, WebhookSecret};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The most of a response body that is kept.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Headers whose values are never stored or shown.
const SECRET_HEADERS: &[&str] = &["authorization", "webhook-signature", "proxy-authorization"];

/// How a subscription authenticates to its receiver (secrets already opened).
#[derive(Clone)]
pub enum OutboundAuth {
    /// Nothing, not even a signature.
    None,
    /// Standard Webhooks signature only.
    Hmac,
    /// HTTP Basic, plus the signature.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// A key in a header, plus the signature.
    ApiKey {
        /// Header name.
        header: String,
        /// Header value.
        value: String,
    },
    /// A client-credentials bearer token, plus the signature.
    OAuth2 {
        /// Token endpoint.
        token_url: String,
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: String,
        /// Requested scope.
        scope: Option<String>,
    },
}

impl std::fmt::Debug for OutboundAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            OutboundAuth::None => "None",
            OutboundAuth::Hmac => "Hmac",
            OutboundAuth::Basic { .. } => "Basic",
            OutboundAuth::ApiKey { .. } => "ApiKey",
            OutboundAuth::OAuth2 { .. } => "OAuth2",
        };
        write!(f, "OutboundAuth::{kind}([redacted])")
    }
}

/// One attempt to send.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Target URL.
    pub url: String,
    /// Content-Type.
    pub content_type: String,
    /// The subscription's extra headers.
    pub headers: Vec<(String, String)>,
    /// Authentication.
    pub auth: OutboundAuth,
    /// Signing secrets: the current one, then the previous one during rotation.
    pub secrets: Vec<WebhookSecret>,
    /// `webhook-id` (the event id: the same on every retry).
    pub msg_id: String,
    /// `webhook-timestamp` (unix seconds).
    pub timestamp: i64,
    /// The body, exactly as signed.
    pub body: Vec<u8>,
    /// Cache key of the OAuth token (the subscription id).
    pub token_key: String,
}

/// What happened.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// 2xx.
    pub success: bool,
    /// Response status, if a response came.
    pub status: Option<u16>,
    /// Response headers.
    pub response_headers: Option<serde_json::Value>,
    /// Response body, at most [`MAX_RESPONSE_BODY`] bytes (lossy UTF-8).
    pub response_body: Option<String>,
    /// Request headers as sent, secrets redacted.
    pub request_headers: serde_json::Value,
    /// Time to the response (or the failure).
    pub latency: Duration,
    /// What went wrong (non-2xx, timeout, connection).
    pub error: Option<String>,
    /// `Retry-After` of a 429/503.
    pub retry_after: Option<Duration>,
}

#[derive(Clone)]
struct Token {
    value: String,
    expires: Instant,
}

/// How long an idle keep-alive connection to a receiver is kept.
const POOL_IDLE: Duration = Duration::from_secs(4);

/// The request headers as the attempt records them, secrets redacted.
fn shown_headers(
    headers: &[(String, String)],
    auth: &OutboundAuth,
) -> serde_json::Map<String, serde_json::Value> {
    let secret_header = match auth {
        OutboundAuth::ApiKey { header, .. } => Some(header.as_str()),
        _ => None,
    };
    headers
        .iter()
        .map(|(k, v)| {
            let hidden = SECRET_HEADERS.contains(&k.as_str())
                || secret_header.is_some_and(|h| h.eq_ignore_ascii_case(k));
            let v = if hidden {
                "[redacted]".into()
            } else {
                v.clone()
            };
            (k.clone(), serde_json::Value::String(v))
        })
        .collect()
}

/// The attempt a receiver's answer makes: success on 2xx, its headers, at
/// most `MAX_RESPONSE_BODY` of its body, a `Retry-After` on 429/503.
async fn answered(
    resp: reqwest::Response,
    shown: serde_json::Map<String, serde_json::Value>,
    started: Instant,
) -> AttemptResult {
    let status = resp.status();
    let now = chrono::Utc::now();
    let retry_after = if status.as_u16() == 429 || status.as_u16() == 503 {
        resp.headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| wh::parse_retry_after(v, now))
    } else {
        None
    };
    let response_headers: serde_json::Map<String, serde_json::Value> = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                serde_json::Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    let (body, body_error) = read_capped(resp, MAX_RESPONSE_BODY).await;
    let success = status.is_success();
    let error = if success {
        None
    } else if status.is_redirection() {
        Some(format!(
            "receiver answered {status} (redirects are not followed)"
        ))
    } else {
        Some(format!("receiver answered {status}"))
    }
    .or(body_error.filter(|_| !success));
    AttemptResult {
        success,
        status: Some(status.as_u16()),
        response_headers: Some(serde_json::Value::Object(response_headers)),
        response_body: Some(body),
        request_headers: serde_json::Value::Object(shown),
        latency: started.elapsed(),
        error,
        retry_after,
    }
}

/// Whether the connection closed before any answer came (the server closed
/// an idle kept-alive connection as the request went out).
fn closed_before_answer(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return h.is_incomplete_message() || h.is_canceled();
        }
        source = s.source();
    }
    false
}

/// Sends attempts over one keep-alive client; caches OAuth tokens.
pub struct Sender {
    http: reqwest::Client,
    policy: TargetPolicy,
    timeout: Duration,
    /// Held across a fetch, so concurrent deliveries wait for one token
    /// request instead of each making their own.
    tokens: tokio::sync::Mutex<HashMap<String, Token>>,
}

impl Sender {
    /// A sender with the SSRF `policy` and a per-attempt `timeout`.
    pub fn new(policy: TargetPolicy, timeout: Duration, max_idle_per_host: usize) -> Self {
        let http = crate::client::client_builder(policy)
            .pool_max_idle_per_host(max_idle_per_host)
            // Below the keep-alive timeout of common servers (5 s for Node,
            // actix and others): a connection the receiver is about to close
            // is not reused.
            .pool_idle_timeout(POOL_IDLE)
            .tcp_nodelay(true)
            .build()
            .expect("the HTTP client configuration is valid");
        Self {
            http,
            policy,
            timeout,
            tokens: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Sends `o` once. Never panics; every failure is described in the result.
    pub async fn send(&self, o: &Outbound) -> AttemptResult {
        let started = Instant::now();
        let fail =
            |error: String, shown: serde_json::Map<String, serde_json::Value>| AttemptResult {
                success: false,
                status: None,
                response_headers: None,
                response_body: None,
                request_headers: serde_json::Value::Object(shown),
                latency: started.elapsed(),
                error: Some(error),
                retry_after: None,
            };
        let url = match reqwest::Url::parse(&o.url) {
            Ok(u) => u,
            Err(e) => return fail(format!("invalid URL: {e}"), serde_json::Map::new()),
        };
        if let Err(e) = check_target(&url, self.policy) {
            return fail(e.to_string(), serde_json::Map::new());
        }
        let headers = match self.headers(o).await {
            Ok(h) => h,
            Err(e) => return fail(e, serde_json::Map::new()),
        };
        let shown = shown_headers(&headers, &o.auth);
        let request = || {
            let mut req = self.http.post(url.clone()).timeout(self.timeout);
            for (k, v) in &headers {
                req = req.header(k.as_str(), v.as_str());
            }
            req.body(o.body.clone())
        };
        let sent = match request().send().await {
            // A kept-alive connection the receiver closed just as we reused
            // it: nothing was answered, so send once more on a fresh
            // connection instead of spending an attempt (and a breaker
            // failure) on a race. The webhook-id lets receivers drop the rare
            // copy of a request they did read.
            Err(e) if closed_before_answer(&e) => request().send().await,
            other => other,
        };
        match sent {
            Ok(resp) => answered(resp, shown, started).await,
            Err(e) => fail(describe(&e, self.timeout), shown),
        }
    }

    /// The request's headers: content type, the subscription's own, the
    /// Standard Webhooks signature and the auth header.
    async fn headers(&self, o: &Outbound) -> Result<Vec<(String, String)>, String> {
        let mut headers: Vec<(String, String)> = Vec::new();
        headers.push(("content-type".into(), o.content_type.clone()));
        for (k, v) in &o.headers {
            headers.push((k.to_ascii_lowercase(), v.clone()));
        }
        if !matches!(o.auth, OutboundAuth::None) && !o.secrets.is_empty() {
            let refs: Vec<&WebhookSecret> = o.secrets.iter().collect();
            headers.push(("webhook-id".into(), o.msg_id.clone()));
            headers.push(("webhook-timestamp".into(), o.timestamp.to_string()));
            headers.push((
                "webhook-signature".into(),
                wh::signature_header(&refs, &o.msg_id, o.timestamp, &o.body),
            ));
        }
        match &o.auth {
            OutboundAuth::None | OutboundAuth::Hmac => {}
            OutboundAuth::Basic { username, password } => {
                let raw = format!("{username}:{password}");
                headers.push((
                    "authorization".into(),
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(raw)
                    ),
                ));
            }
            OutboundAuth::ApiKey { header, value } => {
                headers.push((header.to_ascii_lowercase(), value.clone()));
            }
            OutboundAuth::OAuth2 { .. } => {
                let t = self
                    .token(o)
                    .await
                    .map_err(|e| format!("OAuth token request failed: {e}"))?;
                headers.push(("authorization".into(), format!("Bearer {t}")));
            }
        }
        Ok(headers)
    }

    async fn token(&self, o: &Outbound) -> Result<String, String> {
        let OutboundAuth::OAuth2 {
            token_url,
            client_id,
            client_secret,
            scope,
        } = &o.auth
        else {
            return Err("not OAuth2".into());
        };
        let key = format!("{}:{token_url}:{client_id}", o.token_key);
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.get(&key)
            && t.expires > Instant::now() + Duration::from_secs(60)
        {
            return Ok(t.value.clone());
        }
        let url = reqwest::Url::parse(token_url).map_err(|e| format!("invalid token_url: {e}"))?;
        check_target(&url, self.policy).map_err(|e| e.to_string())?;
        let form = {
            let mut f = url::form_urlencoded::Serializer::new(String::new());
            f.append_pair("grant_type", "client_credentials");
            if let Some(s) = scope {
                f.append_pair("scope", s);
            }
            f.finish()
        };
        let resp = self
            .http
            .post(url)
            .timeout(self.timeout)
            .basic_auth(client_id, Some(client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| describe(&e, self.timeout))?;
        let status = resp.status();
        let (body, _) = read_capped(resp, MAX_RESPONSE_BODY).await;
        if !status.is_success() {
            return Err(format!("token endpoint answered {status}"));
        }
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|_| "token response is not JSON".to_owned())?;
        let token = v["access_token"]
            .as_str()
            .ok_or("token response has no access_token")?
            .to_owned();
        let ttl = v["expires_in"].as_u64().unwrap_or(3600);
        tokens.insert(
            key,
            Token {
                value: token.clone(),
                expires: Instant::now() + Duration::from_secs(ttl),
            },
        );
        Ok(token)
    }
}

/// Reads at most `cap` bytes of the body, then drops the connection's rest.
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> (String, Option<String>) {
    let mut buf = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                let room = cap - buf.len();
                buf.extend_from_slice(&c[..c.len().min(room)]);
                if buf.len() >= cap {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                return (
                    String::from_utf8_lossy(&buf).into_owned(),
                    Some(format!("reading the response failed: {e}")),
                );
            }
        }
    }
    (String::from_utf8_lossy(&buf).into_owned(), None)
}

fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timed out after {} s", timeout.as_secs_f64());
    }
    let mut chain = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    if e.is_connect() {
        format!("connection failed: {chain}")
    } else {
        chain
    }
}

/// Checks a subscription URL when it is set: http(s) only; https unless
/// `allow_insecure`; and unless `allow_private`, a host that is not (and
/// does not resolve to) a private, loopback, link-local or metadata address.
/// The sender checks again at every connection (DNS can change).
pub async fn check_subscription_url(
    raw: &str,
    allow_insecure: bool,
    allow_private: bool,
) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must be http(s) (got {:?})", url.scheme()));
    }
    if url.scheme() == "http" && !allow_insecure {
        return Err(
            "must be https; set HUB_ALLOW_INSECURE_URLS=true to allow http for development".into(),
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; use auth_type BASIC instead".into());
    }
    if raw.len() > 500 {
        return Err("must be at most 500 characters".into());
    }
    if allow_private {
        return Ok(url);
    }
    let refuse = |what: &str| {
        Err(format!(
            "{what} is a private, loopback, link-local or metadata address; set HUB_ALLOW_PRIVATE_TARGETS=true only for development"
        ))
    };
    let host = match url.host() {
        Some(url::Host::Ipv4(ip)) if is_forbidden(ip.into()) => return refuse(&ip.to_string()),
        Some(url::Host::Ipv6(ip)) if is_forbidden(ip.into()) => return refuse(&ip.to_string()),
        Some(url::Host::Domain(d)) => d.to_owned(),
        Some(_) => return Ok(url),
        None => return Err("has no host".into()),
    };
    if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
        return refuse(&host);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(addrs)) => {
            for a in addrs {
                if is_forbidden(a.ip()) {
                    return refuse(&format!("{host} resolves to {} which", a.ip()));
                }
            }
            Ok(url)
        }
        Ok(Err(e)) => Err(format!("host {host} does not resolve ({e})")),
        Err(_) => Err(format!("host {host} did not resolve within 5 s")),
    }
}

/// The body of a delivery: the event envelope, or the fields the
/// subscription's `transform_template` maps (`{"out": "/json/pointer"}`).
pub fn render_body(
    payload: &serde_json::Value,
    template: Option<&serde_json::Value>,
) -> serde_json::Value {
    match template.and_then(|t| t.as_object()) {
        Some(map) if !map.is_empty() => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let value = match v.as_str() {
                    Some(ptr) if ptr.starts_with('/') => payload
                        .pointer(ptr)
                        .cloned()
                        .unwrap_or(serde_json::Value::Null),
                    _ => v.clone(),
                };
                out.insert(k.clone(), value);
            }
            serde_json::Value::Object(out)
        }
        _ => payload.clone(),
    }
}

/// A subscription's `headers` object as the header pairs a send adds
/// (non-string values are ignored; validation refuses them on input).
pub fn custom_headers(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The field of `auth_config` that is a secret, per auth type: it is sealed
/// apart and never stored in `auth_config` or shown.
pub fn auth_secret_field(auth_type: &str) -> Option<&'static str> {
    match auth_type {
        "BASIC" => Some("password"),
        "API_KEY" => Some("value"),
        "OAUTH2" => Some("client_secret"),
        _ => None,
    }
}

/// The sealing context of a subscription secret (`secret`, `previous`, `auth`).
pub fn secret_context(subscription: &str, what: &str) -> String {
    format!("subscription:{subscription}:{what}")
}

pub use hub_domain::webhook::SealedSubscription;

/// Opens a subscription's secrets: its auth and its signing secrets (the
/// previous one only while its rotation window lasts).
pub fn open_subscription(
    keyring: &hub_domain::secret::Keyring,
    s: SealedSubscription<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(OutboundAuth, Vec<WebhookSecret>), String> {
    let open = |what: &str, sealed: &str| -> Result<String, String> {
        let bytes = keyring
            .open(&secret_context(s.id, what), sealed)
            .map_err(|e| format!("{what} secret cannot be decrypted: {e}"))?;
        String::from_utf8(bytes).map_err(|_| format!("{what} secret is not UTF-8"))
    };
    let mut secrets = Vec::new();
    if let Some(sealed) = s.secret_key {
        secrets.push(WebhookSecret::parse(&open("secret", sealed)?).map_err(|e| e.to_string())?);
    }
    if let (Some(sealed), Some(until)) = (s.previous_secret_key, s.previous_secret_expires_at)
        && until > now
    {
        secrets.push(WebhookSecret::parse(&open("previous", sealed)?).map_err(|e| e.to_string())?);
    }
    let cfg = s.auth_config.cloned().unwrap_or_default();
    let text = |k: &str| cfg.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let secret = || -> Result<String, String> {
        match s.auth_secret {
            Some(sealed) => open("auth", sealed),
            None => Err(format!("{} auth has no secret set", s.auth_type)),
        }
    };
    let auth = match s.auth_type {
        "NONE" => OutboundAuth::None,
        "BASIC" => OutboundAuth::Basic {
            username: text("username").unwrap_or_default(),
            password: secret()?,
        },
        "API_KEY" => OutboundAuth::ApiKey {
            header: text("header").unwrap_or_else(|| "X-API-Key".into()),
            value: secret()?,
        },
        "OAUTH2" => OutboundAuth::OAuth2 {
            token_url: text("token_url").unwrap_or_default(),
            client_id: text("client_id").unwrap_or_default(),
            client_secret: secret()?,
            scope: text("scope"),
        },
        _ => OutboundAuth::Hmac,
    };
    Ok((auth, secrets))
}
