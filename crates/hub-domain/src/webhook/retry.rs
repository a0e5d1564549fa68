//! When a failed delivery is tried again, and when the dispatcher gives up.

use super::WebhookError;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Consecutive failed deliveries after which a subscription is disabled.
pub const AUTO_DISABLE_AFTER: u32 = 10;

/// Retry policy of a subscription.
///
/// Built by [`RetryPolicy::new`] from the subscription's columns; the fields
/// are public for storage mapping and tests.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Whether failed deliveries are retried at all.
    pub enabled: bool,
    /// Retries after the first attempt: a delivery is attempted at most
    /// `1 + max_retries` times.
    pub max_retries: u32,
    /// Waits in seconds before retry 1, 2, …; the last one repeats.
    pub intervals: Vec<u32>,
}

impl RetryPolicy {
    /// The default `retry_intervals`, in seconds.
    pub const DEFAULT_INTERVALS: [u32; 5] = [60, 300, 900, 3600, 7200];
    /// The default `max_retries`.
    pub const DEFAULT_MAX_RETRIES: u32 = 5;
    /// The largest allowed `max_retries`.
    pub const MAX_RETRIES: u32 = 20;
    /// The most entries `retry_intervals` may hold.
    pub const MAX_INTERVALS: usize = 20;
    /// The longest allowed interval, in seconds (one day).
    pub const MAX_INTERVAL_SECS: u32 = 86_400;

    /// intervals: JSON array of 1..=20 integers each 0..=86400 (0 allowed,
    /// tests use it); max_retries 0..=20.
    pub fn new(
        enabled: bool,
        max_retries: i64,
        intervals: &serde_json::Value,
    ) -> Result<Self, WebhookError> {
        let err = |m: String| Err(WebhookError::InvalidRetryPolicy(m));
        let Some(max_retries) = u32::try_from(max_retries)
            .ok()
            .filter(|n| *n <= Self::MAX_RETRIES)
        else {
            return err(format!(
                "max_retries: must be 0 to {} (got {max_retries})",
                Self::MAX_RETRIES
            ));
        };
        let shape = format!(
            "must be a JSON array of 1 to {} whole numbers of seconds, each 0 to {}, \
             such as [60, 300, 900, 3600, 7200]",
            Self::MAX_INTERVALS,
            Self::MAX_INTERVAL_SECS
        );
        let Some(items) = intervals.as_array() else {
            return err(format!("retry_intervals: {shape}"));
        };
        if items.is_empty() || items.len() > Self::MAX_INTERVALS {
            return err(format!(
                "retry_intervals: {shape} (got {} entries)",
                items.len()
            ));
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Some(secs) = item
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n <= Self::MAX_INTERVAL_SECS)
            else {
                let mut got = item.to_string();
                if got.chars().count() > 40 {
                    got = got.chars().take(40).chain(['…']).collect();
                }
                return err(format!("retry_intervals: entry {i} is {got}; {shape}"));
            };
            out.push(secs);
        }
        Ok(Self {
            enabled,
            max_retries,
            intervals: out,
        })
    }

    /// After `attempts_made` attempts (>= 1) of which the last failed: the
    /// wait before the next attempt, or None to give up (retries disabled, or
    /// attempts_made > max_retries, i.e. total attempts are 1 + max_retries).
    ///
    /// Scheduled wait = intervals[min(attempts_made-1, len-1)] scaled by
    /// (1 + 0.1 * jitter) where `jitter` ∈ [-1, 1] is supplied by the caller
    /// (random). A `retry_after` (from a 429/503) is honored when longer than
    /// that, capped at the last interval.
    ///
    /// `jitter` outside [-1, 1] is clamped and a non-finite one counts as 0;
    /// `attempts_made == 0` is treated as 1; empty `intervals` (only possible
    /// by building the struct by hand) fall back to [`Self::DEFAULT_INTERVALS`].
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        if !self.enabled || attempts_made > self.max_retries {
            return None;
        }
        let intervals: &[u32] = if self.intervals.is_empty() {
            &Self::DEFAULT_INTERVALS
        } else {
            &self.intervals
        };
        let last = intervals[intervals.len() - 1];
        let idx = usize::try_from(attempts_made.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .min(intervals.len() - 1);
        let jitter = if jitter.is_finite() {
            jitter.clamp(-1.0, 1.0)
        } else {
            0.0
        };
        // Whole milliseconds: stored and logged delays read cleanly.
        let millis = (f64::from(intervals[idx]) * 1000.0 * (1.0 + 0.1 * jitter)).round();
        // At most 86_400_000 * 1.1 for parsed policies; `as` saturates anyway.
        let scheduled = Duration::from_millis(millis as u64);
        Some(match retry_after {
            // Honor the server within our own bounds: never sooner than
            // planned, never later than the longest planned wait.
            Some(ra) => ra.min(Duration::from_secs(u64::from(last))).max(scheduled),
            None => scheduled,
        })
    }
}

