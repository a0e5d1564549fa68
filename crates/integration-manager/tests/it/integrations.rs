//! Integration management (issue 5): the provider catalog and its per-tenant
//! visibility, integrations CRUD, config validation against the provider's
//! JSON Schema, tenant isolation, sealed credentials, connection tests and
//! `enable` against the fake providers, health, stats and lifecycle events.

use crate::started;
use hub_testkit::amqp::{Amqp, Message};
use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind, Mode};
use hub_testkit::{Answer, Call, Running, TenantApi, TestEnv, eventually};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// One tenant's view of the API.
struct Api<'a> {
    env: &'a TestEnv,
    m: &'a Running,
    tenant: String,
    calls: TenantApi,
}

/// The tenant's API calls (`api.get(…)`, `api.post(…)`).
impl std::ops::Deref for Api<'_> {
    type Target = TenantApi;

    fn deref(&self) -> &TenantApi {
        &self.calls
    }
}

impl<'a> Api<'a> {
    /// A new tenant `slug` with one API key.
    async fn new(env: &'a TestEnv, m: &'a Running, slug: &str) -> Self {
        let (tenant, key) = env.tenant(m, slug).await;
        let calls = TenantApi::new(env, m, &tenant, &key);
        Self {
            env,
            m,
            tenant,
            calls,
        }
    }

    /// The same tenant, calling with another key.
    fn with_key(&self, key: &str) -> Api<'a> {
        Api {
            env: self.env,
            m: self.m,
            tenant: self.tenant.clone(),
            calls: self.calls.with_key(key),
        }
    }

    /// Creates an integration, expecting 201; returns its body.
    async fn create(&self, body: Value) -> Value {
        let r = self.post("/api/v1/integrations", body).await;
        r.ok(201).clone()
    }

    /// The id of the API key this view calls with.
    async fn key_id(&self) -> String {
        let me = self.get("/api/v1/me").await;
        me.ok(200)["api_key_id"]
            .as_str()
            .expect("api_key_id")
            .to_owned()
    }

    /// A second API key for this tenant: `(id, key)`.
    async fn new_key(&self, name: &str) -> (String, String) {
        let keys = format!("/api/v1/admin/tenants/{}/api-keys", self.tenant);
        let k = self
            .env
            .admin_created(self.m, &keys, json!({ "name": name }))
            .await;
        (
            k["id"].as_str().unwrap().to_owned(),
            k["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Waits until every event of this tenant's audit trail (every event
    /// the hub produced for it: none here is of a type the trail skips) has
    /// come through `bus` (a [`crate::tap_routed`] set up before the tenant
    /// was created); returns everything the tap received.
    async fn published(&self, bus: &(Amqp, String)) -> Vec<Message> {
        let audit = self.get("/api/v1/audit-log?limit=200").await;
        let produced: BTreeSet<String> = audit.ok(200)["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
            .collect();
        assert!(!produced.is_empty(), "{}", audit.text);
        let (amqp, queue) = bus;
        let mut published = Vec::new();
        amqp.drain_until(
            queue,
            &mut published,
            20,
            &format!("the {} audited events on the bus", produced.len()),
            |got| {
                let ids: BTreeSet<&str> =
                    got.iter().filter_map(|e| e.body["id"].as_str()).collect();
                produced.iter().all(|id| ids.contains(id.as_str()))
            },
        )
        .await;
        published
    }

    /// Checks that integration `id`'s `integration.created` was published
    /// and that no event published meanwhile contains any of `secrets`.
    async fn published_without(&self, bus: &(Amqp, String), id: &str, secrets: &[&str]) {
        let published = self.published(bus).await;
        assert!(
            published
                .iter()
                .any(|e| e.routing_key == "integration.created"
                    && e.body["data"]["integration"]["id"] == id)
        );
        for e in &published {
            for secret in secrets {
                assert_no_secret("a published event", &e.body.to_string(), secret);
            }
        }
    }

    /// Waits for an audit entry of `event_type` about integration `id`.
    async fn audited(&self, event_type: &str, id: &str) -> Value {
        eventually(
            15,
            &format!("{event_type} for {id} in the audit log"),
            || async {
                self.audit(Some(event_type))
                    .await
                    .into_iter()
                    .find(|e| e["data"]["id"] == id || e["data"]["integration"]["id"] == id)
            },
        )
        .await
    }
}

/// A request of the operator API.
async fn admin(env: &TestEnv, m: &Running, method: Method, path: &str, body: Value) -> Answer {
    env.admin(method, &m.url(path)).json(&body).call().await
}

async fn hide(env: &TestEnv, m: &Running, tenant: &str, code: &str, hidden: bool) -> Answer {
    admin(
        env,
        m,
        Method::PUT,
        &format!("/api/v1/admin/tenants/{tenant}/providers/{code}/visibility"),
        json!({ "hidden": hidden }),
    )
    .await
}

/// Rows of `integrations`, deleted ones included.
async fn stored_rows(env: &TestEnv) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM integrations")
        .fetch_one(env.pool())
        .await
        .unwrap()
}

/// A create body for `fake` with the credential kind its provider takes.
fn body_for(fake: &FakeProvider, name: &str, secret: &str) -> Value {
    let credentials = match fake.kind() {
        Kind::NewsApi | Kind::Samsara | Kind::AlphaVantage => json!({ "api_key": secret }),
        _ => json!({ "access_token": secret }),
    };
    json!({
        "provider_code": fake.kind().code(),
        "name": name,
        "config": fake.config(),
        "credentials": credentials,
    })
}

fn last4(s: &str) -> String {
    s[s.len() - 4..].to_owned()
}

fn codes(page: &Value) -> BTreeSet<String> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["code"].as_str().expect("code").to_owned())
        .collect()
}

fn ids(page: &Value) -> BTreeSet<String> {
    hub_testkit::api::ids(page["data"].as_array().expect("data"))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[track_caller]
fn assert_no_secret(what: &str, text: &str, secret: &str) {
    assert!(
        !text.contains(secret),
        "the secret appears in {what}: {text}"
    );
}

// ---------------------------------------------------------------- catalog

#[tokio::test]
async fn catalog_lists_the_fourteen_providers_and_filters_them() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "catalog").await;

    let all = a.get("/api/v1/integrations/providers").await;
    assert_eq!(codes(all.ok(200)), set(&hub_testkit::SHIPPED_PROVIDERS));
    for p in all.body["data"].as_array().unwrap() {
        assert!(p["name"].is_string() && p["category"].is_string(), "{p}");
        assert!(p["manifest"]["config_schema"].is_object(), "{p}");
    }

    let crm = a.get("/api/v1/integrations/providers?category=CRM").await;
    assert_eq!(codes(crm.ok(200)), set(&["HUBSPOT", "SALESFORCE", "ZOHO"]));
    let crm_lower = a.get("/api/v1/integrations/providers?category=crm").await;
    assert_eq!(codes(crm_lower.ok(200)), codes(&crm.body));

    let hub = a.get("/api/v1/integrations/providers?q=hub").await;
    assert_eq!(codes(hub.ok(200)), set(&["HUBSPOT"]));

    let active = a.get("/api/v1/integrations/providers?status=ACTIVE").await;
    assert_eq!(
        codes(active.ok(200)),
        set(&[
            "ALPHA_VANTAGE",
            "HUBSPOT",
            "KEEPTRUCKIN",
            "NEWSAPI",
            "QUICKBOOKS",
            "SALESFORCE",
            "SAMSARA",
            "XERO",
            "ZOHO",
        ])
    );
    assert!(
        active.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "ACTIVE")
    );
    let soon = a
        .get("/api/v1/integrations/providers?status=COMING_SOON")
        .await;
    assert_eq!(codes(soon.ok(200)).len(), 5);

    let none = a
        .get("/api/v1/integrations/providers?category=LOAD_BOARD&status=ACTIVE")
        .await;
    assert!(codes(none.ok(200)).is_empty());
    m.stop().await;
}

