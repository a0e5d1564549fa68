//! `cargo xtask chaos [--short] [--seconds N]`: the hub under steady load
//! while its parts fail, one fault at a time (issue 31, part 3).
//!
//! Everything runs on this machine: a private Postgres cluster and RabbitMQ
//! node ([`private`]; the machine's own servers are shared with other test
//! runs and are never restarted), two replicas each of integration-manager,
//! integration-sync and webhook-dispatcher as processes, the bench's webhook
//! receiver, the fake providers, and a steady load ([`traffic`]) of outbound
//! events (`POST /api/v1/events`, for a subscription pointing at the
//! receiver) and signed inbound webhooks, with FULL_SYNC jobs from the fake
//! HubSpot running one after another ([`sync`]). Then in turn: `kill -9` of replicas (each one
//! restarted at once and waited for), a restart of RabbitMQ, a crash
//! (immediate stop) and restart of Postgres, a receiver that hangs without
//! answering, and a full disk under the request-log table. After each fault
//! it waits until the hub has recovered: the failed part healthy again,
//! every event accepted before the repair delivered, an event accepted
//! after it delivered, an inbound webhook accepted after it and a sync job
//! accepted after it completed.
//!
//! At the end the load stops, the last deliveries and the last sync job
//! drain, and a table says per fault how long the part was down, how long
//! the hub took to recover and how many duplicate deliveries it caused, and
//! overall: events accepted vs delivered (events delivered whose 202 never
//! came counted apart), inbound webhooks accepted vs stored, sync jobs
//! accepted vs completed with every record, and the records the hub holds
//! vs the fake's. A duplicate is allowed only of a delivery in flight at a
//! fault: its event's first arrival came between one attempt's timeout
//! before the injection and the recovery ([`window`]); the hub could not
//! record that attempt's outcome, so it sent it again (receivers dedupe by
//! the `webhook-id` header). Exit 1 if anything accepted was lost, a
//! duplicate was not in flight at a fault, a sync job did not complete
//! with every record, or a fault was not recovered from.
//!
//! The request log has no disk budget in the code (only `LOG_RETENTION_DAYS`,
//! pruned at start and hourly), so the log fault gives `api_request_logs` a
//! disk of its own that is full: a tablespace on a small tmpfs (root only),
//! filled with rows older than the retention. The hub must keep accepting
//! and storing webhooks while their log rows cannot be written; the repair
//! is what the code offers, the retention's delete
//! (`hub_storage::api_logs::prune`) and a vacuum.
//!
//! `--short` (a step of `cargo xtask test`) runs debug builds with a small
//! load, one kill per service and every other fault briefly; the long run
//! (release builds) kills every replica and holds each fault longer.

mod private;
mod sync;
mod traffic;

use crate::bench::receiver::{Receiver, WebhookSecret};
use crate::bench_gateway::{ADMIN_TOKEN, Running, call_ok};
use crate::ui;
use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use private::{Postgres, Rabbit, SmallDisk};
use sqlx::AssertSqlSafe;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sync::SyncLoad;
use traffic::{Tracker, Traffic};

/// The request-log table's disk: room for the table as it is, plus this
/// much (MB), which the fault then fills.
const LOG_DISK_MB: u32 = 16;
/// One delivery attempt's timeout (`WEBHOOK_TIMEOUT_SECONDS`).
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(3);
/// Slack around a fault's window when duplicates are attributed to it.
const SLACK: Duration = Duration::from_secs(1);

/// How a run is sized.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    short: bool,
    /// Steady load before each fault and after the last one.
    calm: Duration,
    events_per_sec: u32,
    inbound_per_sec: u32,
    /// How long the receiver hangs and the log disk stays full.
    hold: Duration,
    /// Replicas killed: (index into `crate::SERVICES`, replica).
    kills: Vec<(usize, usize)>,
    /// Longest wait for the hub to recover from a fault.
    recovery_timeout: Duration,
    /// Contacts at the fake HubSpot, read by every sync job.
    sync_records: u64,
}

impl Plan {
    fn new(short: bool, seconds: Option<u64>) -> Self {
        if short {
            Self {
                short,
                calm: Duration::from_secs(seconds.unwrap_or(2)),
                events_per_sec: 25,
                inbound_per_sec: 15,
                hold: Duration::from_secs(3),
                // The second replica of each service.
                kills: (0..crate::SERVICES.len()).map(|s| (s, 1)).collect(),
                recovery_timeout: Duration::from_secs(45),
                sync_records: 2_000,
            }
        } else {
            Self {
                short,
                calm: Duration::from_secs(seconds.unwrap_or(15)),
                events_per_sec: 150,
                inbound_per_sec: 100,
                hold: Duration::from_secs(15),
                kills: (0..crate::SERVICES.len())
                    .flat_map(|s| [(s, 0), (s, 1)])
                    .collect(),
                recovery_timeout: Duration::from_secs(180),
                sync_records: 20_000,
            }
        }
    }
}

/// One fault of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Kill { service: usize, replica: usize },
    RestartRabbit,
    RestartPostgres,
    Blackhole,
    LogDiskFull,
}

