//! The gateway engine: one call to a provider for a tenant's integration,
//! with everything the gateway promises around it.
//!
//! Per attempt: the breaker admits it (or the call fails fast with the time
//! to retry), the rate limit grants it (or it waits in the bounded queue),
//! the credentials go where the provider's manifest says (OAuth tokens from
//! [`Tokens`], refreshed once on a 401), the request goes out with the
//! integration's timeout, the outcome feeds the breaker and, when the
//! provider says "slow down", the limiter; every attempt is one request-log
//! row. Failed attempts are retried with exponential backoff and jitter
//! (the `backoff` crate), honoring `Retry-After`, up to the integration's
//! `max_retries` within a total deadline, and only when repeating is safe
//! ([`hub_domain::gateway::may_repeat`], or the request never left).
//!
//! The last answer is streamed back; its first 64 KiB are kept for the log,
//! which is written when the stream ends.

use crate::breaker::{BreakerError, Breakers, Verdict};
use crate::limiter::{LimitError, Limiter};
use crate::logs::{Direction, Exchange, Recorder};
use crate::tokens::{TokenError, Tokens};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use hub_connectors::client::{self, Credentials, TargetPolicy};
use hub_connectors::manifest::{AuthType, ProviderManifest};
use hub_domain::TenantId;
use hub_domain::gateway::{self as rules, RateLimit};
use hub_domain::secret::Keyring;
use hub_domain::status::IntegrationStatus;
use hub_storage::integrations::Integration;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};
use uuid::Uuid;

/// The most of an answer kept for the log (and read to classify it).
pub const LOG_BODY_CAP: usize = 64 * 1024;

/// How long a loaded integration is trusted before it is read again.
const INTEGRATION_FRESH_FOR: Duration = Duration::from_secs(2);

/// What the engine needs from the service's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether private targets are allowed.
    pub policy: TargetPolicy,
    /// Longest a call may take with its retries.
    pub deadline: Duration,
    /// `DEFAULT_RATE_LIMIT` per `RATE_LIMIT_WINDOW_SECONDS`.
    pub default_limit: (u32, u32),
    /// The service's name (events).
    pub source: &'static str,
}

/// One call to make at an integration's provider.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// HTTP method.
    pub method: Method,
    /// Path and query below the integration's base URL (`crm/v3/objects/contacts?limit=1`).
    pub path_and_query: String,
    /// The caller's headers (only those [`rules::forward_request_header`]
    /// allows are sent).
    pub headers: HeaderMap,
    /// The request body.
    pub body: Bytes,
    /// `X-Hub-Priority: high`: skips the rate-limit queue.
    pub high_priority: bool,
    /// Whether failed attempts may be retried at all (connection tests: no).
    pub retries: bool,
    /// Correlation id of the call (`X-Hub-Request-Id`), shared by its attempts.
    pub request_id: String,
    /// A connection test: goes whatever the integration's state and breaker
    /// (it is how a paused, failing or new integration proves itself), and
    /// its outcome still counts for the breaker.
    pub connection_test: bool,
}

/// What a connection test found.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    /// Whether the provider answered as the manifest expects.
    pub ok: bool,
    /// The provider's status, when it answered.
    pub status: Option<u16>,
    /// Time to the answer.
    pub latency_ms: u64,
    /// What went wrong, for a human.
    pub error: Option<String>,
}

/// A provider's answer, as the gateway passes it on.
pub struct Answer {
    /// The provider's status.
    pub status: u16,
    /// The provider's headers that may cross ([`rules::forward_response_header`]).
    pub headers: HeaderMap,
    /// The body, streamed.
    pub body: Body,
    /// Attempts made.
    pub attempts: u32,
    /// Requests left in the rate-limit window (estimate).
    pub remaining: u32,
}

