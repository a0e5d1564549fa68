//! `Idempotency-Key` on `POST /api/v1/events`: the same key and request get
//! the first answer again and store nothing; the same key with another
//! request is a 422; keys are the tenant's own, kept 24 hours; concurrent
//! requests with one key store one outcome.

use crate::outbound::{World, envelope, world};
use hub_testkit::receiver::Reply;
use hub_testkit::{TenantApi, eventually};
use reqwest::Method;
use serde_json::{Value, json};

/// The status, body bytes and `Idempotent-Replayed` header of a POST of
/// `body` (as `content_type`) with `key`, as `api`'s tenant.
async fn post(
    w: &World,
    api: &TenantApi,
    key: Option<&str>,
    content_type: &str,
    body: &Value,
) -> (u16, String, Option<String>) {
    let mut req = api
        .at(&w.d)
        .request(Method::POST, "/api/v1/events")
        .header("Content-Type", content_type)
        .body(body.to_string());
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, r.text().await.unwrap(), replayed)
}

fn event(w: &World, id: &str, n: u32) -> Value {
    envelope(id, "order.created", &w.tenant, json!({"order_id": n}))
}

/// How many of the events `ids` (UUIDs, so the hub's own keys) are stored.
async fn stored(w: &World, ids: &[&str]) -> i64 {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.parse().unwrap()).collect();
    sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE tenant_id = $1::uuid AND id = ANY ($2)")
        .bind(&w.tenant)
        .bind(ids)
        .fetch_one(w.env.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn same_key_and_body_replay_the_first_answer_and_another_body_is_refused() {
    let w = world(|_| {}).await;
    let (rx, sub) = w
        .subscribed_receiver(
            Reply::Status(200),
            json!({"name": "idem", "event_types": ["order.*"]}),
        )
        .await;
    let sub = sub["id"].as_str().unwrap().to_owned();
    let id = uuid::Uuid::now_v7().to_string();
    let first = event(&w, &id, 1);
    let ct = "application/cloudevents+json";

    let (s, body, replayed) = post(&w, &w.api, Some("order-1-create"), ct, &first).await;
    assert_eq!((s, replayed), (202, None), "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer, json!({"id": id, "accepted": true, "deliveries": 1}));

    // The same request again: the first answer, byte for byte, marked as a
    // replay; no second event, no second delivery.
    for _ in 0..2 {
        let again = post(&w, &w.api, Some("order-1-create"), ct, &first).await;
        assert_eq!(again, (202, body.clone(), Some("true".into())));
    }
    // Without the key the same event is a duplicate by its id (another answer).
    let (s, plain, replayed) = post(&w, &w.api, None, ct, &first).await;
    assert_eq!((s, replayed), (202, None));
    assert_eq!(
        serde_json::from_str::<Value>(&plain).unwrap(),
        json!({"id": id, "accepted": false, "deliveries": 0})
    );
    assert_eq!(stored(&w, &[&id]).await, 1);
    rx.wait_for(1, 20).await;
    let deliveries = w.deliveries(&sub, "").await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");

    // Another request under the same key: 422, and its event is not stored.
    let other_id = uuid::Uuid::now_v7().to_string();
    let (s, problem, _) = post(
        &w,
        &w.api,
        Some("order-1-create"),
        ct,
        &event(&w, &other_id, 2),
    )
    .await;
    assert_eq!(s, 422, "{problem}");
    let problem: Value = serde_json::from_str(&problem).unwrap();
    assert_eq!(problem["code"], "idempotency_key_reused");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("different request"),
        "{problem}"
    );
    assert_eq!(stored(&w, &[&other_id]).await, 0);
    // The same body under another Content-Type is another request too.
    let (s, _, _) = post(
        &w,
        &w.api,
        Some("order-1-create"),
        "application/json",
        &first,
    )
    .await;
    assert_eq!(s, 422);

    // Another tenant's same key is its own.
    let (t2, k2) = w.env.tenant(&w.m, "other-tenant").await;
    let api2 = TenantApi::new(&w.env, &w.m, &t2, &k2);
    let id2 = uuid::Uuid::now_v7().to_string();
    let theirs = envelope(&id2, "order.created", &t2, json!({"order_id": 3}));
    let (s, body2, replayed) = post(&w, &api2, Some("order-1-create"), ct, &theirs).await;
    assert_eq!((s, replayed), (202, None), "{body2}");
    assert_eq!(
        serde_json::from_str::<Value>(&body2).unwrap(),
        json!({"id": id2, "accepted": true, "deliveries": 0})
    );

    // A batch under a key is replayed whole.
    let (a, b) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    let batch = json!([event(&w, &a, 4), event(&w, &b, 5)]);
    let bct = "application/cloudevents-batch+json";
    let (s, batch_body, _) = post(&w, &w.api, Some("batch-7"), bct, &batch).await;
    assert_eq!(s, 202, "{batch_body}");
    assert_eq!(
        serde_json::from_str::<Value>(&batch_body).unwrap(),
        json!({"data": [
            {"id": a, "accepted": true, "deliveries": 1},
            {"id": b, "accepted": true, "deliveries": 1},
        ]})
    );
    let again = post(&w, &w.api, Some("batch-7"), bct, &batch).await;
    assert_eq!(again, (202, batch_body, Some("true".into())));
    assert_eq!(stored(&w, &[&a, &b]).await, 2);
    rx.wait_for(3, 20).await;
    assert_eq!(w.deliveries(&sub, "").await.len(), 3);
}

#[tokio::test]
async fn malformed_keys_are_refused_and_change_nothing() {
    let w = world(|_| {}).await;
    let ct = "application/cloudevents+json";
    let id = uuid::Uuid::now_v7().to_string();
    for (key, why) in [
        (String::new(), "empty"),
        ("  ".to_owned(), "empty"),
        ("k".repeat(256), "256 characters long"),
    ] {
        let (s, problem, _) = post(&w, &w.api, Some(&key), ct, &event(&w, &id, 1)).await;
        assert_eq!(s, 400, "{key:?}: {problem}");
        let problem: Value = serde_json::from_str(&problem).unwrap();
        assert_eq!(problem["code"], "invalid_idempotency_key");
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{problem}"
        );
    }
    let r = w
        .api
        .at(&w.d)
        .request(Method::POST, "/api/v1/events")
        .header("Content-Type", ct)
        .header("Idempotency-Key", "a")
        .header("Idempotency-Key", "b")
        .body(event(&w, &id, 1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "two keys");
    assert_eq!(stored(&w, &[&id]).await, 0, "nothing was stored");
    // 255 characters is the longest key.
    let (s, body, _) = post(&w, &w.api, Some(&"k".repeat(255)), ct, &event(&w, &id, 1)).await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(stored(&w, &[&id]).await, 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_store_one_outcome() {
    let w = world(|_| {}).await;
    let ct = "application/cloudevents+json";

    // The same request 16 times at once: one event, one answer for all.
    let id = uuid::Uuid::now_v7().to_string();
    let same = event(&w, &id, 1);
    let answers = futures::future::join_all(
        (0..16).map(|_| post(&w, &w.api, Some("same-at-once"), ct, &same)),
    )
    .await;
    let first = &answers[0].1;
    for (s, body, _) in &answers {
        assert_eq!((*s, body), (202, first), "{answers:?}");
    }
    assert_eq!(
        serde_json::from_str::<Value>(first).unwrap()["accepted"],
        true
    );
    assert_eq!(
        answers.iter().filter(|a| a.2.is_none()).count(),
        1,
        "one request stored it, the others were replays: {answers:?}"
    );
    assert_eq!(stored(&w, &[&id]).await, 1);

    // 16 different requests with one key at once: exactly one is taken,
    // the others are refused, and only its event is stored.
    let ids: Vec<String> = (0..16).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let bodies: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| event(&w, id, n as u32))
        .collect();
    let answers = futures::future::join_all(
        bodies
            .iter()
            .map(|b| post(&w, &w.api, Some("different-at-once"), ct, b)),
    )
    .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 422).count(),
        15,
        "{answers:?}"
    );
    let winner = answers.iter().position(|a| a.0 == 202).unwrap();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(stored(&w, &refs).await, 1);
    assert_eq!(stored(&w, &[&ids[winner]]).await, 1);
}

