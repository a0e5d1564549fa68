//! The per-integration circuit breaker: the dispatcher's pure state machine
//! (`hub_domain::webhook::Breaker`) over `circuit_breaker_state` rows with
//! an `integration_id`.
//!
//! Open after `CIRCUIT_FAILURE_THRESHOLD` consecutive failures
//! ([`hub_domain::gateway::breaker_failure`]: no answer, 5xx, 408, 429);
//! after `CIRCUIT_TIMEOUT_SECONDS` one probe at a time across replicas
//! (`claim_probe`); 3 successful probes close it. Opening and closing emit
//! `circuit.opened` / `circuit.closed` with the change, in one transaction.
//!
//! Each process reads the state at most once a second per integration and
//! writes only when something changes (a failure, or the first success
//! after failures), so a healthy integration costs no database work.

use hub_domain::TenantId;
use hub_domain::webhook::{Breaker, BreakerPolicy, BreakerState, Transition};
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a process trusts the state it read.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// What the breaker says of a call now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Call.
    Call,
    /// Call as the probe of an open breaker.
    Probe,
    /// Do not call; retry after this long.
    Open(Duration),
}

/// Breaker failures to reach storage.
#[derive(Debug, thiserror::Error)]
#[error("circuit breaker state unavailable: {0}")]
pub struct BreakerError(pub String);

impl From<hub_storage::StorageError> for BreakerError {
    fn from(e: hub_storage::StorageError) -> Self {
        Self(e.to_string())
    }
}

#[derive(Clone)]
struct Cached {
    breaker: Breaker,
    read: Instant,
}

/// The breakers of one process; cheap to clone.
#[derive(Clone)]
pub struct Breakers {
    pool: PgPool,
    policy: BreakerPolicy,
    /// The service named as the events' source.
    source: String,
    cache: Arc<Mutex<HashMap<Uuid, Cached>>>,
}

impl Breakers {
    /// Breakers with `policy`, state in `pool`; `source` names the service
    /// in the events.
    pub fn new(pool: PgPool, policy: BreakerPolicy, source: &str) -> Self {
        Self {
            pool,
            policy,
            source: source.to_owned(),
            cache: Arc::default(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> BreakerPolicy {
        self.policy
    }

    fn cached(&self, id: Uuid) -> Option<Breaker> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(&id)
            .filter(|c| c.read.elapsed() < FRESH_FOR)
            .map(|c| c.breaker.clone())
    }

    fn remember(&self, id: Uuid, breaker: Breaker) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.insert(
            id,
            Cached {
                breaker,
                read: Instant::now(),
            },
        );
    }

    async fn current(&self, id: Uuid) -> Result<Breaker, BreakerError> {
        if let Some(b) = self.cached(id) {
            return Ok(b);
        }
        let b = hub_storage::gateway::breaker(&self.pool, id)
            .await?
            .map(|row| row.breaker())
            .unwrap_or_else(Breaker::closed);
        self.remember(id, b.clone());
        Ok(b)
    }

    /// The breaker's state for displays.
    pub async fn state(&self, id: Uuid) -> Result<BreakerState, BreakerError> {
        Ok(self.current(id).await?.state)
    }

    /// May the integration be called now?
    pub async fn admit(&self, id: Uuid) -> Result<Verdict, BreakerError> {
        let b = self.current(id).await?;
        let now = chrono::Utc::now();
        let until = match (b.state, b.admit(now, &self.policy)) {
            (BreakerState::Closed, _) => return Ok(Verdict::Call),
            (_, hub_domain::webhook::Admission::Wait { until }) => until,
            _ => {
                let open = u32::try_from(self.policy.open_for.as_secs()).unwrap_or(u32::MAX);
                let probe = open.clamp(5, 60);
                if hub_storage::gateway::claim_probe(&self.pool, id, open, probe).await? {
                    // Others see the probe in flight at their next read.
                    self.forget(id);
                    return Ok(Verdict::Probe);
                }
                self.forget(id);
                now + chrono::TimeDelta::seconds(1)
            }
        };
        Ok(Verdict::Open(
            (until - now).to_std().unwrap_or(Duration::from_secs(1)),
        ))
    }

    fn forget(&self, id: Uuid) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.remove(&id);
    }

    /// Records an attempt's outcome; returns the transition it caused.
    /// Successes of a closed breaker with no failures write nothing.
    pub async fn record(
        &self,
        tenant: TenantId,
        id: Uuid,
        success: bool,
        probe: bool,
    ) -> Result<Option<Transition>, BreakerError> {
        if success
            && !probe
            && self
                .cached(id)
                .is_some_and(|b| b.state == BreakerState::Closed && b.failure_count == 0)
        {
            return Ok(None);
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| BreakerError(e.to_string()))?;
        let mut b = hub_storage::gateway::breaker_for_update(&mut tx, id)
            .await?
            .breaker();
        let before = b.clone();
        let now = chrono::Utc::now();
        let transition = b.record(success, now, &self.policy);
        if b != before || probe {
            let p = &self.policy;
            let policy = (
                p.failure_threshold,
                p.success_threshold,
                u32::try_from(p.open_for.as_secs()).unwrap_or(u32::MAX),
            );
            hub_storage::gateway::save_breaker(&mut tx, id, &b, success, policy).await?;
        }
        if let Some(kind) = match transition {
            Some(Transition::Opened) => Some("circuit.opened"),
            Some(Transition::Closed) => Some("circuit.closed"),
            _ => None,
        } {
            let data = json!({
                "integration_id": id,
                "state": b.state.as_str(),
                "opened_at": b.opened_at,
                "retry_after_seconds": p_secs(&self.policy),
            });
            let kind = hub_domain::event::EventType::parse(kind).expect("static event type");
            let event = hub_domain::event::Envelope::new(&self.source, kind, Some(tenant), data);
            hub_storage::outbox::enqueue(&mut tx, &[event]).await?;
        }
        tx.commit().await.map_err(|e| BreakerError(e.to_string()))?;
        self.remember(id, b);
        Ok(transition)
    }
}

fn p_secs(p: &BreakerPolicy) -> u64 {
    p.open_for.as_secs()
}
