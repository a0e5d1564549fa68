//! `POST /api/v1/events`: a tenant hands the dispatcher a domain event over
//! HTTP instead of the bus. The event and its deliveries are committed
//! before the 202; concurrent requests share transactions (group commit),
//! and the deliveries they create start sending right after the commit.

use crate::worker::Dispatcher;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use hub_domain::TenantId;
use hub_domain::event::http::{self, BindingError, Mode};
use hub_domain::{Envelope, FieldError};
use hub_platform::auth::Tenant;
use hub_platform::batch::{BatchConfig, Batcher};
use hub_platform::error::{ApiError, ErrorCode, Problem};
use hub_storage::idempotency::{self, NewKey, StoredKey};
use hub_storage::{Pool, StorageError};
use serde::Serialize;
use sha2::{Digest, Sha256};
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

/// The body of a 202 (documentation only): one [`Accepted`] for an event
/// sent in structured or binary mode, an [`AcceptedBatch`] for a batch.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum AcceptedAnswer {
    /// Structured or binary mode.
    One(Accepted),
    /// Batched mode.
    Batch(AcceptedBatch),
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
`tenantid` may be left out (it is the caller's) and must otherwise be the caller's. An invalid event in a batch refuses the whole batch (422, the field named `[index].attribute`). \
With an `Idempotency-Key` header the request is taken at most once per tenant and key for 24 hours: the same key with the same request (body, `Content-Type` and `ce-*` headers) gets the first 202 again, byte for byte, with `Idempotent-Replayed: true`, and stores nothing; the same key with another request is a 422 `idempotency_key_reused`. Two requests with one key at once store one outcome. Only 202 answers are kept: a request refused (4xx) or not stored (503) may be sent again with its key.",
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 printable ASCII characters chosen by the client per request (a UUID, say); kept 24 hours per tenant")),
    request_body(description = "One CloudEvents JSON event (structured mode), its data (binary mode, any media type), or an array of events (batched mode)",
        content((Object = "application/cloudevents+json"), (Object = "application/json"), (Vec<Object> = "application/cloudevents-batch+json"))),
    responses(
        (status = 202, description = "Stored, with its deliveries: one `Accepted` for an event sent in structured or binary mode, an `AcceptedBatch` for a batch", body = AcceptedAnswer,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`"))),
        (status = 400, description = "A malformed `Idempotency-Key` (`invalid_idempotency_key`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "An event format other than JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid event (`validation_failed`), or an `Idempotency-Key` used for another request (`idempotency_key_reused`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn submit(
    t: Tenant,
    intake: web::Data<Intake>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
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
    let submissions: Vec<Submission> = match key {
        // A keyed request is one submission: its events and its answer
        // commit together.
        Some(key) => vec![Submission {
            tenant: t.id,
            events,
            key: Some(KeyRequest {
                request_hash: request_hash(&req, &body),
                key,
                batched,
            }),
        }],
        // The events of a batch go to the group-commit writer together, so
        // they share its transactions.
        None => events
            .into_iter()
            .map(|e| Submission {
                tenant: t.id,
                events: vec![e],
                key: None,
            })
            .collect(),
    };
    let outcomes =
        futures::future::join_all(submissions.into_iter().map(|s| intake.submit(s))).await;
    let mut per_event = Vec::with_capacity(ids.len());
    for outcome in outcomes {
        match outcome {
            Ok(Ok(Outcome::Stored(answers))) => per_event.extend(answers),
            Ok(Ok(Outcome::Replayed(stored))) => {
                metrics::counter!("hub_webhook_idempotent_replays_total").increment(1);
                let status = actix_web::http::StatusCode::from_u16(stored.status as u16)
                    .unwrap_or(actix_web::http::StatusCode::ACCEPTED);
                return Ok(HttpResponse::build(status)
                    .content_type("application/json")
                    .insert_header((REPLAYED_HEADER, "true"))
                    .body(stored.response));
            }
            Ok(Ok(Outcome::KeyReused)) => {
                return Err(ApiError::new(
                    ErrorCode::IdempotencyKeyReused,
                    "this Idempotency-Key was used in the last 24 hours for a different request \
                     (another body, Content-Type or ce-* header); send a new key for a new request",
                ));
            }
            Ok(Err(SubmitError::Failed(e))) => return Err(ApiError::internal(e)),
            Ok(Err(SubmitError::Unavailable)) | Err(_) => {
                return Err(ApiError::new(
                    ErrorCode::DependencyUnavailable,
                    "the database is unavailable; retry later",
                ));
            }
        }
    }
    for (accepted, _) in &per_event {
        metrics::counter!("hub_webhook_events_accepted_total", "path" => "http", "outcome" => if *accepted { "new" } else { "duplicate" }).increment(1);
    }
    Ok(HttpResponse::Accepted()
        .content_type("application/json")
        .body(answer_body(ids, &per_event, batched)))
}

/// The header a replayed answer carries.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// Longest accepted `Idempotency-Key`.
pub const MAX_KEY_LEN: usize = 255;

/// The request's `Idempotency-Key`, if it sent one: 1 to 255 printable
/// ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all("idempotency-key");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = |why: &str| {
        Err(ApiError::new(
            ErrorCode::InvalidIdempotencyKey,
            format!(
                "Idempotency-Key: {why}; send 1 to {MAX_KEY_LEN} printable ASCII characters, one per request (a UUID is a good choice)"
            ),
        ))
    };
    if values.next().is_some() {
        return bad("sent more than once");
    }
    let bytes = value.as_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return bad("empty");
    }
    if bytes.len() > MAX_KEY_LEN {
        return bad(&format!("{} characters long", bytes.len()));
    }
    if !bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        return bad("not printable ASCII");
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// SHA-256 of what makes the request's events: its Content-Type, its
/// `ce-*` headers (binary mode's attributes; sorted) and its body, each
/// length-prefixed.
fn request_hash(req: &HttpRequest, body: &[u8]) -> Vec<u8> {
    let mut ce: Vec<(&str, &[u8])> = req
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("ce-"))
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    ce.sort_unstable();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map_or(&[][..], |v| v.as_bytes());
    let mut h = Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    part(content_type);
    for (name, value) in ce {
        part(name.as_bytes());
        part(value);
    }
    part(body);
    h.finalize().to_vec()
}

/// The 202's body: one [`Accepted`], or an [`AcceptedBatch`] for a batch.
fn answer_body(ids: Vec<String>, per_event: &[(bool, u64)], batched: bool) -> String {
    let answers: Vec<Accepted> = ids
        .into_iter()
        .zip(per_event)
        .map(|(id, &(accepted, deliveries))| Accepted {
            id,
            accepted,
            deliveries,
        })
        .collect();
    let body = if batched {
        serde_json::to_string(&AcceptedBatch { data: answers })
    } else {
        serde_json::to_string(&answers[0])
    };
    body.expect("an answer always serializes")
}

/// Why a submitted event was not stored.
#[derive(Debug, Clone)]
pub enum SubmitError {
    /// The database is unavailable: retry later.
    Unavailable,
    /// Anything else (logged).
    Failed(String),
}

/// A request's `Idempotency-Key`, with what its answer is checked and kept
/// by.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    key: String,
    request_hash: Vec<u8>,
    /// Whether the answer is a batch's.
    batched: bool,
}

/// Events to store together: one of an unkeyed request, or all of a keyed
/// one.
#[derive(Debug, Clone)]
pub struct Submission {
    tenant: TenantId,
    events: Vec<Envelope>,
    key: Option<KeyRequest>,
}

/// What became of a submission.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Stored now: (accepted as new, deliveries created) per event.
    Stored(Vec<(bool, u64)>),
    /// Its key's first answer, to send again.
    Replayed(StoredKey),
    /// Its key answered another request.
    KeyReused,
}

type Submitted = Result<Outcome, SubmitError>;

/// The group-commit writer of submitted events.
pub type Intake = Batcher<Submission, Submitted>;

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
        move |subs: Vec<Submission>| {
            let pool = pool.clone();
            let dispatcher = dispatcher.clone();
            async move { write(&pool, &dispatcher, subs).await }
        },
    )
}

async fn write(pool: &Pool, dispatcher: &Arc<Dispatcher>, subs: Vec<Submission>) -> Vec<Submitted> {
    let all: Vec<usize> = (0..subs.len()).collect();
    match write_some(pool, dispatcher, &subs, all).await {
        Ok(r) => r.into_iter().map(Ok).collect(),
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, n = subs.len(), "events not stored: database unavailable");
            vec![Err(SubmitError::Unavailable); subs.len()]
        }
        Err(e) if subs.len() > 1 => {
            // One bad submission must not fail the others: one by one.
            tracing::warn!(error = %e, n = subs.len(), "event batch failed; storing its events one by one");
            let mut out = Vec::with_capacity(subs.len());
            for i in 0..subs.len() {
                out.push(match write_some(pool, dispatcher, &subs, vec![i]).await {
                    Ok(mut r) => Ok(r.remove(0)),
                    Err(e) if e.is_transient() => Err(SubmitError::Unavailable),
                    Err(e) => Err(SubmitError::Failed(e.to_string())),
                });
            }
            out
        }
        Err(e) => vec![Err(SubmitError::Failed(e.to_string()))],
    }
}

/// Stores the submissions `which` of `subs` and returns their outcomes, in
/// `which`'s order. A keyed one whose key is held (by an earlier request, a
/// concurrent one, or one before it in this batch) stores nothing and gets
/// the key's answer once that committed; a key that vanished meanwhile (its
/// request failed, or it expired) is tried again as new.
async fn write_some(
    pool: &Pool,
    dispatcher: &Arc<Dispatcher>,
    subs: &[Submission],
    which: Vec<usize>,
) -> Result<Vec<Outcome>, StorageError> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; subs.len()];
    let mut todo = which.clone();
    for _round in 0..3 {
        // A key met twice in one transaction: the later ones wait for the
        // first's answer.
        let mut seen = HashSet::new();
        let (first, mut waiting): (Vec<usize>, Vec<usize>) =
            todo.iter().partition(|&&i| match &subs[i].key {
                Some(k) => seen.insert((subs[i].tenant, k.key.as_str())),
                None => true,
            });
        let (stored, held) = store(pool, dispatcher, subs, first).await?;
        for (i, answers) in stored {
            outcomes[i] = Some(Outcome::Stored(answers));
        }
        waiting.extend(held);
        if waiting.is_empty() {
            todo.clear();
            break;
        }
        let keys: Vec<(TenantId, &str)> = waiting
            .iter()
            .filter_map(|&i| Some((subs[i].tenant, subs[i].key.as_ref()?.key.as_str())))
            .collect();
        let found = idempotency::find(pool, &keys).await?;
        todo.clear();
        for i in waiting {
            let k = subs[i].key.as_ref().expect("only keyed submissions wait");
            let hit = found
                .iter()
                .find(|s| s.tenant_id == subs[i].tenant.0 && s.key == k.key);
            match hit {
                Some(s) if s.request_hash == k.request_hash => {
                    outcomes[i] = Some(Outcome::Replayed(s.clone()));
                }
                Some(_) => outcomes[i] = Some(Outcome::KeyReused),
                None => todo.push(i),
            }
        }
        if todo.is_empty() {
            break;
        }
    }
    if !todo.is_empty() {
        // Three rounds and the key is still neither ours nor answered.
        return Err(StorageError::Conflict {
            constraint: "event_idempotency_keys_pkey".into(),
        });
    }
    Ok(which
        .into_iter()
        .map(|i| outcomes[i].take().expect("every submission has an outcome"))
        .collect())
}

/// (index, per-event answers) of the submissions stored, and the indexes
/// of the keyed ones whose key another request holds.
type Stored = (Vec<(usize, Vec<(bool, u64)>)>, Vec<usize>);

/// One transaction: the events of `which` (no key twice among them), then
/// their keys with their answers in one statement. A key held by another
/// request stores nothing of its submission: if its events made anything
/// new, the transaction is rolled back and done again without it.
async fn store(
    pool: &Pool,
    dispatcher: &Arc<Dispatcher>,
    subs: &[Submission],
    mut which: Vec<usize>,
) -> Result<Stored, StorageError> {
    let mut held_by_others = Vec::new();
    loop {
        if which.is_empty() {
            return Ok((Vec::new(), held_by_others));
        }
        let mut tx = pool.begin().await?;
        let events: Vec<Envelope> = which
            .iter()
            .flat_map(|&i| subs[i].events.iter().cloned())
            .collect();
        let out = crate::fanout::fan_out(&mut tx, &events, dispatcher).await?;
        // The same id twice in one transaction: the first is the one accepted.
        let mut first = HashSet::new();
        let answers: Vec<(usize, Vec<(bool, u64)>)> = which
            .iter()
            .map(|&i| {
                let per_event = subs[i]
                    .events
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
                    .collect();
                (i, per_event)
            })
            .collect();
        let keys: Vec<NewKey> = answers
            .iter()
            .filter_map(|(i, per_event)| {
                let s = &subs[*i];
                let k = s.key.as_ref()?;
                let ids = s.events.iter().map(Envelope::id_text).collect();
                Some(NewKey {
                    tenant_id: s.tenant,
                    key: k.key.clone(),
                    request_hash: k.request_hash.clone(),
                    status: 202,
                    response: answer_body(ids, per_event, k.batched),
                })
            })
            .collect();
        // In one order, so that two transactions never wait for each
        // other's keys crosswise (a deadlock).
        let mut keys = keys;
        keys.sort_unstable_by(|a, b| (a.tenant_id, &a.key).cmp(&(b.tenant_id, &b.key)));
        let kept = idempotency::store(&mut tx, &keys).await?;
        let held: Vec<usize> = answers
            .iter()
            .filter(|(i, _)| {
                subs[*i]
                    .key
                    .as_ref()
                    .is_some_and(|k| !kept.contains(&(subs[*i].tenant.0, k.key.clone())))
            })
            .map(|(i, _)| *i)
            .collect();
        let wrote = |i: &usize| {
            answers
                .iter()
                .any(|(j, per_event)| j == i && per_event.iter().any(|(new, _)| *new))
        };
        if held.iter().any(wrote) {
            // Its events (another body under a held key) must not stay.
            drop(tx);
            which.retain(|i| !held.contains(i));
            held_by_others.extend(held);
            continue;
        }
        tx.commit().await?;
        if let Some(h) = out.handoff {
            h.start(dispatcher);
        }
        let stored = answers
            .into_iter()
            .filter(|(i, _)| !held.contains(i))
            .collect();
        held_by_others.extend(held);
        return Ok((stored, held_by_others));
    }
}

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_EVENT_BYTES))
        .route("/api/v1/events", web::post().to(submit));
}
