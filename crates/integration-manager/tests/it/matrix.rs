//! The tenant and secret matrix, generated from the committed OpenAPI
//! documents of the three services (`openapi/*.json`), so a new route is
//! covered without editing this test:
//!
//! - every operation without credentials answers 401, except those public by
//!   design ([`PUBLIC`], each with its reason);
//! - every tenant operation called with tenant B's key and tenant A's objects
//!   in every path parameter answers 404 (the objects come from [`object`]:
//!   a path parameter it does not know fails the test); one without path
//!   parameters answers B nothing of A's; an operator operation refuses
//!   B's key (401);
//! - tenant A reads every `GET` operation with its own objects (2xx);
//! - then every response body of the run and every line the three services
//!   logged (their tracing output, at `debug`) is searched for every secret
//!   the run made: API keys, webhook secrets, a subscription's Basic
//!   password, provider credentials, the admin token and the encryption key.
//!   The only answers that may hold one are those that exist to show it once
//!   (a created key, a created or rotated signing secret), and only that one.

use hub_testkit::fakes::{FakeProvider, Kind};
use hub_testkit::receiver::Receiver;
use hub_testkit::service::ADMIN_TOKEN;
use hub_testkit::{Answer, Call, TenantApi, TestEnv, eventually};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Operations that answer without credentials by design, and why.
const PUBLIC: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/health",
        "liveness probe: orchestrators call it without credentials",
    ),
    (
        "GET",
        "/ready",
        "readiness probe: orchestrators call it without credentials",
    ),
    (
        "GET",
        "/metrics",
        "Prometheus scrapes it; aggregate counters, no tenant's data",
    ),
    (
        "GET",
        "/oauth/callback",
        "the provider sends the user's browser here; the one-time `state` names the integration",
    ),
    (
        "POST",
        "/webhooks/{tenant}/{path}",
        "providers post inbound webhooks; each endpoint checks its own signature or IP allowlist",
    ),
];

/// The services whose documents the matrix reads.
const SERVICES: [&str; 3] = [
    "integration-manager",
    "webhook-dispatcher",
    "integration-sync",
];

/// Tenant A's objects, one of each kind a path parameter can name.
struct Objects {
    tenant: String,
    slug: &'static str,
    endpoint_path: &'static str,
    key_id: String,
    hidden_provider: &'static str,
    integration: String,
    log: String,
    job: String,
    conflict: String,
    template: String,
    endpoint: String,
    subscription: String,
    delivery: String,
}

impl Objects {
    /// Every id, to search B's answers for.
    fn ids(&self) -> Vec<&str> {
        vec![
            &self.tenant,
            &self.key_id,
            &self.integration,
            &self.log,
            &self.job,
            &self.conflict,
            &self.template,
            &self.endpoint,
            &self.subscription,
            &self.delivery,
        ]
    }
}

/// Tenant A's object for path parameter `param` of `route`, by the route's
/// segment before it: the table a new kind of path id must be added to.
fn object<'a>(objects: &'a Objects, route: &str, param: &str) -> Option<&'a str> {
    let segments: Vec<&str> = route.split('/').collect();
    let at = segments.iter().position(|s| *s == format!("{{{param}}}"))?;
    let before = segments.get(at.checked_sub(1)?)?;
    Some(match (*before, param) {
        ("tenants", "id") => &objects.tenant,
        // The public inbound URL of A's endpoint (called without credentials).
        ("webhooks", "tenant") => objects.slug,
        ("{tenant}", "path") => objects.endpoint_path,
        ("api-keys", "key_id") => &objects.key_id,
        // The catalog is shared; a provider the operator hid from B is A's
        // alone.
        ("providers", "code") => objects.hidden_provider,
        ("api-logs", "logId") => &objects.log,
        ("integrations", "id") => &objects.integration,
        ("proxy", "path") => "crm/v3/objects/contacts",
        ("sync-jobs", "id") => &objects.job,
        ("conflicts", "id") => &objects.conflict,
        ("transformations", "id") => &objects.template,
        ("endpoints", "id") => &objects.endpoint,
        ("subscriptions", "id") => &objects.subscription,
        ("deliveries", "delivery_id") => &objects.delivery,
        // Operator routes over the services' dead-letter queues.
        ("dead-letters", "service") => "integration-manager",
        ("{service}", "id") => NO_SUCH_DEAD_LETTER,
        _ => return None,
    })
}