#[tokio::test]
async fn keys_are_kept_24_hours_then_taken_over_and_pruned() {
    let w = world(|_| {}).await;
    let ct = "application/cloudevents+json";
    let (a, b) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    let (s, _, _) = post(&w, &w.api, Some("old-key"), ct, &event(&w, &a, 1)).await;
    assert_eq!(s, 202);
    let (s, _, _) = post(&w, &w.api, Some("older-key"), ct, &event(&w, &a, 1)).await;
    assert_eq!(s, 202);
    // As if both were made 25 hours ago.
    sqlx::query(
        "UPDATE event_idempotency_keys SET created_at = NOW() - INTERVAL '25 hours'
          WHERE tenant_id = $1::uuid",
    )
    .bind(&w.tenant)
    .execute(w.env.pool())
    .await
    .unwrap();
    // Past 24 hours a key is free again: another request takes it.
    let (s, body, replayed) = post(&w, &w.api, Some("old-key"), ct, &event(&w, &b, 2)).await;
    assert_eq!((s, replayed), (202, None), "{body}");
    assert_eq!(stored(&w, &[&b]).await, 1);
    // A dispatcher prunes expired keys when it starts (and every minute).
    let d2 = w.env.start(webhook_dispatcher::build, w.env.config()).await;
    let left: Vec<String> = eventually(20, "the expired key is pruned", || async {
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT key FROM event_idempotency_keys WHERE tenant_id = $1::uuid ORDER BY key",
        )
        .bind(&w.tenant)
        .fetch_all(w.env.pool())
        .await
        .unwrap();
        (keys.len() == 1).then_some(keys)
    })
    .await;
    assert_eq!(left, ["old-key"], "the taken-over key is young again");
    d2.stop().await;
}
