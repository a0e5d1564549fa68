//! Reading an interchange into the tree.

use super::schema::{self, Kind, Slot};
use super::seps::Seps;
use super::{ISA_WIDTHS, MAX_ELEMENTS, MAX_TREE_DEPTH};
use crate::error::{Limits, Location, TransformError};
use serde_json::{Map, Value};

/// One segment of the input: its 1-based position in the interchange, its id
/// and its elements (element 01 first), as written.
#[derive(Debug)]
pub(crate) struct Seg<'a> {
    pub(crate) pos: usize,
    pub(crate) id: &'a str,
    pub(crate) elems: Vec<&'a str>,
}

/// An `invalid_x12` error at a segment (and element).
pub(crate) fn seg_err(
    seg: &Seg<'_>,
    element: Option<usize>,
    msg: impl Into<String>,
) -> TransformError {
    TransformError::new("invalid_x12", msg).at(Location {
        segment: Some(seg.pos),
        segment_id: Some(seg.id.to_string()),
        element,
        ..Location::default()
    })
}

fn isa_err(element: Option<usize>, msg: impl Into<String>) -> TransformError {
    TransformError::new("invalid_x12", msg).at(Location {
        segment: Some(1),
        segment_id: Some("ISA".into()),
        element,
        ..Location::default()
    })
}

/// See [`super::parse`].
pub(crate) fn parse(text: &str, limits: &Limits) -> Result<Value, TransformError> {
    check_size(text, limits)?;
    let (isa, seps, rest) = read_isa(text)?;
    let segs = tokenize(rest, &seps)?;
    let mut root = Map::new();
    root.insert("separators".into(), seps.to_value());
    root.insert("ISA".into(), isa_value(&isa));
    root.insert("groups".into(), Value::Array(envelope(&isa, &segs, &seps)?));
    let tree = Value::Object(root);
    check_depth(&tree, limits)?;
    Ok(tree)
}

/// `input_too_large` when `text` is over `limits.max_bytes`.
pub(crate) fn check_size(text: &str, limits: &Limits) -> Result<(), TransformError> {
    if text.len() > limits.max_bytes {
        return Err(TransformError::new(
            "input_too_large",
            format!(
                "the interchange is {} bytes, more than the limit of {}",
                text.len(),
                limits.max_bytes
            ),
        ));
    }
    Ok(())
}

