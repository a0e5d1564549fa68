//! The per-subscription circuit breaker: stop hammering an endpoint that keeps
//! failing, probe it after a cool-down, close again once it recovers.
//!
//! The state is plain data so storage can share it between replicas; every
//! rule takes `now` from the caller.

use chrono::{DateTime, TimeDelta, Utc};
use std::fmt;
use std::time::Duration;

/// Circuit breaker (per subscription), shared by replicas through storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Deliveries flow; consecutive failures are counted.
    Closed,
    /// Deliveries wait until `opened_at + open_for`, then one probe is let through.
    Open,
    /// Probing: successes are counted until the breaker closes again.
    HalfOpen,
}

impl BreakerState {
    /// The stored text: `"CLOSED"`, `"OPEN"` or `"HALF_OPEN"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "CLOSED",
            Self::Open => "OPEN",
            Self::HalfOpen => "HALF_OPEN",
        }
    }

    /// Parses the stored text written by [`BreakerState::as_str`] (exact case).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CLOSED" => Some(Self::Closed),
            "OPEN" => Some(Self::Open),
            "HALF_OPEN" => Some(Self::HalfOpen),
            _ => None,
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When the breaker opens and closes. A threshold of 0 behaves as 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures, while closed, that open the breaker.
    pub failure_threshold: u32,
    /// Consecutive successes, while half-open, that close it.
    pub success_threshold: u32,
    /// How long it stays open before a probe is allowed.
    pub open_for: Duration,
}

impl Default for BreakerPolicy {
    /// 5 failures to open, 3 successes to close, 60 s open.
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            success_threshold: 3,
            open_for: Duration::from_secs(60),
        }
    }
}

impl BreakerPolicy {
    fn failures_to_open(&self) -> u32 {
        self.failure_threshold.max(1)
    }

    fn successes_to_close(&self) -> u32 {
        self.success_threshold.max(1)
    }

    /// `opened_at + open_for`, saturating at the latest representable time.
    fn reopens_at(&self, opened_at: DateTime<Utc>) -> DateTime<Utc> {
        TimeDelta::from_std(self.open_for)
            .ok()
            .and_then(|d| opened_at.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// The breaker of one subscription, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Breaker {
    /// The current state.
    pub state: BreakerState,
    /// Consecutive failures while closed (0 otherwise).
    pub failure_count: u32,
    /// Consecutive successes while half-open (0 otherwise).
    pub success_count: u32,
    /// When it last opened; `None` while closed.
    pub opened_at: Option<DateTime<Utc>>,
}

/// What the dispatcher may do with a delivery now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Deliver normally.
    Deliver,
    /// Deliver as the probe (one at a time; call [`Breaker::start_probe`]
    /// first when the breaker is open).
    Probe,
    /// Do not deliver before `until`.
    Wait {
        /// `opened_at + open_for`.
        until: DateTime<Utc>,
    },
}

/// A state change, for events (`circuit.opened`, …) and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Closed or half-open → open.
    Opened,
    /// Open → half-open.
    HalfOpened,
    /// Half-open → closed.
    Closed,
}

impl Default for Breaker {
    /// [`Breaker::closed`].
    fn default() -> Self {
        Self::closed()
    }
}

impl Breaker {
    /// A closed breaker with no history.
    pub fn closed() -> Self {
        Self {
            state: BreakerState::Closed,
            failure_count: 0,
            success_count: 0,
            opened_at: None,
        }
    }

    /// Closed → Deliver. Open → Wait{until: opened_at+open_for} before that
    /// time, else Probe. HalfOpen → Probe (the caller lets one probe at a time
    /// through).
    ///
    /// An open breaker without `opened_at` (a damaged row) allows a probe
    /// rather than blocking the subscription forever.
    pub fn admit(&self, now: DateTime<Utc>, p: &BreakerPolicy) -> Admission {
        match self.state {
            BreakerState::Closed => Admission::Deliver,
            BreakerState::HalfOpen => Admission::Probe,
            BreakerState::Open => match self.opened_at.map(|at| p.reopens_at(at)) {
                Some(until) if now < until => Admission::Wait { until },
                _ => Admission::Probe,
            },
        }
    }

