//! CSV, read and written with the `csv` crate.
//!
//! A file reads as an array with one object per record, keyed by the header
//! row or by [`CsvOptions::columns`]; without either, each record is an array
//! of strings. Fields are strings unless the options give their column a
//! type (`integer`, `number`, `boolean`, `date`); an empty field is `null`.
//! Errors name the line where the record starts and the 1-based field.
//!
//! Output takes an array of objects (or one object): the columns are
//! [`CsvOptions::columns`] in that order, or every key in order of first
//! appearance; a header row comes first when [`CsvOptions::header`] is set.

use super::{check_size, path_key, unwritable};
use crate::error::{Limits, Location, TransformError};
use ::csv::{QuoteStyle, ReaderBuilder, StringRecord, Trim, WriterBuilder};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Map, Number, Value};
use std::collections::{BTreeMap, HashSet};

/// The type of a column's values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Text as it is (the default).
    #[default]
    String,
    /// A whole number (`i64`).
    Integer,
    /// A number: whole numbers stay integers, others become floats.
    Number,
    /// `true`/`false`, `yes`/`no`, `y`/`n`, `t`/`f`, `1`/`0`, in any case.
    Boolean,
    /// A date in [`CsvOptions::date_format`], read as ISO `YYYY-MM-DD`.
    Date,
}

/// A column: its name, or its name and type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Column {
    /// Just a name (type from [`CsvOptions::types`] or `string`).
    Name(String),
    /// `{"name": "weight", "type": "number"}`.
    Typed {
        /// The column's name (the key in each record's object).
        name: String,
        /// Its type.
        #[serde(rename = "type", default)]
        kind: ColumnType,
    },
}

impl Column {
    /// The column's name.
    pub fn name(&self) -> &str {
        match self {
            Column::Name(n) | Column::Typed { name: n, .. } => n,
        }
    }
}

/// How output fields are quoted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quoting {
    /// Only fields that need it (delimiter, quote, line break).
    #[default]
    Necessary,
    /// Every field.
    Always,
    /// Every field that is not a number (numbers are never quoted, so the
    /// delimiter and quote cannot be characters a number can hold).
    NonNumeric,
}

/// The characters of what `non_numeric` quoting takes for a number (anything
/// Rust parses as an `f64` or an integer: `-1.5e3`, `+7`, `inf`, `NaN`).
const NUMBER_CHARS: &str = "0123456789.+-eEiInNfFtTyYaA";

/// Options of the CSV codec, for reading and writing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsvOptions {
    /// Field separator, one ASCII character (default `,`).
    pub delimiter: char,
    /// Quote character, one ASCII character (default `"`).
    pub quote: char,
    /// The first row is a header (read: names the columns unless `columns`
    /// is given, in which case it is skipped; write: one is written).
    pub header: bool,
    /// The columns in order, with optional types.
    pub columns: Vec<Column>,
    /// Types by column name (for columns named by the header).
    pub types: BTreeMap<String, ColumnType>,
    /// Read: trim spaces around fields.
    pub trim: bool,
    /// Read: the `chrono` format of `date` columns (default `%Y-%m-%d`).
    pub date_format: String,
    /// Write: quoting style.
    pub quoting: Quoting,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: ',',
            quote: '"',
            header: true,
            columns: Vec::new(),
            types: BTreeMap::new(),
            trim: false,
            date_format: "%Y-%m-%d".to_owned(),
            quoting: Quoting::Necessary,
        }
    }
}

impl CsvOptions {
    /// Checks the options make sense (`invalid_options` if not).
    pub fn check(&self) -> Result<(), TransformError> {
        let bad = |m: String| Err(TransformError::new("invalid_options", m));
        for (what, c) in [("delimiter", self.delimiter), ("quote", self.quote)] {
            if !c.is_ascii() || c == '\n' || c == '\r' {
                return bad(format!(
                    "CSV {what} must be one ASCII character other than a line break (got {c:?})"
                ));
            }
        }
        if self.delimiter == self.quote {
            return bad("CSV delimiter and quote must differ".to_owned());
        }
        if self.quoting == Quoting::NonNumeric {
            for (what, c) in [("delimiter", self.delimiter), ("quote", self.quote)] {
                if NUMBER_CHARS.contains(c) {
                    return bad(format!(
                        "CSV {what} {c:?} can occur in a number, which `non_numeric` quoting writes unquoted: choose another {what}, or another quoting"
                    ));
                }
            }
        }
        let mut seen = HashSet::new();
        for c in &self.columns {
            if !seen.insert(c.name()) {
                return bad(format!("CSV column {:?} is listed twice", c.name()));
            }
        }
        Ok(())
    }

