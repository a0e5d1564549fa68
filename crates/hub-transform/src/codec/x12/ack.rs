//! Making interchanges in code: envelopes, the 997 and TA1 acknowledgments
//! and the 990 answer to a load tender.

use super::received::{GroupNotes, InterchangeProblem};
use super::schema::{self, ElementRule, Kind, Slot, Ty};
use super::seps::Seps;
use super::write::element;
use crate::error::{Location, TransformError};
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{Map, Value, json};

/// The control numbers of a new interchange: ISA13, GS06 of its (first)
/// group, and ST02 of its first set (the next sets count on from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    /// ISA13 / IEA02, at most 999999999.
    pub interchange: u32,
    /// GS06 / GE02.
    pub group: u32,
    /// ST02 / SE02 of the first set, written with at least 4 digits.
    pub set: u32,
}

/// Who sends an interchange to whom, when, and in which version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// ISA05 (`ZZ`, `01`, `02`, …).
    pub sender_qualifier: String,
    /// ISA06, also GS02.
    pub sender_id: String,
    /// ISA07.
    pub receiver_qualifier: String,
    /// ISA08, also GS03.
    pub receiver_id: String,
    /// ISA09/ISA10 and GS04/GS05.
    pub at: NaiveDateTime,
    /// ISA12 (`00401`); from `00402` on ISA11 is the repetition separator `^`.
    pub version: String,
    /// GS08 (`004010`).
    pub group_version: String,
    /// ISA15: `P` production, `T` test.
    pub usage: String,
    /// ISA14: `1` to ask for a TA1, `0` not.
    pub ack_requested: String,
}

impl Envelope {
    /// An envelope for version 004010, production, no TA1 asked.
    pub fn new(sender: (&str, &str), receiver: (&str, &str), at: NaiveDateTime) -> Self {
        Self {
            sender_qualifier: sender.0.into(),
            sender_id: sender.1.into(),
            receiver_qualifier: receiver.0.into(),
            receiver_id: receiver.1.into(),
            at,
            version: "00401".into(),
            group_version: "004010".into(),
            usage: "P".into(),
            ack_requested: "0".into(),
        }
    }
}

fn ack_err(path: &str, msg: impl Into<String>) -> TransformError {
    TransformError::new("invalid_x12_tree", msg).at(Location {
        path: Some(path.into()),
        ..Location::default()
    })
}

/// An interchange tree of one functional group holding `sets` (each a set
/// tree with at least `ST01`; ST02 is set here, from `control.set` on). The
/// group's functional id (GS01) follows the sets' type, which must be one of
/// 204, 210, 214, 990, 997 and the same for all. Write it with
/// [`super::write`].
pub fn interchange(
    env: &Envelope,
    control: Control,
    sets: Vec<Value>,
) -> Result<Value, TransformError> {
    interchange_in(env, control, sets, &default_seps(env))
}

