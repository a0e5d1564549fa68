//! `cargo xtask test`: what CI runs (`.ci/run`), step by step.

use crate::infra;
use crate::ui;
use anyhow::Result;
use std::process::ExitCode;
use std::time::Instant;

pub fn run() -> Result<ExitCode> {
    let total = Instant::now();
    let locked = crate::workspace_root().join("Cargo.lock").exists();
    let lock_flag: &[&str] = if locked { &["--locked"] } else { &[] };

    timed("cargo fmt --all -- --check", || {
        let mut cmd = crate::cargo();
        cmd.args(["fmt", "--all", "--", "--check"]);
        ui::run_checked(&mut cmd, "formatting differs: run `cargo fmt --all`")
    })?;

    // The tools the suite needs are downloaded and installed (apt, pip) and
    // the manifests checked while clippy, which is CPU-bound, runs: on a
    // fresh machine that overlaps minutes. Their lines interleave with
    // clippy's.
    let tools = std::thread::spawn(|| -> Result<()> {
        timed_quiet(infra::ensure_docker_compose)?;
        timed_quiet(crate::deploy::run)?;
        timed_quiet(infra::ensure_chromium)?;
        timed_quiet(infra::ensure_schemathesis)
    });

    let clippy = format!(
        "cargo clippy --workspace --all-targets {}-- -D warnings",
        flags(lock_flag)
    );
    let linted = timed(&clippy, || {
        let mut cmd = crate::cargo();
        cmd.args(["clippy", "--workspace", "--all-targets"])
            .args(lock_flag)
            .args(["--", "-D", "warnings"]);
        ui::run_checked(
            &mut cmd,
            "fix the errors/warnings above (if Cargo.lock is out of date: run `cargo build` and commit Cargo.lock)",
        )
    });
    // Never leave an apt-get or pip install half done, whatever clippy said.
    ui::step("waiting for the tools and the deploy check (started beside clippy)");
    let tooled = tools
        .join()
        .map_err(|_| anyhow::anyhow!("the tools' thread panicked"))?;
    linted?;
    tooled?;

    let database_url = infra::env_or("HUB_TEST_DATABASE_URL", infra::DEFAULT_TEST_DATABASE_URL);
    let rabbitmq_url = infra::env_or("HUB_TEST_RABBITMQ_URL", infra::DEFAULT_RABBITMQ_URL);
    timed_quiet(|| infra::ensure_postgres(&database_url, "HUB_TEST_DATABASE_URL"))?;
    timed_quiet(|| infra::ensure_rabbitmq(&rabbitmq_url, "HUB_TEST_RABBITMQ_URL"))?;
    timed("dropping stale test databases (hubtest_*)", || {
        infra::drop_stale_test_databases(&database_url)
    })?;

    let nextest = ui::succeeds(crate::cargo().args(["nextest", "--version"]));
    let mut cmd = crate::cargo();
    if nextest {
        // Timeouts for hung tests live in .config/nextest.toml.
        cmd.args(["nextest", "run", "--workspace"])
            .args(lock_flag)
            .arg("--no-fail-fast");
    } else {
        cmd.args(["test", "--workspace"]).args(lock_flag);
    }
    cmd.env("HUB_TEST_DATABASE_URL", &database_url)
        .env("HUB_TEST_RABBITMQ_URL", &rabbitmq_url);
    let title = ui::show(&cmd);
    timed(&title, || {
        if !nextest {
            ui::warn(
                "cargo-nextest not found; using cargo test (install: cargo install cargo-nextest --locked)",
            );
        }
        ui::run_checked(&mut cmd, "tests failed: see the failures listed above")
    })?;

    // After the suite, not beside it: it has its own Postgres and RabbitMQ,
    // but its six services and load would slow the suite's timed tests.
    timed("cargo xtask chaos --short", crate::chaos::short)?;

    println!();
    ui::step(&format!(
        "all checks passed in {}",
        ui::secs(total.elapsed())
    ));
    Ok(ExitCode::SUCCESS)
}

fn flags(flags: &[&str]) -> String {
    flags.iter().map(|f| format!("{f} ")).collect()
}

/// Announces a step, runs it, prints its elapsed time.
fn timed(title: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    ui::step(title);
    timed_quiet(f)
}

/// Runs a step that announces itself, then prints its elapsed time.
fn timed_quiet(f: impl FnOnce() -> Result<()>) -> Result<()> {
    let started = Instant::now();
    let result = f();
    match &result {
        Ok(()) => ui::info(&format!("ok ({})", ui::secs(started.elapsed()))),
        Err(_) => ui::info(&format!("failed after {}", ui::secs(started.elapsed()))),
    }
    result
}
