//! Operator API for the bus's dead letters: what every service could not
//! process (`<prefix><service>.events.dlq`), counted, listed, inspected
//! (redacted), re-driven to the service's work queue, or deleted.
//!
//! Operator-only (`HUB_ADMIN_TOKEN`), not tenant-scoped: a dead-letter queue
//! is one per service, shared by all tenants, and holds messages that name
//! no tenant at all (a body that is not an event, another system's message);
//! re-driving one changes what a shared consumer does next. A tenant filter
//! exists for the operator's convenience (`tenant_id`, the events' own
//! `tenantid`). How messages are read without losing one on a crash is in
//! `hub_bus::dead_letters`.

use actix_web::{HttpResponse, web};
use hub_bus::dead_letters::{self, DeadLetter, Filter};
use hub_connectors::redact::Redactor;
use hub_platform::auth::Admin;
use hub_platform::error::{ApiError, ErrorCode, Problem};
use hub_platform::server::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// The services whose queues have dead letters.
pub const SERVICES: [&str; 3] = [
    crate::NAME,
    hub_domain::webhook::DISPATCHER,
    "integration-sync",
];

/// Most messages a list shows, and the default.
const MAX_LIMIT: usize = 1_000;
const DEFAULT_LIMIT: usize = 100;

/// Largest body shown whole by `…/{id}`; longer ones are cut.
const MAX_SHOWN_BODY: usize = 64 * 1024;

/// One service's dead letters, counted.
#[derive(Serialize, ToSchema)]
pub struct QueueCounts {
    /// The service.
    pub service: String,
    /// Its dead-letter queue.
    pub queue: String,
    /// Whether the queue exists (the service has run on this bus).
    pub exists: bool,
    /// Messages in it.
    pub messages: u32,
    /// Messages read to count by reason and type (all of them up to 10,000).
    pub counted: u32,
    /// Counted messages per reason: `failed` (the handler failed every
    /// attempt), `rejected` (not an event), the broker's `expired`, `maxlen`.
    pub by_reason: BTreeMap<String, u32>,
    /// Counted messages per event type (`(none)` when it has none).
    pub by_event_type: BTreeMap<String, u32>,
}

/// Every service's dead letters.
#[derive(Serialize, ToSchema)]
pub struct DeadLetterOverview {
    /// One entry per service.
    pub data: Vec<QueueCounts>,
}

/// A dead letter in a list.
#[derive(Serialize, ToSchema)]
pub struct DeadLetterSummary {
    /// Its handle: the AMQP `message_id` (the event id), else `sha256:…` of the body.
    pub id: String,
    /// The event type, when known.
    pub event_type: Option<String>,
    /// The tenant the event names, when it names one.
    pub tenant_id: Option<String>,
    /// `failed`, `rejected`, `expired`, `maxlen` or `unknown`.
    pub reason: String,
    /// Failed handler attempts.
    pub attempts: Option<i64>,
    /// The last handler error (redacted).
    pub error: Option<String>,
    /// Times an operator re-drove it before.
    pub redriven: i64,
    /// Body size in bytes.
    pub size: usize,
}

/// A page of a service's dead letters, in queue order.
#[derive(Serialize, ToSchema)]
pub struct DeadLetterList {
    /// The service.
    pub service: String,
    /// Messages in the queue.
    pub messages: u32,
    /// The messages read that the filters take.
    pub data: Vec<DeadLetterSummary>,
}

/// One dead letter in full, secrets redacted.
#[derive(Serialize, ToSchema)]
pub struct DeadLetterDetail {
    /// What a list shows.
    #[serde(flatten)]
    pub summary: DeadLetterSummary,
    /// AMQP properties (`content_type`, `message_id`, `type`, `timestamp`, …).
    pub properties: serde_json::Value,
    /// AMQP headers, secret-named ones redacted.
    pub headers: serde_json::Value,
    /// The body as text (JSON with secret fields redacted), cut at 64 KiB;
    /// `null` when it is not UTF-8.
    pub body: Option<String>,
    /// Whether `body` was cut.
    pub body_truncated: bool,
}

