//! Codecs: each format read into and written from the neutral tree, a
//! `serde_json::Value`.
//!
//! [`read`] and [`write`] dispatch on a [`Format`] (the wire names of
//! `transformation_templates.source_format` / `target_format`) with that
//! format's [`FormatOptions`]. Every reader is bounded by [`Limits`] (input
//! size and nesting depth), never panics, and reports malformed input as a
//! [`TransformError`] with its location (line and column; for CSV the line of
//! the record and the 1-based field index).
//!
//! Error codes: `invalid_json`, `invalid_xml`, `invalid_csv` (malformed
//! input), `input_too_large`, `input_too_deep` (limits), `invalid_options`
//! (options that do not fit the format), `unwritable_value` (a tree the
//! format cannot express, with its JSON path), `unsupported_format`.

// `TransformError` carries a full `Location` by value (the crate's chosen
// shape); errors are the rare path here, so its size does not matter.

pub mod csv;
pub mod json;
pub mod x12;
pub mod xml;

use crate::error::{Limits, Location, TransformError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// A wire format of a template's input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Format {
    /// JSON text.
    Json,
    /// XML text.
    Xml,
    /// Comma (or other delimiter) separated values.
    Csv,
    /// ANSI X12 EDI (204, 210, 214, 990, 997).
    X12,
}

impl Format {
    /// The wire name (`JSON`, `XML`, `CSV`, `X12`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Xml => "XML",
            Format::Csv => "CSV",
            Format::X12 => "X12",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = TransformError;

    /// Parses a wire name, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "JSON" => Ok(Format::Json),
            "XML" => Ok(Format::Xml),
            "CSV" => Ok(Format::Csv),
            "X12" => Ok(Format::X12),
            _ => Err(TransformError::new(
                "unsupported_format",
                format!("unknown format {s:?}: use one of JSON, XML, CSV, X12"),
            )),
        }
    }
}

/// One format's options, as a template carries them (a flat JSON object such
/// as `{"delimiter": ";", "header": true}` for CSV). Build it with
/// [`FormatOptions::from_value`], which reads the object as the given
/// format's options, or [`FormatOptions::default_for`].
#[derive(Debug, Clone, PartialEq)]
pub enum FormatOptions {
    /// JSON options.
    Json(json::JsonOptions),
    /// XML options.
    Xml(xml::XmlOptions),
    /// CSV options.
    Csv(csv::CsvOptions),
    /// X12 takes no options: separators come from the ISA segment.
    X12,
}

impl FormatOptions {
    /// The defaults of `format`.
    pub fn default_for(format: Format) -> Self {
        match format {
            Format::Json => FormatOptions::Json(json::JsonOptions::default()),
            Format::Xml => FormatOptions::Xml(xml::XmlOptions::default()),
            Format::Csv => FormatOptions::Csv(csv::CsvOptions::default()),
            Format::X12 => FormatOptions::X12,
        }
    }

    /// Reads `value` (a JSON object, or null/absent for the defaults) as the
    /// options of `format`. Unknown keys and wrong types are an
    /// `invalid_options` error naming the problem.
    pub fn from_value(format: Format, value: Option<&Value>) -> Result<Self, TransformError> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(Self::default_for(format));
        };
        let bad = |e: serde_json::Error| {
            TransformError::new("invalid_options", format!("{format} options: {e}"))
        };
        Ok(match format {
            Format::Json => {
                FormatOptions::Json(json::JsonOptions::deserialize(value).map_err(bad)?)
            }
            Format::Xml => FormatOptions::Xml(xml::XmlOptions::deserialize(value).map_err(bad)?),
            Format::Csv => {
                let options = csv::CsvOptions::deserialize(value).map_err(bad)?;
                options.check()?;
                FormatOptions::Csv(options)
            }
            Format::X12 => match value {
                Value::Object(m) if m.is_empty() => FormatOptions::X12,
                _ => {
                    return Err(TransformError::new(
                        "invalid_options",
                        "X12 takes no options: its separators come from the ISA segment",
                    ));
                }
            },
        })
    }

    /// The format these options belong to.
    pub fn format(&self) -> Format {
        match self {
            FormatOptions::Json(_) => Format::Json,
            FormatOptions::Xml(_) => Format::Xml,
            FormatOptions::Csv(_) => Format::Csv,
            FormatOptions::X12 => Format::X12,
        }
    }
}

