//! The outbox relay: publishes what services wrote to `outbox`, then marks it.
//!
//! Rows are claimed with `FOR UPDATE SKIP LOCKED` inside a transaction that
//! stays open while the batch is published and confirmed; they are marked only
//! after every confirm. If the relay, the broker or the database fails midway
//! the transaction rolls back and the rows are published again later: at least
//! once, never zero times. Any number of relays (one per service replica) can
//! run at once.

use crate::{Bus, BusError, Outgoing};
use hub_storage::outbox;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
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
    /// Published rows are deleted after this long.
    pub retention: Duration,
    /// How long the relay lets rows gather after a notification before it
    /// claims them: fuller batches, for a few milliseconds of latency.
    pub linger: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch: 500,
            poll: Duration::from_secs(2),
            retention: Duration::from_secs(24 * 3600),
            linger: Duration::from_millis(10),
        }
    }
}

/// Runs the relay until `shutdown`; the batch in flight is finished first.
pub async fn run(bus: Arc<Bus>, pool: PgPool, config: RelayConfig, shutdown: CancellationToken) {
    let mut listener: Option<PgListener> = None;
    let mut backoff = crate::consumer::reconnect_backoff();
    let mut last_prune = tokio::time::Instant::now();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        match drain(&bus, &pool, config.batch).await {
            Ok(n) => {
                if n > 0 {
                    tracing::debug!(published = n, "outbox relayed");
                }
                backoff::backoff::Backoff::reset(&mut backoff);
            }
            Err(e) => {
                let wait = backoff::backoff::Backoff::next_backoff(&mut backoff)
                    .unwrap_or(Duration::from_secs(10));
                tracing::error!(error = %e, wait_ms = wait.as_millis() as u64, "outbox relay failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = shutdown.cancelled() => break,
                }
            }
        }
        if last_prune.elapsed() > Duration::from_secs(60) {
            last_prune = tokio::time::Instant::now();
            if let Err(e) =
                outbox::prune_published(&pool, config.retention.as_secs() as i64, 5_000).await
            {
                tracing::warn!(error = %e, "outbox prune failed");
            }
        }
        if listener.is_none() {
            listener = listen(&pool).await;
        }
        let wait = tokio::time::sleep(config.poll);
        match listener.as_mut() {
            Some(l) => tokio::select! {
                r = l.recv() => match r {
                    Ok(_) => tokio::select! {
                        _ = tokio::time::sleep(config.linger) => {}
                        _ = shutdown.cancelled() => {}
                    },
                    Err(e) => {
                        tracing::debug!(error = %e, "outbox listener lost; polling until it is back");
                        listener = None;
                    }
                },
                _ = wait => {}
                _ = shutdown.cancelled() => break,
            },
            None => tokio::select! {
                _ = wait => {}
                _ = shutdown.cancelled() => break,
            },
        }
    }
    tracing::info!("outbox relay stopped");
}

async fn listen(pool: &PgPool) -> Option<PgListener> {
    let mut l = PgListener::connect_with(pool).await.ok()?;
    l.listen(outbox::CHANNEL).await.ok()?;
    Some(l)
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
    let messages: Vec<Outgoing> = rows
        .iter()
        .map(|r| Outgoing {
            id: r.id.to_string(),
            event_type: r.event_type.clone(),
            traceparent: serde_json::from_slice::<serde_json::Value>(&r.body)
                .ok()
                .and_then(|v| {
                    v.get("traceparent")
                        .and_then(|t| t.as_str())
                        .map(str::to_owned)
                }),
            body: r.body.clone(),
        })
        .collect();
    let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id.0).collect();
    if let Err(e) = bus.publish(&messages).await {
        drop(tx);
        let _ = outbox::record_failure(pool, &ids, &e.to_string()).await;
        return Err(e);
    }
    outbox::mark_published(&mut tx, &ids).await?;
    tx.commit().await.map_err(hub_storage::StorageError::from)?;
    metrics::counter!("hub_bus_published_total").increment(rows.len() as u64);
    Ok(rows.len())
}
