//! Reading and re-driving a service's dead-letter queue
//! (`<prefix><service>.events.dlq`), for the operator.
//!
//! Messages land there two ways: the consumer publishes a message whose
//! handler failed `HUB_BUS_MAX_ATTEMPTS` times to the dead-letter exchange
//! (with `x-hub-attempt` and `x-hub-error`), and the broker dead-letters a
//! message the consumer rejected as not an event (with `x-death`, reason
//! `rejected`). Either way its original queue is the service's work queue.
//!
//! Nothing here loses a message on a crash: every message is taken with
//! `basic.get` *without* auto-ack, so until it is acknowledged the broker
//! holds it for this channel and gives it back to the queue if the channel
//! or the process dies. A look ([`peek`]) takes the messages and hands them
//! all back (`nack` with requeue, which RabbitMQ puts back in their places).
//! A re-drive publishes a copy to the work queue on the confirmed publisher
//! and acknowledges the dead letter only after the broker confirmed the
//! copy: a crash in between leaves the message in both queues, and the
//! consumer's idempotency (`processed_events`, or a handler idempotent by
//! construction) makes the second handling harmless. Trade-off: while a
//! look or a re-drive runs, the messages it holds are invisible to another
//! look, which then sees fewer; they are back when it ends.

use crate::{ATTEMPT_HEADER, Bus, BusError, ERROR_HEADER};
use lapin::BasicProperties;
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use sha2::{Digest, Sha256};

/// Header counting how many times an operator re-drove a message.
pub const REDRIVEN_HEADER: &str = "x-hub-redriven";

/// Most messages one call reads.
pub const MAX_READ: usize = 10_000;

/// One dead letter as read (not yet acknowledged).
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// A stable handle: the AMQP `message_id`, else `sha256:` and the
    /// first 16 bytes of the body's SHA-256 in hex.
    pub id: String,
    /// The event type: the AMQP `type`, else the body's `type` (a JSON
    /// event), else the routing key it was first published with.
    pub event_type: Option<String>,
    /// The tenant the event names (`tenantid` of a JSON event).
    pub tenant_id: Option<String>,
    /// `failed` (its handler failed every attempt), `rejected` (not an
    /// event), or the broker's other reasons (`expired`, `maxlen`).
    pub reason: String,
    /// Failed attempts (`x-hub-attempt`).
    pub attempts: Option<i64>,
    /// The last handler error (`x-hub-error`).
    pub error: Option<String>,
    /// Times an operator re-drove it before.
    pub redriven: i64,
    /// The message's properties and headers.
    pub properties: BasicProperties,
    /// The body.
    pub body: Vec<u8>,
}

/// Which dead letters an operation takes; empty matches every one.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this [`DeadLetter::id`].
    pub id: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only this reason.
    pub reason: Option<String>,
    /// Only events of this tenant.
    pub tenant_id: Option<String>,
}

impl Filter {
    /// Whether `d` is taken.
    pub fn matches(&self, d: &DeadLetter) -> bool {
        fn ok(want: &Option<String>, got: Option<&str>) -> bool {
            want.as_deref().is_none_or(|w| got == Some(w))
        }
        ok(&self.id, Some(&d.id))
            && ok(&self.event_type, d.event_type.as_deref())
            && ok(&self.reason, Some(&d.reason))
            && ok(&self.tenant_id, d.tenant_id.as_deref())
    }

    fn is_empty(&self) -> bool {
        self.id.is_none()
            && self.event_type.is_none()
            && self.reason.is_none()
            && self.tenant_id.is_none()
    }
}

/// A service's dead-letter queue as seen now.
#[derive(Debug, Clone)]
pub struct Look {
    /// Whether the queue exists (the service declared it).
    pub exists: bool,
    /// Messages in the queue (the broker's count).
    pub total: u32,
    /// The messages read (at most the limit asked), in queue order.
    pub messages: Vec<DeadLetter>,
}

/// What a re-drive or delete did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Moved {
    /// Messages re-driven or deleted.
    pub moved: u32,
    /// Messages left in the dead-letter queue.
    pub remaining: u32,
}

