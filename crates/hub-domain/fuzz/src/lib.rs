//! What each fuzz target checks, one function per target, shared by the
//! `cargo fuzz` binaries (`fuzz_targets/*.rs`) and the regression tests of
//! hub-domain (`tests/fuzz_regressions.rs` includes this file), so an input
//! that once crashed a target runs through exactly the same checks in the
//! normal test suite.
//!
//! Every check reads untrusted bytes as the services do and panics only
//! when an invariant breaks: a parser that panics, a request that verifies
//! without its key or stops verifying once tampered with, a value that does
//! not survive a render and a parse back, a limit that lets a bigger input
//! through. An input the parser refuses with an error is a pass.
//!
//! Inputs are split into fields at NUL bytes, and option sets are chosen
//! from the first bytes, so the fuzzer explores them along with the text.

#![forbid(unsafe_code)]

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use hub_domain::event::http::{self, BindingError, MAX_BATCH, Mode};
use hub_domain::inbound::handshake::{Handshake, handshake};
use hub_domain::inbound::ip::Cidrs;
use hub_domain::inbound::processing::{Input, Outcome, Policy, attempt};
use hub_domain::inbound::{
    Encoding, HandlerType, Rejection, Request, Scheme, Verifier, accepts, check_filter_entry,
    dedupe_key, parse_body, provider_event_id, provider_event_type, transform,
};
use hub_domain::schedule::{self, SyncFrequency};
use hub_domain::webhook::EventPattern;
use hub_domain::{Envelope, EventType, TenantId, cursor, gateway};
use serde_json::Value;
use std::borrow::Cow;
use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

/// A target's check: panics when an invariant breaks on `data`.
pub type Check = fn(&[u8]);

/// The targets by name, as `cargo fuzz list` shows them and as the
/// regression inputs are filed (`tests/fuzz-regressions/<name>/`).
pub const TARGETS: &[(&str, Check)] = &[
    ("inbound_signature", inbound_signature),
    ("inbound_payload", inbound_payload),
    ("cloudevents", cloudevents),
    ("ip_allowlist", ip_allowlist),
    ("cursor", cursor),
    ("schedule", schedule),
    ("gateway_headers", gateway_headers),
];

/// Bytes as text, as the HTTP layer hands header values and paths over:
/// invalid UTF-8 becomes U+FFFD.
fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Takes one byte off the front of the input to choose an option (0 when the
/// input is empty).
fn take(data: &mut &[u8]) -> u8 {
    match data.split_first() {
        Some((b, rest)) => {
            *data = rest;
            *b
        }
        None => 0,
    }
}

fn bit(b: u8, n: u8) -> bool {
    b & (1 << n) != 0
}

/// The first `n - 1` NUL-separated fields and the rest (which may hold NULs),
/// padded with empty fields.
fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == 0).collect();
    out.resize(n, b"");
    out
}

/// The nesting depth of JSON text: the most `[` and `{` open at once,
/// outside strings.
fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

// ------------------------------------------------------ inbound signatures

