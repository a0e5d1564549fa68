//! What each fuzz target checks, one function per target, shared by the
//! `cargo fuzz` binaries (`fuzz_targets/*.rs`) and the regression tests of
//! hub-connectors (`tests/fuzz_regressions.rs` includes this file), so an
//! input that once crashed a target runs through exactly the same checks in
//! the normal test suite.
//!
//! Every check reads untrusted bytes as the services do and panics only
//! when an invariant breaks: a parser that panics, a manifest that does not
//! survive a write and a read back, an error message that quotes a
//! submitted value, a secret left in a logged exchange. An input the parser
//! refuses with an error is a pass.
//!
//! Inputs are split into fields at NUL bytes, and choices are made from the
//! first bytes, so the fuzzer explores them along with the text.

#![forbid(unsafe_code)]

use chrono::{DateTime, TimeZone, Utc};
use hub_connectors::oauth::{self, TokenFailure};
use hub_connectors::redact::{REDACTED, Redactor};
use hub_connectors::sync::{at, parse_time};
use hub_connectors::{AuthType, ProviderManifest, RenderError, catalog, parse_manifest};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeSet;

/// A target's check: panics when an invariant breaks on `data`.
pub type Check = fn(&[u8]);

/// The targets by name, as `cargo fuzz list` shows them and as the
/// regression inputs are filed (`tests/fuzz-regressions/<name>/`).
pub const TARGETS: &[(&str, Check)] = &[
    ("manifest", manifest),
    ("provider_config", provider_config),
    ("provider_answers", provider_answers),
    ("redact", redact),
];

/// Bytes as text, as the HTTP layer and the client hand them over: invalid
/// UTF-8 becomes U+FFFD.
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

/// The first `n - 1` NUL-separated fields and the rest (which may hold NULs),
/// padded with empty fields.
fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == 0).collect();
    out.resize(n, b"");
    out
}

/// The shipped catalog, loaded once.
fn shipped() -> &'static [ProviderManifest] {
    static CATALOG: std::sync::OnceLock<Vec<ProviderManifest>> = std::sync::OnceLock::new();
    CATALOG.get_or_init(|| catalog().expect("the shipped catalog loads"))
}

/// The string values anywhere in `v`.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Checks `config` against `m`'s config schema: every error names a field
/// under `config` and a code, and none quotes a submitted value (configs
/// hold credentials); a config that passes renders the test call's headers
/// without control characters.
fn check_config(m: &ProviderManifest, config: &Value, api_key: &str) {
    let schema_text = m.config_schema.to_string();
    match m.validate_config(config) {
        Err(errors) => {
            assert!(!errors.is_empty(), "{}: a refusal without errors", m.code);
            let mut values = Vec::new();
            strings(config, &mut values);
            for e in &errors {
                assert!(
                    e.field == "config"
                        || e.field.starts_with("config.")
                        || e.field.starts_with("config["),
                    "{}: error field {:?}",
                    m.code,
                    e.field
                );
                assert!(!e.code.is_empty() && !e.message.is_empty());
                // A value long and odd enough not to be a word of the
                // schema or a field name must not be echoed.
                for v in values.iter().filter(|v| {
                    v.chars().count() >= 8
                        && !schema_text.contains(v.as_str())
                        && !e.field.contains(v.as_str())
                        && v.chars().any(|c| !c.is_ascii_alphabetic())
                }) {
                    assert!(
                        !e.message.contains(v.as_str()),
                        "{}: the message {:?} quotes the submitted value {v:?}",
                        m.code,
                        e.message
                    );
                }
            }
        }
        Ok(()) => {
            match m.render_headers(config) {
                Ok(headers) => {
                    for (name, value) in &headers {
                        assert!(
                            !value.chars().any(char::is_control),
                            "{}: header {name} rendered with a control character: {value:?}",
                            m.code
                        );
                    }
                }
                Err(e) => assert_render_error(m, &e),
            }
            match m.render_test_path(config) {
                Ok(path) => {
                    let template_has_space = m.test_call.path.contains(char::is_whitespace);
                    assert!(
                        template_has_space || !path.contains(char::is_whitespace),
                        "{}: a config value put whitespace in the path {path:?}",
                        m.code
                    );
                }
                Err(e) => assert_render_error(m, &e),
            }
            if let Err(e) = m.render_test_body(config, Some(api_key)) {
                assert_render_error(m, &e);
            }
        }
    }
}

