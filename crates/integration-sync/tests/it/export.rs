//! EXPORT end to end: platform events published on the bus as another
//! system would (the entry exchange) become local changes of the
//! integrations that opted in (`export_events`, through integration-manager's
//! API, its binary), and EXPORT jobs push them to the fake QuickBooks and
//! Salesforce with their real write rules (SyncToken and the 5010 Stale
//! Object Error; PATCH 204, POST 201 and their errors).

use hub_domain::{Envelope, EventType, TenantId};
use hub_testkit::amqp::Amqp;
use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind, Selection, WriteOp};
use hub_testkit::{Running, TenantApi, TestEnv, eventually};
use serde_json::{Value, json};

struct World {
    env: TestEnv,
    m: Running,
    _s: Running,
    amqp: Amqp,
}

async fn world() -> World {
    let env = TestEnv::new().await;
    let m = env.spawn("integration-manager", env.config()).await;
    let s = env.start(integration_sync::build, env.config()).await;
    let amqp = Amqp::connect().await;
    amqp.wait_for_queue(&format!("{}integration-sync.events", env.prefix))
        .await;
    World {
        env,
        m,
        _s: s,
        amqp,
    }
}

/// A tenant of the world.
struct Tenant {
    id: String,
    api: TenantApi,
}

impl World {
    async fn tenant(&self, slug: &str) -> Tenant {
        let (id, key) = self.env.tenant(&self.m, slug).await;
        let api = TenantApi::new(&self.env, &self.m, &id, &key);
        Tenant { id, api }
    }

    /// Publishes `kind` for `tenant` on the entry exchange, as another
    /// system would.
    async fn publish(&self, tenant: &Tenant, kind: &str, data: Value) {
        let e = Envelope::new(
            "billing-service",
            EventType::parse(kind).unwrap(),
            Some(tenant.id.parse::<TenantId>().unwrap()),
            data,
        );
        self.amqp
            .publish(
                &format!("{}hub.events", self.env.prefix),
                kind,
                &serde_json::to_vec(&e).unwrap(),
                Some(&e.id.to_string()),
            )
            .await;
    }

    async fn jobs(&self, tenant: &Tenant, integration: &str) -> Vec<Value> {
        let a = tenant
            .api
            .get(&format!("/api/v1/sync-jobs?integration_id={integration}"))
            .await;
        a.ok(200)["data"].as_array().unwrap().clone()
    }

    /// Waits until the integration has `n` jobs, all ended; the newest.
    async fn ended(&self, tenant: &Tenant, integration: &str, n: usize) -> Value {
        eventually(60, &format!("{n} export jobs ended"), || async {
            let jobs = self.jobs(tenant, integration).await;
            let done = jobs.len() == n
                && jobs
                    .iter()
                    .all(|j| !["PENDING", "RUNNING"].contains(&j["status"].as_str().unwrap()));
            done.then(|| jobs[0].clone())
        })
        .await
    }

    /// The integration's held record of the platform's `key`:
    /// (external_id, data, pending change?).
    async fn held(&self, integration: &str, key: &str) -> Option<(String, Value, bool)> {
        sqlx::query_as(
            "SELECT external_id, data, local_changed_at IS NOT NULL FROM sync_records
              WHERE integration_id = $1::uuid AND local_key = $2",
        )
        .bind(integration)
        .bind(key)
        .fetch_optional(self.env.pool())
        .await
        .unwrap()
    }
}

async fn integration(
    tenant: &Tenant,
    provider: &str,
    fake: &FakeProvider,
    environment: &str,
    export_events: Value,
) -> String {
    let created = tenant
        .api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": provider, "name": format!("{provider} {environment}"),
                   "environment": environment, "config": fake.config(),
                   "credentials": {"access_token": DEFAULT_TOKEN}, "export_events": export_events}),
        )
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().to_owned();
    tenant
        .api
        .post_empty(&format!("/api/v1/integrations/{id}/enable"))
        .await
        .ok(200);
    id
}

