//! Configuration: built-in defaults → optional TOML file named by `HUB_CONFIG`
//! → environment variables. Keys are the environment variable names, lowercase
//! in the file (`database_url = "…"`), as written in the spec (`PORT`,
//! `DATABASE_URL`, `WEBHOOK_WORKERS`, …). Unknown keys in the file and invalid
//! values stop the service with a message naming the key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (for log shippers).
    Json,
    /// Human-readable lines.
    Pretty,
}

/// The configuration of a service. Every field is named after its environment
/// variable (lowercased).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// HTTP port (`PORT`); 0 picks a free one (tests).
    pub port: u16,
    /// Address to bind (`HUB_HOST`).
    pub hub_host: String,
    /// Postgres URL (`DATABASE_URL`).
    pub database_url: String,
    /// Pool size per process (`HUB_DATABASE_MAX_CONNECTIONS`).
    pub hub_database_max_connections: u32,
    /// RabbitMQ URL (`RABBITMQ_URL`).
    pub rabbitmq_url: String,
    /// Prefix of every exchange and queue (`HUB_BUS_PREFIX`).
    pub hub_bus_prefix: String,
    /// Messages a consumer handles at once (`HUB_BUS_CONSUMER_CONCURRENCY`).
    pub hub_bus_consumer_concurrency: u16,
    /// Handler attempts before dead-lettering (`HUB_BUS_MAX_ATTEMPTS`).
    pub hub_bus_max_attempts: u32,
    /// First redelivery delay in ms (`HUB_BUS_RETRY_BASE_MS`).
    pub hub_bus_retry_base_ms: u64,
    /// Longest redelivery delay in ms (`HUB_BUS_RETRY_MAX_MS`).
    pub hub_bus_retry_max_ms: u64,
    /// Delete unused queues after this many ms (`HUB_BUS_QUEUE_EXPIRES_MS`;
    /// for throwaway prefixes such as tests).
    pub hub_bus_queue_expires_ms: Option<u64>,
    /// Operator token for `/api/v1/admin` (`HUB_ADMIN_TOKEN`); unset turns the
    /// admin API off.
    pub hub_admin_token: Option<String>,
    /// Current credential encryption key, base64 of 32 bytes
    /// (`INTEGRATION_ENCRYPTION_KEY`).
    pub integration_encryption_key: Option<String>,
    /// Older keys still accepted for decryption, comma-separated
    /// (`INTEGRATION_ENCRYPTION_KEYS_OLD`).
    pub integration_encryption_keys_old: Option<String>,
    /// Apply migrations at start (`HUB_MIGRATE_ON_START`).
    pub hub_migrate_on_start: bool,
    /// How long start-up waits for Postgres before giving up
    /// (`HUB_STARTUP_TIMEOUT_SECONDS`).
    pub hub_startup_timeout_seconds: u64,
    /// Deadline for in-flight work at shutdown (`HUB_SHUTDOWN_TIMEOUT_SECONDS`).
    pub hub_shutdown_timeout_seconds: u64,
    /// HTTP worker threads (`HUB_HTTP_WORKERS`; 0 = one per core).
    pub hub_http_workers: usize,
    /// `json` or `pretty` (`LOG_FORMAT`).
    pub log_format: LogFormat,
    /// OTLP/HTTP collector; tracing export is on when set
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// Requests per minute when a provider sets none (`DEFAULT_RATE_LIMIT`).
    pub default_rate_limit: u32,
    /// Rate-limit window (`RATE_LIMIT_WINDOW_SECONDS`).
    pub rate_limit_window_seconds: u32,
    /// Provider call timeout (`DEFAULT_TIMEOUT_SECONDS`).
    pub default_timeout_seconds: u32,
    /// Webhook delivery/processing timeout (`WEBHOOK_TIMEOUT_SECONDS`).
    pub webhook_timeout_seconds: u32,
    /// Provider call retries (`DEFAULT_MAX_RETRIES`).
    pub default_max_retries: u32,
    /// Webhook delivery retries (`WEBHOOK_MAX_RETRIES`).
    pub webhook_max_retries: u32,
    /// Failures that open a circuit (`CIRCUIT_FAILURE_THRESHOLD`).
    pub circuit_failure_threshold: u32,
    /// Seconds before an open circuit lets a probe through (`CIRCUIT_TIMEOUT_SECONDS`).
    pub circuit_timeout_seconds: u32,
    /// Keep request bodies in API logs (`LOG_REQUEST_BODIES`).
    pub log_request_bodies: bool,
    /// Keep response bodies in API logs (`LOG_RESPONSE_BODIES`).
    pub log_response_bodies: bool,
    /// Days API logs are kept (`LOG_RETENTION_DAYS`).
    pub log_retention_days: u32,
    /// Deliveries in flight per dispatcher (`WEBHOOK_QUEUE_SIZE`).
    pub webhook_queue_size: u32,
    /// Delivery workers per dispatcher (`WEBHOOK_WORKERS`).
    pub webhook_workers: u32,
    /// Allow provider and webhook targets on private, loopback and link-local
    /// addresses (`HUB_ALLOW_PRIVATE_TARGETS`; development and tests only).
    pub hub_allow_private_targets: bool,
    /// Allow plain-http webhook subscription URLs (`HUB_ALLOW_INSECURE_URLS`;
    /// development and tests only).
    pub hub_allow_insecure_urls: bool,
    /// Days outbound deliveries are kept before pruning (`WEBHOOK_RETENTION_DAYS`).
    pub webhook_retention_days: u32,
    /// Seconds a dispatcher holds a claimed delivery before another may take
    /// it over (`WEBHOOK_LEASE_SECONDS`; must exceed `WEBHOOK_TIMEOUT_SECONDS`).
    pub webhook_lease_seconds: u32,
    /// Where the manager is reached (`INTEGRATION_MANAGER_URL`).
    pub integration_manager_url: String,
    /// Where the sync service is reached (`INTEGRATION_SYNC_URL`).
    pub integration_sync_url: String,
    /// Where the dispatcher is reached (`WEBHOOK_DISPATCHER_URL`).
    pub webhook_dispatcher_url: String,
    /// Largest inbound webhook body in bytes (`HUB_INBOUND_MAX_BODY`).
    pub hub_inbound_max_body: usize,
    /// Outbox rows a service's hot paths may hand to its own relay before
    /// they store the rest for the claiming relay (`HUB_OUTBOX_HANDOFF_ROOM`;
    /// 0 = never hand off).
    pub hub_outbox_handoff_room: usize,
    /// How often the claiming relay looks for outbox rows when nothing woke
    /// it, in ms (`HUB_OUTBOX_POLL_MS`; a safety net, it is woken on writes).
    pub hub_outbox_poll_ms: u64,
    /// Proxies whose `X-Forwarded-For` is believed, comma-separated CIDRs
    /// (`HUB_TRUSTED_PROXIES`; empty = none).
    pub hub_trusted_proxies: String,
    /// Delays between attempts to process an inbound event, in ms,
    /// comma-separated (`HUB_INBOUND_RETRY_INTERVALS_MS`); the event fails for
    /// good after `WEBHOOK_MAX_RETRIES` attempts.
    pub hub_inbound_retry_intervals_ms: String,
    /// The hub's public origin, as providers and browsers reach it
    /// (`HUB_PUBLIC_URL`); OAuth redirects come back to `<it>/oauth/callback`.
    pub hub_public_url: String,
    /// Requests per integration and process that may wait for the rate
    /// limit at once (`GATEWAY_QUEUE_SIZE`); more are answered 429.
    pub gateway_queue_size: u32,
    /// Longest a request waits for the rate limit, in ms
    /// (`GATEWAY_MAX_WAIT_MS`); a longer wait is answered 429 at once.
    pub gateway_max_wait_ms: u64,
    /// Largest request body the proxy forwards, in bytes (`GATEWAY_MAX_BODY`).
    pub gateway_max_body: usize,
    /// Total time a proxied call may take with its retries, in seconds
    /// (`GATEWAY_DEADLINE_SECONDS`).
    pub gateway_deadline_seconds: u64,
    /// How long a claimed sync job stays with one integration-sync process
    /// without a committed page before another takes it over and resumes
    /// it (`SYNC_LEASE_SECONDS`; each page renews it).
    pub sync_lease_seconds: u32,
    /// How often integration-sync's scheduler looks for integrations due a
    /// scheduled sync and whether its periodic work is due, in ms
    /// (`SYNC_SCHEDULER_TICK_MS`).
    pub sync_scheduler_tick_ms: u64,
}

