//! Fake third-party providers: local HTTP servers that answer like HubSpot,
//! Salesforce, QuickBooks Online, Xero, Zoho CRM, Samsara, KeepTruckin
//! (Motive), NewsAPI and Alpha Vantage: their connection-test calls, their
//! list calls with the real paging and incremental filters, the writes a
//! sync pushes back, and (for the OAuth providers) the OAuth 2.0
//! authorization-code and refresh grants, so no test (and no offline demo)
//! reaches the internet.
//!
//! Each fake is faithful where naive clients break (see
//! `shared/providers.md`): the provider's own auth scheme and error bodies,
//! its pagination shape and caps, its date formats, its optimistic
//! concurrency (QuickBooks' `SyncToken`), its token endpoint (client
//! authentication, refresh-token rotation, error bodies) and its rate-limit
//! answer, which it can enforce itself ([`FakeProvider::set_rate_limit`]).
//! A test controls it through the handle:
//!
//! ```no_run
//! # async fn demo() {
//! use hub_testkit::fakes::{FakeProvider, Kind, Mode, Selection};
//! let fake = FakeProvider::start(Kind::HubSpot).await;
//! fake.set_valid_token("tok");
//! let config = fake.config(); // {"base_url": "http://127.0.0.1:<port>"}
//! fake.set_count("contacts", 200_000); // generated on demand, by id
//! let since = fake.now();
//! let touched = fake.touch("contacts", Selection::fraction(0.01)); // 2,000 changed now
//! fake.set_mode(Mode::RateLimited { retry_after_secs: 2 });
//! // … exercise the code under test …
//! let sent = fake.requests();
//! assert_eq!(sent[0].header("authorization"), Some("Bearer tok"));
//! # }
//! ```
//!
//! Every request is recorded before anything else happens, whatever the
//! mode (unless [`FakeProvider::set_recording`] turned that off). The mode is
//! applied before authentication, as a provider's edge throttles and fails
//! before it looks at credentials; then the enforced rate limit, if any.
//! The OAuth endpoints live on the same server, at the real paths
//! ([`FakeProvider::authorize_url`], [`FakeProvider::token_url`]); the token
//! endpoint has a mode of its own ([`FakeProvider::set_token_mode`]).
//!
//! # Records
//!
//! Each object type (HubSpot `contacts`, Salesforce `Opportunity`, …; see
//! [`FakeProvider::objects`]) holds `count` generated records, numbered from
//! 1 and built from their number when served, so a count of 200,000 costs
//! nothing until read. Generated record `n` was last modified at
//! 2024-01-01T08:00:00Z plus `n` minutes. Only what changed since is stored:
//! [`FakeProvider::touch`] (a change at the provider, as a user would make
//! it), [`FakeProvider::delete`], [`FakeProvider::create`], and the writes
//! the API received ([`FakeProvider::writes`]). Changes are stamped by the
//! fake's clock ([`FakeProvider::now`]): the wall clock, but never before the
//! newest record, so an incremental read after a change always sees it.
//! [`FakeProvider::record`] shows a record as the provider's single-record
//! read would return it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use serde_json::{Value, json};

mod alphavantage;
mod hubspot;
mod keeptruckin;
mod limit;
mod newsapi;
mod oauth;
mod quickbooks;
mod records;
mod salesforce;
mod samsara;
mod store;
mod xero;
mod zoho;

pub use records::{RecordRef, Selection, Write, WriteOp};
use store::{Bound, Fields, ObjectSpec, Order, Query, Record, Schema};

/// The token (or API key) every fake accepts until told otherwise.
pub const DEFAULT_TOKEN: &str = "fake-valid-token";

/// The QuickBooks company the fake serves (`realmId`).
pub const QUICKBOOKS_REALM_ID: &str = "9130357766900456";

