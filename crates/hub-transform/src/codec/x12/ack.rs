//! Making interchanges in code: envelopes, the 997 acknowledgment and the
//! 990 answer to a load tender.

use super::schema::{self, Kind, Slot};
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
    let seps = Seps {
        repetition: (env.version.as_str() >= "00402").then_some('^'),
        ..Seps::default()
    };
    Ok(json!({
        "separators": seps.to_value(),
        "ISA": {
            "ISA01_auth_qualifier": "00",
            "ISA03_security_qualifier": "00",
            "ISA05_sender_qualifier": env.sender_qualifier,
            "ISA06_sender_id": env.sender_id,
            "ISA07_receiver_qualifier": env.receiver_qualifier,
            "ISA08_receiver_id": env.receiver_id,
            "ISA09_date": env.at.format("%y%m%d").to_string(),
            "ISA10_time": env.at.format("%H%M").to_string(),
            // From 00402 on ISA11 is the repetition separator, as written.
            "ISA11_standards_id": if seps.repetition.is_some() { "^" } else { "U" },
            "ISA12_version": env.version,
            "ISA13_control_number": format!("{:09}", control.interchange),
            "ISA14_ack_requested": env.ack_requested,
            "ISA15_usage": env.usage,
            "ISA16_component_separator": seps.component.to_string(),
        },
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

/// [`ack_997_at`] dated as the received interchange (its ISA09/ISA10), so the
/// result depends on its input only; use [`ack_997_at`] to date it now.
pub fn ack_997(received: &Value, control: Control) -> Result<Value, TransformError> {
    let isa = received
        .get("ISA")
        .ok_or_else(|| ack_err("$.ISA", "missing"))?;
    let stamp = format!(
        "{}{}",
        element(isa, "ISA", 9).unwrap_or_default(),
        element(isa, "ISA", 10).unwrap_or_default()
    );
    let at = NaiveDateTime::parse_from_str(&stamp, "%y%m%d%H%M").map_err(|_| {
        ack_err(
            "$.ISA.ISA09_date",
            format!("not a YYMMDD date and HHMM time: {stamp:?}"),
        )
    })?;
    ack_997_at(received, control, at)
}

/// A 997 interchange acknowledging a parsed interchange: back from its
/// receiver to its sender, one 997 set per functional group (AK1), with an
/// AK2/AK5 for each of its sets and AK9 for the group. A set is accepted
/// (`A`), or rejected (`R`, AK5 code 5) with an AK3 for each segment that did
/// not fit its loop structure (code 2) or mandatory segment missing (code 3);
/// a set type the hub does not know is rejected with code 1.
pub fn ack_997_at(
    received: &Value,
    control: Control,
    at: NaiveDateTime,
) -> Result<Value, TransformError> {
    let isa = received
        .get("ISA")
        .ok_or_else(|| ack_err("$.ISA", "missing"))?;
    let part = |n| {
        element(isa, "ISA", n)
            .unwrap_or_default()
            .trim_end()
            .to_string()
    };
    let groups = received
        .get("groups")
        .and_then(Value::as_array)
        .ok_or_else(|| ack_err("$.groups", "missing"))?;
    let mut env = Envelope::new((&part(7), &part(8)), (&part(5), &part(6)), at);
    env.version = element(isa, "ISA", 12).unwrap_or_else(|| "00401".into());
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
        .map(|(n, g)| ack_group(g).map_err(|e| ack_err(&format!("$.groups[{n}]"), e)))
        .collect::<Result<Vec<_>, _>>()?;
    interchange(&env, control, sets)
}

/// The 997 set for one received group.
fn ack_group(group: &Value) -> Result<Value, String> {
    let gs = group.get("GS").ok_or("GS missing")?;
    let sets = group
        .get("sets")
        .and_then(Value::as_array)
        .ok_or("sets missing")?;
    let mut loops = Vec::with_capacity(sets.len());
    let mut accepted = 0;
    for set in sets {
        let st = set.get("ST").ok_or("a set without ST")?;
        let set_id = element(st, "ST", 1).unwrap_or_default();
        let mut item = Map::new();
        item.insert(
            "AK2".into(),
            json!({"AK201_transaction_set_id": set_id, "AK202_control_number": element(st, "ST", 2).unwrap_or_default()}),
        );
        let (errors, unsupported) = match schema::set_schema(&set_id) {
            None => (Vec::new(), true),
            Some(slots) => (set_errors(slots, set), false),
        };
        let ak5 = if unsupported {
            json!({"AK501_ack_code": "R", "AK502_error_code": "1"})
        } else if errors.is_empty() {
            accepted += 1;
            json!({"AK501_ack_code": "A"})
        } else {
            json!({"AK501_ack_code": "R", "AK502_error_code": "5"})
        };
        if !errors.is_empty() {
            item.insert("AK3_loop".into(), Value::Array(errors));
        }
        item.insert("AK5".into(), ak5);
        loops.push(Value::Object(item));
    }
    let code = match accepted {
        a if a == sets.len() => "A",
        0 => "R",
        _ => "P",
    };
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
    set.insert(
        "AK9".into(),
        json!({
            "AK901_ack_code": code,
            "AK902_sets_included": sets.len().to_string(),
            "AK903_sets_received": sets.len().to_string(),
            "AK904_sets_accepted": accepted.to_string(),
        }),
    );
    Ok(Value::Object(set))
}

/// AK3 loop items for what is wrong with a known set.
fn set_errors(slots: &'static [Slot], set: &Value) -> Vec<Value> {
    let mut errors = Vec::new();
    if let Some(u) = set.get("unstructured") {
        let id = u
            .get("segment_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let pos = u.get("segment").and_then(Value::as_u64).unwrap_or(0);
        errors.push(ak3(id, pos, "", "2"));
        return errors;
    }
    if set.get("segments").is_some() {
        return errors;
    }
    if let Some(obj) = set.as_object() {
        let mut pos = 2; // the segment after ST
        check_level(slots, 0, obj, "", &mut pos, &mut errors);
    }
    errors
}

fn ak3(id: &str, pos: u64, loop_id: &str, code: &str) -> Value {
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
    json!({ "AK3": Value::Object(m) })
}

/// Walks a level in writing order, counting segment positions, and notes
/// each mandatory slot that is empty (where it would have been).
fn check_level(
    slots: &'static [Slot],
    skip: usize,
    obj: &Map<String, Value>,
    loop_id: &str,
    pos: &mut u64,
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
            errors.push(ak3(slot.trigger(), *pos, lid, "3"));
        }
        for item in items {
            match (&slot.kind, item.as_object()) {
                (Kind::Loop(def), Some(inner)) => {
                    *pos += 1;
                    check_level(def.slots, 1, inner, def.id, pos, errors);
                }
                _ => *pos += 1,
            }
        }
    }
}
