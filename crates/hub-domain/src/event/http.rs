//! The CloudEvents 1.0 HTTP protocol binding: how events arrive in a request.
//!
//! - structured mode: `Content-Type: application/cloudevents+json`, the body
//!   is one JSON event;
//! - binary mode: the attributes in `ce-*` headers (percent-encoded), the
//!   body is the event's `data` and `Content-Type` its `datacontenttype`;
//! - batched mode: `Content-Type: application/cloudevents-batch+json`, the
//!   body is a JSON array of events.
//!
//! A plain `application/json` body (or none) without a `ce-specversion`
//! header is read as one JSON event, as clients of the hub have sent it.

use super::Envelope;
use super::binary::{from_binary, media_type};
use crate::FieldError;
use serde_json::Value;

/// How the events were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One JSON event in the body.
    Structured,
    /// Attributes in `ce-*` headers, the data in the body.
    Binary,
    /// A JSON array of events.
    Batched,
}

/// Why a request holds no events the hub can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingError {
    /// An event format other than JSON (`application/cloudevents+avro`, …).
    UnsupportedFormat(String),
    /// The events are malformed or invalid.
    Invalid(FieldError),
}

impl From<FieldError> for BindingError {
    fn from(e: FieldError) -> Self {
        Self::Invalid(e)
    }
}

/// Most events in one batch.
pub const MAX_BATCH: usize = 1000;

const STRUCTURED: &str = "application/cloudevents";
const BATCH: &str = "application/cloudevents-batch";

/// Reads the events of a request from its `Content-Type`, its headers (name,
/// raw value) and its body.
pub fn parse<'a>(
    content_type: Option<&str>,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    body: &[u8],
) -> Result<(Mode, Vec<Envelope>), BindingError> {
    let media = content_type.map(media_type);
    match media.as_deref() {
        Some(m) if m.starts_with(BATCH) => {
            json_format(m, BATCH)?;
            Ok((Mode::Batched, batch(body)?))
        }
        Some(m) if m.starts_with(STRUCTURED) => {
            json_format(m, STRUCTURED)?;
            Ok((Mode::Structured, vec![Envelope::from_slice(body)?]))
        }
        _ => {
            let attributes: Vec<(String, &[u8])> = headers
                .into_iter()
                .filter_map(|(name, value)| {
                    let name = name.to_ascii_lowercase();
                    name.strip_prefix("ce-")
                        .map(|attr| (attr.to_owned(), value))
                })
                .collect();
            if attributes.iter().any(|(a, _)| a == "specversion") {
                Ok((Mode::Binary, vec![binary(attributes, content_type, body)?]))
            } else {
                Ok((Mode::Structured, vec![Envelope::from_slice(body)?]))
            }
        }
    }
}

/// Accepts `<prefix>+json` (and `<prefix>` alone, read as JSON).
fn json_format(media: &str, prefix: &str) -> Result<(), BindingError> {
    match &media[prefix.len()..] {
        "" | "+json" => Ok(()),
        other => Err(BindingError::UnsupportedFormat(format!(
            "{media}: the {} event format is not supported; send {prefix}+json",
            other.trim_start_matches('+')
        ))),
    }
}

