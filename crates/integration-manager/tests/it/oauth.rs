//! OAuth2 connections (issue 27, item 1) against the OAuth fakes: the dance
//! end to end for HubSpot, Salesforce, QuickBooks and Xero, state reuse,
//! expiry and tenant checks, PKCE, refreshes once across replicas, rotation
//! surviving a crash between the provider's answer and the save, revocation
//! and an unavailable token endpoint, `refresh-oauth`, tenant isolation.

use hub_domain::TenantId;
use hub_gateway::tokens::{TokenError, Tokens};
use hub_testkit::fakes::{FakeProvider, Kind, Mode};
use hub_testkit::{Answer, Running, TenantApi, TestEnv, eventually};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// What the manager says its public URL is; the test follows the
/// provider's redirect to it on the manager's real address (as a reverse
/// proxy would).
const PUBLIC_URL: &str = "http://hub.example.test";

async fn manager(env: &TestEnv) -> Running {
    let mut c = env.config();
    c.hub_public_url = PUBLIC_URL.to_owned();
    env.start(integration_manager::build, c).await
}

async fn started() -> (TestEnv, Running) {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    (env, m)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A config pointing at the fake, without what the connection provides.
fn dance_config(fake: &FakeProvider) -> Value {
    let mut c = fake.oauth_config();
    let o = c.as_object_mut().unwrap();
    o.remove("realm_id");
    o.remove("xero_tenant_id");
    o.remove("instance_url");
    if fake.kind() == Kind::Salesforce {
        // The API base comes from the token answer's instance_url.
        o.remove("base_url");
    }
    c
}

/// Creates an integration of `fake`'s provider with only the OAuth app.
async fn create(api: &TenantApi, fake: &FakeProvider) -> String {
    let (client_id, client_secret) = fake.oauth_client();
    let body = json!({
        "provider_code": fake.kind().code(), "name": format!("{} via OAuth", fake.kind().code()),
        "config": dance_config(fake),
        "credentials": {"client_id": client_id, "client_secret": client_secret},
    });
    let created = api.post("/api/v1/integrations", body).await;
    let row = created.ok(201);
    assert_eq!(row["status"], "PENDING_AUTH", "{row}");
    assert_eq!(
        row["credentials"]["client_id"]["last4"],
        json!(&client_id[client_id.len() - 4..])
    );
    assert!(!created.text.contains(&client_secret));
    row["id"].as_str().unwrap().to_owned()
}

/// `POST …/oauth/authorize` then the consent page's 302: the callback URL
/// on the manager (path and query of the redirect), and the authorize answer.
async fn consent(api: &TenantApi, m: &Running, id: &str, body: Value) -> (String, Value) {
    let a = api
        .post(&format!("/api/v1/integrations/{id}/oauth/authorize"), body)
        .await;
    let answer = a.ok(200).clone();
    let url = answer["authorization_url"].as_str().unwrap();
    let resp = no_redirects().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 302, "the fake's consent page redirects");
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let back = reqwest::Url::parse(&location).unwrap();
    assert_eq!(back.path(), "/oauth/callback");
    assert!(location.starts_with(PUBLIC_URL), "{location}");
    let on_manager = format!("{}{}?{}", m.base, back.path(), back.query().unwrap_or(""));
    (on_manager, answer)
}

async fn call(url: &str) -> Answer {
    Answer::read(no_redirects().get(url).send().await.unwrap()).await
}

/// The whole dance; returns the integration id and the callback's answer.
async fn connect(api: &TenantApi, m: &Running, fake: &FakeProvider) -> (String, Answer) {
    let id = create(api, fake).await;
    let (callback, _) = consent(api, m, &id, Value::Null).await;
    let answer = call(&callback).await;
    (id, answer)
}

/// The access token the integration last called the fake's API with.
fn token_used(fake: &FakeProvider) -> String {
    fake.requests()
        .iter()
        .rev()
        .filter(|r| {
            !r.path.contains("oauth") && !r.path.contains("token") && !r.path.contains("connect/")
        })
        .find_map(|r| r.header("authorization").map(str::to_owned))
        .and_then(|h| h.strip_prefix("Bearer ").map(str::to_owned))
        .expect("an API call with a bearer token")
}

