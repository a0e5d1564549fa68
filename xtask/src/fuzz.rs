//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs the cargo-fuzz targets
//! of the workspace, each for a set time, and turns a crash into a
//! regression input.
//!
//! A fuzz crate is any `crates/<crate>/fuzz/` whose Cargo.toml says
//! `cargo-fuzz = true` (its own workspace, outside the main one); its targets
//! are what `cargo fuzz list` names there, so a new target only has to be
//! added to its fuzz crate. Per target:
//! - the committed seeds (`fuzz/seeds/<target>/`) are copied into the working
//!   corpus (`fuzz/corpus/<target>/`, not committed), which grows run after run;
//! - `fuzz/dicts/<target>.dict`, when present, is passed as libFuzzer's
//!   dictionary;
//! - libFuzzer runs for `--seconds` (60) with `-max_total_time`, its output in
//!   `fuzz/logs/<target>.log`; a progress line every 10 s;
//! - a crash (or timeout, or out-of-memory) leaves its input in
//!   `fuzz/artifacts/<target>/`; it is copied to
//!   `tests/fuzz-regressions/<target>/` of the crate, where the crate's tests
//!   run it through the target's check, so it stays a failing test until the
//!   parser is fixed.
//!
//! cargo-fuzz needs nightly features (`-Zsanitizer`); `RUSTC_BOOTSTRAP=1`
//! lets the stable toolchain use them, so no nightly is installed.

use crate::ui;
use anyhow::{Context, Result, bail, ensure};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [TARGET...]";
const DEFAULT_SECONDS: u64 = 60;
/// One input that takes longer than this is a failure (a `timeout-` artifact).
const UNIT_TIMEOUT_SECS: u64 = 10;
/// How often a progress line is printed while a target runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    seconds: u64,
    targets: Vec<String>,
}

fn parse_args(args: &[&str]) -> Result<Options> {
    let mut opts = Options {
        seconds: DEFAULT_SECONDS,
        targets: Vec::new(),
    };
    let mut rest = args.iter().flat_map(|arg| match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => vec![flag, value],
        _ => vec![*arg],
    });
    while let Some(arg) = rest.next() {
        match arg {
            "--seconds" => {
                let value = rest.next().unwrap_or_default();
                opts.seconds = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=86_400).contains(n))
                    .with_context(|| {
                        format!("--seconds takes a whole number of seconds from 1 to 86400, not {value:?}; {USAGE}")
                    })?;
            }
            flag if flag.starts_with('-') => bail!("unknown option {flag}; {USAGE}"),
            target => opts.targets.push(target.to_owned()),
        }
    }
    Ok(opts)
}

/// One fuzz target: the crate that owns it and its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Target {
    /// `crates/<crate>`.
    crate_dir: PathBuf,
    /// `crates/<crate>/fuzz`.
    fuzz_dir: PathBuf,
    name: String,
}

