//! `cargo xtask bench gateway [--seconds N] [--connections LIST |
//! --concurrency N] [--warmup N] [--rate N] [--manager PATH]`: the API
//! gateway benchmark of issue 27 (item 8).
//!
//! Builds the manager and the `fake-providers` binary in release (with
//! `--manager`, runs that manager binary instead of building one), starts
//! the fakes with request recording off and the manager against a fresh
//! database (created, migrated; dropped afterwards) and the local RabbitMQ,
//! with private targets allowed and request and response bodies logged.
//! Through the API it creates a tenant, an API key and a HubSpot
//! integration pointing at the fake HubSpot, enables it (the connection
//! test) and raises its rate limit far out of reach, so that the limiter's
//! bookkeeping is measured but never its waiting.
//!
//! Then, for each connection count of `--connections` (default 1, 16, 64):
//! a DIRECT run, `GET crm/v3/objects/contacts?limit=1` at the fake itself,
//! and a PROXIED run, the same call through
//! `GET /api/v1/integrations/{id}/proxy/crm/v3/objects/contacts?limit=1`
//! with the tenant's API key. Each run is that many tasks sharing one
//! reqwest client (default settings, as users' clients are), requests back
//! to back (closed loop), for an untimed `--warmup` (2 s) and the measured
//! `--seconds` (30); with `--rate N`, both runs are paced at N requests/s
//! in all instead (open loop, latency timed from when each request was
//! due): closed loop at 64 connections, latency is mostly queueing (64 in
//! flight / requests per second), and the latency the proxy itself adds
//! shows better at a rate both runs sustain. After the proxied run the bench waits until the
//! integration's `api_request_logs` rows stop growing, and compares the
//! rows written with the requests proxied: every call must be logged.
//!
//! The table gives, per level, direct and proxied requests/s and latency,
//! the latency the gateway adds (proxied minus direct percentiles, measured
//! in the same run), the non-2xx answers and the log rows; then the CPU the
//! manager, Postgres, the fakes and this process used per request (from
//! `/proc`, warm-up included). The verdict line judges the 64-connection
//! level against the target: ≥ 5,000 proxied requests/s, added p50 ≤ 1 ms,
//! no failed call and every call logged (paced with `--rate`, the rate
//! must be at least 5,000 and kept up with). Exit code 0 when met, 1 when
//! not.

use crate::bench::levels::{self, Sender};
use crate::bench::report::thousands;
use crate::infra;
use crate::ui;
use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

pub(crate) const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
/// Measured seconds per run.
const DEFAULT_SECONDS: u64 = 30;
/// Untimed seconds before each run.
const DEFAULT_WARMUP: u64 = 2;
/// The levels when `--connections` is not given.
const DEFAULT_CONNECTIONS: [usize; 3] = [1, 16, 64];
/// The provider call, below the provider's base URL.
const CALL: &str = "crm/v3/objects/contacts?limit=1";
/// The level the target is judged at.
const TARGET_CONNECTIONS: usize = 64;
/// Proxied requests/s the target asks for at [`TARGET_CONNECTIONS`].
const TARGET_PER_SEC: f64 = 5_000.0;
/// Most latency the gateway may add at the median, µs.
const TARGET_ADDED_P50_US: i64 = 1_000;
/// The integration's rate limit during the bench: out of reach.
pub(crate) const RATE_LIMIT: (i32, i32) = (100_000_000, 60);
/// How long the log-row count must stay still to count as settled.
const ROWS_SETTLED: Duration = Duration::from_secs(2);
/// Longest wait for the log rows after a run.
const ROWS_TIMEOUT: Duration = Duration::from_secs(120);

const USAGE: &str = "usage: cargo xtask bench gateway [--seconds N] [--connections 1,16,64 | --concurrency N] [--warmup N] [--rate N] [--manager PATH]";

#[derive(Debug, PartialEq)]
struct Options {
    /// Measured seconds per run.
    seconds: u64,
    /// Untimed seconds of the same load before each run.
    warmup: u64,
    /// The levels: connection counts, in this order.
    connections: Vec<usize>,
    /// Requests per second in all (open loop); `None`: back to back.
    rate: Option<u64>,
    /// A manager binary to run instead of building one.
    manager: Option<PathBuf>,
}

/// Parses `gateway [options]` (see [`USAGE`]) and runs it.
pub fn run(args: &[&str]) -> Result<ExitCode> {
    gateway(&parse_args(args)?)
}

