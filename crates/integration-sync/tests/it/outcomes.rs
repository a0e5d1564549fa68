//! What a sync publishes and records, record by record: an
//! `integration.contact.updated` event for each created or changed record
//! and none for unchanged ones; invalid records as item errors; conflicts
//! decided both ways and on a tie; a cancel honoured between pages.

use crate::jobs::world;
use chrono::{DateTime, SubsecRound, Utc};
use hub_testkit::amqp::{Amqp, Message};
use hub_testkit::eventually;
use hub_testkit::fakes::{Mode, Selection};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The record events that arrived on `queue` so far, once each (by event
/// id), after the outbox is empty.
async fn events(w: &crate::jobs::World, amqp: &Amqp, queue: &str) -> Vec<Message> {
    w.env.outbox_retired().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seen = BTreeSet::new();
    amqp.drain_messages(queue)
        .await
        .into_iter()
        .filter(|m| seen.insert(m.body["id"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

fn by_record(events: &[Message]) -> BTreeMap<String, String> {
    events
        .iter()
        .map(|m| {
            (
                m.body["data"]["external_id"].as_str().unwrap().to_owned(),
                m.body["data"]["change"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn set_local_change(w: &crate::jobs::World, ids: &[String], at: DateTime<Utc>) {
    sqlx::query(
        "UPDATE sync_records SET local_changed_at = $3, local_data = data || '{\"title\": \"local\"}'
          WHERE integration_id = $1::uuid AND external_id = ANY($2)",
    )
    .bind(&w.integration)
    .bind(ids)
    .bind(at)
    .execute(w.env.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn events_only_for_changed_records_invalid_ones_are_item_errors_and_conflicts_go_both_ways() {
    let w = world(250).await;
    let amqp = Amqp::connect().await;
    let queue = amqp
        .tap(
            &format!("{}hub.routed", w.env.prefix),
            "integration.contact.updated",
        )
        .await;
    let full = json!({"job_type": "FULL_SYNC", "entity_type": "contacts"});
    let inc = json!({"job_type": "INCREMENTAL", "entity_type": "contacts"});

    // Every record created: one event each, with the mapped c_contact.
    let j = w.run(full.clone()).await;
    assert_eq!(j["created_count"], 250, "{j}");
    let created = events(&w, &amqp, &queue).await;
    let changes = by_record(&created);
    assert_eq!(created.len(), 250, "one event per record");
    assert_eq!(changes.len(), 250);
    assert!(changes.values().all(|c| c == "created"), "{changes:?}");
    let sample = &created[0].body;
    assert_eq!(sample["tenantid"].as_str(), Some(w.api.tenant.as_str()));
    assert_eq!(sample["data"]["entity"], "c_contact");
    assert_eq!(sample["data"]["job_id"], j["id"]);
    assert_eq!(sample["data"]["record"]["source"], "hubspot");
    assert!(
        sample["data"]["record"]["email"]
            .as_str()
            .is_some_and(|e| e.contains('@')),
        "{sample}"
    );

    // Nothing changed: nothing published.
    let j = w.run(full.clone()).await;
    assert_eq!(j["unchanged_count"], 250, "{j}");
    assert!(events(&w, &amqp, &queue).await.is_empty());

    // Three changed and one new with an address the mapping refuses: three
    // events, one item error, the job completes.
    let touched = w.fake.touch("contacts", Selection::Numbers(vec![3, 4, 5]));
    let bad = w
        .fake
        .create("contacts", json!({"email": "not-an-address"}));
    let j = w.run(inc.clone()).await;
    assert_eq!(j["status"], "COMPLETED", "{j}");
    assert_eq!(
        (j["updated_count"].clone(), j["error_count"].clone()),
        (json!(3), json!(1)),
        "{j}"
    );
    let changes = by_record(&events(&w, &amqp, &queue).await);
    let expected: BTreeMap<String, String> = touched
        .iter()
        .map(|id| (id.clone(), "updated".to_owned()))
        .collect();
    assert_eq!(changes, expected);
    let errors = w
        .api
        .get(&format!(
            "/api/v1/sync-jobs/{}/errors",
            j["id"].as_str().unwrap()
        ))
        .await;
    let errors = errors.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["external_id"], bad.as_str());
    assert!(
        errors[0]["error"].to_string().contains("email"),
        "the error names the field: {errors:?}"
    );
    assert_eq!(
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM sync_records WHERE integration_id = $1::uuid AND external_id = $2"
        )
        .bind(&w.integration)
        .bind(&bad)
        .fetch_one(w.env.pool())
        .await
        .unwrap(),
        0,
        "an invalid record is not stored"
    );

    // Conflicts: a local change older than the provider's (the provider
    // wins), one newer (the hub wins), one at the same instant (a tie: the
    // provider wins, by rule).
    let ids = |n: u64| w.fake.record_id("contacts", n);
    let (older, newer, tie) = (ids(10), ids(11), ids(12));
    set_local_change(
        &w,
        std::slice::from_ref(&older),
        Utc::now() - chrono::Duration::hours(1),
    )
    .await;
    set_local_change(
        &w,
        std::slice::from_ref(&newer),
        Utc::now() + chrono::Duration::days(1),
    )
    .await;
    w.fake
        .touch("contacts", Selection::ids([older.clone(), newer.clone()]));
    let instant = (w.fake.now() + chrono::Duration::seconds(1)).trunc_subsecs(3);
    w.fake
        .touch_at("contacts", Selection::ids([tie.clone()]), instant);
    set_local_change(&w, std::slice::from_ref(&tie), instant).await;
    let j = w.run(inc.clone()).await;
    assert_eq!(j["conflict_count"], 3, "{j}");
    let listed = w
        .api
        .get(&format!(
            "/api/v1/sync-jobs/{}/conflicts",
            j["id"].as_str().unwrap()
        ))
        .await;
    let decided: BTreeMap<String, (String, String)> = listed.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["external_id"].as_str().unwrap().to_owned(),
                (
                    c["winner"].as_str().unwrap().to_owned(),
                    c["rule"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    let expected: BTreeMap<String, (String, String)> = [
        (older.clone(), ("REMOTE", "newest_timestamp")),
        (newer.clone(), ("LOCAL", "newest_timestamp")),
        (tie.clone(), ("REMOTE", "tie_remote_wins")),
    ]
    .into_iter()
    .map(|(id, (w, r))| (id, (w.to_owned(), r.to_owned())))
    .collect();
    assert_eq!(decided, expected);
    // The provider's versions that won are applied and published; the
    // hub's winner stays a local change, unpublished.
    let changes = by_record(&events(&w, &amqp, &queue).await);
    assert_eq!(
        changes.keys().cloned().collect::<BTreeSet<_>>(),
        [older.clone(), tie.clone()].into_iter().collect()
    );
    let pending: Vec<String> = sqlx::query_scalar(
        "SELECT external_id FROM sync_records WHERE integration_id = $1::uuid AND local_changed_at IS NOT NULL",
    )
    .bind(&w.integration)
    .fetch_all(w.env.pool())
    .await
    .unwrap();
    assert_eq!(
        pending,
        vec![newer],
        "only the hub's winner waits for export"
    );
}

#[tokio::test]
async fn a_cancel_stops_a_running_job_between_pages() {
    let w = world(3_000).await;
    w.fake.set_mode(Mode::Slow(Duration::from_millis(200)));
    let created = w
        .api
        .post(
            "/api/v1/sync-jobs",
            json!({"integration_id": w.integration, "job_type": "FULL_SYNC", "entity_type": "contacts"}),
        )
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/sync-jobs/{id}");
    eventually(60, "two pages committed", || async {
        let j = w.api.get(&path).await.ok(200).clone();
        (j["current_page"].as_i64().unwrap_or(0) >= 2).then_some(())
    })
    .await;
    let asked = w.api.post_empty(&format!("{path}/cancel")).await;
    let asked = asked.ok(200).clone();
    assert!(
        asked["cancel_requested_at"].is_string(),
        "a running job is asked to stop: {asked}"
    );
    let done = eventually(30, "the job stopped", || async {
        let j = w.api.get(&path).await.ok(200).clone();
        (j["status"] != "RUNNING").then_some(j)
    })
    .await;
    assert_eq!(done["status"], "CANCELLED", "{done}");
    let pages = done["current_page"].as_i64().unwrap();
    assert!(pages < 30, "stopped before the end: {done}");
    assert_eq!(
        w.held(true).await,
        pages * 100,
        "every committed page kept, nothing after"
    );
    // A cancelled job can be followed by a new one at once.
    w.fake.set_mode(Mode::Normal);
    let again = w
        .run(json!({"job_type": "FULL_SYNC", "entity_type": "contacts"}))
        .await;
    assert_eq!(again["status"], "COMPLETED", "{again}");
    assert_eq!(w.held(true).await, 3_000);
}