fn invoice(id: &str, amount: f64, memo: &str) -> Value {
    json!({"invoice": {
        "id": id, "number": format!("INV-{id}"), "memo": memo,
        "customer": {"external_id": "2", "name": "Blue Ridge Logistics"},
        "issue_date": "2025-03-01", "due_date": "2025-03-31", "currency": "USD",
        "lines": [{"description": "Linehaul, load 77", "amount": amount, "quantity": 1, "unit_price": amount}],
    }})
}

#[tokio::test]
async fn a_generated_invoice_is_created_at_quickbooks_rekeyed_then_updated_with_its_sync_token() {
    let w = world().await;
    let t = w.tenant("books").await;
    let qb = FakeProvider::start(Kind::QuickBooks).await;
    let it = integration(
        &t,
        "QUICKBOOKS",
        &qb,
        "PRODUCTION",
        json!(["invoice.generated"]),
    )
    .await;
    let got = t.api.get(&format!("/api/v1/integrations/{it}")).await;
    assert_eq!(got.ok(200)["export_events"], json!(["invoice.generated"]));

    w.publish(&t, "invoice.generated", invoice("inv-1", 1250.0, "first"))
        .await;
    let job = w.ended(&t, &it, 1).await;
    assert_eq!(
        (
            job["job_type"].clone(),
            job["direction"].clone(),
            job["scheduled_by"].clone(),
            job["status"].clone(),
            job["created_count"].clone()
        ),
        (
            json!("EXPORT"),
            json!("OUTBOUND"),
            json!("TRIGGER"),
            json!("COMPLETED"),
            json!(1)
        ),
        "{job}"
    );
    let writes = qb.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].op, WriteOp::Create);
    assert_eq!(writes[0].fields["CustomerRef"]["value"], "2");
    assert_eq!(writes[0].fields["Line"][0]["Amount"], 1250.0);
    let id = writes[0].id.clone();
    let (external_id, data, pending) = w.held(&it, "inv-1").await.expect("held");
    assert_eq!(
        external_id, id,
        "re-keyed from its placeholder to QuickBooks' id"
    );
    assert!(!pending, "the change is exported");
    let token = qb.record("Invoice", id.as_str()).unwrap()["SyncToken"].clone();
    assert_eq!(data["sync_token"], token, "the provider's version is held");
    assert_eq!(data["external_id"], json!(id));

    // The same invoice again: an update of that record, with its token.
    w.publish(&t, "invoice.generated", invoice("inv-1", 1300.0, "second"))
        .await;
    let job = w.ended(&t, &it, 2).await;
    assert_eq!(
        (job["status"].clone(), job["updated_count"].clone()),
        (json!("COMPLETED"), json!(1)),
        "{job}"
    );
    let writes = qb.writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(
        (writes[1].op, writes[1].id.as_str()),
        (WriteOp::Update, id.as_str())
    );
    let now = qb.record("Invoice", id.as_str()).unwrap();
    assert_eq!(now["CustomerMemo"]["value"], "second");
    assert_ne!(now["SyncToken"], token, "QuickBooks took the held token");
    assert_eq!(
        qb.count("Invoice"),
        31,
        "one invoice created, none duplicated"
    );
    let (_, data, pending) = w.held(&it, "inv-1").await.unwrap();
    assert_eq!(
        (data["sync_token"].clone(), pending),
        (now["SyncToken"].clone(), false)
    );
}

