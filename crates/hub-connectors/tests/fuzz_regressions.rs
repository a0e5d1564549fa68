//! The fuzz targets' checks in the normal test suite: every input that once
//! crashed a target (`cargo xtask fuzz` files it under
//! `tests/fuzz-regressions/<target>/`) and every seed of the fuzz corpus
//! (`fuzz/seeds/<target>/`) runs through exactly the checks of its target,
//! which this file includes from the fuzz crate. Tests below that name a
//! crash also say what the parser now answers.

use proptest::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "../fuzz/src/lib.rs"]
mod checks;

/// Runs every file under `dir/<target>/` through the check of `<target>`;
/// returns how many ran and the failures (file and panic message).
fn run_dir(dir: &Path) -> (usize, Vec<String>) {
    let mut ran = 0;
    let mut failures = Vec::new();
    let Ok(targets) = std::fs::read_dir(dir) else {
        return (0, failures);
    };
    let mut targets: Vec<PathBuf> = targets.flatten().map(|e| e.path()).collect();
    targets.sort();
    for target_dir in targets.iter().filter(|p| p.is_dir()) {
        let name = target_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some((_, check)) = checks::TARGETS.iter().find(|(t, _)| *t == name) else {
            failures.push(format!(
                "{}: no fuzz target is called {name:?}",
                target_dir.display()
            ));
            continue;
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(target_dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for file in files.iter().filter(|p| p.is_file()) {
            let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            ran += 1;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push(format!("{}: {msg}", file.display()));
            }
        }
    }
    (ran, failures)
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_input_that_crashed_a_fuzz_target_now_passes_its_check() {
    let (_, failures) = run_dir(&crate_dir().join("tests/fuzz-regressions"));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_fuzz_seed_passes_its_check() {
    let (ran, failures) = run_dir(&crate_dir().join("fuzz/seeds"));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // A seed for each target, so a renamed target cannot go unchecked.
    assert!(ran >= checks::TARGETS.len(), "only {ran} seeds ran");
    for (target, _) in checks::TARGETS {
        let dir = crate_dir().join("fuzz/seeds").join(target);
        assert!(dir.is_dir(), "no seeds for {target} in {}", dir.display());
    }
}

#[test]
fn a_check_fails_on_a_broken_invariant() {
    // The harness reports what panics: a directory naming no target is listed.
    let dir = std::env::temp_dir().join(format!("hub-connectors-fuzz-{}", std::process::id()));
    let target = dir.join("no_such_target");
    std::fs::create_dir_all(&target).expect("temp dir");
    let (_, failures) = run_dir(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(failures.len(), 1, "{failures:?}");
}

proptest! {
    /// Every target's check holds on generated input too: an option byte
    /// (the targets choose from the first bytes), then NUL-separated
    /// fields of text in the alphabet of JSON, URLs and headers.
    #[test]
    fn every_fuzz_check_holds_on_generated_input(
        head in any::<u8>(),
        parts in prop::collection::vec("\\PC{0,24}|[a-zA-Z0-9:=,.;/\\[\\]{}\"?&@%_ \n-]{0,48}", 0..4),
    ) {
        let mut data = vec![head];
        data.extend_from_slice(parts.join("\0").as_bytes());
        for (_, check) in checks::TARGETS {
            check(&data);
        }
    }
}

// ------------------------------------------------ crashes the fuzzer found

use hub_connectors::redact::{REDACTED, Redactor};

/// `redact/crash-272f81bd…` (the seed `json_escaped_key`): the JSON scanner matched
/// key names as written, so `"tok\u0065n"` (the key `token`, spelled with
/// an escape) kept its value in the logged body. Keys are now compared with
/// their escapes decoded.
#[test]
fn a_secret_key_spelled_with_escapes_is_redacted() {
    let r = Redactor::new(&[], &[]);
    let logged = r.body(
        Some("application/json"),
        r#"{"tok\u0065n": "hidden-by-name", "a\"b": "kept", "n": 1}"#,
    );
    let v: serde_json::Value = serde_json::from_str(&logged).expect("still JSON");
    assert_eq!(v["token"], REDACTED, "{logged}");
    assert_eq!(v["a\"b"], "kept");
    assert_eq!(v["n"], 1);
}
