//! The request log: one `api_request_logs` row per HTTP attempt (OUTBOUND,
//! through the gateway) or received request (INBOUND webhooks), redacted
//! before it leaves the caller's task and written in batches off the
//! request path.
//!
//! [`Recorder::record`] redacts and caps the exchange (in the caller's task,
//! so that the one writer only binds rows) and queues it on a bounded
//! channel. The writer task takes everything queued, up to [`MAX_BATCH`] rows
//! or what gathered within [`LINGER`] of the first, and inserts it in one
//! statement together with the hourly usage rows
//! (`hub_storage::api_logs::insert_batch`). A failed batch is retried with
//! backoff while the database is unavailable, then dropped with an error:
//! the log never holds the request path. [`prune_loop`] applies
//! `LOG_RETENTION_DAYS`.

pub use bytes::Bytes;
pub use http::{HeaderMap, HeaderName, HeaderValue};
use hub_connectors::redact::{self, REDACTED, Redactor};
use hub_storage::api_logs::{self, NewLog};
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Stored bodies are cut to this many bytes (on a character boundary).
pub const MAX_BODY: usize = 64 * 1024;
/// Most rows in one insert.
pub const MAX_BATCH: usize = 1000;
/// How long the writer gathers rows after the first of a batch.
pub const LINGER: Duration = Duration::from_millis(20);
/// Rows queued at most before [`Recorder::record`] waits for the writer.
pub const QUEUE: usize = 32 * 1024;
/// Rows deleted per retention statement.
pub const PRUNE_BATCH: u32 = 5000;

/// Which way an exchange went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A request the hub received (inbound webhooks).
    Inbound,
    /// A request the hub made to a provider.
    Outbound,
}

impl Direction {
    /// `INBOUND` / `OUTBOUND`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "INBOUND",
            Direction::Outbound => "OUTBOUND",
        }
    }
}

/// One HTTP exchange, as sent and received, BEFORE redaction.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The row id (UUIDv7), chosen by the caller (`retry_of` links attempts).
    pub id: Uuid,
    /// Owner.
    pub tenant_id: Uuid,
    /// Integration, if any.
    pub integration_id: Option<Uuid>,
    /// Which way it went.
    pub direction: Direction,
    /// HTTP method.
    pub method: String,
    /// Full URL as sent, credentials in the query included.
    pub url: String,
    /// Request headers as sent (Authorization etc. included).
    pub request_headers: HeaderMap,
    /// Request body as sent (the recorder caps it).
    pub request_body: Bytes,
    /// Response status (`None`: no answer: connection error, timeout).
    pub response_status: Option<u16>,
    /// Response headers.
    pub response_headers: Option<HeaderMap>,
    /// At most the first 64 KiB of the answer (the caller caps while streaming).
    pub response_body: Bytes,
    /// The whole answer's size when known.
    pub response_size: Option<u64>,
    /// How long the exchange took.
    pub latency: Duration,
    /// `X-Hub-Request-Id` of the client call (all attempts share it).
    pub correlation_id: Option<String>,
    /// Source address (inbound).
    pub source_ip: Option<String>,
    /// For a human, never containing secrets (scrubbed anyway).
    pub error: Option<String>,
    /// Whether the attempt timed out.
    pub timed_out: bool,
    /// The previous attempt's row id.
    pub retry_of: Option<Uuid>,
    /// 1, 2, …
    pub attempt: u32,
    /// Secret values used in this exchange: scrubbed wherever they appear.
    pub secrets: Vec<String>,
    /// Extra header/query-parameter names that hold secrets.
    pub secret_names: Vec<String>,
}

/// What is logged (`LOG_REQUEST_BODIES`, `LOG_RESPONSE_BODIES`,
/// `LOG_RETENTION_DAYS`).
#[derive(Debug, Clone, Copy)]
pub struct LogSettings {
    /// Keep request bodies.
    pub request_bodies: bool,
    /// Keep response bodies.
    pub response_bodies: bool,
    /// Days rows are kept.
    pub retention_days: u32,
}

