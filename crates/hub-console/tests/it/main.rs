//! Browser tests of the console: a real manager (port 0, its own database)
//! driven through headless Chromium by chromedriver (WebDriver, with
//! fantoccini). Each test saves screenshots under
//! `target/console-screenshots/`. A missing browser fails the tests (it is
//! installed by `cargo xtask test`), it never skips them.

mod a11y;
mod api_logs;
mod health;
mod integrations;
mod session;
mod sync_jobs;
mod transformations;
mod webhooks;
mod wizard;

use fantoccini::{Client, ClientBuilder, Locator};
use hub_testkit::binary::KillOnDrop;
use hub_testkit::{Running, TestEnv};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Starts a manager for `env`.
pub async fn manager(env: &TestEnv) -> Running {
    env.start(integration_manager::build, env.config()).await
}

/// A headless Chromium with its chromedriver, closed on drop.
pub struct Browser {
    /// The WebDriver session.
    pub c: Client,
    base: String,
    _driver: KillOnDrop,
}

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path).chain([
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/lib/chromium"),
        ]) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

impl Browser {
    /// Opens a browser on `manager`'s console, 1280 px wide.
    pub async fn open(manager: &Running) -> Self {
        let driver = find_binary(&["chromedriver"]).expect(
            "chromedriver is missing: install the Debian packages chromium and chromium-driver (cargo xtask test does)",
        );
        let chromium = find_binary(&["chromium", "chromium-browser", "google-chrome"]).expect(
            "chromium is missing: install the Debian package chromium (cargo xtask test does)",
        );
        let port = hub_testkit::binary::free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = KillOnDrop(Some(child));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--lang=en-US"],
            }
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let mut last = None;
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => {
                    return Self {
                        c,
                        base: manager.base.clone(),
                        _driver: driver,
                    };
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("could not start a headless Chromium session: {last:?}");
    }

    /// Goes to `path` of the console's origin.
    pub async fn go(&self, path: &str) {
        self.c
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// The element `css` matches, waiting up to 20 s for it (a loaded
    /// machine is slow).
    pub async fn el(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                let text = match self.c.find(Locator::Css("body")).await {
                    Ok(b) => b.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                panic!("no element {css} ({e}); the page shows:\n{text}")
            }
        }
    }

    /// Types `text` into the input `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.el(css).await;
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    /// Clicks `css`.
    pub async fn click(&self, css: &str) {
        self.el(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// The text of `css`.
    pub async fn text(&self, css: &str) -> String {
        // htmx may swap the element between finding and reading it: find
        // it again then.
        let mut last = None;
        for _ in 0..50 {
            match self.el(css).await.text().await {
                Ok(t) => return t,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("could not read the text of {css}: {last:?}")
    }

    /// The whole page's text.
    pub async fn page_text(&self) -> String {
        self.text("body").await
    }

    /// Waits up to 20 s for the page's text to contain `needle`.
    pub async fn wait_text(&self, needle: &str) {
        for _ in 0..200 {
            if self.page_text().await.contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the page never showed {needle:?}; it shows:\n{}",
            self.page_text().await
        );
    }

    /// Waits up to 10 s for the browser to be at `path` (a click's
    /// navigation may still be under way).
    pub async fn at(&self, path: &str) {
        for _ in 0..100 {
            if self.path().await == path {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the browser is at {}, not {path}; the page shows:\n{}",
            self.path().await,
            self.page_text().await
        );
    }

    /// The current path.
    pub async fn path(&self) -> String {
        self.c.current_url().await.expect("url").path().to_owned()
    }

    /// Saves a screenshot as `target/console-screenshots/<name>.png`.
    pub async fn shot(&self, name: &str) {
        let png = self.c.screenshot().await.expect("screenshot");
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).expect("create the screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("save the screenshot");
    }

    /// Fails when the page recorded a script error, a CSP violation or a
    /// failed htmx request (`assets/console.js` records them).
    pub async fn no_script_errors(&self) {
        let errors = self
            .c
            .execute(
                "return window.consoleErrors || ['console.js did not load'];",
                vec![],
            )
            .await
            .expect("read the page's errors");
        assert_eq!(errors, json!([]), "the page had script errors");
    }

    /// Signs in as a tenant through the sign-in form.
    pub async fn sign_in(&self, tenant: &str, key: &str) {
        self.go("/console/sign-in").await;
        self.fill("#tenant", tenant).await;
        self.fill("#api_key", key).await;
        // Marks this document, so the wait below sees the answer's page
        // (a navigation started before it lands would race the sign-in).
        self.c
            .execute("window.signInPending = true; return null;", vec![])
            .await
            .expect("mark the sign-in page");
        self.click("form[action='/console/sign-in'] button[type=submit]")
            .await;
        for _ in 0..200 {
            let done = self
                .c
                .execute(
                    "return window.signInPending !== true && document.readyState === 'complete';",
                    vec![],
                )
                .await
                .unwrap_or(json!(false));
            if done == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the sign-in form's answer did not load within 20 s");
    }

    /// Ends the WebDriver session.
    pub async fn close(self) {
        let _ = self.c.close().await;
    }
}

/// `target/console-screenshots` of the workspace (or of `CARGO_TARGET_DIR`).
fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("console-screenshots")
}
