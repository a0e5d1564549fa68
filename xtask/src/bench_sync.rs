//! `cargo xtask bench sync [--records N] [--conflicts PCT] [--sync PATH]`:
//! the sync engine's benchmark (issue 29, item 8).
//!
//! Builds integration-manager, integration-sync and `fake-providers` in
//! release, starts the fakes with `--records` (200,000) generated records
//! per object and request recording off, and both services against a fresh
//! database (created, migrated; dropped afterwards) and the local RabbitMQ.
//! Through the manager's API it creates a tenant, an API key and a HubSpot
//! integration on the fake HubSpot (rate limit out of reach, so the
//! limiter's bookkeeping is measured but never its waiting), then:
//!
//! 1. **initial load**: a FULL_SYNC of `contacts` into an empty hub — every
//!    record created, one `integration.contact.updated` event each;
//! 2. **conflicts**: `--conflicts` percent (5) of the contacts are changed
//!    at the fake through HubSpot's own API (`PATCH
//!    /crm/v3/objects/contacts/{id}`), and the hub's copies of the same
//!    records are given a local change not yet exported (half of them
//!    older than the provider's change, half newer, written straight to
//!    `sync_records`: the hub has no API that makes local changes in bulk);
//! 3. **re-sync**: a second FULL_SYNC, the measured run of the issue's
//!    target: every record read, mapped and compared; the changed ones are
//!    conflicts (newest wins: half remote, half local), the others
//!    unchanged.
//!
//! Each run is one job created with `POST /api/v1/sync-jobs` and followed
//! with `GET /api/v1/sync-jobs/{id}` (every 100 ms); records/s is records
//! read over the time from the job's creation to its completion as the
//! API reports it. Pages are HubSpot's 100 records, with no artificial
//! delay. The report gives per run the records, pages, outcome counts,
//! conflicts recorded (rows in `sync_conflicts`), records/s, and the peak
//! RSS (`VmHWM`) of the integration-sync process. Verdict: the re-sync at
//! ≥ 20,000 records/s, every record processed, the conflicts all
//! recorded. Exit code 0 when met, 1 when not.

use crate::bench::report::thousands;
use crate::bench_gateway::{self as gw, Fake, Manager};
use crate::infra;
use crate::ui;
use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Records per object at the fake.
const DEFAULT_RECORDS: u64 = 200_000;
/// Percent of the records changed on both sides before the re-sync.
const DEFAULT_CONFLICTS: u64 = 5;
/// Records/s the re-sync must reach.
const TARGET_PER_SEC: f64 = 20_000.0;
/// Longest a run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(1800);

const USAGE: &str =
    "usage: cargo xtask bench sync [--records N] [--conflicts PERCENT] [--sync PATH]";

#[derive(Debug, PartialEq)]
struct Options {
    records: u64,
    conflicts: u64,
    /// An integration-sync binary to run instead of building one.
    sync: Option<PathBuf>,
}

/// Parses `sync [options]` (see [`USAGE`]) and runs it.
pub fn run(args: &[&str]) -> Result<ExitCode> {
    bench(&parse_args(args)?)
}

fn parse_args(args: &[&str]) -> Result<Options> {
    let Some((&"sync", rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    let mut opts = Options {
        records: DEFAULT_RECORDS,
        conflicts: DEFAULT_CONFLICTS,
        sync: None,
    };
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            bail!("{flag} needs a value; {USAGE}");
        };
        match *flag {
            "--sync" => {
                let path = PathBuf::from(value);
                ensure!(path.is_file(), "--sync {value}: no such file");
                opts.sync = Some(path);
            }
            "--records" | "--conflicts" => {
                let n: u64 = value
                    .parse()
                    .with_context(|| format!("{flag} takes a number, not {value:?}"))?;
                match *flag {
                    "--records" if (100..=10_000_000).contains(&n) => opts.records = n,
                    "--conflicts" if n <= 100 => opts.conflicts = n,
                    _ => bail!("{flag} {n} is out of its range; {USAGE}"),
                }
            }
            other => bail!("unknown option {other}; {USAGE}"),
        }
    }
    Ok(opts)
}

/// One run's figures.
#[derive(Debug, Clone)]
struct RunResult {
    name: &'static str,
    job: Value,
    seconds: f64,
    conflicts_recorded: i64,
    rss_kib: u64,
}

impl RunResult {
    fn processed(&self) -> u64 {
        self.job["processed_records"].as_u64().unwrap_or(0)
    }

