//! OAuth2 connections (issue 27, item 1):
//!
//! - `POST /api/v1/integrations/{id}/oauth/authorize`: for the
//!   authorization-code grant, the provider's consent page with a state (32
//!   random bytes, base64url; stored as its SHA-256, bound to tenant and
//!   integration, single use, 10 minutes) and, where the manifest says
//!   `pkce`, an S256 challenge (its verifier sealed with the state). For the
//!   client-credentials and password grants, the tokens are fetched at once
//!   and the connected integration is answered. DAT's two-step token is not
//!   a standard grant (`nonstandard_token_flow`): 409, not a fake.
//! - `GET /oauth/callback` (public, no API key): consumes the state (unknown,
//!   used or expired: 400 and nothing changes), exchanges the code (client
//!   authentication per the manifest's `client_auth`), seals and stores the
//!   tokens and their expiries, records the provider's extras (Salesforce
//!   `instance_url` and Zoho `api_domain` from the token answer, QuickBooks
//!   `realmId` from the redirect into `config.realm_id`, Xero's tenants from
//!   its `/connections` into `oauth_tenants` and the first into
//!   `config.xero_tenant_id`), then runs the connection test, which moves the
//!   integration out of `PENDING_AUTH` and emits `integration.connected`.
//! - `POST /api/v1/integrations/{id}/refresh-oauth`: refreshes now through
//!   [`hub_gateway::tokens::Tokens`] (once across replicas).
//!
//! The OAuth app is the integration's (`credentials.client_id` and
//! `client_secret`, see [`crate::credentials`]); the redirect URI is
//! `HUB_PUBLIC_URL` + `/oauth/callback`; `config.oauth_authorize_url` and
//! `config.oauth_token_url` override the manifest's URLs.

pub mod body;

use super::integrations::run_test;
use super::{Call, begin, commit, find, optional_json};
use crate::state::{Integrations, catalog};
use actix_web::{HttpResponse, web};
use body::{AuthorizeAnswer, AuthorizeInput, CallbackQuery, Connected, Refreshed};
use chrono::Utc;
use hub_connectors::manifest::{GrantType, OAuthConfig, ProviderManifest};
use hub_connectors::oauth::{self, ClientApp, Grant, TokenAnswer, TokenFailure};
use hub_domain::ids::ApiKeyId;
use hub_domain::{FieldError, TenantId};
use hub_gateway::credentials as sealed;
use hub_gateway::engine::Gateway;
use hub_gateway::tokens::{TokenError, Tokens};
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, ErrorCode, Problem};
use hub_platform::server::Context;
use hub_storage::integrations::{self as store, Integration};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// How long a state is accepted.
const STATE_TTL_MINUTES: i64 = 10;
/// Timeout of one token-endpoint or discovery call made by a route.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// The integration's provider manifest and its OAuth section, or 409.
fn oauth_of(
    row: &Integration,
) -> Result<(&'static ProviderManifest, &'static OAuthConfig), ApiError> {
    let manifest = catalog()
        .map_err(ApiError::internal)?
        .get(&row.provider_code)
        .ok_or_else(|| {
            ApiError::internal(format!("provider {} has no manifest", row.provider_code))
        })?;
    let oauth = manifest.oauth.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Conflict,
            format!(
                "{} does not use OAuth2 (its auth type is {})",
                row.provider_code, manifest.auth_type
            ),
        )
    })?;
    Ok((manifest, oauth))
}

/// The integration's OAuth app, or 422 naming the missing fields.
fn app_of(row: &Integration, st: &Integrations) -> Result<ClientApp, ApiError> {
    sealed::open_client(row, &st.keyring)
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::from(FieldError::new(
                "credentials.client_id",
                "is required to connect with OAuth: set credentials.client_id and credentials.client_secret (PUT the integration)",
            ))
        })
}

/// `HUB_PUBLIC_URL` + `/oauth/callback`.
fn redirect_uri(ctx: &Context) -> String {
    format!(
        "{}/oauth/callback",
        ctx.config.hub_public_url.trim_end_matches('/')
    )
}

/// Whether `url` is on the origin of `HUB_PUBLIC_URL`.
fn on_public_origin(ctx: &Context, url: &str) -> bool {
    match (
        url::Url::parse(url),
        url::Url::parse(&ctx.config.hub_public_url),
    ) {
        (Ok(u), Ok(public)) => u.origin() == public.origin(),
        _ => false,
    }
}

