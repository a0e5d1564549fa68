//! The X12 codec: the vectors round trip byte for byte, their trees follow the
//! loop structure, envelopes are checked and made, 997s and 990s are made,
//! and no input makes it panic.

use chrono::{NaiveDate, NaiveDateTime};
use hub_transform::codec::x12::{self, Control, Envelope};
use hub_transform::error::Limits;
use proptest::prelude::*;
use serde_json::{Value, json};

const V204: &str = include_str!("vectors/x12/204_load_tender.edi");
const V210: &str = include_str!("vectors/x12/210_freight_invoice.edi");
const V214: &str = include_str!("vectors/x12/214_shipment_status.edi");
const V990: &str = include_str!("vectors/x12/990_tender_response.edi");
const VECTORS: [&str; 4] = [V204, V210, V214, V990];

fn parse(text: &str) -> Value {
    x12::parse(text, &Limits::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> hub_transform::TransformError {
    x12::parse(text, &Limits::default()).expect_err("should not parse")
}

fn first_set(tree: &Value) -> &Value {
    &tree["groups"][0]["sets"][0]
}

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
}

#[test]
fn every_vector_round_trips_byte_for_byte() {
    for text in VECTORS {
        let tree = parse(text);
        assert_eq!(x12::write(&tree).unwrap(), text);
    }
}

#[test]
fn load_tender_follows_the_204_loops() {
    let tree = parse(V204);
    assert_eq!(
        tree["separators"],
        json!({"element": "*", "component": ">", "repetition": null, "segment": "~", "suffix": "\n"})
    );
    assert_eq!(tree["ISA"]["ISA06_sender_id"], "SHIPPERCO");
    assert_eq!(tree["ISA"]["ISA13_control_number"], "000000101");
    assert_eq!(tree["groups"][0]["GS"]["GS01_functional_id"], "SM");
    let set = first_set(&tree);
    assert_eq!(set["ST"]["ST01_transaction_set_id"], "204");
    assert_eq!(
        set["B2"],
        json!({"B202_scac": "ABCD", "B204_shipment_id": "LOAD-7788", "B206_payment_method": "PP"})
    );
    assert_eq!(set["B2A"]["B2A01_purpose_code"], "00");
    assert_eq!(set["L11"][0]["L1101_reference_id"], "PO-5566");
    assert_eq!(set["G62"]["G6202_date"], "20231123");
    assert_eq!(set["N1_loop"][0]["N1"]["N102_name"], "ACME SHIPPING");
    assert_eq!(set["N1_loop"][0]["N4"]["N401_city"], "CHICAGO");
    let stops = set["S5_loop"].as_array().unwrap();
    assert_eq!(stops.len(), 2);
    assert_eq!(stops[0]["S5"]["S502_reason_code"], "LD");
    assert_eq!(stops[0]["G62"][0]["G6201_date_qualifier"], "69");
    assert_eq!(stops[1]["N1_loop"][0]["N1"]["N102_name"], "BETA RETAIL");
    assert_eq!(stops[1]["N1_loop"][0]["N4"]["N403_postal_code"], "75201");
    assert_eq!(set["L3"]["L305_charge"], "2450.00");
    assert!(set.get("SE").is_none(), "trailers are computed, not kept");
}

#[test]
fn invoice_status_and_response_follow_their_loops() {
    let invoice = parse(V210);
    let set = first_set(&invoice);
    assert_eq!(set["B3"]["B302_invoice_number"], "INV-4411");
    assert_eq!(set["B3"]["B307_net_amount_due"], "245000");
    assert_eq!(set["N1_loop"].as_array().unwrap().len(), 2);
    assert_eq!(set["LX_loop"][0]["L0"][0]["L004_weight"], "12000");
    assert_eq!(set["LX_loop"][0]["L1"][0]["L104_charge"], "245000");
    assert_eq!(set["L3"]["L305_charge"], "245000");

    let status = parse(V214);
    let set = first_set(&status);
    assert_eq!(set["B10"]["B1001_pro_number"], "PRO12345");
    assert_eq!(set["N1_loop"][0]["N3"][0]["N301_address"], "100 MAIN ST");
    let lx = &set["LX_loop"][0];
    assert_eq!(lx["AT7_loop"][0]["AT7"]["AT701_status_code"], "X1");
    assert_eq!(lx["AT7_loop"][0]["MS1"]["MS101_city"], "DALLAS");
    assert_eq!(lx["AT7_loop"][0]["MS2"]["MS202_equipment_number"], "TRL778");
    assert_eq!(lx["AT8"][0]["AT803_weight"], "12000");

    let response = parse(V990);
    let set = first_set(&response);
    assert_eq!(set["B1"]["B104_reservation_action"], "A");
    assert_eq!(set["N9"][0]["N902_reference_id"], "PRO12345");
}

fn expect_at(e: &hub_transform::TransformError, segment: usize, id: &str, element: Option<usize>) {
    assert_eq!(e.code, "invalid_x12", "{e}");
    assert_eq!(e.location.segment, Some(segment), "{e}");
    assert_eq!(e.location.segment_id.as_deref(), Some(id), "{e}");
    assert_eq!(e.location.element, element, "{e}");
}

#[test]
fn envelope_mismatches_are_errors_at_the_trailer() {
    let e = parse_err(&V204.replace("SE*17*0001", "SE*16*0001"));
    expect_at(&e, 19, "SE", Some(1));
    assert!(e.message.contains("17"), "{e}");
    expect_at(
        &parse_err(&V204.replace("SE*17*0001", "SE*17*0002")),
        19,
        "SE",
        Some(2),
    );
    expect_at(
        &parse_err(&V990.replace("GE*1*101", "GE*2*101")),
        7,
        "GE",
        Some(1),
    );
    expect_at(
        &parse_err(&V990.replace("GE*1*101", "GE*1*102")),
        7,
        "GE",
        Some(2),
    );
    expect_at(
        &parse_err(&V990.replace("IEA*1*000000101", "IEA*1*000000102")),
        8,
        "IEA",
        Some(2),
    );
    expect_at(
        &parse_err(&V990.replace("IEA*1*", "IEA*0*")),
        8,
        "IEA",
        Some(1),
    );
}

#[test]
fn broken_structure_is_an_error_with_its_segment() {
    expect_at(&parse_err(&V990.replace("SE*4*0001~\n", "")), 6, "GE", None);
    expect_at(
        &parse_err(&V990.replace("IEA*1*000000101~\n", "")),
        7,
        "GE",
        None,
    );
    expect_at(&parse_err(&V990.replace("B1*", "b1*")), 4, "b1", None);
    expect_at(&parse_err(&format!("{V990}ST*990*0002~\n")), 9, "ST", None);
    let e = parse_err(V990.trim_end().trim_end_matches('~'));
    assert_eq!(e.location.segment, Some(8), "{e}");
    expect_at(
        &parse_err(&V990.replace("N9*CN*PRO12345~", "N9*CN*PRO12345~~")),
        6,
        "",
        None,
    );
}

#[test]
fn bad_isa_is_an_error_at_its_element() {
    let e = parse_err("GS*SM~");
    assert_eq!(e.location.segment, Some(1));
    let e = parse_err(&V990.replace("SHIPPERCO      *", "SHIPPERCO*"));
    expect_at(&e, 1, "ISA", Some(6));
    expect_at(&parse_err(&V990[..60]), 1, "ISA", Some(8));
    // A component separator equal to the element separator.
    expect_at(
        &parse_err(&V990.replace("*P*>~", "*P**~")),
        1,
        "ISA",
        Some(16),
    );
}

/// The 990 vector with other separators: `|` between elements, `^` for
/// components, `'` or a line break ending segments, CRLF or nothing after.
#[test]
fn separators_come_from_the_isa_and_are_kept() {
    let variants = [
        V990.replace('*', "|").replace('>', "^"),
        V990.replace('\n', "\r\n"),
        V990.replace("~\n", "~"),
        V990.replace("~\n", "\n"),
        V990.replace("~\n", "'"),
    ];
    let base = first_set(&parse(V990)).clone();
    for text in variants {
        let tree = parse(&text);
        assert_eq!(first_set(&tree), &base);
        assert_eq!(x12::write(&tree).unwrap(), text);
    }
}

#[test]
fn composites_and_repeats_round_trip() {
    // 00501 with ^ as the repetition separator (ISA11).
    let text = V990
        .replace("*U*00401*", "*^*00501*")
        .replace("N9*CN*PRO12345", "N9*CN*PRO12345*A>B*X^Y>Z");
    let tree = parse(&text);
    assert_eq!(tree["separators"]["repetition"], "^");
    let n9 = &first_set(&tree)["N9"][0];
    assert_eq!(n9["N903_description"], json!(["A", "B"]));
    assert_eq!(n9["N904_date"], json!([["X"], ["Y", "Z"]]));
    assert_eq!(x12::write(&tree).unwrap(), text);
}

#[test]
fn trailing_empty_elements_round_trip() {
    let text = V990.replace("N9*CN*PRO12345", "N9*CN*PRO12345**");
    let tree = parse(&text);
    assert_eq!(first_set(&tree)["N9"][0]["_len"], 4);
    assert_eq!(x12::write(&tree).unwrap(), text);
}

#[test]
fn unknown_sets_are_a_flat_list_that_round_trips() {
    let text = V990
        .replace("ST*990*", "ST*850*")
        .replace("B1*ABCD*LOAD-7788*20231122*A", "BEG*00*SA*PO1**20231122");
    let tree = parse(&text);
    let set = first_set(&tree);
    assert_eq!(set["segments"][0]["BEG"]["BEG03"], "PO1");
    assert_eq!(set["segments"][1]["N9"]["N901_reference_qualifier"], "CN");
    assert!(set.get("unstructured").is_none());
    assert_eq!(x12::write(&tree).unwrap(), text);
}

#[test]
fn a_204_with_a_misplaced_segment_is_flat_and_its_997_rejects_it() {
    let text = V204.replace("B2A*00*LT~\n", "").replace("SE*17*", "SE*16*");
    let tree = parse(&text);
    let set = first_set(&tree);
    // B2A is missing: not an unexpected segment, a missing mandatory one.
    assert!(set.get("segments").is_none(), "{set}");
    let ack = x12::ack_997(
        &tree,
        Control {
            interchange: 7,
            group: 7,
            set: 1,
        },
    )
    .unwrap();
    let ak2 = &first_set(&ack)["AK2_loop"][0];
    assert_eq!(ak2["AK3_loop"][0]["AK3"]["AK301_segment_id"], "B2A");
    assert_eq!(ak2["AK3_loop"][0]["AK3"]["AK302_segment_position"], "3");
    assert_eq!(ak2["AK3_loop"][0]["AK3"]["AK304_error_code"], "3");
    assert_eq!(ak2["AK5"]["AK501_ack_code"], "R");

    let text = V204.replace("L3*12000*G***2450.00", "XYZ*1");
    let tree = parse(&text);
    let set = first_set(&tree);
    assert_eq!(set["unstructured"]["segment_id"], "XYZ");
    assert_eq!(set["unstructured"]["segment"], 16);
    assert_eq!(set["segments"].as_array().unwrap().len(), 15);
    assert_eq!(x12::write(&tree).unwrap(), text);
    let ack = x12::ack_997(
        &tree,
        Control {
            interchange: 7,
            group: 7,
            set: 1,
        },
    )
    .unwrap();
    let ak997 = first_set(&ack);
    let ak3 = &ak997["AK2_loop"][0]["AK3_loop"][0]["AK3"];
    assert_eq!(ak3["AK301_segment_id"], "XYZ");
    assert_eq!(ak3["AK302_segment_position"], "16");
    assert_eq!(ak3["AK304_error_code"], "2");
    assert_eq!(ak997["AK9"]["AK901_ack_code"], "R");
    assert_eq!(ak997["AK9"]["AK904_sets_accepted"], "0");
}

#[test]
fn a_997_acknowledges_each_vector() {
    for (text, fid, set_id) in [
        (V204, "SM", "204"),
        (V210, "IM", "210"),
        (V214, "QM", "214"),
        (V990, "GF", "990"),
    ] {
        let received = parse(text);
        let ack = x12::ack_997(
            &received,
            Control {
                interchange: 9,
                group: 42,
                set: 1,
            },
        )
        .unwrap();
        let written = x12::write(&ack).unwrap();
        let expected = format!(
            "ISA*00*          *00*          *ZZ*CARRIERCO      *ZZ*SHIPPERCO      *231122*1200*U*00401*000000009*0*P*>~\n\
             GS*FA*CARRIERCO*SHIPPERCO*20231122*1200*42*X*004010~\n\
             ST*997*0001~\n\
             AK1*{fid}*101~\n\
             AK2*{set_id}*0001~\n\
             AK5*A~\n\
             AK9*A*1*1*1~\n\
             SE*6*0001~\n\
             GE*1*42~\n\
             IEA*1*000000009~\n"
        );
        assert_eq!(written, expected);
        // And the 997 reads back as a 997.
        let back = parse(&written);
        assert_eq!(
            first_set(&back)["AK2_loop"][0]["AK5"]["AK501_ack_code"],
            "A"
        );
        assert_eq!(back, ack);
    }
}

#[test]
fn a_997_with_a_time_and_several_sets() {
    let two = V990
        .replace(
            "SE*4*0001~\n",
            "SE*4*0001~\nST*990*0002~\nB1*ABCD*LOAD-7789*20231122*D~\nSE*3*0002~\n",
        )
        .replace("GE*1*101", "GE*2*101");
    let received = parse(&two);
    let ack = x12::ack_997_at(
        &received,
        Control {
            interchange: 1,
            group: 1,
            set: 5,
        },
        at("2024-01-02 03:04"),
    )
    .unwrap();
    let written = x12::write(&ack).unwrap();
    assert!(written.contains("*240102*0304*"), "{written}");
    assert!(written.contains("ST*997*0005~\nAK1*GF*101~\nAK2*990*0001~\nAK5*A~\nAK2*990*0002~\nAK5*A~\nAK9*A*2*2*2~\nSE*8*0005~"), "{written}");
}

#[test]
fn a_990_made_in_code_is_the_vector() {
    let tender = parse(V204);
    let mut answer = x12::tender_response_990(
        first_set(&tender),
        true,
        NaiveDate::from_ymd_opt(2023, 11, 22).unwrap(),
    )
    .unwrap();
    answer["N9"] = json!([{"N901_reference_qualifier": "CN", "N902_reference_id": "PRO12345"}]);
    let env = Envelope::new(
        ("ZZ", "SHIPPERCO"),
        ("ZZ", "CARRIERCO"),
        at("2023-11-22 12:00"),
    );
    let tree = x12::interchange(
        &env,
        Control {
            interchange: 101,
            group: 101,
            set: 1,
        },
        vec![answer],
    )
    .unwrap();
    assert_eq!(x12::write(&tree).unwrap(), V990);
}

#[test]
fn a_declined_tender_and_a_tree_with_wrong_counts() {
    let tender = parse(V204);
    let decline = x12::tender_response_990(
        first_set(&tender),
        false,
        NaiveDate::from_ymd_opt(2023, 11, 23).unwrap(),
    )
    .unwrap();
    let env = Envelope::new(("02", "ABCD"), ("ZZ", "SHIPPERCO"), at("2023-11-23 08:15"));
    let mut tree = x12::interchange(
        &env,
        Control {
            interchange: 5,
            group: 6,
            set: 7,
        },
        vec![decline],
    )
    .unwrap();
    let written = x12::write(&tree).unwrap();
    assert_eq!(
        written,
        "ISA*00*          *00*          *02*ABCD           *ZZ*SHIPPERCO      *231123*0815*U*00401*000000005*0*P*>~\n\
         GS*GF*ABCD*SHIPPERCO*20231123*0815*6*X*004010~\n\
         ST*990*0007~\nB1*ABCD*LOAD-7788*20231123*D~\nSE*3*0007~\nGE*1*6~\nIEA*1*000000005~\n"
    );
    // Trailers are always computed: a hand-made tree cannot get them wrong.
    tree["groups"][0]["sets"][0]["K1"] = json!([{"K101_message": "NO EQUIPMENT"}]);
    let written = x12::write(&tree).unwrap();
    assert!(
        written.contains("K1*NO EQUIPMENT~\nSE*4*0007~"),
        "{written}"
    );
    assert_eq!(
        parse(&written)["groups"][0]["sets"][0]["K1"][0]["K101_message"],
        "NO EQUIPMENT"
    );
}

#[test]
fn writing_a_bad_tree_is_an_error_with_its_path() {
    let tree = parse(V990);
    let cases = [
        (
            "/groups/0/sets/0/B1/B102_shipment_id",
            json!("A*B"),
            "$.groups[0].sets[0].B1.B102_shipment_id",
        ),
        (
            "/groups/0/sets/0/B1/B102_shipment_id",
            json!({"x": 1}),
            "$.groups[0].sets[0].B1.B102_shipment_id",
        ),
        (
            "/groups/0/sets/0/B1/X01",
            json!("1"),
            "$.groups[0].sets[0].B1.X01",
        ),
        ("/groups/0/sets/0/ZZZ", json!({}), "$.groups[0].sets[0].ZZZ"),
        (
            "/ISA/ISA06_sender_id",
            json!("A SENDER ID THAT IS TOO LONG"),
            "$.ISA.ISA06_sender_id",
        ),
        ("/separators/element", json!("~"), "$.separators"),
        ("/groups/0/GS", json!({"GS01": "GF"}), "$.groups[0].GS.GS06"),
    ];
    for (pointer, value, path) in cases {
        let mut bad = tree.clone();
        match bad.pointer_mut(pointer) {
            Some(slot) => *slot = value,
            None => {
                let (parent, key) = pointer.rsplit_once('/').unwrap();
                bad.pointer_mut(parent).unwrap()[key] = value;
            }
        }
        let e = x12::write(&bad).expect_err(pointer);
        assert_eq!(e.code, "invalid_x12_tree", "{e}");
        assert_eq!(e.location.path.as_deref(), Some(path), "{e}");
    }
}

#[test]
fn limits_bound_the_input() {
    let small = Limits {
        max_bytes: 100,
        max_depth: 64,
    };
    assert_eq!(
        x12::parse(V204, &small).unwrap_err().code,
        "input_too_large"
    );
    let shallow = Limits {
        max_bytes: 1 << 20,
        max_depth: 9,
    };
    assert_eq!(x12::parse(V204, &shallow).unwrap_err().code, "too_deep");
    let enough = Limits {
        max_bytes: 1 << 20,
        max_depth: 10,
    };
    assert!(x12::parse(V204, &enough).is_ok());
}

/// Parsing never panics; whatever parses writes back and parses the same.
fn check_any(text: &str) -> Result<(), TestCaseError> {
    if let Ok(tree) = x12::parse(text, &Limits::default()) {
        let written = x12::write(&tree).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let again = x12::parse(&written, &Limits::default())
            .map_err(|e| TestCaseError::fail(format!("{e}: {written:?}")))?;
        prop_assert_eq!(again, tree);
    }
    Ok(())
}

proptest! {
    #[test]
    fn random_text_never_panics(text in "\\PC{0,300}") {
        check_any(&text)?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_any(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn mutated_vectors_never_panic_and_round_trip(
        which in 0..4usize,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..4u8, "[A-Z0-9*>~\\n^: ]{0,3}"), 1..6),
    ) {
        let mut text = VECTORS[which].to_string();
        for (index, kind, insert) in edits {
            let at = index.index(text.len() + 1);
            let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            match kind {
                0 => text.insert_str(at, &insert),
                1 => { let end = (at + insert.len().max(1)).min(text.len()); if text.is_char_boundary(end) { text.replace_range(at..end, ""); } }
                2 => { let end = (at + insert.len()).min(text.len()); if text.is_char_boundary(end) { text.replace_range(at..end, &insert); } }
                _ => text.truncate(at),
            }
        }
        check_any(&text)?;
    }

    /// Element values made of data characters survive a write and a parse.
    #[test]
    fn written_values_read_back(values in proptest::collection::vec("[A-Z0-9 .-]{1,12}", 1..8)) {
        let mut tree = parse(V990);
        let mut k1 = Vec::new();
        for v in &values {
            k1.push(json!({"K101_message": v}));
        }
        tree["groups"][0]["sets"][0]["K1"] = Value::Array(k1.clone());
        let written = x12::write(&tree).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let back = parse(&written);
        prop_assert_eq!(&back["groups"][0]["sets"][0]["K1"], &Value::Array(k1));
        prop_assert_eq!(x12::write(&back).unwrap(), written);
    }
}