/// `too_deep` when `tree` nests deeper than `limits.max_depth`.
pub(crate) fn check_depth(tree: &Value, limits: &Limits) -> Result<(), TransformError> {
    // The tree is never deeper than MAX_TREE_DEPTH; measure only when the
    // limit is tighter than that.
    if limits.max_depth < MAX_TREE_DEPTH && depth(tree) > limits.max_depth {
        return Err(TransformError::new(
            "too_deep",
            format!(
                "the tree of this interchange nests deeper than the limit of {}",
                limits.max_depth
            ),
        ));
    }
    Ok(())
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The ISA segment, the separators it declares and the text after it.
pub(crate) fn read_isa(text: &str) -> Result<(Seg<'_>, Seps, &str), TransformError> {
    if !text.starts_with("ISA") {
        return Err(isa_err(None, "an interchange starts with ISA"));
    }
    let after_id = text.get(3..).unwrap_or("");
    let element = after_id
        .chars()
        .next()
        .ok_or_else(|| isa_err(None, "the ISA segment is cut short"))?;
    let mut rest = &after_id[element.len_utf8()..];
    let mut elems = Vec::with_capacity(16);
    for n in 1..=15 {
        let (value, tail) = rest
            .split_once(element)
            .ok_or_else(|| isa_err(Some(n), "the ISA segment is cut short: it has 16 elements"))?;
        elems.push(value);
        rest = tail;
    }
    let mut chars = rest.char_indices();
    let (component, segment, end) = match (chars.next(), chars.next()) {
        (Some((_, c)), Some((i, s))) => (c, s, i + s.len_utf8()),
        _ => {
            return Err(isa_err(
                Some(16),
                "the ISA segment is cut short: ISA16 and the segment terminator",
            ));
        }
    };
    elems.push(&rest[..component.len_utf8()]);
    let rest = &rest[end..];
    let isa11 = elems.get(10).copied().unwrap_or("");
    let repetition = isa11
        .chars()
        .next()
        .filter(|c| !c.is_alphanumeric() && *c != ' ');
    let seps = Seps {
        element,
        component,
        repetition,
        segment,
        suffix: Seps::suffix_at(rest),
    };
    if let Some(problem) = seps.problem() {
        return Err(isa_err(Some(16), problem));
    }
    for (n, value) in elems.iter().enumerate().take(15) {
        let own = n == 10 && repetition.is_some();
        if !own && value.chars().any(|c| seps.is_delimiter(c)) {
            return Err(isa_err(
                Some(n + 1),
                format!("ISA{:02} contains a separator", n + 1),
            ));
        }
    }
    for (n, (value, width)) in elems.iter().zip(ISA_WIDTHS).enumerate() {
        if value.chars().count() != width {
            return Err(isa_err(
                Some(n + 1),
                format!(
                    "ISA{:02} must be {width} characters wide (got {:?})",
                    n + 1,
                    value
                ),
            ));
        }
    }
    Ok((
        Seg {
            pos: 1,
            id: "ISA",
            elems,
        },
        seps,
        rest,
    ))
}

/// The ISA as a tree: padded fields without their trailing spaces.
pub(crate) fn isa_value(isa: &Seg<'_>) -> Value {
    let mut m = Map::new();
    for (n, raw) in isa.elems.iter().enumerate() {
        let value = if matches!(n + 1, 2 | 4 | 6 | 8) {
            raw.trim_end_matches(' ')
        } else {
            raw
        };
        if !value.is_empty() {
            m.insert(
                schema::element_key("ISA", n + 1),
                Value::String(value.to_string()),
            );
        }
    }
    Value::Object(m)
}

fn is_segment_id(id: &str) -> bool {
    let b = id.as_bytes();
    (2..=3).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_uppercase)
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// The segments after ISA. Line breaks at the start of a segment (after the
/// terminator) are skipped, whatever the suffix said.
pub(crate) fn tokenize<'a>(text: &'a str, seps: &Seps) -> Result<Vec<Seg<'a>>, TransformError> {
    let mut segs = Vec::with_capacity(text.len() / 24);
    let mut pieces = text.split(seps.segment).peekable();
    let mut pos = 1;
    while let Some(piece) = pieces.next() {
        let body = piece.trim_start_matches(|c| (c == '\r' || c == '\n') && !seps.is_delimiter(c));
        let last = pieces.peek().is_none();
        if last {
            if body.is_empty() {
                break;
            }
            let seg = Seg {
                pos: pos + 1,
                id: "",
                elems: Vec::new(),
            };
            return Err(seg_err(
                &seg,
                None,
                "the interchange ends inside a segment: the last segment has no terminator",
            ));
        }
        pos += 1;
        let mut parts = body.split(seps.element);
        let id = parts.next().unwrap_or("");
        let seg = Seg {
            pos,
            id,
            elems: parts.collect(),
        };
        if body.is_empty() {
            return Err(seg_err(
                &seg,
                None,
                "an empty segment (two terminators in a row)",
            ));
        }
        if seg.elems.len() > MAX_ELEMENTS {
            return Err(seg_err(
                &seg,
                Some(MAX_ELEMENTS + 1),
                format!("a segment has at most {MAX_ELEMENTS} elements"),
            ));
        }
        if !is_segment_id(id) {
            let shown: String = id.chars().take(20).collect();
            return Err(seg_err(
                &seg,
                None,
                format!("{shown:?} is not a segment id (2 or 3 capital letters and digits)"),
            ));
        }
        segs.push(seg);
    }
    Ok(segs)
}

/// Element `n` of `seg` must not be empty.
fn require(seg: &Seg<'_>, n: usize, what: &str) -> Result<(), TransformError> {
    match seg.elems.get(n - 1) {
        Some(v) if !v.is_empty() => Ok(()),
        _ => Err(seg_err(
            seg,
            Some(n),
            format!("{}{n:02} ({what}) is missing", seg.id),
        )),
    }
}

