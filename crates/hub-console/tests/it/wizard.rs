//! The Marketplace and the Setup Wizard: connect Samsara (API key) against
//! its fake through the wizard, seeing the provider's own refusal first.

use crate::{Browser, manager};
use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind};
use hub_testkit::{TenantApi, TestEnv};

#[tokio::test]
async fn wizard_connects_an_integration_against_the_fake_provider() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let (tenant, key) = env.tenant(&m, "acme").await;
    let fake = FakeProvider::start(Kind::Samsara).await;
    let b = Browser::open(&m).await;
    b.sign_in(&tenant, &key).await;

    // The marketplace: tiles by category, searchable.
    b.go("/console/marketplace").await;
    b.el("#providers").await;
    let all = b.text("#providers").await;
    for category in ["ACCOUNTING", "CRM", "ELD", "LOAD_BOARD"] {
        assert!(all.contains(category), "{category} in {all}");
    }
    b.shot("marketplace").await;
    b.fill("#q", "samsara").await;
    b.click("form.filters button").await;
    b.el("#providers").await;
    let found = b.text("#providers").await;
    assert!(
        found.contains("Samsara") && !found.contains("HubSpot"),
        "{found}"
    );
    b.go("/console/marketplace?q=no-such-provider").await;
    b.wait_text("No provider matches this search.").await;

    // Details: capabilities, auth type, rate limit, documentation.
    b.go("/console/marketplace/SAMSARA").await;
    assert_eq!(b.text("#auth-type").await, "API_KEY");
    assert!(b.text("#rate-limit").await.contains("150 requests per 1 s"));
    b.shot("marketplace-details").await;
    b.click("main a.button[href='/console/setup/SAMSARA']")
        .await;

    // Step 1: the form comes from the provider's config schema.
    b.at("/console/setup/SAMSARA").await;
    b.fill("#name", "Fleet").await;
    b.fill("#config-base_url", "not a url").await;
    b.fill("#cred-api_key", DEFAULT_TOKEN).await;
    b.shot("wizard-step-1").await;
    b.click("main form button[type=submit]").await;
    // The browser refuses a bad URL itself; the API's checks apply too.
    b.at("/console/setup/SAMSARA").await;
    b.fill("#config-base_url", &fake.base_url()).await;
    b.fill("#cred-api_key", DEFAULT_TOKEN).await;
    b.click("main form button[type=submit]").await;
    b.wait_text("Connection test").await;
    assert!(b.path().await.starts_with("/console/setup/SAMSARA/"));
    assert_eq!(b.text("#integration-status").await, "PENDING_AUTH");

    // The provider refuses the key: its own error is shown.
    fake.set_valid_token("rotated-token");
    b.click("form[hx-post$='/test'] button").await;
    let failed = b.text("#test-failed").await;
    assert!(failed.contains("HTTP 401"), "{failed}");
    b.shot("wizard-test-failed").await;
    // Enabling refuses too, with the provider's error.
    b.click("form[action$='/enable'] button").await;
    assert!(b.text(".error").await.contains("connection test failed"));

    fake.set_valid_token(DEFAULT_TOKEN);
    b.click("form[hx-post$='/test'] button").await;
    assert!(b.text("#test-ok").await.contains("Connection OK"));
    b.shot("wizard-test-ok").await;
    b.click("form[action$='/enable'] button").await;
    b.wait_text("Recent request logs").await;
    assert_eq!(b.text("#integration-status").await, "ACTIVE");
    assert_eq!(b.text("#integration-enabled").await, "yes");
    b.no_script_errors().await;
    b.shot("integration-details-after-wizard").await;

    // What the console did is what the API has.
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let list = api.get("/api/v1/integrations").await;
    let rows = list.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "Fleet");
    assert_eq!(rows[0]["status"], "ACTIVE");
    assert_eq!(rows[0]["config"]["base_url"], fake.base_url());
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {DEFAULT_TOKEN}")))
    );
    b.close().await;
    fake.stop().await;
    m.stop().await;
}
