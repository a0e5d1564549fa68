//! The operator API.

use crate::manager;
use hub_testkit::TestEnv;
use hub_testkit::service::ADMIN_TOKEN;
use serde_json::{Value, json};

#[tokio::test]
async fn tenants_and_keys_lifecycle() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let created = env
        .http
        .post(m.url("/api/v1/admin/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "Acme Freight", "slug": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let t: Value = created.json().await.unwrap();
    assert_eq!(t["slug"], "acme");
    assert_eq!(t["status"], "ACTIVE");
    let id = t["id"].as_str().unwrap();

    // Duplicate slug → 409 naming the field.
    let dup = env
        .http
        .post(m.url("/api/v1/admin/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "Other", "slug": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    let p: Value = dup.json().await.unwrap();
    assert_eq!(p["code"], "conflict");
    assert!(p["detail"].as_str().unwrap().contains("slug"));

    // Lookup by slug and by id.
    let found: Value = env
        .http
        .get(m.url("/api/v1/admin/tenants?slug=acme"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    assert_eq!(found["data"][0]["id"], id);
    let one = env
        .http
        .get(m.url(&format!("/api/v1/admin/tenants/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let missing = env
        .http
        .get(m.url(&format!("/api/v1/admin/tenants/{}", uuid::Uuid::now_v7())))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // A key is shown once; listing shows only metadata.
    let k: Value = env
        .http
        .post(m.url(&format!("/api/v1/admin/tenants/{id}/api-keys")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = k["key"].as_str().unwrap();
    assert!(secret.starts_with("hub_"));
    let listed = env
        .http
        .get(m.url(&format!("/api/v1/admin/tenants/{id}/api-keys")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(secret), "the key is never shown again");
    assert!(listed.contains(k["prefix"].as_str().unwrap()));

    // Revoking a key of another tenant is a 404.
    let (other, _) = env.tenant(&m, "other").await;
    let kid = k["id"].as_str().unwrap();
    let cross = env
        .http
        .delete(m.url(&format!("/api/v1/admin/tenants/{other}/api-keys/{kid}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 404);
    m.stop().await;
}

#[tokio::test]
async fn bad_input_is_a_problem_and_changes_nothing() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let url = m.url("/api/v1/admin/tenants");
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            env.http
                .post(&url)
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"name": "", "slug": "ok"})),
            422,
            "validation_failed",
        ),
        (
            env.http
                .post(&url)
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"name": "X", "slug": "Not A Slug"})),
            422,
            "validation_failed",
        ),
        (
            env.http
                .post(&url)
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"name": "X"})),
            400,
            "invalid_json",
        ),
        (
            env.http
                .post(&url)
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"name": "X", "slug": "x", "extra": 1})),
            400,
            "invalid_json",
        ),
        (
            env.http
                .post(&url)
                .bearer_auth(ADMIN_TOKEN)
                .header("content-type", "application/json")
                .body("{not json"),
            400,
            "invalid_json",
        ),
        (
            env.http
                .post(&url)
                .bearer_auth(ADMIN_TOKEN)
                .header("content-type", "text/plain")
                .body("hi"),
            415,
            "unsupported_media_type",
        ),
        (
            env.http
                .post(&url)
                .bearer_auth(ADMIN_TOKEN)
                .header("content-type", "application/json")
                .body(vec![b' '; 2 * 1024 * 1024]),
            413,
            "payload_too_large",
        ),
        (
            env.http
                .get(m.url("/api/v1/admin/tenants/not-a-uuid"))
                .bearer_auth(ADMIN_TOKEN),
            400,
            "invalid_parameter",
        ),
        (
            env.http
                .get(m.url("/api/v1/admin/tenants?limit=0"))
                .bearer_auth(ADMIN_TOKEN),
            422,
            "validation_failed",
        ),
        (
            env.http
                .get(m.url("/api/v1/admin/tenants?limit=abc"))
                .bearer_auth(ADMIN_TOKEN),
            400,
            "invalid_parameter",
        ),
        (
            env.http
                .get(m.url("/api/v1/admin/tenants?cursor=%%%"))
                .bearer_auth(ADMIN_TOKEN),
            400,
            "invalid_parameter",
        ),
        (
            env.http.post(&url).json(&json!({"name": "X", "slug": "x"})),
            401,
            "invalid_admin_token",
        ),
        (
            env.http
                .post(&url)
                .bearer_auth("wrong-token-wrong-token")
                .json(&json!({"name": "X", "slug": "x"})),
            401,
            "invalid_admin_token",
        ),
        (
            env.http.get(m.url("/no/such/route")),
            404,
            "route_not_found",
        ),
    ];
    for (req, status, code) in cases {
        let resp = req.send().await.unwrap();
        let got = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (got, body["code"].as_str().unwrap_or("?")),
            (status, code),
            "{body}"
        );
        assert_eq!(ct.as_deref(), Some("application/problem+json"));
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(n, 0, "bad input changed nothing");
    m.stop().await;
}

#[tokio::test]
async fn admin_api_is_off_without_a_token() {
    let env = TestEnv::new().await;
    let mut config = env.config();
    config.hub_admin_token = None;
    let m = env.start(integration_manager::build, config).await;
    let resp = env
        .http
        .post(m.url("/api/v1/admin/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "X", "slug": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let p: Value = resp.json().await.unwrap();
    assert_eq!(p["code"], "admin_disabled");
    m.stop().await;
}

#[tokio::test]
async fn tenant_lists_page_with_cursors() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    for i in 0..5 {
        env.http
            .post(m.url("/api/v1/admin/tenants"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "T", "slug": format!("t{i}")}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = m.url("/api/v1/admin/tenants?limit=2");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = env
            .http
            .get(url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for t in page["data"].as_array().unwrap() {
            seen.push(t["slug"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["t0", "t1", "t2", "t3", "t4"]);
    m.stop().await;
}
