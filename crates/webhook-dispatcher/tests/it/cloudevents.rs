//! CloudEvents 1.0 as the SDKs write them (issue 25): events without
//! `time`, with ids that are not UUIDs, optional and extension attributes,
//! binary data; structured, binary and batched HTTP modes and the bus.
//! Events are built with the `cloudevents-sdk` crate and serialized by it.

use crate::outbound::{World, world};
use cloudevents::binding::http::{Builder, Serializer};
use cloudevents::message::BinaryDeserializer;
use cloudevents::{Event, EventBuilder, EventBuilderV10};
use hub_testkit::Call;
use hub_testkit::receiver::{Received, Receiver, Reply};
use hub_testkit::sockets::{assert_nodelay, port_of, tcp_sockets};
use reqwest::Method;
use serde_json::{Value, json};

/// A `ce-*` request as the SDK's HTTP binding writes an event in binary mode.
#[derive(Default)]
struct BinaryRequest {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Builder<BinaryRequest> for BinaryRequest {
    fn header(&mut self, key: &str, value: http::header::HeaderValue) {
        self.headers
            .push((key.to_owned(), value.to_str().unwrap().to_owned()));
    }
    fn body(&mut self, bytes: Vec<u8>) -> cloudevents::message::Result<BinaryRequest> {
        Ok(BinaryRequest {
            headers: std::mem::take(&mut self.headers),
            body: bytes,
        })
    }
    fn finish(&mut self) -> cloudevents::message::Result<BinaryRequest> {
        self.body(Vec::new())
    }
}

fn binary_mode(event: Event) -> BinaryRequest {
    BinaryDeserializer::deserialize_binary(event, Serializer::new(BinaryRequest::default()))
        .unwrap()
}

/// An `order.created` event built by the SDK: no `time`, an id that is not a
/// UUID, a subject, a data schema and an extension attribute.
fn sdk_event(id: &str, data: Value) -> Event {
    EventBuilderV10::new()
        .id(id)
        .source("https://tms.example.com/orders")
        .ty("order.created")
        .subject(format!("orders/{id}"))
        .extension("comexampleext", "tms-7")
        .data_with_schema(
            "application/json",
            "https://schemas.example.com/order.json",
            data,
        )
        .build()
        .unwrap()
}

async fn post(
    w: &World,
    content_type: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = w
        .api
        .at(&w.d)
        .request(Method::POST, "/api/v1/events")
        .header("Content-Type", content_type)
        .body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let a = req.call().await;
    (a.status, a.body)
}

/// POSTs the JSON `event` (one event or a batch) to the intake as
/// `content_type`.
async fn post_json(w: &World, content_type: &str, event: &Value) -> (u16, Value) {
    post(w, content_type, &[], event.to_string().into_bytes()).await
}

/// A world with a receiver subscribed to `order.*`.
async fn subscribed_world() -> (World, Receiver) {
    let w = world(|_| {}).await;
    let subscription = json!({"name": "ce", "event_types": ["order.*"]});
    let (rx, _) = w
        .subscribed_receiver(Reply::Status(200), subscription)
        .await;
    (w, rx)
}

fn by_subject<'a>(got: &'a [Received], subject: &str) -> &'a Received {
    got.iter()
        .find(|r| r.json()["subject"] == subject)
        .unwrap_or_else(|| panic!("no delivery with subject {subject}"))
}

