//! Progress lines, colors and running commands.

use anyhow::{Context, Result, bail};
use std::io::{IsTerminal, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether to color output: stdout is a terminal and `NO_COLOR` is unset.
pub fn color() -> bool {
    static COLOR: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *COLOR.get_or_init(|| std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
}

/// Wraps `text` in an ANSI color when coloring is on.
pub fn paint(code: &str, text: &str) -> String {
    if color() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Announces a step: `==> checking Postgres at 127.0.0.1:5432`.
pub fn step(msg: &str) {
    println!("{} {}", paint("1;34", "==>"), paint("1", msg));
}

/// An indented detail line under a step.
pub fn info(msg: &str) {
    println!("    {msg}");
}

/// A warning that does not stop the task.
pub fn warn(msg: &str) {
    println!("    {} {msg}", paint("1;33", "warning:"));
}

/// The final error line.
pub fn error(msg: &str) {
    let _ = std::io::stdout().flush();
    eprintln!("{} {msg}", paint("1;31", "error:"));
}

/// Seconds with one decimal, for elapsed times.
pub fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Prints dots while waiting; call `tick` about once a second, then `done`.
pub struct Dots {
    start: Instant,
    printed: bool,
}

impl Dots {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            printed: false,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn tick(&mut self, what: &str) {
        if !self.printed {
            print!("    waiting for {what} ");
            self.printed = true;
        }
        print!(".");
        let _ = std::io::stdout().flush();
    }

    pub fn done(self, outcome: &str) {
        if self.printed {
            println!(" {outcome} ({})", secs(self.start.elapsed()));
        }
    }
}

/// The command as a shell-like line, for messages.
pub fn show(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    if parts[0].ends_with("/cargo") {
        parts[0] = "cargo".into();
    }
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Runs a command with inherited stdio; fails with `on_failure` if it exits non-zero.
pub fn run_checked(cmd: &mut Command, on_failure: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not run `{}`", show(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status}): {on_failure}", show(cmd));
    }
    Ok(())
}

/// Runs a command silently and tells whether it succeeded (false if it could not start).
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
