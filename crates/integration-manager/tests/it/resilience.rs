//! Dependencies going away and coming back: the services degrade, report it,
//! and recover without a restart.

use hub_testkit::proxy::{host_port, via};
use hub_testkit::{Call, TcpProxy, TenantApi, TestEnv, eventually};
use serde_json::Value;

async fn ready(env: &TestEnv, base: &hub_testkit::Running) -> (u16, Value) {
    let a = env.http.get(base.url("/ready")).call().await;
    (a.status, a.body)
}

#[tokio::test]
async fn ready_turns_503_when_postgres_is_unreachable_and_recovers() {
    let env = TestEnv::new().await;
    let proxy = TcpProxy::start(&host_port(&env.db.url)).await;
    let mut config = env.config();
    config.database_url = via(&env.db.url, proxy.addr());
    let m = env.start(integration_manager::build, config).await;
    assert_eq!(ready(&env, &m).await.0, 200);

    proxy.disable();
    let body = eventually(15, "/ready 503", || async {
        let (s, b) = ready(&env, &m).await;
        (s == 503).then_some(b)
    })
    .await;
    assert_eq!(body["code"], "dependency_unavailable");
    assert!(
        body["detail"].as_str().unwrap().contains("postgres"),
        "{body}"
    );
    assert!(
        body["checks"]["postgres"]
            .as_str()
            .unwrap()
            .starts_with("unavailable")
    );
    assert_eq!(body["checks"]["rabbitmq"], "ok");
    // A tenant API call while the database is down is a 503, not a 500.
    let unknown_key = "hub_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let nil = uuid::Uuid::nil().to_string();
    let r = env
        .get_as(&m.url("/api/v1/me"), &nil, unknown_key)
        .call()
        .await;
    assert_eq!(r.status, 503);

    proxy.enable();
    eventually(20, "/ready 200 again", || async {
        (ready(&env, &m).await.0 == 200).then_some(())
    })
    .await;
    m.stop().await;
}

/// `Some` once `api`'s tenant has one `tenant.created` in its audit trail.
async fn audited(api: &TenantApi) -> Option<()> {
    (api.audit(Some("tenant.created")).await.len() == 1).then_some(())
}

#[tokio::test]
async fn outbox_publishing_survives_a_broker_connection_loss() {
    let env = TestEnv::new().await;
    let proxy = TcpProxy::start(&host_port(&hub_testkit::rabbitmq_url())).await;
    let mut config = env.config();
    config.rabbitmq_url = via(&hub_testkit::rabbitmq_url(), proxy.addr());
    let m = env.start(integration_manager::build, config).await;
    let (tenant, key) = env.tenant(&m, "before").await;
    let before = TenantApi::new(&env, &m, &tenant, &key);
    eventually(15, "first event audited", || audited(&before)).await;

    // Cut the broker off: the state change still commits, its event waits in the outbox.
    proxy.disable();
    let (tenant2, key2) = env.tenant(&m, "during").await;
    let during = TenantApi::new(&env, &m, &tenant2, &key2);
    let (s, body) = eventually(15, "/ready 503 naming rabbitmq", || async {
        let (s, b) = ready(&env, &m).await;
        (s == 503).then_some((s, b))
    })
    .await;
    assert_eq!(s, 503);
    assert!(
        body["checks"]["rabbitmq"]
            .as_str()
            .unwrap()
            .starts_with("unavailable"),
        "{body}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let pending = env
        .count("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
        .await;
    assert!(
        pending >= 1,
        "events wait in the outbox while the broker is away"
    );

    // Bring it back: the relay and the consumer reconnect by themselves.
    proxy.enable();
    eventually(
        30,
        "event written during the outage is published and consumed",
        || audited(&during),
    )
    .await;
    // The relay marks its batch after the broker confirmed it, which can be
    // just after the consumer got the event.
    eventually(10, "nothing left behind in the outbox", || async {
        let pending = env
            .count("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
            .await;
        (pending == 0).then_some(())
    })
    .await;
    assert_eq!(ready(&env, &m).await.0, 200);
    m.stop().await;
}
