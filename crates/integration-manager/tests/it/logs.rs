//! Secrets never reach the logs, even at debug level.

use hub_testkit::Call;
use hub_testkit::TestEnv;
use hub_testkit::binary::{free_port, spawn, terminate};
use hub_testkit::fakes::{FakeProvider, Kind};
use hub_testkit::service::ADMIN_TOKEN;
use reqwest::Method;
use serde_json::json;
use std::io::Read;

const BIN: &str = env!("CARGO_BIN_EXE_integration-manager");

#[tokio::test]
async fn no_secret_appears_in_debug_logs() {
    let env = TestEnv::new().await;
    let fake = FakeProvider::start(Kind::NewsApi).await;
    let provider_key = "newsapi-secret-key-0123456789";
    fake.set_valid_token(provider_key);
    let port = free_port();
    let mut child = spawn(
        BIN,
        &[
            ("PORT", port.to_string()),
            ("DATABASE_URL", env.db.url.clone()),
            ("RABBITMQ_URL", hub_testkit::rabbitmq_url()),
            ("HUB_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
            ("INTEGRATION_ENCRYPTION_KEY", env.encryption_key.clone()),
            ("HUB_BUS_PREFIX", env.prefix.clone()),
            ("HUB_ALLOW_PRIVATE_TARGETS", "true".to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
            ("RUST_LOG", "debug".to_owned()),
        ],
    );
    // Drain the pipes from the start so a chatty child never blocks on them.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let base = format!("http://127.0.0.1:{port}");
    hub_testkit::binary::wait_ready(&env.http, &base, 30).await;
    let running = hub_testkit::Running::external(&base);
    let (tenant, key) = env.tenant(&running, "logs").await;
    let mut config = fake.config();
    config["base_url"] = json!(fake.base_url());
    let created = env
        .as_tenant(Method::POST, &format!("{base}/api/v1/integrations"), &tenant, &key)
        .json(&json!({"provider_code": "NEWSAPI", "name": "news", "config": config, "credentials": {"api_key": provider_key}}))
        .call()
        .await
        .body;
    let id = created["id"].as_str().unwrap();
    let enable = format!("{base}/api/v1/integrations/{id}/enable");
    let test = env
        .as_tenant(Method::POST, &enable, &tenant, &key)
        .call()
        .await
        .body;
    assert_eq!(test["status"], "ACTIVE", "{test}");
    assert_eq!(
        fake.requests().last().unwrap().header("x-api-key"),
        Some(provider_key),
        "the key was sent to the provider"
    );
    // Let the relay and the audit consumer handle the events too.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    terminate(&child);
    let status = child.wait().unwrap();
    assert!(status.success());
    let logs = out.join().unwrap() + &err.join().unwrap();
    assert!(logs.lines().count() > 20, "debug logs were captured");
    for secret in [
        provider_key,
        key.as_str(),
        ADMIN_TOKEN,
        env.encryption_key.as_str(),
    ] {
        assert!(!logs.contains(secret), "a secret leaked into the logs");
    }
}
