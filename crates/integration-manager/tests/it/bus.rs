//! Events across services: outbox → relay → RabbitMQ → consumers, idempotent
//! redelivery, bounded retries and dead letters.

use crate::started;
use hub_domain::{Envelope, EventType, TenantId};
use hub_testkit::amqp::{Amqp, int_header, str_header};
use hub_testkit::{TenantApi, eventually};
use serde_json::json;

#[tokio::test]
async fn outbox_events_reach_the_dispatcher_and_the_audit_trail() {
    let (env, m) = started().await;
    let d = env.spawn("webhook-dispatcher", env.config()).await;
    // Queues are durable: once the dispatcher has declared its queue, nothing
    // published afterwards misses it, even while it is down.
    let amqp = Amqp::connect().await;
    amqp.wait_for_queue(&format!("{}webhook-dispatcher.events", env.prefix))
        .await;
    // What every service queue is offered, to read the events themselves.
    let routed = amqp.tap(&format!("{}hub.routed", env.prefix), "#").await;
    let (tenant, key) = env.tenant(&m, "cross").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);

    // The manager wrote tenant.created and api_key.created to its outbox; the
    // relay published them; the dispatcher (another service) stored them.
    let types: Vec<String> = eventually(15, "dispatcher stored both events", || async {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT event_type FROM events WHERE tenant_id = $1::uuid ORDER BY event_type",
        )
        .bind(&tenant)
        .fetch_all(env.pool())
        .await
        .unwrap();
        (rows.len() == 2).then_some(rows)
    })
    .await;
    assert_eq!(types, ["api_key.created", "tenant.created"]);
    eventually(15, "audit trail has tenant.created", || async {
        (api.audit(Some("tenant.created")).await.len() == 1).then_some(())
    })
    .await;
    let unpublished = env
        .count("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
        .await;
    assert_eq!(unpublished, 0, "every outbox row is published");
    // The API key secret never travels on the bus.
    let mut published = Vec::new();
    amqp.drain_until(
        &routed,
        &mut published,
        20,
        "both events on the bus",
        |got| {
            ["tenant.created", "api_key.created"].iter().all(|kind| {
                got.iter()
                    .any(|m| m.routing_key == *kind && m.body["tenantid"] == tenant.as_str())
            })
        },
    )
    .await;
    for m in &published {
        let body = m.body.to_string();
        assert!(!body.contains(&key[4..]), "the key is in {body}");
    }
    d.stop().await;
    m.stop().await;
}

#[tokio::test]
async fn the_hubs_own_events_are_audited_when_retired_and_bypass_the_audit_queue() {
    let (env, m) = started().await;
    let amqp = Amqp::connect().await;
    amqp.wait_for_queue(&format!("{}integration-manager.events", env.prefix))
        .await;
    // What a queue bound like the audit trail's sees (everything on the
    // entry exchange), and what one bound like every other service's sees
    // (everything on the routed exchange).
    let entry = amqp.tap(&format!("{}hub.events", env.prefix), "#").await;
    let routed = amqp.tap(&format!("{}hub.routed", env.prefix), "#").await;

    let (tenant, key) = env.tenant(&m, "own-events").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    // Recorded when their outbox rows are retired: in the audit trail once
    // the outbox is empty (not through the audit queue: see below).
    env.outbox_retired().await;
    assert_eq!(api.audit(Some("tenant.created")).await.len(), 1);
    assert_eq!(api.audit(Some("api_key.created")).await.len(), 1);

    // Another system's event enters by the entry exchange; the audit
    // consumer records it.
    let order = Envelope::new(
        "order-service",
        EventType::parse("order.created").unwrap(),
        Some(tenant.parse::<TenantId>().unwrap()),
        json!({"order_id": "ORD-7"}),
    );
    amqp.publish(
        &format!("{}hub.events", env.prefix),
        "order.created",
        &serde_json::to_vec(&order).unwrap(),
        Some(&order.id.to_string()),
    )
    .await;
    eventually(15, "the audit consumer recorded order.created", || async {
        (api.audit(Some("order.created")).await.len() == 1).then_some(())
    })
    .await;
    let unpublished =
        "SELECT COUNT(*) FROM outbox WHERE tenant_id = $1::uuid AND published_at IS NULL";
    let published = "the relay published the hub's two events";
    env.count_until(15, published, unpublished, &tenant, |left| left == 0)
        .await;

    // Every service queue gets both kinds; the audit queue only the
    // outside one, so RabbitMQ never carries the hub's events back to it.
    let mut got = amqp.drain(&routed).await;
    got.sort();
    assert_eq!(got, ["api_key.created", "order.created", "tenant.created"]);
    assert_eq!(amqp.drain(&entry).await, ["order.created"]);
    // Each event is in the audit trail once.
    for kind in ["tenant.created", "api_key.created", "order.created"] {
        assert_eq!(api.audit(Some(kind)).await.len(), 1, "{kind}");
    }
    m.stop().await;
}

