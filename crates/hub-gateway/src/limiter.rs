//! Per-integration rate limits, exact across replicas.
//!
//! The count lives in Postgres (`hub_storage::gateway::take`): fixed windows
//! aligned to the epoch on the database's clock, each granting at most the
//! limit to every replica together. A process takes tokens for the requests
//! waiting on it in one statement (plus a slice ahead for large limits, see
//! [`RateLimit::prefetch`]) and hands them out locally until the window
//! ends; unused ones lapse with their window, so the limit holds with any
//! number of replicas.
//!
//! A request finding the window spent waits for the next one in a bounded
//! queue (`GATEWAY_QUEUE_SIZE` per integration and process, at most
//! `GATEWAY_MAX_WAIT_MS`); beyond either it is refused with the time to
//! retry. `X-Hub-Priority: high` skips the queue: it takes a token even from
//! a spent window (counted, so queued requests absorb it later). A
//! provider's own throttling answer ([`Limiter::provider_throttled`]) holds
//! every request, high priority included, until the provider's
//! `Retry-After`.

use hub_domain::gateway::RateLimit;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How the queue behaves.
#[derive(Debug, Clone, Copy)]
pub struct QueuePolicy {
    /// Requests per integration and process that may wait at once.
    pub size: u32,
    /// Longest wait before a request is refused instead.
    pub max_wait: Duration,
}

/// Why a request may not go now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LimitError {
    /// Over the limit and the queue is full or the wait too long.
    #[error("rate limit of {limit} requests per {window} s reached; retry in {} s", retry_after.as_secs().max(1))]
    Throttled {
        /// When a retry may succeed.
        retry_after: Duration,
        /// The limit's requests.
        limit: u32,
        /// The limit's window in seconds.
        window: u32,
    },
    /// The shared count could not be reached.
    #[error("rate limit state unavailable: {0}")]
    Storage(String),
}

/// A granted request: its estimate of the tokens left in the window.
#[derive(Debug, Clone, Copy)]
pub struct Permit {
    /// Requests left in the current window, every replica together (an
    /// estimate as of the last database answer).
    pub remaining: u32,
    /// How long the request waited in the queue.
    pub waited: Duration,
}

/// One process's view of one integration's limit.
#[derive(Default)]
struct Bucket {
    state: tokio::sync::Mutex<Local>,
    /// Requests currently inside [`Limiter::acquire`] for this integration.
    demand: AtomicU32,
    /// Requests waiting for a later window.
    queued: AtomicU32,
}

#[derive(Default)]
struct Local {
    /// Tokens of the current window held by this process.
    tokens: u32,
    /// When the current window ends (local clock); tokens lapse then.
    window_ends: Option<Instant>,
    /// The window gave out: nothing more until it ends.
    spent: bool,
    /// The provider's block, while in force.
    blocked_until: Option<Instant>,
    /// Used and max of the window, as last answered.
    used: u32,
    max: u32,
}

impl Local {
    fn roll(&mut self, now: Instant) {
        if self.window_ends.is_some_and(|end| now >= end) {
            self.tokens = 0;
            self.spent = false;
            self.window_ends = None;
            self.used = 0;
        }
        if self.blocked_until.is_some_and(|until| now >= until) {
            self.blocked_until = None;
        }
    }

    fn remaining(&self) -> u32 {
        self.max.saturating_sub(self.used) + self.tokens
    }
}

/// The rate limiter of one process; cheap to clone.
#[derive(Clone)]
pub struct Limiter {
    pool: PgPool,
    policy: QueuePolicy,
    buckets: Arc<Mutex<HashMap<Uuid, Arc<Bucket>>>>,
}

enum Step {
    Go(Permit),
    Wait(Duration),
    Take { wanted: u32 },
}

impl Limiter {
    /// A limiter over the shared counts in `pool`.
    pub fn new(pool: PgPool, policy: QueuePolicy) -> Self {
        Self {
            pool,
            policy,
            buckets: Arc::default(),
        }
    }

    fn bucket(&self, integration: Uuid) -> Arc<Bucket> {
        let mut all = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        all.entry(integration).or_default().clone()
    }

    /// Waits until the integration may send one request under `limit`, or
    /// refuses. `high` skips the queue (not a provider's block).
    pub async fn acquire(
        &self,
        integration: Uuid,
        limit: RateLimit,
        high: bool,
    ) -> Result<Permit, LimitError> {
        let bucket = self.bucket(integration);
        bucket.demand.fetch_add(1, Ordering::AcqRel);
        let started = Instant::now();
        let result = self
            .acquire_in(&bucket, integration, limit, high, started)
            .await;
        bucket.demand.fetch_sub(1, Ordering::AcqRel);
        result
    }

