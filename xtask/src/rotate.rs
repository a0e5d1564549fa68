//! `cargo xtask rotate-key`: re-seal every stored secret under the current key.
//!
//! Zero-downtime rotation: (1) run every replica with the new key in
//! `INTEGRATION_ENCRYPTION_KEY` and the old one in
//! `INTEGRATION_ENCRYPTION_KEYS_OLD` (they read both, write with the new);
//! (2) run this; (3) drop the old key. Keys come from the environment, or from
//! `.hub/dev.env` for the local setup of `cargo xtask up`.

use crate::ui;
use anyhow::{Context, Result};
use std::process::ExitCode;

const KEYS: [&str; 2] = [
    "INTEGRATION_ENCRYPTION_KEY",
    "INTEGRATION_ENCRYPTION_KEYS_OLD",
];

pub fn run() -> Result<ExitCode> {
    let database_url = crate::infra::database_url();
    let mut build = crate::cargo();
    build.args(["build", "-q", "-p", "integration-manager"]);
    ui::step("building integration-manager");
    ui::run_checked(&mut build, "the build failed; see above")?;
    let mut cmd = std::process::Command::new(
        crate::workspace_root().join("target/debug/integration-manager"),
    );
    cmd.arg("rotate-key").env("DATABASE_URL", &database_url);
    if std::env::var_os(KEYS[0]).is_none() {
        let path = crate::workspace_root().join(".hub/dev.env");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "INTEGRATION_ENCRYPTION_KEY is not set and {} cannot be read",
                path.display()
            )
        })?;
        for (k, v) in text.lines().filter_map(|l| l.trim().split_once('=')) {
            if KEYS.contains(&k) {
                cmd.env(k, v.trim());
            }
        }
        ui::info(&format!("keys from {}", path.display()));
    }
    ui::step("re-sealing secrets under the current key");
    let status = cmd
        .status()
        .context("running integration-manager rotate-key")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
