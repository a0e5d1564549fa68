//! Sync Job History: a job created through the API is listed, filtered,
//! opened and cancelled from the console; with integration-sync running, a
//! job's progress moves on screen without a reload, its conflicts are
//! listed and resolved, and IMPORT jobs are rolled back (also leaving the
//! records changed since).

use crate::{Browser, manager};
use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind, Mode};
use hub_testkit::{TenantApi, TestEnv, eventually};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn sync_job_history_lists_opens_and_cancels_a_pending_job() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let (tenant, key) = env.tenant(&m, "acme").await;
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let created = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "HUBSPOT", "name": "CRM", "config": fake.config(),
                   "credentials": {"access_token": DEFAULT_TOKEN}}),
        )
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().to_owned();
    api.post(&format!("/api/v1/integrations/{id}/enable"), json!({}))
        .await
        .ok(200);
    // No integration-sync runs in this test: the job stays PENDING.
    let job = api
        .post(
            "/api/v1/sync-jobs",
            json!({"integration_id": id, "job_type": "FULL_SYNC", "entity_type": "contacts"}),
        )
        .await;
    let job = job.ok(201)["id"].as_str().unwrap().to_owned();

    let b = Browser::open(&m).await;
    b.sign_in(&tenant, &key).await;
    b.go("/console/sync-jobs?status=COMPLETED").await;
    b.wait_text("No sync jobs match these filters.").await;
    b.go("/console/sync-jobs").await;
    b.el("#sync-jobs").await;
    let rows = b.text("#sync-jobs").await;
    assert!(
        rows.contains("FULL_SYNC") && rows.contains("contacts") && rows.contains("PENDING"),
        "{rows}"
    );
    b.shot("sync-jobs").await;
    b.click(&format!("a[href='/console/sync-jobs/{job}']"))
        .await;
    assert_eq!(b.text("#job-status").await, "PENDING");
    b.el("#progress").await;
    b.click("#cancel-job").await;
    b.wait_text("CANCELLED").await;
    assert_eq!(b.text("#job-status").await, "CANCELLED");
    b.no_script_errors().await;
    b.shot("sync-job-cancelled").await;
    let stored = api.get(&format!("/api/v1/sync-jobs/{job}")).await;
    assert_eq!(stored.ok(200)["status"], "CANCELLED");
    b.close().await;
    fake.stop().await;
    m.stop().await;
}

/// A manager and an integration-sync on one database, a tenant signed in
/// through the API, and an enabled HubSpot integration against a fake
/// holding `contacts` contacts.
struct World {
    env: TestEnv,
    m: hub_testkit::Running,
    _sync: hub_testkit::Running,
    api: TenantApi,
    fake: FakeProvider,
    integration: String,
    tenant: String,
    key: String,
}

async fn world(contacts: u64) -> World {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let sync = env.spawn("integration-sync", env.config()).await;
    let (tenant, key) = env.tenant(&m, "sync").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let fake = FakeProvider::start(Kind::HubSpot).await;
    fake.set_count("contacts", contacts);
    let created = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "HUBSPOT", "name": "CRM", "config": fake.config(),
                   "credentials": {"access_token": DEFAULT_TOKEN}}),
        )
        .await;
    let integration = created.ok(201)["id"].as_str().unwrap().to_owned();
    api.post(
        &format!("/api/v1/integrations/{integration}/enable"),
        json!({}),
    )
    .await
    .ok(200);
    World {
        env,
        m,
        _sync: sync,
        api,
        fake,
        integration,
        tenant,
        key,
    }
}

impl World {
    /// Creates a job; its id.
    async fn start(&self, mut body: Value) -> String {
        body["integration_id"] = json!(self.integration);
        let created = self.api.post("/api/v1/sync-jobs", body).await;
        created.ok(201)["id"].as_str().unwrap().to_owned()
    }

