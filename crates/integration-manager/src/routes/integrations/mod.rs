//! The provider catalog (and the operator's per-tenant visibility of its
//! providers) and a tenant's integrations: CRUD, connection tests,
//! enable/disable, health and call statistics.

pub mod body;
pub mod input;

use super::list::{ListParams, ListQuery, status_filter, upper};
use super::{Call, begin, commit, emit, event, find, find_for_update};
use crate::state::{Integrations, catalog};
use actix_web::{HttpResponse, web};
use body::{IntegrationFilter, IntegrationInput, ProviderQuery, TestResult, Visibility};
use chrono::Utc;
use hub_connectors::manifest::{ProviderManifest, ProviderStatus};
use hub_domain::schedule::next_run_of;
use hub_domain::status::IntegrationStatus;
use hub_domain::webhook::BreakerState;
use hub_domain::{FieldError, TenantId};
use hub_gateway::engine::Gateway;
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, ErrorCode, Problem};
use hub_platform::server::Context;
use hub_storage::StorageError;
use hub_storage::integrations::{self as store, Integration};
use hub_storage::providers::Provider;
use hub_storage::schedule::set_next_sync;
use input::{Mode, ValidIntegrationPatch};
use serde_json::json;
use uuid::Uuid;

fn manifest_of(code: &str) -> Result<&'static ProviderManifest, ApiError> {
    catalog()
        .map_err(ApiError::internal)?
        .get(code)
        .ok_or_else(|| ApiError::internal(format!("provider {code} has no manifest")))
}

/// The catalog provider a new integration names (by code or row id), if
/// the tenant may use it and it can be set up, with its manifest.
async fn provider_of(
    ctx: &Context,
    t: &Tenant,
    input: &IntegrationInput,
) -> Result<(Provider, &'static ProviderManifest), ApiError> {
    use hub_storage::providers::{get_by_id, get_visible};
    let provider = match (input.provider_code.get(), input.provider_id.get()) {
        (Some(code), _) => get_visible(&ctx.pool, t.id, code).await?,
        (None, Some(id)) => match get_by_id(&ctx.pool, *id).await? {
            Some(p) => get_visible(&ctx.pool, t.id, &p.code).await?,
            None => None,
        },
        (None, None) => {
            let message = "provider_code or provider_id is required";
            return Err(FieldError::new("provider_code", message).into());
        }
    };
    let Some(provider) = provider else {
        return Err(FieldError::new("provider_code", "no such provider in the catalog").into());
    };
    let manifest = manifest_of(&provider.code)?;
    if manifest.status == ProviderStatus::ComingSoon
        || manifest.status == ProviderStatus::Deprecated
    {
        let status = manifest.status.as_str();
        let message = format!("{} is {status} and cannot be set up", provider.code);
        return Err(FieldError::new("provider_code", message).into());
    }
    Ok((provider, manifest))
}

/// A new integration of `t` with `provider` and the defaults, before its
/// body is applied.
fn new_integration(
    t: &Tenant,
    ctx: &Context,
    provider: &Provider,
    manifest: &ProviderManifest,
    environment: &str,
) -> Integration {
    let now = Utc::now();
    Integration {
        id: Uuid::now_v7(),
        tenant_id: t.id.0,
        provider_id: provider.id,
        provider_code: provider.code.clone(),
        category: provider.category.clone(),
        name: String::new(),
        description: None,
        config: json!({}),
        environment: environment.to_owned(),
        auth_type: manifest.auth_type.as_str().to_owned(),
        api_key_encrypted: None,
        oauth_tokens: None,
        oauth_expires_at: None,
        basic_auth_encrypted: None,
        oauth_client_encrypted: None,
        oauth_refresh_expires_at: None,
        oauth_refreshed_at: None,
        oauth_retry_at: None,
        oauth_failures: 0,
        oauth_tenants: None,
        credentials_hint: json!({}),
        status: IntegrationStatus::PendingAuth,
        last_successful_call: None,
        last_error: None,
        last_error_at: None,
        error_count: 0,
        is_enabled: true,
        retry_enabled: true,
        max_retries: ctx.config.default_max_retries.min(10) as i32,
        timeout_seconds: ctx.config.default_timeout_seconds.min(300) as i32,
        rate_limit_requests: None,
        rate_limit_window_seconds: None,
        sync_frequency: None,
        last_sync_at: None,
        next_sync_at: None,
        external_id: None,
        source_system: None,
        custom_fields: json!({}),
        export_events: Vec::new(),
        created_at: now,
        updated_at: now,
        created_by_key: Some(t.api_key_id.0),
        updated_by_key: Some(t.api_key_id.0),
    }
}