impl Fault {
    fn describe(self) -> String {
        match self {
            Self::Kill { service, replica } => {
                format!(
                    "kill -9 {} #{}",
                    crate::SERVICES[service].label,
                    replica + 1
                )
            }
            Self::RestartRabbit => "restart RabbitMQ".into(),
            Self::RestartPostgres => "crash+restart Postgres".into(),
            Self::Blackhole => "receiver hangs".into(),
            Self::LogDiskFull => "request-log disk full".into(),
        }
    }
}

/// What one fault did.
struct FaultResult {
    fault: Fault,
    /// When it was injected.
    at: Instant,
    /// Injection to the failed part answering again (`None`: it stayed up).
    down: Option<Duration>,
    /// Injection to recovered; `None`: not within the timeout.
    recovered: Option<Duration>,
    events: (u64, u64),
    inbound: (u64, u64),
    note: String,
}

fn parse_args(args: &[&str]) -> Result<Plan, String> {
    let (mut short, mut seconds) = (false, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match *arg {
            "--short" => short = true,
            "--seconds" => {
                let v = it.next().ok_or("--seconds needs a value")?;
                seconds = match v.parse::<u64>() {
                    Ok(n) if (1..=3600).contains(&n) => Some(n),
                    _ => return Err(format!("--seconds must be 1 to 3600, not {v:?}")),
                };
            }
            other => return Err(format!("unexpected argument `{other}` to `chaos`")),
        }
    }
    Ok(Plan::new(short, seconds))
}

/// `cargo xtask chaos …`; a usage error is `Err(message)` in the outer result.
pub fn run(args: &[&str]) -> Result<Result<ExitCode>, String> {
    let plan = parse_args(args)?;
    Ok(chaos(&plan))
}

/// The short run, as a step of `cargo xtask test`: Ok only if it passed.
pub fn short() -> Result<()> {
    match chaos(&Plan::new(true, None))? {
        code if code == ExitCode::SUCCESS => Ok(()),
        _ => bail!("cargo xtask chaos --short failed (see above)"),
    }
}

