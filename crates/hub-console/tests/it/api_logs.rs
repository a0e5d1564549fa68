//! API Logs: search the request log, open one call; secrets stay redacted.

use crate::{Browser, manager};
use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind};
use hub_testkit::{TenantApi, TestEnv, eventually};
use serde_json::json;

#[tokio::test]
async fn api_logs_search_finds_a_call_and_shows_it_redacted() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let (tenant, key) = env.tenant(&m, "acme").await;
    let fake = FakeProvider::start(Kind::Samsara).await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let created = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "SAMSARA", "name": "Fleet", "config": fake.config(),
                   "credentials": {"api_key": DEFAULT_TOKEN}}),
        )
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().to_owned();
    api.post(&format!("/api/v1/integrations/{id}/test"), json!({}))
        .await
        .ok(200);
    // Rows are written in batches shortly after the call.
    eventually(10, "the call is logged", || async {
        let l = api.get(&format!("/api/v1/integrations/{id}/logs")).await;
        (!l.ok(200)["data"].as_array().unwrap().is_empty()).then_some(())
    })
    .await;

    let b = Browser::open(&m).await;
    b.sign_in(&tenant, &key).await;
    b.go("/console/api-logs?direction=INBOUND").await;
    b.wait_text("No logged call matches these filters.").await;
    b.go("/console/api-logs?direction=OUTBOUND&status=SUCCESS")
        .await;
    b.el("#api-logs").await;
    assert!(b.text("#api-logs").await.contains("GET"));
    b.shot("api-logs").await;
    b.click("#api-logs a").await;
    assert!(b.text("#log-status").await.starts_with("200 SUCCESS"));
    let page = b.page_text().await;
    assert!(
        !page.contains(DEFAULT_TOKEN),
        "the API key is redacted in the log"
    );
    b.no_script_errors().await;
    b.shot("api-log-one-call").await;
    b.close().await;
    fake.stop().await;
    m.stop().await;
}
