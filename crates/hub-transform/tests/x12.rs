//! The X12 codec: the vectors round trip byte for byte, their trees follow the
//! loop structure, envelopes are checked and made, 997s (also for broken
//! interchanges, with AK4 element errors), TA1s and 990s are made, and no
//! input makes it panic.

use chrono::{NaiveDate, NaiveDateTime};
use hub_transform::codec::x12::{self, Control, Envelope, Received};
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

/// The control numbers of the 997s and TA1s made below.
const ACK: Control = Control {
    interchange: 9,
    group: 42,
    set: 1,
};

/// The 997 for the text of a received interchange, written; what is
/// written reads back with the strict parse as the same tree.
fn ack_text(text: &str) -> String {
    let ack = x12::ack_997_text(text, ACK, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    let written = x12::write(&ack).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parse(&written), ack, "{written}");
    written
}

/// The 997 that [`ack_text`] writes for an interchange in the vectors'
/// envelope, whose one set runs from AK1 to AK9 (`body`).
fn expected_997(body: &[&str]) -> String {
    let mut text = String::from(
        "ISA*00*          *00*          *ZZ*CARRIERCO      *ZZ*SHIPPERCO      *231122*1200*U*00401*000000009*0*P*>~\n\
         GS*FA*CARRIERCO*SHIPPERCO*20231122*1200*42*X*004010~\n\
         ST*997*0001~\n",
    );
    for segment in body {
        text.push_str(segment);
        text.push_str("~\n");
    }
    text.push_str(&format!(
        "SE*{}*0001~\nGE*1*42~\nIEA*1*000000009~\n",
        body.len() + 2
    ));
    text
}

fn strict_refuses(text: &str) {
    assert_eq!(parse_err(text).code, "invalid_x12");
}

#[test]
fn reading_to_acknowledge_a_good_interchange_is_parsing_it() {
    for text in VECTORS {
        let received = Received::read(text, &Limits::default()).unwrap();
        let tree = parse(text);
        assert_eq!(received.tree(), &tree);
        assert!(received.interchange_problems().is_empty());
        assert_eq!(
            received.ack_997(ACK).unwrap(),
            x12::ack_997(&tree, ACK).unwrap()
        );
    }
    let small = Limits {
        max_bytes: 100,
        max_depth: 64,
    };
    assert_eq!(
        Received::read(V204, &small).unwrap_err().code,
        "input_too_large"
    );
}

#[test]
fn a_wrong_segment_count_rejects_the_set_with_ak5_code_4() {
    let text = V204.replace("SE*17*0001", "SE*16*0001");
    strict_refuses(&text);
    assert_eq!(
        ack_text(&text),
        expected_997(&["AK1*SM*101", "AK2*204*0001", "AK5*R*4", "AK9*R*1*1*0"])
    );
}

#[test]
fn a_set_control_number_mismatch_rejects_the_set_with_ak5_code_3() {
    let text = V204.replace("SE*17*0001", "SE*17*0002");
    strict_refuses(&text);
    assert_eq!(
        ack_text(&text),
        expected_997(&["AK1*SM*101", "AK2*204*0001", "AK5*R*3", "AK9*R*1*1*0"])
    );
    // Both wrong, and a segment in error besides: every reason, in order.
    let text = V204
        .replace("SE*17*0001", "SE*7*0002")
        .replace("B2A*00*LT", "B2A*0*LT");
    assert_eq!(
        ack_text(&text),
        expected_997(&[
            "AK1*SM*101",
            "AK2*204*0001",
            "AK3*B2A*3**8",
            "AK4*1*353*4*0",
            "AK5*R*3*4*5",
            "AK9*R*1*1*0",
        ])
    );
}

#[test]
fn a_wrong_set_count_rejects_the_group_with_ak905_code_5() {
    let text = V990.replace("GE*1*101", "GE*2*101");
    strict_refuses(&text);
    // AK902 is what GE01 said, AK903 what came.
    assert_eq!(
        ack_text(&text),
        expected_997(&["AK1*GF*101", "AK2*990*0001", "AK5*A", "AK9*R*2*1*1*5"])
    );
}

#[test]
fn a_group_control_number_mismatch_rejects_the_group_with_ak905_code_4() {
    let text = V990.replace("GE*1*101", "GE*1*102");
    strict_refuses(&text);
    assert_eq!(
        ack_text(&text),
        expected_997(&["AK1*GF*101", "AK2*990*0001", "AK5*A", "AK9*R*1*1*1*4"])
    );
}

