//! The load generator: events through both real intake paths, half each —
//! `POST /api/v1/events` on the dispatcher and an AMQP publish to the hub's
//! exchange with publisher confirms — and, for scenarios `intake`,
//! `intake-idempotent` and `intake-replay`, the senders of
//! `POST /api/v1/events` alone ([`IntakeSender`]).

use super::levels;
use super::receiver::Recorded;
use chrono::{SecondsFormat, Utc};
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Channel, Confirmation};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// The event type sent (every bench subscription matches `order.*`).
pub const EVENT_TYPE: &str = "order.created";
/// The event's `data`: a small order.
const DATA: &str = r#"{"order_id":"ORD-BENCH","status":"created","customer":"Bench Freight","total_cents":125000,"currency":"USD","lines":3}"#;
/// Concurrent `POST /api/v1/events` requests.
pub const HTTP_CONCURRENCY: usize = 32;
/// AMQP publishes awaiting their confirm.
pub const AMQP_IN_FLIGHT: usize = 512;
/// How far one path may run ahead of the other, so each carries half.
const PATH_SLACK: u64 = 256;
/// A request that takes longer than this counts as a send error.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How fast events are pushed.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// As fast as the system absorbs them, with at most this many events sent
    /// but not yet delivered (to every subscription).
    Open { max_backlog: u64 },
    /// A fixed rate in events per second (both paths together).
    Rate { per_sec: u64 },
}

/// Which intake an event takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    Http,
    Amqp,
}

/// One scenario's load: pacing, and what was sent and accepted.
pub struct Load {
    scenario: usize,
    subscriptions: u64,
    pace: Pace,
    pub start: Instant,
    pub end: Instant,
    tenant: uuid::Uuid,
    recorded: Arc<Recorded>,
    issued_http: AtomicU64,
    issued_amqp: AtomicU64,
    accepted: Mutex<Vec<(u128, Instant)>>,
    pub accepted_http: AtomicU64,
    pub accepted_amqp: AtomicU64,
    pub rejected: AtomicU64,
    pub send_errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    stop: AtomicBool,
}

