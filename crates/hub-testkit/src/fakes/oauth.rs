//! OAuth 2.0 on the HubSpot, Salesforce, QuickBooks, Xero and Zoho fakes:
//! the authorization endpoint (a user who always consents, unless told to
//! deny) and the token endpoint (authorization-code grant with optional
//! PKCE, refresh grant), at the real paths, with each provider's client
//! authentication, answer shape, refresh-token rotation and error bodies
//! (Zoho's are 200s with an `error` field, and it hands out a refresh token
//! only for `access_type=offline`).

use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::*;

/// How long an authorization code lives (RFC 6749 recommends 10 minutes at most).
const CODE_TTL: Duration = Duration::from_secs(600);

/// Which OAuth endpoint a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Authorize,
    Token,
}

/// The real paths of the authorization and token endpoints of `kind`.
pub(super) fn paths(kind: Kind) -> Option<(&'static str, &'static str)> {
    match kind {
        Kind::HubSpot => Some(("/oauth/authorize", "/oauth/v1/token")),
        Kind::Salesforce => Some(("/services/oauth2/authorize", "/services/oauth2/token")),
        Kind::QuickBooks => Some(("/connect/oauth2", "/oauth2/v1/tokens/bearer")),
        Kind::Xero => Some(("/identity/connect/authorize", "/connect/token")),
        Kind::Zoho => Some(("/oauth/v2/auth", "/oauth/v2/token")),
        Kind::Samsara | Kind::NewsApi | Kind::KeepTruckin | Kind::AlphaVantage => None,
    }
}

/// The OAuth endpoint at `path` on a fake of `kind`, if it is one.
pub(super) fn endpoint(kind: Kind, path: &str) -> Option<Endpoint> {
    let (authorize, token) = paths(kind)?;
    let path = path.trim_end_matches('/');
    if path == authorize {
        Some(Endpoint::Authorize)
    } else if path == token {
        Some(Endpoint::Token)
    } else {
        None
    }
}

/// The registered app's client id and secret on a fake of `kind`.
pub(super) fn client(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::HubSpot => (
            "5f4c8a2e-93b1-4d7a-a6e0-1c2b3d4e5f60",
            "0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d",
        ),
        Kind::Salesforce => (
            "3MVG9FAKEconsumerKey.forTheIntegrationHub0123456789abcdefghijklmnopqrstuv",
            "FAKE0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789AB",
        ),
        Kind::QuickBooks => (
            "ABfakeQuickBooksClientId0123456789abcdefghijklmnop",
            "fakeQuickBooksSecret0123456789abcdefgh",
        ),
        Kind::Zoho => (
            "1000.FAKEZOHOCLIENT0123456789ABCDEFGHIJ",
            "fakezohosecret0123456789abcdef0123456789ab",
        ),
        _ => (
            "0F1E2D3C4B5A69788796A5B4C3D2E1F0",
            "fake-xero-secret-0123456789abcdefghijklmnopqrstuv",
        ),
    }
}

/// The access-token lifetime the provider answers (Salesforce answers none;
/// its sessions last two hours by default).
fn default_ttl(kind: Kind) -> Duration {
    Duration::from_secs(match kind {
        Kind::QuickBooks | Kind::Zoho => 3600,
        Kind::Salesforce => 7200,
        _ => 1800,
    })
}

/// Whether the provider knows scope `s`.
fn known_scope(kind: Kind, s: &str) -> bool {
    match kind {
        Kind::HubSpot => {
            s == "oauth"
                || s.starts_with("crm.")
                || [
                    "content",
                    "forms",
                    "tickets",
                    "e-commerce",
                    "automation",
                    "files",
                ]
                .contains(&s)
        }
        Kind::Salesforce => [
            "api",
            "refresh_token",
            "offline_access",
            "full",
            "id",
            "profile",
            "email",
            "openid",
            "web",
            "chatter_api",
        ]
        .contains(&s),
        Kind::QuickBooks => [
            "com.intuit.quickbooks.accounting",
            "com.intuit.quickbooks.payment",
            "openid",
            "profile",
            "email",
            "phone",
            "address",
        ]
        .contains(&s),
        Kind::Xero => {
            ["openid", "profile", "email", "offline_access"].contains(&s)
                || s.starts_with("accounting.")
                || s.starts_with("payroll.")
                || s.starts_with("files")
                || s.starts_with("assets")
                || s.starts_with("projects")
        }
        Kind::Zoho => {
            s.starts_with("ZohoCRM.") || s.starts_with("AaaServer.") || s.starts_with("ZohoSearch.")
        }
        Kind::Samsara | Kind::NewsApi | Kind::KeepTruckin | Kind::AlphaVantage => false,
    }
}

