//! The functions that steps and expressions call: type conversions, string
//! functions, dates, units, value maps and array helpers. Each is built once
//! at compile time from its literal arguments (a date pattern or a unit pair
//! is checked and prepared then), and applied to a value at run time.

use chrono::format::{Item, Parsed, StrftimeItems, parse as parse_items};
use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeZone,
    Utc,
};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Longest string one function may produce (pad, replace, concat, join).
pub const MAX_STRING_BYTES: usize = 1024 * 1024;
/// Widest `pad_left`/`pad_right`.
pub const MAX_PAD_WIDTH: usize = 10_000;

/// A failed call: a stable code and a message.
pub(crate) type FnError = (&'static str, String);

fn fail(msg: impl Into<String>) -> FnError {
    ("conversion_failed", msg.into())
}

/// Name, parameter names (after the value) and how many are required.
const SIGNATURES: &[(&str, &[&str], usize)] = &[
    ("number", &[], 0),
    ("integer", &[], 0),
    ("boolean", &[], 0),
    ("string", &[], 0),
    ("trim", &[], 0),
    ("trim_start", &[], 0),
    ("trim_end", &[], 0),
    ("upper", &[], 0),
    ("lower", &[], 0),
    ("pad_left", &["width", "char"], 1),
    ("pad_right", &["width", "char"], 1),
    ("split", &["separator"], 1),
    ("join", &["separator"], 0),
    ("replace", &["from", "to"], 2),
    ("substring", &["start", "length"], 1),
    ("date", &["from", "to", "tz"], 0),
    ("convert", &["from", "to"], 2),
    ("round", &["digits"], 0),
    ("map", &["values", "default"], 1),
    ("first", &[], 0),
    ("last", &[], 0),
    ("count", &[], 0),
    ("sum", &[], 0),
    ("length", &[], 0),
    ("default", &["value"], 1),
];

/// The parameter names of function `name` (after the value), if it exists.
pub(crate) fn params(name: &str) -> Option<(&'static [&'static str], usize)> {
    SIGNATURES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, p, r)| (*p, *r))
}

/// Every function name, for error messages.
pub(crate) fn names() -> String {
    let mut v: Vec<&str> = SIGNATURES.iter().map(|s| s.0).collect();
    v.extend(["concat", "coalesce", "if", "exists"]);
    v.join(", ")
}

/// How a date is read.
#[derive(Debug, Clone)]
pub(crate) enum DateIn {
    Auto,
    Iso,
    EpochMillis,
    EpochSeconds,
    Xero,
    DateOnly,
    Pattern(Vec<Item<'static>>),
}

/// How a date is written.
#[derive(Debug, Clone)]
pub(crate) enum DateOut {
    Iso,
    EpochMillis,
    EpochSeconds,
    Xero,
    DateOnly,
    Salesforce(Vec<Item<'static>>),
    Pattern(Vec<Item<'static>>),
}

/// The zone dates are written in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Zone {
    Utc,
    Keep,
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

#[derive(Debug, Clone)]
pub(crate) struct DateSpec {
    from: DateIn,
    to: DateOut,
    tz: Zone,
}

#[derive(Debug, Clone)]
pub(crate) struct ValueMap {
    values: HashMap<String, Value>,
    default: Option<Value>,
}

/// A function prepared with its literal arguments.
#[derive(Debug, Clone)]
pub(crate) enum Func {
    Number,
    Integer,
    Boolean,
    Str,
    Trim,
    TrimStart,
    TrimEnd,
    Upper,
    Lower,
    Pad {
        width: usize,
        fill: char,
        left: bool,
    },
    Split(String),
    Join(String),
    Replace(String, String),
    Substring(usize, Option<usize>),
    Date(Box<DateSpec>),
    Convert(f64),
    Round(i32),
    Map(Box<ValueMap>),
    First,
    Last,
    Count,
    Sum,
    Length,
    Default(Value),
}

fn arg_str<'a>(args: &'a [Value], i: usize, name: &str) -> Result<Option<&'a str>, String> {
    match args.get(i) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(format!("`{name}` must be a string (got {v})")),
    }
}

