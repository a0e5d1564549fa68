//! Writing a tree as an interchange, with its envelopes made correct.

use super::schema::{self, Kind, Slot};
use super::seps::Seps;
use super::{ISA_WIDTHS, MAX_ELEMENTS};
use crate::error::{Location, TransformError};
use serde_json::{Map, Value};

/// An `invalid_x12_tree` error at a path of the tree.
fn tree_err(path: impl Into<String>, msg: impl Into<String>) -> TransformError {
    TransformError::new("invalid_x12_tree", msg).at(Location {
        path: Some(path.into()),
        ..Location::default()
    })
}

/// The same error with `prefix` put before its path.
fn under(prefix: &str, mut e: TransformError) -> TransformError {
    let rest = e.location.path.take().unwrap_or_default();
    let sep = if rest.is_empty() || rest.starts_with('[') {
        ""
    } else {
        "."
    };
    e.location.path = Some(format!("{prefix}{sep}{rest}"));
    e
}

/// The text of element `position` of a segment object, if given.
pub(crate) fn element(seg: &Value, id: &str, position: usize) -> Option<String> {
    seg.as_object()?.iter().find_map(|(k, v)| {
        if schema::element_position(id, k) != Some(position) {
            return None;
        }
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    })
}

struct Writer {
    out: String,
    seps: Seps,
    /// Segments written so far.
    count: usize,
}

/// See [`super::write`].
pub(crate) fn write(tree: &Value) -> Result<String, TransformError> {
    let root = tree
        .as_object()
        .ok_or_else(|| tree_err("$", "an X12 tree is an object with ISA and groups"))?;
    for key in root.keys() {
        if !matches!(key.as_str(), "separators" | "ISA" | "TA1" | "groups") {
            return Err(tree_err(
                format!("$.{key}"),
                "unknown key; an X12 tree has separators, ISA, TA1 and groups",
            ));
        }
    }
    let isa = root
        .get("ISA")
        .ok_or_else(|| tree_err("$.ISA", "missing"))?;
    let mut seps =
        Seps::from_value(root.get("separators")).map_err(|m| tree_err("$.separators", m))?;
    if seps.repetition.is_none() {
        let isa11 = element(isa, "ISA", 11).unwrap_or_default();
        seps.repetition = isa11
            .chars()
            .next()
            .filter(|c| !c.is_alphanumeric() && *c != ' ');
    }
    if let Some(problem) = seps.problem() {
        return Err(tree_err("$.separators", problem));
    }
    let mut w = Writer {
        out: String::with_capacity(4096),
        seps,
        count: 0,
    };
    let control = w.isa(isa).map_err(|e| under("$.ISA", e))?;
    if let Some(ta1) = root.get("TA1") {
        let list = ta1
            .as_array()
            .ok_or_else(|| tree_err("$.TA1", "must be an array of TA1 segments"))?;
        for (n, seg) in list.iter().enumerate() {
            w.segment("TA1", seg)
                .map_err(|e| under(&format!("$.TA1[{n}]"), e))?;
        }
    }
    let groups = root
        .get("groups")
        .and_then(Value::as_array)
        .ok_or_else(|| tree_err("$.groups", "must be an array of functional groups"))?;
    for (n, group) in groups.iter().enumerate() {
        w.group(group)
            .map_err(|e| under(&format!("$.groups[{n}]"), e))?;
    }
    w.put("IEA", &[groups.len().to_string(), control]);
    Ok(w.out)
}

impl Writer {
    /// Writes a segment of already checked elements.
    fn put(&mut self, id: &str, elems: &[String]) {
        self.out.push_str(id);
        for e in elems {
            self.out.push(self.seps.element);
            self.out.push_str(e);
        }
        self.out.push(self.seps.segment);
        self.out.push_str(self.seps.suffix);
        self.count += 1;
    }

    /// The ISA at its fixed widths; returns the control number (ISA13).
    fn isa(&mut self, isa: &Value) -> Result<String, TransformError> {
        if !isa.is_object() {
            return Err(tree_err("", "must be an object of ISA elements"));
        }
        let mut elems = Vec::with_capacity(16);
        for (n, width) in ISA_WIDTHS.into_iter().enumerate() {
            let pos = n + 1;
            let key = schema::element_key("ISA", pos);
            let given = element(isa, "ISA", pos);
            let value = match (pos, given) {
                (11, _) if self.seps.repetition.is_some() => {
                    self.seps.repetition.map(String::from).unwrap_or_default()
                }
                (16, _) => self.seps.component.to_string(),
                (2 | 4 | 6 | 8, v) => format!("{:<width$}", v.unwrap_or_default()),
                (13, Some(v)) if v.bytes().all(|b| b.is_ascii_digit()) => format!("{v:0>width$}"),
                (_, Some(v)) => v,
                (1 | 3, None) => "00".into(),
                (11, None) => "U".into(),
                (14, None) => "0".into(),
                (_, None) => return Err(tree_err(key, "missing; the ISA needs it")),
            };
            if value.chars().count() != width {
                return Err(tree_err(
                    key,
                    format!("must be {width} characters wide (got {value:?})"),
                ));
            }
            let own = pos == 16 || (pos == 11 && self.seps.repetition.is_some());
            if !own && value.chars().any(|c| self.seps.is_delimiter(c)) {
                return Err(tree_err(key, "contains a separator"));
            }
            elems.push(value);
        }
        let control = elems.get(12).cloned().unwrap_or_default();
        self.put("ISA", &elems);
        Ok(control)
    }