/// Signs `body` the way the provider of `v.scheme` documents it, written
/// here independently of the verifier: the headers to send.
fn provider_sign(
    v: &Verifier,
    secret: &str,
    method: &str,
    url: &str,
    id: &str,
    now: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    fn mac256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("any key length");
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }
    fn mac1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).expect("any key length");
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }
    let ts = now.to_string();
    let h = |k: &str, val: String| (k.to_owned(), val);
    let key = secret.as_bytes();
    match v.scheme {
        Scheme::StandardWebhooks => {
            let raw = STANDARD
                .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
                .expect("a Standard Webhooks secret is base64");
            let sig = mac256(&raw, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
            vec![
                h("webhook-id", id.to_owned()),
                h("webhook-timestamp", ts),
                h(&v.header, format!("v1,{}", STANDARD.encode(sig))),
            ]
        }
        Scheme::Github => vec![h(
            &v.header,
            format!("sha256={}", hex::encode(mac256(key, &[body]))),
        )],
        Scheme::Stripe => {
            let sig = mac256(key, &[ts.as_bytes(), b".", body]);
            vec![h(&v.header, format!("t={ts},v1={}", hex::encode(sig)))]
        }
        Scheme::Shopify | Scheme::Quickbooks | Scheme::Xero => {
            vec![h(&v.header, STANDARD.encode(mac256(key, &[body])))]
        }
        Scheme::Slack => {
            let sig = mac256(key, &[b"v0:", ts.as_bytes(), b":", body]);
            vec![
                h("X-Slack-Request-Timestamp", ts),
                h(&v.header, format!("v0={}", hex::encode(sig))),
            ]
        }
        Scheme::HubspotV3 => {
            // The URL has no percent-encoding here (the caller strips it),
            // so it is signed as received.
            let ms = (now * 1000).to_string();
            let sig = mac256(
                key,
                &[method.as_bytes(), url.as_bytes(), body, ms.as_bytes()],
            );
            vec![
                h("X-HubSpot-Request-Timestamp", ms),
                h(&v.header, STANDARD.encode(sig)),
            ]
        }
        Scheme::Twilio => {
            let mut params: Vec<(String, String)> = url::form_urlencoded::parse(body)
                .map(|(k, val)| (k.into_owned(), val.into_owned()))
                .collect();
            params.sort();
            let mut msg = url.as_bytes().to_vec();
            for (k, val) in params {
                msg.extend_from_slice(k.as_bytes());
                msg.extend_from_slice(val.as_bytes());
            }
            vec![h(&v.header, STANDARD.encode(mac1(key, &[&msg])))]
        }
        Scheme::Samsara => {
            let raw = STANDARD.decode(secret).expect("a Samsara secret is base64");
            let sig = mac256(&raw, &[b"v1:", ts.as_bytes(), b":", body]);
            vec![
                h("X-Samsara-Timestamp", ts),
                h(&v.header, format!("v1={}", hex::encode(sig))),
            ]
        }
        Scheme::HmacSha256 | Scheme::HmacSha1 => {
            let raw = if v.scheme == Scheme::HmacSha1 {
                mac1(key, &[body])
            } else {
                mac256(key, &[body])
            };
            let enc = match v.encoding {
                Encoding::Hex => hex::encode(raw),
                Encoding::Base64 => STANDARD.encode(raw),
            };
            vec![h(
                &v.header,
                format!("{}{enc}", v.prefix.as_deref().unwrap_or("")),
            )]
        }
        Scheme::None => Vec::new(),
    }
}

/// Whether the scheme signs a timestamp that must be near now.
fn timestamped(scheme: Scheme) -> bool {
    matches!(
        scheme,
        Scheme::StandardWebhooks
            | Scheme::Stripe
            | Scheme::Slack
            | Scheme::HubspotV3
            | Scheme::Samsara
    )
}

const FORM: &str = "application/x-www-form-urlencoded";

/// `inbound_signature`: the first byte picks the scheme, the second the
/// mode and options; then NUL-separated fields: secret, signature header,
/// timestamp header, webhook id, URL, method, body.
///
/// - Verify mode: the fields go in as headers as they are (every header a
///   scheme reads is present). Any answer but a panic is allowed, and a
///   request that verifies must stop verifying with one more byte of body,
///   with another secret, and (for timestamped schemes) once the clock has
///   moved past the tolerance; it must not verify under an empty or
///   truncated signature.
/// - Sign mode: the request is signed as the provider documents it (by a
///   signer written here, not the verifier's): it must verify with its
///   secret, also listed after another one (rotation), and not with
///   another secret, a tampered body or a stale clock.
pub fn inbound_signature(data: &[u8]) {
    let mut data = data;
    let scheme = Scheme::ALL[usize::from(take(&mut data)) % Scheme::ALL.len()];
    let opts = take(&mut data);
    let f = fields(data, 7);
    let (secret, sig, ts, id, url, method, body) = (
        text(f[0]),
        text(f[1]),
        text(f[2]),
        text(f[3]),
        text(f[4]),
        text(f[5]),
        f[6],
    );
    let mut v = Verifier::preset(scheme);
    if bit(opts, 2) {
        v.encoding = Encoding::Base64;
    }
    if bit(opts, 3) {
        v.prefix = Some("sha256=".to_owned());
    }
    let form = bit(opts, 1);
    if bit(opts, 0) {
        sign_and_verify(&v, &secret, &method, &url, &id, ts.len() as i64, body);
    } else {
        verify_as_sent(&v, opts, &secret, &sig, &ts, &id, &url, &method, body, form);
    }
}