fn parse_args(args: &[&str]) -> Result<Options> {
    let Some((&"gateway", rest)) = args.split_first() else {
        bail!(USAGE);
    };
    // `--flag=value` is `--flag value`.
    let rest: Vec<&str> = rest
        .iter()
        .flat_map(|arg| match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => vec![flag, value],
            _ => vec![*arg],
        })
        .collect();
    let mut opts = Options {
        seconds: DEFAULT_SECONDS,
        warmup: DEFAULT_WARMUP,
        connections: DEFAULT_CONNECTIONS.to_vec(),
        rate: None,
        manager: None,
    };
    let (mut connections, mut concurrency) = (None, None);
    let mut rest = rest.as_slice();
    while let [flag, value, tail @ ..] = rest {
        rest = tail;
        match *flag {
            "--manager" => {
                let path = PathBuf::from(value);
                ensure!(
                    path.is_file(),
                    "--manager {value}: no such file (give the path of an integration-manager binary)"
                );
                opts.manager = Some(path);
            }
            "--connections" => {
                connections = Some(levels::parse_connections(value).map_err(|e| anyhow!(e))?);
            }
            _ => {
                let n: u64 = value
                    .parse()
                    .with_context(|| format!("{flag} takes a number, not {value:?}"))?;
                match *flag {
                    "--seconds" if (1..=3600).contains(&n) => opts.seconds = n,
                    "--warmup" if n <= 600 => opts.warmup = n,
                    "--rate" if n > 0 => opts.rate = Some(n),
                    "--concurrency" if (1..=4096).contains(&n) => {
                        concurrency = Some(vec![n as usize]);
                    }
                    _ => bail!("unknown option {flag} (or {n} is out of its range); {USAGE}"),
                }
            }
        }
    }
    ensure!(rest.is_empty(), "{} needs a value; {USAGE}", rest.join(" "));
    opts.connections = match (connections, concurrency) {
        (Some(_), Some(_)) => {
            bail!("--concurrency N is --connections N (one level): give one of them")
        }
        (Some(list), None) | (None, Some(list)) => list,
        (None, None) => opts.connections,
    };
    Ok(opts)
}

/// A process the bench started, stopped (SIGTERM, then SIGKILL after 15 s)
/// when dropped.
pub(crate) struct Running {
    pub(crate) child: Child,
}

impl Running {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails, with `what` and the end of its log, when it has exited.
    pub(crate) fn check_alive(&mut self, what: &str, log: &Path) -> Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!(
                "{what} exited ({status}); the end of {}:\n{}",
                log.display(),
                crate::bench::tail(log, 20)
            );
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gateway(opts: &Options) -> Result<ExitCode> {
    let (base_url, rabbitmq_url, transport) = crate::bench::servers()?;
    let (manager_bin, fakes_bin) = build(opts)?;
    let run_id = std::process::id();
    let logs = crate::target_dir()
        .join("bench")
        .join(format!("gateway-{run_id}"));
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    // A fresh database and bus prefix each run (dropped afterwards).
    let database_url =
        crate::bench::with_database(&base_url, &format!("hub_bench_gateway_{run_id}"))?;
    let prefix = format!("benchgw{run_id}.");
    let _cleanup = crate::bench::RunCleanup {
        database_url: database_url.clone(),
        rabbitmq_url: rabbitmq_url.clone(),
        prefix: prefix.clone(),
    };
    infra::create_database_and_migrate(&database_url)?;
    let (mut fakes, fake) = start_fakes(&fakes_bin, &logs, &[])?;
    let manager_log = logs.join("integration-manager.log");
    let mut manager = start_manager(
        &manager_bin,
        &[
            ("DATABASE_URL", &database_url),
            ("RABBITMQ_URL", &rabbitmq_url),
            ("HUB_BUS_PREFIX", &prefix),
        ],
        &manager_log,
    )?;
    let setup = setup(&manager.base, &fake)?;

    ui::step(&format!(
        "gateway benchmark: GET {CALL}, direct to the fake HubSpot, then through the proxy, {}, at {} connections in turn, each run {} s after a {} s warm-up; logging on (bodies too); database over {transport}",
        pacing(opts),
        levels::list(&opts.connections),
        opts.seconds,
        opts.warmup
    ));
    ui::info(
        "client: reqwest, one client per run shared by its tasks, one task per connection, default settings (no proxy, 30 s timeout)",
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let pids = Pids {
        manager: manager.process.pid(),
        fakes: fakes.pid(),
    };
    let mut results = Vec::new();
    for &connections in &opts.connections {
        ui::step(&levels::connections(connections));
        let level = rt.block_on(run_level(
            opts,
            &setup,
            &fake,
            &database_url,
            connections,
            &pids,
        ));
        manager.process.check_alive("the manager", &manager_log)?;
        fakes.check_alive("fake-providers", &logs.join("fake-providers.log"))?;
        results.push(level?);
    }
    drop(rt);
    drop(manager);
    drop(fakes);
    report(opts, &results, &transport);
    ui::info(&format!("the services' output: {}", logs.display()));
    Ok(verdict(&results, opts.rate))
}

/// The manager and fake-providers binaries: release builds of this tree
/// (the manager: `--manager`'s when given).
fn build(opts: &Options) -> Result<(PathBuf, PathBuf)> {
    let started = Instant::now();
    let mut cmd = crate::cargo();
    match &opts.manager {
        Some(_) => {
            ui::step("building fake-providers (release)");
            cmd.args([
                "build",
                "--release",
                "-p",
                "hub-testkit",
                "--bin",
                "fake-providers",
            ]);
        }
        None => {
            ui::step("building integration-manager and fake-providers (release)");
            cmd.args([
                "build",
                "--release",
                "-p",
                "integration-manager",
                "-p",
                "hub-testkit",
                "--bins",
            ]);
        }
    }
    ui::run_checked(&mut cmd, "the release build failed (see the errors above)")?;
    ui::info(&format!("built in {}", ui::secs(started.elapsed())));
    let release = crate::target_dir().join("release");
    let manager = opts
        .manager
        .clone()
        .unwrap_or_else(|| release.join("integration-manager"));
    Ok((manager, release.join("fake-providers")))
}

/// The fake HubSpot: its base URL and the token it accepts.
pub(crate) struct Fake {
    pub(crate) base_url: String,
    pub(crate) token: String,
}

/// Starts `fake-providers` on free ports with request recording off; the
/// process and the fake HubSpot (read from the lines it prints).
pub(crate) fn start_fakes(
    binary: &Path,
    logs: &Path,
    env: &[(&str, &str)],
) -> Result<(Running, Fake)> {
    ui::step("starting the fake providers (request recording off)");
    let log_path = logs.join("fake-providers.log");
    let log = std::fs::File::create(&log_path)?;
    let mut child = Command::new(binary)
        .env("FAKE_PROVIDERS_BASE_PORT", "0")
        .env("FAKE_PROVIDERS_RECORDING", "false")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("could not start {}", binary.display()))?;
    let stdout = child.stdout.take().context("fake-providers' stdout")?;
    let mut process = Running { child };
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads every line until the process ends, so it never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            // Once the HUBSPOT line is found nobody listens: the rest is drained.
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(fake) = parse_fake_line(&line) {
                    ui::info(&format!("fake HubSpot at {}", fake.base_url));
                    return Ok((process, fake));
                }
            }
            Err(_) => {
                process.check_alive("fake-providers", &log_path)?;
                bail!(
                    "fake-providers printed no HUBSPOT line within 30 s (see {})",
                    log_path.display()
                );
            }
        }
    }
}