enum Msg {
    Row(Box<NewLog>),
    Flush(oneshot::Sender<()>),
    Stop,
}

/// The handle callers record through (cheap to clone).
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Msg>,
    settings: Arc<LogSettings>,
}

impl Recorder {
    /// Starts the writer task; the future resolves once it has written
    /// everything queued before [`Recorder::stop`].
    pub fn spawn(
        pool: sqlx::PgPool,
        settings: LogSettings,
    ) -> (Recorder, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_loop(pool, rx));
        let done = async move {
            let _ = task.await;
        };
        (
            Recorder {
                tx,
                settings: Arc::new(settings),
            },
            done,
        )
    }

    /// Queues one exchange (redacted and capped here); returns at once
    /// unless the writer is [`QUEUE`] rows behind. After [`Recorder::stop`]
    /// the exchange is dropped.
    pub async fn record(&self, e: Exchange) {
        let row = to_row(&e, &self.settings);
        if self.tx.send(Msg::Row(Box::new(row))).await.is_err() {
            metrics::counter!("hub_api_logs_dropped_total", "reason" => "stopped").increment(1);
        }
    }

    /// Queues one exchange without waiting (for code that cannot await, such
    /// as a body stream ending): if the queue is full, a task waits for room.
    pub fn record_now(&self, e: Exchange) {
        let row = to_row(&e, &self.settings);
        match self.tx.try_send(Msg::Row(Box::new(row))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    if tx.send(msg).await.is_err() {
                        metrics::counter!("hub_api_logs_dropped_total", "reason" => "stopped")
                            .increment(1);
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                metrics::counter!("hub_api_logs_dropped_total", "reason" => "stopped").increment(1);
            }
        }
    }

    /// Waits until everything recorded so far is committed (or given up).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Asks the writer to write what is queued and stop (shutdown).
    pub async fn stop(&self) {
        let _ = self.tx.send(Msg::Stop).await;
    }

    /// The settings rows are made with.
    pub fn settings(&self) -> LogSettings {
        *self.settings
    }
}

/// `SUCCESS` (< 400), `CLIENT_ERROR` (4xx), `SERVER_ERROR` (5xx or no
/// answer) or `TIMEOUT`.
pub fn status_class(status: Option<u16>, timed_out: bool) -> &'static str {
    match (timed_out, status) {
        (true, _) => "TIMEOUT",
        (false, Some(s)) if s < 400 => "SUCCESS",
        (false, Some(s)) if s < 500 => "CLIENT_ERROR",
        _ => "SERVER_ERROR",
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    redact::cap(s, max).0.to_owned()
}

/// Headers as a JSON object (name → value; repeated names joined with
/// `, `), secret ones replaced, values scrubbed.
fn headers_json(r: &Redactor, headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        let v = match value.to_str() {
            Ok(v) => r.header(name.as_str(), v),
            Err(_) if r.is_secret(name.as_str()) => REDACTED.to_owned(),
            Err(_) => format!("[binary {} bytes]", value.len()),
        };
        match out.get_mut(name.as_str()) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&v);
            }
            _ => {
                out.insert(name.as_str().to_owned(), Value::String(v));
            }
        }
    }
    Value::Object(out)
}