/// Every key, as its environment variable is spelled (uppercase).
pub const KEYS: &[&str] = &[
    "PORT",
    "HUB_HOST",
    "DATABASE_URL",
    "HUB_DATABASE_MAX_CONNECTIONS",
    "RABBITMQ_URL",
    "HUB_BUS_PREFIX",
    "HUB_BUS_CONSUMER_CONCURRENCY",
    "HUB_BUS_MAX_ATTEMPTS",
    "HUB_BUS_RETRY_BASE_MS",
    "HUB_BUS_RETRY_MAX_MS",
    "HUB_BUS_QUEUE_EXPIRES_MS",
    "HUB_ADMIN_TOKEN",
    "INTEGRATION_ENCRYPTION_KEY",
    "INTEGRATION_ENCRYPTION_KEYS_OLD",
    "HUB_MIGRATE_ON_START",
    "HUB_STARTUP_TIMEOUT_SECONDS",
    "HUB_SHUTDOWN_TIMEOUT_SECONDS",
    "HUB_HTTP_WORKERS",
    "LOG_FORMAT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "DEFAULT_RATE_LIMIT",
    "RATE_LIMIT_WINDOW_SECONDS",
    "DEFAULT_TIMEOUT_SECONDS",
    "WEBHOOK_TIMEOUT_SECONDS",
    "DEFAULT_MAX_RETRIES",
    "WEBHOOK_MAX_RETRIES",
    "CIRCUIT_FAILURE_THRESHOLD",
    "CIRCUIT_TIMEOUT_SECONDS",
    "LOG_REQUEST_BODIES",
    "LOG_RESPONSE_BODIES",
    "LOG_RETENTION_DAYS",
    "WEBHOOK_QUEUE_SIZE",
    "WEBHOOK_WORKERS",
    "HUB_ALLOW_PRIVATE_TARGETS",
    "HUB_ALLOW_INSECURE_URLS",
    "WEBHOOK_RETENTION_DAYS",
    "WEBHOOK_LEASE_SECONDS",
    "INTEGRATION_MANAGER_URL",
    "INTEGRATION_SYNC_URL",
    "WEBHOOK_DISPATCHER_URL",
    "HUB_INBOUND_MAX_BODY",
    "HUB_OUTBOX_HANDOFF_ROOM",
    "HUB_OUTBOX_POLL_MS",
    "HUB_TRUSTED_PROXIES",
    "HUB_INBOUND_RETRY_INTERVALS_MS",
    "HUB_PUBLIC_URL",
    "GATEWAY_QUEUE_SIZE",
    "GATEWAY_MAX_WAIT_MS",
    "SYNC_LEASE_SECONDS",
    "GATEWAY_MAX_BODY",
    "GATEWAY_DEADLINE_SECONDS",
    "SYNC_SCHEDULER_TICK_MS",
];

