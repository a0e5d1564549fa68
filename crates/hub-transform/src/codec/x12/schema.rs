//! The loop structure of the transaction sets the hub speaks (204, 210, 214,
//! 990, 997, version 004010) and the names of their elements.
//!
//! A level (the set's body or a loop) is an ordered list of slots; a slot is a
//! segment or a loop whose first segment (its trigger) starts each of its
//! iterations. Segments that may occur once are a single object in the tree,
//! the others an array; loops are always arrays, under the key
//! `<trigger>_loop` (`S5_loop`). The tables follow the 004010 guides closely
//! enough for real documents, with rarely used segments left out; a set that
//! does not fit is kept as a flat list of segments (see the module docs).

/// One place in a level.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) kind: Kind,
    /// At most once (a single object in the tree) or more often (an array).
    pub(crate) repeats: bool,
    /// Mandatory: its absence is reported by the 997.
    pub(crate) required: bool,
}

/// A segment or a loop.
#[derive(Debug)]
pub(crate) enum Kind {
    Segment(&'static str),
    Loop(&'static LoopDef),
}

/// A loop: its id in the implementation guides, and its slots, the first of
/// which is the trigger segment.
#[derive(Debug)]
pub(crate) struct LoopDef {
    pub(crate) id: &'static str,
    pub(crate) key: &'static str,
    pub(crate) slots: &'static [Slot],
}

impl Slot {
    /// The segment id that this slot starts with.
    pub(crate) fn trigger(&self) -> &'static str {
        match &self.kind {
            Kind::Segment(id) => id,
            Kind::Loop(l) => l.trigger(),
        }
    }

    /// The key of the slot in a level's object.
    pub(crate) fn key(&self) -> &'static str {
        match &self.kind {
            Kind::Segment(id) => id,
            Kind::Loop(l) => l.key,
        }
    }
}

impl LoopDef {
    pub(crate) fn trigger(&self) -> &'static str {
        match self.slots.first().map(|s| &s.kind) {
            Some(Kind::Segment(id)) => id,
            _ => "",
        }
    }
}

const fn one(id: &'static str) -> Slot {
    Slot {
        kind: Kind::Segment(id),
        repeats: false,
        required: false,
    }
}
const fn req(id: &'static str) -> Slot {
    Slot {
        kind: Kind::Segment(id),
        repeats: false,
        required: true,
    }
}
const fn many(id: &'static str) -> Slot {
    Slot {
        kind: Kind::Segment(id),
        repeats: true,
        required: false,
    }
}
const fn lp(def: &'static LoopDef) -> Slot {
    Slot {
        kind: Kind::Loop(def),
        repeats: true,
        required: false,
    }
}
const fn req_lp(def: &'static LoopDef) -> Slot {
    Slot {
        kind: Kind::Loop(def),
        repeats: true,
        required: true,
    }
}

// 204 Motor Carrier Load Tender.
static N1_0100_204: LoopDef = LoopDef {
    id: "0100",
    key: "N1_loop",
    slots: &[
        req("N1"),
        one("N2"),
        many("N3"),
        one("N4"),
        many("L11"),
        many("G61"),
    ],
};
static N7_0200_204: LoopDef = LoopDef {
    id: "0200",
    key: "N7_loop",
    slots: &[req("N7"), one("N7A"), one("N7B"), many("MEA"), many("M7")],
};
static N1_0310_204: LoopDef = LoopDef {
    id: "0310",
    key: "N1_loop",
    slots: &[req("N1"), one("N2"), many("N3"), one("N4"), many("G61")],
};
static L5_0320_204: LoopDef = LoopDef {
    id: "0320",
    key: "L5_loop",
    slots: &[req("L5"), many("AT8"), many("G61")],
};
static OID_0350_204: LoopDef = LoopDef {
    id: "0350",
    key: "OID_loop",
    slots: &[req("OID"), many("G62"), many("LAD")],
};
static S5_0300_204: LoopDef = LoopDef {
    id: "0300",
    key: "S5_loop",
    slots: &[
        req("S5"),
        many("L11"),
        many("G62"),
        one("AT8"),
        many("LAD"),
        many("AT5"),
        one("PLD"),
        many("NTE"),
        lp(&N1_0310_204),
        lp(&L5_0320_204),
        lp(&OID_0350_204),
    ],
};
static SET_204: &[Slot] = &[
    req("B2"),
    req("B2A"),
    many("L11"),
    one("G62"),
    one("MS3"),
    many("AT5"),
    one("PLD"),
    many("LH6"),
    many("NTE"),
    lp(&N1_0100_204),
    lp(&N7_0200_204),
    req_lp(&S5_0300_204),
    one("L3"),
];

