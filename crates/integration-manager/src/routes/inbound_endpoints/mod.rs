//! INBOUND webhooks: the endpoints of a tenant that providers call at
//! `POST /webhooks/{tenant}/{path}` ([`receive`]), with their signing
//! secrets, the requests they received, and their replay.

pub mod body;
pub mod input;
pub mod receive;

use super::list::{ListParams, ListQuery, NoFilter, status_filter};
use super::patch::FieldErrors;
use super::{Call, begin, commit, emit, find, find_for_update, optional_json};
use crate::inbound::{Inbound, secrets, verifier_of};
use actix_web::{HttpResponse, web};
use body::{EndpointBody, EndpointInput, EndpointReplayInput, EndpointRotateInput, EventFilter};
use chrono::{Duration as ChronoDuration, Utc};
use hub_domain::FieldError;
use hub_domain::inbound::HandlerType;
use hub_domain::secret::last_four;
use hub_domain::status::EndpointStatus;
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, ErrorCode, Problem};
use hub_platform::server::Context;
use hub_storage::webhook_endpoints::{self as store, Endpoint};
use hub_storage::{StorageError, inbound_events};
use input::{Mode, ValidEndpointPatch};
use serde_json::json;
use uuid::Uuid;

/// Default grace period of the previous secret after a rotation.
pub const DEFAULT_GRACE_SECONDS: i64 = 24 * 3600;
/// Longest grace period.
pub const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;

/// The endpoint as stored now, with its new secret when there is one (shown
/// this once).
async fn shown(
    ctx: &Context,
    t: &Tenant,
    id: Uuid,
    secret: Option<String>,
) -> Result<EndpointBody, ApiError> {
    let mut body = EndpointBody::from(find::<Endpoint>(ctx, t, id).await?);
    body.secret_key = secret;
    Ok(body)
}

fn conflict(e: StorageError) -> ApiError {
    match e {
        StorageError::Conflict { .. } => ApiError::new(
            ErrorCode::Conflict,
            "endpoint_path: this tenant already has an endpoint with this path",
        ),
        other => other.into(),
    }
}

/// A new endpoint of `t` with the defaults, before its body is applied.
fn new_endpoint(t: &Tenant) -> Endpoint {
    let now = Utc::now();
    Endpoint {
        id: Uuid::now_v7(),
        tenant_id: t.id.0,
        integration_id: None,
        endpoint_path: String::new(),
        secret_sealed: String::new(),
        secret_hint: String::new(),
        secret_previous: None,
        secret_previous_expires_at: None,
        event_types: json!([]),
        handler_type: HandlerType::Custom.as_str().to_owned(),
        transform_template: None,
        target_service: None,
        ip_whitelist: None,
        signature_header: None,
        signature_algorithm: None,
        signature_encoding: "hex".into(),
        signature_prefix: None,
        timestamp_tolerance_seconds: 300,
        status: EndpointStatus::Active,
        is_enabled: true,
        total_received: 0,
        total_processed: 0,
        total_failed: 0,
        last_received_at: None,
        created_at: now,
        updated_at: now,
        created_by_key: Some(t.api_key_id.0),
        updated_by_key: Some(t.api_key_id.0),
    }
}

/// Creates an endpoint. The answer holds the secret; it is never shown again.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    request_body = EndpointInput,
    responses((status = 201, body = EndpointBody),
        (status = 409, description = "The tenant already has an endpoint with this path", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, one error each", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    Call { t, ctx }: Call,
    st: web::Data<Inbound>,
    body: web::Json<EndpointInput>,
) -> Result<HttpResponse, ApiError> {
    let mut row = new_endpoint(&t);
    let valid =
        ValidEndpointPatch::parse(body.into_inner(), &row, Mode::Create, &ctx, t.id, &st).await?;
    let plain = valid.secret().map(str::to_owned);
    valid.apply(&mut row, &st.keyring);
    let mut tx = begin(&ctx).await?;
    store::insert(&mut tx, &row).await.map_err(conflict)?;
    let data = json!({"id": row.id, "endpoint_path": row.endpoint_path, "signature_algorithm": row.signature_algorithm,
                      "actor_api_key_id": t.api_key_id});
    emit(&mut tx, "webhook.endpoint.created", t.id, data).await?;
    tx.commit().await.map_err(|e| conflict(e.into()))?;
    st.cache.clear();
    Ok(HttpResponse::Created().json(shown(&ctx, &t, row.id, plain).await?))
}

/// The tenant's endpoints, oldest first.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(ListParams), responses((status = 200, description = "`{\"data\": [EndpointBody], \"next_cursor\": …}`")))]
pub async fn list(
    Call { t, ctx }: Call,
    ListQuery { paging, .. }: ListQuery<NoFilter>,
) -> Result<HttpResponse, ApiError> {
    let rows = store::list(&ctx.pool, t.id, paging.cursor, paging.fetch()).await?;
    Ok(HttpResponse::Ok().json(paging.page::<_, EndpointBody>(rows)))
}

/// One endpoint, with its counters.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = EndpointBody), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(Call { t, ctx }: Call, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(EndpointBody::from(find::<Endpoint>(&ctx, &t, *id).await?)))
}