    fn group(&mut self, group: &Value) -> Result<(), TransformError> {
        let obj = group
            .as_object()
            .ok_or_else(|| tree_err("", "a functional group is an object with GS and sets"))?;
        if let Some(key) = obj.keys().find(|k| !matches!(k.as_str(), "GS" | "sets")) {
            return Err(tree_err(
                key.clone(),
                "unknown key; a functional group has GS and sets",
            ));
        }
        let gs = obj.get("GS").ok_or_else(|| tree_err("GS", "missing"))?;
        self.segment("GS", gs).map_err(|e| under("GS", e))?;
        let control = self
            .text(gs, "GS", 6)
            .ok_or_else(|| tree_err("GS.GS06", "missing: the group control number"))?;
        let sets = obj
            .get("sets")
            .and_then(Value::as_array)
            .ok_or_else(|| tree_err("sets", "must be an array of transaction sets"))?;
        for (n, set) in sets.iter().enumerate() {
            self.set(set).map_err(|e| under(&format!("sets[{n}]"), e))?;
        }
        self.put("GE", &[sets.len().to_string(), control]);
        Ok(())
    }

    fn set(&mut self, set: &Value) -> Result<(), TransformError> {
        let obj = set
            .as_object()
            .ok_or_else(|| tree_err("", "a transaction set is an object with ST"))?;
        let st = obj.get("ST").ok_or_else(|| tree_err("ST", "missing"))?;
        let start = self.count;
        self.segment("ST", st).map_err(|e| under("ST", e))?;
        let set_id = self
            .text(st, "ST", 1)
            .ok_or_else(|| tree_err("ST.ST01", "missing: the transaction set id"))?;
        let control = self
            .text(st, "ST", 2)
            .ok_or_else(|| tree_err("ST.ST02", "missing: the set control number"))?;
        if let Some(segments) = obj.get("segments") {
            if let Some(key) = obj
                .keys()
                .find(|k| !matches!(k.as_str(), "ST" | "segments" | "unstructured"))
            {
                return Err(tree_err(
                    key.clone(),
                    "unknown key beside segments (a flat set has ST and segments)",
                ));
            }
            self.flat(segments).map_err(|e| under("segments", e))?;
        } else {
            let slots = schema::set_schema(&set_id).ok_or_else(|| {
                tree_err("segments", format!("missing: a {set_id} has no loop structure here, so its segments are a flat list"))
            })?;
            self.level(slots, 0, obj, &["ST"])?;
        }
        self.put("SE", &[(self.count - start + 1).to_string(), control]);
        Ok(())
    }

    /// A flat list of segments, each `{"ID": {elements}}`.
    fn flat(&mut self, segments: &Value) -> Result<(), TransformError> {
        let list = segments
            .as_array()
            .ok_or_else(|| tree_err("", "must be an array of segments"))?;
        for (n, item) in list.iter().enumerate() {
            let one = item
                .as_object()
                .filter(|o| o.len() == 1)
                .and_then(|o| o.iter().next());
            let (id, seg) = one.ok_or_else(|| {
                tree_err(
                    format!("[{n}]"),
                    "a segment is an object with one key, its id",
                )
            })?;
            if matches!(id.as_str(), "ISA" | "GS" | "ST" | "SE" | "GE" | "IEA") {
                return Err(tree_err(
                    format!("[{n}].{id}"),
                    "an envelope segment inside a set; envelopes come from the tree's structure",
                ));
            }
            self.segment(id, seg)
                .map_err(|e| under(&format!("[{n}].{id}"), e))?;
        }
        Ok(())
    }