/// A configuration that cannot be used, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// The AES-256 keys credentials are encrypted with: the current one and older
/// ones still accepted for decryption. `Debug` never prints them.
#[derive(Clone)]
pub struct EncryptionKeys {
    /// Encrypts; also decrypts.
    pub current: [u8; 32],
    /// Only decrypt (during a rotation).
    pub old: Vec<[u8; 32]>,
}

impl fmt::Debug for EncryptionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKeys([redacted], {} old)", self.old.len())
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets and URLs with passwords stay out of logs.
        f.debug_struct("Config")
            .field("port", &self.port)
            .field("database_url", &redact_url(&self.database_url))
            .field("rabbitmq_url", &redact_url(&self.rabbitmq_url))
            .field("hub_bus_prefix", &self.hub_bus_prefix)
            .field(
                "hub_admin_token",
                &self.hub_admin_token.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "integration_encryption_key",
                &self
                    .integration_encryption_key
                    .as_ref()
                    .map(|_| "[redacted]"),
            )
            .field("log_format", &self.log_format)
            .finish_non_exhaustive()
    }
}

/// `scheme://user:***@host/…` for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "[unparseable url]".to_owned(),
    }
}

impl Config {
    /// Built-in defaults for a service listening on `port`.
    pub fn defaults(port: u16) -> Self {
        Self {
            port,
            hub_host: "0.0.0.0".to_owned(),
            database_url: "postgres://postgres@127.0.0.1:5432/integration_hub?sslmode=disable"
                .to_owned(),
            hub_database_max_connections: 20,
            rabbitmq_url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            hub_bus_prefix: String::new(),
            hub_bus_consumer_concurrency: 4,
            hub_bus_max_attempts: 5,
            hub_bus_retry_base_ms: 1_000,
            hub_bus_retry_max_ms: 60_000,
            hub_bus_queue_expires_ms: None,
            hub_admin_token: None,
            integration_encryption_key: None,
            integration_encryption_keys_old: None,
            hub_migrate_on_start: true,
            hub_startup_timeout_seconds: 60,
            hub_shutdown_timeout_seconds: 30,
            hub_http_workers: 0,
            log_format: LogFormat::Pretty,
            otel_exporter_otlp_endpoint: None,
            default_rate_limit: 100,
            rate_limit_window_seconds: 60,
            default_timeout_seconds: 30,
            webhook_timeout_seconds: 30,
            default_max_retries: 3,
            webhook_max_retries: 5,
            circuit_failure_threshold: 5,
            circuit_timeout_seconds: 60,
            log_request_bodies: true,
            log_response_bodies: true,
            log_retention_days: 30,
            webhook_queue_size: 1000,
            webhook_workers: 4,
            hub_allow_private_targets: false,
            hub_allow_insecure_urls: false,
            webhook_retention_days: 7,
            webhook_lease_seconds: 60,
            integration_manager_url: "http://127.0.0.1:3026".to_owned(),
            integration_sync_url: "http://127.0.0.1:3052".to_owned(),
            webhook_dispatcher_url: "http://127.0.0.1:3027".to_owned(),
            hub_inbound_max_body: 1024 * 1024,
            hub_outbox_handoff_room: hub_bus::relay::HANDOFF_ROOM,
            hub_outbox_poll_ms: 2000,
            hub_trusted_proxies: String::new(),
            // The spec's schedule: 1 min, 5 min, 15 min, 1 h, 2 h.
            hub_inbound_retry_intervals_ms: "60000,300000,900000,3600000,7200000".to_owned(),
            hub_public_url: "http://127.0.0.1:3026".to_owned(),
            gateway_queue_size: 100,
            gateway_max_wait_ms: 30_000,
            gateway_max_body: 10 * 1024 * 1024,
            gateway_deadline_seconds: 120,
            sync_lease_seconds: 60,
            sync_scheduler_tick_ms: 5000,
        }
    }

