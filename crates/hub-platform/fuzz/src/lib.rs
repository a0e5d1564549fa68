//! What the `config` fuzz target checks, shared by the `cargo fuzz` binary
//! (`fuzz_targets/config.rs`) and the regression tests of hub-platform
//! (`tests/fuzz_regressions.rs` includes this file), so an input that once
//! crashed the target runs through exactly the same checks in the normal
//! test suite.
//!
//! The input is an environment and, optionally, a `HUB_CONFIG` file:
//! `KEY=VALUE` lines (the last one of a key wins), then, after a line
//! `---`, the file's TOML text. It goes through [`Config::load_layers`],
//! the loader behind every service's `Config::load`, and the check panics
//! only when an invariant breaks:
//! - loading panics;
//! - a loaded config breaks a documented range (a count of 0, a lease not
//!   longer than the timeout, a URL of the wrong scheme, a key that is not
//!   32 bytes…) or does not hold a value the environment set (the
//!   environment overrides the file and the defaults);
//! - an error does not name a variable the input set (or the required
//!   `INTEGRATION_ENCRYPTION_KEY`, or `HUB_CONFIG` for the file);
//! - an error message or the config's `Debug` quotes a secret (the admin
//!   token, the encryption keys, the password of `DATABASE_URL` or
//!   `RABBITMQ_URL`), from the environment or from the file.
//!
//! A secret "appears" in a text only if it is echoed: when the text holds
//! it, the input is loaded again with the secret's letters and digits
//! shifted by one, and the text must then hold the shifted secret too, so
//! a secret that happens to spell part of a fixed message is no failure.

#![forbid(unsafe_code)]

use hub_platform::config::{Config, KEYS};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A target's check: panics when an invariant breaks on `data`.
pub type Check = fn(&[u8]);

/// The targets by name, as `cargo fuzz list` shows them and as the
/// regression inputs are filed (`tests/fuzz-regressions/<name>/`).
pub const TARGETS: &[(&str, Check)] = &[("config", config)];

/// The port a service passes as its default (the manager's).
const DEFAULT_PORT: u16 = 3026;

/// Keys whose whole value is a secret.
const SECRET_KEYS: &[&str] = &[
    "HUB_ADMIN_TOKEN",
    "INTEGRATION_ENCRYPTION_KEY",
    "INTEGRATION_ENCRYPTION_KEYS_OLD",
];

/// Keys holding a URL whose password is a secret.
const URL_KEYS: &[&str] = &["DATABASE_URL", "RABBITMQ_URL"];

/// Shortest secret the leak check looks for: a shorter one is too likely
/// to be part of any text.
const MIN_SECRET: usize = 6;

/// One input: the environment and the file.
#[derive(Clone, Debug)]
struct Input {
    env: BTreeMap<String, String>,
    file: Option<String>,
}

impl Input {
    fn parse(data: &[u8]) -> Self {
        let text = String::from_utf8_lossy(data);
        let mut env = BTreeMap::new();
        let mut file = None;
        let mut rest = text.as_ref();
        while !rest.is_empty() {
            let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
            if line == "---" {
                file = Some(after.to_owned());
                break;
            }
            if let Some((k, v)) = line.split_once('=') {
                env.insert(k.to_owned(), v.to_owned());
            }
            rest = after;
        }
        Self { env, file }
    }

    fn load(&self) -> Result<Config, String> {
        Config::load_layers(DEFAULT_PORT, self.file.as_deref(), |k| {
            self.env.get(k).cloned()
        })
        .map_err(|e| e.to_string())
    }

