//! Processing a received event, as a pure decision: filter by the endpoint's
//! `event_types`, apply its `transform_template`, check the handler's fields,
//! and make the typed event; a failure is retried per a [`Policy`] until it
//! is FAILED. The public route makes the first attempt before it stores the
//! request, the manager's worker the retries and replays: both call
//! [`attempt`], and both store its one [`Outcome`].

use super::{HandlerType, accepts, transform};
use crate::{Envelope, EventType, TenantId};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// How failed processing attempts are retried.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Delay before attempt n+1 (the last one repeats).
    pub intervals: Vec<Duration>,
    /// Attempts before an event is FAILED.
    pub max_attempts: i32,
}

impl Policy {
    /// Retries after `intervals` (`HUB_INBOUND_RETRY_INTERVALS_MS`), FAILED
    /// after `max_retries` attempts (`WEBHOOK_MAX_RETRIES`, at least one).
    pub fn new(intervals: Vec<Duration>, max_retries: u32) -> Self {
        Self {
            intervals,
            max_attempts: i32::try_from(max_retries.max(1)).unwrap_or(i32::MAX),
        }
    }

    /// The delay after failed attempt number `attempts` (1 for the first).
    fn retry_in(&self, attempts: i32) -> Duration {
        let i = usize::try_from(attempts - 1)
            .unwrap_or(0)
            .min(self.intervals.len().saturating_sub(1));
        self.intervals
            .get(i)
            .copied()
            .unwrap_or(Duration::from_secs(60))
    }
}

/// What one processing attempt came to, as stored with the received event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Filtered out by `event_types`: nothing published (`SKIPPED`).
    Skipped,
    /// The typed event `published` was made (`PROCESSED`).
    Processed {
        /// The typed event's id.
        published: Uuid,
    },
    /// Failed; tried again after `retry_in_ms` (`PENDING`).
    Retry {
        /// Why, kept for replay.
        error: String,
        /// Delay before the next attempt.
        retry_in_ms: i64,
    },
    /// Failed for good (`FAILED`), until replayed.
    Failed {
        /// Why, kept for replay.
        error: String,
    },
}

impl Outcome {
    /// The status stored: `SKIPPED`, `PROCESSED`, `PENDING` or `FAILED`.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Skipped => "SKIPPED",
            Self::Processed { .. } => "PROCESSED",
            Self::Retry { .. } => "PENDING",
            Self::Failed { .. } => "FAILED",
        }
    }

    /// The typed event published, if any.
    pub fn published(&self) -> Option<Uuid> {
        match self {
            Self::Processed { published } => Some(*published),
            _ => None,
        }
    }

    /// Why the attempt failed, if it did.
    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Retry { error, .. } | Self::Failed { error } => Some(error),
            _ => None,
        }
    }

    /// In how long the next attempt is due (0 unless [`Outcome::Retry`]).
    pub fn retry_in_ms(&self) -> i64 {
        match self {
            Self::Retry { retry_in_ms, .. } => *retry_in_ms,
            _ => 0,
        }
    }
}

/// What processing needs to know about the endpoint.
#[derive(Debug, Clone)]
pub struct Route<'a> {
    /// The handler.
    pub handler: HandlerType,
    /// The `event_types` filter.
    pub event_types: &'a [String],
    /// The optional field mapping (`transform_template` as a field map).
    pub transform: Option<&'a Value>,
    /// The payload already transformed by a transformation template the
    /// endpoint references (the service runs the engine), or why it could
    /// not be; it replaces the payload and the field mapping.
    pub mapped: Option<&'a Result<Value, String>>,
    /// Where the event is meant to go.
    pub target_service: Option<&'a str>,
}

/// The typed event a received event becomes, before it is an [`Envelope`].
#[derive(Debug, Clone, PartialEq)]
pub struct Typed {
    /// Its type (the handler's).
    pub event_type: &'static str,
    /// Its data.
    pub data: Value,
}

