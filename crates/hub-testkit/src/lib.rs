//! Test support for the Integration Hub. A dev-dependency only.
//!
//! Each test gets its own database (copied from a migrated template, so it is
//! fast) and its own bus prefix, so tests run in parallel against the real
//! Postgres and RabbitMQ. Services are started through the same
//! `ServiceApp::build` that `main` uses, on port 0.

pub mod amqp;
pub mod api;
pub mod binary;
pub mod db;
pub mod docs;
pub mod fakes;
pub mod proxy;
pub mod receiver;
pub mod schemathesis;
pub mod service;
pub mod sockets;

pub use api::{Answer, Call, TenantApi};
pub use db::TestDb;
pub use proxy::TcpProxy;
pub use service::{Running, TestEnv};

/// The codes of the providers the hub ships, in code order: the spec's
/// twelve pre-built connectors and the two intel adapters.
pub const SHIPPED_PROVIDERS: [&str; 14] = [
    "ALPHA_VANTAGE",
    "DAT",
    "HUBSPOT",
    "KEEPTRUCKIN",
    "LOADBOARD_123",
    "NEWSAPI",
    "OMNITRACS",
    "QUICKBOOKS",
    "SAGE",
    "SALESFORCE",
    "SAMSARA",
    "TRUCKSTOP",
    "XERO",
    "ZOHO",
];

/// Postgres server for tests (`HUB_TEST_DATABASE_URL`, any database on it).
pub fn database_server_url() -> String {
    std::env::var("HUB_TEST_DATABASE_URL").unwrap_or_else(|_| {
        "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".to_owned()
    })
}

/// RabbitMQ for tests (`HUB_TEST_RABBITMQ_URL`).
pub fn rabbitmq_url() -> String {
    std::env::var("HUB_TEST_RABBITMQ_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `secs`
/// seconds with `what`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for: {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs `work` to the end on a thread of its own with its own runtime: the
/// cleanup of a `Drop`, which runs outside async, even when the test panicked.
pub(crate) fn run_detached(work: impl std::future::Future<Output = ()> + Send + 'static) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(work)
    })
    .join();
}

/// Serves every request on `listener` with `handler`, `state` as its app data
/// and bodies up to `max_body` bytes, on one worker, as the servers of real
/// providers and receivers do (Go's net/http, nginx: `TCP_NODELAY`). The
/// server runs on a task of its own; its handle stops it.
pub(crate) fn serve<S, F, Args>(
    listener: std::net::TcpListener,
    state: std::sync::Arc<S>,
    max_body: usize,
    handler: F,
) -> std::io::Result<actix_web::dev::ServerHandle>
where
    S: Send + Sync + 'static,
    F: actix_web::Handler<Args> + Send,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    use actix_web::{App, HttpServer, web};
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .default_service(web::to(handler.clone()))
    })
    .workers(1)
    .tcp_nodelay(true)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(handle)
}

/// The headers of `req` as recorded: names in lower case, values as text
/// (bytes that are not UTF-8 replaced).
pub(crate) fn headers_of<C: FromIterator<(String, String)>>(req: &actix_web::HttpRequest) -> C {
    req.headers()
        .iter()
        .map(|(k, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (k.as_str().to_ascii_lowercase(), value)
        })
        .collect()
}

/// Checks that the committed OpenAPI document of service `name`
/// (`openapi/<name>.json`) matches `doc`, the one its code serves
/// (`cargo xtask openapi` regenerates them).
pub fn check_openapi(name: &str, doc: utoipa::openapi::OpenApi) {
    let path = format!("{}/../../openapi/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let current = hub_platform::server::document(name, doc)
        .to_pretty_json()
        .unwrap();
    assert!(
        committed.trim_end() == current.trim_end(),
        "openapi/{name}.json is stale: run `cargo xtask openapi` and commit the result"
    );
}