#[tokio::test]
async fn catalog_get_returns_the_manifest_and_an_unknown_code_is_404() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "manifest").await;

    let r = a.get("/api/v1/integrations/providers/HUBSPOT").await;
    let p = r.ok(200);
    assert_eq!(p["code"], "HUBSPOT");
    assert_eq!(p["name"], "HubSpot");
    assert_eq!(p["category"], "CRM");
    assert_eq!(p["status"], "ACTIVE");
    let man = &p["manifest"];
    assert_eq!(man["auth_type"], "OAUTH2");
    assert_eq!(man["base_url"], "https://api.hubapi.com");
    assert!(
        man["oauth"]["authorize_url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert!(!man["oauth"]["scopes"].as_array().unwrap().is_empty());
    assert_eq!(man["config_schema"]["type"], "object");
    assert_eq!(man["test_call"]["method"], "GET");
    assert!(man["rate_limit"]["requests"].as_u64().unwrap() > 0);
    assert!(man["documentation_url"].is_string());
    assert!(man["capabilities"].is_object());

    let lower = a.get("/api/v1/integrations/providers/hubspot").await;
    assert_eq!(lower.ok(200)["code"], "HUBSPOT");

    let missing = a.get("/api/v1/integrations/providers/NOPE").await;
    missing.problem(404, "not_found");
    m.stop().await;
}

#[tokio::test]
async fn a_provider_hidden_for_one_tenant_is_invisible_and_unusable_for_that_tenant_only() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "hidden").await;
    let b = Api::new(&env, &m, "visible").await;
    let fake = FakeProvider::start(Kind::HubSpot).await;

    // What the operator route stores (see the next test for the route itself).
    set_hidden_in_db(&env, &a.tenant, "HUBSPOT", true).await;

    // A no longer sees it, in the list or by code, and cannot use it.
    let list = a.get("/api/v1/integrations/providers").await;
    let seen = codes(list.ok(200));
    assert_eq!(seen.len(), 13);
    assert!(!seen.contains("HUBSPOT"));
    let crm = a.get("/api/v1/integrations/providers?q=hub").await;
    assert!(codes(crm.ok(200)).is_empty());
    a.get("/api/v1/integrations/providers/HUBSPOT")
        .await
        .problem(404, "not_found");
    let denied = a
        .post(
            "/api/v1/integrations",
            body_for(&fake, "Hidden", DEFAULT_TOKEN),
        )
        .await;
    denied.problem(422, "validation_failed");
    assert!(denied.fields().contains("provider_code"), "{}", denied.text);

    // B still sees and uses it; B's provider_id does not get A around the rule.
    assert_eq!(
        codes(b.get("/api/v1/integrations/providers").await.ok(200)).len(),
        14
    );
    b.get("/api/v1/integrations/providers/HUBSPOT")
        .await
        .ok(200);
    let created = b.create(body_for(&fake, "Visible", DEFAULT_TOKEN)).await;
    let by_id = a
        .post(
            "/api/v1/integrations",
            json!({"provider_id": created["provider_id"], "name": "Sneaky", "config": fake.config(),
                   "credentials": {"access_token": DEFAULT_TOKEN}}),
        )
        .await;
    by_id.problem(422, "validation_failed");
    assert_eq!(stored_rows(&env).await, 1, "only B's integration is stored");

    // Shown again, A can use it.
    set_hidden_in_db(&env, &a.tenant, "HUBSPOT", false).await;
    a.get("/api/v1/integrations/providers/HUBSPOT")
        .await
        .ok(200);
    a.create(body_for(&fake, "Now visible", DEFAULT_TOKEN))
        .await;
    m.stop().await;
}

/// Hides (or shows) a provider for a tenant the way the operator route does.
async fn set_hidden_in_db(env: &TestEnv, tenant: &str, code: &str, hidden: bool) {
    sqlx::query(
        "INSERT INTO provider_visibility (tenant_id, provider_id, hidden)
         SELECT $1::uuid, id, $3 FROM integration_providers WHERE code = $2
         ON CONFLICT (tenant_id, provider_id) DO UPDATE SET hidden = EXCLUDED.hidden",
    )
    .bind(tenant)
    .bind(code)
    .bind(hidden)
    .execute(env.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn an_operator_hides_a_provider_for_one_tenant_through_the_admin_api() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "opshide").await;
    let b = Api::new(&env, &m, "opsshow").await;
    let fake = FakeProvider::start(Kind::HubSpot).await;

    let r = hide(&env, &m, &a.tenant, "hubspot", true).await;
    let v = r.ok(200);
    assert_eq!(v["tenant_id"], a.tenant.as_str());
    assert_eq!(v["provider_code"], "HUBSPOT");
    assert_eq!(v["hidden"], true);
    a.get("/api/v1/integrations/providers/HUBSPOT")
        .await
        .problem(404, "not_found");
    assert!(!codes(a.get("/api/v1/integrations/providers").await.ok(200)).contains("HUBSPOT"));
    a.post(
        "/api/v1/integrations",
        body_for(&fake, "Hidden", DEFAULT_TOKEN),
    )
    .await
    .problem(422, "validation_failed");
    b.get("/api/v1/integrations/providers/HUBSPOT")
        .await
        .ok(200);
    b.create(body_for(&fake, "Visible", DEFAULT_TOKEN)).await;

    hide(&env, &m, &a.tenant, "HUBSPOT", false).await.ok(200);
    a.get("/api/v1/integrations/providers/HUBSPOT")
        .await
        .ok(200);

    // Unknown provider or tenant → 404; a tenant key is not the operator token.
    hide(&env, &m, &a.tenant, "NOPE", true)
        .await
        .problem(404, "not_found");
    hide(&env, &m, &uuid::Uuid::now_v7().to_string(), "HUBSPOT", true)
        .await
        .problem(404, "not_found");
    let as_tenant = a
        .put(
            &format!(
                "/api/v1/admin/tenants/{}/providers/HUBSPOT/visibility",
                a.tenant
            ),
            json!({"hidden": true}),
        )
        .await;
    as_tenant.problem(401, "invalid_admin_token");
    m.stop().await;
}

// ---------------------------------------------------------------- CRUD