fn arg_uint(args: &[Value], i: usize, name: &str, max: usize) -> Result<Option<usize>, String> {
    match args.get(i) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n <= max => Ok(Some(n)),
            _ => Err(format!(
                "`{name}` must be an integer in 0..={max} (got {v})"
            )),
        },
    }
}

impl Func {
    /// Builds function `name` with its literal arguments (after the value).
    pub fn build(name: &str, args: &[Value]) -> Result<Func, String> {
        let (params, required) =
            params(name).ok_or_else(|| format!("unknown function `{name}`; known: {}", names()))?;
        if args.len() < required || args.len() > params.len() {
            return Err(format!(
                "`{name}` takes {required}..={} argument(s) besides the value, got {}",
                params.len(),
                args.len()
            ));
        }
        Ok(match name {
            "number" => Func::Number,
            "integer" => Func::Integer,
            "boolean" => Func::Boolean,
            "string" => Func::Str,
            "trim" => Func::Trim,
            "trim_start" => Func::TrimStart,
            "trim_end" => Func::TrimEnd,
            "upper" => Func::Upper,
            "lower" => Func::Lower,
            "pad_left" | "pad_right" => build_pad(name, args)?,
            "split" => match arg_str(args, 0, "separator")? {
                Some(s) if !s.is_empty() => Func::Split(s.to_string()),
                _ => return Err("`separator` must be a non-empty string".into()),
            },
            "join" => Func::Join(arg_str(args, 0, "separator")?.unwrap_or(",").to_string()),
            "replace" => match (arg_str(args, 0, "from")?, arg_str(args, 1, "to")?) {
                (Some(f), Some(t)) if !f.is_empty() => Func::Replace(f.into(), t.into()),
                _ => return Err("`from` must be a non-empty string and `to` a string".into()),
            },
            "substring" => Func::Substring(
                arg_uint(args, 0, "start", MAX_STRING_BYTES)?.unwrap_or(0),
                arg_uint(args, 1, "length", MAX_STRING_BYTES)?,
            ),
            "date" => Func::Date(Box::new(build_date(args)?)),
            "convert" => Func::Convert(unit_factor(
                arg_str(args, 0, "from")?.unwrap_or(""),
                arg_str(args, 1, "to")?.unwrap_or(""),
            )?),
            "round" => Func::Round(
                i32::try_from(arg_uint(args, 0, "digits", 12)?.unwrap_or(0)).unwrap_or(0),
            ),
            "map" => Func::Map(Box::new(build_map(args)?)),
            "first" => Func::First,
            "last" => Func::Last,
            "count" => Func::Count,
            "sum" => Func::Sum,
            "length" => Func::Length,
            "default" => Func::Default(args.first().cloned().unwrap_or(Value::Null)),
            _ => return Err(format!("unknown function `{name}`")),
        })
    }

    /// Whether the function applies to each element of an array value
    /// (rather than to the array as a whole).
    fn elementwise(&self) -> bool {
        !matches!(
            self,
            Func::Join(_)
                | Func::First
                | Func::Last
                | Func::Count
                | Func::Sum
                | Func::Length
                | Func::Default(_)
        )
    }

    /// Applies the function to `v`.
    pub fn apply(&self, v: &Value) -> Result<Value, FnError> {
        match v {
            Value::Array(items) if self.elementwise() => items
                .iter()
                .map(|e| self.apply_one(e))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            _ => self.apply_one(v),
        }
    }

    /// Applies the function to an owned `v`, in place where it can (trim and
    /// ASCII case of a string, a number already a number) so a chain of
    /// steps does not copy the string at each step.
    pub fn apply_owned(&self, v: Value) -> Result<Value, FnError> {
        match (self, v) {
            (Func::Trim | Func::TrimEnd, Value::String(mut s))
                if !matches!(self, Func::Trim) || !s.starts_with(char::is_whitespace) =>
            {
                s.truncate(s.trim_end().len());
                Ok(Value::String(s))
            }
            (Func::Upper, Value::String(mut s)) if s.is_ascii() => {
                s.make_ascii_uppercase();
                Ok(Value::String(s))
            }
            (Func::Lower, Value::String(mut s)) if s.is_ascii() => {
                s.make_ascii_lowercase();
                Ok(Value::String(s))
            }
            (Func::Str, v @ Value::String(_)) | (Func::Number, v @ Value::Number(_)) => Ok(v),
            (Func::Integer, v @ Value::Number(_)) if v.is_i64() || v.is_u64() => Ok(v),
            (Func::Default(_), v) if !v.is_null() => Ok(v),
            (_, v) => self.apply(&v),
        }
    }