/// A body as stored: redacted text capped at [`MAX_BODY`], or
/// `[binary N bytes]`; with how many bytes were cut.
fn stored_body(
    r: &Redactor,
    headers: Option<&HeaderMap>,
    body: &[u8],
    real_size: usize,
) -> (Option<String>, i32) {
    if body.is_empty() {
        return (None, 0);
    }
    let Some(text) = redact::text_of(body) else {
        return (Some(format!("[binary {real_size} bytes]")), 0);
    };
    let content_type = headers
        .and_then(|h| h.get(http::header::CONTENT_TYPE))
        .and_then(|v| v.to_str().ok());
    // Redact a little more than is kept, so that a secret across the cut
    // is still recognised as a whole.
    let (head, _) = redact::cap(text, MAX_BODY + 1024);
    let redacted = r.body(content_type, head);
    let (kept, _) = redact::cap(&redacted, MAX_BODY);
    // The original bytes the stored text stands for: all of them unless
    // something was cut (here, or by the caller while streaming).
    let represented = if kept.len() == redacted.len() && head.len() == text.len() {
        text.len()
    } else {
        kept.len().min(text.len())
    };
    let cut = real_size.saturating_sub(represented);
    (
        Some(kept.to_owned()),
        i32::try_from(cut).unwrap_or(i32::MAX),
    )
}

/// The path and query parameters of a (redacted) URL.
fn path_and_query(url: &str) -> (String, Option<Value>) {
    let parsed = url::Url::parse(url)
        .or_else(|_| url::Url::parse("http://placeholder").and_then(|b| b.join(url)));
    match parsed {
        Ok(u) => {
            let mut params = Map::new();
            for (k, v) in u.query_pairs() {
                params
                    .entry(k.into_owned())
                    .or_insert(Value::String(v.into_owned()));
            }
            let q = (!params.is_empty()).then_some(Value::Object(params));
            (u.path().to_owned(), q)
        }
        Err(_) => (url.split('?').next().unwrap_or(url).to_owned(), None),
    }
}

/// The row of an exchange: redacted, capped, classified.
pub fn to_row(e: &Exchange, settings: &LogSettings) -> NewLog {
    let r = Redactor::new(&e.secrets, &e.secret_names);
    let url = r.url(&e.url);
    let (path, query_params) = path_and_query(&url);
    let (body, body_truncated) = if settings.request_bodies {
        stored_body(
            &r,
            Some(&e.request_headers),
            &e.request_body,
            e.request_body.len(),
        )
    } else {
        (None, 0)
    };
    let response_real = e.response_size.map_or(e.response_body.len(), |s| {
        usize::try_from(s).unwrap_or(usize::MAX)
    });
    let (response_body, response_truncated) = if settings.response_bodies {
        stored_body(
            &r,
            e.response_headers.as_ref(),
            &e.response_body,
            response_real.max(e.response_body.len()),
        )
    } else {
        (None, 0)
    };
    NewLog {
        id: e.id,
        tenant_id: e.tenant_id,
        integration_id: e.integration_id,
        direction: e.direction.as_str(),
        method: truncate_chars(&e.method, 10),
        url,
        path,
        query_params,
        headers: headers_json(&r, &e.request_headers),
        body,
        body_size: i64::try_from(e.request_body.len()).unwrap_or(i64::MAX),
        body_truncated,
        response_status: e.response_status.map(i32::from),
        response_headers: e.response_headers.as_ref().map(|h| headers_json(&r, h)),
        response_body,
        response_size: e
            .response_size
            .or((e.response_status.is_some()).then_some(e.response_body.len() as u64))
            .map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
        response_truncated,
        response_time_ms: i32::try_from(e.latency.as_millis()).unwrap_or(i32::MAX),
        correlation_id: e.correlation_id.as_deref().map(|c| truncate_chars(c, 100)),
        source_ip: e.source_ip.as_deref().map(|s| truncate_chars(s, 45)),
        status: status_class(e.response_status, e.timed_out),
        error_message: e.error.as_deref().map(|m| r.scrub(m)),
        retry_of: e.retry_of,
        attempt: i32::try_from(e.attempt.max(1)).unwrap_or(i32::MAX),
        timed_out: e.timed_out,
        created_at: chrono::Utc::now() - chrono::Duration::from_std(e.latency).unwrap_or_default(),
    }
}