#[allow(clippy::too_many_arguments)]
fn verify_as_sent(
    v: &Verifier,
    opts: u8,
    secret: &str,
    sig: &str,
    ts: &str,
    id: &str,
    url: &str,
    method: &str,
    body: &[u8],
    form: bool,
) {
    let mut headers: Vec<(String, String)> = [
        "webhook-id",
        "webhook-timestamp",
        "X-Slack-Request-Timestamp",
        "X-HubSpot-Request-Timestamp",
        "X-Samsara-Timestamp",
    ]
    .iter()
    .map(|name| {
        let value = if *name == "webhook-id" { id } else { ts };
        ((*name).to_owned(), value.to_owned())
    })
    .collect();
    headers.push((v.header.clone(), sig.to_owned()));
    if form {
        headers.push(("Content-Type".to_owned(), FORM.to_owned()));
    }
    // Now is the signed time when there is one (so the MAC is what
    // decides), moved by the options.
    let signed_at = ts.trim().parse::<i64>().unwrap_or(1_700_000_000);
    let signed_at = if v.scheme == Scheme::HubspotV3 {
        signed_at.div_euclid(1000)
    } else {
        signed_at
    };
    let now = match opts >> 6 {
        0 => signed_at,
        1 => signed_at.saturating_add(v.tolerance_seconds + 1),
        2 => signed_at.saturating_sub(v.tolerance_seconds),
        _ => 1_700_000_000,
    };
    let req = Request {
        method,
        url,
        headers: &headers,
        body,
        now,
    };
    let verdict = v.verify(&req, &[secret]);
    if let Err(Rejection::Missing(name)) = &verdict {
        panic!(
            "{}: {name} reported missing, but every header was sent",
            v.scheme
        );
    }
    if verdict.is_err() || v.scheme == Scheme::None {
        return;
    }
    let tampered = [body, b"x"].concat();
    let other = format!("{secret}x");
    assert!(
        v.verify(
            &Request {
                body: &tampered,
                ..req
            },
            &[secret]
        )
        .is_err(),
        "{}: verified, and still verified with a byte added to the body",
        v.scheme
    );
    assert!(
        v.verify(&req, &[&other]).is_err(),
        "{}: verified, and still verified under another secret",
        v.scheme
    );
    if timestamped(v.scheme)
        && let Some(later) = now.checked_add(v.tolerance_seconds * 2 + 2)
    {
        let late = Request { now: later, ..req };
        assert!(
            matches!(v.verify(&late, &[secret]), Err(Rejection::Stale { .. })),
            "{}: verified, and still verified long after its timestamp",
            v.scheme
        );
    }
    // An empty signature never verifies, nor one cut by its last
    // character (when it is one signature with nothing around it).
    let mut cuts = vec![String::new()];
    if sig.trim() == sig && !sig.contains([' ', ',']) {
        let mut short = sig.to_owned();
        short.pop();
        cuts.push(short);
    }
    for short in cuts {
        let mut headers = headers.clone();
        if let Some(h) = headers.iter_mut().find(|(k, _)| *k == v.header) {
            h.1.clone_from(&short);
        }
        let shortened = Request {
            headers: &headers,
            ..req
        };
        assert!(
            v.verify(&shortened, &[secret]).is_err(),
            "{}: verified with the signature cut to {short:?}",
            v.scheme
        );
    }
}