    fn type_of(&self, index: usize, name: &str) -> ColumnType {
        match self.columns.get(index) {
            Some(Column::Typed { kind, .. }) => *kind,
            _ => self.types.get(name).copied().unwrap_or_default(),
        }
    }

    fn ascii(c: char) -> u8 {
        // `check` has made sure it is ASCII.
        u8::try_from(u32::from(c)).unwrap_or(b',')
    }
}

fn at(line: Option<u64>, column: Option<usize>) -> Location {
    Location {
        line: line.and_then(|l| usize::try_from(l).ok()),
        column,
        ..Location::default()
    }
}

fn invalid(message: String, line: Option<u64>, column: Option<usize>) -> TransformError {
    TransformError::new("invalid_csv", message).at(at(line, column))
}

/// Reads CSV text into an array of records (see the module doc).
pub fn read(text: &str, options: &CsvOptions, limits: Limits) -> Result<Value, TransformError> {
    check_size(text, limits)?;
    options.check()?;
    let mut reader = ReaderBuilder::new()
        .delimiter(CsvOptions::ascii(options.delimiter))
        .quote(CsvOptions::ascii(options.quote))
        .has_headers(false)
        .trim(if options.trim { Trim::All } else { Trim::None })
        // csv-core drops one byte order mark at the start (stripping one
        // here as well dropped a second, which was data).
        .from_reader(text.as_bytes());
    let mut names: Option<Vec<String>> = (!options.columns.is_empty()).then(|| {
        options
            .columns
            .iter()
            .map(|c| c.name().to_owned())
            .collect()
    });
    let mut header_pending = options.header;
    let mut rows = Vec::new();
    let mut record = StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(from_csv_error(&e)),
        }
        let line = record.position().map(|p| p.line());
        if header_pending {
            header_pending = false;
            if names.is_none() {
                names = Some(header_names(&record, line)?);
            }
            continue;
        }
        let row = match &names {
            Some(names) => typed_record(&record, names, options, line, rows.len())?,
            None => Value::Array(record.iter().map(string_or_null).collect()),
        };
        rows.push(row);
    }
    Ok(Value::Array(rows))
}

fn header_names(record: &StringRecord, line: Option<u64>) -> Result<Vec<String>, TransformError> {
    let mut seen = HashSet::new();
    let mut names = Vec::with_capacity(record.len());
    for (i, name) in record.iter().enumerate() {
        if !seen.insert(name) {
            return Err(invalid(
                format!("the header names column {name:?} twice"),
                line,
                Some(i + 1),
            ));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

fn string_or_null(field: &str) -> Value {
    if field.is_empty() {
        Value::Null
    } else {
        Value::String(field.to_owned())
    }
}

fn typed_record(
    record: &StringRecord,
    names: &[String],
    options: &CsvOptions,
    line: Option<u64>,
    row: usize,
) -> Result<Value, TransformError> {
    if record.len() != names.len() {
        return Err(invalid(
            format!(
                "the record has {} fields, the columns are {}",
                record.len(),
                names.len()
            ),
            line,
            Some(record.len().min(names.len()) + 1),
        ));
    }
    let mut map = Map::new();
    for (i, (field, name)) in record.iter().zip(names).enumerate() {
        let kind = options.type_of(i, name);
        let value = convert(field, kind, &options.date_format).map_err(|expected| {
            let path = path_key(&format!("$[{row}]"), name);
            let mut e = invalid(
                format!("column {name:?}: expected {expected}, got {field:?}"),
                line,
                Some(i + 1),
            );
            e.location.path = Some(path);
            e
        })?;
        map.insert(name.clone(), value);
    }
    Ok(Value::Object(map))
}

/// Converts a field to its column's type; the error says what was expected.
fn convert(field: &str, kind: ColumnType, date_format: &str) -> Result<Value, String> {
    if field.is_empty() {
        return Ok(Value::Null);
    }
    let t = field.trim();
    match kind {
        ColumnType::String => Ok(Value::String(field.to_owned())),
        ColumnType::Integer => t
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "an integer".to_owned()),
        ColumnType::Number => match t.parse::<i64>() {
            Ok(i) => Ok(Value::from(i)),
            Err(_) => t
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| "a finite number".to_owned()),
        },
        ColumnType::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "t" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "n" | "f" | "0" => Ok(Value::Bool(false)),
            _ => Err("a boolean (true/false, yes/no, 1/0)".to_owned()),
        },
        ColumnType::Date => NaiveDate::parse_from_str(t, date_format)
            .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
            .map_err(|_| format!("a date in the format {date_format:?}")),
    }
}

