//! Mapping rules (`mapping_rules` of a transformation template): a JSON rule
//! set that turns one tree into another. Compile once with [`compile`], run
//! on many inputs with [`run`] (with a trace for the preview API) or
//! [`run_with`] (without one, for bulk work). The language is documented in
//! `docs/transformations.md`.
//!
//! ```
//! use serde_json::json;
//! let program = hub_transform::mapping::compile(&json!({"rules": [
//!     {"target": "external_id", "source": "Id"},
//!     {"target": "amount", "source": "Amount", "type": "number"},
//!     {"target": "name", "expr": "upper(trim(Name))"}
//! ]})).unwrap();
//! let out = hub_transform::mapping::run(&program, &json!({"Id": "006A", "Amount": "12.5", "Name": " acme "})).unwrap();
//! assert_eq!(out.value, json!({"external_id": "006A", "amount": 12.5, "name": "ACME"}));
//! ```

mod compile;
mod expr;
mod funcs;
mod path;
mod run;

pub use compile::{MAX_EACH_DEPTH, MAX_RULES, compile, compile_with};
pub use expr::{MAX_EXPR_CHARS, MAX_EXPR_DEPTH};
pub use funcs::{MAX_PAD_WIDTH, MAX_STRING_BYTES};
pub use path::{MAX_PATH_SEGMENTS, MAX_TARGET_INDEX};
pub use run::{RunOptions, check_sources, run, run_partial, run_with};

use crate::error::Limits;
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::sync::Arc;

/// A compiled rule set, ready to run on any number of inputs. Cheap to
/// share between threads.
#[derive(Debug, Clone)]
pub struct Program {
    pub(crate) rules: Vec<compile::Rule>,
    pub(crate) limits: Limits,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Output {
    /// The output tree.
    pub value: Value,
    /// One step per rule applied (or skipped), in order; empty when run
    /// without a trace.
    pub trace: Vec<TraceStep>,
    /// Things worth knowing that did not stop the run (a source path absent
    /// from the input, …), at most 100.
    pub warnings: Vec<crate::TransformError>,
}

fn ser_arc<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

/// What one rule read and wrote, for the preview API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceStep {
    /// The rule (`rules[3]`, `rules[5].each[0]`).
    #[serde(serialize_with = "ser_arc")]
    pub rule: Arc<str>,
    /// Inside `each`: the input item the rule ran on (`$.Line[2]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The source paths the rule read and what they held (`null` when
    /// absent).
    pub read: Vec<SourceRead>,
    /// The target path written (`lines[2].amount`).
    pub target: String,
    /// The value written, `None` when the rule was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrote: Option<Value>,
    /// Why the rule wrote nothing: `when is false` or `source absent`. (A
    /// rule that fails fails the run, which then has no trace.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<&'static str>,
}

/// One source path a rule read, and its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceRead {
    /// The path as written in the rule.
    pub path: String,
    /// Its value in the input (`null` when absent; an array for a wildcard).
    pub value: Value,
}

/// Every source path the program reads (rule sources, expressions and
/// conditions), nested `each` paths joined to their parent's
/// (`Line[*].Amount`), in rule order, without duplicates.
pub fn source_paths(program: &Program) -> Vec<String> {
    let mut out = Vec::new();
    compile::source_paths(&program.rules, "", &mut out);
    out
}

/// The declared output type (`type` of a rule: number, integer, boolean,
/// string) of each target path that has one (`lines[].amount` inside
/// `each`), for checking against an output schema.
pub fn target_types(program: &Program) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    compile::target_types(&program.rules, "", &mut out);
    out
}
