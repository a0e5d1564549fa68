//! Every screen, checked as a keyboard user and a phone user meet it:
//! every field has a label, Tab reaches every link, button and field in
//! turn with a visible focus ring, nothing scrolls sideways at phone width,
//! and no page records a script error. Then a walk-through with the
//! keyboard only: sign in, open a screen from the navigation, open an
//! integration's details.

use crate::{Browser, manager};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use hub_testkit::{TenantApi, TestEnv};
use serde_json::{Value, json};

/// Fields without a label (`label[for]`, a wrapping label, `aria-label`
/// or `aria-labelledby`), as the start of their markup.
const UNLABELLED: &str = r#"
return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(el => !((el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]'))
                  || el.closest('label') || el.getAttribute('aria-label')
                  || el.getAttribute('aria-labelledby')))
  .map(el => el.outerHTML.slice(0, 120));
"#;

/// The elements Tab should reach, in document order, each as a short
/// description; they are marked with `data-tab-index` for [`FOCUSED`].
const FOCUSABLE: &str = r#"
const sel = 'a[href], summary, button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';
return [...document.querySelectorAll(sel)]
  .filter(el => el.checkVisibility())
  .map((el, i) => { el.dataset.tabIndex = i; return el.tagName.toLowerCase() + ' ' + (el.id ? '#' + el.id + ' ' : '') + (el.textContent || el.name || '').trim().slice(0, 40); });
"#;

/// The focused element: its `data-tab-index` (-1 when none, -2 when
/// unmarked)
/// and whether its focus ring shows (an outline or box shadow).
const FOCUSED: &str = r#"
const el = document.activeElement;
if (!el || el === document.body) return [-1, true];
if (el.dataset.tabIndex === undefined) return [-2, true];
const s = getComputedStyle(el);
const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
return [el.dataset.tabIndex === undefined ? -1 : Number(el.dataset.tabIndex), ring];
"#;

/// The innermost elements that end past the right edge of the screen.
const WIDER_THAN_THE_SCREEN: &str = r#"
const w = document.documentElement.clientWidth;
return [...document.querySelectorAll('body *')]
  .filter(el => el.getBoundingClientRect().right > w + 0.5)
  .filter(el => ![...el.children].some(c => c.getBoundingClientRect().right > w + 0.5))
  .slice(0, 5)
  .map(el => el.outerHTML.slice(0, 160));
"#;

/// Presses a key (down and up) where the focus is.
async fn press(b: &Browser, key: Key) {
    let k: char = key.into();
    let actions = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: k })
        .then(KeyAction::Up { value: k });
    b.c.perform_actions(actions).await.expect("press a key");
}

/// Types `text` where the focus is.
async fn type_text(b: &Browser, text: &str) {
    let mut actions = KeyActions::new("keyboard".into());
    for ch in text.chars() {
        actions = actions
            .then(KeyAction::Down { value: ch })
            .then(KeyAction::Up { value: ch });
    }
    b.c.perform_actions(actions).await.expect("type");
}

async fn run(b: &Browser, script: &str) -> Value {
    b.c.execute(script, vec![]).await.expect("run a script")
}