    /// Open → HalfOpen when admit says Probe (returns Some(HalfOpened));
    /// otherwise None and no change.
    pub fn start_probe(&mut self, now: DateTime<Utc>, p: &BreakerPolicy) -> Option<Transition> {
        if self.state != BreakerState::Open || self.admit(now, p) != Admission::Probe {
            return None;
        }
        self.state = BreakerState::HalfOpen;
        self.failure_count = 0;
        self.success_count = 0;
        Some(Transition::HalfOpened)
    }

    /// Records one attempt outcome.
    ///
    /// Closed: failure → failure_count+1, at threshold → Open (opened_at = now,
    /// counts reset) ⇒ Some(Opened); success → failure_count = 0.
    /// HalfOpen: success → success_count+1, at success_threshold → Closed
    /// (counts reset, opened_at None) ⇒ Some(Closed); failure → Open
    /// (opened_at = now, success_count 0) ⇒ Some(Opened).
    /// Open: outcomes of attempts that were in flight when it opened change
    /// nothing.
    pub fn record(
        &mut self,
        success: bool,
        now: DateTime<Utc>,
        p: &BreakerPolicy,
    ) -> Option<Transition> {
        match (self.state, success) {
            (BreakerState::Open, _) => None,
            (BreakerState::Closed, true) => {
                self.failure_count = 0;
                None
            }
            (BreakerState::Closed, false) => {
                self.failure_count = self.failure_count.saturating_add(1);
                (self.failure_count >= p.failures_to_open()).then(|| self.open(now))
            }
            (BreakerState::HalfOpen, true) => {
                self.success_count = self.success_count.saturating_add(1);
                (self.success_count >= p.successes_to_close()).then(|| {
                    *self = Self::closed();
                    Transition::Closed
                })
            }
            (BreakerState::HalfOpen, false) => Some(self.open(now)),
        }
    }

    fn open(&mut self, now: DateTime<Utc>) -> Transition {
        *self = Self {
            state: BreakerState::Open,
            failure_count: 0,
            success_count: 0,
            opened_at: Some(now),
        };
        Transition::Opened
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        t0() + TimeDelta::seconds(secs)
    }

    /// A breaker in `state` with no counts, opened at `opened_at`.
    fn breaker(state: BreakerState, opened_at: Option<DateTime<Utc>>) -> Breaker {
        Breaker {
            state,
            failure_count: 0,
            success_count: 0,
            opened_at,
        }
    }

