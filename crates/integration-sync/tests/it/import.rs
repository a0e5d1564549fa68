//! IMPORT jobs, their rollback, conflict re-resolution and inbound
//! webhooks updating synced records, end to end: integration-manager's API
//! (its binary), integration-sync in process, the fake HubSpot with its
//! real record API, and HubSpot's webhook signature (v3) computed here.

use crate::jobs::{World, world};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use hub_testkit::fakes::Selection;
use hub_testkit::{TenantApi, eventually};
use serde_json::{Value, json};

/// A HubSpot contact as its API returns it.
fn contact(id: &str, email: &str, at: &str) -> Value {
    json!({"id": id, "properties": {"email": email, "firstname": "Ana", "lastname": "Ng",
           "hs_lastmodifieddate": at}, "archived": false})
}

impl World {
    async fn import(&self, entity: &str, format: &str, content: &str, extra: Value) -> Value {
        let mut body = json!({"job_type": "IMPORT", "entity_type": entity,
                              "file": {"format": format, "content": content}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.run(body).await
    }

    /// The held records of `entity`: external id → (data, local_data,
    /// deleted).
    async fn held_records(&self, entity: &str) -> Vec<(String, Value, Option<Value>)> {
        sqlx::query_as(
            "SELECT external_id, data, local_data FROM sync_records
              WHERE integration_id = $1::uuid AND entity_type = $2 AND deleted_at IS NULL
              ORDER BY external_id",
        )
        .bind(&self.integration)
        .bind(entity)
        .fetch_all(self.env.pool())
        .await
        .unwrap()
    }

    async fn email_of(&self, id: &str) -> Option<String> {
        self.held_records("contacts")
            .await
            .into_iter()
            .find(|(x, ..)| x == id)
            .and_then(|(_, d, _)| d["email"].as_str().map(str::to_owned))
    }

    /// Audit entries of `kind` once there are `n` (waits for them).
    async fn events(&self, kind: &str, n: usize) -> Vec<Value> {
        eventually(30, &format!("{n} {kind} events"), || async {
            let all = self.api.audit(Some(kind)).await;
            (all.len() >= n).then_some(all)
        })
        .await
    }
}

#[tokio::test]
async fn json_csv_and_x12_imports_write_records_and_refuse_invalid_ones() {
    let w = world(0).await;
    let file = json!([
        contact("101", "a@one.example", "2024-01-01T00:00:00Z"),
        contact("102", "b@one.example", "2024-01-01T00:00:00Z"),
        contact("103", "c@one.example", "2024-01-01T00:00:00Z"),
        {"id": "104"}
    ]);
    let j = w
        .import("contacts", "JSON", &file.to_string(), json!({}))
        .await;
    assert_eq!(j["status"], "COMPLETED", "{j}");
    assert_eq!(
        (
            j["created_count"].clone(),
            j["error_count"].clone(),
            j["total_records"].clone()
        ),
        (json!(3), json!(1), json!(4)),
        "{j}"
    );
    let errors = w
        .api
        .get(&format!(
            "/api/v1/sync-jobs/{}/errors",
            j["id"].as_str().unwrap()
        ))
        .await;
    let errors = errors.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["external_id"], "104");
    assert_eq!(errors[0]["error"]["code"], "invalid_record");
    assert_eq!(
        w.email_of("101").await.as_deref(),
        Some("a@one.example"),
        "mapped as c_contact"
    );

    // CSV: dotted headers make HubSpot's nested properties; one update, one new.
    let csv = "id,properties.email,properties.firstname,properties.hs_lastmodifieddate\n\
               101,a2@one.example,Ana,2024-02-01T00:00:00Z\n\
               201,d@one.example,Dev,2024-02-01T00:00:00Z\n";
    let j = w.import("contacts", "CSV", csv, json!({})).await;
    assert_eq!(
        (
            j["status"].clone(),
            j["created_count"].clone(),
            j["updated_count"].clone()
        ),
        (json!("COMPLETED"), json!(1), json!(1)),
        "{j}"
    );
    assert_eq!(w.email_of("101").await.as_deref(), Some("a2@one.example"));
    assert_eq!(w.held_records("contacts").await.len(), 4);

    // X12: a tenant template turns the 204's transaction sets into deals.
    let template = w
        .api
        .post(
            "/api/v1/transformations",
            json!({"code": "x12_204_to_hubspot_deals", "name": "204 → deals",
            "source_format": "X12", "target_format": "JSON",
            "mapping_rules": {"rules": [{"target": "records", "source": "groups[0].sets", "each": [
                {"target": "id", "source": "ST.ST02_control_number"},
                {"target": "properties.dealname", "source": "B2.B204_shipment_id"},
                {"target": "properties.pipeline", "value": "freight"}
            ]}]}}),
        )
        .await;
    let template_id = template.ok(201)["id"].as_str().unwrap().to_owned();
    let edi = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/x12/204_load_tender.edi"
    ))
    .unwrap();
    let j = w
        .import(
            "deals",
            "X12",
            &edi,
            json!({"transform_template": {"template_id": template_id}}),
        )
        .await;
    assert_eq!(
        (j["status"].clone(), j["created_count"].clone()),
        (json!("COMPLETED"), json!(1)),
        "{j}"
    );
    let deals = w.held_records("deals").await;
    assert_eq!(deals.len(), 1);
    assert_eq!(deals[0].1["name"], "LOAD-7788", "{:?}", deals[0]);

    // Bad uploads are refused before anything is stored.
    let bad = |body: Value| {
        let mut body = body;
        body["integration_id"] = json!(w.integration);
        body["job_type"] = json!("IMPORT");
        body["entity_type"] = json!("contacts");
        w.api.post("/api/v1/sync-jobs", body)
    };
    let p = bad(json!({})).await;
    assert!(
        p.problem(422, "validation_failed")["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("file")
    );
    let p = bad(json!({"file": {"format": "JSON", "content": "[{\"id\": "}})).await;
    let p = p.problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "file.content", "{p}");
    let p = bad(json!({"file": {"format": "X12", "content": edi}})).await;
    assert!(
        p.problem(422, "validation_failed")["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("transform_template")
    );
    let p = bad(json!({"file": {"format": "PDF", "content": "x"}})).await;
    p.problem(422, "validation_failed");
    let p = bad(json!({"file": {"format": "JSON", "content_base64": "***"}})).await;
    p.problem(422, "validation_failed");
    let big = format!("[{}]", "1,".repeat(4_300_000) + "1");
    let p = bad(json!({"file": {"format": "JSON", "content": big}})).await;
    p.problem(413, "payload_too_large");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_uploads")
        .fetch_one(w.env.pool())
        .await
        .unwrap();
    assert_eq!(stored, 3, "only the accepted files are stored");
}