#[tokio::test]
async fn create_get_list_update_delete_round_trip() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "crud").await;
    let fake = FakeProvider::start(Kind::NewsApi).await;
    let key_id = a.key_id().await;

    let mut config = fake.config();
    config["query"] = json!("freight OR trucking");
    let created = a
        .create(json!({
            "provider_code": "NEWSAPI",
            "name": "  Market news  ",
            "description": "Spot-rate headlines",
            "config": config,
            "credentials": {"api_key": "news-key-0001"},
            "retry_enabled": false,
            "max_retries": 5,
            "timeout_seconds": 12,
            "sync_frequency": "hourly",
            "external_id": "legacy-42",
            "source_system": "old-hub",
            "custom_fields": {"owner": "ops"},
        }))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["provider_code"], "NEWSAPI");
    assert_eq!(created["category"], "INTEL");
    assert_eq!(created["auth_type"], "API_KEY");
    assert_eq!(created["name"], "Market news", "names are trimmed");
    assert_eq!(created["description"], "Spot-rate headlines");
    assert_eq!(created["config"], config);
    assert_eq!(created["environment"], "PRODUCTION", "the default");
    assert_eq!(created["status"], "PENDING_AUTH");
    assert_eq!(created["is_enabled"], true);
    assert_eq!(created["retry_enabled"], false);
    assert_eq!(created["max_retries"], 5);
    assert_eq!(created["timeout_seconds"], 12);
    assert_eq!(created["sync_frequency"], "HOURLY");
    assert_eq!(created["external_id"], "legacy-42");
    assert_eq!(created["source_system"], "old-hub");
    assert_eq!(created["custom_fields"], json!({"owner": "ops"}));
    assert_eq!(created["error_count"], 0);
    assert!(created["last_successful_call"].is_null());
    assert_eq!(created["created_by"], key_id.as_str());
    assert_eq!(created["updated_by"], key_id.as_str());

    let got = a.get(&format!("/api/v1/integrations/{id}")).await;
    assert_eq!(got.ok(200), &created);

    let list = a.get("/api/v1/integrations").await;
    assert_eq!(ids(list.ok(200)), set(&[&id]));
    assert!(list.body["next_cursor"].is_null());

    // Defaults when only the required fields are given.
    let minimal = a
        .create(json!({"provider_code": "hubspot", "name": "CRM"}))
        .await;
    assert_eq!(minimal["provider_code"], "HUBSPOT");
    assert_eq!(minimal["status"], "PENDING_AUTH");
    assert_eq!(minimal["timeout_seconds"], 30);
    assert_eq!(minimal["max_retries"], 3);
    assert_eq!(minimal["retry_enabled"], true);
    assert_eq!(minimal["credentials"], json!({}));

    let mut new_config = config.clone();
    new_config["language"] = json!("en");
    let updated = a
        .put(
            &format!("/api/v1/integrations/{id}"),
            json!({"name": "Renamed", "config": new_config, "timeout_seconds": 20}),
        )
        .await;
    let u = updated.ok(200);
    assert_eq!(u["name"], "Renamed");
    assert_eq!(u["config"], new_config);
    assert_eq!(u["timeout_seconds"], 20);
    assert_eq!(u["description"], "Spot-rate headlines", "untouched");
    assert_eq!(u["status"], "PENDING_AUTH");
    assert_eq!(u["created_at"], created["created_at"]);
    assert_eq!(
        a.get(&format!("/api/v1/integrations/{id}")).await.ok(200),
        u
    );

    a.delete(&format!("/api/v1/integrations/{id}"))
        .await
        .ok(204);
    a.get(&format!("/api/v1/integrations/{id}"))
        .await
        .problem(404, "not_found");
    a.delete(&format!("/api/v1/integrations/{id}"))
        .await
        .problem(404, "not_found");
    a.put(&format!("/api/v1/integrations/{id}"), json!({"name": "x"}))
        .await
        .problem(404, "not_found");
    let left = a.get("/api/v1/integrations").await;
    assert_eq!(ids(left.ok(200)), set(&[minimal["id"].as_str().unwrap()]));
    // The row is kept (logs and jobs reference it), marked deleted.
    let deleted: bool = env
        .scalar(
            "SELECT deleted_at IS NOT NULL FROM integrations WHERE id = $1::uuid",
            &id,
        )
        .await;
    assert!(deleted);

    // Not an id.
    a.get("/api/v1/integrations/not-a-uuid")
        .await
        .problem(400, "invalid_parameter");
    m.stop().await;
}

#[tokio::test]
async fn every_change_records_the_calling_key_as_updated_by() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "actors").await;
    let first = a.key_id().await;
    let (second, second_key) = a.new_key("second").await;
    let a2 = a.with_key(&second_key);
    assert_eq!(a2.key_id().await, second);

    let created = a
        .create(json!({"provider_code": "HUBSPOT", "name": "CRM"}))
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["created_by"], first.as_str());
    assert_eq!(created["updated_by"], first.as_str());

    let updated = a2
        .put(
            &format!("/api/v1/integrations/{id}"),
            json!({"description": "by the second key"}),
        )
        .await;
    assert_eq!(updated.ok(200)["updated_by"], second.as_str());
    assert_eq!(updated.body["created_by"], first.as_str());

    let disabled = a
        .post_empty(&format!("/api/v1/integrations/{id}/disable"))
        .await;
    assert_eq!(disabled.ok(200)["updated_by"], first.as_str());
    let stored: uuid::Uuid = env
        .scalar(
            "SELECT updated_by_key FROM integrations WHERE id = $1::uuid",
            id,
        )
        .await;
    assert_eq!(stored.to_string(), first);
    m.stop().await;
}

#[tokio::test]
async fn list_filters_by_status_provider_category_and_environment() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "filters").await;
    let news = FakeProvider::start(Kind::NewsApi).await;

    let hub_prod = a
        .create(json!({"provider_code": "HUBSPOT", "name": "CRM prod"}))
        .await;
    let hub_sandbox = a
        .create(
            json!({"provider_code": "HUBSPOT", "name": "CRM sandbox", "environment": "SANDBOX"}),
        )
        .await;
    let news_prod = a.create(body_for(&news, "News", DEFAULT_TOKEN)).await;
    let samsara_test = a
        .create(json!({"provider_code": "SAMSARA", "name": "ELD", "environment": "test"}))
        .await;
    assert_eq!(samsara_test["environment"], "TEST");
    let news_id = news_prod["id"].as_str().unwrap();
    let t = a
        .post_empty(&format!("/api/v1/integrations/{news_id}/test"))
        .await;
    assert_eq!(t.ok(200)["ok"], true, "{}", t.text);

    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("provider=HUBSPOT", vec![id(&hub_prod), id(&hub_sandbox)]),
        ("provider=hubspot", vec![id(&hub_prod), id(&hub_sandbox)]),
        ("category=INTEL", vec![id(&news_prod)]),
        ("category=eld", vec![id(&samsara_test)]),
        ("category=CRM", vec![id(&hub_prod), id(&hub_sandbox)]),
        ("environment=SANDBOX", vec![id(&hub_sandbox)]),
        ("environment=test", vec![id(&samsara_test)]),
        (
            "environment=PRODUCTION",
            vec![id(&hub_prod), id(&news_prod)],
        ),
        ("status=ACTIVE", vec![id(&news_prod)]),
        (
            "status=PENDING_AUTH",
            vec![id(&hub_prod), id(&hub_sandbox), id(&samsara_test)],
        ),
        (
            "provider=HUBSPOT&environment=PRODUCTION",
            vec![id(&hub_prod)],
        ),
        ("provider=XERO", vec![]),
        ("status=active", vec![id(&news_prod)]),
    ];
    for (query, expected) in cases {
        let r = a.get(&format!("/api/v1/integrations?{query}")).await;
        let expected: BTreeSet<String> = expected.into_iter().collect();
        assert_eq!(ids(r.ok(200)), expected, "{query}");
    }
    // A status that does not exist is a mistake, not an empty page.
    let r = a.get("/api/v1/integrations?status=LIVE").await;
    r.problem(400, "invalid_parameter");
    assert!(
        r.text.contains("PENDING_AUTH"),
        "names the statuses: {}",
        r.text
    );
    m.stop().await;
}

#[tokio::test]
async fn list_pages_with_a_cursor() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "pages").await;
    let mut made = BTreeSet::new();
    for (code, env_name) in [
        ("HUBSPOT", "PRODUCTION"),
        ("HUBSPOT", "SANDBOX"),
        ("SAMSARA", "PRODUCTION"),
    ] {
        let c = a
            .create(json!({"provider_code": code, "name": code, "environment": env_name}))
            .await;
        made.insert(c["id"].as_str().unwrap().to_owned());
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            None => "/api/v1/integrations?limit=1".to_owned(),
            Some(c) => format!("/api/v1/integrations?limit=1&cursor={c}"),
        };
        let r = a.get(&path).await;
        let page = r.ok(200);
        let data = page["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{}", r.text);
        seen.push(data[0]["id"].as_str().unwrap().to_owned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "three pages of one: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), made);

    let two = a.get("/api/v1/integrations?limit=2").await;
    assert_eq!(two.ok(200)["data"].as_array().unwrap().len(), 2);
    assert!(two.body["next_cursor"].is_string());

    a.get("/api/v1/integrations?cursor=garbage")
        .await
        .problem(400, "invalid_parameter");
    m.stop().await;
}