    fn apply_one(&self, v: &Value) -> Result<Value, FnError> {
        if v.is_null() && !matches!(self, Func::Map(_) | Func::Default(_) | Func::Count) {
            return Ok(Value::Null);
        }
        match self {
            Func::Number => to_number(v),
            Func::Integer => to_integer(v),
            Func::Boolean => to_boolean(v),
            Func::Str => Ok(Value::String(to_text(v))),
            Func::Trim => map_str(v, |s| s.trim().to_string()),
            Func::TrimStart => map_str(v, |s| s.trim_start().to_string()),
            Func::TrimEnd => map_str(v, |s| s.trim_end().to_string()),
            Func::Upper => map_str(v, str::to_uppercase),
            Func::Lower => map_str(v, str::to_lowercase),
            Func::Pad { width, fill, left } => {
                Ok(Value::String(pad(&to_text(v), *width, *fill, *left)))
            }
            Func::Split(sep) => Ok(Value::Array(
                to_text(v)
                    .split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            )),
            Func::Join(sep) => join(v, sep),
            Func::Replace(from, to) => replace(&to_text(v), from, to),
            Func::Substring(start, len) => {
                let s = to_text(v);
                let it = s.chars().skip(*start);
                Ok(Value::String(match len {
                    Some(n) => it.take(*n).collect(),
                    None => it.collect(),
                }))
            }
            Func::Date(spec) => convert_date(v, spec),
            Func::Convert(factor) => float(as_f64(v)? * factor),
            Func::Round(d) => round(v, *d),
            Func::Map(m) => lookup(v, m),
            Func::First => Ok(match v {
                Value::Array(a) => a.first().cloned().unwrap_or(Value::Null),
                other => other.clone(),
            }),
            Func::Last => Ok(match v {
                Value::Array(a) => a.last().cloned().unwrap_or(Value::Null),
                other => other.clone(),
            }),
            Func::Count => Ok(Value::from(match v {
                Value::Array(a) => a.len(),
                Value::Null => 0,
                _ => 1,
            })),
            Func::Sum => sum(v),
            Func::Length => Ok(Value::from(match v {
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::String(s) => s.chars().count(),
                other => to_text(other).chars().count(),
            })),
            Func::Default(d) => Ok(if v.is_null() { d.clone() } else { v.clone() }),
        }
    }
}

fn build_pad(name: &str, args: &[Value]) -> Result<Func, String> {
    let width = arg_uint(args, 0, "width", MAX_PAD_WIDTH)?.unwrap_or(0);
    let fill = match arg_str(args, 1, "char")? {
        None => ' ',
        Some(s) => {
            let mut cs = s.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) => c,
                _ => return Err("`char` must be exactly one character".into()),
            }
        }
    };
    Ok(Func::Pad {
        width,
        fill,
        left: name == "pad_left",
    })
}

fn build_map(args: &[Value]) -> Result<ValueMap, String> {
    let Some(Value::Object(values)) = args.first() else {
        return Err("`values` must be an object of input value → output value".into());
    };
    Ok(ValueMap {
        values: values.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        default: args.get(1).cloned(),
    })
}

/// The text form of a value: strings as they are, other values as JSON.
pub(crate) fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn map_str(v: &Value, f: impl Fn(&str) -> String) -> Result<Value, FnError> {
    match v {
        Value::String(s) => Ok(Value::String(f(s))),
        other => Ok(Value::String(f(&to_text(other)))),
    }
}

fn pad(s: &str, width: usize, fill: char, left: bool) -> String {
    let n = width.saturating_sub(s.chars().count());
    let fill: String = std::iter::repeat_n(fill, n).collect();
    if left {
        fill + s
    } else {
        s.to_string() + &fill
    }
}

fn join(v: &Value, sep: &str) -> Result<Value, FnError> {
    let Value::Array(items) = v else {
        return Ok(Value::String(to_text(v)));
    };
    let mut out = String::new();
    for (i, item) in items.iter().filter(|i| !i.is_null()).enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&to_text(item));
        if out.len() > MAX_STRING_BYTES {
            return Err(too_long());
        }
    }
    Ok(Value::String(out))
}