/// The Xero organisation the fake serves (`xero-tenant-id`).
pub const XERO_TENANT_ID: &str = "3d9a2b3c-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// Which provider a fake imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// HubSpot CRM v3 (`Authorization: Bearer`).
    HubSpot,
    /// QuickBooks Online accounting v3 (`Authorization: Bearer`, realm in the path).
    QuickBooks,
    /// Xero accounting 2.0 (`Authorization: Bearer` + `xero-tenant-id`).
    Xero,
    /// Samsara fleet API (`Authorization: Bearer <API token>`).
    Samsara,
    /// NewsAPI v2 (`X-Api-Key` header or `apiKey` query parameter).
    NewsApi,
    /// Salesforce REST API v60.0 (`Authorization: Bearer`, API host = `instance_url`).
    Salesforce,
    /// Zoho CRM v2 (`Authorization: Zoho-oauthtoken <token>`, API under `/crm/v2`).
    Zoho,
    /// KeepTruckin (Motive) v1 (`X-Api-Key` or `Authorization: Bearer`).
    KeepTruckin,
    /// Alpha Vantage (`apikey` query parameter; throttling is a 200).
    AlphaVantage,
}

impl Kind {
    /// Every kind, in the order of the `fake-providers` port layout.
    pub const ALL: [Kind; 9] = [
        Kind::HubSpot,
        Kind::QuickBooks,
        Kind::Xero,
        Kind::Samsara,
        Kind::NewsApi,
        Kind::Salesforce,
        Kind::Zoho,
        Kind::KeepTruckin,
        Kind::AlphaVantage,
    ];

    /// The kinds whose fake speaks standard OAuth 2.0 (bearer tokens,
    /// RFC 6749 error answers), the ones the hub's OAuth tests walk. The Zoho
    /// fake has OAuth endpoints too, with Zoho's quirks
    /// ([`FakeProvider::token_url`]); the others take a static key.
    pub const OAUTH: [Kind; 4] = [
        Kind::HubSpot,
        Kind::Salesforce,
        Kind::QuickBooks,
        Kind::Xero,
    ];

    /// The provider's code in the connector catalog (`HUBSPOT`).
    pub fn code(self) -> &'static str {
        match self {
            Kind::HubSpot => "HUBSPOT",
            Kind::QuickBooks => "QUICKBOOKS",
            Kind::Xero => "XERO",
            Kind::Samsara => "SAMSARA",
            Kind::NewsApi => "NEWSAPI",
            Kind::Salesforce => "SALESFORCE",
            Kind::Zoho => "ZOHO",
            Kind::KeepTruckin => "KEEPTRUCKIN",
            Kind::AlphaVantage => "ALPHA_VANTAGE",
        }
    }

    /// The path prefix the real base URL has (`/api.xro/2.0`, `/v2`).
    fn base_path(self) -> &'static str {
        match self {
            Kind::Xero => "/api.xro/2.0",
            Kind::NewsApi => "/v2",
            Kind::KeepTruckin => "/v1",
            Kind::HubSpot
            | Kind::QuickBooks
            | Kind::Samsara
            | Kind::Salesforce
            | Kind::Zoho
            | Kind::AlphaVantage => "",
        }
    }

    /// How the provider names, builds and changes its records.
    fn schema(self) -> &'static dyn Schema {
        match self {
            Kind::HubSpot => &hubspot::SCHEMA,
            Kind::QuickBooks => &quickbooks::SCHEMA,
            Kind::Xero => &xero::SCHEMA,
            Kind::Samsara => &samsara::SCHEMA,
            Kind::NewsApi => &newsapi::SCHEMA,
            Kind::Salesforce => &salesforce::SCHEMA,
            Kind::Zoho => &zoho::SCHEMA,
            Kind::KeepTruckin => &keeptruckin::SCHEMA,
            Kind::AlphaVantage => &alphavantage::SCHEMA,
        }
    }

    /// The object type called `name` (any case), if the provider has it.
    fn object(self, name: &str) -> Option<&'static ObjectSpec> {
        self.schema()
            .objects()
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
    }
}