// ---------------------------------------------------------------- validation

#[tokio::test]
async fn config_violating_the_provider_schema_is_422_with_one_error_per_field() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "schema").await;
    let qb = FakeProvider::start(Kind::QuickBooks).await;
    let base = qb.base_url();

    let cases = [
        (
            "QUICKBOOKS",
            json!({"base_url": base, "realm_id": "x"}),
            set(&["config.realm_id"]),
        ),
        (
            "QUICKBOOKS",
            json!({"base_url": base, "realm_id": 9130357766900456_u64, "colour": "blue"}),
            set(&["config.realm_id", "config.colour"]),
        ),
        (
            "QUICKBOOKS",
            json!({"realm_id": "not-digits", "base_url": 7}),
            set(&["config.realm_id", "config.base_url"]),
        ),
        (
            "HUBSPOT",
            json!({"portal_id": "abc"}),
            set(&["config.portal_id"]),
        ),
        (
            "NEWSAPI",
            json!({"language": "english"}),
            set(&["config.language"]),
        ),
    ];
    for (code, config, fields) in cases {
        let r = a
            .post(
                "/api/v1/integrations",
                json!({"provider_code": code, "name": "Bad config", "config": config}),
            )
            .await;
        r.problem(422, "validation_failed");
        assert_eq!(r.fields(), fields, "{code} {config}: {}", r.text);
        let errors = r.body["errors"].as_array().unwrap();
        assert_eq!(
            errors.len(),
            fields.len(),
            "one error per field: {}",
            r.text
        );
        assert!(errors.iter().all(|e| e["message"].is_string()));
    }
    // The unknown property names what is allowed.
    let unknown = a
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "QUICKBOOKS", "name": "x", "config": {"realm_id": "1", "colour": "blue"}}),
        )
        .await;
    unknown.problem(422, "validation_failed");
    assert!(unknown.text.contains("realm_id"), "{}", unknown.text);
    assert_eq!(stored_rows(&env).await, 0, "nothing stored after a 422");

    // The same config, valid, is accepted.
    a.create(json!({"provider_code": "QUICKBOOKS", "name": "QB", "config": qb.config()}))
        .await;
    m.stop().await;
}

#[tokio::test]
async fn invalid_fields_are_422_each_named_and_nothing_is_stored() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "fields").await;

    let cases: Vec<(Value, BTreeSet<String>)> = vec![
        (json!({"provider_code": "HUBSPOT"}), set(&["name"])),
        (
            json!({"provider_code": "HUBSPOT", "name": "   "}),
            set(&["name"]),
        ),
        (
            json!({"provider_code": "HUBSPOT", "name": "x".repeat(201)}),
            set(&["name"]),
        ),
        (
            json!({"provider_code": "HUBSPOT", "name": "x", "environment": "STAGING"}),
            set(&["environment"]),
        ),
        (json!({"name": "no provider"}), set(&["provider_code"])),
        (
            json!({"provider_code": "NOPE", "name": "x"}),
            set(&["provider_code"]),
        ),
        (
            json!({"provider_id": uuid::Uuid::now_v7(), "name": "x"}),
            set(&["provider_code"]),
        ),
        // Coming soon: in the catalog, not yet usable.
        (
            json!({"provider_code": "DAT", "name": "x"}),
            set(&["provider_code"]),
        ),
        (
            json!({"provider_code": "HUBSPOT", "name": "x", "timeout_seconds": 0, "max_retries": 11,
                   "sync_frequency": "WEEKLY", "custom_fields": [1]}),
            set(&[
                "timeout_seconds",
                "max_retries",
                "sync_frequency",
                "custom_fields",
            ]),
        ),
        // Several problems at once: each is reported.
        (
            json!({"provider_code": "HUBSPOT", "environment": "LIVE", "timeout_seconds": 301,
                   "config": {"portal_id": 0}}),
            set(&["name", "environment", "timeout_seconds", "config.portal_id"]),
        ),
    ];
    for (body, fields) in cases {
        let r = a.post("/api/v1/integrations", body.clone()).await;
        r.problem(422, "validation_failed");
        assert_eq!(r.fields(), fields, "{body}: {}", r.text);
    }
    assert_eq!(stored_rows(&env).await, 0, "nothing stored after a 422");
    m.stop().await;
}

#[tokio::test]
async fn credentials_of_the_wrong_kind_for_the_auth_type_are_422() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "wrongkind").await;
    let secret = "sk-wrong-kind-9f8e7d6c5b4a";

    let cases = [
        (
            "NEWSAPI",
            json!({"access_token": secret}),
            set(&["credentials.api_key", "credentials.access_token"]),
        ),
        (
            "HUBSPOT",
            json!({"api_key": secret}),
            set(&["credentials.access_token", "credentials.api_key"]),
        ),
        (
            "SAMSARA",
            json!({"username": "ops", "password": secret}),
            set(&["credentials.api_key", "credentials.username"]),
        ),
        (
            "NEWSAPI",
            json!({"api_key": "   "}),
            set(&["credentials.api_key"]),
        ),
    ];
    for (code, credentials, fields) in cases {
        let r = a
            .post(
                "/api/v1/integrations",
                json!({"provider_code": code, "name": "x", "credentials": credentials}),
            )
            .await;
        r.problem(422, "validation_failed");
        assert_eq!(r.fields(), fields, "{code}: {}", r.text);
        assert_no_secret("a 422 answer", &r.text, secret);
    }
    assert_eq!(stored_rows(&env).await, 0);
    m.stop().await;
}

#[tokio::test]
async fn unknown_or_malformed_json_is_400_invalid_json() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "badjson").await;

    for body in [
        json!({"provider_code": "HUBSPOT", "name": "x", "colour": "blue"}),
        json!({"provider_code": "HUBSPOT", "name": "x", "credentials": {"token": "abc"}}),
        json!({"provider_code": "HUBSPOT", "name": 5}),
        json!(["not", "an", "object"]),
    ] {
        a.post("/api/v1/integrations", body)
            .await
            .problem(400, "invalid_json");
    }
    let raw = a
        .request(Method::POST, "/api/v1/integrations")
        .header("content-type", "application/json")
        .body("{\"provider_code\": ")
        .call()
        .await;
    raw.problem(400, "invalid_json");
    assert_eq!(stored_rows(&env).await, 0);

    // The same on update, and the row is unchanged.
    let created = a
        .create(json!({"provider_code": "HUBSPOT", "name": "CRM"}))
        .await;
    let id = created["id"].as_str().unwrap();
    a.put(
        &format!("/api/v1/integrations/{id}"),
        json!({"name": "y", "colour": "blue"}),
    )
    .await
    .problem(400, "invalid_json");
    assert_eq!(
        a.get(&format!("/api/v1/integrations/{id}")).await.ok(200),
        &created
    );
    m.stop().await;
}

#[tokio::test]
async fn an_invalid_update_is_422_and_changes_nothing() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "badupdate").await;
    let qb = FakeProvider::start(Kind::QuickBooks).await;
    let created = a.create(body_for(&qb, "Books", DEFAULT_TOKEN)).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/integrations/{id}");

    let cases = [
        (
            json!({"name": "ok", "config": {"base_url": qb.base_url(), "realm_id": "x"}}),
            set(&["config.realm_id"]),
        ),
        (json!({"environment": "SANDBOX"}), set(&["environment"])),
        (json!({"provider_code": "XERO"}), set(&["provider_code"])),
        (json!({"name": ""}), set(&["name"])),
        (
            json!({"credentials": {"api_key": "k"}}),
            set(&["credentials.access_token", "credentials.api_key"]),
        ),
    ];
    for (body, fields) in cases {
        let r = a.put(&path, body.clone()).await;
        r.problem(422, "validation_failed");
        assert_eq!(r.fields(), fields, "{body}: {}", r.text);
    }
    assert_eq!(a.get(&path).await.ok(200), &created, "nothing changed");
    // An event is audited when its outbox row is retired, so once the
    // outbox is empty what the refused updates wrote would be listed (as
    // the create is).
    env.outbox_retired().await;
    assert_eq!(a.audit(Some("integration.created")).await.len(), 1);
    assert!(
        a.audit(Some("integration.updated")).await.is_empty(),
        "no integration.updated event"
    );
    m.stop().await;
}

