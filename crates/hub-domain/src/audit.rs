//! What the audit trail records: every event of a tenant, except the one
//! that would only repeat what is already kept.
//!
//! The hub records its own events when their outbox rows are retired (in the
//! statement that deletes them once published); events other systems
//! publish are recorded by the manager's audit consumer. Both ask
//! [`records`].

use crate::Envelope;

/// Whether the audit trail keeps events of `event_type` (asked before an
/// event is parsed, by its AMQP `type`).
///
/// Not the two events whose every occurrence the hub already keeps in full,
/// on their hottest write paths, where a copy in the audit trail would
/// double the writes for no new information:
/// - `webhook.delivered`: each successful delivery is recorded, with every
///   attempt, in the delivery history;
/// - `webhook.received`: each received request is recorded raw (headers,
///   body, source address, provider event id, duplicate flag, processing
///   status) in `inbound_events`, listed by the endpoint's events API. (Its
///   routing key `integration.webhook.received` is not an event of its own,
///   see [`crate::event::also_routed_as`].) What processing publishes (the
///   typed event, such as `load.status_updated`) is recorded.
pub fn records_type(event_type: &str) -> bool {
    !matches!(event_type, "webhook.delivered" | "webhook.received")
}

/// Whether the audit trail keeps `event`: it belongs to a tenant (platform
/// ticks do not) and its type is kept ([`records_type`]).
pub fn records(event: &Envelope) -> bool {
    event.tenantid.is_some() && records_type(event.event_type.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventType, TenantId};

    fn event(kind: &str, tenant: bool) -> Envelope {
        Envelope::new(
            "test",
            EventType::parse(kind).unwrap(),
            tenant.then(|| TenantId(uuid::Uuid::now_v7())),
            serde_json::json!({}),
        )
    }

    #[test]
    fn tenant_events_are_recorded_except_delivered_and_received() {
        for kind in [
            "webhook.failed",
            "order.created",
            "circuit.opened",
            "webhook.processed",
        ] {
            assert!(records(&event(kind, true)), "{kind}");
        }
        for kind in ["webhook.delivered", "webhook.received"] {
            assert!(!records(&event(kind, true)), "{kind}");
            assert!(!records_type(kind), "{kind}");
        }
    }

    #[test]
    fn platform_ticks_without_a_tenant_are_not_recorded() {
        assert!(!records(&event("integration.sync.check-due", false)));
    }
}