impl Load {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        scenario: usize,
        subscriptions: usize,
        pace: Pace,
        duration: Duration,
        tenant: uuid::Uuid,
        recorded: Arc<Recorded>,
    ) -> Self {
        let start = Instant::now();
        Self {
            scenario,
            subscriptions: subscriptions as u64,
            pace,
            start,
            end: start + duration,
            tenant,
            recorded,
            issued_http: AtomicU64::new(0),
            issued_amqp: AtomicU64::new(0),
            accepted: Mutex::new(Vec::with_capacity(1 << 16)),
            accepted_http: AtomicU64::new(0),
            accepted_amqp: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
            stop: AtomicBool::new(false),
        }
    }

    /// Events accepted so far (both paths).
    pub fn accepted(&self) -> u64 {
        self.accepted_http.load(Ordering::Relaxed) + self.accepted_amqp.load(Ordering::Relaxed)
    }

    /// Events sent so far, accepted or not yet answered.
    pub fn issued(&self) -> u64 {
        self.issued_http.load(Ordering::Relaxed) + self.issued_amqp.load(Ordering::Relaxed)
    }

    /// Events sent (and not refused) but not yet delivered to every subscription.
    pub fn backlog(&self) -> u64 {
        let delivered = self.recorded.count(self.scenario) / self.subscriptions.max(1);
        let refused =
            self.rejected.load(Ordering::Relaxed) + self.send_errors.load(Ordering::Relaxed);
        self.issued().saturating_sub(refused + delivered)
    }

    /// The accepted events: id and when the acceptance was seen.
    pub fn take_accepted(&self) -> Vec<(u128, Instant)> {
        std::mem::take(&mut *self.accepted.lock().expect("accepted lock"))
    }

    /// The first error any sender saw.
    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().expect("error lock").clone()
    }

    /// Stops every sender (at the end of the window, on Ctrl-C or a fatal error).
    pub fn halt(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    fn halted(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn note_error(&self, msg: String) {
        let mut first = self.first_error.lock().expect("error lock");
        if first.is_none() {
            *first = Some(msg);
        }
    }

    fn accept(&self, id: u128, via: Intake) {
        let at = Instant::now();
        self.accepted.lock().expect("accepted lock").push((id, at));
        match via {
            Intake::Http => &self.accepted_http,
            Intake::Amqp => &self.accepted_amqp,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// A new event: its id (as a number and as text) and its JSON.
    fn event(&self) -> (u128, String, Vec<u8>) {
        let id = uuid::Uuid::now_v7();
        (id.as_u128(), id.to_string(), envelope(id, self.tenant))
    }

    /// Waits for the next event's turn on `via`; false when the load is over.
    async fn next_slot(&self, via: Intake) -> bool {
        let (own, other) = match via {
            Intake::Http => (&self.issued_http, &self.issued_amqp),
            Intake::Amqp => (&self.issued_amqp, &self.issued_http),
        };
        match self.pace {
            Pace::Rate { per_sec } => {
                // Each path carries every other slot of one evenly spaced schedule.
                let i = own.fetch_add(1, Ordering::Relaxed);
                let slot = 2 * i + u64::from(via == Intake::Amqp);
                let due = self.start + Duration::from_secs_f64(slot as f64 / per_sec as f64);
                if due >= self.end || self.halted() {
                    own.fetch_sub(1, Ordering::Relaxed);
                    return false;
                }
                tokio::time::sleep_until(due.into()).await;
                !self.halted()
            }
            Pace::Open { max_backlog } => loop {
                if self.halted() || Instant::now() >= self.end {
                    return false;
                }
                let balanced =
                    own.load(Ordering::Relaxed) <= other.load(Ordering::Relaxed) + PATH_SLACK;
                if balanced && self.backlog() < max_backlog {
                    own.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            },
        }
    }
}

/// Starts the HTTP senders: `POST {dispatcher}/api/v1/events` with the
/// tenant's key (set as the client's default headers).
pub fn spawn_http(load: &Arc<Load>, client: &reqwest::Client, url: &str) -> Vec<JoinHandle<()>> {
    (0..HTTP_CONCURRENCY)
        .map(|_| {
            let (load, client, url) = (load.clone(), client.clone(), url.to_owned());
            tokio::spawn(async move {
                while load.next_slot(Intake::Http).await {
                    let (id, _, body) = load.event();
                    match post_event(&client, &url, body, None).await {
                        Ok(_) => load.accept(id, Intake::Http),
                        Err(Refused::Answer(e)) => {
                            load.rejected.fetch_add(1, Ordering::Relaxed);
                            load.note_error(e);
                        }
                        Err(Refused::NoAnswer(e)) => {
                            load.send_errors.fetch_add(1, Ordering::Relaxed);
                            load.note_error(e);
                        }
                    }
                }
            })
        })
        .collect()
}

/// Why `POST /api/v1/events` did not accept an event, in words.
pub enum Refused {
    /// The dispatcher answered other than 202.
    Answer(String),
    /// No answer: a connection error or a timeout.
    NoAnswer(String),
}

/// What a 202 said: when it came, and whether it was the stored answer to
/// an earlier request with the same `Idempotency-Key`.
pub struct Accepted {
    pub at: Instant,
    pub replayed: bool,
}

/// Posts one event to `url` (`POST /api/v1/events`, the headers being the
/// client's defaults, with `key` as its `Idempotency-Key`) and reads the
/// whole answer, so the connection goes back to the pool; when the 202
/// came, or why there was none.
pub async fn post_event(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    key: Option<&str>,
) -> Result<Accepted, Refused> {
    let mut req = client.post(url).body(body);
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    match req.send().await {
        Ok(res) if res.status().as_u16() == 202 => {
            let at = Instant::now();
            let replayed = res
                .headers()
                .get("idempotent-replayed")
                .is_some_and(|v| v.as_bytes() == b"true");
            // Accepted with the 202, whatever becomes of its body.
            let _ = res.bytes().await;
            Ok(Accepted { at, replayed })
        }
        Ok(res) => {
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            Err(Refused::Answer(format!(
                "POST /api/v1/events answered {status}: {}",
                text.chars().take(300).collect::<String>()
            )))
        }
        Err(e) => Err(Refused::NoAnswer(format!(
            "POST /api/v1/events failed: {e}"
        ))),
    }
}

/// Whether the requests of an intake scenario carry an `Idempotency-Key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// No key (scenario `intake`).
    None,
    /// A new key with every new event, as a client that may retry safely
    /// sends (scenario `intake-idempotent`): each request stores its key
    /// and its answer along with the event.
    Fresh,
    /// One keyed request per connection, sent again and again (scenario
    /// `intake-replay`): the first stores the event, every later one must
    /// be answered with the stored 202 (`Idempotent-Replayed: true`).
    Replay,
}

/// One connection of the intake scenarios: posts a new `order.created`
/// event per request (or, replaying, the same one) on a client shared with
/// the level's other connections, and keeps each accepted one's id and when
/// its 202 came (for the delivery check and its latency).
pub struct IntakeSender {
    client: reqwest::Client,
    url: Arc<str>,
    tenant: uuid::Uuid,
    keys: KeyUse,
    /// The event this connection replays (id and body), once sent.
    replayed: Option<(uuid::Uuid, Vec<u8>)>,
}

impl IntakeSender {
    pub fn new(client: &reqwest::Client, url: &Arc<str>, tenant: uuid::Uuid, keys: KeyUse) -> Self {
        Self {
            client: client.clone(),
            url: url.clone(),
            tenant,
            keys,
            replayed: None,
        }
    }
}

impl levels::Sender for IntakeSender {
    type Accepted = (u128, Instant);

    fn send(&mut self, _n: u64) -> impl Future<Output = Result<(u128, Instant), String>> + Send {
        let first = self.keys != KeyUse::Replay || self.replayed.is_none();
        let (id, body) = match (self.keys, &self.replayed) {
            // The same bytes again: a replay is the same request.
            (KeyUse::Replay, Some((id, body))) => (*id, body.clone()),
            _ => {
                let id = uuid::Uuid::now_v7();
                (id, envelope(id, self.tenant))
            }
        };
        if self.keys == KeyUse::Replay && first {
            self.replayed = Some((id, body.clone()));
        }
        let key = (self.keys != KeyUse::None).then(|| format!("bench-{}", id.simple()));
        let replay = !first;
        async move {
            match post_event(&self.client, &self.url, body, key.as_deref()).await {
                Ok(a) if a.replayed == replay => Ok((id.as_u128(), a.at)),
                Ok(a) => Err(format!(
                    "POST /api/v1/events answered 202 with Idempotent-Replayed {}, expected {replay}",
                    a.replayed
                )),
                Err(Refused::Answer(e) | Refused::NoAnswer(e)) => Err(e),
            }
        }
    }
}

/// Starts the AMQP publisher: persistent messages to `exchange`, routing key
/// = the event type, `message_id` = the event id, each confirmed (many in
/// flight). `in_flight` bounds the unconfirmed ones; acquire all its permits
/// to wait for the last confirm.
pub fn spawn_amqp(
    load: &Arc<Load>,
    channel: &Channel,
    exchange: &str,
    in_flight: &Arc<Semaphore>,
) -> JoinHandle<()> {
    let (load, channel, exchange, in_flight) = (
        load.clone(),
        channel.clone(),
        exchange.to_owned(),
        in_flight.clone(),
    );
    tokio::spawn(async move {
        // Mandatory: a message no queue is bound for comes back instead of vanishing.
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        while load.next_slot(Intake::Amqp).await {
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let (id, id_text, body) = load.event();
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(id_text.into())
                .with_content_type("application/json".into());
            let confirm = match channel
                .basic_publish(
                    exchange.as_str().into(),
                    EVENT_TYPE.into(),
                    options,
                    &body,
                    props,
                )
                .await
            {
                Ok(confirm) => confirm,
                Err(e) => {
                    load.send_errors.fetch_add(1, Ordering::Relaxed);
                    load.note_error(format!("AMQP publish failed: {e}"));
                    // A failed publish means a closed channel: nothing more will go.
                    load.halt();
                    break;
                }
            };
            let load = load.clone();
            tokio::spawn(async move {
                match confirm.await {
                    Ok(Confirmation::Ack(None)) => load.accept(id, Intake::Amqp),
                    Ok(Confirmation::Ack(Some(_))) => {
                        load.rejected.fetch_add(1, Ordering::Relaxed);
                        load.note_error(format!(
                            "AMQP publish returned unroutable: no queue is bound to {EVENT_TYPE} \
                             (is the dispatcher consuming?)"
                        ));
                    }
                    Ok(other) => {
                        load.rejected.fetch_add(1, Ordering::Relaxed);
                        load.note_error(format!("AMQP publish not confirmed: {other:?}"));
                    }
                    Err(e) => {
                        load.send_errors.fetch_add(1, Ordering::Relaxed);
                        load.note_error(format!("AMQP confirm failed: {e}"));
                    }
                }
                drop(permit);
            });
        }
    })
}

/// A CloudEvents 1.0 JSON envelope (the fields of `hub_domain::Envelope`) of
/// an `order.created` event. Formatted rather than serialized: the generator
/// shares the CPUs with what it measures.
pub(crate) fn envelope(id: uuid::Uuid, tenant: uuid::Uuid) -> Vec<u8> {
    let time = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"bench","type":"{EVENT_TYPE}","time":"{time}","datacontenttype":"application/json","tenantid":"{tenant}","data":{DATA}}}"#
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_cloudevents_json() {
        let (id, tenant) = (uuid::Uuid::now_v7(), uuid::Uuid::new_v4());
        let body = envelope(id, tenant);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["id"], id.to_string());
        assert_eq!(v["type"], EVENT_TYPE);
        assert_eq!(v["tenantid"], tenant.to_string());
        assert_eq!(v["data"]["order_id"], "ORD-BENCH");
        assert!(chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).is_ok());
        // The receiver finds the event id in the body.
        assert_eq!(super::super::receiver::body_event_id(&body), id.as_u128());
    }
}
