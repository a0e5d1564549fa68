//! Inbound webhooks at run time: the endpoint cache of the public route, the
//! group-commit [`writer`], the processing [`worker`] and secret sealing.
//! What is decided without I/O (verification, handshakes, processing) is
//! in `hub_domain::inbound`.
//!
//! The public route answers 200 only after its request is committed; the
//! writer groups concurrent requests into one transaction so that a commit
//! is shared by many requests.

pub mod secrets;
pub mod worker;
pub mod writer;

use chrono::{DateTime, Utc};
use hub_domain::TenantId;
use hub_domain::inbound::ip::Cidrs;
use hub_domain::inbound::processing::{Outcome, Policy};
use hub_domain::inbound::{Encoding, HandlerType, Scheme, Verifier};
use hub_domain::secret::Keyring;
use hub_domain::status::EndpointStatus;
use hub_platform::transforms::{Reference, Templates};
use hub_storage::webhook_endpoints::Endpoint;
use hub_transform::codec::Format;
use hub_transform::pipeline::Input;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a looked-up endpoint is reused by the public route. Changes made
/// through this process clear the cache at once; other replicas see them
/// within this delay.
pub const CACHE_TTL: Duration = Duration::from_secs(2);

/// An endpoint ready to verify requests: settings parsed, secrets opened.
pub struct LiveEndpoint {
    /// The stored row.
    pub row: Endpoint,
    /// Verification settings.
    pub verifier: Verifier,
    /// The current secret.
    pub secret: String,
    /// The previous secret and when it stops working.
    pub previous: Option<(String, DateTime<Utc>)>,
    /// Allowed source networks (`None` = anyone).
    pub allow: Option<Cidrs>,
    /// Whether requests are accepted (enabled and ACTIVE).
    pub accepting: bool,
}

impl LiveEndpoint {
    /// Parses `row` and opens its secrets.
    pub fn new(row: Endpoint, keyring: &Keyring) -> Result<Self, String> {
        let verifier = verifier_of(&row);
        let secret = secrets::open_current(&row, keyring)?;
        let previous = match (&row.secret_previous, row.secret_previous_expires_at) {
            (Some(_), Some(until)) => Some((secrets::open_previous(&row, keyring)?, until)),
            _ => None,
        };
        let allow = match &row.ip_whitelist {
            Some(serde_json::Value::Array(items)) if !items.is_empty() => {
                let items: Vec<String> = items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                Some(Cidrs::parse(&items)?)
            }
            _ => None,
        };
        Ok(Self {
            accepting: row.is_enabled && row.status == EndpointStatus::Active,
            row,
            verifier,
            secret,
            previous,
            allow,
        })
    }

    /// The secrets valid at `now`: the current one, and the previous one
    /// during its grace period.
    pub fn secrets_at(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut v = vec![self.secret.as_str()];
        if let Some((prev, until)) = &self.previous
            && now < *until
        {
            v.push(prev.as_str());
        }
        v
    }

    /// The handler type.
    pub fn handler(&self) -> HandlerType {
        HandlerType::parse(&self.row.handler_type).unwrap_or(HandlerType::Custom)
    }
}

/// The verification settings of a stored endpoint.
pub fn verifier_of(row: &Endpoint) -> Verifier {
    let scheme = row
        .signature_algorithm
        .as_deref()
        .and_then(Scheme::parse)
        .unwrap_or(Scheme::StandardWebhooks);
    Verifier {
        scheme,
        header: row
            .signature_header
            .clone()
            .unwrap_or_else(|| scheme.default_header().to_owned()),
        encoding: Encoding::parse(&row.signature_encoding).unwrap_or(Encoding::Hex),
        prefix: row.signature_prefix.clone(),
        tolerance_seconds: i64::from(row.timestamp_tolerance_seconds),
    }
}

/// One lookup's result, shared by every request that waits for it.
type Lookup = Arc<tokio::sync::OnceCell<Option<Arc<LiveEndpoint>>>>;
type CacheMap = HashMap<(String, String), (Instant, Lookup)>;

/// Looked-up endpoints by (tenant id or slug, path), unknown ones included.
/// One lookup per key at a time: requests that arrive while it runs (a cold
/// start, or every [`CACHE_TTL`] under load) wait for its result instead of
/// each querying the database.
#[derive(Default)]
pub struct EndpointCache {
    map: Mutex<CacheMap>,
}

