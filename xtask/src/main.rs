//! Developer tasks for the Integration Hub workspace.
//!
//! `cargo xtask up` starts everything on a fresh machine; `cargo xtask test`
//! is exactly what CI (`.ci/run`) runs.

mod bench;
mod bench_console;
mod bench_gateway;
mod bench_inbound;
mod bench_sync;
mod bench_transform;
mod chaos;
mod deploy;
mod fuzz;
mod image;
mod infra;
mod openapi;
mod rotate;
mod test;
mod ui;
mod up;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  up                 start Postgres/RabbitMQ if needed, migrate, run the three services and the fake
                     providers, create a demo tenant and a demo integration (offline, against a fake)
  test               what CI runs: fmt, clippy, the whole test suite against local Postgres/RabbitMQ,
                     then chaos --short
  migrate            create the database if missing and apply migrations (DATABASE_URL)
  openapi [--check]  regenerate openapi/<service>.json; with --check, fail if any is stale
  deploy-check       render deploy/k8s/overlays/{dev,prod} (kubectl kustomize), validate them against the
                     Kubernetes 1.32 schemas (kubernetes-validate, strict) and the deployment rules (probes,
                     resources, grace period, no secret in the ConfigMap, migration Job); installs the
                     tools into a virtualenv under target/deploy-tools. Part of `test`
  bench inbound [--connections LIST | --concurrency N] [--seconds N] [--warmup N] [--client reqwest|raw]
                [--rate N] [--manager PATH] [--latencies FILE]
                     inbound webhook benchmark: a release manager, Standard-Webhooks-signed requests
                     from reqwest (one client shared by N tasks, default settings) at each connection
                     count in turn (default 1,8,16,32,64,256; --concurrency N: the one count N), each
                     back to back for --seconds (10) after an untimed --warmup (2); --rate: N requests/s
                     in all; --client raw: the hand-written HTTP/1.1 client instead; --latencies FILE:
                     each measured request's start and latency, in FILE.<connections> with several
                     counts. Prints a table, a row per connection count (accepted/s, p50/p90/p99/p99.9/max,
                     not accepted), then an exactly-once check in Postgres
  bench gateway [--seconds N] [--connections LIST | --concurrency N] [--warmup N] [--rate N] [--manager PATH]
                     API gateway benchmark (issue 27): release builds of the manager and fake-providers
                     (recording off), a fresh database, a HubSpot integration on the fake with its rate
                     limit out of reach, logging on (bodies too). At each connection count (default
                     1,16,64; --concurrency N: the one count N), a DIRECT run against the fake and then a
                     PROXIED run through /api/v1/integrations/{id}/proxy/..., the same GET from one
                     shared reqwest client, back to back for --seconds (30) after --warmup (2) (--rate N:
                     both paced at N requests/s in all, latency from when each was due). Prints
                     req/s and latency of both, the latency the proxy adds, non-2xx answers, log rows
                     written vs requests proxied, CPU per request; exit 1 unless at 64 connections it
                     makes >= 5,000 proxied req/s with added p50 <= 1 ms and every call logged
  bench transform [--seconds N]
                     transformation engine benchmark (issue 28), one core, release: JSON->JSON mapping
                     of a 30-field record, CSV->tree, X12 204 parse and 990 generation; records/s and
                     MB/s; exit 1 unless >= 200,000 mapped records/s and X12 parse >= 50 MB/s
  bench sync [--records N] [--conflicts PCT] [--sync PATH]
                     sync engine benchmark (issue 29), release: FULL_SYNC of N (200,000) HubSpot contacts
                     from the fake (pages of 100), then PCT (5) % changed at the fake and locally and a
                     second FULL_SYNC; records/s end to end, conflicts recorded, peak RSS of
                     integration-sync; exit 1 unless the second run makes >= 20,000 records/s
  bench console [--rows N] [--views N] [--connections LIST]
                     console page timings (issue 30), release: a tenant with N (10,000) deliveries and every
                     integration the API allows it (one per provider and environment), made through the API; each page viewed --views (50) times as a browser
                     does (the page, then its htmx data request, with a signed-in session) at each count
                     of signed-in browsers in --connections (1,4,16); p50/p95/max per page; exit 1
                     unless every page's p95 with one browser is under 200 ms
  rotate-key         re-seal stored secrets under INTEGRATION_ENCRYPTION_KEY (old keys in INTEGRATION_ENCRYPTION_KEYS_OLD)
  bench outbound [--seconds N] [--scenario one|fanout5|latency|intake|intake-idempotent|intake-replay|all[,...]] [--connections LIST] [--warmup N]
                     outbound webhook deliveries/s and end-to-end latency against release builds, a fresh
                     database and a local receiver (default 60 s per scenario, all scenarios); scenario
                     intake: POST /api/v1/events from reqwest at each connection count of --connections
                     (default 1,8,16,32,64,256), --seconds (10) each after --warmup (2), the same table as
                     bench inbound, and a check that every accepted event was delivered;
                     intake-idempotent: the same with a new Idempotency-Key on each request,
                     intake-replay: each connection sending one keyed request again and again (not in
                     `all`; list them beside intake, e.g. --scenario intake,intake-idempotent, for a
                     side-by-side table)
  chaos [--short] [--seconds N]
                     the services (two replicas each) on a private Postgres cluster and RabbitMQ node
                     under a steady load of outbound events and signed inbound webhooks, with FULL_SYNC
                     jobs from the fake HubSpot one after another, while in turn: kill -9 of replicas
                     (restarted at once), a RabbitMQ restart, a Postgres crash and restart, a receiver
                     that hangs, a full disk under api_request_logs (root only). Prints per fault how
                     long it was down, took to recover and the duplicate deliveries it caused, then
                     events accepted vs delivered, inbound webhooks accepted vs stored, sync jobs
                     accepted vs complete and records held vs the fake's; exit 1 if anything accepted
                     was lost, a duplicate was not in flight at a fault, a sync job did not complete
                     with every record, or a fault was not recovered. --seconds: steady load
                     before each fault (default 15; --short: 2). --short (a step of `test`): debug
                     builds, a small load, one kill per service; else release builds, every replica
                     killed, the receiver and the log disk failing for 15 s each
  fuzz [--seconds N] [TARGET...]
                     run each cargo-fuzz target (crates/*/fuzz; all, or the TARGETs named) for --seconds
                     (60) on its corpus, seeded from fuzz/seeds; installs cargo-fuzz if missing and uses
                     RUSTC_BOOTSTRAP=1 on stable. Prints runs, exec/s, coverage, corpus and crash per
                     target; exit 1 on a crash, whose input is copied to tests/fuzz-regressions/<target>/
                     of the crate (a regression test from then on). Not part of `test`
  image              the final stage of deploy/Dockerfile built without a Docker engine (root):
                     debootstrap's bookworm minbase slimmed as bookworm-slim, ca-certificates, the hub
                     user, and the three release binaries stripped; an OCI image layout under
                     target/image/oci read back by skopeo, each binary run from it as uid 10001
                     (migrate on a scratch database); prints each layer's size on disk and gzip'd.
                     Installs debootstrap and skopeo if missing. Not part of `test`
  help               show this message
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let result = match args.first().map(String::as_str) {
        Some("up") if rest.is_empty() => up::run(),
        Some("test") if rest.is_empty() => test::run(),
        Some("migrate") if rest.is_empty() => migrate(),
        Some("rotate-key") if rest.is_empty() => rotate::run(),
        Some("deploy-check") if rest.is_empty() => deploy::run().map(|()| ExitCode::SUCCESS),
        Some("bench") if rest.first() == Some(&"inbound") => bench_inbound::run(&rest),
        Some("bench") if rest.first() == Some(&"gateway") => bench_gateway::run(&rest),
        Some("bench") if rest.first() == Some(&"transform") => bench_transform::run(&rest),
        Some("bench") if rest.first() == Some(&"sync") => bench_sync::run(&rest),
        Some("bench") if rest.first() == Some(&"console") => bench_console::run(&rest),
        Some("fuzz") => fuzz::run(&rest),
        Some("image") => image::run(&rest),
        Some("chaos") => match chaos::run(&rest) {
            Ok(result) => result,
            Err(msg) => return usage_error(&msg),
        },
        Some("openapi") => match rest.as_slice() {
            [] => openapi::run(false),
            ["--check"] => openapi::run(true),
            _ => {
                return usage_error(&format!(
                    "unexpected arguments to `openapi`: {}",
                    rest.join(" ")
                ));
            }
        },
        Some("bench") => match bench::run(&rest) {
            Ok(result) => result,
            Err(msg) => return usage_error(&msg),
        },
        Some("help" | "--help" | "-h") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(cmd @ ("up" | "test" | "migrate" | "rotate-key" | "deploy-check")) => {
            return usage_error(&format!("`{cmd}` takes no arguments"));
        }
        Some(other) => return usage_error(&format!("unknown command `{other}`")),
        None => return usage_error("missing command"),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            ui::error(&format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg}\n");
    eprint!("{USAGE}");
    ExitCode::from(2)
}

/// `cargo xtask migrate`: create the database if needed and apply migrations.
fn migrate() -> anyhow::Result<ExitCode> {
    let database_url = infra::database_url();
    infra::ensure_postgres(&database_url, "DATABASE_URL")?;
    infra::create_database_and_migrate(&database_url)?;
    Ok(ExitCode::SUCCESS)
}

/// The workspace root (xtask's parent directory), whatever the current directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `<root>/target`).
pub fn target_dir() -> PathBuf {
    let root = workspace_root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// A `cargo` command run from the workspace root (the same cargo that runs xtask).
pub fn cargo() -> std::process::Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(workspace_root());
    // `cargo xtask` runs this binary with the variables cargo sets for the
    // package it runs (`CARGO_MANIFEST_DIR=…/xtask`, …). Passed on, they
    // differ from those of the `cargo run` that built xtask, and build
    // scripts that watch them run again: ring's watches
    // `CARGO_MANIFEST_DIR`, so ring, rustls and everything above them were
    // rebuilt by every `cargo xtask up` and `test`, and again by the next
    // `cargo xtask` (a minute or two each time on 2 cores).
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_run) {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Whether `name` is one of the variables `cargo run` sets for the package
/// it runs (cargo sets them again for every package it builds).
fn set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_RUSTC_CURRENT_DIR"
        )
}

/// The three service binaries: package (= binary) name, log label, port, ANSI color.
pub const SERVICES: [Service; 3] = [
    Service {
        package: "integration-manager",
        label: "manager",
        port: 3026,
        color: "36",
    },
    Service {
        package: "integration-sync",
        label: "sync",
        port: 3052,
        color: "35",
    },
    Service {
        package: "webhook-dispatcher",
        label: "dispatch",
        port: 3027,
        color: "33",
    },
];

/// One service binary of the workspace.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    pub package: &'static str,
    pub label: &'static str,
    pub port: u16,
    pub color: &'static str,
}

/// The built binary of a service (after [`build_services`]).
pub fn service_binary(svc: Service) -> anyhow::Result<PathBuf> {
    let path = target_dir().join("debug").join(svc.package);
    anyhow::ensure!(
        path.is_file(),
        "{} was not built (no {}): does the crate have a binary target yet?",
        svc.package,
        path.display()
    );
    Ok(path)
}

/// `cargo build --bins -p <each service>`, with cargo's own progress output.
pub fn build_services() -> anyhow::Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--bins"]);
    for svc in SERVICES {
        cmd.args(["-p", svc.package]);
    }
    ui::run_checked(&mut cmd, "the build failed (see the errors above)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_cargo_commands_drop_only_what_cargo_run_set_for_xtask() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            assert!(set_by_cargo_run(name), "{name}");
        }
        // Configuration the user set is passed on.
        for name in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_INCREMENTAL",
            "CARGO_BUILD_JOBS",
            "CARGO_PROFILE_DEV_DEBUG",
            "RUSTFLAGS",
        ] {
            assert!(!set_by_cargo_run(name), "{name}");
        }
    }
}
