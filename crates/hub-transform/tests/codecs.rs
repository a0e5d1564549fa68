//! The JSON, XML and CSV codecs, through the crate's public API: realistic
//! samples both ways, error locations, limits, and property round trips.

use hub_transform::TransformError;
use hub_transform::codec::{self, Format, FormatOptions};
use hub_transform::error::Limits;
use proptest::prelude::*;
use serde_json::{Value, json};

fn limits() -> Limits {
    Limits::default()
}

fn options(format: Format, value: Value) -> FormatOptions {
    match FormatOptions::from_value(format, Some(&value)) {
        Ok(o) => o,
        Err(e) => panic!("options {value}: {e}"),
    }
}

fn read(format: Format, text: &str, opts: &FormatOptions) -> Value {
    match codec::read(format, text, opts, limits()) {
        Ok(v) => v,
        Err(e) => panic!("reading {format}: {e}"),
    }
}

fn write(format: Format, value: &Value, opts: &FormatOptions) -> String {
    match codec::write(format, value, opts) {
        Ok(s) => s,
        Err(e) => panic!("writing {format}: {e}"),
    }
}

fn read_err(format: Format, text: &str, opts: &FormatOptions) -> TransformError {
    match codec::read(format, text, opts, limits()) {
        Ok(v) => panic!("expected an error reading {format}, got {v}"),
        Err(e) => e,
    }
}

fn line_col(e: &TransformError) -> (Option<usize>, Option<usize>) {
    (e.location.line, e.location.column)
}

// ---------------------------------------------------------------- JSON

const QUICKBOOKS_INVOICE: &str = r#"{
  "QueryResponse": {
    "Invoice": [
      {
        "Id": "130",
        "SyncToken": "0",
        "DocNumber": "1037",
        "TxnDate": "2026-11-14",
        "DueDate": "2026-12-14",
        "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
        "CustomerRef": {"value": "24", "name": "Acme Freight Brokers"},
        "BillEmail": {"Address": "ap@acme-freight.example"},
        "Line": [
          {
            "Id": "1",
            "LineNum": 1,
            "Description": "Linehaul Chicago, IL → Dallas, TX (load L-88412)",
            "Amount": 2450.0,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": "7", "name": "Linehaul"}, "Qty": 1, "UnitPrice": 2450}
          },
          {
            "Id": "2",
            "LineNum": 2,
            "Description": "Fuel surcharge \"FSC\" 14%",
            "Amount": 343.0,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": "9", "name": "Fuel Surcharge"}, "Qty": 1, "UnitPrice": 343}
          },
          {"Amount": 2793.0, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
        ],
        "TotalAmt": 2793.0,
        "Balance": 2793.0,
        "EmailStatus": "NotSet",
        "PrivateNote": null,
        "AllowOnlineACHPayment": true,
        "MetaData": {"CreateTime": "2026-11-14T09:12:44-08:00", "LastUpdatedTime": "2026-11-14T09:12:44-08:00"}
      }
    ],
    "startPosition": 1,
    "maxResults": 1
  },
  "time": "2026-11-14T09:15:02.512-08:00"
}"#;

#[test]
fn json_reads_a_quickbooks_invoice_and_writes_it_back_compact_and_pretty() {
    let opts = FormatOptions::default_for(Format::Json);
    let tree = read(Format::Json, QUICKBOOKS_INVOICE, &opts);
    let invoice = &tree["QueryResponse"]["Invoice"][0];
    assert_eq!(invoice["DocNumber"], "1037");
    assert_eq!(
        invoice["Line"][1]["Description"],
        "Fuel surcharge \"FSC\" 14%"
    );
    assert_eq!(invoice["Line"][0]["SalesItemLineDetail"]["Qty"], 1);
    assert_eq!(invoice["TotalAmt"], 2793.0);
    assert_eq!(invoice["PrivateNote"], Value::Null);

    let compact = write(Format::Json, &tree, &opts);
    assert!(!compact.contains('\n'));
    assert_eq!(read(Format::Json, &compact, &opts), tree);

    let pretty_opts = options(Format::Json, json!({"pretty": true}));
    let pretty = write(Format::Json, &tree, &pretty_opts);
    assert!(pretty.contains("\n  \"QueryResponse\""));
    assert_eq!(read(Format::Json, &pretty, &opts), tree);
}