#[tokio::test]
async fn the_oauth_dance_connects_hubspot_salesforce_quickbooks_and_xero() {
    let (env, m) = started().await;
    let (tenant, key) = env.tenant(&m, "dance").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    for kind in Kind::OAUTH {
        let fake = FakeProvider::start(kind).await;
        let (id, answer) = connect(&api, &m, &fake).await;
        let body = answer.ok(200);
        assert_eq!(body["integration_id"], json!(id));
        assert_eq!(body["status"], "ACTIVE", "{kind:?}: {body}");
        assert_eq!(body["test"]["ok"], true, "{kind:?}: {body}");

        let row = api.get(&format!("/api/v1/integrations/{id}")).await;
        let row_body = row.ok(200).clone();
        assert_eq!(row_body["status"], "ACTIVE");
        assert_eq!(row_body["credentials"]["access_token"]["set"], true);
        let config = &row_body["config"];
        match kind {
            Kind::QuickBooks => {
                assert_eq!(config["realm_id"], hub_testkit::fakes::QUICKBOOKS_REALM_ID)
            }
            Kind::Xero => {
                assert_eq!(config["xero_tenant_id"], hub_testkit::fakes::XERO_TENANT_ID);
                assert_eq!(
                    row_body["oauth_tenants"][0]["tenantId"],
                    hub_testkit::fakes::XERO_TENANT_ID
                );
            }
            Kind::Salesforce => assert_eq!(config["instance_url"], json!(fake.origin())),
            _ => {}
        }

        // Client authentication as each provider wants it.
        let exchange = fake
            .token_requests()
            .into_iter()
            .find(|r| r.form_param("grant_type").as_deref() == Some("authorization_code"))
            .expect("a code exchange");
        let basic = exchange
            .header("authorization")
            .is_some_and(|h| h.starts_with("Basic "));
        assert_eq!(
            basic,
            matches!(kind, Kind::QuickBooks | Kind::Xero),
            "{kind:?}"
        );
        assert_eq!(
            exchange.form_param("client_secret").is_some(),
            !basic,
            "{kind:?}"
        );

        // A refresh, so that a refresh token is known too.
        let r = api
            .post_empty(&format!("/api/v1/integrations/{id}/refresh-oauth"))
            .await;
        assert!(
            r.ok(200)["oauth_expires_at"].is_string() || kind == Kind::Salesforce,
            "{}",
            r.text
        );
        let access = token_used(&fake);
        let refresh = fake
            .token_requests()
            .iter()
            .find_map(|r| r.form_param("refresh_token"))
            .expect("a refresh request");
        let mut seen = vec![answer.text.clone(), row.text.clone(), r.text.clone()];
        seen.push(api.get(&format!("/api/v1/integrations/{id}")).await.text);
        seen.push(api.get("/api/v1/integrations").await.text);
        for text in &seen {
            assert!(!text.contains(&access), "{kind:?}: access token in {text}");
            assert!(
                !text.contains(&refresh),
                "{kind:?}: refresh token in {text}"
            );
            assert!(
                !text.contains(&fake.oauth_client().1),
                "{kind:?}: client secret in {text}"
            );
        }
        let events: String = api.audit(None).await.iter().map(Value::to_string).collect();
        assert!(!events.contains(&access) && !events.contains(&refresh));
    }
}

#[tokio::test]
async fn pkce_is_sent_to_the_providers_that_support_it() {
    let (env, m) = started().await;
    let (tenant, key) = env.tenant(&m, "pkce").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    for kind in Kind::OAUTH {
        let fake = FakeProvider::start(kind).await;
        let id = create(&api, &fake).await;
        let (callback, answer) = consent(&api, &m, &id, Value::Null).await;
        call(&callback).await.ok(200);
        let url = reqwest::Url::parse(answer["authorization_url"].as_str().unwrap()).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        let exchange = fake
            .token_requests()
            .into_iter()
            .find(|r| r.form_param("grant_type").as_deref() == Some("authorization_code"))
            .unwrap();
        let pkce = matches!(kind, Kind::Salesforce | Kind::Xero);
        assert_eq!(
            q.get("code_challenge_method").map(String::as_str),
            pkce.then_some("S256")
        );
        match exchange.form_param("code_verifier") {
            Some(v) => {
                assert!(pkce, "{kind:?}");
                assert_eq!(
                    q["code_challenge"],
                    hub_connectors::oauth::pkce_challenge(&v)
                );
            }
            None => assert!(!pkce, "{kind:?}: no verifier sent"),
        }
        assert_eq!(q["redirect_uri"], format!("{PUBLIC_URL}/oauth/callback"));
    }
}

