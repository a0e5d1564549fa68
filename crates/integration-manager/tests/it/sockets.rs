//! Every TCP connection the manager opens or accepts disables Nagle's
//! algorithm (issue 25). Without `TCP_NODELAY` on its Postgres connections,
//! the group-commit writer's statements waited for Postgres's delayed ACK
//! (40 ms) and every received webhook took ~88 ms from 16 connections on.

use crate::inbound::{Hub, secret_for};
use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind};
use hub_testkit::sockets::{assert_nodelay, port_of, tcp_sockets};
use serde_json::json;

#[tokio::test]
async fn pool_bus_accepted_and_provider_connections_all_disable_nagle() {
    let hub = Hub::start(|_| {}).await;
    let secret = secret_for("standard-webhooks");
    hub.endpoint(
        json!({"endpoint_path": "nagle", "signature_algorithm": "standard-webhooks",
                        "secret_key": secret}),
    )
    .await;
    // Concurrent webhooks: the group-commit writer and the pool work as under load.
    let ts = crate::inbound::now();
    let sends = (0..16).map(|i| {
        let (hub, secret) = (&hub, &secret);
        async move {
            hub.send_signed("standard-webhooks", "nagle", secret, &format!("n{i}"), ts)
                .await
        }
    });
    for a in futures::future::join_all(sends).await {
        assert_eq!(a.status, 200, "{}", a.text);
    }

    // A provider call: the connection test of an integration at a fake.
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let created = hub
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "HUBSPOT", "name": "CRM", "config": fake.config(),
                        "credentials": {"access_token": DEFAULT_TOKEN}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap();
    let tested = hub
        .post_empty(&format!("/api/v1/integrations/{id}/test"))
        .await;
    assert_eq!(tested.status, 200, "{}", tested.text);
    assert_eq!(tested.body["ok"], true, "{}", tested.text);

    let socks = tcp_sockets();
    let manager = port_of(&hub.m.base);
    let postgres = port_of(&hub_testkit::database_server_url());
    let rabbitmq = port_of(&hub_testkit::rabbitmq_url());
    let provider = port_of(&fake.base_url());
    assert_nodelay(&socks, "Postgres", |s| s.remote_port == postgres);
    assert_nodelay(&socks, "RabbitMQ", |s| s.remote_port == rabbitmq);
    assert_nodelay(&socks, "accepted HTTP", |s| s.local_port == manager);
    assert_nodelay(&socks, "provider", |s| s.remote_port == provider);
    fake.stop().await;
    hub.m.stop().await;
}