fn batch(body: &[u8]) -> Result<Vec<Envelope>, FieldError> {
    let items: Vec<Value> = serde_json::from_slice(body).map_err(|e| {
        FieldError::new(
            "body",
            format!("a batch is a JSON array of CloudEvents JSON events: {e}"),
        )
    })?;
    if items.len() > MAX_BATCH {
        return Err(FieldError::new(
            "body",
            format!(
                "at most {MAX_BATCH} events in a batch (got {})",
                items.len()
            ),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(map) = item else {
                return Err(FieldError::new(
                    format!("[{i}]"),
                    "must be a CloudEvents JSON event (an object)",
                ));
            };
            Envelope::from_map(map)
                .map_err(|e| FieldError::new(format!("[{i}].{}", e.field), e.message))
        })
        .collect()
}

/// An event sent in binary mode: `attributes` from the `ce-*` headers.
fn binary(
    attributes: Vec<(String, &[u8])>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Envelope, FieldError> {
    let mut decoded = Vec::with_capacity(attributes.len());
    for (name, raw) in attributes {
        // Header values are percent-encoded (binding 3.1.3.2); they are text.
        let value = percent_encoding::percent_decode(raw)
            .decode_utf8()
            .map_err(|_| FieldError::new(format!("ce-{name}"), "must be UTF-8 text"))?;
        decoded.push((name, Value::String(value.into_owned())));
    }
    from_binary("ce-", decoded, content_type, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "0190a0d0-0000-7000-8000-000000000001";

    fn one(
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(Mode, Envelope), BindingError> {
        let h = headers.iter().map(|(k, v)| (*k, v.as_bytes()));
        parse(content_type, h, body).map(|(mode, mut events)| {
            assert_eq!(events.len(), 1);
            (mode, events.remove(0))
        })
    }

    fn invalid(r: Result<(Mode, Envelope), BindingError>) -> FieldError {
        match r {
            Err(BindingError::Invalid(e)) => e,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn structured_mode_with_either_content_type() {
        let body =
            json!({"specversion": "1.0", "id": ID, "source": "tms", "type": "order.created"})
                .to_string();
        for ct in [
            Some("application/cloudevents+json; charset=utf-8"),
            Some("application/json"),
            Some("Application/CloudEvents+JSON"),
            None,
        ] {
            let (mode, e) = one(ct, &[], body.as_bytes()).unwrap();
            assert_eq!(mode, Mode::Structured, "{ct:?}");
            assert_eq!(e.id.to_string(), ID);
            assert_eq!(e.data, Value::Null);
        }
    }

    #[test]
    fn other_event_formats_are_unsupported() {
        let r = parse(Some("application/cloudevents+avro"), [], b"x");
        assert!(matches!(r, Err(BindingError::UnsupportedFormat(m)) if m.contains("avro")));
        let r = parse(Some("application/cloudevents-batch+protobuf"), [], b"x");
        assert!(matches!(r, Err(BindingError::UnsupportedFormat(_))));
    }

    #[test]
    fn binary_mode_reads_headers_and_body_by_media_type() {
        let headers = [
            ("ce-specversion", "1.0"),
            ("CE-ID", "A-234-1234-1234"),
            ("ce-source", "/mycontext"),
            ("ce-type", "com.example.someevent"),
            ("ce-time", "2018-04-05T17:31:00Z"),
            ("ce-subject", "load%20L-1%20%C3%A9t%C3%A9"),
            ("ce-comexampleextension1", "value"),
            ("x-other", "ignored"),
        ];
        let (mode, e) = one(Some("application/json"), &headers, br#"{"load_id": "L-1"}"#).unwrap();
        assert_eq!(mode, Mode::Binary);
        assert_eq!(e.producer_id.as_deref(), Some("A-234-1234-1234"));
        assert_eq!(e.source, "/mycontext");
        assert_eq!(e.subject.as_deref(), Some("load L-1 été"));
        assert_eq!(e.data, json!({"load_id": "L-1"}));
        assert_eq!(e.datacontenttype.as_deref(), Some("application/json"));
        assert_eq!(e.extensions["comexampleextension1"], "value");
        assert_eq!(e.time.to_rfc3339(), "2018-04-05T17:31:00+00:00");

        let (_, xml) = one(Some("application/xml"), &headers, b"<load id=\"1\"/>").unwrap();
        assert_eq!(xml.data, json!("<load id=\"1\"/>"));
        let (_, bin) = one(
            Some("application/octet-stream"),
            &headers,
            &[0, 159, 146, 150],
        )
        .unwrap();
        assert_eq!(bin.data, Value::Null);
        assert_eq!(bin.data_base64.as_deref(), Some("AJ+Slg=="));
        let (_, empty) = one(None, &headers, b"").unwrap();
        assert_eq!((empty.data, empty.data_base64), (Value::Null, None));
    }

    #[test]
    fn binary_mode_refuses_what_is_not_its_own() {
        let base = [
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "s"),
            ("ce-type", "a.b"),
        ];
        let e = invalid(one(Some("application/json"), &base, b"{not json"));
        assert_eq!(e.field, "data");
        let mut h = base.to_vec();
        h.push(("ce-datacontenttype", "text/plain"));
        assert_eq!(invalid(one(None, &h, b"")).field, "ce-datacontenttype");
        let e = invalid(one(None, &base[1..], b"")); // no specversion: read as structured
        assert_eq!(e.field, "body");
    }

    #[test]
    fn batched_mode_reads_every_event_and_names_the_bad_one() {
        let good = json!({"specversion": "1.0", "id": "e1", "source": "s", "type": "a.b"});
        let body = json!([good, {"specversion": "1.0", "id": "e2", "source": "s", "type": "a.c", "time": "yesterday"}]);
        let r = parse(
            Some("application/cloudevents-batch+json"),
            [],
            body.to_string().as_bytes(),
        );
        match r {
            Err(BindingError::Invalid(e)) => assert_eq!(e.field, "[1].time"),
            other => panic!("{other:?}"),
        }
        let body = json!([good, {"specversion": "1.0", "id": "e2", "source": "s", "type": "a.c"}]);
        let (mode, events) = parse(
            Some("application/cloudevents-batch+json"),
            [],
            body.to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(mode, Mode::Batched);
        assert_eq!(events.len(), 2);
        let (_, none) = parse(Some("application/cloudevents-batch+json"), [], b"[]").unwrap();
        assert!(none.is_empty());
        let e = parse(Some("application/cloudevents-batch+json"), [], b"{}");
        assert!(matches!(e, Err(BindingError::Invalid(f)) if f.field == "body"));
    }
}
