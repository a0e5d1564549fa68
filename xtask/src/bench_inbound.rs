//! `cargo xtask bench inbound [--connections LIST | --concurrency N]
//! [--seconds N] [--warmup N] [--client reqwest|raw] [--rate N]
//! [--manager PATH] [--latencies FILE]`: the inbound webhook benchmark of
//! issues 7 and 25.
//!
//! Builds the manager in release (or, with `--manager`, runs the binary
//! given, to compare builds on one machine), starts it against a fresh
//! database (created, migrated; dropped afterwards) and the local RabbitMQ,
//! creates a tenant and a Standard Webhooks endpoint, then drives it from
//! this process at each connection count of `--connections` in turn
//! (default 1, 8, 16, 32, 64, 256), so that a stall from some number of
//! connections on shows as a cliff in the table (issue 25: users' clients
//! stalled at 88 ms a request from 16 connections while this bench, on its
//! own hand-made client at 64, did not).
//!
//! The requests come from reqwest, as providers' senders make them: one
//! client shared by the level's N tasks, its default settings, each task
//! sending freshly signed requests (a new `webhook-id` each) back to back
//! (closed loop: the throughput the box sustains), or with `--rate N` at N
//! requests/s in all on a fixed schedule (open loop: latency at a given
//! load, timed from when each request was due, so a stall counts for every
//! request it delays). `--client raw` sends them instead as hand-written
//! HTTP/1.1 on one socket per connection (the bench's client before issue
//! 25, kept to compare with; the output says which client ran).
//!
//! Before each level the database is vacuumed and checkpointed (the first
//! time also given WAL segment files to recycle), and each level runs an
//! untimed warm-up of `--warmup` seconds (default 2) first, the same load on
//! the same client: pools and connections open, statements are prepared and
//! caches fill, as in a service that has been running. Then `--seconds`
//! (default 10) are measured, and the bench waits for the bus to catch up
//! before the next level. Each level prints a line as it ends (with the
//! seconds that had requests over 20 ms); at the end a table gives, per
//! level, accepted requests/s, p50/p90/p99/p99.9/max latency and the
//! requests not accepted, then how far behind the bus was, the WAL written
//! per request, and a check that every accepted request of every level (the
//! warm-ups' too) is in Postgres exactly once. With `--latencies FILE` it
//! writes one line per measured request, in the order they started: ms after
//! the measured run began, and its latency in µs (to see whether slow
//! requests are spread out or come together); with several levels, one file
//! per level, `FILE.<connections>`.
//!
//! The header says whether the database is reached over TCP or a Unix
//! socket (`DATABASE_URL`): issue 25 compares the two.

use crate::bench::levels::{self, Sender};
use crate::infra;
use crate::ui;
use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sha2::Sha256;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
/// Measured seconds per level.
const DEFAULT_SECONDS: u64 = 10;
/// Untimed seconds before each level.
const DEFAULT_WARMUP: u64 = 2;

/// The HTTP client that sends the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    /// reqwest, as providers' senders use it: one client shared by the
    /// level's connections, its default settings.
    Reqwest,
    /// Hand-written HTTP/1.1 on one tokio socket per connection: the bench's
    /// client before issue 25, which did not show the stall users' clients
    /// hit. Kept to compare the two.
    Raw,
}

impl Client {
    /// What the header says the requests come from.
    fn describe(self) -> &'static str {
        match self {
            Self::Reqwest => {
                "reqwest: one client shared by the level's tasks, one task per connection, \
                 reqwest's default settings (HTTP/1.1 keep-alive, TCP_NODELAY as reqwest sets it), \
                 a pool that keeps every connection open"
            }
            Self::Raw => {
                "raw (--client raw): hand-written HTTP/1.1 on one tokio socket per connection, \
                 TCP_NODELAY set; not a client providers use, kept to compare with reqwest"
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Reqwest => "reqwest",
            Self::Raw => "raw",
        }
    }
}

