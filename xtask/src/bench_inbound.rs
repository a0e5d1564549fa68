//! `cargo xtask bench inbound [--seconds N] [--concurrency N]`: the inbound
//! webhook benchmark of issue 7.
//!
//! Builds the manager in release, starts it against a `hub_bench` database
//! (created and migrated if missing) and the local RabbitMQ, creates a
//! tenant and a Standard Webhooks endpoint, then drives it from this process
//! with `concurrency` keep-alive connections, each sending freshly signed
//! requests back to back. Prints accepted requests/s and p50/p99 latency,
//! then checks that every accepted request is in Postgres exactly once.

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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

struct Options {
    seconds: u64,
    concurrency: usize,
}

/// Parses `inbound [--seconds N] [--concurrency N]` and runs it.
pub fn run(args: &[&str]) -> Result<ExitCode> {
    let mut opts = Options {
        seconds: 30,
        concurrency: 64,
    };
    let Some((&"inbound", mut rest)) = args.split_first() else {
        bail!("usage: cargo xtask bench inbound [--seconds N] [--concurrency N]");
    };
    while let [flag, value, tail @ ..] = rest {
        let n: u64 = value
            .parse()
            .with_context(|| format!("{flag} takes a number, not {value:?}"))?;
        match *flag {
            "--seconds" if n > 0 => opts.seconds = n,
            "--concurrency" if n > 0 => opts.concurrency = n as usize,
            _ => bail!("unknown option {flag} (or 0): --seconds N, --concurrency N"),
        }
        rest = tail;
    }
    ensure!(rest.is_empty(), "unexpected argument {:?}", rest);
    inbound(&opts)
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
    db.set_path("/hub_bench");
    let database_url = db.to_string();
    infra::create_database_and_migrate(&database_url)?;

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
    let binary = crate::target_dir().join("release/integration-manager");

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let prefix = format!("bench{}.", std::process::id());
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
    let url = format!("{base}/webhooks/{tenant_id}/bench");

    ui::step(&format!(
        "sending Standard-Webhooks-signed requests: {} connections for {} s",
        opts.concurrency, opts.seconds
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let client = agent(opts.concurrency);
    let t0 = Instant::now();
    let workers: Vec<_> = (0..opts.concurrency)
        .map(|w| {
            let (stop, client, url, key) = (
                stop.clone(),
                client.clone(),
                url.clone(),
                signing_key.clone(),
            );
            std::thread::spawn(move || worker(w, &stop, &client, &url, &key))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(opts.seconds));
    stop.store(true, Ordering::SeqCst);
    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    let mut errors = 0u64;
    let mut first_error = None;
    for w in workers {
        let r = w
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))?;
        latencies.extend(r.latencies);
        ids.extend(r.ids);
        errors += r.errors;
        first_error = first_error.or(r.first_error);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    let accepted = ids.len();
    println!();
    println!(
        "inbound benchmark: {} connections, {:.1} s, Standard Webhooks, 1 endpoint",
        opts.concurrency, elapsed
    );
    println!("  accepted         {accepted} requests ({errors} not accepted)");
    println!(
        "  throughput       {:.0} accepted requests/s",
        accepted as f64 / elapsed
    );
    println!(
        "  latency          p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    if let Some(e) = first_error {
        ui::warn(&format!("first failure: {e}"));
    }

    ui::step("checking that every accepted request is in Postgres exactly once");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
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
        "  stored           {stored} of {accepted} accepted ids; {events} events and {duplicates} duplicates on the endpoint"
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

struct WorkerResult {
    latencies: Vec<u32>,
    ids: Vec<String>,
    errors: u64,
    first_error: Option<String>,
}

fn worker(
    w: usize,
    stop: &AtomicBool,
    client: &ureq::Agent,
    url: &str,
    key: &[u8],
) -> WorkerResult {
    let mut r = WorkerResult {
        latencies: Vec::new(),
        ids: Vec::new(),
        errors: 0,
        first_error: None,
    };
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
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
        let t = Instant::now();
        let resp = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", &ts)
            .header("webhook-signature", &sig)
            .send(body);
        let outcome = resp.map_err(|e| e.to_string()).and_then(|mut resp| {
            let status = resp.status().as_u16();
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            if status != 200 {
                return Err(format!("{status} {text}"));
            }
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
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
            Ok(id) => {
                r.latencies.push(us);
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