    /// An environment variable the loader reads (empty counts as unset).
    fn env_set(&self, key: &str) -> Option<&str> {
        self.env
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty() || key == "HUB_BUS_PREFIX")
    }

    /// The secrets of the input: (where, the secret's text).
    fn secrets(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for key in SECRET_KEYS.iter().chain(URL_KEYS) {
            let secret = |v: &str| -> Vec<String> {
                if URL_KEYS.contains(key) {
                    url_password(v).into_iter().collect()
                } else {
                    // The old keys are a list; each one is a secret.
                    let mut parts: Vec<String> =
                        v.split(',').map(|p| p.trim().to_owned()).collect();
                    parts.push(v.to_owned());
                    parts
                }
            };
            if let Some(v) = self.env.get(*key) {
                out.extend(secret(v).into_iter().map(|s| (format!("env {key}"), s)));
            }
            if let Some(file) = &self.file {
                // As written in the file: `key = "…"` (or unquoted garbage).
                let lower = key.to_lowercase();
                for line in file.lines() {
                    if let Some((k, v)) = line.split_once('=')
                        && k.trim() == lower
                    {
                        let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
                        out.extend(secret(v).into_iter().map(|s| (format!("file {lower}"), s)));
                    }
                }
            }
        }
        out.retain(|(_, s)| s.chars().filter(char::is_ascii_alphanumeric).count() >= MIN_SECRET);
        out.sort();
        out.dedup();
        out
    }

    /// The input with `secret` shifted where it was set (`place`: its
    /// variable, or the file), and nowhere else: the same text pasted into
    /// another variable is that variable's value, not the secret.
    fn with_shifted(&self, place: &str, secret: &str) -> Self {
        let shifted = shift(secret);
        let env_key = place.strip_prefix("env ");
        // A URL's password is shifted where it is the password (after the
        // user, before the host), not where the same text is also the
        // database name or a query value.
        let in_url = URL_KEYS
            .iter()
            .any(|k| place.ends_with(*k) || place.ends_with(&k.to_lowercase()));
        let change = |v: &str| {
            if in_url {
                v.replacen(&format!(":{secret}@"), &format!(":{shifted}@"), 1)
            } else {
                v.replace(secret, &shifted)
            }
        };
        Self {
            env: self
                .env
                .iter()
                .map(|(k, v)| {
                    let v = if env_key == Some(k.as_str()) {
                        change(v)
                    } else {
                        v.clone()
                    };
                    (k.clone(), v)
                })
                .collect(),
            file: self.file.as_ref().map(|f| {
                if env_key.is_none() {
                    change(f)
                } else {
                    f.clone()
                }
            }),
        }
    }

    /// Panics if `render` (an error message or a `Debug`) echoes a secret.
    fn assert_no_secret_in(&self, what: &str, text: &str, render: impl Fn(&Self) -> String) {
        for (place, secret) in self.secrets() {
            if !text.contains(&secret) {
                continue;
            }
            let again = render(&self.with_shifted(&place, &secret));
            assert!(
                !again.contains(&shift(&secret)),
                "{what} quotes the secret of {place}: {text}"
            );
        }
    }
}

/// `scheme://user:PASSWORD@host/…` → the password as written.
fn url_password(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(password.to_owned())
}

/// Letters and digits moved one place on (`a`→`b`, `z`→`a`, `9`→`0`), the
/// rest kept: the same shape, another secret.
fn shift(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            c if c.is_ascii_alphanumeric() => char::from(c as u8 + 1),
            c => c,
        })
        .collect()
}