/// An answer's body: a stream that records its log row when it ends.
pub type Body = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Why the gateway did not (or could not) get an answer.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The integration may not be called in its state (paused, disabled,
    /// waiting for authorization): 409.
    #[error("{0}")]
    NotCallable(String),
    /// The call is malformed or its target forbidden: 400.
    #[error("{0}")]
    BadRequest(String),
    /// Over the rate limit with no room to wait: 429.
    #[error("{message}")]
    Throttled {
        /// When to retry.
        retry_after: Duration,
        /// What happened.
        message: String,
    },
    /// The breaker is open: 503.
    #[error("circuit open after repeated provider failures; retry in {} s", retry_after.as_secs().max(1))]
    CircuitOpen {
        /// When the probe may go.
        retry_after: Duration,
    },
    /// The OAuth connection has no usable token: 409 (reconnect) or 503.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// No answer from the provider after every attempt: 502 (504 on timeout).
    #[error("{message}")]
    Unreachable {
        /// What went wrong last.
        message: String,
        /// Whether the last attempt timed out.
        timed_out: bool,
        /// Attempts made.
        attempts: u32,
    },
    /// The gateway's own state could not be reached: 503.
    #[error("{0}")]
    Unavailable(String),
}

impl From<BreakerError> for GatewayError {
    fn from(e: BreakerError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<LimitError> for GatewayError {
    fn from(e: LimitError) -> Self {
        match e {
            LimitError::Throttled { retry_after, .. } => Self::Throttled {
                message: e.to_string(),
                retry_after,
            },
            LimitError::Storage(m) => Self::Unavailable(m),
        }
    }
}

/// An integration loaded for calls: the row, its manifest, its opened
/// credentials and its limit.
#[derive(Clone)]
pub struct Loaded {
    /// The row.
    pub row: Integration,
    /// Its provider's manifest.
    pub manifest: &'static ProviderManifest,
    /// Its opened credentials (in memory only).
    pub creds: Credentials,
    /// The limit in force.
    pub limit: RateLimit,
}

/// Loaded integrations by (tenant, id), with when they were read.
type LoadedCache = HashMap<(Uuid, Uuid), (Instant, Arc<Loaded>)>;

/// The gateway of one process; cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    pool: sqlx::PgPool,
    http: reqwest::Client,
    keyring: Arc<Keyring>,
    catalog: &'static HashMap<String, ProviderManifest>,
    /// OAuth tokens.
    pub tokens: Tokens,
    /// Rate limits.
    pub limiter: Limiter,
    /// Breakers.
    pub breakers: Breakers,
    recorder: Recorder,
    settings: Settings,
    loaded: Arc<Mutex<LoadedCache>>,
}

/// The parts a [`Gateway`] is built from.
#[allow(missing_docs)]
pub struct Parts {
    pub pool: sqlx::PgPool,
    pub http: reqwest::Client,
    pub keyring: Arc<Keyring>,
    pub catalog: &'static HashMap<String, ProviderManifest>,
    pub tokens: Tokens,
    pub limiter: Limiter,
    pub breakers: Breakers,
    pub recorder: Recorder,
    pub settings: Settings,
}

struct Attempt {
    id: Uuid,
    number: u32,
    retry_of: Option<Uuid>,
}

impl Gateway {
    /// Assembles a gateway.
    pub fn new(p: Parts) -> Self {
        Self {
            pool: p.pool,
            http: p.http,
            keyring: p.keyring,
            catalog: p.catalog,
            tokens: p.tokens,
            limiter: p.limiter,
            breakers: p.breakers,
            recorder: p.recorder,
            settings: p.settings,
            loaded: Arc::default(),
        }
    }

