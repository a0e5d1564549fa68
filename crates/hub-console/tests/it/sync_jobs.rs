//! Sync Job History: a job created through the API is listed, filtered,
//! opened and cancelled from the console.

use crate::{Browser, manager};
use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind};
use hub_testkit::{TenantApi, TestEnv};
use serde_json::json;

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
