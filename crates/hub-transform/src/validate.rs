//! JSON Schema checks of a tree (`validation_rules` of a template), with the
//! path of every problem.

use crate::error::{Location, TransformError};
use serde_json::Value;

/// Most problems reported for one tree.
const MAX_ERRORS: usize = 100;

/// Checks `tree` against the JSON Schema `schema`: one `schema_violation`
/// error per problem, at its JSON path (`$.lines[2].amount`), at most 100. A
/// schema that does not compile is one `invalid_schema` error.
pub fn check(schema: &Value, tree: &Value) -> Vec<TransformError> {
    let validator = match jsonschema::validator_for(schema) {
        Ok(v) => v,
        Err(e) => {
            let at = pointer_to_path(e.instance_path().as_str());
            let loc = Location {
                path: Some(at.replacen('$', "schema", 1)),
                ..Location::default()
            };
            return vec![
                TransformError::new("invalid_schema", format!("the schema is not valid: {e}"))
                    .at(loc),
            ];
        }
    };
    validator
        .iter_errors(tree)
        .take(MAX_ERRORS)
        .map(|e| {
            let at = pointer_to_path(e.instance_path().as_str());
            let msg = format!("{at}: {e}");
            TransformError::new("schema_violation", msg).at(Location {
                path: Some(at),
                ..Location::default()
            })
        })
        .collect()
}

/// A JSON pointer (`/lines/2/amount`) as a path (`$.lines[2].amount`).
pub fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::from("$");
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.chars().all(|c| c.is_ascii_digit()) {
            out.push('[');
            out.push_str(&seg);
            out.push(']');
        } else if !seg.is_empty() && seg.chars().all(|c| c.is_alphanumeric() || c == '_') {
            out.push('.');
            out.push_str(&seg);
        } else {
            out.push('[');
            out.push_str(&Value::String(seg).to_string());
            out.push(']');
        }
    }
    out
}