/// A trailer (SE, GE, IEA) must count `count` and repeat `control`.
fn check_trailer(
    seg: &Seg<'_>,
    count: usize,
    what: &str,
    control: &str,
    opener: &str,
) -> Result<(), TransformError> {
    if seg.elems.len() != 2 {
        return Err(seg_err(
            seg,
            None,
            format!("{} has 2 elements (got {})", seg.id, seg.elems.len()),
        ));
    }
    let said = seg.elems.first().copied().unwrap_or("");
    if said.parse::<usize>().ok() != Some(count) {
        return Err(seg_err(
            seg,
            Some(1),
            format!("{}01 says {said:?} {what} but there are {count}", seg.id),
        ));
    }
    let got = seg.elems.get(1).copied().unwrap_or("");
    if got != control {
        return Err(seg_err(
            seg,
            Some(2),
            format!(
                "{}02 is {got:?} but the control number of its {opener} is {control:?}",
                seg.id
            ),
        ));
    }
    Ok(())
}

/// The functional groups, with every envelope checked.
fn envelope(isa: &Seg<'_>, segs: &[Seg<'_>], seps: &Seps) -> Result<Vec<Value>, TransformError> {
    let mut groups = Vec::new();
    let mut i = 0;
    loop {
        match segs.get(i) {
            None => {
                let at = segs.last().unwrap_or(isa);
                return Err(seg_err(
                    at,
                    None,
                    "the interchange ends without its IEA trailer",
                ));
            }
            Some(seg) if seg.id == "GS" => groups.push(group(segs, &mut i, seps)?),
            Some(seg) if seg.id == "IEA" => {
                let control = isa.elems.get(12).copied().unwrap_or("");
                check_trailer(seg, groups.len(), "functional groups", control, "ISA")?;
                if let Some(extra) = segs.get(i + 1) {
                    return Err(seg_err(
                        extra,
                        None,
                        "a segment after IEA; one interchange per document",
                    ));
                }
                return Ok(groups);
            }
            Some(seg) => {
                return Err(seg_err(
                    seg,
                    None,
                    format!("expected GS or IEA, got {}", seg.id),
                ));
            }
        }
    }
}

