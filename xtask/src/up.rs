//! `cargo xtask up`: everything a developer needs, in the foreground.

use crate::infra::{self, Endpoint};
use crate::ui;
use crate::{SERVICES, Service};
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Set by Ctrl-C / SIGTERM / SIGHUP.
static STOP: AtomicBool = AtomicBool::new(false);

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// hub-testkit's `fake-providers` binary, as a member of the fleet (its `port` is
/// the default first port; the real one comes from [`Fakes`]).
const FAKES: Service = Service {
    package: "fake-providers",
    label: "fakes",
    port: DEFAULT_FAKES_BASE_PORT,
    color: "32",
};
const FAKES_PORT_VAR: &str = "FAKE_PROVIDERS_BASE_PORT";
const DEFAULT_FAKES_BASE_PORT: u16 = 3901;
/// The fakes at the base port + their index: the fixed layout documented in
/// `crates/hub-testkit/src/bin/fake-providers.rs`.
const FAKE_CODES: [&str; 9] = [
    "HUBSPOT",
    "QUICKBOOKS",
    "XERO",
    "SAMSARA",
    "NEWSAPI",
    "SALESFORCE",
    "ZOHO",
    "KEEPTRUCKIN",
    "ALPHA_VANTAGE",
];
/// The token (API key) every fake accepts (`hub_testkit::fakes::DEFAULT_TOKEN`).
const FAKE_TOKEN: &str = "fake-valid-token";

