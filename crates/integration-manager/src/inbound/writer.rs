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

use hub_bus::relay::{Handoff, Slot};
use hub_domain::{Envelope, EventType, TenantId};
use hub_platform::batch::{BatchConfig, Batcher};
use hub_platform::server::Context;
use hub_storage::inbound_events::{self, NewEvent, Stored};
use hub_storage::outbox;
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
    /// Its outbox events, serialized by the request handler.
    outbox: outbox::Prepared,
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

    /// Stores `event` (with its `webhook.received` and `typed`, the event
    /// its first processing attempt publishes, unless it is a repeat) and
    /// returns once it is committed. The events are made and serialized
    /// here, in the caller's task: the writer, which every request waits
    /// for, only binds them (measured with `cargo xtask bench
    /// inbound`: making them in the writer took a tenth of the manager's
    /// CPU, on the critical path of every batch).
    pub async fn write(
        &self,
        event: NewEvent,
        info: EndpointInfo,
        typed: Option<Envelope>,
    ) -> Result<Stored, WriteError> {
        let received = received(&event, &info);
        let outbox = match typed {
            Some(t) => outbox::Prepared::of(&[received, t]),
            None => outbox::Prepared::of(&[received]),
        };
        self.0
            .submit(Job { event, outbox })
            .await
            .map_err(|_| WriteError::Unavailable)?
    }
}

/// The `webhook.received` event of a received request (also routed as
/// `integration.webhook.received` by the relay:
/// `hub_domain::event::also_routed_as`).
fn received(e: &NewEvent, info: &EndpointInfo) -> Envelope {
    Envelope::new(
        crate::NAME,
        EventType::parse("webhook.received").expect("static event type"),
        Some(TenantId(e.tenant_id)),
        json!({
            "id": e.id,
            "endpoint_id": e.endpoint_id,
            "endpoint_path": info.path,
            "integration_id": info.integration_id,
            "provider_event_id": e.provider_event_id,
            "event_type": e.event_type,
            "handler_type": info.handler_type,
            "target_service": info.target_service,
            "source_ip": e.source_ip,
            "received_at": e.received_at,
        }),
    )
    .with_correlation(Some(e.id.to_string()))
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
        Ok((stored, slot)) => {
            publish(slot, jobs, &stored);
            stored.into_iter().map(Ok).collect()
        }
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, n = jobs.len(), "inbound batch not stored: database unavailable");
            vec![Err(WriteError::Unavailable); jobs.len()]
        }
        Err(e) if jobs.len() > 1 => {
            // One bad row (an endpoint deleted meanwhile, …) must not fail
            // the others: write them one by one.
            tracing::warn!(error = %e, n = jobs.len(), "inbound batch failed; writing its requests one by one");
            let mut out = Vec::with_capacity(jobs.len());
            for job in jobs {
                let job = vec![job];
                out.push(match write_batch(db, outbox, &job).await {
                    Ok((mut stored, slot)) => {
                        publish(slot, job, &stored);
                        Ok(stored.remove(0))
                    }
                    Err(e) if e.is_transient() => Err(WriteError::Unavailable),
                    Err(e) => Err(WriteError::Failed(e.to_string())),
                });
            }
            out
        }
        Err(e) => vec![Err(WriteError::Failed(e.to_string()))],
    }
}

/// Stores `jobs` in one statement (one round trip, one commit); returns
/// what each resulted in, and the relay slot their written outbox rows go
/// to ([`publish`]).
async fn write_batch(
    db: &Db,
    outbox: &Handoff,
    jobs: &[Job],
) -> Result<(Vec<Stored>, Slot), StorageError> {
    let batch: Vec<&NewEvent> = jobs.iter().map(|j| &j.event).collect();
    let events: Vec<&outbox::Prepared> = jobs.iter().map(|j| &j.outbox).collect();
    let slot = outbox.slot(events.iter().map(|p| p.len()).sum());
    let mut conn = db.take().await?;
    let stored = inbound_events::store_batch(&mut conn, &batch, &events, slot.lease_secs()).await?;
    db.keep(conn);
    Ok((stored, slot))
}

/// Hands the committed outbox rows of `jobs` to the relay: those of first
/// deliveries (a repeat's were not written).
fn publish(slot: Slot, jobs: Vec<Job>, stored: &[Stored]) {
    slot.publish(
        jobs.into_iter()
            .zip(stored)
            .filter(|(_, s)| !s.duplicate)
            .flat_map(|(j, _)| j.outbox.into_rows())
            .collect(),
    );
}
