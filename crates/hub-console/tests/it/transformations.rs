//! Transformation Builder: a template built in the console from a pasted
//! sample (source fields chosen with the keyboard, live preview, validate,
//! an invalid rule refused with the engine's error and nothing saved), saved
//! and saved again as version 2; a system template copied, a sample read from
//! a file, and the copy saved unchanged keeping every rule; another tenant's
//! template is a 404 page.

use crate::{Browser, manager};
use fantoccini::Locator;
use fantoccini::key::Key;
use hub_testkit::{TenantApi, TestEnv};
use serde_json::{Value, json};
use std::time::Duration;

const SAMPLE: &str = r#"{"order": {"id": "ORD-1", "customer": {"name": "  Acme  "}},
 "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 3}]}"#;

/// Waits up to 20 s for the text of `css` to contain `needle`; returns it.
async fn wait_in(b: &Browser, css: &str, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..200 {
        if let Ok(e) = b.c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
        {
            if t.contains(needle) {
                return t;
            }
            last = t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{css} never showed {needle:?}; it shows {last:?}; the page:\n{}",
        b.page_text().await
    );
}

/// The tenant's own templates, through the API.
async fn own_templates(api: &TenantApi) -> Vec<Value> {
    let answer = api.get("/api/v1/transformations?is_system=false").await;
    answer.ok(200)["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Clicks `css`, a form's submit button, and waits for the answer's page
/// (a mark on this document tells the two apart).
async fn submit(b: &Browser, css: &str) {
    js(b, "window.builderPending = true; return null;").await;
    b.click(css).await;
    for _ in 0..200 {
        let done = js(
            b,
            "return window.builderPending !== true && document.readyState === 'complete';",
        )
        .await;
        if done == json!(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the answer to {css} did not load within 20 s");
}

/// A screenshot with `css` scrolled into view.
async fn shot_at(b: &Browser, css: &str, name: &str) {
    b.c.execute(
        "document.querySelector(arguments[0]).scrollIntoView(); return null;",
        vec![json!(css)],
    )
    .await
    .expect("scroll");
    b.shot(name).await;
}

fn row(n: usize, field: &str) -> String {
    format!("#rules fieldset.rule:nth-of-type({n}) [name$='.{field}']")
}

async fn js(b: &Browser, script: &str) -> Value {
    b.c.execute(script, vec![]).await.expect("run a script")
}

#[tokio::test]
async fn builder_previews_validates_refuses_an_invalid_rule_and_saves_two_versions() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let (tenant, key) = env.tenant(&m, "acme").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let b = Browser::open(&m).await;
    b.sign_in(&tenant, &key).await;

    // The list: the system templates, none of the tenant's yet.
    b.go("/console/transformations").await;
    wait_in(&b, "#templates", "salesforce_opportunity_to_c_opportunity").await;
    b.go("/console/transformations?is_system=false").await;
    b.wait_text("No template matches these filters.").await;
    b.shot("transformations-list-empty").await;
    b.click("#new-template").await;
    b.at("/console/transformations/new").await;

    b.fill("#code", "orders_to_crm").await;
    b.fill("#name", "Orders to CRM").await;
    b.el("#source_format option[value=JSON]")
        .await
        .click()
        .await
        .unwrap();
    b.el("#target_format option[value=JSON]")
        .await
        .click()
        .await
        .unwrap();
    b.fill("#sample", SAMPLE).await;
    // The source fields are what the JSON codec read.
    let fields = wait_in(&b, "#source-fields", "order.customer.name").await;
    assert!(fields.contains("lines[*].sku"), "{fields}");

    // Rule 1, typed: order.id → order_id; the preview follows.
    b.fill(&row(1, "input"), "order.id").await;
    b.fill(&row(1, "target"), "order_id").await;
    wait_in(&b, "#preview-output", r#""order_id": "ORD-1""#).await;

    // Rule 2, with the keyboard: Enter on a source field adds its row.
    b.el("button[title='Map order.customer.name']")
        .await
        .send_keys(&Key::Enter.to_string())
        .await
        .expect("press Enter");
    b.el("#rules fieldset.rule:nth-of-type(2)").await;
    assert_eq!(
        b.el(&row(2, "input")).await.prop("value").await.unwrap(),
        Some("order.customer.name".into())
    );
    assert_eq!(
        b.el(&row(2, "target")).await.prop("value").await.unwrap(),
        Some("name".into())
    );
    wait_in(&b, "#preview-output", r#""name": "  Acme  ""#).await;
    b.el("#rules fieldset.rule:nth-of-type(2) summary")
        .await
        .send_keys(&Key::Enter.to_string())
        .await
        .unwrap();
    b.fill(&row(2, "steps"), "trim").await;
    wait_in(&b, "#preview-output", r#""name": "Acme""#).await;

    // Rule 3: "Add rule" by keyboard focuses the new row's field, with a
    // visible focus ring; an expression that does not compile shows the
    // engine's error at its row.
    b.el("#add-rule")
        .await
        .send_keys(&Key::Enter.to_string())
        .await
        .unwrap();
    b.el("#rules fieldset.rule:nth-of-type(3)").await;
    let mut focused = Value::Null;
    for _ in 0..100 {
        focused = js(
            &b,
            "var a = document.activeElement; return a.matches('#rules fieldset.rule:nth-of-type(3) .rule-input') ? getComputedStyle(a).outlineStyle : 'elsewhere: ' + a.outerHTML.slice(0, 80);",
        )
        .await;
        if focused == json!("solid") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        focused,
        json!("solid"),
        "the new row's field has the focus, visibly"
    );
    b.el(&format!("{} option[value=expr]", row(3, "kind")))
        .await
        .click()
        .await
        .unwrap();
    b.fill(&row(3, "input"), r##"concat("#", order.id"##).await;
    b.fill(&row(3, "target"), "reference").await;
    let problem = wait_in(
        &b,
        "#rules fieldset.rule:nth-of-type(3) .rule-errors",
        "mapping_rules.rules[2].expr",
    )
    .await;
    assert!(problem.contains("column"), "{problem}");
    shot_at(
        &b,
        "#rules fieldset.rule:nth-of-type(3)",
        "transformations-invalid-rule",
    )
    .await;

    // Saving it is refused with the same error, and nothing is stored.
    submit(&b, "#save").await;
    wait_in(&b, "main .error", "mapping_rules.rules[2].expr").await;
    assert!(own_templates(&api).await.is_empty(), "nothing saved");
    // The page kept everything that was typed.
    assert_eq!(
        b.el(&row(2, "steps")).await.prop("value").await.unwrap(),
        Some("trim".into())
    );

    // Fixed: validate, then save version 1.
    b.fill(&row(3, "input"), r##"concat("#", order.id)"##).await;
    wait_in(&b, "#preview-output", r##""reference": "#ORD-1""##).await;
    wait_in(&b, "#target-fields", "reference").await;
    b.click("#validate").await;
    wait_in(&b, "#validation", "Valid").await;
    shot_at(&b, ".builder", "transformations-builder").await;

    // A row added and removed with the keyboard; the focus stays in the rules.
    b.el("#add-rule")
        .await
        .send_keys(&Key::Enter.to_string())
        .await
        .unwrap();
    b.el("#rules fieldset.rule:nth-of-type(4) [data-remove-rule]")
        .await
        .send_keys(&Key::Enter.to_string())
        .await
        .unwrap();
    let left = js(
        &b,
        "return [document.querySelectorAll('#rules fieldset.rule').length, document.activeElement.closest('#rules fieldset.rule:nth-of-type(3)') !== null];",
    )
    .await;
    assert_eq!(left, json!([3, true]), "3 rows left, the focus on the last");
    submit(&b, "#save").await;
    assert_eq!(b.text("#saved-version").await, "1");
    let stored = own_templates(&api).await;
    assert_eq!(stored.len(), 1);
    let id = stored[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(b.path().await, format!("/console/transformations/{id}"));
    assert_eq!(
        stored[0]["mapping_rules"],
        json!({"rules": [
            {"source": "order.id", "target": "order_id"},
            {"source": "order.customer.name", "target": "name", "steps": ["trim"]},
            {"expr": "concat(\"#\", order.id)", "target": "reference"},
        ]})
    );
    // The sample came along (it is not part of the template): the preview runs.
    wait_in(&b, "#preview-output", r##""reference": "#ORD-1""##).await;

    // Version 2: a target renamed.
    b.fill(&row(1, "target"), "id").await;
    wait_in(&b, "#preview-output", r#""id": "ORD-1""#).await;
    submit(&b, "#save").await;
    wait_in(&b, "#saved-version", "2").await;
    let versions = b.text("#versions").await;
    assert!(
        versions.contains("Version 2") && versions.contains("Version 1"),
        "{versions}"
    );
    shot_at(&b, "#versions-title", "transformations-versions").await;
    let v2 = api
        .get(&format!("/api/v1/transformations/{id}?version=2"))
        .await;
    let v2 = v2.ok(200);
    assert_eq!(v2["mapping_rules"]["rules"][0]["target"], "id");
    assert_eq!(v2["is_active"], true);
    let v1 = api
        .get(&format!("/api/v1/transformations/{id}?version=1"))
        .await;
    assert_eq!(
        v1.ok(200)["mapping_rules"]["rules"][0]["target"],
        "order_id"
    );

    // Version 1 opens from the history, saying which one is active.
    b.click(&format!(
        "#versions a[href='/console/transformations/{id}']"
    ))
    .await;
    b.wait_text("version 2 is active").await;
    assert_eq!(
        b.el(&row(1, "target")).await.prop("value").await.unwrap(),
        Some("order_id".into())
    );
    b.no_script_errors().await;

    // Phone width: everything fits.
    b.c.set_window_size(390, 844).await.expect("resize");
    b.go(&format!(
        "/console/transformations/{}",
        v2["id"].as_str().unwrap()
    ))
    .await;
    wait_in(&b, "#preview-output", "ORD-1").await;
    let fits = js(
        &b,
        "return document.documentElement.scrollWidth <= window.innerWidth;",
    )
    .await;
    assert_eq!(fits, json!(true), "the builder is wider than a phone");
    b.shot("transformations-phone").await;
    b.c.set_window_size(1280, 900).await.expect("resize");
    b.close().await;
    m.stop().await;
}

#[tokio::test]
async fn system_template_is_copied_and_saved_unchanged_with_a_sample_from_a_file() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let (tenant, key) = env.tenant(&m, "acme").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let system = api
        .get("/api/v1/transformations?is_system=true&category=CRM&limit=200")
        .await;
    let system = system.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "salesforce_opportunity_to_c_opportunity")
        .cloned()
        .expect("the system template");
    let b = Browser::open(&m).await;
    b.sign_in(&tenant, &key).await;

    b.go("/console/transformations?is_system=true&category=CRM")
        .await;
    wait_in(&b, "#templates", "Salesforce Opportunity").await;
    b.click(&format!(
        "#templates a[href='/console/transformations/{}']",
        system["id"].as_str().unwrap()
    ))
    .await;
    b.el("#copy-form").await;
    assert!(
        b.c.find(Locator::Css("#save")).await.is_err(),
        "a system template cannot be saved"
    );
    b.fill("#copy-code", "sf_opportunity").await;
    submit(&b, "#copy").await;
    assert_eq!(b.text("#saved-version").await, "1");
    assert_eq!(b.text("#template-code").await, "sf_opportunity");

    // A sample read from a file.
    let file = std::env::temp_dir().join(format!("sample-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(
        &file,
        r#"{"Id": "006A1", "Name": " Big deal ", "Amount": 1000, "StageName": "Closed Won",
            "CloseDate": "2024-03-31", "Probability": 50, "AccountId": "001A1", "OwnerId": "005A1", "LastModifiedDate": "2024-01-15T10:30:00.000+0000"}"#,
    )
    .unwrap();
    b.el("#sample-file")
        .await
        .send_keys(file.to_str().unwrap())
        .await
        .expect("choose the file");
    wait_in(&b, "#sample-file-status", "Read").await;
    let out = wait_in(&b, "#preview-output", r#""expected_revenue": 500"#).await;
    assert!(out.contains(r#""status": "won""#), "{out}");
    wait_in(&b, "#source-fields", "StageName").await;
    b.click("#validate").await;
    wait_in(&b, "#validation", "Valid").await;
    shot_at(&b, "#preview-title", "transformations-system-copy").await;
    std::fs::remove_file(&file).ok();

    // Saved without a change: every rule, option and schema is kept.
    submit(&b, "#save").await;
    wait_in(&b, "#saved-version", "2").await;
    let copy = own_templates(&api).await;
    assert_eq!(copy.len(), 1);
    assert_eq!(copy[0]["version"], 2);
    for part in [
        "mapping_rules",
        "validation_rules",
        "source_options",
        "target_options",
        "source_format",
        "target_format",
        "name",
        "description",
        "category",
    ] {
        assert_eq!(copy[0][part], system[part], "{part} kept");
    }
    b.no_script_errors().await;
    b.close().await;
    m.stop().await;
}

#[tokio::test]
async fn another_tenants_template_is_a_404_page() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let (a_tenant, a_key) = env.tenant(&m, "acme").await;
    let (b_tenant, b_key) = env.tenant(&m, "globex").await;
    let a = TenantApi::new(&env, &m, &a_tenant, &a_key);
    let created = a
        .post(
            "/api/v1/transformations",
            json!({"code": "mine", "name": "Acme's", "source_format": "JSON", "target_format": "JSON",
                   "mapping_rules": {"rules": [{"target": "id", "source": "id"}]}}),
        )
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().to_owned();

    let b = Browser::open(&m).await;
    b.sign_in(&b_tenant, &b_key).await;
    b.go(&format!("/console/transformations/{id}")).await;
    wait_in(&b, "main .error", "No such template").await;
    assert!(!b.page_text().await.contains("Acme's"));
    for path in [
        format!("/console/transformations/{id}"),
        format!("/console/transformations/{}", uuid::Uuid::new_v4()),
        "/console/transformations/not-a-uuid".to_owned(),
    ] {
        let status =
            b.c.execute(
                "return fetch(arguments[0]).then(function (r) { return r.status; });",
                vec![json!(path)],
            )
            .await
            .expect("fetch");
        assert_eq!(status, json!(404), "{path}");
    }
    b.go("/console/transformations?is_system=false").await;
    b.wait_text("No template matches these filters.").await;
    b.no_script_errors().await;
    b.close().await;
    m.stop().await;
}