/// [`interchange`] with these separators.
fn interchange_in(
    env: &Envelope,
    control: Control,
    sets: Vec<Value>,
    seps: &Seps,
) -> Result<Value, TransformError> {
    let mut functional = None;
    let mut numbered = Vec::with_capacity(sets.len());
    for (n, mut set) in sets.into_iter().enumerate() {
        let path = format!("sets[{n}]");
        let set_id = set
            .get("ST")
            .and_then(|st| element(st, "ST", 1))
            .unwrap_or_default();
        let fid = schema::functional_id(&set_id).ok_or_else(|| {
            ack_err(
                &path,
                format!(
                    "ST01 {set_id:?} is not a set type the hub makes (204, 210, 214, 990, 997)"
                ),
            )
        })?;
        if functional.is_some_and(|f| f != fid) {
            return Err(ack_err(
                &path,
                "all sets of one group have the same functional id",
            ));
        }
        functional = Some(fid);
        let number = u64::from(control.set) + n as u64;
        let st = json!({
            "ST01_transaction_set_id": set_id,
            "ST02_control_number": format!("{number:04}"),
        });
        if let Some(obj) = set.as_object_mut() {
            obj.insert("ST".into(), st);
        }
        numbered.push(set);
    }
    let functional =
        functional.ok_or_else(|| ack_err("sets", "an interchange needs at least one set"))?;
    if control.interchange > 999_999_999 {
        return Err(ack_err("control.interchange", "ISA13 has 9 digits"));
    }
    let isa = isa_tree(env, control.interchange, seps);
    Ok(json!({
        "separators": seps.to_value(),
        "ISA": isa,
        "groups": [{
            "GS": {
                "GS01_functional_id": functional,
                "GS02_sender_code": env.sender_id,
                "GS03_receiver_code": env.receiver_id,
                "GS04_date": env.at.format("%Y%m%d").to_string(),
                "GS05_time": env.at.format("%H%M").to_string(),
                "GS06_control_number": control.group.to_string(),
                "GS07_agency": "X",
                "GS08_version": env.group_version,
            },
            "sets": numbered,
        }],
    }))
}

/// A 990 set answering a 204 set (`tender`, as in a parsed tree's
/// `groups[].sets[]`): B1 with the tender's SCAC (B202) and shipment id
/// (B204), `date` and `A` (accept) or `D` (decline). Add N9 or K1 segments
/// to the returned object as needed, then wrap it with [`interchange`].
pub fn tender_response_990(
    tender: &Value,
    accept: bool,
    date: NaiveDate,
) -> Result<Value, TransformError> {
    let set_id = tender.get("ST").and_then(|st| element(st, "ST", 1));
    if set_id.as_deref() != Some("204") {
        return Err(ack_err("ST.ST01", "a 990 answers a 204 load tender"));
    }
    let b2 = tender
        .get("B2")
        .ok_or_else(|| ack_err("B2", "missing: the tender's B2"))?;
    let scac =
        element(b2, "B2", 2).ok_or_else(|| ack_err("B2.B202", "missing: the carrier's SCAC"))?;
    let shipment =
        element(b2, "B2", 4).ok_or_else(|| ack_err("B2.B204", "missing: the shipment id"))?;
    Ok(json!({
        "ST": {"ST01_transaction_set_id": "990"},
        "B1": {
            "B101_scac": scac,
            "B102_shipment_id": shipment,
            "B103_date": date.format("%Y%m%d").to_string(),
            "B104_reservation_action": if accept { "A" } else { "D" },
        },
    }))
}

/// The separators of a new interchange: `*`, `>`, `~` and a newline, and
/// from version 00402 on `^` repeating (ISA11).
fn default_seps(env: &Envelope) -> Seps {
    Seps {
        repetition: (env.version.as_str() >= "00402").then_some('^'),
        ..Seps::default()
    }
}

/// The ISA of a new interchange from `env`, ISA13 being `control` (the
/// caller checks it has at most 9 digits).
fn isa_tree(env: &Envelope, control: u32, seps: &Seps) -> Value {
    json!({
        "ISA01_auth_qualifier": "00",
        "ISA03_security_qualifier": "00",
        "ISA05_sender_qualifier": env.sender_qualifier,
        "ISA06_sender_id": env.sender_id,
        "ISA07_receiver_qualifier": env.receiver_qualifier,
        "ISA08_receiver_id": env.receiver_id,
        "ISA09_date": env.at.format("%y%m%d").to_string(),
        "ISA10_time": env.at.format("%H%M").to_string(),
        // From 00402 on ISA11 is the repetition separator, as written.
        "ISA11_standards_id": match seps.repetition {
            Some(r) => r.to_string(),
            None => "U".to_owned(),
        },
        "ISA12_version": env.version,
        "ISA13_control_number": format!("{control:09}"),
        "ISA14_ack_requested": env.ack_requested,
        "ISA15_usage": env.usage,
        "ISA16_component_separator": seps.component.to_string(),
    })
}