/// Filters of the list, re-drive and delete.
#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterFilter {
    /// Only this message (its `id`).
    pub id: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only this reason.
    pub reason: Option<String>,
    /// Only events naming this tenant.
    pub tenant_id: Option<String>,
    /// Most messages taken (1–1,000; default 100 for a list, 1,000 for a
    /// re-drive or delete).
    pub limit: Option<usize>,
}

impl DeadLetterFilter {
    fn filter(&self) -> Filter {
        Filter {
            id: self.id.clone(),
            event_type: self.event_type.clone(),
            reason: self.reason.clone(),
            tenant_id: self.tenant_id.clone(),
        }
    }

    fn limit(&self, default: usize) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(default),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("limit: must be 1 to {MAX_LIMIT}"),
            )),
        }
    }
}

/// What a re-drive or delete did.
#[derive(Serialize, ToSchema)]
pub struct Moved {
    /// Messages re-driven to the service's work queue, or deleted.
    pub moved: u32,
    /// Messages left in the dead-letter queue.
    pub remaining: u32,
}

fn service_of(name: &str) -> Result<&'static str, ApiError> {
    SERVICES
        .iter()
        .find(|s| **s == name)
        .copied()
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("service not found: one of {}", SERVICES.join(", ")),
            )
        })
}

fn bus_error(e: hub_bus::BusError) -> ApiError {
    tracing::warn!(error = %e, "dead letters: RabbitMQ unavailable");
    ApiError::new(
        ErrorCode::DependencyUnavailable,
        "RabbitMQ is unavailable; retry later",
    )
}

fn queue_missing(service: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("{service} has no dead-letter queue on this bus (it has not run here)"),
    )
}

fn summary(d: &DeadLetter, redact: &Redactor) -> DeadLetterSummary {
    DeadLetterSummary {
        id: d.id.clone(),
        event_type: d.event_type.clone(),
        tenant_id: d.tenant_id.clone(),
        reason: d.reason.clone(),
        attempts: d.attempts,
        error: d.error.as_deref().map(|e| redact.scrub(e)),
        redriven: d.redriven,
        size: d.body.len(),
    }
}

