//! Turning what was sent and what arrived into figures.

use super::receiver::Arrival;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// What one scenario measured.
#[derive(Debug, Default)]
pub struct Outcome {
    pub accepted: u64,
    pub accepted_http: u64,
    pub accepted_amqp: u64,
    /// POSTs answered other than 202, or confirms that were nacks.
    pub rejected: u64,
    /// Transport errors (timeouts, connection errors) while sending.
    pub send_errors: u64,
    pub first_error: Option<String>,
    /// Deliveries expected: accepted × subscriptions.
    pub expected: u64,
    /// Distinct (subscription, event) pairs received.
    pub delivered: u64,
    /// Requests received for a pair already received.
    pub duplicates: u64,
    /// Expected pairs never received.
    pub missing: u64,
    /// Requests whose event id matched no accepted event.
    pub unmatched: u64,
    /// Distinct deliveries received within the load window.
    pub delivered_in_window: u64,
    pub window: Duration,
    /// From the start of the load to the last distinct delivery.
    pub span: Duration,
    /// Accepted → received, of every first delivery of a pair.
    pub latency: Option<Latency>,
    /// Deliveries that arrived before their event's acceptance was seen (the
    /// 202 or the confirm raced the delivery); counted as 0 ms.
    pub early: u64,
    /// Which header or body field carried the event id (for the report).
    pub matched_by: &'static str,
    /// Deliveries slower than [`SLOW`], by the second of the load their
    /// event was accepted in (offset from the start), worst seconds first:
    /// whether a tail is one stall or spread out.
    pub slow_seconds: Vec<(u64, u64)>,
    /// Scenario `intake`: its figures per connection count.
    pub levels: Vec<super::levels::Row>,
}

/// Counts slow requests by the second (of the load) they started in: (second,
/// count), most first.
pub(crate) fn by_second(seconds: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for s in seconds {
        *counts.entry(s).or_insert(0) += 1;
    }
    let mut counts: Vec<(u64, u64)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    counts
}

/// What [`Outcome::slow_seconds`] counts as slow (the latency target).
pub const SLOW: Duration = Duration::from_millis(25);

impl Outcome {
    /// Distinct deliveries per second during the load window.
    pub fn rate(&self) -> f64 {
        per_sec(self.delivered_in_window, self.window)
    }

    /// Distinct deliveries per second from the start of the load to the last
    /// delivery (drain included).
    pub fn overall_rate(&self) -> f64 {
        per_sec(self.delivered, self.span)
    }
}

/// Latency percentiles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latency {
    /// Percentiles of `samples` (sorted here); `None` when empty.
    pub fn of(samples: &mut [Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| {
            // Nearest rank: the smallest sample with at least q of them at or below it.
            let rank = (q * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1]
        };
        Some(Self {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: samples[samples.len() - 1],
        })
    }
}

/// Matches arrivals to accepted events. `accepted` holds each event's id and
/// when its acceptance was seen; `load_start`/`load_end` bound the window.
pub fn analyze(
    accepted: &[(u128, Instant)],
    arrivals: &[Arrival],
    subscriptions: usize,
    load_start: Instant,
    load_end: Instant,
) -> Outcome {
    let accepted_at: HashMap<u128, Instant> = accepted.iter().copied().collect();
    // The dispatcher may send the event id or a per-delivery id as
    // `webhook-id`; the body (the envelope) always carries the event id.
    let by_header = arrivals
        .iter()
        .filter(|a| accepted_at.contains_key(&a.webhook_id))
        .count();
    let by_body = arrivals
        .iter()
        .filter(|a| accepted_at.contains_key(&a.body_id))
        .count();
    let use_header = by_header >= by_body;
    let mut seen: HashSet<(u8, u128)> = HashSet::with_capacity(arrivals.len());
    let mut out = Outcome {
        matched_by: if use_header {
            "webhook-id header"
        } else {
            "the body's event id (webhook-id is not the event id)"
        },
        window: load_end.saturating_duration_since(load_start),
        ..Outcome::default()
    };
    let mut latencies = Vec::with_capacity(arrivals.len());
    let mut slow = Vec::new();
    let mut last = load_start;
    for a in arrivals {
        let id = if use_header { a.webhook_id } else { a.body_id };
        let Some(&sent) = accepted_at.get(&id) else {
            out.unmatched += 1;
            continue;
        };
        if !seen.insert((a.sub, id)) {
            out.duplicates += 1;
            continue;
        }
        out.delivered += 1;
        if a.at <= load_end {
            out.delivered_in_window += 1;
        }
        last = last.max(a.at);
        if a.at < sent {
            out.early += 1;
        }
        let took = a.at.saturating_duration_since(sent);
        if took > SLOW {
            slow.push(sent.saturating_duration_since(load_start).as_secs());
        }
        latencies.push(took);
    }
    out.slow_seconds = by_second(slow);
    out.expected = accepted.len() as u64 * subscriptions as u64;
    out.missing = out.expected.saturating_sub(out.delivered);
    out.span = last.saturating_duration_since(load_start);
    out.latency = Latency::of(&mut latencies);
    out
}

pub fn per_sec(n: u64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}

/// `12,345`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(ms_).collect();
        let l = Latency::of(&mut samples).unwrap();
        assert_eq!(
            (l.p50, l.p95, l.p99, l.max),
            (ms_(50), ms_(95), ms_(99), ms_(100))
        );
        let l = Latency::of(&mut [ms_(7)]).unwrap();
        assert_eq!((l.p50, l.p99, l.max), (ms_(7), ms_(7), ms_(7)));
        assert_eq!(Latency::of(&mut []), None);
    }

    #[test]
    fn counts_duplicates_missing_and_strays() {
        let t0 = Instant::now();
        let accepted = [(1, t0), (2, t0), (3, t0 + ms_(5))];
        let arrival = |sub, id, after| Arrival {
            sub,
            webhook_id: id,
            body_id: id,
            at: t0 + ms_(after),
        };
        let arrivals = [
            arrival(0, 1, 10),
            arrival(1, 1, 12),
            arrival(0, 1, 30), // duplicate
            arrival(0, 2, 20),
            arrival(0, 3, 4),   // before its acceptance was seen
            arrival(0, 9, 5),   // not ours
            arrival(1, 3, 200), // after the window
        ];
        let o = analyze(&accepted, &arrivals, 2, t0, t0 + ms_(100));
        assert_eq!(o.expected, 6);
        assert_eq!(o.delivered, 5);
        assert_eq!(o.missing, 1); // (sub 1, event 2)
        assert_eq!(o.duplicates, 1);
        assert_eq!(o.unmatched, 1);
        assert_eq!(o.early, 1);
        assert_eq!(o.delivered_in_window, 4);
        assert_eq!(o.span, ms_(200));
        assert_eq!(o.latency.unwrap().max, ms_(195));
        // Only (sub 1, event 3) took over 25 ms; its event came in second 0.
        assert_eq!(o.slow_seconds, vec![(0, 1)]);
    }

    #[test]
    fn falls_back_to_the_body_id() {
        let t0 = Instant::now();
        let a = Arrival {
            sub: 0,
            webhook_id: 42, // a delivery id
            body_id: 1,
            at: t0,
        };
        let o = analyze(&[(1, t0)], &[a], 1, t0, t0 + ms_(1));
        assert_eq!((o.delivered, o.missing, o.unmatched), (1, 0, 0));
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(ms(Duration::from_micros(12_345)), "12.3 ms");
    }
}