impl Target {
    fn crate_name(&self) -> String {
        self.crate_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Runs `fuzz [--seconds N] [TARGET...]`.
pub fn run(args: &[&str]) -> Result<ExitCode> {
    let opts = parse_args(args)?;
    ensure_cargo_fuzz()?;
    let all = discover()?;
    let targets = select(&all, &opts.targets)?;

    let mut fuzz_dirs: Vec<&Path> = targets.iter().map(|t| t.fuzz_dir.as_path()).collect();
    fuzz_dirs.dedup();
    for dir in fuzz_dirs {
        let names: Vec<&str> = targets
            .iter()
            .filter(|t| t.fuzz_dir == dir)
            .map(|t| t.name.as_str())
            .collect();
        let first = targets
            .iter()
            .find(|t| t.fuzz_dir == dir)
            .context("a fuzz directory without targets")?;
        ui::step(&format!(
            "building {} fuzz target(s) of {} (release, debug assertions, AddressSanitizer; the first build takes a few minutes)",
            names.len(),
            first.crate_name()
        ));
        let started = Instant::now();
        for name in &names {
            let mut cmd = cargo_fuzz(first);
            cmd.args(["build", name]);
            ui::run_checked(
                &mut cmd,
                "the fuzz target does not build: fix the errors above (run the same command in the crate's directory to iterate)",
            )?;
        }
        ui::info(&format!("built in {}", ui::secs(started.elapsed())));
    }

    let mut results = Vec::new();
    for target in &targets {
        results.push(fuzz_one(target, opts.seconds)?);
    }
    report(&results);
    let crashed: Vec<&Outcome> = results.iter().filter(|r| r.failure.is_some()).collect();
    if crashed.is_empty() {
        println!();
        ui::step(&format!(
            "no crash in {} target(s) × {} s",
            results.len(),
            opts.seconds
        ));
        return Ok(ExitCode::SUCCESS);
    }
    println!();
    for r in &crashed {
        explain_failure(r);
    }
    ui::error(&format!(
        "{} fuzz target(s) failed: {}",
        crashed.len(),
        crashed
            .iter()
            .map(|r| r.target.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(ExitCode::FAILURE)
}

/// `cargo fuzz` for a target's crate, with `RUSTC_BOOTSTRAP=1`.
fn cargo_fuzz(target: &Target) -> Command {
    let mut cmd = crate::cargo();
    cmd.current_dir(&target.crate_dir)
        .arg("fuzz")
        .env("RUSTC_BOOTSTRAP", "1");
    // Subcommand flags go after the subcommand; callers add it first.
    cmd
}

/// Installs cargo-fuzz unless `cargo fuzz` already answers.
fn ensure_cargo_fuzz() -> Result<()> {
    if ui::succeeds(crate::cargo().args(["fuzz", "--version"])) {
        return Ok(());
    }
    ui::step(
        "installing cargo-fuzz (cargo install cargo-fuzz --locked; a few minutes, once per machine)",
    );
    let mut cmd = crate::cargo();
    cmd.args(["install", "cargo-fuzz", "--locked"]);
    ui::run_checked(
        &mut cmd,
        "could not install cargo-fuzz: check that crates.io is reachable, or install it yourself with `cargo install cargo-fuzz --locked`",
    )?;
    ensure!(
        ui::succeeds(crate::cargo().args(["fuzz", "--version"])),
        "cargo-fuzz was installed but `cargo fuzz --version` fails: is ~/.cargo/bin on PATH?"
    );
    Ok(())
}

/// Every target of every fuzz crate under `crates/`.
fn discover() -> Result<Vec<Target>> {
    let crates = crate::workspace_root().join("crates");
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(&crates).with_context(|| format!("reading {}", crates.display()))?;
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for crate_dir in dirs {
        let fuzz_dir = crate_dir.join("fuzz");
        let manifest = fuzz_dir.join("Cargo.toml");
        let is_fuzz = std::fs::read_to_string(&manifest)
            .is_ok_and(|text| text.lines().any(|l| l.trim() == "cargo-fuzz = true"));
        if !is_fuzz {
            continue;
        }
        let probe = Target {
            crate_dir: crate_dir.clone(),
            fuzz_dir: fuzz_dir.clone(),
            name: String::new(),
        };
        let out = cargo_fuzz(&probe)
            .args(["list", "--fuzz-dir"])
            .arg(&fuzz_dir)
            .stderr(Stdio::inherit())
            .output()
            .context("could not run `cargo fuzz list`")?;
        ensure!(
            out.status.success(),
            "`cargo fuzz list` failed in {} (see above)",
            crate_dir.display()
        );
        for name in String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            found.push(Target {
                crate_dir: crate_dir.clone(),
                fuzz_dir: fuzz_dir.clone(),
                name: name.to_owned(),
            });
        }
    }
    ensure!(
        !found.is_empty(),
        "no fuzz targets found (a fuzz crate is crates/<crate>/fuzz with `cargo-fuzz = true` in its Cargo.toml)"
    );
    Ok(found)
}

/// The targets asked for (`name` or `crate/name`), or all of them.
fn select(all: &[Target], wanted: &[String]) -> Result<Vec<Target>> {
    if wanted.is_empty() {
        return Ok(all.to_vec());
    }
    let mut chosen = BTreeSet::new();
    for w in wanted {
        let matches: Vec<&Target> = all
            .iter()
            .filter(|t| *w == t.name || *w == format!("{}/{}", t.crate_name(), t.name))
            .collect();
        match matches.as_slice() {
            [one] => {
                chosen.insert((*one).clone());
            }
            [] => bail!(
                "no fuzz target {w:?}; the targets are: {}",
                all.iter()
                    .map(|t| format!("{}/{}", t.crate_name(), t.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => bail!("{w:?} names a target in several crates: write it as <crate>/{w}"),
        }
    }
    Ok(chosen.into_iter().collect())
}

/// libFuzzer's figures for one run.
#[derive(Debug, Default, Clone, PartialEq)]
struct Stats {
    /// Coverage (`cov:`) once the corpus was loaded, and at the end.
    cov_start: Option<u64>,
    cov_end: Option<u64>,
    /// Corpus units once loaded, and at the end.
    corpus_start: Option<u64>,
    corpus_end: Option<u64>,
    /// Executions so far (the `#N` of the last status line).
    runs: Option<u64>,
    /// From `-print_final_stats=1`.
    final_runs: Option<u64>,
    exec_per_sec: Option<u64>,
    new_units: Option<u64>,
    /// `Done 123 runs in 61 second(s)`: how long libFuzzer ran.
    fuzz_seconds: Option<u64>,
    /// `Test unit written to <path>`: the input that failed.
    artifact: Option<PathBuf>,
    /// The first line saying what went wrong (panic, sanitizer, timeout),
    /// with a panic's message (the line after it).
    problem: Option<String>,
    /// The problem was a panic whose message is on the next line.
    panic_message_next: bool,
}

impl Stats {
    /// Takes in one line of libFuzzer's output.
    fn line(&mut self, line: &str) {
        let line = line.trim_end();
        if std::mem::take(&mut self.panic_message_next)
            && let Some(problem) = &mut self.problem
        {
            problem.push('\n');
            problem.push_str(line);
            return;
        }
        if let Some(rest) = line.strip_prefix('#') {
            // `#4096\tpulse  cov: 1423 ft: 5234 corp: 512/88Kb lim: … exec/s: 87381 rss: 64Mb`
            let runs = rest.split_whitespace().next().and_then(|n| n.parse().ok());
            let field = |name: &str| -> Option<u64> {
                let mut words = rest.split_whitespace();
                words.find(|w| *w == name)?;
                words.next()?.split('/').next()?.parse().ok()
            };
            if let (Some(runs), Some(cov)) = (runs, field("cov:")) {
                self.runs = Some(runs);
                self.cov_end = Some(cov);
                self.corpus_end = field("corp:").or(self.corpus_end);
                if rest.contains("INITED") {
                    self.cov_start = Some(cov);
                    self.corpus_start = self.corpus_end;
                }
            }
        } else if let Some(value) = line.strip_prefix("stat::") {
            let (key, n) = value.split_once(':').unwrap_or((value, ""));
            let n = n.trim().parse().ok();
            match key {
                "number_of_executed_units" => self.final_runs = n,
                "average_exec_per_sec" => self.exec_per_sec = n,
                "new_units_added" => self.new_units = n,
                _ => {}
            }
        } else if let Some(done) = line.strip_prefix("Done ") {
            // `Done 123456 runs in 61 second(s)`
            let mut words = done.split_whitespace();
            self.final_runs = words
                .next()
                .and_then(|n| n.parse().ok())
                .or(self.final_runs);
            self.fuzz_seconds = words.nth(2).and_then(|n| n.parse().ok());
        } else if let Some(i) = line.find("Test unit written to ") {
            let path = line[i + "Test unit written to ".len()..].trim();
            self.artifact = Some(PathBuf::from(path));
        } else if self.problem.is_none() {
            let problem = line.contains("panicked at")
                || line.starts_with("==") && line.contains("ERROR:")
                || line.contains("ALARM: working on the last Unit for")
                || line.contains("out-of-memory (")
                || line.starts_with("SUMMARY: libFuzzer");
            if problem {
                self.problem = Some(line.to_owned());
                self.panic_message_next = line.contains("panicked at");
            }
        }
    }

    fn runs(&self) -> Option<u64> {
        self.final_runs.or(self.runs)
    }
}

/// How one target's run went.
struct Outcome {
    target: Target,
    stats: Stats,
    /// Wall time, build included; libFuzzer's own time is in `stats`.
    seconds: f64,
    log: PathBuf,
    /// Why it failed, when it did.
    failure: Option<String>,
    /// The regression copy of the failing input.
    regression: Option<PathBuf>,
}

/// Seeds into the corpus, then libFuzzer for `seconds`.
fn fuzz_one(target: &Target, seconds: u64) -> Result<Outcome> {
    let name = &target.name;
    let corpus = target.fuzz_dir.join("corpus").join(name);
    let seeds = target.fuzz_dir.join("seeds").join(name);
    let logs = target.fuzz_dir.join("logs");
    std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let copied = copy_new_files(&seeds, &corpus)?;
    let before = count_files(&corpus);
    ui::step(&format!("fuzzing {name} for {seconds} s"));
    ui::info(&format!(
        "corpus {} ({before} inputs, {copied} new seed(s) from {})",
        rel(&corpus),
        rel(&seeds)
    ));

    let mut cmd = cargo_fuzz(target);
    cmd.args(["run", name.as_str()])
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={UNIT_TIMEOUT_SECS}"))
        .arg("-print_final_stats=1");
    let dict = target.fuzz_dir.join("dicts").join(format!("{name}.dict"));
    if dict.is_file() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    let log_path = logs.join(format!("{name}.log"));
    let mut log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not run `{}`", ui::show(&cmd)))?;

    // libFuzzer writes to stderr, cargo and the target's panics too; read both
    // pipes on threads and take the lines in here.
    let (tx, rx) = mpsc::channel::<String>();
    let mut readers = Vec::new();
    let pipes: [Option<Box<dyn std::io::Read + Send>>; 2] = [
        child.stdout.take().map(|p| Box::new(p) as _),
        child.stderr.take().map(|p| Box::new(p) as _),
    ];
    for pipe in pipes.into_iter().flatten() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut stats = Stats::default();
    let mut next_progress = PROGRESS_EVERY;
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(line) => {
                let _ = writeln!(log, "{line}");
                stats.line(&line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if started.elapsed() >= next_progress {
            next_progress += PROGRESS_EVERY;
            ui::info(&format!(
                "{:>4} s: {} runs, coverage {}, corpus {}",
                started.elapsed().as_secs(),
                thousands(stats.runs),
                opt(stats.cov_end),
                opt(stats.corpus_end),
            ));
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait().context("waiting for cargo fuzz")?;
    let elapsed = started.elapsed().as_secs_f64();

    let failure = match (&stats.artifact, status.success()) {
        (None, true) => None,
        (Some(path), _) => Some(kind_of(path)),
        (None, false) if stats.runs.is_none() => Some(format!(
            "cargo fuzz exited with {status} before fuzzing started (see {})",
            rel(&log_path)
        )),
        (None, false) => Some(format!("libFuzzer exited with {status}")),
    };
    let mut regression = None;
    if let (Some(_), Some(artifact)) = (&failure, &stats.artifact) {
        let artifact = if artifact.is_absolute() {
            artifact.clone()
        } else {
            target.crate_dir.join(artifact)
        };
        let dir = target
            .crate_dir
            .join("tests")
            .join("fuzz-regressions")
            .join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let file = dir.join(
            artifact
                .file_name()
                .context("an artifact without a file name")?,
        );
        std::fs::copy(&artifact, &file)
            .with_context(|| format!("copying {} to {}", artifact.display(), file.display()))?;
        stats.artifact = Some(artifact);
        regression = Some(file);
    }
    let outcome = Outcome {
        target: target.clone(),
        seconds: elapsed,
        log: log_path,
        failure,
        regression,
        stats,
    };
    let after = count_files(&corpus);
    ui::info(&format!(
        "{} runs in {:.0} s ({} exec/s), coverage {} -> {}, corpus {before} -> {after} inputs: {}",
        thousands(outcome.stats.runs()),
        outcome
            .stats
            .fuzz_seconds
            .map_or(outcome.seconds, |n| n as f64),
        thousands(outcome.stats.exec_per_sec),
        opt(outcome.stats.cov_start),
        opt(outcome.stats.cov_end),
        match &outcome.failure {
            None => "no crash".to_owned(),
            Some(f) => ui::paint("1;31", &format!("FAILED ({f})")),
        }
    ));
    Ok(outcome)
}

/// `crash`, `timeout`, `oom`, `leak`… from the artifact's file name.
fn kind_of(artifact: &Path) -> String {
    let name = artifact
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.split_once('-') {
        Some((kind, _)) => kind.to_owned(),
        None => "crash".to_owned(),
    }
}

/// The summary table, one row per target.
fn report(results: &[Outcome]) {
    println!();
    ui::step("fuzzing summary");
    println!(
        "    {:<24} {:>6} {:>13} {:>9} {:>15} {:>15} {:>6}",
        "target", "fuzz s", "runs", "exec/s", "coverage", "corpus", "crash"
    );
    for r in results {
        let s = &r.stats;
        let coverage = format!("{} -> {}", opt(s.cov_start), opt(s.cov_end));
        let corpus = format!("{} -> {}", opt(s.corpus_start), opt(s.corpus_end));
        let crash = match &r.failure {
            None => "no".to_owned(),
            Some(kind) => ui::paint("1;31", &format!("YES ({kind})")),
        };
        println!(
            "    {:<24} {:>6.0} {:>13} {:>9} {:>15} {:>15} {:>6}",
            format!("{}/{}", r.target.crate_name(), r.target.name),
            s.fuzz_seconds.map_or(r.seconds, |n| n as f64),
            thousands(s.runs()),
            thousands(s.exec_per_sec),
            coverage,
            corpus,
            crash
        );
    }
    ui::info(
        "coverage: libFuzzer's `cov` (edges reached) after loading the corpus -> at the end; corpus: inputs kept (new ones are added to fuzz/corpus/<target>/)",
    );
}

/// What failed, where the input is and what to do next.
fn explain_failure(r: &Outcome) {
    let name = &r.target.name;
    let crate_name = r.target.crate_name();
    let crate_dir = rel(&r.target.crate_dir);
    ui::step(&format!(
        "{crate_name}/{name}: {}",
        r.failure.as_deref().unwrap_or("failed")
    ));
    if let Some(problem) = &r.stats.problem {
        for line in problem.lines() {
            // A panic message can quote the whole input; keep it to a screenful.
            let shown: String = line.chars().take(400).collect();
            ui::info(&shown);
        }
    }
    ui::info(&format!("full output: {}", rel(&r.log)));
    match (&r.stats.artifact, &r.regression) {
        (Some(artifact), Some(regression)) => {
            let artifact_in_crate = artifact
                .strip_prefix(&r.target.crate_dir)
                .unwrap_or(artifact);
            ui::info(&format!("input: {}", rel(artifact)));
            ui::info(&format!(
                "filed as a regression input: {} (the crate's tests run it through the same check; they fail until the parser is fixed)",
                rel(regression)
            ));
            ui::info(&format!(
                "reproduce: cd {crate_dir} && RUSTC_BOOTSTRAP=1 cargo fuzz run {name} {}",
                artifact_in_crate.display()
            ));
            ui::info(&format!(
                "shrink it: cd {crate_dir} && RUSTC_BOOTSTRAP=1 cargo fuzz tmin {name} {}",
                artifact_in_crate.display()
            ));
            ui::info(&format!(
                "then fix the parser so the input is an error with its location, and check with `cargo test -p {crate_name} --test fuzz_regressions`"
            ));
        }
        _ => ui::info("no failing input was written: read the log above"),
    }
}

/// Copies the files of `from` that `to` does not have; returns how many.
fn copy_new_files(from: &Path, to: &Path) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(from) else {
        ui::warn(&format!(
            "no seeds in {} (the corpus starts empty)",
            rel(from)
        ));
        return Ok(0);
    };
    let mut copied = 0;
    for path in entries.flatten().map(|e| e.path()).filter(|p| p.is_file()) {
        let Some(file_name) = path.file_name() else {
            continue;
        };
        let dest = to.join(file_name);
        if !dest.exists() {
            std::fs::copy(&path, &dest)
                .with_context(|| format!("copying {} to {}", path.display(), dest.display()))?;
            copied += 1;
        }
    }
    Ok(copied)
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| rd.flatten().count())
}

/// A path relative to the workspace root, for messages.
fn rel(path: &Path) -> String {
    let root = crate::workspace_root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn opt(n: Option<u64>) -> String {
    n.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

/// `1234567` as `1,234,567`; `?` when unknown.
fn thousands(n: Option<u64>) -> String {
    let Some(n) = n else {
        return "?".to_owned();
    };
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_take_seconds_and_target_names() {
        assert_eq!(
            parse_args(&[]).ok(),
            Some(Options {
                seconds: 60,
                targets: vec![]
            })
        );
        assert_eq!(
            parse_args(&["--seconds", "5", "codec_x12", "hub-transform/mapping"]).ok(),
            Some(Options {
                seconds: 5,
                targets: vec!["codec_x12".into(), "hub-transform/mapping".into()]
            })
        );
        assert_eq!(
            parse_args(&["--seconds=7"]).ok().map(|o| o.seconds),
            Some(7)
        );
        for bad in [
            &["--seconds"][..],
            &["--seconds", "0"],
            &["--seconds", "x"],
            &["--jobs", "2"],
        ] {
            assert!(parse_args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn libfuzzer_lines_give_runs_coverage_corpus_and_the_artifact() {
        let mut s = Stats::default();
        for line in [
            "INFO: Seed: 1234",
            "#2\tINITED cov: 10 ft: 10 corp: 1/1b exec/s: 0 rss: 30Mb",
            "#6\tINITED cov: 812 ft: 1903 corp: 14/6180b exec/s: 0 rss: 41Mb",
            "#1024\tNEW    cov: 830 ft: 1950 corp: 15/6300b lim: 4096 exec/s: 0 rss: 42Mb L: 12/4096 MS: 1 ChangeByte-",
            "#262144\tpulse  cov: 901 ft: 2400 corp: 80/20Kb lim: 4096 exec/s: 87381 rss: 64Mb",
            "thread '<unnamed>' panicked at src/codec/xml.rs:10:5:",
            "XML: the tree read could not be written",
            "==12==ERROR: libFuzzer: deadly signal",
            "artifact_prefix='/w/fuzz/artifacts/codec_xml/'; Test unit written to /w/fuzz/artifacts/codec_xml/crash-0a1b",
            "Done 299999 runs in 61 second(s)",
            "stat::number_of_executed_units: 300000",
            "stat::average_exec_per_sec:     5000",
            "stat::new_units_added:          66",
        ] {
            s.line(line);
        }
        assert_eq!((s.cov_start, s.cov_end), (Some(812), Some(901)));
        assert_eq!((s.corpus_start, s.corpus_end), (Some(14), Some(80)));
        assert_eq!(s.runs, Some(262_144));
        assert_eq!(s.runs(), Some(300_000));
        assert_eq!(s.exec_per_sec, Some(5000));
        assert_eq!(s.new_units, Some(66));
        assert_eq!(s.fuzz_seconds, Some(61));
        assert_eq!(
            s.artifact.as_deref(),
            Some(Path::new("/w/fuzz/artifacts/codec_xml/crash-0a1b"))
        );
        assert_eq!(
            s.problem.as_deref(),
            Some(
                "thread '<unnamed>' panicked at src/codec/xml.rs:10:5:\nXML: the tree read could not be written"
            )
        );
        assert_eq!(
            kind_of(s.artifact.as_deref().unwrap_or(Path::new(""))),
            "crash"
        );
        assert_eq!(kind_of(Path::new("a/timeout-99")), "timeout");
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(Some(0)), "0");
        assert_eq!(thousands(Some(999)), "999");
        assert_eq!(thousands(Some(1000)), "1,000");
        assert_eq!(thousands(Some(12_345_678)), "12,345,678");
        assert_eq!(thousands(None), "?");
    }
}