/// [`ack_997_at`] dated as the received interchange (its ISA09/ISA10), so the
/// result depends on its input only; use [`ack_997_at`] to date it now.
pub fn ack_997(received: &Value, control: Control) -> Result<Value, TransformError> {
    ack_997_at(received, control, received_at(received)?)
}

/// When a received interchange tree says it was sent: its ISA09 and ISA10.
pub(crate) fn received_at(received: &Value) -> Result<NaiveDateTime, TransformError> {
    let isa = received
        .get("ISA")
        .ok_or_else(|| ack_err("$.ISA", "missing"))?;
    let stamp = format!(
        "{}{}",
        element(isa, "ISA", 9).unwrap_or_default(),
        element(isa, "ISA", 10).unwrap_or_default()
    );
    NaiveDateTime::parse_from_str(&stamp, "%y%m%d%H%M").map_err(|_| {
        ack_err(
            "$.ISA.ISA09_date",
            format!("not a YYMMDD date and HHMM time: {stamp:?}"),
        )
    })
}

/// A 997 interchange acknowledging a parsed interchange: back from its
/// receiver to its sender, one 997 set per functional group (AK1), with an
/// AK2/AK5 for each of its sets and AK9 for the group. A set is accepted
/// (`A`), or rejected (`R`, AK5 code 5) with an AK3 for each segment that did
/// not fit its loop structure (code 2), mandatory segment missing (code 3) or
/// segment whose elements break the dictionary (code 8, with an AK4 for each
/// element: see [`Received`](super::Received) for the codes); a set type the
/// hub does not know is rejected with code 1. The 997 uses the separators of
/// `received`.
///
/// A parsed tree has passed the envelope checks of [`super::parse`]; to
/// acknowledge an interchange whose trailers are wrong, read its text with
/// [`Received`](super::Received).
pub fn ack_997_at(
    received: &Value,
    control: Control,
    at: NaiveDateTime,
) -> Result<Value, TransformError> {
    acknowledge(received, &[], control, at)
}

/// The envelope of an answer to `received` (a tree with an ISA): from its
/// receiver back to its sender, in its version, dated `at`; and its
/// separators, those of `received` where it has them. Answering in the
/// partner's separators means that what the answer repeats (GS08, GS06,
/// ST02, bad data) cannot hold one of them.
fn reply_envelope(received: &Value, at: NaiveDateTime) -> Result<(Envelope, Seps), TransformError> {
    let isa = received
        .get("ISA")
        .ok_or_else(|| ack_err("$.ISA", "missing"))?;
    // The ids (ISA06, ISA08) are padded with spaces, the qualifiers not.
    let part = |n| {
        let v = element(isa, "ISA", n).unwrap_or_default();
        match n {
            6 | 8 => v.trim_end_matches(' ').to_string(),
            _ => v,
        }
    };
    let mut env = Envelope::new((&part(7), &part(8)), (&part(5), &part(6)), at);
    env.version = element(isa, "ISA", 12).unwrap_or_else(|| "00401".into());
    let seps = match received.get("separators") {
        Some(v) if !v.is_null() => {
            Seps::from_value(Some(v)).map_err(|m| ack_err("$.separators", m))?
        }
        _ => default_seps(&env),
    };
    Ok((env, seps))
}

