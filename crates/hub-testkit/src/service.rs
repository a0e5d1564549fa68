//! One test's world: a database, a bus prefix, and services started on port 0.

use crate::TestDb;
use crate::api::Call;
use base64::Engine;
use hub_platform::{Config, ServiceApp, StartupError};
use rand::RngCore;
use reqwest::Method;
use serde_json::{Value, json};
use std::future::Future;
use tokio_util::sync::CancellationToken;

/// The operator token every test service is configured with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Services every test may start (for bus cleanup).
const SERVICES: &[&str] = &[
    "integration-manager",
    "integration-sync",
    "webhook-dispatcher",
];

/// A test's database, bus prefix and HTTP client.
pub struct TestEnv {
    /// The test's own database.
    pub db: TestDb,
    /// The test's own bus prefix.
    pub prefix: String,
    /// The credential encryption key of this test's services.
    pub encryption_key: String,
    /// An HTTP client.
    pub http: reqwest::Client,
    pool: sqlx::PgPool,
}

/// A running service.
pub struct Running {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    token: CancellationToken,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The process of a spawned binary.
    pid: Option<u32>,
}

impl Running {
    /// A service this test did not start (a spawned binary), for the helpers
    /// that take a [`Running`].
    pub fn external(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            token: CancellationToken::new(),
            handle: tokio::spawn(async { Ok(()) }),
            pid: None,
        }
    }

    /// Kills a spawned binary at once (SIGKILL: no shutdown, no flush), as
    /// a crash or an OOM kill would, and waits until it is gone.
    pub async fn kill(self) {
        let pid = self.pid.expect("kill: only a spawned binary can be killed");
        let _ = std::process::Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
        self.stop().await;
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Shuts the service down gracefully and waits for it.
    pub async fn stop(self) {
        self.token.cancel();
        let _ = self.handle.await;
    }
}