    /// Loads defaults → `HUB_CONFIG` file → process environment, and validates.
    pub fn load(default_port: u16) -> Result<Self, ConfigError> {
        Self::load_from(default_port, |k| std::env::var(k).ok())
    }

    /// Like [`Config::load`] with an explicit environment (tests).
    pub fn load_from(
        default_port: u16,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let file = match env("HUB_CONFIG").filter(|p| !p.is_empty()) {
            None => None,
            Some(path) => {
                if !std::path::Path::new(&path).is_file() {
                    return Err(ConfigError(format!(
                        "HUB_CONFIG: file {path:?} does not exist"
                    )));
                }
                Some(std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError(format!("HUB_CONFIG: cannot read file {path:?} ({e})"))
                })?)
            }
        };
        Self::load_layers(default_port, file.as_deref(), env)
    }

    /// Defaults → `file` (the text of the `HUB_CONFIG` file, TOML) → `env`,
    /// validated: what [`Config::load_from`] does once it has read the file.
    /// Touches neither the process environment nor the file system, so the
    /// config fuzz target (`fuzz/`) runs the loader the services use.
    pub fn load_layers(
        default_port: u16,
        file: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Self::defaults(default_port)));
        if let Some(text) = file {
            fig = fig.merge(Toml::string(text));
        }
        // Only our keys are read from the environment; an empty variable counts as unset.
        let pairs: Vec<(String, String)> = KEYS
            .iter()
            .filter_map(|k| {
                env(k)
                    .filter(|v| !v.is_empty() || *k == "HUB_BUS_PREFIX")
                    .map(|v| (k.to_lowercase(), v))
            })
            .collect();
        let mut env_fig = Figment::new();
        for (k, v) in pairs {
            env_fig = env_fig.merge((k.as_str(), env_value(&k, &v)));
        }
        fig = fig.merge(env_fig);
        let config: Config = fig.extract().map_err(|e| ConfigError(describe(e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |k: &str, m: String| Err(ConfigError(format!("{k}: {m}")));
        for (key, url, schemes) in [
            (
                "DATABASE_URL",
                &self.database_url,
                &["postgres", "postgresql"][..],
            ),
            ("RABBITMQ_URL", &self.rabbitmq_url, &["amqp", "amqps"][..]),
        ] {
            match url::Url::parse(url) {
                Ok(u) if schemes.contains(&u.scheme()) => {}
                Ok(u) => {
                    return fail(
                        key,
                        format!("scheme must be one of {schemes:?} (got {:?})", u.scheme()),
                    );
                }
                Err(e) => return fail(key, format!("not a URL ({e})")),
            }
        }
        for (key, v) in [
            ("INTEGRATION_MANAGER_URL", &self.integration_manager_url),
            ("INTEGRATION_SYNC_URL", &self.integration_sync_url),
            ("WEBHOOK_DISPATCHER_URL", &self.webhook_dispatcher_url),
            ("HUB_PUBLIC_URL", &self.hub_public_url),
        ] {
            if url::Url::parse(v)
                .map(|u| !matches!(u.scheme(), "http" | "https"))
                .unwrap_or(true)
            {
                return fail(key, format!("must be an http(s) URL (got {v:?})"));
            }
        }
        if let Some(t) = &self.hub_admin_token
            && t.len() < 16
        {
            return fail(
                "HUB_ADMIN_TOKEN",
                "must be at least 16 characters; generate one with `openssl rand -hex 32`".into(),
            );
        }
        if self.hub_bus_prefix.len() > 64
            || !self
                .hub_bus_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return fail(
                "HUB_BUS_PREFIX",
                "at most 64 characters of a-z, A-Z, 0-9, '.', '_' and '-'".into(),
            );
        }
        for (key, v) in [
            (
                "HUB_DATABASE_MAX_CONNECTIONS",
                self.hub_database_max_connections,
            ),
            ("HUB_BUS_MAX_ATTEMPTS", self.hub_bus_max_attempts),
            ("RATE_LIMIT_WINDOW_SECONDS", self.rate_limit_window_seconds),
            ("DEFAULT_RATE_LIMIT", self.default_rate_limit),
            ("DEFAULT_TIMEOUT_SECONDS", self.default_timeout_seconds),
            ("WEBHOOK_TIMEOUT_SECONDS", self.webhook_timeout_seconds),
            ("CIRCUIT_FAILURE_THRESHOLD", self.circuit_failure_threshold),
            ("CIRCUIT_TIMEOUT_SECONDS", self.circuit_timeout_seconds),
            ("LOG_RETENTION_DAYS", self.log_retention_days),
            ("WEBHOOK_QUEUE_SIZE", self.webhook_queue_size),
            ("WEBHOOK_WORKERS", self.webhook_workers),
            ("WEBHOOK_RETENTION_DAYS", self.webhook_retention_days),
            ("SYNC_LEASE_SECONDS", self.sync_lease_seconds),
        ] {
            if v == 0 {
                return fail(key, "must be greater than 0".into());
            }
        }
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds {
            return fail(
                "WEBHOOK_LEASE_SECONDS",
                format!(
                    "must be greater than WEBHOOK_TIMEOUT_SECONDS ({}), or a slow delivery would be taken over while in flight",
                    self.webhook_timeout_seconds
                ),
            );
        }
        if self.hub_bus_consumer_concurrency == 0 {
            return fail(
                "HUB_BUS_CONSUMER_CONCURRENCY",
                "must be greater than 0".into(),
            );
        }
        if self.hub_bus_retry_base_ms == 0 || self.hub_bus_retry_max_ms < self.hub_bus_retry_base_ms
        {
            return fail(
                "HUB_BUS_RETRY_MAX_MS",
                "must be at least HUB_BUS_RETRY_BASE_MS, which must be > 0".into(),
            );
        }
        if self.hub_outbox_poll_ms == 0 {
            return fail("HUB_OUTBOX_POLL_MS", "must be greater than 0".into());
        }
        if self.sync_scheduler_tick_ms == 0 {
            return fail("SYNC_SCHEDULER_TICK_MS", "must be greater than 0".into());
        }
        if self.hub_inbound_max_body == 0 {
            return fail("HUB_INBOUND_MAX_BODY", "must be greater than 0".into());
        }
        if let Err(e) = hub_domain::inbound::ip::Cidrs::parse_csv(&self.hub_trusted_proxies) {
            return fail(
                "HUB_TRUSTED_PROXIES",
                format!("{e}; list CIDRs separated by commas (\"10.0.0.0/8,127.0.0.1/32\")"),
            );
        }
        if self.inbound_retry_intervals().is_empty() {
            return fail(
                "HUB_INBOUND_RETRY_INTERVALS_MS",
                "must be delays in ms separated by commas (\"60000,300000\")".into(),
            );
        }
        self.encryption_keys()?;
        Ok(())
    }

    /// The circuit breaker of outbound webhooks and of integrations
    /// (`CIRCUIT_FAILURE_THRESHOLD`, `CIRCUIT_TIMEOUT_SECONDS`; three
    /// successes close it).
    pub fn breaker_policy(&self) -> hub_domain::webhook::BreakerPolicy {
        hub_domain::webhook::BreakerPolicy {
            failure_threshold: self.circuit_failure_threshold,
            success_threshold: 3,
            open_for: Duration::from_secs(u64::from(self.circuit_timeout_seconds)),
        }
    }

    /// The trusted proxies (validated at load).
    pub fn trusted_proxies(&self) -> hub_domain::inbound::ip::Cidrs {
        hub_domain::inbound::ip::Cidrs::parse_csv(&self.hub_trusted_proxies).unwrap_or_default()
    }

    /// Delays between processing attempts of inbound events; empty when
    /// `HUB_INBOUND_RETRY_INTERVALS_MS` is malformed.
    pub fn inbound_retry_intervals(&self) -> Vec<Duration> {
        let parsed: Result<Vec<u64>, _> = self
            .hub_inbound_retry_intervals_ms
            .split(',')
            .map(|s| s.trim().parse::<u64>())
            .collect();
        parsed
            .map(|v| v.into_iter().map(Duration::from_millis).collect())
            .unwrap_or_default()
    }

    /// The credential encryption keys. A missing or malformed key is an error
    /// that says how to make one.
    pub fn encryption_keys(&self) -> Result<EncryptionKeys, ConfigError> {
        let Some(raw) = &self.integration_encryption_key else {
            return Err(ConfigError(
                "INTEGRATION_ENCRYPTION_KEY: is required (base64 of 32 random bytes); generate one with `openssl rand -base64 32`".into(),
            ));
        };
        let current = parse_key("INTEGRATION_ENCRYPTION_KEY", raw)?;
        let old = self
            .integration_encryption_keys_old
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|k| parse_key("INTEGRATION_ENCRYPTION_KEYS_OLD", k))
            .collect::<Result<_, _>>()?;
        Ok(EncryptionKeys { current, old })
    }

    /// The credential keyring (current key seals; older keys still open).
    pub fn keyring(&self) -> Result<hub_domain::secret::Keyring, ConfigError> {
        let keys = self.encryption_keys()?;
        Ok(hub_domain::secret::Keyring::new(&keys.current, &keys.old))
    }

    /// The bus settings.
    pub fn bus(&self) -> hub_bus::BusConfig {
        hub_bus::BusConfig {
            url: self.rabbitmq_url.clone(),
            prefix: self.hub_bus_prefix.clone(),
            consumer_concurrency: self.hub_bus_consumer_concurrency,
            max_attempts: self.hub_bus_max_attempts,
            retry_base: Duration::from_millis(self.hub_bus_retry_base_ms),
            retry_max: Duration::from_millis(self.hub_bus_retry_max_ms),
            queue_expires: self.hub_bus_queue_expires_ms.map(Duration::from_millis),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

fn parse_key(name: &str, raw: &str) -> Result<[u8; 32], ConfigError> {
    let bytes = STANDARD.decode(raw.trim()).map_err(|_| {
        ConfigError(format!(
            "{name}: not valid base64; generate a key with `openssl rand -base64 32`"
        ))
    })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        ConfigError(format!(
            "{name}: must decode to exactly 32 bytes (got {}); generate one with `openssl rand -base64 32`",
            bytes.len()
        ))
    })
}

