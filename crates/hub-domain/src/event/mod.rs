//! The CloudEvents 1.0 event every message on the bus carries, its binary
//! content mode (`binary`) and its HTTP binding (`http`).

pub mod binary;
pub mod http;

use crate::{EventId, FieldError, TenantId};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use uuid::Uuid;

/// An event type, which is also its routing key: dot-separated segments of
/// `a-z`, `0-9`, `_` and `-`, 1–200 characters (`order.created`,
/// `integration.opportunity.updated`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventType(String);

impl EventType {
    /// Parses an event type.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let err = |m: &str| Err(FieldError::new("type", m));
        if raw.is_empty() || raw.len() > 200 {
            return err("must be 1 to 200 characters");
        }
        let seg_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        };
        if !raw.split('.').all(seg_ok) {
            return err(
                "must be dot-separated segments of a-z, 0-9, '_' and '-' (e.g. \"order.created\")",
            );
        }
        Ok(Self(raw.to_owned()))
    }
    /// The type as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EventType {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EventType> for String {
    fn from(t: EventType) -> Self {
        t.0
    }
}

/// The further routing keys an event of `event_type` is published under
/// (design section 4: "webhook.received (also as
/// integration.webhook.received)"): one event, one message, routed to the
/// queues bound to any of its keys (RabbitMQ's `CC` header), not a second
/// event with an id of its own that would cost a second outbox row and
/// publish.
pub fn also_routed_as(event_type: &str) -> &'static [&'static str] {
    match event_type {
        "webhook.received" => &["integration.webhook.received"],
        _ => &[],
    }
}

/// A CloudEvents 1.0 event, as the bus carries it and deliveries send it
/// (JSON event format, structured mode).
///
/// Only the four attributes CloudEvents requires are required on input
/// (`specversion`, `id`, `source`, `type`); `time` defaults to when the
/// event was read. The optional attributes, `data_base64` and any
/// extension attribute are kept and written back out, so a receiver gets
/// the event as its producer wrote it. The hub keys events by a UUID: the
/// producer's `id` when it is one, otherwise a UUID derived from `source`
/// and `id` (CloudEvents makes that pair unique), with the producer's `id`
/// kept in [`Envelope::producer_id`] and sent as `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Always `"1.0"`.
    pub specversion: String,
    /// The hub's key of the event; consumers dedupe on it.
    pub id: EventId,
    /// The producer's `id`, when it is not the canonical text of
    /// [`Envelope::id`] (not a UUID, or one written otherwise).
    pub producer_id: Option<String>,
    /// The producing service (`integration-manager`, …) or an external system.
    pub source: String,
    /// The event type, also the routing key.
    pub event_type: EventType,
    /// When the event happened (when it was read, if its producer did not say).
    pub time: DateTime<Utc>,
    /// The media type of `data` (`application/json` when `data` is JSON and
    /// the producer did not say).
    pub datacontenttype: Option<String>,
    /// The schema `data` adheres to (a URI).
    pub dataschema: Option<String>,
    /// What the event is about, within `source`.
    pub subject: Option<String>,
    /// The tenant the event belongs to; `None` only for platform ticks.
    pub tenantid: Option<TenantId>,
    /// Ties related events and requests together.
    pub correlationid: Option<String>,
    /// The payload (`Null` when there is none, or it is in `data_base64`).
    pub data: serde_json::Value,
    /// A binary payload, base64-encoded (never together with `data`).
    pub data_base64: Option<String>,
    /// W3C trace context of the producing span (CloudEvents distributed
    /// tracing extension); the relay copies it into the AMQP headers.
    pub traceparent: Option<String>,
    /// Every other extension attribute, as the producer sent it (a string,
    /// number or boolean each).
    pub extensions: BTreeMap<String, serde_json::Value>,
}

const JSON: &str = "application/json";

/// The namespace of the UUIDs derived from a producer's `source` and `id`
/// (UUIDv5), so the same event gets the same key however often it arrives.
const PRODUCER_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2d0e_8a4b_4f3e_9c71_5e2a_d8b0_4c19);

