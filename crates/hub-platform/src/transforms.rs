//! Transformation templates that inbound endpoints and outbound
//! subscriptions reference in their `transform_template`
//! (`{"template_id": "…", "version": 2}`): the reference, and a cache of the
//! compiled versions the services run.
//!
//! A reference without `version` follows the template: it uses whichever
//! version is active (a `PUT` on the template takes effect within
//! [`FOLLOW_TTL`]). With `version` it is pinned to that version.

use hub_domain::TenantId;
use hub_storage::transformations::{self as store, Template};
use hub_storage::{Pool, StorageError};
use hub_transform::error::Limits;
use hub_transform::pipeline::{self, Compiled, Input, Parts, Transformed};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a reference to a template's active version is cached.
pub const FOLLOW_TTL: Duration = Duration::from_secs(2);
/// How long a pinned version is cached (it never changes, but may be
/// deleted with its template).
const PINNED_TTL: Duration = Duration::from_secs(30);
/// Most cached references; the cache is emptied when it grows past this.
const MAX_CACHED: usize = 10_000;

/// A `transform_template` that names a stored template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reference {
    /// A version id of the template (any of its versions).
    pub template_id: Uuid,
    /// The version to use; `None`: the active one.
    pub version: Option<i32>,
}

impl Reference {
    /// `None` when `v` is not a reference (an object with `template_id`);
    /// else the reference, or what is wrong with it.
    pub fn of(v: &Value) -> Option<Result<Self, String>> {
        let map = v.as_object()?;
        let id = map.get("template_id")?;
        Some(Self::parse(map, id))
    }

    fn parse(map: &serde_json::Map<String, Value>, id: &Value) -> Result<Self, String> {
        if let Some(k) = map.keys().find(|k| *k != "template_id" && *k != "version") {
            return Err(format!(
                "a template reference has template_id and optionally version, not {k:?}"
            ));
        }
        let template_id = id
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or("template_id must be the id of a transformation template (a UUID)")?;
        let version = match map.get("version") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .filter(|n| *n >= 1)
                    .ok_or("version must be a version number (1 or more), or left out to use the active version")?,
            ),
        };
        Ok(Self {
            template_id,
            version,
        })
    }
}

/// A template version, compiled.
#[derive(Debug)]
pub struct Resolved {
    /// Id of the version.
    pub id: Uuid,
    /// The template's code.
    pub code: String,
    /// The version.
    pub version: i32,
    /// Ready to run.
    pub compiled: Compiled,
}

impl Resolved {
    /// Runs the version on `input` with the default limits (any problem
    /// fails it); the error names the template and version
    /// (`load_to_xml version 2: mapping stage: …`).
    pub fn transform(&self, input: Input<'_>) -> Result<Transformed, String> {
        self.compiled
            .transform(input, Limits::default())
            .map_err(|e| format!("{} version {}: {e}", self.code, self.version))
    }
}

/// Compiles a stored template version.
pub fn compile(t: &Template) -> Result<Compiled, String> {
    let parts = Parts {
        source_format: Some(&t.source_format),
        target_format: Some(&t.target_format),
        source_options: t.source_options.as_ref(),
        target_options: t.target_options.as_ref(),
        mapping_rules: Some(&t.mapping_rules),
        validation_rules: t.validation_rules.as_ref(),
    };
    pipeline::compile(&parts).map_err(|problems| {
        let all: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect();
        format!(
            "template {} version {} does not compile: {}",
            t.code,
            t.version,
            all.join("; ")
        )
    })
}

type Entry = (Instant, Option<Arc<Resolved>>);

/// The compiled version under `key` in `cache` if read less than `ttl`
/// ago, else what `load` reads (compiled, and remembered, absent too).
async fn cached<K: std::hash::Hash + Eq>(
    cache: &Mutex<HashMap<K, Entry>>,
    key: K,
    ttl: std::time::Duration,
    load: impl std::future::Future<Output = hub_storage::Result<Option<Template>>>,
) -> Result<Option<Arc<Resolved>>, ResolveError> {
    let lock = || {
        cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some((_, found)) = lock().get(&key).filter(|(at, _)| at.elapsed() < ttl) {
        return Ok(found.clone());
    }
    let found = load
        .await?
        .map(|t| resolved(&t))
        .transpose()
        .map_err(ResolveError::Invalid)?;
    let mut cache = lock();
    if cache.len() >= MAX_CACHED {
        cache.clear();
    }
    cache.insert(key, (Instant::now(), found.clone()));
    Ok(found)
}

fn resolved(t: &Template) -> Result<Arc<Resolved>, String> {
    compile(t).map(|compiled| {
        Arc::new(Resolved {
            id: t.id,
            code: t.code.clone(),
            version: t.version,
            compiled,
        })
    })
}

/// The compiled template versions references use, cached per tenant and
/// reference.
pub struct Templates {
    pool: Pool,
    cache: Mutex<HashMap<(Uuid, Reference), Entry>>,
    by_code: Mutex<HashMap<(Uuid, String), Entry>>,
}

/// Why a reference cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The template (or the pinned version) does not exist for the tenant.
    #[error("{0} does not exist or was deleted")]
    Missing(String),
    /// The stored version does not compile (a template stored before a
    /// rule was tightened).
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Templates {
    /// An empty cache over `pool`.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            cache: Mutex::new(HashMap::new()),
            by_code: Mutex::new(HashMap::new()),
        }
    }

    /// The active version of template `code` for `tenant` (its own template
    /// with that code, else the system one), compiled; cached like a
    /// reference that follows the active version. Sync jobs map records
    /// with it.
    pub async fn by_code(
        &self,
        tenant: TenantId,
        code: &str,
    ) -> Result<Arc<Resolved>, ResolveError> {
        let key = (tenant.0, code.to_owned());
        let load = store::active_by_code(&self.pool, tenant, code);
        let found = cached(&self.by_code, key, FOLLOW_TTL, load).await?;
        found.ok_or_else(|| ResolveError::Missing(format!("transformation template {code:?}")))
    }

    /// The version `r` uses for `tenant`, compiled.
    pub async fn get(&self, tenant: TenantId, r: Reference) -> Result<Arc<Resolved>, ResolveError> {
        let key = (tenant.0, r);
        let ttl = if r.version.is_some() {
            PINNED_TTL
        } else {
            FOLLOW_TTL
        };
        let load = store::resolve(&self.pool, tenant, r.template_id, r.version);
        let found = cached(&self.cache, key, ttl, load).await?;
        found.ok_or_else(|| {
            ResolveError::Missing(match r.version {
                Some(v) => format!("version {v} of transformation template {}", r.template_id),
                None => format!("transformation template {}", r.template_id),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_told_from_field_maps_and_checked() {
        assert!(Reference::of(&json!({"id": "$.data.id"})).is_none());
        assert!(Reference::of(&json!("x")).is_none());
        let id = Uuid::now_v7();
        let r = Reference::of(&json!({"template_id": id})).unwrap().unwrap();
        assert_eq!(
            r,
            Reference {
                template_id: id,
                version: None
            }
        );
        let r = Reference::of(&json!({"template_id": id, "version": 3}))
            .unwrap()
            .unwrap();
        assert_eq!(r.version, Some(3));
        for bad in [
            json!({"template_id": "nope"}),
            json!({"template_id": id, "version": 0}),
            json!({"template_id": id, "version": "2"}),
            json!({"template_id": id, "rules": []}),
        ] {
            assert!(Reference::of(&bad).unwrap().is_err(), "{bad}");
        }
    }
}