/// A dead letter's id: the queues hold no message in this run (one
/// appears only after a message failed processing).
const NO_SUCH_DEAD_LETTER: &str = "01a00000-0000-7000-8000-000000000000";

/// GET operations whose owner read is not checked here, with the reason.
const NOT_READ_AS_OWNER: &[(&str, &str)] = &[(
    "/api/v1/admin/dead-letters/{service}/{id}",
    "no message failed processing in this run; tests/it/dead_letters.rs reads one",
)];

/// Who may call an operation, as its document says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Public,
    Tenant,
    Operator,
}

/// One documented operation.
struct Operation {
    service: &'static str,
    method: Method,
    route: String,
    access: Access,
    path_params: Vec<String>,
    body: Option<Value>,
    /// Whether it documents 415 (a body sent as anything but JSON).
    documents_415: bool,
}

impl Operation {
    fn name(&self) -> String {
        format!("{} {} {}", self.service, self.method, self.route)
    }
}

/// Every operation of `service`'s committed document.
fn operations(service: &'static str) -> Vec<Operation> {
    let path = format!(
        "{}/../../openapi/{service}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut all = Vec::new();
    for (route, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if !matches!(
                method,
                Method::GET | Method::POST | Method::PUT | Method::DELETE | Method::PATCH
            ) {
                continue;
            }
            let schemes: Vec<String> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s.as_object().unwrap().keys().cloned())
                .collect();
            let access = if schemes.iter().any(|s| s == "tenant") {
                Access::Tenant
            } else if schemes.iter().any(|s| s == "admin_token") {
                Access::Operator
            } else {
                Access::Public
            };
            let path_params = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            let body = op["requestBody"]["content"]["application/json"]["schema"].clone();
            let body = (!body.is_null()).then(|| minimal(&doc, &body));
            all.push(Operation {
                service,
                method,
                route: route.clone(),
                access,
                path_params,
                body,
                // The platform's 415 (routes that document their own, such as
                // the events intake, where text/plain is CloudEvents' binary
                // mode, have tests of their own).
                documents_415: op["responses"]["415"]["description"]
                    == "The body is not sent as application/json",
            });
        }
    }
    all
}