#[test]
fn json_syntax_error_names_line_and_column_in_characters() {
    let opts = FormatOptions::default_for(Format::Json);
    let text = "{\n  \"city\": \"Zürich\",\n  \"zip\": 8001\n  \"state\": \"ZH\"\n}";
    let e = read_err(Format::Json, text, &opts);
    assert_eq!(e.code, "invalid_json");
    assert_eq!(line_col(&e), (Some(4), Some(3)));
    assert!(!e.message.contains(" at line "), "{}", e.message);

    // A column after a non-ASCII character counts characters, not bytes.
    let e = read_err(Format::Json, "{\"city\": \"Zürich\" x}", &opts);
    assert_eq!(line_col(&e), (Some(1), Some(19)));
}

#[test]
fn json_depth_bomb_is_refused_before_parsing_with_its_location() {
    let opts = FormatOptions::default_for(Format::Json);
    let bomb = "[".repeat(200_000);
    let e = read_err(Format::Json, &bomb, &opts);
    assert_eq!(e.code, "input_too_deep");
    assert_eq!(line_col(&e), (Some(1), Some(65)));

    let small = Limits {
        max_bytes: 1 << 20,
        max_depth: 3,
    };
    let ok = codec::read(Format::Json, r#"{"a": {"b": [1, "[[[["]}}"#, &opts, small);
    assert!(ok.is_ok(), "{ok:?}");
    let deep = codec::read(Format::Json, r#"{"a": {"b": [[1]]}}"#, &opts, small);
    assert_eq!(deep.err().map(|e| e.code), Some("input_too_deep"));
}

#[test]
fn json_deeper_than_serde_json_allows_is_still_input_too_deep() {
    // A limit above serde_json's own 128 levels: its guard answers, with the
    // same code.
    let opts = FormatOptions::default_for(Format::Json);
    let lax = Limits {
        max_bytes: 1 << 20,
        max_depth: 1000,
    };
    let text = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let e = codec::read(Format::Json, &text, &opts, lax).err();
    assert_eq!(e.map(|e| e.code), Some("input_too_deep"));
}

#[test]
fn every_format_refuses_input_over_max_bytes() {
    let tiny = Limits {
        max_bytes: 16,
        max_depth: 64,
    };
    for (format, text) in [
        (Format::Json, r#"{"load": "L-1", "weight": 42000}"#),
        (
            Format::Xml,
            "<Load><Id>L-1</Id><Weight>42000</Weight></Load>",
        ),
        (Format::Csv, "id,weight\nL-1,42000\n"),
    ] {
        let opts = FormatOptions::default_for(format);
        let e = codec::read(format, text, &opts, tiny).err();
        assert_eq!(e.map(|e| e.code), Some("input_too_large"), "{format}");
        // The module entry points check too.
        let fits = Limits {
            max_bytes: text.len(),
            max_depth: 64,
        };
        assert!(codec::read(format, text, &opts, fits).is_ok(), "{format}");
    }
    let direct = codec::json::read("[1, 2, 3, 4, 5, 6, 7, 8]", &Default::default(), tiny).err();
    assert_eq!(direct.map(|e| e.code), Some("input_too_large"));
}

// ---------------------------------------------------------------- XML

const LOAD_TENDER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- tender from a shipper's TMS -->
<tms:LoadTender xmlns:tms="urn:example:tms:v2" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="2.1">
  <tms:Header>
    <tms:ShipmentId>SH-20261114-0042</tms:ShipmentId>
    <tms:Shipper scac="ACMF">Acme Foods &amp; Beverages</tms:Shipper>
    <tms:TenderDate>2026-11-14T08:30:00Z</tms:TenderDate>
  </tms:Header>
  <tms:Equipment type="REEFER" length="53"/>
  <tms:Stops>
    <tms:Stop seq="1" type="PICKUP">
      <tms:Name>Acme DC #4</tms:Name>
      <tms:City>Chicago</tms:City>
      <tms:Window from="2026-11-15T06:00:00-06:00" to="2026-11-15T10:00:00-06:00"/>
    </tms:Stop>
    <tms:Stop seq="2" type="DROP">
      <tms:Name>Lone Star Grocers &#8212; Store 17</tms:Name>
      <tms:City>Dallas</tms:City>
      <tms:Window from="2026-11-16T08:00:00-06:00" to="2026-11-16T12:00:00-06:00"/>
    </tms:Stop>
  </tms:Stops>
  <tms:Instructions><![CDATA[Keep at 34°F. Call <dispatch> before arrival & check in at gate 3.]]></tms:Instructions>
  <tms:Notes/>
  <tms:Weight unit="lb">42000</tms:Weight>
</tms:LoadTender>
"#;

fn load_tender_tree() -> Value {
    json!({"tms:LoadTender": {
        "@xmlns:tms": "urn:example:tms:v2",
        "@xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
        "@version": "2.1",
        "tms:Header": {
            "tms:ShipmentId": "SH-20261114-0042",
            "tms:Shipper": {"@scac": "ACMF", "#text": "Acme Foods & Beverages"},
            "tms:TenderDate": "2026-11-14T08:30:00Z"
        },
        "tms:Equipment": {"@type": "REEFER", "@length": "53"},
        "tms:Stops": {"tms:Stop": [
            {"@seq": "1", "@type": "PICKUP", "tms:Name": "Acme DC #4", "tms:City": "Chicago",
             "tms:Window": {"@from": "2026-11-15T06:00:00-06:00", "@to": "2026-11-15T10:00:00-06:00"}},
            {"@seq": "2", "@type": "DROP", "tms:Name": "Lone Star Grocers — Store 17", "tms:City": "Dallas",
             "tms:Window": {"@from": "2026-11-16T08:00:00-06:00", "@to": "2026-11-16T12:00:00-06:00"}}
        ]},
        "tms:Instructions": "Keep at 34°F. Call <dispatch> before arrival & check in at gate 3.",
        "tms:Notes": null,
        "tms:Weight": {"@unit": "lb", "#text": "42000"}
    }})
}

#[test]
fn xml_load_tender_reads_namespaces_attributes_cdata_entities_and_repeats() {
    let opts = FormatOptions::default_for(Format::Xml);
    assert_eq!(read(Format::Xml, LOAD_TENDER, &opts), load_tender_tree());
}

#[test]
fn xml_load_tender_writes_back_to_the_same_tree_in_the_declared_order() {
    let opts = options(
        Format::Xml,
        json!({"pretty": true, "order": {
            "tms:LoadTender": ["tms:Header", "tms:Equipment", "tms:Stops"],
            "tms:Stop": ["tms:Name", "tms:City"]
        }}),
    );
    let text = write(Format::Xml, &load_tender_tree(), &opts);
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tms:LoadTender "));
    assert!(text.contains(" xmlns:tms=\"urn:example:tms:v2\""));
    assert!(text.contains("\n  <tms:Header>\n    <tms:ShipmentId>"));
    assert!(text.contains("<tms:Shipper scac=\"ACMF\">Acme Foods &amp; Beverages</tms:Shipper>"));
    assert!(text.contains("Call &lt;dispatch&gt; before"));
    assert!(text.contains("<tms:Notes/>"));
    let header = text.find("<tms:Header>").unwrap_or(usize::MAX);
    let equipment = text.find("<tms:Equipment").unwrap_or(0);
    let stops = text.find("<tms:Stops>").unwrap_or(0);
    assert!(header < equipment && equipment < stops, "{text}");
    let name = text.find("<tms:Name>").unwrap_or(usize::MAX);
    let city = text.find("<tms:City>").unwrap_or(0);
    assert!(name < city, "{text}");
    assert_eq!(
        read(Format::Xml, &text, &FormatOptions::default_for(Format::Xml)),
        load_tender_tree()
    );
}

#[test]
fn xml_always_array_keeps_a_single_element_an_array() {
    let text = "<Tender><Stops><Stop><City>Reno</City></Stop></Stops><Ref>A</Ref></Tender>";
    let plain = read(Format::Xml, text, &FormatOptions::default_for(Format::Xml));
    assert_eq!(
        plain,
        json!({"Tender": {"Stops": {"Stop": {"City": "Reno"}}, "Ref": "A"}})
    );
    let opts = options(
        Format::Xml,
        json!({"always_array": ["Tender/Stops/Stop", "Ref"]}),
    );
    assert_eq!(
        read(Format::Xml, text, &opts),
        json!({"Tender": {"Stops": {"Stop": [{"City": "Reno"}]}, "Ref": ["A"]}})
    );
}

#[test]
fn xml_declared_shape_names_the_root_and_turns_keys_into_attributes() {
    let tree = json!({"loadNumber": "L-88412", "status": "TENDERED", "weight": 42000.5,
                      "hazmat": false, "notes": null, "stop": [{"seq": 1, "city": "Chicago"}, {"seq": 2, "city": "Dallas"}]});
    let opts = options(
        Format::Xml,
        json!({"root": "Load", "declaration": false, "attributes": ["Load/loadNumber", "seq"],
               "order": {"Load": ["status", "weight", "hazmat", "notes", "stop"]}}),
    );
    let text = write(Format::Xml, &tree, &opts);
    assert_eq!(
        text,
        "<Load loadNumber=\"L-88412\"><status>TENDERED</status><weight>42000.5</weight><hazmat>false</hazmat>\
         <notes/><stop seq=\"1\"><city>Chicago</city></stop><stop seq=\"2\"><city>Dallas</city></stop></Load>"
    );
    // The same tree already under its root name writes the same document.
    let wrapped = json!({"Load": tree});
    assert_eq!(write(Format::Xml, &wrapped, &opts), text);
}

#[test]
fn xml_errors_carry_line_and_column() {
    let opts = FormatOptions::default_for(Format::Xml);
    let mismatched = "<Load>\n  <Id>L-1</Id>\n  <City>Reno</Town>\n</Load>";
    let e = read_err(Format::Xml, mismatched, &opts);
    assert_eq!(e.code, "invalid_xml");
    assert_eq!(line_col(&e), (Some(3), Some(13)), "{e}");

    let unclosed = "<Load>\n  <Id>L-1</Id>\n";
    let e = read_err(Format::Xml, unclosed, &opts);
    assert!(e.message.contains("<Load> is not closed"), "{e}");
    assert_eq!(e.location.line, Some(3));

    let bad_attr = "<Load>\n <Stop seq=1/>\n</Load>";
    let e = read_err(Format::Xml, bad_attr, &opts);
    assert_eq!(e.code, "invalid_xml");
    assert_eq!(line_col(&e), (Some(2), Some(12)), "{e}");
    assert!(e.message.contains("enclosed in"), "{e}");

    let e = read_err(Format::Xml, "<Load ref=\"1\" ref=\"2\"/>", &opts);
    assert_eq!(line_col(&e), (Some(1), Some(15)), "{e}");

    let two_roots = "<Load/>\n<Load/>";
    let e = read_err(Format::Xml, two_roots, &opts);
    assert!(e.message.contains("second root"), "{e}");
    assert_eq!(line_col(&e), (Some(2), Some(1)));

    let e = read_err(Format::Xml, "<Load/>\ntrailing words", &opts);
    assert_eq!(e.location.line, Some(1), "{e}");
    assert!(e.message.contains("outside the root"), "{e}");

    let e = read_err(Format::Xml, "   \n<!-- nothing -->\n", &opts);
    assert!(e.message.contains("no root element"), "{e}");
}

#[test]
fn xml_dtd_entities_are_refused_so_no_entity_bomb_expands() {
    let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"#;
    let e = read_err(Format::Xml, bomb, &FormatOptions::default_for(Format::Xml));
    assert_eq!(e.code, "invalid_xml");
    assert!(e.message.contains("&lol2;"), "{e}");
    assert_eq!(line_col(&e), (Some(3), Some(7)));
}

#[test]
fn xml_depth_bomb_is_refused_with_its_location() {
    let opts = FormatOptions::default_for(Format::Xml);
    let bomb = "<a>".repeat(100_000);
    let e = read_err(Format::Xml, &bomb, &opts);
    assert_eq!(e.code, "input_too_deep");
    assert_eq!(line_col(&e), (Some(1), Some(64 * 3 + 1)));

    let small = Limits {
        max_bytes: 1 << 20,
        max_depth: 2,
    };
    assert!(codec::read(Format::Xml, "<a><b>x</b><c/></a>", &opts, small).is_ok());
    let deep = codec::read(Format::Xml, "<a><b><c/></b></a>", &opts, small).err();
    assert_eq!(deep.map(|e| e.code), Some("input_too_deep"));
}

#[test]
fn xml_writer_refuses_trees_it_cannot_express_with_their_path() {
    let opts = options(Format::Xml, json!({"attributes": ["ref"]}));
    let cases = [
        (json!({"a": 1, "b": 2}), "$"),
        (json!([{"a": 1}]), "$"),
        (json!({"Load": {"2bad": "x"}}), "$.Load.2bad"),
        (json!({"Load": {"bad name": "x"}}), "$.Load[\"bad name\"]"),
        (
            json!({"Load": {"@ref": {"nested": true}}}),
            "$.Load[\"@ref\"]",
        ),
        (json!({"Load": {"stop": [[1, 2]]}}), "$.Load.stop[0]"),
        (json!({"Load": {"note": "bell \u{7}"}}), "$.Load.note"),
        (json!({"Load": {"@ref": "1", "ref": "2"}}), "$.Load.ref"),
    ];
    for (tree, path) in cases {
        match codec::write(Format::Xml, &tree, &opts) {
            Ok(s) => panic!("{tree} wrote {s}"),
            Err(e) => {
                assert_eq!(e.code, "unwritable_value", "{tree}");
                assert_eq!(e.location.path.as_deref(), Some(path), "{tree}: {e}");
            }
        }
    }
}

#[test]
fn xml_text_keeps_inner_whitespace_and_can_keep_edges() {
    let text = "<Note>\n  line one\n  line two\n</Note>";
    let trimmed = read(Format::Xml, text, &FormatOptions::default_for(Format::Xml));
    assert_eq!(trimmed, json!({"Note": "line one\n  line two"}));
    let raw = read(
        Format::Xml,
        text,
        &options(Format::Xml, json!({"trim_text": false})),
    );
    assert_eq!(raw, json!({"Note": "\n  line one\n  line two\n"}));
}

// ---------------------------------------------------------------- CSV

const LOADS_CSV: &str = "load_id,shipper,origin,destination,weight_lb,rate_usd,hazmat,pickup_date,notes\r\n\
L-88412,\"Acme Foods, Inc.\",\"Chicago, IL\",\"Dallas, TX\",42000,2450.50,no,11/15/2026,\r\n\
L-88413,Blue Ridge Paper,\"Roanoke, VA\",\"Atlanta, GA\",38500,1875,yes,11/16/2026,\"Dock 4, ask for \"\"Sam\"\"\"\r\n\
L-88414,\"Great Lakes Steel\",\"Gary, IN\",\"Detroit, MI\",,980.00,N,11/17/2026,\"two\nlines\"\r\n";

fn loads_options() -> FormatOptions {
    options(
        Format::Csv,
        json!({"types": {"weight_lb": "integer", "rate_usd": "number", "hazmat": "boolean", "pickup_date": "date"},
               "date_format": "%m/%d/%Y"}),
    )
}

#[test]
fn csv_loads_with_quoted_commas_read_typed_records() {
    let rows = read(Format::Csv, LOADS_CSV, &loads_options());
    assert_eq!(
        rows,
        json!([
            {"load_id": "L-88412", "shipper": "Acme Foods, Inc.", "origin": "Chicago, IL", "destination": "Dallas, TX",
             "weight_lb": 42000, "rate_usd": 2450.5, "hazmat": false, "pickup_date": "2026-11-15", "notes": null},
            {"load_id": "L-88413", "shipper": "Blue Ridge Paper", "origin": "Roanoke, VA", "destination": "Atlanta, GA",
             "weight_lb": 38500, "rate_usd": 1875, "hazmat": true, "pickup_date": "2026-11-16", "notes": "Dock 4, ask for \"Sam\""},
            {"load_id": "L-88414", "shipper": "Great Lakes Steel", "origin": "Gary, IN", "destination": "Detroit, MI",
             "weight_lb": null, "rate_usd": 980.0, "hazmat": false, "pickup_date": "2026-11-17", "notes": "two\nlines"}
        ])
    );
}

#[test]
fn csv_loads_write_with_header_and_quotes_and_read_back() {
    let rows = read(Format::Csv, LOADS_CSV, &loads_options());
    let out_opts = options(
        Format::Csv,
        json!({"columns": ["load_id", "shipper", "origin", "weight_lb", "rate_usd", "hazmat", "pickup_date", "notes"]}),
    );
    let text = write(Format::Csv, &rows, &out_opts);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("load_id,shipper,origin,weight_lb,rate_usd,hazmat,pickup_date,notes")
    );
    assert_eq!(
        lines.next(),
        Some("L-88412,\"Acme Foods, Inc.\",\"Chicago, IL\",42000,2450.5,false,2026-11-15,")
    );
    assert!(text.contains("\"Dock 4, ask for \"\"Sam\"\"\""), "{text}");

    let back_opts = options(
        Format::Csv,
        json!({"columns": [
            "load_id", "shipper", "origin",
            {"name": "weight_lb", "type": "integer"}, {"name": "rate_usd", "type": "number"},
            {"name": "hazmat", "type": "boolean"}, {"name": "pickup_date", "type": "date"}, "notes"]}),
    );
    let back = read(Format::Csv, &text, &back_opts);
    let Value::Array(back) = back else {
        panic!("not an array")
    };
    let Value::Array(orig) = rows else {
        panic!("not an array")
    };
    for (b, mut o) in back.into_iter().zip(orig) {
        if let Some(m) = o.as_object_mut() {
            m.remove("destination");
        }
        assert_eq!(b, o);
    }
}

#[test]
fn csv_with_a_column_list_and_another_delimiter() {
    let text = "L-1;Reno;12.5\nL-2;\"Boise; ID\";\n";
    let opts = options(
        Format::Csv,
        json!({"delimiter": ";", "header": false,
               "columns": ["load", "city", {"name": "miles", "type": "number"}]}),
    );
    assert_eq!(
        read(Format::Csv, text, &opts),
        json!([{"load": "L-1", "city": "Reno", "miles": 12.5}, {"load": "L-2", "city": "Boise; ID", "miles": null}])
    );
    assert_eq!(
        write(Format::Csv, &read(Format::Csv, text, &opts), &opts),
        "L-1;Reno;12.5\nL-2;\"Boise; ID\";\n"
    );

    // A header row with a column list is skipped, the list names the fields.
    let skip = options(Format::Csv, json!({"columns": ["a", "b"]}));
    assert_eq!(
        read(Format::Csv, "x,y\n1,2\n", &skip),
        json!([{"a": "1", "b": "2"}])
    );

    // Neither header nor columns: each record is an array.
    let bare = options(Format::Csv, json!({"header": false}));
    assert_eq!(
        read(Format::Csv, "1,,3\n", &bare),
        json!([["1", null, "3"]])
    );
}

#[test]
fn csv_errors_name_the_record_line_and_field() {
    let opts = loads_options();
    // Record 3 spans lines 4-5 (quoted line break): the error on record 4
    // names line 6, field 5 (weight_lb).
    let text = "load_id,shipper,origin,destination,weight_lb,rate_usd,hazmat,pickup_date,notes\n\
                L-1,A,B,C,1,1,no,11/15/2026,\n\
                L-2,A,B,C,2,2,no,11/15/2026,\n\
                L-3,A,B,C,3,3,no,11/15/2026,\"x\ny\"\n\
                L-4,A,B,C,heavy,4,no,11/15/2026,\n";
    let e = read_err(Format::Csv, text, &opts);
    assert_eq!(e.code, "invalid_csv");
    assert_eq!(line_col(&e), (Some(6), Some(5)), "{e}");
    assert_eq!(e.location.path.as_deref(), Some("$[3].weight_lb"));
    assert!(e.message.contains("expected an integer"), "{e}");

    let bad_date = text
        .replace("L-4,A,B,C,heavy", "L-4,A,B,C,4")
        .replace("no,11/15/2026,\n", "no,2026-11-15,\n");
    let e = read_err(Format::Csv, &bad_date, &opts);
    assert_eq!(line_col(&e), (Some(2), Some(8)), "{e}");

    let ragged = "a,b,c\n1,2,3\n4,5\n";
    let e = read_err(
        Format::Csv,
        ragged,
        &FormatOptions::default_for(Format::Csv),
    );
    assert_eq!(line_col(&e), (Some(3), Some(3)), "{e}");

    let dup = "a,b,a\n1,2,3\n";
    let e = read_err(Format::Csv, dup, &FormatOptions::default_for(Format::Csv));
    assert_eq!(line_col(&e), (Some(1), Some(3)), "{e}");

    let short = options(
        Format::Csv,
        json!({"header": false, "columns": ["a", "b", "c"]}),
    );
    let e = read_err(Format::Csv, "1,2\n", &short);
    assert_eq!(line_col(&e), (Some(1), Some(3)), "{e}");
}

#[test]
fn csv_writer_refuses_nested_values_and_quotes_as_asked() {
    let opts = FormatOptions::default_for(Format::Csv);
    let e = codec::write(Format::Csv, &json!([{"id": 1, "stops": [1, 2]}]), &opts).err();
    assert_eq!(e.as_ref().map(|e| e.code), Some("unwritable_value"));
    assert_eq!(
        e.and_then(|e| e.location.path),
        Some("$[0].stops".to_owned())
    );
    let e = codec::write(Format::Csv, &json!("text"), &opts).err();
    assert_eq!(e.map(|e| e.code), Some("unwritable_value"));

    let always = options(
        Format::Csv,
        json!({"quoting": "always", "columns": ["id", "city"]}),
    );
    assert_eq!(
        write(
            Format::Csv,
            &json!({"id": 7, "city": "Reno", "extra": 1}),
            &always
        ),
        "\"id\",\"city\"\n\"7\",\"Reno\"\n"
    );
    let non_numeric = options(
        Format::Csv,
        json!({"quoting": "non_numeric", "header": false}),
    );
    assert_eq!(
        write(
            Format::Csv,
            &json!([{"city": "Reno", "id": 7}]),
            &non_numeric
        ),
        "\"Reno\",7\n"
    );
}

#[test]
fn csv_options_are_checked() {
    for bad in [
        json!({"delimiter": "ab"}),
        json!({"delimiter": "é"}),
        json!({"delimiter": "\"", "quote": "\""}),
        json!({"columns": ["a", "a"]}),
        json!({"types": {"a": "money"}}),
        json!({"separator": ";"}),
        // Numbers are written unquoted with non_numeric quoting.
        json!({"quoting": "non_numeric", "delimiter": "."}),
        json!({"quoting": "non_numeric", "quote": "1"}),
        json!({"quoting": "non_numeric", "delimiter": "n"}),
    ] {
        let e = FormatOptions::from_value(Format::Csv, Some(&bad)).err();
        assert_eq!(e.map(|e| e.code), Some("invalid_options"), "{bad}");
    }
}

// ---------------------------------------------------------------- dispatch

#[test]
fn dispatch_checks_the_options_belong_to_the_format_and_reaches_x12() {
    let json_opts = FormatOptions::default_for(Format::Json);
    let e = codec::read(Format::Xml, "<a/>", &json_opts, limits()).err();
    assert_eq!(e.map(|e| e.code), Some("invalid_options"));
    let e = codec::write(Format::Csv, &json!([]), &json_opts).err();
    assert_eq!(e.map(|e| e.code), Some("invalid_options"));

    let e = FormatOptions::from_value(Format::Json, Some(&json!({"indent": 2}))).err();
    assert_eq!(e.map(|e| e.code), Some("invalid_options"));
    assert_eq!(
        FormatOptions::from_value(Format::Xml, None).ok(),
        Some(FormatOptions::default_for(Format::Xml))
    );
    assert_eq!(
        FormatOptions::from_value(Format::Csv, Some(&Value::Null))
            .map(|o| o.format())
            .ok(),
        Some(Format::Csv)
    );

    let x12 = FormatOptions::default_for(Format::X12);
    let e = codec::read(Format::X12, "ISA*00*", &x12, limits()).err();
    assert_eq!(e.as_ref().map(|e| e.code), Some("invalid_x12"));
    let tender = include_str!("vectors/x12/204_load_tender.edi");
    let tree = codec::read(Format::X12, tender, &x12, limits()).expect("a 204");
    assert_eq!(
        codec::write(Format::X12, &tree, &x12).as_deref(),
        Ok(tender)
    );
    let e = codec::write(Format::X12, &json!({}), &x12).err();
    assert_eq!(e.map(|e| e.code), Some("invalid_x12_tree"));

    assert_eq!("xml".parse::<Format>().ok(), Some(Format::Xml));
    assert_eq!(
        serde_json::from_value::<Format>(json!("CSV")).ok(),
        Some(Format::Csv)
    );
}

// ---------------------------------------------------------------- properties

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn xml_name() -> impl Strategy<Value = String> {
    "([a-z]{1,3}:)?[A-Za-z_][A-Za-z0-9_.-]{0,6}"
}

/// Element text as the reader gives it back: trimmed and not empty.
fn xml_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 &<>\"'=;#\t\r\n.é€—-]{1,16}".prop_map(|s| {
        let t = s.trim();
        if t.is_empty() {
            "x".to_owned()
        } else {
            t.to_owned()
        }
    })
}

/// An element's value in the reader's canonical shape.
fn xml_element() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![Just(Value::Null), xml_text().prop_map(Value::String)];
    leaf.prop_recursive(4, 48, 5, |inner| {
        let child = prop_oneof![
            3 => inner.clone(),
            1 => prop::collection::vec(inner, 2..4).prop_map(Value::Array),
        ];
        (
            prop::collection::btree_map(xml_name(), "[a-zA-Z0-9 &<>\"'\t\r\n—]{0,10}", 0..3),
            prop::collection::btree_map(xml_name(), child, 0..4),
            prop::option::of(xml_text()),
        )
            .prop_map(|(attrs, children, text)| {
                let mut m = serde_json::Map::new();
                for (k, v) in attrs {
                    m.insert(format!("@{k}"), Value::String(v));
                }
                m.extend(children);
                match (m.is_empty(), text) {
                    (true, None) => Value::Null,
                    (true, Some(t)) => Value::String(t),
                    (false, t) => {
                        if let Some(t) = t {
                            m.insert("#text".to_owned(), Value::String(t));
                        }
                        Value::Object(m)
                    }
                }
            })
    })
}

