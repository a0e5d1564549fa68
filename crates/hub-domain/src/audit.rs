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
/// Not `webhook.delivered`: each successful delivery is recorded, with
/// every attempt, in the delivery history, and copying each into the audit
/// trail would double the hottest write path for no new information.
/// (`integration.webhook.received` is not an event of its own: it is a
/// routing key `webhook.received` is also published under, see
/// [`crate::event::also_routed_as`], and the event is recorded once.)
pub fn records_type(event_type: &str) -> bool {
    event_type != "webhook.delivered"
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
    fn tenant_events_are_recorded_except_delivered() {
        for kind in [
            "webhook.received",
            "webhook.failed",
            "order.created",
            "circuit.opened",
            "webhook.processed",
        ] {
            assert!(records(&event(kind, true)), "{kind}");
        }
        assert!(!records(&event("webhook.delivered", true)));
        assert!(!records_type("webhook.delivered"));
    }

    #[test]
    fn platform_ticks_without_a_tenant_are_not_recorded() {
        assert!(!records(&event("integration.sync.check-due", false)));
    }
}