/// Checks the optional authorize body (every field error at once).
fn check_input(ctx: &Context, input: &AuthorizeInput) -> Result<Vec<String>, ApiError> {
    let mut errors = Vec::new();
    if let Some(r) = &input.redirect_after
        && !on_public_origin(ctx, r)
    {
        errors.push(FieldError::new(
            "redirect_after",
            format!(
                "must be a URL on the hub's public origin ({})",
                ctx.config.hub_public_url
            ),
        ));
    }
    let scopes = input.scopes.clone().unwrap_or_default();
    if scopes.len() > 20 {
        errors.push(FieldError::new("scopes", "at most 20 scopes"));
    }
    for (i, s) in scopes.iter().enumerate() {
        if s.is_empty() || s.len() > 200 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.push(FieldError::new(
                format!("scopes[{i}]"),
                "must be 1-200 characters without spaces",
            ));
        }
    }
    if errors.is_empty() {
        Ok(scopes)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Starts an OAuth connection: the consent page for the authorization-code
/// grant, or the tokens at once for the client-credentials and password grants.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/oauth/authorize", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body(content = Option<AuthorizeInput>),
    responses((status = 200, description = "`AuthorizeAnswer` (authorization code) or `Connected` (client credentials, password)", body = AuthorizeAnswer),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not an OAuth provider, or its token flow is not supported", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The OAuth app (client id and secret) is missing, or the body is invalid", body = Problem, content_type = "application/problem+json")))]
pub async fn authorize(
    Call { t, ctx }: Call,
    st: web::Data<Integrations>,
    gw: web::Data<Gateway>,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let row: Integration = find(&ctx, &t, *id).await?;
    let (_, oauth) = oauth_of(&row)?;
    if oauth.nonstandard_token_flow {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "{}'s token flow is not a standard OAuth2 grant and is not supported yet; give credentials.access_token instead",
                row.provider_code
            ),
        ));
    }
    // No body, `null` and `{}` all mean the defaults.
    let input: AuthorizeInput = optional_json::<Option<AuthorizeInput>>(&body)?.unwrap_or_default();
    let scopes = check_input(&ctx, &input)?;
    let app = app_of(&row, &st)?;
    match oauth.grant_type {
        GrantType::AuthorizationCode => {
            let answer = start_dance(
                &ctx,
                &st,
                &t,
                &row,
                oauth,
                &app,
                input.redirect_after,
                scopes,
            )
            .await?;
            Ok(HttpResponse::Ok().json(answer))
        }
        GrantType::ClientCredentials | GrantType::Password => {
            let basic = sealed::open(&row, &st.keyring)
                .map_err(ApiError::internal)?
                .basic;
            let grant = match (&oauth.grant_type, &basic) {
                (GrantType::Password, Some((username, password))) => Grant::Password {
                    username,
                    password,
                    scopes: &scopes,
                },
                (GrantType::Password, None) => {
                    return Err(FieldError::new(
                        "credentials.username",
                        "and credentials.password are required for this provider's password grant",
                    )
                    .into());
                }
                _ => Grant::ClientCredentials { scopes: &scopes },
            };
            let answer = oauth::request_token(
                &st.http,
                oauth,
                &row.config,
                &app,
                &grant,
                CALL_TIMEOUT,
                st.policy,
            )
            .await
            .map_err(exchange_error)?;
            let tenant = Tenant {
                id: t.id,
                api_key_id: t.api_key_id,
            };
            let connected =
                store_and_test(&ctx, &st, &gw, &tenant, row.id, oauth, answer, None).await?;
            Ok(HttpResponse::Ok().json(connected))
        }
    }
}

/// Stores a new state and answers the consent page's URL.
#[allow(clippy::too_many_arguments)]
async fn start_dance(
    ctx: &Context,
    st: &Integrations,
    t: &Tenant,
    row: &Integration,
    oauth: &OAuthConfig,
    app: &ClientApp,
    redirect_after: Option<String>,
    scopes: Vec<String>,
) -> Result<AuthorizeAnswer, ApiError> {
    let state = oauth::random_token();
    let hash = oauth::state_hash(&state);
    let verifier = oauth.pkce.then(oauth::random_token);
    let redirect = redirect_uri(ctx);
    let url = oauth::authorize_url(
        oauth,
        &row.config,
        &app.client_id,
        &redirect,
        &state,
        &scopes,
        verifier.as_deref(),
    )
    .map_err(|e| ApiError::new(ErrorCode::Conflict, e.to_string()))?;
    let expires_at = Utc::now() + chrono::Duration::minutes(STATE_TTL_MINUTES);
    let stored = hub_storage::oauth::State {
        code_verifier: verifier
            .as_deref()
            .map(|v| st.keyring.seal(&verifier_ctx(&hash), v.as_bytes())),
        state_hash: hash,
        tenant_id: t.id.0,
        integration_id: row.id,
        api_key_id: t.api_key_id.0,
        redirect_uri: redirect,
        redirect_after,
        scopes: serde_json::json!(scopes),
        expires_at,
    };
    hub_storage::oauth::insert_state(&ctx.pool, &stored).await?;
    Ok(AuthorizeAnswer {
        authorization_url: url.to_string(),
        state_expires_at: expires_at,
    })
}