#[tokio::test]
async fn imports_over_their_error_share_and_on_demand_roll_back_to_the_before_images() {
    let w = world(0).await;
    let at = "2024-01-01T00:00:00Z";
    let first: Vec<Value> = (1..=4)
        .map(|n| contact(&n.to_string(), &format!("v1-{n}@x.example"), at))
        .collect();
    let j = w
        .import("contacts", "JSON", &json!(first).to_string(), json!({}))
        .await;
    assert_eq!(j["created_count"], 4, "{j}");

    // 4 updates and 6 invalid records: over the default half.
    let mut second: Vec<Value> = (1..=4)
        .map(|n| contact(&n.to_string(), &format!("v2-{n}@x.example"), at))
        .collect();
    second.extend((5..=10).map(|n| json!({"id": n.to_string()})));
    let j = w
        .import(
            "contacts",
            "JSON",
            &json!({"records": second}).to_string(),
            json!({}),
        )
        .await;
    assert_eq!(j["status"], "FAILED", "{j}");
    assert!(j["rolled_back_at"].is_string(), "{j}");
    assert!(
        j["error_message"].as_str().unwrap().contains("rolled back"),
        "{j}"
    );
    for n in 1..=4 {
        assert_eq!(
            w.email_of(&n.to_string()).await,
            Some(format!("v1-{n}@x.example"))
        );
    }
    // The same file passes with a higher threshold of its own.
    let j = w
        .import(
            "contacts",
            "JSON",
            &json!({"records": second}).to_string(),
            json!({"max_error_share": 0.7}),
        )
        .await;
    assert_eq!(
        (j["status"].clone(), j["updated_count"].clone()),
        (json!("COMPLETED"), json!(4)),
        "{j}"
    );
    let updated_id = j["id"].as_str().unwrap().to_owned();

    // An import that updates two and creates two, rolled back on demand.
    let third = json!([
        contact("1", "v3-1@x.example", at),
        contact("2", "v3-2@x.example", at),
        contact("11", "new-11@x.example", at),
        contact("12", "new-12@x.example", at)
    ]);
    let j = w
        .import("contacts", "JSON", &third.to_string(), json!({}))
        .await;
    assert_eq!(j["status"], "COMPLETED", "{j}");
    let id = j["id"].as_str().unwrap().to_owned();
    let before = w.api.audit(Some("integration.contact.updated")).await.len();
    let r = w
        .api
        .post_empty(&format!("/api/v1/sync-jobs/{id}/rollback"))
        .await;
    let r = r.ok(200).clone();
    assert_eq!(
        (r["restored"].clone(), r["removed"].clone()),
        (json!(2), json!(2)),
        "{r}"
    );
    assert!(r["job"]["rolled_back_at"].is_string());
    assert_eq!(w.email_of("1").await.as_deref(), Some("v2-1@x.example"));
    assert_eq!(w.email_of("11").await, None);
    assert_eq!(w.held_records("contacts").await.len(), 4);
    let restored = w.events("integration.contact.updated", before + 2).await;
    assert_eq!(
        restored
            .iter()
            .filter(|e| e["data"]["change"] == "restored" && e["data"]["job_id"] == id.as_str())
            .count(),
        2
    );
    w.events("sync.rolled_back", 2).await;
    let again = w
        .api
        .post_empty(&format!("/api/v1/sync-jobs/{id}/rollback"))
        .await;
    assert!(
        again.problem(409, "conflict")["detail"]
            .as_str()
            .unwrap()
            .contains("already")
    );

    // The import before it wrote 1 to 4; since, the rollback above put 1
    // and 2 back (a change too) and a later import changes 3: only 4 is
    // still as it left it.
    let fourth = json!([contact("3", "v4-3@x.example", at)]);
    w.import("contacts", "JSON", &fourth.to_string(), json!({}))
        .await;
    let refused = w
        .api
        .post_empty(&format!("/api/v1/sync-jobs/{updated_id}/rollback"))
        .await;
    let p = refused.problem(409, "conflict");
    assert_eq!(p["changed_records"], json!(["1", "2", "3"]), "{p}");
    assert_eq!(w.email_of("1").await.as_deref(), Some("v2-1@x.example"));
    let r = w
        .api
        .post_empty(&format!(
            "/api/v1/sync-jobs/{updated_id}/rollback?skip_changed=true"
        ))
        .await;
    assert_eq!(r.ok(200)["restored"], 1);
    assert_eq!(w.email_of("4").await.as_deref(), Some("v1-4@x.example"));
    assert_eq!(w.email_of("1").await.as_deref(), Some("v2-1@x.example"));
    assert_eq!(w.email_of("3").await.as_deref(), Some("v4-3@x.example"));

    // A pull is not rolled back on demand; other tenants see nothing.
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let full = w
        .api
        .post(
            "/api/v1/sync-jobs",
            json!({"integration_id": w.integration, "job_type": "FULL_SYNC",
                   "entity_type": "contacts", "scheduled_at": later}),
        )
        .await;
    let full = full.ok(201)["id"].as_str().unwrap().to_owned();
    let p = w
        .api
        .post_empty(&format!("/api/v1/sync-jobs/{full}/rollback"))
        .await;
    assert!(
        p.problem(409, "conflict")["detail"]
            .as_str()
            .unwrap()
            .contains("only IMPORT")
    );
    let (other, key) = w.env.tenant(&w.m, "other").await;
    let theirs = TenantApi::new(&w.env, &w.m, &other, &key);
    theirs
        .post_empty(&format!("/api/v1/sync-jobs/{id}/rollback"))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn re_resolving_a_conflict_applies_the_kept_version_once_and_publishes() {
    let w = world(0).await;
    let file = json!([
        contact("1", "one@x.example", "2024-01-01T00:00:00Z"),
        contact("2", "two@x.example", "2024-01-01T00:00:00Z")
    ]);
    w.import("contacts", "JSON", &file.to_string(), json!({}))
        .await;
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
    let next = json!([
        contact("1", "one-remote@x.example", "2024-02-01T00:00:00Z"),
        contact("2", "two-remote@x.example", "2024-02-01T00:00:00Z")
    ]);
    let j = w
        .import("contacts", "JSON", &next.to_string(), json!({}))
        .await;
    assert_eq!(j["conflict_count"], 2, "{j}");
    let rows = w
        .api
        .get(&format!(
            "/api/v1/sync-jobs/{}/conflicts",
            j["id"].as_str().unwrap()
        ))
        .await;
    let rows = rows.ok(200)["data"].as_array().unwrap().clone();
    let of = |x: &str| rows.iter().find(|c| c["external_id"] == x).unwrap().clone();
    let (c1, c2) = (of("1"), of("2"));
    assert_eq!(
        (c1["winner"].clone(), c2["winner"].clone()),
        (json!("LOCAL"), json!("REMOTE"))
    );

    // 1: the local change won; the operator keeps the provider's version.
    let path1 = format!(
        "/api/v1/sync/conflicts/{}/resolve",
        c1["id"].as_str().unwrap()
    );
    let r = w.api.post(&path1, json!({"keep": "remote"})).await;
    assert_eq!(r.ok(200)["resolution"], "KEEP_REMOTE");
    let held = w.held_records("contacts").await;
    assert_eq!(held[0].1["email"], "one-remote@x.example");
    assert_eq!(held[0].2, None, "the local change is dropped");

    // 2: the provider won; the operator keeps the hub's, to export.
    let path2 = format!(
        "/api/v1/sync/conflicts/{}/resolve",
        c2["id"].as_str().unwrap()
    );
    let r = w.api.post(&path2, json!({"keep": "local"})).await;
    assert_eq!(r.ok(200)["record"]["title"], "local");
    let held = w.held_records("contacts").await;
    assert_eq!(
        held[1].2.as_ref().unwrap()["title"],
        "local",
        "{:?}",
        held[1]
    );
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_records WHERE external_id = '2' AND local_changed_at > now() - interval '1 minute'",
    )
    .fetch_one(w.env.pool())
    .await
    .unwrap();
    assert_eq!(pending, 1, "a local change to export");

    let all = eventually(30, "both resolutions published", || async {
        let all = w.api.audit(Some("integration.contact.updated")).await;
        let n = all
            .iter()
            .filter(|e| e["data"]["change"] == "resolved")
            .count();
        (n == 2).then_some(all)
    })
    .await;
    assert!(all.iter().any(|e| e["data"]["resolution"] == "KEEP_LOCAL"));

    w.api
        .post(&path1, json!({"keep": "local"}))
        .await
        .problem(409, "conflict");
    w.api
        .post(&path2, json!({"keep": "both"}))
        .await
        .problem(422, "validation_failed");
    let (other, key) = w.env.tenant(&w.m, "other").await;
    let theirs = TenantApi::new(&w.env, &w.m, &other, &key);
    theirs
        .post(&path2, json!({"keep": "remote"}))
        .await
        .problem(404, "not_found");
    let listed = w.api.get("/api/v1/sync/conflicts").await;
    let listed = listed.ok(200)["data"].as_array().unwrap().clone();
    assert!(
        listed
            .iter()
            .all(|c| c["resolved_at"].is_string() && c["resolved_by"].is_string())
    );
}

