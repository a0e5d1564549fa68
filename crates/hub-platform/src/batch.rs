//! Group commit: request handlers hand their work to a few writer tasks and
//! wait; each writer takes everything queued (up to a batch size), handles it
//! in one go (one transaction, one commit) and answers every waiter. While one
//! batch commits the next one fills, so one commit serves many requests, and
//! several writers keep commits overlapping.

use std::future::Future;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The batcher stopped (the service is shutting down): nothing was done.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the writer has stopped")]
pub struct Stopped;

type Job<J, R> = (J, oneshot::Sender<R>);

/// The handle request handlers submit through (cheap to clone).
pub struct Batcher<J, R> {
    tx: mpsc::Sender<Job<J, R>>,
}

impl<J, R> Clone for Batcher<J, R> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

/// How a [`Batcher`] runs.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Jobs waiting at most (submitters wait beyond that: back-pressure).
    pub queue: usize,
    /// Writer tasks.
    pub writers: usize,
    /// Most jobs in one batch.
    pub max_batch: usize,
    /// How long a writer waits for more jobs after the first before it
    /// writes a batch that is not full (zero: write what is queued at once).
    /// Fuller batches cost far fewer round trips when traffic is moderate.
    pub linger: std::time::Duration,
}

impl<J: Send + 'static, R: Send + 'static> Batcher<J, R> {
    /// Starts `config.writers` writers that call `write` with each batch;
    /// `write` returns one result per job, in order. After `shutdown` the
    /// writers take what is still handed over for half a second, then stop.
    pub fn spawn<F, Fut>(
        config: BatchConfig,
        shutdown: CancellationToken,
        write: F,
    ) -> (Self, JoinHandle<()>)
    where
        F: Fn(Vec<J>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Job<J, R>>(config.queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let write = Arc::new(write);
        let writers: Vec<_> = (0..config.writers.max(1))
            .map(|_| {
                let rx = rx.clone();
                let write = write.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    while let Some(jobs) =
                        next_batch(&rx, config.max_batch, config.linger, &shutdown).await
                    {
                        metrics::histogram!("hub_group_commit_batch_size")
                            .record(jobs.len() as f64);
                        let (jobs, answers): (Vec<J>, Vec<oneshot::Sender<R>>) =
                            jobs.into_iter().unzip();
                        let results = write(jobs).await;
                        debug_assert_eq!(results.len(), answers.len());
                        for (answer, r) in answers.into_iter().zip(results) {
                            let _ = answer.send(r);
                        }
                    }
                })
            })
            .collect();
        let all = tokio::spawn(async move {
            futures::future::join_all(writers).await;
        });
        (Self { tx }, all)
    }

    /// Hands `job` to a writer and waits for its result.
    pub async fn submit(&self, job: J) -> Result<R, Stopped> {
        let (answer, wait) = oneshot::channel();
        self.tx.send((job, answer)).await.map_err(|_| Stopped)?;
        wait.await.map_err(|_| Stopped)
    }
}

async fn next_batch<J, R>(
    rx: &Mutex<mpsc::Receiver<Job<J, R>>>,
    max: usize,
    linger: std::time::Duration,
    shutdown: &CancellationToken,
) -> Option<Vec<Job<J, R>>> {
    let mut rx = rx.lock().await;
    let first = tokio::select! {
        j = rx.recv() => j,
        _ = shutdown.cancelled() => {
            // Take what handlers still hand over while the server stops.
            tokio::time::timeout(std::time::Duration::from_millis(500), rx.recv())
                .await
                .unwrap_or_default()
        }
    }?;
    let mut jobs = Vec::with_capacity(max.min(64));
    jobs.push(first);
    let until = tokio::time::Instant::now() + linger;
    while jobs.len() < max {
        match rx.try_recv() {
            Ok(j) => jobs.push(j),
            Err(_) if linger.is_zero() || shutdown.is_cancelled() => break,
            Err(_) => match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(j)) => jobs.push(j),
                Ok(None) | Err(_) => break,
            },
        }
    }
    Some(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_jobs_share_batches_and_each_gets_its_own_answer() {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let (b, _h) = Batcher::spawn(
            BatchConfig {
                queue: 1000,
                writers: 1,
                max_batch: 50,
                linger: std::time::Duration::ZERO,
            },
            CancellationToken::new(),
            move |jobs: Vec<u32>| {
                seen.lock().unwrap().push(jobs.len());
                async move {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    jobs.into_iter().map(|j| j * 2).collect::<Vec<_>>()
                }
            },
        );
        let all: Vec<_> = (0..200u32)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { (i, b.submit(i).await.unwrap()) })
            })
            .collect();
        for h in all {
            let (i, r) = h.await.unwrap();
            assert_eq!(r, i * 2);
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 200);
        assert!(sizes.iter().all(|n| *n <= 50));
        assert!(sizes.len() < 200, "jobs were never grouped: {sizes:?}");
    }

    #[tokio::test]
    async fn a_stopped_writer_answers_stopped() {
        let stop = CancellationToken::new();
        let (b, h) = Batcher::spawn(
            BatchConfig {
                queue: 10,
                writers: 2,
                max_batch: 10,
                linger: std::time::Duration::ZERO,
            },
            stop.clone(),
            |jobs: Vec<u8>| async move { jobs },
        );
        assert_eq!(b.submit(7).await.unwrap(), 7);
        stop.cancel();
        h.await.unwrap();
        assert!(b.submit(1).await.is_err());
    }
}