/// An authorization code waiting for its exchange.
#[derive(Debug)]
struct CodeGrant {
    redirect_uri: String,
    scope: String,
    /// `(challenge, method)` of PKCE.
    challenge: Option<(String, String)>,
    /// `access_type=offline` was asked for (Zoho's condition for a refresh token).
    offline: bool,
    expires: Instant,
}

/// The OAuth side of a fake's state.
#[derive(Debug, Default)]
pub(super) struct OAuthState {
    redirect_uri: Option<String>,
    user_denies: bool,
    access_ttl: Option<Duration>,
    codes: HashMap<String, CodeGrant>,
    /// Issued access token → expiry.
    access: HashMap<String, Instant>,
    /// Live refresh token → the scope it was granted.
    refresh: HashMap<String, String>,
    mode: Mode,
    scripted: VecDeque<Mode>,
    requests: Vec<RecordedRequest>,
    refresh_count: u32,
}

impl OAuthState {
    /// Whether `token` is an access token this fake issued, and alive.
    pub(super) fn check_access(&self, token: &str) -> TokenCheck {
        match self.access.get(token) {
            Some(expires) if *expires > Instant::now() => TokenCheck::Valid,
            Some(_) => TokenCheck::Expired,
            None => TokenCheck::Invalid,
        }
    }

    fn ttl(&self, kind: Kind) -> Duration {
        self.access_ttl.unwrap_or_else(|| default_ttl(kind))
    }
}

impl FakeProvider {
    /// The registered OAuth app of this fake: `(client_id, client_secret)`.
    pub fn oauth_client(&self) -> (String, String) {
        let (id, secret) = client(self.kind);
        (id.to_owned(), secret.to_owned())
    }

    /// The authorization endpoint (`…/oauth/authorize` on HubSpot), or
    /// `None` for a fake without OAuth.
    pub fn authorize_url(&self) -> Option<String> {
        paths(self.kind).map(|(a, _)| format!("{}{a}", self.origin()))
    }

    /// The token endpoint (`…/oauth/v1/token` on HubSpot), or `None` for a
    /// fake without OAuth.
    pub fn token_url(&self) -> Option<String> {
        paths(self.kind).map(|(_, t)| format!("{}{t}", self.origin()))
    }

    /// [`Self::config`] plus `oauth_authorize_url` and `oauth_token_url`
    /// pointing at this fake: the integration config for the OAuth dance.
    /// Just [`Self::config`] for a fake without OAuth.
    pub fn oauth_config(&self) -> Value {
        let mut config = self.config();
        if let (Some(a), Some(t)) = (self.authorize_url(), self.token_url()) {
            config["oauth_authorize_url"] = json!(a);
            config["oauth_token_url"] = json!(t);
        }
        config
    }

    /// Register the app's one redirect URI: from now on the authorization
    /// and token endpoints accept no other. Until then any http(s) URI is
    /// accepted.
    pub fn set_redirect_uri(&self, uri: impl Into<String>) {
        self.shared.lock().oauth.redirect_uri = Some(uri.into());
    }

    /// Make the user refuse consent: the authorization endpoint redirects
    /// with `error=access_denied`.
    pub fn set_user_denies(&self, denies: bool) {
        self.shared.lock().oauth.user_denies = denies;
    }

    /// Lifetime of the access tokens issued from now on: both the
    /// `expires_in` answered and when the API stops accepting them (default:
    /// the provider's own, HubSpot and Xero 30 min, QuickBooks 1 h,
    /// Salesforce 2 h).
    pub fn set_access_ttl(&self, ttl: Duration) {
        self.shared.lock().oauth.access_ttl = Some(ttl);
    }