/// Sets `next_sync_at` for the row's `sync_frequency` (just set or changed):
/// the first scheduled sync counts from now; none for `MANUAL` or none.
fn schedule(row: &mut Integration) {
    row.next_sync_at = next_run_of(row.sync_frequency.as_deref(), Utc::now());
}

/// Creates an integration (status `PENDING_AUTH` until a connection test passes).
#[utoipa::path(post, path = "/api/v1/integrations", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    request_body = IntegrationInput,
    responses((status = 201, body = Integration),
        (status = 409, description = "The tenant already has this provider in this environment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, one error each", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    Call { t, ctx }: Call,
    st: web::Data<Integrations>,
    body: web::Json<IntegrationInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let (provider, manifest) = provider_of(&ctx, &t, &input).await?;
    // Credentials may come later (PUT); the integration waits in PENDING_AUTH.
    let valid = ValidIntegrationPatch::parse(input, Mode::Create, manifest, &st)?;
    let mut row = new_integration(&t, &ctx, &provider, manifest, valid.environment());
    valid.apply(&mut row, &st.keyring);
    schedule(&mut row);
    let mut tx = begin(&ctx).await?;
    match store::insert(&mut tx, &row).await {
        Err(StorageError::Conflict { .. }) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "this tenant already has a {} integration in {}; update it or use another environment",
                    row.provider_code, row.environment
                ),
            ));
        }
        other => other?,
    }
    if row.next_sync_at.is_some() {
        set_next_sync(&mut tx, t.id, row.id, row.next_sync_at).await?;
    }
    let data = json!({"integration": row, "actor_api_key_id": t.api_key_id});
    emit(&mut tx, "integration.created", t.id, data).await?;
    commit(tx).await?;
    let stored = store::get(&ctx.pool, t.id, row.id)
        .await?
        .ok_or_else(|| ApiError::internal("integration vanished after insert"))?;
    Ok(HttpResponse::Created().json(stored))
}

/// The tenant's integrations.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(IntegrationFilter, ListParams), responses((status = 200, description = "`{data: [Integration], next_cursor}`")))]
pub async fn list(
    Call { t, ctx }: Call,
    ListQuery { filter: q, paging }: ListQuery<IntegrationFilter>,
) -> Result<HttpResponse, ApiError> {
    let status = status_filter("status", &q.status)?;
    let (provider, category, environment) = (
        upper(&q.provider),
        upper(&q.category),
        upper(&q.environment),
    );
    let filter = store::Filter {
        status,
        provider: provider.as_deref(),
        category: category.as_deref(),
        environment: environment.as_deref(),
    };
    let rows = store::list(&ctx.pool, t.id, &filter, paging.cursor, paging.fetch()).await?;
    Ok(HttpResponse::Ok().json(paging.page_of(rows)))
}

/// One integration.
#[utoipa::path(get, path = "/api/v1/integrations/{id}", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Integration), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(Call { t, ctx }: Call, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(find::<Integration>(&ctx, &t, *id).await?))
}