    fn per_sec(&self) -> f64 {
        self.processed() as f64 / self.seconds.max(1e-9)
    }
}

fn bench(opts: &Options) -> Result<ExitCode> {
    let (base_url, rabbitmq_url, transport) = crate::bench::servers()?;
    let (manager_bin, sync_bin, fakes_bin) = build(opts)?;
    let run_id = std::process::id();
    let logs = crate::target_dir()
        .join("bench")
        .join(format!("sync-{run_id}"));
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let database_url = crate::bench::with_database(&base_url, &format!("hub_bench_sync_{run_id}"))?;
    let prefix = format!("benchsync{run_id}.");
    let _cleanup = crate::bench::RunCleanup {
        database_url: database_url.clone(),
        rabbitmq_url: rabbitmq_url.clone(),
        prefix: prefix.clone(),
    };
    infra::create_database_and_migrate(&database_url)?;
    let records = opts.records.to_string();
    let (mut fakes, fake) = gw::start_fakes(
        &fakes_bin,
        &logs,
        &[("FAKE_PROVIDERS_RECORDS", records.as_str())],
    )?;
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let env = [
        ("DATABASE_URL", database_url.as_str()),
        ("RABBITMQ_URL", rabbitmq_url.as_str()),
        ("HUB_BUS_PREFIX", prefix.as_str()),
        ("INTEGRATION_ENCRYPTION_KEY", key.as_str()),
        ("LOG_REQUEST_BODIES", "false"),
        ("LOG_RESPONSE_BODIES", "false"),
    ];
    let manager_log = logs.join("integration-manager.log");
    let mut manager = gw::start_service(&manager_bin, "the manager", &env, &manager_log)?;
    let sync_log = logs.join("integration-sync.log");
    let mut sync = gw::start_service(&sync_bin, "integration-sync", &env, &sync_log)?;
    let setup = gw::setup(&manager.base, &fake)?;
    let auth = auth_pairs(&setup.auth);
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    ui::step(&format!(
        "sync benchmark: FULL_SYNC of {} HubSpot contacts from the fake (pages of 100, no delay), then {} % changed on both sides and a second FULL_SYNC; database over {transport}",
        thousands(opts.records),
        opts.conflicts
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let pool = rt.block_on(
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&database_url),
    )?;
    let mut results = Vec::new();
    let first = one_run(
        "initial load",
        &manager,
        &sync,
        &setup,
        &auth,
        &rt,
        &pool,
        &sync_log,
    )?;
    manager.process.check_alive("the manager", &manager_log)?;
    results.push(first);

    let changed = make_conflicts(opts, &fake, &setup, &rt, &pool)?;
    ui::info(&format!(
        "{} contacts changed at the fake and locally",
        thousands(changed)
    ));
    let second = one_run(
        "re-sync with conflicts",
        &manager,
        &sync,
        &setup,
        &auth,
        &rt,
        &pool,
        &sync_log,
    )?;
    sync.process.check_alive("integration-sync", &sync_log)?;
    fakes.check_alive("fake-providers", &logs.join("fake-providers.log"))?;
    results.push(second);
    drop(rt);
    drop(sync);
    drop(manager);
    drop(fakes);
    report(&results);
    ui::info(&format!("the services' output: {}", logs.display()));
    Ok(verdict(opts, &results, changed))
}

pub(crate) fn auth_pairs(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect()
}

/// The three binaries: release builds of this tree (integration-sync:
/// `--sync`'s when given).
fn build(opts: &Options) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let started = Instant::now();
    ui::step("building integration-manager, integration-sync and fake-providers (release)");
    let mut cmd = crate::cargo();
    cmd.args([
        "build",
        "--release",
        "-p",
        "integration-manager",
        "-p",
        "hub-testkit",
        "--bins",
    ]);
    if opts.sync.is_none() {
        cmd.args(["-p", "integration-sync"]);
    }
    ui::run_checked(&mut cmd, "the release build failed (see the errors above)")?;
    ui::info(&format!("built in {}", ui::secs(started.elapsed())));
    let release = crate::target_dir().join("release");
    let sync = opts
        .sync
        .clone()
        .unwrap_or_else(|| release.join("integration-sync"));
    Ok((
        release.join("integration-manager"),
        sync,
        release.join("fake-providers"),
    ))
}

