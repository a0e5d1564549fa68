//! Consuming a service's queue: manual acks after the handler's work commits,
//! idempotent through `processed_events`, bounded redelivery with backoff,
//! then the dead-letter queue.

use crate::backoff::Backoff as _;
use crate::connection::long;
use crate::{ATTEMPT_HEADER, Bus, BusError, ERROR_HEADER};
use futures::StreamExt;
use hub_domain::Envelope;
use hub_storage::{StorageError, Tx};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a handler could not process an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Infrastructure was unavailable (database down): the message waits and
    /// is tried again without spending an attempt.
    #[error("transient: {0}")]
    Transient(String),
    /// The event could not be processed; it is retried with backoff a bounded
    /// number of times, then dead-lettered.
    #[error("{0}")]
    Failed(String),
}

impl From<StorageError> for HandlerError {
    fn from(e: StorageError) -> Self {
        if e.is_transient() {
            Self::Transient(e.to_string())
        } else {
            Self::Failed(e.to_string())
        }
    }
}

/// What a service does with the events it consumes.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The routing-key patterns the service's queue is bound to.
    fn bindings(&self) -> Vec<String>;
    /// Handles one event inside `tx`, which also holds the idempotency marker:
    /// both commit together or not at all.
    async fn handle(&self, tx: &mut Tx<'_>, event: &Envelope) -> Result<(), HandlerError>;

    /// Whether the service does anything with `event`; events it does not
    /// want are acknowledged without a transaction.
    fn wants(&self, _event: &Envelope) -> bool {
        true
    }

    /// Whether the service may want events of `event_type` (the message's
    /// AMQP `type`), asked before the body is parsed; `false` acknowledges
    /// the message unread. The default defers to [`Handler::wants`].
    fn wants_type(&self, _event_type: &str) -> bool {
        true
    }

    /// Whether the queue is bound on the entry exchange only, seeing just the
    /// events other systems publish, not the hub's own (which the relays
    /// publish to the routed exchange): the audit trail, which records the
    /// hub's events when their outbox rows are retired.
    fn entry_only(&self) -> bool {
        false
    }

    /// Whether handling an event twice is harmless by construction (its
    /// writes dedupe on the event id); the consumer then skips the
    /// `processed_events` marker.
    fn idempotent(&self) -> bool {
        false
    }

    /// Handles several events in one transaction (messages that arrived
    /// together). The default handles them one by one; a handler overrides it
    /// to batch its writes. An error rolls the whole batch back, and the
    /// consumer then handles its events one at a time.
    async fn handle_batch(&self, tx: &mut Tx<'_>, events: &[Envelope]) -> Result<(), HandlerError> {
        for e in events {
            self.handle(tx, e).await?;
        }
        Ok(())
    }

    /// Like [`Handler::handle_batch`], and may return work to start once the
    /// transaction has committed (it is dropped if the transaction does not
    /// commit). The consumer calls this one; the default has no such work.
    async fn handle_committing(
        &self,
        tx: &mut Tx<'_>,
        events: &[Envelope],
    ) -> Result<Option<AfterCommit>, HandlerError> {
        self.handle_batch(tx, events).await.map(|()| None)
    }
}

/// Waits for an ack, nack or reject at most 2 s: on a connection that died
/// without lapin noticing it never completes, and the message is redelivered
/// anyway once the consumer reconnects.
async fn settle<F: std::future::Future>(f: F) -> Option<F::Output> {
    tokio::time::timeout(Duration::from_secs(2), f).await.ok()
}

/// Work a handler starts only after its transaction commits.
pub type AfterCommit = Box<dyn FnOnce() + Send>;

/// Most messages handled in one transaction.
const BATCH: usize = 128;
/// How long a batch waits for more messages after its first: at moderate
/// rates, fuller transactions for a couple of milliseconds of latency.
const BATCH_LINGER: Duration = Duration::from_millis(2);

/// Runs `service`'s consumer until `shutdown`: (re)connects, declares the
/// topology, consumes with manual acks. On shutdown it stops taking messages
/// and lets in-flight ones finish; unacknowledged ones go back to the queue.
pub async fn run(
    bus: Arc<Bus>,
    pool: PgPool,
    service: String,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) {
    let mut backoff = crate::backoff::reconnect();
    while !shutdown.is_cancelled() {
        let started = tokio::time::Instant::now();
        let result = consume(&bus, &pool, &service, &handler, &shutdown).await;
        if started.elapsed() > Duration::from_secs(10) {
            // It was up for a while: this is a new outage, start the backoff over.
            backoff.reset();
        }
        match result {
            Ok(()) => {
                if shutdown.is_cancelled() {
                    break;
                }
                tracing::warn!(%service, "consumer stream ended; reconnecting");
            }
            Err(e) => tracing::error!(%service, error = %e, "consumer failed; reconnecting"),
        }
        let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(10));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    tracing::info!(%service, "consumer stopped");
}