/// How a fake answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Like the real provider.
    #[default]
    Normal,
    /// The provider's throttling answer: 429 with `Retry-After:
    /// <retry_after_secs>` and the provider's body and headers (Salesforce:
    /// 403 `REQUEST_LIMIT_EXCEEDED`, which has no `Retry-After`; Alpha
    /// Vantage: a 200 whose body is only a `Note`, its per-minute answer,
    /// when `retry_after_secs` is under an hour, else an `Information`, its
    /// daily one).
    RateLimited {
        /// Seconds in `Retry-After`.
        retry_after_secs: u64,
    },
    /// Waits this long, then answers normally (for client timeouts).
    Slow(Duration),
    /// 500 with the provider's error body.
    ServerError,
}

/// One request a fake received, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method (`GET`).
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// Raw query string, without `?` (empty when none).
    pub query: String,
    /// Headers in arrival order, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    fn of(req: &HttpRequest, body: &[u8]) -> Self {
        Self {
            method: req.method().to_string(),
            path: req.path().to_owned(),
            query: req.query_string().to_owned(),
            headers: crate::headers_of(req),
            body: body.to_vec(),
        }
    }

    /// First value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// First value of field `name` of a form-encoded body (a token
    /// request's `grant_type`), percent-decoded.
    pub fn form_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(&self.body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A running fake provider. Stops when dropped.
pub struct FakeProvider {
    kind: Kind,
    addr: SocketAddr,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

struct Shared {
    kind: Kind,
    /// `http://127.0.0.1:<port>`.
    origin: String,
    state: Mutex<State>,
}

struct State {
    valid_token: String,
    mode: Mode,
    scripted: VecDeque<Mode>,
    recording: bool,
    requests: Vec<RecordedRequest>,
    xero_minute_started: Instant,
    xero_minute_used: u32,
    xero_day_used: u32,
    /// API calls answered (not OAuth ones), for Salesforce's usage header.
    api_calls: u64,
    limit: limit::Limiter,
    oauth: oauth::OAuthState,
    salesforce: salesforce::SfState,
    /// NewsAPI: the developer plan's cap on the results a search pages
    /// through (`None`: a paid plan).
    newsapi_result_cap: Option<u64>,
    store: store::Store,
    writes: Vec<Write>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl FakeProvider {
    /// Starts a fake of `kind` on `127.0.0.1:<free port>`. Must be called
    /// inside a Tokio runtime. Panics if no port can be bound.
    pub async fn start(kind: Kind) -> Self {
        Self::start_on(kind, "127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("start fake {kind:?}: {e}"))
    }

    /// Starts a fake of `kind` on `addr` (`127.0.0.1:0` for any free port;
    /// a fixed port for a demo).
    pub async fn start_on(kind: Kind, addr: &str) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            kind,
            origin: format!("http://{addr}"),
            state: Mutex::new(State {
                valid_token: DEFAULT_TOKEN.to_owned(),
                mode: Mode::Normal,
                scripted: VecDeque::new(),
                recording: true,
                requests: Vec::new(),
                xero_minute_started: Instant::now(),
                xero_minute_used: 0,
                xero_day_used: 0,
                api_calls: 0,
                limit: limit::Limiter::default(),
                oauth: oauth::OAuthState::default(),
                salesforce: salesforce::SfState::default(),
                newsapi_result_cap: Some(newsapi::DEVELOPER_RESULT_CAP),
                store: store::Store::default(),
                writes: Vec::new(),
            }),
        });
        let handle = serve(listener, shared.clone())?;
        Ok(Self {
            kind,
            addr,
            shared,
            handle,
        })
    }

    /// The provider this fake imitates.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// `http://127.0.0.1:<port>`, the server's root.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL that stands in for the provider's real one, including its
    /// path prefix (Xero `…/api.xro/2.0`, NewsAPI `…/v2`): put it in the
    /// integration's `config.base_url`. Xero's `GET /connections` is at
    /// [`Self::origin`], as on the real API host.
    pub fn base_url(&self) -> String {
        format!("{}{}", self.origin(), self.kind.base_path())
    }

    /// An integration `config` that passes the provider manifest's schema and
    /// points at this fake (with the realm or tenant id the fake serves;
    /// Salesforce's `instance_url` is the fake too).
    pub fn config(&self) -> Value {
        let base_url = self.base_url();
        match self.kind {
            Kind::QuickBooks => json!({"base_url": base_url, "realm_id": QUICKBOOKS_REALM_ID}),
            Kind::Xero => json!({"base_url": base_url, "xero_tenant_id": XERO_TENANT_ID}),
            Kind::Salesforce => json!({"base_url": base_url, "instance_url": self.origin()}),
            Kind::HubSpot
            | Kind::Samsara
            | Kind::NewsApi
            | Kind::Zoho
            | Kind::KeepTruckin
            | Kind::AlphaVantage => json!({"base_url": base_url}),
        }
    }

    /// The token (API key for NewsAPI) the fake accepts now.
    pub fn valid_token(&self) -> String {
        self.shared.lock().valid_token.clone()
    }

    /// Accept only `token` from now on (default [`DEFAULT_TOKEN`]), besides
    /// the access tokens the fake's token endpoint issued and that have not
    /// expired.
    pub fn set_valid_token(&self, token: impl Into<String>) {
        self.shared.lock().valid_token = token.into();
    }

    /// Answer every following API request in `mode` (after any scripted
    /// ones). The token endpoint has its own: [`Self::set_token_mode`].
    pub fn set_mode(&self, mode: Mode) {
        let mut state = self.shared.lock();
        state.mode = mode;
        state.scripted.clear();
    }

    /// Answer the next `count` API requests in `mode`, then go back to the
    /// mode set by [`Self::set_mode`] (e.g. two 429s, then success).
    pub fn set_mode_for(&self, count: usize, mode: Mode) {
        let mut state = self.shared.lock();
        state.scripted.extend(std::iter::repeat_n(mode, count));
    }

    /// Every request received so far (API, authorize and token calls),
    /// oldest first; none while recording is off.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Keep every request in memory for [`Self::requests`] (the default), or
    /// not (`false`: for benchmarks, which send thousands). Token-endpoint
    /// calls are kept for [`Self::token_requests`] either way.
    pub fn set_recording(&self, on: bool) {
        self.shared.lock().recording = on;
    }

    /// Enforce the provider's rate limit: at most `requests` API calls per
    /// fixed `window` (a window starts at the first request after the last
    /// one ended); the calls over it get the provider's throttling answer
    /// (HubSpot 429 + `X-HubSpot-RateLimit-*`, QuickBooks 429 `Fault`, Xero
    /// 429 + `Retry-After` + `X-Rate-Limit-Problem: minute`, Salesforce 403
    /// `REQUEST_LIMIT_EXCEEDED`). Resets the accounting. OAuth endpoints are
    /// not limited.
    pub fn set_rate_limit(&self, requests: u32, window: Duration) {
        self.shared.lock().limit = limit::Limiter::new(requests, window);
    }

    /// The most API calls received (throttled ones included) in any one
    /// window of [`Self::set_rate_limit`]: a client that respects the limit
    /// keeps this at or under it. 0 when no limit is set.
    pub fn max_in_any_window(&self) -> u32 {
        self.shared.lock().limit.max_in_window()
    }

    /// How many API calls the enforced rate limit refused.
    pub fn throttled_count(&self) -> u64 {
        self.shared.lock().limit.throttled()
    }

    /// Stops the server and waits for it (dropping the handle also stops it,
    /// without waiting).
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        // The stop command is sent at once; the future only waits for it.
        drop(self.handle.stop(false));
    }
}

