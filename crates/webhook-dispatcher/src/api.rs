//! `POST /api/v1/events`: a tenant hands the dispatcher a domain event over
//! HTTP instead of the bus. The event and its deliveries are committed
//! before the 202.

use actix_web::{HttpResponse, web};
use hub_domain::{Envelope, FieldError};
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, Problem};
use hub_platform::server::Context;
use hub_storage::StorageError;
use serde::Serialize;
use utoipa::ToSchema;

/// Largest accepted event.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// What became of a submitted event.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// The event id.
    pub id: String,
    /// False when an event with this id was accepted before (nothing new happened).
    pub accepted: bool,
    /// Deliveries created for it.
    pub deliveries: u64,
}

/// Accepts a CloudEvents JSON event for the caller's tenant and fans it out
/// to the matching subscriptions. The same event id twice is accepted once.
#[utoipa::path(post, path = "/api/v1/events", tag = "events", security(("api_key" = [], "tenant" = [])),
    request_body(content = Object, description = "CloudEvents 1.0 JSON envelope (specversion, id, source, type, time, data; tenantid optional, must be the caller's)", content_type = "application/json"),
    responses(
        (status = 202, body = Accepted),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn submit(
    t: Tenant,
    ctx: web::Data<Context>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let mut event = Envelope::from_slice(&body).map_err(|e| ApiError::validation(vec![e]))?;
    match event.tenantid {
        None => event.tenantid = Some(t.id),
        Some(other) if other != t.id => {
            return Err(ApiError::validation(vec![FieldError::new(
                "tenantid",
                "must be the caller's tenant (or left out)",
            )]));
        }
        Some(_) => {}
    }
    if !crate::fanout::deliverable(event.event_type.as_str()) {
        return Err(ApiError::validation(vec![FieldError::new(
            "type",
            format!(
                "{} is produced by the dispatcher itself and cannot be submitted",
                event.event_type
            ),
        )]));
    }
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    let (fresh, deliveries) = crate::fanout::fan_out(&mut tx, std::slice::from_ref(&event)).await?;
    tx.commit().await.map_err(StorageError::from)?;
    metrics::counter!("hub_webhook_events_accepted_total", "path" => "http", "outcome" => if fresh > 0 { "new" } else { "duplicate" }).increment(1);
    Ok(HttpResponse::Accepted().json(Accepted {
        id: event.id.to_string(),
        accepted: fresh > 0,
        deliveries,
    }))
}

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_EVENT_BYTES))
        .route("/api/v1/events", web::post().to(submit));
}
