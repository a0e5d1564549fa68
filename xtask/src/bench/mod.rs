//! `cargo xtask bench outbound`: outbound webhook throughput and latency,
//! end to end on this machine, and the dispatcher's event intake across
//! connection counts.
//!
//! Release builds of integration-manager and webhook-dispatcher run against a
//! fresh database and bus prefix; this process is both the load generator
//! and the receiver the subscriptions point at. Everything shares the box,
//! so the generator and receiver are kept cheap.
//!
//! Scenarios `one`, `fanout5` and `latency` send events through both intake
//! paths, `POST /api/v1/events` and RabbitMQ, half each, and measure
//! deliveries. Scenario `intake` measures `POST /api/v1/events` itself, as
//! event producers call it: at each connection count of `--connections`
//! (default 1, 8, 16, 32, 64, 256) in turn, that many tasks share one
//! reqwest client (its default settings) and post events back to back; a
//! table gives accepted events/s and the latency of the 202s per count, so a
//! stall from some number of connections on shows (issue 25), and every
//! accepted event is checked to have been delivered.
//!
//! The header says whether the database is reached over TCP or a Unix
//! socket (`DATABASE_URL`): issue 25 compares the two.

pub(crate) mod levels;
pub(crate) mod load;
pub(crate) mod receiver;
pub(crate) mod report;

use crate::infra;
use crate::ui;
use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine as _;
use lapin::options::{
    ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use load::{Load, Pace};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use receiver::{Receiver, WebhookSecret};
use report::{Outcome, ms, per_sec, thousands};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection as _};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Set by Ctrl-C / SIGTERM / SIGHUP.
static STOP: AtomicBool = AtomicBool::new(false);

const DEFAULT_SECONDS: u64 = 60;
/// Measured seconds of each connection count of the `intake` scenario.
const DEFAULT_LEVEL_SECONDS: u64 = 10;
/// Untimed seconds before each of them.
const DEFAULT_WARMUP: u64 = 2;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait, after the load, for the last deliveries.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Open-loop scenarios keep at most this many events sent but not yet delivered.
const MAX_BACKLOG_EVENTS: u64 = 5_000;
const LATENCY_RATE: u64 = 1_000;

const MANAGER: &str = "integration-manager";
const DISPATCHER: &str = "webhook-dispatcher";

/// Targets on the 2-core reference machine (issue 6).
const TARGET_ONE: f64 = 2_500.0;
const TARGET_FANOUT5: f64 = 5_000.0;
const TARGET_P99: Duration = Duration::from_millis(25);

/// A benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// One subscription, as fast as the system absorbs events.
    One,
    /// Five subscriptions matching every event, as fast as it absorbs them.
    Fanout5,
    /// One subscription at a fixed 1,000 events/s: end-to-end latency.
    Latency,
    /// `POST /api/v1/events` back to back at each connection count in turn
    /// (one subscription): the intake's throughput and latency per count.
    Intake,
    /// As `Intake`, each request with a new `Idempotency-Key`: what the key
    /// costs a client that retries safely.
    IntakeIdempotent,
    /// As `Intake`, each connection sending one keyed request again and
    /// again: what a replayed answer costs.
    IntakeReplay,
}

impl Scenario {
    /// What `--scenario all` runs (the keyed intake scenarios only on
    /// request: each intake scenario takes a minute and a half).
    const ALL: [Scenario; 4] = [Self::One, Self::Fanout5, Self::Latency, Self::Intake];
    /// Every scenario, by name.
    const NAMED: [Scenario; 6] = [
        Self::One,
        Self::Fanout5,
        Self::Latency,
        Self::Intake,
        Self::IntakeIdempotent,
        Self::IntakeReplay,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::One => "one",
            Self::Fanout5 => "fanout5",
            Self::Latency => "latency",
            Self::Intake => "intake",
            Self::IntakeIdempotent => "intake-idempotent",
            Self::IntakeReplay => "intake-replay",
        }
    }

    /// Whether its requests carry an `Idempotency-Key`; `None` for the
    /// paced scenarios.
    fn keys(self) -> Option<load::KeyUse> {
        match self {
            Self::One | Self::Fanout5 | Self::Latency => None,
            Self::Intake => Some(load::KeyUse::None),
            Self::IntakeIdempotent => Some(load::KeyUse::Fresh),
            Self::IntakeReplay => Some(load::KeyUse::Replay),
        }
    }

    /// Index of its receiver path and counters.
    fn index(self) -> usize {
        match self {
            Self::One => 0,
            Self::Fanout5 => 1,
            Self::Latency => 2,
            Self::Intake => 3,
            Self::IntakeIdempotent => 4,
            Self::IntakeReplay => 5,
        }
    }

    fn subscriptions(self) -> usize {
        match self {
            Self::Fanout5 => 5,
            Self::One | Self::Latency | Self::Intake => 1,
            Self::IntakeIdempotent | Self::IntakeReplay => 1,
        }
    }

    /// How the mixed HTTP and AMQP load is paced; `None` for the intake
    /// scenarios, which run their own load per connection count.
    fn pace(self) -> Option<Pace> {
        match self {
            Self::One | Self::Fanout5 => Some(Pace::Open {
                max_backlog: MAX_BACKLOG_EVENTS,
            }),
            Self::Latency => Some(Pace::Rate {
                per_sec: LATENCY_RATE,
            }),
            Self::Intake | Self::IntakeIdempotent | Self::IntakeReplay => None,
        }
    }

    fn describe(self) -> String {
        let subs = match self.subscriptions() {
            1 => "1 subscription".to_owned(),
            n => format!("{n} subscriptions per event"),
        };
        match self.pace() {
            Some(Pace::Open { max_backlog }) => format!(
                "{subs}, as fast as it absorbs them (at most {} events outstanding)",
                thousands(max_backlog)
            ),
            Some(Pace::Rate { per_sec }) => format!("{subs}, {} events/s", thousands(per_sec)),
            None => format!(
                "{subs}, POST /api/v1/events back to back from one reqwest client per connection count{}",
                match self.keys() {
                    Some(load::KeyUse::Fresh) => ", each request with a new Idempotency-Key",
                    Some(load::KeyUse::Replay) => {
                        ", each connection sending one request with its Idempotency-Key again and again (replays)"
                    }
                    _ => "",
                }
            ),
        }
    }

    /// The target this scenario is judged on, as text, and whether it was
    /// met (`None`: not judged).
    fn verdict(self, o: &Outcome) -> (String, Option<bool>) {
        match self {
            Self::One => (
                format!("≥ {}/s", thousands(TARGET_ONE as u64)),
                Some(o.rate() >= TARGET_ONE),
            ),
            Self::Fanout5 => (
                format!("≥ {}/s", thousands(TARGET_FANOUT5 as u64)),
                Some(o.rate() >= TARGET_FANOUT5),
            ),
            Self::Latency => (
                format!("p99 ≤ {}", ms(TARGET_P99)),
                Some(o.latency.is_some_and(|l| l.p99 <= TARGET_P99) && o.delivered > 0),
            ),
            // Issue 25: no level from 8 connections up slower than 8, p99 under 20 ms.
            Self::Intake => (
                "scaling from 8".into(),
                levels::scaling_check(&o.levels).map(|failures| failures.is_empty()),
            ),
            // Measured beside `intake`, not judged.
            Self::IntakeIdempotent | Self::IntakeReplay => ("vs intake".into(), None),
        }
    }
}

/// Parsed command line.
#[derive(Debug, PartialEq)]
struct Options {
    /// `--seconds`: each scenario's load, and each `intake` level's measured
    /// part; `None`: [`DEFAULT_SECONDS`] and [`DEFAULT_LEVEL_SECONDS`].
    seconds: Option<u64>,
    /// `--warmup`: untimed seconds before each `intake` level.
    warmup: u64,
    /// `--connections`: the `intake` levels, in the order run.
    connections: Vec<usize>,
    scenarios: Vec<Scenario>,
}

impl Options {
    /// The seconds of load of `scenario` (of each level, for `intake`).
    fn seconds(&self, scenario: Scenario) -> u64 {
        match (self.seconds, scenario) {
            (Some(s), _) => s,
            (None, s) if s.pace().is_none() => DEFAULT_LEVEL_SECONDS,
            (None, _) => DEFAULT_SECONDS,
        }
    }
}

