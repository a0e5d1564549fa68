//! A sync worker killed mid-job (SIGKILL, as a crash or an OOM kill would):
//! its lease lapses, another process claims the job and resumes it from the
//! last committed page — every record once, none missing, one event per
//! record.

use hub_testkit::amqp::Amqp;
use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind, Mode};
use hub_testkit::{TenantApi, TestEnv, eventually};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

const CONTACTS: u64 = 3_000;

#[tokio::test]
async fn a_worker_killed_mid_job_is_resumed_by_another_without_duplicates_or_gaps() {
    let env = TestEnv::new().await;
    let m = env.spawn("integration-manager", env.config()).await;
    let mut config = env.config();
    config.sync_lease_seconds = 2;
    let first = env.spawn("integration-sync", config.clone()).await;
    let (tenant, key) = env.tenant(&m, "resume").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let fake = FakeProvider::start(Kind::HubSpot).await;
    fake.set_count("contacts", CONTACTS);
    let amqp = Amqp::connect().await;
    let events = amqp
        .tap(
            &format!("{}hub.routed", env.prefix),
            "integration.contact.updated",
        )
        .await;
    let integration = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "HUBSPOT", "name": "crm", "config": fake.config(),
                   "credentials": {"access_token": DEFAULT_TOKEN}}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.post_empty(&format!("/api/v1/integrations/{integration}/enable"))
        .await
        .ok(200);
    // Each page takes a while, so the kill lands mid-job.
    fake.set_mode(Mode::Slow(Duration::from_millis(150)));
    let job = api
        .post(
            "/api/v1/sync-jobs",
            json!({"integration_id": integration, "job_type": "FULL_SYNC", "entity_type": "contacts"}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/sync-jobs/{job}");
    eventually(60, "five pages committed", || async {
        let j = api.get(&path).await.ok(200).clone();
        (j["current_page"].as_i64().unwrap_or(0) >= 5).then_some(())
    })
    .await;
    first.kill().await;
    let at_kill = api.get(&path).await.ok(200).clone();
    assert_eq!(at_kill["status"], "RUNNING", "{at_kill}");
    let pages_at_kill = at_kill["current_page"].as_i64().unwrap();
    assert!(pages_at_kill < 30, "killed mid-job: {at_kill}");

    // Another process takes the job over once the lease lapses.
    let second = env.spawn("integration-sync", config).await;
    let done = eventually(90, "the job resumed and completed", || async {
        let j = api.get(&path).await.ok(200).clone();
        (j["status"] != "RUNNING" && j["status"] != "PENDING").then_some(j)
    })
    .await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["runs"], 2, "claimed twice: {done}");
    assert_eq!(
        (
            done["processed_records"].clone(),
            done["created_count"].clone(),
            done["updated_count"].clone(),
            done["unchanged_count"].clone(),
            done["current_page"].clone(),
        ),
        (
            json!(CONTACTS),
            json!(CONTACTS),
            json!(0),
            json!(0),
            json!(30)
        ),
        "no committed page read again, none skipped: {done}"
    );
    // The provider was not asked again for what was committed: the pages
    // asked for after the kill start where the checkpoint was.
    let held: Vec<String> = sqlx::query_scalar(
        "SELECT external_id FROM sync_records WHERE integration_id = $1::uuid AND created_by_job = $2::uuid",
    )
    .bind(&integration)
    .bind(&job)
    .fetch_all(env.pool())
    .await
    .unwrap();
    let held: HashSet<String> = held.into_iter().collect();
    assert_eq!(held.len() as u64, CONTACTS, "every record held once");
    let expected: HashSet<String> = (1..=CONTACTS)
        .map(|n| {
            fake.record("contacts", n).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(held, expected, "no gap: every contact of the provider");

    // One event per record (the bus may repeat a message whose publisher
    // died before retiring it: the event id tells).
    let mut seen = Vec::new();
    amqp.drain_until(&events, &mut seen, 60, "an event per record", |all| {
        let ids: HashSet<&str> = all.iter().filter_map(|m| m.body["id"].as_str()).collect();
        ids.len() as u64 >= CONTACTS
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    seen.extend(amqp.drain_messages(&events).await);
    let mut by_record: std::collections::HashMap<String, HashSet<String>> = Default::default();
    for m in &seen {
        let record = m.body["data"]["external_id"].as_str().unwrap().to_owned();
        let event = m.body["id"].as_str().unwrap().to_owned();
        by_record.entry(record).or_default().insert(event);
    }
    assert_eq!(by_record.len() as u64, CONTACTS, "an event for each record");
    let repeated: Vec<(&String, &HashSet<String>)> =
        by_record.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        repeated.is_empty(),
        "one event (one event id) per record: {repeated:?}"
    );
    second.stop().await;
}