/// A secret the scheme can key with, made from fuzzer bytes.
fn usable_secret(scheme: Scheme, raw: &str) -> String {
    let raw = if raw.is_empty() { "s" } else { raw };
    match scheme {
        Scheme::StandardWebhooks => format!("whsec_{}", STANDARD.encode(raw)),
        Scheme::Samsara => STANDARD.encode(raw),
        _ => raw.to_owned(),
    }
}

fn sign_and_verify(
    v: &Verifier,
    secret: &str,
    method: &str,
    url: &str,
    id: &str,
    offset: i64,
    body: &[u8],
) {
    let secret = usable_secret(v.scheme, secret);
    // HubSpot signs the URL with some escapes decoded; signed here as
    // received, so without any. Header values are one line.
    let url: String = url.chars().filter(|c| *c != '%').collect();
    let id: String = id.chars().filter(|c| !c.is_control()).collect();
    let id = if id.trim().is_empty() {
        "msg_1".to_owned()
    } else {
        id
    };
    let now = 1_700_000_000 + offset;
    let mut headers = provider_sign(v, &secret, method, &url, &id, now, body);
    // Twilio signs form parameters; its JSON bodies go through bodySHA256.
    headers.push(("content-type".to_owned(), FORM.to_owned()));
    let req = Request {
        method,
        url: &url,
        headers: &headers,
        body,
        now,
    };
    let other = usable_secret(v.scheme, &format!("{secret}-other"));
    assert_eq!(
        v.verify(&req, &[&secret]),
        Ok(()),
        "{}: a request signed as the provider documents does not verify",
        v.scheme
    );
    assert_eq!(
        v.verify(&req, &[&other, &secret]),
        Ok(()),
        "{}: the current secret listed second (rotation) does not verify",
        v.scheme
    );
    if v.scheme == Scheme::None {
        return;
    }
    assert!(
        v.verify(&req, &[&other]).is_err(),
        "{}: verified under another secret",
        v.scheme
    );
    let tampered = [body, b"x"].concat();
    assert!(
        v.verify(
            &Request {
                body: &tampered,
                ..req
            },
            &[&secret]
        )
        .is_err(),
        "{}: verified with a byte added to the body",
        v.scheme
    );
    if timestamped(v.scheme) {
        let late = Request {
            now: now + v.tolerance_seconds + 1,
            ..req
        };
        assert!(
            matches!(v.verify(&late, &[&secret]), Err(Rejection::Stale { .. })),
            "{}: verified past the tolerance",
            v.scheme
        );
    }
}

// --------------------------------------------------------- inbound payload

