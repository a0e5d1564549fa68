//! Integration tests of integration-sync through its public interfaces.

use hub_testkit::TestEnv;

mod export;
mod import;
mod jobs;
mod outcomes;
mod providers;
mod resume;
mod scheduler;
mod schema;

hub_testkit::binary_tests!(env!("CARGO_BIN_EXE_integration-sync"));

#[tokio::test]
async fn serves_health_ready_metrics_and_docs() {
    let env = TestEnv::new().await;
    let s = env.start(integration_sync::build, env.config()).await;
    for (path, ct) in [
        ("/health", "application/json"),
        ("/ready", "application/json"),
        ("/metrics", "text/plain"),
        ("/openapi.json", "application/json"),
        ("/docs", "text/html"),
    ] {
        let r = env.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(ct),
            "{path}"
        );
        assert!(
            r.headers().contains_key("x-request-id"),
            "{path} carries a request id"
        );
    }
    let doc: serde_json::Value = env
        .http
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["info"]["title"], "integration-sync");
    // A caller's request id is echoed back.
    let r = env
        .http
        .get(s.url("/health"))
        .header("X-Request-ID", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    s.stop().await;
}

#[tokio::test]
async fn docs_are_served_with_no_request_to_another_host() {
    let env = TestEnv::new().await;
    let s = env.start(integration_sync::build, env.config()).await;
    hub_testkit::docs::check_docs_offline(&env.http, &s.url("")).await;
    s.stop().await;
}

#[tokio::test]
async fn traces_are_exported_when_an_otlp_endpoint_is_set() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A stand-in OTLP/HTTP collector that records request lines.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
                let _ = tx.send(head);
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    let env = TestEnv::new().await;
    let mut config = env.config();
    config.otel_exporter_otlp_endpoint = Some(format!("http://{addr}"));
    let guard = hub_platform::telemetry::init("integration-sync", &config);
    let s = env.start(integration_sync::build, config).await;
    env.http.get(s.url("/health")).send().await.unwrap();
    s.stop().await;
    // Dropping the guard flushes the batch exporter.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();
    let head = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("collector called")
        .unwrap();
    assert!(head.starts_with("post /v1/traces"), "{head}");
    assert!(head.contains("application/x-protobuf"), "{head}");
}

#[test]
fn committed_openapi_document_is_current() {
    use utoipa::OpenApi;
    hub_testkit::check_openapi(integration_sync::NAME, integration_sync::ApiDoc::openapi());
}