/// Two relays can publish the same outbox row (a hand-off whose lease ran
/// out while its relay was still publishing it, claimed meanwhile by
/// another relay): both then retire it, at the same moment. The row is
/// deleted once, so its event is audited once, and nothing is left behind.
#[tokio::test]
async fn rows_retired_by_two_relays_at_once_are_audited_once() {
    let (env, m) = started().await;
    let (tenant, key) = env.tenant(&m, "retire-twice").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let tenant_id: TenantId = tenant.parse().unwrap();
    let events: Vec<Envelope> = (0..300)
        .map(|n| {
            Envelope::new(
                "order-service",
                EventType::parse("order.created").unwrap(),
                Some(tenant_id),
                json!({"n": n}),
            )
        })
        .collect();
    // Leased for a minute, so the manager's own relays leave them alone:
    // this test's two "relays" are the only ones to retire them.
    let mut tx = env.pool().begin().await.unwrap();
    hub_storage::outbox::enqueue_unnotified(&mut tx, &events, Some(60))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id.0).collect();
    // Both retire every row, in batches of 20, one front to back and the
    // other back to front, so their batches overlap and meet in the middle.
    let relay = |ids: Vec<uuid::Uuid>| {
        let pool = env.pool().clone();
        tokio::spawn(async move {
            for batch in ids.chunks(20) {
                hub_storage::outbox::delete_published(&pool, batch)
                    .await
                    .unwrap();
            }
        })
    };
    let reversed: Vec<uuid::Uuid> = ids.iter().rev().copied().collect();
    let (a, b) = (relay(ids.clone()), relay(reversed));
    a.await.unwrap();
    b.await.unwrap();
    let left: i64 = env
        .scalar("SELECT COUNT(*) FROM outbox WHERE id = ANY($1)", &ids)
        .await;
    assert_eq!(left, 0, "every row is retired");
    let audited: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT event_id, COUNT(*) FROM audit_log WHERE event_id = ANY($1) GROUP BY event_id",
    )
    .bind(&ids)
    .fetch_all(env.pool())
    .await
    .unwrap();
    assert_eq!(audited.len(), ids.len(), "every event is audited");
    assert!(
        audited.iter().all(|(_, n)| *n == 1),
        "each event once: {:?}",
        audited.iter().filter(|(_, n)| *n != 1).collect::<Vec<_>>()
    );
    // And the tenant's audit trail lists each once.
    let page = api.audit(Some("order.created")).await;
    let listed: std::collections::HashSet<&str> = page
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 200, "a full first page, no event twice");
    m.stop().await;
}

