//! Request logs (`api_request_logs`): one row per HTTP attempt the gateway
//! made or inbound request the hub received, already redacted by the writer
//! (`hub_gateway::logs`). Written in batches ([`insert_batch`], one
//! statement that also counts the hourly usage rows in `rate_limit_buckets`),
//! searched newest first by UUIDv7 id ([`search`]), pruned by walking the
//! primary key ([`prune`]). `migrations/0014_api_logs.sql` says which
//! indexes serve which search.

use crate::Result;
use chrono::{DateTime, Utc};
use hub_domain::TenantId;
use serde_json::Value;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

/// The `bucket_key` of the hourly usage rows in `rate_limit_buckets`
/// (`max_requests` 0: a usage row, not a limit).
pub const USAGE_BUCKET: &str = "usage:hour";

/// One row to write (already redacted and capped).
#[derive(Debug, Clone)]
pub struct NewLog {
    /// Id (UUIDv7, chosen by the caller).
    pub id: Uuid,
    /// Owner.
    pub tenant_id: Uuid,
    /// Integration, if any.
    pub integration_id: Option<Uuid>,
    /// `INBOUND` or `OUTBOUND`.
    pub direction: &'static str,
    /// HTTP method.
    pub method: String,
    /// URL (redacted).
    pub url: String,
    /// Its path.
    pub path: String,
    /// Its query parameters (redacted), a JSON object.
    pub query_params: Option<Value>,
    /// Request headers (redacted), a JSON object.
    pub headers: Value,
    /// Request body as stored (`None`: not kept).
    pub body: Option<String>,
    /// The request body's real size.
    pub body_size: i64,
    /// Bytes cut from the stored request body.
    pub body_truncated: i32,
    /// Response status code (`None`: no answer).
    pub response_status: Option<i32>,
    /// Response headers (redacted).
    pub response_headers: Option<Value>,
    /// Response body as stored.
    pub response_body: Option<String>,
    /// The response's real size, when known.
    pub response_size: Option<i64>,
    /// Bytes cut from the stored response body.
    pub response_truncated: i32,
    /// Latency (ms).
    pub response_time_ms: i32,
    /// Correlation id (`X-Hub-Request-Id`).
    pub correlation_id: Option<String>,
    /// Source address (inbound).
    pub source_ip: Option<String>,
    /// `SUCCESS`, `CLIENT_ERROR`, `SERVER_ERROR` or `TIMEOUT`.
    pub status: &'static str,
    /// Error text (no secrets).
    pub error_message: Option<String>,
    /// The previous attempt's id.
    pub retry_of: Option<Uuid>,
    /// Attempt number (1, 2, …).
    pub attempt: i32,
    /// Whether the attempt timed out.
    pub timed_out: bool,
    /// When the exchange started.
    pub created_at: DateTime<Utc>,
}

macro_rules! column {
    ($rows:expr, $f:ident) => {
        $rows.iter().map(|r| r.$f.clone()).collect::<Vec<_>>()
    };
}

/// The insert of a batch: every row from UNNEST arrays, then the hourly
/// usage of the batch's OUTBOUND rows added to `rate_limit_buckets` (one
/// statement, one round trip). Usage rows are upserted in integration order
/// so that concurrent writers (replicas) lock them in the same order.
const INSERT: &str = "WITH logs AS (
    INSERT INTO api_request_logs (id, tenant_id, integration_id, direction, method, url, path, query_params,
        headers, body, body_size, body_truncated, response_status, response_headers, response_body,
        response_size, response_truncated, response_time_ms, correlation_id, source_ip, status,
        error_message, retry_of, attempt, timed_out, created_at)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
        $8::jsonb[], $9::jsonb[], $10::text[], $11::bigint[], $12::int[], $13::int[], $14::jsonb[], $15::text[],
        $16::bigint[], $17::int[], $18::int[], $19::text[], $20::text[], $21::text[], $22::text[], $23::uuid[],
        $24::int[], $25::bool[], $26::timestamptz[])
    RETURNING integration_id, direction, created_at
), usage AS (
    INSERT INTO rate_limit_buckets (id, integration_id, bucket_key, window_start, window_end, request_count, max_requests)
    SELECT gen_random_uuid(), u.integration_id, 'usage:hour', u.hour, u.hour + INTERVAL '1 hour', u.n, 0
      FROM (SELECT l.integration_id, date_trunc('hour', l.created_at, 'UTC') AS hour, COUNT(*)::int AS n
              FROM logs l JOIN integrations i ON i.id = l.integration_id
             WHERE l.direction = 'OUTBOUND'
             GROUP BY 1, 2) u
     ORDER BY u.integration_id, u.hour
    ON CONFLICT (integration_id, bucket_key, window_start)
    DO UPDATE SET request_count = rate_limit_buckets.request_count + EXCLUDED.request_count
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM logs) + 0 * (SELECT COUNT(*) FROM usage)";

