//! `cargo xtask bench inbound [--seconds N] [--warmup N] [--concurrency N]
//! [--rate N] [--manager PATH] [--latencies FILE]`: the inbound webhook benchmark of issue 7.
//!
//! Builds the manager in release (or, with `--manager`, runs the binary
//! given, to compare builds on one machine), starts it against a fresh database
//! (created, migrated, then vacuumed and checkpointed; dropped afterwards)
//! and the local RabbitMQ, creates a tenant and a Standard Webhooks
//! endpoint, then drives it from this process
//! with `concurrency` keep-alive connections, each sending freshly signed
//! requests back to back (closed loop: the throughput the box sustains), or
//! with `--rate N` at N requests/s in all on a fixed schedule (open loop:
//! latency at a given load, timed from when each request was due, so a
//! stall counts for every request it delays). A warm-up of `--warmup`
//! seconds (default 3; 0 for none) runs the same load first, untimed: the
//! manager's pools and the connections open, statements are prepared and
//! caches fill there, as in a service that has been running (its requests
//! are checked with the others). Prints accepted requests/s,
//! p50/p90/p99/p99.9 latency and the seconds with requests over 20 ms, then
//! checks that every accepted request is in Postgres exactly once. With
//! `--latencies FILE` it also writes one line per measured request, in the
//! order they started: ms after the measured run began, and its latency in
//! µs (to see whether slow requests are spread out or come together).

use crate::infra;
use crate::ui;
use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sha2::Sha256;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

struct Options {
    seconds: u64,
    /// Seconds of the same load before the measured run (not timed).
    warmup: u64,
    concurrency: usize,
    /// Requests per second in all (open loop); `None`: back to back.
    rate: Option<u64>,
    /// A manager binary to run instead of building one.
    manager: Option<std::path::PathBuf>,
    /// Where to write every measured request's start and latency.
    latencies: Option<std::path::PathBuf>,
}

const USAGE: &str = "usage: cargo xtask bench inbound [--seconds N] [--warmup N] [--concurrency N] [--rate N] [--manager PATH] [--latencies FILE]";

/// Parses `inbound [--seconds N] [--warmup N] [--concurrency N] [--rate N] [--manager PATH] [--latencies FILE]`
/// and runs it.
pub fn run(args: &[&str]) -> Result<ExitCode> {
    let mut opts = Options {
        seconds: 30,
        warmup: 3,
        concurrency: 64,
        rate: None,
        manager: None,
        latencies: None,
    };
    let Some((&"inbound", mut rest)) = args.split_first() else {
        bail!(USAGE);
    };
    while let [flag, value, tail @ ..] = rest {
        rest = tail;
        if *flag == "--manager" {
            let path = std::path::PathBuf::from(value);
            ensure!(
                path.is_file(),
                "--manager {value}: no such file (give the path of an integration-manager binary)"
            );
            opts.manager = Some(path);
            continue;
        }
        if *flag == "--latencies" {
            opts.latencies = Some(std::path::PathBuf::from(value));
            continue;
        }
        let n: u64 = value
            .parse()
            .with_context(|| format!("{flag} takes a number, not {value:?}"))?;
        match *flag {
            "--seconds" if n > 0 => opts.seconds = n,
            "--warmup" => opts.warmup = n,
            "--concurrency" if n > 0 => opts.concurrency = n as usize,
            "--rate" if n > 0 => opts.rate = Some(n),
            _ => bail!("unknown option {flag} (or 0); {USAGE}"),
        }
    }
    ensure!(rest.is_empty(), "unexpected argument {:?}", rest);
    inbound(&opts)
}