/// Waits until no htmx request is under way and nothing is loading.
async fn settled(b: &Browser) {
    for _ in 0..200 {
        let busy = run(
            b,
            "return document.readyState !== 'complete' || document.querySelector('.htmx-request, [aria-busy=true]') !== null;",
        )
        .await;
        if busy == json!(false) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the page kept loading for 20 s: {}", b.page_text().await);
}

/// Checks the page at `path`: labels, Tab order, focus rings, no script
/// errors; then at phone width, no sideways scrolling.
async fn check(b: &Browser, path: &str) {
    b.go(path).await;
    settled(b).await;
    let unlabelled = run(b, UNLABELLED).await;
    assert_eq!(unlabelled, json!([]), "{path}: fields without a label");

    let targets = run(b, FOCUSABLE).await;
    let targets = targets.as_array().expect("a list").clone();
    assert!(!targets.is_empty(), "{path}: nothing to focus");
    let mut reached = vec![false; targets.len()];
    let mut last = -1;
    let mut trace = Vec::new();
    // Tab from the top of the page: every target in turn, then the
    // browser's own chrome (the focus leaves the document).
    for _ in 0..targets.len() * 2 + 10 {
        press(b, Key::Tab).await;
        let focused = run(b, FOCUSED).await;
        let (i, ring) = (focused[0].as_i64().unwrap_or(-1), focused[1] == json!(true));
        trace.push(i);
        if i == -2 {
            // Focusable without being in the list (a widget of its own).
            continue;
        }
        if i < 0 {
            if last >= 0 {
                break;
            }
            continue;
        }
        let i = i as usize;
        assert!(
            ring,
            "{path}: {} has no visible focus ring",
            targets[i].as_str().unwrap_or("?")
        );
        // (A date-time field takes a Tab per part: the same element again.)
        assert!(
            i as i64 >= last,
            "{path}: Tab went back from {} to {}",
            targets[last as usize],
            targets[i]
        );
        reached[i] = true;
        last = i as i64;
    }
    let missed: Vec<&Value> = targets
        .iter()
        .zip(&reached)
        .filter(|(_, r)| !**r)
        .map(|(t, _)| t)
        .collect();
    assert!(
        missed.is_empty(),
        "{path}: Tab never reached {missed:?} (the stops: {trace:?})"
    );
    b.no_script_errors().await;

    b.c.set_window_size(390, 844).await.expect("phone width");
    b.go(path).await;
    settled(b).await;
    let overflow = run(
        b,
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
    )
    .await;
    if overflow.as_i64().unwrap_or(1) > 0 {
        let wide = run(b, WIDER_THAN_THE_SCREEN).await;
        panic!(
            "{path}: at 390 px the page scrolls sideways by {overflow} px; the elements past the edge: {wide}"
        );
    }
    let slug = path
        .trim_start_matches("/console/")
        .replace(['/', '?', '='], "-");
    b.shot(&format!("phone-{slug}")).await;
    b.c.set_window_size(1280, 900).await.expect("desktop width");
}

#[tokio::test]
async fn every_screen_has_labels_a_tab_order_focus_rings_and_fits_a_phone() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let (tenant, key) = env.tenant(&m, "keys").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let created = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "NEWSAPI", "name": "News", "config": {}}),
        )
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().to_owned();
    let sub = api
        .post(
            "/api/v1/webhooks/subscriptions",
            json!({"name": "orders", "url": "https://example.com/hooks", "event_types": ["order.*"]}),
        )
        .await;
    let sub = sub.ok(201)["id"].as_str().unwrap().to_owned();

    let b = Browser::open(&m).await;
    check(&b, "/console/sign-in").await;
    b.sign_in(&tenant, &key).await;
    for path in [
        "/console/integrations".to_owned(),
        format!("/console/integrations/{id}"),
        "/console/marketplace".to_owned(),
        "/console/marketplace/NEWSAPI".to_owned(),
        "/console/setup/NEWSAPI".to_owned(),
        "/console/webhooks".to_owned(),
        format!("/console/deliveries?subscription={sub}"),
        "/console/transformations".to_owned(),
        "/console/sync-jobs".to_owned(),
        "/console/api-logs".to_owned(),
        "/console/health".to_owned(),
    ] {
        check(&b, &path).await;
    }
    b.close().await;
}

#[tokio::test]
async fn a_keyboard_alone_signs_in_and_moves_between_screens() {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    let (tenant, key) = env.tenant(&m, "keyboard").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    api.post(
        "/api/v1/integrations",
        json!({"provider_code": "NEWSAPI", "name": "Headlines", "config": {}}),
    )
    .await
    .ok(201);

    let b = Browser::open(&m).await;
    b.go("/console/sign-in").await;
    settled(&b).await;
    // Tab to a field or link whose selector is `css`, at most 60 presses.
    async fn tab_to(b: &Browser, css: &str) {
        for _ in 0..60 {
            press(b, Key::Tab).await;
            let here = run(
                b,
                &format!(
                    "return document.activeElement !== null && document.activeElement.matches({});",
                    json!(css)
                ),
            )
            .await;
            if here == json!(true) {
                return;
            }
        }
        panic!("Tab never reached {css}: {}", b.page_text().await);
    }
    tab_to(&b, "#tenant").await;
    type_text(&b, &tenant).await;
    tab_to(&b, "#api_key").await;
    type_text(&b, &key).await;
    press(&b, Key::Enter).await;
    b.at("/console/integrations").await;
    settled(&b).await;

    // The skip link comes first and takes the focus to the content.
    press(&b, Key::Tab).await;
    let first = run(&b, "return document.activeElement.className;").await;
    assert_eq!(
        first,
        json!("skip"),
        "the first Tab stop is not the skip link"
    );

    // From the navigation to the health dashboard, and from the list to
    // an integration's details, with Enter.
    tab_to(&b, "nav a[href='/console/health']").await;
    press(&b, Key::Enter).await;
    b.at("/console/health").await;
    settled(&b).await;
    b.wait_text("Headlines").await;
    tab_to(&b, "#health a[href^='/console/integrations/']").await;
    press(&b, Key::Enter).await;
    b.wait_text("NEWSAPI").await;
    assert!(b.path().await.starts_with("/console/integrations/"));
    b.shot("keyboard-details").await;
    b.no_script_errors().await;
    b.close().await;
}