/// Writes `rows` (and their hourly usage) in one statement.
pub async fn insert_batch(conn: &mut sqlx::PgConnection, rows: &[NewLog]) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let directions: Vec<&str> = rows.iter().map(|r| r.direction).collect();
    let statuses: Vec<&str> = rows.iter().map(|r| r.status).collect();
    let n: i64 = sqlx::query_scalar(INSERT)
        .bind(column!(rows, id))
        .bind(column!(rows, tenant_id))
        .bind(column!(rows, integration_id))
        .bind(directions)
        .bind(column!(rows, method))
        .bind(column!(rows, url))
        .bind(column!(rows, path))
        .bind(column!(rows, query_params))
        .bind(column!(rows, headers))
        .bind(column!(rows, body))
        .bind(column!(rows, body_size))
        .bind(column!(rows, body_truncated))
        .bind(column!(rows, response_status))
        .bind(column!(rows, response_headers))
        .bind(column!(rows, response_body))
        .bind(column!(rows, response_size))
        .bind(column!(rows, response_truncated))
        .bind(column!(rows, response_time_ms))
        .bind(column!(rows, correlation_id))
        .bind(column!(rows, source_ip))
        .bind(statuses)
        .bind(column!(rows, error_message))
        .bind(column!(rows, retry_of))
        .bind(column!(rows, attempt))
        .bind(column!(rows, timed_out))
        .bind(column!(rows, created_at))
        .fetch_one(&mut *conn)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// A log row as lists show it (no headers or bodies).
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = ApiLogSummary)]
pub struct LogSummary {
    /// Id (UUIDv7: its order is time order).
    pub id: Uuid,
    /// Integration, if any.
    pub integration_id: Option<Uuid>,
    /// `INBOUND` or `OUTBOUND`.
    pub direction: String,
    /// HTTP method.
    pub method: String,
    /// URL, secrets redacted.
    pub url: String,
    /// Path.
    pub path: Option<String>,
    /// Response status code (null: no answer).
    pub response_status: Option<i32>,
    /// `SUCCESS`, `CLIENT_ERROR`, `SERVER_ERROR` or `TIMEOUT`.
    pub status: String,
    /// Latency (ms).
    pub response_time_ms: Option<i32>,
    /// The request body's size (bytes).
    pub body_size: Option<i64>,
    /// The response's size (bytes), when known.
    pub response_size: Option<i64>,
    /// Correlation id (the client call's `X-Hub-Request-Id`).
    pub correlation_id: Option<String>,
    /// Source address (inbound requests).
    pub source_ip: Option<String>,
    /// What went wrong.
    pub error_message: Option<String>,
    /// The previous attempt of the same call.
    pub retry_of: Option<Uuid>,
    /// Attempt number (1, 2, …).
    pub attempt: i32,
    /// Whether the attempt timed out.
    pub timed_out: bool,
    /// When the exchange started.
    pub created_at: DateTime<Utc>,
}

const SUMMARY_COLUMNS: &str =
    "id, integration_id, direction, method, url, path, response_status, status,
    response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of,
    attempt, timed_out, created_at";