    /// A level (a set's body or one loop iteration) in the order of its slots.
    /// Slots before `skip` are already written (a loop's trigger); keys in
    /// `extra` are allowed beside the slots' (the set's ST).
    fn level(
        &mut self,
        slots: &[Slot],
        skip: usize,
        obj: &Map<String, Value>,
        extra: &[&str],
    ) -> Result<(), TransformError> {
        if let Some(key) = obj
            .keys()
            .find(|k| !extra.contains(&k.as_str()) && !slots.iter().any(|s| s.key() == k.as_str()))
        {
            return Err(tree_err(key.clone(), "not a segment or loop of this level"));
        }
        for slot in slots.iter().skip(skip) {
            let key = slot.key();
            let items: Vec<&Value> = match obj.get(key) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(a)) if slot.repeats || a.len() <= 1 => a.iter().collect(),
                Some(Value::Array(_)) => {
                    return Err(tree_err(key, "occurs once here: an object, not an array"));
                }
                Some(v) => vec![v],
            };
            for (n, item) in items.iter().enumerate() {
                let at = if slot.repeats {
                    format!("{key}[{n}]")
                } else {
                    key.to_string()
                };
                match &slot.kind {
                    Kind::Segment(id) => self.segment(id, item).map_err(|e| under(&at, e))?,
                    Kind::Loop(def) => self
                        .loop_item(def.slots, def.trigger(), item)
                        .map_err(|e| under(&at, e))?,
                }
            }
        }
        Ok(())
    }

    fn loop_item(
        &mut self,
        slots: &[Slot],
        trigger: &str,
        item: &Value,
    ) -> Result<(), TransformError> {
        let obj = item
            .as_object()
            .ok_or_else(|| tree_err("", "a loop iteration is an object of segments"))?;
        let first = obj.get(trigger).filter(|v| v.is_object()).ok_or_else(|| {
            tree_err(
                trigger,
                format!("missing: each iteration of this loop starts with {trigger}"),
            )
        })?;
        self.segment(trigger, first)
            .map_err(|e| under(trigger, e))?;
        self.level(slots, 1, obj, &[])
    }

    /// A segment from its object of elements.
    fn segment(&mut self, id: &str, seg: &Value) -> Result<(), TransformError> {
        let bad_id = id.len() < 2
            || id.len() > 3
            || !id.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
            || !id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if bad_id {
            return Err(tree_err(
                "",
                format!("{id:?} is not a segment id (2 or 3 capital letters and digits)"),
            ));
        }
        let obj = seg.as_object().ok_or_else(|| {
            tree_err(
                "",
                "a segment is an object of its elements (B204_shipment_id: \"…\")",
            )
        })?;
        let mut elems: Vec<String> = Vec::new();
        let mut len = 0;
        for (key, value) in obj {
            if key == "_len" {
                len = value
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| *n <= MAX_ELEMENTS)
                    .ok_or_else(|| tree_err("_len", "must be a count of elements"))?;
                continue;
            }
            let pos = schema::element_position(id, key)
                .filter(|p| *p <= MAX_ELEMENTS)
                .ok_or_else(|| {
                    tree_err(
                        key.clone(),
                        format!("not an element of {id}: keys are {id}01, {id}02_name, …"),
                    )
                })?;
            let text = self
                .element_text(value)
                .map_err(|m| tree_err(key.clone(), m))?;
            if elems.len() < pos {
                elems.resize(pos, String::new());
            }
            if let Some(slot) = elems.get_mut(pos - 1) {
                if !slot.is_empty() {
                    return Err(tree_err(
                        key.clone(),
                        format!("element {pos} is given twice"),
                    ));
                }
                *slot = text;
            }
        }
        if elems.len() < len {
            elems.resize(len, String::new());
        }
        self.put(id, &elems);
        Ok(())
    }

    /// The written text of element `position` of a segment object already
    /// checked by [`Self::segment`], if given and not empty.
    fn text(&self, seg: &Value, id: &str, position: usize) -> Option<String> {
        let obj = seg.as_object()?;
        obj.iter()
            .find(|(k, _)| schema::element_position(id, k) == Some(position))
            .and_then(|(_, v)| self.element_text(v).ok())
            .filter(|t| !t.is_empty())
    }

    /// An element's text: a string or number, a composite (array of strings)
    /// or repeats (array of arrays).
    fn element_text(&self, v: &Value) -> Result<String, String> {
        let plain = |v: &Value| -> Result<String, String> {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Null => String::new(),
                other => {
                    return Err(format!(
                        "an element is text, a number, or an array for a composite (got {other})"
                    ));
                }
            };
            match s.chars().find(|c| self.seps.is_delimiter(*c)) {
                Some(c) => Err(format!(
                    "contains the separator {c:?}; give a composite as an array"
                )),
                None => Ok(s),
            }
        };
        let composite = |v: &Value| -> Result<String, String> {
            match v {
                Value::Array(parts) => {
                    let parts = parts.iter().map(plain).collect::<Result<Vec<_>, _>>()?;
                    Ok(parts.join(&self.seps.component.to_string()))
                }
                other => plain(other),
            }
        };
        match v {
            Value::Array(items) if items.first().is_some_and(Value::is_array) => {
                let rep = self
                    .seps
                    .repetition
                    .ok_or("repeats (an array of arrays) need a repetition separator (ISA11, version 00402 and later)")?;
                let reps = items.iter().map(composite).collect::<Result<Vec<_>, _>>()?;
                Ok(reps.join(&rep.to_string()))
            }
            other => composite(other),
        }
    }
}
