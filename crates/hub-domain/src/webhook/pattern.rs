//! `event_types` entries of a subscription: exact types, prefix patterns
//! (`order.*`) and `*`.

use super::WebhookError;
use crate::EventType;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;

/// The most entries an `event_types` list may hold.
pub const MAX_PATTERNS: usize = 100;

/// The longest pattern, in bytes (the longest event type).
const MAX_PATTERN_LEN: usize = 200;

/// How much of a rejected input an error message quotes.
const QUOTE_MAX: usize = 60;

/// An `event_types` entry: an exact type (`"order.created"`), a prefix
/// pattern (`"order.*"`, any depth: matches `"order.created"` and
/// `"order.status.changed"` but NOT `"order"` nor `"orders.created"`) or `"*"`
/// (everything).
///
/// The exact type and the prefix before `.*` follow [`EventType`]'s rules; a
/// `*` anywhere else is rejected. Serialized as the plain string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EventPattern(String);

impl EventPattern {
    /// Parses one `event_types` entry.
    pub fn parse(s: &str) -> Result<Self, WebhookError> {
        if s == "*" {
            return Ok(Self(s.to_owned()));
        }
        let invalid = || {
            WebhookError::InvalidPattern(format!(
                "{} is not a valid pattern; use an exact event type of dot-separated \
                 segments of a-z, 0-9, '_' and '-' (\"order.created\"), a prefix \
                 ending in \".*\" (\"order.*\") or \"*\" for every event, \
                 at most {MAX_PATTERN_LEN} characters",
                quote(s)
            ))
        };
        if s.len() > MAX_PATTERN_LEN {
            return Err(invalid());
        }
        let exact = s.strip_suffix(".*").unwrap_or(s);
        // EventType rejects '*', so "a.*.b", "a*" and "*.a" fail here too.
        EventType::parse(exact).map_err(|_| invalid())?;
        Ok(Self(s.to_owned()))
    }

    /// Whether an event of type `event_type` is delivered under this pattern.
    pub fn matches(&self, event_type: &str) -> bool {
        if self.0 == "*" {
            return true;
        }
        match self.0.strip_suffix('*') {
            // `prefix` keeps its trailing '.', so "order.*" never matches
            // "order" nor "orders.created", and needs at least one more byte.
            Some(prefix) => event_type.len() > prefix.len() && event_type.starts_with(prefix),
            None => self.0 == event_type,
        }
    }

