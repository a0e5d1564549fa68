//! Schema-driven API tests: the schemathesis CLI (PyPI, the version pinned
//! in `crates/hub-testkit/schemathesis.txt`, which `cargo xtask test` installs
//! into a virtualenv at `target/schemathesis`) run against a running service
//! and its committed OpenAPI document (`openapi/<service>.json`).
//!
//! A run sends generated requests (positive and negative) to every operation
//! it selects and fails on a server error, a status code the document does
//! not list, a content type or response body or header that does not match
//! what the document says.

use serde_json::Value;
use std::path::PathBuf;

/// The pinned requirement (`schemathesis==<version>`).
pub const PINNED: &str = include_str!("../schemathesis.txt");

/// The checks every run makes.
pub const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance";

/// An operation a run leaves out, and why: exclusions are never silent.
#[derive(Debug, Clone, Copy)]
pub struct Excluded {
    /// The method (`GET`, `POST`, …).
    pub method: &'static str,
    /// The path as documented (`/api/v1/integrations/{id}/proxy/{path}`).
    pub path: &'static str,
    /// Why it is left out.
    pub reason: &'static str,
}

/// One schemathesis run against a service.
#[derive(Debug, Clone)]
pub struct Run {
    service: String,
    base: String,
    headers: Vec<(String, String)>,
    include_path_regex: Option<String>,
    exclude_path_regex: Option<String>,
    excluded: Vec<Excluded>,
    max_examples: u32,
}

/// What a run found.
#[derive(Debug)]
pub struct Outcome {
    /// The operations tested.
    pub operations: u64,
    /// The test cases (requests) generated.
    pub test_cases: u64,
    /// The test cases that failed a check.
    pub failed_cases: u64,
    /// Each failure kind with the operations it was seen on, and any error.
    pub problems: Vec<String>,
    /// What the CLI printed (its failures with `curl` reproductions).
    pub output: String,
    /// How long the run took.
    pub elapsed: std::time::Duration,
}

impl Run {
    /// A run of service `service`'s committed document against `base`
    /// (`http://127.0.0.1:<port>`).
    pub fn new(service: &str, base: &str) -> Self {
        Self {
            service: service.to_owned(),
            base: base.to_owned(),
            headers: Vec::new(),
            include_path_regex: None,
            exclude_path_regex: None,
            excluded: Vec::new(),
            max_examples: 10,
        }
    }

    /// Sends `name: value` with every request (credentials).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Tests only the paths matching `regex`.
    pub fn only_paths(mut self, regex: &str) -> Self {
        self.include_path_regex = Some(regex.to_owned());
        self
    }

    /// Leaves out the paths matching `regex` (tested by another run).
    pub fn other_paths(mut self, regex: &str) -> Self {
        self.exclude_path_regex = Some(regex.to_owned());
        self
    }

    /// Leaves out `excluded` operations, each with its reason.
    pub fn excluding(mut self, excluded: &[Excluded]) -> Self {
        self.excluded.extend_from_slice(excluded);
        self
    }

    /// At most `n` generated test cases per operation and phase.
    pub fn max_examples(mut self, n: u32) -> Self {
        self.max_examples = n;
        self
    }