    /// Expire every access token issued so far: the API answers them with
    /// the provider's 401.
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        for expires in self.shared.lock().oauth.access.values_mut() {
            *expires = now;
        }
    }

    /// Revoke every refresh token issued so far (the user disconnected the
    /// app at the provider): refreshing with one answers `invalid_grant`.
    pub fn revoke_refresh_tokens(&self) {
        self.shared.lock().oauth.refresh.clear();
    }

    /// Answer every following token request in `mode` (after any scripted
    /// ones): 500, 429 or slow, independently of the API's mode.
    pub fn set_token_mode(&self, mode: Mode) {
        let mut state = self.shared.lock();
        state.oauth.mode = mode;
        state.oauth.scripted.clear();
    }

    /// Answer the next `count` token requests in `mode`, then as set by
    /// [`Self::set_token_mode`].
    pub fn set_token_mode_for(&self, count: usize, mode: Mode) {
        let mut state = self.shared.lock();
        state
            .oauth
            .scripted
            .extend(std::iter::repeat_n(mode, count));
    }

    /// Every token-endpoint request so far, oldest first (the grant type is
    /// [`RecordedRequest::form_param`]`("grant_type")`), whether recording is
    /// on or not.
    pub fn token_requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().oauth.requests.clone()
    }

    /// How many `grant_type=refresh_token` requests the token endpoint
    /// received (refused and failed ones included).
    pub fn refresh_count(&self) -> u32 {
        self.shared.lock().oauth.refresh_count
    }
}

/// Serves an OAuth endpoint.
pub(super) async fn handle(
    endpoint: Endpoint,
    shared: &Shared,
    req: &HttpRequest,
    body: &[u8],
) -> HttpResponse {
    let recorded = RecordedRequest::of(req, body);
    let mode = {
        let mut state = shared.lock();
        if state.recording {
            state.requests.push(recorded.clone());
        }
        if endpoint == Endpoint::Token {
            if recorded.form_param("grant_type").as_deref() == Some("refresh_token") {
                state.oauth.refresh_count += 1;
            }
            state.oauth.requests.push(recorded);
            let oauth = &mut state.oauth;
            oauth.scripted.pop_front().unwrap_or(oauth.mode)
        } else {
            Mode::Normal
        }
    };
    match mode {
        Mode::Normal => {}
        Mode::Slow(delay) => tokio::time::sleep(delay).await,
        Mode::ServerError => return server_error(shared.kind),
        Mode::RateLimited { retry_after_secs } => {
            if shared.kind == Kind::Salesforce {
                return HttpResponse::TooManyRequests()
                    .insert_header(("Retry-After", retry_after_secs.to_string()))
                    .json(json!({"error": "rate_limit_exceeded", "error_description": "too many requests"}));
            }
            return rate_limited(shared, retry_after_secs, None);
        }
    }
    match (endpoint, req.method()) {
        (Endpoint::Authorize, &Method::GET) => {
            let query: Vec<(String, String)> =
                url::form_urlencoded::parse(req.query_string().as_bytes())
                    .into_owned()
                    .collect();
            authorize(shared, &query)
        }
        (Endpoint::Token, &Method::POST) => token(shared, req, body),
        _ => HttpResponse::MethodNotAllowed()
            .json(json!({"error": "invalid_request", "error_description": "method not allowed"})),
    }
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The error page a provider shows (no redirect) for a bad client or
/// redirect URI: redirecting there would be an open redirector.
fn error_page(error: &str, description: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!DOCTYPE html><html><head><title>Authorization error</title></head><body><h1>error={error}</h1><p>{description}</p></body></html>"
        ))
}

/// `302 Location: <redirect_uri>?<params>` (keeping the URI's own query).
fn redirect(redirect_uri: &url::Url, params: &[(&str, &str)]) -> HttpResponse {
    let mut to = redirect_uri.clone();
    {
        let mut pairs = to.query_pairs_mut();
        for (k, v) in params {
            pairs.append_pair(k, v);
        }
    }
    HttpResponse::Found()
        .insert_header(("Location", to.to_string()))
        .finish()
}

