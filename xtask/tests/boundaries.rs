//! The crate boundaries of ARCHITECTURE.md, checked from `cargo metadata`:
//! which workspace crate may depend on which.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Workspace crates each crate may use as a normal (non-dev) dependency.
fn allowed() -> BTreeMap<&'static str, &'static [&'static str]> {
    const PLATFORM: &[&str] = &[
        "hub-domain",
        "hub-storage",
        "hub-bus",
        "hub-platform",
        "hub-connectors",
        "hub-gateway",
        "hub-transform",
    ];
    BTreeMap::from([
        ("hub-domain", &[][..]),
        ("hub-storage", &["hub-domain"][..]),
        ("hub-bus", &["hub-domain", "hub-storage"][..]),
        (
            "hub-platform",
            &["hub-domain", "hub-storage", "hub-bus", "hub-transform"][..],
        ),
        ("hub-connectors", &["hub-domain"][..]),
        // The transformation engine is pure and stands alone.
        ("hub-transform", &[][..]),
        // The gateway joins the connectors (no database) to storage's state.
        (
            "hub-gateway",
            &["hub-domain", "hub-storage", "hub-connectors"][..],
        ),
        // The web console: its sessions through hub-storage, everything
        // else through the manager's public HTTP API.
        ("hub-console", &["hub-domain", "hub-storage"][..]),
        (
            "integration-manager",
            &[
                "hub-domain",
                "hub-storage",
                "hub-bus",
                "hub-platform",
                "hub-connectors",
                "hub-gateway",
                "hub-transform",
                "hub-console",
            ][..],
        ),
        ("integration-sync", PLATFORM),
        ("webhook-dispatcher", PLATFORM),
        (
            "hub-testkit",
            &[
                "hub-domain",
                "hub-storage",
                "hub-bus",
                "hub-platform",
                "hub-connectors",
            ][..],
        ),
        ("xtask", &["hub-storage"][..]),
    ])
}

/// The service crates: none depends on another, not even as a dev-dependency.
const SERVICES: &[&str] = &[
    "integration-manager",
    "integration-sync",
    "webhook-dispatcher",
];

#[test]
fn crates_depend_only_on_what_the_architecture_allows() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let members: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let allowed = allowed();
    let mut violations = Vec::new();
    for p in packages {
        let name = p["name"].as_str().expect("name");
        let Some(ok) = allowed.get(name) else {
            violations.push(format!("{name}: not in the boundary table of xtask/tests/boundaries.rs (add it, and to ARCHITECTURE.md)"));
            continue;
        };
        for d in p["dependencies"].as_array().expect("dependencies") {
            let dep = d["name"].as_str().expect("dep name");
            let dev = d["kind"].as_str() == Some("dev");
            if members.contains(dep) && !dev && !ok.contains(&dep) {
                violations.push(format!("{name} -> {dep}"));
            }
            // Not even in tests: a test that needs another service runs its
            // binary (hub_testkit::TestEnv::spawn).
            if SERVICES.contains(&name) && SERVICES.contains(&dep) {
                violations.push(format!("{name} -> {dep} (a service, as a dev-dependency)"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "dependencies the architecture forbids:\n{}",
        violations.join("\n")
    );
}