/// Counts of every service's dead letters.
#[utoipa::path(get, path = "/api/v1/admin/dead-letters", tag = "admin", security(("admin_token" = [])),
    description = "Every service's dead-letter queue: how many messages, and (reading up to 10,000, all given back) how many per reason and per event type.",
    responses(
        (status = 200, body = DeadLetterOverview),
        (status = 503, description = "RabbitMQ unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn overview(_: Admin, ctx: web::Data<Context>) -> Result<HttpResponse, ApiError> {
    let mut data = Vec::new();
    for service in SERVICES {
        let look = dead_letters::peek(&ctx.bus, service, dead_letters::MAX_READ)
            .await
            .map_err(bus_error)?;
        let mut by_reason = BTreeMap::new();
        let mut by_event_type = BTreeMap::new();
        for m in &look.messages {
            *by_reason.entry(m.reason.clone()).or_default() += 1;
            let t = m.event_type.clone().unwrap_or_else(|| "(none)".into());
            *by_event_type.entry(t).or_default() += 1;
        }
        data.push(QueueCounts {
            service: service.to_owned(),
            queue: ctx.bus.topology().dead_letter_queue(service),
            exists: look.exists,
            messages: look.total,
            counted: look.messages.len() as u32,
            by_reason,
            by_event_type,
        });
    }
    Ok(HttpResponse::Ok().json(DeadLetterOverview { data }))
}

/// Lists a service's dead letters.
#[utoipa::path(get, path = "/api/v1/admin/dead-letters/{service}", tag = "admin", security(("admin_token" = [])),
    description = "The first `limit` messages of the service's dead-letter queue that the filters take, in queue order; they stay in the queue.",
    params(("service" = String, Path, description = "`integration-manager`, `webhook-dispatcher` or `integration-sync`"), DeadLetterFilter),
    responses(
        (status = 200, body = DeadLetterList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such service, or its queue does not exist", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "RabbitMQ unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    _: Admin,
    ctx: web::Data<Context>,
    service: web::Path<String>,
    q: web::Query<DeadLetterFilter>,
) -> Result<HttpResponse, ApiError> {
    let service = service_of(&service)?;
    let limit = q.limit(DEFAULT_LIMIT)?;
    let filter = q.filter();
    let look = dead_letters::peek(&ctx.bus, service, dead_letters::MAX_READ)
        .await
        .map_err(bus_error)?;
    if !look.exists {
        return Err(queue_missing(service));
    }
    let redact = Redactor::new(&[], &[]);
    let data = look
        .messages
        .iter()
        .filter(|m| filter.matches(m))
        .take(limit)
        .map(|m| summary(m, &redact))
        .collect();
    Ok(HttpResponse::Ok().json(DeadLetterList {
        service: service.to_owned(),
        messages: look.total,
        data,
    }))
}

/// One dead letter in full, redacted.
#[utoipa::path(get, path = "/api/v1/admin/dead-letters/{service}/{id}", tag = "admin", security(("admin_token" = [])),
    params(("service" = String, Path, description = "The service"), ("id" = String, Path, description = "The message's `id`")),
    responses(
        (status = 200, body = DeadLetterDetail),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "RabbitMQ unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    _: Admin,
    ctx: web::Data<Context>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (service, id) = path.into_inner();
    let service = service_of(&service)?;
    let look = dead_letters::peek(&ctx.bus, service, dead_letters::MAX_READ)
        .await
        .map_err(bus_error)?;
    let Some(m) = look.messages.iter().find(|m| m.id == id) else {
        return Err(ApiError::not_found("dead letter"));
    };
    let redact = Redactor::new(&[], &[]);
    let p = &m.properties;
    let properties = serde_json::json!({
        "content_type": p.content_type().as_ref().map(|v| v.as_str()),
        "content_encoding": p.content_encoding().as_ref().map(|v| v.as_str()),
        "message_id": p.message_id().as_ref().map(|v| v.as_str()),
        "type": p.kind().as_ref().map(|v| v.as_str()),
        "timestamp": p.timestamp(),
        "app_id": p.app_id().as_ref().map(|v| v.as_str()),
        "correlation_id": p.correlation_id().as_ref().map(|v| v.as_str()),
        "delivery_mode": p.delivery_mode(),
    });
    let headers: serde_json::Map<String, serde_json::Value> = p
        .headers()
        .as_ref()
        .map(|h| {
            h.inner()
                .iter()
                .map(|(k, v)| {
                    let v = if redact.is_secret(k.as_str()) {
                        serde_json::json!(hub_connectors::redact::REDACTED)
                    } else {
                        match dead_letters::header_json(v) {
                            serde_json::Value::String(s) => serde_json::json!(redact.scrub(&s)),
                            other => serde_json::from_str(&redact.json(&other.to_string()))
                                .unwrap_or(other),
                        }
                    };
                    (k.as_str().to_owned(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    let cut = m.body.len() > MAX_SHOWN_BODY;
    let shown = &m.body[..m.body.len().min(MAX_SHOWN_BODY)];
    let body = std::str::from_utf8(shown)
        .ok()
        .or_else(|| cut.then(|| utf8_prefix(shown)))
        .map(|text| redact.body(p.content_type().as_ref().map(|v| v.as_str()), text));
    Ok(HttpResponse::Ok().json(DeadLetterDetail {
        summary: summary(m, &redact),
        properties,
        headers: serde_json::Value::Object(headers),
        body,
        body_truncated: cut,
    }))
}

/// The longest valid UTF-8 start of `bytes` (a cut may split a character).
fn utf8_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

/// Re-drives dead letters to the service's work queue.
#[utoipa::path(post, path = "/api/v1/admin/dead-letters/{service}/redrive", tag = "admin", security(("admin_token" = [])),
    description = "Publishes the dead letters the filters take (all when the body is `{}`) back to the service's own work queue (not to the other services bound to their type), with their attempts reset and `x-hub-redriven` counted, each removed from the dead-letter queue only after the broker confirmed its copy. Fix the cause first: a message that fails again comes back after its attempts.",
    params(("service" = String, Path, description = "The service")),
    request_body = DeadLetterFilter,
    responses(
        (status = 200, body = Moved),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "RabbitMQ unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn redrive(
    _: Admin,
    ctx: web::Data<Context>,
    service: web::Path<String>,
    body: web::Json<DeadLetterFilter>,
) -> Result<HttpResponse, ApiError> {
    bulk(&ctx, &service, &body, Bulk::Redrive).await
}

/// Deletes dead letters.
#[utoipa::path(post, path = "/api/v1/admin/dead-letters/{service}/delete", tag = "admin", security(("admin_token" = [])),
    description = "Deletes the dead letters the filters take; `{}` purges the whole queue.",
    params(("service" = String, Path, description = "The service")),
    request_body = DeadLetterFilter,
    responses(
        (status = 200, body = Moved),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "RabbitMQ unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    _: Admin,
    ctx: web::Data<Context>,
    service: web::Path<String>,
    body: web::Json<DeadLetterFilter>,
) -> Result<HttpResponse, ApiError> {
    bulk(&ctx, &service, &body, Bulk::Delete).await
}

/// What a bulk route does to the dead letters its filters take.
#[derive(Debug, Clone, Copy)]
enum Bulk {
    Redrive,
    Delete,
}

/// `redrive` and `delete`: the filters applied to the service's queue.
async fn bulk(
    ctx: &Context,
    service: &str,
    body: &DeadLetterFilter,
    what: Bulk,
) -> Result<HttpResponse, ApiError> {
    let service = service_of(service)?;
    let limit = body.limit(MAX_LIMIT)?;
    let filter = body.filter();
    let moved = match what {
        Bulk::Redrive => dead_letters::redrive(&ctx.bus, service, &filter, limit).await,
        Bulk::Delete => dead_letters::delete(&ctx.bus, service, &filter, limit).await,
    }
    .map_err(bus_error)?
    .ok_or_else(|| queue_missing(service))?;
    tracing::info!(
        service,
        moved = moved.moved,
        remaining = moved.remaining,
        "dead letters {}",
        match what {
            Bulk::Redrive => "re-driven",
            Bulk::Delete => "deleted",
        }
    );
    Ok(HttpResponse::Ok().json(Moved {
        moved: moved.moved,
        remaining: moved.remaining,
    }))
}

/// `DELETE …/{id}`: one dead letter.
#[utoipa::path(delete, path = "/api/v1/admin/dead-letters/{service}/{id}", tag = "admin", security(("admin_token" = [])),
    params(("service" = String, Path, description = "The service"), ("id" = String, Path, description = "The message's `id`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "RabbitMQ unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_one(
    _: Admin,
    ctx: web::Data<Context>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (service, id) = path.into_inner();
    let service = service_of(&service)?;
    let filter = Filter {
        id: Some(id),
        ..Filter::default()
    };
    let moved = dead_letters::delete(&ctx.bus, service, &filter, 1)
        .await
        .map_err(bus_error)?
        .ok_or_else(|| queue_missing(service))?;
    if moved.moved == 0 {
        return Err(ApiError::not_found("dead letter"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Registers the routes (under `/api/v1/admin`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/dead-letters", web::get().to(overview))
        .route("/dead-letters/{service}", web::get().to(list))
        .route("/dead-letters/{service}/redrive", web::post().to(redrive))
        .route("/dead-letters/{service}/delete", web::post().to(delete))
        .route("/dead-letters/{service}/{id}", web::get().to(get))
        .route("/dead-letters/{service}/{id}", web::delete().to(delete_one));
}
