//! Names of exchanges and queues, all under one configurable prefix so that
//! parallel test runs (and several hubs on one broker) never collide.

/// Exchange and queue names for one prefix.
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    /// Names under `prefix` (may be empty).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }
    /// The topic exchange events enter by: other systems publish here
    /// (routing key = event type). It forwards everything (`#`) to
    /// [`Topology::routed_exchange`]; the audit trail's queue is bound here
    /// alone, so it sees only events the hub did not produce (the hub
    /// records its own when it produces them).
    pub fn exchange(&self) -> String {
        format!("{}hub.events", self.prefix)
    }
    /// The topic exchange service queues are bound to: everything published
    /// to [`Topology::exchange`], and the hub's own events, which its
    /// relays publish here directly.
    pub fn routed_exchange(&self) -> String {
        format!("{}hub.routed", self.prefix)
    }
    /// The direct exchange dead letters go to (routing key = source queue).
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}hub.dlx", self.prefix)
    }
    /// A service's durable work queue.
    pub fn queue(&self, service: &str) -> String {
        format!("{}{service}.events", self.prefix)
    }
    /// A service's retry queue: messages wait here for their backoff, then
    /// expire back into the work queue.
    pub fn retry_queue(&self, service: &str) -> String {
        format!("{}{service}.events.retry", self.prefix)
    }
    /// A service's dead-letter queue, for an operator to inspect and re-drive.
    pub fn dead_letter_queue(&self, service: &str) -> String {
        format!("{}{service}.events.dlq", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix() {
        let t = Topology::new("t1.");
        assert_eq!(t.exchange(), "t1.hub.events");
        assert_eq!(t.routed_exchange(), "t1.hub.routed");
        assert_eq!(t.dead_letter_exchange(), "t1.hub.dlx");
        assert_eq!(
            t.queue("webhook-dispatcher"),
            "t1.webhook-dispatcher.events"
        );
        assert_eq!(t.retry_queue("x"), "t1.x.events.retry");
        assert_eq!(t.dead_letter_queue("x"), "t1.x.events.dlq");
        assert_eq!(Topology::new("").exchange(), "hub.events");
    }
}
