//! Fake third-party providers: local HTTP servers that answer like HubSpot,
//! QuickBooks Online, Xero, Samsara and NewsAPI for their connection-test
//! calls and the first pages of their list calls, so no test (and no offline
//! demo) reaches the internet.
//!
//! Each fake is faithful where naive clients break (see
//! `shared/providers.md`): the provider's own auth scheme and error bodies,
//! its pagination shape, its date formats and its rate-limit answer. A test
//! controls it through the handle:
//!
//! ```no_run
//! # async fn demo() {
//! use hub_testkit::fakes::{FakeProvider, Kind, Mode};
//! let fake = FakeProvider::start(Kind::HubSpot).await;
//! fake.set_valid_token("tok");
//! let config = fake.config(); // {"base_url": "http://127.0.0.1:<port>"}
//! fake.set_mode(Mode::RateLimited { retry_after_secs: 2 });
//! // … exercise the code under test …
//! let sent = fake.requests();
//! assert_eq!(sent[0].header("authorization"), Some("Bearer tok"));
//! # }
//! ```
//!
//! Every request is recorded before anything else happens, whatever the
//! mode. The mode is applied before authentication, as a provider's edge
//! throttles and fails before it looks at credentials.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde_json::{Value, json};

/// The token (or API key) every fake accepts until told otherwise.
pub const DEFAULT_TOKEN: &str = "fake-valid-token";

/// The QuickBooks company the fake serves (`realmId`).
pub const QUICKBOOKS_REALM_ID: &str = "9130357766900456";

/// The Xero organisation the fake serves (`xero-tenant-id`).
pub const XERO_TENANT_ID: &str = "3d9a2b3c-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// Which provider a fake imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [
        Kind::HubSpot,
        Kind::QuickBooks,
        Kind::Xero,
        Kind::Samsara,
        Kind::NewsApi,
    ];

    /// The provider's code in the connector catalog (`HUBSPOT`).
    pub fn code(self) -> &'static str {
        match self {
            Kind::HubSpot => "HUBSPOT",
            Kind::QuickBooks => "QUICKBOOKS",
            Kind::Xero => "XERO",
            Kind::Samsara => "SAMSARA",
            Kind::NewsApi => "NEWSAPI",
        }
    }

    /// The path prefix the real base URL has (`/api.xro/2.0`, `/v2`).
    fn base_path(self) -> &'static str {
        match self {
            Kind::Xero => "/api.xro/2.0",
            Kind::NewsApi => "/v2",
            Kind::HubSpot | Kind::QuickBooks | Kind::Samsara => "",
        }
    }
}

/// How a fake answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Like the real provider.
    #[default]
    Normal,
    /// 429 with `Retry-After: <retry_after_secs>` and the provider's
    /// throttling body and headers.
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
    state: Mutex<State>,
}

struct State {
    valid_token: String,
    mode: Mode,
    scripted: VecDeque<Mode>,
    requests: Vec<RecordedRequest>,
    xero_minute_started: Instant,
    xero_minute_used: u32,
    xero_day_used: u32,
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
            state: Mutex::new(State {
                valid_token: DEFAULT_TOKEN.to_owned(),
                mode: Mode::Normal,
                scripted: VecDeque::new(),
                requests: Vec::new(),
                xero_minute_started: Instant::now(),
                xero_minute_used: 0,
                xero_day_used: 0,
            }),
        });
        let handle = crate::serve(listener, shared.clone(), 4 * 1024 * 1024, handle)?;
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
    /// points at this fake (with the realm or tenant id the fake serves).
    pub fn config(&self) -> Value {
        let base_url = self.base_url();
        match self.kind {
            Kind::QuickBooks => json!({"base_url": base_url, "realm_id": QUICKBOOKS_REALM_ID}),
            Kind::Xero => json!({"base_url": base_url, "xero_tenant_id": XERO_TENANT_ID}),
            Kind::HubSpot | Kind::Samsara | Kind::NewsApi => json!({"base_url": base_url}),
        }
    }

    /// The token (API key for NewsAPI) the fake accepts now.
    pub fn valid_token(&self) -> String {
        self.shared.lock().valid_token.clone()
    }

    /// Accept only `token` from now on (default [`DEFAULT_TOKEN`]).
    pub fn set_valid_token(&self, token: impl Into<String>) {
        self.shared.lock().valid_token = token.into();
    }

    /// Answer every following request in `mode` (after any scripted ones).
    pub fn set_mode(&self, mode: Mode) {
        let mut state = self.shared.lock();
        state.mode = mode;
        state.scripted.clear();
    }

    /// Answer the next `count` requests in `mode`, then go back to the mode
    /// set by [`Self::set_mode`] (e.g. two 429s, then success).
    pub fn set_mode_for(&self, count: usize, mode: Mode) {
        let mut state = self.shared.lock();
        state.scripted.extend(std::iter::repeat_n(mode, count));
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
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

/// What a provider module sees of a request.
struct Call<'a> {
    method: &'a Method,
    /// Path below the kind's base path.
    path: &'a str,
    query: Vec<(String, String)>,
    req: &'a HttpRequest,
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

    fn usize_param(&self, name: &str) -> Option<usize> {
        self.param(name).and_then(|v| v.parse().ok())
    }
}