pub fn run() -> Result<ExitCode> {
    let fakes = Fakes::from_env()?;
    for svc in SERVICES {
        if port_in_use(svc.port) {
            bail!(
                "port {} ({}) is already in use: is another `cargo xtask up` running? Stop it first",
                svc.port,
                svc.package
            );
        }
    }
    for (code, port) in fakes.ports() {
        if port_in_use(port) {
            bail!(
                "port {port} (fake {code} provider) is already in use: is another `cargo xtask up` \
                 running? Stop it first, or set {FAKES_PORT_VAR} to use other ports"
            );
        }
    }

    let database_url = infra::database_url();
    let rabbitmq_url = infra::rabbitmq_url();
    infra::ensure_postgres(&database_url, "DATABASE_URL")?;
    infra::ensure_rabbitmq(&rabbitmq_url, "RABBITMQ_URL")?;
    infra::create_database_and_migrate(&database_url)?;

    let secrets = DevEnv::load_or_create(&crate::workspace_root().join(".hub/dev.env"))?;

    ui::step("building the services and the fake providers");
    let started = Instant::now();
    crate::build_services()?;
    build_fakes()?;
    ui::info(&format!("built in {}", ui::secs(started.elapsed())));

    ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst))
        .context("could not install the signal handler")?;

    ui::step("starting the fake providers and the services");
    let mut fleet = Fleet::default();
    let mut cmd = Command::new(fakes_binary()?);
    cmd.current_dir(crate::workspace_root())
        .env(FAKES_PORT_VAR, fakes.base_port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    fleet.spawn(FAKES, cmd, &fakes.port_range())?;

    ui::info(
        "HUB_ALLOW_PRIVATE_TARGETS=true: a development setting (the fakes listen on loopback); \
         never set it in production",
    );
    let log_format = infra::env_or("LOG_FORMAT", "pretty");
    for svc in SERVICES {
        let mut cmd = Command::new(crate::service_binary(svc)?);
        cmd.current_dir(crate::workspace_root())
            .env("PORT", svc.port.to_string())
            .env("DATABASE_URL", &database_url)
            .env("RABBITMQ_URL", &rabbitmq_url)
            .env("HUB_ADMIN_TOKEN", &secrets.admin_token)
            .env("INTEGRATION_ENCRYPTION_KEY", &secrets.encryption_key)
            .env("LOG_FORMAT", &log_format)
            .env("HUB_ALLOW_PRIVATE_TARGETS", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group: Ctrl-C reaches xtask only, which stops the services in order.
            .process_group(0);
        fleet.spawn(svc, cmd, &format!("port {}", svc.port))?;
    }

    wait_ready(&mut fleet, &fakes)?;
    if STOP.load(Ordering::SeqCst) {
        fleet.stop("signal received");
        return Ok(ExitCode::SUCCESS);
    }

    ui::step("creating the demo tenant");
    let demo = create_demo(&secrets)?;
    ui::step("creating the demo integration (NewsAPI, against the fake)");
    let integration = match demo_integration(&demo, &fakes) {
        Ok(integration) => Some(integration),
        Err(e) => {
            ui::warn(&format!(
                "no demo integration: {e:#}\n    the services are running; carry on without it"
            ));
            None
        }
    };
    banner(&demo, integration.as_ref(), &fakes, &secrets.path);

    // Foreground until a signal or a service dies.
    loop {
        if STOP.load(Ordering::SeqCst) {
            println!();
            fleet.stop("signal received");
            return Ok(ExitCode::SUCCESS);
        }
        if let Some((svc, status)) = fleet.exited()? {
            fleet.stop(&format!("{} exited", svc.label));
            bail!("{} exited ({status}); see its output above", svc.package);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Where the fake providers listen: `FAKE_PROVIDERS_BASE_PORT` (default 3901) and up.
struct Fakes {
    base_port: u16,
}

impl Fakes {
    fn from_env() -> Result<Self> {
        let value = infra::env_or(FAKES_PORT_VAR, &DEFAULT_FAKES_BASE_PORT.to_string());
        let max = u16::MAX - (FAKE_CODES.len() as u16 - 1);
        match value.trim().parse::<u16>() {
            Ok(base_port) if base_port > 0 && base_port <= max => Ok(Self { base_port }),
            _ => bail!("{FAKES_PORT_VAR} must be a port from 1 to {max}, not {value:?}"),
        }
    }

    /// Each fake's provider code and port.
    fn ports(&self) -> Vec<(&'static str, u16)> {
        FAKE_CODES
            .iter()
            .zip(self.base_port..)
            .map(|(code, port)| (*code, port))
            .collect()
    }

    fn port_range(&self) -> String {
        let last = self.base_port + (FAKE_CODES.len() as u16 - 1);
        format!("ports {}-{last}", self.base_port)
    }

    fn port_of(&self, code: &str) -> u16 {
        self.ports()
            .into_iter()
            .find(|(c, _)| *c == code)
            .map(|(_, port)| port)
            .expect("a known fake")
    }

    /// The fake NewsAPI's base URL (with its `/v2` path prefix).
    fn newsapi_base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port_of("NEWSAPI"))
    }
}

/// Whether something accepts connections on this loopback port.
fn port_in_use(port: u16) -> bool {
    Endpoint {
        host: "127.0.0.1".into(),
        port,
    }
    .reachable()
}

/// `cargo build -p hub-testkit --bin fake-providers` (on its own, so the services'
/// dependencies keep the features they are built with everywhere else).
fn build_fakes() -> Result<()> {
    let mut cmd = crate::cargo();
    cmd.args(["build", "-p", "hub-testkit", "--bin", FAKES.package]);
    ui::run_checked(
        &mut cmd,
        "the build of the fake providers failed (see the errors above)",
    )
}

fn fakes_binary() -> Result<PathBuf> {
    crate::service_binary(FAKES)
}

/// `.hub/dev.env`: secrets generated once so restarts can read earlier data.
struct DevEnv {
    path: PathBuf,
    encryption_key: String,
    admin_token: String,
    /// The encryption key was made by this run (no dev.env had one, and
    /// the environment gives none).
    fresh_key: bool,
}

impl DevEnv {
    fn load_or_create(path: &Path) -> Result<Self> {
        ui::step("loading dev secrets");
        let mut key = None;
        let mut token = None;
        let existed = path.exists();
        if existed {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
                match line.split_once('=') {
                    Some(("INTEGRATION_ENCRYPTION_KEY", v)) if !v.trim().is_empty() => {
                        key = Some(v.trim().to_owned())
                    }
                    Some(("HUB_ADMIN_TOKEN", v)) if !v.trim().is_empty() => {
                        token = Some(v.trim().to_owned())
                    }
                    _ => {}
                }
            }
        }
        let complete = key.is_some() && token.is_some();
        let key = key.unwrap_or_else(|| {
            base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
        });
        let token = token
            .unwrap_or_else(|| format!("hubadmin_{}", hex::encode(rand::random::<[u8; 24]>())));
        if !matches!(base64::engine::general_purpose::STANDARD.decode(&key), Ok(bytes) if bytes.len() == 32)
        {
            bail!(
                "INTEGRATION_ENCRYPTION_KEY in {} is not base64 of 32 bytes; fix it, or delete the file \
                 (credentials stored with the old key then become unreadable)",
                path.display()
            );
        }
        if !complete {
            std::fs::create_dir_all(path.parent().expect("dev.env has a parent"))?;
            let text = format!(
                "# Generated by `cargo xtask up`; keep it so restarts can read earlier data.\n\
                 # .hub/ is gitignored: never commit these.\n\
                 INTEGRATION_ENCRYPTION_KEY={key}\nHUB_ADMIN_TOKEN={token}\n"
            );
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        ui::info(&format!(
            "{} {}",
            if complete { "using" } else { "wrote" },
            path.display()
        ));
        // The environment wins, for whoever needs other values.
        let from_env_key = from_env("INTEGRATION_ENCRYPTION_KEY");
        let fresh_key = !complete && from_env_key.is_none();
        let encryption_key = from_env_key.unwrap_or(key);
        let admin_token = from_env("HUB_ADMIN_TOKEN").unwrap_or(token);
        Ok(Self {
            path: path.to_owned(),
            encryption_key,
            admin_token,
            fresh_key,
        })
    }
}

fn from_env(var: &str) -> Option<String> {
    let value = std::env::var(var).ok().filter(|v| !v.trim().is_empty())?;
    ui::info(&format!("{var} taken from the environment"));
    Some(value)
}

/// The running services and the threads copying their output.
#[derive(Default)]
struct Fleet {
    children: Vec<(Service, Child)>,
    readers: Vec<JoinHandle<()>>,
}

impl Fleet {
    /// Starts `cmd` as fleet member `svc`; `listens` says where, for the log.
    fn spawn(&mut self, svc: Service, mut cmd: Command, listens: &str) -> Result<()> {
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start {}", ui::show(&cmd)))?;
        let prefix = format!("{} | ", ui::paint(svc.color, &format!("{:<8}", svc.label)));
        if let Some(out) = child.stdout.take() {
            self.readers.push(forward(out, prefix.clone()));
        }
        if let Some(err) = child.stderr.take() {
            self.readers.push(forward(err, prefix));
        }
        ui::info(&format!(
            "{} started (pid {}, {listens})",
            svc.package,
            child.id()
        ));
        self.children.push((svc, child));
        Ok(())
    }

    /// The first service that has exited, if any.
    fn exited(&mut self) -> Result<Option<(Service, ExitStatus)>> {
        for (svc, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                return Ok(Some((*svc, status)));
            }
        }
        Ok(None)
    }

    /// SIGTERM to every running member, up to 15 s to exit, then SIGKILL.
    fn stop(&mut self, why: &str) {
        if self.children.is_empty() {
            return;
        }
        ui::step(&format!("stopping the services and the fakes ({why})"));
        for (svc, child) in &mut self.children {
            if matches!(child.try_wait(), Ok(None)) {
                let pid = i32::try_from(child.id()).expect("pid fits in i32");
                if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGTERM) {
                    ui::warn(&format!("could not signal {}: {e}", svc.label));
                }
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut pending: Vec<(Service, Child)> = std::mem::take(&mut self.children);
        while !pending.is_empty() {
            let mut still = Vec::new();
            for (svc, mut child) in pending {
                match child.try_wait() {
                    Ok(Some(status)) => ui::info(&format!("{} exited ({status})", svc.label)),
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        ui::warn(&format!(
                            "{} did not stop within {}s; killed",
                            svc.label,
                            STOP_TIMEOUT.as_secs()
                        ));
                    }
                    Ok(None) => still.push((svc, child)),
                    Err(e) => ui::warn(&format!("{}: {e}", svc.label)),
                }
            }
            pending = still;
            if !pending.is_empty() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // Let the last log lines through.
        let until = Instant::now() + Duration::from_secs(1);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Any early return (an error) still stops the services.
        self.stop("on error");
    }
}

/// Copies a child's output to ours, line by line, behind a fixed-width colored label.
fn forward(stream: impl Read + Send + 'static, prefix: String) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{prefix}{}", text.trim_end_matches(['\n', '\r']));
                }
            }
        }
    })
}