/// Creates a FULL_SYNC of contacts and follows it to its end.
#[allow(clippy::too_many_arguments)]
fn one_run(
    name: &'static str,
    manager: &Manager,
    sync: &Manager,
    setup: &gw::Setup,
    auth: &[(&str, &str)],
    rt: &tokio::runtime::Runtime,
    pool: &sqlx::PgPool,
    sync_log: &Path,
) -> Result<RunResult> {
    ui::step(&format!("{name}: FULL_SYNC of contacts"));
    let base = &manager.base;
    let started = Instant::now();
    let created = gw::call_ok(
        "POST",
        &format!("{base}/api/v1/sync-jobs"),
        auth,
        Some(
            &json!({"integration_id": setup.integration_id, "job_type": "FULL_SYNC",
                     "entity_type": "contacts", "confirm_deletions": false}),
        ),
    )?;
    let id = created["id"].as_str().context("job id")?.to_owned();
    let mut dots = ui::Dots::new();
    let mut last_print = Instant::now();
    let job = loop {
        let job = gw::call_ok("GET", &format!("{base}/api/v1/sync-jobs/{id}"), auth, None)?;
        let status = job["status"].as_str().unwrap_or("?");
        if !["PENDING", "RUNNING"].contains(&status) {
            break job;
        }
        ensure!(
            started.elapsed() < RUN_TIMEOUT,
            "the job did not end within {} s: {job}",
            RUN_TIMEOUT.as_secs()
        );
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            dots.tick(&format!(
                "{} records, page {}",
                thousands(job["processed_records"].as_u64().unwrap_or(0)),
                job["current_page"]
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let wall = started.elapsed();
    dots.done(job["status"].as_str().unwrap_or("?"));
    ensure!(
        job["status"] == "COMPLETED",
        "the job ended {}: {}",
        job["status"],
        job["error_message"]
    );
    // The API's own timestamps: creation to completion.
    let seconds = match (time(&job["created_at"]), time(&job["completed_at"])) {
        (Some(a), Some(b)) if b > a => (b - a).as_seconds_f64(),
        _ => wall.as_secs_f64(),
    };
    let job_id: uuid::Uuid = id.parse()?;
    let conflicts_recorded: i64 = rt.block_on(
        sqlx::query_scalar("SELECT count(*) FROM sync_conflicts WHERE job_id = $1")
            .bind(job_id)
            .fetch_one(pool),
    )?;
    let rss_kib = peak_rss_kib(sync.process.pid()).with_context(|| {
        format!(
            "reading integration-sync's peak RSS (see {})",
            sync_log.display()
        )
    })?;
    let r = RunResult {
        name,
        job,
        seconds,
        conflicts_recorded,
        rss_kib,
    };
    ui::info(&format!(
        "{name}: {} records in {:.1} s: {} records/s",
        thousands(r.processed()),
        r.seconds,
        thousands(r.per_sec() as u64)
    ));
    Ok(r)
}

fn time(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    v.as_str()?.parse().ok()
}

/// `VmHWM` of a process, KiB.
fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM line")
}

/// Changes `--conflicts` % of the contacts at the fake (HubSpot's PATCH)
/// and gives the hub's copies a local change: every other one older than
/// the provider's change (the provider wins), the rest newer (the hub
/// wins). Returns how many.
fn make_conflicts(
    opts: &Options,
    fake: &Fake,
    setup: &gw::Setup,
    rt: &tokio::runtime::Runtime,
    pool: &sqlx::PgPool,
) -> Result<u64> {
    let Some(every) = 100u64.checked_div(opts.conflicts) else {
        return Ok(0);
    };
    let every = every.max(1);
    let ids: Vec<String> = rt.block_on(
        sqlx::query_scalar(
            "SELECT external_id FROM sync_records WHERE integration_id = $1 ORDER BY external_id",
        )
        .bind(setup.integration_id)
        .fetch_all(pool),
    )?;
    let chosen: Vec<String> = ids
        .into_iter()
        .enumerate()
        .filter(|(i, _)| (*i as u64).is_multiple_of(every))
        .map(|(_, id)| id)
        .collect();
    ui::step(&format!(
        "changing {} contacts at the fake (PATCH, 8 connections) and in the hub",
        thousands(chosen.len() as u64)
    ));
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    let client = reqwest::Client::new();
    let base = fake.base_url.trim_end_matches('/').to_owned();
    let token = fake.token.clone();
    rt.block_on(async {
        let work = std::sync::Arc::new(std::sync::Mutex::new(chosen.clone()));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (work, client, base, token) =
                (work.clone(), client.clone(), base.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let Some(id) = work.lock().expect("lock").pop() else {
                        return Ok::<(), anyhow::Error>(());
                    };
                    let r = client
                        .patch(format!("{base}/crm/v3/objects/contacts/{id}"))
                        .bearer_auth(&token)
                        .json(&json!({"properties": {"jobtitle": format!("Changed {id}")}}))
                        .send()
                        .await?;
                    ensure!(
                        r.status().is_success(),
                        "PATCH contact {id} at the fake: {}",
                        r.status()
                    );
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        Ok::<(), anyhow::Error>(())
    })?;
    let after = chrono::Utc::now() + chrono::Duration::seconds(5);
    // Local changes: the hub's copy with another phone, half before the
    // provider's change, half after.
    rt.block_on(
        sqlx::query(
            "UPDATE sync_records r
                SET local_data = r.data || jsonb_build_object('phone', '+1 555 0100'),
                    local_changed_at = CASE WHEN c.n % 2 = 0 THEN $3 ELSE $4 END
               FROM UNNEST($2::text[]) WITH ORDINALITY AS c(external_id, n)
              WHERE r.integration_id = $1 AND r.entity_type = 'contacts'
                AND r.external_id = c.external_id",
        )
        .bind(setup.integration_id)
        .bind(&chosen)
        .bind(before)
        .bind(after)
        .execute(pool),
    )?;
    Ok(chosen.len() as u64)
}

fn report(results: &[RunResult]) {
    println!();
    println!(
        "| run | records | pages | created | updated | unchanged | conflicts (recorded) | errors | seconds | records/s | peak RSS of integration-sync |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let j = &r.job;
        let n = |k: &str| thousands(j[k].as_u64().unwrap_or(0));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} ({}) | {} | {:.1} | **{}** | {:.0} MiB |",
            r.name,
            n("processed_records"),
            n("current_page"),
            n("created_count"),
            n("updated_count"),
            n("unchanged_count"),
            n("conflict_count"),
            thousands(u64::try_from(r.conflicts_recorded).unwrap_or(0)),
            n("error_count"),
            r.seconds,
            thousands(r.per_sec() as u64),
            r.rss_kib as f64 / 1024.0
        );
    }
    println!();
}

fn verdict(opts: &Options, results: &[RunResult], changed: u64) -> ExitCode {
    let mut failures = Vec::new();
    for r in results {
        if r.processed() != opts.records {
            failures.push(format!(
                "{}: {} records read, not {}",
                r.name,
                r.processed(),
                opts.records
            ));
        }
    }
    if let Some(r) = results.last() {
        if r.per_sec() < TARGET_PER_SEC {
            failures.push(format!(
                "{}: {} records/s, under the {} target",
                r.name,
                thousands(r.per_sec() as u64),
                thousands(TARGET_PER_SEC as u64)
            ));
        }
        let conflicts = r.job["conflict_count"].as_u64().unwrap_or(0);
        if conflicts != changed || u64::try_from(r.conflicts_recorded).unwrap_or(0) != changed {
            failures.push(format!(
                "{}: {changed} records changed on both sides, {conflicts} conflicts counted, {} recorded",
                r.name, r.conflicts_recorded
            ));
        }
    }
    if failures.is_empty() {
        ui::info(&format!(
            "MET: the re-sync read {} records/s (target ≥ {}), every conflict recorded",
            thousands(results.last().map_or(0.0, RunResult::per_sec) as u64),
            thousands(TARGET_PER_SEC as u64)
        ));
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            ui::error(&format!("NOT MET: {f}"));
        }
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        assert_eq!(
            parse_args(&["sync"]).unwrap(),
            Options {
                records: DEFAULT_RECORDS,
                conflicts: DEFAULT_CONFLICTS,
                sync: None
            }
        );
        let o = parse_args(&["sync", "--records", "1000", "--conflicts", "10"]).unwrap();
        assert_eq!((o.records, o.conflicts), (1000, 10));
        let err = |a: &[&str]| parse_args(a).unwrap_err().to_string();
        assert!(err(&["sync", "--records"]).contains("needs a value"));
        assert!(err(&["sync", "--records", "x"]).contains("takes a number"));
        assert!(err(&["sync", "--records", "5"]).contains("out of its range"));
        assert!(err(&["sync", "--conflicts", "101"]).contains("out of its range"));
        assert!(err(&["sync", "--fast", "1"]).contains("unknown option --fast"));
        assert!(err(&["sync", "--sync", "/no/such/file"]).contains("no such file"));
    }

    #[test]
    fn reads_peak_rss_of_this_process() {
        assert!(peak_rss_kib(std::process::id()).unwrap() > 0);
    }
}