/// What filling a validated config into a catalog manifest may say: a
/// value the OAuth connection provides is missing, or one is not text.
fn assert_render_error(m: &ProviderManifest, e: &RenderError) {
    match e {
        RenderError::MissingField { field, .. } => assert!(
            !m.required_config_fields().contains(field),
            "{}: a config that validates lacks the required {field}",
            m.code
        ),
        RenderError::NotScalar { .. } | RenderError::ControlCharacter { .. } => {}
        RenderError::MissingApiKey | RenderError::Template { .. } => {
            panic!("{}: {e}", m.code)
        }
    }
}

/// `manifest`: a provider manifest file (JSON), optionally followed by a NUL
/// byte, a config (JSON) and another NUL and an API key. The file is named
/// after its own `code`, as the catalog requires. A manifest that passes
/// every rule writes back to JSON that parses to the same manifest, and the
/// config is checked against it as [`provider_config`] does.
pub fn manifest(data: &[u8]) {
    let f = fields(data, 3);
    let manifest_text = text(f[0]);
    let code = serde_json::from_str::<Value>(&manifest_text)
        .ok()
        .and_then(|v| {
            v.get("code")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let file = format!("{code}.json");
    let parsed = match parse_manifest(&file, &manifest_text) {
        Ok(m) => m,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let written = serde_json::to_string_pretty(&parsed).expect("a manifest serializes");
    match parse_manifest(&file, &written) {
        Ok(back) => assert_eq!(back, parsed, "the manifest changed through its JSON form"),
        Err(e) => panic!("a manifest that loaded does not load from its JSON form: {e}\n{written}"),
    }
    let config: Value = serde_json::from_slice(f[1]).unwrap_or_else(|_| serde_json::json!({}));
    check_config(&parsed, &config, &text(f[2]));
}

/// `provider_config`: the first byte picks a shipped provider; the rest is
/// an integration's `config` (JSON), optionally followed by a NUL byte and
/// an API key. See [`check_config`] for what holds.
pub fn provider_config(data: &[u8]) {
    let mut data = data;
    let all = shipped();
    let m = &all[usize::from(take(&mut data)) % all.len()];
    let f = fields(data, 2);
    let Ok(config) = serde_json::from_slice::<Value>(f[0]) else {
        return;
    };
    check_config(m, &config, &text(f[1]));
}

/// `provider_answers`: the first byte picks a status code, then
/// NUL-separated fields: an answer (JSON), a checkpoint (JSON), the raw
/// answer text. Every shipped manifest's readers take it in:
/// - each entity's page reader: a page that reads gives the records as
///   they are in the answer, and its next checkpoint reads again;
///   records' ids are non-empty text, timestamps parse;
/// - the webhook reader: each named record once, for a known entity, with
///   an id;
/// - the export readers (platform events' data, write answers, stale
///   tokens, error messages);
/// - the OAuth token reader: a token answer has an access token, keeps no
///   token among its extras and never shows one in `Debug`; a refusal's
///   message is at most 300 characters.
pub fn provider_answers(data: &[u8]) {
    let mut data = data;
    let status = match take(&mut data) {
        b @ 0..=99 => 200 + u16::from(b) % 10,
        b @ 100..=199 => 400 + u16::from(b - 100) % 30,
        b => 500 + u16::from(b) % 5,
    };
    let f = fields(data, 3);
    let answer: Value = serde_json::from_slice(f[0]).unwrap_or(Value::Null);
    let checkpoint: Option<Value> = serde_json::from_slice(f[1]).ok();
    let raw = text(f[2]);
    let raw_answer = text(f[0]);

    check_time(&answer);
    for m in shipped() {
        if let Some(sync) = &m.sync {
            for entity in sync.entities.values() {
                read_pages(entity, &answer, checkpoint.as_ref());
                if let Some(x) = &entity.export {
                    for event in x.events.values() {
                        if let Ok(change) = event.read(&answer) {
                            assert!(!change.key.is_empty(), "{}: an empty key", m.code);
                        }
                    }
                    let w = x.read_answer(entity, &answer);
                    if let Some(r) = &w.record {
                        assert!(r.is_object() && entity.id_of(r).is_some());
                    }
                    let _ = x.is_stale(status, &answer);
                    let message = x.error_message(&answer, &raw);
                    let from_answer = x
                        .error_message
                        .iter()
                        .find_map(|p| at(&answer, p).and_then(Value::as_str));
                    assert!(
                        from_answer == Some(message.as_str()) || message.chars().count() <= 500,
                        "an error message of {} characters",
                        message.chars().count()
                    );
                }
            }
            if let Some(hooks) = &sync.webhooks {
                let refs = hooks.refs(&answer);
                let mut seen = BTreeSet::new();
                for r in &refs {
                    assert!(
                        hooks.entities.values().any(|e| *e == r.entity),
                        "an entity no event type names"
                    );
                    assert!(!r.id.is_empty(), "{}: a webhook ref without an id", m.code);
                    assert!(
                        seen.insert((r.entity.clone(), r.id.clone())),
                        "{}: {} {} named twice",
                        m.code,
                        r.entity,
                        r.id
                    );
                }
            }
        }
        if m.auth_type == AuthType::OAuth2
            && let Some(o) = &m.oauth
        {
            match oauth::parse_answer(o, status, &raw_answer) {
                Ok(t) => {
                    assert!((200..300).contains(&status));
                    assert!(!t.access_token.is_empty());
                    for secret in ["access_token", "refresh_token", "id_token"] {
                        assert!(
                            !t.extras.contains_key(secret),
                            "{secret} kept among the extras"
                        );
                    }
                    let shown = format!("{t:?}");
                    for token in std::iter::once(&t.access_token).chain(&t.refresh_token) {
                        // Short or numeric tokens may match the field names
                        // and figures Debug shows; a real one does not.
                        let distinctive = token.len() >= 12
                            && token.chars().any(|c| c.is_ascii_alphabetic())
                            && !"TokenAnswer [redacted] expires_in refresh_expires_in"
                                .contains(token.as_str());
                        assert!(
                            !distinctive || !shown.contains(token.as_str()),
                            "Debug shows a token: {shown}"
                        );
                    }
                }
                Err(TokenFailure::Revoked { message, .. }) => {
                    assert!(
                        message.chars().count() <= 300,
                        "a message of {} characters",
                        message.chars().count()
                    );
                }
                Err(TokenFailure::Unavailable(_) | TokenFailure::Rejected(_)) => {}
            }
        }
    }
}

/// Reads `answer` as a page of `entity` at `checkpoint`, and the page after.
fn read_pages(
    entity: &hub_connectors::sync::EntitySync,
    answer: &Value,
    checkpoint: Option<&Value>,
) {
    let Ok(page) = entity.read(answer, checkpoint) else {
        return;
    };
    if entity.entry_key.is_none()
        && let Some(Value::Array(records)) = at(answer, &entity.records)
    {
        assert_eq!(&page.records, records, "the records changed on the way in");
    }
    for r in &page.records {
        if let Some(id) = entity.id_of(r) {
            assert!(!id.is_empty());
        }
        let _ = entity.updated_at_of(r);
    }
    if let Some(next) = &page.next {
        let _ = entity.read(answer, Some(next));
    }
}

/// Provider timestamps: epoch milliseconds are that instant, an RFC 3339
/// time is its instant.
fn check_time(answer: &Value) {
    let mut values = vec![answer.clone()];
    if let Value::Object(m) = answer {
        values.extend(m.values().cloned());
    }
    for v in &values {
        let Some(t) = parse_time(v) else {
            continue;
        };
        if let Some(ms) = v.as_i64() {
            assert_eq!(t.timestamp_millis(), ms, "{v} read as {t}");
        }
        if let Some(s) = v.as_str()
            && let Ok(exact) = DateTime::parse_from_rfc3339(s.trim())
        {
            assert_eq!(t, exact.with_timezone(&Utc), "{s:?} read as {t}");
        }
        let _ = Utc.timestamp_millis_opt(t.timestamp_millis());
    }
}

/// Secret values the redaction target's exchanges carry.
const SECRETS: [&str; 3] = [
    "s3cr3t-Token-Value-9f2",
    "pk live 42/abc+def==",
    "x9Q2vL7mN4",
];

/// `redact`: the first byte picks what is logged (a JSON, form or other
/// body, a URL, a header), the rest is the text. Whatever it is, the logged
/// form holds none of the exchange's secret values (nor their JSON-escaped
/// form); a secret header is `[redacted]` whole; a body that is JSON stays
/// JSON, with every scalar under a secret-named key (after decoding the
/// key's escapes) replaced.
pub fn redact(data: &[u8]) {
    let mut data = data;
    let pick = take(&mut data);
    let input = text(data);
    let secrets: Vec<String> = SECRETS.iter().map(|s| (*s).to_owned()).collect();
    let r = Redactor::new(&secrets, &["X-Provider-Key".to_owned()]);
    let logged = match pick % 6 {
        0 => r.body(Some("application/json"), &input),
        1 => r.body(Some("application/x-www-form-urlencoded"), &input),
        2 => r.body(None, &input),
        3 => r.url(&input),
        4 => {
            let (name, value) = input.split_once(':').unwrap_or(("X-Note", &input));
            let logged = r.header(name, value);
            if r.is_secret(name) {
                assert_eq!(logged, REDACTED, "the secret header {name} was logged");
            }
            logged
        }
        _ => r.body(Some("text/plain"), &input),
    };
    for s in &secrets {
        let escaped = serde_json::to_string(s).expect("a string serializes");
        for form in [s.as_str(), &escaped[1..escaped.len() - 1]] {
            assert!(
                !logged.contains(form),
                "the secret {form:?} is in the logged text {logged:?}"
            );
        }
    }
    if pick.is_multiple_of(6)
        && let Ok(before) = serde_json::from_str::<Value>(&input)
    {
        let after: Value = serde_json::from_str(&logged).unwrap_or_else(|e| {
            panic!("a JSON body is no longer JSON once redacted ({e}): {logged}")
        });
        assert_redacted(&r, &before, &after);
    }
}

/// Every scalar under a secret-named key of `before` is `[redacted]` in
/// `after`, at the same place (keys scrubbed of secret values).
fn assert_redacted(r: &Redactor, before: &Value, after: &Value) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, v) in b {
                // A key holding a secret value is scrubbed like any text.
                let Some(w) = a.get(&r.scrub(k)) else {
                    panic!("the key {k:?} is gone once redacted");
                };
                let scalar = !matches!(v, Value::Object(_) | Value::Array(_));
                if r.is_secret(k) && scalar {
                    assert_eq!(w, REDACTED, "the value of {k:?} was logged: {w}");
                } else {
                    assert_redacted(r, v, w);
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            assert_eq!(a.len(), b.len(), "an array changed length once redacted");
            for (v, w) in b.iter().zip(a) {
                assert_redacted(r, v, w);
            }
        }
        _ => {}
    }
}