#[tokio::test]
async fn a_state_is_single_use_expires_and_a_refused_consent_changes_nothing() {
    let (env, m) = started().await;
    let (tenant, key) = env.tenant(&m, "states").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let id = create(&api, &fake).await;

    // Expired: the row's expiry moved into the past.
    let (callback, _) = consent(&api, &m, &id, Value::Null).await;
    sqlx::query("UPDATE oauth_states SET expires_at = NOW() - INTERVAL '1 second'")
        .execute(env.pool())
        .await
        .unwrap();
    call(&callback).await.problem(400, "invalid_oauth_state");
    let row = api.get(&format!("/api/v1/integrations/{id}")).await;
    assert_eq!(row.ok(200)["status"], "PENDING_AUTH");
    assert!(row.body["credentials"].get("access_token").is_none());

    // Unknown.
    call(&format!("{}/oauth/callback?code=x&state=nope", m.base))
        .await
        .problem(400, "invalid_oauth_state");
    call(&format!("{}/oauth/callback?code=x", m.base))
        .await
        .problem(400, "invalid_oauth_state");

    // Used once, then refused.
    let (callback, _) = consent(&api, &m, &id, Value::Null).await;
    call(&callback).await.ok(200);
    let exchanges = fake.token_requests().len();
    call(&callback).await.problem(400, "invalid_oauth_state");
    assert_eq!(fake.token_requests().len(), exchanges, "no second exchange");

    // The user refuses: the provider's error is named, the state is spent.
    fake.set_user_denies(true);
    let (callback, _) = consent(&api, &m, &id, Value::Null).await;
    assert!(callback.contains("error=access_denied"), "{callback}");
    let denied = call(&callback).await;
    assert!(
        denied.problem(400, "oauth_denied")["detail"]
            .as_str()
            .unwrap()
            .contains("access_denied")
    );
    call(&callback).await.problem(400, "invalid_oauth_state");
    assert_eq!(
        api.get(&format!("/api/v1/integrations/{id}")).await.ok(200)["status"],
        "ACTIVE",
        "a refused re-consent leaves the connection as it was"
    );
}

#[tokio::test]
async fn redirect_after_on_the_public_origin_gets_a_303_and_others_are_refused() {
    let (env, m) = started().await;
    let (tenant, key) = env.tenant(&m, "redirects").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let fake = FakeProvider::start(Kind::QuickBooks).await;
    let id = create(&api, &fake).await;
    let path = format!("/api/v1/integrations/{id}/oauth/authorize");
    let bad = api
        .post(&path, json!({"redirect_after": "https://evil.example/x"}))
        .await;
    assert_eq!(
        bad.problem(422, "validation_failed")["errors"][0]["field"],
        "redirect_after"
    );
    let after = format!("{PUBLIC_URL}/app/integrations");
    let (callback, _) = consent(
        &api,
        &m,
        &id,
        json!({"redirect_after": after, "scopes": ["com.intuit.quickbooks.accounting"]}),
    )
    .await;
    let resp = no_redirects().get(&callback).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], after.as_str());
}

#[tokio::test]
async fn a_state_whose_integration_was_deleted_or_moved_to_another_tenant_is_refused() {
    let (env, m) = started().await;
    let (tenant, key) = env.tenant(&m, "owner").await;
    let (other, _) = env.tenant(&m, "other").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let fake = FakeProvider::start(Kind::HubSpot).await;

    let id = create(&api, &fake).await;
    let (callback, _) = consent(&api, &m, &id, Value::Null).await;
    // The row now belongs to another tenant (as if re-homed behind the API's back).
    sqlx::query("UPDATE integrations SET tenant_id = $1 WHERE id = $2")
        .bind(Uuid::parse_str(&other).unwrap())
        .bind(Uuid::parse_str(&id).unwrap())
        .execute(env.pool())
        .await
        .unwrap();
    call(&callback).await.problem(400, "invalid_oauth_state");
    sqlx::query("UPDATE integrations SET tenant_id = $1 WHERE id = $2")
        .bind(Uuid::parse_str(&tenant).unwrap())
        .bind(Uuid::parse_str(&id).unwrap())
        .execute(env.pool())
        .await
        .unwrap();

    let (callback, _) = consent(&api, &m, &id, Value::Null).await;
    api.delete(&format!("/api/v1/integrations/{id}"))
        .await
        .ok(204);
    call(&callback).await.problem(400, "invalid_oauth_state");
    assert!(
        fake.token_requests().is_empty(),
        "no code was exchanged for a refused state"
    );
}

