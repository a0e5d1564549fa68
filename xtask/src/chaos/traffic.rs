//! The steady load of a chaos run and what became of it.
//!
//! Outbound: new `order.created` events posted to `POST /api/v1/events`,
//! alternately to each dispatcher replica, for a subscription that points
//! at the receiver. Inbound: freshly signed Standard Webhooks requests to
//! the tenant's inbound endpoint, alternately to each manager replica. A
//! request whose replica refuses the connection (it is down, nothing was
//! sent) goes to the other one, as a load balancer would send it; one that
//! got no answer or an error answer is not accepted, and counted as failed.
//! [`Tracker`] matches the receiver's arrivals with the accepted events.

use crate::bench::receiver::Recorded;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// A request without an answer after this long counts as failed.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Requests of one kind in flight at most; a tick beyond it is skipped.
const IN_FLIGHT: usize = 256;

/// Where the load goes and what it saw.
pub struct Traffic {
    pub tenant: uuid::Uuid,
    /// The tenant's API key.
    api_key: String,
    /// `http://…/api/v1/events` of each dispatcher replica.
    pub events_urls: Vec<String>,
    /// `http://…/webhooks/<tenant>/chaos` of each manager replica.
    pub inbound_urls: Vec<String>,
    /// The inbound endpoint's signing key.
    pub inbound_key: Vec<u8>,
    pub events_accepted: Mutex<Vec<(u128, Instant)>>,
    pub events_failed: AtomicU64,
    pub inbound_accepted: Mutex<Vec<(uuid::Uuid, Instant)>>,
    pub inbound_failed: AtomicU64,
    /// Ticks skipped because too many requests were in flight.
    pub skipped: AtomicU64,
    pub first_error: Mutex<Option<String>>,
    stop: AtomicBool,
}

impl Traffic {
    pub fn new(
        tenant: uuid::Uuid,
        api_key: String,
        events_urls: Vec<String>,
        inbound_urls: Vec<String>,
        inbound_key: Vec<u8>,
    ) -> Self {
        Self {
            tenant,
            api_key,
            events_urls,
            inbound_urls,
            inbound_key,
            events_accepted: Mutex::default(),
            events_failed: AtomicU64::new(0),
            inbound_accepted: Mutex::default(),
            inbound_failed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            first_error: Mutex::default(),
            stop: AtomicBool::new(false),
        }
    }

    /// Stops the load (requests in flight finish).
    pub fn halt(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Events accepted so far, requests failed so far.
    pub fn events(&self) -> (u64, u64) {
        (
            self.events_accepted.lock().expect("lock").len() as u64,
            self.events_failed.load(Ordering::Relaxed),
        )
    }

    /// Inbound requests accepted so far, failed so far.
    pub fn inbound(&self) -> (u64, u64) {
        (
            self.inbound_accepted.lock().expect("lock").len() as u64,
            self.inbound_failed.load(Ordering::Relaxed),
        )
    }

    /// When the last inbound request was accepted.
    pub fn last_inbound(&self) -> Option<Instant> {
        self.inbound_accepted
            .lock()
            .expect("lock")
            .last()
            .map(|(_, at)| *at)
    }

    fn note_error(&self, e: String) {
        let mut first = self.first_error.lock().expect("lock");
        if first.is_none() {
            *first = Some(e);
        }
    }

    /// Runs both loads, `events_per_sec` and `inbound_per_sec`, until [`Traffic::halt`].
    pub async fn run(self: Arc<Self>, events_per_sec: u32, inbound_per_sec: u32) {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(TIMEOUT)
            .build()
            .expect("a reqwest client");
        let events = tokio::spawn(self.clone().pace(events_per_sec, {
            let client = client.clone();
            move |t: Arc<Self>, n| {
                let client = client.clone();
                async move { t.post_event(&client, n).await }
            }
        }));
        let inbound = tokio::spawn(self.clone().pace(inbound_per_sec, {
            move |t: Arc<Self>, n| {
                let client = client.clone();
                async move { t.post_inbound(&client, n).await }
            }
        }));
        let _ = events.await;
        let _ = inbound.await;
    }

    /// Calls `send` `per_sec` times a second, each in its own task, until halted;
    /// then waits for those in flight.
    async fn pace<F, Fut>(self: Arc<Self>, per_sec: u32, send: F)
    where
        F: Fn(Arc<Self>, u64) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut tick =
            tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_sec.max(1))));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut n = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            tick.tick().await;
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let work = send(self.clone(), n);
            n += 1;
            tokio::spawn(async move {
                work.await;
                drop(permit);
            });
        }
        let _ = slots.acquire_many(IN_FLIGHT as u32).await;
    }

    /// Posts one new event, to replica `n % 2` (the other one if it refuses
    /// the connection).
    async fn post_event(&self, client: &reqwest::Client, n: u64) {
        let id = uuid::Uuid::now_v7();
        let body = crate::bench::load::envelope(id, self.tenant);
        let urls = &self.events_urls;
        let first = n as usize % urls.len();
        let mut result = Err(String::new());
        for i in 0..urls.len() {
            let url = &urls[(first + i) % urls.len()];
            let sent = client
                .post(url)
                .bearer_auth(&self.api_key)
                .header("x-tenant-id", self.tenant.to_string())
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            result = match sent {
                Ok(res) if res.status().as_u16() == 202 => Ok(Instant::now()),
                Ok(res) => Err(format!("POST {url} answered {}", res.status())),
                Err(e) if e.is_connect() => continue,
                Err(e) => Err(format!("POST {url}: {e}")),
            };
            break;
        }
        match result {
            Ok(at) => self
                .events_accepted
                .lock()
                .expect("lock")
                .push((id.as_u128(), at)),
            Err(e) => {
                self.events_failed.fetch_add(1, Ordering::Relaxed);
                self.note_error(if e.is_empty() {
                    "POST /api/v1/events: every dispatcher refused the connection".into()
                } else {
                    e
                });
            }
        }
    }

    /// Sends one freshly signed inbound webhook, to replica `n % 2` (the
    /// other one if it refuses the connection).
    async fn post_inbound(&self, client: &reqwest::Client, n: u64) {
        let msg_id = format!("msg_chaos_{}", uuid::Uuid::now_v7().simple());
        let body = format!(
            r#"{{"type":"load.updated","data":{{"load_id":"L-{n}","status":"IN_TRANSIT"}}}}"#
        );
        let urls = &self.inbound_urls;
        let first = n as usize % urls.len();
        let mut result = Err(String::new());
        for i in 0..urls.len() {
            let url = &urls[(first + i) % urls.len()];
            let timestamp = unix_now().to_string();
            let signature = sign(&self.inbound_key, &msg_id, &timestamp, &body);
            let sent = client
                .post(url)
                .header("content-type", "application/json")
                .header("webhook-id", &msg_id)
                .header("webhook-timestamp", timestamp)
                .header("webhook-signature", signature)
                .body(body.clone())
                .send()
                .await;
            result = match sent {
                Ok(res) if res.status().as_u16() == 200 => {
                    let at = Instant::now();
                    let json: serde_json::Value = res.json().await.unwrap_or_default();
                    match json["id"].as_str().and_then(|s| s.parse().ok()) {
                        Some(id) => Ok((id, at)),
                        None => Err(format!("POST {url} answered 200 without an id: {json}")),
                    }
                }
                Ok(res) => Err(format!("POST {url} answered {}", res.status())),
                Err(e) if e.is_connect() => continue,
                Err(e) => Err(format!("POST {url}: {e}")),
            };
            break;
        }
        match result {
            Ok(accepted) => self.inbound_accepted.lock().expect("lock").push(accepted),
            Err(e) => {
                self.inbound_failed.fetch_add(1, Ordering::Relaxed);
                self.note_error(if e.is_empty() {
                    "POST /webhooks/…: every manager refused the connection".into()
                } else {
                    e
                });
            }
        }
    }
}

