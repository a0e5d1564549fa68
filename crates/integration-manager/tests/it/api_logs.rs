//! Request logs (issue 27, item 6): the batched, redacted recorder, the
//! search API with every filter and cursor paging, tenant isolation, body
//! caps, inbound webhooks logged, and the hourly usage rows `…/health` and
//! `…/stats` show.

use crate::started;
use hub_gateway::logs::{
    Bytes, Direction, Exchange, HeaderMap, HeaderValue, LogSettings, MAX_BODY, Recorder,
};
use hub_testkit::{Running, TenantApi, TestEnv, eventually};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

const ALL: LogSettings = LogSettings {
    request_bodies: true,
    response_bodies: true,
    retention_days: 30,
};

async fn pool(env: &TestEnv) -> sqlx::PgPool {
    sqlx::PgPool::connect(&env.db.url).await.expect("pool")
}

/// A tenant with one HubSpot integration: `(api, tenant id, integration id)`.
async fn tenant_with_integration(
    env: &TestEnv,
    m: &Running,
    slug: &str,
) -> (TenantApi, Uuid, Uuid) {
    let (tenant, key) = env.tenant(m, slug).await;
    let api = TenantApi::new(env, m, &tenant, &key);
    let created = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "HUBSPOT", "name": "CRM"}),
        )
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().parse().unwrap();
    (api, tenant.parse().unwrap(), id)
}