/// Environment values are text; numbers and booleans are parsed per key so
/// that a bad value names its variable.
fn env_value(key: &str, raw: &str) -> figment::value::Value {
    use figment::value::Value;
    let defaults = serde_json::to_value(Config::defaults(0)).expect("defaults serialize");
    let numeric = matches!(defaults.get(key), Some(serde_json::Value::Number(_)))
        || key == "hub_bus_queue_expires_ms";
    let text = raw.trim();
    if numeric && let Ok(n) = text.parse::<i64>() {
        return Value::from(n);
    }
    if matches!(defaults.get(key), Some(serde_json::Value::Bool(_))) {
        match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => return Value::from(true),
            "false" | "0" | "no" | "off" => return Value::from(false),
            _ => {}
        }
    }
    Value::from(raw.to_owned())
}

/// Keys whose value (or the password in it) is a secret: an error about
/// them never quotes the value.
const SECRET_KEYS: &[&str] = &[
    "hub_admin_token",
    "integration_encryption_key",
    "integration_encryption_keys_old",
    "database_url",
    "rabbitmq_url",
];

fn describe(e: figment::Error) -> String {
    use figment::error::Kind;
    e.into_iter()
        .map(|e| {
            let key = e.path.last().map(|k| k.to_lowercase()).unwrap_or_default();
            let hint = match &e.kind {
                // Only the file can hold a key of its own.
                Kind::UnknownField(f, _) => {
                    return format!("HUB_CONFIG: unknown key {f:?} in the file");
                }
                // figment quotes the value it got; not for a secret.
                Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected)
                    if SECRET_KEYS.contains(&key.as_str()) =>
                {
                    format!("invalid value (not shown: it may be a secret), expected {expected}")
                }
                // A TOML syntax error quotes the offending line, which may
                // hold a secret: keep its position and what is wrong.
                Kind::Message(m) if e.path.is_empty() => m
                    .lines()
                    .map(str::trim)
                    .filter(|l| {
                        !l.is_empty()
                            && !l.starts_with('|')
                            && !l
                                .split_once('|')
                                .is_some_and(|(n, _)| n.trim().bytes().all(|b| b.is_ascii_digit()))
                    })
                    .collect::<Vec<_>>()
                    .join(": "),
                other => other.to_string(),
            };
            if e.path.is_empty() {
                // Only the file can be wrong as a whole.
                format!("HUB_CONFIG: {hint}")
            } else {
                format!("{}: {hint}", key.to_uppercase())
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const KEY: &str = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load_from(3026, move |k| env.get(k).cloned())
    }

    #[test]
    fn keys_list_matches_the_struct() {
        let v = serde_json::to_value(Config::defaults(1)).unwrap();
        let mut fields: Vec<String> = v
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.to_uppercase())
            .collect();
        let mut keys: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
        fields.sort();
        keys.sort();
        assert_eq!(fields, keys);
    }

    #[test]
    fn defaults_then_env() {
        let c = load(&[("INTEGRATION_ENCRYPTION_KEY", KEY)]).unwrap();
        assert_eq!(c.port, 3026);
        assert_eq!(c.webhook_workers, 4);
        let c = load(&[
            ("INTEGRATION_ENCRYPTION_KEY", KEY),
            ("PORT", "4000"),
            ("WEBHOOK_WORKERS", "9"),
            ("LOG_REQUEST_BODIES", "false"),
            ("LOG_FORMAT", "json"),
        ])
        .unwrap();
        assert_eq!(
            (
                c.port,
                c.webhook_workers,
                c.log_request_bodies,
                c.log_format
            ),
            (4000, 9, false, LogFormat::Json)
        );
    }

    #[test]
    fn file_sits_between_defaults_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.toml");
        std::fs::write(
            &path,
            "port = 5000\nwebhook_workers = 7\nhub_bus_prefix = \"file.\"\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let c = load(&[
            ("INTEGRATION_ENCRYPTION_KEY", KEY),
            ("HUB_CONFIG", p),
            ("WEBHOOK_WORKERS", "8"),
        ])
        .unwrap();
        assert_eq!(c.port, 5000, "file overrides the default");
        assert_eq!(c.webhook_workers, 8, "env overrides the file");
        assert_eq!(c.hub_bus_prefix, "file.");
    }

    #[test]
    fn errors_name_the_key() {
        let msg = |pairs: &[(&str, &str)]| load(pairs).unwrap_err().to_string();
        // Each bad value, with a valid key beside it, names its variable.
        for (key, value) in [
            ("PORT", "abc"),
            ("PORT", "70000"),
            ("WEBHOOK_WORKERS", "0"),
            ("HUB_MIGRATE_ON_START", "perhaps"),
            ("DATABASE_URL", "mysql://x"),
            ("LOG_FORMAT", "xml"),
            ("HUB_ADMIN_TOKEN", "short"),
            ("INTEGRATION_ENCRYPTION_KEYS_OLD", "!!"),
            ("HUB_CONFIG", "/nonexistent.toml"),
            ("HUB_TRUSTED_PROXIES", "10.0.0.0/8,nope"),
            ("HUB_INBOUND_RETRY_INTERVALS_MS", "1,x"),
            ("HUB_INBOUND_MAX_BODY", "0"),
        ] {
            let got = msg(&[("INTEGRATION_ENCRYPTION_KEY", KEY), (key, value)]);
            assert!(got.contains(key), "{key}={value:?}: {got}");
        }
        assert!(msg(&[]).contains("INTEGRATION_ENCRYPTION_KEY: is required"));
        assert!(msg(&[("INTEGRATION_ENCRYPTION_KEY", "c2hvcnQ=")]).contains("exactly 32 bytes"));
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.toml");
        std::fs::write(&path, "prot = 5000\n").unwrap();
        let err = load(&[
            ("INTEGRATION_ENCRYPTION_KEY", KEY),
            ("HUB_CONFIG", path.to_str().unwrap()),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
    }

    #[test]
    fn file_errors_name_hub_config_and_quote_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.toml");
        let err = |text: &str| {
            std::fs::write(&path, text).unwrap();
            load(&[
                ("INTEGRATION_ENCRYPTION_KEY", KEY),
                ("HUB_CONFIG", path.to_str().unwrap()),
            ])
            .unwrap_err()
            .to_string()
        };
        // A syntax error on the line of a secret: where, not the line.
        let got = err("hub_admin_token = \"s3cret-admin-token-value\nport = 1\n");
        assert!(
            got.contains("HUB_CONFIG: ") && got.contains("line 1"),
            "{got}"
        );
        assert!(!got.contains("s3cret"), "{got}");
        // A secret of the wrong type: the key, not the value.
        let got = err("hub_admin_token = 12345678901234567\n");
        assert!(got.contains("HUB_ADMIN_TOKEN: invalid value"), "{got}");
        assert!(!got.contains("12345678901234567"), "{got}");
        let got = err("database_url = [\"postgres://u:pw-in-a-list@h/db\"]\n");
        assert!(
            got.contains("DATABASE_URL") && !got.contains("pw-in-a-list"),
            "{got}"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let c = load(&[
            ("INTEGRATION_ENCRYPTION_KEY", KEY),
            ("HUB_ADMIN_TOKEN", "super-secret-admin-token"),
            ("DATABASE_URL", "postgres://hub:pa55word@db/hub"),
        ])
        .unwrap();
        let s = format!("{c:?}");
        assert!(
            !s.contains(KEY) && !s.contains("super-secret") && !s.contains("pa55word"),
            "{s}"
        );
        assert!(!format!("{:?}", c.encryption_keys().unwrap()).contains("48"));
    }
}
