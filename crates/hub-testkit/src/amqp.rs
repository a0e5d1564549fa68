//! Talking to the bus as an outside producer or operator would.

use lapin::options::{
    BasicAckOptions, BasicGetOptions, ConfirmSelectOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

/// A message taken off a queue by [`Amqp::drain_messages`].
#[derive(Debug, Clone)]
pub struct Message {
    /// Its routing key (the event type).
    pub routing_key: String,
    /// Its body as JSON (a body that is not JSON, as a JSON string).
    pub body: serde_json::Value,
}

/// A connection to the test broker.
pub struct Amqp {
    conn: Connection,
    /// A channel with publisher confirms.
    pub channel: Channel,
}

impl Amqp {
    /// Connects to `HUB_TEST_RABBITMQ_URL`.
    pub async fn connect() -> Self {
        let conn = Connection::connect(&crate::rabbitmq_url(), ConnectionProperties::default())
            .await
            .expect("cannot reach RabbitMQ for tests: start it (cargo xtask up does) or set HUB_TEST_RABBITMQ_URL");
        let channel = conn.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        Self { conn, channel }
    }

    /// Publishes raw bytes to `exchange` with `routing_key`, confirmed.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        message_id: Option<&str>,
    ) {
        let mut props = BasicProperties::default().with_delivery_mode(2);
        if let Some(id) = message_id {
            props = props.with_message_id(id.into());
        }
        self.publish_with(exchange, routing_key, body, props).await;
    }

    /// Publishes raw bytes with the given properties (headers, content
    /// type, …), confirmed.
    pub async fn publish_with(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
    ) {
        hub_bus::publish_confirmed(&self.channel, exchange, routing_key, body, props)
            .await
            .expect("publish, confirmed");
    }

    /// A queue of this connection's own (exclusive, deleted with it) bound to
    /// `exchange` with `key`: what a consumer bound there would receive.
    /// Returns its name, for [`Amqp::get`], [`Amqp::drain`] or
    /// [`Amqp::drain_messages`].
    pub async fn tap(&self, exchange: &str, key: &str) -> String {
        let q = self
            .channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare a tap queue");
        let name = q.name().as_str().to_owned();
        self.channel
            .queue_bind(
                name.as_str().into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("bind a tap to {exchange}: {e}"));
        name
    }

    /// The routing key (the event type) of every message waiting in
    /// `queue`, taken off it.
    pub async fn drain(&self, queue: &str) -> Vec<String> {
        self.drain_messages(queue)
            .await
            .into_iter()
            .map(|m| m.routing_key)
            .collect()
    }

    /// Every message waiting in `queue`, taken off it, with its body.
    pub async fn drain_messages(&self, queue: &str) -> Vec<Message> {
        let mut messages = Vec::new();
        while let Ok(Some(msg)) = self
            .channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
        {
            let data = &msg.delivery.data;
            messages.push(Message {
                routing_key: msg.delivery.routing_key.as_str().to_owned(),
                body: serde_json::from_slice(data).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(data).into_owned())
                }),
            });
        }
        messages
    }

    /// Drains `queue` onto `seen` until `done` holds over all of `seen`
    /// (what earlier calls drained included), polling every 50 ms; panics
    /// after `secs` seconds naming `what` and the routing keys that arrived.
    pub async fn drain_until(
        &self,
        queue: &str,
        seen: &mut Vec<Message>,
        secs: u64,
        what: &str,
        mut done: impl FnMut(&[Message]) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            seen.extend(self.drain_messages(queue).await);
            if done(seen) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let keys: Vec<&str> = seen.iter().map(|m| m.routing_key.as_str()).collect();
                panic!("timed out after {secs} s waiting for: {what} (got {keys:?})");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Takes one message off `queue` (acknowledged), if there is one.
    pub async fn get(&self, queue: &str) -> Option<(Vec<u8>, FieldTable)> {
        let msg = self
            .channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .ok()??;
        msg.delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .expect("ack");
        let headers = msg
            .delivery
            .properties
            .headers()
            .clone()
            .unwrap_or_default();
        Some((msg.delivery.data, headers))
    }

    /// Deletes a prefix's exchanges and queues for `services` (cleanup).
    pub async fn delete_prefix(&self, prefix: &str, services: &[&str]) {
        let ch = match self.conn.create_channel().await {
            Ok(c) => c,
            Err(_) => return,
        };
        for s in services {
            for queue in ["events", "events.retry", "events.dlq"] {
                let name = format!("{prefix}{s}.{queue}");
                let _ = ch
                    .queue_delete(name.into(), QueueDeleteOptions::default())
                    .await;
            }
        }
        for exchange in ["events", "routed", "dlx"] {
            let name = format!("{prefix}hub.{exchange}");
            let _ = ch
                .exchange_delete(name.into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
}

/// An integer header, as the consumer writes it.
pub fn int_header(headers: &FieldTable, name: &str) -> Option<i64> {
    match headers.inner().get(name)? {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        _ => None,
    }
}

/// A text header.
pub fn str_header(headers: &FieldTable, name: &str) -> Option<String> {
    match headers.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

impl Amqp {
    /// Waits until `queue` exists, is bound and has a consumer (a service
    /// declares and binds its queue when its consumer starts; publishing
    /// before that would find no binding).
    pub async fn wait_for_queue(&self, queue: &str) {
        let q = queue.to_owned();
        crate::eventually(20, &format!("queue {queue} bound and consumed"), || {
            let q = q.clone();
            async move {
                let ch = self.conn.create_channel().await.ok()?;
                let opts = lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                let res = ch
                    .queue_declare(q.as_str().into(), opts, FieldTable::default())
                    .await
                    .ok();
                let _ = ch.close(200, "ok".into()).await;
                // A consumer means the service finished declaring and binding.
                res.filter(|q| q.consumer_count() > 0).map(|_| ())
            }
        })
        .await;
    }
}