/// Updates any of the mutable fields. New credentials need a new connection
/// test (status back to `PENDING_AUTH`).
#[utoipa::path(put, path = "/api/v1/integrations/{id}", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body = IntegrationInput,
    responses((status = 200, body = Integration), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    Call { t, ctx }: Call,
    st: web::Data<Integrations>,
    gw: web::Data<Gateway>,
    id: web::Path<Uuid>,
    body: web::Json<IntegrationInput>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = begin(&ctx).await?;
    let mut row: Integration = find_for_update(&mut tx, &t, *id).await?;
    let manifest = manifest_of(&row.provider_code)?;
    let changed = ValidIntegrationPatch::parse(body.into_inner(), Mode::Update, manifest, &st)?
        .apply(&mut row, &st.keyring);
    // New credentials are untested; a paused integration stays paused.
    if changed.contains("credentials") && row.is_enabled {
        row.status = IntegrationStatus::PendingAuth;
    }
    row.updated_by_key = Some(t.api_key_id.0);
    if !changed.is_empty() {
        store::update(&mut tx, &row).await?;
        if changed.contains("sync_frequency") {
            schedule(&mut row);
            set_next_sync(&mut tx, t.id, row.id, row.next_sync_at).await?;
        }
        let data = json!({"id": row.id, "changed": changed, "actor_api_key_id": t.api_key_id});
        emit(&mut tx, "integration.updated", t.id, data).await?;
    }
    commit(tx).await?;
    gw.forget(*id);
    Ok(HttpResponse::Ok().json(find::<Integration>(&ctx, &t, *id).await?))
}

/// Deletes an integration (its logs and jobs are kept).
#[utoipa::path(delete, path = "/api/v1/integrations/{id}", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    Call { t, ctx }: Call,
    gw: web::Data<Gateway>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = begin(&ctx).await?;
    if !store::delete(&mut tx, t.id, *id, t.api_key_id.0).await? {
        return Err(ApiError::not_found("integration"));
    }
    let data = json!({"id": *id, "actor_api_key_id": t.api_key_id});
    emit(&mut tx, "integration.deleted", t.id, data).await?;
    commit(tx).await?;
    gw.forget(*id);
    Ok(HttpResponse::NoContent().finish())
}

/// The providers this tenant may use.
#[utoipa::path(get, path = "/api/v1/integrations/providers", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(ProviderQuery), responses((status = 200, body = ProviderPage)))]
pub async fn list_providers(
    Call { t, ctx }: Call,
    q: web::Query<ProviderQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    // Postgres text cannot hold NUL: refused here rather than failing the
    // query (a 500).
    for (name, value) in [
        ("q", &q.q),
        ("category", &q.category),
        ("status", &q.status),
    ] {
        if value.as_deref().is_some_and(|v| v.contains('\0')) {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("{name}: must not contain NUL characters"),
            ));
        }
    }
    let upper = |s: Option<String>| {
        s.map(|v| v.trim().to_ascii_uppercase())
            .filter(|v| !v.is_empty())
    };
    let text = q.q.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let rows = hub_storage::providers::list_visible(
        &ctx.pool,
        t.id,
        upper(q.category).as_deref(),
        upper(q.status).as_deref(),
        text.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(ProviderPage {
        data: rows,
        next_cursor: None,
    }))
}

/// The providers a tenant may use, as every list answers: the catalog is
/// small, so it is one page.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ProviderPage {
    /// The providers.
    pub data: Vec<Provider>,
    /// Always `null`: the whole catalog is one page.
    pub next_cursor: Option<String>,
}

