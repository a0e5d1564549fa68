//! Waking background loops on `NOTIFY`, with polling as the safety net.
//!
//! A loop that works a Postgres queue checks it, then waits on a [`Wakeup`]
//! until a producer's `NOTIFY` on the queue's channel arrives or its poll
//! interval passes, and checks again. The wait never fails: without a live
//! listener (Postgres down, connection lost) it polls, and it listens again
//! on a later wait.

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::time::Duration;

/// Why [`Wakeup::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// A notification arrived.
    Notified,
    /// The wait's `max` passed (or there was no listener and it polled).
    Elapsed,
    /// The listener's connection was lost: notifications sent meanwhile are
    /// missed, so look at once; the next wait listens again.
    Lost,
}

/// A LISTEN on one channel that reconnects on the next wait after its
/// connection drops.
pub struct Wakeup {
    pool: PgPool,
    channel: &'static str,
    listener: Option<PgListener>,
}

impl Wakeup {
    /// A wakeup on `channel` of `pool`'s database (it connects on first use).
    pub fn new(pool: PgPool, channel: &'static str) -> Self {
        Self {
            pool,
            channel,
            listener: None,
        }
    }

    /// Whether a listener is up (notifications are being received).
    pub fn is_listening(&self) -> bool {
        self.listener.is_some()
    }

    /// Listens unless it already does; `Ok(true)` when it has just started.
    /// A caller that looked at its queue before then looks once more: what
    /// was committed in between notified nobody.
    pub async fn listen(&mut self) -> crate::Result<bool> {
        if self.listener.is_some() {
            return Ok(false);
        }
        let mut l = PgListener::connect_with(&self.pool).await?;
        l.listen(self.channel).await?;
        self.listener = Some(l);
        Ok(true)
    }

    /// Waits until a notification arrives or `max` passes, listening first
    /// if it does not (within `max`; failing that, it sleeps out the rest).
    /// A lost connection returns [`Woken::Lost`] at once.
    pub async fn wait(&mut self, max: Duration) -> Woken {
        let woken = tokio::time::timeout(max, async {
            if self.listen().await.is_err() {
                return std::future::pending().await;
            }
            let l = self.listener.as_mut().expect("listening");
            match l.try_recv().await {
                Ok(Some(_)) => Woken::Notified,
                Ok(None) => Woken::Lost,
                Err(e) => {
                    tracing::debug!(channel = self.channel, error = %e, "listener failed");
                    Woken::Lost
                }
            }
        })
        .await
        .unwrap_or(Woken::Elapsed);
        if woken == Woken::Lost {
            tracing::debug!(
                channel = self.channel,
                "listener lost; polling until it is back"
            );
            self.listener = None;
        }
        woken
    }
}