impl Default for RetryPolicy {
    /// Enabled, 5 retries, [`Self::DEFAULT_INTERVALS`].
    fn default() -> Self {
        Self {
            enabled: true,
            max_retries: Self::DEFAULT_MAX_RETRIES,
            intervals: Self::DEFAULT_INTERVALS.to_vec(),
        }
    }
}

/// Parses a Retry-After header value: delay-seconds or an HTTP-date (relative
/// to `now`); None when unparseable or negative.
///
/// Surrounding whitespace is ignored. Delay-seconds are plain digits (no sign,
/// no fraction); a count too large for `u64` is unparseable. An HTTP-date in
/// the past is negative; one equal to `now` gives zero.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at: DateTime<Utc> = httpdate::parse_http_date(v).ok()?.into();
    (at - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn new_accepts_the_defaults_and_bounds() {
        let p = RetryPolicy::new(true, 5, &json!([60, 300, 900, 3600, 7200])).unwrap();
        assert_eq!(p, RetryPolicy::default());
        let p = RetryPolicy::new(false, 0, &json!([0])).unwrap();
        assert_eq!((p.enabled, p.max_retries, p.intervals), (false, 0, vec![0]));
        let p = RetryPolicy::new(true, 20, &json!(vec![86_400; 20])).unwrap();
        assert_eq!(p.intervals.len(), 20);
    }

    #[test]
    fn new_rejects_out_of_bounds_values_saying_what_is_allowed() {
        let ok = json!([60]);
        for (m, want) in [(-1, "got -1"), (21, "got 21"), (i64::MAX, "0 to 20")] {
            let err = RetryPolicy::new(true, m, &ok).unwrap_err();
            assert!(matches!(err, WebhookError::InvalidRetryPolicy(_)));
            assert!(
                err.to_string().starts_with("max_retries: must be 0 to 20"),
                "{err}"
            );
            assert!(err.to_string().contains(want), "{err}");
        }
        let cases = [
            (json!(null), "must be a JSON array"),
            (json!(60), "must be a JSON array"),
            (json!([]), "got 0 entries"),
            (json!(vec![1; 21]), "got 21 entries"),
            (json!([60, -1]), "entry 1 is -1"),
            (json!([86_401]), "entry 0 is 86401"),
            (json!([1.5]), "entry 0 is 1.5"),
            (json!([60.0]), "entry 0 is 60.0"),
            (json!(["60"]), "entry 0 is \"60\""),
            (json!([null]), "entry 0 is null"),
            (json!([u64::MAX]), "each 0 to 86400"),
            (json!(["x".repeat(100)]), "…"),
        ];
        for (v, want) in cases {
            let err = RetryPolicy::new(true, 3, &v).unwrap_err();
            assert!(matches!(err, WebhookError::InvalidRetryPolicy(_)));
            let msg = err.to_string();
            assert!(msg.starts_with("retry_intervals: "), "{msg}");
            assert!(msg.contains(want), "{v}: {msg}");
            assert!(msg.len() < 300, "{msg}");
        }
    }

    #[test]
    fn next_delay_walks_the_schedule_then_gives_up() {
        let p = RetryPolicy::default();
        let got: Vec<_> = (1..=6).map(|n| p.next_delay(n, None, 0.0)).collect();
        assert_eq!(
            got,
            [
                Some(secs(60)),
                Some(secs(300)),
                Some(secs(900)),
                Some(secs(3600)),
                Some(secs(7200)),
                None
            ]
        );
        let long = RetryPolicy {
            max_retries: 8,
            ..RetryPolicy::default()
        };
        assert_eq!(
            long.next_delay(8, None, 0.0),
            Some(secs(7200)),
            "last interval repeats"
        );
        assert_eq!(long.next_delay(9, None, 0.0), None);
        assert_eq!(p.next_delay(0, None, 0.0), Some(secs(60)), "0 counts as 1");
    }

    #[test]
    fn next_delay_none_when_disabled_or_no_retries() {
        let off = RetryPolicy {
            enabled: false,
            ..RetryPolicy::default()
        };
        assert_eq!(off.next_delay(1, None, 0.0), None);
        let none = RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(none.next_delay(1, Some(secs(5)), 0.0), None);
    }

    #[test]
    fn next_delay_applies_ten_percent_jitter() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_delay(1, None, 1.0), Some(secs(66)));
        assert_eq!(p.next_delay(1, None, -1.0), Some(secs(54)));
        assert_eq!(p.next_delay(2, None, 0.5), Some(secs(315)));
        assert_eq!(p.next_delay(1, None, 7.0), Some(secs(66)), "clamped");
        assert_eq!(p.next_delay(1, None, f64::NAN), Some(secs(60)));
        assert_eq!(p.next_delay(1, None, f64::NEG_INFINITY), Some(secs(60)));
        let zero = RetryPolicy::new(true, 3, &json!([0])).unwrap();
        assert_eq!(zero.next_delay(1, None, 1.0), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_is_honored_when_longer_and_capped_at_last_interval() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_delay(1, Some(secs(120)), 0.0), Some(secs(120)));
        assert_eq!(p.next_delay(1, Some(secs(30)), 0.0), Some(secs(60)));
        assert_eq!(p.next_delay(1, Some(secs(36_000)), 0.0), Some(secs(7200)));
        assert_eq!(
            p.next_delay(5, Some(secs(36_000)), 1.0),
            Some(secs(7920)),
            "never below schedule"
        );
        let falling = RetryPolicy::new(true, 3, &json!([600, 10])).unwrap();
        assert_eq!(falling.next_delay(1, Some(secs(900)), 0.0), Some(secs(600)));
    }

    #[test]
    fn hand_built_policy_without_intervals_uses_defaults() {
        let p = RetryPolicy {
            enabled: true,
            max_retries: 2,
            intervals: vec![],
        };
        assert_eq!(p.next_delay(2, None, 0.0), Some(secs(300)));
    }

    #[test]
    fn auto_disable_threshold_is_ten() {
        assert_eq!(AUTO_DISABLE_AFTER, 10);
    }

    #[test]
    fn retry_after_delay_seconds() {
        assert_eq!(parse_retry_after("120", now()), Some(secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("007", now()), Some(secs(7)));
        for bad in [
            "",
            " ",
            "-1",
            "+5",
            "1.5",
            "abc",
            "12 34",
            "1e3",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_retry_after(bad, now()), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_http_dates_in_all_three_formats() {
        for date in [
            "Thu, 01 Jan 2026 00:01:30 GMT",
            "Thursday, 01-Jan-26 00:01:30 GMT",
            "Thu Jan  1 00:01:30 2026",
        ] {
            assert_eq!(parse_retry_after(date, now()), Some(secs(90)), "{date}");
        }
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 23:59:59 GMT", now()),
            None,
            "past"
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 25:00:00 GMT", now()),
            None
        );
    }

    fn policy() -> impl Strategy<Value = RetryPolicy> {
        (
            any::<bool>(),
            0u32..=20,
            proptest::collection::vec(0u32..=86_400, 1..=20),
        )
            .prop_map(|(enabled, max_retries, intervals)| RetryPolicy {
                enabled,
                max_retries,
                intervals,
            })
    }

    proptest! {
        #[test]
        fn new_accepts_exactly_what_it_documents(
            enabled in any::<bool>(),
            max in -5i64..30,
            intervals in proptest::collection::vec(-10i64..=90_000, 0..25),
        ) {
            let valid = (0..=20).contains(&max)
                && (1..=20).contains(&intervals.len())
                && intervals.iter().all(|n| (0..=86_400).contains(n));
            let got = RetryPolicy::new(enabled, max, &json!(intervals));
            prop_assert_eq!(got.is_ok(), valid);
            if let Ok(p) = got {
                prop_assert_eq!(p.max_retries as i64, max);
                prop_assert_eq!(p.intervals.iter().map(|n| *n as i64).collect::<Vec<_>>(), intervals);
            }
        }

        #[test]
        fn delay_is_none_exactly_when_out_of_attempts_or_disabled(
            p in policy(), attempts in 1u32..40, jitter in -1.0f64..=1.0, ra in proptest::option::of(0u64..200_000),
        ) {
            let got = p.next_delay(attempts, ra.map(secs), jitter);
            prop_assert_eq!(got.is_none(), !p.enabled || attempts > p.max_retries);
        }

        #[test]
        fn delay_without_retry_after_is_within_ten_percent_of_schedule(
            p in policy(), attempts in 1u32..40, jitter in -1.0f64..=1.0,
        ) {
            let p = RetryPolicy { enabled: true, max_retries: 20, ..p };
            if let Some(d) = p.next_delay(attempts, None, jitter) {
                let idx = (attempts as usize - 1).min(p.intervals.len() - 1);
                let base = f64::from(p.intervals[idx]);
                let d = d.as_secs_f64();
                prop_assert!(d >= base * 0.9 - 1e-3 && d <= base * 1.1 + 1e-3, "{} vs {}", d, base);
            }
        }

        #[test]
        fn delay_with_retry_after_is_bounded(
            p in policy(), attempts in 1u32..21, jitter in -1.0f64..=1.0, ra in 0u64..200_000,
        ) {
            let p = RetryPolicy { enabled: true, max_retries: 20, ..p };
            let scheduled = p.next_delay(attempts, None, jitter).unwrap();
            let d = p.next_delay(attempts, Some(secs(ra)), jitter).unwrap();
            let last = secs(u64::from(*p.intervals.last().unwrap()));
            prop_assert!(d >= scheduled);
            prop_assert!(d <= scheduled.max(last));
            let max_interval = f64::from(*p.intervals.iter().max().unwrap());
            prop_assert!(d.as_secs_f64() <= (max_interval * 1.1).max(last.as_secs_f64()) + 1e-3);
            if secs(ra) > scheduled && secs(ra) <= last {
                prop_assert_eq!(d, secs(ra));
            }
        }

        #[test]
        fn retry_after_seconds_round_trip(n in any::<u64>(), pad in "[ \t]{0,2}") {
            prop_assert_eq!(parse_retry_after(&format!("{pad}{n}{pad}"), now()), Some(secs(n)));
        }

        #[test]
        fn retry_after_http_date_round_trips(offset in -100_000i64..10_000_000) {
            let at = now() + chrono::TimeDelta::seconds(offset);
            let text = httpdate::fmt_http_date(at.into());
            let want = u64::try_from(offset).ok().map(secs);
            prop_assert_eq!(parse_retry_after(&text, now()), want);
        }

        #[test]
        fn retry_after_never_panics(s in "\\PC{0,60}") {
            let _ = parse_retry_after(&s, now());
        }
    }
}
