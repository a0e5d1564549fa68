//! The transformation benchmark (`cargo xtask bench transform` runs it in
//! release): one core, the allocator the services use (mimalloc).
//!
//! - JSON → JSON mapping of a 30-field record (copies, numbers, trim +
//!   case, dates, value maps, expressions), without the trace;
//! - CSV → tree of a file of loads (10 typed columns);
//! - X12 204 parse (the load tender vector) and 990 generation from it.
//!
//! Prints records/s and MB/s and a verdict against the targets:
//! ≥ 200,000 JSON records/s per core, X12 parse ≥ 50 MB/s. Exit code 1 when
//! a target is missed. `--seconds N` per measurement (default 3).

use hub_transform::codec::{self, Format, FormatOptions, x12};
use hub_transform::error::Limits;
use hub_transform::mapping::{RunOptions, compile, run_with};
use serde_json::json;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[path = "../tests/support/record30.rs"]
mod record30;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TENDER: &str = include_str!("../tests/vectors/x12/204_load_tender.edi");

/// Runs `f` repeatedly for `secs`; returns (iterations, elapsed).
fn measure(secs: Duration, mut f: impl FnMut()) -> (u64, Duration) {
    // Warm up caches and the allocator first.
    for _ in 0..100 {
        f();
    }
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < secs {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    (n, started.elapsed())
}

fn loads_csv(rows: usize) -> String {
    let mut s = String::from(
        "load_id,reference,origin,destination,pickup,weight_lb,miles,rate,hazmat,notes\n",
    );
    for i in 0..rows {
        s.push_str(&format!(
            "L{i},PO-{i},\"Chicago, IL\",\"Dallas, TX\",2024-01-{:02},{},{},{}.50,{},\"fragile, \"\"top load\"\"\"\n",
            i % 28 + 1,
            10_000 + i % 30_000,
            800 + i % 400,
            1_500 + i % 900,
            i % 7 == 0
        ));
    }
    s
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let secs = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3u64);
    let secs = Duration::from_secs(secs.max(1));
    let limits = Limits::default();

    let (record, rules) = record30::record_and_rules();
    let program = compile(&rules).expect("the benchmark's rules compile");
    let (n, took) = measure(secs, || {
        let out = run_with(&program, &record, RunOptions { trace: false }).expect("maps");
        std::hint::black_box(out);
    });
    let mapping = n as f64 / took.as_secs_f64();

    let csv = loads_csv(10_000);
    let mut types = serde_json::Map::new();
    for (k, t) in [
        ("pickup", "date"),
        ("weight_lb", "integer"),
        ("miles", "integer"),
        ("rate", "number"),
        ("hazmat", "boolean"),
    ] {
        types.insert(k.into(), json!(t));
    }
    let csv_options = FormatOptions::from_value(Format::Csv, Some(&json!({ "types": types })))
        .expect("CSV options");
    let (n, took) = measure(secs, || {
        let tree = codec::read(Format::Csv, &csv, &csv_options, limits).expect("CSV reads");
        std::hint::black_box(tree);
    });
    let csv_files = n as f64 / took.as_secs_f64();
    let csv_records = csv_files * 10_000.0;
    let csv_mb = csv_files * csv.len() as f64 / 1e6;

    let (n, took) = measure(secs, || {
        let tree = x12::parse(TENDER, &limits).expect("the 204 parses");
        std::hint::black_box(tree);
    });
    let x12_mb = n as f64 * TENDER.len() as f64 / took.as_secs_f64() / 1e6;
    let tree = x12::parse(TENDER, &limits).expect("the 204 parses");
    let date = chrono::NaiveDate::from_ymd_opt(2023, 11, 22).expect("a date");
    let set = &tree["groups"][0]["sets"][0];
    let at = date.and_hms_opt(12, 0, 0).expect("a time");
    let envelope = x12::Envelope::new(("ZZ", "CARRIERCO"), ("ZZ", "SHIPPERCO"), at);
    let control = x12::Control {
        interchange: 102,
        group: 102,
        set: 1,
    };
    let (n, took) = measure(secs, || {
        let reply = x12::tender_response_990(set, true, date).expect("a 990");
        let doc = x12::interchange(&envelope, control, vec![reply]).expect("an interchange");
        let text = x12::write(&doc).expect("the 990 writes");
        std::hint::black_box(text);
    });
    let x12_990 = n as f64 / took.as_secs_f64();

    println!(
        "transformation benchmark: one core, release, mimalloc, {} s per measurement",
        secs.as_secs()
    );
    println!("  JSON → JSON mapping, 30-field record: {mapping:>12.0} records/s");
    println!(
        "  CSV → tree, 10 typed columns:         {csv_records:>12.0} records/s  ({csv_mb:.1} MB/s)"
    );
    println!(
        "  X12 204 parse ({} bytes):            {:>12.0} interchanges/s ({x12_mb:.1} MB/s)",
        TENDER.len(),
        x12_mb * 1e6 / TENDER.len() as f64
    );
    println!("  X12 990 generation from the 204:     {x12_990:>12.0} documents/s");
    let mapping_ok = mapping >= 200_000.0;
    let x12_ok = x12_mb >= 50.0;
    println!(
        "verdict: JSON mapping {} (target ≥ 200,000 records/s), X12 parse {} (target ≥ 50 MB/s)",
        if mapping_ok { "MET" } else { "NOT MET" },
        if x12_ok { "MET" } else { "NOT MET" }
    );
    if mapping_ok && x12_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