/// One functional group from its GS at `segs[*i]` to its GE.
fn group(segs: &[Seg<'_>], i: &mut usize, seps: &Seps) -> Result<Value, TransformError> {
    let Some(gs) = segs.get(*i) else {
        return Ok(Value::Null);
    };
    require(gs, 6, "the group control number")?;
    *i += 1;
    let mut sets = Vec::new();
    loop {
        match segs.get(*i) {
            Some(seg) if seg.id == "ST" => sets.push(set(segs, i, seps)?),
            Some(seg) if seg.id == "GE" => {
                let control = gs.elems.get(5).copied().unwrap_or("");
                check_trailer(seg, sets.len(), "transaction sets", control, "GS")?;
                *i += 1;
                let mut m = Map::new();
                m.insert("GS".into(), seg_value(gs, seps));
                m.insert("sets".into(), Value::Array(sets));
                return Ok(Value::Object(m));
            }
            Some(seg) => {
                return Err(seg_err(
                    seg,
                    None,
                    format!("expected ST or GE, got {}", seg.id),
                ));
            }
            None => return Err(seg_err(gs, None, "this GS has no GE trailer")),
        }
    }
}

/// One transaction set from its ST at `segs[*i]` to its SE.
fn set(segs: &[Seg<'_>], i: &mut usize, seps: &Seps) -> Result<Value, TransformError> {
    let start = *i;
    let Some(st) = segs.get(start) else {
        return Ok(Value::Null);
    };
    require(st, 1, "the transaction set id")?;
    require(st, 2, "the set control number")?;
    let mut end = start + 1;
    loop {
        match segs.get(end) {
            Some(seg) if seg.id == "SE" => break,
            Some(seg) if matches!(seg.id, "ST" | "GS" | "GE" | "IEA" | "ISA") => {
                return Err(seg_err(
                    seg,
                    None,
                    format!(
                        "{} inside the transaction set that starts at segment {}: its SE is missing",
                        seg.id, st.pos
                    ),
                ));
            }
            Some(_) => end += 1,
            None => return Err(seg_err(st, None, "this ST has no SE trailer")),
        }
    }
    let Some(se) = segs.get(end) else {
        return Ok(Value::Null);
    };
    let control = st.elems.get(1).copied().unwrap_or("");
    check_trailer(se, end - start + 1, "segments (ST to SE)", control, "ST")?;
    *i = end + 1;
    let body = segs.get(start + 1..end).unwrap_or(&[]);
    Ok(structure(st, body, seps))
}

/// A set's tree: by its loop structure where the hub knows its type and its
/// segments fit, otherwise a flat list of segments.
pub(crate) fn structure(st: &Seg<'_>, body: &[Seg<'_>], seps: &Seps) -> Value {
    let set_id = st.elems.first().copied().unwrap_or("");
    let mut out = Map::new();
    out.insert("ST".into(), seg_value(st, seps));
    let mut unexpected = None;
    if let Some(slots) = schema::set_schema(set_id) {
        let mut i = 0;
        fill(slots, 0, body, &mut i, &mut out, seps);
        match body.get(i) {
            None => return Value::Object(out),
            Some(seg) => unexpected = Some((i, seg)),
        }
        out.retain(|k, _| k == "ST");
    }
    let segments = body
        .iter()
        .map(|seg| {
            let mut m = Map::new();
            m.insert(seg.id.to_string(), seg_value(seg, seps));
            Value::Object(m)
        })
        .collect();
    out.insert("segments".into(), Value::Array(segments));
    if let Some((i, seg)) = unexpected {
        let mut m = Map::new();
        // Position in the set, ST being 1, as the 997 counts.
        m.insert("segment".into(), Value::from(i + 2));
        m.insert("segment_id".into(), Value::String(seg.id.to_string()));
        m.insert(
            "message".into(),
            Value::String(format!(
                "{} is not expected here in a {set_id}; the set is kept as a flat list of segments",
                seg.id
            )),
        );
        out.insert("unstructured".into(), Value::Object(m));
    }
    Value::Object(out)
}

/// Places segments from `body[*i]` on into the level `slots`, starting at
/// slot `at`, until one fits no later slot (it belongs to an enclosing level,
/// or nowhere).
fn fill(
    slots: &'static [Slot],
    mut at: usize,
    body: &[Seg<'_>],
    i: &mut usize,
    out: &mut Map<String, Value>,
    seps: &Seps,
) {
    while let Some(seg) = body.get(*i) {
        let found = slots
            .get(at..)
            .and_then(|rest| rest.iter().position(|s| s.trigger() == seg.id));
        let Some(slot) = found.and_then(|k| {
            at += k;
            slots.get(at)
        }) else {
            return;
        };
        *i += 1;
        match &slot.kind {
            Kind::Segment(id) if slot.repeats => push(out, id, seg_value(seg, seps)),
            Kind::Segment(id) => {
                out.insert((*id).to_string(), seg_value(seg, seps));
                at += 1;
            }
            Kind::Loop(def) => {
                let mut item = Map::new();
                item.insert(seg.id.to_string(), seg_value(seg, seps));
                fill(def.slots, 1, body, i, &mut item, seps);
                push(out, def.key, Value::Object(item));
            }
        }
    }
}

fn push(out: &mut Map<String, Value>, key: &str, v: Value) {
    match out.get_mut(key) {
        Some(Value::Array(a)) => a.push(v),
        _ => {
            out.insert(key.to_string(), Value::Array(vec![v]));
        }
    }
}

/// A segment's elements by key; empty ones are left out, and `_len` keeps
/// the count where the last elements are empty.
pub(crate) fn seg_value(seg: &Seg<'_>, seps: &Seps) -> Value {
    let mut m = Map::new();
    let names = schema::element_names(seg.id);
    for (n, raw) in seg.elems.iter().enumerate() {
        if !raw.is_empty() {
            m.insert(
                schema::key_with(seg.id, names, n + 1),
                element_value(raw, seps),
            );
        }
    }
    if seg.elems.last().is_some_and(|e| e.is_empty()) {
        m.insert("_len".into(), Value::from(seg.elems.len()));
    }
    Value::Object(m)
}

/// A string, a composite (array of strings) or repeats (array of arrays).
fn element_value(raw: &str, seps: &Seps) -> Value {
    let composite = |s: &str| -> Value {
        if s.contains(seps.component) {
            Value::Array(
                s.split(seps.component)
                    .map(|c| Value::String(c.to_string()))
                    .collect(),
            )
        } else {
            Value::String(s.to_string())
        }
    };
    match seps.repetition {
        Some(r) if raw.contains(r) => Value::Array(
            raw.split(r)
                .map(|rep| match composite(rep) {
                    Value::String(s) => Value::Array(vec![Value::String(s)]),
                    other => other,
                })
                .collect(),
        ),
        _ => composite(raw),
    }
}