    async fn acquire_in(
        &self,
        bucket: &Bucket,
        integration: Uuid,
        limit: RateLimit,
        high: bool,
        started: Instant,
    ) -> Result<Permit, LimitError> {
        let mut waited = false;
        loop {
            // Held across the database call: requests arriving meanwhile
            // wait for its answer instead of each asking Postgres.
            let mut local = bucket.state.lock().await;
            let now = Instant::now();
            local.roll(now);
            match self.decide(&mut local, bucket, limit, high, started, waited, now)? {
                Step::Go(permit) => return Ok(permit),
                Step::Wait(d) => {
                    drop(local);
                    bucket.queued.fetch_add(1, Ordering::AcqRel);
                    tokio::time::sleep(d).await;
                    bucket.queued.fetch_sub(1, Ordering::AcqRel);
                    waited = true;
                }
                Step::Take { wanted } => {
                    let grant = hub_storage::gateway::take(
                        &self.pool,
                        integration,
                        limit.window_seconds,
                        limit.requests,
                        wanted,
                        high,
                    )
                    .await
                    .map_err(|e| LimitError::Storage(e.to_string()))?;
                    let now = Instant::now();
                    let granted = u32::try_from(grant.granted).unwrap_or(0);
                    // A window never ends before now (a stale row or clock
                    // step must not make every request ask Postgres again
                    // at once).
                    let left = millis(grant.window_left_ms).max(Duration::from_millis(10));
                    local.window_ends = Some(now + left);
                    local.used = u32::try_from(grant.used).unwrap_or(0);
                    local.max = u32::try_from(grant.max).unwrap_or(0);
                    local.blocked_until = grant.blocked_ms.map(|ms| now + millis(ms));
                    if high && granted > 0 {
                        return Ok(Permit {
                            remaining: local.remaining(),
                            waited: started.elapsed(),
                        });
                    }
                    local.tokens += granted;
                    if granted < wanted && local.blocked_until.is_none() {
                        local.spent = true;
                    }
                }
            }
        }
    }

    /// What to do next, under the bucket's lock.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        local: &mut Local,
        bucket: &Bucket,
        limit: RateLimit,
        high: bool,
        started: Instant,
        waited: bool,
        now: Instant,
    ) -> Result<Step, LimitError> {
        let refuse = |wait: Duration| LimitError::Throttled {
            retry_after: wait,
            limit: limit.requests,
            window: limit.window_seconds,
        };
        let queue_full = !waited && bucket.queued.load(Ordering::Acquire) >= self.policy.size;
        // A provider's block holds everyone, high priority included.
        if let Some(until) = local.blocked_until {
            let wait = until - now;
            if started.elapsed() + wait > self.policy.max_wait || (queue_full && !high) {
                return Err(refuse(wait));
            }
            return Ok(Step::Wait(wait));
        }
        if local.tokens > 0 {
            local.tokens -= 1;
            return Ok(Step::Go(Permit {
                remaining: local.remaining(),
                waited: started.elapsed(),
            }));
        }
        if high {
            return Ok(Step::Take { wanted: 1 });
        }
        if !local.spent {
            let demand = bucket.demand.load(Ordering::Acquire).max(1);
            return Ok(Step::Take {
                wanted: demand + limit.prefetch(),
            });
        }
        // Spent: wait for the next window, if the queue has room.
        let wait = local
            .window_ends
            .map(|end| end.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(50))
            + jitter();
        if started.elapsed() + wait > self.policy.max_wait || queue_full {
            return Err(refuse(wait));
        }
        Ok(Step::Wait(wait))
    }

    /// The provider answered "slow down": hold this integration's requests
    /// on every replica for `retry_after` (the provider's, else the rest of
    /// the window, at least a second).
    pub async fn provider_throttled(
        &self,
        integration: Uuid,
        retry_after: Option<Duration>,
        reason: &str,
    ) -> Result<(), LimitError> {
        let bucket = self.bucket(integration);
        let wait = {
            let mut local = bucket.state.lock().await;
            let now = Instant::now();
            let wait = retry_after.unwrap_or_else(|| {
                local
                    .window_ends
                    .map(|end| end.saturating_duration_since(now))
                    .unwrap_or_default()
                    .max(Duration::from_secs(1))
            });
            local.blocked_until = Some(now + wait);
            wait
        };
        hub_storage::gateway::block(
            &self.pool,
            integration,
            i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
            reason,
        )
        .await
        .map_err(|e| LimitError::Storage(e.to_string()))
    }
}

/// Deletes spent rate-limit windows and lapsed provider blocks once a
/// minute until `shutdown` (every replica may run it; deletes are idempotent).
pub async fn prune_loop(pool: PgPool, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        match hub_storage::gateway::prune_windows(&pool).await {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "rate-limit windows pruned"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "pruning rate-limit windows failed; retrying in a minute")
            }
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A few milliseconds, so the queue of every replica does not wake at the
/// same instant.
fn jitter() -> Duration {
    Duration::from_millis(rand::random_range(1..=25))
}