fn chaos(plan: &Plan) -> Result<ExitCode> {
    let started = Instant::now();
    let profile = if plan.short { "debug" } else { "release" };
    ui::step(&format!(
        "chaos{}: {} events/s and {} inbound webhooks/s, {} builds",
        if plan.short { " --short" } else { "" },
        plan.events_per_sec,
        plan.inbound_per_sec,
        profile
    ));
    let mut build = crate::cargo();
    build.arg("build").arg("--bins");
    if !plan.short {
        build.arg("--release");
    }
    for svc in crate::SERVICES {
        build.args(["-p", svc.package]);
    }
    // fake-providers: the HubSpot the sync jobs read.
    build.args(["-p", "hub-testkit"]);
    ui::run_checked(&mut build, "the build failed (see the errors above)")?;

    let run_id = hex::encode(rand::random::<[u8; 3]>());
    let dir = crate::target_dir().join("chaos").join(&run_id);
    std::fs::create_dir_all(dir.join("logs"))?;
    // Removes the data directories when the run ends (the logs stay).
    let _cleanup = RemoveData(dir.clone());
    // Unmounted after Postgres stopped (declared before it).
    let mut log_disk: Option<SmallDisk> = None;

    ui::step(&format!(
        "private Postgres and RabbitMQ under {}",
        dir.display()
    ));
    let t = Instant::now();
    let pg = Postgres::create(&dir.join("pg"))?;
    ui::info(&format!(
        "Postgres on 127.0.0.1:{} ({})",
        pg.port,
        ui::secs(t.elapsed())
    ));
    let t = Instant::now();
    let mut rabbit = Rabbit::create(&dir.join("rabbit"), &run_id)?;
    ui::info(&format!(
        "RabbitMQ node {} on 127.0.0.1:{} ({})",
        rabbit.node,
        rabbit.port,
        ui::secs(t.elapsed())
    ));
    let database_url = pg.url("hub");
    crate::infra::create_database_and_migrate(&database_url)?;

    ui::step("starting two replicas of each service");
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let env = vec![
        ("DATABASE_URL".to_owned(), database_url.clone()),
        ("RABBITMQ_URL".to_owned(), rabbit.url()),
        ("HUB_BUS_PREFIX".to_owned(), "chaos.".to_owned()),
        ("INTEGRATION_ENCRYPTION_KEY".to_owned(), key),
        // A dead replica's deliveries are taken over after the lease; a
        // receiver that hangs is given up on after the timeout, and its
        // breaker probes again soon after.
        (
            "WEBHOOK_TIMEOUT_SECONDS".to_owned(),
            WEBHOOK_TIMEOUT.as_secs().to_string(),
        ),
        ("WEBHOOK_LEASE_SECONDS".to_owned(), "5".to_owned()),
        // A dead sync worker's job is taken over as soon.
        ("SYNC_LEASE_SECONDS".to_owned(), "5".to_owned()),
        ("CIRCUIT_TIMEOUT_SECONDS".to_owned(), "2".to_owned()),
        ("HUB_DATABASE_MAX_CONNECTIONS".to_owned(), "16".to_owned()),
    ];
    let mut fleet = Fleet::start(profile, &dir.join("logs"), env)?;

    let receiver = Receiver::start()?;
    let traffic = Arc::new(setup(&fleet, &receiver)?);
    ui::info(&format!(
        "tenant {}, a subscription to the receiver on port {}, an inbound endpoint",
        traffic.tenant, receiver.port
    ));
    let records = plan.sync_records.to_string();
    let (_fakes, fake) = crate::bench_gateway::start_fakes(
        &crate::target_dir().join(profile).join("fake-providers"),
        &dir.join("logs"),
        &[("FAKE_PROVIDERS_RECORDS", records.as_str())],
    )?;
    let sync = Arc::new(setup_sync(&fleet, &fake, plan.sync_records)?);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let load = runtime.spawn(
        traffic
            .clone()
            .run(plan.events_per_sec, plan.inbound_per_sec),
    );
    let sync_load = std::thread::spawn({
        let sync = sync.clone();
        move || sync.run()
    });

    let mut run = Run {
        plan,
        traffic: &traffic,
        sync: &sync,
        receiver: &receiver,
        tracker: Tracker::default(),
        fleet: &mut fleet,
        pg: &pg,
        rabbit: &mut rabbit,
        dir: &dir,
        database_url: &database_url,
        runtime: &runtime,
        results: Vec::new(),
        log_disk: &mut log_disk,
    };
    let outcome = run.faults();
    traffic.halt();
    sync.halt();
    let _ = runtime.block_on(load);
    let outcome = outcome.and_then(|()| run.finish());
    // Ends a job still followed (it never ended: reported as such).
    sync.give_up();
    let _ = sync_load.join();
    let results = std::mem::take(&mut run.results);
    let tracker = std::mem::take(&mut run.tracker);
    drop(run);
    let (inbound_stored, inbound_accepted, sync_held) = match outcome {
        Ok(counts) => counts,
        Err(e) => {
            ui::error(&format!("{e:#}"));
            ui::info(&format!("logs: {}", dir.join("logs").display()));
            return Ok(ExitCode::FAILURE);
        }
    };
    drop(fleet);
    runtime.shutdown_timeout(Duration::from_secs(2));

    let ok = report(
        &results,
        &tracker,
        &traffic,
        (inbound_accepted, inbound_stored),
        (&sync, sync_held),
    );
    ui::info(&format!(
        "whole run {}; logs: {}",
        ui::secs(started.elapsed()),
        dir.join("logs").display()
    ));
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Removes the run's data directories (Postgres, RabbitMQ) when dropped;
/// declared before them, so it runs after they stopped.
struct RemoveData(PathBuf);

impl Drop for RemoveData {
    fn drop(&mut self) {
        for sub in ["pg", "rabbit/mnesia", "logdisk"] {
            let _ = std::fs::remove_dir_all(self.0.join(sub));
        }
    }
}

/// The six service processes.
struct Fleet {
    replicas: Vec<Replica>,
    bin_dir: PathBuf,
    logs: PathBuf,
    env: Vec<(String, String)>,
}

struct Replica {
    service: crate::Service,
    n: usize,
    port: u16,
    process: Option<Running>,
    /// How many times it was started (each start has its own log).
    starts: u32,
}

impl Replica {
    fn name(&self) -> String {
        format!("{} #{}", self.service.label, self.n + 1)
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> PathBuf {
        PathBuf::from(format!(
            "{}-{}.{}.log",
            self.service.package,
            self.n + 1,
            self.starts
        ))
    }
}

impl Fleet {
    fn start(profile: &str, logs: &std::path::Path, env: Vec<(String, String)>) -> Result<Self> {
        let mut replicas = Vec::new();
        for service in crate::SERVICES {
            for n in 0..2 {
                replicas.push(Replica {
                    service,
                    n,
                    port: private::free_port()?,
                    process: None,
                    starts: 0,
                });
            }
        }
        let mut fleet = Self {
            replicas,
            bin_dir: crate::target_dir().join(profile),
            logs: logs.to_path_buf(),
            env,
        };
        let t = Instant::now();
        for i in 0..fleet.replicas.len() {
            fleet.spawn(i)?;
        }
        let all: Vec<usize> = (0..fleet.replicas.len()).collect();
        fleet.wait_ready(&all, Duration::from_secs(90))?;
        ui::info(&format!("all six ready ({})", ui::secs(t.elapsed())));
        Ok(fleet)
    }

    /// Starts replica `i` on its port (not waiting for it).
    fn spawn(&mut self, i: usize) -> Result<()> {
        let r = &mut self.replicas[i];
        r.starts += 1;
        let log = self.logs.join(r.log());
        let out = std::fs::File::create(&log)?;
        let binary = self.bin_dir.join(r.service.package);
        ensure!(binary.is_file(), "{} was not built", binary.display());
        let mut cmd = Command::new(&binary);
        cmd.env("PORT", r.port.to_string())
            .env("HUB_HOST", "127.0.0.1")
            .env("HUB_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HUB_MIGRATE_ON_START", "false")
            .env("HUB_ALLOW_PRIVATE_TARGETS", "true")
            .env("HUB_ALLOW_INSECURE_URLS", "true")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start {}", binary.display()))?;
        r.process = Some(Running { child });
        Ok(())
    }

    /// `kill -9` of replica `i`; waits until it is gone.
    fn kill9(&mut self, i: usize) -> Result<()> {
        let r = &mut self.replicas[i];
        let mut process = r.process.take().context("replica not running")?;
        process.child.kill()?;
        process.child.wait()?;
        Ok(())
    }

    fn ready(&self, i: usize) -> bool {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        agent
            .get(format!("{}/ready", self.replicas[i].base()))
            .call()
            .is_ok_and(|r| r.status() == 200)
    }

    /// Fails if a replica exited by itself.
    fn check_alive(&mut self) -> Result<()> {
        for r in &mut self.replicas {
            let log = self.logs.join(r.log());
            let name = r.name();
            if let Some(p) = &mut r.process {
                p.check_alive(&name, &log)?;
            }
        }
        Ok(())
    }

    /// Waits until replicas `which` answer `/ready` 200.
    fn wait_ready(&mut self, which: &[usize], timeout: Duration) -> Result<Duration> {
        let t = Instant::now();
        let mut pending = which.to_vec();
        while !pending.is_empty() {
            self.check_alive()?;
            pending.retain(|&i| !self.ready(i));
            if pending.is_empty() {
                break;
            }
            if t.elapsed() > timeout {
                let names: Vec<String> = pending.iter().map(|&i| self.replicas[i].name()).collect();
                bail!(
                    "not ready within {}s: {} (logs in {})",
                    timeout.as_secs(),
                    names.join(", "),
                    self.logs.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(t.elapsed())
    }

    fn index(&self, service: usize, replica: usize) -> usize {
        service * 2 + replica
    }

    fn manager(&self) -> String {
        self.replicas[0].base()
    }
}

impl Drop for Fleet {
    /// SIGTERM to all at once, so that they shut down together; each
    /// [`Running`] then waits for its own.
    fn drop(&mut self) {
        for r in &self.replicas {
            if let Some(p) = &r.process
                && let Ok(pid) = i32::try_from(p.pid())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
    }
}

/// The tenant, its subscription to the receiver and its inbound endpoint.
fn setup(fleet: &Fleet, receiver: &Receiver) -> Result<Traffic> {
    let base = fleet.manager();
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let tenant = call_ok(
        "POST",
        &format!("{base}/api/v1/admin/tenants"),
        &[("Authorization", &admin)],
        Some(&serde_json::json!({"name": "Chaos", "slug": "chaos"})),
    )?;
    let tenant_id: uuid::Uuid = tenant["id"].as_str().context("tenant id")?.parse()?;
    let key = call_ok(
        "POST",
        &format!("{base}/api/v1/admin/tenants/{tenant_id}/api-keys"),
        &[("Authorization", &admin)],
        Some(&serde_json::json!({"name": "chaos"})),
    )?;
    let api_key = key["key"].as_str().context("api key")?.to_owned();
    let bearer = format!("Bearer {api_key}");
    let tenant_header = tenant_id.to_string();
    let auth = [
        ("Authorization", bearer.as_str()),
        ("X-Tenant-ID", tenant_header.as_str()),
    ];
    // Retries every second or two, so that a delivery interrupted by a
    // fault is tried again within the run (20 retries cover a minute).
    let sub = call_ok(
        "POST",
        &format!("{base}/api/v1/webhooks/subscriptions"),
        &auth,
        Some(&serde_json::json!({
            "name": "chaos",
            "url": receiver.url(0, 0),
            "event_types": ["order.*"],
            "max_retries": 20,
            "retry_intervals": [1, 1, 2, 2, 3, 3, 5],
        })),
    )?;
    let secret = sub["secret"].as_str().context("subscription secret")?;
    receiver
        .recorded
        .add_secret(0, 0, WebhookSecret::parse(secret)?);
    let endpoint = call_ok(
        "POST",
        &format!("{base}/api/v1/webhooks/endpoints"),
        &auth,
        Some(
            &serde_json::json!({"endpoint_path": "chaos", "signature_algorithm": "standard-webhooks"}),
        ),
    )?;
    let secret = endpoint["secret_key"].as_str().context("endpoint secret")?;
    let inbound_key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .context("the endpoint's secret is not whsec_ + base64")?;
    let urls = |service: usize, path: &str| -> Vec<String> {
        (0..2)
            .map(|n| format!("{}{path}", fleet.replicas[fleet.index(service, n)].base()))
            .collect()
    };
    Ok(Traffic::new(
        tenant_id,
        api_key,
        urls(2, "/api/v1/events"),
        urls(0, &format!("/webhooks/{tenant_id}/chaos")),
        inbound_key,
    ))
}

/// The sync load's integration: a HubSpot integration of a tenant of its
/// own on the fake, with `records` contacts there.
fn setup_sync(fleet: &Fleet, fake: &crate::bench_gateway::Fake, records: u64) -> Result<SyncLoad> {
    let setup = crate::bench_gateway::setup(&fleet.manager(), fake)?;
    let auth = crate::bench_sync::auth_pairs(&setup.auth);
    let managers = (0..2)
        .map(|n| fleet.replicas[fleet.index(0, n)].base())
        .collect();
    ui::info(&format!(
        "sync: FULL_SYNC jobs of the fake HubSpot's {records} contacts, one after another"
    ));
    let tenant = setup
        .auth
        .get("x-tenant-id")
        .and_then(|v| v.to_str().ok()?.parse::<hub_storage::TenantId>().ok())
        .context("the sync tenant's id")?;
    Ok(SyncLoad::new(
        managers,
        auth,
        tenant,
        setup.integration_id,
        records,
    ))
}

/// A run in progress.
struct Run<'a> {
    plan: &'a Plan,
    traffic: &'a Arc<Traffic>,
    sync: &'a Arc<SyncLoad>,
    receiver: &'a Receiver,
    tracker: Tracker,
    fleet: &'a mut Fleet,
    pg: &'a Postgres,
    rabbit: &'a mut Rabbit,
    dir: &'a PathBuf,
    database_url: &'a str,
    runtime: &'a tokio::runtime::Runtime,
    results: Vec<FaultResult>,
    log_disk: &'a mut Option<SmallDisk>,
}

impl Run<'_> {
    fn faults(&mut self) -> Result<()> {
        let mut faults: Vec<Fault> = self
            .plan
            .kills
            .iter()
            .map(|&(service, replica)| Fault::Kill { service, replica })
            .collect();
        faults.extend([
            Fault::RestartRabbit,
            Fault::RestartPostgres,
            Fault::Blackhole,
        ]);
        if crate::infra::is_root() {
            faults.push(Fault::LogDiskFull);
        } else {
            ui::warn(
                "not root: the request-log disk fault is left out (it mounts a small tmpfs for the table)",
            );
        }
        ui::step(&format!(
            "steady load for {} before each of {} faults",
            ui::secs(self.plan.calm),
            faults.len()
        ));
        for fault in faults {
            self.calm(self.plan.calm)?;
            let result = self.inject(fault)?;
            let took = |d: Option<Duration>| d.map_or("-".to_owned(), ui::secs);
            ui::info(&format!(
                "{}: down {}, recovered after {}{}",
                fault.describe(),
                took(result.down),
                result
                    .recovered
                    .map_or("NOT RECOVERED".to_owned(), ui::secs),
                if result.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", result.note)
                }
            ));
            let recovered = result.recovered.is_some();
            self.results.push(result);
            if !recovered {
                ui::warn("the hub did not recover: the remaining faults are skipped");
                break;
            }
        }
        self.calm(self.plan.calm)
    }

    /// Steady load for `d`, a progress line every 5 s.
    fn calm(&mut self, d: Duration) -> Result<()> {
        let end = Instant::now() + d;
        let mut next = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            self.fleet.check_alive()?;
            self.tracker.update(self.traffic, &self.receiver.recorded);
            if Instant::now() >= next {
                self.progress();
                next += Duration::from_secs(5);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.progress();
        Ok(())
    }

    fn progress(&self) {
        let (ev_ok, ev_failed) = self.traffic.events();
        let (in_ok, in_failed) = self.traffic.inbound();
        let (jobs_ok, jobs_bad, jobs_running) = self.sync.counts();
        ui::info(&format!(
            "events {ev_ok} accepted / {} delivered / {} pending ({ev_failed} failed); inbound {in_ok} accepted ({in_failed} failed); sync jobs {jobs_ok} completed, {jobs_bad} not, {jobs_running} running",
            self.tracker.delivered,
            self.tracker.pending.len()
        ));
    }

    fn inject(&mut self, fault: Fault) -> Result<FaultResult> {
        ui::step(&fault.describe());
        let events_before = self.traffic.events();
        let inbound_before = self.traffic.inbound();
        let t0 = Instant::now();
        let mut note = String::new();
        let down = match fault {
            Fault::Kill { service, replica } => {
                let i = self.fleet.index(service, replica);
                self.fleet.kill9(i)?;
                ui::info(&format!(
                    "killed {}; starting it again",
                    self.fleet.replicas[i].name()
                ));
                self.fleet.spawn(i)?;
                self.fleet.wait_ready(&[i], Duration::from_secs(60))?;
                Some(t0.elapsed())
            }
            Fault::RestartRabbit => {
                self.rabbit.stop()?;
                ui::info("stopped; starting it again");
                self.rabbit.start()?;
                ui::info(&format!("booted after {}", ui::secs(t0.elapsed())));
                self.all_ready()?;
                Some(t0.elapsed())
            }
            Fault::RestartPostgres => {
                self.pg.stop(true)?;
                ui::info("crashed (immediate stop); starting it again");
                std::thread::sleep(Duration::from_secs(1));
                self.pg.start()?;
                ui::info(&format!(
                    "accepting connections after {}",
                    ui::secs(t0.elapsed())
                ));
                self.all_ready()?;
                Some(t0.elapsed())
            }
            Fault::Blackhole => {
                self.receiver.recorded.set_blackhole(true);
                ui::info(&format!(
                    "the receiver hangs on every request for {}",
                    ui::secs(self.plan.hold)
                ));
                self.calm(self.plan.hold)?;
                self.receiver.recorded.set_blackhole(false);
                ui::info("answering again");
                None
            }
            Fault::LogDiskFull => {
                note = self.log_disk_full()?;
                None
            }
        };
        let repaired = Instant::now();
        let recovered = self.wait_recovered(fault, t0, repaired)?;
        if fault == Fault::LogDiskFull && recovered.is_some() {
            note = format!("{note}; logging again");
        }
        let (ev_ok, ev_failed) = self.traffic.events();
        let (in_ok, in_failed) = self.traffic.inbound();
        Ok(FaultResult {
            fault,
            at: t0,
            down,
            recovered,
            events: (ev_ok - events_before.0, ev_failed - events_before.1),
            inbound: (in_ok - inbound_before.0, in_failed - inbound_before.1),
            note,
        })
    }

    fn all_ready(&mut self) -> Result<()> {
        let all: Vec<usize> = (0..self.fleet.replicas.len()).collect();
        self.fleet.wait_ready(&all, Duration::from_secs(90))?;
        Ok(())
    }

    /// Waits until every event accepted up to `repaired` is delivered, one
    /// accepted after it is delivered and an inbound webhook was accepted
    /// after it (and, after the log fault, a log row was written again);
    /// the time since `t0`, or `None` after the plan's timeout.
    fn wait_recovered(
        &mut self,
        fault: Fault,
        t0: Instant,
        repaired: Instant,
    ) -> Result<Option<Duration>> {
        let mut logging = fault != Fault::LogDiskFull;
        let mut next = Instant::now() + Duration::from_secs(5);
        loop {
            self.fleet.check_alive()?;
            self.tracker.update(self.traffic, &self.receiver.recorded);
            if !logging {
                logging = self.logged_since(repaired)?;
            }
            let flowing = self.tracker.newest_delivered.is_some_and(|t| t > repaired)
                && self.traffic.last_inbound().is_some_and(|t| t > repaired)
                && self.sync.completed_since(repaired);
            if logging && flowing && self.tracker.delivered_all_until(repaired) {
                return Ok(Some(t0.elapsed()));
            }
            if repaired.elapsed() > self.plan.recovery_timeout {
                return Ok(None);
            }
            if Instant::now() >= next {
                self.progress();
                next += Duration::from_secs(5);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fault e: `api_request_logs` on a full disk of its own, for the plan's
    /// hold; then the retention's delete and a vacuum. Returns a note.
    fn log_disk_full(&mut self) -> Result<String> {
        let url = self.database_url.to_owned();
        let hold = self.plan.hold;
        let pool = self
            .runtime
            .block_on(async { hub_storage::pool(&url, &hub_storage::PoolSettings::default()) })?;
        // The table moves to the disk whole: it gets room for its size now
        // (the run's log rows; a long run's are tens of MB), with a tenth
        // more for the move's own overhead, plus the part to fill.
        let table: i64 = self.runtime.block_on(
            sqlx::query_scalar("SELECT pg_table_size('api_request_logs')").fetch_one(&pool),
        )?;
        let megabytes = u32::try_from(table / 1_000_000 * 11 / 10)? + LOG_DISK_MB;
        let disk = SmallDisk::mount(&self.dir.join("logdisk"), megabytes)?;
        self.pg.give_to_server(&disk.path)?;
        let location = disk.path.display().to_string();
        *self.log_disk = Some(disk);
        let (rows, logged_during) = self.runtime.block_on(async {
            // Fault injection, not product code: the SQL stays here.
            sqlx::query(AssertSqlSafe(format!(
                "CREATE TABLESPACE chaos_logs LOCATION '{}'",
                location.replace('\'', "''")
            )))
            .execute(&pool)
            .await?;
            sqlx::query("ALTER TABLE api_request_logs SET TABLESPACE chaos_logs")
                .execute(&pool)
                .await?;
            let rows = fill_log_disk(&pool).await?;
            Ok::<_, anyhow::Error>((rows, pool))
        })?;
        ui::info(&format!(
            "api_request_logs ({:.1} MB) moved to a {megabytes} MB tmpfs and filled with {rows} rows older than the retention; holding {}",
            table as f64 / 1e6,
            ui::secs(hold)
        ));
        let full_at = Instant::now();
        self.calm(hold)?;
        let pool = logged_during;
        let written = self.runtime.block_on(async {
            let n = count_logs_since(&pool, full_at).await?;
            ui::info("repairing: the retention's delete (LOG_RETENTION_DAYS=30), then VACUUM");
            let before = chrono::Utc::now() - chrono::Duration::days(30);
            let mut deleted = 0;
            loop {
                let d = hub_storage::api_logs::prune(&pool, before, 5000).await?;
                deleted += d;
                if d < 5000 {
                    break;
                }
            }
            sqlx::query("VACUUM api_request_logs")
                .execute(&pool)
                .await?;
            pool.close().await;
            ui::info(&format!("deleted {deleted} rows"));
            Ok::<_, anyhow::Error>(n)
        })?;
        Ok(format!("{written} log rows written while full"))
    }

    /// Whether a log row of an inbound webhook made after `t` exists.
    fn logged_since(&self, t: Instant) -> Result<bool> {
        let url = self.database_url.to_owned();
        self.runtime.block_on(async {
            let pool = hub_storage::pool(&url, &hub_storage::PoolSettings::default())?;
            let n = count_logs_since(&pool, t).await;
            pool.close().await;
            Ok(n? > 0)
        })
    }

    /// After the load: waits for the last deliveries and the last sync job,
    /// then counts the stored inbound webhooks and the contacts the hub
    /// holds. Returns (stored, accepted, held).
    fn finish(&mut self) -> Result<(u64, u64, u64)> {
        ui::step("load stopped; waiting for the last deliveries and sync job");
        let t = Instant::now();
        let timeout = self.plan.recovery_timeout;
        loop {
            self.tracker.update(self.traffic, &self.receiver.recorded);
            let done = self.tracker.pending.is_empty() && self.sync.idle();
            if done || t.elapsed() > timeout {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // Late duplicates (a retry racing its first attempt) arrive soon after.
        std::thread::sleep(Duration::from_secs(1));
        self.tracker.update(self.traffic, &self.receiver.recorded);
        ui::info(&format!(
            "{} after the load, {} still pending",
            ui::secs(t.elapsed()),
            self.tracker.pending.len()
        ));
        let ids: Vec<uuid::Uuid> = self
            .traffic
            .inbound_accepted
            .lock()
            .expect("lock")
            .iter()
            .map(|(id, _)| *id)
            .collect();
        let url = self.database_url.to_owned();
        let (tenant, integration) = (self.sync.tenant, self.sync.integration_id);
        let (stored, held) = self.runtime.block_on(async {
            let pool = hub_storage::pool(&url, &hub_storage::PoolSettings::default())?;
            let n = hub_storage::inbound_events::count_ids(&pool, &ids).await;
            let held = hub_storage::sync::count_held(&pool, tenant, integration, "contacts").await;
            pool.close().await;
            Ok::<_, anyhow::Error>((n?, held?))
        })?;
        Ok((stored as u64, ids.len() as u64, held as u64))
    }
}

/// Fills the request-log table's disk with rows dated before the retention
/// (ids and times 40 days old), in ever smaller batches until one row does
/// not fit. Returns how many rows went in.
async fn fill_log_disk(pool: &sqlx::PgPool) -> Result<u64> {
    // A vacuum first makes the free-space and visibility maps, which a
    // vacuum on the full disk could not create.
    let insert = |from: i64, rows: i64, body: i32| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO api_request_logs (id, tenant_id, direction, method, url, body, status, created_at)
                 SELECT hub_uuid7_floor(now() - interval '40 days' + g * interval '1 millisecond'),
                        '00000000-0000-0000-0000-000000000000', 'INBOUND', 'POST', 'chaos://filler',
                        (SELECT string_agg(md5(random()::text || g || h), '') FROM generate_series(1, $3) h),
                        'SUCCESS', now() - interval '40 days'
                 FROM generate_series($1::bigint, $1::bigint + $2 - 1) g",
            )
            .bind(from)
            .bind(rows)
            .bind(body)
            .execute(&pool)
            .await
        }
    };
    let mut next: i64 = 1;
    insert(next, 10, 30).await?;
    next += 10;
    sqlx::query("VACUUM api_request_logs").execute(pool).await?;
    let mut total = 10u64;
    // Rows of ~1 KB stay in the heap (below the TOAST threshold).
    for (batch, body) in [(200i64, 30i32), (20, 30), (1, 30), (1, 4)] {
        loop {
            match insert(next, batch, body).await {
                Ok(_) => {
                    next += batch;
                    total += batch as u64;
                }
                // disk_full: "could not extend file"
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("53100") => {
                    next += batch;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(total)
}

/// Inbound log rows made since `t` (by their UUIDv7 ids).
async fn count_logs_since(pool: &sqlx::PgPool, t: Instant) -> Result<i64> {
    let since = chrono::Utc::now() - chrono::Duration::from_std(t.elapsed())?;
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM api_request_logs WHERE direction = 'INBOUND' AND id >= hub_uuid7_floor($1)",
    )
    .bind(since)
    .fetch_one(pool)
    .await?)
}

/// Prints the table and the totals; whether the run passed.
/// A fault's window for duplicates: a delivery was in flight when the
/// fault struck if its first arrival came from one attempt's timeout (plus
/// slack) before the injection to the recovery (plus slack); an unrecovered
/// fault's window stays open.
fn window(r: &FaultResult) -> (Instant, Instant) {
    let from = r.at.checked_sub(WEBHOOK_TIMEOUT + SLACK).unwrap_or(r.at);
    let to = r
        .recovered
        .map_or_else(|| r.at + Duration::from_secs(86_400), |d| r.at + d + SLACK);
    (from, to)
}

/// Attributes each duplicate (the time of its event's first arrival) to the
/// first fault window holding it: per window, how many; and how many fell
/// in none (duplicates of deliveries not in flight at any fault).
fn attribute(firsts: &[Instant], windows: &[(Instant, Instant)]) -> (Vec<u64>, u64) {
    let mut per = vec![0u64; windows.len()];
    let mut stray = 0;
    for t in firsts {
        match windows.iter().position(|(a, b)| a <= t && t <= b) {
            Some(i) => per[i] += 1,
            None => stray += 1,
        }
    }
    (per, stray)
}

fn report(
    results: &[FaultResult],
    tracker: &Tracker,
    traffic: &Traffic,
    (inbound_accepted, inbound_stored): (u64, u64),
    (sync, sync_held): (&SyncLoad, u64),
) -> bool {
    ui::step("chaos summary");
    let windows: Vec<_> = results.iter().map(window).collect();
    let (in_flight, stray_dups) = attribute(&tracker.duplicate_firsts, &windows);
    ui::info(&format!(
        "{:<24} {:>7} {:>10} {:>16} {:>16} {:>9}  note",
        "fault", "down", "recovered", "events ok/fail", "inbound ok/fail", "dups*"
    ));
    for (r, dups) in results.iter().zip(&in_flight) {
        ui::info(&format!(
            "{:<24} {:>7} {:>10} {:>16} {:>16} {:>9}  {}",
            r.fault.describe(),
            r.down.map_or("-".into(), ui::secs),
            r.recovered.map_or("NO".into(), ui::secs),
            format!("{}/{}", r.events.0, r.events.1),
            format!("{}/{}", r.inbound.0, r.inbound.1),
            dups,
            r.note
        ));
    }
    ui::info(&format!(
        "* duplicates of deliveries in flight at the fault: first arrival from {} before it to {} after its recovery",
        ui::secs(WEBHOOK_TIMEOUT + SLACK),
        ui::secs(SLACK)
    ));
    let (events_accepted, events_failed) = traffic.events();
    let (_, inbound_failed) = traffic.inbound();
    let lost = tracker.pending.len() as u64;
    ui::info(&format!(
        "events:  {events_accepted} accepted, {} delivered, {lost} lost, {} duplicates; \
         {events_failed} requests failed, {} of them delivered all the same",
        tracker.delivered,
        tracker.duplicates,
        tracker.unconfirmed()
    ));
    let inbound_lost = inbound_accepted.saturating_sub(inbound_stored);
    ui::info(&format!(
        "inbound: {inbound_accepted} accepted, {inbound_stored} stored, {inbound_lost} lost; {inbound_failed} requests failed"
    ));
    let skipped = traffic.skipped.load(std::sync::atomic::Ordering::Relaxed);
    if skipped > 0 {
        ui::warn(&format!(
            "{skipped} requests were not sent: too many in flight"
        ));
    }
    if let Some(e) = traffic.first_error.lock().expect("lock").as_ref() {
        ui::info(&format!("first failed request: {e}"));
    }
    if stray_dups > 0 {
        ui::warn(&format!(
            "{stray_dups} duplicates of deliveries that were not in flight at any fault"
        ));
    }
    let sync_ok = report_sync(sync, sync_held);
    let unrecovered = results.iter().filter(|r| r.recovered.is_none()).count();
    let ok = lost == 0
        && inbound_lost == 0
        && unrecovered == 0
        && events_accepted > 0
        && stray_dups == 0
        && sync_ok;
    if ok {
        ui::info(&ui::paint(
            "1;32",
            "PASS: nothing accepted was lost, duplicates only of deliveries in flight, every sync job complete, every fault recovered",
        ));
    } else {
        ui::error(&format!(
            "FAIL: {lost} events and {inbound_lost} inbound webhooks lost, {stray_dups} duplicates not in flight at a fault, sync {}, {unrecovered} fault(s) not recovered",
            if sync_ok { "fine" } else { "wrong (above)" }
        ));
    }
    ok
}

/// Prints the sync jobs' outcome; whether every job completed with every
/// record and the hub holds each record once.
fn report_sync(sync: &SyncLoad, held: u64) -> bool {
    let (clean, bad, running) = sync.counts();
    let (refused, first_refusal) = sync.refused.lock().expect("lock").clone();
    ui::info(&format!(
        "sync:    {} jobs accepted, {clean} completed with all {} records, {bad} not, {running} still running; \
         the hub holds {held} of the fake's {} contacts; {refused} creations refused (tried again)",
        clean + bad + running,
        sync.records,
        sync.records
    ));
    if let Some(why) = first_refusal {
        ui::info(&format!("first refused creation: {why}"));
    }
    for j in sync.jobs.lock().expect("lock").iter() {
        if !j.clean(sync.records) {
            ui::warn(&format!(
                "sync job {}: {} (read {}, taken {}, refused {}) {}",
                j.id,
                j.ended
                    .as_ref()
                    .map_or("still running", |(_, s)| s.as_str()),
                j.counts.0,
                j.counts.1,
                j.counts.2,
                j.error
            ));
        }
    }
    bad == 0 && running == 0 && clean > 0 && held == sync.records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_attributed_to_the_fault_they_were_in_flight_at() {
        let t = Instant::now() + Duration::from_secs(100);
        let s = Duration::from_secs;
        let windows = [(t, t + s(10)), (t + s(20), t + s(30))];
        let firsts = [t, t + s(10), t + s(15), t + s(25), t + s(31)];
        assert_eq!(attribute(&firsts, &windows), (vec![2, 1], 2));
        let r = FaultResult {
            fault: Fault::Blackhole,
            at: t,
            down: None,
            recovered: Some(s(5)),
            events: (0, 0),
            inbound: (0, 0),
            note: String::new(),
        };
        assert_eq!(window(&r), (t - WEBHOOK_TIMEOUT - SLACK, t + s(5) + SLACK));
    }

    #[test]
    fn options() {
        let short = parse_args(&["--short"]).unwrap();
        assert!(short.short);
        assert_eq!(short.kills, [(0, 1), (1, 1), (2, 1)]);
        let long = parse_args(&["--seconds", "30"]).unwrap();
        assert!(!long.short);
        assert_eq!(long.calm, Duration::from_secs(30));
        assert_eq!(long.kills.len(), 6);
        assert!(parse_args(&["--seconds", "0"]).is_err());
        assert!(parse_args(&["--seconds"]).is_err());
        assert!(parse_args(&["--fast"]).is_err());
    }
}
