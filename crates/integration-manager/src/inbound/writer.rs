//! Group commit for the public webhook route (a [`Batcher`]): request
//! handlers hand their verified request to a writer task and wait; the
//! writer takes everything queued (up to [`MAX_BATCH`]), inserts it with its
//! outbox events in one statement (UNNEST arrays; one round trip, one
//! commit), and answers every waiter once it is committed. While one batch
//! commits the next one fills, so a commit is shared by many requests.
//! One writer: with more, an idle writer takes the few requests queued while
//! the others commit, and the batches split into many small commits
//! (measured with `cargo xtask bench inbound`: 3 writers made a quarter of
//! the batches single requests, and p99 was 22-25 ms instead of 18-19 ms).

use hub_bus::relay::Handoff;
use hub_domain::{Envelope, EventType, TenantId};
use hub_platform::batch::{BatchConfig, Batcher};
use hub_platform::server::Context;
use hub_storage::inbound_events::{self, NewEvent, Stored};
use hub_storage::{Pool, StorageError};
use serde_json::json;
use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Most requests in one transaction.
pub const MAX_BATCH: usize = 512;
/// Writer tasks per process (see the module doc).
pub const WRITERS: usize = 1;

/// What the events published for a received request say about its endpoint.
#[derive(Debug, Clone)]
pub struct EndpointInfo {
    /// The endpoint's path.
    pub path: String,
    /// Its integration.
    pub integration_id: Option<Uuid>,
    /// Its handler type.
    pub handler_type: String,
    /// Its target service.
    pub target_service: Option<String>,
}

/// Why a request could not be stored.
#[derive(Debug, Clone)]
pub enum WriteError {
    /// The database is unavailable (or the writer stopped): retry later.
    Unavailable,
    /// Anything else (logged).
    Failed(String),
}

struct Job {
    event: NewEvent,
    info: EndpointInfo,
    /// The typed event its first processing attempt publishes.
    typed: Option<Envelope>,
}

/// The handle request handlers write through (a group-commit
/// [`Batcher`]).
#[derive(Clone)]
pub struct Writer(Batcher<Job, Result<Stored, WriteError>>);

impl Writer {
    /// Starts the writer tasks; they stop after `ctx.shutdown`, once what is
    /// still handed over is written.
    pub fn spawn(ctx: &Context) -> (Self, JoinHandle<()>) {
        let db = Arc::new(Db {
            pool: ctx.pool.clone(),
            kept: Mutex::default(),
        });
        tokio::spawn(warm(db.clone()));
        let outbox = ctx.outbox.clone();
        let (batcher, done) = Batcher::spawn(
            BatchConfig {
                queue: 8 * MAX_BATCH,
                writers: WRITERS,
                max_batch: MAX_BATCH,
                linger: std::time::Duration::ZERO,
            },
            ctx.shutdown.clone(),
            move |jobs| {
                let (db, outbox) = (db.clone(), outbox.clone());
                async move { write_jobs(&db, &outbox, jobs).await }
            },
        );
        (Self(batcher), done)
    }

    /// Stores `event` (with its outbox events and `typed`, the event its
    /// first processing attempt publishes, unless it is a repeat) and returns
    /// once it is committed.
    pub async fn write(
        &self,
        event: NewEvent,
        info: EndpointInfo,
        typed: Option<Envelope>,
    ) -> Result<Stored, WriteError> {
        self.0
            .submit(Job { event, info, typed })
            .await
            .map_err(|_| WriteError::Unavailable)?
    }
}

/// The pool, and the connections the writer keeps between batches: each
/// batch runs on the same backend as the last (its statement already
/// prepared, its caches warm) instead of the pool's next idle connection
/// (measured with `cargo xtask bench inbound`, alternating builds:
/// 6,600-6,900 requests/s against 5,700-6,100, p99 1-2 ms lower). A
/// connection whose batch failed goes back to the pool, which checks it
/// before handing it out again, and the next batch takes one from the pool.
struct Db {
    pool: Pool,
    kept: Mutex<Vec<PoolConnection<Postgres>>>,
}

