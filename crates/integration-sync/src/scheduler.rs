//! The sync scheduler: creates the jobs of integrations whose
//! `sync_frequency` says a sync is due, emits the platform's periodic ticks
//! and prunes old jobs.
//!
//! Every replica runs [`run`], and one of them schedules: the holder of a
//! Postgres advisory lock taken on a connection of its own
//! ([`hub_storage::schedule::Candidate`]). An advisory lock rather than a
//! lease row, because the lock ends with its holder's session: a replica
//! that stops, crashes or is killed closes its connection and another takes
//! over at its next tick (a lease would have to run out first, and be
//! renewed by a leader in the meantime); server-side TCP keepalives end the
//! session of a replica whose host vanished within about ten seconds. The
//! lock decides who does the work, not whether it is right: due
//! integrations are locked `FOR UPDATE SKIP LOCKED` and advanced in the
//! transaction that creates their jobs, and ticks are claimed in
//! `scheduler_ticks`, so a second scheduler (a holder whose connection died
//! unnoticed, a check run on an `integration.sync.check-due` event on any
//! replica) cannot double anything.
//!
//! Each tick of the holder:
//! - for every enabled integration whose `next_sync_at` has passed (in
//!   batches of [`BATCH`], one transaction each): one job per entity of its
//!   manifest's `sync.entities` (INCREMENTAL when a watermark exists, else
//!   FULL_SYNC; `scheduled_by` SCHEDULED; an entity with a pending or running
//!   job is skipped), `next_sync_at` moved to [`hub_domain::schedule::next_run`]
//!   from now, and `integration.sync.scheduled` per job through the outbox;
//! - `integration.sync.check-due` and `integration.token.check-expiring`,
//!   each at most once per [`TICK_EVENTS_EVERY`] across replicas;
//! - finished jobs older than [`JOB_RETENTION_DAYS`] deleted in batches, at
//!   most once per [`PRUNE_EVERY`].

use chrono::Utc;
use hub_domain::schedule::{next_run_of, scheduled_job_type};
use hub_domain::{Envelope, EventType, TenantId};
use hub_platform::server::Context;
use hub_storage::StorageError;
use hub_storage::schedule::{self as store, Candidate, ScheduledJob};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// The event announcing a job (also written by the manager for manual jobs).
pub const SCHEDULED: &str = "integration.sync.scheduled";
/// The tick asking for a due check.
pub const CHECK_DUE: &str = "integration.sync.check-due";
/// The tick asking for expiring OAuth tokens to be refreshed.
pub const CHECK_EXPIRING: &str = "integration.token.check-expiring";
/// How often each tick event is emitted (at most, across replicas).
pub const TICK_EVENTS_EVERY: Duration = Duration::from_secs(60);
/// Finished jobs are kept this long.
pub const JOB_RETENTION_DAYS: u32 = 30;
/// How often old jobs are pruned (at most, across replicas).
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Integrations scheduled per transaction.
pub const BATCH: i64 = 100;
/// Rows deleted per pruning statement.
const PRUNE_BATCH: i64 = 1000;
/// The `scheduler_ticks` row of pruning.
const PRUNE_TICK: &str = "sync.prune";

/// The scheduler of one process.
pub struct Scheduler {
    ctx: Context,
    tick: Duration,
    check_now: Notify,
}

impl Scheduler {
    /// The scheduler of the service `ctx` describes (its tick from
    /// `SYNC_SCHEDULER_TICK_MS`).
    pub fn new(ctx: &Context) -> Self {
        Self {
            tick: Duration::from_millis(ctx.config.sync_scheduler_tick_ms),
            ctx: ctx.clone(),
            check_now: Notify::new(),
        }
    }

    /// Asks for a due check at once, on this replica, whether or not it
    /// holds the lock (an `integration.sync.check-due` event).
    pub fn check_now(&self) {
        self.check_now.notify_one();
    }

    /// Creates the jobs of every integration due now, batch after batch;
    /// returns how many were created.
    pub async fn check_due(&self) -> Result<usize, StorageError> {
        let mut created = 0;
        loop {
            let (jobs, integrations) = self.due_batch().await?;
            created += jobs;
            if integrations < usize::try_from(BATCH).unwrap_or(usize::MAX)
                || self.ctx.shutdown.is_cancelled()
            {
                return Ok(created);
            }
        }
    }