#[derive(Debug, Clone)]
struct LoadRow {
    id: Option<i64>,
    shipper: Option<String>,
    weight: Option<f64>,
    hazmat: Option<bool>,
    pickup: Option<i32>,
}

fn load_row() -> impl Strategy<Value = LoadRow> {
    (
        prop::option::of(any::<i64>()),
        prop::option::of("\\PC{1,12}|[ ,;\"\r\n]{1,4}"),
        prop::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
        prop::option::of(any::<bool>()),
        prop::option::of(-100_000..100_000i32),
    )
        .prop_map(|(id, shipper, weight, hazmat, pickup)| LoadRow {
            id,
            shipper,
            weight,
            hazmat,
            pickup,
        })
}

fn row_value(r: &LoadRow) -> Value {
    let date = r.pickup.and_then(|d| {
        chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
            .and_then(|base| base.checked_add_signed(chrono::Duration::days(i64::from(d))))
            .map(|d| d.format("%Y-%m-%d").to_string())
    });
    json!({"id": r.id, "shipper": r.shipper, "weight": r.weight, "hazmat": r.hazmat, "pickup": date})
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_round_trips(value in json_value(), pretty in any::<bool>()) {
        let opts = options(Format::Json, json!({"pretty": pretty}));
        let text = write(Format::Json, &value, &opts);
        prop_assert_eq!(read(Format::Json, &text, &opts), value);
    }

    #[test]
    fn xml_round_trips(name in xml_name(), element in xml_element(), pretty in any::<bool>()) {
        let tree = json!({ name: element });
        let opts = options(Format::Xml, json!({"pretty": pretty}));
        let text = write(Format::Xml, &tree, &opts);
        prop_assert_eq!(read(Format::Xml, &text, &opts), tree, "{}", text);
    }

    #[test]
    fn csv_round_trips(rows in prop::collection::vec(load_row(), 0..8), delimiter in prop::sample::select(vec![",", ";", "\t", "|"])) {
        let opts = options(Format::Csv, json!({"delimiter": delimiter, "columns": [
            {"name": "id", "type": "integer"}, "shipper", {"name": "weight", "type": "number"},
            {"name": "hazmat", "type": "boolean"}, {"name": "pickup", "type": "date"}]}));
        let tree = Value::Array(rows.iter().map(row_value).collect());
        let text = write(Format::Csv, &tree, &opts);
        prop_assert_eq!(read(Format::Csv, &text, &opts), tree, "{}", text);
    }

    #[test]
    fn readers_never_panic_on_arbitrary_text(text in "\\PC{0,64}|[<>/a-z\"'=&;#\\[\\]{}:,\n !-]{0,96}") {
        for format in [Format::Json, Format::Xml, Format::Csv] {
            let _ = codec::read(format, &text, &FormatOptions::default_for(format), limits());
        }
        let typed = loads_options();
        let _ = codec::read(Format::Csv, &text, &typed, limits());
    }

    /// Untyped records named by a header: any non-empty text survives,
    /// delimiters, quotes and line breaks included, whatever the quoting.
    #[test]
    fn csv_string_records_round_trip(
        rows in prop::collection::vec(prop::collection::vec(prop::option::of("\\PC{1,10}|[ ,;|\t'\"\r\n]{1,4}"), 3), 0..6),
        delimiter in prop::sample::select(vec![",", ";", "\t", "|"]),
        quote in prop::sample::select(vec!["\"", "'"]),
        quoting in prop::sample::select(vec!["necessary", "always", "non_numeric"]),
    ) {
        let opts = options(Format::Csv, json!({"delimiter": delimiter, "quote": quote, "quoting": quoting}));
        let tree = Value::Array(rows.iter().map(|r| json!({"ref": r[0], "note": r[1], "city": r[2]})).collect());
        let text = write(Format::Csv, &tree, &opts);
        prop_assert_eq!(read(Format::Csv, &text, &opts), tree, "{}", text);
    }

    /// Without a header or columns, records are arrays of fields.
    #[test]
    fn csv_headerless_records_round_trip(
        width in 1..5usize,
        rows in prop::collection::vec(prop::collection::vec(prop::option::of("\\PC{1,8}|[,\"\r\n ]{1,3}"), 5), 0..6),
    ) {
        let opts = options(Format::Csv, json!({"header": false}));
        let tree = Value::Array(
            rows.iter()
                .map(|r| Value::Array(r.iter().take(width).map(|f| json!(f)).collect()))
                .collect(),
        );
        let text = write(Format::Csv, &tree, &opts);
        prop_assert_eq!(read(Format::Csv, &text, &opts), tree, "{}", text);
    }
}