    /// Waits for job `id` to end; the job.
    async fn ended(&self, id: &str) -> Value {
        eventually(60, "the job ended", || async {
            let j = self.api.get(&format!("/api/v1/sync-jobs/{id}")).await;
            let j = j.ok(200).clone();
            (!["PENDING", "RUNNING"].contains(&j["status"].as_str().unwrap())).then_some(j)
        })
        .await
    }

    /// Imports `records` (HubSpot contacts, JSON) and waits for the job.
    async fn import(&self, records: Value) -> Value {
        let id = self
            .start(json!({"job_type": "IMPORT", "entity_type": "contacts",
                          "file": {"format": "JSON", "content": records.to_string()}}))
            .await;
        self.ended(&id).await
    }
}

fn contact(id: &str, email: &str, at: &str) -> Value {
    json!({"id": id, "properties": {"email": email, "firstname": "Ana", "lastname": "Ng",
           "hs_lastmodifieddate": at}, "archived": false})
}

#[tokio::test]
async fn a_running_jobs_progress_changes_on_screen_without_a_reload() {
    let w = world(2_000).await;
    // Each page of the provider's answer takes a while: the job runs for
    // seconds.
    w.fake.set_mode(Mode::Slow(Duration::from_millis(400)));
    let job = w
        .start(json!({"job_type": "FULL_SYNC", "entity_type": "contacts"}))
        .await;
    let b = Browser::open(&w.m).await;
    b.sign_in(&w.tenant, &w.key).await;
    b.go(&format!("/console/sync-jobs/{job}")).await;
    let first = b.text("#processed").await;
    b.c.execute("window.sameDocument = true; return null;", vec![])
        .await
        .unwrap();
    let processed = |text: &str| -> i64 {
        text.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let mut seen = vec![first.clone()];
    for _ in 0..600 {
        let now = b.text("#processed").await;
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        if seen.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen.len() >= 3,
        "the progress did not move on screen: {seen:?}"
    );
    assert!(
        seen.windows(2)
            .all(|p| processed(&p[0]) <= processed(&p[1])),
        "{seen:?}"
    );
    b.shot("sync-job-running").await;
    w.fake.set_mode(Mode::Normal);
    let done = w.ended(&job).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    for _ in 0..100 {
        if b.text("#job-status").await == "COMPLETED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(b.text("#job-status").await, "COMPLETED");
    assert_eq!(processed(&b.text("#processed").await), 2_000);
    // Finished: the part stops polling, and it was never a reload.
    let polling = b.el("#job").await.attr("hx-trigger").await.unwrap();
    assert_eq!(polling, None, "a finished job's page keeps polling");
    let same =
        b.c.execute("return window.sameDocument === true;", vec![])
            .await
            .unwrap();
    assert_eq!(same, json!(true), "the page was reloaded");
    b.no_script_errors().await;
    b.shot("sync-job-completed").await;
    b.close().await;
}

#[tokio::test]
async fn conflicts_are_listed_and_resolved_and_an_import_is_rolled_back() {
    let w = world(0).await;
    let at = "2024-01-01T00:00:00Z";
    let j = w
        .import(json!([
            contact("1", "one@x.example", at),
            contact("2", "two@x.example", at)
        ]))
        .await;
    assert_eq!(j["created_count"], 2, "{j}");
    let first = j["id"].as_str().unwrap().to_owned();
    // Local changes: 1's newer than what comes next, 2's older.
    sqlx::query(
        "UPDATE sync_records SET local_data = data || '{\"title\": \"local\"}',
                local_changed_at = CASE external_id WHEN '1' THEN now() ELSE '2024-01-15T00:00:00Z' END
          WHERE integration_id = $1::uuid",
    )
    .bind(&w.integration)
    .execute(w.env.pool())
    .await
    .unwrap();
    let later = "2024-02-01T00:00:00Z";
    let second = w
        .import(json!([
            contact("1", "one-remote@x.example", later),
            contact("2", "two-remote@x.example", later)
        ]))
        .await;
    assert_eq!(second["conflict_count"], 2, "{second}");
    let second = second["id"].as_str().unwrap().to_owned();

    let b = Browser::open(&w.m).await;
    b.sign_in(&w.tenant, &w.key).await;
    b.go(&format!("/console/sync-jobs/{second}")).await;
    let listed = b.text("#conflicts").await;
    assert!(
        listed.contains("Record 1")
            && listed.contains("Record 2")
            && listed.contains("one-remote@x.example")
            && listed.contains("\"title\": \"local\""),
        "{listed}"
    );
    b.shot("sync-job-conflicts").await;
    let conflicts = w
        .api
        .get(&format!("/api/v1/sync-jobs/{second}/conflicts"))
        .await;
    let rows = conflicts.ok(200)["data"].as_array().unwrap().clone();
    let one = rows.iter().find(|c| c["external_id"] == "1").unwrap();
    assert_eq!(one["winner"], "LOCAL");
    let cid = one["id"].as_str().unwrap().to_owned();
    // Record 1: the hub's change won; keep the provider's instead.
    b.click(&format!("#conflict-{cid} button[value=remote]"))
        .await;
    b.wait_text("resolved: KEEP_REMOTE").await;
    assert!(
        b.text(&format!("#conflict-{cid}"))
            .await
            .contains("KEEP_REMOTE")
    );
    assert_eq!(
        b.c.find_all(fantoccini::Locator::Css(&format!("#conflict-{cid} form")))
            .await
            .unwrap()
            .len(),
        0,
        "a resolved conflict has no form"
    );
    let rows = w
        .api
        .get(&format!("/api/v1/sync-jobs/{second}/conflicts"))
        .await;
    let one = rows.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == cid.as_str())
        .unwrap()
        .clone();
    assert_eq!(one["resolution"], "KEEP_REMOTE", "{one}");
    b.no_script_errors().await;
    b.shot("sync-job-conflict-resolved").await;

    // An import that creates two records, rolled back from the console
    // after a confirmation.
    let third = w
        .import(json!([
            contact("11", "new-11@x.example", later),
            contact("12", "new-12@x.example", later)
        ]))
        .await;
    assert_eq!(third["created_count"], 2, "{third}");
    let third = third["id"].as_str().unwrap().to_owned();
    b.go(&format!("/console/sync-jobs/{third}")).await;
    b.click("#rollback").await;
    b.el("#confirm-rollback").await;
    b.shot("sync-job-rollback-confirm").await;
    b.click("#confirm-rollback").await;
    let done = b.text("#rollback-done").await;
    assert!(done.contains("2 removed"), "{done}");
    b.el("#rolled-back").await;
    let j = w.api.get(&format!("/api/v1/sync-jobs/{third}")).await;
    assert!(j.ok(200)["rolled_back_at"].is_string());
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_records WHERE integration_id = $1::uuid AND deleted_at IS NULL",
    )
    .bind(&w.integration)
    .fetch_one(w.env.pool())
    .await
    .unwrap();
    assert_eq!(held, 2, "the rolled-back import's records are gone");
    assert_eq!(
        b.c.find_all(fantoccini::Locator::Css("#rollback"))
            .await
            .unwrap()
            .len(),
        0,
        "a rolled-back import offers no rollback"
    );
    b.shot("sync-job-rolled-back").await;

    // The records the first import created were changed since (by the
    // second import and the resolution): the API refuses, the console
    // offers to leave them as they are and roll back the rest.
    b.go(&format!("/console/sync-jobs/{first}")).await;
    b.click("#rollback").await;
    b.click("#confirm-rollback").await;
    let refused = b.text("#rollback-changed").await;
    assert!(refused.contains("changed since"), "{refused}");
    b.shot("sync-job-rollback-changed").await;
    b.click("#rollback-skip-changed").await;
    b.el("#rollback-done").await;
    let j = w.api.get(&format!("/api/v1/sync-jobs/{first}")).await;
    assert!(j.ok(200)["rolled_back_at"].is_string());
    b.no_script_errors().await;
    b.close().await;
}