impl TestEnv {
    /// A new database and bus prefix.
    pub async fn new() -> Self {
        let db = TestDb::new().await;
        let pool = sqlx::PgPool::connect(&db.url)
            .await
            .expect("connect test database");
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self {
            prefix: format!("t{}.", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            encryption_key: base64::engine::general_purpose::STANDARD.encode(key),
            db,
            http: reqwest::Client::new(),
            pool,
        }
    }

    /// A pool on the test database, for assertions on what was stored.
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    /// The one value `sql` selects from the test database, with `arg` as `$1`.
    pub async fn scalar<'q, T, A>(&self, sql: &'static str, arg: A) -> T
    where
        (T,): for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
        T: Send + Unpin,
        A: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        sqlx::query_scalar(sql)
            .bind(arg)
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Waits up to `secs` seconds (panicking with `what` after them) until
    /// the number `sql` counts, with `arg` as `$1`, satisfies `done`;
    /// returns it.
    pub async fn count_until<'q, A>(
        &self,
        secs: u64,
        what: &str,
        sql: &'static str,
        arg: A,
        done: impl Fn(i64) -> bool,
    ) -> i64
    where
        A: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Clone,
    {
        crate::eventually(secs, what, || async {
            let n: i64 = self.scalar(sql, arg.clone()).await;
            done(n).then_some(n)
        })
        .await
    }

    /// The number `sql` (a `SELECT COUNT(*) …` without parameters) counts in
    /// the test database.
    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Waits until the outbox is empty: every event written so far is
    /// published and retired, so the hub's own events are in the audit
    /// trail (it records each when its outbox row is retired).
    pub async fn outbox_retired(&self) {
        crate::eventually(15, "every outbox event published and retired", || async {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
                .fetch_one(&self.pool)
                .await
                .expect("count outbox rows");
            (n == 0).then_some(())
        })
        .await
    }

    /// The configuration a test service runs with: this test's database and
    /// prefix, port 0, fast redelivery.
    pub fn config(&self) -> Config {
        let mut c = Config::defaults(0);
        c.hub_host = "127.0.0.1".to_owned();
        c.database_url = self.db.url.clone();
        c.hub_database_max_connections = 5;
        c.rabbitmq_url = crate::rabbitmq_url();
        c.hub_bus_prefix = self.prefix.clone();
        c.hub_bus_queue_expires_ms = Some(300_000);
        c.hub_bus_max_attempts = 3;
        c.hub_bus_retry_base_ms = 50;
        c.hub_bus_retry_max_ms = 200;
        c.hub_admin_token = Some(ADMIN_TOKEN.to_owned());
        c.integration_encryption_key = Some(self.encryption_key.clone());
        c.hub_startup_timeout_seconds = 20;
        c.hub_shutdown_timeout_seconds = 5;
        c.hub_http_workers = 1;
        // Fake providers and receivers listen on loopback.
        c.hub_allow_private_targets = true;
        c.hub_allow_insecure_urls = true;
        c
    }

    /// Builds a service with `build` (the crate's own `build`) and runs it.
    pub async fn start<F, Fut>(&self, build: F, config: Config) -> Running
    where
        F: FnOnce(Config) -> Fut,
        Fut: Future<Output = Result<ServiceApp, StartupError>>,
    {
        let app = build(config).await.expect("service starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let token = app.shutdown_token();
        let handle = tokio::spawn(app.run());
        Running {
            base,
            token,
            handle,
            pid: None,
        }
    }

    /// Runs service binary `name` of this workspace (built first if it is not
    /// up to date) configured for `config` by environment variables alone,
    /// and waits until it is ready. For tests of one service that need
    /// another: they start it as a process, without depending on its crate.
    pub async fn spawn(&self, name: &str, config: Config) -> Running {
        self.spawn_with(name, config, None).await
    }

    /// [`spawn`](Self::spawn), with everything the process prints (its
    /// tracing output, at `RUST_LOG=debug`, JSON lines) appended to the file
    /// `log`, for tests that search what a service logged.
    pub async fn spawn_logged(&self, name: &str, config: Config, log: &std::path::Path) -> Running {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
        self.spawn_with(name, config, Some(file)).await
    }

    async fn spawn_with(&self, name: &str, config: Config, log: Option<std::fs::File>) -> Running {
        let binary = built_binary(name);
        let port = crate::binary::free_port();
        let mut vars = vec![("PORT".to_owned(), port.to_string())];
        let Value::Object(fields) = serde_json::to_value(&config).expect("config serializes")
        else {
            unreachable!("a config is an object")
        };
        for (key, value) in fields {
            let value = match value {
                Value::Null => continue,
                Value::String(s) => s,
                other => other.to_string(),
            };
            if key != "port" {
                vars.push((key.to_uppercase(), value));
            }
        }
        let mut cmd = std::process::Command::new(&binary);
        cmd.env_clear()
            .envs(vars)
            .stdin(std::process::Stdio::null());
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        if let Some(file) = log {
            let stderr = file.try_clone().expect("clone the log file");
            cmd.env("RUST_LOG", "debug")
                .env("LOG_FORMAT", "json")
                .stdout(file)
                .stderr(stderr);
        }
        let child = crate::binary::KillOnDrop(Some(cmd.spawn().expect("start service binary")));
        let pid = child.0.as_ref().map(std::process::Child::id);
        let base = format!("http://127.0.0.1:{port}");
        let token = CancellationToken::new();
        let stop = token.clone();
        let handle = tokio::spawn(async move {
            let mut child = child;
            stop.cancelled().await;
            let mut process = child.0.take().expect("child");
            crate::binary::terminate(&process);
            tokio::task::spawn_blocking(move || process.wait().map(drop))
                .await
                .expect("wait for the service binary")
        });
        crate::binary::wait_ready(&self.http, &base, 60).await;
        Running {
            base,
            token,
            handle,
            pid,
        }
    }

    /// Creates a tenant and an API key through the admin API of `manager`;
    /// returns `(tenant id, api key)`.
    pub async fn tenant(&self, manager: &Running, slug: &str) -> (String, String) {
        let body = json!({ "name": format!("Tenant {slug}"), "slug": slug });
        let t = self
            .admin_created(manager, "/api/v1/admin/tenants", body)
            .await;
        let id = t["id"].as_str().expect("tenant id").to_owned();
        let keys = format!("/api/v1/admin/tenants/{id}/api-keys");
        let k = self
            .admin_created(manager, &keys, json!({ "name": "test" }))
            .await;
        (id, k["key"].as_str().expect("key").to_owned())
    }

    /// POSTs `body` to `path` of the admin API of `manager`, expecting 201;
    /// returns what was created.
    pub async fn admin_created(&self, manager: &Running, path: &str, body: Value) -> Value {
        let a = self
            .admin(Method::POST, &manager.url(path))
            .json(&body)
            .call()
            .await;
        a.ok(201).clone()
    }

    /// A request of the operator API (with the admin token).
    pub fn admin(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        self.http.request(method, url).bearer_auth(ADMIN_TOKEN)
    }

    /// A request as `tenant` with `key`.
    pub fn as_tenant(
        &self,
        method: Method,
        url: &str,
        tenant: &str,
        key: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(key)
            .header("X-Tenant-ID", tenant)
    }

    /// A GET as `tenant` with `key`.
    pub fn get_as(&self, url: &str, tenant: &str, key: &str) -> reqwest::RequestBuilder {
        self.as_tenant(Method::GET, url, tenant, key)
    }

    /// A GET as `tenant` with `key` that must succeed: its JSON body.
    pub async fn get_json_as(&self, url: &str, tenant: &str, key: &str) -> serde_json::Value {
        let res = self.get_as(url, tenant, key).send().await.expect("GET");
        let status = res.status();
        let body = res.text().await.expect("body");
        assert!(status.is_success(), "GET {url} answered {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}"))
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        crate::run_detached(async move {
            let amqp = crate::amqp::Amqp::connect().await;
            amqp.delete_prefix(&prefix, SERVICES).await;
        });
    }
}