/// What one gathering of the queue produced.
#[derive(Default)]
struct Gathered {
    rows: Vec<NewLog>,
    flushes: Vec<oneshot::Sender<()>>,
    stop: bool,
    closed: bool,
}

/// Takes what is queued: up to [`MAX_BATCH`] rows, or what arrives within
/// [`LINGER`] of the first; a flush or stop ends the gathering at once.
async fn gather(rx: &mut mpsc::Receiver<Msg>) -> Gathered {
    let mut g = Gathered::default();
    let Some(first) = rx.recv().await else {
        g.closed = true;
        return g;
    };
    let until = tokio::time::Instant::now() + LINGER;
    let mut next = Some(first);
    loop {
        match next.take() {
            Some(Msg::Row(row)) => g.rows.push(*row),
            Some(Msg::Flush(done)) => {
                g.flushes.push(done);
                return g;
            }
            Some(Msg::Stop) => {
                g.stop = true;
                return g;
            }
            None => {}
        }
        if g.rows.len() >= MAX_BATCH {
            return g;
        }
        next = match rx.try_recv() {
            Ok(m) => Some(m),
            Err(mpsc::error::TryRecvError::Disconnected) => {
                g.closed = true;
                return g;
            }
            Err(mpsc::error::TryRecvError::Empty) => {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(m)) => Some(m),
                    Ok(None) => {
                        g.closed = true;
                        return g;
                    }
                    Err(_) => return g,
                }
            }
        };
    }
}

async fn write_loop(pool: sqlx::PgPool, mut rx: mpsc::Receiver<Msg>) {
    loop {
        let g = gather(&mut rx).await;
        write(&pool, &g.rows).await;
        for f in g.flushes {
            let _ = f.send(());
        }
        if g.stop {
            // Write what was queued before the stop, then end.
            rx.close();
            loop {
                let g = gather(&mut rx).await;
                write(&pool, &g.rows).await;
                for f in g.flushes {
                    let _ = f.send(());
                }
                if g.closed {
                    return;
                }
            }
        }
        if g.closed {
            return;
        }
    }
}

