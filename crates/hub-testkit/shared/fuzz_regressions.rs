//! The runner behind each fuzz crate's regression tests
//! (`crates/<crate>/tests/fuzz_regressions.rs` include this file with
//! `#[path]`, so the pure crates need no dependency for it): every file under
//! `<dir>/<target>/` goes through the check of `<target>` from the crate's
//! `fuzz/src/lib.rs` `TARGETS`, and what panics is reported.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// A fuzz crate's targets: each name with its check.
pub type Targets = [(&'static str, fn(&[u8]))];

/// Runs every file under `dir/<target>/` through the check of `<target>`;
/// returns how many ran and the failures (file and panic message). A
/// directory that names no target is a failure.
pub fn run_dir(dir: &Path, targets: &Targets) -> (usize, Vec<String>) {
    let mut ran = 0;
    let mut failures = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, failures);
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for target_dir in dirs.iter().filter(|p| p.is_dir()) {
        let name = target_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some((_, check)) = targets.iter().find(|(t, _)| *t == name) else {
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

/// Every input that once crashed a target (`tests/fuzz-regressions/` of
/// `crate_dir`) passes its check.
pub fn regressions_pass(crate_dir: &Path, targets: &Targets) {
    let (_, failures) = run_dir(&crate_dir.join("tests/fuzz-regressions"), targets);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every seed (`fuzz/seeds/` of `crate_dir`) passes its check, and every
/// target has seeds, so a renamed target cannot go unchecked.
pub fn seeds_pass(crate_dir: &Path, targets: &Targets) {
    let (ran, failures) = run_dir(&crate_dir.join("fuzz/seeds"), targets);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(ran >= targets.len(), "only {ran} seeds ran");
    for (target, _) in targets {
        let dir = crate_dir.join("fuzz/seeds").join(target);
        assert!(dir.is_dir(), "no seeds for {target} in {}", dir.display());
    }
}

/// The runner reports what fails: a directory naming no target is listed
/// (`label` names the temporary directory).
pub fn unknown_target_is_reported(label: &str, targets: &Targets) {
    let dir = std::env::temp_dir().join(format!("{label}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("no_such_target")).expect("temp dir");
    let (_, failures) = run_dir(&dir, targets);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(failures.len(), 1, "{failures:?}");
}

/// The three tests every fuzz crate's `tests/fuzz_regressions.rs` runs
/// (regressions, seeds, the runner's own failure report), for the crate
/// whose `checks` module (its `fuzz/src/lib.rs`) is in scope; `$label`
/// names the fuzz crate. Use with `#[macro_use]` on this module.
macro_rules! fuzz_regression_tests {
    ($label:literal) => {
        fn crate_dir() -> std::path::PathBuf {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        }

        #[test]
        fn every_input_that_crashed_a_fuzz_target_now_passes_its_check() {
            runner::regressions_pass(&crate_dir(), checks::TARGETS);
        }

        #[test]
        fn every_fuzz_seed_passes_its_check() {
            runner::seeds_pass(&crate_dir(), checks::TARGETS);
        }

        #[test]
        fn a_check_fails_on_a_broken_invariant() {
            runner::unknown_target_is_reported($label, checks::TARGETS);
        }
    };
}
