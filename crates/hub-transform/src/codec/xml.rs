//! XML, read with `quick-xml` into the neutral tree and written back.
//!
//! The tree of a document is an object with one key, the root element's
//! name. An element becomes:
//! - `null` when it has no attributes, children or text (`<Notes/>`);
//! - a string when it has only text (text values stay strings: XML has no
//!   types; mapping rules convert them);
//! - an object otherwise: attributes under `@name` keys, child elements under
//!   their names, its text under `#text`. A name that repeats among siblings
//!   becomes an array, as does every element whose path is in
//!   [`XmlOptions::always_array`], even when it appears once.
//!
//! Names keep their namespace prefixes (`tms:Load`) and namespace
//! declarations stay attributes (`@xmlns:tms`), so nothing is lost and no
//! resolution is needed to map them. CDATA is text; the five XML entities
//! and character references are decoded. A DTD's own entities are refused
//! (`invalid_xml`), which also shuts out entity-expansion bombs.
//!
//! Paths in the options are element names from the root joined by `/`
//! (`LoadTender/Stops/Stop`); a bare name (`Stop`) matches at any depth.
//!
//! Output is written by hand (escaping is all it takes) so that the shape is
//! exactly the declared one: the root element's name is the tree's single
//! key or [`XmlOptions::root`]; keys are attributes when they start with `@`
//! or are listed in [`XmlOptions::attributes`]; child elements follow the
//! object's key order, or [`XmlOptions::order`] where it names one.

use super::{check_size, line_col, path_key, too_deep, unwritable};
use crate::error::{Limits, TransformError};
use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesRef, BytesStart, Event};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Why a name is refused, for the reader's errors.
const NOT_A_NAME: &str = "not an XML name (a letter, _ or : first, then letters, digits, _ - . :)";

/// Deepest tree the writer descends into (trees from the readers are far
/// shallower; this guards the stack against a hand-built one).
const MAX_WRITE_DEPTH: usize = 256;

/// Options of the XML codec, for reading and writing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XmlOptions {
    /// Output: the root element's name. Without it the tree must be an
    /// object with a single key, which names the root.
    pub root: Option<String>,
    /// Output: keys written as attributes although they have no `@`: either
    /// `element/path/key` or a bare key name (any element).
    pub attributes: Vec<String>,
    /// Input: element paths (or bare names) that are always arrays.
    pub always_array: Vec<String>,
    /// Output: the order of child elements, by element path (or bare name):
    /// the listed names first in that order, then the others in the
    /// object's order.
    pub order: BTreeMap<String, Vec<String>>,
    /// Input: trim whitespace around an element's text (default true).
    pub trim_text: bool,
    /// Output: start with `<?xml version="1.0" encoding="UTF-8"?>` (default true).
    pub declaration: bool,
    /// Output: indent elements that hold only elements (two spaces).
    pub pretty: bool,
}

impl Default for XmlOptions {
    fn default() -> Self {
        Self {
            root: None,
            attributes: Vec::new(),
            always_array: Vec::new(),
            order: BTreeMap::new(),
            trim_text: true,
            declaration: true,
            pretty: false,
        }
    }
}

fn listed(list: &[String], path: &str, name: &str) -> bool {
    list.iter().any(|p| p == path || p == name)
}

/// An element being read: what it has collected so far.
struct Frame {
    name: String,
    path: String,
    map: Map<String, Value>,
    has_children: bool,
    text: String,
}

