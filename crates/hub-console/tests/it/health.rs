//! Health Dashboard: an integration whose calls fail shows its error-rate
//! chart; when its circuit opens while the page is open, the next refresh
//! shows it at the top with an alert naming the change; a subscription
//! whose deliveries fail shows its backlog.

use crate::Browser;
use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind, Mode};
use hub_testkit::receiver::{Receiver, Reply};
use hub_testkit::{TenantApi, TestEnv, eventually};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn failing_calls_chart_open_circuits_alert_and_backlogs_show() {
    let env = TestEnv::new().await;
    let mut config = env.config();
    config.circuit_failure_threshold = 3;
    config.circuit_timeout_seconds = 600;
    let m = env.start(integration_manager::build, config).await;
    let dispatcher = env.spawn("webhook-dispatcher", env.config()).await;
    let (tenant, key) = env.tenant(&m, "watch").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let fake = FakeProvider::start(Kind::NewsApi).await;
    let created = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "NEWSAPI", "name": "Headlines", "config": fake.config(),
                   "credentials": {"api_key": DEFAULT_TOKEN}, "max_retries": 0}),
        )
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().to_owned();
    api.post(&format!("/api/v1/integrations/{id}/enable"), json!({}))
        .await
        .ok(200);
    // Two failed calls: logged, the circuit still closed (3 open it).
    fake.set_mode(Mode::ServerError);
    let proxy = format!("/api/v1/integrations/{id}/proxy/top-headlines?country=us");
    for _ in 0..2 {
        assert_eq!(api.get(&proxy).await.status, 500);
    }
    // (Enabling it made a successful call too.)
    let calls = eventually(20, "the failed calls are logged", || async {
        let s = api.get(&format!("/api/v1/integrations/{id}/stats")).await;
        (s.body["errors"] == 2).then(|| s.body["calls"].as_i64().unwrap())
    })
    .await;
    let share = format!("{:.0}%", 200.0 / calls as f64);

    // A subscription whose receiver fails: its delivery waits for a retry
    // an hour away.
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::Status(500));
    let sub = api
        .post(
            "/api/v1/webhooks/subscriptions",
            json!({"name": "orders", "url": receiver.url("/hooks"), "event_types": ["order.*"],
                   "max_retries": 3, "retry_intervals": [3600]}),
        )
        .await;
    let sub = sub.ok(201)["id"].as_str().unwrap().to_owned();
    let events = TenantApi::new(&env, &dispatcher, &tenant, &key);
    events
        .post(
            "/api/v1/events",
            json!({"specversion": "1.0", "id": "ORD-9-created", "source": "tms", "type": "order.created", "data": {"order_id": "ORD-9"}}),
        )
        .await
        .ok(202);
    eventually(20, "the delivery failed once and waits", || async {
        let s = api
            .get(&format!("/api/v1/webhooks/subscriptions/{sub}"))
            .await;
        (s.body["backlog"] == 1 && s.body["total_sent"] == 1).then_some(())
    })
    .await;

    let b = Browser::open(&m).await;
    b.sign_in(&tenant, &key).await;
    b.go("/console/health").await;
    b.el("#health").await;
    let chart = b
        .el("#health svg.errors")
        .await
        .attr("aria-label")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        chart.contains(&format!("2 of {calls} calls failed ({share})")),
        "the chart's text alternative: {chart}"
    );
    let row = b.text("#health").await;
    assert!(row.contains(&format!("{share} of {calls}")), "{row}");
    assert!(
        b.text("#open-circuits").await.contains("No open circuit"),
        "{}",
        b.text("#open-circuits").await
    );
    let subs = b.text("#health-subscriptions").await;
    assert!(
        subs.contains("orders") && subs.contains("1 waiting"),
        "{subs}"
    );
    b.shot("health-before").await;
    // Marks this document: the alert must come from a refresh, not a reload.
    b.c.execute("window.sameDocument = true; return null;", vec![])
        .await
        .unwrap();

    // The third failure opens the circuit while the page is open.
    assert_eq!(api.get(&proxy).await.status, 500);
    let health = api.get(&format!("/api/v1/integrations/{id}/health")).await;
    assert_eq!(health.ok(200)["circuit_state"], "OPEN");
    let mut alert = String::new();
    for _ in 0..300 {
        if let Ok(e) = b.c.find(fantoccini::Locator::Css("#health-alerts")).await {
            alert = e.text().await.unwrap_or_default();
            if !alert.is_empty() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        alert.contains("Integration Headlines") && alert.contains("circuit CLOSED → OPEN"),
        "no alert within 30 s: {alert:?}; the page shows:\n{}",
        b.page_text().await
    );
    assert_eq!(
        b.el("#health-alerts").await.attr("role").await.unwrap(),
        Some("alert".to_owned())
    );
    let open = b.text("#open-circuits").await;
    assert!(
        open.contains("Headlines") && open.contains("OPEN"),
        "{open}"
    );
    let same =
        b.c.execute("return window.sameDocument === true;", vec![])
            .await
            .unwrap();
    assert_eq!(same, json!(true), "the page was reloaded");
    b.no_script_errors().await;
    b.shot("health-circuit-opened").await;

    // The next refresh keeps the change among the earlier ones, without a
    // new alert.
    b.wait_text("Earlier changes (1)").await;
    b.close().await;
    fake.stop().await;
    m.stop().await;
}
