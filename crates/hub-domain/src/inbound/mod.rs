//! Inbound webhooks: what providers send us and what we do with it, as pure
//! rules. Verification schemes live in [`signature`], source addresses in
//! [`ip`], field mappings in [`transform`], provider handshakes in
//! [`handshake`] and the processing decision in [`processing`]; this module
//! holds the endpoint settings that are validated once ([`EndpointPath`],
//! [`HandlerType`]), the provider's event id and type per scheme, and the
//! `event_types` filter.

pub mod handshake;
pub mod ip;
pub mod processing;
pub mod signature;
pub mod transform;

use crate::FieldError;
use serde_json::Value;
use sha2::{Digest, Sha256};
pub use signature::{Encoding, Rejection, Request, Scheme, Verifier};

/// The `{path}` of `/webhooks/{tenant}/{path}`: 1–100 characters of `a-z`,
/// `0-9`, `-` and `_`, starting with a letter or digit; unique per tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPath(String);

impl EndpointPath {
    /// Parses a path slug.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let ok = !raw.is_empty()
            && raw.len() <= 100
            && raw.as_bytes()[0].is_ascii_alphanumeric()
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                "endpoint_path",
                "must be 1 to 100 characters of a-z, 0-9, '-' and '_', starting with a letter or digit (e.g. \"dat-loads\")",
            ))
        }
    }
    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an endpoint's events are turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerType {
    /// Load status changes: publishes `load.status_updated`; needs `load_id` and `status`.
    LoadStatus,
    /// Position reports: publishes `load.location_updated`; needs `latitude` and `longitude`.
    Tracking,
    /// Invoice changes: publishes `invoice.updated`; needs `invoice_id`.
    Invoice,
    /// Anything else: publishes `webhook.processed` with the payload.
    Custom,
}

impl HandlerType {
    /// Every handler type.
    pub const ALL: &'static [HandlerType] = &[
        HandlerType::LoadStatus,
        HandlerType::Tracking,
        HandlerType::Invoice,
        HandlerType::Custom,
    ];
    /// `LOAD_STATUS`, `TRACKING`, `INVOICE`, `CUSTOM`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoadStatus => "LOAD_STATUS",
            Self::Tracking => "TRACKING",
            Self::Invoice => "INVOICE",
            Self::Custom => "CUSTOM",
        }
    }
    /// Parses a handler type (case-insensitive).
    pub fn parse(raw: &str) -> Option<Self> {
        let up = raw.trim().to_ascii_uppercase();
        Self::ALL.iter().copied().find(|h| h.as_str() == up)
    }
    /// The typed event it publishes.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::LoadStatus => "load.status_updated",
            Self::Tracking => "load.location_updated",
            Self::Invoice => "invoice.updated",
            Self::Custom => "webhook.processed",
        }
    }
    /// Fields the (transformed) payload must have.
    pub fn required_fields(self) -> &'static [&'static str] {
        match self {
            Self::LoadStatus => &["load_id", "status"],
            Self::Tracking => &["latitude", "longitude"],
            Self::Invoice => &["invoice_id"],
            Self::Custom => &[],
        }
    }
}

/// The body parsed as JSON, or as a form, or `None`.
pub fn parse_body(headers: &[(String, String)], body: &[u8]) -> Option<Value> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Some(v);
    }
    let form = signature::header(headers, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        let map: serde_json::Map<String, Value> = url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        // Slack's interactive payloads are a form with one JSON field.
        if let Some(Value::String(p)) = map.get("payload")
            && let Ok(inner) = serde_json::from_str::<Value>(p.as_str())
        {
            return Some(inner);
        }
        return Some(Value::Object(map));
    }
    None
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The provider's own id of the event, per scheme (`webhook-id`, GitHub's
/// delivery id, Stripe's event id, …); `None` when the provider sends none.
pub fn provider_event_id(
    scheme: Scheme,
    headers: &[(String, String)],
    body: Option<&Value>,
) -> Option<String> {
    let h = |name: &str| {
        signature::header(headers, name)
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 200)
            .map(str::to_owned)
    };
    let id = match scheme {
        Scheme::StandardWebhooks => h("webhook-id"),
        Scheme::Github => h("X-GitHub-Delivery"),
        Scheme::Stripe => text(body.and_then(|b| b.get("id"))),
        Scheme::Shopify => h("X-Shopify-Webhook-Id").or_else(|| h("X-Shopify-Event-Id")),
        Scheme::Slack => text(body.and_then(|b| b.get("event_id"))),
        Scheme::HubspotV3 => match body {
            Some(Value::Array(events)) if events.len() == 1 => text(events[0].get("eventId")),
            _ => None,
        },
        Scheme::Twilio => h("I-Twilio-Idempotency-Token"),
        Scheme::Samsara => text(body.and_then(|b| b.get("eventId"))),
        Scheme::Quickbooks | Scheme::Xero => None,
        Scheme::HmacSha256 | Scheme::HmacSha1 | Scheme::None => h("webhook-id")
            .or_else(|| h("X-Webhook-Id"))
            .or_else(|| h("X-Event-Id"))
            .or_else(|| h("Idempotency-Key")),
    };
    id.filter(|s| s.len() <= 200)
}

/// The key received events are deduplicated on: `id:<provider id>`, or
/// `sha256:<hex of the body>` when the provider sends no id.
pub fn dedupe_key(provider_id: Option<&str>, body: &[u8]) -> String {
    match provider_id {
        Some(id) => format!("id:{id}"),
        None => format!("sha256:{}", hex::encode(Sha256::digest(body))),
    }
}