    /// The tenant's integration `id` ready for calls (read at most every
    /// 2 s per process; [`Self::forget`] drops it at once), or `None`.
    pub async fn load(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<Arc<Loaded>>, GatewayError> {
        let key = (tenant.0, id);
        if let Some((at, l)) = self.cache().get(&key)
            && at.elapsed() < INTEGRATION_FRESH_FOR
        {
            return Ok(Some(l.clone()));
        }
        let unavailable = |e: hub_storage::StorageError| GatewayError::Unavailable(e.to_string());
        let Some(row) = hub_storage::integrations::get(&self.pool, tenant, id)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let overridden = row.rate_limit_requests.zip(row.rate_limit_window_seconds);
        let loaded = Arc::new(self.loaded_from(row, overridden)?);
        self.cache().insert(key, (Instant::now(), loaded.clone()));
        Ok(Some(loaded))
    }

    fn loaded_from(
        &self,
        row: Integration,
        overridden: Option<(i32, i32)>,
    ) -> Result<Loaded, GatewayError> {
        let manifest = self.catalog.get(&row.provider_code).ok_or_else(|| {
            GatewayError::Unavailable(format!("provider {} has no manifest", row.provider_code))
        })?;
        let creds = crate::credentials::open(&row, &self.keyring)
            .map_err(|e| GatewayError::Unavailable(format!("credentials cannot be opened: {e}")))?;
        let positive = |(r, w): (i32, i32)| Some((u32::try_from(r).ok()?, u32::try_from(w).ok()?));
        let limit = RateLimit::resolve(
            overridden.and_then(positive),
            Some((
                manifest.rate_limit.requests,
                manifest.rate_limit.window_seconds,
            )),
            self.settings.default_limit,
        );
        Ok(Loaded {
            row,
            manifest,
            creds,
            limit,
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LoadedCache> {
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops a loaded integration (after this process changed it).
    pub fn forget(&self, id: Uuid) {
        self.cache().retain(|(_, i), _| *i != id);
    }

    /// Makes the call `out` at the integration's provider.
    pub async fn send(&self, it: &Loaded, out: Outgoing) -> Result<Answer, GatewayError> {
        if !out.connection_test {
            callable(&it.row)?;
        }
        let url = target(it, &out.path_and_query, self.settings.policy)?;
        let may_repeat = out.retries
            && it.row.retry_enabled
            && rules::may_repeat(
                out.method.as_str(),
                out.headers.contains_key("idempotency-key"),
            );
        let max_attempts = if out.retries && it.row.retry_enabled {
            1 + u32::try_from(it.row.max_retries.clamp(0, 10)).unwrap_or(0)
        } else {
            1
        };
        let deadline = Instant::now() + self.settings.deadline;
        let timeout =
            Duration::from_secs(u64::try_from(it.row.timeout_seconds.clamp(1, 300)).unwrap_or(30));
        let mut backoff = retry_backoff();
        let mut token = self.oauth_token(it).await?;
        let mut refreshed = false;
        let mut attempt = Attempt {
            id: Uuid::now_v7(),
            number: 1,
            retry_of: None,
        };
        loop {
            let verdict = if out.connection_test {
                Verdict::Call
            } else {
                self.breakers.admit(it.row.id).await?
            };
            let probe = match verdict {
                Verdict::Call => false,
                Verdict::Probe => true,
                Verdict::Open(retry_after) => {
                    return Err(GatewayError::CircuitOpen { retry_after });
                }
            };
            let permit = self
                .limiter
                .acquire(it.row.id, it.limit, out.high_priority)
                .await?;
            let (request, secrets) =
                self.request(it, &out, &url, token.as_deref(), timeout, deadline)?;
            let sent_headers = request.headers().clone();
            let sent_url = request.url().to_string();
            let started = Instant::now();
            let result = self.http.execute(request).await;
            let latency = started.elapsed();
            let record = Record {
                gateway: self,
                it,
                out: &out,
                attempt: &attempt,
                url: sent_url,
                headers: sent_headers,
                secrets,
                latency,
            };
            let retry_wait =
                |retry_after: Option<Duration>, backoff: &mut backoff::ExponentialBackoff| {
                    let next = backoff::backoff::Backoff::next_backoff(backoff)?;
                    let wait = retry_after.map_or(next, |r| r.max(next));
                    (Instant::now() + wait < deadline).then_some(wait)
                };
            match result {
                Err(e) => {
                    let timed_out = e.is_timeout();
                    // A request that never connected was never sent: safe to repeat.
                    let unsent = e.is_connect();
                    let message = describe(&e, timeout);
                    self.breakers
                        .record(tenant_of(it), it.row.id, false, probe)
                        .await?;
                    record.error(&message, timed_out).await;
                    let again =
                        attempt.number < max_attempts && (may_repeat || (unsent && out.retries));
                    match again.then(|| retry_wait(None, &mut backoff)).flatten() {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => {
                            return Err(GatewayError::Unreachable {
                                message,
                                timed_out,
                                attempts: attempt.number,
                            });
                        }
                    }
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let code = it.manifest.code.as_str();
                    let retry_after = resp
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| rules::retry_after(v, SystemTime::now()));
                    // Answers we may act on are read whole (they are small);
                    // the rest stream.
                    let unauthorized = status == 401 && token.is_some() && !refreshed;
                    let inspect = rules::retryable(Some(status))
                        || rules::throttle_needs_body(code, status)
                        || unauthorized;
                    if !inspect {
                        self.breakers
                            .record(tenant_of(it), it.row.id, true, probe)
                            .await?;
                        return Ok(record.stream(resp, attempt.number, permit.remaining));
                    }
                    let (head, body, rest) = read_head(resp).await;
                    let throttled = rules::provider_throttled(code, status, &body);
                    if throttled {
                        let reason = format!("provider answered {status}");
                        self.limiter
                            .provider_throttled(it.row.id, retry_after, &reason)
                            .await?;
                    }
                    let failure = rules::breaker_failure(Some(status)) || throttled;
                    self.breakers
                        .record(tenant_of(it), it.row.id, !failure, probe)
                        .await?;
                    let logged = body.slice(..body.len().min(LOG_BODY_CAP));
                    record.answered(&head, &logged, rest.is_none()).await;
                    let wait = if unauthorized {
                        refreshed = true;
                        let stale = token.clone().unwrap_or_default();
                        // Without a new token the provider's own 401 is the answer.
                        match self.tokens.after_unauthorized(&it.row, &stale).await {
                            Ok(fresh) => {
                                token = Some(fresh);
                                Some(Duration::ZERO)
                            }
                            Err(e) => {
                                tracing::info!(integration = %it.row.id, error = %e, "access token refused and not refreshed");
                                None
                            }
                        }
                    } else if (rules::retryable(Some(status)) || throttled)
                        && may_repeat
                        && attempt.number < max_attempts
                    {
                        retry_wait(retry_after, &mut backoff)
                    } else {
                        None
                    };
                    match wait {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => {
                            return Ok(Answer {
                                status,
                                headers: passed_back(&head.headers),
                                body: rejoined(body, rest),
                                attempts: attempt.number,
                                remaining: permit.remaining,
                            });
                        }
                    }
                }
            }
            attempt = Attempt {
                id: Uuid::now_v7(),
                number: attempt.number + 1,
                retry_of: Some(attempt.id),
            };
        }
    }

    /// Runs the provider's connection test (the manifest's `test_call`) for
    /// the integration: high priority, no retries, logged like any call.
    pub async fn test(&self, it: &Loaded) -> TestOutcome {
        let started = Instant::now();
        let failed = |error: String, status: Option<u16>| TestOutcome {
            ok: false,
            status,
            latency_ms: started.elapsed().as_millis() as u64,
            error: Some(error),
        };
        let (method, path, body) =
            match client::test_request(it.manifest, &it.row.config, &it.creds) {
                Ok(parts) => parts,
                Err(e) => return failed(e.to_string(), None),
            };
        let out = Outgoing {
            method: Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET),
            path_and_query: path,
            headers: HeaderMap::new(),
            body: body.map(Bytes::from).unwrap_or_default(),
            high_priority: true,
            retries: false,
            request_id: Uuid::now_v7().to_string(),
            connection_test: true,
        };
        let answer = match self.send(it, out).await {
            Ok(a) => a,
            Err(e) => {
                self.recorder.flush().await;
                return failed(e.to_string(), None);
            }
        };
        let mut body = answer.body;
        let mut kept = BytesMut::new();
        while let Some(Ok(chunk)) = body.next().await {
            let room = LOG_BODY_CAP.saturating_sub(kept.len());
            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        drop(body);
        let latency_ms = started.elapsed().as_millis() as u64;
        // A test is looked at right away: its log rows are committed first.
        self.recorder.flush().await;
        match client::test_verdict(it.manifest, answer.status, &String::from_utf8_lossy(&kept)) {
            Ok(()) => TestOutcome {
                ok: true,
                status: Some(answer.status),
                latency_ms,
                error: None,
            },
            Err(error) => TestOutcome {
                latency_ms,
                ..failed(error, Some(answer.status))
            },
        }
    }

    async fn oauth_token(&self, it: &Loaded) -> Result<Option<String>, GatewayError> {
        if it.manifest.auth_type != AuthType::OAuth2 {
            return Ok(None);
        }
        Ok(Some(self.tokens.access(&it.row).await?))
    }

    /// The attempt's request, with the credentials in place; also the secret
    /// values it carries (for the log's redaction).
    fn request(
        &self,
        it: &Loaded,
        out: &Outgoing,
        url: &reqwest::Url,
        token: Option<&str>,
        timeout: Duration,
        deadline: Instant,
    ) -> Result<(reqwest::Request, Vec<String>), GatewayError> {
        let mut url = url.clone();
        let mut creds = it.creds.clone();
        if let Some(t) = token {
            creds.access_token = Some(t.to_owned());
        }
        let mut headers: Vec<(String, String)> = it
            .manifest
            .render_headers(&it.row.config)
            .map_err(|e| GatewayError::BadRequest(e.to_string()))?
            .into_iter()
            .filter(|(k, _)| !out.headers.contains_key(k.as_str()))
            .collect();
        client::inject_auth(it.manifest, &creds, &mut url, &mut headers)
            .map_err(|e| GatewayError::NotCallable(e.to_string()))?;
        let left = deadline.saturating_duration_since(Instant::now());
        let mut req = reqwest::Request::new(out.method.clone(), url);
        *req.timeout_mut() = Some(timeout.min(left.max(Duration::from_millis(1))));
        let listed = connection_listed(&out.headers);
        let h = req.headers_mut();
        for (name, value) in &out.headers {
            if rules::forward_request_header(name.as_str(), &listed) {
                h.append(name.clone(), value.clone());
            }
        }
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| GatewayError::BadRequest(format!("header {k}: {e}")))?;
            let value = HeaderValue::from_str(&v)
                .map_err(|e| GatewayError::BadRequest(format!("header {k}: {e}")))?;
            h.insert(name, value);
        }
        if !out.body.is_empty() {
            *req.body_mut() = Some(out.body.clone().into());
        }
        let mut secrets: Vec<String> = Vec::new();
        secrets.extend(creds.api_key.clone());
        secrets.extend(creds.access_token.clone());
        secrets.extend(creds.basic.as_ref().map(|(_, password)| password.clone()));
        Ok((req, secrets))
    }
}

/// Refuses calls an integration's state does not allow.
fn callable(row: &Integration) -> Result<(), GatewayError> {
    if !row.is_enabled || row.status == IntegrationStatus::Paused {
        return Err(GatewayError::NotCallable(
            "the integration is paused; enable it to call its provider".into(),
        ));
    }
    if row.status == IntegrationStatus::PendingAuth {
        return Err(GatewayError::NotCallable(
            "the integration is waiting for authorization; connect it (credentials or OAuth) first"
                .into(),
        ));
    }
    Ok(())
}

/// The provider URL of `path_and_query` below the integration's base URL:
/// it must stay on the base URL's host and pass the SSRF rules.
fn target(
    it: &Loaded,
    path_and_query: &str,
    policy: TargetPolicy,
) -> Result<reqwest::Url, GatewayError> {
    let base = it.manifest.base_url_for(&it.row.config);
    let base_url = reqwest::Url::parse(base).map_err(|e| {
        GatewayError::BadRequest(format!("the integration's base URL is invalid: {e}"))
    })?;
    let rest = path_and_query.trim_start_matches('/');
    let url = reqwest::Url::parse(&format!("{base}/{rest}"))
        .map_err(|e| GatewayError::BadRequest(format!("not a valid provider path: {e}")))?;
    if url.host_str() != base_url.host_str()
        || url.port_or_known_default() != base_url.port_or_known_default()
    {
        return Err(GatewayError::BadRequest(
            "the path must stay on the provider's host".into(),
        ));
    }
    client::check_target(&url, policy).map_err(|e| GatewayError::BadRequest(e.to_string()))?;
    Ok(url)
}

fn tenant_of(it: &Loaded) -> TenantId {
    TenantId(it.row.tenant_id)
}

fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    let values: Vec<&str> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    rules::connection_listed(&values)
}

/// The provider's headers that may go back to the client.
fn passed_back(headers: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(headers);
    headers
        .iter()
        .filter(|(k, _)| rules::forward_response_header(k.as_str(), &listed))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Exponential backoff with jitter between attempts: 200 ms doubling to at
/// most 10 s, ±50 %.
fn retry_backoff() -> backoff::ExponentialBackoff {
    backoff::ExponentialBackoff {
        initial_interval: Duration::from_millis(200),
        randomization_factor: 0.5,
        multiplier: 2.0,
        max_interval: Duration::from_secs(10),
        max_elapsed_time: None,
        ..backoff::ExponentialBackoff::default()
    }
}

fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("the provider did not answer within {} s", timeout.as_secs());
    }
    format!("could not reach the provider: {}", client::error_chain(e))
}

/// Status and headers of an answer.
struct Head {
    status: u16,
    headers: HeaderMap,
}

/// A body still being received.
type Rest = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Reads the start of an answer's body, up to [`LOG_BODY_CAP`] bytes (what
/// is looked at and logged); the rest, if any, is left to stream.
async fn read_head(resp: reqwest::Response) -> (Head, Bytes, Option<Rest>) {
    let head = Head {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
    };
    let mut buf = BytesMut::new();
    let mut stream: Rest = Box::pin(resp.bytes_stream());
    while buf.len() < LOG_BODY_CAP {
        match stream.next().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
            // A broken or finished answer: what arrived is the body.
            Some(Err(_)) | None => return (head, buf.freeze(), None),
        }
    }
    (head, buf.freeze(), Some(stream))
}

