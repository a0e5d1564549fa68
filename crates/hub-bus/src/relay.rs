//! The outbox relay: publishes what services wrote to `outbox`, then deletes it.
//!
//! Hot paths hand their committed events to their own process's relay
//! ([`Handoff`]): it publishes them from memory at once and then deletes them,
//! with no claim query and no wake-up; one task deletes what every batch
//! published, in one statement per 20 ms (`RETIRE_LINGER`) rather than one per
//! batch. Those rows are inserted leased to it; if it dies or cannot
//! publish, the lease expires (or is released) and any relay claims them as
//! below.
//!
//! Rows are claimed with `FOR UPDATE SKIP LOCKED` inside a transaction that
//! stays open while the batch is published and confirmed; they are deleted only
//! after every confirm. If the relay, the broker or the database fails midway
//! the transaction rolls back and the rows are published again later: at least
//! once, never zero times. Any number of relays (one per service replica) can
//! run at once.

use crate::backoff::Backoff as _;
use crate::{Bus, BusError, Outgoing};
use hub_storage::outbox;
use hub_storage::outbox::Pending;
use hub_storage::wake::{Wakeup, Woken};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Relay settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows per claim.
    pub batch: u32,
    /// Poll interval when no notification arrives (a safety net).
    pub poll: Duration,
    /// How long the relay lets rows gather after a notification before it
    /// claims them: fuller batches, for a few milliseconds of latency.
    pub linger: Duration,
    /// Woken (like a notification) when a producer in this process stored
    /// rows for the claiming relay without notifying
    /// ([`HandoffQueue::overflow_signal`]).
    pub wake: Option<Arc<tokio::sync::Notify>>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch: 500,
            poll: Duration::from_secs(2),
            linger: Duration::from_millis(10),
            wake: None,
        }
    }
}

/// Runs the relay until `shutdown`; the batch in flight is finished first.
pub async fn run(bus: Arc<Bus>, pool: PgPool, config: RelayConfig, shutdown: CancellationToken) {
    let mut wakeup = Wakeup::new(pool.clone(), outbox::CHANNEL);
    let mut backoff = crate::backoff::reconnect();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        match drain(&bus, &pool, config.batch).await {
            Ok(n) => {
                if n > 0 {
                    tracing::debug!(published = n, "outbox relayed");
                }
                backoff.reset();
            }
            Err(e) => {
                let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(10));
                tracing::error!(error = %e, wait_ms = wait.as_millis() as u64, "outbox relay failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = shutdown.cancelled() => break,
                }
            }
        }
        if wakeup.listen().await.unwrap_or(false) {
            // Rows committed between that drain and LISTEN notified
            // nobody: drain once more, or they wait for the poll.
            continue;
        }
        let woken = async {
            match &config.wake {
                Some(w) => w.notified().await,
                None => std::future::pending().await,
            }
        };
        let linger = async {
            tokio::select! {
                _ = tokio::time::sleep(config.linger) => {}
                _ = shutdown.cancelled() => {}
            }
        };
        tokio::select! {
            w = wakeup.wait(config.poll) => if w == Woken::Notified {
                linger.await
            },
            _ = woken => linger.await,
            _ = shutdown.cancelled() => break,
        }
    }
    tracing::info!("outbox relay stopped");
}

/// Publishes everything pending, batch after batch; returns how many rows.
pub async fn drain(bus: &Bus, pool: &PgPool, batch: u32) -> Result<usize, BusError> {
    let mut total = 0;
    loop {
        let n = relay_batch(bus, pool, batch).await?;
        total += n;
        if n < batch as usize {
            return Ok(total);
        }
    }
}