// ---------------------------------------------------------------- duplicates

#[tokio::test]
async fn a_second_integration_for_the_same_provider_and_environment_is_409() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "dupes").await;
    let b = Api::new(&env, &m, "other").await;

    a.create(json!({"provider_code": "HUBSPOT", "name": "CRM"}))
        .await;
    for body in [
        json!({"provider_code": "HUBSPOT", "name": "CRM again"}),
        json!({"provider_code": "hubspot", "name": "CRM again", "environment": "production"}),
    ] {
        let r = a.post("/api/v1/integrations", body).await;
        let p = r.problem(409, "conflict");
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains("HUBSPOT") && detail.contains("PRODUCTION"),
            "{detail}"
        );
    }
    assert_eq!(stored_rows(&env).await, 1);

    // Another tenant may have its own.
    b.create(json!({"provider_code": "HUBSPOT", "name": "CRM"}))
        .await;
    assert_eq!(stored_rows(&env).await, 2);
    m.stop().await;
}

#[tokio::test]
async fn sandbox_and_production_of_one_provider_are_separate_rows() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "envs").await;
    let fake = FakeProvider::start(Kind::HubSpot).await;

    let mut prod_body = body_for(&fake, "CRM prod", DEFAULT_TOKEN);
    prod_body["environment"] = json!("PRODUCTION");
    let mut sandbox_body = body_for(&fake, "CRM sandbox", "sandbox-token-0002");
    sandbox_body["environment"] = json!("SANDBOX");
    let prod = a.create(prod_body).await;
    let sandbox = a.create(sandbox_body).await;
    assert_ne!(prod["id"], sandbox["id"]);
    assert_eq!(prod["environment"], "PRODUCTION");
    assert_eq!(sandbox["environment"], "SANDBOX");
    assert_eq!(prod["credentials"]["access_token"]["last4"], "oken");
    assert_eq!(sandbox["credentials"]["access_token"]["last4"], "0002");

    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT environment, name FROM integrations WHERE tenant_id = $1::uuid ORDER BY environment",
    )
    .bind(&a.tenant)
    .fetch_all(env.pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            ("PRODUCTION".to_owned(), "CRM prod".to_owned()),
            ("SANDBOX".to_owned(), "CRM sandbox".to_owned())
        ]
    );

    // Each keeps its own credentials: the sandbox token is rejected by the fake.
    let ok = a
        .post_empty(&format!(
            "/api/v1/integrations/{}/test",
            prod["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(ok.ok(200)["ok"], true, "{}", ok.text);
    let rejected = a
        .post_empty(&format!(
            "/api/v1/integrations/{}/test",
            sandbox["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(rejected.ok(200)["ok"], false, "{}", rejected.text);
    m.stop().await;
}

#[tokio::test]
async fn a_deleted_integration_frees_its_provider_and_environment() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "recreate").await;
    let first = a
        .create(json!({"provider_code": "SAMSARA", "name": "ELD"}))
        .await;
    a.delete(&format!(
        "/api/v1/integrations/{}",
        first["id"].as_str().unwrap()
    ))
    .await
    .ok(204);
    let second = a
        .create(json!({"provider_code": "SAMSARA", "name": "ELD again"}))
        .await;
    assert_ne!(first["id"], second["id"]);
    m.stop().await;
}

// ---------------------------------------------------------------- isolation

#[tokio::test]
async fn another_tenants_integration_is_404_on_every_route() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "owner").await;
    let b = Api::new(&env, &m, "intruder").await;
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let created = a
        .create(body_for(&fake, "Private CRM", DEFAULT_TOKEN))
        .await;
    let id = created["id"].as_str().unwrap();
    let base = format!("/api/v1/integrations/{id}");

    let attempts = [
        b.get(&base).await,
        b.put(&base, json!({"name": "Taken over"})).await,
        b.put(&base, json!({})).await,
        b.delete(&base).await,
        b.post_empty(&format!("{base}/test")).await,
        b.post_empty(&format!("{base}/enable")).await,
        b.post_empty(&format!("{base}/disable")).await,
        b.get(&format!("{base}/health")).await,
        b.get(&format!("{base}/stats")).await,
    ];
    for (i, r) in attempts.iter().enumerate() {
        let p = r.problem(404, "not_found");
        assert!(
            !p["detail"].as_str().unwrap().contains("tenant"),
            "attempt {i} must not hint at another tenant: {}",
            r.text
        );
    }
    let list = b.get("/api/v1/integrations").await;
    assert!(ids(list.ok(200)).is_empty());
    let filtered = b.get("/api/v1/integrations?provider=HUBSPOT").await;
    assert!(ids(filtered.ok(200)).is_empty());

    // Nothing happened to A's integration, and the provider was never called.
    assert_eq!(a.get(&base).await.ok(200), &created);
    assert!(fake.requests().is_empty(), "no test call was made");
    let logs = env.count("SELECT COUNT(*) FROM api_request_logs").await;
    assert_eq!(logs, 0);
    m.stop().await;
}

// ---------------------------------------------------------------- secrets

#[tokio::test]
async fn an_api_key_never_appears_in_responses_events_call_logs_or_the_database() {
    let (env, m) = started().await;
    let bus = crate::tap_routed(&env).await;
    let a = Api::new(&env, &m, "secrets").await;
    let fake = FakeProvider::start(Kind::NewsApi).await;
    let secret = "nw-LIVE-3c1d9a7b5e2f4c6d8e0fQ7Zx";
    let second = "nw-LIVE-77aa88bb99cc00dd11eeR4Wy";
    fake.set_valid_token(secret);
    let mut bodies: Vec<(String, String)> = Vec::new();

    let created = a
        .post("/api/v1/integrations", body_for(&fake, "News", secret))
        .await;
    let c = created.ok(201).clone();
    bodies.push(("create".into(), created.text.clone()));
    assert_eq!(
        c["credentials"],
        json!({"api_key": {"set": true, "last4": last4(secret)}})
    );
    let id = c["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/integrations/{id}");

    let got = a.get(&path).await;
    assert_eq!(got.ok(200)["credentials"]["api_key"]["set"], true);
    assert_eq!(got.body["credentials"]["api_key"]["last4"], last4(secret));
    bodies.push(("get".into(), got.text));
    let list = a.get("/api/v1/integrations").await;
    assert_eq!(
        list.ok(200)["data"][0]["credentials"]["api_key"]["last4"],
        last4(secret)
    );
    bodies.push(("list".into(), list.text));
    let tested = a.post_empty(&format!("{path}/test")).await;
    assert_eq!(tested.ok(200)["ok"], true, "{}", tested.text);
    bodies.push(("test".into(), tested.text));
    let enabled = a.post_empty(&format!("{path}/enable")).await;
    assert_eq!(enabled.ok(200)["status"], "ACTIVE");
    bodies.push(("enable".into(), enabled.text));
    let updated = a
        .put(
            &path,
            json!({"name": "News (rotated)", "credentials": {"api_key": second}}),
        )
        .await;
    assert_eq!(
        updated.ok(200)["credentials"]["api_key"]["last4"],
        last4(second)
    );
    bodies.push(("update".into(), updated.text));
    // The old key now fails at the provider: the error must not echo either key.
    let failed = a.post_empty(&format!("{path}/test")).await;
    assert_eq!(failed.ok(200)["ok"], false, "{}", failed.text);
    bodies.push(("failed test".into(), failed.text));
    let refused = a.post_empty(&format!("{path}/enable")).await;
    refused.problem(409, "conflict");
    bodies.push(("refused enable".into(), refused.text));
    for p in ["health", "stats"] {
        let r = a.get(&format!("{path}/{p}")).await;
        r.ok(200);
        bodies.push((p.into(), r.text));
    }
    for (what, text) in &bodies {
        assert_no_secret(what, text, secret);
        assert_no_secret(what, text, second);
    }

    // The provider did get it, in its own header and not in the URL.
    let sent = fake.requests();
    assert!(!sent.is_empty());
    assert_eq!(sent[0].header("x-api-key"), Some(secret));
    assert!(sent.iter().all(|r| !r.query.contains(secret)));

    // The database: sealed, not plaintext, anywhere in the row.
    let (sealed, row): (Option<String>, String) = sqlx::query_as(
        "SELECT api_key_encrypted, row_to_json(i)::text FROM integrations i WHERE id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(env.pool())
    .await
    .unwrap();
    let sealed = sealed.expect("api_key_encrypted is set");
    assert!(!sealed.is_empty());
    assert_no_secret("api_key_encrypted", &sealed, second);
    assert_no_secret("the integrations row", &row, secret);
    assert_no_secret("the integrations row", &row, second);

    // The call log: rows exist, the key header is redacted.
    let logs: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(l)::text FROM api_request_logs l")
            .fetch_all(env.pool())
            .await
            .unwrap();
    assert_eq!(logs.len(), 4, "two tests and two enables were logged");
    for l in &logs {
        assert_no_secret("api_request_logs", l, secret);
        assert_no_secret("api_request_logs", l, second);
    }
    let headers: Value =
        sqlx::query_scalar("SELECT headers FROM api_request_logs ORDER BY created_at LIMIT 1")
            .fetch_one(env.pool())
            .await
            .unwrap();
    assert_eq!(headers["x-api-key"], "[redacted]", "{headers}");

    // Events: on the bus and in the audit trail.
    a.audited("integration.updated", &id).await;
    a.published_without(&bus, &id, &[secret, second]).await;
    let audit = a.get("/api/v1/audit-log?limit=200").await;
    assert_no_secret("the audit log", &audit.text, secret);
    assert_no_secret("the audit log", &audit.text, second);
    m.stop().await;
}

#[tokio::test]
async fn oauth_tokens_are_sealed_and_shown_only_as_set_and_last4() {
    let (env, m) = started().await;
    let bus = crate::tap_routed(&env).await;
    let a = Api::new(&env, &m, "oauth").await;
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let access = "hs-access-5f0e1d2c3b4a59687766Kq";
    let refresh = "hs-refresh-a1b2c3d4e5f60718293aMz";
    fake.set_valid_token(access);
    let mut body = body_for(&fake, "CRM", access);
    body["credentials"]["refresh_token"] = json!(refresh);
    body["credentials"]["expires_at"] = json!("2030-01-01T00:00:00Z");
    let created = a.post("/api/v1/integrations", body).await;
    let c = created.ok(201);
    assert_eq!(
        c["credentials"]["access_token"],
        json!({"set": true, "last4": last4(access)})
    );
    assert_eq!(
        c["credentials"]["refresh_token"],
        json!({"set": true, "last4": last4(refresh)})
    );
    let id = c["id"].as_str().unwrap().to_owned();
    let tested = a
        .post_empty(&format!("/api/v1/integrations/{id}/test"))
        .await;
    assert_eq!(tested.ok(200)["ok"], true, "{}", tested.text);
    for text in [&created.text, &tested.text] {
        assert_no_secret("a response", text, access);
        assert_no_secret("a response", text, refresh);
    }
    let row: String = env
        .scalar(
            "SELECT row_to_json(i)::text FROM integrations i WHERE id = $1::uuid",
            &id,
        )
        .await;
    assert!(row.contains("sealed"), "{row}");
    assert_no_secret("the integrations row", &row, access);
    assert_no_secret("the integrations row", &row, refresh);
    let logs: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(l)::text FROM api_request_logs l")
            .fetch_all(env.pool())
            .await
            .unwrap();
    assert_eq!(logs.len(), 1);
    assert_no_secret("api_request_logs", &logs[0], access);
    a.published_without(&bus, &id, &[access, refresh]).await;
    m.stop().await;
}

#[tokio::test]
async fn a_malformed_credentials_value_is_not_echoed_in_the_error() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "echo").await;
    let secret = "nw-LIVE-0a1b2c3d4e5f60718293Echo";
    // A client that sends the key where the credentials object belongs, or
    // inside an array, gets a 400; the answer must not repeat the key.
    for credentials in [json!(secret), json!({"api_key": [secret]})] {
        let r = a
            .post(
                "/api/v1/integrations",
                json!({"provider_code": "NEWSAPI", "name": "x", "credentials": credentials}),
            )
            .await;
        r.problem(400, "invalid_json");
        assert_no_secret("a 400 answer", &r.text, secret);
    }
    m.stop().await;
}

