//! Request logs (`api_request_logs`, written by `hub_gateway::logs`): the
//! tenant's search, one integration's logs and one row in full. Rows are
//! stored redacted; another tenant's row or integration is a 404.

pub mod body;

use crate::routes::list::{ListParams, Paging, either};
use crate::routes::{Call, find};
use actix_web::{HttpResponse, web};
use body::{LogFilter, LogPage};
use chrono::{DateTime, Utc};
use hub_platform::error::{ApiError, ErrorCode};
use hub_storage::api_logs::{self, Filter, LogDetail};
use hub_storage::integrations::Integration;
use uuid::Uuid;

type Problem = hub_platform::error::Problem;

/// The status classes a row has.
pub const STATUSES: &[&str] = &["SUCCESS", "CLIENT_ERROR", "SERVER_ERROR", "TIMEOUT"];
/// The directions a row has.
pub const DIRECTIONS: &[&str] = &["INBOUND", "OUTBOUND"];
/// How long a search may run (a broad full-text scan is stopped, 400).
pub const SEARCH_TIMEOUT_MS: u32 = 10_000;

fn bad(param: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameter, format!("{param}: {message}"))
        .with_extension("field", serde_json::json!(param))
}

/// `value` (any case) as one of `options`.
fn one_of(
    param: &str,
    value: &Option<String>,
    options: &[&'static str],
) -> Result<Option<&'static str>, ApiError> {
    let Some(v) = value else { return Ok(None) };
    let upper = v.to_ascii_uppercase();
    options
        .iter()
        .find(|o| **o == upper)
        .copied()
        .map(Some)
        .ok_or_else(|| bad(param, format!("must be {}", either(options))))
}

fn code(param: &str, value: &Option<String>) -> Result<Option<i32>, ApiError> {
    value
        .as_deref()
        .map(|v| match v.trim().parse::<i32>() {
            Ok(n) if (100..=599).contains(&n) => Ok(n),
            _ => Err(bad(
                param,
                format!("must be an HTTP status code, 100-599 (got {v:?})"),
            )),
        })
        .transpose()
}

fn time(param: &str, value: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    bad(
                        param,
                        format!("must be an RFC 3339 time, e.g. 2025-01-31T12:00:00Z (got {v:?})"),
                    )
                })
        })
        .transpose()
}

fn text(
    param: &str,
    value: &Option<String>,
    min: usize,
    max: usize,
) -> Result<Option<String>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            let n = v.chars().count();
            if n < min || n > max {
                Err(bad(
                    param,
                    format!("must be {min}-{max} characters long (got {n})"),
                ))
            } else {
                Ok(v.to_owned())
            }
        })
        .transpose()
}

/// The query parameters turned into a storage filter (the first bad
/// parameter is a 400 naming it).
pub fn filter_of(q: &LogFilter, paging: &Paging) -> Result<Filter, ApiError> {
    let integration_id = q
        .integration_id
        .as_deref()
        .map(|v| {
            Uuid::parse_str(v)
                .map_err(|_| bad("integration_id", format!("must be a UUID (got {v:?})")))
        })
        .transpose()?;
    let exact = code("status_code", &q.status_code)?;
    let (mut min, mut max) = (
        code("status_code_min", &q.status_code_min)?,
        code("status_code_max", &q.status_code_max)?,
    );
    if let Some(c) = exact {
        if min.is_some() || max.is_some() {
            return Err(bad(
                "status_code",
                "give status_code or status_code_min/status_code_max, not both",
            ));
        }
        (min, max) = (Some(c), Some(c));
    }
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        return Err(bad(
            "status_code_min",
            format!("must not be above status_code_max ({lo} > {hi})"),
        ));
    }
    let (mut from, to) = (time("from", &q.from)?, time("to", &q.to)?);
    let text_search = text("q", &q.q, 3, 200)?;
    // A text search scans what the other filters select: without a time
    // range it looks at the last day (before `to`, if given).
    if text_search.is_some() && from.is_none() {
        from = Some(to.unwrap_or_else(chrono::Utc::now) - chrono::TimeDelta::days(1));
    }
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(bad("from", "must be before `to`"));
    }
    Ok(Filter {
        integration_id,
        direction: one_of("direction", &q.direction, DIRECTIONS)?,
        method: text("method", &q.method, 1, 10)?.map(|m| m.to_ascii_uppercase()),
        status: one_of("status", &q.status, STATUSES)?,
        status_code_min: min,
        status_code_max: max,
        path_prefix: text("path_prefix", &q.path_prefix, 1, 500)?,
        correlation_id: text("correlation_id", &q.correlation_id, 1, 100)?,
        from,
        to,
        q: text_search,
        before: paging.cursor,
    })
}

async fn page(call: &Call, f: &Filter, paging: &Paging) -> Result<HttpResponse, ApiError> {
    let rows = api_logs::search(
        &call.ctx.pool,
        call.t.id,
        f,
        paging.limit,
        SEARCH_TIMEOUT_MS,
    )
    .await
    .map_err(|e| {
        if api_logs::is_timeout(&e) {
            bad(
                "q",
                "the search took too long; narrow it with from/to or other filters",
            )
        } else {
            e.into()
        }
    })?;
    let page = paging.page_of(rows);
    Ok(HttpResponse::Ok().json(LogPage {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

/// Searches the tenant's request logs, newest first.
#[utoipa::path(get, path = "/api/v1/api-logs/search", tag = "api-logs", security(("api_key" = [], "tenant" = [])),
    params(LogFilter, ListParams),
    responses((status = 200, body = LogPage),
        (status = 400, description = "invalid_parameter naming the parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "integration_id is not one of the tenant's integrations", body = Problem, content_type = "application/problem+json")))]
pub async fn search(
    call: Call,
    q: web::Query<LogFilter>,
    list: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let paging = Paging::parse(&list)?;
    let f = filter_of(&q, &paging)?;
    if let Some(id) = f.integration_id {
        find::<Integration>(&call.ctx, &call.t, id).await?;
    }
    page(&call, &f, &paging).await
}

/// One integration's request logs, newest first (the search's filters).
#[utoipa::path(get, path = "/api/v1/integrations/{id}/logs", tag = "api-logs", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), LogFilter, ListParams),
    responses((status = 200, body = LogPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn integration_logs(
    call: Call,
    id: web::Path<Uuid>,
    q: web::Query<LogFilter>,
    list: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let paging = Paging::parse(&list)?;
    let mut f = filter_of(&q, &paging)?;
    if f.integration_id.is_some_and(|i| i != *id) {
        return Err(bad("integration_id", "differs from the path's integration"));
    }
    find::<Integration>(&call.ctx, &call.t, *id).await?;
    f.integration_id = Some(*id);
    page(&call, &f, &paging).await
}

/// One request log row in full: request and response headers and bodies,
/// as stored (redacted).
#[utoipa::path(get, path = "/api/v1/api-logs/{logId}", tag = "api-logs", security(("api_key" = [], "tenant" = [])),
    params(("logId" = Uuid, Path)),
    responses((status = 200, body = LogDetail), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(Call { t, ctx }: Call, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let row = api_logs::get(&ctx.pool, t.id, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("request log"))?;
    Ok(HttpResponse::Ok().json(row))
}

/// Registers the routes (before the integrations scope, which would
/// otherwise take `/integrations/{id}/logs`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-logs/search", web::get().to(search))
        .route("/api-logs/{id}", web::get().to(get))
        .route("/integrations/{id}/logs", web::get().to(integration_logs));
}
