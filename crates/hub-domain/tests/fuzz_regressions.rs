//! The fuzz targets' checks in the normal test suite: every input that once
//! crashed a target (`cargo xtask fuzz` files it under
//! `tests/fuzz-regressions/<target>/`) and every seed of the fuzz corpus
//! (`fuzz/seeds/<target>/`) runs through exactly the checks of its target,
//! which this file includes from the fuzz crate. Tests below that name a
//! crash also say what the parser now answers.

use proptest::prelude::*;

#[path = "../fuzz/src/lib.rs"]
mod checks;

#[macro_use]
#[path = "../../hub-testkit/shared/fuzz_regressions.rs"]
mod runner;

fuzz_regression_tests!("hub-domain-fuzz");

proptest! {
    /// Every target's check holds on generated input too: two option
    /// bytes (the targets choose their options from the first bytes), then
    /// NUL-separated fields of text in the alphabet of headers, JSON and
    /// addresses.
    #[test]
    fn every_fuzz_check_holds_on_generated_input(
        head in prop::collection::vec(any::<u8>(), 2),
        parts in prop::collection::vec("\\PC{0,24}|[a-zA-Z0-9:=,.;/\\[\\]{}\"*+ \n-]{0,48}", 0..7),
    ) {
        let mut data = head;
        data.extend_from_slice(parts.join("\0").as_bytes());
        for (_, check) in checks::TARGETS {
            check(&data);
        }
    }
}

// ------------------------------------------------ crashes the fuzzer found

use hub_domain::Envelope;
use hub_domain::event::http::{self, BindingError};
use hub_domain::event::{MAX_DATA_DEPTH, json_depth};
use hub_domain::inbound::{Scheme, provider_event_type};
use serde_json::{Value, json};

/// `[[…]]` nested `depth` levels.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// `cloudevents/crash-70566292…`: in binary mode the body is the event's
/// data, so a JSON body 126 levels deep was accepted, and the event, one
/// level deeper, was JSON that serde_json (at most 127 levels) and so every
/// consumer of the bus could not read. `data` now nests at most
/// `MAX_DATA_DEPTH` (100) levels, in every mode.
#[test]
fn event_data_deeper_than_the_limit_is_refused_in_every_mode() {
    let headers = [
        ("ce-specversion", b"1.0".as_slice()),
        ("ce-id", b"evt-8".as_slice()),
        ("ce-source", b"tms".as_slice()),
        ("ce-type", b"shipment.created".as_slice()),
    ];
    let binary = |body: &str| http::parse(Some("application/json"), headers, body.as_bytes());
    let structured = |data: &str| {
        let body =
            format!(r#"{{"specversion":"1.0","id":"d","source":"s","type":"t","data":{data}}}"#);
        http::parse(Some("application/cloudevents+json"), [], body.as_bytes())
    };
    type Parsed = Result<(http::Mode, Vec<Envelope>), BindingError>;
    for parse in [&binary as &dyn Fn(&str) -> Parsed, &structured] {
        let (_, events) = parse(&nested(MAX_DATA_DEPTH)).expect("at the limit");
        let written = serde_json::to_vec(&events[0]).expect("serializes");
        assert_eq!(Envelope::from_slice(&written).ok(), Some(events[0].clone()));
        match parse(&nested(MAX_DATA_DEPTH + 1)) {
            Err(BindingError::Invalid(e)) => assert_eq!(e.field, "data", "{e}"),
            other => panic!("one level over the limit: {other:?}"),
        }
    }
    assert_eq!(json_depth(&json!(1)), 0);
    assert_eq!(json_depth(&json!({"a": [[], {"b": 1}]})), 3);
}

/// `inbound_payload/crash-327650f4…`: a received webhook whose payload was
/// 126 levels deep became a typed event (the payload under `data.payload`)
/// that no consumer could read. Such a payload is now a processing error.
#[test]
fn an_inbound_payload_too_deep_for_its_typed_event_is_a_processing_error() {
    use hub_domain::inbound::HandlerType;
    use hub_domain::inbound::processing::{Route, decide};
    let route = Route {
        handler: HandlerType::Custom,
        event_types: &[],
        transform: None,
        mapped: None,
        target_service: None,
    };
    let at_limit: Value = serde_json::from_str(&nested(MAX_DATA_DEPTH - 1)).expect("JSON");
    let typed = decide(&route, None, Some(&at_limit))
        .expect("processed")
        .expect("typed");
    assert_eq!(json_depth(&typed.data), MAX_DATA_DEPTH);
    let over: Value = serde_json::from_str(&nested(MAX_DATA_DEPTH)).expect("JSON");
    let e = decide(&route, None, Some(&over)).expect_err("too deep");
    assert!(e.contains("levels deep"), "{e}");
}

/// `cloudevents/crash-876ee892…`: a `ce-` header (an attribute with an
/// empty name) was refused with an error naming the field `""`. It now
/// names `extensions` and quotes the name.
#[test]
fn an_attribute_with_an_empty_name_is_refused_under_extensions() {
    let headers = [
        ("ce-specversion", b"1.0".as_slice()),
        ("ce-id", b"e".as_slice()),
        ("ce-source", b"s".as_slice()),
        ("ce-type", b"t".as_slice()),
        ("ce-", b"x".as_slice()),
    ];
    match http::parse(None, headers, b"") {
        Err(BindingError::Invalid(e)) => {
            assert_eq!(e.field, "extensions");
            assert!(e.message.starts_with("\"\" is not"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let body = br#"{"specversion":"1.0","id":"e","source":"s","type":"t","":1}"#;
    match http::parse(Some("application/cloudevents+json"), [], body) {
        Err(BindingError::Invalid(e)) => assert_eq!(e.field, "extensions"),
        other => panic!("{other:?}"),
    }
}

/// `inbound_payload/crash-c6575465…`: an empty `X-GitHub-Event` header was
/// taken as the event type `""` (an empty body field never was). A header
/// with nothing in it now says no type.
#[test]
fn an_empty_event_type_header_says_no_type() {
    let headers = |v: &str| vec![("X-GitHub-Event".to_owned(), v.to_owned())];
    assert_eq!(
        provider_event_type(Scheme::Github, &headers(""), None),
        None
    );
    assert_eq!(
        provider_event_type(Scheme::Github, &headers("  "), None),
        None
    );
    assert_eq!(
        provider_event_type(Scheme::Github, &headers(" push "), None).as_deref(),
        Some("push")
    );
}

/// `schedule/timeout-0e4a8286…`: croner reads `+` in the day of week as
/// "day of month AND day of week" and finds such a date by a slow walk:
/// `3 0 29 2 +` took 3.6 s of CPU (fuzz build) for one next run from 2053,
/// and the scheduler computes next runs on every due check. `+` is not
/// cron syntax, and is now refused.
#[test]
fn croners_and_marker_is_refused_in_a_sync_frequency() {
    use hub_domain::schedule::{FrequencyError, SyncFrequency};
    for raw in ["3 0 29 2 +", "0 0 29 2 +MON", "0 0 1 * +1"] {
        assert!(
            matches!(SyncFrequency::parse(raw), Err(FrequencyError::Invalid(_))),
            "{raw}"
        );
    }
    assert!(SyncFrequency::parse("3 0 29 2 *").is_ok());
    assert!(SyncFrequency::parse("0 0 29 2 MON").is_ok());
}