/// Reads an XML document into the tree (see the module doc for its shape).
pub fn read(text: &str, options: &XmlOptions, limits: Limits) -> Result<Value, TransformError> {
    check_size(text, limits)?;
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let base = text.len() - body.len();
    let at = |offset: u64| {
        line_col(
            text,
            base.saturating_add(usize::try_from(offset).unwrap_or(usize::MAX)),
        )
    };
    let mut reader = Reader::from_str(body);
    reader.config_mut().check_comments = true;
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Value> = None;
    loop {
        let pos = reader.buffer_position();
        let event = reader.read_event().map_err(|e| {
            TransformError::new("invalid_xml", format!("invalid XML: {e}"))
                .at(at(reader.error_position()))
        })?;
        let bad = |message: String| TransformError::new("invalid_xml", message).at(at(pos));
        match event {
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                return Err(bad(format!(
                    "a second root element <{}>: an XML document has exactly one",
                    e.name().0
                )));
            }
            Event::Start(e) => {
                if stack.len() >= limits.max_depth {
                    return Err(too_deep(limits, "elements", at(pos)));
                }
                let frame = open(&e, stack.last()).map_err(|(m, off)| {
                    TransformError::new("invalid_xml", m).at(at(pos.saturating_add(off as u64)))
                })?;
                stack.push(frame);
            }
            Event::Empty(e) => {
                if stack.len() >= limits.max_depth {
                    return Err(too_deep(limits, "elements", at(pos)));
                }
                let frame = open(&e, stack.last()).map_err(|(m, off)| {
                    TransformError::new("invalid_xml", m).at(at(pos.saturating_add(off as u64)))
                })?;
                close(frame, &mut stack, &mut root, options);
            }
            Event::End(_) => {
                // quick-xml has checked that the names match.
                if let Some(frame) = stack.pop() {
                    close(frame, &mut stack, &mut root, options);
                }
            }
            Event::Text(t) => add_text(&mut stack, &t.xml10_content()).map_err(bad)?,
            Event::CData(t) => add_text(&mut stack, &t.xml10_content()).map_err(bad)?,
            Event::GeneralRef(r) => {
                let text = resolve(&r).map_err(|e| e.at(at(pos)))?;
                add_text(&mut stack, &text).map_err(bad)?;
            }
            Event::Eof => break,
            // Declaration, comments, processing instructions, DOCTYPE.
            _ => {}
        }
    }
    if let Some(frame) = stack.last() {
        let message = format!("the element <{}> is not closed", frame.name);
        return Err(TransformError::new("invalid_xml", message).at(at(reader.buffer_position())));
    }
    root.ok_or_else(|| {
        TransformError::new("invalid_xml", "the document has no root element").at(at(0))
    })
}

/// A new frame for a start tag, with its attributes decoded. An error comes
/// with its offset from the tag's `<`.
fn open(e: &BytesStart<'_>, parent: Option<&Frame>) -> Result<Frame, (String, usize)> {
    let name = e.name().0.to_owned();
    if !is_xml_name(&name) {
        return Err((format!("the element name {name:?} is {NOT_A_NAME}"), 1));
    }
    let path = match parent {
        Some(p) => format!("{}/{name}", p.path),
        None => name.clone(),
    };
    let mut map = Map::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| {
            // The error's position counts from the name, just after `<`.
            let offset = match err {
                AttrError::ExpectedEq(p)
                | AttrError::ExpectedValue(p)
                | AttrError::UnquotedValue(p)
                | AttrError::ExpectedQuote(p, _)
                | AttrError::Duplicated(p, _) => p + 1,
            };
            let text = err.to_string();
            let what = text.split_once(": ").map_or(text.as_str(), |(_, w)| w);
            (format!("invalid attribute in <{name}>: {what}"), offset)
        })?;
        let key = attr.key.0;
        if !is_xml_name(key) {
            return Err((
                format!("the attribute name {key:?} in <{name}> is {NOT_A_NAME}"),
                0,
            ));
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| (format!("invalid attribute value in <{name}>: {err}"), 0))?;
        check_chars(&value).map_err(|m| (format!("attribute {key:?} in <{name}>: {m}"), 0))?;
        map.insert(format!("@{key}"), Value::String(value.into_owned()));
    }
    Ok(Frame {
        name,
        path,
        map,
        has_children: false,
        text: String::new(),
    })
}

