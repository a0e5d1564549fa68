//! Inbound webhooks, the cases an audit found untested: the generic HMAC
//! settings (encoding, prefix, header), a non-default timestamp tolerance,
//! rotation of a Standard Webhooks key with a short grace period, paging
//! and selective replay of received events, body limits on chunked
//! requests, the order of the checks, and `X-Forwarded-For` sent on
//! several header lines. Requests are signed here or by the signer of
//! [`crate::inbound`], independently of the code under test.

use crate::inbound::{Hub, mac1, mac256, now, secret_for};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hub_testkit::Answer;
use hub_testkit::eventually;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How a raw request carries its body.
enum Body<'a> {
    /// With its `Content-Length`.
    Whole(&'a str),
    /// `Transfer-Encoding: chunked`, one chunk per item, no `Content-Length`.
    Chunked(&'a [&'a str]),
}

/// Posts to the endpoint at `path` over a plain TCP connection, the request
/// written out here: reqwest cannot send a chunked body (no `stream`
/// feature), and a test of repeated header lines should put them on the
/// wire exactly as written. `headers` are sent one line each, in order, so
/// a name may repeat.
async fn raw_post(hub: &Hub, path: &str, headers: &[(&str, &str)], body: Body<'_>) -> Answer {
    let addr = hub.m.base.trim_start_matches("http://").to_owned();
    let mut req = format!(
        "POST /webhooks/{}/{path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n",
        hub.tenant
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    match body {
        Body::Whole(b) => req.push_str(&format!("Content-Length: {}\r\n\r\n{b}", b.len())),
        Body::Chunked(chunks) => {
            req.push_str("Transfer-Encoding: chunked\r\n\r\n");
            for c in chunks {
                req.push_str(&format!("{:x}\r\n{c}\r\n", c.len()));
            }
            req.push_str("0\r\n\r\n");
        }
    }
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // A refused request may be answered, and the connection closed, before
    // all of it is read: the answer is what the test checks, so neither a
    // failed write nor a reset after the answer is an error here.
    let _ = stream.write_all(req.as_bytes()).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let raw = String::from_utf8_lossy(&raw);
    let (head, text) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {raw:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        body: serde_json::from_str(text).unwrap_or(Value::Null),
        text: text.to_owned(),
    }
}

fn header(k: &str, v: String) -> (String, String) {
    (k.to_owned(), v)
}

/// A JSON body of exactly `len` bytes.
fn body_of_len(len: usize, fill: char) -> String {
    let b = format!("{{\"pad\":\"{}\"}}", fill.to_string().repeat(len - 10));
    assert_eq!(b.len(), len);
    b
}

/// A generic HMAC endpoint as a provider configures it, and how that
/// provider signs (written from the settings, not from the hub's code).
struct Generic {
    path: &'static str,
    settings: Value,
    header: &'static str,
    /// The encoding the endpoint reports (hex when not set).
    encoding: &'static str,
    sign: fn(&[u8], &[u8]) -> String,
    /// The right MAC in a form these settings must refuse.
    misformed: fn(&[u8], &[u8]) -> String,
}

/// Each generic variant accepts a request its provider signed (hmac-sha256
/// in base64, hmac-sha256 hex behind a `sha256=` prefix in a custom header,
/// hmac-sha1 in hex), and refuses with 401 `invalid_signature` a tampered
/// body, another secret, and the right MAC in a form the endpoint's
/// settings do not name (so each setting is applied, not ignored); only the
/// accepted requests are stored.
#[tokio::test]
async fn generic_hmac_encodings_prefixes_and_sha1_verify_independently_signed_requests() {
    let hub = Hub::start(|_| {}).await;
    let secret = "generic-shared-secret-1";
    let variants = [
        Generic {
            path: "sha256-base64",
            settings: json!({"signature_algorithm": "hmac-sha256", "signature_encoding": "base64"}),
            header: "X-Signature",
            encoding: "base64",
            sign: |k, b| B64.encode(mac256(k, b)),
            misformed: |k, b| hex::encode(mac256(k, b)),
        },
        Generic {
            path: "sha256-prefixed",
            settings: json!({"signature_algorithm": "hmac-sha256", "signature_prefix": "sha256=",
                             "signature_header": "X-Body-Signature"}),
            header: "X-Body-Signature",
            encoding: "hex",
            sign: |k, b| format!("sha256={}", hex::encode(mac256(k, b))),
            misformed: |k, b| hex::encode(mac256(k, b)),
        },
        Generic {
            path: "sha1-hex",
            settings: json!({"signature_algorithm": "hmac-sha1", "signature_encoding": "hex",
                             "signature_header": "X-Sha1-Signature"}),
            header: "X-Sha1-Signature",
            encoding: "hex",
            sign: |k, b| hex::encode(mac1(k, b)),
            misformed: |k, b| hex::encode(mac256(k, b)),
        },
    ];
    for v in &variants {
        let mut settings = v.settings.clone();
        settings["endpoint_path"] = json!(v.path);
        settings["secret_key"] = json!(secret);
        let e = hub.endpoint(settings).await;
        assert_eq!(e["signature_header"], v.header, "{e}");
        assert_eq!(e["signature_encoding"], v.encoding, "{e}");
        let body = json!({"variant": v.path, "load_id": "L-1"}).to_string();
        let signed = |key: &str, sig: fn(&[u8], &[u8]) -> String, body: &str| {
            vec![header(v.header, sig(key.as_bytes(), body.as_bytes()))]
        };

        let ok = hub
            .send(
                v.path,
                &signed(secret, v.sign, &body),
                &body,
                "application/json",
            )
            .await;
        assert_eq!(ok.status, 200, "{}: {}", v.path, ok.text);
        assert_eq!(ok.body["duplicate"], false, "{}", v.path);

        let tampered = body.replace("L-1", "L-2");
        let a = hub
            .send(
                v.path,
                &signed(secret, v.sign, &body),
                &tampered,
                "application/json",
            )
            .await;
        a.problem(401, "invalid_signature");
        assert_eq!(a.body["reason"], "invalid_signature", "{}", v.path);

        let a = hub
            .send(
                v.path,
                &signed("another-shared-secret", v.sign, &body),
                &body,
                "application/json",
            )
            .await;
        a.problem(401, "invalid_signature");

        let a = hub
            .send(
                v.path,
                &signed(secret, v.misformed, &body),
                &body,
                "application/json",
            )
            .await;
        a.problem(401, "invalid_signature");

        let stored = hub.events(e["id"].as_str().unwrap()).await;
        assert_eq!(stored.len(), 1, "{}: only the accepted request", v.path);
        assert_eq!(stored[0]["id"], ok.body["id"]);
    }
    hub.m.stop().await;
}

/// An endpoint's `timestamp_tolerance_seconds` replaces the default of
/// 300 s: at 30 s, a Standard Webhooks request signed 20 s ago (or 20 s
/// ahead) is accepted and one 60 s away either way gets 401
/// `stale_timestamp`, while an endpoint left at the default accepts 60 s.
#[tokio::test]
async fn a_custom_timestamp_tolerance_is_applied_instead_of_the_default() {
    let hub = Hub::start(|_| {}).await;
    let scheme = "standard-webhooks";
    let secret = secret_for(scheme);
    let e = hub
        .endpoint(json!({"endpoint_path": "tight", "signature_algorithm": scheme, "secret_key": secret, "timestamp_tolerance_seconds": 30}))
        .await;
    assert_eq!(e["timestamp_tolerance_seconds"], 30);
    let d = hub
        .endpoint(json!({"endpoint_path": "default", "signature_algorithm": scheme, "secret_key": secret}))
        .await;
    assert_eq!(d["timestamp_tolerance_seconds"], 300);

    for (n, skew) in [("past", -20), ("ahead", 20)] {
        let a = hub
            .send_signed(scheme, "tight", &secret, n, now() + skew)
            .await;
        assert_eq!(a.status, 200, "{skew} s: {}", a.text);
    }
    for (n, skew) in [("old", -60), ("future", 60)] {
        let a = hub
            .send_signed(scheme, "tight", &secret, n, now() + skew)
            .await;
        a.problem(401, "stale_timestamp");
        assert_eq!(a.body["reason"], "stale_timestamp");
    }
    let a = hub
        .send_signed(scheme, "default", &secret, "old", now() - 60)
        .await;
    assert_eq!(a.status, 200, "the default tolerance: {}", a.text);
    assert_eq!(hub.events(e["id"].as_str().unwrap()).await.len(), 2);
    hub.m.stop().await;
}

/// Rotating a Standard Webhooks endpoint's key (one rotation, 2 s grace
/// period, the new `whsec_` key generated by the hub): both keys verify
/// until the grace period ends; after it, the old key gets 401
/// `invalid_signature` and the new one still verifies.
#[tokio::test]
async fn standard_webhooks_rotation_accepts_both_keys_until_the_grace_period_expires() {
    let hub = Hub::start(|_| {}).await;
    let scheme = "standard-webhooks";
    let old = secret_for(scheme);
    let e = hub
        .endpoint(json!({"endpoint_path": "sw", "signature_algorithm": scheme, "secret_key": old}))
        .await;
    let id = e["id"].as_str().unwrap();
    let r = hub
        .post(
            &format!("/api/v1/webhooks/endpoints/{id}/rotate-secret"),
            json!({"grace_period_seconds": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new = r.body["secret_key"].as_str().unwrap().to_owned();
    let key = B64
        .decode(new.strip_prefix("whsec_").expect("a whsec_ key"))
        .expect("base64 after whsec_");
    assert!(key.len() >= 24, "{} key bytes", key.len());
    assert_ne!(new, old);
    let until: chrono::DateTime<chrono::Utc> = r.body["previous_secret_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let a = hub.send_signed(scheme, "sw", &new, "new-1", now()).await;
    assert_eq!(a.status, 200, "new key: {}", a.text);
    let a = hub.send_signed(scheme, "sw", &old, "old-1", now()).await;
    assert_eq!(a.status, 200, "old key in the grace period: {}", a.text);
    assert!(
        chrono::Utc::now() < until,
        "both keys were checked inside the grace period"
    );

    let wait = (until - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(300)).await;
    hub.send_signed(scheme, "sw", &old, "old-2", now())
        .await
        .problem(401, "invalid_signature");
    let a = hub.send_signed(scheme, "sw", &new, "new-2", now()).await;
    assert_eq!(a.status, 200, "new key after the grace period: {}", a.text);
    let stored = hub.events(id).await;
    let providers: Vec<&str> = stored
        .iter()
        .filter_map(|e| e["provider_event_id"].as_str())
        .collect();
    assert_eq!(providers, ["msg_new-1", "msg_old-1", "msg_new-2"]);
    hub.m.stop().await;
}

/// The events list pages with `next_cursor` in the documented order
/// (oldest first): five events at `limit=2` come as 2, 2, 1, each exactly
/// once and in the order received, the last page with `next_cursor` null;
/// a page that ends exactly at the last event has no cursor either.
#[tokio::test]
async fn events_pages_follow_next_cursor_oldest_first_and_each_event_once() {
    let hub = Hub::start(|_| {}).await;
    let e = hub.open_endpoint("paged").await;
    let id = e["id"].as_str().unwrap();
    let sent = hub.send_numbered("paged", 5).await;

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_deref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let page = hub
            .get(&format!(
                "/api/v1/webhooks/endpoints/{id}/events?limit=2{q}"
            ))
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let data = page.body["data"].as_array().unwrap();
        sizes.push(data.len());
        seen.extend(hub_testkit::api::ids::<Vec<String>>(data));
        match &page.body["next_cursor"] {
            Value::String(c) => cursor = Some(c.clone()),
            Value::Null => break,
            other => panic!("next_cursor: {other}"),
        }
        assert!(sizes.len() < 10, "paging does not end: {sizes:?}");
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, sent, "every event once, oldest first");

    let all = hub
        .get(&format!("/api/v1/webhooks/endpoints/{id}/events?limit=5"))
        .await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 5);
    assert!(all.body["next_cursor"].is_null(), "{}", all.text);
    hub.m.stop().await;
}

/// Replay with `event_ids` puts back only the FAILED events named: of three
/// failed events, the two named (with an unknown id among them) are
/// processed once the mapping is fixed, the third stays FAILED with its
/// attempt count, and is the only one a later replay of all finds.
#[tokio::test]
async fn replay_with_event_ids_reprocesses_only_the_named_failed_events() {
    // One attempt: the handler's own attempt fails the event for good.
    let hub = Hub::start(|c| c.webhook_max_retries = 1).await;
    let e = hub
        .endpoint(json!({"endpoint_path": "loads", "signature_algorithm": "none", "handler_type": "LOAD_STATUS"}))
        .await;
    let id = e["id"].as_str().unwrap();
    let mut sent = Vec::new();
    for n in 0..3 {
        let body = json!({"shipment": {"id": format!("L-{n}")}, "state": "DELIVERED"}).to_string();
        let a = hub.send("loads", &[], &body, "application/json").await;
        assert_eq!(a.status, 200, "{}", a.text);
        sent.push(a.body["id"].as_str().unwrap().to_owned());
    }
    let status_of = |events: &[Value], want: &str| -> Value {
        events
            .iter()
            .find(|e| e["id"] == want)
            .cloned()
            .unwrap_or_else(|| panic!("{want} not listed: {events:?}"))
    };
    eventually(15, "all three failed", || async {
        let ev = hub.events(id).await;
        (ev.len() == 3 && ev.iter().all(|e| e["status"] == "FAILED")).then_some(())
    })
    .await;

    let mapping = json!({"load_id": "$.shipment.id", "status": "$.state"});
    hub.update_endpoint(id, json!({"transform_template": mapping}))
        .await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let r = hub
        .post(
            &format!("/api/v1/webhooks/endpoints/{id}/events/replay"),
            json!({"event_ids": [&sent[0], &sent[2], unknown]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["replayed"], 2, "{}", r.text);
    let replayed: BTreeSet<&str> = r.body["event_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        replayed,
        BTreeSet::from([sent[0].as_str(), sent[2].as_str()])
    );

    let events = eventually(15, "the named events processed", || async {
        let ev = hub.events(id).await;
        [&sent[0], &sent[2]]
            .iter()
            .all(|s| status_of(&ev, s)["status"] == "PROCESSED")
            .then_some(ev)
    })
    .await;
    let left = status_of(&events, &sent[1]);
    assert_eq!(left["status"], "FAILED", "{left}");
    assert_eq!(left["attempts"], 1, "not attempted again: {left}");

    let r = hub
        .post_empty(&format!("/api/v1/webhooks/endpoints/{id}/events/replay"))
        .await;
    assert_eq!(r.body["replayed"], 1, "{}", r.text);
    assert_eq!(r.body["event_ids"], json!([&sent[1]]));
    hub.m.stop().await;
}

/// `HUB_INBOUND_MAX_BODY` holds for chunked requests, which declare no
/// length: one byte over the limit, or far over it, gets 413
/// `payload_too_large` and stores nothing, while a body of exactly the
/// limit is accepted whether chunked or sent with its `Content-Length`.
#[tokio::test]
async fn chunked_bodies_over_the_limit_get_413_and_one_at_the_limit_is_accepted() {
    let hub = Hub::start(|c| c.hub_inbound_max_body = 1024).await;
    let e = hub.open_endpoint("capped").await;

    let exact = body_of_len(1024, 'a');
    let a = raw_post(&hub, "capped", &[], Body::Whole(&exact)).await;
    assert_eq!(a.status, 200, "{}", a.text);

    let exact_chunked = body_of_len(1024, 'b');
    let chunks: Vec<&str> = [0, 256, 512, 768]
        .iter()
        .map(|&i| &exact_chunked[i..i + 256])
        .collect();
    let a = raw_post(&hub, "capped", &[], Body::Chunked(&chunks)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["duplicate"], false);

    let over = body_of_len(1025, 'c');
    let a = raw_post(
        &hub,
        "capped",
        &[],
        Body::Chunked(&[&over[..600], &over[600..]]),
    )
    .await;
    a.problem(413, "payload_too_large");

    let far_over = body_of_len(8 * 1024, 'd');
    let chunks: Vec<&str> = (0..8)
        .map(|i| &far_over[i * 1024..(i + 1) * 1024])
        .collect();
    let a = raw_post(&hub, "capped", &[], Body::Chunked(&chunks)).await;
    a.problem(413, "payload_too_large");

    let stored = hub.events(e["id"].as_str().unwrap()).await;
    let bodies: Vec<&str> = stored.iter().map(|e| e["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, [exact.as_str(), exact_chunked.as_str()]);
    hub.m.stop().await;
}

/// The checks run in the documented order, address → size → signature: an
/// unsigned (or oversized, or correctly signed) request from outside the
/// allowlist gets 403 `ip_not_allowed`, not 401 or 413; an oversized body
/// to a signed endpoint gets 413 whether unsigned, chunked or correctly
/// signed, not 401; and none of them is stored.
#[tokio::test]
async fn the_allowlist_is_checked_before_the_size_and_the_size_before_the_signature() {
    let hub = Hub::start(|c| c.hub_inbound_max_body = 1024).await;
    let secret = "order-shared-secret-1";
    let walled = hub
        .endpoint(json!({"endpoint_path": "walled", "signature_algorithm": "hmac-sha256", "secret_key": secret, "ip_whitelist": ["203.0.113.0/24"]}))
        .await;
    let signed = hub
        .endpoint(json!({"endpoint_path": "signed", "signature_algorithm": "hmac-sha256", "secret_key": secret}))
        .await;
    let sig = |body: &str| {
        vec![header(
            "X-Signature",
            hex::encode(mac256(secret.as_bytes(), body.as_bytes())),
        )]
    };
    let small = r#"{"x":1}"#;
    let big = body_of_len(4096, 'z');

    // The test connects from 127.0.0.1, outside the allowlist.
    for (headers, body) in [(vec![], small), (vec![], big.as_str()), (sig(small), small)] {
        let a = hub.send("walled", &headers, body, "application/json").await;
        a.problem(403, "ip_not_allowed");
    }

    for headers in [vec![], sig(&big)] {
        let a = hub.send("signed", &headers, &big, "application/json").await;
        a.problem(413, "payload_too_large");
    }
    let chunks: Vec<&str> = (0..4).map(|i| &big[i * 1024..(i + 1) * 1024]).collect();
    let a = raw_post(&hub, "signed", &[], Body::Chunked(&chunks)).await;
    a.problem(413, "payload_too_large");
    // The same endpoint with a small unsigned body: the signature is checked.
    hub.send("signed", &[], small, "application/json")
        .await
        .problem(401, "missing_signature");

    for e in [&walled, &signed] {
        assert!(hub.events(e["id"].as_str().unwrap()).await.is_empty());
    }
    hub.m.stop().await;
}

/// `X-Forwarded-For` on two header lines from a trusted proxy is one list
/// (RFC 9110 § 5.3): a line the client sent first cannot name an allowed
/// address when the proxy's appended line says otherwise (403), a client
/// the proxy saw at an allowed address is let in whatever the client's own
/// line says, trusted hops are skipped across lines, and the address
/// decided is the one stored.
#[tokio::test]
async fn forwarded_for_on_several_lines_is_walked_as_one_list() {
    let hub = Hub::start(|c| c.hub_trusted_proxies = "127.0.0.1/32".into()).await;
    let e = hub
        .endpoint(json!({"endpoint_path": "ips", "signature_algorithm": "none", "ip_whitelist": ["203.0.113.0/24"]}))
        .await;
    let id = e["id"].as_str().unwrap();
    let xff = "X-Forwarded-For";

    // The client's spoofed line first, the proxy's line (what it saw) last.
    let a = raw_post(
        &hub,
        "ips",
        &[(xff, "203.0.113.9"), (xff, "198.51.100.20")],
        Body::Whole(r#"{"n":1}"#),
    )
    .await;
    a.problem(403, "ip_not_allowed");
    assert!(a.text.contains("198.51.100.20"), "{}", a.text);
    // The same hops on one line: the same answer.
    let a = raw_post(
        &hub,
        "ips",
        &[(xff, "203.0.113.9, 198.51.100.20")],
        Body::Whole(r#"{"n":2}"#),
    )
    .await;
    a.problem(403, "ip_not_allowed");

    let mut accepted = Vec::new();
    for (lines, n) in [
        // A client the proxy saw at an allowed address, whatever its own line says.
        (&[(xff, "198.51.100.20"), (xff, "203.0.113.9")][..], 3),
        // The trusted hop on the last line is skipped.
        (&[(xff, "203.0.113.9"), (xff, "127.0.0.1")][..], 4),
    ] {
        let a = raw_post(&hub, "ips", lines, Body::Whole(&format!(r#"{{"n":{n}}}"#))).await;
        assert_eq!(a.status, 200, "{lines:?}: {}", a.text);
        accepted.push(a.body["id"].clone());
    }
    let stored = hub.events(id).await;
    assert_eq!(
        stored.iter().map(|e| e["id"].clone()).collect::<Vec<_>>(),
        accepted
    );
    assert!(
        stored.iter().all(|e| e["source_ip"] == "203.0.113.9"),
        "{stored:?}"
    );
    hub.m.stop().await;
}