fn random_token(prefix: &str) -> String {
    format!(
        "{prefix}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// `GET authorize`: checks the client and redirect URI (a 400 page), then
/// the request (an error redirect), then answers with a code.
fn authorize(shared: &Shared, query: &[(String, String)]) -> HttpResponse {
    let kind = shared.kind;
    let (client_id, _) = client(kind);
    if first(query, "client_id") != Some(client_id) {
        return error_page(
            "invalid_client_id",
            "The client_id is not that of a registered app.",
        );
    }
    let registered = shared.lock().oauth.redirect_uri.clone();
    let raw_redirect = first(query, "redirect_uri").unwrap_or("");
    let redirect_uri = match url::Url::parse(raw_redirect) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && registered.as_deref().is_none_or(|r| r == raw_redirect) =>
        {
            u
        }
        _ => {
            return error_page(
                "redirect_uri_mismatch",
                "The redirect_uri is missing or not the one registered for the app.",
            );
        }
    };
    let state = first(query, "state").unwrap_or("");
    let fail = |error: &str, description: &str| {
        let mut params = vec![("error", error), ("error_description", description)];
        if !state.is_empty() {
            params.push(("state", state));
        }
        redirect(&redirect_uri, &params)
    };
    if first(query, "response_type") != Some("code") {
        return fail("unsupported_response_type", "response_type must be code");
    }
    let scope = match first(query, "scope") {
        // Salesforce grants the connected app's scopes when none is asked for.
        None if kind == Kind::Salesforce => "api refresh_token".to_owned(),
        None => String::new(),
        // Zoho separates scopes with commas, the others with spaces.
        Some(s) => s
            .split(|c: char| c.is_whitespace() || (kind == Kind::Zoho && c == ','))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    };
    if scope.is_empty() || !scope.split(' ').all(|s| known_scope(kind, s)) {
        return fail(
            "invalid_scope",
            "scope is missing or names a scope the provider does not have",
        );
    }
    let challenge = match (
        first(query, "code_challenge"),
        first(query, "code_challenge_method"),
    ) {
        (None, _) => None,
        (Some(c), m @ (None | Some("plain" | "S256"))) => {
            Some((c.to_owned(), m.unwrap_or("plain").to_owned()))
        }
        (Some(_), Some(_)) => {
            return fail(
                "invalid_request",
                "code_challenge_method must be S256 or plain",
            );
        }
    };
    let mut oauth_state = shared.lock();
    if oauth_state.oauth.user_denies {
        drop(oauth_state);
        return fail("access_denied", "end-user denied authorization");
    }
    let code = random_token("");
    oauth_state.oauth.codes.insert(
        code.clone(),
        CodeGrant {
            redirect_uri: raw_redirect.to_owned(),
            scope,
            challenge,
            offline: first(query, "access_type") == Some("offline"),
            expires: Instant::now() + CODE_TTL,
        },
    );
    drop(oauth_state);
    let mut params = vec![("code", code.as_str())];
    if !state.is_empty() {
        params.push(("state", state));
    }
    if kind == Kind::QuickBooks {
        params.push(("realmId", QUICKBOOKS_REALM_ID));
    }
    if kind == Kind::Zoho {
        params.push(("location", "us"));
        params.push(("accounts-server", shared.origin.as_str()));
    }
    redirect(&redirect_uri, &params)
}

/// Why a grant was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    BadCode,
    RedirectMismatch,
    BadVerifier,
    BadRefresh,
    BadClient,
    UnsupportedGrant,
}

/// The provider's answer to a refused token request.
fn refused(kind: Kind, why: Refusal) -> HttpResponse {
    if kind == Kind::Zoho {
        // Zoho answers a refused grant with a 200 and a bare error code.
        let error = match why {
            Refusal::BadClient => "invalid_client",
            Refusal::RedirectMismatch => "invalid_redirect_uri",
            Refusal::UnsupportedGrant => "unsupported_grant_type",
            Refusal::BadCode | Refusal::BadVerifier | Refusal::BadRefresh => "invalid_code",
        };
        return HttpResponse::Ok().json(json!({ "error": error }));
    }
    if why == Refusal::BadClient {
        return HttpResponse::Unauthorized().json(
            json!({"error": "invalid_client", "error_description": "invalid client credentials"}),
        );
    }
    let body = if kind == Kind::HubSpot {
        let (status, message) = match why {
            Refusal::BadRefresh => ("BAD_REFRESH_TOKEN", "missing or invalid refresh token"),
            Refusal::RedirectMismatch => (
                "BAD_REDIRECT_URI",
                "redirect_uri does not match initial redirect_uri",
            ),
            Refusal::UnsupportedGrant => (
                "BAD_GRANT_TYPE",
                "grant_type must be authorization_code or refresh_token",
            ),
            _ => ("BAD_AUTH_CODE", "missing or unknown auth code"),
        };
        json!({"status": status, "message": message, "correlationId": request_id()})
    } else {
        let (error, description) = match (why, kind) {
            (Refusal::BadRefresh, Kind::Salesforce) => {
                ("invalid_grant", "expired access/refresh token")
            }
            (Refusal::BadRefresh, _) => (
                "invalid_grant",
                "the refresh token is invalid, expired or already used",
            ),
            (Refusal::RedirectMismatch, _) => (
                "invalid_grant",
                "redirect_uri must match the one of the authorization request",
            ),
            (Refusal::BadVerifier, _) => ("invalid_grant", "invalid code verifier"),
            (Refusal::UnsupportedGrant, _) => {
                ("unsupported_grant_type", "grant type not supported")
            }
            _ => ("invalid_grant", "invalid authorization code"),
        };
        json!({"error": error, "error_description": description})
    };
    HttpResponse::BadRequest().json(body)
}

