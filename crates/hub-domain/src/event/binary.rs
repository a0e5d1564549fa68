//! Binary content mode, shared by the protocol bindings: an event's
//! attributes travel beside its data (HTTP's `ce-*` headers, AMQP's
//! `cloudEvents:` application properties) and the message body is the data.

use super::Envelope;
use crate::FieldError;
use base64::Engine as _;
use serde_json::{Map, Value};

/// An event sent in a protocol binding's binary mode (HTTP's `ce-*`
/// headers, AMQP's `cloudEvents:` application properties): its
/// `attributes` (names without the binding's `prefix`, which names them in
/// errors), the message's content type and its body (the data).
pub fn from_binary(
    prefix: &str,
    attributes: Vec<(String, Value)>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Envelope, FieldError> {
    let mut m = Map::new();
    for (name, value) in attributes {
        if matches!(name.as_str(), "data" | "data_base64" | "datacontenttype") {
            return Err(FieldError::new(
                format!("{prefix}{name}"),
                "is not an attribute in binary mode: the body is the data and the content type its media type",
            ));
        }
        m.insert(name, value);
    }
    if let Some(ct) = content_type {
        m.insert("datacontenttype".into(), Value::String(ct.to_owned()));
    }
    if !body.is_empty() {
        let (key, value) = data_member(content_type.map(media_type).as_deref(), body)?;
        m.insert(key.into(), value);
    }
    Envelope::from_map(m)
}

/// Where a binary-mode body goes in the JSON event: JSON as `data`, text as
/// a `data` string, anything else as `data_base64`.
fn data_member(media: Option<&str>, body: &[u8]) -> Result<(&'static str, Value), FieldError> {
    let is_json = |m: &str| m == "application/json" || m.ends_with("+json") || m == "text/json";
    let is_text = |m: &str| {
        m.starts_with("text/")
            || m == "application/xml"
            || m.ends_with("+xml")
            || m == "application/x-www-form-urlencoded"
    };
    match media {
        Some(m) if is_json(m) => serde_json::from_slice(body)
            .map(|v| ("data", v))
            .map_err(|e| {
                FieldError::new(
                    "data",
                    format!("the body is not the JSON its Content-Type says: {e}"),
                )
            }),
        Some(m) if is_text(m) => match std::str::from_utf8(body) {
            Ok(text) => Ok(("data", Value::String(text.to_owned()))),
            Err(_) => Ok(("data_base64", base64_of(body))),
        },
        // No media type: JSON when it is JSON (the JSON format's default).
        None => Ok(serde_json::from_slice(body)
            .map(|v| ("data", v))
            .unwrap_or_else(|_| ("data_base64", base64_of(body)))),
        Some(_) => Ok(("data_base64", base64_of(body))),
    }
}

fn base64_of(body: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(body))
}

/// The media type of a `Content-Type` value, lower-cased, without parameters.
pub(super) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}