    /// The pattern as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The AMQP topic binding key that routes every event this pattern
    /// matches (and, for a prefix, the bare prefix too): `*` → `#`,
    /// `order.*` → `order.#`, exact types as they are.
    pub fn binding_key(&self) -> String {
        if self.0 == "*" {
            return "#".to_owned();
        }
        match self.0.strip_suffix(".*") {
            Some(prefix) => format!("{prefix}.#"),
            None => self.0.clone(),
        }
    }
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for EventPattern {
    type Err = WebhookError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for EventPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Event families the dispatcher's queue is always bound to (as AMQP topic
/// keys), whether a subscription names them or not: the hub's own events and
/// its neighbours' domain events. Delivery outcomes (`webhook.delivered`,
/// `webhook.failed`) are not among them, so they do not come back to the
/// dispatcher unless a subscription asks for everything.
pub const ALWAYS_ROUTED: &[&str] = &[
    "order.#",
    "load.#",
    "carrier.#",
    "invoice.#",
    "shard.#",
    "integration.#",
    "sync.#",
    "circuit.#",
    "tenant.#",
    "api_key.#",
];

/// The binding keys the dispatcher's queue needs, beyond [`ALWAYS_ROUTED`],
/// for subscriptions with these `event_types` entries (unparsable entries
/// are skipped: validation keeps them out).
pub fn extra_binding_keys<'a>(
    entries: impl IntoIterator<Item = &'a str>,
) -> std::collections::BTreeSet<String> {
    entries
        .into_iter()
        .filter_map(|e| EventPattern::parse(e).ok())
        .map(|p| p.binding_key())
        .filter(|k| !always_routed(k))
        .collect()
}

/// Whether [`ALWAYS_ROUTED`] already routes everything `key` does.
fn always_routed(key: &str) -> bool {
    ALWAYS_ROUTED.iter().any(|f| {
        let family = f.trim_end_matches(".#");
        key == *f
            || key == family
            || key
                .strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Parses a JSON array of patterns (the `event_types` column/field): must be a
/// non-empty array of strings, max 100, each valid; duplicates removed keeping
/// order.
pub fn parse_patterns(v: &serde_json::Value) -> Result<Vec<EventPattern>, WebhookError> {
    let err = |m: String| Err(WebhookError::InvalidPattern(m));
    let Some(items) = v.as_array() else {
        return err(format!(
            "must be a JSON array of patterns such as [\"order.*\"] (got {})",
            json_kind(v)
        ));
    };
    if items.is_empty() {
        return err("must hold at least one pattern; use [\"*\"] for every event".to_owned());
    }
    if items.len() > MAX_PATTERNS {
        return err(format!(
            "must hold at most {MAX_PATTERNS} patterns (got {}); use prefix patterns \
             such as \"order.*\" to cover several types",
            items.len()
        ));
    }
    let mut out: Vec<EventPattern> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(s) = item.as_str() else {
            return err(format!(
                "entry {i} must be a string (got {})",
                json_kind(item)
            ));
        };
        let p = EventPattern::parse(s).map_err(|e| match e {
            WebhookError::InvalidPattern(m) => {
                WebhookError::InvalidPattern(format!("entry {i}: {m}"))
            }
            other => other,
        })?;
        // At most 100 entries, so a linear scan keeps the order cheaply.
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Whether any of `patterns` matches `event_type`.
pub fn matches_any(patterns: &[EventPattern], event_type: &str) -> bool {
    patterns.iter().any(|p| p.matches(event_type))
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Quotes user input for an error message, shortened so a huge value cannot
/// flood a log line.
fn quote(s: &str) -> String {
    if s.chars().count() <= QUOTE_MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(QUOTE_MAX).collect();
        format!("{head:?}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn p(s: &str) -> EventPattern {
        EventPattern::parse(s).unwrap()
    }

    #[test]
    fn pattern_accepts_exact_prefix_and_star() {
        for ok in [
            "*",
            "order.created",
            "order.*",
            "integration.sync.*",
            "a",
            "a.*",
            "x_y-z.1.*",
        ] {
            assert_eq!(EventPattern::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn pattern_rejects_malformed_entries() {
        for bad in [
            "",
            " ",
            ".*",
            "*.*",
            "**",
            "order*",
            "order.",
            "order.*.created",
            "*.created",
            "order.**",
            "Order.*",
            "order .*",
            "order..*",
            "order.*.",
            ".order",
            "a..b",
            "order.created ",
            "ordér.*",
        ] {
            assert!(
                matches!(
                    EventPattern::parse(bad),
                    Err(WebhookError::InvalidPattern(_))
                ),
                "{bad:?} should be rejected"
            );
        }
        let longest = format!("{}.*", "a".repeat(MAX_PATTERN_LEN - 2));
        assert!(EventPattern::parse(&longest).is_ok());
        assert!(EventPattern::parse(&format!("a{longest}")).is_err());
    }

    #[test]
    fn pattern_error_says_what_is_allowed_and_truncates_input() {
        let err = EventPattern::parse("Order.*").unwrap_err().to_string();
        assert!(
            err.starts_with("event_types: \"Order.*\" is not a valid pattern"),
            "{err}"
        );
        assert!(err.contains("\"order.*\""), "{err}");
        let err = EventPattern::parse(&"X".repeat(5000))
            .unwrap_err()
            .to_string();
        assert!(err.len() < 400, "{err}");
    }

    #[test]
    fn prefix_pattern_matches_any_depth_but_not_the_bare_prefix() {
        let order = p("order.*");
        assert!(order.matches("order.created"));
        assert!(order.matches("order.status.changed"));
        assert!(!order.matches("order"));
        assert!(!order.matches("orders.created"));
        assert!(!order.matches("order."));
        assert!(!order.matches("invoice.order.created"));
        assert!(p("integration.sync.*").matches("integration.sync.completed"));
        assert!(!p("integration.sync.*").matches("integration.synced.x"));
    }

    #[test]
    fn exact_pattern_matches_only_itself() {
        let exact = p("order.created");
        assert!(exact.matches("order.created"));
        assert!(!exact.matches("order.created.v2"));
        assert!(!exact.matches("order"));
        assert!(!exact.matches("order.create"));
    }

    #[test]
    fn binding_keys_route_at_least_what_the_pattern_matches() {
        assert_eq!(p("*").binding_key(), "#");
        assert_eq!(p("order.*").binding_key(), "order.#");
        assert_eq!(p("integration.sync.*").binding_key(), "integration.sync.#");
        assert_eq!(p("order.created").binding_key(), "order.created");
    }

    #[test]
    fn extra_binding_keys_leave_out_what_the_families_route() {
        let keys = extra_binding_keys([
            "order.created",
            "order.*",
            "shipment.*",
            "webhook.received",
            "orders.created",
            "*",
            "bad**",
        ]);
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["#", "orders.created", "shipment.#", "webhook.received"]
        );
        assert!(extra_binding_keys(["integration.sync.*", "tenant.created"]).is_empty());
    }

    #[test]
    fn star_matches_everything() {
        for t in ["order.created", "a", "integration.sync.completed", ""] {
            assert!(p("*").matches(t));
        }
    }

    #[test]
    fn matches_any_is_a_union() {
        let ps = [p("order.created"), p("invoice.*")];
        assert!(matches_any(&ps, "order.created"));
        assert!(matches_any(&ps, "invoice.generated"));
        assert!(!matches_any(&ps, "order.status_changed"));
        assert!(!matches_any(&[], "order.created"));
    }

    #[test]
    fn parse_patterns_dedupes_keeping_first_occurrence_order() {
        let got = parse_patterns(&json!(["order.*", "*", "order.*", "a.b", "*"])).unwrap();
        let got: Vec<&str> = got.iter().map(EventPattern::as_str).collect();
        assert_eq!(got, ["order.*", "*", "a.b"]);
    }

    #[test]
    fn parse_patterns_rejects_bad_lists() {
        let cases = [
            (json!(null), "got null"),
            (json!("order.*"), "got a string"),
            (json!({"a": 1}), "got an object"),
            (json!([]), "at least one"),
            (
                json!(["order.*", 3]),
                "entry 1 must be a string (got a number)",
            ),
            (json!(["order.*", "Bad"]), "entry 1: \"Bad\""),
            (
                json!(vec!["a"; MAX_PATTERNS + 1]),
                "at most 100 patterns (got 101)",
            ),
        ];
        for (v, want) in cases {
            let err = parse_patterns(&v).unwrap_err();
            assert!(matches!(err, WebhookError::InvalidPattern(_)));
            assert!(err.to_string().contains(want), "{v}: {err}");
        }
        assert_eq!(
            parse_patterns(&json!(vec!["a"; MAX_PATTERNS]))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn pattern_serde_is_the_plain_string_and_validates() {
        assert_eq!(
            serde_json::to_value(p("order.*")).unwrap(),
            json!("order.*")
        );
        let back: Vec<EventPattern> = serde_json::from_value(json!(["order.*", "*"])).unwrap();
        assert_eq!(back, [p("order.*"), p("*")]);
        assert!(serde_json::from_value::<EventPattern>(json!("order*")).is_err());
        assert_eq!("a.*".parse::<EventPattern>().unwrap().to_string(), "a.*");
    }

    const SEG: &str = "[a-z0-9_-]{1,8}";

    fn event_type() -> impl Strategy<Value = String> {
        proptest::collection::vec(SEG, 1..5).prop_map(|segs| segs.join("."))
    }

    proptest! {
        #[test]
        fn pattern_parse_never_panics(s in "\\PC{0,80}") {
            let _ = EventPattern::parse(&s);
        }

        #[test]
        fn parse_patterns_never_panics(items in proptest::collection::vec("[a-z.*]{0,12}", 0..120)) {
            let _ = parse_patterns(&serde_json::Value::from(items));
        }

        #[test]
        fn prefix_matches_exactly_the_types_below_it(prefix in event_type(), t in event_type()) {
            let pat = EventPattern::parse(&format!("{prefix}.*")).unwrap();
            let below = t.starts_with(&format!("{prefix}."));
            prop_assert_eq!(pat.matches(&t), below);
            let child = format!("{prefix}.{t}");
            prop_assert!(pat.matches(&child));
            prop_assert!(!pat.matches(&prefix));
        }

        #[test]
        fn exact_matches_only_equal_types(a in event_type(), b in event_type()) {
            let pat = EventPattern::parse(&a).unwrap();
            prop_assert!(pat.matches(&a));
            prop_assert!(EventPattern::parse("*").unwrap().matches(&b));
            prop_assert_eq!(pat.matches(&b), a == b);
        }

        #[test]
        fn parse_patterns_output_is_unique_and_ordered(items in proptest::collection::vec(event_type(), 1..30)) {
            let got = parse_patterns(&serde_json::Value::from(items.clone())).unwrap();
            let mut want: Vec<String> = Vec::new();
            for i in items {
                if !want.contains(&i) {
                    want.push(i);
                }
            }
            let got: Vec<String> = got.into_iter().map(|p| p.as_str().to_owned()).collect();
            prop_assert_eq!(got, want);
        }
    }
}