/// Reads up to `limit` messages of `service`'s dead-letter queue and gives
/// them all back.
pub async fn peek(bus: &Bus, service: &str, limit: usize) -> Result<Look, BusError> {
    let queue = bus.topology().dead_letter_queue(service);
    let ch = bus.channel().await?;
    let Some(total) = count(&ch, &queue).await? else {
        return Ok(Look {
            exists: false,
            total: 0,
            messages: Vec::new(),
        });
    };
    let result = async {
        let mut messages = Vec::new();
        let mut last = None;
        let mut behind = total;
        while messages.len() < limit.min(MAX_READ) {
            let Some(got) = ch
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                .await?
            else {
                behind = 0;
                break;
            };
            behind = got.message_count;
            last = Some(got.delivery.delivery_tag);
            messages.push(read(&got.delivery));
        }
        if let Some(tag) = last {
            ch.basic_nack(
                tag,
                BasicNackOptions {
                    multiple: true,
                    requeue: true,
                },
            )
            .await?;
        }
        Ok::<_, BusError>((messages, behind))
    }
    .await;
    // Closing the channel also gives back anything the nack did not.
    let _ = ch.close(200, "dead letters read".into()).await;
    let (messages, behind) = result?;
    Ok(Look {
        exists: true,
        // What was read and what the broker said was behind it: exact
        // even when the count asked first missed messages still being
        // given back by an earlier look.
        total: messages.len() as u32 + behind,
        messages,
    })
}

/// Publishes every dead letter of `service` that `filter` takes back to the
/// service's work queue, with its attempts reset, acknowledging each only
/// after the broker confirmed its copy; at most `limit`. Messages that
/// arrive meanwhile are not looked at (it reads as many as were queued when
/// it started).
pub async fn redrive(
    bus: &Bus,
    service: &str,
    filter: &Filter,
    limit: usize,
) -> Result<Option<Moved>, BusError> {
    let work_queue = bus.topology().queue(service);
    take(bus, service, filter, limit, |d| {
        let work_queue = work_queue.clone();
        async move {
            let mut headers = d.properties.headers().clone().unwrap_or_default();
            let redriven = header_int(&headers, REDRIVEN_HEADER).unwrap_or(0) + 1;
            let mut fresh = FieldTable::default();
            for (k, v) in headers.inner() {
                // A fresh start: no spent attempts, no death records (the
                // broker would count earlier deaths as this one's).
                if ![
                    ATTEMPT_HEADER,
                    ERROR_HEADER,
                    "x-death",
                    "x-first-death-exchange",
                    "x-first-death-queue",
                    "x-first-death-reason",
                    "x-last-death-exchange",
                    "x-last-death-queue",
                    "x-last-death-reason",
                ]
                .contains(&k.as_str())
                {
                    fresh.insert(k.clone(), v.clone());
                }
            }
            headers = fresh;
            headers.insert(REDRIVEN_HEADER.into(), AMQPValue::LongLongInt(redriven));
            let props = d
                .properties
                .clone()
                .with_headers(headers)
                .with_delivery_mode(2);
            // The default exchange routes by queue name: back to this
            // service's work queue alone, not to every queue bound to its type.
            bus.publish_raw("", &work_queue, &d.data, props).await
        }
    })
    .await
}

/// Deletes every dead letter of `service` that `filter` takes (all of them
/// at once when the filter is empty); at most `limit` with a filter.
pub async fn delete(
    bus: &Bus,
    service: &str,
    filter: &Filter,
    limit: usize,
) -> Result<Option<Moved>, BusError> {
    if filter.is_empty() {
        let queue = bus.topology().dead_letter_queue(service);
        let ch = bus.channel().await?;
        if count(&ch, &queue).await?.is_none() {
            return Ok(None);
        }
        let purged = ch
            .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
            .await;
        let _ = ch.close(200, "dead letters purged".into()).await;
        return Ok(Some(Moved {
            moved: purged?,
            remaining: 0,
        }));
    }
    take(bus, service, filter, limit, |_| async { Ok(()) }).await
}

/// Reads the messages queued when it starts; for each one `filter` takes
/// (up to `limit`) runs `handle` and acknowledges it once `handle`
/// succeeded; gives back the others. `None` when the queue does not exist.
async fn take<F, Fut>(
    bus: &Bus,
    service: &str,
    filter: &Filter,
    limit: usize,
    handle: F,
) -> Result<Option<Moved>, BusError>
where
    F: Fn(Delivery) -> Fut,
    Fut: std::future::Future<Output = Result<(), BusError>>,
{
    let queue = bus.topology().dead_letter_queue(service);
    let ch = bus.channel().await?;
    let Some(queued) = count(&ch, &queue).await? else {
        return Ok(None);
    };
    let result = async {
        let mut moved = 0u32;
        let mut kept = Vec::new();
        // Ready messages behind the last one taken, as the broker said
        // when it handed that one over. (A count asked after the requeuing
        // nacks below may not include them yet: the broker applies them
        // asynchronously.)
        let mut behind = queued;
        for _ in 0..queued.min(MAX_READ as u32) {
            if moved as usize >= limit {
                break;
            }
            let Some(got) = ch
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                .await?
            else {
                behind = 0;
                break;
            };
            behind = got.message_count;
            let d = got.delivery;
            if !filter.matches(&read(&d)) {
                kept.push(d.delivery_tag);
                continue;
            }
            let tag = d.delivery_tag;
            handle(d).await?;
            ch.basic_ack(tag, BasicAckOptions { multiple: false })
                .await?;
            moved += 1;
        }
        for &tag in &kept {
            ch.basic_nack(
                tag,
                BasicNackOptions {
                    multiple: false,
                    requeue: true,
                },
            )
            .await?;
        }
        Ok::<_, BusError>(Moved {
            moved,
            remaining: behind + kept.len() as u32,
        })
    }
    .await;
    let _ = ch.close(200, "dead letters taken".into()).await;
    result.map(Some)
}