/// One log row in full (headers and bodies, as stored: redacted).
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = ApiLog)]
pub struct LogDetail {
    /// The summary fields.
    #[sqlx(flatten)]
    #[serde(flatten)]
    #[schema(inline)]
    pub summary: LogSummary,
    /// Query parameters (redacted).
    pub query_params: Option<Value>,
    /// Request headers (redacted).
    pub headers: Option<Value>,
    /// Request body (redacted; null when not kept, `[binary N bytes]` for binary).
    pub body: Option<String>,
    /// Bytes cut from the stored request body (64 KiB cap).
    pub body_truncated: i32,
    /// Response headers (redacted).
    pub response_headers: Option<Value>,
    /// Response body (redacted, as `body`).
    pub response_body: Option<String>,
    /// Bytes cut from the stored response body.
    pub response_truncated: i32,
}

/// The tenant's log row `id`.
pub async fn get(pool: &PgPool, tenant: TenantId, id: Uuid) -> Result<Option<LogDetail>> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}, query_params, headers, body, body_truncated, response_headers,
                response_body, response_truncated
           FROM api_request_logs WHERE tenant_id = $1 AND id = $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// Search filters (all optional; combined with AND).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Integration.
    pub integration_id: Option<Uuid>,
    /// `INBOUND` or `OUTBOUND`.
    pub direction: Option<&'static str>,
    /// HTTP method (upper case).
    pub method: Option<String>,
    /// Status class (`SUCCESS`, …), one of the fixed values.
    pub status: Option<&'static str>,
    /// Lowest response status code.
    pub status_code_min: Option<i32>,
    /// Highest response status code.
    pub status_code_max: Option<i32>,
    /// Path prefix.
    pub path_prefix: Option<String>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Made at or after.
    pub from: Option<DateTime<Utc>>,
    /// Made before.
    pub to: Option<DateTime<Utc>>,
    /// Text in the URL or a body (case-insensitive).
    pub q: Option<String>,
    /// Only rows older than this id (the cursor).
    pub before: Option<Uuid>,
}

/// `%text%` for LIKE, its wildcards escaped.
fn contains_pattern(text: &str) -> String {
    format!("%{}%", like_escape(text))
}

fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The statement of a search: only the filters given, so each combination
/// gets a plan made for it. Status classes are spliced as literals (fixed
/// values): `status <> 'SUCCESS'` is what lets the planner use the partial
/// index of failures, which a parameter would not.
fn search_query(tenant: TenantId, f: &Filter, limit: u32) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new(format!(
        "SELECT {SUMMARY_COLUMNS} FROM api_request_logs WHERE tenant_id = "
    ));
    q.push_bind(tenant.0);
    if let Some(i) = f.integration_id {
        q.push(" AND integration_id = ").push_bind(i);
    }
    if let Some(d) = f.direction {
        q.push(" AND direction = ").push_bind(d);
    }
    if let Some(m) = &f.method {
        q.push(" AND method = ").push_bind(m.clone());
    }
    let failures_only =
        f.status.is_some_and(|s| s != "SUCCESS") || f.status_code_min.is_some_and(|m| m >= 400);
    if failures_only {
        q.push(" AND status <> 'SUCCESS'");
    }
    if let Some(s) = f.status {
        q.push(" AND status = ").push_bind(s);
    }
    if let Some(m) = f.status_code_min {
        q.push(" AND response_status >= ").push_bind(m);
    }
    if let Some(m) = f.status_code_max {
        q.push(" AND response_status <= ").push_bind(m);
    }
    if let Some(p) = &f.path_prefix {
        q.push(" AND path LIKE ")
            .push_bind(format!("{}%", like_escape(p)));
    }
    if let Some(c) = &f.correlation_id {
        q.push(" AND correlation_id = ").push_bind(c.clone());
    }
    if let Some(t) = f.from {
        q.push(" AND id >= hub_uuid7_floor(").push_bind(t).push(")");
    }
    if let Some(t) = f.to {
        q.push(" AND id < hub_uuid7_floor(").push_bind(t).push(")");
    }
    if let Some(b) = f.before {
        q.push(" AND id < ").push_bind(b);
    }
    if let Some(text) = &f.q {
        let p = contains_pattern(text);
        q.push(" AND (url ILIKE ")
            .push_bind(p.clone())
            .push(" OR body ILIKE ")
            .push_bind(p.clone())
            .push(" OR response_body ILIKE ")
            .push_bind(p)
            .push(")");
    }
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
    q
}