#[tokio::test]
async fn sdk_events_in_structured_binary_and_batched_modes_are_delivered_as_written() {
    let (w, rx) = subscribed_world().await;

    // Structured mode, as `serde_json::to_vec(&event)` writes it: no `time`.
    let structured = sdk_event("ord-1", json!({"order_id": "ORD-1"}));
    let body = serde_json::to_vec(&structured).unwrap();
    assert!(
        !serde_json::from_slice::<Value>(&body)
            .unwrap()
            .as_object()
            .unwrap()
            .contains_key("time")
    );
    let (s, v) = post(&w, "application/cloudevents+json", &[], body.clone()).await;
    assert_eq!(
        (s, &v["id"], &v["accepted"], &v["deliveries"]),
        (202, &json!("ord-1"), &json!(true), &json!(1)),
        "{v}"
    );
    // The same source + id again is the same event.
    let (s, v) = post(&w, "application/cloudevents+json", &[], body).await;
    assert_eq!((s, &v["accepted"]), (202, &json!(false)), "{v}");

    // Binary mode, headers and body as the SDK's HTTP binding writes them.
    let req = binary_mode(sdk_event("ord-2", json!({"order_id": "ORD-2"})));
    assert!(req.headers.iter().any(|(k, _)| k == "ce-id"));
    let (s, v) = post(&w, "application/json", &req.headers, req.body).await;
    assert_eq!(
        (s, &v["id"], &v["accepted"]),
        (202, &json!("ord-2"), &json!(true)),
        "{v}"
    );

    // Binary data: base64 in the JSON event.
    let bytes = vec![0u8, 159, 146, 150, 10];
    let blob = EventBuilderV10::new()
        .id("ord-3")
        .source("https://tms.example.com/orders")
        .ty("order.document_attached")
        .subject("orders/ord-3")
        .data("application/pdf", bytes.clone())
        .build()
        .unwrap();
    let req = binary_mode(blob);
    let (s, v) = post(&w, "application/pdf", &req.headers, req.body).await;
    assert_eq!(s, 202, "{v}");

    // Batched mode: an array of SDK events, answered per event.
    let batch = vec![
        sdk_event("ord-4", json!({"order_id": "ORD-4"})),
        sdk_event("ord-1", json!({"order_id": "ORD-1"})),
    ];
    let (s, v) = post(
        &w,
        "application/cloudevents-batch+json",
        &[],
        serde_json::to_vec(&batch).unwrap(),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let answers: Vec<(Value, Value)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].clone(), a["accepted"].clone()))
        .collect();
    assert_eq!(
        answers,
        vec![
            (json!("ord-4"), json!(true)),
            (json!("ord-1"), json!(false))
        ]
    );

    // Every new event reaches the receiver once, with what its producer wrote.
    let got = rx.wait_for(4, 20).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(rx.requests().len(), 4, "each event delivered once");
    for n in [1, 2, 4] {
        let r = by_subject(&got, &format!("orders/ord-{n}"));
        let e = r.json();
        assert_eq!(e["id"], format!("ord-{n}"));
        assert_eq!(e["source"], "https://tms.example.com/orders");
        assert_eq!(e["dataschema"], "https://schemas.example.com/order.json");
        assert_eq!(e["datacontenttype"], "application/json");
        assert_eq!(e["comexampleext"], "tms-7");
        assert_eq!(e["data"], json!({"order_id": format!("ORD-{n}")}));
        assert_eq!(e["tenantid"], w.tenant.as_str());
        let time = e["time"]
            .as_str()
            .expect("time defaulted to the receipt time");
        let age = chrono::Utc::now() - chrono::DateTime::parse_from_rfc3339(time).unwrap().to_utc();
        assert!(age < chrono::TimeDelta::seconds(60), "{time}");
        // webhook-id is the hub's stable key of the event, a UUID.
        uuid::Uuid::parse_str(r.header("webhook-id").unwrap()).unwrap();
    }
    let pdf = by_subject(&got, "orders/ord-3").json();
    assert_eq!(pdf["datacontenttype"], "application/pdf");
    assert!(pdf.get("data").is_none(), "{pdf}");
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(pdf["data_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, bytes);
}

#[tokio::test]
async fn events_without_time_on_the_bus_in_structured_and_binary_mode_are_delivered() {
    let (w, rx) = subscribed_world().await;
    let event = EventBuilderV10::new()
        .id("bus-1")
        .source("erp")
        .ty("order.created")
        .extension("tenantid", w.tenant.as_str())
        .data("application/json", json!({"order_id": "B-1"}))
        .build()
        .unwrap();
    let amqp = hub_testkit::amqp::Amqp::connect().await;
    amqp.publish(
        &format!("{}hub.events", w.env.prefix),
        "order.created",
        &serde_json::to_vec(&event).unwrap(),
        None,
    )
    .await;
    // Binary mode (the AMQP binding): attributes in `cloudEvents:` headers.
    let mut headers = lapin::types::FieldTable::default();
    for (k, v) in [
        ("cloudEvents:specversion", "1.0"),
        ("cloudEvents:id", "bus-2"),
        ("cloudEvents:source", "erp"),
        ("cloudEvents:type", "order.created"),
        ("cloudEvents:subject", "orders/B-2"),
        ("cloudEvents:tenantid", w.tenant.as_str()),
    ] {
        headers.insert(k.into(), lapin::types::AMQPValue::LongString(v.into()));
    }
    let props = lapin::BasicProperties::default()
        .with_headers(headers)
        .with_content_type("application/json".into());
    amqp.publish_with(
        &format!("{}hub.events", w.env.prefix),
        "order.created",
        br#"{"order_id": "B-2"}"#,
        props,
    )
    .await;
    let got = rx.wait_for(2, 20).await;
    let by_id = |id: &str| {
        got.iter()
            .map(Received::json)
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("{id} not delivered"))
    };
    let e = by_id("bus-1");
    assert_eq!(e["data"], json!({"order_id": "B-1"}));
    assert!(e["time"].is_string(), "{e}");
    let e = by_id("bus-2");
    assert_eq!(
        (&e["data"], &e["subject"]),
        (&json!({"order_id": "B-2"}), &json!("orders/B-2"))
    );
    assert!(e["time"].is_string(), "{e}");
}