impl std::fmt::Debug for FakeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeProvider")
            .field("kind", &self.kind)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Serves every request on `listener` with [`handle`] on two workers (the
/// gateway benchmark sends thousands a second to one fake), with
/// `TCP_NODELAY` as real providers' servers do.
fn serve(listener: std::net::TcpListener, shared: Arc<Shared>) -> std::io::Result<ServerHandle> {
    use actix_web::{App, HttpServer};
    let data = web::Data::from(shared);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
            .default_service(web::to(handle))
    })
    .workers(2)
    .tcp_nodelay(true)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(handle)
}

/// Whether a bearer token opens the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenCheck {
    /// The fixed valid token, or an issued access token still alive.
    Valid,
    /// An access token the fake issued, past its expiry.
    Expired,
    /// Missing, or never issued.
    Invalid,
}

/// What a provider module sees of a request.
struct Call<'a> {
    method: &'a Method,
    /// Path below the kind's base path.
    path: &'a str,
    query: Vec<(String, String)>,
    req: &'a HttpRequest,
    body: &'a [u8],
    valid_token: String,
    shared: &'a Shared,
}

impl Call<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.req.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of `Authorization: Bearer <token>` (scheme in any case).
    fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// Checks the bearer token against the fixed one and the issued ones.
    fn token(&self) -> TokenCheck {
        match self.bearer() {
            None => TokenCheck::Invalid,
            Some(t) if t == self.valid_token => TokenCheck::Valid,
            Some(t) => self.shared.lock().oauth.check_access(t),
        }
    }

    /// Whether the bearer token opens the API now.
    fn authorized(&self) -> bool {
        self.token() == TokenCheck::Valid
    }

    fn u64_param(&self, name: &str) -> Option<u64> {
        self.param(name).and_then(|v| v.parse().ok())
    }
}

