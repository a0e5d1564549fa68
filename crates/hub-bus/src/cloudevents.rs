//! The CloudEvents AMQP binding, as far as RabbitMQ carries it: a message
//! is a JSON event (structured mode), or, when its headers hold
//! `cloudEvents:specversion` (or `cloudEvents_specversion`, the binding's
//! JMS-safe form), an event in binary mode: the attributes in headers with
//! that prefix, the body is the data and `content_type` its media type.

use hub_domain::{Envelope, FieldError};
use lapin::BasicProperties;
use lapin::types::AMQPValue;

const PREFIXES: [&str; 2] = ["cloudEvents:", "cloudEvents_"];

/// The event a message carries, in either mode.
pub fn envelope_of(properties: &BasicProperties, body: &[u8]) -> Result<Envelope, FieldError> {
    let headers = properties.headers().as_ref().map(|h| h.inner());
    let binary = headers.is_some_and(|h| {
        h.contains_key("cloudEvents:specversion") || h.contains_key("cloudEvents_specversion")
    });
    let Some(headers) = headers.filter(|_| binary) else {
        return Envelope::from_slice(body);
    };
    let mut attributes = Vec::new();
    for (name, value) in headers {
        let Some(attr) = PREFIXES.iter().find_map(|p| name.as_str().strip_prefix(p)) else {
            continue;
        };
        let value = json_of(value).ok_or_else(|| {
            FieldError::new(
                name.as_str(),
                "must be a string, number, boolean or timestamp",
            )
        })?;
        attributes.push((attr.to_owned(), value));
    }
    let content_type = properties.content_type().as_ref().map(|c| c.as_str());
    hub_domain::event::binary::from_binary(PREFIXES[0], attributes, content_type, body)
}

/// An attribute's value as the JSON event format writes it.
fn json_of(v: &AMQPValue) -> Option<serde_json::Value> {
    use serde_json::Value;
    Some(match v {
        AMQPValue::LongString(s) => {
            Value::String(std::str::from_utf8(s.as_bytes()).ok()?.to_owned())
        }
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_owned()),
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(n) => (*n).into(),
        AMQPValue::ShortShortUInt(n) => (*n).into(),
        AMQPValue::ShortInt(n) => (*n).into(),
        AMQPValue::ShortUInt(n) => (*n).into(),
        AMQPValue::LongInt(n) => (*n).into(),
        AMQPValue::LongUInt(n) => (*n).into(),
        AMQPValue::LongLongInt(n) => (*n).into(),
        AMQPValue::Timestamp(secs) => Value::String(
            chrono::DateTime::from_timestamp(i64::try_from(*secs).ok()?, 0)?
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{FieldTable, LongString, ShortString};

    fn props(headers: &[(&str, AMQPValue)], content_type: Option<&str>) -> BasicProperties {
        let mut t = FieldTable::default();
        for (k, v) in headers {
            t.insert(ShortString::from(*k), v.clone());
        }
        let p = BasicProperties::default().with_headers(t);
        match content_type {
            Some(c) => p.with_content_type(ShortString::from(c)),
            None => p,
        }
    }

    fn s(v: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(v))
    }

    #[test]
    fn binary_mode_reads_prefixed_headers_and_the_body() {
        let p = props(
            &[
                ("cloudEvents:specversion", s("1.0")),
                ("cloudEvents:id", s("erp-77")),
                ("cloudEvents:source", s("erp")),
                ("cloudEvents:type", s("invoice.generated")),
                ("cloudEvents:time", AMQPValue::Timestamp(1_764_000_000)),
                ("cloudEvents_priority", AMQPValue::LongInt(3)),
                ("traceparent", s("not an attribute")),
            ],
            Some("application/json"),
        );
        let e = envelope_of(&p, br#"{"invoice": "INV-1"}"#).unwrap();
        assert_eq!(e.id_text(), "erp-77");
        assert_eq!(e.data, serde_json::json!({"invoice": "INV-1"}));
        assert_eq!(e.time.timestamp(), 1_764_000_000);
        assert_eq!(e.extensions["priority"], 3);
        assert_eq!(e.traceparent, None);
    }

    #[test]
    fn without_the_headers_the_body_is_a_json_event() {
        let body = br#"{"specversion": "1.0", "id": "x", "source": "s", "type": "a.b"}"#;
        assert_eq!(envelope_of(&props(&[], None), body).unwrap().id_text(), "x");
        let bad = props(
            &[
                ("cloudEvents:specversion", s("1.0")),
                ("cloudEvents:id", AMQPValue::Void),
            ],
            None,
        );
        assert_eq!(envelope_of(&bad, b"").unwrap_err().field, "cloudEvents:id");
    }
}
