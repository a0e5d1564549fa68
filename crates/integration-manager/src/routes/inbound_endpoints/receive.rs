//! `POST /webhooks/{tenant}/{path}`: the public route providers call.
//!
//! Endpoint lookup (404) → source address against `ip_whitelist` (403) →
//! body size (413) → signature with the endpoint's scheme and tolerance
//! (401 with a reason code) → provider handshakes (Slack `url_verification`,
//! Xero intent-to-receive) → the raw request and its outbox events committed
//! by the group-commit writer → 200 `{"id": …, "duplicate": …}`. The
//! endpoints themselves are managed through [`super`].

use crate::inbound::writer::{EndpointInfo, WriteError};
use crate::inbound::{Inbound, LiveEndpoint, count};
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use futures::StreamExt;
use hub_domain::TenantId;
use hub_domain::inbound::handshake::{Handshake, handshake};
use hub_domain::inbound::{self, Rejection, Request, ip::client_ip, processing};
use hub_gateway::logs::{Bytes, Direction, Exchange, HeaderMap, HeaderName, HeaderValue};
use hub_platform::error::{ApiError, ErrorCode};
use hub_platform::server::Context;
use hub_storage::inbound_events::{NewEvent, Stored};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

type Problem = hub_platform::error::Problem;

/// Headers never stored with a request (they may carry credentials).
const SECRET_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

async fn lookup(
    ctx: &Context,
    st: &Inbound,
    tenant: &str,
    path: &str,
) -> Result<Arc<LiveEndpoint>, ApiError> {
    let found = st
        .cache
        .get_or_load(tenant, path, || async {
            let row =
                hub_storage::webhook_endpoints::find_for_receive(&ctx.pool, tenant, path).await?;
            Ok::<_, ApiError>(match row {
                Some(r) => Some(Arc::new(
                    LiveEndpoint::new(r, &st.keyring).map_err(ApiError::internal)?,
                )),
                None => None,
            })
        })
        .await?;
    found
        .filter(|e| e.accepting)
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))
}

fn rejected(r: &Rejection) -> ApiError {
    let code = match r {
        Rejection::Missing(_) => ErrorCode::MissingSignature,
        Rejection::Invalid(_) => ErrorCode::InvalidSignature,
        Rejection::Stale { .. } => ErrorCode::StaleTimestamp,
    };
    ApiError::new(code, r.to_string()).with_extension("reason", json!(r.code()))
}

async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    max: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than {max} bytes (HUB_INBOUND_MAX_BODY)"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(1024).min(max));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                format!("could not read the body: {e}"),
            )
        })?;
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The client's address (behind trusted proxies, the one they forwarded
/// for) and whether the peer is a trusted proxy; 403 when the endpoint's
/// `ip_whitelist` does not allow it.
fn source(req: &HttpRequest, st: &Inbound, ep: &LiveEndpoint) -> Result<(IpAddr, bool), ApiError> {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let trusted_peer = st.trusted_proxies.contains(peer);
    // Every line, in order: a proxy may append its own after the client's.
    // A line that is not text is an unparsable hop (it stops the walk).
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    let source = client_ip(peer, &forwarded, &st.trusted_proxies);
    if let Some(allow) = &ep.allow
        && !allow.contains(source)
    {
        return Err(ApiError::new(
            ErrorCode::IpNotAllowed,
            format!("{source} is not in this endpoint's ip_whitelist"),
        ));
    }
    Ok((source, trusted_peer))
}

/// The request's headers whose values are text.
fn text_headers(req: &HttpRequest) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::with_capacity(req.headers().len());
    for (k, v) in req.headers() {
        if let Ok(v) = v.to_str() {
            headers.push((k.as_str().to_owned(), v.to_owned()));
        }
    }
    headers
}

/// The URL the provider called, as it signed it: scheme and host from a
/// trusted proxy's `X-Forwarded-*` headers, else from the connection.
fn called_url(req: &HttpRequest, trusted_peer: bool) -> String {
    let forwarded_header = |name: &str| {
        trusted_peer
            .then(|| req.headers().get(name).and_then(|v| v.to_str().ok()))
            .flatten()
            .map(|v| v.split(',').next().unwrap_or(v).trim().to_owned())
    };
    let scheme = forwarded_header("x-forwarded-proto")
        .unwrap_or_else(|| req.connection_info().scheme().to_owned());
    let host = forwarded_header("x-forwarded-host").unwrap_or_else(|| {
        req.headers()
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    });
    format!("{scheme}://{host}{}", req.uri())
}

