//! What each fuzz target checks, one function per target, shared by the
//! `cargo fuzz` binaries (`fuzz_targets/*.rs`) and the regression tests of
//! hub-transform (`tests/fuzz_regressions.rs` includes this file), so an input
//! that once crashed a target runs through exactly the same checks in the
//! normal test suite.
//!
//! Every check reads untrusted bytes as the services do (with
//! `Limits::default()`), and panics only when an invariant breaks: a parser
//! that panics, a malformed input reported without its location, or a tree
//! that does not survive a write and a read back. An input the parser refuses
//! with an error is a pass.
//!
//! Option sets are chosen from the first bytes of the input, so the fuzzer
//! explores them along with the text.

#![forbid(unsafe_code)]

use hub_transform::TransformError;
use hub_transform::codec::csv::{Column, ColumnType, CsvOptions, Quoting};
use hub_transform::codec::json::JsonOptions;
use hub_transform::codec::x12::{self, Control};
use hub_transform::codec::xml::XmlOptions;
use hub_transform::codec::{self, Format, FormatOptions};
use hub_transform::error::Limits;
use hub_transform::mapping::{self, RunOptions};
use hub_transform::validate as schema;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A target's check: panics when an invariant breaks on `data`.
pub type Check = fn(&[u8]);

/// The targets by name, as `cargo fuzz list` shows them and as the
/// regression inputs are filed (`tests/fuzz-regressions/<name>/`).
pub const TARGETS: &[(&str, Check)] = &[
    ("codec_json", codec_json),
    ("codec_xml", codec_xml),
    ("codec_csv", codec_csv),
    ("codec_x12", codec_x12),
    ("mapping", mapping),
    ("expression", expression),
    ("validate", validate),
];