/// The ready messages of `queue`, or `None` when it does not exist (the
/// broker then closes the channel, which the caller only closes again).
async fn count(ch: &Channel, queue: &str) -> Result<Option<u32>, BusError> {
    match ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
    {
        Ok(q) => Ok(Some(q.message_count())),
        Err(e) if matches!(e.kind(), lapin::ErrorKind::ProtocolError(p) if p.get_id() == 404) => {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// What the operator sees of a delivery.
fn read(d: &Delivery) -> DeadLetter {
    let headers = d.properties.headers().clone().unwrap_or_default();
    let body: Option<serde_json::Value> = serde_json::from_slice(&d.data).ok();
    let field = |name: &str| {
        body.as_ref()
            .and_then(|b| b.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let death = first_death(&headers);
    let event_type = d
        .properties
        .kind()
        .as_ref()
        .map(|t| t.as_str().to_owned())
        .or_else(|| field("type"))
        .or_else(|| death.as_ref().and_then(|(_, key)| key.clone()));
    let error = header_str(&headers, ERROR_HEADER);
    let reason = if error.is_some() {
        "failed".to_owned()
    } else {
        death
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), |(reason, _)| reason.clone())
    };
    let id = match d.properties.message_id() {
        Some(id) if !id.as_str().is_empty() => id.as_str().to_owned(),
        _ => format!("sha256:{}", hex::encode(&Sha256::digest(&d.data)[..16])),
    };
    DeadLetter {
        id,
        event_type,
        tenant_id: field("tenantid"),
        reason,
        attempts: header_int(&headers, ATTEMPT_HEADER),
        error,
        redriven: header_int(&headers, REDRIVEN_HEADER).unwrap_or(0),
        properties: d.properties.clone(),
        body: d.data.clone(),
    }
}

/// The broker's first `x-death` record: (reason, first routing key).
fn first_death(headers: &FieldTable) -> Option<(String, Option<String>)> {
    let AMQPValue::FieldArray(deaths) = headers.inner().get("x-death")? else {
        return None;
    };
    let AMQPValue::FieldTable(first) = deaths.as_slice().first()? else {
        return None;
    };
    let reason = header_str(first, "reason")?;
    let key = match first.inner().get("routing-keys") {
        Some(AMQPValue::FieldArray(keys)) => keys.as_slice().first().and_then(as_str),
        _ => None,
    };
    Some((reason, key))
}

fn as_str(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn header_str(headers: &FieldTable, name: &str) -> Option<String> {
    as_str(headers.inner().get(name)?)
}

fn header_int(headers: &FieldTable, name: &str) -> Option<i64> {
    match headers.inner().get(name)? {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortUInt(n) => Some(i64::from(*n)),
        _ => None,
    }
}

/// A header value as JSON, for showing (binary values as base64 would be
/// noise: they are shown as their length).
pub fn header_json(v: &AMQPValue) -> serde_json::Value {
    use serde_json::json;
    match v {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Float(n) => json!(n),
        AMQPValue::Double(n) => json!(n),
        AMQPValue::DecimalValue(d) => json!(format!("{d:?}")),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::FieldArray(a) => {
            serde_json::Value::Array(a.as_slice().iter().map(header_json).collect())
        }
        AMQPValue::Timestamp(t) => json!(t),
        AMQPValue::FieldTable(t) => serde_json::Value::Object(
            t.inner()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), header_json(v)))
                .collect(),
        ),
        AMQPValue::ByteArray(b) => json!(format!("<{} bytes>", b.as_slice().len())),
        AMQPValue::Void => serde_json::Value::Null,
    }
}