fn hubspot_signature(secret: &str, url: &str, body: &str, ms: &str) -> String {
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(format!("POST{url}{body}{ms}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

#[tokio::test]
async fn a_hubspot_webhook_updates_the_synced_contact_and_an_unchanged_one_publishes_nothing() {
    let w = world(5).await;
    let j = w
        .run(json!({"job_type": "FULL_SYNC", "entity_type": "contacts"}))
        .await;
    assert_eq!(j["created_count"], 5, "{j}");
    let secret = "hubspot-app-secret-0123";
    let endpoint = w
        .api
        .post(
            "/api/v1/webhooks/endpoints",
            json!({"endpoint_path": "hubspot", "signature_algorithm": "hubspot-v3",
                   "secret_key": secret, "integration_id": w.integration}),
        )
        .await;
    endpoint.ok(201);
    let url = w.m.url(&format!("/webhooks/{}/hubspot", w.api.tenant));
    let http = w.env.http.clone();
    let send = |object: String, event: u64| {
        let url = url.clone();
        let http = http.clone();
        async move {
            let ms = chrono::Utc::now().timestamp_millis().to_string();
            let body = json!([{"eventId": event, "subscriptionId": 2_001, "portalId": 62_515,
                "appId": 1_160_452, "occurredAt": ms.parse::<i64>().unwrap(),
                "subscriptionType": "contact.propertyChange", "attemptNumber": 0,
                "objectId": object.parse::<i64>().unwrap(), "changeSource": "CRM",
                "propertyName": "email", "propertyValue": "changed@example.com"}])
            .to_string();
            let sig = hubspot_signature(secret, &url, &body, &ms);
            http.post(&url)
                .header("content-type", "application/json")
                .header("X-HubSpot-Request-Timestamp", &ms)
                .header("X-HubSpot-Signature-v3", sig)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let unchanged = w.fake.record_id("contacts", 3);
    assert_eq!(send(unchanged, 1).await, 200);
    let changed = w.fake.touch("contacts", Selection::Numbers(vec![2]));
    let before: Value = sqlx::query_scalar(
        "SELECT data FROM sync_records WHERE integration_id = $1::uuid AND external_id = $2",
    )
    .bind(&w.integration)
    .bind(&changed[0])
    .fetch_one(w.env.pool())
    .await
    .unwrap();
    assert_eq!(send(changed[0].clone(), 2).await, 200);
    let from_webhooks = || async {
        let all = w.api.audit(Some("integration.contact.updated")).await;
        all.into_iter()
            .filter(|e| e["data"]["source"] == "webhook")
            .collect::<Vec<_>>()
    };
    let events = eventually(30, "the webhook's update published", || async {
        let e = from_webhooks().await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    let after: Value = sqlx::query_scalar(
        "SELECT data FROM sync_records WHERE integration_id = $1::uuid AND external_id = $2",
    )
    .bind(&w.integration)
    .bind(&changed[0])
    .fetch_one(w.env.pool())
    .await
    .unwrap();
    assert_ne!(
        before, after,
        "the webhook's record was re-read and applied"
    );
    // Both webhooks were handled; only the changed contact published.
    w.env
        .count_until(
            30,
            "both webhooks handled",
            "SELECT count(*) FROM processed_events WHERE consumer = $1",
            "integration-sync",
            |n| n >= 2,
        )
        .await;
    let events_now = from_webhooks().await;
    assert_eq!(events_now.len(), 1, "{events_now:?}");
    assert_eq!(events[0]["data"]["external_id"], changed[0].as_str());
    assert_eq!(events[0]["data"]["source"], "webhook");
}