#[tokio::test]
async fn oauth_routes_refuse_what_they_cannot_do_and_another_tenants_integration_is_404() {
    let (env, m) = started().await;
    let (tenant, key) = env.tenant(&m, "routes").await;
    let (other, other_key) = env.tenant(&m, "intruder").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let intruder = TenantApi::new(&env, &m, &other, &other_key);
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let (id, answer) = connect(&api, &m, &fake).await;
    answer.ok(200);
    for path in ["oauth/authorize", "refresh-oauth"] {
        let url = format!("/api/v1/integrations/{id}/{path}");
        intruder.post_empty(&url).await.problem(404, "not_found");
        let missing = format!("/api/v1/integrations/{}/{path}", Uuid::now_v7());
        api.post_empty(&missing).await.problem(404, "not_found");
    }

    // An API-key provider: no OAuth.
    let news = FakeProvider::start(Kind::NewsApi).await;
    let created = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "NEWSAPI", "name": "News", "config": news.config(), "credentials": {"api_key": "k123456"}}),
        )
        .await;
    let news_id = created.ok(201)["id"].as_str().unwrap().to_owned();
    for path in ["oauth/authorize", "refresh-oauth"] {
        api.post_empty(&format!("/api/v1/integrations/{news_id}/{path}"))
            .await
            .problem(409, "conflict");
    }

    // An OAuth provider with a hand-given token and no OAuth app.
    let sf = FakeProvider::start(Kind::Salesforce).await;
    let created = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "SALESFORCE", "name": "SF", "config": sf.config(),
                   "credentials": {"access_token": sf.valid_token()}}),
        )
        .await;
    let sf_id = created.ok(201)["id"].as_str().unwrap().to_owned();
    let missing_app = api
        .post_empty(&format!("/api/v1/integrations/{sf_id}/oauth/authorize"))
        .await;
    assert_eq!(
        missing_app.problem(422, "validation_failed")["errors"][0]["field"],
        "credentials.client_id"
    );
    api.post_empty(&format!("/api/v1/integrations/{sf_id}/refresh-oauth"))
        .await
        .problem(409, "conflict");

    // Half an app is a field error; an app on a non-OAuth provider too.
    let half = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "ZOHO", "name": "Z", "credentials": {"client_id": "abc"}}),
        )
        .await;
    assert_eq!(
        half.problem(422, "validation_failed")["errors"][0]["field"],
        "credentials.client_secret"
    );
    let wrong = api
        .put(
            &format!("/api/v1/integrations/{news_id}"),
            json!({"credentials": {"api_key": "k", "client_id": "a", "client_secret": "b"}}),
        )
        .await;
    wrong.problem(422, "validation_failed");
}

