//! The CloudEvents 1.0 JSON envelope every message on the bus carries.

use crate::{EventId, FieldError, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

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

/// A CloudEvents 1.0 structured-mode JSON envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Always `"1.0"`.
    pub specversion: String,
    /// Unique per event; consumers dedupe on it.
    pub id: EventId,
    /// The producing service (`integration-manager`, …) or an external system.
    pub source: String,
    /// The event type, also the routing key.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the event happened.
    pub time: DateTime<Utc>,
    /// Always `application/json` here.
    #[serde(default = "json_content_type")]
    pub datacontenttype: String,
    /// The tenant the event belongs to; `None` only for platform ticks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenantid: Option<TenantId>,
    /// Ties related events and requests together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlationid: Option<String>,
    /// The payload.
    #[serde(default)]
    pub data: serde_json::Value,
    /// W3C trace context of the producing span (CloudEvents distributed
    /// tracing extension); the relay copies it into the AMQP headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

fn json_content_type() -> String {
    "application/json".to_owned()
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
            source: source.to_owned(),
            event_type,
            time: Utc::now(),
            datacontenttype: json_content_type(),
            tenantid: tenant,
            correlationid: None,
            data,
            traceparent: None,
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

    /// Parses an envelope received from the bus or over HTTP and checks the
    /// fields JSON alone cannot (`specversion`, `source`).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, FieldError> {
        let env: Envelope = serde_json::from_slice(bytes).map_err(|e| {
            FieldError::new("body", format!("not a CloudEvents JSON envelope: {e}"))
        })?;
        if env.specversion != "1.0" {
            return Err(FieldError::new("specversion", "must be \"1.0\""));
        }
        if env.source.is_empty() || env.source.len() > 200 {
            return Err(FieldError::new("source", "must be 1 to 200 characters"));
        }
        if env.correlationid.as_ref().is_some_and(|c| c.len() > 100) {
            return Err(FieldError::new(
                "correlationid",
                "must be at most 100 characters",
            ));
        }
        Ok(env)
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