// 210 Motor Carrier Freight Details and Invoice.
static N1_0100_210: LoopDef = LoopDef {
    id: "0100",
    key: "N1_loop",
    slots: &[req("N1"), one("N2"), many("N3"), one("N4"), many("N9")],
};
static N7_0200_210: LoopDef = LoopDef {
    id: "0200",
    key: "N7_loop",
    slots: &[req("N7"), many("M7")],
};
static LX_0400_210: LoopDef = LoopDef {
    id: "0400",
    key: "LX_loop",
    slots: &[
        req("LX"),
        many("N9"),
        one("POD"),
        many("L5"),
        many("H1"),
        many("H2"),
        many("L0"),
        many("L1"),
        many("L4"),
        many("L7"),
        many("K1"),
    ],
};
static SET_210: &[Slot] = &[
    req("B3"),
    one("C3"),
    many("ITD"),
    many("N9"),
    many("G62"),
    one("R3"),
    many("H3"),
    many("K1"),
    lp(&N1_0100_210),
    lp(&N7_0200_210),
    lp(&LX_0400_210),
    req("L3"),
];

// 214 Transportation Carrier Shipment Status Message.
static N1_0100_214: LoopDef = LoopDef {
    id: "0100",
    key: "N1_loop",
    slots: &[
        req("N1"),
        one("N2"),
        many("N3"),
        one("N4"),
        many("G62"),
        many("L11"),
    ],
};
static AT7_0205_214: LoopDef = LoopDef {
    id: "0205",
    key: "AT7_loop",
    slots: &[req("AT7"), one("MS1"), one("MS2")],
};
static LX_0200_214: LoopDef = LoopDef {
    id: "0200",
    key: "LX_loop",
    slots: &[
        req("LX"),
        lp(&AT7_0205_214),
        many("L11"),
        many("MAN"),
        many("Q7"),
        many("K1"),
        many("AT5"),
        many("AT8"),
    ],
};
static SET_214: &[Slot] = &[
    req("B10"),
    many("L11"),
    many("MAN"),
    many("K1"),
    lp(&N1_0100_214),
    many("MS3"),
    lp(&LX_0200_214),
];

// 990 Response to a Load Tender.
static SET_990: &[Slot] = &[req("B1"), many("N9"), many("G62"), one("V9"), many("K1")];

// 997 Functional Acknowledgment.
static AK3_0230_997: LoopDef = LoopDef {
    id: "AK3",
    key: "AK3_loop",
    slots: &[req("AK3"), many("AK4")],
};
static AK2_0200_997: LoopDef = LoopDef {
    id: "AK2",
    key: "AK2_loop",
    slots: &[req("AK2"), lp(&AK3_0230_997), req("AK5")],
};
static SET_997: &[Slot] = &[req("AK1"), lp(&AK2_0200_997), req("AK9")];

/// The body of a transaction set of type `id` (ST01), if the hub knows it.
pub(crate) fn set_schema(id: &str) -> Option<&'static [Slot]> {
    match id {
        "204" => Some(SET_204),
        "210" => Some(SET_210),
        "214" => Some(SET_214),
        "990" => Some(SET_990),
        "997" => Some(SET_997),
        _ => None,
    }
}