// ---------------------------------------------------------------- test / enable

#[tokio::test]
async fn test_against_a_fake_that_accepts_the_token_activates_the_integration() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "accept").await;
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let created = a.create(body_for(&fake, "CRM", DEFAULT_TOKEN)).await;
    let id = created["id"].as_str().unwrap();

    let r = a
        .post_empty(&format!("/api/v1/integrations/{id}/test"))
        .await;
    let t = r.ok(200);
    assert_eq!(t["ok"], true, "{}", r.text);
    assert_eq!(t["status"], 200);
    assert!(t["latency_ms"].is_u64(), "{}", r.text);
    assert!(t["error"].is_null());

    let got = a.get(&format!("/api/v1/integrations/{id}")).await;
    let g = got.ok(200);
    assert_eq!(g["status"], "ACTIVE");
    assert!(g["last_successful_call"].is_string());
    assert_eq!(g["error_count"], 0);

    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "GET");
    assert_eq!(sent[0].path, "/crm/v3/objects/contacts");
    let expected = format!("Bearer {DEFAULT_TOKEN}");
    assert_eq!(sent[0].header("authorization"), Some(expected.as_str()));
    m.stop().await;
}

#[tokio::test]
async fn newsapi_test_sends_the_key_in_the_x_api_key_header() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "newsapi").await;
    let fake = FakeProvider::start(Kind::NewsApi).await;
    let created = a.create(body_for(&fake, "News", DEFAULT_TOKEN)).await;
    let id = created["id"].as_str().unwrap();

    let r = a
        .post_empty(&format!("/api/v1/integrations/{id}/test"))
        .await;
    assert_eq!(r.ok(200)["ok"], true, "{}", r.text);
    assert_eq!(r.body["status"], 200);
    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v2/everything");
    assert_eq!(sent[0].header("x-api-key"), Some(DEFAULT_TOKEN));
    assert_eq!(sent[0].query_param("apiKey"), None);
    assert_eq!(sent[0].header("authorization"), None);
    let got = a.get(&format!("/api/v1/integrations/{id}")).await;
    assert_eq!(got.ok(200)["status"], "ACTIVE");
    m.stop().await;
}

