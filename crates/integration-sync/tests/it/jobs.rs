//! Sync jobs end to end: created through integration-manager's API (its
//! binary), run by integration-sync against the fake HubSpot with its real
//! paging, incremental search and deletions.

use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind};
use hub_testkit::{Running, TenantApi, TestEnv, eventually};
use serde_json::{Value, json};

pub(crate) struct World {
    pub(crate) env: TestEnv,
    pub(crate) m: Running,
    pub(crate) _s: Running,
    pub(crate) api: TenantApi,
    pub(crate) fake: FakeProvider,
    pub(crate) integration: String,
}

pub(crate) async fn world(contacts: u64) -> World {
    let env = TestEnv::new().await;
    let m = env.spawn("integration-manager", env.config()).await;
    let s = env.start(integration_sync::build, env.config()).await;
    let (tenant, key) = env.tenant(&m, "sync").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let fake = FakeProvider::start(Kind::HubSpot).await;
    fake.set_count("contacts", contacts);
    let created = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "HUBSPOT", "name": "crm", "config": fake.config(),
                   "credentials": {"access_token": DEFAULT_TOKEN}}),
        )
        .await;
    let integration = created.ok(201)["id"].as_str().unwrap().to_owned();
    api.post_empty(&format!("/api/v1/integrations/{integration}/enable"))
        .await
        .ok(200);
    World {
        env,
        m,
        _s: s,
        api,
        fake,
        integration,
    }
}

impl World {
    /// Creates a job and waits for it to end; returns it.
    pub(crate) async fn run(&self, body: Value) -> Value {
        let mut body = body;
        body["integration_id"] = json!(self.integration);
        let created = self.api.post("/api/v1/sync-jobs", body).await;
        let id = created.ok(201)["id"].as_str().unwrap().to_owned();
        eventually(60, "the job ended", || async {
            let j = self.api.get(&format!("/api/v1/sync-jobs/{id}")).await;
            let j = j.ok(200).clone();
            (!["PENDING", "RUNNING"].contains(&j["status"].as_str().unwrap())).then_some(j)
        })
        .await
    }

    pub(crate) async fn held(&self, live_only: bool) -> i64 {
        let sql = if live_only {
            "SELECT count(*) FROM sync_records WHERE integration_id = $1::uuid AND deleted_at IS NULL"
        } else {
            "SELECT count(*) FROM sync_records WHERE integration_id = $1::uuid"
        };
        sqlx::query_scalar(sql)
            .bind(&self.integration)
            .fetch_one(self.env.pool())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn full_and_incremental_syncs_create_update_skip_unchanged_and_delete() {
    let w = world(1_050).await;
    let full = json!({"job_type": "FULL_SYNC", "entity_type": "contacts"});
    let j = w.run(full.clone()).await;
    assert_eq!(j["status"], "COMPLETED", "{j}");
    assert_eq!(
        (j["processed_records"].clone(), j["created_count"].clone()),
        (json!(1050), json!(1050))
    );
    assert_eq!(j["current_page"], 11, "pages of 100");
    assert_eq!(w.held(true).await, 1050);
    let (_, data): (String, Value) = sqlx::query_as(
        "SELECT external_id, data FROM sync_records WHERE integration_id = $1::uuid ORDER BY external_id LIMIT 1",
    )
    .bind(&w.integration)
    .fetch_one(w.env.pool())
    .await
    .unwrap();
    assert!(
        data["email"].as_str().is_some_and(|e| e.contains('@')),
        "mapped as c_contact: {data}"
    );

    // Nothing changed: nothing rewritten.
    let again = w.run(full.clone()).await;
    assert_eq!(
        (
            again["unchanged_count"].clone(),
            again["created_count"].clone(),
            again["updated_count"].clone()
        ),
        (json!(1050), json!(0), json!(0)),
        "{again}"
    );

    // Ten changed at the provider: INCREMENTAL reads only them (search).
    w.fake.touch(
        "contacts",
        hub_testkit::fakes::Selection::Numbers((1..=10).collect()),
    );
    let inc = w
        .run(json!({"job_type": "INCREMENTAL", "entity_type": "contacts"}))
        .await;
    assert_eq!(inc["status"], "COMPLETED", "{inc}");
    assert_eq!(
        (
            inc["processed_records"].clone(),
            inc["updated_count"].clone()
        ),
        (json!(10), json!(10)),
        "{inc}"
    );

    // A local change newer than the provider's wins a conflict.
    let local = sqlx::query_scalar::<_, String>(
        "UPDATE sync_records SET local_changed_at = now() + interval '1 day', local_data = data || '{\"title\": \"local\"}'
          WHERE integration_id = $1::uuid AND external_id IN (SELECT external_id FROM sync_records
                 WHERE integration_id = $1::uuid ORDER BY external_id DESC LIMIT 3)
          RETURNING external_id",
    )
    .bind(&w.integration)
    .fetch_all(w.env.pool())
    .await
    .unwrap();
    w.fake.touch(
        "contacts",
        hub_testkit::fakes::Selection::ids(local.clone()),
    );
    let inc = w
        .run(json!({"job_type": "INCREMENTAL", "entity_type": "contacts"}))
        .await;
    assert_eq!(inc["conflict_count"], 3, "{inc}");
    let conflicts = w
        .api
        .get(&format!(
            "/api/v1/sync-jobs/{}/conflicts",
            inc["id"].as_str().unwrap()
        ))
        .await;
    let rows = conflicts.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|c| c["winner"] == "LOCAL" && c["rule"] == "newest_timestamp"),
        "{rows:?}"
    );