async fn handle(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let (mode, valid_token) = {
        let mut state = shared.lock();
        state.requests.push(RecordedRequest {
            method: req.method().to_string(),
            path: req.path().to_owned(),
            query: req.query_string().to_owned(),
            headers: crate::headers_of(&req),
            body: body.to_vec(),
        });
        let mode = state.scripted.pop_front().unwrap_or(state.mode);
        (mode, state.valid_token.clone())
    };
    let kind = shared.kind;
    match mode {
        Mode::Normal => {}
        Mode::Slow(delay) => tokio::time::sleep(delay).await,
        Mode::RateLimited { retry_after_secs } => return rate_limited(&shared, retry_after_secs),
        Mode::ServerError => return server_error(kind),
    }

    let full_path = req.path();
    if kind == Kind::Xero && full_path == "/connections" {
        return xero::connections(&req, &valid_token);
    }
    let Some(path) = full_path.strip_prefix(kind.base_path()) else {
        return not_found(kind, full_path);
    };
    let call = Call {
        method: req.method(),
        path,
        query: url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect(),
        req: &req,
        valid_token,
        shared: &shared,
    };
    match kind {
        Kind::HubSpot => hubspot::handle(&call),
        Kind::QuickBooks => quickbooks::handle(&call),
        Kind::Xero => xero::handle(&call),
        Kind::Samsara => samsara::handle(&call),
        Kind::NewsApi => newsapi::handle(&call),
    }
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn rate_limited(shared: &Shared, retry_after_secs: u64) -> HttpResponse {
    let retry = retry_after_secs.to_string();
    let mut response = HttpResponse::build(StatusCode::TOO_MANY_REQUESTS);
    response.insert_header(("Retry-After", retry.clone()));
    let body = match shared.kind {
        Kind::HubSpot => {
            response.insert_header(("X-HubSpot-RateLimit-Max", "100"));
            response.insert_header(("X-HubSpot-RateLimit-Remaining", "0"));
            response.insert_header(("X-HubSpot-RateLimit-Interval-Milliseconds", "10000"));
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
        Kind::NewsApi => json!({
            "status": "error",
            "code": "unexpectedError",
            "message": "This shouldn't happen, and if it does then it's our fault, not yours. Try the request again shortly.",
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
        Kind::NewsApi => json!({
            "status": "error",
            "code": "routeNotFound",
            "message": format!("The route {path} does not exist."),
        }),
    };
    HttpResponse::NotFound().json(body)
}

/// The instant record `i` of a data set was last modified: one hour apart
/// from 2024-01-01T08:00:00Z, so incremental filters have something to cut.
fn record_time(i: usize) -> DateTime<Utc> {
    let base = Utc
        .with_ymd_and_hms(2024, 1, 1, 8, 0, 0)
        .single()
        .unwrap_or_default();
    base + chrono::Duration::hours(i64::try_from(i).unwrap_or(0))
}

/// A stable UUID for record `i` of data set `set`.
fn stable_uuid(set: u32, i: usize) -> String {
    format!("{set:08x}-0000-4000-8000-{i:012x}")
}

mod hubspot {
    //! HubSpot CRM v3: `GET /crm/v3/objects/{type}` and `…/{type}/{id}`.

    use super::*;

    const COMPANIES: [&str; 6] = [
        "Acme Freight",
        "Blue Ridge Logistics",
        "Cascade Carriers",
        "Delta Hauling",
        "Evergreen Transport",
        "Frontier Brokerage",
    ];
    const FIRST: [&str; 5] = ["Ana", "Ben", "Chloe", "Dev", "Eli"];
    const LAST: [&str; 5] = ["Ng", "Okafor", "Park", "Quinn", "Rossi"];
    const STAGES: [&str; 4] = [
        "appointmentscheduled",
        "qualifiedtobuy",
        "contractsent",
        "closedwon",
    ];

    fn size(object: &str) -> Option<usize> {
        match object {
            "contacts" => Some(25),
            "companies" => Some(12),
            "deals" => Some(18),
            _ => None,
        }
    }

    fn iso(t: DateTime<Utc>) -> String {
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }

    /// Every property of record `id` (1-based) of `object`.
    fn properties(object: &str, id: usize) -> serde_json::Map<String, Value> {
        let created = iso(record_time(id) - chrono::Duration::days(30));
        let modified = iso(record_time(id));
        let mut p = serde_json::Map::new();
        match object {
            "contacts" => {
                let first = FIRST[id % FIRST.len()];
                let last = LAST[(id / FIRST.len()) % LAST.len()];
                p.insert("firstname".into(), json!(first));
                p.insert("lastname".into(), json!(last));
                p.insert(
                    "email".into(),
                    json!(format!(
                        "{}.{}{id}@example.com",
                        first.to_lowercase(),
                        last.to_lowercase()
                    )),
                );
                p.insert("lastmodifieddate".into(), json!(modified));
            }
            "companies" => {
                let name = COMPANIES[id % COMPANIES.len()];
                p.insert("name".into(), json!(format!("{name} {id}")));
                p.insert(
                    "domain".into(),
                    json!(format!(
                        "{}{id}.example.com",
                        name.to_lowercase().replace(' ', "")
                    )),
                );
                p.insert("industry".into(), json!("TRANSPORTATION_TRUCKING_RAILROAD"));
                p.insert("numberofemployees".into(), json!((id * 37).to_string()));
            }
            _ => {
                p.insert("dealname".into(), json!(format!("Lane contract {id}")));
                p.insert("amount".into(), json!(format!("{}.00", 1500 * id)));
                p.insert("dealstage".into(), json!(STAGES[id % STAGES.len()]));
                p.insert("pipeline".into(), json!("default"));
                p.insert(
                    "closedate".into(),
                    json!(iso(record_time(id) + chrono::Duration::days(60))),
                );
            }
        }
        p.insert("createdate".into(), json!(created));
        p.insert("hs_lastmodifieddate".into(), json!(modified));
        p.insert("hs_object_id".into(), json!(id.to_string()));
        p
    }

    fn record(call: &Call<'_>, object: &str, id: usize) -> Value {
        let all = properties(object, id);
        // HubSpot returns a default property set unless `properties` names some;
        // unknown names are silently left out, as the real API does.
        let wanted: Vec<String> = call
            .param("properties")
            .map(|p| p.split(',').map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default();
        let props: serde_json::Map<String, Value> = if wanted.is_empty() {
            all
        } else {
            all.into_iter()
                .filter(|(k, _)| {
                    wanted.iter().any(|w| w == k)
                        || matches!(
                            k.as_str(),
                            "createdate" | "hs_lastmodifieddate" | "hs_object_id"
                        )
                })
                .collect()
        };
        json!({
            "id": id.to_string(),
            "properties": props,
            "createdAt": iso(record_time(id) - chrono::Duration::days(30)),
            "updatedAt": iso(record_time(id)),
            "archived": false,
        })
    }

    fn unauthorized() -> HttpResponse {
        HttpResponse::Unauthorized().json(json!({
            "status": "error",
            "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            "correlationId": request_id(),
            "category": "INVALID_AUTHENTICATION",
        }))
    }

    fn ok(body: Value) -> HttpResponse {
        HttpResponse::Ok()
            .insert_header(("X-HubSpot-RateLimit-Max", "100"))
            .insert_header(("X-HubSpot-RateLimit-Remaining", "99"))
            .insert_header(("X-HubSpot-RateLimit-Interval-Milliseconds", "10000"))
            .insert_header(("X-HubSpot-RateLimit-Daily", "250000"))
            .insert_header(("X-HubSpot-RateLimit-Daily-Remaining", "249999"))
            .json(body)
    }

    pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
        if call.bearer() != Some(call.valid_token.as_str()) {
            return unauthorized();
        }
        let segments: Vec<&str> = call.path.trim_matches('/').split('/').collect();
        match (call.method, segments.as_slice()) {
            (&Method::GET, ["crm", "v3", "objects", object]) => {
                let Some(total) = size(object) else {
                    return bad_object(object);
                };
                let limit = call.usize_param("limit").unwrap_or(10).clamp(1, 100);
                let start = match call.param("after") {
                    None => 1,
                    Some(after) => match after.parse::<usize>() {
                        Ok(n) if n >= 1 => n,
                        _ => {
                            return HttpResponse::BadRequest().json(json!({
                                "status": "error",
                                "message": format!("Invalid input JSON: after={after:?} is not a valid paging cursor"),
                                "correlationId": request_id(),
                                "category": "VALIDATION_ERROR",
                            }));
                        }
                    },
                };
                let end = (start + limit).min(total + 1);
                let results: Vec<Value> = (start..end).map(|id| record(call, object, id)).collect();
                let mut body = json!({ "results": results });
                if end <= total {
                    body["paging"] = json!({
                        "next": {
                            "after": end.to_string(),
                            "link": format!("https://api.hubapi.com/crm/v3/objects/{object}?limit={limit}&after={end}"),
                        }
                    });
                }
                ok(body)
            }
            (&Method::GET, ["crm", "v3", "objects", object, id]) => {
                let Some(total) = size(object) else {
                    return bad_object(object);
                };
                match id.parse::<usize>() {
                    Ok(n) if (1..=total).contains(&n) => ok(record(call, object, n)),
                    _ => HttpResponse::NotFound().json(json!({
                        "status": "error",
                        "message": "resource not found",
                        "correlationId": request_id(),
                        "category": "OBJECT_NOT_FOUND",
                    })),
                }
            }
            _ => not_found(Kind::HubSpot, call.path),
        }
    }

    fn bad_object(object: &str) -> HttpResponse {
        HttpResponse::BadRequest().json(json!({
            "status": "error",
            "message": format!("Unable to infer object type from: {object}"),
            "correlationId": request_id(),
            "category": "VALIDATION_ERROR",
        }))
    }
}

mod quickbooks {
    //! QuickBooks Online v3: `companyinfo/{realm}` and `query` under
    //! `/v3/company/{realmId}`. JSON only when `Accept` asks for it, XML
    //! otherwise, as the real API does.

    use super::*;

    const INVOICES: usize = 30;
    const CUSTOMERS: [&str; 5] = [
        "Acme Freight",
        "Blue Ridge Logistics",
        "Cascade Carriers",
        "Delta Hauling",
        "Evergreen Transport",
    ];

    fn pacific() -> FixedOffset {
        FixedOffset::west_opt(8 * 3600).expect("UTC-8 is a valid offset")
    }

    /// Intuit's local-offset timestamps (`2024-01-02T09:00:00-08:00`).
    fn qb_time(t: DateTime<Utc>) -> String {
        t.with_timezone(&pacific())
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    fn now() -> String {
        Utc::now()
            .with_timezone(&pacific())
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string()
    }

    /// The `Fault` body of a QuickBooks error.
    pub(super) fn fault_json(
        name: &str,
        code: &str,
        status: u16,
        detail: &str,
        kind: &str,
    ) -> Value {
        json!({
            "Fault": {
                "Error": [{
                    "Message": format!("message={name}; errorCode={code}; statusCode={status}"),
                    "Detail": detail,
                    "code": code.trim_start_matches('0'),
                }],
                "type": kind,
            },
            "time": now(),
        })
    }

    fn wants_json(call: &Call<'_>) -> bool {
        call.header("accept")
            .is_some_and(|a| a.to_ascii_lowercase().contains("json"))
    }

    fn fault(
        call: &Call<'_>,
        status: StatusCode,
        name: &str,
        code: &str,
        detail: &str,
        kind: &str,
    ) -> HttpResponse {
        let mut response = HttpResponse::build(status);
        response.insert_header(("intuit_tid", request_id()));
        if wants_json(call) {
            response.json(fault_json(name, code, status.as_u16(), detail, kind))
        } else {
            response.content_type("application/xml").body(format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{}"><Fault type="{kind}"><Error code="{}"><Message>message={name}; errorCode={code}; statusCode={}</Message><Detail>{detail}</Detail></Error></Fault></IntuitResponse>"#,
                now(),
                code.trim_start_matches('0'),
                status.as_u16()
            ))
        }
    }

    fn customer(i: usize) -> Value {
        let name = CUSTOMERS[(i - 1) % CUSTOMERS.len()];
        json!({
            "Id": i.to_string(),
            "SyncToken": "0",
            "DisplayName": name,
            "CompanyName": name,
            "PrimaryEmailAddr": {"Address": format!("ap@{}.example.com", name.to_lowercase().replace(' ', ""))},
            "Balance": 0,
            "Active": true,
            "MetaData": {"CreateTime": qb_time(record_time(0)), "LastUpdatedTime": qb_time(record_time(i))},
        })
    }

    fn invoice(i: usize) -> Value {
        let customer = (i - 1) % CUSTOMERS.len() + 1;
        let cents = 125_000 + i * 7_319;
        let amount = cents as f64 / 100.0;
        let date = record_time(i).date_naive();
        json!({
            "Id": (100 + i).to_string(),
            "SyncToken": (i % 3).to_string(),
            "MetaData": {"CreateTime": qb_time(record_time(i) - chrono::Duration::hours(2)), "LastUpdatedTime": qb_time(record_time(i))},
            "DocNumber": (1000 + i).to_string(),
            "TxnDate": date.format("%Y-%m-%d").to_string(),
            "DueDate": (date + chrono::Duration::days(30)).format("%Y-%m-%d").to_string(),
            "CustomerRef": {"value": customer.to_string(), "name": CUSTOMERS[customer - 1]},
            "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
            "Line": [{
                "Id": "1",
                "LineNum": 1,
                "Description": format!("Linehaul, load {}", 5000 + i),
                "Amount": amount,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Freight"}, "Qty": 1, "UnitPrice": amount},
            }, {
                "Amount": amount,
                "DetailType": "SubTotalLineDetail",
                "SubTotalLineDetail": {},
            }],
            "TotalAmt": amount,
            "Balance": if i.is_multiple_of(4) { 0.0 } else { amount },
            "EmailStatus": "NotSet",
        })
    }

    fn company_info() -> Value {
        json!({
            "CompanyName": "Fake Freight LLC",
            "LegalName": "Fake Freight Limited Liability Company",
            "CompanyAddr": {"Id": "1", "Line1": "100 Dock St", "City": "Reno", "CountrySubDivisionCode": "NV", "PostalCode": "89501"},
            "Country": "US",
            "Email": {"Address": "books@fakefreight.example.com"},
            "FiscalYearStartMonth": "January",
            "SupportedLanguages": "en",
            "Id": "1",
            "SyncToken": "4",
            "domain": "QBO",
            "sparse": false,
            "MetaData": {"CreateTime": qb_time(record_time(0)), "LastUpdatedTime": qb_time(record_time(1))},
        })
    }

    pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
        if call.bearer() != Some(call.valid_token.as_str()) {
            return fault(
                call,
                StatusCode::UNAUTHORIZED,
                "AuthenticationFailed",
                "003200",
                "Authentication Failed",
                "AUTHENTICATION",
            );
        }
        let segments: Vec<&str> = call.path.trim_matches('/').split('/').collect();
        let (realm, rest) = match segments.as_slice() {
            ["v3", "company", realm, rest @ ..] => (*realm, rest),
            _ => return not_found(Kind::QuickBooks, call.path),
        };
        if realm != QUICKBOOKS_REALM_ID {
            return fault(
                call,
                StatusCode::FORBIDDEN,
                "ApplicationAuthorizationFailed",
                "003100",
                "",
                "AuthorizationFault",
            );
        }
        match (call.method, rest) {
            (&Method::GET, ["companyinfo", id]) if *id == realm => {
                let info = company_info();
                if wants_json(call) {
                    HttpResponse::Ok().json(json!({"CompanyInfo": info, "time": now()}))
                } else {
                    HttpResponse::Ok().content_type("application/xml").body(format!(
                        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{}"><CompanyInfo domain="QBO" sparse="false"><Id>1</Id><SyncToken>4</SyncToken><CompanyName>Fake Freight LLC</CompanyName><Country>US</Country></CompanyInfo></IntuitResponse>"#,
                        now()
                    ))
                }
            }
            (&Method::GET, ["query"]) => query(call),
            _ => not_found(Kind::QuickBooks, call.path),
        }
    }

    /// Reads the number after `keyword` in a lower-cased query.
    fn number_after(query: &str, keyword: &str) -> Option<usize> {
        let at = query.find(keyword)? + keyword.len();
        query[at..].split_whitespace().next()?.parse().ok()
    }

    /// The quoted timestamp of `Metadata.LastUpdatedTime > '…'`, if any.
    fn updated_after(query: &str) -> Result<Option<DateTime<Utc>>, ()> {
        let lower = query.to_ascii_lowercase();
        let Some(at) = lower.find("metadata.lastupdatedtime") else {
            return Ok(None);
        };
        let rest = &query[at..];
        let quoted = rest.split('\'').nth(1).ok_or(())?;
        DateTime::parse_from_rfc3339(quoted)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| ())
    }

    fn query(call: &Call<'_>) -> HttpResponse {
        let Some(q) = call.param("query") else {
            return fault(
                call,
                StatusCode::BAD_REQUEST,
                "QueryParserError",
                "4000",
                "Error parsing query: the query parameter is missing",
                "ValidationFault",
            );
        };
        let lower = q.to_ascii_lowercase();
        let entity = lower
            .split_once(" from ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .map(str::to_owned);
        let (Some(entity), true) = (entity, lower.trim_start().starts_with("select ")) else {
            return fault(
                call,
                StatusCode::BAD_REQUEST,
                "QueryParserError",
                "4000",
                &format!("Error parsing query: {q}"),
                "ValidationFault",
            );
        };
        let Ok(after) = updated_after(q) else {
            return fault(
                call,
                StatusCode::BAD_REQUEST,
                "QueryValidationError",
                "4001",
                "Invalid date in Metadata.LastUpdatedTime",
                "ValidationFault",
            );
        };
        let (name, total, make): (&str, usize, fn(usize) -> Value) = match entity.as_str() {
            "invoice" => ("Invoice", INVOICES, invoice),
            "customer" => ("Customer", CUSTOMERS.len(), customer),
            _ => return HttpResponse::Ok().json(json!({"QueryResponse": {}, "time": now()})),
        };
        let matching: Vec<usize> = (1..=total)
            .filter(|i| after.is_none_or(|t| record_time(*i) > t))
            .collect();
        if lower.contains("count(*)") {
            return HttpResponse::Ok()
                .json(json!({"QueryResponse": {"totalCount": matching.len()}, "time": now()}));
        }
        let start = number_after(&lower, "startposition").unwrap_or(1).max(1);
        let max = number_after(&lower, "maxresults")
            .unwrap_or(100)
            .clamp(1, 1000);
        let page: Vec<Value> = matching
            .iter()
            .skip(start - 1)
            .take(max)
            .map(|i| make(*i))
            .collect();
        if page.is_empty() {
            // The real API drops the entity key, and the paging fields, when nothing matches.
            return HttpResponse::Ok().json(json!({"QueryResponse": {}, "time": now()}));
        }
        let count = page.len();
        let mut response = serde_json::Map::new();
        response.insert(name.to_owned(), Value::Array(page));
        response.insert("startPosition".into(), json!(start));
        response.insert("maxResults".into(), json!(count));
        HttpResponse::Ok().json(json!({"QueryResponse": response, "time": now()}))
    }
}

mod xero {
    //! Xero accounting 2.0: `/Organisation` and paged `/Invoices` under
    //! `/api.xro/2.0`, plus `GET /connections` at the root.

    use super::*;

    const INVOICES: usize = 150;
    const PAGE_SIZE: usize = 100;
    const MINUTE_LIMIT: u32 = 60;
    const DAY_LIMIT: u32 = 5000;

    /// Xero's `/Date(1518685950940+0000)/`.
    fn ms_date(t: DateTime<Utc>) -> String {
        format!("/Date({}+0000)/", t.timestamp_millis())
    }

    pub(super) fn day_remaining(state: &State) -> u32 {
        DAY_LIMIT.saturating_sub(state.xero_day_used)
    }

    fn problem(status: StatusCode, title: &str, detail: &str) -> HttpResponse {
        HttpResponse::build(status).json(json!({
            "Type": null,
            "Title": title,
            "Status": status.as_u16(),
            "Detail": detail,
            "Instance": request_id(),
            "Extensions": {},
        }))
    }

    fn unauthorized() -> HttpResponse {
        HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Bearer error=\"invalid_token\""))
            .json(json!({
                "Type": null,
                "Title": "Unauthorized",
                "Status": 401,
                "Detail": "AuthenticationUnsuccessful",
                "Instance": request_id(),
                "Extensions": {},
            }))
    }

    /// `GET /connections`: the tenants the token may act for.
    pub(super) fn connections(req: &HttpRequest, valid_token: &str) -> HttpResponse {
        let bearer = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        if bearer != Some(valid_token) {
            return unauthorized();
        }
        // .NET ticks precision, as Xero prints it.
        let created = record_time(0)
            .format("%Y-%m-%dT%H:%M:%S.0000000")
            .to_string();
        HttpResponse::Ok().json(json!([{
            "id": stable_uuid(0xc0, 1),
            "authEventId": stable_uuid(0xae, 1),
            "tenantId": XERO_TENANT_ID,
            "tenantType": "ORGANISATION",
            "tenantName": "Fake Freight Ltd",
            "createdDateUtc": created,
            "updatedDateUtc": created,
        }]))
    }

    fn envelope(key: &str, items: Value) -> Value {
        let mut body = json!({
            "Id": request_id(),
            "Status": "OK",
            "ProviderName": "Integration Hub",
            "DateTimeUTC": ms_date(Utc::now()),
        });
        body[key] = items;
        body
    }

    fn invoice(i: usize) -> Value {
        let date = record_time(i);
        let subtotal = (100_000 + i * 3_137) as f64 / 100.0;
        let tax = (subtotal * 0.15 * 100.0).round() / 100.0;
        let total = subtotal + tax;
        let paid = i.is_multiple_of(5);
        json!({
            "Type": "ACCREC",
            "InvoiceID": stable_uuid(0x1e, i),
            "InvoiceNumber": format!("INV-{i:04}"),
            "Reference": format!("Load {}", 7000 + i),
            "Contact": {"ContactID": stable_uuid(0xc1, i % 7), "Name": format!("Shipper {}", i % 7)},
            "Date": ms_date(date),
            "DateString": date.format("%Y-%m-%dT00:00:00").to_string(),
            "DueDate": ms_date(date + chrono::Duration::days(30)),
            "DueDateString": (date + chrono::Duration::days(30)).format("%Y-%m-%dT00:00:00").to_string(),
            "Status": if paid { "PAID" } else { "AUTHORISED" },
            "LineAmountTypes": "Exclusive",
            "SubTotal": subtotal,
            "TotalTax": tax,
            "Total": total,
            "AmountDue": if paid { 0.0 } else { total },
            "AmountPaid": if paid { total } else { 0.0 },
            "CurrencyCode": "USD",
            "UpdatedDateUTC": ms_date(date),
            "HasAttachments": false,
        })
    }

    /// `If-Modified-Since` as Xero takes it: an HTTP date, or an ISO
    /// date-time without offset meaning UTC.
    fn modified_since(call: &Call<'_>) -> Option<DateTime<Utc>> {
        let raw = call.header("if-modified-since")?;
        DateTime::parse_from_rfc2822(raw)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                DateTime::parse_from_rfc3339(raw)
                    .map(|t| t.with_timezone(&Utc))
                    .ok()
            })
            .or_else(|| {
                NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S")
                    .ok()
                    .map(|n| n.and_utc())
            })
    }

    pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
        if call.bearer() != Some(call.valid_token.as_str()) {
            return unauthorized();
        }
        match call.header("xero-tenant-id") {
            Some(t) if t.eq_ignore_ascii_case(XERO_TENANT_ID) => {}
            Some(_) | None => {
                return problem(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "AuthenticationUnsuccessful",
                );
            }
        }
        let (minute_remaining, day_remaining) = {
            let mut state = call.shared.lock();
            if state.xero_minute_started.elapsed() >= Duration::from_secs(60) {
                state.xero_minute_started = Instant::now();
                state.xero_minute_used = 0;
            }
            state.xero_minute_used = state.xero_minute_used.saturating_add(1);
            state.xero_day_used = state.xero_day_used.saturating_add(1);
            (
                MINUTE_LIMIT.saturating_sub(state.xero_minute_used),
                day_remaining(&state),
            )
        };
        let mut response = match (call.method, call.path.trim_matches('/')) {
            (&Method::GET, "Organisation") => HttpResponse::Ok().json(envelope(
                "Organisations",
                json!([{
                    "OrganisationID": XERO_TENANT_ID,
                    "APIKey": "",
                    "Name": "Fake Freight Ltd",
                    "LegalName": "Fake Freight Limited",
                    "PaysTax": true,
                    "Version": "US",
                    "OrganisationType": "COMPANY",
                    "BaseCurrency": "USD",
                    "CountryCode": "US",
                    "IsDemoCompany": false,
                    "OrganisationStatus": "ACTIVE",
                    "FinancialYearEndDay": 31,
                    "FinancialYearEndMonth": 12,
                    "Timezone": "PACIFICSTANDARDTIME",
                    "CreatedDateUTC": ms_date(record_time(0)),
                    "ShortCode": "!fk3x9",
                    "Edition": "BUSINESS",
                    "Class": "STANDARD",
                }]),
            )),
            (&Method::GET, "Invoices") => {
                let since = modified_since(call);
                let matching: Vec<usize> = (1..=INVOICES)
                    .filter(|i| since.is_none_or(|t| record_time(*i) > t))
                    .collect();
                match call.param("page") {
                    None => HttpResponse::Ok().json(envelope(
                        "Invoices",
                        matching.iter().map(|i| invoice(*i)).collect(),
                    )),
                    Some(p) => {
                        let Ok(page) = p.parse::<usize>() else {
                            return problem(
                                StatusCode::BAD_REQUEST,
                                "Validation error",
                                "page must be a positive integer",
                            );
                        };
                        let page = page.max(1);
                        let items: Vec<Value> = matching
                            .iter()
                            .skip((page - 1) * PAGE_SIZE)
                            .take(PAGE_SIZE)
                            .map(|i| invoice(*i))
                            .collect();
                        let mut body = envelope("Invoices", Value::Array(items));
                        body["pagination"] = json!({
                            "page": page,
                            "pageSize": PAGE_SIZE,
                            "pageCount": matching.len().div_ceil(PAGE_SIZE),
                            "itemCount": matching.len(),
                        });
                        HttpResponse::Ok().json(body)
                    }
                }
            }
            _ => not_found(Kind::Xero, call.path),
        };
        let headers = response.headers_mut();
        for (name, value) in [
            ("x-minlimit-remaining", minute_remaining),
            ("x-daylimit-remaining", day_remaining),
            ("x-appminlimit-remaining", 9999),
        ] {
            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&value.to_string()) {
                headers.insert(actix_web::http::header::HeaderName::from_static(name), v);
            }
        }
        response
    }
}

