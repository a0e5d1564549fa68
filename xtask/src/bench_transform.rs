//! `cargo xtask bench transform [--seconds N]`: the transformation engine's
//! benchmark (issue 28). The engine is pure, so the measuring loop is an
//! example of its own crate (`crates/hub-transform/examples/bench.rs`), built
//! in release with the services' allocator; this runs it and passes its exit
//! code on (1 when a target is missed).

use crate::ui;
use anyhow::{Result, bail};
use std::process::{Command, ExitCode};

/// Runs the benchmark with `args` (`transform [--seconds N]`).
pub fn run(args: &[&str]) -> Result<ExitCode> {
    let mut forwarded = Vec::new();
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match *arg {
            "--seconds" => match rest.next() {
                Some(n) if n.parse::<u64>().is_ok_and(|n| n > 0) => {
                    forwarded.extend(["--seconds", n]);
                }
                _ => bail!("--seconds takes a whole number of seconds above 0"),
            },
            other => bail!(
                "unexpected argument {other:?}; usage: cargo xtask bench transform [--seconds N]"
            ),
        }
    }
    ui::step("building and running the transformation benchmark (release)");
    let status = Command::new(env!("CARGO"))
        .args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "hub-transform",
            "--example",
            "bench",
            "--",
        ])
        .args(&forwarded)
        .status()?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