fn exchange(tenant: Uuid, integration: Option<Uuid>) -> Exchange {
    Exchange {
        id: Uuid::now_v7(),
        tenant_id: tenant,
        integration_id: integration,
        direction: Direction::Outbound,
        method: "GET".into(),
        url: "https://api.example.com/crm/v3/objects/contacts?limit=10".into(),
        request_headers: HeaderMap::new(),
        request_body: Bytes::new(),
        response_status: Some(200),
        response_headers: None,
        response_body: Bytes::from_static(br#"{"results":[]}"#),
        response_size: None,
        latency: Duration::from_millis(7),
        correlation_id: None,
        source_ip: None,
        error: None,
        timed_out: false,
        retry_of: None,
        attempt: 1,
        secrets: vec![],
        secret_names: vec![],
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn no_planted_secret_reaches_any_column() {
    let (env, m) = started().await;
    let (api, tenant, integration) = tenant_with_integration(&env, &m, "acme").await;
    let pool = pool(&env).await;
    let (recorder, done) = Recorder::spawn(pool.clone(), ALL);

    let secrets = [
        "query-key-5a1b",
        "bearer-tok-7c2d",
        "cookie-val-9e3f",
        "provider-hdr-1a2b",
        "json-pass-3c4d",
        "json-deep-5e6f",
        "form-secret-7a8b",
        "form-code-9c0d",
        "value-only-2e1f",
        "resp-token-4a3b",
    ];
    let mut e = exchange(tenant, Some(integration));
    e.method = "POST".into();
    e.url = format!(
        "https://user:{}@api.example.com/oauth/token?api_key={}&hapikey={}&page=2",
        secrets[8], secrets[0], secrets[3]
    );
    let h = &mut e.request_headers;
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", secrets[1])).unwrap(),
    );
    h.insert(
        "cookie",
        HeaderValue::from_str(&format!("sid={}", secrets[2])).unwrap(),
    );
    h.insert("hapikey", HeaderValue::from_str(secrets[3]).unwrap());
    h.insert(
        "x-note",
        HeaderValue::from_str(&format!("echo {}", secrets[8])).unwrap(),
    );
    h.insert("content-type", HeaderValue::from_static("application/json"));
    e.request_body = Bytes::from(format!(
        r#"{{"user":"a","password":"{}","nested":{{"list":[{{"client_secret":"{}"}}]}},"note":"{}"}}"#,
        secrets[4], secrets[5], secrets[8]
    ));
    e.response_body = Bytes::from(format!(r#"{{"access_token":"{}","ok":true}}"#, secrets[9]));
    e.error = Some(format!("provider echoed {}", secrets[8]));
    e.secrets = vec![secrets[8].to_owned()];
    e.secret_names = vec!["hapikey".into()];
    e.correlation_id = Some("corr-redaction".into());
    recorder.record(e).await;

    let mut form = exchange(tenant, Some(integration));
    form.method = "POST".into();
    form.request_headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    form.request_body = Bytes::from(format!(
        "grant_type=authorization_code&client_secret={}&code={}&redirect_uri=x",
        secrets[6], secrets[7]
    ));
    form.correlation_id = Some("corr-redaction".into());
    recorder.record(form).await;
    recorder.flush().await;

    for s in secrets {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_request_logs l WHERE l::text LIKE '%' || $1 || '%'",
        )
        .bind(s)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(n, 0, "{s} stored in a log row");
    }
    // Through the API: both rows, in full, without any secret.
    let page = api
        .get("/api/v1/api-logs/search?correlation_id=corr-redaction")
        .await;
    let rows = ids(page.ok(200));
    assert_eq!(rows.len(), 2);
    for id in rows {
        let one = api.get(&format!("/api/v1/api-logs/{id}")).await;
        let body = one.ok(200);
        for s in secrets {
            assert!(!one.text.contains(s), "{s} in {}", one.text);
        }
        assert!(one.text.contains("[redacted]"));
        if body["method"] == "POST" && body["body"].as_str().unwrap().starts_with('{') {
            assert_eq!(body["headers"]["authorization"], "[redacted]");
            assert_eq!(body["query_params"]["page"], "2");
        }
    }
    recorder.stop().await;
    done.await;
}

#[tokio::test]
async fn bodies_are_capped_binary_is_marked_and_settings_are_honoured() {
    let (env, m) = started().await;
    let (api, tenant, integration) = tenant_with_integration(&env, &m, "acme").await;
    let pool = pool(&env).await;
    let (recorder, done) = Recorder::spawn(pool.clone(), ALL);
    let mut big = exchange(tenant, Some(integration));
    big.request_body = Bytes::from("x".repeat(100_000));
    big.response_body = Bytes::from("y".repeat(MAX_BODY));
    big.response_size = Some(1_000_000);
    big.correlation_id = Some("big".into());
    recorder.record(big).await;
    let mut binary = exchange(tenant, Some(integration));
    binary.request_body = Bytes::from(vec![0xff, 0xfe, 0, 1, 2]);
    binary.correlation_id = Some("bin".into());
    recorder.record(binary).await;
    recorder.flush().await;

    let one = |c: &'static str| {
        let api = &api;
        async move {
            let p = api
                .get(&format!("/api/v1/api-logs/search?correlation_id={c}"))
                .await;
            let id = ids(p.ok(200)).remove(0);
            api.get(&format!("/api/v1/api-logs/{id}")).await.body
        }
    };
    let b = one("big").await;
    assert_eq!(b["body"].as_str().unwrap().len(), MAX_BODY);
    assert_eq!(b["body_size"], 100_000);
    assert_eq!(b["body_truncated"], 100_000 - MAX_BODY as i64);
    assert_eq!(b["response_size"], 1_000_000);
    assert_eq!(b["response_truncated"], 1_000_000 - MAX_BODY as i64);
    let b = one("bin").await;
    assert_eq!(b["body"], "[binary 5 bytes]");
    assert_eq!(b["body_size"], 5);

    // Bodies off: nothing stored, sizes still real.
    let (quiet, quiet_done) = Recorder::spawn(
        pool.clone(),
        LogSettings {
            request_bodies: false,
            response_bodies: false,
            retention_days: 30,
        },
    );
    let mut e = exchange(tenant, Some(integration));
    e.request_body = Bytes::from_static(b"hello");
    e.correlation_id = Some("quiet".into());
    quiet.record(e).await;
    quiet.flush().await;
    let b = one("quiet").await;
    assert_eq!(b["body"], Value::Null);
    assert_eq!(b["response_body"], Value::Null);
    assert_eq!(b["body_size"], 5);
    for (r, d) in [(recorder, done), (quiet, quiet_done)] {
        r.stop().await;
        d.await;
    }
}

/// A seeded row: direction, method, path, status, timed out, correlation id.
type Spec = (
    Direction,
    &'static str,
    &'static str,
    Option<u16>,
    bool,
    Option<&'static str>,
);

/// Rows for the filters: every combination the search checks.
async fn seed(recorder: &Recorder, tenant: Uuid, integration: Uuid) -> Vec<Uuid> {
    let mut made = Vec::new();
    let specs: &[Spec] = &[
        (
            Direction::Outbound,
            "GET",
            "/crm/v3/objects/contacts",
            Some(200),
            false,
            Some("c-1"),
        ),
        (
            Direction::Outbound,
            "POST",
            "/crm/v3/objects/deals",
            Some(201),
            false,
            None,
        ),
        (
            Direction::Outbound,
            "GET",
            "/crm/v3/objects/contacts/9",
            Some(404),
            false,
            Some("c-2"),
        ),
        (
            Direction::Outbound,
            "GET",
            "/crm/v3/owners",
            Some(503),
            false,
            Some("c-2"),
        ),
        (
            Direction::Outbound,
            "GET",
            "/crm/v3/owners",
            None,
            true,
            Some("c-2"),
        ),
        (
            Direction::Outbound,
            "DELETE",
            "/crm/v3/objects/deals/1",
            None,
            false,
            None,
        ),
        (
            Direction::Inbound,
            "POST",
            "/webhooks/acme/hs",
            Some(200),
            false,
            None,
        ),
    ];
    for (dir, method, path, status, timed_out, corr) in specs {
        let mut e = exchange(tenant, Some(integration));
        e.direction = *dir;
        e.method = (*method).into();
        e.url = format!("https://api.example.com{path}");
        e.response_status = *status;
        e.timed_out = *timed_out;
        e.correlation_id = corr.map(str::to_owned);
        e.response_body = Bytes::from(format!(
            r#"{{"needle":"{method}-{}"}}"#,
            status.unwrap_or(0)
        ));
        made.push(e.id);
        recorder.record(e).await;
    }
    recorder.flush().await;
    made
}

#[tokio::test]
async fn every_search_filter_paging_and_tenant_isolation() {
    let (env, m) = started().await;
    let (api, tenant, integration) = tenant_with_integration(&env, &m, "acme").await;
    let (other, other_tenant, other_integration) = tenant_with_integration(&env, &m, "other").await;
    let pool = pool(&env).await;
    let (recorder, done) = Recorder::spawn(pool.clone(), ALL);
    let before = chrono::Utc::now();
    let made = seed(&recorder, tenant, integration).await;
    let theirs = seed(&recorder, other_tenant, other_integration).await;
    let n = |v: &[usize]| -> Vec<String> {
        let mut ids: Vec<String> = v.iter().map(|i| made[*i].to_string()).collect();
        ids.sort();
        ids.reverse();
        ids
    };
    let from = urlencode(&before.to_rfc3339());
    let cases: Vec<(String, Vec<String>)> = vec![
        ("".into(), n(&[0, 1, 2, 3, 4, 5, 6])),
        (
            format!("integration_id={integration}"),
            n(&[0, 1, 2, 3, 4, 5, 6]),
        ),
        ("direction=inbound".into(), n(&[6])),
        ("direction=OUTBOUND&method=get".into(), n(&[0, 2, 3, 4])),
        ("method=DELETE".into(), n(&[5])),
        ("status=SUCCESS".into(), n(&[0, 1, 6])),
        ("status=client_error".into(), n(&[2])),
        ("status=SERVER_ERROR".into(), n(&[3, 5])),
        ("status=TIMEOUT".into(), n(&[4])),
        ("status_code=404".into(), n(&[2])),
        ("status_code_min=400".into(), n(&[2, 3])),
        (
            "status_code_min=200&status_code_max=299".into(),
            n(&[0, 1, 6]),
        ),
        ("path_prefix=/crm/v3/objects".into(), n(&[0, 1, 2, 5])),
        ("path_prefix=/crm/v3/objects/contacts".into(), n(&[0, 2])),
        ("correlation_id=c-2".into(), n(&[2, 3, 4])),
        (format!("from={from}"), n(&[0, 1, 2, 3, 4, 5, 6])),
        (format!("to={from}"), vec![]),
        ("q=POST-201".into(), n(&[1])),
        ("q=objects/deals".into(), n(&[1, 5])),
        (
            "q=needle&status=SUCCESS&direction=OUTBOUND".into(),
            n(&[0, 1]),
        ),
    ];
    for (query, want) in &cases {
        let page = api.get(&format!("/api/v1/api-logs/search?{query}")).await;
        assert_eq!(&ids(page.ok(200)), want, "search?{query}");
        let page = api
            .get(&format!("/api/v1/integrations/{integration}/logs?{query}"))
            .await;
        assert_eq!(&ids(page.ok(200)), want, "integrations/{{id}}/logs?{query}");
    }

    // Paging: three pages of 3, 3 and 1, newest first, no overlap.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page = api
            .get(&format!("/api/v1/api-logs/search?limit=3{q}"))
            .await;
        let body = page.ok(200).clone();
        seen.extend(ids(&body));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, n(&[0, 1, 2, 3, 4, 5, 6]));

    // Isolation: another tenant's rows, row ids and integration are not ours.
    let page = api.get("/api/v1/api-logs/search?limit=200").await;
    let all = ids(page.ok(200));
    assert!(theirs.iter().all(|t| !all.contains(&t.to_string())));
    api.get(&format!("/api/v1/api-logs/{}", theirs[0]))
        .await
        .problem(404, "not_found");
    api.get(&format!(
        "/api/v1/api-logs/search?integration_id={other_integration}"
    ))
    .await
    .problem(404, "not_found");
    api.get(&format!("/api/v1/integrations/{other_integration}/logs"))
        .await
        .problem(404, "not_found");
    other
        .get(&format!("/api/v1/api-logs/{}", made[0]))
        .await
        .problem(404, "not_found");
    api.get(&format!("/api/v1/api-logs/{}", made[0]))
        .await
        .ok(200);

    // Bad filters name themselves.
    for (query, field) in [
        ("status=BROKEN", "status"),
        ("direction=sideways", "direction"),
        ("status_code=999", "status_code"),
        ("status_code_min=500&status_code_max=400", "status_code_min"),
        ("from=yesterday", "from"),
        ("integration_id=nope", "integration_id"),
        ("q=ab", "q"),
        ("limit=500", "limit"),
        ("cursor=garbage", "cursor"),
    ] {
        let a = api.get(&format!("/api/v1/api-logs/search?{query}")).await;
        let p = if field == "limit" {
            a.problem(422, "validation_failed")
        } else {
            a.problem(400, "invalid_parameter")
        };
        assert!(
            p["detail"].as_str().unwrap().contains(field),
            "{query}: {}",
            a.text
        );
    }
    let a = api.get("/api/v1/api-logs/search?status=BROKEN").await;
    assert!(
        a.text
            .contains("SUCCESS, CLIENT_ERROR, SERVER_ERROR or TIMEOUT"),
        "{}",
        a.text
    );
    recorder.stop().await;
    done.await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn usage_rows_count_outbound_calls_for_health_and_stats() {
    let (env, m) = started().await;
    let (api, tenant, integration) = tenant_with_integration(&env, &m, "acme").await;
    let pool = pool(&env).await;
    let (recorder, done) = Recorder::spawn(pool.clone(), ALL);
    for i in 0..25 {
        let mut e = exchange(tenant, Some(integration));
        if i % 5 == 0 {
            e.direction = Direction::Inbound;
        }
        recorder.record(e).await;
    }
    // A row for an unknown integration writes its log row, not a usage row.
    recorder
        .record(exchange(tenant, Some(Uuid::now_v7())))
        .await;
    recorder.flush().await;
    let health = api
        .get(&format!("/api/v1/integrations/{integration}/health"))
        .await;
    assert_eq!(health.ok(200)["rate_limit"]["used_this_hour"], 20);
    let stats = api
        .get(&format!("/api/v1/integrations/{integration}/stats"))
        .await;
    let usage = stats.ok(200)["usage"].as_array().unwrap().clone();
    assert_eq!(usage.len(), 1, "{}", stats.text);
    assert_eq!(usage[0]["requests"], 20);
    assert_eq!(stats.body["calls"], 25);
    recorder.stop().await;
    done.await;
}

#[tokio::test]
async fn the_recorder_writes_ten_thousand_rows_a_second() {
    let (env, m) = started().await;
    let (_api, tenant, integration) = tenant_with_integration(&env, &m, "acme").await;
    let pool = pool(&env).await;
    let (recorder, done) = Recorder::spawn(pool.clone(), ALL);
    let total = 30_000;
    let mut e = exchange(tenant, Some(integration));
    e.request_headers
        .insert("authorization", HeaderValue::from_static("Bearer abcdefgh"));
    e.secrets = vec!["abcdefgh".into()];
    let started = Instant::now();
    let producers: Vec<_> = (0..4)
        .map(|_| {
            let (recorder, e) = (recorder.clone(), e.clone());
            tokio::spawn(async move {
                for _ in 0..total / 4 {
                    let mut e = e.clone();
                    e.id = Uuid::now_v7();
                    recorder.record(e).await;
                }
            })
        })
        .collect();
    for p in producers {
        p.await.unwrap();
    }
    recorder.flush().await;
    let rate = total as f64 / started.elapsed().as_secs_f64();
    println!(
        "request log writer: {total} rows in {:?}: {rate:.0} rows/s",
        started.elapsed()
    );
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_request_logs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, total as i64);
    // Measured alone on the 2-core box; the suite runs tests side by side,
    // so the assertion leaves room.
    assert!(rate > 3_000.0, "{rate:.0} rows/s");
    recorder.stop().await;
    done.await;
}

#[tokio::test]
async fn inbound_webhooks_are_logged_with_their_answer_and_source() {
    let (env, m) = started().await;
    let (api, _tenant, integration) = tenant_with_integration(&env, &m, "acme").await;
    let tenant_slug = "acme";
    let ep = api
        .post(
            "/api/v1/webhooks/endpoints",
            json!({"endpoint_path": "hs", "signature_algorithm": "none", "integration_id": integration}),
        )
        .await;
    ep.ok(201);
    let url = m.url(&format!(
        "/webhooks/{tenant_slug}/hs?token=inbound-qs-secret"
    ));
    let sent = env
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("authorization", "Bearer inbound-hdr-secret")
        .body(r#"{"event":"contact.created","password":"inbound-body-secret"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let rows = eventually(10, "the inbound request is logged", || async {
        let p = api.get("/api/v1/api-logs/search?direction=INBOUND").await;
        let rows = p.ok(200)["data"].as_array().unwrap().clone();
        (!rows.is_empty()).then_some(rows)
    })
    .await;
    let row = &rows[0];
    assert_eq!(row["method"], "POST");
    assert_eq!(row["response_status"], 200);
    assert_eq!(row["status"], "SUCCESS");
    assert_eq!(row["integration_id"], integration.to_string());
    assert_eq!(row["source_ip"], "127.0.0.1");
    assert_eq!(row["path"], "/webhooks/acme/hs");
    let full = api
        .get(&format!("/api/v1/api-logs/{}", row["id"].as_str().unwrap()))
        .await;
    for s in [
        "inbound-qs-secret",
        "inbound-hdr-secret",
        "inbound-body-secret",
    ] {
        assert!(!full.text.contains(s), "{s} in {}", full.text);
    }
    assert!(full.text.contains("contact.created"));
    // A refused request (unknown endpoint: no tenant to log for) is not
    // logged; a verified endpoint's refusal is.
    api.post(
        "/api/v1/webhooks/endpoints",
        json!({"endpoint_path": "signed", "signature_algorithm": "hmac-sha256", "secret_key": "whsec-abcdefgh12345678"}),
    )
    .await
    .ok(201);
    let refused = env
        .http
        .post(m.url(&format!("/webhooks/{tenant_slug}/signed")))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    eventually(10, "the refused request is logged", || async {
        let p = api
            .get("/api/v1/api-logs/search?direction=INBOUND&status=CLIENT_ERROR")
            .await;
        let rows = p.ok(200)["data"].as_array().unwrap().clone();
        (rows.len() == 1 && rows[0]["response_status"] == 401).then_some(())
    })
    .await;
}
