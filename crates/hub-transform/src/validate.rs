//! JSON Schema checks of a tree (`validation_rules` of a template), with the
//! path of every problem.

use crate::error::{Location, TransformError};
use serde_json::Value;

/// Most problems reported for one tree.
const MAX_ERRORS: usize = 100;

/// A compiled JSON Schema, to check many trees without compiling it again.
#[derive(Clone)]
pub struct Schema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schema")
    }
}

impl Schema {
    /// Compiles `schema`; one `invalid_schema` error (at the schema path of
    /// the problem) when it is not a valid JSON Schema.
    pub fn compile(schema: &Value) -> Result<Self, TransformError> {
        jsonschema::validator_for(schema)
            .map(|validator| Self { validator })
            .map_err(|e| {
                let at = pointer_to_path(e.instance_path().as_str());
                let loc = Location {
                    path: Some(at.replacen('$', "schema", 1)),
                    ..Location::default()
                };
                TransformError::new("invalid_schema", format!("the schema is not valid: {e}"))
                    .at(loc)
            })
    }

    /// One `schema_violation` error per problem of `tree`, at its JSON path
    /// (`$.lines[2].amount`), at most 100.
    pub fn check(&self, tree: &Value) -> Vec<TransformError> {
        self.validator
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
}

/// Checks `tree` against the JSON Schema `schema`: one `schema_violation`
/// error per problem, at its JSON path (`$.lines[2].amount`), at most 100. A
/// schema that does not compile is one `invalid_schema` error. To check many
/// trees, compile the schema once with [`Schema::compile`].
pub fn check(schema: &Value, tree: &Value) -> Vec<TransformError> {
    match Schema::compile(schema) {
        Ok(s) => s.check(tree),
        Err(e) => vec![e],
    }
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
