//! One AMQP connection per process, re-established on demand, and the
//! confirmed publisher.

use crate::{BusError, Topology};
use futures::future::{maybe_done, try_join_all};
use lapin::Confirmation;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeBindOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Bus settings.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// `amqp://user:pass@host:port/vhost`.
    pub url: String,
    /// Prefix of every exchange and queue name.
    pub prefix: String,
    /// Messages a consumer handles at once (also its prefetch).
    pub consumer_concurrency: u16,
    /// Handler attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// First redelivery delay; doubles per attempt.
    pub retry_base: Duration,
    /// Longest redelivery delay.
    pub retry_max: Duration,
    /// When set, queues are deleted after this long unused (for test prefixes).
    pub queue_expires: Option<Duration>,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

/// A message to publish to the events exchange.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Event id (AMQP `message_id`).
    pub id: String,
    /// Event type (routing key and AMQP `type`).
    pub event_type: String,
    /// The serialized CloudEvents envelope.
    pub body: Vec<u8>,
    /// W3C trace context, when the event carries one.
    pub traceparent: Option<String>,
}

/// The process's connection to RabbitMQ. Cheap to share (`Arc`); every user
/// goes through [`Bus::channel`], which reconnects when the broker went away.
pub struct Bus {
    config: BusConfig,
    topology: Topology,
    connection: Mutex<Option<Arc<Connection>>>,
    publisher: Mutex<Option<Channel>>,
    service: String,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("prefix", &self.config.prefix)
            .finish_non_exhaustive()
    }
}

impl Bus {
    /// A bus for `service`; connects lazily, so a broker that is down does not
    /// stop the service from starting.
    pub fn new(service: &str, config: BusConfig) -> Arc<Self> {
        Arc::new(Self {
            topology: Topology::new(&config.prefix),
            config,
            connection: Mutex::new(None),
            publisher: Mutex::new(None),
            service: service.to_owned(),
        })
    }