async fn relay_batch(bus: &Bus, pool: &PgPool, batch: u32) -> Result<usize, BusError> {
    let mut tx = pool
        .begin()
        .await
        .map_err(hub_storage::StorageError::from)?;
    let rows = outbox::claim(&mut tx, batch).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id.0).collect();
    let messages = outgoing(rows);
    if let Err(e) = bus.publish(&messages).await {
        drop(tx);
        let _ = outbox::record_failure(pool, &ids, &e.to_string()).await;
        return Err(e);
    }
    outbox::delete_published(&mut *tx, &ids).await?;
    tx.commit().await.map_err(hub_storage::StorageError::from)?;
    metrics::counter!("hub_bus_published_total").increment(ids.len() as u64);
    Ok(ids.len())
}

/// How long rows handed to the process's own relay stay reserved for it:
/// past this, any relay may publish them (the producer died, or is far
/// behind).
pub const HANDOFF_LEASE_SECS: u32 = 10;

/// Most handed-off rows published in one go.
const HANDOFF_BATCH: usize = 500;
/// Batches published at once (their confirms overlap).
const HANDOFF_IN_FLIGHT: usize = 4;
/// How long the retiring task lets published rows gather before it deletes
/// them, and the most it deletes in one statement. A delete costs Postgres
/// about 0.35 ms plus 35 µs a row (with the audit rows it writes): with one
/// per published batch, up to four at once beside the statement webhook
/// answers wait for, Postgres spent 15% of a core more at 3,000 webhooks/s
/// (`cargo xtask bench inbound --rate 3000`: 76% against 61%).
const RETIRE_LINGER: Duration = Duration::from_millis(20);
const RETIRE_BATCH: usize = 4000;
/// Rows handed over and not yet published, at most, by default
/// (`HUB_OUTBOX_HANDOFF_ROOM`). A producer that finds no room stores its
/// rows for the claiming relay instead, so a relay that falls behind slows
/// nobody down and its queue stays short enough that leases do not expire
/// into duplicate publishes.
pub const HANDOFF_ROOM: usize = 8192;

/// Where a producer hands the outbox rows it just committed to its
/// process's relay. Cheap to clone.
#[derive(Clone)]
pub struct Handoff {
    tx: tokio::sync::mpsc::UnboundedSender<(Vec<Pending>, tokio::sync::OwnedSemaphorePermit)>,
    room: Arc<tokio::sync::Semaphore>,
    overflow: Arc<tokio::sync::Notify>,
}

/// Room for `n` rows in the relay's queue, taken before the rows are stored.
pub struct Reserved {
    tx: tokio::sync::mpsc::UnboundedSender<(Vec<Pending>, tokio::sync::OwnedSemaphorePermit)>,
    permit: tokio::sync::OwnedSemaphorePermit,
}

impl Handoff {
    /// Room for `n` events, if the relay has it.
    fn reserve(&self, n: usize) -> Option<Reserved> {
        let n = u32::try_from(n).ok().filter(|n| *n > 0)?;
        let permit = self.room.clone().try_acquire_many_owned(n).ok()?;
        Some(Reserved {
            tx: self.tx.clone(),
            permit,
        })
    }

    /// For a producer that writes up to `n` outbox rows with its own
    /// statement: the lease to write them with ([`Slot::lease_secs`]) and,
    /// once they are committed, where to hand them ([`Slot::publish`]).
    pub fn slot(&self, n: usize) -> Slot {
        match self.reserve(n) {
            Some(room) => Slot::Leased(room),
            None => Slot::Stored(self.overflow.clone()),
        }
    }

    /// Adds `events` to the outbox in `tx`: leased to this process's relay
    /// when it has room (publish them with [`Staged::publish`] once `tx` has
    /// committed), for any relay otherwise.
    pub async fn stage(
        &self,
        tx: &mut hub_storage::Tx<'_>,
        events: &[hub_domain::Envelope],
    ) -> hub_storage::Result<Staged> {
        let slot = self.slot(events.len());
        let rows = outbox::enqueue_unnotified(tx, events, slot.lease_secs()).await?;
        Ok(Staged(slot, rows))
    }
}