/// A plain-HTTP client that returns 4xx/5xx as responses and ignores proxy variables.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// Polls `GET /ready` on every service until all answer 200, and the fakes'
/// ports until all accept connections.
fn wait_ready(fleet: &mut Fleet, fakes: &Fakes) -> Result<()> {
    ui::step("waiting for /ready");
    let agent = agent(Duration::from_secs(2));
    let start = Instant::now();
    let mut pending: Vec<Service> = SERVICES.to_vec();
    let mut fakes_pending = true;
    while !pending.is_empty() || fakes_pending {
        if STOP.load(Ordering::SeqCst) {
            return Ok(());
        }
        if let Some((svc, status)) = fleet.exited()? {
            fleet.stop(&format!("{} exited early", svc.label));
            bail!(
                "{} exited early ({status}); see its output above",
                svc.package
            );
        }
        if fakes_pending && fakes.ports().iter().all(|&(_, port)| port_in_use(port)) {
            fakes_pending = false;
            ui::info(&format!(
                "fake providers listening ({})",
                ui::secs(start.elapsed())
            ));
        }
        pending.retain(|svc| {
            let url = format!("http://127.0.0.1:{}/ready", svc.port);
            let ready = agent.get(&url).call().is_ok_and(|r| r.status() == 200);
            if ready {
                ui::info(&format!(
                    "{} ready ({})",
                    svc.package,
                    ui::secs(start.elapsed())
                ));
            }
            !ready
        });
        if start.elapsed() > READY_TIMEOUT {
            let mut names: Vec<&str> = pending.iter().map(|s| s.package).collect();
            if fakes_pending {
                names.push(FAKES.package);
            }
            bail!(
                "not ready after {}s: {} (GET /ready did not answer 200, or a fake's port did not \
                 accept connections; see the output above)",
                READY_TIMEOUT.as_secs(),
                names.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

struct Demo {
    tenant_id: String,
    api_key: String,
}

const MANAGER: &str = "http://127.0.0.1:3026";

fn call(
    agent: &ureq::Agent,
    method: &str,
    path: &str,
    auth: &str,
    tenant: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<(u16, serde_json::Value)> {
    let url = format!("{MANAGER}{path}");
    let auth = format!("Bearer {auth}");
    let headers = |req| with_headers(req, &auth, tenant);
    let response = match (method, body) {
        ("GET", None) => with_headers(agent.get(&url), &auth, tenant).call(),
        ("POST" | "PUT", body) => {
            let req = if method == "POST" {
                agent.post(&url)
            } else {
                agent.put(&url)
            };
            let req = headers(req);
            match body {
                Some(body) => req.content_type("application/json").send(body.to_string()),
                None => req.send_empty(),
            }
        }
        _ => unreachable!("unsupported request shape"),
    };
    let mut response = response.with_context(|| format!("{method} {url} failed"))?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Ok((status, json))
}

fn with_headers<B>(
    req: ureq::RequestBuilder<B>,
    auth: &str,
    tenant: Option<&str>,
) -> ureq::RequestBuilder<B> {
    let req = req.header("Authorization", auth);
    match tenant {
        Some(tenant) => req.header("X-Tenant-ID", tenant),
        None => req,
    }
}

fn field<'a>(json: &'a serde_json::Value, name: &str, what: &str) -> Result<&'a str> {
    json.get(name)
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow!("{what} has no `{name}`: {json}"))
}

/// Creates (or finds) the `demo` tenant and gives it a fresh API key.
fn create_demo(secrets: &DevEnv) -> Result<Demo> {
    let admin_token = secrets.admin_token.as_str();
    let agent = agent(Duration::from_secs(10));
    let body = serde_json::json!({"name": "Demo Freight", "slug": "demo"});
    let (status, json) = call(
        &agent,
        "POST",
        "/api/v1/admin/tenants",
        admin_token,
        None,
        Some(&body),
    )?;
    let tenant_id = match status {
        201 => {
            ui::info("created tenant `demo`");
            field(&json, "id", "the created tenant")?.to_owned()
        }
        409 => {
            let (status, json) = call(
                &agent,
                "GET",
                "/api/v1/admin/tenants?slug=demo",
                admin_token,
                None,
                None,
            )?;
            if status != 200 {
                bail!("GET /api/v1/admin/tenants?slug=demo answered {status}: {json}");
            }
            let tenant = json.get("data").and_then(|d| d.get(0)).ok_or_else(|| {
                anyhow!("tenant `demo` exists but the lookup returned none: {json}")
            })?;
            ui::info("tenant `demo` already exists");
            if secrets.fresh_key {
                // The database outlived the dev.env that sealed its secrets
                // (another checkout on this machine, or .hub/ deleted).
                ui::warn(&format!(
                    "the database was filled by a run with another encryption key: secrets stored \
                     then cannot be read with the new one in {}. Copy that run's .hub/dev.env here, \
                     or start afresh with `dropdb -h 127.0.0.1 -U postgres integration_hub`",
                    secrets.path.display()
                ));
            }
            field(tenant, "id", "the tenant")?.to_owned()
        }
        _ => bail!("POST /api/v1/admin/tenants answered {status}: {json}"),
    };
    let path = format!("/api/v1/admin/tenants/{tenant_id}/api-keys");
    let (status, json) = call(
        &agent,
        "POST",
        &path,
        admin_token,
        None,
        Some(&serde_json::json!({"name": "demo"})),
    )?;
    if status != 201 {
        bail!("POST {path} answered {status}: {json}");
    }
    let api_key = field(&json, "key", "the created API key")?.to_owned();
    ui::info("created a new API key");

    let (status, json) = call(
        &agent,
        "GET",
        "/api/v1/me",
        &api_key,
        Some(&tenant_id),
        None,
    )?;
    if status == 200 {
        ui::info("GET /api/v1/me with the new key: 200");
    } else {
        ui::warn(&format!(
            "GET /api/v1/me with the new key answered {status}: {json}"
        ));
    }
    Ok(Demo { tenant_id, api_key })
}

/// The demo integration: NewsAPI against the fake, enabled.
struct DemoIntegration {
    id: String,
    status: String,
    base_url: String,
}

const DEMO_PROVIDER: &str = "NEWSAPI";

/// Creates the demo tenant's NewsAPI integration pointing at the fake (or finds the
/// one an earlier run created), then enables it, which runs the connection test.
fn demo_integration(demo: &Demo, fakes: &Fakes) -> Result<DemoIntegration> {
    // `enable` waits for the provider's test call (30 s integration timeout).
    let agent = agent(Duration::from_secs(45));
    let (key, tenant) = (demo.api_key.as_str(), Some(demo.tenant_id.as_str()));
    let base_url = fakes.newsapi_base_url();
    let body = serde_json::json!({
        "provider_code": DEMO_PROVIDER,
        "name": "Demo: NewsAPI (offline fake)",
        "config": {"base_url": base_url},
        "credentials": {"api_key": FAKE_TOKEN},
    });
    let (status, json) = call(
        &agent,
        "POST",
        "/api/v1/integrations",
        key,
        tenant,
        Some(&body),
    )?;
    let id = match status {
        200 | 201 => {
            let id = field(&json, "id", "the created integration")?.to_owned();
            ui::info(&format!("created integration {id}"));
            id
        }
        409 => {
            let path =
                format!("/api/v1/integrations?provider={DEMO_PROVIDER}&environment=PRODUCTION");
            let (status, json) = call(&agent, "GET", &path, key, tenant, None)?;
            if status != 200 {
                bail!("GET {path} answered {status}: {json}");
            }
            let existing = json.get("data").and_then(|d| d.get(0)).ok_or_else(|| {
                anyhow!("POST /api/v1/integrations answered 409 but GET {path} found none: {json}")
            })?;
            let id = field(existing, "id", "the integration")?.to_owned();
            ui::info(&format!("integration {id} exists (from an earlier run)"));
            // Its config points at this run's fake (another
            // FAKE_PROVIDERS_BASE_PORT, or edited), and its credentials are
            // stored again, sealed with this run's key (an earlier run may
            // have had another).
            let config = existing.get("config");
            let moved = config
                .and_then(|c| c.get("base_url"))
                .and_then(|v| v.as_str())
                != Some(base_url.as_str());
            let mut config = config
                .filter(|c| c.is_object())
                .cloned()
                .unwrap_or_else(|| serde_json::json!({}));
            config["base_url"] = serde_json::Value::String(base_url.clone());
            let body = serde_json::json!({
                "config": config,
                "credentials": {"api_key": FAKE_TOKEN},
            });
            let path = format!("/api/v1/integrations/{id}");
            let (status, json) = call(&agent, "PUT", &path, key, tenant, Some(&body))?;
            if status != 200 {
                bail!("PUT {path} answered {status}: {json}");
            }
            if moved {
                ui::info(&format!("pointed it at {base_url}"));
            }
            id
        }
        _ => bail!("POST /api/v1/integrations answered {status}: {json}"),
    };
    let path = format!("/api/v1/integrations/{id}/enable");
    let (status, json) = call(&agent, "POST", &path, key, tenant, None)?;
    if status != 200 {
        bail!("POST {path} answered {status}: {json}");
    }
    let status = field(&json, "status", "the enabled integration")?.to_owned();
    if status == "ACTIVE" {
        ui::info("enabled: the connection test against the fake passed (ACTIVE)");
    } else {
        ui::warn(&format!(
            "POST {path} answered 200 but the status is {status}: {json}"
        ));
    }
    Ok(DemoIntegration {
        id,
        status,
        base_url,
    })
}

fn banner(demo: &Demo, integration: Option<&DemoIntegration>, fakes: &Fakes, dev_env: &Path) {
    let rule = ui::paint("1;32", &"─".repeat(72));
    println!("\n{rule}");
    println!("  {}", ui::paint("1;32", "Integration Hub is running"));
    println!();
    for svc in SERVICES {
        let base = format!("http://127.0.0.1:{}", svc.port);
        println!("  {:<21} {base:<24} docs: {base}/docs", svc.package);
    }
    println!(
        "  web console           http://127.0.0.1:{}/console   (sign in with the demo tenant id and API key)",
        SERVICES[0].port
    );
    println!();
    println!("  demo tenant id        {}", demo.tenant_id);
    println!(
        "  demo API key          {}   (new on every start)",
        ui::paint("1", &demo.api_key)
    );
    println!("  admin token, keys     {}", dev_env.display());
    match integration {
        Some(i) => println!(
            "  demo integration      {}   {DEMO_PROVIDER}, {} (fake at {})",
            ui::paint("1", &i.id),
            i.status,
            i.base_url
        ),
        None => println!("  demo integration      none (see the warning above)"),
    }
    println!(
        "  fake providers        127.0.0.1 {} ({}), token {FAKE_TOKEN}",
        fakes.port_range(),
        FAKE_CODES.join(", ")
    );
    println!();
    println!("  try:");
    let auth = format!(
        "-H 'Authorization: Bearer {}' -H 'X-Tenant-ID: {}'",
        demo.api_key, demo.tenant_id
    );
    println!("  curl -s {auth} {MANAGER}/api/v1/me");
    if let Some(i) = integration {
        println!(
            "  curl -s {auth} {MANAGER}/api/v1/integrations/{}/health",
            i.id
        );
        println!(
            "  curl -s -X POST {auth} {MANAGER}/api/v1/integrations/{}/test",
            i.id
        );
        println!(
            "  curl -s {auth} '{MANAGER}/api/v1/integrations/{}/proxy/top-headlines?country=us'",
            i.id
        );
        println!(
            "  curl -s {auth} {MANAGER}/api/v1/integrations/{}/logs",
            i.id
        );
    }
    println!("  OAuth against the fakes: README, \"API gateway\"");
    println!();
    println!("  Ctrl-C stops the three services and the fakes.");
    println!("{rule}\n");
}
