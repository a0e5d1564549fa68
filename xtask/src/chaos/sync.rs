//! The sync part of a chaos run: FULL_SYNC jobs of HubSpot contacts from
//! the fake HubSpot, one after another, while the faults happen.
//!
//! A thread creates a job with `POST /api/v1/sync-jobs` (at either manager
//! replica; a refused connection or an error answer is tried again half a
//! second later, and a 409 naming the integration's active job means an
//! earlier try did create one, which is then followed), follows it with
//! `GET /api/v1/sync-jobs/{id}` until it ends, and starts the next one. A
//! job is *accepted* once its creation was answered, and must then end
//! COMPLETED having read every record of the fake exactly once: a job cut
//! short by a fault (a killed worker, Postgres or RabbitMQ gone) is taken
//! over when its lease lapses and resumes from its checkpoint. At the end
//! the hub must hold each of the fake's records once (`sync_records`).

use crate::bench_gateway::call;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a job is looked at.
const POLL: Duration = Duration::from_millis(250);

/// One job of the run.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    /// When its creation was answered.
    pub accepted: Instant,
    /// When it was seen to have ended, and how.
    pub ended: Option<(Instant, String)>,
    /// Records read, records taken (created, updated or unchanged), refused.
    pub counts: (u64, u64, u64),
    pub error: String,
}

impl Job {
    /// Whether it ended COMPLETED with every record read once and taken.
    pub fn clean(&self, records: u64) -> bool {
        matches!(&self.ended, Some((_, s)) if s == "COMPLETED")
            && self.counts == (records, records, 0)
    }
}

/// The sync load: where it goes and what became of it.
pub struct SyncLoad {
    managers: Vec<String>,
    auth: Vec<(String, String)>,
    pub tenant: hub_storage::TenantId,
    pub integration_id: uuid::Uuid,
    /// Contacts at the fake.
    pub records: u64,
    pub jobs: Mutex<Vec<Job>>,
    /// Failed creations (not accepted: tried again).
    pub refused: Mutex<(u64, Option<String>)>,
    stop: AtomicBool,
    abandon: AtomicBool,
}

impl SyncLoad {
    pub fn new(
        managers: Vec<String>,
        auth: Vec<(String, String)>,
        tenant: hub_storage::TenantId,
        integration_id: uuid::Uuid,
        records: u64,
    ) -> Self {
        Self {
            managers,
            auth,
            tenant,
            integration_id,
            records,
            jobs: Mutex::default(),
            refused: Mutex::default(),
            stop: AtomicBool::new(false),
            abandon: AtomicBool::new(false),
        }
    }

    /// Stops creating jobs; the one running is followed to its end.
    pub fn halt(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Stops following the job running too (the run is over).
    pub fn give_up(&self) {
        self.halt();
        self.abandon.store(true, Ordering::SeqCst);
    }

    /// Jobs ended (clean, not clean) and still running.
    pub fn counts(&self) -> (u64, u64, u64) {
        let jobs = self.jobs.lock().expect("lock");
        let ended = jobs.iter().filter(|j| j.ended.is_some());
        let clean = ended.clone().filter(|j| j.clean(self.records)).count() as u64;
        let ended = ended.count() as u64;
        (clean, ended - clean, jobs.len() as u64 - ended)
    }

    /// Whether a job accepted after `t` has ended cleanly.
    pub fn completed_since(&self, t: Instant) -> bool {
        self.jobs
            .lock()
            .expect("lock")
            .iter()
            .any(|j| j.accepted > t && j.clean(self.records))
    }

    /// Whether the job running (if any) has ended.
    pub fn idle(&self) -> bool {
        self.jobs
            .lock()
            .expect("lock")
            .last()
            .is_none_or(|j| j.ended.is_some())
    }

    fn auth(&self) -> Vec<(&str, &str)> {
        self.auth
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn refuse(&self, why: String) {
        let mut refused = self.refused.lock().expect("lock");
        refused.0 += 1;
        refused.1.get_or_insert(why);
    }

    /// Runs jobs one after another until [`SyncLoad::halt`]; call on a
    /// thread of its own.
    pub fn run(&self) {
        let mut n = 0usize;
        while !self.stop.load(Ordering::SeqCst) {
            n += 1;
            let Some(id) = self.create(n) else {
                std::thread::sleep(Duration::from_millis(500));
                continue;
            };
            self.follow(&id, n);
        }
    }

    /// Asks replica `n % 2` for a job; its id once one is accepted.
    fn create(&self, n: usize) -> Option<String> {
        let base = &self.managers[n % self.managers.len()];
        let body = serde_json::json!({
            "integration_id": self.integration_id, "job_type": "FULL_SYNC",
            "entity_type": "contacts", "confirm_deletions": false,
        });
        let url = format!("{base}/api/v1/sync-jobs");
        let id = match call("POST", &url, &self.auth(), Some(&body)) {
            Ok((201 | 202, job)) => job["id"].as_str().map(str::to_owned),
            // An earlier try was stored after all: that job is the one.
            Ok((409, problem)) => problem["active_job_id"].as_str().map(str::to_owned),
            Ok((status, answer)) => {
                self.refuse(format!("POST {url}: {status} {answer}"));
                None
            }
            Err(e) => {
                self.refuse(format!("{e:#}"));
                None
            }
        }?;
        let mut jobs = self.jobs.lock().expect("lock");
        if jobs.last().is_none_or(|j| j.id != id) {
            jobs.push(Job {
                id: id.clone(),
                accepted: Instant::now(),
                ended: None,
                counts: (0, 0, 0),
                error: String::new(),
            });
        }
        Some(id)
    }

    /// Polls the job (at either replica, errors ignored: the part may be
    /// down) until it ends.
    fn follow(&self, id: &str, n: usize) {
        let mut k = n;
        while !self.abandon.load(Ordering::SeqCst) {
            k += 1;
            let base = &self.managers[k % self.managers.len()];
            let url = format!("{base}/api/v1/sync-jobs/{id}");
            if let Ok((200, job)) = call("GET", &url, &self.auth(), None) {
                let status = job["status"].as_str().unwrap_or_default().to_owned();
                if !["PENDING", "RUNNING"].contains(&status.as_str()) {
                    let count = |k: &str| job[k].as_u64().unwrap_or_default();
                    let mut jobs = self.jobs.lock().expect("lock");
                    if let Some(j) = jobs.iter_mut().rev().find(|j| j.id == id) {
                        j.ended = Some((Instant::now(), status));
                        j.counts = (
                            count("processed_records"),
                            count("success_count"),
                            count("error_count"),
                        );
                        j.error = job["error_message"].as_str().unwrap_or_default().to_owned();
                    }
                    return;
                }
            }
            std::thread::sleep(POLL);
        }
    }
}