/// Longest accepted `id`.
const MAX_ID_LEN: usize = 256;
/// Longest accepted `source` (the `events.source` column).
const MAX_SOURCE_LEN: usize = 200;
/// Longest accepted `dataschema`, `subject` and extension value.
const MAX_ATTRIBUTE_LEN: usize = 2048;
/// Most extension attributes on one event.
const MAX_EXTENSIONS: usize = 64;

/// The deepest nesting of arrays and objects accepted in an event's `data`.
/// An event is its `data` nested one level more (two in a batch, and the
/// typed events of inbound webhooks wrap their payload once more), and
/// serde_json reads at most 127 levels: deeper data would be accepted at
/// the edge, then be unreadable to every consumer of the bus.
pub const MAX_DATA_DEPTH: usize = 100;

/// How deep arrays and objects nest in `v`: 0 for a scalar, 1 for `[]` or
/// `{"a": 1}`, 2 for `[[]]`.
pub fn json_depth(v: &serde_json::Value) -> usize {
    let inner = match v {
        serde_json::Value::Array(items) => items.iter().map(json_depth).max(),
        serde_json::Value::Object(members) => members.values().map(json_depth).max(),
        _ => return 0,
    };
    1 + inner.unwrap_or(0)
}

impl Envelope {
    /// A new event with a fresh id and the current time.
    pub fn new(
        source: &str,
        event_type: EventType,
        tenant: Option<TenantId>,
        data: serde_json::Value,
    ) -> Self {
        Self {
            specversion: "1.0".to_owned(),
            id: EventId::new(),
            producer_id: None,
            source: source.to_owned(),
            event_type,
            time: Utc::now(),
            datacontenttype: Some(JSON.to_owned()),
            dataschema: None,
            subject: None,
            tenantid: tenant,
            correlationid: None,
            data,
            data_base64: None,
            traceparent: None,
            extensions: BTreeMap::new(),
        }
    }

    /// Sets the trace context.
    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation(mut self, id: Option<String>) -> Self {
        self.correlationid = id;
        self
    }

    /// The `id` as the producer wrote it (what receivers see).
    pub fn id_text(&self) -> String {
        self.producer_id
            .clone()
            .unwrap_or_else(|| self.id.to_string())
    }

