//! `docker-compose.yml` at the workspace root parses and runs the three services
//! on their ports. Needs the `docker-compose` command (`cargo xtask test` installs it).

use std::path::PathBuf;
use std::process::Command;

fn compose_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .join("docker-compose.yml")
}

#[test]
fn compose_file_defines_the_three_services_and_their_ports() {
    let file = compose_file();
    let mut cmd = Command::new("docker-compose");
    cmd.arg("-f").arg(&file).arg("config");
    // Secrets the file may require with `${VAR:?}`; any value parses.
    for var in ["INTEGRATION_ENCRYPTION_KEY", "HUB_ADMIN_TOKEN"] {
        if std::env::var_os(var).is_none() {
            cmd.env(var, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        }
    }
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "the `docker-compose` command is not installed: run `cargo xtask test` (it installs it) \
             or `sudo apt-get install -y docker-compose`"
        ),
        Err(e) => panic!("could not run docker-compose: {e}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`docker-compose -f {} config` failed ({}):\n{stderr}",
        file.display(),
        output.status
    );
    for (service, port) in [
        ("integration-manager", 3026),
        ("integration-sync", 3052),
        ("webhook-dispatcher", 3027),
    ] {
        let block = service_block(&stdout, service).unwrap_or_else(|| {
            panic!(
                "{} defines no service `{service}`:\n{stdout}",
                file.display()
            )
        });
        let published = [
            format!("published: {port}"),
            format!("published: \"{port}\""),
            format!("{port}:{port}"),
        ];
        assert!(
            published.iter().any(|p| block.contains(p.as_str())),
            "service `{service}` does not publish port {port}:\n{block}"
        );
    }
}

/// The lines of `services.<name>` in the normalized YAML that `docker-compose config` prints.
fn service_block(config: &str, name: &str) -> Option<String> {
    let mut lines = config.lines().skip_while(|l| *l != "services:").skip(1);
    let header = format!("  {name}:");
    lines
        .by_ref()
        .take_while(|l| l.starts_with(' ') || l.is_empty())
        .find(|l| *l == header)?;
    let block: Vec<&str> = lines
        .take_while(|l| l.starts_with("   ") || l.is_empty())
        .collect();
    Some(block.join("\n"))
}
