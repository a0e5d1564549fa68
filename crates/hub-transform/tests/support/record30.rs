//! The 30-field record of the transformation benchmark and its rules: five
//! each of strings, numbers, trims, Salesforce dates, value maps and
//! expressions. Shared by `examples/bench.rs` (`cargo xtask bench
//! transform`) and `tests/mapping.rs`, so the test checks what the
//! benchmark measures.

use serde_json::{Value, json};

/// The record and its rule set.
pub fn record_and_rules() -> (Value, Value) {
    let mut rules = Vec::new();
    let mut record = serde_json::Map::new();
    for i in 0..30 {
        let (value, rule) = match i % 6 {
            0 => (
                json!(format!("value {i}")),
                json!({"target": format!("out.s{i}"), "source": format!("f{i}")}),
            ),
            1 => (
                json!(i as f64 * 1.5),
                json!({"target": format!("out.n{i}"), "source": format!("f{i}"), "type": "number"}),
            ),
            2 => (
                json!(format!(" padded {i} ")),
                json!({"target": format!("t{i}"), "source": format!("f{i}"), "steps": ["trim", "upper"]}),
            ),
            3 => (
                json!("2024-01-15T10:30:00.000+0000"),
                json!({"target": format!("d{i}"), "source": format!("f{i}"), "steps": [{"date": {"to": "date"}}]}),
            ),
            4 => (
                json!("X1"),
                json!({"target": format!("m{i}"), "source": format!("f{i}"), "steps": [{"map": {"values": {"X1": "delivered", "AF": "picked_up"}, "default": "unknown"}}]}),
            ),
            _ => (
                json!(i),
                json!({"target": format!("e{i}"), "expr": format!("f{i} * 2 + 1")}),
            ),
        };
        record.insert(format!("f{i}"), value);
        rules.push(rule);
    }
    (Value::Object(record), json!({ "rules": rules }))
}
