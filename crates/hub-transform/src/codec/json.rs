//! JSON: the neutral tree itself, read with the nesting depth checked before
//! parsing and errors at their line and column.

use super::{check_size, line_col, too_deep};
use crate::error::{Limits, Location, TransformError};
use serde::Deserialize;
use serde_json::Value;

/// Options of the JSON codec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsonOptions {
    /// Write indented (two spaces) rather than compact.
    pub pretty: bool,
}

/// Reads JSON text. Nesting deeper than `limits.max_depth` is an
/// `input_too_deep` error at the bracket that crosses it; malformed text is
/// `invalid_json` at its line and column.
pub fn read(text: &str, _options: &JsonOptions, limits: Limits) -> Result<Value, TransformError> {
    check_size(text, limits)?;
    check_depth(text, limits)?;
    serde_json::from_str(text).map_err(|e| {
        let location = char_location(text, e.line(), e.column());
        if e.to_string().starts_with("recursion limit exceeded") {
            // serde_json's own guard (128 levels) when max_depth is larger.
            return too_deep(limits, "arrays and objects", location);
        }
        let message = format!("invalid JSON: {}", strip_position(&e));
        TransformError::new("invalid_json", message).at(location)
    })
}

/// Writes the tree as JSON text, compact or pretty.
pub fn write(value: &Value, options: &JsonOptions) -> Result<String, TransformError> {
    let out = if options.pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    // A `Value` always serializes; keep the error path rather than unwrap.
    out.map_err(|e| TransformError::new("unwritable_value", e.to_string()))
}

/// Scans brackets outside strings so a depth bomb is refused before any
/// allocation, with the location of the bracket that goes too deep.
fn check_depth(text: &str, limits: Limits) -> Result<(), TransformError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(too_deep(limits, "arrays and objects", line_col(text, i)));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// serde_json reports the column in bytes; the location is in characters.
fn char_location(text: &str, line: usize, byte_column: usize) -> Location {
    if line == 0 {
        return Location::default();
    }
    let line_text = text.split('\n').nth(line - 1).unwrap_or("");
    let bytes = line_text.as_bytes();
    let upto = bytes.get(..byte_column.min(bytes.len())).unwrap_or(bytes);
    let column = upto.iter().filter(|&&b| b & 0xC0 != 0x80).count().max(1);
    Location {
        line: Some(line),
        column: Some(column),
        ..Location::default()
    }
}

/// serde_json's message without its own " at line L column C" suffix (the
/// location is carried separately).
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s.get(..i).unwrap_or(&s).to_owned(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_scan_ignores_brackets_in_strings() {
        let limits = Limits {
            max_bytes: 1000,
            max_depth: 2,
        };
        let ok = read(
            r#"{"a": ["[[[[{{{", "\"[[["]}"#,
            &JsonOptions::default(),
            limits,
        );
        assert!(ok.is_ok(), "{ok:?}");
        let err = read(r#"{"a": [[1]]}"#, &JsonOptions::default(), limits).err();
        assert_eq!(
            err.map(|e| (e.code, e.location.column)),
            Some(("input_too_deep", Some(8)))
        );
    }
}
