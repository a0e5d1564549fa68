//! How long a consumer waits before a failed message is tried again.

use std::time::Duration;

/// Exponential delay for the `attempt`-th retry (1-based): `base · 2^(attempt-1)`,
/// capped at `max`.
pub fn delay(attempt: u32, base: Duration, max: Duration) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(max).min(max)
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

    proptest! {
        #[test]
        fn never_exceeds_max_and_is_monotonic(a in 1u32..200, base_ms in 1u64..10_000, max_ms in 1u64..100_000) {
            let (b, m) = (Duration::from_millis(base_ms), Duration::from_millis(max_ms));
            prop_assert!(delay(a, b, m) <= m);
            prop_assert!(delay(a, b, m) <= delay(a + 1, b, m));
        }
    }
}