#[tokio::test]
async fn a_stale_sync_token_is_decided_by_the_newest_change_and_the_loser_kept() {
    let w = world().await;
    let t = w.tenant("stale").await;
    let qb = FakeProvider::start(Kind::QuickBooks).await;
    let it = integration(
        &t,
        "QUICKBOOKS",
        &qb,
        "PRODUCTION",
        json!(["invoice.generated"]),
    )
    .await;
    w.publish(&t, "invoice.generated", invoice("inv-9", 900.0, "ours"))
        .await;
    w.ended(&t, &it, 1).await;
    let id = qb.writes()[0].id.clone();

    // Someone edits it at QuickBooks, then the platform changes it (newer):
    // 5010, re-read, the local change wins and goes again with the new token.
    qb.touch("Invoice", Selection::Ids(vec![id.clone()]));
    w.publish(
        &t,
        "invoice.generated",
        invoice("inv-9", 950.0, "ours again"),
    )
    .await;
    let job = w.ended(&t, &it, 2).await;
    assert_eq!(
        (
            job["status"].clone(),
            job["conflict_count"].clone(),
            job["updated_count"].clone()
        ),
        (json!("COMPLETED"), json!(1), json!(1)),
        "{job}"
    );
    let conflicts = t
        .api
        .get(&format!(
            "/api/v1/sync-jobs/{}/conflicts",
            job["id"].as_str().unwrap()
        ))
        .await;
    let c = conflicts.ok(200)["data"][0].clone();
    assert_eq!(
        (
            c["winner"].clone(),
            c["rule"].clone(),
            c["external_id"].clone()
        ),
        (json!("LOCAL"), json!("newest_timestamp"), json!(id)),
        "{c}"
    );
    assert!(
        c["remote_version"]["memo"]
            .as_str()
            .is_some_and(|m| m.starts_with("Revision")),
        "the loser is kept: {c}"
    );
    assert_eq!(
        qb.record("Invoice", id.as_str()).unwrap()["CustomerMemo"]["value"],
        "ours again"
    );

    // An edit at QuickBooks newer than the next platform change: the
    // provider's version wins, the local change is dropped and kept as the loser.
    let later = qb.now() + chrono::Duration::hours(1);
    qb.touch_at("Invoice", Selection::Ids(vec![id.clone()]), later);
    let before = qb.writes().len();
    w.publish(&t, "invoice.generated", invoice("inv-9", 999.0, "too old"))
        .await;
    let job = w.ended(&t, &it, 3).await;
    assert_eq!(
        (job["status"].clone(), job["conflict_count"].clone()),
        (json!("COMPLETED"), json!(1)),
        "{job}"
    );
    assert_eq!(
        qb.writes().len(),
        before,
        "nothing written over the newer edit"
    );
    let conflicts = t
        .api
        .get(&format!(
            "/api/v1/sync-jobs/{}/conflicts",
            job["id"].as_str().unwrap()
        ))
        .await;
    let c = conflicts.ok(200)["data"][0].clone();
    assert_eq!(
        (c["winner"].clone(), c["local_version"]["memo"].clone()),
        (json!("REMOTE"), json!("too old"))
    );
    let (_, data, pending) = w.held(&it, "inv-9").await.unwrap();
    assert!(!pending, "the losing change is not exported later");
    assert_eq!(
        data["memo"],
        qb.record("Invoice", id.as_str()).unwrap()["CustomerMemo"]["value"]
    );
}