pub(crate) fn too_long() -> FnError {
    (
        "output_too_large",
        format!("a string would exceed {MAX_STRING_BYTES} bytes"),
    )
}

fn replace(s: &str, from: &str, to: &str) -> Result<Value, FnError> {
    if to.len() > from.len() {
        let grow = s
            .matches(from)
            .count()
            .saturating_mul(to.len() - from.len());
        if s.len().saturating_add(grow) > MAX_STRING_BYTES {
            return Err(too_long());
        }
    }
    Ok(Value::String(s.replace(from, to)))
}

/// A number from a JSON number or a numeric string.
pub(crate) fn as_f64(v: &Value) -> Result<f64, FnError> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| fail(format!("{n} is not a usable number"))),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| fail(format!("{v} is not a number"))),
        other => Err(fail(format!("{other} is not a number"))),
    }
}

/// A finite float as a JSON number (integral values stay floats).
pub(crate) fn float(f: f64) -> Result<Value, FnError> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| fail(format!("{f} is not a finite number")))
}

fn to_number(v: &Value) -> Result<Value, FnError> {
    match v {
        Value::Number(_) => Ok(v.clone()),
        Value::String(s) if s.trim().is_empty() => Ok(Value::Null),
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(i) => Ok(Value::from(i)),
            Err(_) => float(as_f64(v)?),
        },
        Value::Bool(b) => Ok(Value::from(u8::from(*b))),
        other => Err(fail(format!("{other} is not a number"))),
    }
}

fn to_integer(v: &Value) -> Result<Value, FnError> {
    if let Some(i) = v.as_i64() {
        return Ok(Value::from(i));
    }
    if let Some(u) = v.as_u64() {
        return Ok(Value::from(u));
    }
    if let Value::String(s) = v {
        if s.trim().is_empty() {
            return Ok(Value::Null);
        }
        if let Ok(i) = s.trim().parse::<i64>() {
            return Ok(Value::from(i));
        }
    }
    if let Value::Bool(b) = v {
        return Ok(Value::from(u8::from(*b)));
    }
    let f = as_f64(v)?.round();
    if f.abs() < 9.0e15 {
        #[allow(clippy::cast_possible_truncation)]
        Ok(Value::from(f as i64))
    } else {
        Err(fail(format!("{v} is out of the integer range")))
    }
}

fn to_boolean(v: &Value) -> Result<Value, FnError> {
    let b = match v {
        Value::Bool(b) => *b,
        Value::Number(n) if n.as_f64() == Some(0.0) => false,
        Value::Number(n) if n.as_f64() == Some(1.0) => true,
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "on" => true,
            "false" | "f" | "no" | "n" | "0" | "off" => false,
            "" => return Ok(Value::Null),
            _ => return Err(fail(format!("{v} is not a boolean"))),
        },
        other => return Err(fail(format!("{other} is not a boolean"))),
    };
    Ok(Value::Bool(b))
}

fn round(v: &Value, digits: i32) -> Result<Value, FnError> {
    if v.is_i64() || v.is_u64() {
        return Ok(v.clone());
    }
    let f = as_f64(v)?;
    if digits == 0 {
        return to_integer(&float(f)?);
    }
    let p = 10f64.powi(digits);
    float((f * p).round() / p)
}

fn sum(v: &Value) -> Result<Value, FnError> {
    let items: &[Value] = match v {
        Value::Array(a) => a,
        other => std::slice::from_ref(other),
    };
    let mut int: Option<i64> = Some(0);
    let mut f = 0.0;
    for item in items.iter().filter(|i| !i.is_null()) {
        f += as_f64(item)?;
        int = int.and_then(|acc| item.as_i64().and_then(|i| acc.checked_add(i)));
    }
    match int {
        Some(i) => Ok(Value::from(i)),
        None => float(f),
    }
}

