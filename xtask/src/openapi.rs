//! `cargo xtask openapi [--check]`: the committed OpenAPI documents in `openapi/`.

use crate::SERVICES;
use crate::ui;
use anyhow::{Context, Result, bail};
use std::process::{Command, ExitCode, Stdio};

pub fn run(check: bool) -> Result<ExitCode> {
    // One build of all three (the same as `up`), then each binary prints its document.
    ui::step("building the services");
    crate::build_services()?;

    let dir = crate::workspace_root().join("openapi");
    let mut stale = Vec::new();
    for svc in SERVICES {
        ui::step(&format!("{} openapi", svc.package));
        let bin = crate::service_binary(svc)?;
        let output = Command::new(&bin)
            .arg("openapi")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("could not run {}", bin.display()))?;
        if !output.status.success() {
            bail!("`{} openapi` failed ({})", svc.package, output.status);
        }
        let text = pretty(&output.stdout)
            .with_context(|| format!("`{} openapi` did not print a JSON document", svc.package))?;
        let path = dir.join(format!("{}.json", svc.package));
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() == Some(text.as_str()) {
            ui::info(&format!("openapi/{}.json is up to date", svc.package));
        } else if check {
            ui::info(&format!("openapi/{}.json is stale", svc.package));
            stale.push(format!("openapi/{}.json", svc.package));
        } else {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            ui::info(&format!("wrote openapi/{}.json", svc.package));
        }
    }
    if !stale.is_empty() {
        bail!(
            "stale: {}; run `cargo xtask openapi` and commit the result",
            stale.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Pretty-prints JSON keeping the key order (a `serde_json::Value` would sort the keys),
/// with a trailing newline.
fn pretty(json: &[u8]) -> Result<String> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let mut out = Vec::new();
    serde_transcode::transcode(&mut de, &mut serde_json::Serializer::pretty(&mut out))?;
    de.end()?;
    Ok(String::from_utf8(out)? + "\n")
}
