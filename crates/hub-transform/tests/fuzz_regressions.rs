//! The fuzz targets' checks in the normal test suite: every input that once
//! crashed a target (`cargo xtask fuzz` files it under
//! `tests/fuzz-regressions/<target>/`) and every seed of the fuzz corpus
//! (`fuzz/seeds/<target>/`) runs through exactly the checks of its target,
//! which this file includes from the fuzz crate. Tests below that name a
//! crash also say what the parser now answers: an error with its location.

use hub_transform::codec::{self, Format, FormatOptions};
use hub_transform::error::Limits;
use proptest::prelude::*;

#[path = "../fuzz/src/lib.rs"]
mod checks;

#[macro_use]
#[path = "../../hub-testkit/shared/fuzz_regressions.rs"]
mod runner;

fuzz_regression_tests!("hub-fuzz-regressions");

proptest! {
    /// Every target's check holds on generated input too: a few option
    /// bytes (the targets choose their options from the first bytes), then
    /// text in the alphabet of the formats and of rules and expressions.
    #[test]
    fn every_fuzz_check_holds_on_generated_input(
        head in prop::collection::vec(any::<u8>(), 3),
        text in "\\PC{0,48}|[<>/a-zA-Z:!\"'=&;#\\[\\]{}(),.*~^\n\r\t 0-9-]{0,96}",
    ) {
        let mut data = head;
        data.extend_from_slice(text.as_bytes());
        for (_, check) in checks::TARGETS {
            check(&data);
            check(text.as_bytes());
        }
    }
}

// ------------------------------------------------ crashes the fuzzer found

/// Reads `input` as `format` with the default options, as the services do:
/// the code, line and column of the error.
fn error_at(format: Format, input: &str) -> (&'static str, Option<usize>, Option<usize>) {
    let options = FormatOptions::default_for(format);
    match codec::read(format, input, &options, Limits::default()) {
        Ok(tree) => panic!("{input:?} should not read, but gave {tree}"),
        Err(e) => (e.code, e.location.line, e.location.column),
    }
}

/// Whether `input` reads as `format` with the default options.
fn reads(format: Format, input: &str) -> bool {
    let options = FormatOptions::default_for(format);
    codec::read(format, input, &options, Limits::default()).is_ok()
}

/// `codec_xml/crash-20081a54…`: quick-xml reads any bytes between `<` and
/// `>` as a name, so `<St!p/>` made a tree the writer refused. Element and
/// attribute names that are not XML names are now `invalid_xml` at their tag.
#[test]
fn xml_names_that_are_not_xml_names_are_an_error_at_their_tag() {
    assert_eq!(
        error_at(Format::Xml, "<a><St!p/><b>&lt;&#x41;</b></a>"),
        ("invalid_xml", Some(1), Some(5))
    );
    assert_eq!(
        error_at(Format::Xml, "<a>\n  <1st>x</1st></a>"),
        ("invalid_xml", Some(2), Some(4))
    );
    assert_eq!(
        error_at(Format::Xml, "<a b!c=\"1\"/>"),
        ("invalid_xml", Some(1), Some(1))
    );
    // Names with prefixes, dots, dashes and non-ASCII letters still read.
    assert!(reads(
        Format::Xml,
        "<tms:Load x.y=\"1\" _z-1=\"2\"><Straße/></tms:Load>"
    ));
}

