//! `POST /api/v1/events`: a tenant hands the dispatcher a domain event over
//! HTTP instead of the bus. The event and its deliveries are committed
//! before the 202; concurrent requests share transactions (group commit),
//! and the deliveries they create start sending right after the commit.

use crate::worker::Dispatcher;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use hub_domain::event::http::{self, BindingError, Mode};
use hub_domain::{Envelope, FieldError};
use hub_platform::auth::Tenant;
use hub_platform::batch::{BatchConfig, Batcher};
use hub_platform::error::{ApiError, ErrorCode, Problem};
use hub_storage::{Pool, StorageError};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

/// Largest accepted event.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// What became of a submitted event.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// The event id, as sent.
    pub id: String,
    /// False when an event with this id was accepted before (nothing new happened).
    pub accepted: bool,
    /// Deliveries created for it.
    pub deliveries: u64,
}

/// What became of each event of a batch, in the batch's order.
#[derive(Serialize, ToSchema)]
pub struct AcceptedBatch {
    /// One entry per event sent.
    pub data: Vec<Accepted>,
}

/// Accepts CloudEvents for the caller's tenant and fans them out to the
/// matching subscriptions. The same event (`source` + `id`) twice is
/// accepted once.
#[utoipa::path(post, path = "/api/v1/events", tag = "events", security(("api_key" = [], "tenant" = [])),
    description = "CloudEvents 1.0 over the HTTP binding, in any of its three modes. \
Structured: `Content-Type: application/cloudevents+json` (or `application/json`), the body one JSON event. \
Binary: the attributes in `ce-*` headers (`ce-specversion`, `ce-id`, `ce-source`, `ce-type`, …), the body the event's data and `Content-Type` its media type. \
Batched: `Content-Type: application/cloudevents-batch+json`, a JSON array of up to 1,000 events, answered with one entry per event. \
Only `specversion`, `id`, `source` and `type` are required; `time` defaults to the receipt time; `subject`, `dataschema`, `datacontenttype`, `data_base64` and extension attributes are kept and delivered. \
`tenantid` may be left out (it is the caller's) and must otherwise be the caller's. An invalid event in a batch refuses the whole batch (422, the field named `[index].attribute`).",
    request_body(description = "One CloudEvents JSON event (structured mode), its data (binary mode, any media type), or an array of events (batched mode)",
        content((Object = "application/cloudevents+json"), (Object = "application/json"), (Vec<Object> = "application/cloudevents-batch+json"))),
    responses(
        (status = 202, description = "Stored, with its deliveries: one `Accepted` for an event sent in structured or binary mode, an `AcceptedBatch` for a batch", body = Accepted),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "An event format other than JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn submit(
    t: Tenant,
    intake: web::Data<Intake>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    let (mode, mut events) = http::parse(content_type, headers, &body).map_err(|e| match e {
        BindingError::UnsupportedFormat(m) => ApiError::new(ErrorCode::UnsupportedMediaType, m),
        BindingError::Invalid(e) => ApiError::validation(vec![e]),
    })?;
    let batched = mode == Mode::Batched;
    for (i, event) in events.iter_mut().enumerate() {
        let at = |field: &str| {
            if batched {
                format!("[{i}].{field}")
            } else {
                field.to_owned()
            }
        };
        match event.tenantid {
            None => event.tenantid = Some(t.id),
            Some(other) if other != t.id => {
                return Err(ApiError::validation(vec![FieldError::new(
                    at("tenantid"),
                    "must be the caller's tenant (or left out)",
                )]));
            }
            Some(_) => {}
        }
        if !crate::fanout::deliverable(event.event_type.as_str()) {
            return Err(ApiError::validation(vec![FieldError::new(
                at("type"),
                format!(
                    "{} is produced by the dispatcher itself and cannot be submitted",
                    event.event_type
                ),
            )]));
        }
    }
    let ids: Vec<String> = events.iter().map(Envelope::id_text).collect();
    // The events of a batch go to the group-commit writer together, so
    // they share its transactions.
    let outcomes = futures::future::join_all(events.into_iter().map(|e| intake.submit(e))).await;
    let mut answers = Vec::with_capacity(ids.len());
    for (id, outcome) in ids.into_iter().zip(outcomes) {
        let (accepted, deliveries) = match outcome {
            Ok(Ok(r)) => r,
            Ok(Err(SubmitError::Failed(e))) => return Err(ApiError::internal(e)),
            Ok(Err(SubmitError::Unavailable)) | Err(_) => {
                return Err(ApiError::new(
                    ErrorCode::DependencyUnavailable,
                    "the database is unavailable; retry later",
                ));
            }
        };
        metrics::counter!("hub_webhook_events_accepted_total", "path" => "http", "outcome" => if accepted { "new" } else { "duplicate" }).increment(1);
        answers.push(Accepted {
            id,
            accepted,
            deliveries,
        });
    }
    Ok(if batched {
        HttpResponse::Accepted().json(AcceptedBatch { data: answers })
    } else {
        HttpResponse::Accepted().json(&answers[0])
    })
}