fn parse_args(args: &[&str]) -> Result<Options, String> {
    let mut it = args.iter();
    match it.next() {
        Some(&"outbound") => {}
        Some(other) => return Err(format!("unknown benchmark `{other}` (try `outbound`)")),
        None => return Err("which benchmark? `bench outbound`".into()),
    }
    let mut options = Options {
        seconds: None,
        warmup: DEFAULT_WARMUP,
        connections: levels::DEFAULT_CONNECTIONS.to_vec(),
        scenarios: Scenario::ALL.to_vec(),
    };
    // Flags that only the `intake` scenario reads.
    let mut intake_flag = None;
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
            _ => (*arg, None),
        };
        let mut value = || {
            inline
                .or_else(|| it.next().copied())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--seconds" => {
                let v = value()?;
                options.seconds = match v.parse::<u64>() {
                    Ok(n) if (1..=3600).contains(&n) => Some(n),
                    _ => return Err(format!("--seconds must be 1 to 3600, not {v:?}")),
                };
            }
            "--warmup" => {
                let v = value()?;
                options.warmup = match v.parse::<u64>() {
                    Ok(n) if n <= 600 => n,
                    _ => return Err(format!("--warmup must be 0 to 600, not {v:?}")),
                };
                intake_flag = Some(flag);
            }
            "--connections" => {
                options.connections = levels::parse_connections(value()?)?;
                intake_flag = Some(flag);
            }
            "--scenario" => {
                let v = value()?;
                options.scenarios = Vec::new();
                for name in v.split(',') {
                    let named = match name {
                        "all" => Scenario::ALL.to_vec(),
                        name => vec![*Scenario::NAMED.iter().find(|s| s.name() == name).ok_or_else(
                            || {
                                format!(
                                    "--scenario must be one, fanout5, latency, intake, intake-idempotent, \
                                     intake-replay or all (or a comma-separated list), not {name:?}"
                                )
                            },
                        )?],
                    };
                    for s in named {
                        if !options.scenarios.contains(&s) {
                            options.scenarios.push(s);
                        }
                    }
                }
            }
            other => return Err(format!("unexpected argument `{other}` to `bench outbound`")),
        }
    }
    if let Some(flag) = intake_flag
        && !options.scenarios.iter().any(|s| s.pace().is_none())
    {
        return Err(format!(
            "{flag} sets the levels of the intake scenarios, which this run leaves out \
             (--scenario intake, intake-idempotent, intake-replay or all)"
        ));
    }
    Ok(options)
}

/// Runs `cargo xtask bench <args>`; a usage error is `Err(message)` in the outer
/// result so `main` can print the usage.
pub fn run(args: &[&str]) -> Result<Result<ExitCode>, String> {
    let options = parse_args(args)?;
    Ok(outbound(&options))
}

/// The servers a bench runs against: `DATABASE_URL` and `RABBITMQ_URL`,
/// each checked to answer (a local one started if need be), and how the
/// database is reached, which every bench's header says (issue 25 compares
/// TCP with a Unix socket).
pub(crate) fn servers() -> Result<(String, String, infra::PgTransport)> {
    let database_url = infra::database_url();
    let rabbitmq_url = infra::rabbitmq_url();
    infra::ensure_postgres(&database_url, "DATABASE_URL")?;
    infra::ensure_rabbitmq(&rabbitmq_url, "RABBITMQ_URL")?;
    let transport = infra::postgres_transport(&database_url, "DATABASE_URL")?;
    Ok((database_url, rabbitmq_url, transport))
}

