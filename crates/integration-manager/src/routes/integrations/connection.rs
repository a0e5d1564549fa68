//! An integration's connection: the provider's test call (and enabling,
//! which needs it to pass), disabling, health and call statistics.

use super::body::{IntegrationBody, TestResult};
use super::{find, find_for_update, manifest_of};
use crate::credentials;
use crate::routes::{begin, commit, emit, event};
use crate::state::Integrations;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use hub_connectors::client::test_connection;
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, ErrorCode, Problem};
use hub_platform::server::Context;
use hub_storage::integrations::{self as store, Integration};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// Runs the provider's test call and records the outcome on the integration.
async fn run_test(
    ctx: &Context,
    st: &Integrations,
    t: &Tenant,
    id: Uuid,
) -> Result<(TestResult, Integration), ApiError> {
    let row = find(ctx, t, id).await?;
    let manifest = manifest_of(&row.provider_code)?;
    let creds = credentials::open(&row, &st.keyring).map_err(ApiError::internal)?;
    let timeout = Duration::from_secs(u64::try_from(row.timeout_seconds.max(1)).unwrap_or(30));
    let outcome =
        match test_connection(&st.http, manifest, &row.config, &creds, timeout, st.policy).await {
            Ok(o) => o,
            // Not even attempted (no credentials, forbidden target, …): no
            // call to log, but the failure is recorded on the integration.
            Err(e) => {
                let result = TestResult {
                    ok: false,
                    status: None,
                    latency_ms: 0,
                    error: Some(e.to_string()),
                };
                let row = record_test(ctx, t, id, &result).await?;
                return Ok((result, row));
            }
        };
    let log = store::CallLog {
        tenant_id: t.id.0,
        integration_id: row.id,
        direction: "OUTBOUND",
        method: outcome.method.clone(),
        url: outcome.url.clone(),
        path: outcome.path.clone(),
        headers: outcome.request_headers.clone(),
        response_status: outcome.status.map(i32::from),
        response_body: if ctx.config.log_response_bodies {
            outcome.response_excerpt.clone()
        } else {
            None
        },
        response_time_ms: i32::try_from(outcome.latency_ms).unwrap_or(i32::MAX),
        status: outcome.class,
        error_message: outcome.error.clone(),
        correlation_id: None,
    };
    store::log_call(&ctx.pool, &log).await?;
    let result = TestResult {
        ok: outcome.ok,
        status: outcome.status,
        latency_ms: outcome.latency_ms,
        error: outcome.error,
    };
    let row = record_test(ctx, t, id, &result).await?;
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
    let mut row = find_for_update(&mut tx, t, id).await?;
    let now = Utc::now();
    let mut events = Vec::new();
    if outcome.ok {
        row.last_successful_call = Some(now);
        row.error_count = 0;
        // A paused (disabled) integration stays paused until `enable`.
        if row.is_enabled && matches!(row.status.as_str(), "PENDING_AUTH" | "ERROR") {
            row.status = "ACTIVE".into();
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
        if row.status == "ACTIVE" {
            row.status = "ERROR".into();
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
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Integrations>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (result, _) = run_test(&ctx, &st, &t, *id).await?;
    Ok(HttpResponse::Ok().json(result))
}

/// Enables an integration after a passing connection test (409 with the
/// provider's error when it fails).
#[utoipa::path(post, path = "/api/v1/integrations/{id}/enable", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = IntegrationBody), (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn enable(
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Integrations>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (result, _) = run_test(&ctx, &st, &t, *id).await?;
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
    set_enabled(&ctx, &t, *id, true).await
}

/// Disables (pauses) an integration; its configuration is kept.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/disable", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = IntegrationBody), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn disable(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    set_enabled(&ctx, &t, *id, false).await
}

async fn set_enabled(
    ctx: &Context,
    t: &Tenant,
    id: Uuid,
    enabled: bool,
) -> Result<HttpResponse, ApiError> {
    let mut tx = begin(ctx).await?;
    let mut row = find_for_update(&mut tx, t, id).await?;
    let was = (row.is_enabled, row.status.clone());
    row.is_enabled = enabled;
    row.status = if enabled {
        "ACTIVE".into()
    } else {
        "PAUSED".into()
    };
    row.updated_by_key = Some(t.api_key_id.0);
    if was != (row.is_enabled, row.status.clone()) {
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
    Ok(HttpResponse::Ok().json(IntegrationBody::from(&find(ctx, t, id).await?)))
}

/// Health of one integration.
#[utoipa::path(get, path = "/api/v1/integrations/{id}/health", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "status, last success/error, error count, circuit state, rate-limit usage this hour")))]
pub async fn health(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = find(&ctx, &t, *id).await?;
    let manifest = manifest_of(&row.provider_code)?;
    let used = store::calls_this_hour(&ctx.pool, t.id, row.id).await?;
    let circuit = store::circuit_state(&ctx.pool, row.id)
        .await?
        .unwrap_or_else(|| "CLOSED".into());
    let per_hour = u64::from(manifest.rate_limit.requests) * 3600
        / u64::from(manifest.rate_limit.window_seconds.max(1));
    Ok(HttpResponse::Ok().json(json!({
        "id": row.id,
        "status": row.status,
        "is_enabled": row.is_enabled,
        "last_successful_call": row.last_successful_call,
        "last_error": row.last_error,
        "last_error_at": row.last_error_at,
        "error_count": row.error_count,
        "circuit_state": circuit,
        "rate_limit": { "used_this_hour": used, "limit_per_hour": per_hour,
                        "requests": manifest.rate_limit.requests, "window_seconds": manifest.rate_limit.window_seconds },
    })))
}

/// Call statistics by hour over the last 24 hours.
#[utoipa::path(get, path = "/api/v1/integrations/{id}/stats", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "calls, errors, p50/p95 latency per hour")))]
pub async fn stats(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = find(&ctx, &t, *id).await?;
    let hours = store::hourly_stats(&ctx.pool, t.id, row.id).await?;
    let calls: i64 = hours.iter().map(|h| h.calls).sum();
    let errors: i64 = hours.iter().map(|h| h.errors).sum();
    Ok(HttpResponse::Ok().json(json!({ "id": row.id, "window_hours": 24, "calls": calls, "errors": errors, "hours": hours })))
}