    // Five gone at the provider: a FULL_SYNC soft-deletes them.
    w.fake.delete(
        "contacts",
        hub_testkit::fakes::Selection::Numbers((101..=105).collect()),
    );
    let j = w.run(full.clone()).await;
    assert_eq!(
        (j["status"].clone(), j["deleted_count"].clone()),
        (json!("COMPLETED"), json!(5)),
        "{j}"
    );
    assert_eq!(w.held(true).await, 1045);

    // 300 gone is over the 20 % guard: nothing deleted until confirmed.
    w.fake.delete(
        "contacts",
        hub_testkit::fakes::Selection::Numbers((201..=500).collect()),
    );
    let j = w.run(full.clone()).await;
    assert_eq!(j["status"], "FAILED", "{j}");
    assert!(
        j["error_message"]
            .as_str()
            .unwrap()
            .contains("confirm_deletions"),
        "{j}"
    );
    assert_eq!(w.held(true).await, 1045);
    let j = w
        .run(json!({"job_type": "FULL_SYNC", "entity_type": "contacts", "confirm_deletions": true}))
        .await;
    assert_eq!(
        (j["status"].clone(), j["deleted_count"].clone()),
        (json!("COMPLETED"), json!(300)),
        "{j}"
    );
    assert_eq!((w.held(true).await, w.held(false).await), (745, 1050));
}

#[tokio::test]
async fn jobs_are_checked_one_runs_at_a_time_and_other_tenants_get_404() {
    let w = world(20).await;
    let bad = w
        .api
        .post("/api/v1/sync-jobs", json!({"integration_id": w.integration, "job_type": "FULL_SYNC", "entity_type": "tickets"}))
        .await;
    let p = bad.problem(422, "validation_failed");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("contacts"),
        "{p}"
    );
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let first = w
        .api
        .post(
            "/api/v1/sync-tasks",
            json!({"integration_id": w.integration, "job_type": "FULL_SYNC",
                                           "entity_type": "contacts", "scheduled_at": later}),
        )
        .await;
    let first = first.ok(201)["id"].as_str().unwrap().to_owned();
    let second = w
        .api
        .post("/api/v1/sync-jobs", json!({"integration_id": w.integration, "job_type": "INCREMENTAL", "entity_type": "contacts"}))
        .await;
    let p = second.problem(409, "conflict");
    assert_eq!(p["active_job_id"], first.as_str());
    let cancelled = w
        .api
        .post_empty(&format!("/api/v1/sync-jobs/{first}/cancel"))
        .await;
    assert_eq!(cancelled.ok(200)["status"], "CANCELLED");
    let (other, key) = w.env.tenant(&w.m, "other").await;
    let theirs = TenantApi::new(&w.env, &w.m, &other, &key);
    theirs
        .get(&format!("/api/v1/sync-jobs/{first}"))
        .await
        .problem(404, "not_found");
    let list = theirs.get("/api/v1/sync-jobs").await;
    assert_eq!(list.ok(200)["data"].as_array().unwrap().len(), 0);
}