async fn handle(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let kind = shared.kind;
    let full_path = req.path();
    if let Some(endpoint) = oauth::endpoint(kind, full_path) {
        return oauth::handle(endpoint, &shared, &req, &body).await;
    }
    let (mode, valid_token) = {
        let mut state = shared.lock();
        if state.recording {
            state.requests.push(RecordedRequest::of(&req, &body));
        }
        let mode = state.scripted.pop_front().unwrap_or(state.mode);
        (mode, state.valid_token.clone())
    };
    match mode {
        Mode::Normal => {}
        Mode::Slow(delay) => tokio::time::sleep(delay).await,
        Mode::RateLimited { retry_after_secs } => {
            return with_usage(&shared, rate_limited(&shared, retry_after_secs, None));
        }
        Mode::ServerError => return with_usage(&shared, server_error(kind)),
    }
    let admitted = {
        let mut state = shared.lock();
        let limit = state.limit.limit();
        state
            .limit
            .admit(Instant::now())
            .map_err(|retry| (retry, limit))
    };
    if let Err((retry_after, limit)) = admitted {
        return with_usage(&shared, rate_limited(&shared, retry_after, limit));
    }
    let call = Call {
        method: req.method(),
        path: full_path,
        query: url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect(),
        req: &req,
        body: &body,
        valid_token,
        shared: &shared,
    };
    if kind == Kind::Xero && full_path == "/connections" {
        return xero::connections(&call);
    }
    let Some(path) = full_path.strip_prefix(kind.base_path()) else {
        return not_found(kind, full_path);
    };
    let call = Call { path, ..call };
    let response = match kind {
        Kind::HubSpot => hubspot::handle(&call),
        Kind::QuickBooks => quickbooks::handle(&call),
        Kind::Xero => xero::handle(&call),
        Kind::Samsara => samsara::handle(&call),
        Kind::NewsApi => newsapi::handle(&call),
        Kind::Salesforce => salesforce::handle(&call),
        Kind::Zoho => zoho::handle(&call),
        Kind::KeepTruckin => keeptruckin::handle(&call),
        Kind::AlphaVantage => alphavantage::handle(&call),
    };
    with_usage(&shared, response)
}