/// Drops the run's database and bus prefix when the benchmark ends, however
/// it ends (after the manager has stopped: it is declared first).
struct Cleanup {
    database_url: String,
    rabbitmq_url: String,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        if let Err(e) = rt.block_on(crate::bench::delete_bus_prefix(
            &self.rabbitmq_url,
            &self.prefix,
        )) {
            ui::warn(&format!(
                "could not delete the `{}*` queues: {e:#}",
                self.prefix
            ));
        }
        if let Err(e) = rt.block_on(crate::bench::drop_database(&self.database_url)) {
            ui::warn(&format!("could not drop the bench database: {e:#}"));
        }
    }
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
    let base_url = infra::database_url();
    let rabbitmq_url = infra::rabbitmq_url();
    infra::ensure_postgres(&base_url, "DATABASE_URL")?;
    infra::ensure_rabbitmq(&rabbitmq_url, "RABBITMQ_URL")?;
    let mut db = url::Url::parse(&base_url).context("DATABASE_URL")?;
    // A fresh database and bus prefix each run (dropped afterwards): queue
    // tables of earlier runs would slow this one down.
    db.set_path(&format!("/hub_bench_inbound_{}", std::process::id()));
    let database_url = db.to_string();
    let prefix = format!("bench{}.", std::process::id());
    let _cleanup = Cleanup {
        database_url: database_url.clone(),
        rabbitmq_url: rabbitmq_url.clone(),
        prefix: prefix.clone(),
    };
    infra::create_database_and_migrate(&database_url)?;

    let binary = match &opts.manager {
        Some(path) => path.clone(),
        None => {
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
            crate::target_dir().join("release/integration-manager")
        }
    };

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let key = STANDARD.encode(rand_bytes());
    ui::step(&format!("starting the manager on port {port}"));
    let child = Command::new(&binary)
        .env("PORT", port.to_string())
        .env("HUB_HOST", "127.0.0.1")
        .env("DATABASE_URL", &database_url)
        .env("RABBITMQ_URL", &rabbitmq_url)
        .env("HUB_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("INTEGRATION_ENCRYPTION_KEY", &key)
        .env("HUB_BUS_PREFIX", &prefix)
        .env("HUB_BUS_QUEUE_EXPIRES_MS", "600000")
        .env("HUB_MIGRATE_ON_START", "false")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("could not start {}", binary.display()))?;
    let _manager = Manager(child);
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
    let signing_key = STANDARD.decode(secret.trim_start_matches("whsec_"))?;

    ui::step("settling the database");
    let wal_before = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            crate::bench::settle_database(&database_url).await?;
            anyhow::Ok(wal_position(&database_url).await)
        })?;
    ui::step(&format!(
        "sending Standard-Webhooks-signed requests: {} connections for {} s, {}",
        opts.concurrency,
        opts.seconds,
        opts.rate.map_or("back to back".to_owned(), |r| format!(
            "{r} requests/s in all"
        ))
    ));
    // One thread drives every connection (epoll, not a thread each), so the
    // generator takes as little as possible of the CPU it shares with the
    // manager, Postgres and RabbitMQ.
    let load = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let path = format!("/webhooks/{tenant_id}/bench");
    // The warm-up runs on the same connections, straight into the measured
    // run (from `t0`).
    let start = Instant::now();
    let t0 = start + Duration::from_secs(opts.warmup);
    let deadline = t0 + Duration::from_secs(opts.seconds);
    if opts.warmup > 0 {
        ui::info(&format!("warming up for {} s (not measured)", opts.warmup));
    }
    let results = load.block_on(async {
        let workers: Vec<_> = (0..opts.concurrency)
            .map(|w| {
                let (path, key) = (path.clone(), signing_key.clone());
                // Paced: each connection sends every `concurrency / rate`
                // seconds, the connections staggered evenly.
                let pace = opts.rate.map(|r| Pace {
                    first: start + Duration::from_secs_f64(w as f64 / r as f64),
                    every: Duration::from_secs_f64(opts.concurrency as f64 / r as f64),
                });
                tokio::spawn(async move { worker(w, t0, deadline, pace, addr, &path, &key).await })
            })
            .collect();
        let mut out = Vec::with_capacity(workers.len());
        for w in workers {
            out.push(w.await);
        }
        out
    });
    let mut latencies = Vec::new();
    let mut timeline = Vec::new();
    let mut slow = Vec::new();
    let mut ids = Vec::new();
    let mut warm_ids = Vec::new();
    let mut errors = 0u64;
    let mut first_error = None;
    for r in results {
        let r = r.map_err(|_| anyhow::anyhow!("a load task panicked"))?;
        slow.extend(
            r.latencies
                .iter()
                .zip(&r.started)
                .filter(|(us, _)| **us > SLOW_US)
                .map(|(_, &ms)| u64::from(ms / 1000)),
        );
        if opts.latencies.is_some() {
            timeline.extend(r.started.iter().copied().zip(r.latencies.iter().copied()));
        }
        latencies.extend(r.latencies);
        ids.extend(r.ids);
        warm_ids.extend(r.warm_ids);
        errors += r.errors;
        first_error = first_error.or(r.first_error);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    if let Some(path) = &opts.latencies {
        timeline.sort_unstable();
        let text: String = timeline
            .iter()
            .map(|(ms, us)| format!("{ms} {us}\n"))
            .collect();
        std::fs::write(path, text).with_context(|| format!("--latencies {}", path.display()))?;
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    let accepted = ids.len();
    println!();
    println!(
        "inbound benchmark: {} connections, {}, {:.1} s, Standard Webhooks, 1 endpoint",
        opts.concurrency,
        opts.rate.map_or("back to back".to_owned(), |r| format!(
            "paced at {r} requests/s (latency from when each was due)"
        )),
        elapsed
    );
    println!("  accepted         {accepted} requests ({errors} not accepted)");
    println!(
        "  throughput       {:.0} accepted requests/s",
        accepted as f64 / elapsed
    );
    println!(
        "  latency          p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    let slow = crate::bench::report::by_second(slow);
    if !slow.is_empty() {
        let worst: Vec<String> = slow
            .iter()
            .take(5)
            .map(|(sec, n)| format!("{sec} s: {n}"))
            .collect();
        println!(
            "  slow seconds     requests over {} ms by the second they started, worst first: {} ({} of {} seconds had any)",
            SLOW_US / 1000,
            worst.join(", "),
            slow.len(),
            opts.seconds
        );
    }
    if let Some(e) = first_error {
        ui::warn(&format!("first failure: {e}"));
    }

    ui::step("checking that every accepted request is in Postgres exactly once");
    // From here on: every accepted request, the warm-up's too.
    let warm = warm_ids.len();
    ids.extend(warm_ids);
    let accepted = ids.len();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The events of every accepted request reach RabbitMQ asynchronously
    // (the outbox): how far behind the bus was when the load stopped.
    let (caught_up, waiting) = rt.block_on(crate::bench::wait_bus_caught_up(&database_url))?;
    println!(
        "  bus caught up    {:.1} s after the load ({waiting} outbox events were still to publish)",
        caught_up.as_secs_f64()
    );
    // The WAL every accepted request cost, its events' publishing and
    // retiring included (Postgres recycles a 16 MB WAL segment file, or
    // creates one while commits wait, every 16 MB).
    if let (Some(before), Some(after)) = (wal_before, rt.block_on(wal_position(&database_url))) {
        let bytes = (after - before).max(0) as f64;
        println!(
            "  WAL written      {:.1} KB per accepted request ({:.0} MB in all, warm-up included)",
            bytes / accepted.max(1) as f64 / 1024.0,
            bytes / 1024.0 / 1024.0
        );
    }
    let (stored, events, duplicates) = rt.block_on(async {
        let pool = hub_storage::pool(&database_url, &hub_storage::PoolSettings::default())?;
        let uuids: Vec<uuid::Uuid> = ids.iter().filter_map(|s| s.parse().ok()).collect();
        let stored = hub_storage::inbound_events::count_ids(&pool, &uuids).await?;
        let endpoint: uuid::Uuid = endpoint_id.parse()?;
        let (events, duplicates) =
            hub_storage::inbound_events::count_for_endpoint(&pool, endpoint).await?;
        pool.close().await;
        anyhow::Ok((stored, events, duplicates))
    })?;
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    println!(
        "  stored           {stored} of {accepted} accepted ids ({warm} of them in the warm-up); {events} events and {duplicates} duplicates on the endpoint"
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

/// What the slow-seconds line counts as slow, µs (the p99 target).
const SLOW_US: u32 = 20_000;

struct WorkerResult {
    /// Per accepted request, µs.
    latencies: Vec<u32>,
    /// When each of them started, ms after the load began.
    started: Vec<u32>,
    ids: Vec<String>,
    /// The ids accepted in the warm-up (checked, not measured).
    warm_ids: Vec<String>,
    /// Requests not accepted (warm-up included).
    errors: u64,
    first_error: Option<String>,
}

/// When a paced connection sends: first at `first`, then every `every`.
#[derive(Clone, Copy)]
struct Pace {
    first: Instant,
    every: Duration,
}

/// One keep-alive connection sending signed requests until `deadline`
/// (those started before `t0` are the warm-up's): plain HTTP/1.1 over a
/// socket. Back to back, each is timed from its first byte written to the
/// last byte of its answer; paced, from when it was due (a late send counts
/// as latency).
async fn worker(
    w: usize,
    t0: Instant,
    deadline: Instant,
    pace: Option<Pace>,
    addr: std::net::SocketAddr,
    path: &str,
    key: &[u8],
) -> WorkerResult {
    let mut r = WorkerResult {
        latencies: Vec::new(),
        started: Vec::new(),
        ids: Vec::new(),
        warm_ids: Vec::new(),
        errors: 0,
        first_error: None,
    };
    let mut conn: Option<tokio::net::TcpStream> = None;
    let mut buf = Vec::with_capacity(4096);
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let msg_id = format!("msg_{}_{w}_{n}", std::process::id());
        let body = format!(
            r#"{{"type":"load.updated","data":{{"load_id":"L-{w}-{n}","status":"IN_TRANSIT"}}}}"#
        );
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            .to_string();
        // Standard Webhooks, signed here independently of the server's code.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(format!("{msg_id}.{ts}.{body}").as_bytes());
        let sig = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             webhook-id: {msg_id}\r\nwebhook-timestamp: {ts}\r\nwebhook-signature: {sig}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let t = match pace {
            Some(p) => {
                let due = p.first + p.every * u32::try_from(n - 1).unwrap_or(u32::MAX);
                if due >= deadline {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None => Instant::now(),
        };
        let outcome = exchange(&mut conn, addr, request.as_bytes(), &mut buf)
            .await
            .and_then(|(status, text)| {
                if status != 200 {
                    return Err(format!("{status} {text}"));
                }
                let v: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| e.to_string())?;
                if v["duplicate"] != false {
                    return Err(format!("unexpected duplicate: {text}"));
                }
                v["id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| text.clone())
            });
        let us = u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
        match outcome {
            Ok(id) if t < t0 => r.warm_ids.push(id),
            Ok(id) => {
                r.latencies.push(us);
                r.started
                    .push(u32::try_from(t.duration_since(t0).as_millis()).unwrap_or(u32::MAX));
                r.ids.push(id);
            }
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert(e);
            }
        }
    }
    r
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