/// The functional identifier (GS01) of a transaction set type.
pub(crate) fn functional_id(set_id: &str) -> Option<&'static str> {
    match set_id {
        "204" => Some("SM"),
        "210" => Some("IM"),
        "214" => Some("QM"),
        "990" => Some("GF"),
        "997" => Some("FA"),
        _ => None,
    }
}

/// The names of a segment's elements, by position (the first is element 01).
/// Segments not listed here get bare keys (`NTE01`).
pub(crate) fn element_names(segment: &str) -> &'static [&'static str] {
    match segment {
        "ISA" => &[
            "auth_qualifier",
            "auth_info",
            "security_qualifier",
            "security_info",
            "sender_qualifier",
            "sender_id",
            "receiver_qualifier",
            "receiver_id",
            "date",
            "time",
            "standards_id",
            "version",
            "control_number",
            "ack_requested",
            "usage",
            "component_separator",
        ],
        "GS" => &[
            "functional_id",
            "sender_code",
            "receiver_code",
            "date",
            "time",
            "control_number",
            "agency",
            "version",
        ],
        "ST" => &["transaction_set_id", "control_number", "convention_ref"],
        "B2" => &[
            "tariff_service_code",
            "scac",
            "standard_point_location",
            "shipment_id",
            "weight_unit",
            "payment_method",
            "shipment_qualifier",
            "total_equipment",
            "shipment_weight_code",
            "customs_documentation",
            "transportation_terms",
            "payment_method_code",
        ],
        "B2A" => &["purpose_code", "application_type"],
        "L11" => &["reference_id", "reference_qualifier", "description"],
        "G62" => &[
            "date_qualifier",
            "date",
            "time_qualifier",
            "time",
            "time_code",
        ],
        "N1" => &["entity_code", "name", "id_qualifier", "id_code"],
        "N2" => &["name", "name_2"],
        "N3" => &["address", "address_2"],
        "N4" => &["city", "state", "postal_code", "country"],
        "N9" => &[
            "reference_qualifier",
            "reference_id",
            "description",
            "date",
            "time",
        ],
        "G61" => &["contact_function", "name", "comm_qualifier", "comm_number"],
        "NTE" => &["reference_code", "description"],
        "MS3" => &[
            "scac",
            "routing_sequence",
            "city",
            "transport_method",
            "state",
        ],
        "S5" => &[
            "stop_sequence",
            "reason_code",
            "weight",
            "weight_unit",
            "quantity",
            "unit",
            "volume",
            "volume_unit",
            "description",
        ],
        "L3" => &[
            "weight",
            "weight_qualifier",
            "freight_rate",
            "rate_qualifier",
            "charge",
            "advances",
            "prepaid_amount",
            "special_charge_code",
            "volume",
            "volume_unit",
            "lading_quantity",
            "weight_unit",
        ],
        "B3" => &[
            "shipment_qualifier",
            "invoice_number",
            "shipment_id",
            "payment_method",
            "weight_unit",
            "billing_date",
            "net_amount_due",
            "correction_indicator",
            "delivery_date",
            "date_time_qualifier",
            "scac",
            "date",
            "tariff_service_code",
            "transportation_terms",
            "payment_method_code",
        ],
        "LX" => &["assigned_number"],
        "L5" => &[
            "lading_line_number",
            "description",
            "commodity_code",
            "commodity_code_qualifier",
            "packaging_code",
        ],
        "L0" => &[
            "lading_line_number",
            "billed_quantity",
            "billed_quantity_qualifier",
            "weight",
            "weight_qualifier",
            "volume",
            "volume_unit",
            "lading_quantity",
            "packaging_form",
            "dunnage_description",
            "weight_unit",
        ],
        "L1" => &[
            "lading_line_number",
            "freight_rate",
            "rate_qualifier",
            "charge",
            "advances",
            "prepaid_amount",
            "rate_combination_point",
            "special_charge_code",
        ],
        "B10" => &[
            "pro_number",
            "shipment_id",
            "scac",
            "inquiry_request_number",
        ],
        "AT7" => &[
            "status_code",
            "status_reason",
            "appointment_status",
            "appointment_reason",
            "date",
            "time",
            "time_code",
        ],
        "AT8" => &[
            "weight_qualifier",
            "weight_unit",
            "weight",
            "lading_quantity",
            "lading_quantity_2",
            "volume_unit",
            "volume",
        ],
        "MS1" => &["city", "state", "country", "longitude", "latitude"],
        "MS2" => &["scac", "equipment_number", "equipment_description"],
        "B1" => &[
            "scac",
            "shipment_id",
            "date",
            "reservation_action",
            "decline_reason",
        ],
        "K1" => &["message", "message_2"],
        "TA1" => &["control_number", "date", "time", "ack_code", "note_code"],
        "AK1" => &["functional_id", "group_control_number"],
        "AK2" => &["transaction_set_id", "control_number"],
        "AK3" => &["segment_id", "segment_position", "loop_id", "error_code"],
        "AK4" => &[
            "element_position",
            "element_reference",
            "error_code",
            "bad_value",
        ],
        "AK5" => &[
            "ack_code",
            "error_code",
            "error_code_2",
            "error_code_3",
            "error_code_4",
            "error_code_5",
        ],
        "AK9" => &[
            "ack_code",
            "sets_included",
            "sets_received",
            "sets_accepted",
            "error_code",
            "error_code_2",
            "error_code_3",
            "error_code_4",
            "error_code_5",
        ],
        _ => &[],
    }
}