/// Whether XML 1.0 allows the character in a document (its `Char`
/// production): the controls but tab and line ends, U+FFFE and U+FFFF are
/// out, raw or as character references.
fn is_xml_char(c: char) -> bool {
    !((c < '\u{20}' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}')
}

/// An error for the first character of `text` that XML does not allow.
fn check_chars(text: &str) -> Result<(), String> {
    match text.chars().find(|c| !is_xml_char(*c)) {
        Some(c) => Err(format!(
            "the character U+{:04X} is not allowed in XML",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// Appends text to the open element; text outside the root must be blank.
fn add_text(stack: &mut [Frame], text: &str) -> Result<(), String> {
    check_chars(text)?;
    match stack.last_mut() {
        Some(frame) => {
            frame.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err("text outside the root element".to_owned()),
    }
}

/// The text an entity or character reference stands for.
fn resolve(r: &BytesRef<'_>) -> Result<String, TransformError> {
    let name: &str = r;
    let unknown = || {
        TransformError::new(
            "invalid_xml",
            format!(
                "unknown entity &{name};: only the five XML entities and character references are decoded (no DTD entities)"
            ),
        )
    };
    match r.resolve_char_ref() {
        Ok(Some(c)) => Ok(c.to_string()),
        Ok(None) => resolve_predefined_entity(name)
            .map(str::to_owned)
            .ok_or_else(unknown),
        Err(e) => Err(TransformError::new(
            "invalid_xml",
            format!("invalid character reference &{name};: {e}"),
        )),
    }
}

/// Turns a finished element into its value and attaches it to its parent
/// (or makes it the root).
fn close(frame: Frame, stack: &mut [Frame], root: &mut Option<Value>, options: &XmlOptions) {
    let Frame {
        name,
        path,
        mut map,
        has_children,
        text,
    } = frame;
    let text = if has_children && text.trim().is_empty() {
        ""
    } else if options.trim_text {
        text.trim()
    } else {
        text.as_str()
    };
    let value = match (map.is_empty(), text.is_empty()) {
        (true, true) => Value::Null,
        (true, false) => Value::String(text.to_owned()),
        (false, _) => {
            if !text.is_empty() {
                map.insert("#text".to_owned(), Value::String(text.to_owned()));
            }
            Value::Object(map)
        }
    };
    let Some(parent) = stack.last_mut() else {
        let mut doc = Map::new();
        doc.insert(name, value);
        *root = Some(Value::Object(doc));
        return;
    };
    parent.has_children = true;
    let always = listed(&options.always_array, &path, &name);
    match parent.map.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None if always => {
            parent.map.insert(name, Value::Array(vec![value]));
        }
        None => {
            parent.map.insert(name, value);
        }
    }
}

/// Writes the tree as an XML document (see the module doc for the shape).
pub fn write(value: &Value, options: &XmlOptions) -> Result<String, TransformError> {
    let (name, content) = root_of(value, options)?;
    let mut out = String::new();
    if options.declaration {
        out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        if options.pretty {
            out.push('\n');
        }
    }
    let mut w = XmlWriter { out, options };
    let jpath = path_key("$", name);
    w.element(name, content, name, &jpath, 0)?;
    Ok(w.out)
}

fn root_of<'v>(
    value: &'v Value,
    options: &'v XmlOptions,
) -> Result<(&'v str, &'v Value), TransformError> {
    let single = match value {
        Value::Object(m) if m.len() == 1 => m.iter().next(),
        _ => None,
    };
    let (name, content) = match (&options.root, single) {
        (Some(root), Some((k, v))) if k == root => (root.as_str(), v),
        (Some(root), _) => (root.as_str(), value),
        (None, Some((k, v))) => (k.as_str(), v),
        (None, None) => {
            return Err(unwritable(
                "$",
                "an XML document has one root element: give the tree a single key (`{\"LoadTender\": {…}}`) or set the `root` option",
            ));
        }
    };
    if content.is_array() {
        return Err(unwritable(
            "$",
            "an XML document has one root element, not an array: set `root` and put the array under a child name",
        ));
    }
    Ok((name, content))
}

struct XmlWriter<'o> {
    out: String,
    options: &'o XmlOptions,
}

impl XmlWriter<'_> {
    /// Writes one element `name` holding `value`; `path` is its element path,
    /// `jpath` its JSON path (for errors), `depth` its nesting.
    fn element(
        &mut self,
        name: &str,
        value: &Value,
        path: &str,
        jpath: &str,
        depth: usize,
    ) -> Result<(), TransformError> {
        if depth > MAX_WRITE_DEPTH {
            return Err(unwritable(jpath, "the tree is nested too deeply to write"));
        }
        check_name(name, jpath)?;
        self.out.push('<');
        self.out.push_str(name);
        let map = match value {
            Value::Null => {
                self.out.push_str("/>");
                return Ok(());
            }
            Value::Object(map) => map,
            Value::Array(_) => {
                return Err(unwritable(
                    jpath,
                    "an array inside an array cannot be written as XML",
                ));
            }
            scalar => {
                self.out.push('>');
                escape_into(&mut self.out, &scalar_text(scalar, jpath)?, false)
                    .map_err(|e| e.at_path(jpath))?;
                self.close_tag(name);
                return Ok(());
            }
        };
        let mut text = None;
        let mut children = Vec::new();
        let mut attributes = Vec::new();
        for (key, v) in map {
            let kpath = path_key(jpath, key);
            if key == "#text" {
                text = Some(scalar_text(v, &kpath)?);
            } else if let Some(attr) = self.attribute_name(path, key) {
                if attributes.contains(&attr) {
                    return Err(unwritable(
                        &kpath,
                        format!("the attribute {attr:?} is given twice"),
                    ));
                }
                attributes.push(attr);
                self.attribute(attr, v, &kpath)?;
            } else {
                children.push((key.as_str(), v));
            }
        }
        self.order_children(path, name, &mut children);
        if text.is_none() && children.is_empty() {
            self.out.push_str("/>");
            return Ok(());
        }
        self.out.push('>');
        let indent = self.options.pretty && text.is_none();
        if let Some(t) = &text {
            escape_into(&mut self.out, t, false).map_err(|e| e.at_path(jpath))?;
        }
        for (key, v) in children {
            let kpath = path_key(jpath, key);
            let cpath = format!("{path}/{key}");
            let items: &[Value] = match v {
                Value::Array(items) => items,
                single => std::slice::from_ref(single),
            };
            for (i, item) in items.iter().enumerate() {
                let ipath = if v.is_array() {
                    format!("{kpath}[{i}]")
                } else {
                    kpath.clone()
                };
                if indent {
                    self.newline(depth + 1);
                }
                self.element(key, item, &cpath, &ipath, depth + 1)?;
            }
        }
        if indent {
            self.newline(depth);
        }
        self.close_tag(name);
        Ok(())
    }

    /// The attribute name of `key` in the element at `path`, if it is one.
    fn attribute_name<'k>(&self, path: &str, key: &'k str) -> Option<&'k str> {
        if let Some(name) = key.strip_prefix('@') {
            return Some(name);
        }
        let full = format!("{path}/{key}");
        listed(&self.options.attributes, &full, key).then_some(key)
    }

    fn attribute(&mut self, name: &str, value: &Value, jpath: &str) -> Result<(), TransformError> {
        check_name(name, jpath)?;
        if value.is_null() {
            return Ok(());
        }
        let text = scalar_text(value, jpath)?;
        self.out.push(' ');
        self.out.push_str(name);
        self.out.push_str("=\"");
        escape_into(&mut self.out, &text, true).map_err(|e| e.at_path(jpath))?;
        self.out.push('"');
        Ok(())
    }

    fn order_children(&self, path: &str, name: &str, children: &mut [(&str, &Value)]) {
        let order = self
            .options
            .order
            .get(path)
            .or_else(|| self.options.order.get(name));
        if let Some(order) = order {
            // Stable: listed names by their rank, the others after, as they were.
            children.sort_by_key(|(k, _)| order.iter().position(|o| o == k).unwrap_or(order.len()));
        }
    }

    fn newline(&mut self, depth: usize) {
        self.out.push('\n');
        self.out.extend(std::iter::repeat_n("  ", depth));
    }

    fn close_tag(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }
}