/// `HUBSPOT http://127.0.0.1:41234 token=fake-valid-token` → the fake.
fn parse_fake_line(line: &str) -> Option<Fake> {
    let mut words = line.split_whitespace();
    if words.next()? != "HUBSPOT" {
        return None;
    }
    let base_url = words.next()?.to_owned();
    let token = words.find_map(|w| w.strip_prefix("token="))?.to_owned();
    Some(Fake { base_url, token })
}

/// The manager the bench started: the process and its base URL.
pub(crate) struct Manager {
    pub(crate) process: Running,
    pub(crate) base: String,
}

/// Starts the manager on a free port with `env` and the bench settings,
/// its output in `log`, and waits until it is ready.
fn start_manager(binary: &Path, env: &[(&str, &str)], log: &Path) -> Result<Manager> {
    start_service(binary, "the manager", env, log)
}

/// Starts a service binary (`what` names it in messages) like
/// [`start_manager`]; `env` comes last, so it may set its own
/// `INTEGRATION_ENCRYPTION_KEY` (services sharing a database must share it).
pub(crate) fn start_service(
    binary: &Path,
    what: &str,
    env: &[(&str, &str)],
    log: &Path,
) -> Result<Manager> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    ui::step(&format!(
        "starting {what} on port {port} (output in {})",
        log.display()
    ));
    let out = std::fs::File::create(log)?;
    let mut cmd = Command::new(binary);
    cmd.env("PORT", port.to_string())
        .env("HUB_HOST", "127.0.0.1")
        .env("HUB_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("INTEGRATION_ENCRYPTION_KEY", &key)
        .env("HUB_BUS_QUEUE_EXPIRES_MS", "600000")
        .env("HUB_MIGRATE_ON_START", "false")
        .env("HUB_ALLOW_PRIVATE_TARGETS", "true")
        .env("LOG_REQUEST_BODIES", "true")
        .env("LOG_RESPONSE_BODIES", "true")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("could not start {}", binary.display()))?;
    let mut process = Running { child };
    let base = format!("http://127.0.0.1:{port}");
    let setup = agent();
    let started = Instant::now();
    while !setup
        .get(format!("{base}/ready"))
        .call()
        .is_ok_and(|r| r.status() == 200)
    {
        process.check_alive(what, log)?;
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "{what} was not ready within 60 s (see {})",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(Manager { process, base })
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// One setup call: its JSON answer, or an error with the status and body.
pub(crate) fn call(
    method: &str,
    url: &str,
    auth: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> Result<(u16, serde_json::Value)> {
    let agent = agent();
    let mut resp = match method {
        "POST" | "PUT" => {
            let mut req = if method == "POST" {
                agent.post(url)
            } else {
                agent.put(url)
            }
            .content_type("application/json");
            for (k, v) in auth {
                req = req.header(*k, *v);
            }
            req.send(body.map_or_else(String::new, |b| b.to_string()))
        }
        _ => {
            let mut req = agent.get(url);
            for (k, v) in auth {
                req = req.header(*k, *v);
            }
            req.call()
        }
    }
    .with_context(|| format!("{method} {url}"))?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Ok((status, json))
}

/// `call` that must answer 2xx.
pub(crate) fn call_ok(
    method: &str,
    url: &str,
    auth: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> Result<serde_json::Value> {
    let (status, json) = call(method, url, auth, body)?;
    ensure!(
        (200..300).contains(&status),
        "{method} {url}: {status} {json}"
    );
    Ok(json)
}

/// What the setup created.
pub(crate) struct Setup {
    pub(crate) integration_id: uuid::Uuid,
    /// The proxied call's URL.
    proxy_url: String,
    /// The tenant's API key and id, as headers.
    pub(crate) auth: reqwest::header::HeaderMap,
}

/// A tenant, its API key, and an enabled HubSpot integration pointing at
/// the fake with its rate limit out of reach.
pub(crate) fn setup(base: &str, fake: &Fake) -> Result<Setup> {
    ui::step("creating a tenant, an API key and a HubSpot integration on the fake");
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let slug = format!("bench-gw-{}", std::process::id());
    let tenant = call_ok(
        "POST",
        &format!("{base}/api/v1/admin/tenants"),
        &[("Authorization", &admin)],
        Some(&serde_json::json!({"name": "Gateway bench", "slug": slug})),
    )?;
    let tenant_id = tenant["id"].as_str().context("tenant id")?.to_owned();
    let key = call_ok(
        "POST",
        &format!("{base}/api/v1/admin/tenants/{tenant_id}/api-keys"),
        &[("Authorization", &admin)],
        Some(&serde_json::json!({"name": "bench"})),
    )?;
    let api_key = format!("Bearer {}", key["key"].as_str().context("api key")?);
    let auth = [
        ("Authorization", api_key.as_str()),
        ("X-Tenant-ID", &tenant_id),
    ];
    let created = call_ok(
        "POST",
        &format!("{base}/api/v1/integrations"),
        &auth,
        Some(&serde_json::json!({
            "provider_code": "HUBSPOT",
            "name": "gateway bench",
            "config": {"base_url": fake.base_url},
            "credentials": {"access_token": fake.token},
        })),
    )?;
    let id = created["id"].as_str().context("integration id")?.to_owned();
    // Before the connection test: the test's rate-limit window would
    // otherwise be the manifest's (HubSpot: 10 s), and a 60 s window
    // starting at the same second finds that row (`rate_limit_buckets` is
    // keyed by window start, not length) with its end already past and its
    // limit of 100 spent, and the gateway's limiter asks Postgres again
    // without pause until the minute ends (seen: 64 requests stuck ~20 s,
    // manager and Postgres busy all along).
    raise_rate_limit(base, &id, &auth)?;
    let enabled = call_ok(
        "POST",
        &format!("{base}/api/v1/integrations/{id}/enable"),
        &auth,
        None,
    )
    .context("enabling the integration (its connection test against the fake) failed")?;
    ui::info(&format!(
        "integration {id}: {}",
        enabled["status"].as_str().unwrap_or("?")
    ));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", api_key.parse()?);
    headers.insert("x-tenant-id", tenant_id.parse()?);
    Ok(Setup {
        integration_id: id.parse()?,
        proxy_url: format!("{base}/api/v1/integrations/{id}/proxy/{CALL}"),
        auth: headers,
    })
}

/// Puts the integration's rate limit out of reach through
/// `PUT /api/v1/integrations/{id}`, so the limiter is not what is measured.
fn raise_rate_limit(base: &str, id: &str, auth: &[(&str, &str)]) -> Result<()> {
    let (requests, window) = RATE_LIMIT;
    let body = serde_json::json!({
        "rate_limit_requests": requests,
        "rate_limit_window_seconds": window,
    });
    let url = format!("{base}/api/v1/integrations/{id}");
    let (status, answer) = call("PUT", &url, auth, Some(&body))?;
    ensure!(
        (200..300).contains(&status),
        "PUT {url} (raising the rate limit): {status} {answer}"
    );
    ui::info(&format!(
        "rate limit raised to {} per {window} s",
        thousands(requests as u64)
    ));
    Ok(())
}

/// The processes whose CPU is counted.
struct Pids {
    manager: u32,
    fakes: u32,
}

/// CPU time used so far by each process of interest.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    manager: Duration,
    fakes: Duration,
    /// Every `postgres` process (backends that exit drop out: a lower bound).
    postgres: Duration,
    /// This process: the load generator.
    bench: Duration,
    /// All CPUs of the machine, busy time.
    machine: Duration,
}

impl Cpu {
    fn now(pids: &Pids) -> Self {
        Self {
            manager: proc_cpu(pids.manager).unwrap_or_default(),
            fakes: proc_cpu(pids.fakes).unwrap_or_default(),
            postgres: postgres_cpu(),
            bench: proc_cpu(std::process::id()).unwrap_or_default(),
            machine: machine_busy(),
        }
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            manager: self.manager.saturating_sub(before.manager),
            fakes: self.fakes.saturating_sub(before.fakes),
            postgres: self.postgres.saturating_sub(before.postgres),
            bench: self.bench.saturating_sub(before.bench),
            machine: self.machine.saturating_sub(before.machine),
        }
    }
}

/// User + system CPU time of a process (`/proc/<pid>/stat`, fields 14-15).
fn proc_cpu(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_cpu(&text)
}

/// User + system CPU time from the text of a `/proc/<pid>/stat`.
fn stat_cpu(text: &str) -> Option<Duration> {
    crate::bench::parse_stat(text).map(|(_, cpu)| cpu)
}

/// CPU time of every process named `postgres`.
fn postgres_cpu() -> Duration {
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let comm = text
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map_or("", |(comm, _)| comm);
        if comm == "postgres" {
            total += stat_cpu(&text).unwrap_or_default();
        }
    }
    total
}