/// `inbound_payload`: the first byte picks the scheme, the second the
/// handler and options; then NUL-separated fields: content type, provider
/// id header value, `event_types` filter (JSON), transform template (JSON),
/// body. Checks the body's parsing, the handshake, the provider's event id
/// and type, the dedupe key, the filter, the field mapping and one
/// processing attempt:
/// - a handshake only for Slack's `url_verification` and Xero's empty
///   intent, Slack's echoing only the challenge;
/// - provider ids and types of 1 to 200 characters; a dedupe key `id:…` or
///   `sha256:<64 hex>`;
/// - a template that validates applies to any payload;
/// - a processed attempt publishes the handler's event type with the
///   handler's required fields in the payload, an event that survives its
///   JSON form; a filtered-out one is skipped; a failure is a retry with a
///   delay until the attempts run out.
pub fn inbound_payload(data: &[u8]) {
    let mut data = data;
    let scheme = Scheme::ALL[usize::from(take(&mut data)) % Scheme::ALL.len()];
    let opts = take(&mut data);
    let handler = HandlerType::ALL[usize::from(opts & 3)];
    let f = fields(data, 5);
    let content_type = text(f[0]);
    let id_header = text(f[1]);
    let headers: Vec<(String, String)> = [
        "content-type",
        "webhook-id",
        "X-GitHub-Delivery",
        "X-Shopify-Webhook-Id",
        "I-Twilio-Idempotency-Token",
        "Idempotency-Key",
        "X-GitHub-Event",
        "X-Shopify-Topic",
    ]
    .iter()
    .map(|h| {
        let value = if *h == "content-type" {
            content_type.as_ref()
        } else {
            id_header.as_ref()
        };
        ((*h).to_owned(), value.to_owned())
    })
    .collect();
    let filter: Value = serde_json::from_slice(f[2]).unwrap_or(Value::Null);
    let template: Option<Value> = serde_json::from_slice(f[3]).ok();
    let body = f[4];

    let payload = parse_body(&headers, body);
    match handshake(scheme, payload.as_ref()) {
        None => {}
        Some(Handshake::Json(answer)) => {
            assert_eq!(scheme, Scheme::Slack, "a JSON handshake for {scheme}");
            let keys: Vec<&String> = answer
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            assert_eq!(
                keys,
                ["challenge"],
                "Slack's answer echoes the challenge only"
            );
        }
        Some(Handshake::Empty) => {
            assert_eq!(scheme, Scheme::Xero, "an empty handshake for {scheme}")
        }
    }
    let id = provider_event_id(scheme, &headers, payload.as_ref());
    let event_type = provider_event_type(scheme, &headers, payload.as_ref());
    for s in id.iter().chain(&event_type) {
        assert!(
            !s.is_empty() && s.len() <= 200,
            "{scheme}: id or type {s:?}"
        );
    }
    let key = dedupe_key(id.as_deref(), body);
    let hashed = key
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(key.starts_with("id:") || hashed, "dedupe key {key:?}");

    let entries: Vec<String> = filter
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for entry in &entries {
        if check_filter_entry(entry).is_ok() && !entry.contains('*') {
            assert!(
                accepts(std::slice::from_ref(entry), Some(entry)),
                "the filter {entry:?} refuses its own type"
            );
        }
    }
    if let Some(t) = &template
        && transform::validate(t).is_ok()
    {
        for input in [payload.clone().unwrap_or(Value::Null), Value::Null] {
            if let Err(e) = transform::apply(t, &input) {
                panic!("a template that validates does not apply: {e}\n{t}");
            }
        }
    }

    let policy = Policy::new(vec![Duration::from_millis(500), Duration::from_secs(5)], 3);
    let attempts = i32::from(opts >> 5) + 1;
    let ids = uuid::Uuid::from_u128(0x0190_a0d0_0000_7000_8000_0000_0000_0001);
    let input = Input {
        source: "integration-manager",
        id: ids,
        tenant_id: TenantId(ids),
        endpoint_id: ids,
        endpoint_path: "in",
        integration_id: None,
        provider_event_id: id.as_deref(),
        event_type: event_type.as_deref(),
        handler_type: handler.as_str(),
        event_types: &filter,
        transform_template: template.as_ref(),
        mapped: None,
        target_service: bit(opts, 2).then_some("tms"),
        payload: payload.as_ref(),
        attempts,
    };
    let (outcome, published) = attempt(&input, &policy);
    match (&outcome, &published) {
        (Outcome::Processed { published: pid }, Some(env)) => {
            assert_eq!(env.id.0, *pid);
            assert_eq!(env.event_type.as_str(), handler.event_type());
            let inner = &env.data["payload"];
            for field in handler.required_fields() {
                assert!(
                    !inner.get(*field).is_none_or(Value::is_null),
                    "{} published without {field}",
                    handler.as_str()
                );
            }
            round_trip(env);
        }
        (Outcome::Skipped, None) => {
            assert!(
                !accepts(&entries, event_type.as_deref()),
                "skipped, but the filter accepts it"
            );
        }
        (Outcome::Retry { retry_in_ms, .. }, None) => {
            assert!(
                attempts < policy.max_attempts && *retry_in_ms > 0,
                "retry at {attempts}"
            );
        }
        (Outcome::Failed { .. }, None) => {
            assert!(
                attempts >= policy.max_attempts,
                "failed for good at attempt {attempts}"
            );
        }
        other => panic!("an outcome and its event disagree: {other:?}"),
    }
}