#[test]
fn missing_trailers_are_answered_not_refused() {
    // The first of two sets has no SE: AK502 2, and the second is read.
    let text = V990
        .replace(
            "SE*4*0001~\n",
            "ST*990*0002~\nB1*ABCD*LOAD-7789*20231122*D~\nSE*3*0002~\n",
        )
        .replace("GE*1*101", "GE*2*101");
    strict_refuses(&text);
    assert_eq!(
        ack_text(&text),
        expected_997(&[
            "AK1*GF*101",
            "AK2*990*0001",
            "AK5*R*2",
            "AK2*990*0002",
            "AK5*A",
            "AK9*P*2*2*1",
        ])
    );
    // No GE: AK905 3.
    let text = V990.replace("GE*1*101~\n", "");
    strict_refuses(&text);
    assert_eq!(
        ack_text(&text),
        expected_997(&["AK1*GF*101", "AK2*990*0001", "AK5*A", "AK9*R*1*1*1*3"])
    );
}

#[test]
fn a_missing_mandatory_element_is_an_ak4_with_code_1() {
    // B206, the method of payment, is mandatory. The envelopes are right,
    // so the tree parses, and its 997 says the same as the text's.
    let text = V204.replace("B2**ABCD**LOAD-7788**PP", "B2**ABCD**LOAD-7788");
    let expected = expected_997(&[
        "AK1*SM*101",
        "AK2*204*0001",
        "AK3*B2*2**8",
        "AK4*6*146*1",
        "AK5*R*5",
        "AK9*R*1*1*0",
    ]);
    assert_eq!(ack_text(&text), expected);
    let from_tree = x12::ack_997(&parse(&text), ACK).unwrap();
    assert_eq!(x12::write(&from_tree).unwrap(), expected);
}

#[test]
fn too_long_too_short_and_invalid_codes_are_ak4_errors() {
    let long = "LOAD-7788-A-SHIPMENT-ID-TOO-LONG"; // 32 characters, B204 has 30
    let text = V204
        .replace("LOAD-7788", long)
        .replace("B2A*00*LT", "B2A*0*LT")
        .replace("S5*1*LD", "S5*1000*LD");
    assert_eq!(
        ack_text(&text),
        expected_997(&[
            "AK1*SM*101",
            "AK2*204*0001",
            "AK3*B2*2**8",
            &format!("AK4*4*145*5*{long}"),
            "AK3*B2A*3**8",
            "AK4*1*353*4*0",
            // In the stop loop (0300): S501 has at most 3 digits.
            "AK3*S5*8*0300*8",
            "AK4*1*165*5*1000",
            "AK5*R*5",
            "AK9*R*1*1*0",
        ])
    );
    // B104 is A, D, …; X is no reservation action.
    let text = V990.replace("20231122*A~", "20231122*X~");
    assert_eq!(
        ack_text(&text),
        expected_997(&[
            "AK1*GF*101",
            "AK2*990*0001",
            "AK3*B1*2**8",
            "AK4*4*558*7*X",
            "AK5*R*5",
            "AK9*R*1*1*0",
        ])
    );
    // A numeric length leaves out the sign and the decimal point.
    let text = V204.replace("S5*1*LD*12000*", "S5*1*LD*-1234567.890*");
    assert!(ack_text(&text).contains("AK5*A~"));
}

#[test]
fn a_997_answers_in_the_partners_separators_with_at_most_99_characters_of_bad_data() {
    // The partner separates with | ^ and a line break, so its data may hold
    // * > ~, which the 997 repeats (GS08 here, and the bad data).
    let partner = |text: &str| {
        text.replace('*', "|")
            .replace('>', "^")
            .replace("~\n", "\n")
    };
    let bad = format!("A*B>C~D{}", "E".repeat(120));
    let text = partner(V990)
        .replace("LOAD-7788", &bad)
        .replace("|004010\n", "|004010~\n");
    let expected = partner(&expected_997(&[
        "AK1*GF*101",
        "AK2*990*0001",
        "AK3*B1*2**8",
        "AK4*2*145*5*BAD",
        "AK5*R*5",
        "AK9*R*1*1*0",
    ]))
    .replace("|004010\n", "|004010~\n")
    .replace("BAD", &bad.chars().take(99).collect::<String>());
    assert_eq!(ack_text(&text), expected);

    // A tree made in code may hold anything: the copy leaves out the 997's
    // separators.
    let mut tree = parse(V204);
    tree["groups"][0]["sets"][0]["B2"]["B204_shipment_id"] =
        json!(format!("LOAD*7788>X~Y{}", "9".repeat(30)));
    let written = x12::write(&x12::ack_997(&tree, ACK).unwrap()).unwrap();
    assert!(
        written.contains(&format!("~\nAK4*4*145*5*LOAD7788XY{}~\n", "9".repeat(30))),
        "{written}"
    );
}