/// Decides what one received event becomes: `Ok(None)` when `event_types`
/// filters it out, the typed event's data after the transform and the
/// handler's field check, or why the payload cannot be processed.
pub fn decide(
    route: &Route<'_>,
    event_type: Option<&str>,
    payload: Option<&Value>,
) -> Result<Option<Typed>, String> {
    if !accepts(route.event_types, event_type) {
        return Ok(None);
    }
    let out = match (route.mapped, payload) {
        (Some(Ok(mapped)), _) => mapped.clone(),
        (Some(Err(e)), _) => return Err(format!("transformation template: {e}")),
        (None, None) => return Err("the body is neither JSON nor a form".into()),
        (None, Some(payload)) => match route.transform {
            Some(t) => {
                transform::apply(t, payload).map_err(|e| format!("transform_template: {e}"))?
            }
            None => payload.clone(),
        },
    };
    // The typed event's data wraps the payload once more.
    if crate::event::json_depth(&out) >= crate::event::MAX_DATA_DEPTH {
        return Err(format!(
            "the payload nests arrays and objects more than {} levels deep",
            crate::event::MAX_DATA_DEPTH - 1
        ));
    }
    let missing: Vec<&str> = route
        .handler
        .required_fields()
        .iter()
        .copied()
        .filter(|f| out.get(*f).is_none_or(Value::is_null))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} needs {} in the payload (map them with transform_template)",
            route.handler.as_str(),
            missing.join(", ")
        ));
    }
    Ok(Some(Typed {
        event_type: route.handler.event_type(),
        data: json!({
            "target_service": route.target_service,
            "source_event_type": event_type,
            "payload": out,
        }),
    }))
}

/// What one processing attempt needs: the received event and its endpoint.
pub struct Input<'a> {
    /// The `source` of the typed event (the service making it).
    pub source: &'a str,
    /// The received event's id.
    pub id: Uuid,
    /// Owner.
    pub tenant_id: TenantId,
    /// Endpoint.
    pub endpoint_id: Uuid,
    /// Endpoint path.
    pub endpoint_path: &'a str,
    /// Endpoint's integration.
    pub integration_id: Option<Uuid>,
    /// The provider's event id.
    pub provider_event_id: Option<&'a str>,
    /// The provider's event type.
    pub event_type: Option<&'a str>,
    /// Endpoint handler type.
    pub handler_type: &'a str,
    /// Endpoint filter (JSON array of types).
    pub event_types: &'a Value,
    /// Endpoint mapping (a field map; a template reference is run by the
    /// service into `mapped`).
    pub transform_template: Option<&'a Value>,
    /// The payload transformed by the template the endpoint references.
    pub mapped: Option<&'a Result<Value, String>>,
    /// Endpoint target.
    pub target_service: Option<&'a str>,
    /// The parsed body (None: neither JSON nor a form).
    pub payload: Option<&'a Value>,
    /// Attempts made, this one included.
    pub attempts: i32,
}

/// One processing attempt: its outcome and the typed event to publish with
/// it, if any.
pub fn attempt(input: &Input<'_>, policy: &Policy) -> (Outcome, Option<Envelope>) {
    let filter: Vec<String> = input
        .event_types
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let route = Route {
        handler: HandlerType::parse(input.handler_type).unwrap_or(HandlerType::Custom),
        event_types: &filter,
        transform: input.transform_template.filter(|t| !t.is_null()),
        mapped: input.mapped,
        target_service: input.target_service,
    };
    match decide(&route, input.event_type, input.payload) {
        Ok(None) => (Outcome::Skipped, None),
        Ok(Some(typed)) => {
            let env = typed_event(input, typed);
            let published = env.id.0;
            (Outcome::Processed { published }, Some(env))
        }
        Err(error) if input.attempts >= policy.max_attempts => (Outcome::Failed { error }, None),
        Err(error) => {
            let delay = policy.retry_in(input.attempts);
            let retry_in_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            (Outcome::Retry { error, retry_in_ms }, None)
        }
    }
}