/// `codec_xml/crash-66058abc…`: `&#05;` decoded to a control character XML
/// does not allow, which the writer then refused. Such characters, raw or as
/// references, in text or attribute values, are now `invalid_xml`.
#[test]
fn characters_xml_does_not_allow_are_an_error_at_their_place() {
    for (input, line) in [
        ("<Load><item a=\"&amp;&#05;\"/></Load>", 1),
        ("<Load>\n<item>&#x1;</item></Load>", 2),
        ("<Load>\n\n<item>a\u{7}b</item></Load>", 3),
        ("<Load><![CDATA[\u{1b}]]></Load>", 1),
        ("<Load>&#xFFFE;</Load>", 1),
    ] {
        let (code, at, _) = error_at(Format::Xml, input);
        assert_eq!((code, at), ("invalid_xml", Some(line)), "{input:?}");
    }
    // Tabs, line ends and the rest of Unicode are text.
    assert!(reads(
        Format::Xml,
        "<a b=\"&#9;&#10;&#13;\">&#9;\u{1F600}&#x10FFFF;</a>"
    ));
}

/// `codec_csv/crash-aba8ec3b…`: with `non_numeric` quoting numbers are
/// written unquoted, so with the delimiter `9` the number -2912 was written
/// as `-2912` and read back as two fields. A delimiter or quote that can
/// occur in a number is now refused with that quoting.
#[test]
fn non_numeric_quoting_refuses_a_delimiter_that_numbers_hold() {
    let value = serde_json::json!({"quoting": "non_numeric", "delimiter": "9", "header": false});
    let e = FormatOptions::from_value(Format::Csv, Some(&value)).err();
    assert_eq!(e.map(|e| e.code), Some("invalid_options"));
    // With the quoting that quotes what needs it, the same delimiter works.
    let value = serde_json::json!({"delimiter": "9", "header": false, "columns": [{"name": "n", "type": "integer"}]});
    let opts = FormatOptions::from_value(Format::Csv, Some(&value)).expect("options");
    let tree = serde_json::json!([{"n": -2912}]);
    let text = codec::write(Format::Csv, &tree, &opts).expect("written");
    assert_eq!(text, "\"-2912\"\n");
    assert_eq!(
        codec::read(Format::Csv, &text, &opts, Limits::default()).ok(),
        Some(tree)
    );
}

/// `codec_csv/crash-45ff0da5…`: the reader dropped a byte order mark at the
/// start, and csv-core dropped a second one, so a first field that began with
/// U+FEFF lost it through a write and a read. The reader now drops one mark,
/// and the writer puts a mark before such a field.
#[test]
fn a_first_field_that_starts_with_a_byte_order_mark_keeps_it() {
    let opts = FormatOptions::from_value(Format::Csv, Some(&serde_json::json!({"header": false})))
        .expect("options");
    let tree = serde_json::json!([["\u{feff}x", "y"]]);
    let text = codec::write(Format::Csv, &tree, &opts).expect("written");
    assert_eq!(text, "\u{feff}\u{feff}x,y\n");
    let one_mark = codec::read(Format::Csv, "\u{feff}a,b\n", &opts, Limits::default());
    assert_eq!(one_mark.ok(), Some(serde_json::json!([["a", "b"]])));
    assert_eq!(
        codec::read(Format::Csv, &text, &opts, Limits::default()).ok(),
        Some(tree)
    );
}

/// `codec_x12/crash-7974b3e1…`: a 997 for an interchange of version 00402 or
/// later has `^` as its repetition separator, which the writer puts in ISA11,
/// but its tree said `U`, so the 997 written did not read back as the tree.
#[test]
fn a_997_of_a_00501_interchange_reads_back_as_its_tree() {
    use hub_transform::codec::x12::{self, Control};
    let text =
        include_str!("vectors/x12/990_tender_response.edi").replacen("*U*00401*", "*^*00501*", 1);
    let received = x12::parse(&text, &Limits::default()).expect("a 00501 990");
    let control = Control {
        interchange: 7,
        group: 8,
        set: 9,
    };
    let ack = x12::ack_997(&received, control).expect("a 997");
    assert_eq!(ack["ISA"]["ISA11_standards_id"], "^");
    assert_eq!(ack["ISA"]["ISA12_version"], "00501");
    let written = x12::write(&ack).expect("written");
    assert_eq!(x12::parse(&written, &Limits::default()).ok(), Some(ack));
}