/// The body of an answer whose start was read: that start, then the rest.
fn rejoined(start: Bytes, rest: Option<Rest>) -> Body {
    let first = futures::stream::once(async move { Ok(start) });
    match rest {
        None => Box::pin(first),
        Some(rest) => Box::pin(first.chain(rest.map(|r| r.map_err(std::io::Error::other)))),
    }
}

/// What one attempt's log row is made of.
struct Record<'a> {
    gateway: &'a Gateway,
    it: &'a Loaded,
    out: &'a Outgoing,
    attempt: &'a Attempt,
    url: String,
    headers: HeaderMap,
    secrets: Vec<String>,
    latency: Duration,
}

impl Record<'_> {
    fn exchange(&self) -> Exchange {
        let mut secret_names = Vec::new();
        if let Some(p) = &self.it.manifest.api_key {
            secret_names.push(p.name.clone());
        }
        Exchange {
            id: self.attempt.id,
            tenant_id: self.it.row.tenant_id,
            integration_id: Some(self.it.row.id),
            direction: Direction::Outbound,
            method: self.out.method.to_string(),
            url: self.url.clone(),
            request_headers: self.headers.clone(),
            request_body: self.out.body.clone(),
            response_status: None,
            response_headers: None,
            response_body: Bytes::new(),
            response_size: None,
            latency: self.latency,
            correlation_id: Some(self.out.request_id.clone()),
            source_ip: None,
            error: None,
            timed_out: false,
            retry_of: self.attempt.retry_of,
            attempt: self.attempt.number,
            secrets: self.secrets.clone(),
            secret_names,
        }
    }

    async fn error(&self, message: &str, timed_out: bool) {
        let mut e = self.exchange();
        e.error = Some(message.to_owned());
        e.timed_out = timed_out;
        self.gateway.recorder.record(e).await;
    }

    /// Logs an answer whose start was read (`whole`: and nothing follows).
    async fn answered(&self, head: &Head, body: &Bytes, whole: bool) {
        let mut e = self.exchange();
        e.response_status = Some(head.status);
        e.response_headers = Some(head.headers.clone());
        e.response_body = body.clone();
        e.response_size = whole.then_some(body.len() as u64);
        if head.status >= 400 {
            e.error = Some(format!("provider answered {}", head.status));
        }
        self.gateway.recorder.record(e).await;
    }

    /// Streams the answer back; its log row is written when the stream ends
    /// (or is dropped by a client that went away).
    fn stream(self, resp: reqwest::Response, attempts: u32, remaining: u32) -> Answer {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut e = self.exchange();
        e.response_status = Some(status);
        e.response_headers = Some(headers.clone());
        if status >= 400 {
            e.error = Some(format!("provider answered {status}"));
        }
        let body = Teed {
            inner: Box::pin(resp.bytes_stream()),
            kept: BytesMut::new(),
            size: 0,
            pending: Some((e, self.gateway.recorder.clone())),
        };
        Answer {
            status,
            headers: passed_back(&headers),
            body: Box::pin(body),
            attempts,
            remaining,
        }
    }
}