/// Where the outbox rows a producer writes itself go ([`Handoff::slot`]).
#[must_use = "publish the rows once they are committed"]
pub enum Slot {
    /// To this process's relay: write them leased to it.
    Leased(Reserved),
    /// The relay is full: write them unleased, for the claiming relay, which
    /// [`Slot::publish`] wakes (no NOTIFY on the hot path).
    Stored(Arc<tokio::sync::Notify>),
}

impl Slot {
    /// The lease to write the rows with (`None`: no lease).
    pub fn lease_secs(&self) -> Option<u32> {
        match self {
            Slot::Leased(_) => Some(HANDOFF_LEASE_SECS),
            Slot::Stored(_) => None,
        }
    }

    /// Hands the committed `rows` to the relay (call only after their
    /// transaction committed): leased ones to the hand-off, others by waking
    /// the claiming relay.
    pub fn publish(self, rows: Vec<Pending>) {
        if rows.is_empty() {
            return;
        }
        match self {
            Slot::Leased(room) => room.publish(rows),
            Slot::Stored(wake) => wake.notify_one(),
        }
    }
}

/// Outbox rows staged by [`Handoff::stage`], and where they go.
#[must_use = "publish them once the transaction has committed"]
pub struct Staged(Slot, Vec<Pending>);

impl Staged {
    /// Hands the rows to the relay ([`Slot::publish`]; call only after their
    /// transaction committed).
    pub fn publish(self) {
        self.0.publish(self.1);
    }
}

impl Reserved {
    /// Publishes `rows` soon (call only after their transaction committed).
    /// If the relay has stopped, their lease expires and another relay
    /// publishes them.
    fn publish(self, rows: Vec<Pending>) {
        let _ = self.tx.send((rows, self.permit));
    }
}

/// The relay's end of a [`Handoff`].
pub struct HandoffQueue(
    tokio::sync::mpsc::UnboundedReceiver<(Vec<Pending>, tokio::sync::OwnedSemaphorePermit)>,
    Arc<tokio::sync::Notify>,
);

impl HandoffQueue {
    /// What producers signal when they stored rows for the claiming relay
    /// (the hand-off was full): give it to [`run`] as [`RelayConfig::wake`].
    pub fn overflow_signal(&self) -> Arc<tokio::sync::Notify> {
        self.1.clone()
    }
}

/// A new hand-off pair: give the [`Handoff`] to producers and run
/// [`run_handoff`] with the queue.
/// `room` rows may wait to be published ([`HANDOFF_ROOM`] by default).
pub fn handoff(room: usize) -> (Handoff, HandoffQueue) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let room = Arc::new(tokio::sync::Semaphore::new(room));
    let overflow = Arc::new(tokio::sync::Notify::new());
    (
        Handoff {
            tx,
            room,
            overflow: overflow.clone(),
        },
        HandoffQueue(rx, overflow),
    )
}