    /// The names in use.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The settings in use.
    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    async fn connection(&self) -> Result<Arc<Connection>, BusError> {
        let mut guard = self.connection.lock().await;
        if let Some(c) = guard.as_ref()
            && c.status().connected()
        {
            return Ok(c.clone());
        }
        let props = ConnectionProperties::default().with_connection_name(LongString::from(
            format!("{}:{}", self.service, std::process::id()),
        ));
        let conn = tokio::time::timeout(
            self.config.connect_timeout,
            Connection::connect(&self.config.url, props),
        )
        .await
        .map_err(|_| BusError::Timeout)??;
        tracing::info!(service = %self.service, "connected to RabbitMQ");
        let conn = Arc::new(conn);
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// Drops the cached connection (it stopped answering): the next
    /// channel reconnects.
    pub(crate) async fn forget_connection(&self) {
        self.connection.lock().await.take();
    }

    /// A new channel on the (re-established if needed) connection.
    pub async fn channel(&self) -> Result<Channel, BusError> {
        let conn = self.connection().await?;
        match tokio::time::timeout(self.config.connect_timeout, conn.create_channel()).await {
            Ok(Ok(ch)) => Ok(ch),
            Ok(Err(e)) => {
                // The connection looked alive but is not: drop it so the next call reconnects.
                self.forget_connection().await;
                Err(e.into())
            }
            Err(_) => {
                self.forget_connection().await;
                Err(BusError::Timeout)
            }
        }
    }

    /// Checks the broker is reachable (for `/ready`).
    pub async fn ping(&self) -> Result<(), BusError> {
        let ch = self.channel().await?;
        let _ = ch.close(200, "ping".into()).await;
        Ok(())
    }

    /// Declares the shared exchanges and forwards everything entering by
    /// the entry exchange to the routed one (idempotent).
    pub async fn declare_exchanges(&self, ch: &Channel) -> Result<(), BusError> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let t = &self.topology;
        for exchange in [t.exchange(), t.routed_exchange()] {
            ch.exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;
        }
        ch.exchange_bind(
            t.routed_exchange().into(),
            t.exchange().into(),
            "#".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        ch.exchange_declare(
            self.topology.dead_letter_exchange().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
        Ok(())
    }

    /// Declares `service`'s queues and binds its work queue to `bindings`
    /// (routing-key patterns such as `#` or `order.*`) on the routed
    /// exchange, or on the entry exchange when `entry_only` (only events the
    /// hub did not produce: the audit trail). Idempotent.
    pub async fn declare_service(
        &self,
        ch: &Channel,
        service: &str,
        bindings: &[String],
        entry_only: bool,
    ) -> Result<(), BusError> {
        self.declare_exchanges(ch).await?;
        let t = &self.topology;
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let (queue, retry, dlq) = (
            t.queue(service),
            t.retry_queue(service),
            t.dead_letter_queue(service),
        );

        let mut work_args = self.queue_args();
        work_args.insert(
            "x-dead-letter-exchange".into(),
            long(&t.dead_letter_exchange()),
        );
        work_args.insert("x-dead-letter-routing-key".into(), long(&queue));
        ch.queue_declare(queue.clone().into(), durable, work_args)
            .await?;

        // Expired retries go back to the work queue through the default exchange.
        let mut retry_args = self.queue_args();
        retry_args.insert("x-dead-letter-exchange".into(), long(""));
        retry_args.insert("x-dead-letter-routing-key".into(), long(&queue));
        ch.queue_declare(retry.into(), durable, retry_args).await?;

        ch.queue_declare(dlq.clone().into(), durable, self.queue_args())
            .await?;
        bind_all(ch, &dlq, &t.dead_letter_exchange(), [&queue]).await?;
        let exchange = if entry_only {
            t.exchange()
        } else {
            t.routed_exchange()
        };
        bind_all(ch, &queue, &exchange, bindings).await
    }

    /// Binds `service`'s work queue (declared by that service) to more
    /// routing keys. Fails if the queue does not exist yet; the service binds
    /// what it needs when it declares it.
    pub async fn bind(&self, service: &str, keys: &[String]) -> Result<(), BusError> {
        if keys.is_empty() {
            return Ok(());
        }
        let ch = self.channel().await?;
        let t = &self.topology;
        let queue = t.queue(service);
        let result = bind_all(&ch, &queue, &t.routed_exchange(), keys).await;
        let _ = ch.close(200, "bound".into()).await;
        result
    }

    /// Removes bindings of `service`'s work queue; a binding (or queue) that
    /// does not exist counts as removed.
    pub async fn unbind(&self, service: &str, keys: &[String]) -> Result<(), BusError> {
        let t = &self.topology;
        let queue = t.queue(service);
        for key in keys {
            // The broker closes the channel of a failed unbind: one each.
            let ch = self.channel().await?;
            let result = ch
                .queue_unbind(
                    queue.as_str().into(),
                    t.routed_exchange().into(),
                    key.as_str().into(),
                    FieldTable::default(),
                )
                .await;
            match result {
                Ok(()) => {
                    let _ = ch.close(200, "unbound".into()).await;
                }
                Err(e) if matches!(e.kind(), lapin::ErrorKind::ProtocolError(p) if p.get_id() == 404) =>
                    {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn queue_args(&self) -> FieldTable {
        let mut args = FieldTable::default();
        if let Some(exp) = self.config.queue_expires {
            args.insert(
                "x-expires".into(),
                AMQPValue::LongLongInt(exp.as_millis() as i64),
            );
        }
        args
    }

    async fn publisher(&self) -> Result<Channel, BusError> {
        let mut guard = self.publisher.lock().await;
        if let Some(ch) = guard.as_ref()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        let ch = self.channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        self.declare_exchanges(&ch).await?;
        *guard = Some(ch.clone());
        Ok(ch)
    }

    /// Opens the confirmed publisher channel if it is not open.
    pub async fn warm_publisher(&self) -> Result<(), BusError> {
        self.publisher().await.map(drop)
    }

    /// Publishes a batch of the hub's own events to the routed exchange and
    /// waits until the broker confirmed every message. Messages are
    /// pipelined: one round trip of latency for the whole batch.
    pub async fn publish(&self, messages: &[Outgoing]) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        let ch = self.publisher().await?;
        let result = self.publish_on(&ch, messages).await;
        if result.is_err() {
            self.publisher.lock().await.take();
        }
        result
    }

    async fn publish_on(&self, ch: &Channel, messages: &[Outgoing]) -> Result<(), BusError> {
        // The hub's own events skip the entry exchange, and with it the
        // audit trail's queue: they were recorded when they were produced.
        let exchange = self.topology.routed_exchange();
        // A publish's first poll takes the next confirm tag and queues its
        // frames; the rest waits until the I/O loop has written them. Every
        // message is queued before any is waited for, in order (so tags and
        // frames stay in step), and the loop writes the batch in one go:
        // awaiting each publish in turn cost two thread wake-ups per message.
        let mut queued = Vec::with_capacity(messages.len());
        for m in messages {
            let mut headers = FieldTable::default();
            if let Some(tp) = &m.traceparent {
                headers.insert("traceparent".into(), long(tp));
            }
            // Further routing keys of the same event (sender-selected
            // distribution): queues bound to any of them get this message.
            let also = hub_domain::event::also_routed_as(&m.event_type);
            if !also.is_empty() {
                headers.insert(
                    "CC".into(),
                    AMQPValue::FieldArray(also.iter().map(|k| long(k)).collect::<Vec<_>>().into()),
                );
            }
            let props = BasicProperties::default()
                .with_message_id(m.id.as_str().into())
                .with_type(m.event_type.as_str().into())
                .with_content_type("application/cloudevents+json".into())
                .with_delivery_mode(2)
                .with_headers(headers);
            let mut publish = Box::pin(maybe_done(ch.basic_publish(
                exchange.as_str().into(),
                m.event_type.as_str().into(),
                // Not `mandatory`: the broker drops an event no queue is
                // bound to (and counts it, `unroutable_dropped`) instead of
                // returning it in full, which cost the publisher and the
                // broker a sixth of their CPU in the inbound benchmark.
                BasicPublishOptions::default(),
                &m.body,
                props,
            )));
            let _ = futures::poll!(publish.as_mut());
            queued.push((m.id.clone(), publish));
        }
        let mut confirms = Vec::with_capacity(queued.len());
        for (id, mut publish) in queued {
            publish.as_mut().await;
            let confirm = publish
                .as_mut()
                .take_output()
                .expect("a finished publish has its output")?;
            confirms.push((id, confirm));
        }
        let results = try_join_all(
            confirms
                .into_iter()
                .map(|(id, c)| async move { c.await.map(|r| (id, r)) }),
        )
        .await?;
        for (id, confirmation) in results {
            if let Confirmation::Nack(_) = confirmation {
                return Err(BusError::Nacked(id));
            }
        }
        Ok(())
    }

    /// Publishes one message straight to a queue through the default exchange
    /// (retries and dead letters), confirmed.
    pub(crate) async fn publish_raw(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<(), BusError> {
        let ch = self.publisher().await?;
        let res = async {
            match publish_confirmed(&ch, exchange, routing_key, body, props).await? {
                Confirmation::Nack(_) => Err(BusError::Nacked(routing_key.to_owned())),
                _ => Ok(()),
            }
        }
        .await;
        if res.is_err() {
            self.publisher.lock().await.take();
        }
        res
    }

    /// Closes the connection (at shutdown). The close handshake is bounded:
    /// lapin can wait forever for a close-ok on a connection whose channels
    /// are all gone, and the broker drops the connection with the socket anyway.
    pub async fn close(&self) {
        // The publisher channel is closed (and the broker's answer awaited)
        // before the connection: dropped, lapin would close it in the
        // background, find it already closing with the connection, and log
        // that as a connection error.
        let publisher = self.publisher.lock().await.take();
        if let Some(ch) = publisher {
            let _ = tokio::time::timeout(Duration::from_secs(2), ch.close(200, "shutdown".into()))
                .await;
        }
        let conn = self.connection.lock().await.take();
        if let Some(c) = conn
            && tokio::time::timeout(Duration::from_secs(2), c.close(200, "shutdown".into()))
                .await
                .is_err()
        {
            tracing::debug!(
                "RabbitMQ close handshake did not finish in 2 s; dropping the connection"
            );
        }
    }
}

pub(crate) fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// Binds `queue` to `exchange` under each of `keys`.
async fn bind_all<K: AsRef<str>>(
    ch: &Channel,
    queue: &str,
    exchange: &str,
    keys: impl IntoIterator<Item = K>,
) -> Result<(), BusError> {
    for key in keys {
        ch.queue_bind(
            queue.into(),
            exchange.into(),
            key.as_ref().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    Ok(())
}

/// Publishes `body` to `exchange` under `routing_key` on `ch` (a channel in
/// confirm mode) and waits for the broker's confirmation.
pub async fn publish_confirmed(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) -> Result<Confirmation, lapin::Error> {
    ch.basic_publish(
        exchange.into(),
        routing_key.into(),
        BasicPublishOptions::default(),
        body,
        props,
    )
    .await?
    .await
}