/// The integration as stored, and its current access token.
async fn stored(
    env: &TestEnv,
    tenant: &str,
    id: &str,
) -> (hub_storage::integrations::Integration, String) {
    let row = hub_storage::integrations::get(
        env.pool(),
        TenantId(Uuid::parse_str(tenant).unwrap()),
        Uuid::parse_str(id).unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let keyring = env.config().keyring().unwrap();
    let tokens = hub_gateway::credentials::open_tokens(&row, &keyring)
        .unwrap()
        .unwrap();
    (row, tokens.access_token)
}

/// A token keeper as a replica has one (own pool).
async fn keeper(env: &TestEnv) -> Tokens {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(5)
        .connect(&env.config().database_url)
        .await
        .unwrap();
    let keyring = Arc::new(env.config().keyring().unwrap());
    let policy = hub_connectors::client::TargetPolicy::AllowPrivate;
    Tokens::new(
        pool,
        keyring,
        hub_connectors::client::http_client(policy),
        policy,
    )
}

async fn expire(env: &TestEnv, id: &str) {
    sqlx::query(
        "UPDATE integrations SET oauth_expires_at = NOW() - INTERVAL '1 minute' WHERE id = $1",
    )
    .bind(Uuid::parse_str(id).unwrap())
    .execute(env.pool())
    .await
    .unwrap();
}

/// Three manager replicas on one database (their periodic refreshes and
/// routes run against the same rows) and a QuickBooks integration connected
/// through the first.
struct Herd {
    env: TestEnv,
    replicas: [Running; 3],
    tenant: String,
    api: TenantApi,
    fake: FakeProvider,
    id: String,
}

async fn herd(slug: &str) -> Herd {
    let (env, m) = started().await;
    let (m2, m3) = (manager(&env).await, manager(&env).await);
    let (tenant, key) = env.tenant(&m, slug).await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let fake = FakeProvider::start(Kind::QuickBooks).await;
    let (id, answer) = connect(&api, &m, &fake).await;
    answer.ok(200);
    Herd {
        env,
        replicas: [m, m2, m3],
        tenant,
        api,
        fake,
        id,
    }
}

#[tokio::test]
async fn twenty_concurrent_requests_on_an_expired_token_across_three_replicas_refresh_once() {
    let Herd {
        env,
        replicas: [m, m2, m3],
        tenant,
        api,
        fake,
        id,
    } = herd("herd").await;
    fake.expire_access_tokens();
    expire(&env, &id).await;
    let (row, stale) = stored(&env, &tenant, &id).await;
    let before = fake.refresh_count();

    let replicas = [keeper(&env).await, keeper(&env).await, keeper(&env).await];
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let tokens = replicas[i % 3].clone();
            let (row, stale) = (row.clone(), stale.clone());
            tokio::spawn(async move {
                if i % 2 == 0 {
                    tokens.access(&row).await
                } else {
                    tokens.after_unauthorized(&row, &stale).await
                }
            })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap().expect("a token"));
    }
    assert_eq!(
        fake.refresh_count() - before,
        1,
        "exactly one refresh at the provider"
    );
    assert!(
        got.iter().all(|t| *t == got[0] && *t != stale),
        "everyone got the one new token"
    );
    let (_, now) = stored(&env, &tenant, &id).await;
    assert_eq!(now, got[0]);
    // The new token works through every replica's connection test.
    for r in [&m, &m2, &m3] {
        let t = api
            .at(r)
            .post_empty(&format!("/api/v1/integrations/{id}/test"))
            .await;
        assert_eq!(t.ok(200)["ok"], true, "{}", t.text);
    }
}

#[tokio::test]
async fn twenty_concurrent_proxied_calls_meeting_a_revoked_access_token_refresh_once() {
    // (The test environment's database lives as long as `_env`.)
    let Herd {
        env: _env,
        replicas: [m, m2, m3],
        api,
        fake,
        id,
        ..
    } = herd("herd-proxy").await;
    // The provider stops taking the token before the hub expects it to:
    // every replica's first call meets a 401.
    fake.expire_access_tokens();
    let before = fake.refresh_count();
    let realm = hub_testkit::fakes::QUICKBOOKS_REALM_ID;
    let path = format!("/api/v1/integrations/{id}/proxy/v3/company/{realm}/companyinfo/{realm}");
    let replicas = [&m, &m2, &m3];
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let api = api.at(replicas[i % 3]);
            let path = path.clone();
            tokio::spawn(async move { api.get(&path).await })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(
        fake.refresh_count() - before,
        1,
        "exactly one refresh at the provider for 20 proxied calls on 3 replicas"
    );
}

/// The environment variables a manager binary runs with for `env`.
fn binary_vars(env: &TestEnv, port: u16) -> Vec<(String, String)> {
    let mut c = env.config();
    c.hub_public_url = PUBLIC_URL.to_owned();
    let Value::Object(fields) = serde_json::to_value(&c).unwrap() else {
        unreachable!()
    };
    let mut vars: Vec<(String, String)> = fields
        .into_iter()
        .filter(|(k, _)| k != "port")
        .filter_map(|(k, v)| match v {
            Value::Null => None,
            Value::String(s) => Some((k.to_uppercase(), s)),
            other => Some((k.to_uppercase(), other.to_string())),
        })
        .collect();
    vars.push(("PORT".into(), port.to_string()));
    vars
}