/// The provider's event type, per scheme, when it says one.
pub fn provider_event_type(
    scheme: Scheme,
    headers: &[(String, String)],
    body: Option<&Value>,
) -> Option<String> {
    // An empty header says no type, as an empty field does.
    let h = |name: &str| {
        signature::header(headers, name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| text(body.and_then(|b| b.get(*n))))
    };
    let t = match scheme {
        Scheme::Github => h("X-GitHub-Event"),
        Scheme::Shopify => h("X-Shopify-Topic"),
        Scheme::Slack => text(
            body.and_then(|b| b.get("event"))
                .and_then(|e| e.get("type")),
        )
        .or_else(|| field(&["type", "command"])),
        Scheme::HubspotV3 => match body {
            Some(Value::Array(events)) => {
                text(events.first().and_then(|e| e.get("subscriptionType")))
            }
            _ => None,
        },
        Scheme::Quickbooks => body
            .and_then(|b| b.pointer("/eventNotifications/0/dataChangeEvent/entities/0"))
            .and_then(|e| {
                Some(format!(
                    "{}.{}",
                    text(e.get("name"))?,
                    text(e.get("operation"))?
                ))
            }),
        Scheme::Xero => body.and_then(|b| b.pointer("/events/0")).and_then(|e| {
            Some(format!(
                "{}.{}",
                text(e.get("eventCategory"))?,
                text(e.get("eventType"))?
            ))
        }),
        Scheme::Samsara => field(&["eventType"]),
        Scheme::Twilio => field(&["MessageStatus", "CallStatus"]),
        _ => field(&["type", "event_type", "event"]),
    };
    t.filter(|s| s.len() <= 200)
}

/// Whether `event_type` passes an endpoint's `event_types` filter: an empty
/// filter passes everything; entries match exactly (case-insensitive), `*`
/// matches all, `prefix.*` matches `prefix.` and anything under it.
pub fn accepts(filter: &[String], event_type: Option<&str>) -> bool {
    if filter.is_empty() {
        return true;
    }
    let Some(t) = event_type else {
        return filter.iter().any(|f| f == "*");
    };
    let t = t.to_ascii_lowercase();
    filter.iter().any(|f| {
        let f = f.to_ascii_lowercase();
        f == "*"
            || f == t
            || f.strip_suffix('*')
                .is_some_and(|p| p.ends_with('.') && t.starts_with(p))
    })
}

/// Checks an `event_types` filter entry.
pub fn check_filter_entry(entry: &str) -> Result<(), String> {
    if entry.is_empty() || entry.len() > 200 || entry.chars().any(char::is_whitespace) {
        return Err(format!("{entry:?}: 1 to 200 characters without spaces"));
    }
    if entry.contains('*')
        && !(entry == "*" || (entry.ends_with(".*") && entry.matches('*').count() == 1))
    {
        return Err(format!(
            "{entry:?}: '*' only alone or as a last segment (\"order.*\")"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn provider_ids_per_scheme_else_body_hash() {
        let body =
            json!({"id": "evt_1", "type": "invoice.paid", "eventId": "e1", "event_id": "Ev1"});
        let h = hs(&[
            ("webhook-id", "msg_1"),
            ("X-GitHub-Delivery", "d-1"),
            ("X-Shopify-Webhook-Id", "s-1"),
        ]);
        let id = |s| provider_event_id(s, &h, Some(&body));
        assert_eq!(id(Scheme::StandardWebhooks).as_deref(), Some("msg_1"));
        assert_eq!(id(Scheme::Github).as_deref(), Some("d-1"));
        assert_eq!(id(Scheme::Stripe).as_deref(), Some("evt_1"));
        assert_eq!(id(Scheme::Shopify).as_deref(), Some("s-1"));
        assert_eq!(id(Scheme::Slack).as_deref(), Some("Ev1"));
        assert_eq!(id(Scheme::Samsara).as_deref(), Some("e1"));
        assert_eq!(id(Scheme::Xero), None);
        assert_eq!(dedupe_key(Some("x"), b"b"), "id:x");
        assert_eq!(dedupe_key(None, b"b"), dedupe_key(None, b"b"));
        assert_ne!(dedupe_key(None, b"b"), dedupe_key(None, b"c"));
        assert_eq!(
            provider_event_type(Scheme::Stripe, &h, Some(&body)).as_deref(),
            Some("invoice.paid")
        );
    }

    #[test]
    fn filters_exact_wildcard_and_prefix() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(accepts(&[], None));
        assert!(accepts(&f(&["invoice.paid"]), Some("Invoice.Paid")));
        assert!(!accepts(&f(&["invoice.paid"]), Some("invoice.created")));
        assert!(accepts(&f(&["invoice.*"]), Some("invoice.created")));
        assert!(!accepts(&f(&["invoice.*"]), Some("invoices")));
        assert!(accepts(&f(&["*"]), None));
        assert!(!accepts(&f(&["push"]), None));
        assert!(check_filter_entry("a*b").is_err());
        assert!(check_filter_entry("order.*").is_ok());
    }

    #[test]
    fn paths_and_handlers_parse() {
        assert!(EndpointPath::parse("dat-loads_1").is_ok());
        for bad in ["", "-x", "Upper", "a/b", &"x".repeat(101)] {
            assert!(EndpointPath::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            HandlerType::parse("load_status"),
            Some(HandlerType::LoadStatus)
        );
        assert_eq!(HandlerType::parse("nope"), None);
    }
}
