//! An integration body, validated against its provider:
//! [`ValidIntegrationPatch::parse`] checks every field (all errors
//! collected, in field order) and [`ValidIntegrationPatch::apply`] writes
//! the result to the row, recording what changed.

use super::body::IntegrationInput;
use crate::credentials::{self, ValidCredentials};
use crate::routes::list::either;
use crate::routes::patch::{Changes, FieldErrors, Patch};
use crate::state::Integrations;
use hub_connectors::manifest::ProviderManifest;
use hub_domain::schedule::SyncFrequency;
use hub_domain::secret::Keyring;
use hub_platform::error::ApiError;
use hub_storage::integrations::Integration;
use serde_json::{Value, json};

/// Whether an integration is being created or updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `name` is required; `environment` is chosen (`PRODUCTION` unless
    /// sent); `config` is checked even when not sent.
    Create,
    /// The provider and environment cannot change; absent fields are kept.
    Update,
}

const ENVIRONMENTS: &[&str] = &["PRODUCTION", "SANDBOX", "TEST"];

/// An integration body whose every field is valid for its provider.
#[derive(Debug)]
pub struct ValidIntegrationPatch {
    environment: Option<String>,
    name: Option<String>,
    description: Option<String>,
    config: Option<Value>,
    credentials: Option<ValidCredentials>,
    retry_enabled: Option<bool>,
    max_retries: Option<i32>,
    timeout_seconds: Option<i32>,
    /// `Some(None)`: back to the provider's limit.
    rate_limit: Option<Option<(i32, i32)>>,
    sync_frequency: Option<String>,
    external_id: Option<String>,
    source_system: Option<String>,
    custom_fields: Option<Value>,
    export_events: Option<Vec<String>>,
}

impl ValidIntegrationPatch {
    /// Checks `input` for an integration of `manifest`'s provider; a 422
    /// lists every invalid field.
    pub fn parse(
        input: IntegrationInput,
        mode: Mode,
        manifest: &ProviderManifest,
        st: &Integrations,
    ) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let environment = match mode {
            Mode::Create => check_environment(input.environment, &mut errors),
            Mode::Update => {
                let fixed = "cannot change; create a new integration";
                if input.provider_code.is_set() || input.provider_id.is_set() {
                    errors.push("provider_code", fixed);
                }
                if input.environment.is_set() {
                    errors.push("environment", fixed);
                }
                None
            }
        };
        if mode == Mode::Create && !input.name.is_set() {
            errors.push("name", "is required");
        }
        let config = match (input.config, mode) {
            (Patch::Value(c), _) => Some(c),
            (_, Mode::Create) => Some(json!({})),
            (_, Mode::Update) => None,
        };
        let valid = Self {
            environment,
            name: input.name.value().and_then(|n| {
                let n = n.trim();
                let ok = !n.is_empty() && n.chars().count() <= 200;
                let message = "must be 1 to 200 characters";
                errors.check("name", ok.then(|| n.to_owned()).ok_or(message))
            }),
            description: input.description.value(),
            config: config.and_then(|c| check_config(c, manifest, st, &mut errors)),
            credentials: input.credentials.value().and_then(|c| {
                credentials::check(manifest.auth_type, &c)
                    .map_err(|e| errors.extend(e))
                    .ok()
            }),
            retry_enabled: input.retry_enabled.value(),
            max_retries: in_range(input.max_retries, "max_retries", 0, 10, &mut errors),
            timeout_seconds: in_range(
                input.timeout_seconds,
                "timeout_seconds",
                1,
                300,
                &mut errors,
            ),
            rate_limit: check_rate_limit(
                input.rate_limit_requests,
                input.rate_limit_window_seconds,
                &mut errors,
            ),
            sync_frequency: input.sync_frequency.value().and_then(|v| {
                let parsed = SyncFrequency::parse(&v).map(|f| f.as_str().to_owned());
                errors.check("sync_frequency", parsed.map_err(|e| e.to_string()))
            }),
            external_id: at_most(input.external_id, "external_id", 100, &mut errors),
            source_system: at_most(input.source_system, "source_system", 50, &mut errors),
            custom_fields: input.custom_fields.value().and_then(|v| {
                let ok = v.is_object();
                errors.check("custom_fields", ok.then_some(v).ok_or("must be an object"))
            }),
            export_events: check_export_events(input.export_events, manifest, &mut errors),
        };
        errors.or_invalid(valid)
    }

    /// The environment of a new integration.
    pub fn environment(&self) -> &str {
        self.environment.as_deref().unwrap_or("PRODUCTION")
    }

    /// Writes the fields to `row`, sealing credentials with `keyring`;
    /// returns the names of those that changed (`credentials` whenever
    /// they are sent).
    pub fn apply(self, row: &mut Integration, keyring: &Keyring) -> Changes {
        let mut c = Changes::default();
        c.set("name", &mut row.name, self.name);
        c.set(
            "description",
            &mut row.description,
            self.description.map(Some),
        );
        c.set("config", &mut row.config, self.config);
        if let Some(creds) = self.credentials {
            creds.seal_into(row, keyring);
            c.push("credentials");
        }
        c.set("retry_enabled", &mut row.retry_enabled, self.retry_enabled);
        c.set("max_retries", &mut row.max_retries, self.max_retries);
        c.set(
            "timeout_seconds",
            &mut row.timeout_seconds,
            self.timeout_seconds,
        );
        if let Some(limit) = self.rate_limit {
            let (requests, window) = (limit.map(|l| l.0), limit.map(|l| l.1));
            c.set(
                "rate_limit_requests",
                &mut row.rate_limit_requests,
                Some(requests),
            );
            c.set(
                "rate_limit_window_seconds",
                &mut row.rate_limit_window_seconds,
                Some(window),
            );
        }
        c.set(
            "sync_frequency",
            &mut row.sync_frequency,
            self.sync_frequency.map(Some),
        );
        c.set(
            "external_id",
            &mut row.external_id,
            self.external_id.map(Some),
        );
        c.set(
            "source_system",
            &mut row.source_system,
            self.source_system.map(Some),
        );
        c.set("custom_fields", &mut row.custom_fields, self.custom_fields);
        c.set("export_events", &mut row.export_events, self.export_events);
        c
    }
}