mod samsara {
    //! Samsara: `GET /fleet/vehicles` and `GET /fleet/vehicles/locations`,
    //! cursor-paged with `after` / `pagination.endCursor`.

    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    const VEHICLES: usize = 7;

    fn rfc3339(t: DateTime<Utc>) -> String {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    fn vehicle_id(i: usize) -> String {
        (212_014_918_086_160_u64 + i as u64).to_string()
    }

    fn vehicle(i: usize) -> Value {
        json!({
            "id": vehicle_id(i),
            "name": format!("Truck {i:02}"),
            "vin": format!("1FUJGLDR5CLBP{i:04}"),
            "licensePlate": format!("7TRK{i:03}"),
            "make": "Freightliner",
            "model": "Cascadia",
            "year": "2021",
            "serial": format!("G9ZK{i:04}"),
            "externalIds": {"samsara.vin": format!("1FUJGLDR5CLBP{i:04}")},
        })
    }

    fn location(i: usize) -> Value {
        let lat = 39.5 + i as f64 * 0.137;
        let lon = -119.8 + i as f64 * 0.211;
        json!({
            "id": vehicle_id(i),
            "name": format!("Truck {i:02}"),
            "location": {
                "time": rfc3339(Utc::now() - chrono::Duration::seconds(i64::try_from(i * 17).unwrap_or(0))),
                "latitude": lat,
                "longitude": lon,
                "heading": (i * 45 % 360) as f64,
                "speed": 55.0 + i as f64,
                "reverseGeo": {"formattedLocation": format!("I-80 mile {}, NV", 12 + i * 9)},
            },
        })
    }

    fn cursor(offset: usize) -> String {
        STANDARD.encode(format!("offset:{offset}"))
    }

    fn parse_cursor(raw: &str) -> Option<usize> {
        let bytes = STANDARD.decode(raw).ok()?;
        String::from_utf8(bytes)
            .ok()?
            .strip_prefix("offset:")?
            .parse()
            .ok()
    }

    fn error(status: StatusCode, message: &str) -> HttpResponse {
        HttpResponse::build(status).json(json!({"message": message, "requestId": request_id()}))
    }

    fn page(call: &Call<'_>, item: fn(usize) -> Value) -> HttpResponse {
        let limit = call.usize_param("limit").unwrap_or(512).clamp(1, 512);
        let offset = match call.param("after") {
            None | Some("") => 0,
            Some(raw) => match parse_cursor(raw) {
                Some(o) => o,
                None => return error(StatusCode::BAD_REQUEST, "Invalid pagination cursor"),
            },
        };
        let end = (offset + limit).min(VEHICLES);
        let data: Vec<Value> = (offset + 1..=end).map(item).collect();
        let has_next = end < VEHICLES;
        HttpResponse::Ok().json(json!({
            "data": data,
            "pagination": {
                "endCursor": if has_next { cursor(end) } else { String::new() },
                "hasNextPage": has_next,
            },
        }))
    }

    pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
        if call.bearer() != Some(call.valid_token.as_str()) {
            return error(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        match (call.method, call.path.trim_end_matches('/')) {
            (&Method::GET, "/fleet/vehicles") => page(call, vehicle),
            (&Method::GET, "/fleet/vehicles/locations") => page(call, location),
            _ => not_found(Kind::Samsara, call.path),
        }
    }
}

mod newsapi {
    //! NewsAPI v2: `/everything` and `/top-headlines`, paged with `page` and
    //! `pageSize`, developer-plan cap of 100 results.

    use super::*;

    const ARTICLES: usize = 42;
    const DEVELOPER_RESULT_CAP: usize = 100;
    const SOURCES: [(Option<&str>, &str); 4] = [
        (None, "FreightWaves"),
        (Some("reuters"), "Reuters"),
        (Some("bloomberg"), "Bloomberg"),
        (None, "Transport Topics"),
    ];

    fn error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
        HttpResponse::build(status)
            .json(json!({"status": "error", "code": code, "message": message}))
    }

    fn article(i: usize, topic: &str) -> Value {
        let (id, name) = SOURCES[i % SOURCES.len()];
        json!({
            "source": {"id": id, "name": name},
            "author": format!("Reporter {}", i % 9),
            "title": format!("{topic}: spot rates move on lane {i}"),
            "description": format!("Market update {i} on {topic}."),
            "url": format!("https://news.example.com/articles/{i}"),
            "urlToImage": format!("https://news.example.com/images/{i}.jpg"),
            "publishedAt": (Utc::now() - chrono::Duration::hours(i64::try_from(i).unwrap_or(0))).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "content": format!("Market update {i} on {topic}. Carriers and brokers … [+1200 chars]"),
        })
    }

    fn api_key<'a>(call: &'a Call<'_>) -> Option<&'a str> {
        call.header("x-api-key")
            .or_else(|| call.param("apiKey"))
            .or_else(|| {
                call.header("authorization")
                    .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
            })
    }

    pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
        match api_key(call) {
            None => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "apiKeyMissing",
                    "Your API key is missing. Append this to the URL with the apiKey param, or use the x-api-key HTTP header.",
                );
            }
            Some(key) if key != call.valid_token => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "apiKeyInvalid",
                    "Your API key is invalid or incorrect. Check your key, or go to https://newsapi.org to create a free API key.",
                );
            }
            Some(_) => {}
        }
        let topic = match (call.method, call.path.trim_end_matches('/')) {
            (&Method::GET, "/everything") => {
                let q = call.param("q").or_else(|| call.param("qInTitle"));
                match q
                    .or_else(|| call.param("sources"))
                    .or_else(|| call.param("domains"))
                {
                    Some(t) => t.to_owned(),
                    None => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "parametersMissing",
                            "Required parameters are missing, the scope of your search is too broad. Please set any of the following required parameters and try again: q, qInTitle, sources, domains.",
                        );
                    }
                }
            }
            (&Method::GET, "/top-headlines") => {
                match ["q", "country", "category", "sources"]
                    .iter()
                    .find_map(|p| call.param(p))
                {
                    Some(t) => t.to_owned(),
                    None => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "parametersMissing",
                            "Required parameters are missing. Please set any of the following parameters and try again: sources, q, language, country, category.",
                        );
                    }
                }
            }
            _ => return not_found(Kind::NewsApi, call.path),
        };
        let page_size = call.usize_param("pageSize").unwrap_or(100).clamp(1, 100);
        let page = call.usize_param("page").unwrap_or(1).max(1);
        let first = (page - 1) * page_size;
        if first >= DEVELOPER_RESULT_CAP {
            return error(
                StatusCode::UPGRADE_REQUIRED,
                "maximumResultsReached",
                "You have requested too many results. Developer accounts are limited to a max of 100 results. You are trying to request results 100 to 200. Please upgrade to a paid plan if you need more results.",
            );
        }
        let articles: Vec<Value> = (first..ARTICLES.min(first + page_size))
            .map(|i| article(i + 1, &topic))
            .collect();
        HttpResponse::Ok().json(json!({
            "status": "ok",
            "totalResults": ARTICLES,
            "articles": articles,
        }))
    }
}