async fn consume(
    bus: &Arc<Bus>,
    pool: &PgPool,
    service: &str,
    handler: &Arc<dyn Handler>,
    shutdown: &CancellationToken,
) -> Result<(), BusError> {
    let ch = bus.channel().await?;
    let concurrency = bus.config().consumer_concurrency.max(1);
    // Enough prefetch that messages arriving together are handled together.
    let prefetch = concurrency.saturating_mul(64).min(2048);
    let queue = bus.topology().queue(service);
    // Every step waits for the broker's answer: bounded, so a connection that
    // died without lapin noticing is dropped and the next attempt reconnects.
    let setup = async {
        ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
        bus.declare_service(&ch, service, &handler.bindings(), handler.entry_only())
            .await?;
        let consumer = ch
            .basic_consume(
                queue.as_str().into(),
                format!("{service}-{}", uuid::Uuid::new_v4()).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok::<_, BusError>(consumer)
    };
    let consumer = match tokio::time::timeout(bus.config().connect_timeout * 2, setup).await {
        Ok(r) => r?,
        Err(_) => {
            bus.forget_connection().await;
            return Err(BusError::Timeout);
        }
    };
    tracing::info!(%service, %queue, "consuming");
    let ctx = Ctx {
        bus: bus.clone(),
        pool: pool.clone(),
        service: service.to_owned(),
        handler: handler.clone(),
        acks: Acks::default(),
    };
    // A lost connection must end this consumer so that `run` reconnects,
    // whether lapin reports it as a delivery error or only in the channel's
    // status.
    let watched = ch.clone();
    let dead = async move {
        while watched.status().connected() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let deliveries = consumer
        .take_until(shutdown.cancelled())
        .take_until(dead)
        .take_while(|d| {
            let ok = d.is_ok();
            if let Err(e) = d {
                tracing::warn!(%service, error = %e, "delivery error; reconnecting");
            }
            futures::future::ready(ok)
        })
        .filter_map(|d| futures::future::ready(d.ok()))
        .inspect(|d| ctx.acks.received(d.delivery_tag));
    // Messages arriving within BATCH_LINGER of each other share a transaction.
    tokio_stream::StreamExt::chunks_timeout(deliveries, BATCH, BATCH_LINGER)
        .for_each_concurrent(usize::from(concurrency), |ds| {
            let ctx = &ctx;
            async move { ctx.process_many(ds, shutdown).await }
        })
        .await;
    // Closing waits for the broker's answer: bounded, the connection may be gone.
    let _ = tokio::time::timeout(Duration::from_secs(2), ch.close(200, "bye".into())).await;
    Ok(())
}

struct Ctx {
    bus: Arc<Bus>,
    pool: PgPool,
    service: String,
    handler: Arc<dyn Handler>,
    acks: Acks,
}

/// The acknowledgements of one channel, sent in bulk. Batches finish out of
/// order, so an ack is held until every delivery before it is settled too;
/// then one `basic.ack` with `multiple` covers them all (one frame and one
/// broker operation instead of one per message). Rejects and nacks go out
/// one by one, before any ack that would cover them. Acks still held when a
/// channel dies are simply lost: those messages are redelivered, and the
/// handlers are idempotent.
#[derive(Default)]
struct Acks {
    state: std::sync::Mutex<AckState>,
    /// Held while a frame is sent, so frames leave in tag order.
    sending: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct AckState {
    /// Received and not yet settled.
    open: std::collections::BTreeSet<u64>,
    /// Settled as acked, not yet sent.
    ready: std::collections::BTreeMap<u64, lapin::Acker>,
}

impl Acks {
    fn received(&self, tag: u64) {
        self.state.lock().expect("acks").open.insert(tag);
    }

    /// Acknowledges `d` (now, or with a later bulk ack).
    async fn ack(&self, d: &Delivery) {
        {
            let mut st = self.state.lock().expect("acks");
            st.open.remove(&d.delivery_tag);
            st.ready.insert(d.delivery_tag, d.acker.clone());
        }
        self.flush().await;
    }

    /// Settles `d` on its own (reject, nack) with `f`.
    async fn alone<F, Fut>(&self, d: &Delivery, f: F)
    where
        F: FnOnce(lapin::Acker) -> Fut,
        Fut: std::future::Future<Output = lapin::Result<bool>>,
    {
        {
            let _sending = self.sending.lock().await;
            let _ = settle(f(d.acker.clone())).await;
            self.state
                .lock()
                .expect("acks")
                .open
                .remove(&d.delivery_tag);
        }
        // It may have been what held acks back.
        self.flush().await;
    }

    /// Sends one bulk ack for every held ack below the oldest unsettled
    /// delivery.
    async fn flush(&self) {
        let _sending = self.sending.lock().await;
        let to_send = {
            let mut st = self.state.lock().expect("acks");
            let limit = st.open.first().copied().unwrap_or(u64::MAX);
            let last = st
                .ready
                .range(..limit)
                .next_back()
                .map(|(t, a)| (*t, a.clone()));
            if let Some((tag, _)) = last {
                st.ready = st.ready.split_off(&(tag + 1));
            }
            last
        };
        if let Some((_, acker)) = to_send {
            let _ = settle(acker.ack(BasicAckOptions { multiple: true })).await;
        }
    }
}

impl Ctx {
    /// Handles messages that arrived together in one transaction; on any
    /// failure, one at a time (so one bad event cannot hold up the others).
    async fn process_many(&self, ds: Vec<Delivery>, shutdown: &CancellationToken) {
        let mut wanted = Vec::with_capacity(ds.len());
        let mut events = Vec::with_capacity(ds.len());
        let mut ignored = 0u64;
        for d in ds {
            let kind = d.properties.kind().as_ref().map(|k| k.as_str());
            if kind.is_some_and(|k| !self.handler.wants_type(k)) {
                ignored += 1;
                self.acks.ack(&d).await;
                continue;
            }
            match crate::cloudevents::envelope_of(&d.properties, &d.data) {
                Ok(e) if !self.handler.wants(&e) => {
                    ignored += 1;
                    self.acks.ack(&d).await;
                }
                Ok(e) => {
                    events.push(e);
                    wanted.push(d);
                }
                // Malformed: the single path dead-letters it.
                Err(_) => self.process(d, shutdown).await,
            }
        }
        if ignored > 0 {
            metrics::counter!("hub_bus_consumed_total", "service" => self.service.clone(), "outcome" => "ignored").increment(ignored);
        }
        if wanted.len() > 1 {
            match self.try_handle_many(&events).await {
                Ok(()) => {
                    metrics::counter!("hub_bus_consumed_total", "service" => self.service.clone(), "outcome" => "ok").increment(wanted.len() as u64);
                    for d in wanted {
                        self.acks.ack(&d).await;
                    }
                    return;
                }
                Err(e) => {
                    tracing::debug!(service = %self.service, error = %e, n = wanted.len(), "batch failed; handling one by one")
                }
            }
        }
        for d in wanted {
            self.process(d, shutdown).await;
        }
    }

    async fn try_handle_many(&self, events: &[Envelope]) -> Result<(), HandlerError> {
        let mut tx = self.pool.begin().await.map_err(StorageError::from)?;
        let todo: Vec<Envelope> = if self.handler.idempotent() {
            events.to_vec()
        } else {
            let ids: Vec<_> = events.iter().map(|e| e.id).collect();
            let fresh = hub_storage::processed::claim_many(&mut tx, &self.service, &ids).await?;
            events
                .iter()
                .filter(|e| fresh.contains(&e.id))
                .cloned()
                .collect()
        };
        let after = if todo.is_empty() {
            None
        } else {
            self.handler.handle_committing(&mut tx, &todo).await?
        };
        tx.commit().await.map_err(StorageError::from)?;
        if let Some(f) = after {
            f();
        }
        Ok(())
    }

    async fn process(&self, d: Delivery, shutdown: &CancellationToken) {
        let event = match crate::cloudevents::envelope_of(&d.properties, &d.data) {
            Ok(e) => e,
            Err(e) => {
                // Poison message: no attempt can fix it. The queue's
                // dead-letter settings route it to the DLQ.
                tracing::warn!(service = %self.service, error = %e, "malformed event dead-lettered");
                metrics::counter!("hub_bus_consumed_total", "service" => self.service.clone(), "outcome" => "malformed").increment(1);
                self.acks
                    .alone(&d, |a| async move {
                        a.reject(BasicRejectOptions { requeue: false }).await
                    })
                    .await;
                return;
            }
        };
        let span = tracing::info_span!("consume", service = %self.service, event_id = %event.id, event_type = %event.event_type);
        if let Some(tp) = header_str(&d, "traceparent") {
            crate::trace::set_remote_parent(&span, tp);
        }
        let _enter = span.enter();
        let mut backoff = crate::backoff::reconnect();
        loop {
            match self.try_handle(&event).await {
                Ok(()) => {
                    metrics::counter!("hub_bus_consumed_total", "service" => self.service.clone(), "outcome" => "ok").increment(1);
                    self.acks.ack(&d).await;
                    return;
                }
                Err(HandlerError::Transient(e)) => {
                    let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(10));
                    tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "dependency unavailable; will retry");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = shutdown.cancelled() => {
                            self.acks.alone(&d, |a| async move { a.nack(BasicNackOptions { requeue: true, ..Default::default() }).await }).await;
                            return;
                        }
                    }
                }
                Err(HandlerError::Failed(e)) => {
                    self.retry_or_dead_letter(&d, &e).await;
                    return;
                }
            }
        }
    }

    async fn try_handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        let mut tx = self.pool.begin().await.map_err(StorageError::from)?;
        if !self.handler.idempotent()
            && !hub_storage::processed::claim(&mut tx, &self.service, event.id).await?
        {
            tracing::debug!("already processed; acknowledging duplicate");
            metrics::counter!("hub_bus_consumed_total", "service" => self.service.clone(), "outcome" => "duplicate").increment(1);
            return Ok(());
        }
        let after = self
            .handler
            .handle_committing(&mut tx, std::slice::from_ref(event))
            .await?;
        tx.commit().await.map_err(StorageError::from)?;
        if let Some(f) = after {
            f();
        }
        Ok(())
    }

    async fn retry_or_dead_letter(&self, d: &Delivery, error: &str) {
        let attempt = header_int(d, ATTEMPT_HEADER).unwrap_or(0) + 1;
        let cfg = self.bus.config();
        let t = self.bus.topology();
        let mut headers = d.properties.headers().clone().unwrap_or_default();
        headers.insert(
            ATTEMPT_HEADER.into(),
            AMQPValue::LongLongInt(i64::from(attempt)),
        );
        let mut error_text = error.to_owned();
        error_text.truncate(1000);
        headers.insert(ERROR_HEADER.into(), long(&error_text));
        let props = d
            .properties
            .clone()
            .with_headers(headers)
            .with_delivery_mode(2);
        let (exchange, key, props, outcome) = if attempt < cfg.max_attempts {
            let wait = crate::backoff::delay(attempt, cfg.retry_base, cfg.retry_max);
            tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, %error, "handler failed; will retry");
            (
                String::new(),
                t.retry_queue(&self.service),
                props.with_expiration(wait.as_millis().to_string().into()),
                "retry",
            )
        } else {
            tracing::error!(attempt, %error, "handler failed for the last time; dead-lettered");
            (
                t.dead_letter_exchange(),
                t.queue(&self.service),
                props,
                "dead_letter",
            )
        };
        match self.bus.publish_raw(&exchange, &key, &d.data, props).await {
            Ok(()) => {
                metrics::counter!("hub_bus_consumed_total", "service" => self.service.clone(), "outcome" => outcome).increment(1);
                self.acks.ack(d).await;
            }
            Err(e) => {
                // Could not park it: give it back to the queue as it was.
                tracing::warn!(error = %e, "could not schedule retry; requeueing");
                self.acks
                    .alone(d, |a| async move {
                        a.nack(BasicNackOptions {
                            requeue: true,
                            ..Default::default()
                        })
                        .await
                    })
                    .await;
            }
        }
    }
}

fn header<'a>(d: &'a Delivery, name: &str) -> Option<&'a AMQPValue> {
    d.properties.headers().as_ref()?.inner().get(name)
}

fn header_int(d: &Delivery, name: &str) -> Option<u32> {
    match header(d, name)? {
        AMQPValue::LongLongInt(n) => u32::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u32::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(*n),
        AMQPValue::ShortInt(n) => u32::try_from(*n).ok(),
        AMQPValue::ShortShortInt(n) => u32::try_from(*n).ok(),
        _ => None,
    }
}

fn header_str<'a>(d: &'a Delivery, name: &str) -> Option<&'a str> {
    match header(d, name)? {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        _ => None,
    }
}
