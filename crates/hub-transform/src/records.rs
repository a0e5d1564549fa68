//! A file of records (an IMPORT job's upload) read into the records it
//! holds: JSON (an array, or an object with a `records` array), CSV (one
//! record per row; a header `properties.email` makes a nested field, so a
//! flat file can hold a provider's nested record), or any format through a
//! template whose output is such an array or object (X12 needs one: an
//! interchange is not a list of records by itself).

use crate::codec::{self, Format, FormatOptions};
use crate::error::{Limits, TransformError};
use crate::pipeline::{Compiled, Input};
use serde_json::{Map, Value};

/// Reads `text`, a file in `format`, into its records; with `template`,
/// the template (which must read `format`) turns the file into them.
pub fn read(
    format: Format,
    text: &str,
    template: Option<&Compiled>,
    limits: Limits,
) -> Result<Vec<Value>, TransformError> {
    if let Some(t) = template {
        if t.source_format != format {
            return Err(TransformError::new(
                "format_mismatch",
                format!(
                    "the transformation template reads {} but the file is {format}",
                    t.source_format
                ),
            ));
        }
        let out = t.transform(Input::Text(text), limits)?;
        return records_of(out.tree, "the transformation template's output");
    }
    let tree = match format {
        Format::X12 => {
            return Err(TransformError::new(
                "template_required",
                "an X12 file needs a transform_template turning its transaction sets into records",
            ));
        }
        Format::Xml => {
            return Err(TransformError::new(
                "template_required",
                "an XML file needs a transform_template turning it into records",
            ));
        }
        Format::Csv => {
            let rows = codec::read(format, text, &FormatOptions::default_for(format), limits)?;
            match rows {
                Value::Array(rows) => Value::Array(rows.into_iter().map(nest).collect()),
                other => other,
            }
        }
        Format::Json => codec::read(format, text, &FormatOptions::default_for(format), limits)?,
    };
    records_of(tree, "the file")
}

/// The records of a tree: itself if an array, its `records` array if an
/// object has one.
fn records_of(tree: Value, what: &str) -> Result<Vec<Value>, TransformError> {
    match tree {
        Value::Array(a) => Ok(a),
        Value::Object(mut m) => match m.remove("records") {
            Some(Value::Array(a)) => Ok(a),
            _ => Err(TransformError::new(
                "no_records",
                format!("{what} must be an array of records or an object with a \"records\" array"),
            )),
        },
        _ => Err(TransformError::new(
            "no_records",
            format!("{what} must be an array of records or an object with a \"records\" array"),
        )),
    }
}

/// A CSV row with dotted column names (`properties.email`) as nested
/// objects; empty fields are left out.
fn nest(row: Value) -> Value {
    let Value::Object(flat) = row else {
        return row;
    };
    let mut out = Map::new();
    for (key, value) in flat {
        if value.is_null() {
            continue;
        }
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap_or_default().to_owned();
        let mut at = &mut out;
        for p in parts {
            let slot = at
                .entry(p.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            at = slot.as_object_mut().expect("made an object above");
        }
        at.insert(last, value);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_and_csv_files_read_as_records_and_other_shapes_are_refused() {
        let l = Limits::default();
        let a = read(Format::Json, r#"[{"id": "1"}, {"id": "2"}]"#, None, l).unwrap();
        assert_eq!(a.len(), 2);
        let o = read(Format::Json, r#"{"records": [{"id": "1"}]}"#, None, l).unwrap();
        assert_eq!(o, vec![json!({"id": "1"})]);
        let e = read(Format::Json, r#"{"id": "1"}"#, None, l).unwrap_err();
        assert_eq!(e.code, "no_records");
        let e = read(Format::Json, r#"[{"id": "#, None, l).unwrap_err();
        assert_eq!(e.code, "invalid_json");
        let csv = "id,properties.email,properties.firstname\n7,a@b.co,Ana\n8,,Ben\n";
        let rows = read(Format::Csv, csv, None, l).unwrap();
        assert_eq!(
            rows,
            vec![
                json!({"id": "7", "properties": {"email": "a@b.co", "firstname": "Ana"}}),
                json!({"id": "8", "properties": {"firstname": "Ben"}}),
            ]
        );
        let e = read(Format::X12, "ISA*", None, l).unwrap_err();
        assert_eq!(e.code, "template_required");
    }
}
