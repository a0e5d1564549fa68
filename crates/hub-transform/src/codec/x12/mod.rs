//! X12 (logistics EDI: 204, 210, 214, 990, 997, and the TA1) read into and
//! written from the neutral tree.
//!
//! # The tree
//!
//! ```json
//! {
//!   "separators": {"element": "*", "component": ">", "repetition": null,
//!                  "segment": "~", "suffix": "\n"},
//!   "ISA": {"ISA01_auth_qualifier": "00", "ISA03_security_qualifier": "00",
//!           "ISA05_sender_qualifier": "ZZ", "ISA06_sender_id": "SHIPPERCO", …,
//!           "ISA13_control_number": "000000101", …},
//!   "groups": [{
//!     "GS": {"GS01_functional_id": "SM", …, "GS06_control_number": "101", …},
//!     "sets": [{
//!       "ST": {"ST01_transaction_set_id": "204", "ST02_control_number": "0001"},
//!       "B2": {"B202_scac": "ABCD", "B204_shipment_id": "LOAD-7788", "B206_payment_method": "PP"},
//!       "L11": [{"L1101_reference_id": "PO-5566", "L1102_reference_qualifier": "PO"}],
//!       "N1_loop": [{"N1": {…}, "N4": {…}}],
//!       "S5_loop": [{"S5": {…}, "G62": [{…}], "N1_loop": [{"N1": {…}, "N4": {…}}]}],
//!       "L3": {…}
//!     }]
//!   }]
//! }
//! ```
//!
//! - A segment is an object of its non-empty elements. A key is the segment
//!   id, the 2-digit position and, where the hub knows it, a name
//!   (`B204_shipment_id`); only the digits count when writing, so `B204` works
//!   too. `_len` keeps the element count when the last elements are empty. A
//!   composite element is an array of strings, repeated elements (ISA11 as a
//!   repetition separator) an array of arrays.
//! - A known set (204, 210, 214, 990, 997) follows its loop structure (see
//!   `schema.rs`): a segment that occurs at most once is an object, one that
//!   may repeat an array, a loop an array under `<trigger>_loop` (`S5_loop`
//!   is the 204's 0300 stop loop, with its 0310 `N1_loop`). An unknown set,
//!   or a known one with a segment that fits nowhere, is `{"ST": …,
//!   "segments": [{"NTE": {…}}, …]}` (then `unstructured` says which segment
//!   did not fit; the 997 reports it). Either way it writes back the same.
//! - SE, GE and IEA are not in the tree: parsing checks them, writing computes
//!   them (SE01 counts ST to SE, SE02 = ST02, GE01 the sets, GE02 = GS06, IEA01
//!   the groups, IEA02 = ISA13).
//! - A TA1 interchange (an answer to an interchange envelope) has its TA1
//!   segments under `TA1`, an array written between the ISA and the groups
//!   (none); [`Received::read`] reads it back, [`parse`] reads groups only.
//!
//! Parsing checks the envelopes (a wrong count or control number is an
//! `invalid_x12` error at that segment and element); [`write()`] of a parsed
//! tree gives the input back byte for byte when its segment suffix is the
//! same after every segment, as the ISA's (line breaks between segments are
//! otherwise accepted and written as after the ISA).
//!
//! # Acknowledging
//!
//! [`ack_997`] answers a parsed tree. A partner whose interchange has a
//! trailer that does not match (SE, GE or IEA count or control number) or is
//! missing gets no tree from [`parse`], but still an answer:
//! [`ack_997_text`] (or [`Received::read`], then [`Received::ack_997`] and
//! [`Received::ta1`]) reads the text leniently and rejects the set or group
//! with the reason (AK5, AK9), and the 997 reports element errors (AK4) of
//! the segments the hub reads. [`Received`] lists the codes.

// The API returns the crate's `TransformError` (with its `Location`) by value,
// as every codec does; boxing it here would make X12 the odd one out.

mod ack;
mod parse;
mod received;
mod schema;
mod seps;
mod write;

pub use ack::{Control, Envelope, ack_997, ack_997_at, interchange, tender_response_990};
pub use received::{InterchangeProblem, Received, ack_997_text};

use crate::error::{Limits, TransformError};
use serde_json::Value;

/// The widths of ISA01 to ISA16.
const ISA_WIDTHS: [usize; 16] = [2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1];

/// The most elements a segment may have (positions are 2 or 3 digits).
const MAX_ELEMENTS: usize = 999;

/// No tree made by [`parse`] nests deeper than this (root, groups, group,
/// sets, set, two levels of loops, a repeating segment, a segment, repeats
/// of a composite).
const MAX_TREE_DEPTH: usize = 14;

/// Reads one interchange (ISA to IEA) into the tree described in the module
/// docs. The separators come from the ISA (element at byte 3, component at
/// ISA16, segment terminator right after it, repetition at ISA11 where it is
/// not a letter or digit). Errors: `input_too_large` and `too_deep` (see
/// `limits`), `invalid_x12` with the segment (1-based, ISA being 1), its id
/// and the element where it applies.
pub fn parse(text: &str, limits: &Limits) -> Result<Value, TransformError> {
    parse::parse(text, limits)
}

/// Writes a tree (from [`parse`], [`interchange`] or built in code) as an
/// interchange: ISA at its fixed widths (ISA02/04/06/08 padded with spaces,
/// ISA13 with zeros), SE/GE/IEA counts and control numbers computed, and the
/// tree's separators (defaults `*`, `>`, `~` and a newline). Errors:
/// `invalid_x12_tree` with the JSON path of what is wrong.
pub fn write(tree: &Value) -> Result<String, TransformError> {
    write::write(tree)
}