fn lookup(v: &Value, m: &ValueMap) -> Result<Value, FnError> {
    let owned;
    let key = match v {
        Value::String(s) => s.as_str(),
        Value::Null => "null",
        other => {
            owned = other.to_string();
            owned.as_str()
        }
    };
    match (m.values.get(key), &m.default) {
        (Some(out), _) => Ok(out.clone()),
        (None, Some(d)) => Ok(d.clone()),
        (None, None) => Err((
            "unmapped_value",
            format!("{v} is not in the value map and the map has no `default`"),
        )),
    }
}

/// Unit conversion factor `from` → `to`.
fn unit_factor(from: &str, to: &str) -> Result<f64, String> {
    // (unit, dimension, size in the base unit: kg for mass, m for length)
    const UNITS: &[(&str, &str, f64)] = &[
        ("kg", "mass", 1.0),
        ("g", "mass", 0.001),
        ("lb", "mass", 0.453_592_37),
        ("oz", "mass", 0.028_349_523_125),
        ("t", "mass", 1000.0),
        ("ton", "mass", 907.184_74),
        ("m", "length", 1.0),
        ("km", "length", 1000.0),
        ("cm", "length", 0.01),
        ("mi", "length", 1609.344),
        ("ft", "length", 0.3048),
        ("in", "length", 0.0254),
    ];
    let find = |u: &str| UNITS.iter().find(|x| x.0.eq_ignore_ascii_case(u));
    let known = || UNITS.iter().map(|u| u.0).collect::<Vec<_>>().join(", ");
    match (find(from), find(to)) {
        (Some(a), Some(b)) if a.1 == b.1 => Ok(a.2 / b.2),
        (Some(a), Some(b)) => Err(format!(
            "cannot convert {} ({}) to {} ({})",
            a.0, a.1, b.0, b.1
        )),
        _ => Err(format!(
            "unknown unit `{from}` or `{to}`; known: {}",
            known()
        )),
    }
}

/// A strftime pattern, parsed once.
fn pattern(p: &str) -> Result<Vec<Item<'static>>, String> {
    match StrftimeItems::new(p).parse_to_owned() {
        Ok(items) if !items.iter().any(|i| matches!(i, Item::Error)) => Ok(items),
        _ => Err(format!(
            "`{p}` is not a valid date pattern (strftime, e.g. %m/%d/%Y)"
        )),
    }
}

fn build_date(args: &[Value]) -> Result<DateSpec, String> {
    let from = match arg_str(args, 0, "from")?.unwrap_or("auto") {
        "auto" => DateIn::Auto,
        "iso8601" | "rfc3339" => DateIn::Iso,
        "epoch_millis" => DateIn::EpochMillis,
        "epoch_seconds" => DateIn::EpochSeconds,
        "xero" => DateIn::Xero,
        "date" => DateIn::DateOnly,
        p if p.contains('%') => DateIn::Pattern(pattern(p)?),
        other => {
            return Err(format!(
                "unknown date input format `{other}`; use auto, iso8601, epoch_millis, epoch_seconds, xero, date or a %-pattern"
            ));
        }
    };
    let to = match arg_str(args, 1, "to")?.unwrap_or("iso8601") {
        "iso8601" | "rfc3339" => DateOut::Iso,
        "epoch_millis" => DateOut::EpochMillis,
        "epoch_seconds" => DateOut::EpochSeconds,
        "xero" => DateOut::Xero,
        "date" => DateOut::DateOnly,
        "salesforce" => DateOut::Salesforce(pattern("%Y-%m-%dT%H:%M:%S%.3f%z")?),
        p if p.contains('%') => DateOut::Pattern(pattern(p)?),
        other => {
            return Err(format!(
                "unknown date output format `{other}`; use iso8601, epoch_millis, epoch_seconds, xero, date, salesforce or a %-pattern"
            ));
        }
    };
    let tz = match arg_str(args, 2, "tz")?.unwrap_or("UTC") {
        "UTC" | "utc" | "Z" => Zone::Utc,
        "keep" => Zone::Keep,
        z if z.starts_with(['+', '-']) => {
            Zone::Fixed(parse_offset(z).ok_or_else(|| format!("bad offset `{z}` (use +05:30)"))?)
        }
        z => Zone::Named(z.parse().map_err(|_| {
            format!("unknown time zone `{z}` (use UTC, keep, +05:30 or an IANA name)")
        })?),
    };
    Ok(DateSpec { from, to, tz })
}