/// The path of this workspace's binary `name`, built with cargo first (once
/// per test process) if it is missing or older than the code it is built from.
/// `cargo nextest run --workspace` has built it already; building it again
/// with `-p` would compile dependencies anew for that package's features.
fn built_binary(name: &str) -> std::path::PathBuf {
    static CHECKED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    // Tests run from <target>/<profile>/deps/<test binary>.
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target directory");
    let binary = dir.join(name);
    if !checked.iter().any(|b| b == name) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let built = std::fs::metadata(&binary).and_then(|m| m.modified()).ok();
        if built.is_none_or(|at| newest_source(&root) > Some(at)) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let mut cmd = std::process::Command::new(cargo);
            cmd.args(["build", "--quiet", "-p", name, "--bin", name])
                .current_dir(&root);
            if dir.file_name().is_some_and(|p| p == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build");
            assert!(status.success(), "cargo build -p {name} failed");
        }
        checked.push(name.to_owned());
    }
    binary
}

/// When the code the service binaries are built from last changed: the
/// manifests, the lock file, migrations and every crate's `src`, `build.rs`
/// and embedded providers (not its tests).
fn newest_source(root: &std::path::Path) -> Option<std::time::SystemTime> {
    fn walk(path: &std::path::Path, newest: &mut Option<std::time::SystemTime>) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                walk(&entry.path(), newest);
            }
        } else if let Ok(at) = meta.modified() {
            *newest = (*newest).max(Some(at));
        }
    }
    let mut newest = None;
    for top in ["Cargo.toml", "Cargo.lock", "migrations"] {
        walk(&root.join(top), &mut newest);
    }
    for krate in std::fs::read_dir(root.join("crates"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for part in ["Cargo.toml", "build.rs", "src", "providers"] {
            walk(&krate.path().join(part), &mut newest);
        }
    }
    newest
}