#[derive(Debug, PartialEq)]
struct Options {
    /// Measured seconds per level.
    seconds: u64,
    /// Seconds of the same load before each level's measured run (not timed).
    warmup: u64,
    /// The levels: connection counts, run in this order.
    connections: Vec<usize>,
    client: Client,
    /// Requests per second in all (open loop); `None`: back to back.
    rate: Option<u64>,
    /// A manager binary to run instead of building one.
    manager: Option<PathBuf>,
    /// Where to write every measured request's start and latency.
    latencies: Option<PathBuf>,
}

const USAGE: &str = "usage: cargo xtask bench inbound [--connections 1,8,16,32,64,256 | --concurrency N] [--seconds N] [--warmup N] [--client reqwest|raw] [--rate N] [--manager PATH] [--latencies FILE]";

/// Parses `inbound [options]` (see [`USAGE`]) and runs it.
pub fn run(args: &[&str]) -> Result<ExitCode> {
    inbound(&parse_args(args)?)
}

fn parse_args(args: &[&str]) -> Result<Options> {
    let Some((&"inbound", rest)) = args.split_first() else {
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
        connections: levels::DEFAULT_CONNECTIONS.to_vec(),
        client: Client::Reqwest,
        rate: None,
        manager: None,
        latencies: None,
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
            "--latencies" => opts.latencies = Some(PathBuf::from(value)),
            "--client" => {
                opts.client = match *value {
                    "reqwest" => Client::Reqwest,
                    "raw" => Client::Raw,
                    _ => bail!("--client takes reqwest or raw, not {value:?}"),
                }
            }
            "--connections" => {
                connections = Some(levels::parse_connections(value).map_err(|e| anyhow!(e))?);
            }
            _ => {
                let n: u64 = value
                    .parse()
                    .with_context(|| format!("{flag} takes a number, not {value:?}"))?;
                match *flag {
                    "--seconds" if n > 0 => opts.seconds = n,
                    "--warmup" => opts.warmup = n,
                    "--concurrency" if n > 0 => concurrency = Some(vec![n as usize]),
                    "--rate" if n > 0 => opts.rate = Some(n),
                    _ => bail!("unknown option {flag} (or 0); {USAGE}"),
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

/// Stops the manager when the benchmark ends, however it ends.
struct Manager(Child);

impl Drop for Manager {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent(connections: usize) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_idle_connections(connections * 2)
        .max_idle_connections_per_host(connections * 2)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn call(
    agent: &ureq::Agent,
    url: &str,
    auth: &[(&str, &str)],
    body: &serde_json::Value,
) -> Result<serde_json::Value> {
    let mut req = agent.post(url).content_type("application/json");
    for (k, v) in auth {
        req = req.header(*k, *v);
    }
    let mut resp = req
        .send(body.to_string())
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    ensure!((200..300).contains(&status), "POST {url}: {status} {text}");
    Ok(serde_json::from_str(&text)?)
}

fn inbound(opts: &Options) -> Result<ExitCode> {
    let (base_url, rabbitmq_url, transport) = crate::bench::servers()?;
    // A fresh database and bus prefix each run (dropped afterwards): queue
    // tables of earlier runs would slow this one down.
    let database_url = crate::bench::with_database(
        &base_url,
        &format!("hub_bench_inbound_{}", std::process::id()),
    )?;
    let prefix = format!("bench{}.", std::process::id());
    let _cleanup = crate::bench::RunCleanup {
        database_url: database_url.clone(),
        rabbitmq_url: rabbitmq_url.clone(),
        prefix: prefix.clone(),
    };
    infra::create_database_and_migrate(&database_url)?;
    let binary = manager_binary(opts)?;
    let (_manager, base, port) = start_manager(&binary, &database_url, &rabbitmq_url, &prefix)?;
    let (target, endpoint_id) = create_endpoint(&base, port)?;

    let pacing = opts.rate.map_or("back to back".to_owned(), |r| {
        format!("paced at {r} requests/s in all (latency from when each was due)")
    });
    ui::step(&format!(
        "inbound benchmark: Standard-Webhooks-signed requests to 1 endpoint, {pacing}, at {} connections in turn, each {} s after a {} s warm-up; database over {transport}",
        levels::list(&opts.connections),
        opts.seconds,
        opts.warmup
    ));
    ui::info(&format!("client: {}", opts.client.describe()));
    // One thread drives every connection (epoll, not a thread each), so the
    // generator takes as little as possible of the CPU it shares with the
    // manager, Postgres and RabbitMQ.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut run = Run {
        wal_bytes: Some(0),
        ..Run::default()
    };
    for &connections in &opts.connections {
        ui::step(&levels::connections(connections));
        rt.block_on(run_level(
            opts,
            &target,
            &database_url,
            connections,
            &mut run,
        ))?;
    }
    report(opts, &run, &pacing, &transport);
    ui::step("checking that every accepted request is in Postgres exactly once");
    rt.block_on(exactly_once(&database_url, &endpoint_id, &run))
}

/// What the levels of a run measured, for the report and the check.
#[derive(Default)]
struct Run {
    rows: Vec<levels::Row>,
    /// Every accepted request's id, the warm-ups' too, for the exactly-once check.
    ids: Vec<String>,
    /// How many of `ids` the warm-ups accepted.
    warm: usize,
    /// Per level: connections, how long until the bus caught up, events waiting then.
    bus: Vec<(usize, Duration, i64)>,
    /// WAL written by the levels so far (`None` once it could not be read).
    wal_bytes: Option<i64>,
}

/// The manager binary to run: `--manager`'s, or a release build of this tree.
fn manager_binary(opts: &Options) -> Result<PathBuf> {
    if let Some(path) = &opts.manager {
        return Ok(path.clone());
    }
    ui::step("building integration-manager (release)");
    let mut build = crate::cargo();
    build.args([
        "build",
        "--release",
        "-p",
        "integration-manager",
        "--bin",
        "integration-manager",
    ]);
    ui::run_checked(&mut build, "the release build failed")?;
    Ok(crate::target_dir().join("release/integration-manager"))
}

/// Starts the manager on a free port and waits until it is ready: the
/// process (stopped when dropped), its base URL and its port.
fn start_manager(
    binary: &std::path::Path,
    database_url: &str,
    rabbitmq_url: &str,
    prefix: &str,
) -> Result<(Manager, String, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let key = STANDARD.encode(rand_bytes());
    ui::step(&format!("starting the manager on port {port}"));
    let child = Command::new(binary)
        .env("PORT", port.to_string())
        .env("HUB_HOST", "127.0.0.1")
        .env("DATABASE_URL", database_url)
        .env("RABBITMQ_URL", rabbitmq_url)
        .env("HUB_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("INTEGRATION_ENCRYPTION_KEY", &key)
        .env("HUB_BUS_PREFIX", prefix)
        .env("HUB_BUS_QUEUE_EXPIRES_MS", "600000")
        .env("HUB_MIGRATE_ON_START", "false")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("could not start {}", binary.display()))?;
    let manager = Manager(child);
    let base = format!("http://127.0.0.1:{port}");
    let setup = agent(4);
    let started = Instant::now();
    while !setup
        .get(format!("{base}/ready"))
        .call()
        .is_ok_and(|r| r.status() == 200)
    {
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the manager was not ready within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok((manager, base, port))
}

/// A tenant, its API key and a Standard Webhooks endpoint, through the API:
/// where the load goes, and the endpoint's id.
fn create_endpoint(base: &str, port: u16) -> Result<(Arc<Target>, String)> {
    let setup = agent(4);
    let slug = format!("bench-{}", std::process::id());
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let tenant = call(
        &setup,
        &format!("{base}/api/v1/admin/tenants"),
        &[("Authorization", &admin)],
        &serde_json::json!({"name": "Bench", "slug": slug}),
    )?;
    let tenant_id = tenant["id"].as_str().context("tenant id")?.to_owned();
    let key = call(
        &setup,
        &format!("{base}/api/v1/admin/tenants/{tenant_id}/api-keys"),
        &[("Authorization", &admin)],
        &serde_json::json!({"name": "bench"}),
    )?;
    let api_key = format!("Bearer {}", key["key"].as_str().context("api key")?);
    let endpoint = call(
        &setup,
        &format!("{base}/api/v1/webhooks/endpoints"),
        &[("Authorization", &api_key), ("X-Tenant-ID", &tenant_id)],
        &serde_json::json!({"endpoint_path": "bench", "signature_algorithm": "standard-webhooks"}),
    )?;
    let endpoint_id = endpoint["id"].as_str().context("endpoint id")?.to_owned();
    let secret = endpoint["secret_key"]
        .as_str()
        .context("secret")?
        .to_owned();
    let path = format!("/webhooks/{tenant_id}/bench");
    let target = Arc::new(Target {
        addr: format!("127.0.0.1:{port}").parse()?,
        url: format!("{base}{path}"),
        path,
        key: STANDARD.decode(secret.trim_start_matches("whsec_"))?,
    });
    Ok((target, endpoint_id))
}

/// One level: the database settled, the load, the bus caught up; its row,
/// ids and figures go into `run`.
async fn run_level(
    opts: &Options,
    target: &Arc<Target>,
    database_url: &str,
    connections: usize,
    run: &mut Run,
) -> Result<()> {
    crate::bench::settle_database(database_url).await?;
    let wal_before = wal_position(database_url).await;
    let plan = levels::Plan {
        warmup: Duration::from_secs(opts.warmup),
        measured: Duration::from_secs(opts.seconds),
        rate: opts.rate,
    };
    // Every webhook-id is new: a repeat would be answered as a duplicate.
    let tag = |w: usize| format!("{}_{connections}_{w}", std::process::id());
    let level = match opts.client {
        Client::Reqwest => {
            let client = reqwest_client(connections)?;
            let senders = (0..connections)
                .map(|w| ReqwestSender {
                    client: client.clone(),
                    target: target.clone(),
                    tag: tag(w),
                })
                .collect();
            levels::run(senders, plan).await
        }
        Client::Raw => {
            let senders = (0..connections)
                .map(|w| RawSender {
                    target: target.clone(),
                    tag: tag(w),
                    conn: None,
                    buf: Vec::with_capacity(4096),
                })
                .collect();
            levels::run(senders, plan).await
        }
    }?;
    // The events of every accepted request reach RabbitMQ asynchronously
    // (the outbox): how far behind the bus was when the load stopped.
    let (caught_up, waiting) = crate::bench::wait_bus_caught_up(database_url).await?;
    // The WAL every accepted request cost, its events' publishing and
    // retiring included (Postgres recycles a 16 MB WAL segment file, or
    // creates one while commits wait, every 16 MB).
    run.wal_bytes = match (run.wal_bytes, wal_before, wal_position(database_url).await) {
        (Some(sum), Some(before), Some(after)) => Some(sum + (after - before).max(0)),
        _ => None,
    };
    ui::info(&format!(
        "{}; bus caught up {:.1} s after the load",
        level.progress(),
        caught_up.as_secs_f64()
    ));
    if let Some(slow) = level.slow_seconds() {
        ui::info(&slow);
    }
    if let Some(e) = &level.first_error {
        ui::warn(&format!("first failure: {e}"));
    }
    if let Some(file) = &opts.latencies {
        let file = match opts.connections.len() {
            1 => file.clone(),
            _ => PathBuf::from(format!("{}.{connections}", file.display())),
        };
        std::fs::write(&file, level.timeline())
            .with_context(|| format!("--latencies {}", file.display()))?;
    }
    run.bus.push((connections, caught_up, waiting));
    run.rows.push(level.row());
    run.warm += level.warm_accepted.len();
    run.ids.extend(level.accepted);
    run.ids.extend(level.warm_accepted);
    Ok(())
}

/// The table of the levels, how far behind the bus was, the WAL written.
fn report(opts: &Options, run: &Run, pacing: &str, transport: &impl std::fmt::Display) {
    levels::print_table(
        &format!(
            "inbound benchmark, {} client: Standard Webhooks, 1 endpoint, {pacing}, {} s per level after a {} s warm-up; database over {transport}",
            opts.client.name(),
            opts.seconds,
            opts.warmup
        ),
        &run.rows,
        opts.rate.is_none(),
    );
    let bus: Vec<String> = run
        .bus
        .iter()
        .map(|(n, took, waiting)| format!("{n}: {:.1} s ({waiting})", took.as_secs_f64()))
        .collect();
    println!(
        "  bus caught up    per level, seconds after its load (outbox events still to publish then): {}",
        bus.join(", ")
    );
    if let Some(bytes) = run.wal_bytes {
        println!(
            "  WAL written      {:.1} KB per accepted request ({:.0} MB in all, warm-ups included)",
            bytes as f64 / run.ids.len().max(1) as f64 / 1024.0,
            bytes as f64 / 1024.0 / 1024.0
        );
    }
}

/// Checks that every accepted request is stored once, and nothing else is.
async fn exactly_once(database_url: &str, endpoint_id: &str, run: &Run) -> Result<ExitCode> {
    let pool = hub_storage::pool(database_url, &hub_storage::PoolSettings::default())?;
    let uuids: Vec<uuid::Uuid> = run.ids.iter().filter_map(|s| s.parse().ok()).collect();
    let stored = hub_storage::inbound_events::count_ids(&pool, &uuids).await?;
    let endpoint: uuid::Uuid = endpoint_id.parse()?;
    let (events, duplicates) =
        hub_storage::inbound_events::count_for_endpoint(&pool, endpoint).await?;
    pool.close().await;
    let accepted = run.ids.len();
    let distinct: std::collections::HashSet<&String> = run.ids.iter().collect();
    println!(
        "  stored           {stored} of {accepted} accepted ids ({} of them in the warm-ups); {events} events and {duplicates} duplicates on the endpoint",
        run.warm
    );
    let ok = stored as usize == accepted
        && distinct.len() == accepted
        && events as usize == accepted
        && duplicates == 0;
    if ok {
        ui::info("every accepted request is stored exactly once");
        Ok(ExitCode::SUCCESS)
    } else {
        ui::error("stored rows do not match the accepted requests");
        Ok(ExitCode::FAILURE)
    }
}

/// The server's WAL position (`hub_storage::wal_position`), or `None` (the
/// line that uses it is left out) when it cannot be read.
async fn wal_position(database_url: &str) -> Option<i64> {
    let pool = hub_storage::pool(database_url, &hub_storage::PoolSettings::default()).ok()?;
    let position = hub_storage::wal_position(&pool).await.ok();
    pool.close().await;
    position
}

/// Where the requests go, and the endpoint's signing key.
struct Target {
    addr: std::net::SocketAddr,
    /// `http://<addr><path>`.
    url: String,
    /// `/webhooks/<tenant>/bench`.
    path: String,
    key: Vec<u8>,
}

/// One freshly signed Standard Webhooks request.
struct Signed {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

impl Target {
    /// Request `n` of the connection `tag` names, signed now (here,
    /// independently of the server's code).
    fn sign(&self, tag: &str, n: u64) -> Signed {
        let id = format!("msg_{tag}_{n}");
        let body = format!(
            r#"{{"type":"load.updated","data":{{"load_id":"L-{tag}-{n}","status":"IN_TRANSIT"}}}}"#
        );
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            .to_string();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
        let signature = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        Signed {
            id,
            timestamp,
            signature,
            body,
        }
    }
}

/// The id of an accepted request from the manager's answer: 200 with
/// `{"id": …, "duplicate": false}` (every request is new).
fn accepted_id(status: u16, text: &str) -> Result<String, String> {
    if status != 200 {
        return Err(format!("{status} {text}"));
    }
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if v["duplicate"] != false {
        return Err(format!("unexpected duplicate: {text}"));
    }
    v["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| text.to_owned())
}

/// The level's client, shared by its tasks as a provider's sender shares
/// one: reqwest's defaults, but for a pool that keeps the level's
/// connections open, a timeout, and no proxy (the manager is on loopback,
/// whatever `HTTP_PROXY` says).
fn reqwest_client(connections: usize) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// One connection's requests through the level's shared reqwest client.
struct ReqwestSender {
    client: reqwest::Client,
    target: Arc<Target>,
    /// Makes the connection's `webhook-id`s unique.
    tag: String,
}

impl Sender for ReqwestSender {
    type Accepted = String;

    fn send(&mut self, n: u64) -> impl Future<Output = Result<String, String>> + Send {
        let signed = self.target.sign(&self.tag, n);
        let request = self
            .client
            .post(&self.target.url)
            .header("content-type", "application/json")
            .header("webhook-id", signed.id)
            .header("webhook-timestamp", signed.timestamp)
            .header("webhook-signature", signed.signature)
            .body(signed.body);
        async move {
            let res = request.send().await.map_err(|e| with_causes(&e))?;
            let status = res.status().as_u16();
            let text = res.text().await.map_err(|e| with_causes(&e))?;
            accepted_id(status, &text)
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

/// One connection's requests as hand-written HTTP/1.1 on its own socket
/// (`--client raw`).
struct RawSender {
    target: Arc<Target>,
    /// Makes the connection's `webhook-id`s unique.
    tag: String,
    conn: Option<tokio::net::TcpStream>,
    buf: Vec<u8>,
}

impl Sender for RawSender {
    type Accepted = String;

    fn send(&mut self, n: u64) -> impl Future<Output = Result<String, String>> + Send {
        let s = self.target.sign(&self.tag, n);
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             webhook-id: {}\r\nwebhook-timestamp: {}\r\nwebhook-signature: {}\r\n\
             Content-Length: {}\r\n\r\n{}",
            self.target.path,
            self.target.addr,
            s.id,
            s.timestamp,
            s.signature,
            s.body.len(),
            s.body
        );
        async move {
            let addr = self.target.addr;
            let (status, text) =
                exchange(&mut self.conn, addr, request.as_bytes(), &mut self.buf).await?;
            accepted_id(status, &text)
        }
    }
}

/// Sends one request on the kept-alive connection (opening it if needed) and
/// reads the answer: its status and body. A broken connection is dropped so
/// the next request opens a new one.
async fn exchange(
    conn: &mut Option<tokio::net::TcpStream>,
    addr: std::net::SocketAddr,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(u16, String), String> {
    use tokio::io::AsyncWriteExt;
    if conn.is_none() {
        let s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        *conn = Some(s);
    }
    let s = conn.as_mut().expect("connected above");
    let result = async {
        s.write_all(request).await.map_err(|e| e.to_string())?;
        buf.clear();
        loop {
            if let Some((status, head, length, close)) = parse_head(buf)? {
                while buf.len() < head + length {
                    read_more(s, buf).await?;
                }
                let text = String::from_utf8_lossy(&buf[head..head + length]).into_owned();
                return Ok((status, text, close));
            }
            read_more(s, buf).await?;
        }
    }
    .await;
    match result {
        Ok((status, text, close)) => {
            if close {
                *conn = None;
            }
            Ok((status, text))
        }
        Err(e) => {
            *conn = None;
            Err(e)
        }
    }
}

async fn read_more(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    use tokio::io::AsyncReadExt;
    let mut chunk = [0u8; 4096];
    match s.read(&mut chunk).await {
        Ok(0) => Err("the server closed the connection".into()),
        Ok(k) => {
            buf.extend_from_slice(&chunk[..k]);
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `(status, header length, content length, connection: close)` once the
/// whole head of a response is in `buf`.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, usize, bool)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(head)) => {
            let status = resp.code.unwrap_or(0);
            let mut length = 0;
            let mut close = false;
            for h in resp.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    length = std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.trim().parse().ok())
                        .ok_or("a bad Content-Length")?;
                } else if h.name.eq_ignore_ascii_case("connection") {
                    close = h.value.eq_ignore_ascii_case(b"close");
                }
            }
            Ok(Some((status, head, length, close)))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("a malformed response: {e}")),
    }
}

fn rand_bytes() -> [u8; 32] {
    // Not a secret worth protecting (a throwaway bench key), but unpredictable anyway.
    let mut out = [0u8; 32];
    let seed = format!("{:?}{}", Instant::now(), std::process::id());
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(seed.as_bytes()).expect("any key length");
    mac.update(
        &std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes(),
    );
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options> {
        parse_args(args)
    }

    #[test]
    fn defaults_are_reqwest_at_every_level() {
        assert_eq!(
            parse(&["inbound"]).unwrap(),
            Options {
                seconds: 10,
                warmup: 2,
                connections: vec![1, 8, 16, 32, 64, 256],
                client: Client::Reqwest,
                rate: None,
                manager: None,
                latencies: None,
            }
        );
    }

    #[test]
    fn options() {
        let o = parse(&[
            "inbound",
            "--connections",
            "1,16",
            "--seconds",
            "3",
            "--warmup",
            "1",
            "--client",
            "raw",
            "--rate=500",
            "--latencies",
            "/tmp/lat",
        ])
        .unwrap();
        assert_eq!(
            (o.connections, o.seconds, o.warmup, o.client, o.rate),
            (vec![1, 16], 3, 1, Client::Raw, Some(500))
        );
        assert_eq!(o.latencies, Some(PathBuf::from("/tmp/lat")));
        // --concurrency N: one level of N connections.
        let o = parse(&["inbound", "--concurrency", "64"]).unwrap();
        assert_eq!(o.connections, [64]);
        let o = parse(&["inbound", "--connections=8"]).unwrap();
        assert_eq!(o.connections, [8]);
        let manager = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let o = parse(&["inbound", "--manager", manager]).unwrap();
        assert_eq!(o.manager, Some(PathBuf::from(manager)));
    }

    #[test]
    fn bad_options_say_what_is_wrong() {
        let err = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert!(err(&["outbound"]).starts_with("usage:"));
        assert!(
            err(&["inbound", "--concurrency", "8", "--connections", "1,8"]).contains("one of them")
        );
        assert!(err(&["inbound", "--connections", "1,,8"]).contains("comma list"));
        assert!(err(&["inbound", "--connections", "8,8"]).contains("twice"));
        assert!(err(&["inbound", "--client", "curl"]).contains("reqwest or raw"));
        assert!(err(&["inbound", "--seconds", "x"]).contains("takes a number"));
        assert!(err(&["inbound", "--seconds", "0"]).contains("unknown option --seconds (or 0)"));
        assert!(err(&["inbound", "--concurrency", "0"]).contains("(or 0)"));
        assert!(err(&["inbound", "--fast", "1"]).contains("unknown option --fast"));
        assert!(err(&["inbound", "--seconds"]).contains("--seconds needs a value"));
        assert!(err(&["inbound", "--manager", "/no/such/file"]).contains("no such file"));
    }

    #[test]
    fn signed_requests_verify_and_have_new_ids() {
        let target = Target {
            addr: "127.0.0.1:1".parse().unwrap(),
            url: "http://127.0.0.1:1/webhooks/t/bench".into(),
            path: "/webhooks/t/bench".into(),
            key: b"0123456789abcdef".to_vec(),
        };
        let (a, b) = (target.sign("1_16_0", 1), target.sign("1_16_0", 2));
        assert_ne!(a.id, b.id);
        assert_ne!(target.sign("1_16_1", 1).id, a.id);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&target.key).unwrap();
        mac.update(format!("{}.{}.{}", a.id, a.timestamp, a.body).as_bytes());
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(a.signature, format!("v1,{expected}"));
        assert!(serde_json::from_str::<serde_json::Value>(&a.body).is_ok());
    }

    #[test]
    fn answers_are_read_as_accepted_or_not() {
        let id = "0192d5c4-8a43-7cc2-9a4e-5d8c1f0e2b7a";
        assert_eq!(
            accepted_id(200, &format!(r#"{{"id":"{id}","duplicate":false}}"#)).unwrap(),
            id
        );
        assert!(accepted_id(200, &format!(r#"{{"id":"{id}","duplicate":true}}"#)).is_err());
        assert!(accepted_id(401, "{}").unwrap_err().starts_with("401"));
        assert!(accepted_id(200, "not json").is_err());
    }
}