/// Busy time of all CPUs together (`/proc/stat`: all but idle and iowait).
fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let all: u64 = ticks.iter().take(7).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    crate::bench::ticks_to_duration(all.saturating_sub(idle))
}

/// What one run (direct or proxied) measured.
struct RunResult {
    row: levels::Row,
    /// Requests sent, warm-up included, answered or not.
    sent: u64,
    /// Requests not answered 2xx (or not answered), warm-up included.
    failed: u64,
    first_error: Option<String>,
    cpu: Cpu,
}

/// One level's two runs and the log rows of its proxied one.
struct LevelResult {
    connections: usize,
    direct: RunResult,
    proxied: RunResult,
    /// Rows the proxied run added to the integration's request log.
    log_rows: i64,
    /// How long after the proxied run the rows settled.
    rows_settled_after: Duration,
}

/// One connection's GETs through the run's shared client.
struct Getter {
    client: reqwest::Client,
    url: String,
    headers: reqwest::header::HeaderMap,
}

impl Sender for Getter {
    type Accepted = ();

    fn send(&mut self, _n: u64) -> impl Future<Output = Result<(), String>> + Send {
        let request = self.client.get(&self.url).headers(self.headers.clone());
        async move {
            let res = request.send().await.map_err(|e| with_causes(&e))?;
            let status = res.status();
            let body = res.bytes().await.map_err(|e| with_causes(&e))?;
            if status.is_success() {
                Ok(())
            } else {
                let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                Err(format!("{status} {text}"))
            }
        }
    }
}

