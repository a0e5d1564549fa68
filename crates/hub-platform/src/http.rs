//! HTTP plumbing shared by the services: request ids, access logs, HTTP
//! metrics, and problem+json for the framework's own errors (bad JSON, bad
//! path or query, unknown route).

use crate::error::{ApiError, ErrorCode};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, web};
use std::time::Instant;
use tracing::Instrument;

/// Header carrying the request id (accepted from the caller or made here).
pub const REQUEST_ID: &str = "x-request-id";

/// The request id of the current request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Middleware: request id, tracing span, access log and HTTP metrics.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().to_string();
    let service = req
        .app_data::<web::Data<ServiceName>>()
        .map(|s| s.0)
        .unwrap_or("hub");
    let span = tracing::info_span!(
        "http",
        %method,
        route = tracing::field::Empty,
        request_id = %id,
        status = tracing::field::Empty
    );
    let started = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    // The route pattern is read once the router has matched the request: it
    // is then looked up by the matched resource, while asking before
    // matched every pattern's regex against the path again (a twentieth of
    // the manager's CPU in `cargo xtask bench inbound`).
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    span.record("route", route.as_str());
    span.record("status", status);
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), v);
    }
    if route != "/health" && route != "/metrics" && route != "/ready" {
        span.in_scope(|| {
            tracing::info!(
                status,
                latency_ms = elapsed.as_secs_f64() * 1000.0,
                "request"
            )
        });
    }
    let labels = [
        ("service", service.to_owned()),
        ("method", method),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("hub_http_requests_total", &labels).increment(1);
    metrics::histogram!("hub_http_request_duration_seconds", &labels[..3])
        .record(elapsed.as_secs_f64());
    Ok(res)
}

/// The service's name, as app data (for metrics labels).
#[derive(Debug, Clone, Copy)]
pub struct ServiceName(pub &'static str);

/// JSON body settings: size limit and problem+json errors.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req: &HttpRequest| {
            let e = match &err {
                JsonPayloadError::ContentType => ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "send the body as JSON with Content-Type: application/json",
                ),
                JsonPayloadError::Overflow { limit }
                | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the body is larger than {limit} bytes"),
                ),
                JsonPayloadError::Deserialize(d) => ApiError::new(
                    ErrorCode::InvalidJson,
                    format!("invalid JSON body: {}", redact_values(&d.to_string())),
                ),
                other => ApiError::new(
                    ErrorCode::InvalidJson,
                    format!("invalid JSON body: {other}"),
                ),
            };
            e.into()
        })
}

/// serde quotes offending string values in its messages (`invalid type:
/// string "sk_live_…", expected …`); a value sent in the wrong place may be a
/// secret, so it is never echoed back. Field names (in backticks) are kept.
pub fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find('"') {
        out.push_str(&rest[..i]);
        match rest[i + 1..].find('"') {
            Some(j) => {
                out.push_str("\"…\"");
                rest = &rest[i + 1 + j + 1..];
            }
            None => {
                out.push_str("\"…");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Path parameter errors as problem+json.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("invalid path parameter: {err}"),
        )
        .into()
    })
}

/// Query string errors as problem+json.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!(
                "invalid query parameter: {}",
                redact_values(&err.to_string())
            ),
        )
        .into()
    })
}

/// The answer for routes that do not exist.
pub async fn route_not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::RouteNotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// A page of a list: `{"data": [...], "next_cursor": ...}`.
#[derive(Debug, serde::Serialize)]
pub struct Page<T> {
    /// The items.
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of `limit` asked items; `id` gives the keyset position of an item.
    pub fn new(mut data: Vec<T>, limit: u32, id: impl Fn(&T) -> uuid::Uuid) -> Self {
        let next_cursor = if data.len() as u32 > limit {
            data.truncate(limit as usize);
            data.last().map(|t| hub_domain::cursor::encode(id(t)))
        } else {
            None
        };
        Self { data, next_cursor }
    }
}

/// List query parameters shared by every list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListParams {
    /// Validated limit and decoded cursor position. The storage query should
    /// ask for `limit + 1` rows so [`Page::new`] knows whether more follow.
    pub fn parse(&self) -> Result<(u32, Option<uuid::Uuid>), ApiError> {
        let limit = hub_domain::cursor::limit(self.limit)?;
        let after = match &self.cursor {
            None => None,
            Some(c) => Some(hub_domain::cursor::decode(c).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidParameter,
                    "cursor: not a cursor returned by this API",
                )
            })?),
        };
        Ok((limit, after))
    }
}

#[cfg(test)]
mod tests {
    use super::redact_values;

    #[test]
    fn quoted_values_are_not_echoed() {
        let m = redact_values(
            r#"invalid type: string "sk_live_secret", expected struct X at line 1 column 20"#,
        );
        assert!(!m.contains("sk_live"), "{m}");
        assert!(m.contains("expected struct X at line 1 column 20"));
        assert_eq!(
            redact_values("unknown field `extra`"),
            "unknown field `extra`"
        );
        assert!(!redact_values(r#"bad "unterminated secret"#).contains("secret"));
    }
}