/// [`ack_997_at`] with what the envelopes of each group got wrong (`notes`,
/// by the group's index; a group without notes had none).
pub(crate) fn acknowledge(
    received: &Value,
    notes: &[GroupNotes],
    control: Control,
    at: NaiveDateTime,
) -> Result<Value, TransformError> {
    let (mut env, seps) = reply_envelope(received, at)?;
    let groups = received
        .get("groups")
        .and_then(Value::as_array)
        .ok_or_else(|| ack_err("$.groups", "missing"))?;
    if groups.is_empty() {
        return Err(ack_err(
            "$.groups",
            "no functional group to acknowledge; a TA1 answers an interchange without groups",
        ));
    }
    if let Some(v) = groups
        .first()
        .and_then(|g| g.get("GS"))
        .and_then(|gs| element(gs, "GS", 8))
    {
        env.group_version = v;
    }
    let sets = groups
        .iter()
        .enumerate()
        .map(|(n, g)| {
            ack_group(g, notes.get(n), &seps).map_err(|e| ack_err(&format!("$.groups[{n}]"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    interchange_in(&env, control, sets, &seps)
}

/// A TA1 interchange answering `received` (a tree with an ISA): TA101 to
/// TA103 repeat its ISA13, ISA09 and ISA10; TA104 is `A` with note code
/// `000` when `problem` is `None`, else `R` with the problem's note code.
pub(crate) fn ta1(
    received: &Value,
    problem: Option<&InterchangeProblem>,
    control: u32,
    at: NaiveDateTime,
) -> Result<Value, TransformError> {
    if control > 999_999_999 {
        return Err(ack_err("control", "ISA13 has 9 digits"));
    }
    let (env, seps) = reply_envelope(received, at)?;
    let isa = received
        .get("ISA")
        .ok_or_else(|| ack_err("$.ISA", "missing"))?;
    let isa_reply = isa_tree(&env, control, &seps);
    let (code, note) = problem.map_or(("A", "000"), |p| ("R", p.note_code));
    Ok(json!({
        "separators": seps.to_value(),
        "ISA": isa_reply,
        "TA1": [{
            "TA101_control_number": element(isa, "ISA", 13).unwrap_or_default(),
            "TA102_date": element(isa, "ISA", 9).unwrap_or_default(),
            "TA103_time": element(isa, "ISA", 10).unwrap_or_default(),
            "TA104_ack_code": code,
            "TA105_note_code": note,
        }],
        "groups": [],
    }))
}

/// The 997 set for one received group, with what its envelopes got wrong.
fn ack_group(group: &Value, notes: Option<&GroupNotes>, seps: &Seps) -> Result<Value, String> {
    let gs = group.get("GS").ok_or("GS missing")?;
    let sets = group
        .get("sets")
        .and_then(Value::as_array)
        .ok_or("sets missing")?;
    let mut loops = Vec::with_capacity(sets.len());
    let mut accepted = 0;
    for (n, set) in sets.iter().enumerate() {
        let st = set.get("ST").ok_or("a set without ST")?;
        let set_id = element(st, "ST", 1).unwrap_or_default();
        let mut item = Map::new();
        item.insert(
            "AK2".into(),
            json!({"AK201_transaction_set_id": set_id, "AK202_control_number": element(st, "ST", 2).unwrap_or_default()}),
        );
        let (errors, unsupported) = match schema::set_schema(&set_id) {
            None => (Vec::new(), true),
            Some(slots) => (set_errors(slots, set, seps), false),
        };
        // AK502 to AK506: not supported (1), then the trailer's problems
        // (2 to 4), then segments in error (5).
        let mut codes: Vec<&str> = Vec::new();
        if unsupported {
            codes.push("1");
        }
        if let Some(trailer) = notes.and_then(|g| g.sets.get(n)) {
            codes.extend(trailer.iter().copied());
        }
        if !errors.is_empty() {
            codes.push("5");
        }
        let mut ak5 = Map::new();
        ak5.insert(
            "AK501_ack_code".into(),
            Value::from(if codes.is_empty() { "A" } else { "R" }),
        );
        put_codes(&mut ak5, "AK5", 2, &codes);
        if codes.is_empty() {
            accepted += 1;
        }
        if !errors.is_empty() {
            item.insert("AK3_loop".into(), Value::Array(errors));
        }
        item.insert("AK5".into(), Value::Object(ak5));
        loops.push(Value::Object(item));
    }
    let group_codes = notes.map_or(&[][..], |g| g.codes.as_slice());
    let code = match accepted {
        _ if !group_codes.is_empty() => "R",
        a if a == sets.len() => "A",
        0 => "R",
        _ => "P",
    };
    let included = notes.and_then(|g| g.sets_included).unwrap_or(sets.len());
    let mut ak9 = Map::new();
    ak9.insert("AK901_ack_code".into(), Value::from(code));
    ak9.insert(
        "AK902_sets_included".into(),
        Value::from(included.to_string()),
    );
    ak9.insert(
        "AK903_sets_received".into(),
        Value::from(sets.len().to_string()),
    );
    ak9.insert(
        "AK904_sets_accepted".into(),
        Value::from(accepted.to_string()),
    );
    put_codes(&mut ak9, "AK9", 5, group_codes);
    let mut set = Map::new();
    set.insert("ST".into(), json!({"ST01_transaction_set_id": "997"}));
    set.insert(
        "AK1".into(),
        json!({
            "AK101_functional_id": element(gs, "GS", 1).unwrap_or_default(),
            "AK102_group_control_number": element(gs, "GS", 6).unwrap_or_default(),
        }),
    );
    if !loops.is_empty() {
        set.insert("AK2_loop".into(), Value::Array(loops));
    }
    set.insert("AK9".into(), Value::Object(ak9));
    Ok(Value::Object(set))
}

/// Puts up to five error codes into `segment` from element `first` on
/// (AK502 to AK506, AK905 to AK909).
fn put_codes(seg: &mut Map<String, Value>, segment: &str, first: usize, codes: &[&str]) {
    for (n, code) in codes.iter().take(5).enumerate() {
        seg.insert(schema::element_key(segment, first + n), Value::from(*code));
    }
}

/// AK3 loop items for what is wrong with a known set, in segment order.
fn set_errors(slots: &'static [Slot], set: &Value, seps: &Seps) -> Vec<Value> {
    let mut errors = Vec::new();
    let unexpected = set.get("unstructured");
    if let Some(list) = set.get("segments") {
        // A flat set: the segment that did not fit is reported (code 2),
        // the others only for their elements.
        let at = unexpected
            .and_then(|u| u.get("segment"))
            .and_then(Value::as_u64);
        let mut flagged = false;
        for (n, item) in list.as_array().into_iter().flatten().enumerate() {
            let pos = n as u64 + 2;
            let Some((id, seg)) = item.as_object().and_then(|o| o.iter().next()) else {
                continue;
            };
            if Some(pos) == at {
                errors.push(ak3(id, pos, "", "2", Vec::new()));
                flagged = true;
            } else {
                segment_errors(id, seg, (pos, ""), seps, &mut errors);
            }
        }
        if let Some(u) = unexpected.filter(|_| !flagged) {
            let id = u
                .get("segment_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            errors.push(ak3(id, at.unwrap_or(0), "", "2", Vec::new()));
        }
        return errors;
    }
    if let Some(obj) = set.as_object() {
        let mut pos = 2; // the segment after ST
        check_level(slots, 0, obj, ("", &mut pos), seps, &mut errors);
    }
    errors
}

/// An AK3 loop item: the segment (AK301 to AK304) and its AK4s.
fn ak3(id: &str, pos: u64, loop_id: &str, code: &str, ak4: Vec<Value>) -> Value {
    let mut m = Map::new();
    m.insert("AK301_segment_id".into(), Value::String(id.into()));
    m.insert(
        "AK302_segment_position".into(),
        Value::String(pos.to_string()),
    );
    if !loop_id.is_empty() {
        m.insert("AK303_loop_id".into(), Value::String(loop_id.into()));
    }
    m.insert("AK304_error_code".into(), Value::String(code.into()));
    let mut item = Map::new();
    item.insert("AK3".into(), Value::Object(m));
    if !ak4.is_empty() {
        item.insert("AK4".into(), Value::Array(ak4));
    }
    Value::Object(item)
}

/// Walks a level in writing order, counting segment positions, and notes
/// each mandatory slot that is empty (where it would have been) and each
/// segment whose elements break their rules.
fn check_level(
    slots: &'static [Slot],
    skip: usize,
    obj: &Map<String, Value>,
    (loop_id, pos): (&str, &mut u64),
    seps: &Seps,
    errors: &mut Vec<Value>,
) {
    for slot in slots.iter().skip(skip) {
        let items: Vec<&Value> = match obj.get(slot.key()) {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(Value::Null) | None => Vec::new(),
            Some(v) => vec![v],
        };
        if items.is_empty() && slot.required {
            let lid = match &slot.kind {
                Kind::Loop(def) => def.id,
                Kind::Segment(_) => loop_id,
            };
            errors.push(ak3(slot.trigger(), *pos, lid, "3", Vec::new()));
        }
        for item in items {
            match (&slot.kind, item.as_object()) {
                (Kind::Loop(def), Some(inner)) => {
                    if let Some(first) = inner.get(def.trigger()) {
                        segment_errors(def.trigger(), first, (*pos, def.id), seps, errors);
                    }
                    *pos += 1;
                    check_level(def.slots, 1, inner, (def.id, pos), seps, errors);
                }
                (Kind::Segment(id), _) => {
                    segment_errors(id, item, (*pos, loop_id), seps, errors);
                    *pos += 1;
                }
                _ => *pos += 1,
            }
        }
    }
}

/// The most AK4s one AK3 holds (AK4's maximum use in the 997).
const MAX_AK4: usize = 99;

/// Notes an AK3 (code 8) with its AK4s if segment `id` (`seg`, at `pos` in
/// loop `loop_id`) breaks the rules that [`schema::element_rules`] knows
/// for it; `seps` are the 997's.
fn segment_errors(
    id: &str,
    seg: &Value,
    (pos, loop_id): (u64, &str),
    seps: &Seps,
    errors: &mut Vec<Value>,
) {
    let mut ak4 = Vec::new();
    for rule in schema::element_rules(id) {
        let value = seg.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| schema::element_position(id, k) == Some(rule.position))
                .map(|(_, v)| v)
        });
        let text = match value {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            // A composite or repeats where a simple element belongs: not
            // something a length or code list can measure.
            Some(_) => continue,
        };
        let code = match text.as_deref() {
            None if rule.required => "1",
            None => continue,
            Some(t) => {
                let len = match rule.ty {
                    Ty::Text => t.chars().count(),
                    Ty::Num => t.chars().filter(|c| *c != '-' && *c != '.').count(),
                };
                if len < rule.min {
                    "4"
                } else if len > rule.max {
                    "5"
                } else if !rule.codes.is_empty() && !rule.codes.contains(&t) {
                    "7"
                } else {
                    continue;
                }
            }
        };
        if ak4.len() < MAX_AK4 {
            ak4.push(ak4_item(rule, code, text.as_deref(), seps));
        }
    }
    if !ak4.is_empty() {
        errors.push(ak3(id, pos, loop_id, "8", ak4));
    }
}

/// One AK4: the element's position (AK401), its data element number
/// (AK402), the error (AK403) and a copy of the bad data (AK404: at most 99
/// characters, without control characters or `seps`, the 997's separators).
fn ak4_item(rule: &ElementRule, code: &str, bad: Option<&str>, seps: &Seps) -> Value {
    let mut m = Map::new();
    m.insert(
        "AK401_element_position".into(),
        Value::from(rule.position.to_string()),
    );
    m.insert(
        "AK402_element_reference".into(),
        Value::from(rule.number.to_string()),
    );
    m.insert("AK403_error_code".into(), Value::from(code));
    let copy: String = bad
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control() && !seps.is_delimiter(*c))
        .take(99)
        .collect();
    if !copy.is_empty() {
        m.insert("AK404_bad_value".into(), Value::from(copy));
    }
    Value::Object(m)
}