/// `+05:30`, `+0530` or `-08` as an offset.
fn parse_offset(s: &str) -> Option<FixedOffset> {
    let sign = if s.starts_with('-') { -1 } else { 1 };
    let digits: String = s.get(1..)?.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
        return None;
    }
    let h: i32 = digits.get(..2)?.parse().ok()?;
    let m: i32 = digits
        .get(2..)
        .filter(|m| !m.is_empty())
        .map_or(Some(0), |m| m.parse().ok())?;
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// A parsed date: a calendar date or an instant with its offset.
enum When {
    Day(NaiveDate),
    At(DateTime<FixedOffset>),
}

fn from_millis(ms: i64) -> Option<When> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(|d| When::At(d.fixed_offset()))
}

/// Xero's `/Date(1518685950940+0000)/`.
fn parse_xero(s: &str) -> Option<When> {
    let inner = s.trim().strip_prefix("/Date(")?.strip_suffix(")/")?;
    let split = inner.get(1..)?.find(['+', '-']).map(|i| i + 1);
    let (ms, off) = match split {
        Some(i) => (inner.get(..i)?, Some(inner.get(i..)?)),
        None => (inner, None),
    };
    let utc = DateTime::<Utc>::from_timestamp_millis(ms.parse().ok()?)?;
    let offset = match off {
        Some(o) => parse_offset(o)?,
        None => FixedOffset::east_opt(0)?,
    };
    Some(When::At(utc.with_timezone(&offset)))
}

