//! Reading a received interchange to acknowledge it. Where [`super::parse`]
//! refuses an interchange whose trailers (SE, GE, IEA) do not match their
//! headers, this reading notes what is wrong and goes on, so the partner gets
//! a 997 (and a TA1) saying so. It is only for acknowledging: the mapping
//! engine reads with the strict [`super::parse`].

use super::ack::{self, Control};
use super::parse::{self, Seg, seg_err};
use super::seps::Seps;
use crate::error::{Limits, TransformError};
use chrono::NaiveDateTime;
use serde_json::{Map, Value};

/// What the envelopes of one functional group got wrong, for its AK9 and
/// the AK5 of each of its sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupNotes {
    /// AK905 to AK909 (element 716): `3` the GE is missing, `4` GE02 is not
    /// GS06, `5` GE01 is not the number of sets.
    pub(crate) codes: Vec<&'static str>,
    /// GE01, the number of sets the trailer says, where it is a number (AK902).
    pub(crate) sets_included: Option<usize>,
    /// AK502 to AK506 (element 718) of each set, in order: `2` the SE is
    /// missing, `3` SE02 is not ST02, `4` SE01 is not the number of segments.
    pub(crate) sets: Vec<Vec<&'static str>>,
}

/// A problem with the interchange envelope itself (ISA/IEA). It is not the
/// 997's to report (the 997 answers functional groups) but a TA1's: see
/// [`Received::ta1`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterchangeProblem {
    /// The TA105 interchange note code (element I18): `001` IEA02 is not
    /// ISA13, `021` IEA01 is not the number of groups, `023` the interchange
    /// ends without its IEA.
    pub note_code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

/// A received interchange read to acknowledge it: its tree (as
/// [`super::parse`] gives it, whatever its trailers say) and what its
/// envelopes got wrong.
///
/// The codes come from the X12 code lists as Microsoft's X12 reference
/// documents them
/// (<https://learn.microsoft.com/en-us/azure/logic-apps/logic-apps-enterprise-integration-x12-997-acknowledgment>,
/// <https://learn.microsoft.com/en-us/azure/logic-apps/logic-apps-enterprise-integration-x12-ta1-acknowledgment>),
/// checked against the dictionary: element 718 (AK502) at
/// <https://stedi.com/edi/x12-004030/element/718> and element 716 (AK905)
/// for 004010 at <http://internal.dcsnewyork.com/tech/edi/x12/EDI_4010/el716.htm>:
///
/// | where | code | meaning |
/// |---|---|---|
/// | AK502–AK506 | `1` | transaction set not supported |
/// | | `2` | transaction set trailer missing |
/// | | `3` | transaction set control number in header and trailer do not match |
/// | | `4` | number of included segments does not match actual count |
/// | | `5` | one or more segments in error |
/// | AK905–AK909 | `3` | functional group trailer missing |
/// | | `4` | group control number in the functional group header and trailer do not agree |
/// | | `5` | number of included transaction sets does not match actual count |
/// | AK304 | `2` / `3` / `8` | unexpected segment / mandatory segment missing / segment has data element errors |
/// | AK403 | `1` | mandatory data element missing |
/// | | `4` / `5` | data element too short / too long |
/// | | `7` | invalid code value |
/// | TA105 | `001` | interchange control numbers in ISA13 and IEA02 do not match |
/// | | `021` | invalid number of included groups value |
/// | | `023` | improper (premature) end-of-file |
///
/// A set with any AK5 code is rejected (`R`); a group with any AK9 code is
/// rejected as a whole (AK901 `R`; its sets keep their own AK5): a group
/// whose trailer does not match may be cut short, and [`super::parse`]
/// refuses it. An interchange problem leaves the 997 as it is: the groups
/// are acknowledged, and [`Received::ta1`] reports the problem.
///
/// What cannot be acknowledged is still an error, with its location: an ISA
/// that cannot be read (there is nobody to answer), text that cannot be cut
/// into segments, a segment outside any group or between sets, a set without
/// ST01 or ST02 or a group without GS06 (the 997 must name them), and
/// anything after the IEA.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    tree: Value,
    groups: Vec<GroupNotes>,
    problems: Vec<InterchangeProblem>,
}

