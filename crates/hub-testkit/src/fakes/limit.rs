//! The rate limit a fake can enforce itself: fixed windows, each starting at
//! the first request after the previous one ended, and the accounting a
//! test asserts on.

use std::time::{Duration, Instant};

/// Fixed-window request counter.
#[derive(Debug, Default)]
pub(super) struct Limiter {
    /// Requests allowed per window, and the window; `None`: no limit.
    limit: Option<(u32, Duration)>,
    window_started: Option<Instant>,
    in_window: u32,
    max_in_window: u32,
    throttled: u64,
}

impl Limiter {
    pub(super) fn new(requests: u32, window: Duration) -> Self {
        Self {
            limit: Some((requests, window)),
            ..Self::default()
        }
    }

    /// The enforced limit, if any.
    pub(super) fn limit(&self) -> Option<(u32, Duration)> {
        self.limit
    }

    /// Counts a request arriving at `now`: `Ok` when it is within the limit
    /// (or there is none), else `Err(seconds until the window ends)`.
    pub(super) fn admit(&mut self, now: Instant) -> Result<(), u64> {
        let Some((max, window)) = self.limit else {
            return Ok(());
        };
        let started = match self.window_started {
            Some(s) if now.duration_since(s) < window => s,
            _ => {
                self.in_window = 0;
                self.window_started = Some(now);
                now
            }
        };
        self.in_window = self.in_window.saturating_add(1);
        self.max_in_window = self.max_in_window.max(self.in_window);
        if self.in_window <= max {
            return Ok(());
        }
        self.throttled += 1;
        let left = window.saturating_sub(now.duration_since(started));
        // Retry-After is whole seconds, never 0 while the window lasts.
        Err(left.as_secs() + u64::from(left.subsec_nanos() > 0))
    }

    /// Requests counted in the current window.
    pub(super) fn in_window(&self) -> u32 {
        self.in_window
    }

    pub(super) fn max_in_window(&self) -> u32 {
        self.max_in_window
    }

    pub(super) fn throttled(&self) -> u64 {
        self.throttled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_fixed_windows_from_the_first_request() {
        let t0 = Instant::now();
        let mut l = Limiter::new(2, Duration::from_secs(10));
        assert_eq!(l.admit(t0), Ok(()));
        assert_eq!(l.admit(t0 + Duration::from_secs(1)), Ok(()));
        assert_eq!(l.admit(t0 + Duration::from_millis(8500)), Err(2));
        assert_eq!(l.admit(t0 + Duration::from_secs(10)), Ok(()));
        assert_eq!((l.max_in_window(), l.throttled(), l.in_window()), (3, 1, 1));
        assert_eq!(Limiter::default().admit(t0), Ok(()));
    }
}