/// `(client_id, client_secret)` from `Authorization: Basic`.
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Whether the request authenticates the registered client the way the
/// provider wants it: HTTP Basic on QuickBooks and Xero, form fields on
/// HubSpot and Zoho (which also takes them in the query string), either on
/// Salesforce.
fn client_ok(kind: Kind, req: &HttpRequest, form: &[(String, String)]) -> bool {
    let (id, secret) = client(kind);
    let basic = basic_credentials(req).is_some_and(|(i, s)| i == id && s == secret);
    let fields =
        first(form, "client_id") == Some(id) && first(form, "client_secret") == Some(secret);
    match kind {
        Kind::QuickBooks | Kind::Xero => basic,
        Kind::HubSpot | Kind::Zoho => fields,
        _ => basic || fields,
    }
}

/// `POST token`.
fn token(shared: &Shared, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    let kind = shared.kind;
    let mut form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    if kind == Kind::Zoho {
        // Zoho's own examples put the grant in the query string.
        form.extend(url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned());
    }
    let grant_type = first(&form, "grant_type");
    if !client_ok(kind, req, &form) {
        return refused(kind, Refusal::BadClient);
    }
    let granted = match grant_type {
        Some("authorization_code") => exchange_code(shared, &form),
        Some("refresh_token") => refresh(shared, &form),
        _ => Err(Refusal::UnsupportedGrant),
    };
    match granted {
        Ok(grant) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("Pragma", "no-cache"))
            .json(answer(shared, grant)),
        Err(why) => refused(kind, why),
    }
}

/// What a successful grant hands out.
struct Grant {
    access_token: String,
    /// The refresh token to answer, if the provider sends one here.
    refresh_token: Option<String>,
    scope: String,
    ttl: Duration,
}

/// Issues an access token (and stores it) for a grant of `scope`.
fn issue_access(state: &mut State, kind: Kind) -> (String, Duration) {
    let prefix = match kind {
        Kind::HubSpot => "CNf",
        Kind::Salesforce => "00DFk000000FAKE!AQ",
        Kind::QuickBooks => "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.",
        Kind::Zoho => "1000.",
        _ => "eyJhbGciOiJSUzI1NiJ9.",
    };
    let token = random_token(prefix);
    let ttl = state.oauth.ttl(kind);
    state
        .oauth
        .access
        .insert(token.clone(), Instant::now() + ttl);
    (token, ttl)
}

fn exchange_code(shared: &Shared, form: &[(String, String)]) -> Result<Grant, Refusal> {
    let kind = shared.kind;
    let mut state = shared.lock();
    // A code is single use: it is gone at the first attempt, good or bad.
    let grant = first(form, "code")
        .and_then(|c| state.oauth.codes.remove(c))
        .filter(|g| g.expires > Instant::now())
        .ok_or(Refusal::BadCode)?;
    if first(form, "redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(Refusal::RedirectMismatch);
    }
    if let Some((challenge, method)) = &grant.challenge {
        let verifier = first(form, "code_verifier").ok_or(Refusal::BadVerifier)?;
        let computed = match method.as_str() {
            "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            _ => verifier.to_owned(),
        };
        if computed != *challenge {
            return Err(Refusal::BadVerifier);
        }
    }
    let (access_token, ttl) = issue_access(&mut state, kind);
    let scopes: Vec<&str> = grant.scope.split(' ').collect();
    // Salesforce and Xero hand out a refresh token only for the scope that asks for one.
    let wants_refresh = match kind {
        Kind::Salesforce => scopes.contains(&"refresh_token") || scopes.contains(&"offline_access"),
        Kind::Xero => scopes.contains(&"offline_access"),
        Kind::Zoho => grant.offline,
        _ => true,
    };
    let refresh_token = wants_refresh.then(|| {
        let t = random_token("");
        state.oauth.refresh.insert(t.clone(), grant.scope.clone());
        t
    });
    Ok(Grant {
        access_token,
        refresh_token,
        scope: grant.scope,
        ttl,
    })
}