    #[test]
    fn state_text_round_trips() {
        for s in [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ] {
            assert_eq!(BreakerState::parse(s.as_str()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(BreakerState::HalfOpen.as_str(), "HALF_OPEN");
        for bad in ["", "closed", "HALFOPEN", "OPEN "] {
            assert_eq!(BreakerState::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn default_policy_is_five_failures_three_successes_one_minute() {
        let p = BreakerPolicy::default();
        assert_eq!(
            (p.failure_threshold, p.success_threshold, p.open_for),
            (5, 3, Duration::from_secs(60))
        );
        assert_eq!(Breaker::default(), Breaker::closed());
    }

    #[test]
    fn closed_breaker_opens_after_threshold_consecutive_failures() {
        let p = BreakerPolicy::default();
        let mut b = Breaker::closed();
        for _ in 0..4 {
            assert_eq!(b.record(false, at(0), &p), None);
        }
        assert_eq!(
            b.record(true, at(1), &p),
            None,
            "a success resets the count"
        );
        assert_eq!(b.failure_count, 0);
        for i in 0..4 {
            assert_eq!(b.record(false, at(2 + i), &p), None);
            assert_eq!(b.admit(at(2 + i), &p), Admission::Deliver);
        }
        assert_eq!(b.record(false, at(10), &p), Some(Transition::Opened));
        assert_eq!(b, breaker(BreakerState::Open, Some(at(10))));
    }

    #[test]
    fn open_breaker_waits_then_allows_a_probe() {
        let p = BreakerPolicy::default();
        let b = breaker(BreakerState::Open, Some(at(10)));
        assert_eq!(b.admit(at(10), &p), Admission::Wait { until: at(70) });
        assert_eq!(b.admit(at(69), &p), Admission::Wait { until: at(70) });
        assert_eq!(b.admit(at(70), &p), Admission::Probe);
        assert_eq!(b.admit(at(5000), &p), Admission::Probe);
    }

    #[test]
    fn start_probe_only_from_open_after_the_cool_down() {
        let p = BreakerPolicy::default();
        let mut b = Breaker::closed();
        assert_eq!(b.start_probe(at(0), &p), None);
        assert_eq!(b, Breaker::closed());
        b.state = BreakerState::Open;
        b.opened_at = Some(at(0));
        let before = b.clone();
        assert_eq!(b.start_probe(at(59), &p), None);
        assert_eq!(b, before);
        assert_eq!(b.start_probe(at(60), &p), Some(Transition::HalfOpened));
        assert_eq!(b.state, BreakerState::HalfOpen);
        assert_eq!(b.admit(at(60), &p), Admission::Probe);
        assert_eq!(b.start_probe(at(61), &p), None, "already probing");
    }

    #[test]
    fn half_open_closes_after_success_threshold_consecutive_successes() {
        let p = BreakerPolicy::default();
        let mut b = breaker(BreakerState::HalfOpen, Some(at(0)));
        assert_eq!(b.record(true, at(61), &p), None);
        assert_eq!(b.record(true, at(62), &p), None);
        assert_eq!(b.success_count, 2);
        assert_eq!(b.record(true, at(63), &p), Some(Transition::Closed));
        assert_eq!(b, Breaker::closed());
        assert_eq!(b.admit(at(63), &p), Admission::Deliver);
    }

    #[test]
    fn half_open_failure_reopens_with_a_fresh_opened_at() {
        let p = BreakerPolicy::default();
        let mut b = Breaker {
            state: BreakerState::HalfOpen,
            failure_count: 0,
            success_count: 2,
            opened_at: Some(at(0)),
        };
        assert_eq!(b.record(false, at(100), &p), Some(Transition::Opened));
        assert_eq!(b, breaker(BreakerState::Open, Some(at(100))));
        assert_eq!(b.admit(at(100), &p), Admission::Wait { until: at(160) });
    }

    #[test]
    fn outcomes_in_flight_when_it_opened_change_nothing() {
        let p = BreakerPolicy::default();
        let open = breaker(BreakerState::Open, Some(at(0)));
        for success in [true, false] {
            let mut b = open.clone();
            assert_eq!(b.record(success, at(30), &p), None);
            assert_eq!(b, open);
        }
    }

    #[test]
    fn zero_thresholds_behave_as_one() {
        let p = BreakerPolicy {
            failure_threshold: 0,
            success_threshold: 0,
            open_for: Duration::ZERO,
        };
        let mut b = Breaker::closed();
        assert_eq!(b.record(false, at(0), &p), Some(Transition::Opened));
        assert_eq!(
            b.admit(at(0), &p),
            Admission::Probe,
            "open_for 0 probes at once"
        );
        assert_eq!(b.start_probe(at(0), &p), Some(Transition::HalfOpened));
        assert_eq!(b.record(true, at(0), &p), Some(Transition::Closed));
    }

    #[test]
    fn damaged_rows_do_not_wedge_the_breaker() {
        let p = BreakerPolicy::default();
        let mut b = breaker(BreakerState::Open, None);
        assert_eq!(b.admit(at(0), &p), Admission::Probe);
        assert_eq!(b.start_probe(at(0), &p), Some(Transition::HalfOpened));
        let mut over = Breaker {
            failure_count: 40,
            ..Breaker::closed()
        };
        assert_eq!(over.record(false, at(0), &p), Some(Transition::Opened));
        let huge = BreakerPolicy {
            open_for: Duration::MAX,
            ..p
        };
        let open = breaker(BreakerState::Open, Some(at(0)));
        assert_eq!(
            open.admit(at(1), &huge),
            Admission::Wait {
                until: DateTime::<Utc>::MAX_UTC
            }
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Record(bool),
        Advance(i64),
        Probe,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => any::<bool>().prop_map(Op::Record),
            2 => (0i64..90).prop_map(Op::Advance),
            1 => Just(Op::Probe),
        ]
    }

    fn policy() -> impl Strategy<Value = BreakerPolicy> {
        (1u32..7, 1u32..5, 0u64..120).prop_map(|(f, s, o)| BreakerPolicy {
            failure_threshold: f,
            success_threshold: s,
            open_for: Duration::from_secs(o),
        })
    }

    /// Invariants that hold between any two operations.
    fn check_invariants(
        b: &Breaker,
        now: DateTime<Utc>,
        p: &BreakerPolicy,
    ) -> Result<(), TestCaseError> {
        let admission = b.admit(now, p);
        match b.state {
            BreakerState::Closed => {
                prop_assert_eq!(admission, Admission::Deliver);
                prop_assert!(b.failure_count < p.failure_threshold);
                prop_assert_eq!(b.success_count, 0);
                prop_assert_eq!(b.opened_at, None);
            }
            BreakerState::Open => {
                let opened_at = b.opened_at.expect("open has opened_at");
                prop_assert!(opened_at <= now);
                prop_assert_eq!((b.failure_count, b.success_count), (0, 0));
                let until = opened_at + TimeDelta::from_std(p.open_for).unwrap();
                match admission {
                    Admission::Deliver => prop_assert!(false, "Deliver while open"),
                    Admission::Wait { until: u } => {
                        prop_assert_eq!(u, until);
                        prop_assert!(now < until);
                    }
                    Admission::Probe => prop_assert!(now >= until),
                }
            }
            BreakerState::HalfOpen => {
                prop_assert_eq!(admission, Admission::Probe);
                prop_assert!(b.opened_at.is_some());
                prop_assert_eq!(b.failure_count, 0);
                prop_assert!(b.success_count < p.success_threshold);
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn breaker_state_machine_follows_its_rules(p in policy(), ops in proptest::collection::vec(op(), 0..300)) {
            let mut b = Breaker::closed();
            let mut now = t0();
            // Independent tallies: failures in a row since the last close (or
            // since the last success while closed), successes in a row while
            // half-open.
            let mut failures_in_a_row = 0u32;
            let mut successes_while_half_open = 0u32;
            for op in ops {
                let before = b.clone();
                let transition = match op {
                    Op::Advance(s) => {
                        now += TimeDelta::seconds(s);
                        None
                    }
                    Op::Probe => {
                        let allowed = before.admit(now, &p) == Admission::Probe;
                        let t = b.start_probe(now, &p);
                        if before.state == BreakerState::Open && allowed {
                            prop_assert_eq!(t, Some(Transition::HalfOpened));
                            prop_assert_eq!(b.state, BreakerState::HalfOpen);
                            prop_assert_eq!(b.success_count, 0);
                            successes_while_half_open = 0;
                        } else {
                            prop_assert_eq!(t, None);
                            prop_assert_eq!(&b, &before);
                        }
                        t
                    }
                    Op::Record(success) => {
                        let t = b.record(success, now, &p);
                        match (before.state, success) {
                            (BreakerState::Open, _) => {
                                prop_assert_eq!(t, None);
                                prop_assert_eq!(&b, &before);
                            }
                            (BreakerState::Closed, true) => {
                                failures_in_a_row = 0;
                                prop_assert_eq!(t, None);
                            }
                            (BreakerState::Closed, false) => {
                                failures_in_a_row += 1;
                                prop_assert_eq!(
                                    t == Some(Transition::Opened),
                                    failures_in_a_row == p.failure_threshold
                                );
                                if t.is_some() {
                                    failures_in_a_row = 0;
                                } else {
                                    prop_assert_eq!(b.failure_count, failures_in_a_row);
                                }
                            }
                            (BreakerState::HalfOpen, true) => {
                                successes_while_half_open += 1;
                                prop_assert_eq!(
                                    t == Some(Transition::Closed),
                                    successes_while_half_open == p.success_threshold
                                );
                            }
                            (BreakerState::HalfOpen, false) => {
                                prop_assert_eq!(t, Some(Transition::Opened));
                            }
                        }
                        if t == Some(Transition::Opened) {
                            prop_assert_eq!(b.opened_at, Some(now));
                        }
                        t
                    }
                };
                // A transition is reported exactly when the state changes, and
                // names the new state.
                prop_assert_eq!(transition.is_some(), b.state != before.state);
                match transition {
                    Some(Transition::Opened) => prop_assert_eq!(b.state, BreakerState::Open),
                    Some(Transition::HalfOpened) => {
                        prop_assert_eq!(before.state, BreakerState::Open);
                        prop_assert_eq!(b.state, BreakerState::HalfOpen);
                    }
                    Some(Transition::Closed) => {
                        prop_assert_eq!(before.state, BreakerState::HalfOpen);
                        prop_assert_eq!(b.state, BreakerState::Closed);
                    }
                    None => {}
                }
                check_invariants(&b, now, &p)?;
            }
        }
    }
}