#[tokio::test]
async fn test_against_a_fake_that_rejects_the_token_records_the_error() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "reject").await;
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let created = a.create(body_for(&fake, "CRM", "wrong-token-1234")).await;
    let id = created["id"].as_str().unwrap();

    let r = a
        .post_empty(&format!("/api/v1/integrations/{id}/test"))
        .await;
    let t = r.ok(200);
    assert_eq!(t["ok"], false, "{}", r.text);
    assert_eq!(t["status"], 401);
    assert!(t["latency_ms"].is_u64());
    let error = t["error"].as_str().expect("an error");
    assert!(error.contains("401"), "{error}");
    assert!(
        error.contains("Authentication credentials not found"),
        "the provider's own message: {error}"
    );

    let got = a.get(&format!("/api/v1/integrations/{id}")).await;
    let g = got.ok(200);
    assert_eq!(g["status"], "PENDING_AUTH", "not connected");
    assert_eq!(g["error_count"], 1);
    assert_eq!(g["last_error"], error);
    assert!(g["last_error_at"].is_string());
    assert!(g["last_successful_call"].is_null());
    assert_eq!(
        fake.requests()[0].header("authorization"),
        Some("Bearer wrong-token-1234")
    );

    a.post_empty(&format!("/api/v1/integrations/{id}/test"))
        .await
        .ok(200);
    let again = a.get(&format!("/api/v1/integrations/{id}")).await;
    assert_eq!(again.ok(200)["error_count"], 2);
    m.stop().await;
}

#[tokio::test]
async fn enable_with_a_rejected_key_is_409_with_the_providers_error() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "enable409").await;
    let fake = FakeProvider::start(Kind::NewsApi).await;
    let created = a.create(body_for(&fake, "News", "not-the-key-5678")).await;
    let id = created["id"].as_str().unwrap();

    let r = a
        .post_empty(&format!("/api/v1/integrations/{id}/enable"))
        .await;
    let p = r.problem(409, "conflict");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("401"), "{detail}");
    assert!(
        detail.contains("Your API key is invalid"),
        "the provider's message: {detail}"
    );
    assert_eq!(p["test"]["ok"], false, "{}", r.text);
    assert_eq!(p["test"]["status"], 401);

    let got = a.get(&format!("/api/v1/integrations/{id}")).await;
    let g = got.ok(200);
    assert_ne!(g["status"], "ACTIVE");
    assert_eq!(g["status"], "PENDING_AUTH");
    assert_eq!(g["error_count"], 1);
    assert!(g["last_error"].as_str().unwrap().contains("401"));
    m.stop().await;
}

#[tokio::test]
async fn enable_with_an_accepted_key_activates_and_disable_pauses_keeping_the_config() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "toggle").await;
    let fake = FakeProvider::start(Kind::QuickBooks).await;
    let created = a.create(body_for(&fake, "Books", DEFAULT_TOKEN)).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/integrations/{id}");

    let enabled = a.post_empty(&format!("{path}/enable")).await;
    let e = enabled.ok(200);
    assert_eq!(e["status"], "ACTIVE");
    assert_eq!(e["is_enabled"], true);
    assert!(e["last_successful_call"].is_string());
    assert_eq!(fake.requests().len(), 1, "enable ran the test call");
    assert!(
        fake.requests()[0]
            .path
            .contains(hub_testkit::fakes::QUICKBOOKS_REALM_ID)
    );

    let disabled = a.post_empty(&format!("{path}/disable")).await;
    let d = disabled.ok(200);
    assert_eq!(d["status"], "PAUSED");
    assert_eq!(d["is_enabled"], false);
    assert_eq!(d["config"], created["config"], "config kept");
    assert_eq!(d["credentials"], created["credentials"], "credentials kept");
    assert_eq!(d["name"], created["name"]);
    let got = a.get(&path).await;
    assert_eq!(got.ok(200)["status"], "PAUSED");

    // Disabling again changes nothing; enabling again tests and reactivates.
    let again = a.post_empty(&format!("{path}/disable")).await;
    assert_eq!(again.ok(200)["status"], "PAUSED");
    let back = a.post_empty(&format!("{path}/enable")).await;
    assert_eq!(back.ok(200)["status"], "ACTIVE");
    assert_eq!(back.body["is_enabled"], true);
    assert_eq!(fake.requests().len(), 2);
    m.stop().await;
}

#[tokio::test]
async fn test_against_a_slow_fake_times_out_after_the_integration_timeout() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "slow").await;
    let fake = FakeProvider::start(Kind::HubSpot).await;
    fake.set_mode(Mode::Slow(Duration::from_secs(10)));
    let mut body = body_for(&fake, "Slow CRM", DEFAULT_TOKEN);
    body["timeout_seconds"] = json!(1);
    let created = a.create(body).await;
    let id = created["id"].as_str().unwrap();

    let started = Instant::now();
    let r = a
        .post_empty(&format!("/api/v1/integrations/{id}/test"))
        .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let t = r.ok(200);
    assert_eq!(t["ok"], false, "{}", r.text);
    assert!(t["status"].is_null(), "no answer: {}", r.text);
    let error = t["error"].as_str().expect("an error").to_ascii_lowercase();
    assert!(
        error.contains("timed out") || error.contains("timeout") || error.contains("within 1 s"),
        "{error}"
    );
    assert!(t["latency_ms"].as_u64().unwrap() >= 900, "{}", r.text);

    let got = a.get(&format!("/api/v1/integrations/{id}")).await;
    assert_eq!(got.ok(200)["error_count"], 1);
    assert_eq!(got.body["status"], "PENDING_AUTH");
    let class: String = sqlx::query_scalar("SELECT status FROM api_request_logs")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(class, "TIMEOUT");

    // enable fails the same way, as a 409, quickly.
    let started = Instant::now();
    a.post_empty(&format!("/api/v1/integrations/{id}/enable"))
        .await
        .problem(409, "conflict");
    assert!(started.elapsed() < Duration::from_secs(5));
    m.stop().await;
}

#[tokio::test]
async fn a_failing_test_moves_an_active_integration_to_error_and_a_passing_one_back() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "flap").await;
    let fake = FakeProvider::start(Kind::Samsara).await;
    let created = a.create(body_for(&fake, "ELD", DEFAULT_TOKEN)).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/integrations/{id}");

    a.post_empty(&format!("{path}/test")).await.ok(200);
    assert_eq!(a.get(&path).await.ok(200)["status"], "ACTIVE");
    let bearer = format!("Bearer {DEFAULT_TOKEN}");
    assert_eq!(
        fake.requests()[0].header("authorization"),
        Some(bearer.as_str())
    );

    fake.set_valid_token("rotated-by-the-provider");
    let failed = a.post_empty(&format!("{path}/test")).await;
    assert_eq!(failed.ok(200)["ok"], false);
    assert_eq!(failed.body["status"], 401);
    let g = a.get(&path).await;
    assert_eq!(g.ok(200)["status"], "ERROR");
    assert_eq!(g.body["error_count"], 1);

    fake.set_valid_token(DEFAULT_TOKEN);
    let ok = a.post_empty(&format!("{path}/test")).await;
    assert_eq!(ok.ok(200)["ok"], true);
    let g = a.get(&path).await;
    assert_eq!(g.ok(200)["status"], "ACTIVE");
    assert_eq!(g.body["error_count"], 0);
    m.stop().await;
}

#[tokio::test]
async fn a_test_without_credentials_fails_and_is_recorded() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "nocreds").await;
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let created = a
        .create(json!({"provider_code": "HUBSPOT", "name": "CRM", "config": fake.config()}))
        .await;
    let id = created["id"].as_str().unwrap();

    let r = a
        .post_empty(&format!("/api/v1/integrations/{id}/test"))
        .await;
    assert_eq!(r.ok(200)["ok"], false, "{}", r.text);
    let error = r.body["error"].as_str().expect("an error");
    assert!(
        error.contains("no OAuth tokens") && error.contains("oauth/authorize"),
        "{error}"
    );
    assert!(fake.requests().is_empty(), "nothing to send");
    a.post_empty(&format!("/api/v1/integrations/{id}/enable"))
        .await
        .problem(409, "conflict");

    // Like any failed test, it is recorded on the integration.
    let got = a.get(&format!("/api/v1/integrations/{id}")).await;
    let g = got.ok(200);
    assert_eq!(g["status"], "PENDING_AUTH");
    assert!(
        g["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no OAuth tokens")),
        "last_error records the failed test: {}",
        got.text
    );
    assert_eq!(g["error_count"], 2, "{}", got.text);
    m.stop().await;
}