/// An event written as JSON reads back as itself, as the bus's consumers
/// read it.
fn round_trip(env: &Envelope) {
    let json = serde_json::to_vec(env).expect("an event serializes");
    match Envelope::from_slice(&json) {
        Ok(back) => assert_eq!(&back, env, "the event changed through its JSON form"),
        Err(e) => panic!(
            "an accepted event does not read back from its JSON form: {e}\n{}",
            String::from_utf8_lossy(&json)
        ),
    }
}

// ------------------------------------------------------------- CloudEvents

/// `cloudevents`: the first byte picks the `Content-Type` (structured,
/// batched, none, `application/json`, another format, or the first field);
/// then NUL-separated fields: the content type, headers (`name:value` per
/// line), the body. What the HTTP binding accepts:
/// - is in the mode its content type and headers say, one event unless
///   batched, at most [`MAX_BATCH`];
/// - keeps the limits: `id` at most 256 bytes, `source` 200, 64 extension
///   attributes, and a body nested deeper than serde_json's 128 levels is
///   refused;
/// - survives its JSON form: written as the bus carries it and read back,
///   it is the same event.
pub fn cloudevents(data: &[u8]) {
    let mut data = data;
    let pick = take(&mut data);
    let f = fields(data, 3);
    let own_type = text(f[0]);
    let content_type = match pick % 8 {
        0 => Some("application/cloudevents+json"),
        1 => Some("application/cloudevents-batch+json"),
        2 => None,
        3 => Some("application/json"),
        4 => Some("application/cloudevents+json; charset=utf-8"),
        5 => Some("text/plain"),
        _ => Some(own_type.as_ref()),
    };
    let header_text = text(f[1]);
    let headers: Vec<(&str, &[u8])> = header_text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k, v.trim().as_bytes()))
        .collect();
    let body = f[2];
    let result = http::parse(content_type, headers.iter().copied(), body);
    let (mode, events) = match result {
        Ok(ok) => ok,
        Err(BindingError::UnsupportedFormat(m)) => {
            assert!(!m.is_empty());
            return;
        }
        Err(BindingError::Invalid(e)) => {
            assert!(!e.field.is_empty(), "an error without its field: {e}");
            return;
        }
    };
    if mode != Mode::Binary {
        assert!(
            json_depth(body) <= 128,
            "a body nested {} deep was accepted",
            json_depth(body)
        );
    }
    let lower = content_type
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match mode {
        Mode::Batched => {
            assert!(
                lower.contains("cloudevents-batch"),
                "batched under {content_type:?}"
            );
            assert!(
                events.len() <= MAX_BATCH,
                "{} events in a batch",
                events.len()
            );
        }
        Mode::Binary => {
            assert!(
                headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("ce-specversion")),
                "binary mode without ce-specversion"
            );
            assert_eq!(events.len(), 1);
        }
        Mode::Structured => assert_eq!(events.len(), 1),
    }
    for env in &events {
        assert!(
            env.id_text().len() <= 256,
            "an id of {} bytes",
            env.id_text().len()
        );
        assert!(
            env.source.len() <= 200,
            "a source of {} bytes",
            env.source.len()
        );
        assert!(
            env.extensions.len() <= 64,
            "{} extensions",
            env.extensions.len()
        );
        assert_eq!(env.specversion, "1.0");
        round_trip(env);
    }
}