/// One page of the tenant's logs matching `f`, newest first (`limit + 1`
/// rows, so the page knows whether another follows). A full-text search
/// (`q`) scans the rows the other filters select, newest first, within
/// `statement_timeout` (`timeout_ms`): narrow it with a time range.
pub async fn search(
    pool: &PgPool,
    tenant: TenantId,
    f: &Filter,
    limit: u32,
    timeout_ms: u32,
) -> Result<Vec<LogSummary>> {
    let mut tx = pool.begin().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET LOCAL statement_timeout = {timeout_ms}"
    )))
    .execute(&mut *tx)
    .await?;
    let rows = search_query(tenant, f, limit)
        .build_query_as()
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows)
}

/// Whether `e` is a statement cancelled by its timeout (a search too broad).
pub fn is_timeout(e: &crate::StorageError) -> bool {
    match e {
        crate::StorageError::Other(sqlx::Error::Database(d)) => {
            d.code().as_deref() == Some("57014")
        }
        _ => false,
    }
}

/// Deletes up to `batch` rows made before `before`, oldest first (walking
/// the primary key); returns how many went.
pub async fn prune(pool: &PgPool, before: DateTime<Utc>, batch: u32) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM api_request_logs WHERE id IN (
             SELECT id FROM api_request_logs WHERE id < hub_uuid7_floor($1) ORDER BY id LIMIT $2)",
    )
    .bind(before)
    .bind(i64::from(batch))
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes the hourly usage rows that ended before `before`.
pub async fn prune_usage(pool: &PgPool, before: DateTime<Utc>) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM rate_limit_buckets WHERE bucket_key = 'usage:hour' AND window_end < $1",
    )
    .bind(before)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// OUTBOUND calls of the tenant's integration in the current hour (from
/// the usage rows the log writer keeps).
pub async fn usage_this_hour(pool: &PgPool, tenant: TenantId, integration: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COALESCE(SUM(b.request_count), 0)::bigint
           FROM rate_limit_buckets b JOIN integrations i ON i.id = b.integration_id AND i.tenant_id = $1
          WHERE b.integration_id = $2 AND b.bucket_key = 'usage:hour'
            AND b.window_start = date_trunc('hour', NOW(), 'UTC')",
    )
    .bind(tenant.0)
    .bind(integration)
    .fetch_one(pool)
    .await?)
}

/// Usage of one hour.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct HourUsage {
    /// Start of the hour.
    pub hour: DateTime<Utc>,
    /// OUTBOUND calls in it.
    pub requests: i64,
}

/// Per-hour OUTBOUND usage of the tenant's integration over the last
/// `hours` hours (hours without calls left out).
pub async fn hourly_usage(
    pool: &PgPool,
    tenant: TenantId,
    integration: Uuid,
    hours: u32,
) -> Result<Vec<HourUsage>> {
    Ok(sqlx::query_as(
        "SELECT b.window_start AS hour, b.request_count::bigint AS requests
           FROM rate_limit_buckets b JOIN integrations i ON i.id = b.integration_id AND i.tenant_id = $1
          WHERE b.integration_id = $2 AND b.bucket_key = 'usage:hour'
            AND b.window_start > NOW() - make_interval(hours => $3)
          ORDER BY b.window_start",
    )
    .bind(tenant.0)
    .bind(integration)
    .bind(i32::try_from(hours).unwrap_or(i32::MAX))
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }

    #[test]
    fn failure_searches_name_the_partial_index_predicate() {
        let t = TenantId(Uuid::nil());
        let sql = |f: &Filter| search_query(t, f, 50).into_sql().as_str().to_owned();
        assert!(!sql(&Filter::default()).contains("'SUCCESS'"));
        let f = Filter {
            status: Some("SERVER_ERROR"),
            ..Filter::default()
        };
        assert!(sql(&f).contains("status <> 'SUCCESS'"));
        let f = Filter {
            status_code_min: Some(500),
            ..Filter::default()
        };
        assert!(sql(&f).contains("status <> 'SUCCESS'"));
    }
}
