//! Test support for the Integration Hub. A dev-dependency only.
//!
//! Each test gets its own database (copied from a migrated template, so it is
//! fast) and its own bus prefix, so tests run in parallel against the real
//! Postgres and RabbitMQ. Services are started through the same
//! `ServiceApp::build` that `main` uses, on port 0.

pub mod amqp;
pub mod binary;
pub mod db;
pub mod fakes;
pub mod proxy;
pub mod receiver;
pub mod service;
pub mod sockets;

pub use db::TestDb;
pub use proxy::TcpProxy;
pub use service::{Running, TestEnv};

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