/// Digits `b[from..to]` as a number.
fn digits(b: &[u8], from: usize, to: usize) -> Option<u32> {
    let mut n: u32 = 0;
    for c in b.get(from..to)? {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

/// The common ISO 8601 forms without going through a pattern (this is on
/// the hot path of every CRM record): `2024-01-15`,
/// `2024-01-15T10:30:00[.000][Z|+00:00|+0000]`.
fn fast_iso(s: &str) -> Option<When> {
    let b = s.as_bytes();
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let year = i32::try_from(digits(b, 0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, digits(b, 5, 7)?, digits(b, 8, 10)?)?;
    if b.len() == 10 {
        return Some(When::Day(date));
    }
    if b.get(10) != Some(&b'T') || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let (h, m, sec) = (digits(b, 11, 13)?, digits(b, 14, 16)?, digits(b, 17, 19)?);
    let mut i = 19;
    let mut nanos = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start || i - start > 9 {
            return None;
        }
        nanos = digits(b, start, i)? * 10u32.pow(u32::try_from(9 - (i - start)).ok()?);
    }
    let offset = match b.get(i..)? {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (oh, om) = match rest {
                [_, _] => (digits(rest, 0, 2)?, 0),
                [_, _, b':', _, _] => (digits(rest, 0, 2)?, digits(rest, 3, 5)?),
                [_, _, _, _] => (digits(rest, 0, 2)?, digits(rest, 2, 4)?),
                _ => return None,
            };
            let secs = i32::try_from(oh * 3600 + om * 60).ok()?;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let naive = date.and_time(NaiveTime::from_hms_nano_opt(h, m, sec, nanos)?);
    FixedOffset::east_opt(offset)?
        .from_local_datetime(&naive)
        .single()
        .map(When::At)
}

fn parse_iso(s: &str) -> Option<When> {
    let s = s.trim();
    if let Some(w) = fast_iso(s) {
        return Some(w);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(When::At(d));
    }
    // Salesforce: 2024-01-15T10:30:00.000+0000 (offset without a colon)
    if let Ok(d) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(When::At(d));
    }
    for p in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, p) {
            return Some(When::At(d.and_utc().fixed_offset()));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(When::Day)
}

fn parse_pattern(s: &str, p: &[Item<'static>]) -> Option<When> {
    let mut parsed = Parsed::new();
    parse_items(&mut parsed, s, p.iter()).ok()?;
    if let Ok(d) = parsed.to_datetime() {
        return Some(When::At(d));
    }
    if let Ok(d) = parsed.to_naive_datetime_with_offset(0) {
        return Some(When::At(d.and_utc().fixed_offset()));
    }
    parsed.to_naive_date().ok().map(When::Day)
}

fn parse_when(v: &Value, from: &DateIn) -> Option<When> {
    let s = v.as_str();
    match from {
        DateIn::Auto => match v {
            Value::Number(n) => from_millis(n.as_i64()?),
            Value::String(s) if s.trim().starts_with("/Date(") => parse_xero(s),
            Value::String(s) if !s.is_empty() && s.trim().chars().all(|c| c.is_ascii_digit()) => {
                from_millis(s.trim().parse().ok()?)
            }
            Value::String(s) => parse_iso(s),
            _ => None,
        },
        DateIn::Iso => parse_iso(s?),
        DateIn::EpochMillis => from_millis(v.as_i64().or_else(|| s?.trim().parse().ok())?),
        DateIn::EpochSeconds => {
            let secs = v.as_i64().or_else(|| s?.trim().parse().ok())?;
            DateTime::<Utc>::from_timestamp(secs, 0).map(|d| When::At(d.fixed_offset()))
        }
        DateIn::Xero => parse_xero(s?),
        DateIn::DateOnly => NaiveDate::parse_from_str(s?.trim(), "%Y-%m-%d")
            .ok()
            .map(When::Day),
        DateIn::Pattern(p) => parse_pattern(s?.trim(), p),
    }
}

fn convert_date(v: &Value, spec: &DateSpec) -> Result<Value, FnError> {
    if v.as_str().is_some_and(|s| s.trim().is_empty()) {
        return Ok(Value::Null);
    }
    let when = parse_when(v, &spec.from)
        .ok_or_else(|| fail(format!("{v} is not a date in the expected format")))?;
    let at = match when {
        When::Day(d) => match &spec.to {
            DateOut::DateOnly => return Ok(day(d)),
            DateOut::Pattern(p) => return write_fmt(d.format_with_items(p.iter())),
            _ => d
                .and_hms_opt(0, 0, 0)
                .map(|n| n.and_utc().fixed_offset())
                .ok_or_else(|| fail("bad date"))?,
        },
        When::At(at) => match spec.tz {
            Zone::Utc => at.with_timezone(&Utc).fixed_offset(),
            Zone::Keep => at,
            Zone::Fixed(o) => at.with_timezone(&o),
            Zone::Named(tz) => at.with_timezone(&tz).fixed_offset(),
        },
    };
    match &spec.to {
        DateOut::Iso => Ok(Value::String(
            at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        )),
        DateOut::EpochMillis => Ok(Value::from(at.timestamp_millis())),
        DateOut::EpochSeconds => Ok(Value::from(at.timestamp())),
        DateOut::DateOnly => Ok(day(at.date_naive())),
        DateOut::Salesforce(p) => write_fmt(at.format_with_items(p.iter())),
        DateOut::Xero => write_fmt(format_args!(
            "/Date({}{})/",
            at.timestamp_millis(),
            at.format("%z")
        )),
        DateOut::Pattern(p) => write_fmt(at.format_with_items(p.iter())),
    }
}

/// `2024-03-31`, as `%Y-%m-%d` writes it (a fast path for the common case).
fn day(d: NaiveDate) -> Value {
    if (0..=9999).contains(&d.year()) {
        let mut s = String::with_capacity(10);
        push_digits(&mut s, d.year().unsigned_abs(), 4);
        s.push('-');
        push_digits(&mut s, d.month(), 2);
        s.push('-');
        push_digits(&mut s, d.day(), 2);
        Value::String(s)
    } else {
        Value::String(d.format("%Y-%m-%d").to_string())
    }
}

/// Formats without panicking when a pattern does not fit the value (a time
/// field for a calendar date): that is an error, not a panic.
fn write_fmt(d: impl std::fmt::Display) -> Result<Value, FnError> {
    let mut s = String::new();
    write!(s, "{d}")
        .map_err(|_| fail("the date pattern does not fit this value (a time field for a date?)"))?;
    Ok(Value::String(s))
}

/// `true` for values a condition treats as true: not null, false, 0, "" or [].
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

/// An empty object, for `each` items.
pub(crate) fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// `n` as `width` zero-padded digits.
fn push_digits(s: &mut String, n: u32, width: u32) {
    for p in (0..width).rev() {
        s.push(char::from(
            b'0' + u8::try_from(n / 10u32.pow(p) % 10).unwrap_or(0),
        ));
    }
}