/// Counts an answered API call and adds the usage headers the provider
/// puts on every answer (Salesforce `Sforce-Limit-Info`; HubSpot's
/// `X-HubSpot-RateLimit-*` when a limit is enforced).
fn with_usage(shared: &Shared, mut response: HttpResponse) -> HttpResponse {
    use actix_web::http::header::{HeaderName, HeaderValue};
    let (calls, in_window, limit) = {
        let mut state = shared.lock();
        state.api_calls += 1;
        (
            state.api_calls,
            state.limit.in_window(),
            state.limit.limit(),
        )
    };
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(name), v);
        }
    };
    match (shared.kind, limit) {
        (Kind::Salesforce, None) => {
            set(
                "sforce-limit-info",
                format!("api-usage={calls}/{}", salesforce::DAILY_LIMIT),
            );
        }
        (Kind::Salesforce, Some((max, _))) => {
            set("sforce-limit-info", format!("api-usage={in_window}/{max}"));
        }
        (Kind::HubSpot, Some((max, window))) => {
            set("x-hubspot-ratelimit-max", max.to_string());
            set(
                "x-hubspot-ratelimit-remaining",
                max.saturating_sub(in_window).to_string(),
            );
            set(
                "x-hubspot-ratelimit-interval-milliseconds",
                window.as_millis().to_string(),
            );
        }
        _ => {}
    }
    response
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The provider's throttling answer; `limit` is the enforced one, if that is
/// why (its numbers go in the headers that carry them).
fn rate_limited(
    shared: &Shared,
    retry_after_secs: u64,
    limit: Option<(u32, Duration)>,
) -> HttpResponse {
    let retry = retry_after_secs.to_string();
    let mut response = HttpResponse::build(StatusCode::TOO_MANY_REQUESTS);
    response.insert_header(("Retry-After", retry.clone()));
    let body = match shared.kind {
        Kind::HubSpot => {
            let (max, window) = limit.unwrap_or((100, Duration::from_secs(10)));
            response.insert_header(("X-HubSpot-RateLimit-Max", max.to_string()));
            response.insert_header(("X-HubSpot-RateLimit-Remaining", "0"));
            response.insert_header((
                "X-HubSpot-RateLimit-Interval-Milliseconds",
                window.as_millis().to_string(),
            ));
            json!({
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": request_id(),
                "policyName": "TEN_SECONDLY_ROLLING",
                "groupName": "publicapi:oauth:fake-app:fake-portal",
            })
        }
        Kind::QuickBooks => quickbooks::fault_json(
            "ThrottleExceeded",
            "003001",
            429,
            "The request limit was reached: 500 requests per minute per company.",
            "SERVICE",
        ),
        Kind::Xero => {
            let day_remaining = xero::day_remaining(&shared.lock());
            response.insert_header(("X-Rate-Limit-Problem", "minute"));
            response.insert_header(("X-MinLimit-Remaining", "0"));
            response.insert_header(("X-DayLimit-Remaining", day_remaining.to_string()));
            response.insert_header(("X-AppMinLimit-Remaining", "9999"));
            json!({
                "Type": null,
                "Title": "Too Many Requests",
                "Status": 429,
                "Detail": format!("Minute rate limit exceeded for this tenant. Retry after {retry} seconds."),
                "Instance": request_id(),
                "Extensions": {},
            })
        }
        Kind::Samsara => json!({
            "message": "Rate limit exceeded. Please retry after the duration in the Retry-After header.",
            "requestId": request_id(),
        }),
        Kind::NewsApi => json!({
            "status": "error",
            "code": "rateLimited",
            "message": "You have been rate limited. Back off for a while before trying a request again. You're limited to 100 requests over a 24 hour period (50 requests available every 12 hours).",
        }),
        Kind::Salesforce => {
            // Salesforce refuses over-limit calls with a 403 and no Retry-After.
            return HttpResponse::Forbidden().json(json!([{
                "message": "TotalRequests Limit exceeded.",
                "errorCode": "REQUEST_LIMIT_EXCEEDED",
            }]));
        }
        Kind::Zoho => json!({
            "code": "TOO_MANY_REQUESTS",
            "details": {},
            "message": "You have exceeded the allowed number of API calls. Try again later.",
            "status": "error",
        }),
        Kind::KeepTruckin => json!({
            "error_message": format!("Too many requests. Retry after {retry} seconds."),
        }),
        Kind::AlphaVantage => {
            // Alpha Vantage throttles with a 200 and a note in the body.
            return alphavantage::throttled(retry_after_secs < 3600);
        }
    };
    response.json(body)
}