impl Received {
    /// Reads `text` (one interchange, ISA to IEA) within `limits`, noting
    /// what its trailers get wrong instead of refusing it.
    pub fn read(text: &str, limits: &Limits) -> Result<Self, TransformError> {
        parse::check_size(text, limits)?;
        let (isa, seps, rest) = parse::read_isa(text)?;
        let segs = parse::tokenize(rest, &seps)?;
        let mut reader = Reader {
            segs: &segs,
            seps: &seps,
            i: 0,
            ta1: Vec::new(),
        };
        let (groups, notes, problems) = reader.interchange(&isa)?;
        let mut root = Map::new();
        root.insert("separators".into(), seps.to_value());
        root.insert("ISA".into(), parse::isa_value(&isa));
        if !reader.ta1.is_empty() {
            root.insert("TA1".into(), Value::Array(reader.ta1));
        }
        root.insert("groups".into(), Value::Array(groups));
        let tree = Value::Object(root);
        parse::check_depth(&tree, limits)?;
        Ok(Self {
            tree,
            groups: notes,
            problems,
        })
    }

    /// The interchange as a tree, the same as [`super::parse`] gives for an
    /// interchange whose trailers are right; TA1 segments before the first
    /// group (an interchange answering another) are under `TA1`.
    pub fn tree(&self) -> &Value {
        &self.tree
    }

    /// What is wrong with the interchange envelope (IEA), if anything; the
    /// 997 does not report it, [`Received::ta1`] does.
    pub fn interchange_problems(&self) -> &[InterchangeProblem] {
        &self.problems
    }

    /// [`Received::ack_997_at`] dated as the received interchange (its
    /// ISA09/ISA10), so the result depends on its input only.
    pub fn ack_997(&self, control: Control) -> Result<Value, TransformError> {
        self.ack_997_at(control, ack::received_at(&self.tree)?)
    }

    /// A 997 interchange acknowledging each functional group, as
    /// [`super::ack_997_at`] does for a parsed tree, and besides with the
    /// trailer problems of its sets (AK502 `2`, `3`, `4`) and of the group
    /// (AK905 `3`, `4`, `5`; AK902 then repeats GE01 and AK903 counts the
    /// sets received). Write it with [`super::write`].
    pub fn ack_997_at(&self, control: Control, at: NaiveDateTime) -> Result<Value, TransformError> {
        ack::acknowledge(&self.tree, &self.groups, control, at)
    }

    /// A TA1 interchange (ISA, TA1, IEA and no group) answering the
    /// interchange envelope, ISA13 being `control` and dated `at`: TA104 `A`
    /// with TA105 `000` when the IEA is right, else `R` with the note code of
    /// the first of [`Received::interchange_problems`]. Send it when there is
    /// a problem, or when the sender asked for one (ISA14 `1`). Write it with
    /// [`super::write`].
    pub fn ta1(&self, control: u32, at: NaiveDateTime) -> Result<Value, TransformError> {
        ack::ta1(&self.tree, self.problems.first(), control, at)
    }
}

/// The 997 for the raw text of a received interchange, dated as it (ISA09
/// and ISA10): [`Received::read`], then [`Received::ack_997`]. Unlike
/// [`super::parse`] and [`super::ack_997`], a set or group whose trailer
/// does not match its header is answered (rejected, with the reason) rather
/// than refused.
pub fn ack_997_text(
    text: &str,
    control: Control,
    limits: &Limits,
) -> Result<Value, TransformError> {
    Received::read(text, limits)?.ack_997(control)
}

/// Walks the segments after the ISA.
struct Reader<'s, 'a> {
    segs: &'s [Seg<'a>],
    seps: &'s Seps,
    /// The next segment.
    i: usize,
    /// TA1 segments between the ISA and the first group.
    ta1: Vec<Value>,
}

/// The groups of an interchange, their notes, and the interchange's problems.
type Read = (Vec<Value>, Vec<GroupNotes>, Vec<InterchangeProblem>);