fn refresh(shared: &Shared, form: &[(String, String)]) -> Result<Grant, Refusal> {
    let kind = shared.kind;
    let rotates = matches!(kind, Kind::QuickBooks | Kind::Xero);
    let mut state = shared.lock();
    let old = first(form, "refresh_token").ok_or(Refusal::BadRefresh)?;
    let scope = state
        .oauth
        .refresh
        .get(old)
        .cloned()
        .ok_or(Refusal::BadRefresh)?;
    let (access_token, ttl) = issue_access(&mut state, kind);
    let refresh_token = if rotates {
        state.oauth.refresh.remove(old);
        let new = random_token("");
        state.oauth.refresh.insert(new.clone(), scope.clone());
        Some(new)
    } else if kind == Kind::HubSpot {
        Some(old.to_owned())
    } else {
        // Salesforce does not send the refresh token again.
        None
    };
    Ok(Grant {
        access_token,
        refresh_token,
        scope,
        ttl,
    })
}

/// The token endpoint's success body, in the provider's shape.
fn answer(shared: &Shared, grant: Grant) -> Value {
    let expires_in = grant.ttl.as_secs();
    match shared.kind {
        Kind::HubSpot => json!({
            "token_type": "bearer",
            "refresh_token": grant.refresh_token,
            "access_token": grant.access_token,
            "expires_in": expires_in,
        }),
        Kind::Salesforce => salesforce_answer(shared, grant),
        Kind::Zoho => {
            let mut body = json!({
                "access_token": grant.access_token,
                "scope": grant.scope,
                "api_domain": shared.origin,
                "token_type": "Bearer",
                "expires_in": expires_in,
            });
            if let Some(r) = grant.refresh_token {
                body["refresh_token"] = json!(r);
            }
            body
        }
        Kind::QuickBooks => json!({
            "token_type": "bearer",
            "expires_in": expires_in,
            "refresh_token": grant.refresh_token,
            "x_refresh_token_expires_in": 8_726_400,
            "access_token": grant.access_token,
        }),
        _ => {
            let mut body = json!({
                "access_token": grant.access_token,
                "expires_in": expires_in,
                "token_type": "Bearer",
                "scope": grant.scope,
            });
            if let Some(r) = grant.refresh_token {
                body["refresh_token"] = json!(r);
            }
            if grant.scope.split(' ').any(|s| s == "openid") {
                body["id_token"] = json!(id_token(shared));
            }
            body
        }
    }
}

fn hmac_sha256(key: &str, data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Salesforce: `instance_url`, an identity URL, `issued_at` in ms and the
/// `signature` (base64 HMAC-SHA256 of `id + issued_at` with the secret).
fn salesforce_answer(shared: &Shared, grant: Grant) -> Value {
    let (_, secret) = client(Kind::Salesforce);
    let id = format!("{}/id/00DFk000000FAKEMAA/005Fk000000FAKEIAA", shared.origin);
    let issued_at = Utc::now().timestamp_millis().to_string();
    let signature = STANDARD.encode(hmac_sha256(secret, format!("{id}{issued_at}").as_bytes()));
    let mut body = json!({
        "access_token": grant.access_token,
        "signature": signature,
        "scope": grant.scope,
        "instance_url": shared.origin,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
    });
    if let Some(r) = grant.refresh_token {
        body["refresh_token"] = json!(r);
    }
    body
}

/// Xero's OpenID Connect `id_token`: a JWT about the consenting user (signed
/// HS256 with the client secret here; Xero signs RS256).
fn id_token(shared: &Shared) -> String {
    let (client_id, secret) = client(Kind::Xero);
    let now = Utc::now().timestamp();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        json!({
            "nbf": now,
            "exp": now + 300,
            "iss": shared.origin,
            "aud": client_id,
            "iat": now,
            "sub": "a3a4dbafh3495a808ed7a7b964388f53",
            "xero_userid": "1945393b-6eb7-4143-b083-7ab26cd7690b",
            "email": "owner@fakefreight.example.com",
            "given_name": "Fake",
            "family_name": "Owner",
        })
        .to_string(),
    );
    let signing_input = format!("{header}.{claims}");
    let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}