    /// Runs the CLI to the end and reads its JSON report.
    pub async fn run(&self) -> Outcome {
        let program = program();
        let document = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../openapi")
            .join(format!("{}.json", self.service));
        let dir = tempfile::tempdir().expect("a report directory");
        let report = dir.path().join("report.json");
        let mut cmd = tokio::process::Command::new(&program);
        cmd.arg("run")
            .arg(&document)
            .args(["--url", &self.base])
            .args(["--checks", CHECKS])
            .args(["--max-examples", &self.max_examples.to_string()])
            // One worker: with two, schemathesis 4.32.5 now and then fails
            // in its own coverage phase (a KeyError of its caches).
            .args(["--workers", "1"])
            .args(["--seed", &seed().to_string()])
            .args(["--generation-database", "none"])
            .args(["--suppress-health-check", "all"])
            .args(["--request-timeout", "10"])
            .args(["--report", "json", "--report-json-path"])
            .arg(&report)
            .arg("--no-color")
            .current_dir(dir.path())
            .kill_on_drop(true);
        for (name, value) in &self.headers {
            cmd.args(["--header", &format!("{name}: {value}")]);
        }
        if let Some(r) = &self.include_path_regex {
            cmd.args(["--include-path-regex", r]);
        }
        if let Some(r) = &self.exclude_path_regex {
            cmd.args(["--exclude-path-regex", r]);
        }
        for e in &self.excluded {
            cmd.args(["--exclude-name", &format!("{} {}", e.method, e.path)]);
        }
        let started = std::time::Instant::now();
        let out = cmd
            .output()
            .await
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        let elapsed = started.elapsed();
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = std::fs::read_to_string(&report)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_else(|| panic!("schemathesis wrote no report ({}):\n{output}", out.status));
        let count = |v: &Value| v.as_u64().unwrap_or(0);
        let mut problems: Vec<String> = report["failures"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                format!(
                    "{} {} ({}x): {}",
                    f["code"].as_str().unwrap_or_default(),
                    f["title"].as_str().unwrap_or_default(),
                    count(&f["count"]),
                    f["operations"]
                )
            })
            .collect();
        problems.extend(
            report["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| format!("error: {e}")),
        );
        if report["operations"]["errored"].as_u64().unwrap_or(0) > 0 {
            problems.push(format!("operations errored: {}", report["operations"]));
        }
        if !out.status.success() && problems.is_empty() {
            problems.push(format!("schemathesis exited with {}", out.status));
        }
        Outcome {
            operations: count(&report["operations"]["tested"]),
            test_cases: count(&report["test_cases"]["generated"]),
            failed_cases: count(&report["test_cases"]["with_failures"]),
            problems,
            output,
            elapsed,
        }
    }
}

impl Outcome {
    /// Asserts the run found nothing and tested at least `operations`
    /// operations; prints its counts.
    #[track_caller]
    pub fn assert_clean(&self, operations: u64) {
        println!(
            "schemathesis: {} operations, {} test cases, {} failed, in {:.1} s",
            self.operations,
            self.test_cases,
            self.failed_cases,
            self.elapsed.as_secs_f64()
        );
        assert!(
            self.problems.is_empty(),
            "schemathesis found {} failing test cases:\n{}\n\n{}",
            self.failed_cases,
            self.problems.join("\n"),
            self.output
        );
        assert!(
            self.operations >= operations,
            "schemathesis tested {} operations, expected at least {operations}:\n{}",
            self.operations,
            self.output
        );
    }
}

/// The seed of the runs: fixed, so a run is repeatable;
/// `HUB_SCHEMATHESIS_SEED` picks another to explore.
fn seed() -> u64 {
    std::env::var("HUB_SCHEMATHESIS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(31)
}

/// The installed CLI: `HUB_SCHEMATHESIS` if set, else the virtualenv under
/// this build's target directory, which must hold the pinned version.
pub fn program() -> PathBuf {
    if let Some(p) = std::env::var_os("HUB_SCHEMATHESIS") {
        return PathBuf::from(p);
    }
    // Tests run from <target>/<profile>/deps/<test binary>.
    let exe = std::env::current_exe().expect("test binary path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the target directory")
        .to_path_buf();
    let venv = target.join("schemathesis");
    let installed = std::fs::read_to_string(venv.join("installed.txt")).unwrap_or_default();
    assert!(
        installed == PINNED,
        "{} is not installed in {}: `cargo xtask test` installs it, or run\n    \
         python3 -m venv {dir} && {dir}/bin/pip install -r crates/hub-testkit/schemathesis.txt && cp crates/hub-testkit/schemathesis.txt {dir}/installed.txt",
        PINNED.trim(),
        venv.display(),
        dir = venv.display()
    );
    venv.join("bin/schemathesis")
}