/// Receives a provider's webhook.
#[utoipa::path(post, path = "/webhooks/{tenant}/{path}", tag = "webhooks",
    params(("tenant" = String, Path, description = "The tenant's id or slug"), ("path" = String, Path, description = "The endpoint's endpoint_path")),
    request_body(content = String, description = "The provider's payload, as it signs it", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (`{\"id\": …, \"duplicate\": false}`); a repeat of an event answers `\"duplicate\": true` with the first delivery's id. Slack's url_verification answers its challenge; Xero's intent-to-receive an empty body."),
        (status = 401, description = "missing_signature, invalid_signature or stale_timestamp (also in `reason`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "ip_not_allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such enabled endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over HUB_INBOUND_MAX_BODY", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable; the provider should retry", body = Problem, content_type = "application/problem+json")))]
pub async fn receive(
    req: HttpRequest,
    ctx: web::Data<Context>,
    st: web::Data<Inbound>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let mut seen = Seen::default();
    let answer = handle(&req, &ctx, &st, path, payload, &mut seen).await;
    record(&req, &st, seen, &answer, started);
    answer
}

/// What [`handle`] learnt about a request, for its log row: the endpoint
/// (no endpoint, no tenant: an unknown path is not logged), the source and
/// the body once read.
#[derive(Default)]
struct Seen {
    endpoint: Option<Arc<LiveEndpoint>>,
    source: Option<IpAddr>,
    body: Bytes,
}

/// Records the request and its answer in the request log (INBOUND), off
/// the request path: the row is made and queued by a spawned task, after
/// the answer is decided, and nothing here waits for the database.
fn record(
    req: &HttpRequest,
    st: &Inbound,
    seen: Seen,
    answer: &Result<HttpResponse, ApiError>,
    started: Instant,
) {
    let Some(ep) = seen.endpoint else { return };
    let (status, error) = match answer {
        Ok(r) => (r.status().as_u16(), None),
        Err(e) => (
            actix_web::ResponseError::status_code(e).as_u16(),
            Some(e.to_string()),
        ),
    };
    let mut headers = HeaderMap::with_capacity(req.headers().len());
    for (k, v) in req.headers() {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_str().as_bytes()),
            HeaderValue::from_bytes(v.as_bytes()),
        ) {
            headers.append(k, v);
        }
    }
    let mut secrets = vec![ep.secret.clone()];
    if let Some((previous, _)) = &ep.previous {
        secrets.push(previous.clone());
    }
    let exchange = Exchange {
        id: Uuid::now_v7(),
        tenant_id: ep.row.tenant_id,
        integration_id: ep.row.integration_id,
        direction: Direction::Inbound,
        method: req.method().as_str().to_owned(),
        url: called_url(req, false),
        request_headers: headers,
        request_body: seen.body,
        response_status: Some(status),
        response_headers: None,
        response_body: Bytes::new(),
        response_size: None,
        latency: started.elapsed(),
        correlation_id: None,
        source_ip: seen.source.map(|s| s.to_string()),
        error,
        timed_out: false,
        retry_of: None,
        attempt: 1,
        secrets,
        secret_names: vec![ep.verifier.header.clone()],
    };
    let recorder = st.recorder.clone();
    actix_web::rt::spawn(async move { recorder.record(exchange).await });
}