/// An error and its causes (reqwest's own message leaves out why).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text += &format!(": {c}");
        cause = c.source();
    }
    text
}

/// One run: `connections` tasks sharing a new reqwest client, GETting `url`.
async fn run_get(
    opts: &Options,
    url: &str,
    headers: &reqwest::header::HeaderMap,
    connections: usize,
    pids: &Pids,
) -> Result<RunResult> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()?;
    let senders = (0..connections)
        .map(|_| Getter {
            client: client.clone(),
            url: url.to_owned(),
            headers: headers.clone(),
        })
        .collect();
    let plan = levels::Plan {
        warmup: Duration::from_secs(opts.warmup),
        measured: Duration::from_secs(opts.seconds),
        rate: opts.rate,
    };
    let before = Cpu::now(pids);
    let level = levels::run(senders, plan).await?;
    let cpu = Cpu::now(pids).since(&before);
    let failed = level.not_accepted + level.warm_not_accepted;
    Ok(RunResult {
        row: level.row(),
        sent: (level.accepted.len() + level.warm_accepted.len()) as u64 + failed,
        failed,
        first_error: level.first_error,
        cpu,
    })
}

/// One level: the direct run, then the proxied run and its log rows.
async fn run_level(
    opts: &Options,
    setup: &Setup,
    fake: &Fake,
    database_url: &str,
    connections: usize,
    pids: &Pids,
) -> Result<LevelResult> {
    crate::bench::settle_database(database_url).await?;
    let mut direct_headers = reqwest::header::HeaderMap::new();
    direct_headers.insert("authorization", format!("Bearer {}", fake.token).parse()?);
    let direct_url = format!("{}/{CALL}", fake.base_url);
    let direct = run_get(opts, &direct_url, &direct_headers, connections, pids).await?;
    ui::info(&format!("direct:  {}", run_line(&direct)));

    let pool = hub_storage::pool(database_url, &hub_storage::PoolSettings::default())?;
    let rows_before = log_rows(&pool, setup.integration_id).await?;
    let proxied = run_get(opts, &setup.proxy_url, &setup.auth, connections, pids).await?;
    ui::info(&format!("proxied: {}", run_line(&proxied)));
    let ended = Instant::now();
    let (rows_after, settled) = rows_settled(&pool, setup.integration_id, ended).await?;
    pool.close().await;
    let log_rows = rows_after - rows_before;
    ui::info(&format!(
        "log rows: {} for {} requests proxied (warm-up included), settled {:.1} s after the load",
        thousands(log_rows.max(0) as u64),
        thousands(proxied.sent),
        settled.as_secs_f64()
    ));
    for (what, run) in [("direct", &direct), ("proxied", &proxied)] {
        if let Some(e) = &run.first_error {
            ui::warn(&format!("{what}: first failure: {e}"));
        }
    }
    Ok(LevelResult {
        connections,
        direct,
        proxied,
        log_rows,
        rows_settled_after: settled,
    })
}

