//! `docker-compose.yml` at the workspace root parses, runs the three services on
//! their ports after healthy dependencies and the one-shot migration, and scales.
//! Needs the `docker-compose` command (`cargo xtask test` installs it).

use std::path::PathBuf;
use std::process::Command;

fn compose_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .join("docker-compose.yml")
}

/// `docker-compose -f docker-compose.yml config`: the file as Compose reads it, normalized.
fn normalized_config() -> String {
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
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`docker-compose -f {} config` failed ({}):\n{stderr}",
        file.display(),
        output.status
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

const SERVICES: [(&str, u16); 3] = [
    ("integration-manager", 3026),
    ("integration-sync", 3052),
    ("webhook-dispatcher", 3027),
];

fn block(config: &str, service: &str) -> String {
    service_block(config, service)
        .unwrap_or_else(|| panic!("docker-compose.yml defines no service `{service}`:\n{config}"))
}

#[test]
fn compose_file_defines_the_three_services_and_their_ports() {
    let config = normalized_config();
    for (service, port) in SERVICES {
        let block = block(&config, service);
        assert!(
            block.contains(&format!("target: {port}")),
            "service `{service}` does not publish its port {port}:\n{block}"
        );
    }
    // The manager keeps its well-known port while it runs alone (OAuth redirects come back to it).
    let manager = block(&config, "integration-manager");
    assert!(
        published(&manager).iter().any(|p| p.starts_with("3026-")),
        "the manager's host ports start at 3026:\n{manager}"
    );
}

/// `docker-compose up --scale <service>=3` needs no edit: no service has a
/// container name or a fixed host port (a range lets each replica take one).
#[test]
fn every_hub_service_scales_without_a_fixed_name_or_host_port() {
    let config = normalized_config();
    let mut ranges = Vec::new();
    for (service, _) in SERVICES {
        let block = block(&config, service);
        assert!(
            !block.lines().any(|l| l.starts_with("    container_name:")),
            "`{service}` has a container_name: a second replica could not be created:\n{block}"
        );
        for host in published(&block) {
            let (first, last) = host
                .split_once('-')
                .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)))
                .unwrap_or_else(|| {
                    panic!(
                        "`{service}` publishes the fixed host port {host}: a second replica could not bind it; \
                         publish a range (\"3026-3035:3026\") or the container port alone (\"3027\")"
                    )
                });
            assert!(first < last, "`{service}`: {host} is a range of one port");
            ranges.push((service, first, last));
        }
    }
    for (i, (a, a1, a2)) in ranges.iter().enumerate() {
        for (b, b1, b2) in &ranges[i + 1..] {
            assert!(
                a2 < b1 || b2 < a1,
                "the host port ranges of `{a}` and `{b}` overlap"
            );
        }
    }
}

/// Postgres and RabbitMQ are health-checked, the one-shot `migrate` waits for
/// Postgres, and every hub service waits for all three.
#[test]
fn services_start_after_healthy_dependencies_and_a_completed_migration() {
    let config = normalized_config();
    for dependency in ["postgres", "rabbitmq"] {
        let block = block(&config, dependency);
        assert!(
            block.contains("    healthcheck:") && block.contains("      test:"),
            "`{dependency}` has no healthcheck:\n{block}"
        );
    }
    let migrate = block(&config, "migrate");
    assert!(
        migrate.contains("    - integration-manager\n    - migrate"),
        "the `migrate` service runs `integration-manager migrate`:\n{migrate}"
    );
    assert!(
        migrate.contains("      postgres:\n        condition: service_healthy"),
        "`migrate` waits for a healthy Postgres:\n{migrate}"
    );
    for (service, _) in SERVICES {
        let block = block(&config, service);
        for (dependency, condition) in [
            ("postgres", "service_healthy"),
            ("rabbitmq", "service_healthy"),
            ("migrate", "service_completed_successfully"),
        ] {
            assert!(
                block.contains(&format!(
                    "      {dependency}:\n        condition: {condition}"
                )),
                "`{service}` does not wait for {dependency} ({condition}):\n{block}"
            );
        }
        assert!(
            block.contains("HUB_MIGRATE_ON_START: \"false\""),
            "`{service}` leaves migrating to the `migrate` service:\n{block}"
        );
    }
}

/// The host side of each published port of a service block (`published: 3026-3035`).
fn published(block: &str) -> Vec<String> {
    block
        .lines()
        .filter_map(|l| {
            l.trim()
                .trim_start_matches("- ")
                .strip_prefix("published: ")
        })
        .map(|p| p.trim_matches(|c| c == '"' || c == '\'').to_owned())
        .collect()
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
