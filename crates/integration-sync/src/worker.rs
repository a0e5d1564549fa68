//! The job loop: claims due jobs (and jobs whose worker died) from
//! Postgres under a lease, runs up to [`CONCURRENT_JOBS`] at once, and is
//! woken by `NOTIFY hub_sync_jobs` when a job is created (polling as a
//! safety net).

use hub_gateway::engine::Gateway;
use hub_gateway::logs::{LogSettings, Recorder};
use hub_platform::server::Context;
use hub_platform::transforms::Templates;
use hub_storage::sync as store;
use hub_storage::wake::Wakeup;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Jobs one process runs at once.
pub const CONCURRENT_JOBS: usize = 4;
/// Longest sleep between claims when nothing wakes the loop.
const POLL: Duration = Duration::from_secs(1);

/// What running jobs needs, built once per process.
pub struct Engine {
    /// Every provider call goes through it.
    pub gateway: Gateway,
    /// Entity mappings by template code.
    pub templates: Templates,
    /// Names this process's leases.
    pub owner: String,
    /// The database.
    pub pool: sqlx::PgPool,
    /// The outbox hand-off of this process's relay.
    pub outbox: hub_bus::relay::Handoff,
    /// How long a claim lasts without a committed page (renewed by each
    /// page; `SYNC_LEASE_SECONDS`).
    pub lease: Duration,
    /// Wakes the job loop (an `integration.sync.scheduled` event).
    pub wake: tokio::sync::Notify,
    recorder: Recorder,
    recorder_done: tokio::sync::Mutex<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>,
}

impl Engine {
    /// The engine of the service `ctx` describes.
    pub fn new(ctx: &Context) -> Result<Self, String> {
        use hub_gateway::{assemble, engine, limiter};
        let c = &ctx.config;
        let keyring = Arc::new(c.keyring().map_err(|e| e.to_string())?);
        let policy =
            hub_connectors::client::TargetPolicy::allowing_private(c.hub_allow_private_targets);
        let tokens = hub_gateway::tokens::Tokens::new(
            ctx.pool.clone(),
            keyring.clone(),
            hub_connectors::client::http_client(policy),
            policy,
        );
        let (recorder, done) = Recorder::spawn(
            ctx.pool.clone(),
            LogSettings {
                request_bodies: c.log_request_bodies,
                response_bodies: c.log_response_bodies,
                retention_days: c.log_retention_days,
            },
        );
        let gateway = assemble::gateway(assemble::Setup {
            pool: ctx.pool.clone(),
            keyring,
            tokens,
            recorder: recorder.clone(),
            policy,
            queue: limiter::QueuePolicy {
                size: c.gateway_queue_size,
                max_wait: Duration::from_millis(c.gateway_max_wait_ms),
            },
            breaker: c.breaker_policy(),
            settings: engine::Settings {
                policy,
                deadline: Duration::from_secs(c.gateway_deadline_seconds),
                default_limit: (c.default_rate_limit, c.rate_limit_window_seconds),
                source: crate::NAME,
            },
        })?;
        Ok(Self {
            gateway,
            templates: Templates::new(ctx.pool.clone()),
            owner: format!("{}-{}", crate::NAME, Uuid::now_v7()),
            pool: ctx.pool.clone(),
            outbox: ctx.outbox.clone(),
            lease: Duration::from_secs(u64::from(c.sync_lease_seconds)),
            wake: tokio::sync::Notify::new(),
            recorder,
            recorder_done: tokio::sync::Mutex::new(Some(Box::pin(done))),
        })
    }

    /// Writes the queued request-log rows and stops the writer.
    pub async fn stop_logs(&self) {
        self.recorder.stop().await;
        if let Some(done) = self.recorder_done.lock().await.take() {
            done.await;
        }
    }
}

/// Claims and runs jobs until shutdown; jobs in hand finish their page and
/// stop (their lease lapses and another worker, or this one after a
/// restart, resumes them).
pub async fn run(ctx: Context, engine: Arc<Engine>) {
    let slots = Arc::new(Semaphore::new(CONCURRENT_JOBS));
    let mut wakeup = Wakeup::new(ctx.pool.clone(), store::CHANNEL);
    let mut failures = 0u32;
    while !ctx.shutdown.is_cancelled() {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        match store::claim(&ctx.pool, &engine.owner, engine.lease.as_secs_f64()).await {
            Ok(Some(job)) => {
                failures = 0;
                let engine = engine.clone();
                let stop = ctx.shutdown.clone();
                tokio::spawn(async move {
                    crate::pull::run(&engine, job, &stop).await;
                    drop(permit);
                });
                continue;
            }
            Ok(None) => failures = 0,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, failures, "claiming sync jobs failed");
            }
        }
        drop(permit);
        let wait = if failures > 0 {
            Duration::from_millis(100 * u64::from(failures.min(50)))
        } else {
            POLL
        };
        tokio::select! {
            _ = wakeup.wait(wait) => {}
            () = engine.wake.notified() => {}
            () = ctx.shutdown.cancelled() => {}
        }
    }
    // Let running jobs reach the end of their page.
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        slots.acquire_many(u32::try_from(CONCURRENT_JOBS).unwrap_or(4)),
    )
    .await;
    tracing::info!("sync worker stopped");
}