#[tokio::test]
async fn a_rotated_refresh_token_survives_a_crash_between_the_answer_and_the_save() {
    let (env, m) = started().await;
    let (tenant, key) = env.tenant(&m, "crash").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let fake = FakeProvider::start(Kind::QuickBooks).await;
    let (id, answer) = connect(&api, &m, &fake).await;
    answer.ok(200);

    // A replica that dies (abort, as kill -9) right after journaling the answer.
    let port = hub_testkit::binary::free_port();
    let mut vars = binary_vars(&env, port);
    vars.push(("HUB_FAULT".into(), "exit-after-token-journal".into()));
    let vars: Vec<(&str, String)> = vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let mut child = hub_testkit::binary::KillOnDrop(Some(hub_testkit::binary::spawn(
        env!("CARGO_BIN_EXE_integration-manager"),
        &vars,
    )));
    let base = format!("http://127.0.0.1:{port}");
    hub_testkit::binary::wait_ready(&env.http, &base, 60).await;
    let crashed = api
        .at(&Running::external(&base))
        .request(
            Method::POST,
            &format!("/api/v1/integrations/{id}/refresh-oauth"),
        )
        .send()
        .await;
    if let Ok(resp) = crashed {
        let mut c = child.0.take().unwrap();
        let _ = c.kill();
        let out = c.wait_with_output().unwrap();
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        panic!(
            "the replica answered instead of dying: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    let status = eventually(20, "the replica exits", || {
        let c = child.0.as_mut().unwrap();
        let s = c.try_wait().unwrap();
        async move { s }
    })
    .await;
    assert!(!status.success(), "{status:?}");
    assert_eq!(
        fake.refresh_count(),
        1,
        "the provider rotated the refresh token once"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM oauth_token_journal").await,
        1
    );

    // The surviving replica applies the journaled answer, then refreshes with the new token.
    let r = api
        .post_empty(&format!("/api/v1/integrations/{id}/refresh-oauth"))
        .await;
    r.ok(200);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM oauth_token_journal").await,
        0
    );
    let r = api
        .post_empty(&format!("/api/v1/integrations/{id}/refresh-oauth"))
        .await;
    r.ok(200);
    let used: Vec<String> = fake
        .token_requests()
        .iter()
        .filter_map(|r| r.form_param("refresh_token"))
        .collect();
    assert_eq!(used.len(), 2, "{used:?}");
    assert_ne!(
        used[0], used[1],
        "the old refresh token was never used again"
    );
    let row = api.get(&format!("/api/v1/integrations/{id}")).await;
    assert_eq!(row.ok(200)["status"], "ACTIVE");
    let t = api
        .post_empty(&format!("/api/v1/integrations/{id}/test"))
        .await;
    assert_eq!(t.ok(200)["ok"], true, "{}", t.text);
}

