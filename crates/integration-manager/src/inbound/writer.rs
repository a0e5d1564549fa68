//! Group commit for the public webhook route: request handlers hand their
//! verified request to a writer task and wait; the writer takes everything
//! queued (up to [`MAX_BATCH`]), inserts it with its outbox events in one
//! transaction (UNNEST arrays), and answers every waiter after COMMIT. While
//! one batch commits the next one fills, so a commit is shared by many
//! requests. Several writers run at once so commits overlap.

use hub_domain::{Envelope, EventType, TenantId};
use hub_platform::server::Context;
use hub_storage::inbound_events::{self, NewEvent, Stored};
use hub_storage::{StorageError, Tx};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

/// Most requests in one transaction.
pub const MAX_BATCH: usize = 512;
/// Writer tasks per process.
pub const WRITERS: usize = 3;

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
    answer: oneshot::Sender<Result<Stored, WriteError>>,
}

/// The handle request handlers write through.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

/// The receiving side, moved into the writer task.
pub struct Batches(mpsc::Receiver<Job>);

/// A writer handle and the queue its task drains.
pub fn channel(capacity: usize) -> (Writer, Batches) {
    let (tx, rx) = mpsc::channel(capacity);
    (Writer { tx }, Batches(rx))
}

impl Writer {
    /// Stores `event` (with its outbox events and `typed`, the event its
    /// first processing attempt publishes, unless it is a repeat) and returns
    /// once it is committed.
    pub async fn write(
        &self,
        event: NewEvent,
        info: EndpointInfo,
        typed: Option<Envelope>,
    ) -> Result<Stored, WriteError> {
        let (answer, wait) = oneshot::channel();
        self.tx
            .send(Job {
                event,
                info,
                typed,
                answer,
            })
            .await
            .map_err(|_| WriteError::Unavailable)?;
        wait.await.map_err(|_| WriteError::Unavailable)?
    }
}

/// Runs the writers until shutdown; jobs already queued are still written.
pub async fn run(ctx: Context, batches: Batches) {
    let rx = Arc::new(Mutex::new(batches.0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| tokio::spawn(writer_loop(ctx.clone(), rx.clone())))
        .collect();
    futures::future::join_all(writers).await;
    tracing::info!("inbound writer stopped");
}

async fn writer_loop(ctx: Context, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let jobs = {
            let mut rx = rx.lock().await;
            let first = tokio::select! {
                j = rx.recv() => j,
                _ = ctx.shutdown.cancelled() => {
                    // Drain what handlers still hand over while the server stops.
                    tokio::time::timeout(Duration::from_millis(500), rx.recv())
                        .await
                        .unwrap_or_default()
                }
            };
            let Some(first) = first else { return };
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            jobs
        };
        metrics::histogram!("hub_inbound_batch_size").record(jobs.len() as f64);
        write_jobs(&ctx, jobs).await;
    }
}

async fn write_jobs(ctx: &Context, jobs: Vec<Job>) {
    match write_batch(ctx, &jobs).await {
        Ok(stored) => {
            for (job, s) in jobs.into_iter().zip(stored) {
                let _ = job.answer.send(Ok(s));
            }
        }
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, n = jobs.len(), "inbound batch not stored: database unavailable");
            for job in jobs {
                let _ = job.answer.send(Err(WriteError::Unavailable));
            }
        }
        Err(e) if jobs.len() > 1 => {
            // One bad row (an endpoint deleted meanwhile, …) must not fail
            // the others: write them one by one.
            tracing::warn!(error = %e, n = jobs.len(), "inbound batch failed; writing its requests one by one");
            for job in jobs {
                let r = write_batch(ctx, std::slice::from_ref(&job)).await;
                let _ = job.answer.send(match r {
                    Ok(mut s) => Ok(s.remove(0)),
                    Err(e) if e.is_transient() => Err(WriteError::Unavailable),
                    Err(e) => Err(WriteError::Failed(e.to_string())),
                });
            }
        }
        Err(e) => {
            for job in jobs {
                let _ = job.answer.send(Err(WriteError::Failed(e.to_string())));
            }
        }
    }
}

async fn write_batch(ctx: &Context, jobs: &[Job]) -> Result<Vec<Stored>, StorageError> {
    let events: Vec<NewEvent> = jobs.iter().map(|j| j.event.clone()).collect();
    let mut tx: Tx<'_> = ctx.pool.begin().await?;
    let stored = inbound_events::insert_batch(&mut tx, &events).await?;
    let mut outbox = Vec::new();
    for (job, s) in jobs.iter().zip(&stored) {
        if s.duplicate {
            continue;
        }
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
            outbox.push(
                Envelope::new(
                    crate::NAME,
                    EventType::parse(kind).expect("static event type"),
                    Some(TenantId(e.tenant_id)),
                    data.clone(),
                )
                .with_correlation(Some(e.id.to_string())),
            );
        }
        outbox.extend(job.typed.clone());
    }
    hub_storage::outbox::enqueue(&mut tx, &outbox).await?;
    tx.commit().await?;
    Ok(stored)
}