fn server_error(kind: Kind) -> HttpResponse {
    let body = match kind {
        Kind::HubSpot => json!({
            "status": "error",
            "message": "internal error",
            "correlationId": request_id(),
            "category": "INTERNAL_ERROR",
        }),
        Kind::QuickBooks => quickbooks::fault_json(
            "InternalServerError",
            "003100",
            500,
            "An internal error occurred. Please try again.",
            "SystemFault",
        ),
        Kind::Xero => json!({
            "Type": null,
            "Title": "An error occurred",
            "Status": 500,
            "Detail": "An error occurred in Xero. Check the API Status page http://status.developer.xero.com for current service status.",
            "Instance": request_id(),
            "Extensions": {},
        }),
        Kind::Samsara => json!({"message": "Internal server error", "requestId": request_id()}),
        Kind::Salesforce => json!([{
            "message": format!("An unexpected error occurred. Please include this ErrorId if you contact support: {}", request_id()),
            "errorCode": "UNKNOWN_EXCEPTION",
        }]),
        Kind::NewsApi => json!({
            "status": "error",
            "code": "unexpectedError",
            "message": "This shouldn't happen, and if it does then it's our fault, not yours. Try the request again shortly.",
        }),
        Kind::Zoho => json!({
            "code": "INTERNAL_ERROR",
            "details": {},
            "message": "Internal Server Error",
            "status": "error",
        }),
        Kind::KeepTruckin => json!({"error_message": "Internal Server Error"}),
        Kind::AlphaVantage => json!({
            "Error Message": "An internal error occurred. Please retry in a moment.",
        }),
    };
    HttpResponse::InternalServerError().json(body)
}

fn not_found(kind: Kind, path: &str) -> HttpResponse {
    let body = match kind {
        Kind::HubSpot => json!({
            "status": "error",
            "message": format!("resource not found: {path}"),
            "correlationId": request_id(),
            "category": "OBJECT_NOT_FOUND",
        }),
        Kind::QuickBooks => quickbooks::fault_json(
            "ResourceNotFound",
            "610",
            404,
            &format!("Unsupported path: {path}"),
            "ValidationFault",
        ),
        Kind::Xero => json!({
            "Type": null,
            "Title": "NotFound",
            "Status": 404,
            "Detail": format!("The resource you're looking for cannot be found: {path}"),
            "Instance": request_id(),
            "Extensions": {},
        }),
        Kind::Samsara => {
            json!({"message": format!("Not Found: {path}"), "requestId": request_id()})
        }
        Kind::Salesforce => json!([{
            "errorCode": "NOT_FOUND",
            "message": "The requested resource does not exist",
        }]),
        Kind::NewsApi => json!({
            "status": "error",
            "code": "routeNotFound",
            "message": format!("The route {path} does not exist."),
        }),
        Kind::Zoho => json!({
            "code": "INVALID_URL_PATTERN",
            "details": {},
            "message": "Please check if the URL trying to access is a correct one",
            "status": "error",
        }),
        Kind::KeepTruckin => json!({"error_message": format!("Not Found: {path}")}),
        Kind::AlphaVantage => json!({
            "Error Message": format!("Invalid API call: {path} does not exist; the API is at /query."),
        }),
    };
    HttpResponse::NotFound().json(body)
}

/// An RFC 3339 UTC time to the second (`2024-01-01T08:01:00Z`).
fn utc_seconds(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A stable UUID for record `i` of data set `set`.
fn stable_uuid(set: u32, i: usize) -> String {
    format!("{set:08x}-0000-4000-8000-{i:012x}")
}
