//! Inbound webhooks at run time: the endpoint cache of the public route, the
//! group-commit [`writer`], the processing [`worker`] and secret sealing.
//!
//! The public route answers 200 only after its request is committed; the
//! writer groups concurrent requests into one transaction so that a commit
//! is shared by many requests.

pub mod secrets;
pub mod worker;
pub mod writer;

use chrono::{DateTime, Utc};
use hub_domain::inbound::ip::Cidrs;
use hub_domain::inbound::{Encoding, HandlerType, Scheme, Verifier};
use hub_domain::secret::Keyring;
use hub_storage::webhook_endpoints::Endpoint;
use std::collections::HashMap;
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
            accepting: row.is_enabled && row.status == "ACTIVE",
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

type CacheMap = HashMap<(String, String), (Instant, Option<Arc<LiveEndpoint>>)>;

/// Looked-up endpoints by (tenant id or slug, path), unknown ones included.
#[derive(Default)]
pub struct EndpointCache {
    map: Mutex<CacheMap>,
}

impl EndpointCache {
    /// A fresh entry, if any: `Some(None)` means "known not to exist".
    pub fn get(&self, tenant: &str, path: &str) -> Option<Option<Arc<LiveEndpoint>>> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(tenant.to_owned(), path.to_owned()))
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, e)| e.clone())
    }

    /// Remembers a lookup.
    pub fn put(&self, tenant: &str, path: &str, e: Option<Arc<LiveEndpoint>>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.clear();
        }
        map.insert((tenant.to_owned(), path.to_owned()), (Instant::now(), e));
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
    /// Endpoint lookups.
    pub cache: Arc<EndpointCache>,
    /// How failed processing attempts are retried.
    pub policy: Arc<worker::Policy>,
}
