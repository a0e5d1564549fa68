//! The auth matrix of design §6.

use crate::started;
use hub_testkit::Call;
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn auth_matrix_on_tenant_routes() {
    let (env, m) = started().await;
    let (tenant_a, key_a) = env.tenant(&m, "alpha").await;
    let (tenant_b, _key_b) = env.tenant(&m, "bravo").await;
    let url = m.url("/api/v1/me");

    // The right key for its own tenant works.
    let ok = env.get_json_as(&url, &tenant_a, &key_a).await;
    assert_eq!(ok["tenant"]["id"], tenant_a.as_str());
    assert_eq!(ok["tenant"]["slug"], "alpha");

    // Missing key → 401.
    let missing = env.http.get(&url).header("X-Tenant-ID", &tenant_a);
    missing.call().await.problem(401, "missing_credentials");

    // Wrong scheme, garbage and well-formed-but-unknown keys → 401.
    for auth in [
        "Basic Zm9vOmJhcg==",
        "Bearer nonsense",
        "Bearer hub_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "Bearer ",
    ] {
        let req = env.http.get(&url).header("Authorization", auth);
        let a = req.header("X-Tenant-ID", &tenant_a).call().await;
        a.problem(401, "invalid_credentials");
    }

    // Tenant header missing or malformed → 400.
    let no_tenant = env.http.get(&url).bearer_auth(&key_a).call().await;
    no_tenant.problem(400, "missing_tenant_header");
    for bad in ["not-a-uuid", "", "123"] {
        let a = env.get_as(&url, bad, &key_a).call().await;
        a.problem(400, "invalid_tenant_header");
    }

    // A key of another tenant → 403.
    let a = env.get_as(&url, &tenant_b, &key_a).call().await;
    a.problem(403, "tenant_mismatch");

    // A key of no tenant at all, presented for an unknown tenant → still 403, never data.
    let unknown = uuid::Uuid::now_v7().to_string();
    let a = env.get_as(&url, &unknown, &key_a).call().await;
    assert_eq!(a.status, 403);
    assert_eq!(a.content_type, "application/problem+json");

    // A revoked key → 401 at once.
    let keys = format!("/api/v1/admin/tenants/{tenant_a}/api-keys");
    let listed = env.admin(Method::GET, &m.url(&keys)).call().await;
    let key_id = listed.body["data"][0]["id"].as_str().unwrap();
    let revoke = m.url(&format!("{keys}/{key_id}"));
    assert_eq!(env.admin(Method::DELETE, &revoke).call().await.status, 200);
    let a = env.get_as(&url, &tenant_a, &key_a).call().await;
    a.problem(401, "invalid_credentials");
    m.stop().await;
}

#[tokio::test]
async fn a_suspended_tenants_keys_are_refused() {
    let (env, m) = started().await;
    let (tenant, key) = env.tenant(&m, "paused").await;
    sqlx::query("UPDATE tenants SET status = 'SUSPENDED' WHERE id = $1::uuid")
        .bind(&tenant)
        .execute(env.pool())
        .await
        .unwrap();
    let a = env.get_as(&m.url("/api/v1/me"), &tenant, &key).call().await;
    a.problem(403, "tenant_suspended");
    m.stop().await;
}

#[tokio::test]
async fn keys_are_stored_hashed_and_use_is_recorded() {
    let (env, m) = started().await;
    let (tenant, key) = env.tenant(&m, "hashes").await;
    let stored: Vec<u8> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 32, "a SHA-256, not the key");
    assert!(!String::from_utf8_lossy(&stored).contains(&key[4..]));
    let me = env.get_as(&m.url("/api/v1/me"), &tenant, &key).call().await;
    assert_eq!(me.status, 200);
    hub_testkit::eventually(5, "last_used_at recorded", || async {
        let used: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("SELECT last_used_at FROM api_keys")
                .fetch_one(env.pool())
                .await
                .unwrap();
        used
    })
    .await;
    m.stop().await;
}

#[tokio::test]
async fn tenant_data_is_scoped_to_the_caller() {
    let (env, m) = started().await;
    let (a, key_a) = env.tenant(&m, "scope-a").await;
    let (b, key_b) = env.tenant(&m, "scope-b").await;
    // Each tenant's audit trail shows its own events only.
    for (tenant, key, other) in [(&a, &key_a, &b), (&b, &key_b, &a)] {
        let page: Value = hub_testkit::eventually(10, "audit entries", || async {
            let v = env
                .get_as(&m.url("/api/v1/audit-log"), tenant, key)
                .call()
                .await
                .body;
            (v["data"].as_array().unwrap().len() >= 2).then_some(v)
        })
        .await;
        for entry in page["data"].as_array().unwrap() {
            assert_ne!(
                entry["data"]["id"],
                other.as_str(),
                "never another tenant's event"
            );
            let t = &entry["data"]["id"];
            if entry["event_type"] == "tenant.created" {
                assert_eq!(t, tenant.as_str());
            }
        }
    }
    m.stop().await;
}
