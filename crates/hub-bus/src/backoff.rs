//! The hub's one retry backoff: how long a failing loop, a reconnect or a
//! redelivered message waits before it tries again. Every such wait is the
//! `backoff` crate's [`ExponentialBackoff`], made by [`doubling`] or
//! [`reconnect`].
//!
//! The outbound retry schedule (`hub_domain::webhook::RetryPolicy`) and the
//! inbound retry intervals (`HUB_INBOUND_RETRY_INTERVALS_MS`) are not this:
//! they are product rules with configured, stored intervals.

use std::time::Duration;

pub use ::backoff::ExponentialBackoff;
pub use ::backoff::backoff::Backoff;

/// `base`, then twice as long after each further failure, at most `max`, no
/// jitter, never giving up; `reset` starts again from `base`.
pub fn doubling(base: Duration, max: Duration) -> ExponentialBackoff {
    ExponentialBackoff {
        current_interval: base,
        initial_interval: base,
        randomization_factor: 0.0,
        multiplier: 2.0,
        max_interval: max,
        max_elapsed_time: None,
        ..ExponentialBackoff::default()
    }
}

/// Between attempts to reach a dependency again (a lost RabbitMQ connection,
/// an outbox relay or a handler whose database is down): from 200 ms, ×1.5
/// with ±50 % jitter so that replicas do not retry in step, at most 10 s.
pub fn reconnect() -> ExponentialBackoff {
    ExponentialBackoff {
        initial_interval: Duration::from_millis(200),
        current_interval: Duration::from_millis(200),
        max_interval: Duration::from_secs(10),
        max_elapsed_time: None,
        ..ExponentialBackoff::default()
    }
}

/// The wait of [`doubling`]`(base, max)` before the `attempt`-th retry
/// (1-based; 0 counts as 1): `base · 2^(attempt-1)`, capped at `max`. For
/// waits whose attempt is counted elsewhere (a message's redelivery count).
pub fn delay(attempt: u32, base: Duration, max: Duration) -> Duration {
    let mut backoff = doubling(base, max);
    let mut wait = base;
    for _ in 0..attempt.max(1) {
        wait = backoff.next_backoff().unwrap_or(max);
        if wait >= max {
            break;
        }
    }
    wait.min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn doubles_then_caps() {
        let b = Duration::from_millis(500);
        let m = Duration::from_secs(30);
        assert_eq!(delay(1, b, m), Duration::from_millis(500));
        assert_eq!(delay(2, b, m), Duration::from_secs(1));
        assert_eq!(delay(4, b, m), Duration::from_secs(4));
        assert_eq!(delay(10, b, m), m);
        assert_eq!(delay(100, b, m), m);
    }

    #[test]
    fn doubling_steps_like_delay_and_starts_over_on_reset() {
        let (b, m) = (Duration::from_millis(100), Duration::from_secs(10));
        let mut backoff = doubling(b, m);
        for attempt in 1..=10 {
            assert_eq!(backoff.next_backoff(), Some(delay(attempt, b, m)));
        }
        backoff.reset();
        assert_eq!(backoff.next_backoff(), Some(b));
    }

    proptest! {
        #[test]
        fn never_exceeds_max_and_is_monotonic(a in 1u32..200, base_ms in 1u64..10_000, max_ms in 1u64..100_000) {
            let (b, m) = (Duration::from_millis(base_ms), Duration::from_millis(max_ms));
            prop_assert!(delay(a, b, m) <= m);
            prop_assert!(delay(a, b, m) <= delay(a + 1, b, m));
        }
    }
}