/// A run in words: requests/s, p50/p99, failures.
fn run_line(run: &RunResult) -> String {
    let mut line = format!("{} req/s", thousands(run.row.per_sec.round() as u64));
    if let Some([p50, _, p99, _, max]) = run.row.latency_us {
        line += &format!(
            ", p50 {}, p99 {}, max {}",
            ms(i64::from(p50)),
            ms(i64::from(p99)),
            ms(i64::from(max))
        );
    }
    line + &format!(", {} not 2xx", thousands(run.failed))
}

/// The integration's request-log rows. (Plain SQL in the bench, as its
/// database set-up is: hub-storage has no count of an integration's rows.)
async fn log_rows(pool: &sqlx::PgPool, integration: uuid::Uuid) -> Result<i64> {
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM api_request_logs WHERE integration_id = $1")
            .bind(integration)
            .fetch_one(pool)
            .await
            .context("counting the request-log rows")?;
    Ok(n)
}

/// Waits until the integration's log rows stop growing (no change for
/// [`ROWS_SETTLED`]): the count, and how long after `ended` it last grew.
async fn rows_settled(
    pool: &sqlx::PgPool,
    integration: uuid::Uuid,
    ended: Instant,
) -> Result<(i64, Duration)> {
    let mut last = log_rows(pool, integration).await?;
    let mut last_change = Instant::now();
    while last_change.elapsed() < ROWS_SETTLED && ended.elapsed() < ROWS_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = log_rows(pool, integration).await?;
        if now != last {
            last = now;
            last_change = Instant::now();
        }
    }
    Ok((last, last_change.saturating_duration_since(ended)))
}