/// The key of element `position` (1-based) of `segment`: `B204_shipment_id`,
/// or `NTE03` where the element has no name here.
pub(crate) fn element_key(segment: &str, position: usize) -> String {
    key_with(segment, element_names(segment), position)
}

/// [`element_key`] with the segment's names already looked up (parsing
/// builds a key for every element, so this avoids `format!`).
pub(crate) fn key_with(segment: &str, names: &[&str], position: usize) -> String {
    let name = position.checked_sub(1).and_then(|i| names.get(i));
    let mut key = String::with_capacity(segment.len() + 4 + name.map_or(0, |n| n.len()));
    key.push_str(segment);
    if position < 100 {
        key.push(char::from(b'0' + (position / 10) as u8));
        key.push(char::from(b'0' + (position % 10) as u8));
    } else {
        key.push_str(&position.to_string());
    }
    if let Some(name) = name {
        key.push('_');
        key.push_str(name);
    }
    key
}

/// The position of an element key of `segment` (`B204_shipment_id` → 4): the
/// digits after the segment id; the name after `_` is only for people.
pub(crate) fn element_position(segment: &str, key: &str) -> Option<usize> {
    let rest = key.strip_prefix(segment)?;
    let digits = rest.split('_').next()?;
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|p| *p >= 1)
}

/// The data type of an element, as far as the 997 needs it: the length of a
/// numeric element (`N0`, `N2`, `R`) does not count its sign or decimal
/// point; every other type counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    /// `AN`, `ID`, `DT` or `TM`: every character counts.
    Text,
    /// `N0`, `N2` or `R`: only the digits count.
    Num,
}

/// What the 997 checks of one element of a segment (AK4): present when
/// mandatory (AK403 `1`), its length (`4` too short, `5` too long) and, for
/// a few elements, its code list (`7`).
#[derive(Debug)]
pub(crate) struct ElementRule {
    /// Position in the segment (B206 → 6).
    pub(crate) position: usize,
    /// The X12 data element number (AK402): 146 for the method of payment.
    pub(crate) number: u16,
    /// Mandatory ("M" in the dictionary); conditional ("X") elements depend
    /// on syntax notes the hub does not check, so they are optional here.
    pub(crate) required: bool,
    pub(crate) ty: Ty,
    pub(crate) min: usize,
    pub(crate) max: usize,
    /// The allowed codes; empty where the list is not checked.
    pub(crate) codes: &'static [&'static str],
}

const M: bool = true;
const O: bool = false;