/// A provider's body on its way to the client, keeping its start for the
/// log row, which it hands to the recorder when it ends or is dropped.
struct Teed {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    kept: BytesMut,
    size: u64,
    pending: Option<(Exchange, Recorder)>,
}

impl Teed {
    fn finish(&mut self, error: Option<String>) {
        if let Some((mut e, recorder)) = self.pending.take() {
            e.response_body = std::mem::take(&mut self.kept).freeze();
            e.response_size = Some(self.size);
            if error.is_some() {
                e.error = error;
            }
            recorder.record_now(e);
        }
    }
}

impl Stream for Teed {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.size += chunk.len() as u64;
                let room = LOG_BODY_CAP.saturating_sub(self.kept.len());
                if room > 0 {
                    let n = chunk.len().min(room);
                    self.kept.extend_from_slice(&chunk[..n]);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                let message = format!("the provider's answer broke off: {e}");
                self.finish(Some(message.clone()));
                Poll::Ready(Some(Err(std::io::Error::other(message))))
            }
            Poll::Ready(None) => {
                self.finish(None);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Teed {
    fn drop(&mut self) {
        if self.pending.is_some() {
            self.finish(Some("the client went away before the answer ended".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: Vec<u8>) -> reqwest::Response {
        reqwest::Response::from(
            http::Response::builder()
                .status(status)
                .body(body)
                .expect("a response"),
        )
    }

    async fn collect(mut body: Body) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(chunk) = body.next().await {
            all.extend_from_slice(&chunk.expect("a chunk"));
        }
        all
    }

    #[tokio::test]
    async fn an_inspected_answer_is_passed_on_whole() {
        let big: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
        let (head, start, rest) = read_head(answer(503, big.clone())).await;
        assert_eq!(head.status, 503);
        assert!(start.len() >= LOG_BODY_CAP);
        assert!(rest.is_some(), "more follows the start");
        assert_eq!(collect(rejoined(start, rest)).await, big);

        let small = b"{\"Note\":\"call frequency\"}".to_vec();
        let (_, start, rest) = read_head(answer(200, small.clone())).await;
        assert!(rest.is_none());
        assert_eq!(collect(rejoined(start, rest)).await, small);
    }
}