/// `1.23 ms` from µs (signed: an added latency may come out negative).
fn ms(us: i64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// Proxied minus direct p50 and p99, µs.
fn added(level: &LevelResult) -> Option<(i64, i64)> {
    let p = level.proxied.row.latency_us?;
    let d = level.direct.row.latency_us?;
    Some((
        i64::from(p[0]) - i64::from(d[0]),
        i64::from(p[2]) - i64::from(d[2]),
    ))
}

/// Whether every proxied request of the level has its log row.
fn all_logged(level: &LevelResult) -> bool {
    level.log_rows == level.proxied.sent as i64
}

/// How the requests are sent, in words.
fn pacing(opts: &Options) -> String {
    opts.rate.map_or("back to back (closed loop)".into(), |r| {
        format!(
            "paced at {} requests/s in all (open loop, latency from when each was due)",
            thousands(r)
        )
    })
}

/// The table of the levels and the CPU per request.
fn report(opts: &Options, results: &[LevelResult], transport: &impl std::fmt::Display) {
    println!();
    println!(
        "gateway benchmark: GET {CALL}, reqwest, {}, {} s per run after a {} s warm-up, logging on (bodies); database over {transport}",
        pacing(opts),
        opts.seconds,
        opts.warmup
    );
    print!("{}", table(results));
    println!();
    println!(
        "CPU per request (warm-up included; µs of one core): manager, Postgres, fakes, bench (load generator), whole box"
    );
    for level in results {
        for (what, run) in [("direct", &level.direct), ("proxied", &level.proxied)] {
            let per = |d: Duration| d.as_secs_f64() * 1e6 / run.sent.max(1) as f64;
            println!(
                "{:>11}  {what:<7}  manager {:>6.0}  postgres {:>6.0}  fakes {:>6.0}  bench {:>6.0}  box {:>6.0}",
                level.connections,
                per(run.cpu.manager),
                per(run.cpu.postgres),
                per(run.cpu.fakes),
                per(run.cpu.bench),
                per(run.cpu.machine),
            );
        }
    }
    let settled: Vec<String> = results
        .iter()
        .map(|l| {
            format!(
                "{}: {:.1} s",
                l.connections,
                l.rows_settled_after.as_secs_f64()
            )
        })
        .collect();
    println!(
        "log rows settled after each proxied run (last growth): {}",
        settled.join(", ")
    );
}

/// One line per level.
fn table(results: &[LevelResult]) -> String {
    let mut out = format!(
        "{:>11}  {:>9} {:>9} {:>9}  {:>10} {:>9} {:>9} {:>9} {:>9}  {:>9} {:>9}  {:>7}  {:>21}\n",
        "connections",
        "direct/s",
        "p50",
        "p99",
        "proxied/s",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "added p50",
        "added p99",
        "non-2xx",
        "log rows / proxied"
    );
    for l in results {
        let lat = |run: &RunResult, i: usize| {
            run.row
                .latency_us
                .map_or("-".to_owned(), |l| ms(i64::from(l[i])))
        };
        let (add50, add99) = added(l).map_or(("-".into(), "-".into()), |(a, b)| (ms(a), ms(b)));
        out += &format!(
            "{:>11}  {:>9} {:>9} {:>9}  {:>10} {:>9} {:>9} {:>9} {:>9}  {:>9} {:>9}  {:>7}  {:>21}\n",
            l.connections,
            thousands(l.direct.row.per_sec.round() as u64),
            lat(&l.direct, 0),
            lat(&l.direct, 2),
            thousands(l.proxied.row.per_sec.round() as u64),
            lat(&l.proxied, 0),
            lat(&l.proxied, 1),
            lat(&l.proxied, 2),
            lat(&l.proxied, 3),
            add50,
            add99,
            thousands(l.proxied.failed),
            format!(
                "{} / {}",
                thousands(l.log_rows.max(0) as u64),
                thousands(l.proxied.sent)
            ),
        );
    }
    out
}

/// The verdict line against the target; the exit code. Paced (`rate`),
/// the throughput part asks for a rate of at least the target's, kept up
/// with (99 % of it answered per second).
fn verdict(results: &[LevelResult], rate: Option<u64>) -> ExitCode {
    let unlogged: Vec<String> = results
        .iter()
        .filter(|l| !all_logged(l))
        .map(|l| {
            format!(
                "{}: {} rows for {} requests",
                l.connections, l.log_rows, l.proxied.sent
            )
        })
        .collect();
    let Some(level) = results.iter().find(|l| l.connections == TARGET_CONNECTIONS) else {
        if unlogged.is_empty() {
            ui::info(&format!(
                "verdict: not judged (the target is judged at {TARGET_CONNECTIONS} connections, which this run left out); every call logged"
            ));
            return ExitCode::SUCCESS;
        }
        ui::error(&format!(
            "verdict: calls not logged at {}",
            unlogged.join("; ")
        ));
        return ExitCode::FAILURE;
    };
    let (failures, summary) = judge(level, rate);
    let mut failures = failures;
    if !unlogged.is_empty() && all_logged(level) {
        failures.push(format!("calls not logged at {}", unlogged.join("; ")));
    }
    let target = format!(
        "target at {TARGET_CONNECTIONS} connections: ≥ {} proxied req/s, added p50 ≤ {}, every call answered and logged",
        thousands(TARGET_PER_SEC as u64),
        ms(TARGET_ADDED_P50_US)
    );
    if failures.is_empty() {
        ui::info(&format!("verdict: MET — {summary} ({target})"));
        ExitCode::SUCCESS
    } else {
        ui::error(&format!(
            "verdict: NOT MET — {summary}; {} ({target})",
            failures.join("; ")
        ));
        ExitCode::FAILURE
    }
}

/// The target level's figures in words, and what misses the target.
fn judge(level: &LevelResult, rate: Option<u64>) -> (Vec<String>, String) {
    let mut failures = Vec::new();
    let per_sec = level.proxied.row.per_sec;
    match rate {
        None if per_sec < TARGET_PER_SEC => failures.push(format!(
            "{} proxied req/s is under {}",
            thousands(per_sec.round() as u64),
            thousands(TARGET_PER_SEC as u64)
        )),
        None => {}
        Some(r) if (r as f64) < TARGET_PER_SEC => failures.push(format!(
            "paced at {} req/s, under the target's {}",
            thousands(r),
            thousands(TARGET_PER_SEC as u64)
        )),
        Some(r) if per_sec < 0.99 * r as f64 => failures.push(format!(
            "{} proxied req/s did not keep up with the {} req/s offered",
            thousands(per_sec.round() as u64),
            thousands(r)
        )),
        Some(_) => {}
    }
    let added_p50 = added(level).map(|(p50, _)| p50);
    match added_p50 {
        Some(a) if a <= TARGET_ADDED_P50_US => {}
        Some(a) => failures.push(format!(
            "added p50 {} is over {}",
            ms(a),
            ms(TARGET_ADDED_P50_US)
        )),
        None => failures.push("no latency measured".into()),
    }
    if level.proxied.failed > 0 || level.direct.failed > 0 {
        failures.push(format!(
            "{} proxied and {} direct requests not answered 2xx",
            thousands(level.proxied.failed),
            thousands(level.direct.failed)
        ));
    }
    if !all_logged(level) {
        failures.push(format!(
            "{} log rows for {} requests proxied",
            level.log_rows, level.proxied.sent
        ));
    }
    let summary = format!(
        "{} proxied req/s, added p50 {}, {} of {} calls logged",
        thousands(per_sec.round() as u64),
        added_p50.map_or("-".into(), ms),
        thousands(level.log_rows.max(0) as u64),
        thousands(level.proxied.sent)
    );
    (failures, summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        assert_eq!(
            parse_args(&["gateway"]).unwrap(),
            Options {
                seconds: 30,
                warmup: 2,
                connections: vec![1, 16, 64],
                rate: None,
                manager: None,
            }
        );
    }

    #[test]
    fn options() {
        let o = parse_args(&[
            "gateway",
            "--seconds=5",
            "--warmup",
            "0",
            "--concurrency",
            "64",
        ])
        .unwrap();
        assert_eq!((o.seconds, o.warmup, o.connections), (5, 0, vec![64]));
        assert_eq!(
            parse_args(&["gateway", "--rate", "5000"]).unwrap().rate,
            Some(5000)
        );
        let o = parse_args(&["gateway", "--connections", "8,1"]).unwrap();
        assert_eq!(o.connections, [8, 1]);
        let manager = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let o = parse_args(&["gateway", "--manager", manager]).unwrap();
        assert_eq!(o.manager, Some(PathBuf::from(manager)));
    }

    #[test]
    fn bad_options_say_what_is_wrong() {
        let err = |args: &[&str]| parse_args(args).unwrap_err().to_string();
        assert!(err(&["inbound"]).starts_with("usage:"));
        assert!(err(&["gateway", "--concurrency", "8", "--connections", "1"]).contains("one of"));
        assert!(err(&["gateway", "--connections", "1,,8"]).contains("comma list"));
        assert!(err(&["gateway", "--seconds", "x"]).contains("takes a number"));
        assert!(err(&["gateway", "--seconds", "0"]).contains("out of its range"));
        assert!(err(&["gateway", "--rate", "0"]).contains("out of its range"));
        assert!(err(&["gateway", "--fast", "5"]).contains("unknown option --fast"));
        assert!(err(&["gateway", "--seconds"]).contains("--seconds needs a value"));
        assert!(err(&["gateway", "--manager", "/no/such/file"]).contains("no such file"));
    }

    #[test]
    fn reads_the_fake_hubspot_line() {
        let fake =
            parse_fake_line("HUBSPOT http://127.0.0.1:41234 token=fake-valid-token").unwrap();
        assert_eq!(
            (fake.base_url.as_str(), fake.token.as_str()),
            ("http://127.0.0.1:41234", "fake-valid-token")
        );
        assert!(parse_fake_line("NEWSAPI http://127.0.0.1:1/v2 token=t").is_none());
        assert!(parse_fake_line("HUBSPOT http://127.0.0.1:1").is_none());
    }

    #[test]
    fn reads_cpu_from_proc_stat() {
        let line = "42 (a (b) c) S 1 1 1 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1 1 1";
        assert_eq!(stat_cpu(line), Some(Duration::from_secs(3)));
        assert!(proc_cpu(std::process::id()).is_some());
    }

    fn run(per_sec: f64, p50_us: u32, sent: u64, failed: u64) -> RunResult {
        RunResult {
            row: levels::Row {
                connections: 64,
                per_sec,
                latency_us: Some([p50_us, p50_us, p50_us * 2, p50_us * 3, p50_us * 4]),
                not_accepted: failed,
            },
            sent,
            failed,
            first_error: None,
            cpu: Cpu::default(),
        }
    }

    fn level(proxied_per_sec: f64, proxied_p50: u32, log_rows: i64) -> LevelResult {
        LevelResult {
            connections: 64,
            direct: run(20_000.0, 2_000, 600_000, 0),
            proxied: run(proxied_per_sec, proxied_p50, 150_000, 0),
            log_rows,
            rows_settled_after: Duration::ZERO,
        }
    }

    #[test]
    fn judges_the_target() {
        let (failures, summary) = judge(&level(6_000.0, 2_900, 150_000), None);
        assert!(failures.is_empty(), "{failures:?}");
        assert!(
            summary.contains("6,000 proxied req/s, added p50 0.90 ms"),
            "{summary}"
        );
        let (failures, _) = judge(&level(4_000.0, 3_500, 149_999), None);
        assert_eq!(failures.len(), 3, "{failures:?}");
        assert!(failures[0].contains("4,000 proxied req/s is under 5,000"));
        assert!(failures[1].contains("added p50 1.50 ms"));
        assert!(failures[2].contains("149999 log rows for 150000"));
        // Paced: the rate offered must be the target's, and kept up with.
        assert!(
            judge(&level(4_999.0, 2_900, 150_000), Some(5_000))
                .0
                .is_empty()
        );
        let (failures, _) = judge(&level(4_000.0, 2_900, 150_000), Some(5_000));
        assert!(failures[0].contains("did not keep up"), "{failures:?}");
        let (failures, _) = judge(&level(4_000.0, 2_900, 150_000), Some(4_000));
        assert!(failures[0].contains("paced at 4,000"), "{failures:?}");
        let text = table(&[level(6_000.0, 2_900, 150_000)]);
        assert!(text.contains("150,000 / 150,000"), "{text}");
        assert!(
            text.contains("0.90 ms") && text.contains("1.80 ms"),
            "{text}"
        );
    }
}