#[tokio::test]
async fn invalid_grant_marks_the_integration_pending_auth_with_one_disconnected_event() {
    let (env, m) = started().await;
    let (tenant, key) = env.tenant(&m, "revoked").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let fake = FakeProvider::start(Kind::Xero).await;
    let (id, answer) = connect(&api, &m, &fake).await;
    answer.ok(200);
    fake.revoke_refresh_tokens();
    fake.expire_access_tokens();
    expire(&env, &id).await;
    let (row, stale) = stored(&env, &tenant, &id).await;

    let replicas = [keeper(&env).await, keeper(&env).await];
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (tokens, row, stale) = (replicas[i % 2].clone(), row.clone(), stale.clone());
            tokio::spawn(async move { tokens.after_unauthorized(&row, &stale).await })
        })
        .collect();
    for t in tasks {
        let e = t.await.unwrap().unwrap_err();
        assert!(
            matches!(e, TokenError::Revoked(_) | TokenError::NotConnected(_)),
            "{e:?}"
        );
    }
    assert_eq!(fake.refresh_count(), 1, "one refusal, not ten");
    let body = api.get(&format!("/api/v1/integrations/{id}")).await;
    assert_eq!(body.ok(200)["status"], "PENDING_AUTH");
    api.post_empty(&format!("/api/v1/integrations/{id}/refresh-oauth"))
        .await
        .problem(409, "conflict");
    let disconnected = eventually(20, "integration.disconnected audited", || async {
        let events = api.audit(Some("integration.disconnected")).await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = api.audit(Some("integration.disconnected")).await;
    assert_eq!(events.len(), 1, "{disconnected:?}");

    // Through the route: 409 oauth_revoked.
    let fake2 = FakeProvider::start(Kind::HubSpot).await;
    let (id2, answer) = connect(&api, &m, &fake2).await;
    answer.ok(200);
    fake2.revoke_refresh_tokens();
    let r = api
        .post_empty(&format!("/api/v1/integrations/{id2}/refresh-oauth"))
        .await;
    r.problem(409, "oauth_revoked");
    let row = api.get(&format!("/api/v1/integrations/{id2}")).await;
    assert_eq!(row.ok(200)["status"], "PENDING_AUTH");
}

#[tokio::test]
async fn a_failing_token_endpoint_is_retried_never_disconnects_and_is_not_stormed() {
    let (env, m) = started().await;
    let (tenant, key) = env.tenant(&m, "flaky").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let fake = FakeProvider::start(Kind::QuickBooks).await;
    let (id, answer) = connect(&api, &m, &fake).await;
    answer.ok(200);

    // Two 500s, then the real answer: retried within the one request.
    fake.set_token_mode_for(2, Mode::ServerError);
    let r = api
        .post_empty(&format!("/api/v1/integrations/{id}/refresh-oauth"))
        .await;
    assert!(r.ok(200)["oauth_expires_at"].is_string());
    assert_eq!(fake.refresh_count(), 3);

    // Down for good: 503, still ACTIVE, no disconnect, and callers wait
    // out the backoff instead of calling the token endpoint again.
    fake.set_token_mode(Mode::ServerError);
    let r = api
        .post_empty(&format!("/api/v1/integrations/{id}/refresh-oauth"))
        .await;
    r.problem(503, "token_endpoint_unavailable");
    let calls = fake.refresh_count();
    assert!(calls > 4, "retried: {calls}");
    expire(&env, &id).await;
    let (row, _) = stored(&env, &tenant, &id).await;
    let tokens = keeper(&env).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (tokens, row) = (tokens.clone(), row.clone());
            tokio::spawn(async move { tokens.access(&row).await })
        })
        .collect();
    for t in tasks {
        assert!(matches!(t.await.unwrap(), Err(TokenError::Unavailable(_))));
    }
    assert_eq!(fake.refresh_count(), calls, "no storm while backing off");
    let body = api.get(&format!("/api/v1/integrations/{id}")).await;
    assert_eq!(body.ok(200)["status"], "ACTIVE");
    assert!(api.audit(Some("integration.disconnected")).await.is_empty());

    // Back up: once the backoff has passed, one refresh and the integration goes on.
    fake.set_token_mode(Mode::Normal);
    sqlx::query("UPDATE integrations SET oauth_retry_at = NULL WHERE id = $1")
        .bind(Uuid::parse_str(&id).unwrap())
        .execute(env.pool())
        .await
        .unwrap();
    let fresh = keeper(&env).await;
    let (row, stale) = stored(&env, &tenant, &id).await;
    let token = fresh
        .access(&row)
        .await
        .expect("a token once the endpoint is back");
    assert_ne!(token, stale);
}

#[tokio::test]
async fn the_periodic_refresh_renews_expiring_and_aging_connections_once_across_replicas() {
    let (env, m) = started().await;
    let (tenant, key) = env.tenant(&m, "periodic").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let fake = FakeProvider::start(Kind::QuickBooks).await;
    let (id, answer) = connect(&api, &m, &fake).await;
    answer.ok(200);
    let (a, b) = (keeper(&env).await, keeper(&env).await);

    // Nothing is due right after connecting.
    a.refresh_due(100).await.unwrap();
    assert_eq!(fake.refresh_count(), 0);

    // Expiring within 5 minutes: two replicas' passes refresh it once.
    expire(&env, &id).await;
    let (ra, rb) = tokio::join!(a.refresh_due(100), b.refresh_due(100));
    assert!(ra.unwrap() + rb.unwrap() >= 1);
    assert_eq!(fake.refresh_count(), 1);

    // Idle, its access token fine, but 80% of the refresh token's life gone.
    sqlx::query(
        "UPDATE integrations SET oauth_expires_at = NOW() + INTERVAL '1 hour',
             oauth_refreshed_at = NOW() - INTERVAL '90 days',
             oauth_refresh_expires_at = NOW() + INTERVAL '10 days' WHERE id = $1",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .execute(env.pool())
    .await
    .unwrap();
    assert_eq!(a.refresh_due(100).await.unwrap(), 1);
    assert_eq!(fake.refresh_count(), 2);
    // Renewed: its new refresh token has its whole life ahead.
    assert_eq!(b.refresh_due(100).await.unwrap(), 0);
    assert_eq!(fake.refresh_count(), 2);
    let t = api
        .post_empty(&format!("/api/v1/integrations/{id}/test"))
        .await;
    assert_eq!(t.ok(200)["ok"], true, "{}", t.text);
}