impl EndpointCache {
    /// The endpoint at (`tenant`, `path`), `None` if there is none: the
    /// cached answer while it is fresh, else `load`'s, which runs once for
    /// all concurrent callers (a failed load is not remembered: the next
    /// caller tries again).
    pub async fn get_or_load<E, F, Fut>(
        &self,
        tenant: &str,
        path: &str,
        load: F,
    ) -> Result<Option<Arc<LiveEndpoint>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Arc<LiveEndpoint>>, E>>,
    {
        let lookup = {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            let key = (tenant.to_owned(), path.to_owned());
            match map.get(&key) {
                Some((at, lookup)) if at.elapsed() < CACHE_TTL => lookup.clone(),
                _ => {
                    if map.len() > 10_000 {
                        map.clear();
                    }
                    let lookup = Lookup::default();
                    map.insert(key, (Instant::now(), lookup.clone()));
                    lookup
                }
            }
        };
        lookup.get_or_try_init(load).await.cloned()
    }

    /// Forgets everything (after any endpoint change made here).
    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// What the inbound routes share.
#[derive(Clone)]
pub struct Inbound {
    /// Seals and opens endpoint secrets.
    pub keyring: Arc<Keyring>,
    /// Proxies whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Arc<Cidrs>,
    /// Largest body accepted.
    pub max_body: usize,
    /// The group-commit writer.
    pub writer: writer::Writer,
    /// The request log (every received request is recorded, INBOUND).
    pub recorder: hub_gateway::logs::Recorder,
    /// Endpoint lookups.
    pub cache: Arc<EndpointCache>,
    /// How failed processing attempts are retried.
    pub policy: Arc<Policy>,
    /// The transformation templates endpoints reference.
    pub templates: Arc<Templates>,
}

/// What the transformation template an endpoint's `transform_template`
/// references makes of a received body: `None` when it references none (a
/// field map, or nothing), else the template's output tree or why there is
/// none. A JSON template reads the parsed payload (JSON, or a form); other
/// formats read the body as text (an X12 214, an XML or CSV file). Its
/// output must be JSON (checked when the endpoint is saved).
pub async fn mapped(
    templates: &Templates,
    tenant: TenantId,
    transform_template: Option<&Value>,
    payload: Option<&Value>,
    body: &[u8],
) -> Option<Result<Value, String>> {
    let reference = Reference::of(transform_template?)?;
    Some(run_reference(templates, tenant, reference, payload, body).await)
}

async fn run_reference(
    templates: &Templates,
    tenant: TenantId,
    reference: Result<Reference, String>,
    payload: Option<&Value>,
    body: &[u8],
) -> Result<Value, String> {
    let t = templates
        .get(tenant, reference?)
        .await
        .map_err(|e| e.to_string())?;
    let input = match (t.compiled.source_format, payload) {
        (Format::Json, Some(tree)) => Input::Tree(tree),
        _ => Input::Text(std::str::from_utf8(body).map_err(|_| {
            format!(
                "the body is not UTF-8 text, so not {}",
                t.compiled.source_format
            )
        })?),
    };
    t.transform(input).map(|out| out.tree)
}

/// How failed processing attempts are retried, per the service
/// configuration (`HUB_INBOUND_RETRY_INTERVALS_MS`, `WEBHOOK_MAX_RETRIES`).
pub fn policy(config: &hub_platform::Config) -> Policy {
    Policy::new(config.inbound_retry_intervals(), config.webhook_max_retries)
}

/// Counts a processing attempt's outcome in the metrics.
pub fn count(outcome: &Outcome) {
    match outcome {
        Outcome::Skipped | Outcome::Processed { .. } => {
            metrics::counter!("hub_inbound_processed_total", "status" => outcome.status())
                .increment(1)
        }
        Outcome::Retry { .. } => metrics::counter!("hub_inbound_retried_total").increment(1),
        Outcome::Failed { .. } => metrics::counter!("hub_inbound_failed_total").increment(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_lookups_of_a_key_load_it_once_and_failures_are_not_kept() {
        let cache = EndpointCache::default();
        let calls = AtomicUsize::new(0);
        let load = |fail: bool| {
            let calls = &calls;
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                if fail { Err("database down") } else { Ok(None) }
            }
        };
        let got = futures::future::join_all(
            (0..16).map(|_| cache.get_or_load("acme", "orders", load(false))),
        )
        .await;
        assert!(got.iter().all(|r| matches!(r, Ok(None))));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one query for 16 requests");
        // Fresh: answered from the cache.
        assert!(matches!(
            cache.get_or_load("acme", "orders", load(false)).await,
            Ok(None)
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Another key is its own lookup; a failed one is tried again.
        let get = |path, fail| cache.get_or_load("acme", path, load(fail));
        assert!(get("loads", true).await.is_err());
        assert!(get("loads", false).await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        // A change made here forgets every entry.
        cache.clear();
        assert!(get("orders", false).await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }
}