/// The typed event of `input`: `typed`'s data with where it came from.
fn typed_event(input: &Input<'_>, typed: Typed) -> Envelope {
    let mut data = typed.data;
    if let Value::Object(m) = &mut data {
        m.insert("inbound_event_id".into(), json!(input.id));
        m.insert("endpoint_id".into(), json!(input.endpoint_id));
        m.insert("endpoint_path".into(), json!(input.endpoint_path));
        m.insert("integration_id".into(), json!(input.integration_id));
        m.insert("provider_event_id".into(), json!(input.provider_event_id));
    }
    Envelope::new(
        input.source,
        EventType::parse(typed.event_type).expect("handler event types are valid"),
        Some(input.tenant_id),
        data,
    )
    .with_correlation(Some(input.id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decide_filters_transforms_and_checks_fields() {
        let t = json!({"load_id": "$.shipment.id", "status": "$.state"});
        let types = vec!["load.*".to_owned()];
        let route = Route {
            handler: HandlerType::LoadStatus,
            event_types: &types,
            transform: Some(&t),
            mapped: None,
            target_service: Some("tms"),
        };
        let payload = json!({"shipment": {"id": "L-1"}, "state": "DELIVERED"});
        match decide(&route, Some("load.updated"), Some(&payload)) {
            Ok(Some(Typed { event_type, data })) => {
                assert_eq!(event_type, "load.status_updated");
                assert_eq!(
                    data["payload"],
                    json!({"load_id": "L-1", "status": "DELIVERED"})
                );
                assert_eq!(data["target_service"], "tms");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide(&route, Some("invoice.paid"), Some(&payload)),
            Ok(None)
        );
        let Err(why) = decide(&route, Some("load.x"), Some(&json!({"state": "X"}))) else {
            panic!()
        };
        assert!(why.contains("load_id"), "{why}");
        // A template's output replaces the payload (an X12 body has none).
        let mapped = Ok(json!({"load_id": "L-9", "status": "AT_PICKUP"}));
        let templated = Route {
            mapped: Some(&mapped),
            ..route.clone()
        };
        let Ok(Some(typed)) = decide(&templated, Some("load.x"), None) else {
            panic!("the mapped payload is used")
        };
        assert_eq!(typed.data["payload"]["load_id"], "L-9");
        let failed = Err("mapping stage: rules[0]: source absent".to_owned());
        let broken = Route {
            mapped: Some(&failed),
            ..route.clone()
        };
        let Err(why) = decide(&broken, Some("load.x"), Some(&payload)) else {
            panic!("a failed template fails the attempt")
        };
        assert!(
            why.starts_with("transformation template: mapping stage"),
            "{why}"
        );
        assert!(decide(&route, Some("load.x"), None).is_err());
    }

    fn input<'a>(payload: Option<&'a Value>, filter: &'a Value, attempts: i32) -> Input<'a> {
        Input {
            source: "test",
            id: Uuid::now_v7(),
            tenant_id: TenantId(Uuid::now_v7()),
            endpoint_id: Uuid::now_v7(),
            endpoint_path: "loads",
            integration_id: None,
            provider_event_id: Some("p-1"),
            event_type: Some("load.updated"),
            handler_type: "LOAD_STATUS",
            event_types: filter,
            transform_template: None,
            mapped: None,
            target_service: None,
            payload,
            attempts,
        }
    }

    #[test]
    fn attempts_publish_skip_retry_on_the_schedule_then_fail() {
        let policy = Policy::new(vec![Duration::from_secs(1), Duration::from_secs(5)], 3);
        let any = json!([]);
        let good = json!({"load_id": "L-1", "status": "X"});
        let (outcome, typed) = attempt(&input(Some(&good), &any, 1), &policy);
        let typed = typed.expect("a typed event");
        assert_eq!(
            outcome,
            Outcome::Processed {
                published: typed.id.0
            }
        );
        assert_eq!(outcome.status(), "PROCESSED");
        assert_eq!(typed.event_type.as_str(), "load.status_updated");
        assert_eq!(typed.data["provider_event_id"], "p-1");

        let other = json!(["invoice.*"]);
        let (outcome, typed) = attempt(&input(Some(&good), &other, 1), &policy);
        assert_eq!((outcome.status(), typed.is_none()), ("SKIPPED", true));

        let retry = |n| attempt(&input(None, &any, n), &policy).0;
        assert_eq!(retry(1).retry_in_ms(), 1_000);
        assert_eq!(retry(2).retry_in_ms(), 5_000);
        assert_eq!(retry(2).status(), "PENDING");
        assert_eq!(retry(3).status(), "FAILED");
        assert_eq!(
            retry(3).error(),
            Some("the body is neither JSON nor a form")
        );
        assert_eq!(retry(3).retry_in_ms(), 0);
    }
}