/// The input as text, as a request body would reach the codecs: invalid
/// UTF-8 becomes U+FFFD (the HTTP layer only hands over strings).
fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Takes one byte off the front of the input to choose an option (0 when the
/// input is empty).
fn take(data: &mut &[u8]) -> u8 {
    match data.split_first() {
        Some((b, rest)) => {
            *data = rest;
            *b
        }
        None => 0,
    }
}

fn bit(b: u8, n: u8) -> bool {
    b & (1 << n) != 0
}

/// A malformed input must be reported with where it is; limits and options
/// errors may have none.
fn assert_located(e: &TransformError, input: &str) {
    let located =
        e.location.line.is_some() || e.location.segment.is_some() || e.location.path.is_some();
    let needs_location = matches!(
        e.code,
        "invalid_json" | "invalid_xml" | "invalid_csv" | "invalid_x12" | "input_too_deep"
    );
    assert!(
        located || !needs_location,
        "{} without a location: {e} (input {input:?})",
        e.code
    );
    if let (Some(line), Some(column)) = (e.location.line, e.location.column) {
        let lines = input.split('\n').count();
        assert!(
            line >= 1 && line <= lines && column >= 1,
            "{} at line {line} column {column}, outside the input of {lines} lines: {e}",
            e.code
        );
    }
}

/// Reads, asserting an error has its location.
fn read(format: Format, input: &str, options: &FormatOptions) -> Option<Value> {
    match codec::read(format, input, options, Limits::default()) {
        Ok(tree) => Some(tree),
        Err(e) => {
            assert_located(&e, input);
            None
        }
    }
}

/// Writes `tree` and reads it back with the same options; both must succeed
/// and give `tree` back.
fn round_trip(format: Format, tree: &Value, options: &FormatOptions, what: &str) {
    let written = codec::write(format, tree, options)
        .unwrap_or_else(|e| panic!("{what}: the tree read could not be written: {e}\n{tree}"));
    let back = codec::read(format, &written, options, Limits::default())
        .unwrap_or_else(|e| panic!("{what}: what was written does not read: {e}\n{written:?}"));
    assert_eq!(
        &back, tree,
        "{what}: the tree changed through a write and a read; written as {written:?}"
    );
}

/// `codec_json`: any text read as JSON; what reads writes back (compact and
/// pretty) and reads to the same tree.
pub fn codec_json(data: &[u8]) {
    let input = text(data);
    let compact = FormatOptions::Json(JsonOptions { pretty: false });
    let Some(tree) = read(Format::Json, &input, &compact) else {
        return;
    };
    round_trip(Format::Json, &tree, &compact, "JSON compact");
    let pretty = FormatOptions::Json(JsonOptions { pretty: true });
    round_trip(Format::Json, &tree, &pretty, "JSON pretty");
}

/// Element names the XML option sets mention (the seeds use them).
const XML_NAMES: [&str; 4] = ["Stop", "item", "Load/Stops/Stop", "tms:Ref"];

/// `codec_xml`: the first byte chooses the options (text trimming,
/// always-array paths, pretty output, the declaration, a child order, keys
/// written as attributes, a root name); what reads writes back with the same
/// options and reads to the same tree. Writing with `attributes` or `root`
/// changes the shape on purpose, so those are only checked not to panic.
pub fn codec_xml(data: &[u8]) {
    let mut data = data;
    let b = take(&mut data);
    let input = text(data);
    let pick = |n: u8| XML_NAMES[usize::from(n) % XML_NAMES.len()].to_owned();
    let mut order = BTreeMap::new();
    if bit(b, 3) {
        order.insert(pick(b >> 4), vec![pick(b >> 5), pick(b >> 6)]);
    }
    let options = XmlOptions {
        root: None,
        attributes: Vec::new(),
        always_array: match b & 3 {
            0 => Vec::new(),
            1 => vec![pick(b >> 4)],
            _ => XML_NAMES.iter().map(|s| (*s).to_owned()).collect(),
        },
        order,
        trim_text: !bit(b, 2),
        declaration: !bit(b, 4),
        pretty: bit(b, 5),
    };
    let read_options = FormatOptions::Xml(options.clone());
    let Some(tree) = read(Format::Xml, &input, &read_options) else {
        return;
    };
    round_trip(Format::Xml, &tree, &read_options, "XML");
    // The shape-changing output options: any outcome but a panic.
    let reshaped = XmlOptions {
        attributes: vec![pick(b >> 6), "id".to_owned()],
        root: bit(b, 7).then(|| "Root".to_owned()),
        ..options
    };
    let _ = codec::write(Format::Xml, &tree, &FormatOptions::Xml(reshaped));
}

/// `codec_csv`: the first three bytes choose the delimiter, quote, header,
/// trimming, quoting style, a column list with types (or types by header
/// name) and the date format; what reads writes back with the same options
/// and reads to the same tree (dates are written as ISO, so only with the ISO
/// date format).
pub fn codec_csv(data: &[u8]) {
    let mut data = data;
    let (a, b, c) = (take(&mut data), take(&mut data), take(&mut data));
    let input = text(data);
    let delimiter = match a & 7 {
        0 => ',',
        1 => ';',
        2 => '\t',
        3 => '|',
        4 => ' ',
        // Any ASCII character: the options allow one that occurs in data.
        _ => char::from(c & 0x7f),
    };
    let quote = if bit(a, 3) { '\'' } else { '"' };
    let kinds = [
        ColumnType::String,
        ColumnType::Integer,
        ColumnType::Number,
        ColumnType::Boolean,
        ColumnType::Date,
    ];
    let kind = |n: u8| kinds[usize::from(n) % kinds.len()];
    let names = ["id", "shipper", "weight", "hazmat", "pickup"];
    let columns = if bit(a, 4) {
        // One to five columns, each typed by two bits of `b` and `c`.
        let count = usize::from(b & 3) + 1 + usize::from(bit(b, 2));
        names
            .iter()
            .take(count)
            .enumerate()
            .map(|(i, name)| {
                let bits = (u16::from(c) << 8 | u16::from(b)) >> (3 + 2 * i);
                match bits & 3 {
                    0 => Column::Name((*name).to_owned()),
                    _ => Column::Typed {
                        name: (*name).to_owned(),
                        kind: kind(u8::try_from(bits & 7).unwrap_or(0)),
                    },
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let types = if bit(a, 5) {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| ((*name).to_owned(), kind(b.wrapping_add(i as u8))))
            .collect()
    } else {
        BTreeMap::new()
    };
    let iso = !bit(c, 7);
    let options = CsvOptions {
        delimiter,
        quote,
        header: !bit(a, 6),
        columns,
        types,
        trim: bit(a, 7),
        date_format: if iso { "%Y-%m-%d" } else { "%d/%m/%Y" }.to_owned(),
        quoting: match b >> 6 {
            0 | 1 => Quoting::Necessary,
            2 => Quoting::Always,
            _ => Quoting::NonNumeric,
        },
    };
    if options.check().is_err() {
        return;
    }
    let options = FormatOptions::Csv(options);
    let Some(tree) = read(Format::Csv, &input, &options) else {
        return;
    };
    if iso {
        round_trip(Format::Csv, &tree, &options, "CSV");
    } else {
        let _ = codec::write(Format::Csv, &tree, &options);
    }
}

/// `codec_x12`: any text parsed as an interchange; what parses writes back,
/// parses to the same tree and writes the same text again; a 997 made for it
/// (dated from its ISA, and at a fixed time) does not panic, and when made it
/// writes and parses back to itself (but for empty elements, which a parsed
/// tree leaves out).
pub fn codec_x12(data: &[u8]) {
    let input = text(data);
    let tree = match x12::parse(&input, &Limits::default()) {
        Ok(tree) => tree,
        Err(e) => {
            assert_located(&e, &input);
            return;
        }
    };
    let written = x12::write(&tree)
        .unwrap_or_else(|e| panic!("X12: the parsed tree could not be written: {e}\n{tree}"));
    let back = x12::parse(&written, &Limits::default())
        .unwrap_or_else(|e| panic!("X12: what was written does not parse: {e}\n{written:?}"));
    assert_eq!(back, tree, "X12: the tree changed; written as {written:?}");
    let again = x12::write(&back).unwrap_or_else(|e| panic!("X12: second write: {e}"));
    assert_eq!(again, written, "X12: writing is not stable");

    let control = Control {
        interchange: 7,
        group: 8,
        set: 9,
    };
    let at = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).and_then(|d| d.and_hms_opt(23, 59, 0));
    let mut acks = vec![x12::ack_997(&tree, control)];
    if let Some(at) = at {
        acks.push(x12::ack_997_at(&tree, control, at));
    }
    for ack in acks.into_iter().flatten() {
        // ack_997 copies the received envelope; one whose elements the
        // writer refuses (ISA07 `Z `, trimmed to `Z`) is an error, not a panic.
        let text = match x12::write(&ack) {
            Ok(text) => text,
            Err(e) => {
                assert_eq!(e.code, "invalid_x12_tree", "997: {e}");
                continue;
            }
        };
        let parsed = x12::parse(&text, &Limits::default())
            .unwrap_or_else(|e| panic!("997: what was written does not parse: {e}\n{text:?}"));
        // A tree made in code may hold empty elements, which the parser
        // leaves out: compare without them.
        assert_eq!(
            parsed,
            without_empty_strings(&ack),
            "997: the tree changed; written as {text:?}"
        );
    }
}

/// `v` without the object members that are empty strings.
fn without_empty_strings(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| v.as_str() != Some(""))
                .map(|(k, v)| (k.clone(), without_empty_strings(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_empty_strings).collect()),
        other => other.clone(),
    }
}

/// A small input with the shapes rules reach for: strings, numbers as text,
/// dates, arrays of records, nesting, nulls.
fn fixed_input() -> Value {
    json!({
        "Id": "006A", "Amount": "12.5", "Qty": 3, "Name": " acme ", "Flag": true, "None": null,
        "Created": "2024-01-15T10:30:00.000+0000", "Xero": "/Date(1518685950940+0000)/",
        "Day": "2024-03-31", "Tags": ["a", "b", ""],
        "Lines": [{"Sku": "A-1", "Qty": 2, "Price": "3.10"}, {"Sku": null, "Qty": "x"}, {}],
        "Nested": {"a": {"b": [1, 2.5, -3]}, "Time Series (Daily)": {"2024-01-02": {"4. close": "185.5"}}}
    })
}

/// Runs a compiled program on `input` with and without a trace: no panic,
/// the same outcome both ways, at most 100 warnings, and the introspection
/// functions answer.
fn run_program(program: &mapping::Program, input: &Value) {
    let traced = mapping::run(program, input);
    let plain = mapping::run_with(program, input, RunOptions { trace: false });
    match (&traced, &plain) {
        (Ok(t), Ok(p)) => {
            assert_eq!(t.value, p.value, "the trace changed the output");
            assert!(t.warnings.len() <= 100 && p.warnings.len() <= 100);
        }
        (Err(t), Err(p)) => {
            assert!(!t.is_empty() && t.len() <= 100, "{} errors", t.len());
            assert_eq!(t, p, "the trace changed the errors");
        }
        _ => panic!("with a trace {traced:?}, without {plain:?}"),
    }
    let _ = mapping::check_sources(program, input);
}

/// `mapping`: the input is a rule set (JSON), optionally followed by a NUL
/// byte and an input document (JSON, or else taken as one string). A rule
/// set that compiles runs on a fixed input and on that document.
pub fn mapping(data: &[u8]) {
    let all = text(data);
    let (rules_text, doc_text) = all.split_once('\0').unwrap_or((&all, ""));
    let Ok(rules) = serde_json::from_str::<Value>(rules_text) else {
        return;
    };
    let program = match mapping::compile(&rules) {
        Ok(p) => p,
        Err(errors) => {
            assert!(!errors.is_empty(), "a failed compile must say why");
            return;
        }
    };
    let _ = mapping::source_paths(&program);
    let _ = mapping::target_types(&program);
    run_program(&program, &fixed_input());
    let doc = codec::json::read(doc_text, &JsonOptions::default(), Limits::default())
        .unwrap_or_else(|_| Value::String(doc_text.to_owned()));
    run_program(&program, &doc);
}

/// `expression`: the input is an expression, used as a rule's `expr`, as a
/// `when` condition and as an `each` filter (`where`). A parse error has a
/// column inside the expression; what parses runs on a fixed input.
pub fn expression(data: &[u8]) {
    let expr = text(data);
    let chars = expr.chars().count();
    let rule_sets = [
        json!([{"target": "out", "expr": expr}]),
        json!([{"target": "out", "value": 1, "when": expr}]),
        json!([{"target": "lines", "source": "Lines", "where": expr,
                "each": [{"target": "v", "expr": expr}]}]),
    ];
    let input = fixed_input();
    for rules in rule_sets {
        match mapping::compile(&json!({ "rules": rules })) {
            Ok(program) => run_program(&program, &input),
            Err(errors) => {
                for e in &errors {
                    assert!(
                        matches!(e.code, "invalid_expression" | "unknown_function"),
                        "unexpected error code: {e}"
                    );
                    if let Some(col) = e.location.column {
                        assert!(
                            col >= 1 && col <= chars + 1,
                            "column {col} outside the {chars}-character expression: {e}"
                        );
                    }
                }
            }
        }
    }
}

/// `validate`: the input is a JSON Schema (a template's `validation_rules`),
/// optionally followed by a NUL byte and a document (JSON, or else taken as
/// one string). The schema is checked against that document and the fixed
/// input: a schema that does not compile is one `invalid_schema` error, and
/// at most 100 problems are reported, each at its path.
pub fn validate(data: &[u8]) {
    let all = text(data);
    let (schema_text, doc_text) = all.split_once('\0').unwrap_or((&all, ""));
    let Ok(schema) = serde_json::from_str::<Value>(schema_text) else {
        return;
    };
    let doc = codec::json::read(doc_text, &JsonOptions::default(), Limits::default())
        .unwrap_or_else(|_| Value::String(doc_text.to_owned()));
    for instance in [doc, fixed_input()] {
        let problems = schema::check(&schema, &instance);
        assert!(problems.len() <= 100, "{} problems", problems.len());
        for p in &problems {
            assert!(
                matches!(p.code, "invalid_schema" | "schema_violation"),
                "unexpected code: {p}"
            );
            assert!(p.location.path.is_some(), "a problem without a path: {p}");
            if p.code == "invalid_schema" {
                assert_eq!(problems.len(), 1, "invalid_schema comes alone");
            }
        }
    }
}
