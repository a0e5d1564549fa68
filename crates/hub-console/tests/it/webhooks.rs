//! Webhook Configuration and Webhook Deliveries: create a subscription in
//! the console, see a delivery fail at a hub-testkit receiver, replay it,
//! see it delivered (live updates); an inbound endpoint's URL and secret.

use crate::{Browser, manager};
use hub_testkit::receiver::{Receiver, Reply};
use hub_testkit::{TenantApi, TestEnv, eventually};
use serde_json::json;

#[tokio::test]
async fn subscription_created_in_the_console_gets_a_delivery_that_is_replayed() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let dispatcher = env.spawn("webhook-dispatcher", env.config()).await;
    let (tenant, key) = env.tenant(&m, "acme").await;
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::Status(500));
    let b = Browser::open(&m).await;
    b.sign_in(&tenant, &key).await;

    b.go("/console/webhooks").await;
    b.wait_text("No subscriptions yet").await;
    b.click("details summary").await;
    b.fill("#sub-name", "orders").await;
    b.fill("#sub-url", &receiver.url("/hooks")).await;
    b.fill("#sub-events", "order.*").await;
    b.fill("#sub-retries", "0").await;
    b.fill("#sub-intervals", "1").await;
    b.fill("#sub-headers", "X-Team: logistics").await;
    b.shot("webhooks-new-subscription").await;
    b.click("#subscription-form button[type=submit]").await;
    b.wait_text("Copy the secret now").await;
    let secret = b
        .el("#new-secret")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    b.shot("webhooks-secret-shown-once").await;
    b.click("main p a").await;
    b.wait_text("Settings").await;
    assert_eq!(b.text("#subscription-status").await, "ACTIVE");

    // An event for the tenant: the receiver answers 500, the delivery fails.
    let events = TenantApi::new(&env, &dispatcher, &tenant, &key);
    events
        .post(
            "/api/v1/events",
            json!({"specversion": "1.0", "id": "ORD-1-created", "source": "tms", "type": "order.created", "data": {"order_id": "ORD-1"}}),
        )
        .await
        .ok(202);
    eventually(20, "the delivery reaches the receiver", || async {
        (!receiver.requests().is_empty()).then_some(())
    })
    .await;
    assert_eq!(receiver.requests()[0].header("x-team"), Some("logistics"));

    b.click("main a[href^='/console/deliveries?subscription=']")
        .await;
    b.el("#deliveries").await;
    // Live updates: the row turns FAILED without a reload.
    b.wait_text("FAILED").await;
    b.no_script_errors().await;
    b.shot("deliveries-failed").await;

    // Its attempt: the request and the receiver's answer.
    b.click("#deliveries a").await;
    assert_eq!(b.text("#delivery-status").await, "FAILED");
    assert!(b.text("main").await.contains("500 in"));
    b.shot("delivery-attempts").await;
    b.click("main p a").await;

    // Replay every failed delivery: this time the receiver takes it.
    receiver.set_default(Reply::Status(200));
    b.click("#replay-failed").await;
    assert!(b.text("#replayed").await.contains("Replayed 1 deliveries"));
    eventually(20, "the replay reaches the receiver", || async {
        (receiver.requests().len() >= 2).then_some(())
    })
    .await;
    b.el("#deliveries").await;
    b.wait_text("DELIVERED").await;
    b.shot("deliveries-replayed").await;
    b.close().await;
    dispatcher.stop().await;
    m.stop().await;
}

#[tokio::test]
async fn inbound_endpoint_shows_its_url_and_secret_once_and_rotates() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let (tenant, key) = env.tenant(&m, "acme").await;
    let b = Browser::open(&m).await;
    b.sign_in(&tenant, &key).await;
    b.go("/console/webhooks").await;
    b.wait_text("No inbound endpoints yet").await;
    b.click("details:last-of-type summary").await;
    b.fill("#ep-path", "stripe").await;
    b.el("#ep-scheme option[value=stripe]")
        .await
        .click()
        .await
        .unwrap();
    b.fill("#ep-ips", "203.0.113.0/24").await;
    b.click("#endpoint-form button[type=submit]").await;
    b.wait_text("Copy the secret now").await;
    let url = b.text("#endpoint-url").await;
    assert!(
        url.ends_with(&format!("/webhooks/{tenant}/stripe")),
        "{url}"
    );
    let first = b
        .el("#new-secret")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(first.len() >= 8);
    b.click("main p a").await;
    b.el("#endpoints").await;
    assert!(b.text("#endpoints").await.contains("203.0.113.0/24"));
    assert!(
        !b.page_text().await.contains(&first),
        "the secret is not shown again"
    );
    b.click("#endpoints form button").await;
    b.wait_text("Secret rotated").await;
    let second = b
        .el("#new-secret")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(first, second);
    b.no_script_errors().await;
    b.shot("webhooks-endpoint-rotated").await;
    b.close().await;
    m.stop().await;
}