async fn handle(
    req: &HttpRequest,
    ctx: &Context,
    st: &Inbound,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    seen: &mut Seen,
) -> Result<HttpResponse, ApiError> {
    let (tenant, endpoint_path) = path.into_inner();
    let ep = lookup(ctx, st, &tenant, &endpoint_path).await?;
    seen.endpoint = Some(ep.clone());

    let (source, trusted_peer) = source(req, st, &ep)?;
    seen.source = Some(source);
    let body = read_body(req, payload, st.max_body).await?;
    seen.body = Bytes::copy_from_slice(&body);
    let headers = text_headers(req);
    let url = called_url(req, trusted_peer);
    let now = Utc::now();
    let request = Request {
        method: req.method().as_str(),
        url: &url,
        headers: &headers,
        body: &body,
        now: now.timestamp(),
    };
    if let Err(r) = ep.verifier.verify(&request, &ep.secrets_at(now)) {
        metrics::counter!("hub_inbound_rejected_total", "reason" => r.code()).increment(1);
        return Err(rejected(&r));
    }

    let parsed = inbound::parse_body(&headers, &body);
    match handshake(ep.verifier.scheme, parsed.as_ref()) {
        Some(Handshake::Json(answer)) => return Ok(HttpResponse::Ok().json(answer)),
        Some(Handshake::Empty) => return Ok(HttpResponse::Ok().finish()),
        None => {}
    }

    let provider_id = inbound::provider_event_id(ep.verifier.scheme, &headers, parsed.as_ref());
    let event_type = inbound::provider_event_type(ep.verifier.scheme, &headers, parsed.as_ref());
    let stored_headers: serde_json::Map<String, Value> = headers
        .iter()
        .filter(|(k, _)| !SECRET_HEADERS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    // The first processing attempt commits with the request: a referenced
    // transformation template runs first (compiled and cached), the rest
    // is pure.
    let id = Uuid::now_v7();
    let tenant_id = TenantId(ep.row.tenant_id);
    let template = ep.row.transform_template.as_ref();
    let mapped =
        crate::inbound::mapped(&st.templates, tenant_id, template, parsed.as_ref(), &body).await;
    let processed = Processed {
        id,
        provider_event_id: provider_id.as_deref(),
        event_type: event_type.as_deref(),
        payload: parsed.as_ref(),
        mapped: mapped.as_ref(),
    };
    let (outcome, typed) = first_attempt(&ep, st, &processed);
    let event = NewEvent {
        id,
        tenant_id: ep.row.tenant_id,
        endpoint_id: ep.row.id,
        dedupe_key: inbound::dedupe_key(provider_id.as_deref(), &body),
        provider_event_id: provider_id,
        event_type,
        method: req.method().as_str().to_owned(),
        headers: Value::Object(stored_headers),
        body,
        source_ip: source.to_string(),
        received_at: now,
        outcome,
    };
    let info = EndpointInfo {
        path: ep.row.endpoint_path.clone(),
        integration_id: ep.row.integration_id,
        handler_type: ep.handler().as_str().to_owned(),
        target_service: ep.row.target_service.clone(),
    };
    answer(st.writer.write(event, info, typed).await)
}

/// What the first processing attempt of a request reads from it.
struct Processed<'a> {
    id: Uuid,
    provider_event_id: Option<&'a str>,
    event_type: Option<&'a str>,
    payload: Option<&'a Value>,
    mapped: Option<&'a Result<Value, String>>,
}

/// The first processing attempt of a request to `ep` (counted in the
/// metrics): its outcome and the typed event it publishes.
fn first_attempt(
    ep: &LiveEndpoint,
    st: &Inbound,
    p: &Processed<'_>,
) -> (processing::Outcome, Option<hub_domain::Envelope>) {
    let (outcome, typed) = processing::attempt(
        &processing::Input {
            source: crate::NAME,
            id: p.id,
            tenant_id: TenantId(ep.row.tenant_id),
            endpoint_id: ep.row.id,
            endpoint_path: &ep.row.endpoint_path,
            integration_id: ep.row.integration_id,
            provider_event_id: p.provider_event_id,
            event_type: p.event_type,
            handler_type: &ep.row.handler_type,
            event_types: &ep.row.event_types,
            transform_template: ep.row.transform_template.as_ref(),
            mapped: p.mapped,
            target_service: ep.row.target_service.as_deref(),
            payload: p.payload,
            attempts: 1,
        },
        &st.policy,
    );
    count(&outcome);
    (outcome, typed)
}

/// The answer once the writer has stored the request (or could not).
fn answer(written: Result<Stored, WriteError>) -> Result<HttpResponse, ApiError> {
    match written {
        Ok(stored) => {
            metrics::counter!("hub_inbound_accepted_total", "duplicate" => if stored.duplicate { "true" } else { "false" })
                .increment(1);
            Ok(HttpResponse::Ok()
                .json(json!({"id": stored.event_id, "duplicate": stored.duplicate})))
        }
        Err(WriteError::Unavailable) => Err(ApiError::new(
            ErrorCode::DependencyUnavailable,
            "the database is unavailable; retry later",
        )),
        Err(WriteError::Failed(e)) => Err(ApiError::internal(e)),
    }
}
