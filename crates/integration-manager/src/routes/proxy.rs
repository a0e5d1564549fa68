//! `ANY /api/v1/integrations/{id}/proxy/{path}`: a client's call to the
//! integration's provider through the gateway (`hub_gateway::engine`):
//! credentials injected, rate limit, breaker, retries, request log.
//!
//! The provider's status, safe headers and body come back streamed, with
//! `X-Hub-Request-Id` (the log rows' correlation id), `X-Hub-Attempts` and
//! `X-RateLimit-Remaining`. What the gateway refuses is a problem document:
//! 409 paused or not connected, 429 over the limit with no room to wait,
//! 503 breaker open (both with `Retry-After`), 502/504 no answer.

use super::Call;
use actix_web::{HttpRequest, HttpResponse, web};
use hub_gateway::engine::{Gateway, GatewayError, Outgoing};
use hub_gateway::tokens::TokenError;
use hub_platform::error::{ApiError, ErrorCode};
use uuid::Uuid;

/// The header that asks to skip the rate-limit queue.
pub const PRIORITY_HEADER: &str = "x-hub-priority";

/// Forwards the request to the integration's provider.
#[utoipa::path(
    get, path = "/api/v1/integrations/{id}/proxy/{path}", tag = "gateway",
    security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), ("path" = String, Path, description = "Path below the provider's base URL; the query string is forwarded too"),
        ("X-Hub-Priority" = Option<String>, Header, description = "`high` skips the rate-limit queue (not a provider's own limit)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes POST and PATCH retryable; forwarded to the provider")),
    responses(
        (status = 200, description = "The provider's answer, any status, streamed with its safe headers plus X-Hub-Request-Id, X-Hub-Attempts and X-RateLimit-Remaining"),
        (status = 404, body = hub_platform::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Paused, disabled or not connected", body = hub_platform::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached and the queue is full or the wait too long (Retry-After)", body = hub_platform::error::Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider could not be reached", body = hub_platform::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Circuit open (Retry-After)", body = hub_platform::error::Problem, content_type = "application/problem+json"),
        (status = 504, description = "The provider did not answer in time", body = hub_platform::error::Problem, content_type = "application/problem+json")))]
pub async fn proxy(
    Call { t, ctx }: Call,
    gw: web::Data<Gateway>,
    path: web::Path<(Uuid, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (id, _) = path.into_inner();
    let body = read_body(payload, ctx.config.gateway_max_body).await?;
    let it = gw
        .load(t.id, id)
        .await
        .map_err(api_error)?
        .ok_or_else(|| ApiError::not_found("integration"))?;
    let request_id = Uuid::now_v7().to_string();
    let out = Outgoing {
        method: http::Method::from_bytes(req.method().as_str().as_bytes())
            .map_err(|_| ApiError::new(ErrorCode::MethodNotAllowed, "unknown method"))?,
        path_and_query: provider_path(&req),
        headers: request_headers(&req),
        body,
        high_priority: req
            .headers()
            .get(PRIORITY_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("high")),
        retries: true,
        request_id: request_id.clone(),
        connection_test: false,
    };
    let answer = gw
        .send(&it, out)
        .await
        .map_err(|e| api_error(e).with_extension("request_id", request_id.clone().into()))?;
    let status = actix_web::http::StatusCode::from_u16(answer.status).map_err(|_| {
        ApiError::new(
            ErrorCode::ProviderUnreachable,
            format!("the provider answered an invalid status {}", answer.status),
        )
    })?;
    let mut response = HttpResponse::build(status);
    for (k, v) in &answer.headers {
        response.append_header((k.as_str(), v.as_bytes()));
    }
    response
        .insert_header(("X-Hub-Request-Id", request_id))
        .insert_header(("X-Hub-Attempts", answer.attempts.to_string()))
        .insert_header(("X-RateLimit-Remaining", answer.remaining.to_string()));
    Ok(response.streaming(answer.body))
}

/// The request body, refused with a 413 problem past `max` bytes.
async fn read_body(mut payload: web::Payload, max: usize) -> Result<web::Bytes, ApiError> {
    use futures::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                format!("the request body could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > max {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the proxy forwards bodies of at most {max} bytes (GATEWAY_MAX_BODY)"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The client's headers, as the gateway's HTTP types (actix and reqwest
/// use different versions of the `http` crate).
fn request_headers(req: &HttpRequest) -> http::HeaderMap {
    req.headers()
        .iter()
        .filter_map(|(k, v)| {
            let name = http::HeaderName::from_bytes(k.as_str().as_bytes()).ok()?;
            let value = http::HeaderValue::from_bytes(v.as_bytes()).ok()?;
            Some((name, value))
        })
        .collect()
}

/// The raw path below `…/proxy/` (still percent-encoded) and the query.
fn provider_path(req: &HttpRequest) -> String {
    let path = req.uri().path();
    let rest = path
        .find("/proxy/")
        .map(|i| &path[i + "/proxy/".len()..])
        .unwrap_or("");
    match req.uri().query() {
        Some(q) if !q.is_empty() => format!("{rest}?{q}"),
        _ => rest.to_owned(),
    }
}

/// The problem document for a gateway refusal or failure.
pub fn api_error(e: GatewayError) -> ApiError {
    let detail = e.to_string();
    match e {
        GatewayError::NotCallable(_) => ApiError::new(ErrorCode::IntegrationNotCallable, detail),
        GatewayError::BadRequest(_) => ApiError::new(ErrorCode::InvalidParameter, detail),
        GatewayError::Throttled { retry_after, .. } => {
            ApiError::new(ErrorCode::RateLimited, detail).with_retry_after(retry_after)
        }
        GatewayError::CircuitOpen { retry_after } => {
            ApiError::new(ErrorCode::CircuitOpen, detail).with_retry_after(retry_after)
        }
        GatewayError::Token(TokenError::NotConnected(_) | TokenError::Revoked(_)) => {
            ApiError::new(ErrorCode::IntegrationNotCallable, detail)
        }
        GatewayError::Token(TokenError::Unavailable(_)) => {
            ApiError::new(ErrorCode::ProviderUnreachable, detail)
        }
        GatewayError::Token(TokenError::Internal(_)) => ApiError::internal(detail),
        GatewayError::Unreachable {
            timed_out,
            attempts,
            ..
        } => {
            let code = if timed_out {
                ErrorCode::ProviderTimeout
            } else {
                ErrorCode::ProviderUnreachable
            };
            ApiError::new(code, detail).with_extension("attempts", attempts.into())
        }
        GatewayError::Unavailable(_) => ApiError::new(ErrorCode::DependencyUnavailable, detail),
    }
}