fn from_csv_error(e: &::csv::Error) -> TransformError {
    let line = e.position().map(|p| p.line());
    match e.kind() {
        ::csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => invalid(
            format!("the record has {len} fields, the records before it {expected_len}"),
            line,
            usize::try_from((*len).min(*expected_len) + 1).ok(),
        ),
        ::csv::ErrorKind::Utf8 { err, .. } => invalid(
            format!("invalid UTF-8 in field {}", err.field() + 1),
            line,
            Some(err.field() + 1),
        ),
        _ => invalid(format!("invalid CSV: {e}"), line, None),
    }
}

/// Writes an array of records (objects, or arrays of fields) or one object
/// as CSV. A field that is an object or array is `unwritable_value`.
pub fn write(value: &Value, options: &CsvOptions) -> Result<String, TransformError> {
    options.check()?;
    let rows: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![value],
        _ => {
            return Err(unwritable(
                "$",
                "CSV is written from an array of records (objects) or one object",
            ));
        }
    };
    let columns = output_columns(&rows, options);
    let style = match options.quoting {
        Quoting::Necessary => QuoteStyle::Necessary,
        Quoting::Always => QuoteStyle::Always,
        Quoting::NonNumeric => QuoteStyle::NonNumeric,
    };
    let mut w = WriterBuilder::new()
        .delimiter(CsvOptions::ascii(options.delimiter))
        .quote(CsvOptions::ascii(options.quote))
        .quote_style(style)
        .from_writer(Vec::new());
    let failed = |e: ::csv::Error, path: &str| unwritable(path, format!("cannot write CSV: {e}"));
    if options.header && !columns.is_empty() {
        w.write_record(&columns).map_err(|e| failed(e, "$"))?;
    }
    for (i, row) in rows.iter().enumerate() {
        let path = format!("$[{i}]");
        let fields = match row {
            Value::Object(m) => columns
                .iter()
                .map(|c| cell(m.get(c.as_str()), &path_key(&path, c)))
                .collect::<Result<Vec<_>, _>>()?,
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(j, v)| cell(Some(v), &format!("{path}[{j}]")))
                .collect::<Result<Vec<_>, _>>()?,
            _ => {
                return Err(unwritable(
                    &path,
                    "a CSV record must be an object or an array",
                ));
            }
        };
        w.write_record(&fields).map_err(|e| failed(e, &path))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| unwritable("$", format!("cannot write CSV: {e}")))?;
    let text =
        String::from_utf8(bytes).map_err(|e| unwritable("$", format!("cannot write CSV: {e}")))?;
    // The reader drops one byte order mark at the start: when the first field
    // itself starts with U+FEFF, a mark before it keeps it.
    Ok(if text.starts_with('\u{feff}') {
        format!("\u{feff}{text}")
    } else {
        text
    })
}

/// The output columns: the declared ones, or every key by first appearance.
fn output_columns(rows: &[&Value], options: &CsvOptions) -> Vec<String> {
    if !options.columns.is_empty() {
        return options
            .columns
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
    }
    let mut seen = HashSet::new();
    let mut columns = Vec::new();
    for row in rows {
        if let Value::Object(m) = row {
            for k in m.keys() {
                if seen.insert(k.as_str()) {
                    columns.push(k.clone());
                }
            }
        }
    }
    columns
}

fn cell(value: Option<&Value>, path: &str) -> Result<String, TransformError> {
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(_) => Err(unwritable(
            path,
            "a CSV field must be a string, number, boolean or null (flatten objects and arrays in the mapping)",
        )),
    }
}