/// Updates any field. A new `secret_key` replaces the secret at once (use
/// rotate-secret for a grace period); the answer then shows it once.
#[utoipa::path(put, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body = EndpointInput,
    responses((status = 200, body = EndpointBody), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    Call { t, ctx }: Call,
    st: web::Data<Inbound>,
    id: web::Path<Uuid>,
    body: web::Json<EndpointInput>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = begin(&ctx).await?;
    let mut row = find_for_update(&mut tx, &t, *id).await?;
    let valid =
        ValidEndpointPatch::parse(body.into_inner(), &row, Mode::Update, &ctx, t.id, &st).await?;
    let plain = valid.secret().map(str::to_owned);
    let changed = valid.apply(&mut row, &st.keyring);
    row.updated_by_key = Some(t.api_key_id.0);
    if !changed.is_empty() {
        store::update(&mut tx, &row).await.map_err(conflict)?;
        let data = json!({"id": row.id, "changed": changed, "actor_api_key_id": t.api_key_id});
        emit(&mut tx, "webhook.endpoint.updated", t.id, data).await?;
    }
    tx.commit().await.map_err(|e| conflict(e.into()))?;
    st.cache.clear();
    Ok(HttpResponse::Ok().json(shown(&ctx, &t, *id, plain).await?))
}

/// Deletes an endpoint and its received events.
#[utoipa::path(delete, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    Call { t, ctx }: Call,
    st: web::Data<Inbound>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = begin(&ctx).await?;
    if !store::delete(&mut tx, t.id, *id).await? {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    let data = json!({"id": *id, "actor_api_key_id": t.api_key_id});
    emit(&mut tx, "webhook.endpoint.deleted", t.id, data).await?;
    commit(tx).await?;
    st.cache.clear();
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces the secret; the old one stays valid for the grace period. The
/// answer holds the new secret; it is never shown again.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/rotate-secret", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body(content = Option<EndpointRotateInput>, description = "Optional"),
    responses((status = 200, body = EndpointBody), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn rotate_secret(
    Call { t, ctx }: Call,
    st: web::Data<Inbound>,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let input: EndpointRotateInput = optional_json(&body)?;
    let mut tx = begin(&ctx).await?;
    let mut row = find_for_update(&mut tx, &t, *id).await?;
    let scheme = verifier_of(&row).scheme;
    let mut errors = FieldErrors::default();
    let grace = input.grace_period_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
        errors.push(
            "grace_period_seconds",
            format!("must be between 0 and {MAX_GRACE_SECONDS}"),
        );
    }
    if let Some(s) = &input.secret_key
        && let Err(e) = scheme.check_secret(s)
    {
        errors.push("secret_key", e);
    }
    errors.or_invalid(())?;
    let new = input.secret_key.unwrap_or_else(|| scheme.generate_secret());
    let old = secrets::open_current(&row, &st.keyring).map_err(ApiError::internal)?;
    row.secret_previous = Some(secrets::seal_previous(row.id, &old, &st.keyring));
    let until = Utc::now() + ChronoDuration::seconds(grace);
    row.secret_previous_expires_at = Some(until);
    row.secret_sealed = secrets::seal_current(row.id, &new, &st.keyring);
    row.secret_hint = last_four(&new);
    row.updated_by_key = Some(t.api_key_id.0);
    store::update(&mut tx, &row).await?;
    let data = json!({"id": row.id, "previous_secret_expires_at": until, "actor_api_key_id": t.api_key_id});
    emit(&mut tx, "webhook.endpoint.secret_rotated", t.id, data).await?;
    commit(tx).await?;
    st.cache.clear();
    Ok(HttpResponse::Ok().json(shown(&ctx, &t, *id, Some(new)).await?))
}

/// The endpoint's received requests, oldest first (repeats included, flagged).
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints/{id}/events", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), ListParams, EventFilter),
    responses((status = 200, description = "`{\"data\": [EventBody], \"next_cursor\": …}`"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn events(
    Call { t, ctx }: Call,
    id: web::Path<Uuid>,
    ListQuery { filter: q, paging }: ListQuery<EventFilter>,
) -> Result<HttpResponse, ApiError> {
    let status = status_filter("status", &q.status)?;
    find::<Endpoint>(&ctx, &t, *id).await?;
    let (after, fetch) = (paging.cursor, paging.fetch());
    let rows = inbound_events::list(&ctx.pool, t.id, *id, status, after, fetch).await?;
    Ok(HttpResponse::Ok().json(paging.page_of(rows)))
}

/// Puts FAILED events back in the processing queue with fresh attempts.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/events/replay", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body(content = Option<EndpointReplayInput>, description = "Optional"),
    responses((status = 200, description = "`{\"replayed\": n, \"event_ids\": [...]}`"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn replay(
    Call { t, ctx }: Call,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let input: EndpointReplayInput = optional_json(&body)?;
    if input.event_ids.as_ref().is_some_and(|v| v.len() > 1000) {
        return Err(FieldError::new("event_ids", "at most 1000 ids").into());
    }
    find::<Endpoint>(&ctx, &t, *id).await?;
    let mut tx = begin(&ctx).await?;
    let ids = inbound_events::replay(&mut tx, t.id, *id, input.event_ids.as_deref()).await?;
    if !ids.is_empty() {
        let data = json!({"endpoint_id": *id, "event_ids": ids, "actor_api_key_id": t.api_key_id});
        emit(&mut tx, "webhook.endpoint.replayed", t.id, data).await?;
    }
    commit(tx).await?;
    Ok(HttpResponse::Ok().json(json!({"replayed": ids.len(), "event_ids": ids})))
}