#[tokio::test]
async fn bad_events_are_refused_and_change_nothing() {
    let w = world(|_| {}).await;
    let events = || async {
        let sql = "SELECT COUNT(*) FROM events WHERE tenant_id = $1::uuid";
        w.env.scalar::<i64, _>(sql, &w.tenant).await
    };
    let before = events().await;
    // One bad event refuses the whole batch, naming it.
    let batch = json!([
        serde_json::to_value(sdk_event("b-1", json!({}))).unwrap(),
        {"specversion": "1.0", "id": "b-2", "source": "s", "type": "order.created", "time": "noon"},
    ]);
    let (s, v) = post_json(&w, "application/cloudevents-batch+json", &batch).await;
    assert_eq!((s, &v["code"]), (422, &json!("validation_failed")), "{v}");
    assert!(v.to_string().contains("[1].time"), "{v}");
    // Not the JSON event format.
    let (s, v) = post(&w, "application/cloudevents+avro", &[], b"\x00".to_vec()).await;
    assert_eq!(
        (s, &v["code"]),
        (415, &json!("unsupported_media_type")),
        "{v}"
    );
    // Binary mode whose body is not the JSON its Content-Type says.
    let mut req = binary_mode(sdk_event("b-3", json!({})));
    req.body = b"{not json".to_vec();
    let (s, v) = post(&w, "application/json", &req.headers, req.body).await;
    assert_eq!(s, 422, "{v}");
    // Another tenant's event, the dispatcher's own types, both data forms.
    for bad in [
        json!({"specversion": "1.0", "id": "x", "source": "s", "type": "order.created", "tenantid": uuid::Uuid::now_v7()}),
        json!({"specversion": "1.0", "id": "x", "source": "s", "type": "webhook.delivered"}),
        json!({"specversion": "1.0", "id": "x", "source": "s", "type": "order.created", "data": 1, "data_base64": "AA=="}),
        json!({"specversion": "1.0", "source": "s", "type": "order.created"}),
    ] {
        let (s, v) = post_json(&w, "application/cloudevents+json", &bad).await;
        assert_eq!(s, 422, "{bad} → {v}");
    }
    assert_eq!(events().await, before, "nothing stored");
}

#[tokio::test]
async fn delivery_and_intake_connections_disable_nagle() {
    let (w, rx) = subscribed_world().await;
    for n in 0..4 {
        w.post_event("order.created", json!({"n": n})).await;
    }
    rx.wait_for(4, 20).await;
    let socks = tcp_sockets();
    let postgres = port_of(&hub_testkit::database_server_url());
    let (dispatcher, receiver) = (port_of(&w.d.base), port_of(&rx.url("/")));
    assert_nodelay(&socks, "delivery", |s| s.remote_port == receiver);
    assert_nodelay(&socks, "accepted intake", |s| s.local_port == dispatcher);
    assert_nodelay(&socks, "Postgres", |s| s.remote_port == postgres);
}