/// Writes `rows`, retrying while the database is unavailable (up to about
/// 30 s, so that a long outage drops logs rather than memory); a batch that
/// fails otherwise is written row by row, so one bad row loses only itself.
async fn write(pool: &sqlx::PgPool, rows: &[NewLog]) {
    if rows.is_empty() {
        return;
    }
    let mut wait = Duration::from_millis(100);
    let result = loop {
        match insert(pool, rows).await {
            Err(e) if e.is_transient() && wait < Duration::from_secs(16) => {
                tracing::warn!(error = %e, n = rows.len(), "request logs not written yet: database unavailable");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            r => break r,
        }
    };
    match result {
        Ok(n) => metrics::counter!("hub_api_logs_written_total").increment(n),
        Err(e) if rows.len() > 1 && !e.is_transient() => {
            tracing::error!(error = %e, n = rows.len(), "request log batch failed; writing its rows one by one");
            for row in rows {
                if let Err(e) = insert(pool, std::slice::from_ref(row)).await {
                    tracing::error!(error = %e, id = %row.id, "request log row dropped");
                    metrics::counter!("hub_api_logs_dropped_total", "reason" => "error")
                        .increment(1);
                } else {
                    metrics::counter!("hub_api_logs_written_total").increment(1);
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, n = rows.len(), "request log batch dropped");
            metrics::counter!("hub_api_logs_dropped_total", "reason" => "error")
                .increment(rows.len() as u64);
        }
    }
}

async fn insert(pool: &sqlx::PgPool, rows: &[NewLog]) -> hub_storage::Result<u64> {
    let mut conn = pool.acquire().await?;
    api_logs::insert_batch(&mut conn, rows).await
}

/// Deletes the rows (and hourly usage rows) older than `retention_days` now:
/// in batches of [`PRUNE_BATCH`], walking the UUIDv7 primary key. Returns
/// how many log rows went.
pub async fn prune_once(pool: &sqlx::PgPool, retention_days: u32) -> hub_storage::Result<u64> {
    let before = chrono::Utc::now() - chrono::Duration::days(i64::from(retention_days));
    let mut total = 0;
    loop {
        let n = api_logs::prune(pool, before, PRUNE_BATCH).await?;
        total += n;
        if n < u64::from(PRUNE_BATCH) {
            break;
        }
    }
    api_logs::prune_usage(pool, before).await?;
    Ok(total)
}

/// Deletes rows older than `retention_days`, in batches, walking the UUIDv7
/// primary key; once at start, then hourly, until `shutdown` resolves. A
/// failed pass is logged and tried again a minute later.
pub async fn prune_loop(
    pool: sqlx::PgPool,
    retention_days: u32,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    loop {
        let wait = match prune_once(&pool, retention_days).await {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(deleted = n, retention_days, "pruned request logs");
                }
                Duration::from_secs(3600)
            }
            Err(e) => {
                tracing::error!(error = %e, "pruning request logs failed; retrying in a minute");
                Duration::from_secs(60)
            }
        };
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange() -> Exchange {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer tok-123456".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        Exchange {
            id: Uuid::now_v7(),
            tenant_id: Uuid::now_v7(),
            integration_id: None,
            direction: Direction::Outbound,
            method: "POST".into(),
            url: "https://api.example.com/v1/x?api_key=k-777777&q=1".into(),
            request_headers: headers,
            request_body: Bytes::from_static(br#"{"password":"pw-999999","n":1}"#),
            response_status: Some(502),
            response_headers: None,
            response_body: Bytes::from(vec![0xffu8, 0, 1, 2]),
            response_size: Some(10_000),
            latency: Duration::from_millis(12),
            correlation_id: Some("req-1".into()),
            source_ip: None,
            error: Some("upstream said tok-123456".into()),
            timed_out: false,
            retry_of: None,
            attempt: 1,
            secrets: vec!["tok-123456".into()],
            secret_names: vec![],
        }
    }

    const ALL: LogSettings = LogSettings {
        request_bodies: true,
        response_bodies: true,
        retention_days: 30,
    };

    #[test]
    fn rows_are_redacted_classified_and_sized() {
        let row = to_row(&exchange(), &ALL);
        let text = format!("{row:?}");
        for secret in ["tok-123456", "k-777777", "pw-999999"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(row.status, "SERVER_ERROR");
        assert_eq!(row.path, "/v1/x");
        assert_eq!(row.query_params.unwrap()["api_key"], REDACTED);
        assert_eq!(row.response_body.as_deref(), Some("[binary 10000 bytes]"));
        assert_eq!(row.response_size, Some(10_000));
        assert_eq!(row.headers["authorization"], REDACTED);
        assert_eq!(row.response_time_ms, 12);
    }

    #[test]
    fn bodies_follow_the_settings_and_the_cap() {
        let mut e = exchange();
        e.request_body = Bytes::from("é".repeat(MAX_BODY));
        let row = to_row(&e, &ALL);
        let body = row.body.unwrap();
        assert!(body.len() <= MAX_BODY);
        assert_eq!(row.body_size, 2 * MAX_BODY as i64);
        assert!(row.body_truncated >= MAX_BODY as i32);
        let none = to_row(
            &exchange(),
            &LogSettings {
                request_bodies: false,
                response_bodies: false,
                retention_days: 1,
            },
        );
        assert!(none.body.is_none() && none.response_body.is_none());
        assert_eq!(none.body_truncated, 0);
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(Some(204), false), "SUCCESS");
        assert_eq!(status_class(Some(404), false), "CLIENT_ERROR");
        assert_eq!(status_class(Some(503), false), "SERVER_ERROR");
        assert_eq!(status_class(None, false), "SERVER_ERROR");
        assert_eq!(status_class(None, true), "TIMEOUT");
    }
}