/// One provider.
#[utoipa::path(get, path = "/api/v1/integrations/providers/{code}", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("code" = String, Path, description = "Provider code")),
    responses((status = 200, body = Provider), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_provider(
    Call { t, ctx }: Call,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = hub_storage::providers::get_visible(&ctx.pool, t.id, &code)
        .await?
        .ok_or_else(|| ApiError::not_found("provider"))?;
    Ok(HttpResponse::Ok().json(p))
}

/// Hides or shows a provider for a tenant (operator).
#[utoipa::path(put, path = "/api/v1/admin/tenants/{id}/providers/{code}/visibility", tag = "admin", security(("admin_token" = [])),
    params(("id" = Uuid, Path), ("code" = String, Path)), request_body = Visibility,
    responses((status = 200), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn set_visibility(
    _: hub_platform::auth::Admin,
    ctx: web::Data<Context>,
    path: web::Path<(Uuid, String)>,
    body: web::Json<Visibility>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, code) = path.into_inner();
    hub_storage::tenants::get(&ctx.pool, TenantId(tenant))
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    if !hub_storage::providers::set_hidden(&ctx.pool, TenantId(tenant), &code, body.hidden).await? {
        return Err(ApiError::not_found("provider"));
    }
    Ok(HttpResponse::Ok().json(json!({"tenant_id": tenant, "provider_code": code.to_ascii_uppercase(), "hidden": body.hidden})))
}

/// Runs the provider's test call through the gateway and records the
/// outcome on the integration.
pub(crate) async fn run_test(
    ctx: &Context,
    gw: &Gateway,
    t: &Tenant,
    id: Uuid,
) -> Result<(TestResult, Integration), ApiError> {
    gw.forget(id);
    let it = gw
        .load(t.id, id)
        .await
        .map_err(super::proxy::api_error)?
        .ok_or_else(|| ApiError::not_found("integration"))?;
    let outcome = gw.test(&it).await;
    let result = TestResult {
        ok: outcome.ok,
        status: outcome.status,
        latency_ms: outcome.latency_ms,
        error: outcome.error,
    };
    let row = record_test(ctx, t, id, &result).await?;
    gw.forget(id);
    Ok((result, row))
}

/// Records a test's outcome on the integration, with its events.
async fn record_test(
    ctx: &Context,
    t: &Tenant,
    id: Uuid,
    outcome: &TestResult,
) -> Result<Integration, ApiError> {
    let mut tx = begin(ctx).await?;
    let mut row: Integration = find_for_update(&mut tx, t, id).await?;
    let now = Utc::now();
    let mut events = Vec::new();
    if outcome.ok {
        row.last_successful_call = Some(now);
        row.error_count = 0;
        // A paused (disabled) integration stays paused until `enable`.
        if row.is_enabled
            && matches!(
                row.status,
                IntegrationStatus::PendingAuth | IntegrationStatus::Error
            )
        {
            row.status = IntegrationStatus::Active;
            events.push(event(
                "integration.connected",
                t.id,
                json!({"id": row.id, "status": row.status}),
            ));
        }
    } else {
        row.last_error = outcome.error.clone();
        row.last_error_at = Some(now);
        row.error_count += 1;
        events.push(event(
            "integration.error",
            t.id,
            json!({"id": row.id, "status": outcome.status, "error": outcome.error}),
        ));
        if row.status == IntegrationStatus::Active {
            row.status = IntegrationStatus::Error;
            events.push(event(
                "integration.disconnected",
                t.id,
                json!({"id": row.id, "error": outcome.error}),
            ));
        }
    }
    store::update(&mut tx, &row).await?;
    hub_storage::outbox::enqueue(&mut tx, &events).await?;
    commit(tx).await?;
    Ok(row)
}

/// Tests the connection with the provider's test call.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/test", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = TestResult), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn test(
    Call { t, ctx }: Call,
    gw: web::Data<Gateway>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (result, _) = run_test(&ctx, &gw, &t, *id).await?;
    Ok(HttpResponse::Ok().json(result))
}

/// Enables an integration after a passing connection test (409 with the
/// provider's error when it fails).
#[utoipa::path(post, path = "/api/v1/integrations/{id}/enable", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Integration), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn enable(
    Call { t, ctx }: Call,
    gw: web::Data<Gateway>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (result, _) = run_test(&ctx, &gw, &t, *id).await?;
    if !result.ok {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "connection test failed: {}",
                result
                    .error
                    .clone()
                    .unwrap_or_else(|| "unknown error".into())
            ),
        )
        .with_extension("test", serde_json::to_value(&result).unwrap_or_default()));
    }
    set_enabled(&ctx, &gw, &t, *id, true).await
}