impl Reader<'_, '_> {
    fn interchange(&mut self, isa: &Seg<'_>) -> Result<Read, TransformError> {
        let mut groups = Vec::new();
        let mut notes = Vec::new();
        let mut problems = Vec::new();
        loop {
            match self.segs.get(self.i) {
                Some(seg) if seg.id == "TA1" && groups.is_empty() => {
                    self.ta1.push(parse::seg_value(seg, self.seps));
                    self.i += 1;
                }
                None => {
                    problems.push(InterchangeProblem {
                        note_code: "023",
                        message: "the interchange ends without its IEA trailer".into(),
                    });
                    break;
                }
                Some(seg) if seg.id == "GS" => {
                    let (group, note) = self.group(seg)?;
                    groups.push(group);
                    notes.push(note);
                }
                Some(seg) if seg.id == "IEA" => {
                    let said = element(seg, 1);
                    if said.parse::<usize>().ok() != Some(groups.len()) {
                        problems.push(InterchangeProblem {
                            note_code: "021",
                            message: format!(
                                "IEA01 says {said:?} functional groups but there are {}",
                                groups.len()
                            ),
                        });
                    }
                    let (got, control) = (element(seg, 2), element(isa, 13));
                    if got != control {
                        problems.push(InterchangeProblem {
                            note_code: "001",
                            message: format!(
                                "IEA02 is {got:?} but the control number of the ISA is {control:?}"
                            ),
                        });
                    }
                    if let Some(extra) = self.segs.get(self.i + 1) {
                        return Err(seg_err(
                            extra,
                            None,
                            "a segment after IEA; one interchange per document",
                        ));
                    }
                    break;
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
        Ok((groups, notes, problems))
    }

    /// One functional group from its GS (at `self.i`) to its GE, or to the
    /// next GS or the IEA when its GE is missing.
    fn group(&mut self, gs: &Seg<'_>) -> Result<(Value, GroupNotes), TransformError> {
        let control = required(gs, 6, "the group control number")?;
        self.i += 1;
        let mut sets = Vec::new();
        let mut notes = GroupNotes::default();
        loop {
            match self.segs.get(self.i) {
                Some(seg) if seg.id == "ST" => {
                    let (set, codes) = self.set(seg)?;
                    sets.push(set);
                    notes.sets.push(codes);
                }
                Some(seg) if seg.id == "GE" => {
                    if element(seg, 2) != control {
                        notes.codes.push("4");
                    }
                    notes.sets_included = element(seg, 1).parse().ok();
                    if notes.sets_included != Some(sets.len()) {
                        notes.codes.push("5");
                    }
                    self.i += 1;
                    break;
                }
                None
                | Some(Seg {
                    id: "GS" | "IEA", ..
                }) => {
                    notes.codes.push("3");
                    break;
                }
                Some(seg) => {
                    return Err(seg_err(
                        seg,
                        None,
                        format!("expected ST or GE, got {}", seg.id),
                    ));
                }
            }
        }
        let mut m = Map::new();
        m.insert("GS".into(), parse::seg_value(gs, self.seps));
        m.insert("sets".into(), Value::Array(sets));
        Ok((Value::Object(m), notes))
    }

    /// One transaction set from its ST (at `self.i`) to its SE, or to the
    /// next envelope segment when its SE is missing.
    fn set(&mut self, st: &Seg<'_>) -> Result<(Value, Vec<&'static str>), TransformError> {
        required(st, 1, "the transaction set id")?;
        let control = required(st, 2, "the set control number")?;
        let start = self.i;
        let mut end = start + 1;
        let se = loop {
            match self.segs.get(end) {
                Some(seg) if seg.id == "SE" => break Some(seg),
                Some(seg) if matches!(seg.id, "ST" | "GS" | "GE" | "IEA" | "ISA") => break None,
                Some(_) => end += 1,
                None => break None,
            }
        };
        let mut codes = Vec::new();
        match se {
            Some(se) => {
                if element(se, 2) != control {
                    codes.push("3");
                }
                if element(se, 1).parse::<usize>().ok() != Some(end - start + 1) {
                    codes.push("4");
                }
                self.i = end + 1;
            }
            None => {
                codes.push("2");
                self.i = end;
            }
        }
        let body = self.segs.get(start + 1..end).unwrap_or(&[]);
        Ok((parse::structure(st, body, self.seps), codes))
    }
}

/// Element `n` (1-based) of `seg`, empty where it is not there.
fn element<'a>(seg: &Seg<'a>, n: usize) -> &'a str {
    n.checked_sub(1)
        .and_then(|i| seg.elems.get(i))
        .copied()
        .unwrap_or("")
}

/// Element `n` of `seg`, which the 997 cannot do without.
fn required<'a>(seg: &Seg<'a>, n: usize, what: &str) -> Result<&'a str, TransformError> {
    match element(seg, n) {
        "" => Err(seg_err(
            seg,
            Some(n),
            format!(
                "{}{n:02} ({what}) is missing; the acknowledgment must name it",
                seg.id
            ),
        )),
        v => Ok(v),
    }
}