fn check_environment(sent: Patch<String>, errors: &mut FieldErrors) -> Option<String> {
    let environment = sent
        .value()
        .unwrap_or_else(|| "PRODUCTION".into())
        .to_ascii_uppercase();
    if ENVIRONMENTS.contains(&environment.as_str()) {
        Some(environment)
    } else {
        errors.push("environment", format!("must be {}", either(ENVIRONMENTS)));
        None
    }
}

/// `config` per the provider's schema, its `base_url` (if any) a target the
/// hub may call.
fn check_config(
    config: Value,
    manifest: &ProviderManifest,
    st: &Integrations,
    errors: &mut FieldErrors,
) -> Option<Value> {
    match manifest.validate_config(&config) {
        Ok(()) => {
            if let Some(base) = config.get("base_url").and_then(Value::as_str)
                && let Err(e) = check_base_url(base, st)
            {
                errors.push("config.base_url", e);
            }
            Some(config)
        }
        Err(errs) => {
            for e in errs {
                errors.push(e.field, e.message);
            }
            None
        }
    }
}

fn check_base_url(base: &str, st: &Integrations) -> Result<(), String> {
    let url = url::Url::parse(base).map_err(|e| format!("not a URL ({e})"))?;
    hub_connectors::client::check_target(&url, st.policy).map_err(|e| e.to_string())
}

/// The rate-limit override: both values, or both `null` to clear it.
fn check_rate_limit(
    requests: Patch<i32>,
    window: Patch<i32>,
    errors: &mut FieldErrors,
) -> Option<Option<(i32, i32)>> {
    match (requests, window) {
        (Patch::Absent, Patch::Absent) => None,
        (Patch::Null, Patch::Null) => Some(None),
        (Patch::Value(r), Patch::Value(w)) => {
            let r = in_range(
                Patch::Value(r),
                "rate_limit_requests",
                1,
                1_000_000_000,
                errors,
            );
            let w = in_range(
                Patch::Value(w),
                "rate_limit_window_seconds",
                1,
                86_400,
                errors,
            );
            Some(Some((r?, w?)))
        }
        _ => {
            let message = "rate_limit_requests and rate_limit_window_seconds are set (or cleared with null) together";
            errors.push("rate_limit_requests", message);
            None
        }
    }
}

fn in_range(
    sent: Patch<i32>,
    field: &str,
    min: i32,
    max: i32,
    errors: &mut FieldErrors,
) -> Option<i32> {
    let v = sent.value()?;
    let message = format!("must be between {min} and {max}");
    errors.check(field, (min..=max).contains(&v).then_some(v).ok_or(message))
}

fn at_most(
    sent: Patch<String>,
    field: &str,
    max: usize,
    errors: &mut FieldErrors,
) -> Option<String> {
    let v = sent.value()?;
    let message = format!("must be at most {max} characters");
    errors.check(
        field,
        (v.chars().count() <= max).then_some(v).ok_or(message),
    )
}

/// The events an integration exports: each one its provider's manifest
/// exports (`sync.entities.*.export.events`), no repeats; `null` is none.
fn check_export_events(
    sent: Patch<Vec<String>>,
    manifest: &ProviderManifest,
    errors: &mut FieldErrors,
) -> Option<Vec<String>> {
    let events = match sent {
        Patch::Absent => return None,
        Patch::Null => Vec::new(),
        Patch::Value(v) => v,
    };
    let offered: Vec<&String> = manifest
        .sync
        .iter()
        .flat_map(|s| s.entities.values())
        .filter_map(|e| e.export.as_ref())
        .flat_map(|x| x.events.keys())
        .collect();
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    let mut ok = true;
    for (i, e) in events.into_iter().enumerate() {
        if !offered.contains(&&e) {
            let known = if offered.is_empty() {
                format!("{} exports no events", manifest.code)
            } else {
                let names: Vec<&str> = offered.iter().map(|s| s.as_str()).collect();
                format!("{} exports {}", manifest.code, names.join(", "))
            };
            errors.push(format!("export_events[{i}]"), format!("{e:?}: {known}"));
            ok = false;
        } else if !out.contains(&e) {
            out.push(e);
        }
    }
    ok.then_some(out)
}