/// Reads `text` in `format` into the neutral tree. `options` must be the
/// options of `format` (else `invalid_options`).
pub fn read(
    format: Format,
    text: &str,
    options: &FormatOptions,
    limits: Limits,
) -> Result<Value, TransformError> {
    check_size(text, limits)?;
    match (format, options) {
        (Format::Json, FormatOptions::Json(o)) => json::read(text, o, limits),
        (Format::Xml, FormatOptions::Xml(o)) => xml::read(text, o, limits),
        (Format::Csv, FormatOptions::Csv(o)) => csv::read(text, o, limits),
        (Format::X12, FormatOptions::X12) => x12::parse(text, &limits),
        (format, options) => Err(mismatch(format, options)),
    }
}

/// Writes the tree `value` as `format`. `options` must be the options of
/// `format` (else `invalid_options`); a tree the format cannot express is an
/// `unwritable_value` error with its JSON path.
pub fn write(
    format: Format,
    value: &Value,
    options: &FormatOptions,
) -> Result<String, TransformError> {
    match (format, options) {
        (Format::Json, FormatOptions::Json(o)) => json::write(value, o),
        (Format::Xml, FormatOptions::Xml(o)) => xml::write(value, o),
        (Format::Csv, FormatOptions::Csv(o)) => csv::write(value, o),
        (Format::X12, FormatOptions::X12) => x12::write(value),
        (format, options) => Err(mismatch(format, options)),
    }
}

fn mismatch(format: Format, options: &FormatOptions) -> TransformError {
    TransformError::new(
        "invalid_options",
        format!(
            "{} options given for {format} input or output",
            options.format()
        ),
    )
}

/// `input_too_large` unless `text` fits `limits.max_bytes`.
pub(crate) fn check_size(text: &str, limits: Limits) -> Result<(), TransformError> {
    if text.len() > limits.max_bytes {
        return Err(TransformError::new(
            "input_too_large",
            format!(
                "the input is {} bytes, over the limit of {} bytes",
                text.len(),
                limits.max_bytes
            ),
        ));
    }
    Ok(())
}

/// `input_too_deep` at `location`.
pub(crate) fn too_deep(limits: Limits, what: &str, location: Location) -> TransformError {
    TransformError::new(
        "input_too_deep",
        format!(
            "{what} nest deeper than the limit of {} levels",
            limits.max_depth
        ),
    )
    .at(location)
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
/// An offset past the end (or inside a character) is clamped, never a panic.
pub(crate) fn line_col(text: &str, offset: usize) -> Location {
    let bytes = text.as_bytes();
    let before = bytes.get(..offset.min(bytes.len())).unwrap_or(bytes);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let on_line = before.get(line_start..).unwrap_or(&[]);
    // Count characters, not bytes: skip UTF-8 continuation bytes.
    let column = on_line.iter().filter(|&&b| b & 0xC0 != 0x80).count() + 1;
    Location {
        line: Some(line),
        column: Some(column),
        ..Location::default()
    }
}

/// A JSON path segment appended to `path` for an object key.
pub(crate) fn path_key(path: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if simple {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", Value::String(key.to_owned()))
    }
}

/// `unwritable_value` at JSON path `path`.
pub(crate) fn unwritable(path: &str, message: impl Into<String>) -> TransformError {
    TransformError::new("unwritable_value", message).at(Location {
        path: Some(path.to_owned()),
        ..Location::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_and_clamps() {
        let text = "ab\ncé\nx";
        assert_eq!(line_col(text, 0).line, Some(1));
        let l = line_col(text, 6);
        assert_eq!((l.line, l.column), (Some(2), Some(3)));
        let l = line_col(text, 1000);
        assert_eq!((l.line, l.column), (Some(3), Some(2)));
        // Inside the two bytes of 'é': still a sane location.
        let l = line_col(text, 5);
        assert_eq!((l.line, l.column), (Some(2), Some(3)));
    }

    #[test]
    fn format_wire_names_round_trip() {
        for f in [Format::Json, Format::Xml, Format::Csv, Format::X12] {
            assert_eq!(f.as_str().parse::<Format>().ok(), Some(f));
            let v = serde_json::to_value(f).ok();
            assert_eq!(v, Some(Value::String(f.as_str().to_owned())));
        }
        assert_eq!(
            "edifact".parse::<Format>().err().map(|e| e.code),
            Some("unsupported_format")
        );
    }
}