#[test]
fn iea_problems_leave_the_997_to_the_groups_and_make_a_rejecting_ta1() {
    let good = ack_text(V990);
    for (text, note) in [
        (V990.replace("IEA*1*000000101", "IEA*1*000000102"), "001"),
        (V990.replace("IEA*1*", "IEA*2*"), "021"),
        (V990.replace("IEA*1*000000101~\n", ""), "023"),
    ] {
        strict_refuses(&text);
        assert_eq!(ack_text(&text), good);
        let received = Received::read(&text, &Limits::default()).unwrap();
        assert_eq!(received.interchange_problems()[0].note_code, note);
        let ta1 = received.ta1(5, at("2023-11-22 12:05")).unwrap();
        let written = x12::write(&ta1).unwrap();
        assert_eq!(
            written,
            format!(
                "ISA*00*          *00*          *ZZ*CARRIERCO      *ZZ*SHIPPERCO      *231122*1205*U*00401*000000005*0*P*>~\n\
                 TA1*000000101*231122*1200*R*{note}~\n\
                 IEA*0*000000005~\n"
            )
        );
        // A TA1 reads back (to acknowledge: `parse` reads groups only).
        let back = Received::read(&written, &Limits::default()).unwrap();
        assert_eq!(back.tree(), &ta1);
        assert!(back.interchange_problems().is_empty());
        let e = back.ack_997(ACK).unwrap_err();
        assert_eq!(e.location.path.as_deref(), Some("$.groups"), "{e}");
    }
    // A good interchange gets an accepting TA1, when its sender asks (ISA14).
    let received = Received::read(V990, &Limits::default()).unwrap();
    let ta1 = x12::write(&received.ta1(5, at("2023-11-22 12:05")).unwrap()).unwrap();
    assert!(
        ta1.contains("\nTA1*000000101*231122*1200*A*000~\n"),
        "{ta1}"
    );
}

#[test]
fn what_cannot_be_acknowledged_is_still_an_error_with_its_location() {
    let ack = |text: &str| x12::ack_997_text(text, ACK, &Limits::default()).unwrap_err();
    // No ISA, or one that cannot be read: there is nobody to answer.
    let e = ack("GS*SM~");
    assert_eq!(e.location.segment, Some(1), "{e}");
    expect_at(
        &ack(&V990.replace("SHIPPERCO      *", "SHIPPERCO*")),
        1,
        "ISA",
        Some(6),
    );
    expect_at(&ack(&V990.replace("*P*>~", "*P**~")), 1, "ISA", Some(16));
    // The 997 must name the set (AK202) and the group (AK102).
    expect_at(
        &ack(&V990.replace("ST*990*0001", "ST*990")),
        3,
        "ST",
        Some(2),
    );
    expect_at(
        &ack(&V990.replace("*1200*101*X*", "*1200**X*")),
        2,
        "GS",
        Some(6),
    );
    expect_at(&ack(&format!("{V990}ST*990*0002~\n")), 9, "ST", None);
}

/// Parsing never panics; whatever parses writes back and parses the same.
/// Reading to acknowledge never panics either and reads whatever parses as
/// the same tree with nothing to report; whatever it reads gets a 997 that
/// writes and parses, and a TA1 that writes and reads.
fn check_any(text: &str) -> Result<(), TestCaseError> {
    let received = Received::read(text, &Limits::default());
    if let Ok(tree) = x12::parse(text, &Limits::default()) {
        let written = x12::write(&tree).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let again = x12::parse(&written, &Limits::default())
            .map_err(|e| TestCaseError::fail(format!("{e}: {written:?}")))?;
        prop_assert_eq!(&again, &tree);
        let received = received.as_ref().map_err(|e| {
            TestCaseError::fail(format!("parse reads it, Received::read does not: {e}"))
        })?;
        prop_assert_eq!(received.tree(), &tree);
        prop_assert!(received.interchange_problems().is_empty());
    }
    if let Ok(received) = received {
        let fail = |what: &str, e: hub_transform::TransformError, text: &str| {
            TestCaseError::fail(format!("{what}: {e}: {text:?}"))
        };
        // Unless ISA09/ISA10 is no date (no 997 to date) or there is no
        // group (nothing for a 997 to say).
        if let Ok(ack) = received.ack_997(ACK) {
            let written = x12::write(&ack).map_err(|e| fail("writing the 997", e, text))?;
            x12::parse(&written, &Limits::default())
                .map_err(|e| fail("parsing the 997", e, &written))?;
        }
        let ta1 = received
            .ta1(3, at("2024-01-02 03:04"))
            .map_err(|e| fail("the TA1", e, text))?;
        let written = x12::write(&ta1).map_err(|e| fail("writing the TA1", e, text))?;
        Received::read(&written, &Limits::default())
            .map_err(|e| fail("reading the TA1", e, &written))?;
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