    /// Parses a structured-mode JSON event received from the bus or over HTTP.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, FieldError> {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes)
            .map_err(|e| {
                FieldError::new(
                    "body",
                    format!("not a CloudEvents JSON event (a JSON object): {e}"),
                )
            })?;
        Self::from_map(map)
    }

    /// Parses an event from its attributes (the members of a JSON event
    /// object, or what the HTTP binary mode's headers and body give).
    pub fn from_map(mut m: serde_json::Map<String, serde_json::Value>) -> Result<Self, FieldError> {
        let specversion = required(&mut m, "specversion")?;
        if specversion != "1.0" {
            return Err(FieldError::new(
                "specversion",
                format!("must be \"1.0\" (got {specversion:?})"),
            ));
        }
        let raw_id = required(&mut m, "id")?;
        if raw_id.len() > MAX_ID_LEN {
            return Err(FieldError::new(
                "id",
                format!("must be at most {MAX_ID_LEN} characters"),
            ));
        }
        let source = required(&mut m, "source")?;
        if source.len() > MAX_SOURCE_LEN {
            return Err(FieldError::new(
                "source",
                format!("must be at most {MAX_SOURCE_LEN} characters"),
            ));
        }
        let event_type = EventType::parse(&required(&mut m, "type")?)?;
        let time = match optional(&mut m, "time")? {
            None => Utc::now(),
            Some(t) => DateTime::parse_from_rfc3339(&t)
                .map_err(|_| {
                    FieldError::new(
                        "time",
                        format!("must be an RFC 3339 timestamp such as \"2026-12-04T10:00:00Z\" (got {t:?})"),
                    )
                })?
                .with_timezone(&Utc),
        };
        let datacontenttype = bounded(&mut m, "datacontenttype", 255)?;
        let dataschema = bounded(&mut m, "dataschema", MAX_ATTRIBUTE_LEN)?;
        if let Some(s) = &dataschema
            && url::Url::parse(s).is_err()
        {
            return Err(FieldError::new("dataschema", "must be an absolute URI"));
        }
        let subject = bounded(&mut m, "subject", MAX_ATTRIBUTE_LEN)?;
        let tenantid = optional(&mut m, "tenantid")?
            .map(|t| {
                t.parse()
                    .map_err(|_| FieldError::new("tenantid", "must be a tenant id (a UUID)"))
            })
            .transpose()?;
        let correlationid = bounded(&mut m, "correlationid", 100)?;
        let traceparent = bounded(&mut m, "traceparent", 255)?;
        let data = m.remove("data").unwrap_or(serde_json::Value::Null);
        if json_depth(&data) > MAX_DATA_DEPTH {
            return Err(FieldError::new(
                "data",
                format!("must nest arrays and objects at most {MAX_DATA_DEPTH} levels deep"),
            ));
        }
        let data_base64 = optional(&mut m, "data_base64")?;
        if let Some(b) = &data_base64 {
            if !data.is_null() {
                return Err(FieldError::new(
                    "data_base64",
                    "an event carries data or data_base64, not both",
                ));
            }
            if base64::engine::general_purpose::STANDARD.decode(b).is_err() {
                return Err(FieldError::new("data_base64", "must be base64 (RFC 4648)"));
            }
        }
        // `data` given as JSON without a media type is JSON (the JSON
        // event format's rule); say so to receivers.
        let datacontenttype = datacontenttype
            .or_else(|| (!data.is_null() && data_base64.is_none()).then(|| JSON.to_owned()));
        let extensions = extensions(m)?;
        let (id, producer_id) = match Uuid::parse_str(&raw_id) {
            Ok(u) if u.hyphenated().to_string() == raw_id => (EventId(u), None),
            Ok(u) => (EventId(u), Some(raw_id)),
            Err(_) => {
                let key = format!("{source}\n{raw_id}");
                (
                    EventId(Uuid::new_v5(&PRODUCER_ID_NAMESPACE, key.as_bytes())),
                    Some(raw_id),
                )
            }
        };
        Ok(Self {
            specversion,
            id,
            producer_id,
            source,
            event_type,
            time,
            datacontenttype,
            dataschema,
            subject,
            tenantid,
            correlationid,
            data,
            data_base64,
            traceparent,
            extensions,
        })
    }
}

/// A string attribute, if present (`null` counts as absent).
fn optional(
    m: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<String>, FieldError> {
    match m.remove(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(FieldError::new(name, "must be a string")),
    }
}

/// An optional string attribute that, when present, is not empty and at
/// most `max` bytes.
fn bounded(
    m: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match optional(m, name)? {
        Some(s) if s.is_empty() || s.len() > max => Err(FieldError::new(
            name,
            format!("must be 1 to {max} characters when given"),
        )),
        v => Ok(v),
    }
}

/// A required, non-empty string attribute.
fn required(
    m: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<String, FieldError> {
    optional(m, name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| FieldError::new(name, "is required (a non-empty string)"))
}

/// The extension attributes: what is left once the known ones are taken.
fn extensions(
    m: serde_json::Map<String, serde_json::Value>,
) -> Result<BTreeMap<String, serde_json::Value>, FieldError> {
    let mut out = BTreeMap::new();
    for (name, value) in m {
        if name.is_empty()
            || name.len() > 50
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            // An empty name (`"": 1`, a bare `ce-` header) has no field
            // of its own to name.
            let field = if name.is_empty() { "extensions" } else { &name };
            return Err(FieldError::new(
                field,
                format!(
                    "{name:?} is not a CloudEvents attribute name (lower-case letters a-z and digits 0-9, at most 50)"
                ),
            ));
        }
        match &value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) if s.len() > MAX_ATTRIBUTE_LEN => {
                return Err(FieldError::new(
                    name,
                    format!("must be at most {MAX_ATTRIBUTE_LEN} characters"),
                ));
            }
            serde_json::Value::String(_)
            | serde_json::Value::Bool(_)
            | serde_json::Value::Number(_) => {}
            _ => {
                return Err(FieldError::new(
                    name,
                    "an extension attribute must be a string, number or boolean",
                ));
            }
        }
        out.insert(name, value);
        if out.len() > MAX_EXTENSIONS {
            return Err(FieldError::new(
                "extensions",
                format!("at most {MAX_EXTENSIONS} extension attributes"),
            ));
        }
    }
    Ok(out)
}

impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("specversion", &self.specversion)?;
        match &self.producer_id {
            Some(id) => m.serialize_entry("id", id)?,
            None => m.serialize_entry("id", &self.id)?,
        }
        m.serialize_entry("source", &self.source)?;
        m.serialize_entry("type", &self.event_type)?;
        m.serialize_entry("time", &self.time)?;
        let optional = [
            ("datacontenttype", &self.datacontenttype),
            ("dataschema", &self.dataschema),
            ("subject", &self.subject),
            ("correlationid", &self.correlationid),
            ("traceparent", &self.traceparent),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                m.serialize_entry(name, v)?;
            }
        }
        if let Some(t) = &self.tenantid {
            m.serialize_entry("tenantid", t)?;
        }
        for (name, value) in &self.extensions {
            m.serialize_entry(name, value)?;
        }
        match &self.data_base64 {
            Some(b) => m.serialize_entry("data_base64", b)?,
            None if !self.data.is_null() => m.serialize_entry("data", &self.data)?,
            None => {}
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::deserialize(d)?;
        Self::from_map(map).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn event_type_rules() {
        for ok in [
            "order.created",
            "integration.opportunity.updated",
            "shard.updated",
            "a",
            "x_y-z.1",
        ] {
            assert!(EventType::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "order.",
            ".order",
            "Order.Created",
            "order created",
            "order.*",
            "a..b",
        ] {
            assert!(EventType::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn webhook_received_is_also_routed_as_its_integration_key_and_nothing_else_is() {
        assert_eq!(
            also_routed_as("webhook.received"),
            ["integration.webhook.received"]
        );
        for kind in [
            "integration.webhook.received",
            "webhook.delivered",
            "load.status_updated",
        ] {
            assert!(also_routed_as(kind).is_empty(), "{kind}");
        }
        // Every alias is a valid routing key (an event type).
        for alias in also_routed_as("webhook.received") {
            assert!(EventType::parse(alias).is_ok(), "{alias}");
        }
    }

    #[test]
    fn envelope_roundtrips_with_cloudevents_names() {
        let e = Envelope::new(
            "integration-manager",
            EventType::parse("tenant.created").unwrap(),
            Some(TenantId::new()),
            serde_json::json!({"k": 1}),
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "tenant.created");
        assert!(v["tenantid"].is_string());
        let back = Envelope::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn envelope_rejects_bad_input() {
        assert!(Envelope::from_slice(b"not json").is_err());
        assert!(Envelope::from_slice(br#"{"specversion":"0.3","id":"0190a0d0-0000-7000-8000-000000000000","source":"x","type":"a.b","time":"2026-01-01T00:00:00Z"}"#).is_err());
        assert!(Envelope::from_slice(br#"{"specversion":"1.0","id":"0190a0d0-0000-7000-8000-000000000000","source":"x","type":"A B","time":"2026-01-01T00:00:00Z"}"#).is_err());
        assert!(Envelope::from_slice(br#"{"specversion":"1.0","id":"0190a0d0-0000-7000-8000-000000000000","source":"x","type":"a.b","time":"2026-01-01T00:00:00Z"}"#).is_ok());
    }

    #[test]
    fn only_the_four_required_attributes_are_required_and_time_defaults_to_now() {
        let before = Utc::now();
        let e = Envelope::from_slice(br#"{"specversion":"1.0","id":"A-234-1234-1234","source":"/mycontext","type":"com.example.someevent"}"#).unwrap();
        assert!(e.time >= before && e.time <= Utc::now());
        assert_eq!(e.data, serde_json::Value::Null);
        assert_eq!(e.datacontenttype, None);
        for missing in ["specversion", "id", "source", "type"] {
            let mut v =
                serde_json::json!({"specversion": "1.0", "id": "x", "source": "s", "type": "a.b"});
            v.as_object_mut().unwrap().remove(missing);
            let err = Envelope::from_slice(v.to_string().as_bytes()).unwrap_err();
            assert_eq!(err.field, missing);
        }
    }

    #[test]
    fn a_producer_id_that_is_not_a_uuid_is_kept_and_keyed_by_source_and_id() {
        let ev = |source: &str, id: &str| {
            Envelope::from_slice(
                serde_json::json!({"specversion": "1.0", "id": id, "source": source, "type": "a.b"})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap()
        };
        let a = ev("tms", "order-42");
        assert_eq!(a.producer_id.as_deref(), Some("order-42"));
        assert_eq!(a.id_text(), "order-42");
        assert_eq!(
            a.id,
            ev("tms", "order-42").id,
            "the same event, the same key"
        );
        assert_ne!(
            a.id,
            ev("erp", "order-42").id,
            "source + id is the identity"
        );
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["id"], "order-42");
        // A UUID is its own key; written otherwise, it is sent back as written.
        let upper = ev("tms", "0190A0D0-0000-7000-8000-000000000001");
        assert_eq!(upper.id.to_string(), "0190a0d0-0000-7000-8000-000000000001");
        assert_eq!(upper.id_text(), "0190A0D0-0000-7000-8000-000000000001");
        let plain = ev("tms", "0190a0d0-0000-7000-8000-000000000001");
        assert_eq!((plain.id, plain.producer_id), (upper.id, None));
    }

    #[test]
    fn optional_attributes_binary_data_and_extensions_survive_a_round_trip() {
        let input = serde_json::json!({
            "specversion": "1.0", "id": "e-1", "source": "urn:tms", "type": "load.updated",
            "time": "2026-12-04T10:00:00.5+01:00", "subject": "L-1",
            "dataschema": "https://schemas.example.com/load.json",
            "datacontenttype": "application/octet-stream", "data_base64": "AJ+Slg==",
            "comexampleext": "v", "priority": 3, "urgent": true, "dropped": null,
        });
        let e = Envelope::from_slice(input.to_string().as_bytes()).unwrap();
        assert_eq!(e.extensions.len(), 3);
        let out = serde_json::to_value(&e).unwrap();
        for key in [
            "id",
            "source",
            "type",
            "subject",
            "dataschema",
            "datacontenttype",
            "data_base64",
            "comexampleext",
            "priority",
            "urgent",
        ] {
            assert_eq!(out[key], input[key], "{key}");
        }
        assert_eq!(out["time"], "2026-12-04T09:00:00.500Z");
        assert!(out.get("data").is_none() && out.get("dropped").is_none());
        assert_eq!(Envelope::from_slice(out.to_string().as_bytes()).unwrap(), e);
    }

    #[test]
    fn invalid_optional_attributes_are_refused_naming_them() {
        let bad = |extra: serde_json::Value| {
            let mut v =
                serde_json::json!({"specversion": "1.0", "id": "x", "source": "s", "type": "a.b"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            Envelope::from_slice(v.to_string().as_bytes())
                .unwrap_err()
                .field
        };
        assert_eq!(bad(serde_json::json!({"time": "today"})), "time");
        assert_eq!(
            bad(serde_json::json!({"data": {}, "data_base64": "AA=="})),
            "data_base64"
        );
        assert_eq!(
            bad(serde_json::json!({"data_base64": "not base64!"})),
            "data_base64"
        );
        assert_eq!(
            bad(serde_json::json!({"dataschema": "not a uri"})),
            "dataschema"
        );
        assert_eq!(bad(serde_json::json!({"subject": ""})), "subject");
        assert_eq!(bad(serde_json::json!({"Bad_Name": "v"})), "Bad_Name");
        assert_eq!(bad(serde_json::json!({"nested": {"a": 1}})), "nested");
        assert_eq!(bad(serde_json::json!({"tenantid": "acme"})), "tenantid");
        assert_eq!(bad(serde_json::json!({"id": 7})), "id");
    }

    proptest! {
        #[test]
        fn from_slice_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Envelope::from_slice(&bytes);
        }
        #[test]
        fn event_type_parse_never_panics(s in "\\PC{0,80}") {
            let _ = EventType::parse(&s);
        }
    }
}