// ------------------------------------------------------------ IP allowlist

/// `ip_allowlist`: NUL-separated fields: an allowlist (comma-separated, as
/// configured and as endpoints store it), the peer address, the
/// `X-Forwarded-For` lines (one per line). A list that parses prints as
/// networks that parse to the same list; the client address is the peer
/// unless the peer is a trusted proxy, and otherwise one of the forwarded
/// hops; an untrusted client is never inside the trusted list.
pub fn ip_allowlist(data: &[u8]) {
    let f = fields(data, 3);
    let list = text(f[0]);
    let Ok(cidrs) = Cidrs::parse_csv(&list) else {
        return;
    };
    let printed = cidrs.to_strings();
    let again = Cidrs::parse(&printed).expect("printed networks parse");
    assert_eq!(
        again, cidrs,
        "the list changed through its text: {printed:?}"
    );
    let peer_text = text(f[1]);
    let Ok(peer) = peer_text.trim().parse::<IpAddr>() else {
        return;
    };
    let xff_text = text(f[2]);
    let xff: Vec<&str> = xff_text.lines().collect();
    let client = client_ip_checked(peer, &xff, &cidrs);
    if !cidrs.contains(peer) {
        assert_eq!(
            client,
            peer.to_canonical(),
            "an untrusted peer's headers were believed"
        );
    }
    let hops: Vec<IpAddr> = xff
        .iter()
        .flat_map(|l| l.split(','))
        .filter_map(|h| h.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect();
    assert!(
        client == peer.to_canonical() || hops.contains(&client),
        "the client {client} is neither the peer nor a hop"
    );
}

fn client_ip_checked(peer: IpAddr, xff: &[&str], trusted: &Cidrs) -> IpAddr {
    hub_domain::inbound::ip::client_ip(peer, xff, trusted)
}

// ------------------------------------------------------------------ cursor

/// `cursor`: any text as a list's `cursor` parameter: one that decodes is
/// the one [`cursor::encode`] makes for its id (cursors are canonical, so
/// one position has one cursor).
pub fn cursor(data: &[u8]) {
    let raw = text(data);
    if let Some(id) = cursor::decode(&raw) {
        assert_eq!(cursor::encode(id), raw, "two cursors for one position");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(raw.as_bytes()).ok().map(|b| b.len()),
            Some(16)
        );
    }
}

// ---------------------------------------------------------------- schedule

/// `schedule`: the first eight bytes are a start time (seconds from 1970,
/// kept within chrono's range), the rest an integration's `sync_frequency`.
/// A frequency that parses is at most 50 characters and parses again from
/// its stored form to itself; its next run is after the start (within 50 years
/// for a cron expression, which is refused when it matches no date),
/// and the stored-frequency path gives the same answer.
pub fn schedule(data: &[u8]) {
    let (head, rest) = data.split_at(data.len().min(8));
    let mut secs = [0u8; 8];
    secs[..head.len()].copy_from_slice(head);
    // 1970 to about 2100, so 50 years more stays inside chrono's range.
    let secs = i64::from_le_bytes(secs).rem_euclid(4_102_444_800);
    let nanos = u32::from(head.first().copied().unwrap_or(0)) * 3_906_250;
    let Some(after) = Utc.timestamp_opt(secs, nanos).single() else {
        return;
    };
    let raw = text(rest);
    let Ok(freq) = SyncFrequency::parse(&raw) else {
        return;
    };
    let stored = freq.as_str();
    assert!(
        stored.chars().count() <= schedule::MAX_LEN,
        "{stored:?} is too long"
    );
    assert_eq!(
        SyncFrequency::parse(stored).as_ref(),
        Ok(&freq),
        "the stored form {stored:?} parses otherwise"
    );
    let next = schedule::next_run(&freq, after);
    assert_eq!(schedule::next_run_of(Some(&raw), after), next);
    match (&freq, next) {
        (SyncFrequency::Manual, None) => {}
        (SyncFrequency::Manual, Some(n)) => panic!("MANUAL scheduled at {n}"),
        (SyncFrequency::Cron(_), None) => {
            panic!("{stored:?} has no run after {after}");
        }
        (_, None) => panic!("{stored:?} has no run after {after}"),
        (_, Some(n)) => {
            assert!(n > after, "{stored:?}: next run {n} is not after {after}");
            // The calendar repeats; the rarest dates (February 29th on a
            // Monday) come back within 40 years.
            let limit: DateTime<Utc> = after + chrono::Duration::days(50 * 366);
            assert!(
                n <= limit,
                "{stored:?}: next run {n} more than 50 years after {after}"
            );
        }
    }
}