#[tokio::test]
async fn an_order_status_change_patches_the_salesforce_opportunity_and_a_refusal_is_an_item_error()
{
    let w = world().await;
    let t = w.tenant("crm").await;
    let sf = FakeProvider::start(Kind::Salesforce).await;
    let it = integration(
        &t,
        "SALESFORCE",
        &sf,
        "PRODUCTION",
        json!(["order.status_changed"]),
    )
    .await;
    let opp = sf.record_id("Opportunity", 3);
    w.publish(
        &t,
        "order.status_changed",
        json!({"order_id": "ord-3", "status": "DELIVERED",
               "opportunity": {"external_id": opp, "stage": "Closed Won"}}),
    )
    .await;
    let job = w.ended(&t, &it, 1).await;
    assert_eq!(
        (job["status"].clone(), job["updated_count"].clone()),
        (json!("COMPLETED"), json!(1)),
        "{job}"
    );
    let writes = sf.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        (
            writes[0].op,
            writes[0].id.as_str(),
            writes[0].fields.clone()
        ),
        (
            WriteOp::Update,
            opp.as_str(),
            json!({"StageName": "Closed Won"})
        ),
        "a PATCH of the one field changed"
    );
    let held = w.held(&it, "ord-3").await.unwrap();
    let record = sf.record("Opportunity", opp.as_str()).unwrap();
    assert_eq!(held.1["stage"], "Closed Won");
    assert_eq!(held.1["name"], record["Name"], "read back after the 204");

    // An opportunity Salesforce does not have and cannot create (no Name,
    // no CloseDate): 400, an item error with its message; it stays pending.
    w.publish(
        &t,
        "order.status_changed",
        json!({"order_id": "ord-4", "opportunity": {"stage": "Prospecting"}}),
    )
    .await;
    let job = w.ended(&t, &it, 2).await;
    assert_eq!(
        (
            job["status"].clone(),
            job["error_count"].clone(),
            job["success_count"].clone()
        ),
        (json!("COMPLETED"), json!(1), json!(0)),
        "{job}"
    );
    let errors = t
        .api
        .get(&format!(
            "/api/v1/sync-jobs/{}/errors",
            job["id"].as_str().unwrap()
        ))
        .await;
    let e = errors.ok(200)["data"][0].clone();
    assert_eq!(e["external_id"], "local:ord-4");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("400") && message.contains("Required fields are missing"),
        "{message}"
    );
    assert_eq!(sf.writes().len(), 1, "nothing created");
    let (external_id, _, pending) = w.held(&it, "ord-4").await.unwrap();
    assert_eq!((external_id.as_str(), pending), ("local:ord-4", true));
}

#[tokio::test]
async fn events_reach_only_the_integrations_of_their_tenant_that_opted_in() {
    let w = world().await;
    let a = w.tenant("tenant-a").await;
    let b = w.tenant("tenant-b").await;
    let (qa, qa_sandbox, qb) = (
        FakeProvider::start(Kind::QuickBooks).await,
        FakeProvider::start(Kind::QuickBooks).await,
        FakeProvider::start(Kind::QuickBooks).await,
    );
    let opted = integration(
        &a,
        "QUICKBOOKS",
        &qa,
        "PRODUCTION",
        json!(["invoice.generated"]),
    )
    .await;
    let not_opted = integration(&a, "QUICKBOOKS", &qa_sandbox, "SANDBOX", json!([])).await;
    let other = integration(
        &b,
        "QUICKBOOKS",
        &qb,
        "PRODUCTION",
        json!(["invoice.generated"]),
    )
    .await;

    // An event the manifest does not export is refused at opt-in.
    let bad = a
        .api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "SALESFORCE", "name": "crm", "config": {},
                   "export_events": ["invoice.generated"]}),
        )
        .await;
    let p = bad.problem(422, "validation_failed");
    assert!(
        p.to_string()
            .contains("SALESFORCE exports order.status_changed"),
        "{p}"
    );

    for n in 0..3 {
        w.publish(
            &a,
            "invoice.generated",
            invoice(&format!("a-{n}"), 100.0, "a"),
        )
        .await;
    }
    eventually(60, "tenant A's three invoices exported", || async {
        (qa.writes().len() == 3).then_some(())
    })
    .await;
    let job = w.ended(&a, &opted, w.jobs(&a, &opted).await.len()).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    // Every event was consumed (its record exported): the other tenant's
    // and the sandbox's would have had their jobs made in the same
    // transactions.
    assert!(qa_sandbox.writes().is_empty() && qb.writes().is_empty());
    assert!(w.jobs(&a, &not_opted).await.is_empty());
    assert!(w.jobs(&b, &other).await.is_empty());
    let held_elsewhere: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_records WHERE integration_id IN ($1::uuid, $2::uuid)",
    )
    .bind(&not_opted)
    .bind(&other)
    .fetch_one(w.env.pool())
    .await
    .unwrap();
    assert_eq!(held_elsewhere, 0);
}