fn outbound(options: &Options) -> Result<ExitCode> {
    let (database_url, rabbitmq_url, transport) = servers()?;
    let names: Vec<&str> = options.scenarios.iter().map(|s| s.name()).collect();
    ui::step(&format!(
        "bench outbound: scenario{} {}; database over {transport}",
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    ));

    ui::step("building the manager and the dispatcher (release)");
    let started = Instant::now();
    ui::run_checked(
        crate::cargo().args(["build", "--release", "-p", MANAGER, "-p", DISPATCHER]),
        "the release build failed (see the errors above)",
    )?;
    ui::info(&format!("built in {}", ui::secs(started.elapsed())));

    ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst))
        .context("could not install the signal handler")?;

    let run_id = hex::encode(rand::random::<[u8; 4]>());
    let mut env = Env {
        database_url: with_database(&database_url, &format!("hub_bench_{run_id}"))?,
        rabbitmq_url,
        bus_prefix: format!("bench{run_id}."),
        admin_token: format!("hubadmin_{}", hex::encode(rand::random::<[u8; 24]>())),
        encryption_key: base64::engine::general_purpose::STANDARD
            .encode(rand::random::<[u8; 32]>()),
        logs: crate::target_dir().join("bench").join(&run_id),
        cleanup: Cleanup::default(),
    };
    // From here on, dropping `env` stops the services and removes the database
    // and the bus prefix, on success, error and Ctrl-C alike.
    env.cleanup.database = Some(env.database_url.clone());
    infra::create_database_and_migrate(&env.database_url)?;
    env.cleanup.bus = Some((env.rabbitmq_url.clone(), env.bus_prefix.clone()));

    ui::step("starting the services");
    std::fs::create_dir_all(&env.logs)
        .with_context(|| format!("creating {}", env.logs.display()))?;
    let manager_port = free_port()?;
    let dispatcher_port = free_port()?;
    let fleet = Fleet {
        manager: env.spawn(MANAGER, manager_port)?,
        dispatcher: env.spawn(DISPATCHER, dispatcher_port)?,
        manager_url: format!("http://127.0.0.1:{manager_port}"),
        dispatcher_url: format!("http://127.0.0.1:{dispatcher_port}"),
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(bench(&env, &fleet, options));
    runtime.shutdown_timeout(Duration::from_secs(2));
    let results = result?;

    // Stop and clean up first, so the summary is the last thing printed.
    let logs = env.logs.clone();
    drop(env);
    summary(&results, &logs, &transport, options);
    if results.iter().any(|(_, o)| o.missing > 0) {
        ui::error("events were lost: accepted events never reached the receiver (see above)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// What the run created, and the settings the services get.
struct Env {
    database_url: String,
    rabbitmq_url: String,
    bus_prefix: String,
    admin_token: String,
    encryption_key: String,
    /// Where the services' output goes.
    logs: PathBuf,
    cleanup: Cleanup,
}

impl Env {
    /// Starts a release binary with the bench settings on `port`.
    fn spawn(&mut self, package: &'static str, port: u16) -> Result<Proc> {
        let binary = crate::target_dir().join("release").join(package);
        ensure!(binary.is_file(), "{} was not built", binary.display());
        let log_path = self.logs.join(format!("{package}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut cmd = Command::new(&binary);
        cmd.current_dir(crate::workspace_root())
            .env("PORT", port.to_string())
            .env("DATABASE_URL", &self.database_url)
            .env("RABBITMQ_URL", &self.rabbitmq_url)
            .env("HUB_BUS_PREFIX", &self.bus_prefix)
            .env("HUB_ADMIN_TOKEN", &self.admin_token)
            .env("INTEGRATION_ENCRYPTION_KEY", &self.encryption_key)
            .env("HUB_ALLOW_PRIVATE_TARGETS", "true")
            .env("HUB_ALLOW_INSECURE_URLS", "true")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Own process group: Ctrl-C reaches xtask only, which stops the services.
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start {}", binary.display()))?;
        let pid = child.id();
        ui::info(&format!(
            "{package} started (pid {pid}, port {port}, log {})",
            log_path.display()
        ));
        self.cleanup.children.push((package, child));
        Ok(Proc {
            name: package,
            pid,
            log: log_path,
        })
    }
}

/// Undoes what the run set up, in order: services, bus prefix, database.
#[derive(Default)]
struct Cleanup {
    children: Vec<(&'static str, Child)>,
    bus: Option<(String, String)>,
    database: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.children.is_empty() {
            ui::step("stopping the services");
            stop_children(std::mem::take(&mut self.children));
        }
        if self.bus.is_none() && self.database.is_none() {
            return;
        }
        ui::step("removing the bench database and bus prefix");
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return ui::warn(&format!("cleanup skipped: {e}")),
        };
        if let Some((url, prefix)) = self.bus.take() {
            match runtime.block_on(delete_bus_prefix(&url, &prefix)) {
                Ok(0) => ui::info(&format!("deleted the `{prefix}*` exchanges and queues")),
                Ok(n) => ui::warn(&format!(
                    "{n} of the `{prefix}*` exchanges and queues could not be deleted"
                )),
                Err(e) => ui::warn(&format!("could not delete the `{prefix}*` queues: {e:#}")),
            }
        }
        if let Some(url) = self.database.take() {
            match runtime.block_on(drop_database(&url)) {
                Ok(name) => ui::info(&format!("dropped database `{name}`")),
                Err(e) => ui::warn(&format!("could not drop the bench database: {e:#}")),
            }
        }
    }
}

/// SIGTERM, up to [`STOP_TIMEOUT`] to exit, then SIGKILL.
fn stop_children(mut children: Vec<(&'static str, Child)>) {
    for (name, child) in &mut children {
        if matches!(child.try_wait(), Ok(None)) {
            let pid = i32::try_from(child.id()).expect("pid fits in i32");
            if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGTERM) {
                ui::warn(&format!("could not signal {name}: {e}"));
            }
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for (name, mut child) in children {
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    ui::info(&format!("{name} exited ({status})"));
                    break;
                }
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    ui::warn(&format!(
                        "{name} did not stop within {}s; killed",
                        STOP_TIMEOUT.as_secs()
                    ));
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => {
                    ui::warn(&format!("{name}: {e}"));
                    break;
                }
            }
        }
    }
}

/// The two services under test.
struct Fleet {
    manager: Proc,
    dispatcher: Proc,
    manager_url: String,
    dispatcher_url: String,
}

impl Fleet {
    /// Fails if either service has exited.
    fn check_alive(&self) -> Result<()> {
        for p in [&self.manager, &self.dispatcher] {
            if !p.alive() {
                bail!(
                    "{} exited; see the end of its log:\n{}",
                    p.name,
                    tail(&p.log, 20)
                );
            }
        }
        Ok(())
    }
}

/// A running service, watched through `/proc`.
struct Proc {
    name: &'static str,
    pid: u32,
    log: PathBuf,
}

impl Proc {
    /// False once the process has exited (gone, or a zombie not yet reaped).
    fn alive(&self) -> bool {
        proc_stat(self.pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
    }

    /// CPU time used so far (user + system).
    fn cpu(&self) -> Duration {
        proc_stat(self.pid).map_or(Duration::ZERO, |(_, cpu)| cpu)
    }
}

/// State letter and user + system CPU time of a process, from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, Duration)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// State letter and user + system CPU time from the text of a `/proc/<pid>/stat`.
pub(crate) fn parse_stat(text: &str) -> Option<(char, Duration)> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = text
        .get(text.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let state = fields.first()?.chars().next()?;
    // utime and stime are fields 14 and 15 of the file, in clock ticks.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((state, ticks_to_duration(ticks)))
}

/// Clock ticks (of `/proc`'s counters) as time.
pub(crate) fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}

/// `sysconf(_SC_CLK_TCK)`, via `getconf` (100 on every common Linux).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// `VmRSS` of a process, KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time of the whole machine and of the shared servers, at one moment.
struct BoxCpu {
    /// Non-idle time of all CPUs together (`/proc/stat`).
    busy: Duration,
    cores: usize,
    /// All `postgres` processes.
    postgres: Duration,
    /// All `beam.smp` processes (RabbitMQ).
    rabbitmq: Duration,
}

impl BoxCpu {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks = |line: &str| -> Vec<u64> {
            line.split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect()
        };
        // user nice system idle iowait irq softirq (steal …): busy = these − idle − iowait.
        let busy_ticks = stat
            .lines()
            .find(|l| l.starts_with("cpu "))
            .map(ticks)
            .map_or(0, |t| {
                let all: u64 = t.iter().take(7).sum();
                all - t.get(3).copied().unwrap_or(0) - t.get(4).copied().unwrap_or(0)
            });
        let cores = stat
            .lines()
            .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
            .count();
        let (mut postgres, mut rabbitmq) = (Duration::ZERO, Duration::ZERO);
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let comm = text
                .split_once('(')
                .and_then(|(_, rest)| rest.rsplit_once(')'))
                .map_or("", |(comm, _)| comm);
            let slot = match comm {
                "postgres" => &mut postgres,
                "beam.smp" => &mut rabbitmq,
                _ => continue,
            };
            if let Some((_, cpu)) = parse_stat(&text) {
                *slot += cpu;
            }
        }
        Self {
            busy: Duration::from_secs_f64(busy_ticks as f64 / clock_ticks() as f64),
            cores,
            postgres,
            rabbitmq,
        }
    }

    /// What was used between `before` and `self`.
    fn since(&self, before: &Self) -> Self {
        Self {
            busy: self.busy.saturating_sub(before.busy),
            cores: self.cores,
            // Backends that exited in between drop out; these are lower bounds.
            postgres: self.postgres.saturating_sub(before.postgres),
            rabbitmq: self.rabbitmq.saturating_sub(before.rabbitmq),
        }
    }
}

/// This process's own CPU time (the load generator and the receiver).
fn own_cpu() -> Duration {
    proc_stat(std::process::id()).map_or(Duration::ZERO, |(_, cpu)| cpu)
}

/// The benchmark proper, once the services are started.
async fn bench(env: &Env, fleet: &Fleet, options: &Options) -> Result<Vec<(Scenario, Outcome)>> {
    let api = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    wait_ready(&api, fleet).await?;

    let sampler = Sampler::start(fleet);

    ui::step("starting the receiver");
    let receiver = Receiver::start()?;
    ui::info(&format!("listening on 127.0.0.1:{}", receiver.port));

    ui::step("connecting to RabbitMQ");
    let amqp = Connection::connect(&env.rabbitmq_url, ConnectionProperties::default())
        .await
        .context("could not connect to RabbitMQ")?;
    let channel = amqp.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .context("could not turn on publisher confirms")?;
    let queue = format!("{}{DISPATCHER}.events", env.bus_prefix);
    wait_for_consumer(&amqp, &queue).await?;
    ui::info(&format!("{queue} is bound and consumed"));

    let mut results = Vec::new();
    for &scenario in &options.scenarios {
        let outcome = match scenario.pace() {
            Some(pace) => {
                run_scenario(
                    scenario,
                    pace,
                    options.seconds(scenario),
                    env,
                    fleet,
                    &api,
                    &receiver,
                    &channel,
                    &sampler,
                )
                .await?
            }
            None => run_intake(scenario, env, fleet, &api, &receiver, options).await?,
        };
        results.push((scenario, outcome));
    }

    sampler.handle.abort();
    receiver.stop().await;
    let _ = amqp.close(200, "bench done".into()).await;
    Ok(results)
}

/// Peak resident memory per service, KiB, sampled every second since the
/// last reset.
struct Sampler {
    manager: Arc<AtomicU64>,
    dispatcher: Arc<AtomicU64>,
    handle: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(fleet: &Fleet) -> Self {
        let (manager, dispatcher) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let watched = [
            (fleet.manager.pid, manager.clone()),
            (fleet.dispatcher.pid, dispatcher.clone()),
        ];
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                for (pid, peak) in &watched {
                    if let Some(kib) = rss_kib(*pid) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                }
            }
        });
        Self {
            manager,
            dispatcher,
            handle,
        }
    }

    fn reset(&self) {
        self.manager.store(0, Ordering::Relaxed);
        self.dispatcher.store(0, Ordering::Relaxed);
    }
}