/// Publishes handed-off rows until `shutdown` (and what is still handed
/// over then), up to [`HANDOFF_IN_FLIGHT`] batches at once: publish with
/// confirms, then delete. Rows it cannot publish are released to every relay,
/// which retries them with backoff.
pub async fn run_handoff(
    bus: Arc<Bus>,
    pool: PgPool,
    mut queue: HandoffQueue,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(HANDOFF_IN_FLIGHT));
    let mut running = tokio::task::JoinSet::new();
    let (retire_tx, retire_rx) = tokio::sync::mpsc::unbounded_channel();
    let retiring = tokio::spawn(retire(pool.clone(), retire_rx));
    // Open the publisher channel now rather than in the first events'
    // latency (best effort: publishing opens it too).
    let warming = bus.clone();
    tokio::spawn(async move {
        if let Err(e) = warming.warm_publisher().await {
            tracing::debug!(error = %e, "could not open the publisher channel at start-up");
        }
    });
    loop {
        let first = if shutdown.is_cancelled() {
            // Producers finishing their last work still hand rows over.
            tokio::time::timeout(Duration::from_millis(500), queue.0.recv())
                .await
                .ok()
                .flatten()
        } else {
            tokio::select! {
                r = queue.0.recv() => r,
                _ = shutdown.cancelled() => continue,
            }
        };
        let Some((mut rows, room)) = first else { break };
        let mut rooms = vec![room];
        while rows.len() < HANDOFF_BATCH {
            match queue.0.try_recv() {
                Ok((more, room)) => {
                    rows.extend(more);
                    rooms.push(room);
                }
                Err(_) => break,
            }
        }
        let permit = slots.clone().acquire_owned().await.expect("never closed");
        while running.try_join_next().is_some() {}
        let (bus, pool, retire_tx) = (bus.clone(), pool.clone(), retire_tx.clone());
        running.spawn(async move {
            publish_handed_off(&bus, &pool, rows, rooms, &retire_tx).await;
            drop(permit);
        });
    }
    while running.join_next().await.is_some() {}
    // What was published is deleted before the relay reports it stopped.
    drop(retire_tx);
    let _ = retiring.await;
    tracing::info!("outbox hand-off stopped");
}

/// Published rows to delete, and the room in the hand-off they hold until
/// they are deleted (so a relay whose deletes fall behind takes no more).
type Published = (Vec<uuid::Uuid>, Vec<tokio::sync::OwnedSemaphorePermit>);

/// Deletes published rows until every sender is gone: what arrived within
/// [`RETIRE_LINGER`] of the first, up to [`RETIRE_BATCH`], in one
/// statement.
async fn retire(pool: PgPool, mut rx: tokio::sync::mpsc::UnboundedReceiver<Published>) {
    while let Some((mut ids, mut rooms)) = rx.recv().await {
        let until = tokio::time::Instant::now() + RETIRE_LINGER;
        while ids.len() < RETIRE_BATCH {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some((more, room))) => {
                    ids.extend(more);
                    rooms.extend(room);
                }
                Ok(None) | Err(_) => break,
            }
        }
        if let Err(e) = outbox::delete_published(&pool, &ids).await {
            // Published but not deleted: the lease expires and they are
            // published again (at least once).
            tracing::warn!(error = %e, n = ids.len(), "could not delete handed-off events once published");
        }
        drop(rooms);
    }
}

/// The messages that publish outbox rows (the claim reads each row's
/// trace context with it; hand-offs carry the producer's).
fn outgoing(rows: Vec<Pending>) -> Vec<Outgoing> {
    rows.into_iter()
        .map(|r| Outgoing {
            id: r.id.to_string(),
            event_type: r.event_type,
            traceparent: r.traceparent,
            body: r.body,
        })
        .collect()
}

/// Publishes handed-off rows and passes them to [`retire`]; rows it cannot
/// publish are released to the claiming relays.
async fn publish_handed_off(
    bus: &Bus,
    pool: &PgPool,
    rows: Vec<Pending>,
    rooms: Vec<tokio::sync::OwnedSemaphorePermit>,
    retire: &tokio::sync::mpsc::UnboundedSender<Published>,
) {
    let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id.0).collect();
    let messages = outgoing(rows);
    match bus.publish(&messages).await {
        Ok(()) => {
            metrics::counter!("hub_bus_published_total").increment(ids.len() as u64);
            // The retiring task lives until every sender is dropped, so this
            // cannot fail; if it could, the lease would expire and the rows be
            // published again.
            let _ = retire.send((ids, rooms));
        }
        Err(e) => {
            tracing::warn!(error = %e, n = ids.len(), "publishing handed-off events failed; the relay retries them");
            if let Err(e) = outbox::release(pool, &ids, &e.to_string()).await {
                tracing::warn!(error = %e, "could not release handed-off events; their lease will expire");
            }
        }
    }
}
