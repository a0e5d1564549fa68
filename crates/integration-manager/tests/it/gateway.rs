//! The API gateway (issue 27): the proxy against the fake providers —
//! credentials injected, the answer streamed back with the hub's headers,
//! paused and foreign integrations refused, retries honoring Retry-After
//! (and never repeating a POST without an Idempotency-Key), the circuit
//! breaker, rate limits exact across three replicas with their queue and
//! high priority, and a provider's own throttling answer.

use crate::manager;
use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind, Mode};
use hub_testkit::{Running, TenantApi, TestEnv, eventually};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A tenant with an ACTIVE integration of `fake`'s provider.
async fn connected(env: &TestEnv, m: &Running, fake: &FakeProvider) -> (TenantApi, String) {
    let (tenant, key) = env.tenant(m, "gw").await;
    let api = TenantApi::new(env, m, &tenant, &key);
    let credentials = match fake.kind() {
        Kind::NewsApi | Kind::Samsara => json!({ "api_key": DEFAULT_TOKEN }),
        _ => json!({ "access_token": DEFAULT_TOKEN }),
    };
    let created = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": fake.kind().code(), "name": "gw", "config": fake.config(),
                   "credentials": credentials, "max_retries": 2}),
        )
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().to_owned();
    api.post_empty(&format!("/api/v1/integrations/{id}/enable"))
        .await
        .ok(200);
    fake.clear_requests();
    (api, id)
}

fn proxy(id: &str, rest: &str) -> String {
    format!("/api/v1/integrations/{id}/proxy/{rest}")
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn the_proxy_injects_credentials_and_passes_the_answer_back() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let (api, id) = connected(&env, &m, &fake).await;

    let r = api
        .request(Method::GET, &proxy(&id, "crm/v3/objects/contacts?limit=2"))
        .header("Accept", "application/json")
        .header("X-Custom", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "x-hub-request-id").is_some_and(|v| v.len() == 36));
    assert_eq!(header(&r, "x-hub-attempts"), Some("1"));
    let remaining: u32 = header(&r, "x-ratelimit-remaining")
        .unwrap()
        .parse()
        .unwrap();
    assert!(remaining < 100, "HubSpot allows 100 per 10 s: {remaining}");
    let body: Value = r.json().await.unwrap();
    assert!(body["results"].as_array().is_some(), "{body}");

    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    let s = &sent[0];
    assert_eq!(s.path, "/crm/v3/objects/contacts");
    assert_eq!(s.query_param("limit").as_deref(), Some("2"));
    assert_eq!(
        s.header("authorization"),
        Some(format!("Bearer {DEFAULT_TOKEN}").as_str())
    );
    assert_eq!(s.header("x-custom"), Some("kept"));
    // The hub side of the call stays with the hub.
    assert_eq!(s.header("x-tenant-id"), None);
    assert!(!s.headers.iter().any(|(_, v)| v.contains(&api_key_of(&api))));

    // A provider's error is the provider's, passed through.
    let r = api.get(&proxy(&id, "crm/v3/objects/nothing-here")).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["category"], "VALIDATION_ERROR");
}

fn api_key_of(api: &TenantApi) -> String {
    let r = api.request(Method::GET, "/x").build().unwrap();
    r.headers()["authorization"]
        .to_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned()
}

#[tokio::test]
async fn paused_foreign_and_unknown_integrations_are_refused() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let fake = FakeProvider::start(Kind::NewsApi).await;
    let (api, id) = connected(&env, &m, &fake).await;

    let (other_tenant, other_key) = env.tenant(&m, "other").await;
    let other = TenantApi::new(&env, &m, &other_tenant, &other_key);
    other
        .get(&proxy(&id, "top-headlines?country=us"))
        .await
        .problem(404, "not_found");
    api.get(&proxy(&uuid::Uuid::now_v7().to_string(), "x"))
        .await
        .problem(404, "not_found");

    api.post_empty(&format!("/api/v1/integrations/{id}/disable"))
        .await
        .ok(200);
    // The gateway trusts what it loaded for 2 s; the disabling process forgets at once.
    let r = api.get(&proxy(&id, "top-headlines?country=us")).await;
    r.problem(409, "integration_not_callable");
    assert!(fake.requests().is_empty(), "nothing reached the provider");
}