    /// One batch of due integrations in one transaction; returns the jobs
    /// created and the integrations seen.
    async fn due_batch(&self) -> Result<(usize, usize), StorageError> {
        let mut tx = self.ctx.pool.begin().await?;
        let due = store::lock_due(&mut tx, BATCH).await?;
        if due.is_empty() {
            return Ok((0, 0));
        }
        let ids: Vec<Uuid> = due.iter().map(|d| d.id).collect();
        let marks: HashMap<(Uuid, String), chrono::DateTime<Utc>> =
            store::watermarks(&mut tx, &ids)
                .await?
                .into_iter()
                .map(|(i, e, w)| ((i, e), w))
                .collect();
        let now = Utc::now();
        let mut jobs = Vec::new();
        let mut next = Vec::with_capacity(due.len());
        for d in &due {
            let tenant = TenantId(d.tenant_id);
            let next_run = next_run_of(d.sync_frequency.as_deref(), now);
            next.push((tenant, d.id, next_run));
            if next_run.is_none() {
                // MANUAL (or none) since its next run was set: never
                // scheduled; only its stale next_sync_at is cleared.
                continue;
            }
            let entities = hub_connectors::catalog::manifest(&d.provider_code)
                .and_then(|m| m.sync.as_ref())
                .map(|s| s.entities.keys());
            for entity in entities.into_iter().flatten() {
                let watermark = marks.get(&(d.id, entity.clone())).copied();
                jobs.push(ScheduledJob {
                    id: Uuid::now_v7(),
                    tenant_id: tenant,
                    integration_id: d.id,
                    job_type: scheduled_job_type(watermark.is_some()),
                    entity_type: entity.clone(),
                    watermark,
                });
            }
        }
        let created: HashSet<Uuid> = store::insert_jobs(&mut tx, &jobs)
            .await?
            .into_iter()
            .collect();
        store::advance(&mut tx, &next).await?;
        let events: Vec<Envelope> = jobs
            .iter()
            .filter(|j| created.contains(&j.id))
            .map(|j| scheduled_event(j, now))
            .collect();
        let staged = self.ctx.outbox.stage(&mut tx, &events).await?;
        tx.commit().await?;
        staged.publish();
        metrics::counter!("hub_sync_scheduled_jobs_total").increment(created.len() as u64);
        if !created.is_empty() {
            tracing::info!(
                jobs = created.len(),
                integrations = due.len(),
                "scheduled sync jobs"
            );
        }
        Ok((created.len(), due.len()))
    }

    /// Emits each tick event whose interval has passed (across replicas).
    async fn emit_ticks(&self) -> Result<(), StorageError> {
        let mut tx = self.ctx.pool.begin().await?;
        let every = TICK_EVENTS_EVERY.as_secs_f64();
        let mut events = Vec::new();
        for kind in [CHECK_DUE, CHECK_EXPIRING] {
            if store::claim_tick(&mut tx, kind, every).await? {
                events.push(tick_event(kind));
            }
        }
        let staged = self.ctx.outbox.stage(&mut tx, &events).await?;
        tx.commit().await?;
        staged.publish();
        Ok(())
    }

    /// Deletes old finished jobs, when no replica did within
    /// [`PRUNE_EVERY`]; stops at shutdown.
    async fn prune(&self) -> Result<(), StorageError> {
        let mut tx = self.ctx.pool.begin().await?;
        let due = store::claim_tick(&mut tx, PRUNE_TICK, PRUNE_EVERY.as_secs_f64()).await?;
        tx.commit().await?;
        if due {
            let stop = self.ctx.shutdown.clone();
            let n = hub_storage::sync::prune(
                &self.ctx.pool,
                JOB_RETENTION_DAYS,
                PRUNE_BATCH,
                move || !stop.is_cancelled(),
            )
            .await?;
            if n > 0 {
                tracing::info!(jobs = n, "pruned finished sync jobs");
            }
        }
        Ok(())
    }

    /// What the lock holder does each tick.
    async fn lead(&self) -> Result<(), StorageError> {
        self.check_due().await?;
        self.emit_ticks().await?;
        self.prune().await
    }
}

fn scheduled_event(j: &ScheduledJob, at: chrono::DateTime<Utc>) -> Envelope {
    Envelope::new(
        crate::NAME,
        EventType::parse(SCHEDULED).expect("static event type"),
        Some(j.tenant_id),
        json!({"job_id": j.id, "integration_id": j.integration_id, "entity_type": j.entity_type,
               "job_type": j.job_type.as_str(), "scheduled_at": at, "scheduled_by": "SCHEDULED"}),
    )
}

fn tick_event(kind: &str) -> Envelope {
    Envelope::new(
        crate::NAME,
        EventType::parse(kind).expect("static event type"),
        None,
        json!({"interval_seconds": TICK_EVENTS_EVERY.as_secs()}),
    )
}

/// Runs the scheduler until shutdown: tries for the lock each tick and, while
/// holding it, schedules; on every replica, runs a due check when asked
/// ([`Scheduler::check_now`]). Gives the lock up at shutdown.
pub async fn run(ctx: Context, scheduler: Arc<Scheduler>) {
    let mut candidate = Candidate::new(ctx.pool.clone());
    let mut failures = 0u32;
    while !ctx.shutdown.is_cancelled() {
        let was_leading = candidate.is_leading();
        let leading = match candidate.try_lead().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "the scheduler's lock could not be tried");
                false
            }
        };
        if leading != was_leading {
            tracing::info!(
                leading,
                "sync scheduler lock {}",
                if leading { "taken" } else { "lost" }
            );
        }
        if leading {
            match scheduler.lead().await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = %e, failures, "the sync scheduler's tick failed; retrying");
                }
            }
        }
        // Failing ticks back off up to 8 ticks apart.
        let wait = scheduler.tick * 2u32.pow(failures.min(3));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            () = scheduler.check_now.notified() => {
                if let Err(e) = scheduler.check_due().await {
                    tracing::error!(error = %e, "the due check asked for failed");
                }
            }
            () = ctx.shutdown.cancelled() => {}
        }
    }
    candidate.resign().await;
    tracing::info!("sync scheduler stopped");
}