/// The smallest instance of JSON Schema `schema` (refs resolved in `doc`):
/// required properties only, the first of any choice.
fn minimal(doc: &Value, schema: &Value) -> Value {
    if let Some(r) = schema["$ref"].as_str() {
        let target = doc.pointer(r.trim_start_matches('#')).unwrap();
        return minimal(doc, target);
    }
    for choice in ["oneOf", "anyOf"] {
        if let Some(first) = schema[choice]
            .as_array()
            .and_then(|c| c.iter().find(|s| s["type"] != "null"))
        {
            return minimal(doc, first);
        }
    }
    if let Some(parts) = schema["allOf"].as_array() {
        let mut merged = serde_json::Map::new();
        for part in parts {
            if let Value::Object(o) = minimal(doc, part) {
                merged.extend(o);
            }
        }
        return Value::Object(merged);
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds
            .iter()
            .find(|k| *k != "null")
            .and_then(Value::as_str)
            .unwrap_or("null"),
        Value::String(k) => k.as_str(),
        _ if schema["properties"].is_object() => "object",
        _ => "object",
    };
    match kind {
        "object" => {
            let mut out = serde_json::Map::new();
            for field in schema["required"].as_array().into_iter().flatten() {
                let field = field.as_str().unwrap();
                let property = &schema["properties"][field];
                out.insert(field.to_owned(), minimal(doc, property));
            }
            Value::Object(out)
        }
        "array" => {
            let n = schema["minItems"].as_u64().unwrap_or(0);
            let item = minimal(doc, &schema["items"]);
            Value::Array((0..n).map(|_| item.clone()).collect())
        }
        "string" => match schema["format"].as_str() {
            // A documented example is a valid value (a pattern's, say).
            _ if schema["example"].is_string() => schema["example"].clone(),
            Some("uuid") => json!(uuid::Uuid::now_v7()),
            Some("date-time") => json!(chrono::Utc::now().to_rfc3339()),
            _ => json!("x".repeat(schema["minLength"].as_u64().unwrap_or(1) as usize)),
        },
        "integer" | "number" => json!(schema["minimum"].as_i64().unwrap_or(0)),
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

/// A request's answer kept for the secret search, with the secrets it
/// exists to show (once).
struct Seen {
    what: String,
    text: String,
    shows: Vec<String>,
}

/// Every answer of the run.
#[derive(Default)]
struct Answers(Vec<Seen>);

impl Answers {
    async fn call(&mut self, what: impl Into<String>, req: reqwest::RequestBuilder) -> Answer {
        self.showing(what, &[], req).await
    }

    async fn showing(
        &mut self,
        what: impl Into<String>,
        shows: &[&str],
        req: reqwest::RequestBuilder,
    ) -> Answer {
        let a = req.call().await;
        self.0.push(Seen {
            what: what.into(),
            text: a.text.clone(),
            shows: shows.iter().map(|s| (*s).to_owned()).collect(),
        });
        a
    }
}

fn random_secret(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_strangers_and_other_tenants_and_no_secret_leaks() {
    let env = TestEnv::new().await;
    let logs = tempfile::tempdir().unwrap();
    let log_of = |s: &str| logs.path().join(format!("{s}.log"));
    let m = env
        .spawn_logged(
            "integration-manager",
            env.config(),
            &log_of("integration-manager"),
        )
        .await;
    let d = env
        .spawn_logged(
            "webhook-dispatcher",
            env.config(),
            &log_of("webhook-dispatcher"),
        )
        .await;
    let s = env
        .spawn_logged(
            "integration-sync",
            env.config(),
            &log_of("integration-sync"),
        )
        .await;
    let base = |service: &str| match service {
        "integration-manager" => &m,
        "webhook-dispatcher" => &d,
        _ => &s,
    };
    let mut seen = Answers::default();
    let mut secrets: Vec<(&str, String)> = vec![
        ("admin token", ADMIN_TOKEN.to_owned()),
        ("encryption key", env.encryption_key.clone()),
    ];

    // Two tenants, each with a key (shown once, when created).
    let tenant = |slug: &'static str| {
        let (env, m) = (&env, &m);
        async move {
            let t = env
                .admin(Method::POST, &m.url("/api/v1/admin/tenants"))
                .json(&json!({"name": slug, "slug": slug}))
                .call()
                .await;
            let id = t.ok(201)["id"].as_str().unwrap().to_owned();
            let k = env
                .admin(
                    Method::POST,
                    &m.url(&format!("/api/v1/admin/tenants/{id}/api-keys")),
                )
                .json(&json!({"name": "matrix"}))
                .call()
                .await;
            let k = k.ok(201).clone();
            (id, k, t)
        }
    };
    let (a_id, a_key, a_created) = tenant("matrix-a").await;
    let (b_id, b_key, _) = tenant("matrix-b").await;
    let a_secret = a_key["key"].as_str().unwrap().to_owned();
    let b_secret = b_key["key"].as_str().unwrap().to_owned();
    seen.0.push(Seen {
        what: "create tenant A".into(),
        text: a_created.text,
        shows: vec![],
    });
    secrets.push(("tenant A's API key", a_secret.clone()));
    secrets.push(("tenant B's API key", b_secret.clone()));
    let a = TenantApi::new(&env, &m, &a_id, &a_secret);

    // A provider the operator hides from B: A's alone.
    let hidden = "SAMSARA";
    let h = env
        .admin(
            Method::PUT,
            &m.url(&format!(
                "/api/v1/admin/tenants/{b_id}/providers/{hidden}/visibility"
            )),
        )
        .json(&json!({"hidden": true}));
    seen.call("hide a provider from B", h).await.ok(200);

    // A's integration, on the fake HubSpot with a token of this run; its
    // connection test makes a request log.
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let token = random_secret("hubspot-token-");
    fake.set_valid_token(token.clone());
    secrets.push(("provider credential", token.clone()));
    let created = seen
        .call(
            "create integration",
            a.request(Method::POST, "/api/v1/integrations")
                .json(&json!({
                "provider_code": "HUBSPOT", "name": "crm", "config": fake.config(),
                "credentials": {"access_token": token}})),
        )
        .await;
    let integration = created.ok(201)["id"].as_str().unwrap().to_owned();
    seen.call(
        "enable integration",
        a.request(
            Method::POST,
            &format!("/api/v1/integrations/{integration}/enable"),
        ),
    )
    .await
    .ok(200);
    let log = eventually(20, "A's request log row", || async {
        let page = a.get("/api/v1/api-logs/search").await;
        page.body["data"][0]["id"].as_str().map(str::to_owned)
    })
    .await;

    // An inbound endpoint with a signing secret of this run.
    let inbound_secret = random_secret("whsec-inbound-");
    secrets.push(("inbound endpoint secret", inbound_secret.clone()));
    let ep = seen
        .showing(
            "create inbound endpoint",
            &[&inbound_secret],
            a.request(Method::POST, "/api/v1/webhooks/endpoints")
                .json(&json!({
                "endpoint_path": "hs", "signature_algorithm": "hmac-sha256",
                "secret_key": inbound_secret, "integration_id": integration})),
        )
        .await;
    let endpoint = ep.ok(201)["id"].as_str().unwrap().to_owned();

    // A subscription to a receiver, with a Basic password; one event
    // delivered makes a delivery.
    let rx = Receiver::start().await;
    let password = random_secret("basic-password-");
    secrets.push(("subscription Basic password", password.clone()));
    let sub = a
        .request(Method::POST, "/api/v1/webhooks/subscriptions")
        .json(&json!({"name": "orders", "url": rx.url("/h"), "event_types": ["order.*"],
                      "auth_type": "BASIC", "auth_config": {"username": "hub", "password": password}}))
        .call()
        .await;
    let sub = sub.ok(201).clone();
    let sub_secret = sub["secret"].as_str().unwrap().to_owned();
    seen.0.push(Seen {
        what: "create subscription".into(),
        text: sub.to_string(),
        shows: vec![sub_secret.clone()],
    });
    secrets.push(("subscription signing secret", sub_secret.clone()));
    let subscription = sub["id"].as_str().unwrap().to_owned();
    let event = json!({"specversion": "1.0", "id": uuid::Uuid::now_v7().to_string(),
        "source": "/matrix", "type": "order.created", "tenantid": a_id,
        "datacontenttype": "application/json", "data": {"order": 1}});
    seen.call(
        "post event",
        a.at(&d)
            .request(Method::POST, "/api/v1/events")
            .json(&event),
    )
    .await
    .ok(202);
    let delivery = eventually(30, "A's delivery", || async {
        let page = a
            .get(&format!(
                "/api/v1/webhooks/subscriptions/{subscription}/deliveries"
            ))
            .await;
        page.body["data"][0]["id"].as_str().map(str::to_owned)
    })
    .await;

    // A template.
    let tpl = seen
        .call(
            "create template",
            a.request(Method::POST, "/api/v1/transformations").json(&json!({
                "code": "matrix", "name": "Matrix", "source_format": "JSON", "target_format": "JSON",
                "mapping_rules": {"rules": [{"target": "id", "source": "Id"}]}})),
        )
        .await;
    let template = tpl.ok(201)["id"].as_str().unwrap().to_owned();

    // A sync job (an IMPORT, run by integration-sync) and a conflict: a
    // local change newer than what a second import brings.
    let import = |email: &str| {
        json!({"integration_id": integration, "job_type": "IMPORT", "entity_type": "contacts",
               "file": {"format": "JSON", "content": json!([{"id": "1", "properties": {
                   "email": email, "firstname": "Ana", "lastname": "Ng",
                   "hs_lastmodifieddate": "2024-02-01T00:00:00Z"}, "archived": false}]).to_string()}})
    };
    let run_job = |body: Value| {
        let a = a.clone();
        async move {
            let created = a.post("/api/v1/sync-jobs", body).await;
            let id = created.ok(201)["id"].as_str().unwrap().to_owned();
            eventually(60, "the job ended", || async {
                let j = a.get(&format!("/api/v1/sync-jobs/{id}")).await;
                let status = j.body["status"].as_str().unwrap_or("PENDING").to_owned();
                (!["PENDING", "RUNNING"].contains(&status.as_str())).then(|| j.body.clone())
            })
            .await
        }
    };
    run_job(import("one@x.example")).await;
    sqlx::query(
        "UPDATE sync_records SET local_data = data || '{\"title\": \"local\"}', local_changed_at = now()
          WHERE integration_id = $1::uuid",
    )
    .bind(&integration)
    .execute(env.pool())
    .await
    .unwrap();
    let job = run_job(import("one-remote@x.example")).await;
    assert_eq!(job["conflict_count"], 1, "{job}");
    let job = job["id"].as_str().unwrap().to_owned();
    let conflicts = a.get(&format!("/api/v1/sync-jobs/{job}/conflicts")).await;
    let conflict = conflicts.ok(200)["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let objects = Objects {
        tenant: a_id.clone(),
        slug: "matrix-a",
        endpoint_path: "hs",
        key_id: a_key["id"].as_str().unwrap().to_owned(),
        hidden_provider: hidden,
        integration,
        log,
        job,
        conflict,
        template,
        endpoint,
        subscription,
        delivery,
    };

    // The matrix.
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut all = Vec::new();
    for service in SERVICES {
        all.extend(operations(service));
    }
    for op in &all {
        let public = PUBLIC
            .iter()
            .find(|(method, route, _)| *method == op.method.as_str() && *route == op.route);
        match (op.access, public) {
            (Access::Public, None) => {
                wrong.push(format!(
                    "{}: documented without security, and not listed in PUBLIC",
                    op.name()
                ));
                continue;
            }
            (Access::Tenant | Access::Operator, Some(_)) => {
                wrong.push(format!(
                    "{}: listed in PUBLIC but documented with security",
                    op.name()
                ));
                continue;
            }
            _ => {}
        }
        let mut path = op.route.clone();
        for p in &op.path_params {
            match object(&objects, &op.route, p) {
                Some(id) => path = path.replace(&format!("{{{p}}}"), id),
                None => unknown.push(format!("{}: {{{p}}}", op.name())),
            }
        }
        if path.contains('{') {
            continue;
        }
        let url = base(op.service).url(&path);
        let request = |key: Option<&str>, tenant: Option<&str>| {
            let mut r = env.http.request(op.method.clone(), &url);
            if let Some(k) = key {
                r = r.bearer_auth(k);
            }
            if let Some(t) = tenant {
                r = r.header("X-Tenant-ID", t);
            }
            if let Some(body) = &op.body {
                r = r.json(body);
            }
            r
        };
        if op.access == Access::Public {
            // Public by design: no credentials needed, and no server error.
            let got = seen
                .call(format!("{} (public)", op.name()), request(None, None))
                .await;
            *counts.entry("public, no server error").or_default() += 1;
            if got.status >= 500 {
                wrong.push(format!(
                    "{} without credentials: {} {}",
                    op.name(),
                    got.status,
                    got.text
                ));
            }
            continue;
        }

        let got = seen
            .call(
                format!("{} (no credentials)", op.name()),
                request(None, None),
            )
            .await;
        *counts.entry("no credentials: 401").or_default() += 1;
        if got.status != 401 {
            wrong.push(format!(
                "{} without credentials: {} (want 401) {}",
                op.name(),
                got.status,
                got.text
            ));
        }

        let got = seen
            .call(
                format!("{} (tenant B)", op.name()),
                request(Some(&b_secret), Some(&b_id)),
            )
            .await;
        match op.access {
            Access::Operator => {
                *counts
                    .entry("operator route, tenant B's key: 401")
                    .or_default() += 1;
                if got.status != 401 {
                    wrong.push(format!(
                        "{} with a tenant's key: {} (want 401) {}",
                        op.name(),
                        got.status,
                        got.text
                    ));
                }
            }
            _ if !op.path_params.is_empty() => {
                *counts.entry("tenant B, A's ids: 404").or_default() += 1;
                if got.status != 404 {
                    wrong.push(format!(
                        "{} as tenant B with A's ids: {} (want 404) {}",
                        op.name(),
                        got.status,
                        got.text
                    ));
                }
            }
            _ => {
                *counts.entry("tenant B, nothing of A's").or_default() += 1;
                let leaked: Vec<&str> = objects
                    .ids()
                    .into_iter()
                    .filter(|id| got.text.contains(id))
                    .collect();
                if got.status >= 500 || !leaked.is_empty() {
                    wrong.push(format!(
                        "{} as tenant B: {}, A's ids {leaked:?} in {}",
                        op.name(),
                        got.status,
                        got.text
                    ));
                }
            }
        }

        // A 415 documented is a 415 answered: the owner's request with its
        // body as text/plain is refused before it changes anything.
        if op.documents_415 {
            let (key, tenant) = match op.access {
                Access::Operator => (ADMIN_TOKEN, None),
                _ => (a_secret.as_str(), Some(a_id.as_str())),
            };
            let mut r = env.http.request(op.method.clone(), &url).bearer_auth(key);
            if let Some(t) = tenant {
                r = r.header("X-Tenant-ID", t);
            }
            let r = r
                .header("Content-Type", "text/plain")
                .body(op.body.as_ref().map_or_else(String::new, Value::to_string));
            let got = seen.call(format!("{} (text/plain)", op.name()), r).await;
            *counts.entry("415 documented, 415 answered").or_default() += 1;
            if got.status != 415 {
                wrong.push(format!(
                    "{} documents 415, but a text/plain body got {} {}",
                    op.name(),
                    got.status,
                    got.text
                ));
            }
        }

        // A reads its own objects (reads only: the writes above were B's
        // and must not have touched them).
        if op.method == Method::GET && !NOT_READ_AS_OWNER.iter().any(|(r, _)| *r == op.route) {
            let (key, tenant) = match op.access {
                Access::Operator => (ADMIN_TOKEN, None),
                _ => (a_secret.as_str(), Some(a_id.as_str())),
            };
            let shows: &[&str] = if op.route.ends_with("/secret") {
                &[&sub_secret]
            } else {
                &[]
            };
            let got = seen
                .showing(
                    format!("{} (tenant A)", op.name()),
                    shows,
                    request(Some(key), tenant),
                )
                .await;
            *counts.entry("owner reads: 2xx").or_default() += 1;
            if !(200..300).contains(&got.status) {
                wrong.push(format!(
                    "{} as its owner: {} {}",
                    op.name(),
                    got.status,
                    got.text
                ));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "path parameters the matrix has no object for (add them to `object`):\n{}",
        unknown.join("\n")
    );
    assert!(
        wrong.is_empty(),
        "{} of the matrix's checks failed:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // The secret search: every answer, then every log line.
    m.stop().await;
    d.stop().await;
    s.stop().await;
    let mut hits = Vec::new();
    for answer in &seen.0 {
        for (what, secret) in &secrets {
            if answer.text.contains(secret.as_str()) && !answer.shows.contains(secret) {
                hits.push(format!("{what} in the answer of {}", answer.what));
            }
        }
    }
    let mut lines = 0;
    for service in SERVICES {
        let text = std::fs::read_to_string(log_of(service)).unwrap();
        for line in text.lines() {
            lines += 1;
            for (what, secret) in &secrets {
                if line.contains(secret.as_str()) {
                    hits.push(format!("{what} in {service}'s log: {line}"));
                }
            }
        }
    }
    println!(
        "matrix: {} operations of {} services; checks: {counts:?}; {} secrets searched in {} answers and {lines} log lines: {} hits",
        all.len(),
        SERVICES.len(),
        secrets.len(),
        seen.0.len(),
        hits.len()
    );
    assert!(lines > 100, "the services logged: {lines} lines");
    assert!(hits.is_empty(), "secrets leaked:\n{}", hits.join("\n"));
}

/// The matrix's own parts: the minimal body and the object table.
#[test]
fn a_minimal_body_has_the_required_fields_and_the_table_reads_segments() {
    let doc = json!({"components": {"schemas": {"In": {"type": "object", "required": ["a", "b"],
        "properties": {"a": {"type": ["string", "null"], "format": "uuid"},
                       "b": {"type": "array", "minItems": 1, "items": {"enum": ["X", "Y"]}},
                       "c": {"type": "string"}}}}}});
    let body = minimal(&doc, &json!({"$ref": "#/components/schemas/In"}));
    assert!(body["a"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert_eq!(body["b"], json!(["X"]));
    assert!(body.get("c").is_none());
    let objects = Objects {
        tenant: "t".into(),
        slug: "a",
        endpoint_path: "hs",
        key_id: "k".into(),
        hidden_provider: "P",
        integration: "i".into(),
        log: "l".into(),
        job: "j".into(),
        conflict: "c".into(),
        template: "tp".into(),
        endpoint: "e".into(),
        subscription: "s".into(),
        delivery: "dl".into(),
    };
    assert_eq!(
        object(
            &objects,
            "/api/v1/webhooks/subscriptions/{id}/deliveries/{delivery_id}",
            "delivery_id"
        ),
        Some("dl")
    );
    assert_eq!(
        object(
            &objects,
            "/api/v1/webhooks/subscriptions/{id}/deliveries/{delivery_id}",
            "id"
        ),
        Some("s")
    );
    assert_eq!(object(&objects, "/api/v1/widgets/{id}", "id"), None);
}