#[tokio::test]
async fn retries_honor_retry_after_and_spare_unsafe_methods() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let (api, id) = connected(&env, &m, &fake).await;

    // Two throttling answers asking for 1 s each, then success.
    fake.set_mode_for(
        2,
        Mode::RateLimited {
            retry_after_secs: 1,
        },
    );
    let started = Instant::now();
    let r = api
        .request(Method::GET, &proxy(&id, "crm/v3/objects/contacts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-hub-attempts"), Some("3"));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.requests().len(), 3);
    fake.clear_requests();

    // A POST is not repeated without an Idempotency-Key...
    fake.set_mode_for(1, Mode::ServerError);
    let r = api
        .request(Method::POST, &proxy(&id, "crm/v3/objects/contacts"))
        .json(&json!({"properties": {"email": "a@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(header(&r, "x-hub-attempts"), Some("1"));
    assert_eq!(fake.requests().len(), 1);
    fake.clear_requests();
    // ... and is with one (which goes to the provider too).
    fake.set_mode_for(1, Mode::ServerError);
    let r = api
        .request(Method::POST, &proxy(&id, "crm/v3/objects/contacts"))
        .header("Idempotency-Key", "order-17")
        .json(&json!({"properties": {"email": "a@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-hub-attempts"), Some("2"));
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(
        fake.requests()[1].header("idempotency-key"),
        Some("order-17")
    );
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_probes_and_closes() {
    let env = TestEnv::new().await;
    let mut config = env.config();
    config.circuit_failure_threshold = 3;
    config.circuit_timeout_seconds = 2;
    let m = env.start(integration_manager::build, config).await;
    let fake = FakeProvider::start(Kind::NewsApi).await;
    let (api, id) = connected(&env, &m, &fake).await;
    api.put(
        &format!("/api/v1/integrations/{id}"),
        json!({"max_retries": 0}),
    )
    .await
    .ok(200);

    fake.set_mode(Mode::ServerError);
    for _ in 0..3 {
        let r = api.get(&proxy(&id, "top-headlines?country=us")).await;
        assert_eq!(r.status, 500, "{:?}", r.body);
    }
    let r = api
        .request(Method::GET, &proxy(&id, "top-headlines?country=us"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let retry_after: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(
        fake.requests().len(),
        3,
        "an open breaker does not call the provider"
    );
    let health = api.get(&format!("/api/v1/integrations/{id}/health")).await;
    assert_eq!(health.ok(200)["circuit_state"], "OPEN");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    fake.set_mode(Mode::Normal);
    // The probe and two more successes close it.
    for _ in 0..3 {
        let r = api.get(&proxy(&id, "top-headlines?country=us")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let health = api.get(&format!("/api/v1/integrations/{id}/health")).await;
    assert_eq!(health.ok(200)["circuit_state"], "CLOSED");
    let kinds: Vec<String> = eventually(10, "circuit events", || async {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT event_type FROM audit_log WHERE event_type LIKE 'circuit.%' ORDER BY id",
        )
        .fetch_all(env.pool())
        .await
        .ok()?;
        (rows.len() >= 2).then(|| rows.into_iter().map(|r| r.0).collect())
    })
    .await;
    assert_eq!(kinds, ["circuit.opened", "circuit.closed"]);
}

/// Sleeps until just after the start of a `window`-second window (the hub
/// counts windows aligned to the epoch).
async fn at_window_start(window: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = Duration::from_millis((now.as_millis() % (u128::from(window) * 1000)) as u64);
    tokio::time::sleep(Duration::from_secs(window) - into + Duration::from_millis(100)).await;
}

#[tokio::test]
async fn the_rate_limit_holds_across_three_replicas() {
    let env = TestEnv::new().await;
    let mut config = env.config();
    config.gateway_queue_size = 1;
    config.gateway_max_wait_ms = 10_000;
    let replicas = [
        env.start(integration_manager::build, config.clone()).await,
        env.start(integration_manager::build, config.clone()).await,
        env.start(integration_manager::build, config).await,
    ];
    let fake = FakeProvider::start(Kind::NewsApi).await;
    let (api, id) = connected(&env, &replicas[0], &fake).await;
    let limited = api
        .put(
            &format!("/api/v1/integrations/{id}"),
            json!({"rate_limit_requests": 3, "rate_limit_window_seconds": 4}),
        )
        .await;
    assert_eq!(limited.ok(200)["rate_limit_requests"], 3);
    let health = api.get(&format!("/api/v1/integrations/{id}/health")).await;
    let limit = &health.ok(200)["rate_limit"];
    assert_eq!(
        (limit["requests"].as_u64(), limit["window_seconds"].as_u64()),
        (Some(3), Some(4))
    );
    assert_eq!(limit["overridden"], true);
    api.put(
        &format!("/api/v1/integrations/{id}"),
        json!({"rate_limit_requests": 3}),
    )
    .await
    .problem(422, "validation_failed");
    let at = |i: usize| api.at(&replicas[i]);
    let path = proxy(&id, "top-headlines?country=us");
    tokio::time::sleep(Duration::from_millis(2100)).await; // the loaded integration is re-read

    at_window_start(4).await;
    let started = Instant::now();
    for i in 0..3 {
        assert_eq!(at(i).get(&path).await.status, 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the first three go at once"
    );

    // The fourth waits for the next window; with it queued, a fifth on the
    // same replica finds the queue full; high priority skips the queue.
    let queued = {
        let a = at(0);
        let path = path.clone();
        tokio::spawn(async move {
            let r = a.request(Method::GET, &path).send().await.unwrap();
            (r.status().as_u16(), Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = at(0).request(Method::GET, &path).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").is_some());
    let r = at(1)
        .request(Method::GET, &path)
        .header("X-Hub-Priority", "high")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "high priority does not queue");
    let high_done = Instant::now();
    let (status, done) = queued.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        done > high_done,
        "the queued request went after the high-priority one"
    );
    assert!(
        done - started >= Duration::from_millis(3500),
        "{:?}",
        done - started
    );

    let counted: Vec<(i32, i32)> = sqlx::query_as(
        "SELECT request_count, max_requests FROM rate_limit_buckets
          WHERE integration_id = $1::uuid AND bucket_key = 'window:4'
          ORDER BY window_start",
    )
    .bind(&id)
    .fetch_all(env.pool())
    .await
    .unwrap();
    assert_eq!(
        counted[0],
        (4, 3),
        "three plus the high-priority one: {counted:?}"
    );
    assert_eq!(counted[1].0, 1, "{counted:?}");
    assert_eq!(fake.requests().len(), 5);
}

#[tokio::test]
async fn a_providers_throttling_answer_holds_the_next_calls() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let (api, id) = connected(&env, &m, &fake).await;
    api.put(
        &format!("/api/v1/integrations/{id}"),
        json!({"max_retries": 0}),
    )
    .await
    .ok(200);

    fake.set_mode_for(
        1,
        Mode::RateLimited {
            retry_after_secs: 2,
        },
    );
    let r = api.get(&proxy(&id, "crm/v3/objects/contacts")).await;
    assert_eq!(r.status, 429, "the provider's answer, passed through");
    let blocked: i64 = env
        .scalar(
            "SELECT COUNT(*) FROM rate_limit_blocks WHERE integration_id = $1::uuid AND blocked_until > NOW()",
            id.clone(),
        )
        .await;
    assert_eq!(blocked, 1);
    let health = api.get(&format!("/api/v1/integrations/{id}/health")).await;
    assert!(
        health.ok(200)["rate_limit"]["provider_blocked_until"].is_string(),
        "{}",
        health.text
    );
    let started = Instant::now();
    let r = api.get(&proxy(&id, "crm/v3/objects/contacts")).await;
    assert_eq!(r.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn every_attempt_is_logged_linked_and_without_secrets() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let token = "hubspot-access-token-7f3a9c21";
    fake.set_valid_token(token);
    let (tenant, key) = env.tenant(&m, "logged").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let created = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "HUBSPOT", "name": "crm", "config": fake.config(),
                   "credentials": {"access_token": token}}),
        )
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().to_owned();
    api.post_empty(&format!("/api/v1/integrations/{id}/enable"))
        .await
        .ok(200);

    let password = "client-password-51d2e8";
    fake.set_mode_for(1, Mode::ServerError);
    let r = api
        .request(
            Method::GET,
            &proxy(&id, "crm/v3/objects/contacts?api_key=query-secret-9e8d7c"),
        )
        // (The fake takes only GETs; a body with a secret in it all the same.)
        .json(&json!({"properties": {"email": "a@example.com"}, "password": password}))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "retried after a 500: {}",
        r.status()
    );
    let request_id = header(&r, "x-hub-request-id").unwrap().to_owned();
    assert_eq!(header(&r, "x-hub-attempts"), Some("2"));
    drop(r);

    // Both attempts, the second retrying the first, under the request id.
    let rows: Vec<(uuid::Uuid, Option<uuid::Uuid>, i32, Option<i32>)> =
        eventually(10, "two attempt rows", || async {
            let rows: Vec<(uuid::Uuid, Option<uuid::Uuid>, i32, Option<i32>)> = sqlx::query_as(
                "SELECT id, retry_of, attempt, response_status FROM api_request_logs
                  WHERE correlation_id = $1 ORDER BY attempt",
            )
            .bind(&request_id)
            .fetch_all(env.pool())
            .await
            .ok()?;
            (rows.len() == 2).then_some(rows)
        })
        .await;
    assert_eq!((rows[0].2, rows[0].3, rows[0].1), (1, Some(500), None));
    assert_eq!((rows[1].2, rows[1].1), (2, Some(rows[0].0)));
    assert!(rows[1].3.is_some_and(|s| s < 300), "{rows:?}");
    let found = api
        .get(&format!(
            "/api/v1/api-logs/search?correlation_id={request_id}"
        ))
        .await;
    assert_eq!(found.ok(200)["data"].as_array().unwrap().len(), 2);

    // No secret in any column of any row, searched for by value.
    let all: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(l)::text FROM api_request_logs l")
            .fetch_all(env.pool())
            .await
            .unwrap();
    assert!(all.len() >= 3, "the connection test and both attempts");
    for secret in [token, password, "query-secret-9e8d7c", key.as_str()] {
        for row in &all {
            assert!(!row.contains(secret), "{secret} in {row}");
        }
    }
}

#[tokio::test]
async fn a_body_over_the_proxy_limit_is_a_413_problem() {
    let env = TestEnv::new().await;
    let mut config = env.config();
    config.gateway_max_body = 1024;
    let m = env.start(integration_manager::build, config).await;
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let (api, id) = connected(&env, &m, &fake).await;
    let r = api
        .request(Method::POST, &proxy(&id, "crm/v3/objects/contacts"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(header(&r, "content-type"), Some("application/problem+json"));
    assert!(fake.requests().is_empty());
}