/// Polls `GET /ready` on both services until they answer 200.
async fn wait_ready(api: &reqwest::Client, fleet: &Fleet) -> Result<()> {
    ui::step("waiting for /ready");
    let start = Instant::now();
    let mut pending = vec![
        (MANAGER, fleet.manager_url.as_str()),
        (DISPATCHER, fleet.dispatcher_url.as_str()),
    ];
    while !pending.is_empty() {
        interrupted()?;
        fleet.check_alive()?;
        let mut still = Vec::new();
        for (name, base) in pending {
            let ready = api
                .get(format!("{base}/ready"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ready {
                ui::info(&format!("{name} ready ({})", ui::secs(start.elapsed())));
            } else {
                still.push((name, base));
            }
        }
        pending = still;
        if !pending.is_empty() {
            if start.elapsed() > READY_TIMEOUT {
                let names: Vec<&str> = pending.iter().map(|(n, _)| *n).collect();
                bail!(
                    "not ready after {}s: {} (GET /ready did not answer 200; see the logs)",
                    READY_TIMEOUT.as_secs(),
                    names.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Ok(())
}

/// Waits until `queue` exists and has a consumer: the dispatcher declares and
/// binds it when its consumer starts, and events published before that would
/// be routed nowhere.
async fn wait_for_consumer(amqp: &Connection, queue: &str) -> Result<()> {
    let start = Instant::now();
    loop {
        interrupted()?;
        // A passive declare of a missing queue closes its channel: one per try.
        let ch = amqp.create_channel().await?;
        let found = ch
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .ok();
        let _ = ch.close(200, "ok".into()).await;
        if found.is_some_and(|q| q.consumer_count() > 0) {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("{queue} has no consumer after 30s: is the dispatcher consuming the bus?");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Creates the scenario's tenant and its subscriptions to the receiver
/// (which gets their secrets, for its sampled signature checks).
async fn setup_tenant(
    scenario: Scenario,
    env: &Env,
    fleet: &Fleet,
    api: &reqwest::Client,
    receiver: &Receiver,
) -> Result<Tenant> {
    let tenant = Tenant::create(api, fleet, env, scenario).await?;
    let idx = scenario.index();
    for sub in 0..scenario.subscriptions() {
        let secret = tenant
            .subscribe(api, fleet, &receiver.url(idx, sub), sub)
            .await?;
        receiver.recorded.add_secret(idx, sub, secret);
    }
    ui::info(&format!(
        "tenant {} with {} subscription(s) to {}",
        tenant.id,
        scenario.subscriptions(),
        receiver.url(idx, 0).replace("/0", "/<n>")
    ));
    Ok(tenant)
}

/// The headers of every `POST /api/v1/events` of the tenant (its key and
/// id, and the JSON content type), to set once as a client's defaults.
fn event_headers(tenant: &Tenant) -> Result<reqwest::header::HeaderMap> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", tenant.api_key).parse()?,
    );
    headers.insert("x-tenant-id", tenant.id.to_string().parse()?);
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        "application/json".parse().expect("a valid header"),
    );
    Ok(headers)
}

/// One paced scenario on its own tenant: set up, load, drain, figures.
#[allow(clippy::too_many_arguments)]
async fn run_scenario(
    scenario: Scenario,
    pace: Pace,
    seconds: u64,
    env: &Env,
    fleet: &Fleet,
    api: &reqwest::Client,
    receiver: &Receiver,
    channel: &Channel,
    sampler: &Sampler,
) -> Result<Outcome> {
    ui::step(&format!(
        "scenario `{}`: {}, {seconds}s",
        scenario.name(),
        scenario.describe()
    ));
    let tenant = setup_tenant(scenario, env, fleet, api, receiver).await?;
    let idx = scenario.index();
    let client = reqwest::Client::builder()
        .no_proxy()
        .default_headers(event_headers(&tenant)?)
        .http1_only()
        .pool_max_idle_per_host(load::HTTP_CONCURRENCY)
        .tcp_nodelay(true)
        .timeout(load::HTTP_TIMEOUT)
        .build()?;

    settle_database(&env.database_url).await?;
    let recorded = &receiver.recorded;
    let before = Usage::now(fleet, recorded);
    sampler.reset();

    let load = Arc::new(Load::new(
        idx,
        scenario.subscriptions(),
        pace,
        Duration::from_secs(seconds),
        tenant.id,
        recorded.clone(),
    ));
    let in_flight = Arc::new(Semaphore::new(load::AMQP_IN_FLIGHT));
    let mut senders = load::spawn_http(
        &load,
        &client,
        &format!("{}/api/v1/events", fleet.dispatcher_url),
    );
    senders.push(load::spawn_amqp(
        &load,
        channel,
        &format!("{}hub.events", env.bus_prefix),
        &in_flight,
    ));
    let (failure, mean_backlog) = load_window(&load, fleet, recorded, idx).await;
    load.halt();
    let load_end = Instant::now().min(load.end);
    for sender in senders {
        let _ = sender.await;
    }
    // Every publish confirmed (or failed): all permits back.
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        in_flight.acquire_many(load::AMQP_IN_FLIGHT as u32),
    )
    .await;
    if let Some(e) = failure {
        return Err(e);
    }
    let accepted = load.take_accepted();

    ui::info(&format!(
        "load done: {} events accepted; waiting up to {}s for the last of {} deliveries",
        thousands(accepted.len() as u64),
        DRAIN_TIMEOUT.as_secs(),
        thousands(accepted.len() as u64 * scenario.subscriptions() as u64)
    ));
    let (outcome, drain) = drain(
        fleet,
        recorded,
        scenario,
        &accepted,
        (load.start, load_end),
        DRAIN_TIMEOUT,
    )
    .await?;
    // Outcome events still waiting for RabbitMQ belong to this scenario too:
    // let the relays catch up before the next one starts.
    let (caught_up, waiting) = wait_bus_caught_up(&env.database_url).await?;
    report_failed_attempts(&env.database_url, tenant.id).await?;
    let outcome = Outcome {
        accepted_http: load.accepted_http.load(Ordering::Relaxed),
        accepted_amqp: load.accepted_amqp.load(Ordering::Relaxed),
        accepted: accepted.len() as u64,
        rejected: load.rejected.load(Ordering::Relaxed),
        send_errors: load.send_errors.load(Ordering::Relaxed),
        first_error: load.first_error(),
        ..outcome
    };
    let wall = load_end - load.start + drain;
    print_outcome(scenario, &outcome, drain, (caught_up, waiting));
    print_usage(&before.since(fleet, recorded), sampler, wall);
    warn_limits(pace, &outcome, mean_backlog);
    println!();
    Ok(outcome)
}

/// The load window, a progress line every few seconds: stops at its end,
/// on Ctrl-C or a service's death (the error), or when nothing is accepted
/// at all. Returns the failure, if any, and the mean number of events
/// outstanding (near the cap means delivery limited the run, near zero the
/// intake did).
async fn load_window(
    load: &Load,
    fleet: &Fleet,
    recorded: &receiver::Recorded,
    idx: usize,
) -> (Option<anyhow::Error>, u64) {
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut next_report = load.start + PROGRESS_EVERY;
    let (mut backlog_sum, mut backlog_samples) = (0u64, 0u64);
    let failure = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Err(e) = interrupted().and_then(|()| fleet.check_alive()) {
            break Some(e);
        }
        let now = Instant::now();
        let (accepted, received) = (load.accepted(), recorded.count(idx));
        backlog_sum += load.backlog();
        backlog_samples += 1;
        if accepted == 0
            && now >= load.start + Duration::from_secs(3)
            && let Some(e) = load.first_error()
        {
            break Some(anyhow!(
                "no event accepted after 3s; first error: {e}{}",
                missing_feature_hint(&e)
            ));
        }
        if now >= next_report || now >= load.end {
            let dt = now - last.0;
            ui::info(&format!(
                "{:>4}s  accepted {:>9} ({:>6}/s)  delivered {:>9} ({:>6}/s)  outstanding {:>6} events{}",
                (now - load.start).as_secs_f64().round(),
                thousands(accepted),
                thousands(per_sec(accepted - last.1, dt) as u64),
                thousands(received),
                thousands(per_sec(received - last.2, dt) as u64),
                thousands(load.backlog()),
                errors_note(load),
            ));
            last = (now, accepted, received);
            next_report += PROGRESS_EVERY;
        }
        if now >= load.end {
            break None;
        }
    };
    (failure, backlog_sum / backlog_samples.max(1))
}

/// CPU used by the services, this process, Postgres and RabbitMQ, and the
/// receiver's signature checks: a reading, or (from [`Usage::since`]) what
/// a scenario used.
struct Usage {
    /// Dispatcher, manager, this process.
    cpu: [Duration; 3],
    machine: BoxCpu,
    /// Unsigned, verified, bad signature.
    checks: [u64; 3],
}

impl Usage {
    fn now(fleet: &Fleet, recorded: &receiver::Recorded) -> Self {
        Self {
            cpu: [fleet.dispatcher.cpu(), fleet.manager.cpu(), own_cpu()],
            machine: BoxCpu::now(),
            checks: [
                recorded.unsigned.load(Ordering::Relaxed),
                recorded.verified.load(Ordering::Relaxed),
                recorded.bad_signature.load(Ordering::Relaxed),
            ],
        }
    }

    fn since(&self, fleet: &Fleet, recorded: &receiver::Recorded) -> Self {
        let now = Self::now(fleet, recorded);
        Self {
            cpu: [0, 1, 2].map(|i| now.cpu[i].saturating_sub(self.cpu[i])),
            machine: now.machine.since(&self.machine),
            checks: [0, 1, 2].map(|i| now.checks[i] - self.checks[i]),
        }
    }
}

fn line(label: &str, text: String) {
    ui::info(&format!("{label:<21}{text}"));
}

/// What a scenario accepted and delivered, how fast and how late.
fn print_outcome(scenario: Scenario, o: &Outcome, drain: Duration, bus: (Duration, i64)) {
    let (caught_up, waiting) = bus;
    let (target, met) = scenario.verdict(o);
    println!();
    line(
        "events accepted",
        format!(
            "{}  (http {} · amqp {}; {} rejected, {} send errors)",
            thousands(o.accepted),
            thousands(o.accepted_http),
            thousands(o.accepted_amqp),
            thousands(o.rejected),
            thousands(o.send_errors)
        ),
    );
    if let Some(e) = &o.first_error {
        line("first error", e.clone());
    }
    line(
        "deliveries received",
        format!(
            "{} of {} expected  ({} missing, {} duplicates, {} unmatched; matched by {})",
            thousands(o.delivered),
            thousands(o.expected),
            thousands(o.missing),
            thousands(o.duplicates),
            thousands(o.unmatched),
            o.matched_by
        ),
    );
    line(
        "duration",
        format!("{} load + {} drain", ui::secs(o.window), ui::secs(drain)),
    );
    line(
        "bus caught up",
        format!(
            "{} after the last delivery ({} outbox events were still to publish)",
            ui::secs(caught_up),
            thousands(waiting as u64)
        ),
    );
    line(
        "deliveries/s",
        format!(
            "{} during the load, {} to the last delivery{}",
            thousands(o.rate() as u64),
            thousands(o.overall_rate() as u64),
            if scenario == Scenario::Latency {
                String::new()
            } else {
                format!("  {} (target {target})", verdict_word(met))
            },
        ),
    );
    line(
        "latency",
        match o.latency {
            Some(l) => format!(
                "p50 {}  p95 {}  p99 {}  max {}  (accepted → received{}){}",
                ms(l.p50),
                ms(l.p95),
                ms(l.p99),
                ms(l.max),
                if o.early > 0 {
                    format!("; {} arrived before the 202/confirm, as 0", o.early)
                } else {
                    String::new()
                },
                if scenario == Scenario::Latency {
                    format!("  {} (target {target})", verdict_word(met))
                } else {
                    String::new()
                }
            ),
            None => "no deliveries".into(),
        },
    );
    if !o.slow_seconds.is_empty() {
        let worst: Vec<String> = o
            .slow_seconds
            .iter()
            .take(5)
            .map(|(sec, n)| format!("{sec} s: {}", thousands(*n)))
            .collect();
        line(
            "slow seconds",
            format!(
                "deliveries over {} by the second their event came in, worst first: {} ({} of {} seconds had any)",
                ms(report::SLOW),
                worst.join(", "),
                o.slow_seconds.len(),
                o.window.as_secs().max(1)
            ),
        );
    }
}

/// What the services, this process, Postgres and RabbitMQ used, and the
/// receiver's signature checks.
fn print_usage(used: &Usage, sampler: &Sampler, wall: Duration) {
    let (cpu, box_cpu) = (used.cpu, &used.machine);
    let kib = |a: &AtomicU64| format!("{:.0} MiB", a.load(Ordering::Relaxed) as f64 / 1024.0);
    let share = |d: Duration| format!("{:.0} % of a core", 100.0 * per_sec_f(d, wall));
    line(
        "dispatcher",
        format!(
            "RSS max {}, CPU {} ({})",
            kib(&sampler.dispatcher),
            ui::secs(cpu[0]),
            share(cpu[0])
        ),
    );
    line(
        "manager",
        format!(
            "RSS max {}, CPU {} ({})",
            kib(&sampler.manager),
            ui::secs(cpu[1]),
            share(cpu[1])
        ),
    );
    line(
        "load gen + receiver",
        format!("CPU {} ({})", ui::secs(cpu[2]), share(cpu[2])),
    );
    line(
        "postgres, rabbitmq",
        format!(
            "CPU {} ({}), {} ({})",
            ui::secs(box_cpu.postgres),
            share(box_cpu.postgres),
            ui::secs(box_cpu.rabbitmq),
            share(box_cpu.rabbitmq)
        ),
    );
    let ours = cpu.iter().sum::<Duration>() + box_cpu.postgres + box_cpu.rabbitmq;
    let others = box_cpu.busy.saturating_sub(ours);
    line(
        "whole machine",
        format!(
            "{:.0} % busy ({} cores = {} %); other processes: {}",
            100.0 * per_sec_f(box_cpu.busy, wall),
            box_cpu.cores,
            100 * box_cpu.cores,
            share(others)
        ),
    );
    if per_sec_f(others, wall) > 0.25 {
        ui::warn(
            "other processes used the CPUs during this scenario (a build?): the figures are \
             low; rerun on a quiet machine",
        );
    }
    line(
        "signatures",
        format!(
            "{} checked (1 in 100), {} bad; {} requests unsigned",
            thousands(used.checks[1]),
            thousands(used.checks[2]),
            thousands(used.checks[0]),
        ),
    );
}

/// Warnings about what limited a run, or went missing.
fn warn_limits(pace: Pace, o: &Outcome, mean_backlog: u64) {
    if let Pace::Open { max_backlog } = pace
        && mean_backlog < max_backlog / 10
    {
        ui::warn(&format!(
            "on average only {} events were outstanding (cap {}): the intake, not delivery, \
             limited this run (accepted http {}/s, amqp {}/s; each path carries half)",
            thousands(mean_backlog),
            thousands(max_backlog),
            thousands(rate_of(o.accepted_http, o.window)),
            thousands(rate_of(o.accepted_amqp, o.window)),
        ));
    }
    if let Pace::Rate { per_sec } = pace {
        let offered = per_sec as f64 * o.window.as_secs_f64();
        if (o.accepted as f64) < 0.95 * offered {
            ui::warn(&format!(
                "the intake did not keep up with {} events/s: http {}/s, amqp {}/s accepted \
                 (each path is offered half)",
                thousands(per_sec),
                thousands(rate_of(o.accepted_http, o.window)),
                thousands(rate_of(o.accepted_amqp, o.window)),
            ));
        }
    }
    if o.delivered == 0 && o.unmatched > 0 {
        ui::warn(
            "requests arrived but none names an accepted event: neither `webhook-id` nor the \
             body's first \"id\" is the event id",
        );
    }
    if o.missing > 0 {
        ui::warn(&format!(
            "{} accepted deliveries did not arrive within {}s after the load",
            thousands(o.missing),
            DRAIN_TIMEOUT.as_secs()
        ));
    }
}

/// Waits until the receiver has every accepted event at each of the
/// scenario's subscriptions, or until `timeout`; then matches what arrived
/// with what was accepted ([`report::analyze`], `window` being the load's
/// start and end) and says how long it waited.
async fn drain(
    fleet: &Fleet,
    recorded: &receiver::Recorded,
    scenario: Scenario,
    accepted: &[(u128, Instant)],
    window: (Instant, Instant),
    timeout: Duration,
) -> Result<(Outcome, Duration)> {
    let idx = scenario.index();
    let expected = accepted.len() as u64 * scenario.subscriptions() as u64;
    let drain_start = Instant::now();
    let mut next_report = drain_start + PROGRESS_EVERY;
    let mut next_match = drain_start;
    let outcome = loop {
        interrupted()?;
        fleet.check_alive()?;
        let received = recorded.count(idx);
        let timed_out = drain_start.elapsed() >= timeout;
        // Counting is cheap; matching ids (at most once a second) only once the
        // count says it may be done (duplicates may make it say so too early).
        if (received >= expected && Instant::now() >= next_match) || timed_out {
            next_match = Instant::now() + Duration::from_secs(1);
            let o = report::analyze(
                accepted,
                &recorded.arrivals(idx),
                scenario.subscriptions(),
                window.0,
                window.1,
            );
            if o.missing == 0 || timed_out {
                break o;
            }
        }
        if Instant::now() >= next_report {
            ui::info(&format!(
                "  draining: {} of {} received",
                thousands(received),
                thousands(expected)
            ));
            next_report += PROGRESS_EVERY;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    Ok((outcome, drain_start.elapsed()))
}

/// Scenario `intake`: `POST /api/v1/events` at each connection count of
/// `--connections` in turn, as event producers call it. A level is one
/// reqwest client shared by N tasks, each posting events back to back and
/// timing every 202 ([`levels::run`]). Before a level the database is
/// settled; after it the bench waits until every event accepted so far has
/// been delivered and the bus has caught up, so that no level pays for the
/// deliveries of the one before. A loss stops the levels (it is reported).
///
/// `intake-idempotent` and `intake-replay` are the same with an
/// `Idempotency-Key` on every request ([`load::KeyUse`]); a replayed event
/// counts once for the delivery check.
async fn run_intake(
    scenario: Scenario,
    env: &Env,
    fleet: &Fleet,
    api: &reqwest::Client,
    receiver: &Receiver,
    options: &Options,
) -> Result<Outcome> {
    let keys = scenario.keys().unwrap_or(load::KeyUse::None);
    let plan = levels::Plan {
        warmup: Duration::from_secs(options.warmup),
        measured: Duration::from_secs(options.seconds(scenario)),
        rate: None,
    };
    ui::step(&format!(
        "scenario `{}`: {}; {} connections in turn, each {} s after a {} s warm-up",
        scenario.name(),
        scenario.describe(),
        levels::list(&options.connections),
        plan.measured.as_secs(),
        plan.warmup.as_secs()
    ));
    let tenant = setup_tenant(scenario, env, fleet, api, receiver).await?;
    let headers = event_headers(&tenant)?;
    let url: Arc<str> = format!("{}/api/v1/events", fleet.dispatcher_url).into();
    // The deliveries of a level may take as long as its load, on top of
    // the usual wait for the last of them.
    let drain_timeout = DRAIN_TIMEOUT + plan.warmup + plan.measured;
    let start = Instant::now();
    let mut accepted = Vec::new();
    let (mut rows, mut not_accepted, mut first_error) = (Vec::new(), 0, None);
    let mut outcome = Outcome::default();
    for &connections in &options.connections {
        interrupted()?;
        ui::step(&format!(
            "{}, {}",
            scenario.name(),
            levels::connections(connections)
        ));
        settle_database(&env.database_url).await?;
        // One client for the level's tasks, shared as a producer shares it:
        // reqwest's defaults (HTTP/1.1 keep-alive, TCP_NODELAY as reqwest
        // sets it), the tenant's headers, a pool that keeps every
        // connection open between requests, and a timeout.
        let client = reqwest::Client::builder()
            .no_proxy()
            .default_headers(headers.clone())
            .pool_max_idle_per_host(connections)
            .timeout(load::HTTP_TIMEOUT)
            .build()?;
        let senders = (0..connections)
            .map(|_| load::IntakeSender::new(&client, &url, tenant.id, keys))
            .collect();
        let level = levels::run(senders, plan).await?;
        let load_end = Instant::now();
        interrupted()?;
        fleet.check_alive()?;
        if level.accepted.is_empty()
            && level.warm_accepted.is_empty()
            && let Some(e) = &level.first_error
        {
            bail!(
                "no event accepted at {connections} connections; first error: {e}{}",
                missing_feature_hint(e)
            );
        }
        accepted.extend(level.warm_accepted.iter().chain(&level.accepted));
        if keys == load::KeyUse::Replay {
            // Every replay answers for its connection's one event.
            let mut seen = std::collections::HashSet::new();
            accepted.retain(|(id, _)| seen.insert(*id));
        }
        let (o, took) = drain(
            fleet,
            &receiver.recorded,
            scenario,
            &accepted,
            (start, load_end),
            drain_timeout,
        )
        .await?;
        wait_bus_caught_up(&env.database_url).await?;
        let delivered = match o.missing {
            0 => format!(
                "every event accepted so far delivered ({} after the load)",
                ui::secs(took)
            ),
            n => format!(
                "{} accepted events not delivered {} after the load",
                thousands(n),
                ui::secs(took)
            ),
        };
        ui::info(&format!("{}; {delivered}", level.progress()));
        if let Some(slow) = level.slow_seconds() {
            ui::info(&slow);
        }
        if let Some(e) = &level.first_error {
            ui::warn(&format!("first failure: {e}"));
        }
        rows.push(level.row());
        not_accepted += level.not_accepted + level.warm_not_accepted;
        first_error = first_error.or(level.first_error);
        outcome = o;
        if outcome.missing > 0 {
            ui::warn("events were lost: the remaining connection counts are skipped");
            break;
        }
    }
    Ok(Outcome {
        accepted: accepted.len() as u64,
        accepted_http: accepted.len() as u64,
        rejected: not_accepted,
        first_error,
        levels: rows,
        ..outcome
    })
}

fn per_sec_f(d: Duration, over: Duration) -> f64 {
    if over.is_zero() {
        0.0
    } else {
        d.as_secs_f64() / over.as_secs_f64()
    }
}

fn rate_of(n: u64, over: Duration) -> u64 {
    per_sec(n, over).round() as u64
}

fn verdict_word(met: Option<bool>) -> String {
    match met {
        Some(true) => ui::paint("1;32", "PASS"),
        Some(false) => ui::paint("1;31", "FAIL"),
        None => String::new(),
    }
}

fn errors_note(load: &Load) -> String {
    let (rejected, errors) = (
        load.rejected.load(Ordering::Relaxed),
        load.send_errors.load(Ordering::Relaxed),
    );
    if rejected + errors == 0 {
        String::new()
    } else {
        format!("  ({rejected} rejected, {errors} send errors)")
    }
}

/// A hint when a route of the outbound webhook feature answers 404.
fn missing_feature_hint(error: &str) -> &'static str {
    if error.contains("404") {
        "\n    (404: does this build have the outbound webhook routes yet?)"
    } else {
        ""
    }
}

/// The closing table: one line per scenario, its target and the verdict;
/// then the table of the `intake` levels.
fn summary(
    results: &[(Scenario, Outcome)],
    logs: &std::path::Path,
    transport: &infra::PgTransport,
    options: &Options,
) {
    ui::step(&format!("summary (database over {transport})"));
    ui::info(&format!(
        "{:<17} {:>13} {:>10} {:>10} {:>8} {:>10}  {:<14} result",
        "scenario", "deliveries/s", "p50", "p99", "missing", "duplicates", "target"
    ));
    for (scenario, o) in results {
        let (target, met) = scenario.verdict(o);
        let [rate, p50, p99] = match (scenario, o.latency) {
            // It measures the intake per connection count: its table follows.
            (s, _) if s.pace().is_none() => ["-".into(), "-".into(), "-".into()],
            (_, Some(l)) => [thousands(o.rate() as u64), ms(l.p50), ms(l.p99)],
            (_, None) => [thousands(o.rate() as u64), "-".into(), "-".into()],
        };
        ui::info(&format!(
            "{:<17} {:>13} {:>10} {:>10} {:>8} {:>10}  {:<14} {}",
            scenario.name(),
            rate,
            p50,
            p99,
            thousands(o.missing),
            thousands(o.duplicates),
            target,
            verdict_word(met)
        ));
    }
    for (scenario, o) in results.iter().filter(|(s, _)| s.pace().is_none()) {
        levels::print_table(
            &format!(
                "{}: POST /api/v1/events{}, one reqwest client per connection count, back to back, \
                 {} s after a {} s warm-up each; database over {transport}",
                scenario.name(),
                match scenario.keys() {
                    Some(load::KeyUse::Fresh) => " with a new Idempotency-Key each",
                    Some(load::KeyUse::Replay) => " replaying one keyed request per connection",
                    _ => "",
                },
                options.seconds(*scenario),
                options.warmup
            ),
            &o.levels,
            // The scaling check is `intake`'s target only.
            *scenario == Scenario::Intake,
        );
        let delivered = format!(
            "{} of {} accepted events delivered ({} missing, {} duplicates)",
            thousands(o.delivered),
            thousands(o.expected),
            thousands(o.missing),
            thousands(o.duplicates)
        );
        if o.missing == 0 && o.duplicates == 0 {
            ui::info(&delivered);
        } else {
            ui::warn(&delivered);
        }
    }
    if let Some((_, plain)) = results.iter().find(|(s, _)| *s == Scenario::Intake) {
        for (scenario, keyed) in results
            .iter()
            .filter(|(s, _)| s.pace().is_none() && *s != Scenario::Intake)
        {
            println!();
            println!(
                "{} beside intake (accepted/s and p50 / p99 at each connection count)",
                scenario.name()
            );
            print!("{}", compare_levels(&plain.levels, &keyed.levels));
        }
    }
    ui::info(&format!("service logs: {}", logs.display()));
}

/// Two intake scenarios' levels side by side: throughput of each and how
/// much lower the second's is, with their p50 and p99.
fn compare_levels(base: &[levels::Row], other: &[levels::Row]) -> String {
    let ms = |us: u32| format!("{:.2}", f64::from(us) / 1000.0);
    let lat = |r: &levels::Row| match r.latency_us {
        Some([p50, _, p99, _, _]) => format!("{} / {}", ms(p50), ms(p99)),
        None => "-".into(),
    };
    let mut out = format!(
        "{:>11}  {:>12}  {:>12}  {:>7}  {:>17}  {:>17}\n",
        "connections", "intake/s", "keyed/s", "change", "intake p50/p99 ms", "keyed p50/p99 ms"
    );
    for b in base {
        let Some(o) = other.iter().find(|o| o.connections == b.connections) else {
            continue;
        };
        let change = if b.per_sec > 0.0 {
            format!("{:+.0}%", (o.per_sec / b.per_sec - 1.0) * 100.0)
        } else {
            "-".into()
        };
        out += &format!(
            "{:>11}  {:>12}  {:>12}  {:>7}  {:>17}  {:>17}\n",
            b.connections,
            thousands(b.per_sec.round() as u64),
            thousands(o.per_sec.round() as u64),
            change,
            lat(b),
            lat(o)
        );
    }
    out
}

/// A bench tenant and its API key.
struct Tenant {
    id: uuid::Uuid,
    api_key: String,
}

impl Tenant {
    /// Creates the scenario's tenant and an API key through the admin API.
    async fn create(
        api: &reqwest::Client,
        fleet: &Fleet,
        env: &Env,
        scenario: Scenario,
    ) -> Result<Self> {
        let admin = format!("Bearer {}", env.admin_token);
        let slug = format!("bench-{}", scenario.name());
        let (status, json) = send(
            api.post(format!("{}/api/v1/admin/tenants", fleet.manager_url))
                .header("authorization", &admin)
                .json(&serde_json::json!({"name": format!("Bench {}", scenario.name()), "slug": slug})),
        )
        .await?;
        ensure!(
            status == 201,
            "POST /api/v1/admin/tenants answered {status}: {json}"
        );
        let id: uuid::Uuid = field(&json, "id", "the created tenant")?
            .parse()
            .context("the tenant id is not a UUID")?;
        let path = format!("/api/v1/admin/tenants/{id}/api-keys");
        let (status, json) = send(
            api.post(format!("{}{path}", fleet.manager_url))
                .header("authorization", &admin)
                .json(&serde_json::json!({"name": "bench"})),
        )
        .await?;
        ensure!(status == 201, "POST {path} answered {status}: {json}");
        let api_key = field(&json, "key", "the created API key")?.to_owned();
        Ok(Self { id, api_key })
    }

    /// Subscribes `url` to `order.*`; returns the signing secret.
    async fn subscribe(
        &self,
        api: &reqwest::Client,
        fleet: &Fleet,
        url: &str,
        n: usize,
    ) -> Result<WebhookSecret> {
        const PATH: &str = "/api/v1/webhooks/subscriptions";
        let (status, json) = send(
            api.post(format!("{}{PATH}", fleet.manager_url))
                .bearer_auth(&self.api_key)
                .header("x-tenant-id", self.id.to_string())
                .json(&serde_json::json!({
                    "name": format!("bench-{}", n + 1),
                    "url": url,
                    "event_types": ["order.*"],
                })),
        )
        .await?;
        if status == 404 {
            bail!(
                "POST {PATH} answered 404: does this build have the outbound webhook routes yet? ({json})"
            );
        }
        ensure!(status == 201, "POST {PATH} answered {status}: {json}");
        let secret = field(&json, "secret", "the created subscription")?;
        // The message leaves the secret out: it is one.
        WebhookSecret::parse(secret)
            .context("the created subscription's `secret` is not whsec_ + base64")
    }
}

/// Sends a request; the status and the body as JSON (or as a JSON string).
pub(crate) async fn send(req: reqwest::RequestBuilder) -> Result<(u16, serde_json::Value)> {
    let res = req.send().await.context("request to the manager failed")?;
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Ok((status, json))
}

fn field<'a>(json: &'a serde_json::Value, name: &str, what: &str) -> Result<&'a str> {
    json.get(name)
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow!("{what} has no `{name}`: {json}"))
}

fn interrupted() -> Result<()> {
    if STOP.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// The last `n` lines of a file, indented (for a service that died).
pub(crate) fn tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Drops a benchmark run's database and bus prefix when the run ends, however
/// it ends (declare it before the processes, so it runs after they stopped).
pub(crate) struct RunCleanup {
    pub(crate) database_url: String,
    pub(crate) rabbitmq_url: String,
    pub(crate) prefix: String,
}

impl Drop for RunCleanup {
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

/// `url` with its database name replaced (a Unix socket, given as a
/// percent-encoded host or as `?host=/dir`, stays as it is).
pub(crate) fn with_database(url: &str, name: &str) -> Result<String> {
    let mut parsed = url::Url::parse(url).context("DATABASE_URL is not a valid URL")?;
    parsed.set_path(&format!("/{name}"));
    Ok(parsed.to_string())
}

/// Vacuums, analyzes and checkpoints the bench database before each
/// scenario's load: a scenario should pay neither for the dead rows of the
/// last one (autovacuum would clear them in a deployment; this machine's
/// Postgres may run without it) nor for syncing the files that creating and
/// migrating the database left to the next checkpoint. Also makes sure
/// Postgres has WAL segment files to recycle ([`ready_wal_segments`]).
pub(crate) async fn settle_database(database_url: &str) -> Result<()> {
    let pool = hub_storage::pool(database_url, &hub_storage::PoolSettings::default())?;
    ready_wal_segments(&pool).await;
    let started = Instant::now();
    hub_storage::vacuum_analyze(&pool).await?;
    let checkpoint = hub_storage::checkpoint(&pool).await;
    pool.close().await;
    match checkpoint {
        Ok(()) => ui::info(&format!(
            "vacuumed, analyzed and checkpointed in {}",
            ui::secs(started.elapsed())
        )),
        Err(e) => ui::warn(&format!(
            "vacuumed and analyzed in {}; no CHECKPOINT ({e}): the load may pay for syncing the setup's files",
            ui::secs(started.elapsed())
        )),
    }
    Ok(())
}

/// Puts Postgres's WAL in the state of a server that has been running:
/// with segment files ready to recycle, up to `max_wal_size` of them
/// (`hub_storage::recycle_wal_segments`). A fresh cluster (as on a new
/// machine) has a few; it creates every further 16 MB segment when its WAL
/// first reaches it, zero-filled and synced while every commit waits.
/// Measured with `cargo xtask bench inbound` at about 12,000 requests/s
/// (45 MB of WAL a second): all 64 requests in flight stalled for 20-270 ms
/// every 0.35 s, one segment each, which made p99 40 ms instead of 11 ms.
/// Best effort: without the rights it says so and the run goes on.
async fn ready_wal_segments(pool: &sqlx::PgPool) {
    let (ahead, most) = match hub_storage::wal_segments_ahead(pool).await {
        Ok(v) => v,
        Err(e) => {
            ui::warn(&format!(
                "could not count Postgres's WAL segment files ({e}); if its WAL has not wrapped yet, commits stall whenever a new 16 MB segment is created"
            ));
            return;
        }
    };
    // A few short of the most: Postgres may keep one or two fewer.
    let wanted = most.saturating_sub(4);
    if ahead >= wanted {
        ui::info(&format!(
            "Postgres has {ahead} WAL segment files ready to recycle"
        ));
        return;
    }
    // The switches use up the files already ahead before they create new
    // ones, and the checkpoint recycles only the files passed: to have
    // `wanted` ahead afterwards, pass `wanted` (not `wanted - ahead`).
    let started = Instant::now();
    // A dot every 4 segment switches (plain lines: logs show them too).
    print!(
        "    moving the WAL through {wanted} segment files for Postgres to recycle ({ahead} ready) "
    );
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let progress = |i: i64| {
        if i % 4 == 0 {
            print!(".");
            let _ = std::io::Write::flush(&mut std::io::stdout());
        }
    };
    let done = hub_storage::recycle_wal_segments(pool, wanted, progress).await;
    println!();
    match done.and(hub_storage::wal_segments_ahead(pool).await) {
        Ok((now, _)) => ui::info(&format!(
            "Postgres now has {now} WAL segment files ready to recycle ({})",
            ui::secs(started.elapsed())
        )),
        Err(e) => ui::warn(&format!(
            "could not create WAL segment files to recycle ({e}): commits will stall whenever Postgres creates a new 16 MB segment"
        )),
    }
}

/// Prints the scenario's failed delivery attempts by reason: each one waits
/// its retry interval (60 s for the first), which is what a late or missing
/// delivery usually is.
async fn report_failed_attempts(database_url: &str, tenant: uuid::Uuid) -> Result<()> {
    let pool = hub_storage::pool(database_url, &hub_storage::PoolSettings::default())?;
    let (total, reasons) =
        hub_storage::deliveries::failed_attempts_by_reason(&pool, hub_storage::TenantId(tenant))
            .await?;
    pool.close().await;
    if reasons.is_empty() {
        ui::info("no failed delivery attempts");
    } else {
        let top: Vec<String> = reasons
            .iter()
            .map(|(r, n)| format!("{} × {r}", thousands(*n as u64)))
            .collect();
        ui::warn(&format!(
            "{} failed delivery attempts (retried after their interval): {}",
            thousands(total as u64),
            top.join("; ")
        ));
    }
    Ok(())
}

/// Waits (up to two minutes) until every outbox event is published to
/// RabbitMQ; returns how long that took and how many were waiting at first.
pub(crate) async fn wait_bus_caught_up(database_url: &str) -> Result<(Duration, i64)> {
    let pool = hub_storage::pool(database_url, &hub_storage::PoolSettings::default())?;
    let start = Instant::now();
    let (waiting, _) = hub_storage::outbox::backlog(&pool).await?;
    let mut left = waiting;
    while left > 0 && start.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = hub_storage::outbox::backlog(&pool).await?.0;
    }
    pool.close().await;
    if left > 0 {
        ui::warn(&format!(
            "{left} outbox events were still unpublished after 2 minutes"
        ));
    }
    Ok((start.elapsed(), waiting))
}

/// Drops the URL's database (connected to `postgres`); its name.
pub(crate) async fn drop_database(url: &str) -> Result<String> {
    let options = PgConnectOptions::from_str(url)?;
    let name = options
        .get_database()
        .context("the bench URL names no database")?
        .to_owned();
    ensure!(
        name.starts_with("hub_bench_"),
        "refusing to drop `{name}`: not a bench database"
    );
    let mut conn = PgConnection::connect_with(&options.clone().database("postgres")).await?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await.ok();
    Ok(name)
}

/// Deletes the prefix's exchanges and the services' queues; how many could
/// not be deleted.
pub(crate) async fn delete_bus_prefix(url: &str, prefix: &str) -> Result<usize> {
    let conn = Connection::connect(url, ConnectionProperties::default()).await?;
    let mut failed = 0;
    // A failed delete closes its channel: one channel per delete.
    for service in [MANAGER, DISPATCHER] {
        for suffix in ["events", "events.retry", "events.dlq"] {
            let queue = format!("{prefix}{service}.{suffix}");
            let ch = conn.create_channel().await?;
            if ch
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await
                .is_err()
            {
                failed += 1;
            }
            let _ = ch.close(200, "ok".into()).await;
        }
    }
    for exchange in ["hub.events", "hub.routed", "hub.dlx"] {
        let exchange = format!("{prefix}{exchange}");
        let ch = conn.create_channel().await?;
        if ch
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .is_err()
        {
            failed += 1;
        }
        let _ = ch.close(200, "ok".into()).await;
    }
    let _ = conn.close(200, "bench cleanup".into()).await;
    Ok(failed)
}

/// A port free on loopback right now.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_args(args)
    }

    #[test]
    fn arguments() {
        let defaults = parse(&["outbound"]).unwrap();
        assert_eq!(
            defaults,
            Options {
                seconds: None,
                warmup: 2,
                connections: vec![1, 8, 16, 32, 64, 256],
                scenarios: Scenario::ALL.to_vec()
            }
        );
        assert_eq!(defaults.seconds(Scenario::One), 60);
        assert_eq!(defaults.seconds(Scenario::Intake), 10);
        let o = parse(&["outbound", "--seconds", "5", "--scenario", "fanout5"]).unwrap();
        assert_eq!(
            (o.seconds(Scenario::Fanout5), o.scenarios),
            (5, vec![Scenario::Fanout5])
        );
        let o = parse(&["outbound", "--scenario=latency", "--seconds=2"]).unwrap();
        assert_eq!(
            (o.seconds(Scenario::Latency), o.scenarios),
            (2, vec![Scenario::Latency])
        );
        let o = parse(&[
            "outbound",
            "--scenario",
            "intake",
            "--connections",
            "1,16",
            "--seconds",
            "3",
            "--warmup=0",
        ])
        .unwrap();
        assert_eq!(
            (
                o.seconds(Scenario::Intake),
                o.warmup,
                o.connections,
                o.scenarios
            ),
            (3, 0, vec![1, 16], vec![Scenario::Intake])
        );
        // `all` has `intake`; a run without it has no use for its flags.
        assert!(parse(&["outbound", "--connections", "8,64"]).is_ok());
        assert!(parse(&["outbound", "--connections", "8", "--scenario", "one"]).is_err());
        assert!(parse(&["outbound", "--scenario", "one", "--warmup", "1"]).is_err());
        assert!(parse(&["outbound", "--connections", "8,x"]).is_err());
        assert!(parse(&["outbound", "--connections"]).is_err());
        assert!(parse(&["outbound", "--warmup", "601"]).is_err());
        assert!(parse(&[]).is_err());
        assert!(parse(&["inbound"]).is_err());
        assert!(parse(&["outbound", "--seconds"]).is_err());
        assert!(parse(&["outbound", "--seconds", "0"]).is_err());
        assert!(parse(&["outbound", "--scenario", "two"]).is_err());
        // The keyed intake scenarios run on request, beside `intake`.
        let o = parse(&[
            "outbound",
            "--scenario",
            "intake,intake-idempotent,intake-replay,intake",
            "--connections",
            "8",
        ])
        .unwrap();
        assert_eq!(
            o.scenarios,
            vec![
                Scenario::Intake,
                Scenario::IntakeIdempotent,
                Scenario::IntakeReplay
            ]
        );
        assert_eq!(o.seconds(Scenario::IntakeReplay), 10);
        assert!(!Scenario::ALL.contains(&Scenario::IntakeIdempotent));
        assert!(
            parse(&[
                "outbound",
                "--scenario",
                "intake-idempotent",
                "--warmup",
                "0"
            ])
            .is_ok()
        );
        assert!(parse(&["outbound", "--scenario", "one,nope"]).is_err());
        assert!(parse(&["outbound", "--fast"]).is_err());
    }

    #[test]
    fn reads_proc_stat() {
        let line = "1234 (webhook (dis)patcher) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 150 0 0 20 0 9 0 100 0 0";
        let (state, cpu) = parse_stat(line).unwrap();
        assert_eq!(state, 'S');
        assert_eq!(cpu, Duration::from_secs_f64(400.0 / clock_ticks() as f64));
        assert!(proc_stat(std::process::id()).is_some());
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
    }

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database(
                "postgres://postgres@127.0.0.1:5432/integration_hub",
                "hub_bench_ab"
            )
            .unwrap(),
            "postgres://postgres@127.0.0.1:5432/hub_bench_ab"
        );
        assert_eq!(
            with_database("postgres://u:p@db/x?sslmode=disable", "hub_bench_1").unwrap(),
            "postgres://u:p@db/hub_bench_1?sslmode=disable"
        );
        // The Unix-socket forms keep their socket, as sqlx reads it.
        for url in [
            "postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres",
            "postgres:///postgres?host=/var/run/postgresql&user=postgres",
        ] {
            let bench = with_database(url, "hub_bench_ab").unwrap();
            let options = PgConnectOptions::from_str(&bench).unwrap();
            assert_eq!(options.get_database(), Some("hub_bench_ab"), "{bench}");
            assert_eq!(
                infra::postgres_transport(&bench, "X").unwrap().to_string(),
                "Unix socket /var/run/postgresql/.s.PGSQL.5432"
            );
        }
    }
}
