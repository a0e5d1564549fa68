//! Sign-in, the layout, sign-out, the operator's tenants and keys, CSRF.

use crate::{Browser, manager};
use hub_testkit::TestEnv;
use hub_testkit::service::ADMIN_TOKEN;

#[tokio::test]
async fn tenant_signs_in_sees_every_screen_and_signs_out() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let (tenant, key) = env.tenant(&m, "acme").await;
    let b = Browser::open(&m).await;

    // Not signed in: every screen sends the browser to the sign-in page.
    b.go("/console/integrations").await;
    b.at("/console/sign-in").await;

    // A wrong key is refused with the API's own words.
    b.sign_in(&tenant, "hub_wrong-key").await;
    b.at("/console/sign-in").await;
    let refusal = b.text(".error").await;
    assert!(
        refusal.contains("401"),
        "the refusal names the API's status: {refusal}"
    );
    b.shot("sign-in-refused").await;

    b.sign_in(&tenant, &key).await;
    b.at("/console/integrations").await;
    assert!(b.text("header.top").await.contains("Tenant acme (acme)"));
    let nav = b.text("nav[aria-label=Screens]").await;
    for screen in [
        "Integration Marketplace",
        "Integration Setup Wizard",
        "Integration List",
        "Integration Details",
        "Webhook Configuration",
        "Webhook Deliveries",
        "Transformation Builder",
        "Sync Job History",
        "API Logs",
        "Health Dashboard",
    ] {
        assert!(nav.contains(screen), "the navigation lists {screen}: {nav}");
    }
    b.wait_text("No integrations yet.").await;
    b.no_script_errors().await;
    b.shot("integration-list-empty").await;

    // The session cookie is HttpOnly and SameSite=Strict: scripts cannot read it.
    let visible =
        b.c.execute("return document.cookie;", vec![])
            .await
            .expect("cookie");
    assert!(
        !visible
            .as_str()
            .unwrap_or_default()
            .contains("hub_console="),
        "{visible}"
    );

    // Phone width: the navigation wraps above the content, nothing overflows.
    b.c.set_window_size(390, 844).await.expect("resize");
    b.go("/console/integrations").await;
    b.wait_text("No integrations yet.").await;
    let overflow =
        b.c.execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .expect("measure");
    assert_eq!(
        overflow,
        serde_json::json!(true),
        "the page is wider than a phone"
    );
    b.shot("integration-list-phone").await;
    b.c.set_window_size(1280, 900).await.expect("resize");

    b.click("header.top form button").await;
    b.at("/console/sign-in").await;
    b.go("/console/integrations").await;
    b.at("/console/sign-in").await;
    b.close().await;
    m.stop().await;
}

#[tokio::test]
async fn operator_creates_a_tenant_and_its_key_is_shown_once() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let b = Browser::open(&m).await;

    b.go("/console/sign-in").await;
    b.fill("#admin_token", "not-the-admin-token").await;
    b.click("form[action='/console/sign-in/operator'] button")
        .await;
    assert!(b.text(".error").await.contains("401"));

    b.fill("#admin_token", ADMIN_TOKEN).await;
    b.click("form[action='/console/sign-in/operator'] button")
        .await;
    b.at("/console/operator").await;
    b.wait_text("No tenants yet").await;

    b.fill("#name", "Blue Freight").await;
    b.fill("#slug", "blue").await;
    b.click("form[action='/console/operator/tenants'] button")
        .await;
    b.wait_text("Copy the key now").await;
    let key = b
        .el("#new-key")
        .await
        .prop("value")
        .await
        .expect("value")
        .expect("a key");
    let tenant = b.text("#tenant-id").await;
    assert!(key.len() > 20, "a real key: {key}");
    b.click("[data-copy=new-key]").await;
    b.wait_text("Copied").await;
    b.no_script_errors().await;
    b.shot("operator-key-shown-once").await;

    // The list shows the tenant, not its key.
    b.go("/console/operator").await;
    b.wait_text("Blue Freight").await;
    assert!(
        !b.page_text().await.contains(&key),
        "the key is never shown again"
    );

    // The new key signs in as the new tenant.
    b.click("header.top form button").await;
    b.sign_in(&tenant, &key).await;
    b.at("/console/integrations").await;
    assert!(b.text("header.top").await.contains("Blue Freight (blue)"));
    b.close().await;
    m.stop().await;
}

#[tokio::test]
async fn a_change_without_the_sessions_csrf_token_is_refused() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let (tenant, key) = env.tenant(&m, "acme").await;
    let b = Browser::open(&m).await;
    b.sign_in(&tenant, &key).await;
    b.at("/console/integrations").await;
    let cookie =
        b.c.get_named_cookie("hub_console")
            .await
            .expect("the session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");

    // Another site's form posts with the cookie but without the token.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie_header = format!("hub_console={}", cookie.value());
    for token in [None, Some("forged")] {
        let form = token.map(|t| format!("_csrf={t}")).unwrap_or_default();
        let r = http
            .post(m.url("/console/sign-out"))
            .header("Cookie", &cookie_header)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "token {token:?}");
    }
    // The session is still there.
    b.go("/console/integrations").await;
    b.at("/console/integrations").await;
    b.close().await;
    m.stop().await;
}