impl Db {
    async fn take(&self) -> Result<PoolConnection<Postgres>, StorageError> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match kept {
            Some(c) => Ok(c),
            None => Ok(self.pool.acquire().await?),
        }
    }

    /// Keeps `c` for the next batch, unless every writer already has one
    /// kept (the warm-up's and a first batch's can meet): then it goes back
    /// to the pool.
    fn keep(&self, c: PoolConnection<Postgres>) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < WRITERS {
            kept.push(c);
        }
    }
}

/// Opens the connection the writer keeps and runs its store statement once
/// (with nothing to store) before the first request arrives, so that the
/// first batch after a start does not also open a connection and prepare
/// the statement. Best effort: without it the first batch does both.
async fn warm(db: Arc<Db>) {
    let warmed = async {
        let mut conn = db.pool.acquire().await?;
        inbound_events::warm(&mut conn).await?;
        Ok::<_, StorageError>(conn)
    };
    match warmed.await {
        Ok(conn) => db.keep(conn),
        Err(e) => tracing::debug!(error = %e, "could not warm the inbound writer's connection"),
    }
}

async fn write_jobs(db: &Db, outbox: &Handoff, jobs: Vec<Job>) -> Vec<Result<Stored, WriteError>> {
    match write_batch(db, outbox, &jobs).await {
        Ok(stored) => stored.into_iter().map(Ok).collect(),
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, n = jobs.len(), "inbound batch not stored: database unavailable");
            vec![Err(WriteError::Unavailable); jobs.len()]
        }
        Err(e) if jobs.len() > 1 => {
            // One bad row (an endpoint deleted meanwhile, …) must not fail
            // the others: write them one by one.
            tracing::warn!(error = %e, n = jobs.len(), "inbound batch failed; writing its requests one by one");
            let mut out = Vec::with_capacity(jobs.len());
            for job in &jobs {
                out.push(
                    match write_batch(db, outbox, std::slice::from_ref(job)).await {
                        Ok(mut s) => Ok(s.remove(0)),
                        Err(e) if e.is_transient() => Err(WriteError::Unavailable),
                        Err(e) => Err(WriteError::Failed(e.to_string())),
                    },
                );
            }
            out
        }
        Err(e) => vec![Err(WriteError::Failed(e.to_string()))],
    }
}

async fn write_batch(db: &Db, outbox: &Handoff, jobs: &[Job]) -> Result<Vec<Stored>, StorageError> {
    let mut events_out = Vec::with_capacity(jobs.len() * 3);
    let mut owners = Vec::with_capacity(jobs.len() * 3);
    for job in jobs {
        let e = &job.event;
        let data = json!({
            "id": e.id,
            "endpoint_id": e.endpoint_id,
            "endpoint_path": job.info.path,
            "integration_id": job.info.integration_id,
            "provider_event_id": e.provider_event_id,
            "event_type": e.event_type,
            "handler_type": job.info.handler_type,
            "target_service": job.info.target_service,
            "source_ip": e.source_ip,
            "received_at": e.received_at,
        });
        for kind in ["webhook.received", "integration.webhook.received"] {
            events_out.push(
                Envelope::new(
                    crate::NAME,
                    EventType::parse(kind).expect("static event type"),
                    Some(TenantId(e.tenant_id)),
                    data.clone(),
                )
                .with_correlation(Some(e.id.to_string())),
            );
            owners.push(e.id);
        }
        if let Some(t) = &job.typed {
            events_out.push(t.clone());
            owners.push(e.id);
        }
    }
    // One statement (one round trip, one commit) for the whole batch; the
    // events of repeats are left out by it.
    let slot = outbox.slot(events_out.len());
    let batch: Vec<&NewEvent> = jobs.iter().map(|j| &j.event).collect();
    let mut conn = db.take().await?;
    let (stored, rows) =
        inbound_events::store_batch(&mut conn, &batch, &events_out, &owners, slot.lease_secs())
            .await?;
    db.keep(conn);
    slot.publish(rows);
    Ok(stored)
}