/// The sealing context of a state's PKCE verifier.
fn verifier_ctx(state_hash: &str) -> String {
    format!("oauth_state:{state_hash}:code_verifier")
}

/// A failed code exchange or direct grant as an API error (never a 500:
/// the provider said no, or is away).
fn exchange_error(e: TokenFailure) -> ApiError {
    match e {
        TokenFailure::Unavailable(_) => {
            ApiError::new(ErrorCode::TokenEndpointUnavailable, e.to_string())
        }
        TokenFailure::Revoked { .. } | TokenFailure::Rejected(_) => {
            ApiError::new(ErrorCode::OAuthDenied, e.to_string())
        }
    }
}

fn bad_state(why: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidOAuthState, why.to_owned())
}

/// A provider's error code as it may be shown (letters, digits, `_.-`, at
/// most 64 characters).
fn shown_code(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c))
        .take(64)
        .collect()
}

/// Where the provider sends the browser back: exchanges the code and
/// connects the integration.
#[utoipa::path(get, path = "/oauth/callback", tag = "integrations",
    params(CallbackQuery),
    responses((status = 200, body = Connected), (status = 303, description = "To `redirect_after`"),
        (status = 400, description = "Unknown, used or expired state; access denied; code refused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The token endpoint is unavailable", body = Problem, content_type = "application/problem+json")))]
pub async fn callback(
    ctx: web::Data<Context>,
    st: web::Data<Integrations>,
    gw: web::Data<Gateway>,
    q: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let state_text = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 256);
    let Some(state_text) = state_text else {
        return Err(bad_state("state is missing"));
    };
    // Single use: consumed in its own transaction before anything else.
    let mut tx = begin(&ctx).await?;
    let state = hub_storage::oauth::consume_state(&mut tx, &oauth::state_hash(state_text)).await?;
    let Some(state) = state else {
        return Err(bad_state(
            "the state is unknown, already used or expired; start again with POST …/oauth/authorize",
        ));
    };
    commit(tx).await?;
    if let Some(error) = &q.error {
        return Err(ApiError::new(
            ErrorCode::OAuthDenied,
            format!("the provider did not grant access: {}", shown_code(error)),
        ));
    }
    let code = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidParameter, "code is missing"))?;
    let t = Tenant {
        id: TenantId(state.tenant_id),
        api_key_id: ApiKeyId(state.api_key_id),
    };
    // Deleted since, or no longer this tenant's: refused like an unknown state.
    let row = store::get(&ctx.pool, t.id, state.integration_id)
        .await?
        .ok_or_else(|| bad_state("the integration of this state no longer exists"))?;
    let (manifest, oauth) = oauth_of(&row)?;
    let app = app_of(&row, &st)?;
    let verifier = state
        .code_verifier
        .as_deref()
        .map(|s| st.keyring.open(&verifier_ctx(&state.state_hash), s))
        .transpose()
        .map_err(ApiError::internal)?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    let grant = Grant::AuthorizationCode {
        code,
        redirect_uri: &state.redirect_uri,
        verifier: verifier.as_deref(),
    };
    let answer = oauth::request_token(
        &st.http,
        oauth,
        &row.config,
        &app,
        &grant,
        CALL_TIMEOUT,
        st.policy,
    )
    .await
    .map_err(exchange_error)?;
    let mut extras = Extras::default();
    if let Some(realm) = q
        .realm_id
        .filter(|_| oauth.provides.iter().any(|p| p == "realm_id"))
    {
        extras
            .config
            .push(("realm_id".to_owned(), Value::String(realm)));
    }
    let discovered = oauth::discover_tenants(
        &st.http,
        oauth,
        &row.config,
        &answer.access_token,
        CALL_TIMEOUT,
        st.policy,
    )
    .await
    .map_err(exchange_error)?;
    if let Some(tenants) = discovered {
        if let (Some(first), Some(field)) = (
            oauth::first_tenant_id(&tenants),
            oauth.provides.iter().find(|p| p.ends_with("tenant_id")),
        ) {
            extras.config.push((field.clone(), Value::String(first)));
        }
        extras.tenants = Some(Value::Array(tenants));
    }
    check_extras(manifest, &row, &extras)?;
    let connected = store_and_test(&ctx, &st, &gw, &t, row.id, oauth, answer, Some(extras)).await?;
    match state.redirect_after.filter(|r| on_public_origin(&ctx, r)) {
        Some(to) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", to))
            .finish()),
        None => Ok(HttpResponse::Ok().json(connected)),
    }
}

