//! The operator's dead-letter API: a message that fails processing lands in
//! the service's dead-letter queue, is counted, listed, inspected
//! (redacted), re-driven once its cause is fixed and then processed; a
//! message that is not an event is deleted.

use crate::started;
use hub_domain::{Envelope, EventType, TenantId};
use hub_testkit::amqp::Amqp;
use hub_testkit::{Running, TestEnv, eventually};
use reqwest::Method;
use serde_json::{Value, json};

const BASE: &str = "/api/v1/admin/dead-letters";

async fn admin(
    env: &TestEnv,
    m: &Running,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = env.admin(method, &m.url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The manager's entry in the overview.
async fn manager_counts(env: &TestEnv, m: &Running) -> Value {
    let (s, v) = admin(env, m, Method::GET, BASE, None).await;
    assert_eq!(s, 200, "{v}");
    let all = v["data"].as_array().unwrap();
    assert_eq!(all.len(), 3, "one entry per service: {v}");
    all.iter()
        .find(|q| q["service"] == "integration-manager")
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_failed_event_is_counted_inspected_redriven_and_processed_once_fixed() {
    let (env, m) = started().await;
    let amqp = Amqp::connect().await;
    let queue = format!("{}integration-manager.events", env.prefix);
    amqp.wait_for_queue(&queue).await;
    let exchange = format!("{}hub.events", env.prefix);

    // An event naming a tenant that does not exist (yet) cannot be audited:
    // it fails its 3 attempts (in tests) and is dead-lettered. Its data has
    // a secret-named field, which inspection must not show.
    let tenant = TenantId::new();
    let secret = "hunter2-do-not-show";
    let orphan = Envelope::new(
        "tms",
        EventType::parse("load.delivered").unwrap(),
        Some(tenant),
        json!({"load_id": "L-1", "password": secret}),
    );
    let orphan_id = orphan.id.to_string();
    amqp.publish(
        &exchange,
        "load.delivered",
        &serde_json::to_vec(&orphan).unwrap(),
        Some(&orphan_id),
    )
    .await;
    // Not an event at all: dead-lettered at once by the broker (rejected).
    amqp.publish(&exchange, "load.delivered", b"{not json", None)
        .await;

    let counts = eventually(30, "both dead letters counted", || async {
        let q = manager_counts(&env, &m).await;
        (q["messages"] == 2).then_some(q)
    })
    .await;
    assert_eq!(counts["exists"], true);
    assert_eq!(counts["counted"], 2);
    assert_eq!(counts["by_reason"], json!({"failed": 1, "rejected": 1}));
    assert_eq!(counts["by_event_type"], json!({"load.delivered": 2}));
    assert_eq!(
        counts["queue"],
        format!("{}integration-manager.events.dlq", env.prefix)
    );

    // Counting gave every message back.
    let (s, list) = admin(
        &env,
        &m,
        Method::GET,
        &format!("{BASE}/integration-manager"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["messages"], 2);
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    let (_, failed) = admin(
        &env,
        &m,
        Method::GET,
        &format!("{BASE}/integration-manager?reason=failed"),
        None,
    )
    .await;
    let failed = failed["data"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["id"], orphan_id.as_str());
    assert_eq!(failed[0]["attempts"], 3);
    assert_eq!(failed[0]["tenant_id"], tenant.to_string());
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("unknown tenant"),
        "{failed:?}"
    );
    let (_, rejected) = admin(
        &env,
        &m,
        Method::GET,
        &format!("{BASE}/integration-manager?reason=rejected"),
        None,
    )
    .await;
    let malformed_id = rejected["data"][0]["id"].as_str().unwrap().to_owned();
    assert!(malformed_id.starts_with("sha256:"), "{malformed_id}");

    // Inspect: headers and the body, the secret redacted.
    let (s, one) = admin(
        &env,
        &m,
        Method::GET,
        &format!("{BASE}/integration-manager/{orphan_id}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(one["headers"]["x-hub-attempt"], 3);
    assert_eq!(one["properties"]["message_id"], orphan_id.as_str());
    let body = one["body"].as_str().unwrap();
    assert!(body.contains("L-1"), "{body}");
    assert!(
        !one.to_string().contains(secret),
        "the secret is shown: {one}"
    );
    assert!(body.contains("[redacted]"), "{body}");
    let (s, _) = admin(
        &env,
        &m,
        Method::GET,
        &format!("{BASE}/integration-manager/nope"),
        None,
    )
    .await;
    assert_eq!(s, 404);

    // Fix the cause: the tenant now exists (restored by another system, as
    // an operator would fix it outside the hub's API).
    sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, 'Restored', 'restored')")
        .bind(tenant.0)
        .execute(env.pool())
        .await
        .unwrap();

    // Re-drive the failed one only: it leaves the DLQ, goes back to the
    // manager's work queue and is processed (audited once).
    let (s, moved) = admin(
        &env,
        &m,
        Method::POST,
        &format!("{BASE}/integration-manager/redrive"),
        Some(json!({"reason": "failed"})),
    )
    .await;
    assert_eq!(s, 200, "{moved}");
    assert_eq!(moved, json!({"moved": 1, "remaining": 1}));
    let audited = "SELECT COUNT(*) FROM audit_log WHERE event_id = $1::uuid";
    env.count_until(
        30,
        "the re-driven event is audited",
        audited,
        &orphan_id,
        |n| n == 1,
    )
    .await;
    let counts = manager_counts(&env, &m).await;
    assert_eq!(counts["messages"], 1);
    assert_eq!(counts["by_reason"], json!({"rejected": 1}));

    // The malformed one cannot be fixed: delete it by its id.
    let (s, _) = admin(
        &env,
        &m,
        Method::DELETE,
        &format!("{BASE}/integration-manager/{malformed_id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let counts = manager_counts(&env, &m).await;
    assert_eq!(counts["messages"], 0);
    assert_eq!(counts["by_reason"], json!({}));
    // Processed once: nothing came back, and the audit row is alone.
    assert!(amqp.get(&queue).await.is_none(), "the work queue is empty");
    let n: i64 = env.scalar(audited, &orphan_id).await;
    assert_eq!(n, 1);
    m.stop().await;
}

#[tokio::test]
async fn dead_letters_are_for_the_operator_only_and_name_known_services() {
    let (env, m) = started().await;
    Amqp::connect()
        .await
        .wait_for_queue(&format!("{}integration-manager.events", env.prefix))
        .await;
    let (tenant, key) = env.tenant(&m, "dlq-tenant").await;
    let r = env
        .http
        .get(m.url(BASE))
        .bearer_auth(&key)
        .header("X-Tenant-ID", &tenant)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a tenant's key is not the operator token");
    let r = env.http.get(m.url(BASE)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let (s, v) = admin(&env, &m, Method::GET, &format!("{BASE}/billing"), None).await;
    assert_eq!((s, v["code"].as_str()), (404, Some("not_found")));
    let (s, v) = admin(
        &env,
        &m,
        Method::POST,
        &format!("{BASE}/integration-manager/redrive"),
        Some(json!({"limit": 0})),
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_parameter")));
    let (s, v) = admin(
        &env,
        &m,
        Method::POST,
        &format!("{BASE}/integration-manager/redrive"),
        Some(json!({"colour": "red"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    // The dispatcher never ran on this bus: its queue does not exist.
    let (s, _) = admin(
        &env,
        &m,
        Method::POST,
        &format!("{BASE}/webhook-dispatcher/redrive"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 404);
    // An empty queue re-drives nothing.
    let (s, v) = admin(
        &env,
        &m,
        Method::POST,
        &format!("{BASE}/integration-manager/redrive"),
        Some(json!({})),
    )
    .await;
    assert_eq!((s, v), (200, json!({"moved": 0, "remaining": 0})));
    m.stop().await;
}

#[tokio::test]
async fn a_bulk_delete_takes_what_its_filters_and_limit_take() {
    let (env, m) = started().await;
    let amqp = Amqp::connect().await;
    let queue = format!("{}integration-manager.events", env.prefix);
    amqp.wait_for_queue(&queue).await;
    let exchange = format!("{}hub.events", env.prefix);
    // Three messages that are not events: each rejected by the consumer at
    // once and dead-lettered by the broker.
    for _ in 0..3 {
        amqp.publish(&exchange, "load.delivered", b"{not json", None)
            .await;
    }
    eventually(30, "three dead letters counted", || async {
        (manager_counts(&env, &m).await["messages"] == 3).then_some(())
    })
    .await;
    let delete = |body: Value| {
        let (env, m) = (&env, &m);
        async move {
            admin(
                env,
                m,
                Method::POST,
                &format!("{BASE}/integration-manager/delete"),
                Some(body),
            )
            .await
        }
    };
    // Another reason takes none of them.
    let (s, v) = delete(json!({"reason": "failed"})).await;
    assert_eq!((s, v), (200, json!({"moved": 0, "remaining": 3})));
    // The limit holds.
    let (s, v) = delete(json!({"reason": "rejected", "limit": 2})).await;
    assert_eq!((s, v), (200, json!({"moved": 2, "remaining": 1})));
    assert_eq!(manager_counts(&env, &m).await["messages"], 1);
    // `{}` purges the rest; a bad limit or an unknown queue changes nothing.
    let (s, v) = delete(json!({"limit": 0})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_parameter")));
    let (s, _) = admin(
        &env,
        &m,
        Method::POST,
        &format!("{BASE}/webhook-dispatcher/delete"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 404, "the dispatcher never ran on this bus");
    assert_eq!(manager_counts(&env, &m).await["messages"], 1);
    let (s, v) = delete(json!({})).await;
    assert_eq!((s, v), (200, json!({"moved": 1, "remaining": 0})));
    assert_eq!(manager_counts(&env, &m).await["messages"], 0);
    assert!(
        amqp.get(&queue).await.is_none(),
        "nothing went back to work"
    );
    m.stop().await;
}