#[tokio::test]
async fn a_paused_integration_stays_paused_after_new_credentials_pass_a_test() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "pausedcreds").await;
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let created = a.create(body_for(&fake, "CRM", "old-token-0000")).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/integrations/{id}");

    let paused = a.post_empty(&format!("{path}/disable")).await;
    assert_eq!(paused.ok(200)["status"], "PAUSED");
    let updated = a
        .put(
            &path,
            json!({"credentials": {"access_token": DEFAULT_TOKEN}}),
        )
        .await;
    updated.ok(200);
    let t = a.post_empty(&format!("{path}/test")).await;
    assert_eq!(t.ok(200)["ok"], true, "{}", t.text);

    // Only `enable` resumes a disabled integration: a disabled one must not
    // report ACTIVE (status and is_enabled would contradict each other).
    let got = a.get(&path).await;
    let g = got.ok(200);
    assert_eq!(g["is_enabled"], false);
    assert_eq!(
        g["status"], "PAUSED",
        "a disabled integration became {} after a credential change and a test",
        g["status"]
    );
    m.stop().await;
}

// ---------------------------------------------------------------- health and stats

#[tokio::test]
async fn health_and_stats_count_the_test_calls() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "health").await;
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let created = a.create(body_for(&fake, "CRM", DEFAULT_TOKEN)).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/integrations/{id}");

    // Before any call.
    let h = a.get(&format!("{path}/health")).await;
    let h0 = h.ok(200);
    assert_eq!(h0["status"], "PENDING_AUTH");
    assert_eq!(h0["circuit_state"], "CLOSED");
    assert_eq!(h0["rate_limit"]["used_this_hour"], 0);
    let s = a.get(&format!("{path}/stats")).await;
    assert_eq!(s.ok(200)["calls"], 0);
    assert_eq!(s.body["errors"], 0);

    for _ in 0..2 {
        let t = a.post_empty(&format!("{path}/test")).await;
        assert_eq!(t.ok(200)["ok"], true);
    }
    fake.set_valid_token("something-else");
    let t = a.post_empty(&format!("{path}/test")).await;
    assert_eq!(t.ok(200)["ok"], false);

    let h = a.get(&format!("{path}/health")).await;
    let hv = h.ok(200);
    assert_eq!(hv["id"], id);
    assert_eq!(hv["status"], "ERROR");
    assert_eq!(hv["is_enabled"], true);
    assert_eq!(hv["error_count"], 1);
    assert!(hv["last_successful_call"].is_string());
    assert!(hv["last_error"].as_str().unwrap().contains("401"));
    assert!(hv["last_error_at"].is_string());
    assert_eq!(hv["circuit_state"], "CLOSED");
    assert_eq!(hv["rate_limit"]["used_this_hour"], 3, "{}", h.text);
    assert_eq!(hv["rate_limit"]["requests"], 100);
    assert_eq!(hv["rate_limit"]["window_seconds"], 10);
    assert_eq!(hv["rate_limit"]["limit_per_hour"], 36_000);

    let s = a.get(&format!("{path}/stats")).await;
    let sv = s.ok(200);
    assert_eq!(sv["id"], id);
    assert_eq!(sv["window_hours"], 24);
    assert_eq!(sv["calls"], 3, "{}", s.text);
    assert_eq!(sv["errors"], 1, "{}", s.text);
    let hours = sv["hours"].as_array().unwrap();
    assert!(!hours.is_empty() && hours.len() <= 2, "{}", s.text);
    let calls: i64 = hours.iter().map(|h| h["calls"].as_i64().unwrap()).sum();
    assert_eq!(calls, 3);
    for hour in hours {
        assert!(hour["hour"].is_string());
        let p50 = hour["p50_ms"].as_f64().expect("p50");
        let p95 = hour["p95_ms"].as_f64().expect("p95");
        assert!(p50 >= 0.0 && p95 >= p50, "{hour}");
    }
    m.stop().await;
}

// ---------------------------------------------------------------- events

#[tokio::test]
async fn lifecycle_events_reach_the_audit_log_without_secrets() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "events").await;
    let key_id = a.key_id().await;
    let fake = FakeProvider::start(Kind::NewsApi).await;
    let first = "nw-first-key-aaaa1111bbbb2222Ev";
    let second = "nw-second-key-cccc3333dddd4444Ev";
    fake.set_valid_token(second);

    let created = a.create(body_for(&fake, "News", first)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/integrations/{id}");
    let e = a.audited("integration.created", &id).await;
    assert_eq!(e["data"]["integration"]["provider_code"], "NEWSAPI");
    assert_eq!(e["data"]["actor_api_key_id"], key_id.as_str());
    assert_eq!(e["source"], "integration-manager");

    // Rejected key → integration.error.
    let failed = a.post_empty(&format!("{path}/test")).await;
    assert_eq!(failed.ok(200)["ok"], false);
    let e = a.audited("integration.error", &id).await;
    assert_eq!(e["data"]["status"], 401);
    assert!(e["data"]["error"].as_str().unwrap().contains("401"));

    // New key and name → integration.updated naming both, without the key.
    a.put(
        &path,
        json!({"name": "News v2", "credentials": {"api_key": second}}),
    )
    .await
    .ok(200);
    let e = a.audited("integration.updated", &id).await;
    let changed: BTreeSet<String> = e["data"]["changed"]
        .as_array()
        .expect("changed")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(changed, set(&["name", "credentials"]));
    assert_eq!(e["data"]["actor_api_key_id"], key_id.as_str());

    // Passing test → integration.connected.
    let ok = a.post_empty(&format!("{path}/test")).await;
    assert_eq!(ok.ok(200)["ok"], true);
    let e = a.audited("integration.connected", &id).await;
    assert_eq!(e["data"]["status"], "ACTIVE");

    // Disable → integration.disconnected.
    a.post_empty(&format!("{path}/disable")).await.ok(200);
    let e = a.audited("integration.disconnected", &id).await;
    assert_eq!(e["data"]["status"], "PAUSED");

    // Delete → integration.deleted.
    a.delete(&path).await.ok(204);
    let e = a.audited("integration.deleted", &id).await;
    assert_eq!(e["data"]["actor_api_key_id"], key_id.as_str());

    let audit = a.get("/api/v1/audit-log?limit=200").await;
    assert_no_secret("the audit log", &audit.text, first);
    assert_no_secret("the audit log", &audit.text, second);
    m.stop().await;
}

#[tokio::test]
async fn an_active_integration_that_starts_failing_emits_error_and_disconnected() {
    let (env, m) = started().await;
    let a = Api::new(&env, &m, "disconnect").await;
    let fake = FakeProvider::start(Kind::Xero).await;
    let created = a.create(body_for(&fake, "Xero", DEFAULT_TOKEN)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/integrations/{id}");

    let ok = a.post_empty(&format!("{path}/test")).await;
    assert_eq!(ok.ok(200)["ok"], true, "{}", ok.text);
    a.audited("integration.connected", &id).await;

    fake.set_valid_token("revoked");
    let failed = a.post_empty(&format!("{path}/test")).await;
    assert_eq!(failed.ok(200)["ok"], false);
    a.audited("integration.error", &id).await;
    let e = a.audited("integration.disconnected", &id).await;
    assert!(e["data"]["error"].as_str().unwrap().contains("401"), "{e}");
    assert_eq!(a.get(&path).await.ok(200)["status"], "ERROR");
    m.stop().await;
}