// --------------------------------------------------------- gateway headers

/// `gateway_headers`: the first byte picks the check, the rest is a header
/// value (or name list) from a provider or a client:
/// - `Retry-After`: whole seconds are that many seconds; an HTTP date is
///   the time until it (zero in the past); a date printed back parses to
///   the same wait;
/// - `Connection`: the names listed are lower case, trimmed and non-empty,
///   and none of them is forwarded either way;
/// - event types and patterns (what providers' events and subscriptions
///   name): a type that parses reads back from its JSON; a pattern that
///   parses matches what its text names and routes by a binding key;
/// - an `event_types` filter entry that passes its check accepts its type.
pub fn gateway_headers(data: &[u8]) {
    let mut data = data;
    let pick = take(&mut data);
    let value = text(data);
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    match pick % 4 {
        0 => {
            let Some(wait) = gateway::retry_after(&value, now) else {
                return;
            };
            if let Ok(n) = value.trim().parse::<u64>() {
                assert_eq!(wait, Duration::from_secs(n));
            }
            if let Ok(at) = httpdate::parse_http_date(value.trim()) {
                let expected = at.duration_since(now).unwrap_or(Duration::ZERO);
                assert_eq!(wait, expected, "Retry-After {value:?}");
                let printed = httpdate::fmt_http_date(at);
                assert_eq!(gateway::retry_after(&printed, now), Some(wait));
            }
        }
        1 => {
            let lines: Vec<&str> = value.lines().collect();
            let listed = gateway::connection_listed(&lines);
            for name in &listed {
                assert!(
                    !name.is_empty() && name.trim() == name && name.to_ascii_lowercase() == *name
                );
                assert!(
                    !gateway::forward_request_header(name, &listed),
                    "{name} forwarded"
                );
                assert!(
                    !gateway::forward_response_header(name, &listed),
                    "{name} passed back"
                );
            }
            let _ = gateway::provider_throttled(&value, 403, data);
            assert!(gateway::provider_throttled(&value, 429, data));
        }
        2 => {
            if let Ok(t) = EventType::parse(&value) {
                let json = serde_json::to_string(&t).expect("serializes");
                let back: EventType = serde_json::from_str(&json).expect("reads back");
                assert_eq!(back, t);
                assert_eq!(t.as_str(), value);
            }
            if let Ok(p) = EventPattern::parse(&value) {
                let key = p.binding_key();
                assert!(!key.contains('*'), "binding key {key:?}");
                match value.strip_suffix(".*") {
                    Some(prefix) => {
                        assert!(p.matches(&format!("{prefix}.x")));
                        assert!(!p.matches(prefix));
                    }
                    None => assert!(p.matches(&value)),
                }
            }
        }
        _ => {
            if check_filter_entry(&value).is_ok() {
                let entry = [value.to_string()];
                let example = value.strip_suffix('*').map(|p| format!("{p}x"));
                let t = example.as_deref().unwrap_or(&value);
                assert!(accepts(&entry, Some(t)), "{value:?} refuses {t:?}");
            }
        }
    }
}