/// Disables (pauses) an integration; its configuration is kept.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/disable", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Integration), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn disable(
    Call { t, ctx }: Call,
    gw: web::Data<Gateway>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    set_enabled(&ctx, &gw, &t, *id, false).await
}

async fn set_enabled(
    ctx: &Context,
    gw: &Gateway,
    t: &Tenant,
    id: Uuid,
    enabled: bool,
) -> Result<HttpResponse, ApiError> {
    let mut tx = begin(ctx).await?;
    let mut row: Integration = find_for_update(&mut tx, t, id).await?;
    let was = (row.is_enabled, row.status);
    row.is_enabled = enabled;
    row.status = if enabled {
        IntegrationStatus::Active
    } else {
        IntegrationStatus::Paused
    };
    row.updated_by_key = Some(t.api_key_id.0);
    if was != (row.is_enabled, row.status) {
        store::update(&mut tx, &row).await?;
        let kind = if enabled {
            "integration.connected"
        } else {
            "integration.disconnected"
        };
        let data = json!({"id": row.id, "status": row.status, "actor_api_key_id": t.api_key_id});
        emit(&mut tx, kind, t.id, data).await?;
    }
    commit(tx).await?;
    gw.forget(id);
    Ok(HttpResponse::Ok().json(find::<Integration>(ctx, t, id).await?))
}

/// Health of one integration.
#[utoipa::path(get, path = "/api/v1/integrations/{id}/health", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "status, last success/error, error count, circuit state, rate-limit usage this hour"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn health(Call { t, ctx }: Call, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let row: Integration = find(&ctx, &t, *id).await?;
    let manifest = manifest_of(&row.provider_code)?;
    let used = hub_storage::api_logs::usage_this_hour(&ctx.pool, t.id, row.id).await?;
    let circuit = store::circuit_state(&ctx.pool, row.id)
        .await?
        .unwrap_or_else(|| BreakerState::Closed.as_str().to_owned());
    let limit = hub_domain::gateway::RateLimit::resolve(
        row.rate_limit_requests
            .zip(row.rate_limit_window_seconds)
            .and_then(|(r, w)| Some((u32::try_from(r).ok()?, u32::try_from(w).ok()?))),
        Some((
            manifest.rate_limit.requests,
            manifest.rate_limit.window_seconds,
        )),
        (
            ctx.config.default_rate_limit,
            ctx.config.rate_limit_window_seconds,
        ),
    );
    let window = hub_storage::gateway::window_usage(&ctx.pool, row.id).await?;
    let blocked_until = hub_storage::gateway::blocked_until(&ctx.pool, row.id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "id": row.id,
        "status": row.status,
        "is_enabled": row.is_enabled,
        "last_successful_call": row.last_successful_call,
        "last_error": row.last_error,
        "last_error_at": row.last_error_at,
        "error_count": row.error_count,
        "circuit_state": circuit,
        "rate_limit": {
            "used_this_hour": used, "limit_per_hour": limit.per_hour(),
            "requests": limit.requests, "window_seconds": limit.window_seconds,
            "overridden": row.rate_limit_requests.is_some(),
            "used_this_window": window.map_or(0, |(used, _)| used),
            "provider_blocked_until": blocked_until,
        },
    })))
}

/// Call statistics by hour over the last 24 hours.
#[utoipa::path(get, path = "/api/v1/integrations/{id}/stats", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "calls, errors, p50/p95 latency per hour"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn stats(Call { t, ctx }: Call, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let row: Integration = find(&ctx, &t, *id).await?;
    let hours = store::hourly_stats(&ctx.pool, t.id, row.id).await?;
    let calls: i64 = hours.iter().map(|h| h.calls).sum();
    let errors: i64 = hours.iter().map(|h| h.errors).sum();
    let usage = hub_storage::api_logs::hourly_usage(&ctx.pool, t.id, row.id, 24).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": row.id, "window_hours": 24, "calls": calls, "errors": errors, "hours": hours, "usage": usage })))
}