/// What a connection records besides the tokens.
#[derive(Default)]
struct Extras {
    /// Config fields (`realm_id`, `xero_tenant_id`).
    config: Vec<(String, Value)>,
    /// The tenants the token may act for.
    tenants: Option<Value>,
}

/// The config with the extras must still be valid (a `realmId` that is not
/// a realm id is refused before anything is stored).
fn check_extras(
    manifest: &ProviderManifest,
    row: &Integration,
    extras: &Extras,
) -> Result<(), ApiError> {
    let mut config = row.config.clone();
    if let Some(c) = config.as_object_mut() {
        for (k, v) in &extras.config {
            c.insert(k.clone(), v.clone());
        }
    }
    manifest.validate_config(&config).map_err(|errors| {
        let detail = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::new(
            ErrorCode::OAuthDenied,
            format!("the provider's answer does not fit the integration: {detail}"),
        )
    })
}

/// Stores a token answer on the integration (under its row lock), then runs
/// the connection test, which moves it out of `PENDING_AUTH`.
#[allow(clippy::too_many_arguments)]
async fn store_and_test(
    ctx: &Context,
    st: &Integrations,
    gw: &Gateway,
    t: &Tenant,
    id: Uuid,
    oauth: &OAuthConfig,
    answer: TokenAnswer,
    extras: Option<Extras>,
) -> Result<Connected, ApiError> {
    let mut tx = begin(ctx).await?;
    let mut row: Integration = super::find_for_update(&mut tx, t, id).await?;
    sealed::apply_answer(&mut row, &st.keyring, oauth, &answer, Utc::now())
        .map_err(ApiError::internal)?;
    if let Some(extras) = extras {
        if let Some(c) = row.config.as_object_mut() {
            for (k, v) in extras.config {
                c.insert(k, v);
            }
        }
        if extras.tenants.is_some() {
            row.oauth_tenants = extras.tenants;
        }
    }
    row.updated_by_key = Some(t.api_key_id.0);
    store::update(&mut tx, &row).await?;
    hub_storage::oauth::clear_journal(&mut tx, t.id, id).await?;
    commit(tx).await?;
    let (test, row) = run_test(ctx, gw, t, id).await?;
    Ok(Connected {
        integration_id: row.id,
        status: row.status.as_str().to_owned(),
        test,
    })
}

/// Refreshes the integration's OAuth tokens now.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/refresh-oauth", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Refreshed), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not connected by OAuth, or the provider revoked the grant (`oauth_revoked`: the integration is PENDING_AUTH)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The token endpoint is unavailable", body = Problem, content_type = "application/problem+json")))]
pub async fn refresh(
    Call { t, ctx }: Call,
    tokens: web::Data<Tokens>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row: Integration = find(&ctx, &t, *id).await?;
    oauth_of(&row)?;
    if row.oauth_tokens.is_none() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the integration is not connected by OAuth; connect it with POST …/oauth/authorize",
        ));
    }
    let refreshed = tokens.refresh_now(&row).await.map_err(token_error)?;
    Ok(HttpResponse::Ok().json(Refreshed {
        integration_id: row.id,
        oauth_expires_at: refreshed.expires_at,
    }))
}

/// A [`TokenError`] as an API error.
pub fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::NotConnected(m) => ApiError::new(ErrorCode::Conflict, m),
        TokenError::Revoked(m) => ApiError::new(ErrorCode::OAuthRevoked, m),
        TokenError::Unavailable(m) => ApiError::new(ErrorCode::TokenEndpointUnavailable, m),
        TokenError::Internal(m) => ApiError::internal(m),
    }
}

/// The periodic refresh (every minute, every replica; `SKIP LOCKED` makes
/// it leader-safe): tokens expiring within 5 minutes and idle connections
/// whose refresh token has run 80% of its lifetime. Later the sync
/// scheduler's `integration.token.check-expiring` tick will drive it.
pub async fn refresh_loop(ctx: Context, tokens: Tokens) {
    let period = Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tokio::time::sleep(period) => {}
        }
        match tokens.refresh_due(100).await {
            Ok(n) if n > 0 => tracing::info!(refreshed = n, "periodic OAuth refresh"),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "periodic OAuth refresh failed; next try in a minute")
            }
        }
        if let Err(e) = hub_storage::oauth::prune_states(&ctx.pool).await {
            tracing::error!(error = %e, "pruning expired OAuth states failed");
        }
    }
}
