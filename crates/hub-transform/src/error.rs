//! The one error type of the engine, with where in the input it arose.

use serde::Serialize;
use std::fmt;

/// Where in an input (or a rule set) something went wrong. Only the parts
/// that apply are set: a line and column for JSON, XML and CSV text, a
/// segment (1-based position and id) and element for X12, a JSON path for a
/// tree or a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Location {
    /// 1-based line of the input text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column (characters) of the input text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// X12: 1-based position of the segment in the interchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<usize>,
    /// X12: the segment's id (`N1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<String>,
    /// X12: 1-based element position in the segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub element: Option<usize>,
    /// A path in a tree or rule set (`$.stops[2].city`, `rules[3].source`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(l) = self.line {
            parts.push(format!("line {l}"));
        }
        if let Some(c) = self.column {
            parts.push(format!("column {c}"));
        }
        if let Some(s) = self.segment {
            match &self.segment_id {
                Some(id) => parts.push(format!("segment {s} ({id})")),
                None => parts.push(format!("segment {s}")),
            }
        }
        if let Some(e) = self.element {
            parts.push(format!("element {e}"));
        }
        if let Some(p) = &self.path {
            parts.push(p.clone());
        }
        f.write_str(&parts.join(", "))
    }
}

/// What went wrong, with a stable code, a message for a human and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}{}", if location == &Location::default() { String::new() } else { format!(" (at {location})") })]
pub struct TransformError {
    /// Stable code (`invalid_json`, `invalid_x12`, `unknown_function`, …).
    pub code: &'static str,
    /// What was wrong and, where it helps, what to do.
    pub message: String,
    /// Where.
    pub location: Location,
}

impl TransformError {
    /// An error with no location.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            location: Location::default(),
        }
    }

    /// The same error at `location`.
    pub fn at(mut self, location: Location) -> Self {
        self.location = location;
        self
    }
}

/// Limits on untrusted input, so no input can exhaust memory or the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest input in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of objects and arrays (or XML elements).
    pub max_depth: usize,
}

impl Default for Limits {
    /// 10 MiB, depth 64.
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            max_depth: 64,
        }
    }
}