/// `v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>` (Standard Webhooks).
pub fn sign(key: &[u8], msg_id: &str, timestamp: &str, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(format!("{msg_id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The accepted events matched with the receiver's arrivals, as they come.
#[derive(Default)]
pub struct Tracker {
    /// Arrivals seen per event id (of the envelope in the body), and when
    /// the first one came.
    arrived: HashMap<u128, (u32, Instant)>,
    /// Accepted events not delivered yet, with when they were accepted.
    pub pending: HashMap<u128, Instant>,
    /// Accepted events delivered.
    pub delivered: u64,
    /// Arrivals of an event that had arrived before.
    pub duplicates: u64,
    /// Per duplicate, when the first arrival of its event came: the
    /// delivery whose outcome was not recorded.
    pub duplicate_firsts: Vec<Instant>,
    /// When the newest accepted event that has been delivered was accepted.
    pub newest_delivered: Option<Instant>,
    arrivals_seen: usize,
    accepted_seen: usize,
    accepted_at: HashMap<u128, Instant>,
}

impl Tracker {
    /// Takes in the arrivals and acceptances since the last call; returns the
    /// duplicates among the new arrivals.
    pub fn update(&mut self, traffic: &Traffic, recorded: &Recorded) -> u64 {
        let new_accepted: Vec<(u128, Instant)> = {
            let accepted = traffic.events_accepted.lock().expect("lock");
            let new = accepted[self.accepted_seen..].to_vec();
            self.accepted_seen = accepted.len();
            new
        };
        for (id, at) in new_accepted {
            self.accepted_at.insert(id, at);
            if self.arrived.contains_key(&id) {
                self.mark_delivered(at);
            } else {
                self.pending.insert(id, at);
            }
        }
        let arrivals = recorded.arrivals_since(0, self.arrivals_seen);
        self.arrivals_seen += arrivals.len();
        let mut duplicates = 0;
        for a in arrivals {
            let (count, first) = self.arrived.entry(a.body_id).or_insert((0, a.at));
            *count += 1;
            if *count > 1 {
                duplicates += 1;
                self.duplicate_firsts.push(*first);
                continue;
            }
            if let Some(at) = self.pending.remove(&a.body_id) {
                self.mark_delivered(at);
            }
        }
        self.duplicates += duplicates;
        duplicates
    }

    fn mark_delivered(&mut self, accepted_at: Instant) {
        self.delivered += 1;
        self.newest_delivered = Some(match self.newest_delivered {
            Some(t) => t.max(accepted_at),
            None => accepted_at,
        });
    }

    /// Events delivered that no accepted answer was seen for (their request
    /// failed, e.g. by timing out, after the dispatcher had stored them).
    pub fn unconfirmed(&self) -> u64 {
        self.arrived
            .keys()
            .filter(|id| !self.accepted_at.contains_key(id))
            .count() as u64
    }

    /// Whether every event accepted up to `t` has been delivered.
    pub fn delivered_all_until(&self, t: Instant) -> bool {
        self.pending.values().all(|at| *at > t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The Standard Webhooks reference vector (shared/vectors/signatures.json).
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                "1614265330",
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
