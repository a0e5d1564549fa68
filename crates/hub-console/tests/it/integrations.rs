//! Integration List and Details: filters, paging, disable and enable,
//! recent logs, delete with a confirmation.

use crate::{Browser, manager};
use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind};
use hub_testkit::{TenantApi, TestEnv};
use serde_json::json;

#[tokio::test]
async fn list_filters_and_details_disable_enable_and_delete_with_confirmation() {
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
    api.post(&format!("/api/v1/integrations/{id}/enable"), json!({}))
        .await
        .ok(200);
    // A second one, waiting for credentials, in another environment.
    api.post(
        "/api/v1/integrations",
        json!({"provider_code": "NEWSAPI", "name": "News", "environment": "SANDBOX", "config": {}}),
    )
    .await
    .ok(201);

    let b = Browser::open(&m).await;
    b.sign_in(&tenant, &key).await;
    b.el("#integrations").await;
    let all = b.text("#integrations").await;
    assert!(all.contains("Fleet") && all.contains("News"), "{all}");
    b.shot("integration-list").await;

    // Filters go to the API.
    b.go("/console/integrations?status=PENDING_AUTH").await;
    b.el("#integrations").await;
    let pending = b.text("#integrations").await;
    assert!(
        pending.contains("News") && !pending.contains("Fleet"),
        "{pending}"
    );
    b.go("/console/integrations?environment=TEST").await;
    b.wait_text("No integration matches these filters.").await;

    // The health dashboard: both, with their circuits.
    b.go("/console/health").await;
    b.el("#health").await;
    let board = b.text("#health").await;
    assert!(
        board.contains("Fleet") && board.contains("News") && board.contains("CLOSED"),
        "{board}"
    );
    assert!(b.text("#health-counts").await.contains("ACTIVE: 1"));
    b.shot("health-dashboard").await;

    // Details.
    b.go("/console/integrations").await;
    b.click(&format!("a[href='/console/integrations/{id}']"))
        .await;
    assert_eq!(b.text("#integration-status").await, "ACTIVE");
    assert_eq!(b.text("#circuit-state").await, "CLOSED");
    b.el("#logs").await; // the enable's connection test is logged
    b.shot("integration-details").await;

    b.click("form[action$='/disable'] button").await;
    b.wait_text("Disabled: no calls are made").await;
    assert_eq!(b.text("#integration-enabled").await, "no");
    b.click("form[action$='/enable'] button").await;
    b.wait_text("Enabled: the connection test passed.").await;
    assert_eq!(b.text("#integration-enabled").await, "yes");

    // Delete asks first.
    b.click("#delete").await;
    let confirm = b.el("#confirm-delete").await;
    assert!(
        confirm.is_displayed().await.unwrap(),
        "the confirmation is shown"
    );
    b.shot("integration-delete-confirm").await;
    assert_eq!(
        api.get(&format!("/api/v1/integrations/{id}")).await.status,
        200,
        "not deleted before confirming"
    );
    confirm.click().await.unwrap();
    b.at("/console/integrations").await;
    b.el("#integrations").await;
    assert!(!b.text("#integrations").await.contains("Fleet"));
    assert_eq!(
        api.get(&format!("/api/v1/integrations/{id}")).await.status,
        404
    );
    b.no_script_errors().await;

    // Another tenant's integration is the API's 404, shown as an error.
    b.go(&format!("/console/integrations/{}", uuid::Uuid::new_v4()))
        .await;
    assert!(b.text(".error").await.contains("404"));
    b.close().await;
    fake.stop().await;
    m.stop().await;
}