const fn el(
    position: usize,
    number: u16,
    required: bool,
    ty: Ty,
    min: usize,
    max: usize,
) -> ElementRule {
    ElementRule {
        position,
        number,
        required,
        ty,
        min,
        max,
        codes: &[],
    }
}

/// Element 558, Reservation Action Code (B104), as listed for 004040
/// (<https://stedi.com/edi/x12-004040/element/558>): 003030 has the same
/// codes but `E`, so a 004010 990 with any of them passes. It is the one code
/// list checked here: it is short, and the hub acts on it (accept/decline).
/// Longer lists (B2A01's purpose codes, AT701's status codes, S502's stop
/// reasons) are not checked: the hub's templates map the codes they know and
/// call the rest `other`, and a partial list would reject valid documents.
const RESERVATION_ACTION: &[&str] = &["A", "B", "C", "D", "E", "N", "R", "U"];

/// The elements the hub reads from the segments that open its sets and from
/// the stop, party, line and status segments, by segment, as the 004010
/// dictionary has them: <https://stedi.com/edi/x12-004010/segment/B2>,
/// `…/B1`, `…/B10`, `…/S5`, `…/L11`; B3, AT7 and LX as on the 004020 pages
/// (`…/x12-004020/segment/B3`), B2A as every release from 002040 to 004050
/// has it, N1 as <https://www.rubydoc.info/gems/eddy/0.9.1/Eddy/Segments/N1>
/// (element 98 M ID 2/3, 93 X). Elements not listed are not checked.
static ELEMENT_RULES: &[(&str, &[ElementRule])] = {
    use Ty::{Num, Text};
    &[
        (
            "B1",
            &[
                el(1, 140, O, Text, 2, 4),
                el(2, 145, M, Text, 1, 30),
                el(3, 373, O, Text, 8, 8),
                ElementRule {
                    codes: RESERVATION_ACTION,
                    ..el(4, 558, O, Text, 1, 1)
                },
            ],
        ),
        (
            "B2",
            &[
                el(2, 140, O, Text, 2, 4),
                el(4, 145, O, Text, 1, 30),
                el(5, 188, O, Text, 1, 1),
                el(6, 146, M, Text, 2, 2),
            ],
        ),
        ("B2A", &[el(1, 353, M, Text, 2, 2)]),
        (
            "B3",
            &[
                el(2, 76, M, Text, 1, 22),
                el(3, 145, O, Text, 1, 30),
                el(4, 146, M, Text, 2, 2),
                el(6, 373, M, Text, 8, 8),
                el(7, 193, M, Num, 1, 12),
            ],
        ),
        (
            "B10",
            &[
                el(1, 127, O, Text, 1, 30),
                el(2, 145, O, Text, 1, 30),
                el(3, 140, M, Text, 2, 4),
            ],
        ),
        (
            "S5",
            &[
                el(1, 165, M, Num, 1, 3),
                el(2, 163, M, Text, 2, 2),
                el(3, 81, O, Num, 1, 10),
                el(4, 188, O, Text, 1, 1),
            ],
        ),
        ("N1", &[el(1, 98, M, Text, 2, 3), el(2, 93, O, Text, 1, 60)]),
        (
            "L11",
            &[el(1, 127, O, Text, 1, 30), el(2, 128, O, Text, 2, 3)],
        ),
        ("LX", &[el(1, 554, M, Num, 1, 6)]),
        (
            "AT7",
            &[
                el(1, 1650, O, Text, 2, 2),
                el(2, 1651, O, Text, 2, 2),
                el(5, 373, O, Text, 8, 8),
                el(6, 337, O, Text, 4, 8),
            ],
        ),
    ]
};

/// The rules the 997 checks for the elements of `segment` (none for a
/// segment not in [`ELEMENT_RULES`]).
pub(crate) fn element_rules(segment: &str) -> &'static [ElementRule] {
    ELEMENT_RULES
        .iter()
        .find(|(id, _)| *id == segment)
        .map_or(&[], |(_, rules)| rules)
}
