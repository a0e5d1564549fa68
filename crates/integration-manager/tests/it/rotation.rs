//! Key rotation: `integration-manager rotate-key` re-seals every secret under
//! the new key, and everything still decrypts.

use crate::started;
use base64::Engine;
use hub_testkit::Call;
use hub_testkit::fakes::{FakeProvider, Kind};
use reqwest::Method;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_integration-manager");

#[tokio::test]
async fn rotate_key_reseals_every_secret_and_they_still_decrypt() {
    let (env, m) = started().await;
    let fake = FakeProvider::start(Kind::NewsApi).await;
    let (tenant, key) = env.tenant(&m, "rotation").await;
    let mut config = fake.config();
    config["base_url"] = json!(fake.base_url());
    let created = env
        .as_tenant(Method::POST, &m.url("/api/v1/integrations"), &tenant, &key)
        .json(&json!({"provider_code": "NEWSAPI", "name": "news", "config": config, "credentials": {"api_key": fake.valid_token()}}))
        .call()
        .await
        .body;
    let id = created["id"].as_str().expect("created").to_owned();
    m.stop().await;

    let old_key = env.encryption_key.clone();
    let new_key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let new_id = hub_domain::secret::key_id(&[7u8; 32]);
    let run = |vars: Vec<(&str, String)>| {
        let mut all = vec![("DATABASE_URL", env.db.url.clone())];
        all.extend(vars);
        let mut cmd = std::process::Command::new(BIN);
        cmd.env_clear().arg("rotate-key");
        for (k, v) in all {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    // Without the old key the secrets cannot be opened: a clear failure, nothing changed.
    let out = run(vec![("INTEGRATION_ENCRYPTION_KEY", new_key.clone())]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("INTEGRATION_ENCRYPTION_KEYS_OLD"));
    // With it, every secret is re-sealed under the new key.
    let out = run(vec![
        ("INTEGRATION_ENCRYPTION_KEY", new_key.clone()),
        ("INTEGRATION_ENCRYPTION_KEYS_OLD", old_key.clone()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-sealed 1 integration"));
    let sealed: String = sqlx::query_scalar("SELECT api_key_encrypted FROM integrations")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert!(sealed.starts_with(&format!("v1.{new_id}.")), "{sealed}");
    // Running it again finds nothing to do.
    let out = run(vec![
        ("INTEGRATION_ENCRYPTION_KEY", new_key.clone()),
        ("INTEGRATION_ENCRYPTION_KEYS_OLD", old_key),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-sealed 0 integration"));

    // A manager that knows only the new key still calls the provider with the right key.
    let mut config = env.config();
    config.integration_encryption_key = Some(new_key);
    let m = env.start(integration_manager::build, config).await;
    let test = m.url(&format!("/api/v1/integrations/{id}/test"));
    let result = env
        .as_tenant(Method::POST, &test, &tenant, &key)
        .call()
        .await
        .body;
    assert_eq!(result["ok"], true, "{result}");
    m.stop().await;
}