#[tokio::test]
async fn redelivered_events_are_processed_once() {
    let (env, m) = started().await;
    let d = env.spawn("webhook-dispatcher", env.config()).await;
    let (tenant, key) = env.tenant(&m, "dupes").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let amqp = Amqp::connect().await;
    amqp.wait_for_queue(&format!("{}integration-manager.events", env.prefix))
        .await;
    amqp.wait_for_queue(&format!("{}webhook-dispatcher.events", env.prefix))
        .await;

    let event = Envelope::new(
        "order-service",
        EventType::parse("order.created").unwrap(),
        Some(tenant.parse::<TenantId>().unwrap()),
        json!({"order_id": "ORD-1"}),
    );
    let body = serde_json::to_vec(&event).unwrap();
    let exchange = format!("{}hub.events", env.prefix);
    for _ in 0..3 {
        amqp.publish(
            &exchange,
            "order.created",
            &body,
            Some(&event.id.to_string()),
        )
        .await;
    }
    // Both consumers are idempotent by construction and keep no marker: the
    // audit trail by (tenant, event id), the dispatcher's intake by the
    // events primary key.
    eventually(15, "both consumers processed the event", || async {
        let audited: i64 = env
            .scalar(
                "SELECT COUNT(*) FROM audit_log WHERE event_id = $1",
                event.id.0,
            )
            .await;
        let stored: i64 = env
            .scalar("SELECT COUNT(*) FROM events WHERE id = $1", event.id.0)
            .await;
        (audited == 1 && stored == 1).then_some(())
    })
    .await;
    let markers: i64 = env
        .scalar(
            "SELECT COUNT(*) FROM processed_events WHERE event_id = $1",
            event.id.0,
        )
        .await;
    assert_eq!(markers, 0, "no consumer needs a processed_events marker");
    // Give the duplicates time to be (not) processed again.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(api.audit(Some("order.created")).await.len(), 1);
    let stored: i64 = env
        .scalar("SELECT COUNT(*) FROM events WHERE id = $1", event.id.0)
        .await;
    assert_eq!(stored, 1);
    d.stop().await;
    m.stop().await;
}

#[tokio::test]
async fn failing_events_are_retried_then_dead_lettered() {
    let (env, m) = started().await;
    let amqp = Amqp::connect().await;
    let queue = format!("{}integration-manager.events", env.prefix);
    amqp.wait_for_queue(&queue).await;
    let exchange = format!("{}hub.events", env.prefix);

    // An event of a tenant that does not exist cannot be audited: it fails,
    // is retried with backoff (3 attempts in tests), then dead-lettered.
    let orphan = Envelope::new(
        "x",
        EventType::parse("load.delivered").unwrap(),
        Some(TenantId::new()),
        json!({}),
    );
    amqp.publish(
        &exchange,
        "load.delivered",
        &serde_json::to_vec(&orphan).unwrap(),
        None,
    )
    .await;
    // A message that is not an event at all goes straight to dead letters.
    amqp.publish(&exchange, "load.delivered", b"{not json", None)
        .await;

    let dlq = format!("{queue}.dlq");
    let mut got = Vec::new();
    while got.len() < 2 {
        let msg = eventually(20, "dead letters arrive", || amqp.get(&dlq)).await;
        got.push(msg);
    }
    let (orphan_msg, malformed_msg): (Vec<_>, Vec<_>) = got
        .into_iter()
        .partition(|(body, _)| body.starts_with(b"{\""));
    let (body, headers) = &orphan_msg[0];
    assert_eq!(
        Envelope::from_slice(body).unwrap().id,
        orphan.id,
        "the event is dead-lettered as it was"
    );
    assert_eq!(
        int_header(headers, "x-hub-attempt"),
        Some(3),
        "after exactly max attempts"
    );
    assert!(
        str_header(headers, "x-hub-error")
            .unwrap()
            .contains("unknown tenant")
    );
    assert_eq!(malformed_msg[0].0, b"{not json");
    // Nothing was half-processed.
    let n: i64 = env
        .scalar(
            "SELECT COUNT(*) FROM processed_events WHERE event_id = $1",
            orphan.id.0,
        )
        .await;
    assert_eq!(n, 0);
    assert!(amqp.get(&queue).await.is_none(), "the work queue is empty");
    m.stop().await;
}