/// The loader's boolean spellings.
fn boolean(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Loads the input and checks what came out.
pub fn config(data: &[u8]) {
    let input = Input::parse(data);
    match input.load() {
        Ok(c) => loaded(&input, &c),
        Err(msg) => refused(&input, &msg),
    }
}

/// A config that loaded is within its documented ranges and holds what the
/// environment set.
fn loaded(input: &Input, c: &Config) {
    let keys = c
        .encryption_keys()
        .expect("a loaded config has a usable key");
    c.keyring().expect("and a keyring");
    if let Some(t) = &c.hub_admin_token {
        assert!(t.len() >= 16, "HUB_ADMIN_TOKEN of {} bytes", t.len());
    }
    assert!(c.hub_bus_prefix.len() <= 64, "HUB_BUS_PREFIX too long");
    assert!(
        c.hub_bus_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
        "HUB_BUS_PREFIX {:?}",
        c.hub_bus_prefix
    );
    for (key, v) in [
        (
            "HUB_DATABASE_MAX_CONNECTIONS",
            u64::from(c.hub_database_max_connections),
        ),
        (
            "HUB_BUS_CONSUMER_CONCURRENCY",
            u64::from(c.hub_bus_consumer_concurrency),
        ),
        ("HUB_BUS_MAX_ATTEMPTS", u64::from(c.hub_bus_max_attempts)),
        ("HUB_BUS_RETRY_BASE_MS", c.hub_bus_retry_base_ms),
        (
            "RATE_LIMIT_WINDOW_SECONDS",
            u64::from(c.rate_limit_window_seconds),
        ),
        ("DEFAULT_RATE_LIMIT", u64::from(c.default_rate_limit)),
        (
            "DEFAULT_TIMEOUT_SECONDS",
            u64::from(c.default_timeout_seconds),
        ),
        (
            "WEBHOOK_TIMEOUT_SECONDS",
            u64::from(c.webhook_timeout_seconds),
        ),
        (
            "CIRCUIT_FAILURE_THRESHOLD",
            u64::from(c.circuit_failure_threshold),
        ),
        (
            "CIRCUIT_TIMEOUT_SECONDS",
            u64::from(c.circuit_timeout_seconds),
        ),
        ("LOG_RETENTION_DAYS", u64::from(c.log_retention_days)),
        ("WEBHOOK_QUEUE_SIZE", u64::from(c.webhook_queue_size)),
        ("WEBHOOK_WORKERS", u64::from(c.webhook_workers)),
        (
            "WEBHOOK_RETENTION_DAYS",
            u64::from(c.webhook_retention_days),
        ),
        ("SYNC_LEASE_SECONDS", u64::from(c.sync_lease_seconds)),
        ("HUB_OUTBOX_POLL_MS", c.hub_outbox_poll_ms),
        ("SYNC_SCHEDULER_TICK_MS", c.sync_scheduler_tick_ms),
        ("HUB_INBOUND_MAX_BODY", c.hub_inbound_max_body as u64),
    ] {
        assert!(v > 0, "{key} is 0");
    }
    assert!(
        c.webhook_lease_seconds > c.webhook_timeout_seconds,
        "lease within the timeout"
    );
    assert!(
        c.hub_bus_retry_max_ms >= c.hub_bus_retry_base_ms,
        "retry max below base"
    );
    let bus = c.bus();
    assert!(bus.retry_max >= bus.retry_base);
    assert!(
        !c.inbound_retry_intervals().is_empty(),
        "no inbound retry intervals"
    );
    let _ = c.trusted_proxies();
    for (key, url, schemes) in [
        (
            "DATABASE_URL",
            &c.database_url,
            &["postgres", "postgresql"][..],
        ),
        ("RABBITMQ_URL", &c.rabbitmq_url, &["amqp", "amqps"][..]),
        (
            "INTEGRATION_MANAGER_URL",
            &c.integration_manager_url,
            &["http", "https"][..],
        ),
        (
            "INTEGRATION_SYNC_URL",
            &c.integration_sync_url,
            &["http", "https"][..],
        ),
        (
            "WEBHOOK_DISPATCHER_URL",
            &c.webhook_dispatcher_url,
            &["http", "https"][..],
        ),
        ("HUB_PUBLIC_URL", &c.hub_public_url, &["http", "https"][..]),
    ] {
        let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        assert!(
            scheme.is_some_and(|s| schemes.contains(&s.as_str())),
            "{key} loaded with the wrong scheme"
        );
    }

    // The environment wins over the file and the defaults.
    let fields = serde_json::to_value(c).expect("a config serializes");
    for key in KEYS {
        let Some(raw) = input.env_set(key) else {
            continue;
        };
        let got = &fields[key.to_lowercase()];
        let holds = match got {
            Value::Number(n) => raw.trim().parse::<i128>().ok().is_some_and(|r| {
                n.as_u64().map(i128::from) == Some(r) || n.as_i64().map(i128::from) == Some(r)
            }),
            Value::Bool(b) => boolean(raw) == Some(*b),
            Value::String(s) => s == raw,
            other => panic!("{key}: set to {raw:?}, loaded as {other}"),
        };
        assert!(
            holds,
            "{key}: set to {raw:?} in the environment, loaded as {got}"
        );
    }

    // Debug stays quiet about secrets.
    let debug = format!("{c:?} {keys:?}");
    input.assert_no_secret_in("Debug of the config", &debug, |i| match i.load() {
        Ok(c) => format!("{c:?} {:?}", c.encryption_keys()),
        Err(_) => String::new(),
    });
}

/// A refusal names what to fix and keeps secrets out.
fn refused(input: &Input, msg: &str) {
    assert!(
        msg.starts_with("invalid configuration: "),
        "not a ConfigError: {msg}"
    );
    // The defaults are valid, so the culprit is something the input set.
    let mut culprits: BTreeSet<&str> = KEYS
        .iter()
        .copied()
        .filter(|k| {
            input.env_set(k).is_some()
                || input
                    .file
                    .as_ref()
                    .is_some_and(|f| f.contains(&k.to_lowercase()))
        })
        .collect();
    culprits.insert("INTEGRATION_ENCRYPTION_KEY");
    if input.file.is_some() {
        culprits.insert("HUB_CONFIG");
    }
    assert!(
        culprits.iter().any(|k| msg.contains(k)),
        "the error names none of {culprits:?}: {msg}"
    );
    input.assert_no_secret_in("the error", msg, |i| i.load().err().unwrap_or_default());
}
