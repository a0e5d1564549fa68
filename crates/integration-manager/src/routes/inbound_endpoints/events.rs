//! The requests an inbound endpoint received, and their replay.

use super::body::{EndpointReplayInput, EventBody, EventFilter};
use super::find;
use crate::routes::list::{ListParams, Paging, one_of};
use crate::routes::{begin, commit, emit, optional_json};
use actix_web::{HttpResponse, web};
use hub_domain::FieldError;
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, Problem};
use hub_platform::server::Context;
use hub_storage::inbound_events;
use serde_json::json;
use uuid::Uuid;

/// The endpoint's received requests, oldest first (repeats included, flagged).
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints/{id}/events", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), ListParams, EventFilter),
    responses((status = 200, description = "`{\"data\": [EventBody], \"next_cursor\": …}`"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn events(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
    page: web::Query<ListParams>,
    q: web::Query<EventFilter>,
) -> Result<HttpResponse, ApiError> {
    let paging = Paging::parse(&page)?;
    let statuses = ["PENDING", "PROCESSED", "SKIPPED", "FAILED", "DUPLICATE"];
    let status = one_of("status", &q.status, &statuses)?;
    find(&ctx, &t, *id).await?;
    let (after, fetch) = (paging.cursor, paging.fetch());
    let rows = inbound_events::list(&ctx.pool, t.id, *id, status.as_deref(), after, fetch).await?;
    Ok(HttpResponse::Ok().json(paging.page::<_, EventBody>(&rows)))
}

/// Puts FAILED events back in the processing queue with fresh attempts.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/events/replay", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body(content = EndpointReplayInput, description = "Optional"),
    responses((status = 200, description = "`{\"replayed\": n, \"event_ids\": [...]}`"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn replay(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let input: EndpointReplayInput = optional_json(&body)?;
    if input.event_ids.as_ref().is_some_and(|v| v.len() > 1000) {
        return Err(FieldError::new("event_ids", "at most 1000 ids").into());
    }
    find(&ctx, &t, *id).await?;
    let mut tx = begin(&ctx).await?;
    let ids = inbound_events::replay(&mut tx, t.id, *id, input.event_ids.as_deref()).await?;
    if !ids.is_empty() {
        let data = json!({"endpoint_id": *id, "event_ids": ids, "actor_api_key_id": t.api_key_id});
        emit(&mut tx, "webhook.endpoint.replayed", t.id, data).await?;
    }
    commit(tx).await?;
    Ok(HttpResponse::Ok().json(json!({"replayed": ids.len(), "event_ids": ids})))
}
