//! The operator API.

use crate::started;
use hub_testkit::{Call, TestEnv};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn tenants_and_keys_lifecycle() {
    let (env, m) = started().await;
    let admin = |method: Method, path: &str| env.admin(method, &m.url(path));
    let created = admin(Method::POST, "/api/v1/admin/tenants")
        .json(&json!({"name": "Acme Freight", "slug": "acme"}))
        .call()
        .await;
    let t = created.ok(201);
    assert_eq!(t["slug"], "acme");
    assert_eq!(t["status"], "ACTIVE");
    let id = t["id"].as_str().unwrap();

    // Duplicate slug → 409 naming the field.
    let dup = admin(Method::POST, "/api/v1/admin/tenants")
        .json(&json!({"name": "Other", "slug": "acme"}))
        .call()
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.body["code"], "conflict");
    assert!(dup.body["detail"].as_str().unwrap().contains("slug"));

    // Lookup by slug and by id.
    let found = admin(Method::GET, "/api/v1/admin/tenants?slug=acme")
        .call()
        .await
        .body;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    assert_eq!(found["data"][0]["id"], id);
    let one = admin(Method::GET, &format!("/api/v1/admin/tenants/{id}"))
        .call()
        .await;
    assert_eq!(one.status, 200);
    let missing = admin(
        Method::GET,
        &format!("/api/v1/admin/tenants/{}", uuid::Uuid::now_v7()),
    )
    .call()
    .await;
    assert_eq!(missing.status, 404);

    // A key is shown once; listing shows only metadata.
    let keys = format!("/api/v1/admin/tenants/{id}/api-keys");
    let k = admin(Method::POST, &keys)
        .json(&json!({"name": "ci"}))
        .call()
        .await
        .body;
    let secret = k["key"].as_str().unwrap();
    assert!(secret.starts_with("hub_"));
    let listed = admin(Method::GET, &keys).call().await.text;
    assert!(!listed.contains(secret), "the key is never shown again");
    assert!(listed.contains(k["prefix"].as_str().unwrap()));

    // Revoking a key of another tenant is a 404.
    let (other, _) = env.tenant(&m, "other").await;
    let kid = k["id"].as_str().unwrap();
    let cross = admin(
        Method::DELETE,
        &format!("/api/v1/admin/tenants/{other}/api-keys/{kid}"),
    )
    .call()
    .await;
    assert_eq!(cross.status, 404);
    m.stop().await;
}

#[tokio::test]
async fn bad_input_is_a_problem_and_changes_nothing() {
    let (env, m) = started().await;
    let url = m.url("/api/v1/admin/tenants");
    let post = |body: serde_json::Value| env.admin(Method::POST, &url).json(&body);
    let raw = |content_type: &str| {
        let req = env.admin(Method::POST, &url);
        req.header("content-type", content_type)
    };
    let get = |path: &str| env.admin(Method::GET, &m.url(path));
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            post(json!({"name": "", "slug": "ok"})),
            422,
            "validation_failed",
        ),
        (
            post(json!({"name": "X", "slug": "Not A Slug"})),
            422,
            "validation_failed",
        ),
        (post(json!({"name": "X"})), 400, "invalid_json"),
        (
            post(json!({"name": "X", "slug": "x", "extra": 1})),
            400,
            "invalid_json",
        ),
        (
            raw("application/json").body("{not json"),
            400,
            "invalid_json",
        ),
        (raw("text/plain").body("hi"), 415, "unsupported_media_type"),
        (
            raw("application/json").body(vec![b' '; 2 * 1024 * 1024]),
            413,
            "payload_too_large",
        ),
        (
            get("/api/v1/admin/tenants/not-a-uuid"),
            400,
            "invalid_parameter",
        ),
        (
            get("/api/v1/admin/tenants?limit=0"),
            422,
            "validation_failed",
        ),
        (
            get("/api/v1/admin/tenants?limit=abc"),
            400,
            "invalid_parameter",
        ),
        (
            get("/api/v1/admin/tenants?cursor=%%%"),
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
        req.call().await.problem(status, code);
    }
    let n = env.count("SELECT COUNT(*) FROM tenants").await;
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
        .admin(Method::POST, &m.url("/api/v1/admin/tenants"))
        .json(&json!({"name": "X", "slug": "x"}))
        .call()
        .await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.body["code"], "admin_disabled");
    m.stop().await;
}

#[tokio::test]
async fn tenant_lists_page_with_cursors() {
    let (env, m) = started().await;
    for i in 0..5 {
        let body = json!({"name": "T", "slug": format!("t{i}")});
        env.admin_created(&m, "/api/v1/admin/tenants", body).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = m.url("/api/v1/admin/tenants?limit=2");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = env.admin(Method::GET, &url).call().await.body;
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