/// Why a submitted event was not stored.
#[derive(Debug, Clone)]
pub enum SubmitError {
    /// The database is unavailable: retry later.
    Unavailable,
    /// Anything else (logged).
    Failed(String),
}

/// (accepted as new, deliveries created)
type Submitted = Result<(bool, u64), SubmitError>;

/// The group-commit writer of submitted events.
pub type Intake = Batcher<Envelope, Submitted>;

/// Starts the intake writers.
pub fn intake(
    pool: Pool,
    dispatcher: Arc<Dispatcher>,
    shutdown: CancellationToken,
) -> (Intake, JoinHandle<()>) {
    Batcher::spawn(
        BatchConfig {
            queue: 4096,
            writers: 3,
            max_batch: 256,
            linger: std::time::Duration::from_millis(2),
        },
        shutdown,
        move |events: Vec<Envelope>| {
            let pool = pool.clone();
            let dispatcher = dispatcher.clone();
            async move { write(&pool, &dispatcher, events).await }
        },
    )
}

async fn write(pool: &Pool, dispatcher: &Arc<Dispatcher>, events: Vec<Envelope>) -> Vec<Submitted> {
    match try_write(pool, dispatcher, &events).await {
        Ok(r) => r.into_iter().map(Ok).collect(),
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, n = events.len(), "events not stored: database unavailable");
            vec![Err(SubmitError::Unavailable); events.len()]
        }
        Err(e) if events.len() > 1 => {
            // One bad event must not fail the others: one by one.
            tracing::warn!(error = %e, n = events.len(), "event batch failed; storing its events one by one");
            let mut out = Vec::with_capacity(events.len());
            for e in events {
                out.push(
                    match try_write(pool, dispatcher, std::slice::from_ref(&e)).await {
                        Ok(mut r) => Ok(r.remove(0)),
                        Err(e) if e.is_transient() => Err(SubmitError::Unavailable),
                        Err(e) => Err(SubmitError::Failed(e.to_string())),
                    },
                );
            }
            out
        }
        Err(e) => vec![Err(SubmitError::Failed(e.to_string()))],
    }
}

async fn try_write(
    pool: &Pool,
    dispatcher: &Arc<Dispatcher>,
    events: &[Envelope],
) -> Result<Vec<(bool, u64)>, StorageError> {
    let mut tx = pool.begin().await?;
    let out = crate::fanout::fan_out(&mut tx, events, dispatcher).await?;
    tx.commit().await?;
    if let Some(h) = out.handoff {
        h.start(dispatcher);
    }
    // The same id twice in one batch: the first is the one accepted.
    let mut first = HashSet::new();
    Ok(events
        .iter()
        .map(|e| {
            let new = out.fresh.contains(&e.id.0) && first.insert(e.id.0);
            let n = if new {
                out.deliveries.get(&e.id.0).copied().unwrap_or(0)
            } else {
                0
            };
            (new, n)
        })
        .collect())
}

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_EVENT_BYTES))
        .route("/api/v1/events", web::post().to(submit));
}
