//! Group commit: request handlers hand their work to a few writer tasks and
//! wait; each writer takes everything queued (up to a batch size), handles it
//! in one go (one transaction, one commit) and answers every waiter. While one
//! batch commits the next one fills, so one commit serves many requests, and
//! several writers keep commits overlapping.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Jobs handed over and not yet answered, in every writer.
    in_flight: Arc<AtomicUsize>,
}

impl<J, R> Clone for Batcher<J, R> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            in_flight: self.in_flight.clone(),
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
    /// A writer lingers only while other jobs are in flight: a lone job (a
    /// single client sending one request after another) is written at once,
    /// since nothing else is coming to share its commit.
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
        let in_flight = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..config.writers.max(1))
            .map(|_| {
                let rx = rx.clone();
                let write = write.clone();
                let shutdown = shutdown.clone();
                let in_flight = in_flight.clone();
                tokio::spawn(async move {
                    while let Some(jobs) =
                        next_batch(&rx, config.max_batch, config.linger, &in_flight, &shutdown)
                            .await
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
        (Self { tx, in_flight }, all)
    }

    /// Hands `job` to a writer and waits for its result.
    pub async fn submit(&self, job: J) -> Result<R, Stopped> {
        let (answer, wait) = oneshot::channel();
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        // Counted down however this ends (answered, stopped, cancelled).
        let _done = InFlight(&self.in_flight);
        self.tx.send((job, answer)).await.map_err(|_| Stopped)?;
        wait.await.map_err(|_| Stopped)
    }
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn next_batch<J, R>(
    rx: &Mutex<mpsc::Receiver<Job<J, R>>>,
    max: usize,
    linger: std::time::Duration,
    in_flight: &AtomicUsize,
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
            Err(_)
                if linger.is_zero()
                    || shutdown.is_cancelled()
                    || in_flight.load(Ordering::Relaxed) <= jobs.len() =>
            {
                break;
            }
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

    /// A batcher with `writers` writers whose writes take `write_ms`; the
    /// sizes of the batches it wrote.
    fn recording(
        writers: usize,
        linger: std::time::Duration,
        write_ms: u64,
    ) -> (Batcher<u32, u32>, Arc<std::sync::Mutex<Vec<usize>>>) {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let (b, _h) = Batcher::spawn(
            BatchConfig {
                queue: 100,
                writers,
                max_batch: 50,
                linger,
            },
            CancellationToken::new(),
            move |jobs: Vec<u32>| {
                seen.lock().unwrap().push(jobs.len());
                async move {
                    tokio::time::sleep(std::time::Duration::from_millis(write_ms)).await;
                    jobs
                }
            },
        );
        (b, sizes)
    }

    #[tokio::test]
    async fn a_lone_job_does_not_wait_out_the_linger() {
        // One job after another, as a single client sends them: none waits
        // for the 10-minute linger.
        let (b, sizes) = recording(1, std::time::Duration::from_secs(600), 0);
        for i in 0..3 {
            let r = tokio::time::timeout(std::time::Duration::from_secs(30), b.submit(i)).await;
            assert_eq!(r.expect("answered without lingering").unwrap(), i);
        }
        assert_eq!(*sizes.lock().unwrap(), vec![1, 1, 1]);
    }

    #[tokio::test]
    async fn a_job_arriving_while_others_are_in_flight_lingers_for_company() {
        // 10 is written alone (nothing else in flight); 11 arrives while 10
        // is being written, so its writer waits and 12 joins it.
        let (b, sizes) = recording(2, std::time::Duration::from_millis(500), 200);
        let later = |ms: u64, job: u32| {
            let b = b.clone();
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                b.submit(job).await.unwrap()
            }
        };
        let answers = tokio::join!(later(0, 10), later(30, 11), later(60, 12));
        assert_eq!(answers, (10, 11, 12));
        assert_eq!(*sizes.lock().unwrap(), vec![1, 2]);
    }

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