trait AtPath {
    fn at_path(self, jpath: &str) -> TransformError;
}

impl AtPath for TransformError {
    fn at_path(self, jpath: &str) -> TransformError {
        unwritable(jpath, self.message)
    }
}

fn scalar_text(value: &Value, jpath: &str) -> Result<String, TransformError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        _ => Err(unwritable(
            jpath,
            "an attribute or #text must be a string, number, boolean or null",
        )),
    }
}

/// Whether `name` is an XML name as the hub reads and writes them: a letter,
/// `_` or `:`, then letters, digits, `_ - . :`. The reader refuses other
/// names, so every tree it makes can be written back.
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':');
    first_ok && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'))
}

/// Checks an element or attribute name is an XML name.
fn check_name(name: &str, jpath: &str) -> Result<(), TransformError> {
    if is_xml_name(name) {
        Ok(())
    } else {
        Err(unwritable(
            jpath,
            format!(
                "{name:?} is not an XML name (letters, digits, _ - . :, not starting with a digit)"
            ),
        ))
    }
}

/// Escapes text (or an attribute value) so that it reads back unchanged:
/// line ends and, in attributes, tabs and newlines as character references.
fn escape_into(out: &mut String, text: &str, attribute: bool) -> Result<(), TransformError> {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            c if !is_xml_char(c) => {
                return Err(TransformError::new(
                    "unwritable_value",
                    format!("the character U+{:04X} is not allowed in XML", c as u32),
                ));
            }
            c => out.push(c),
        }
    }
    Ok(())
}
