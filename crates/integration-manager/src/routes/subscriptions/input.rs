//! A subscription body, validated for the row it applies to:
//! [`ValidSubscriptionPatch::parse`] checks every field (all errors
//! collected, in field order) and [`ValidSubscriptionPatch::apply`] writes
//! the result to the row, recording what changed.

use super::body::SubscriptionInput;
use super::{OutboundWebhooks, seal};
use crate::routes::list::status_of;
use crate::routes::patch::{Changes, FieldErrors, Patch};
use crate::routes::strip_field;
use crate::routes::transformations::{Side, check_reference};
use hub_connectors::webhook::{auth_secret_field, check_subscription_url};
use hub_domain::secret::{Keyring, last_four};
use hub_domain::status::SubscriptionStatus;
use hub_domain::webhook::{RetryPolicy, WebhookSecret, parse_patterns};
use hub_platform::error::ApiError;
use hub_storage::subscriptions::Subscription;
use serde_json::{Map, Value, json};

const AUTH_TYPES: &[&str] = &["NONE", "HMAC", "BASIC", "API_KEY", "OAUTH2"];
/// Headers the hub sets itself; a subscription cannot override them.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "authorization",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "transfer-encoding",
    "connection",
];

/// Whether a subscription is being created (required fields) or updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `name`, `url` and `event_types` are required.
    Create,
    /// Absent fields are kept.
    Update,
}

/// A subscription body whose every field is valid for its row.
pub struct ValidSubscriptionPatch {
    name: Option<String>,
    description: Option<String>,
    url: Option<String>,
    event_types: Option<Value>,
    auth: Option<ValidAuth>,
    content_type: Option<String>,
    headers: Option<Value>,
    transform_template: Option<Option<Value>>,
    retry: Option<Retry>,
    status: Option<SubscriptionStatus>,
    is_enabled: Option<bool>,
    secret: Option<WebhookSecret>,
}

/// A new auth type with its settings (the secret field taken out of them).
struct ValidAuth {
    auth_type: String,
    config: Value,
    secret: AuthSecret,
}

/// What becomes of the sealed auth secret.
enum AuthSecret {
    Set(String),
    Keep,
    Clear,
}

/// The retry settings, checked together.
struct Retry {
    enabled: bool,
    max_retries: i64,
    intervals: Value,
}

impl ValidSubscriptionPatch {
    /// Checks `input` against `row` (the stored subscription, or the new
    /// one's defaults); a 422 lists every invalid field.
    pub async fn parse(
        input: SubscriptionInput,
        row: &Subscription,
        st: &OutboundWebhooks,
        mode: Mode,
    ) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let create = mode == Mode::Create;
        let name = check_name(input.name, create, &mut errors);
        let description = input
            .description
            .value()
            .filter(|d| Some(d) != row.description.as_ref());
        if description.as_ref().is_some_and(|d| d.len() > 2000) {
            errors.push("description", "must be at most 2000 characters");
        }
        let url = check_url(input.url, create, st, &mut errors).await;
        let event_types = check_event_types(input.event_types, create, &mut errors);
        let auth = check_auth(input.auth_type, input.auth_config, row, st, &mut errors).await;
        let transform_template = check_template(input.transform_template, &mut errors);
        if let Some(Some(t)) = &transform_template {
            let tenant = hub_domain::TenantId(row.tenant_id);
            let checked = check_reference(&st.templates, tenant, t, Side::Outbound).await?;
            errors.check("transform_template", checked);
        }
        let valid = Self {
            name,
            description,
            url,
            event_types,
            auth,
            content_type: check_content_type(input.content_type, &mut errors),
            headers: input
                .headers
                .value()
                .inspect(|h| check_headers(h, &mut errors)),
            transform_template,
            retry: check_retry(
                input.retry_enabled,
                input.max_retries,
                input.retry_intervals,
                row,
                &mut errors,
            ),
            status: check_status(input.status, &mut errors),
            is_enabled: input.is_enabled.value(),
            secret: input.secret_key.value().and_then(|s| {
                errors.check(
                    "secret_key",
                    WebhookSecret::parse(&s).map_err(|e| strip_field(&e.to_string())),
                )
            }),
        };
        errors.or_invalid(valid)
    }

    /// Writes the fields to `row`, sealing secrets with `keyring`; returns
    /// the names of those that changed.
    pub fn apply(self, row: &mut Subscription, keyring: &Keyring) -> Changes {
        let mut c = Changes::default();
        c.set("name", &mut row.name, self.name);
        c.set(
            "description",
            &mut row.description,
            self.description.map(Some),
        );
        c.set("url", &mut row.url, self.url);
        c.set("event_types", &mut row.event_types, self.event_types);
        if let Some(auth) = self.auth {
            match auth.secret {
                AuthSecret::Set(secret) => {
                    row.auth_secret_hint = Some(last_four(&secret));
                    row.auth_secret_encrypted = Some(seal(keyring, row.id, "auth", &secret));
                }
                AuthSecret::Keep => {}
                AuthSecret::Clear => {
                    row.auth_secret_encrypted = None;
                    row.auth_secret_hint = None;
                }
            }
            row.auth_type = auth.auth_type;
            row.auth_config = Some(auth.config);
            c.push("auth_config");
        }
        c.set("content_type", &mut row.content_type, self.content_type);
        c.set("headers", &mut row.headers, self.headers);
        c.set(
            "transform_template",
            &mut row.transform_template,
            self.transform_template,
        );
        if let Some(r) = self.retry {
            c.set("retry_enabled", &mut row.retry_enabled, Some(r.enabled));
            // Checked to be 0–20.
            c.set(
                "max_retries",
                &mut row.max_retries,
                Some(r.max_retries as i32),
            );
            c.set(
                "retry_intervals",
                &mut row.retry_intervals,
                Some(r.intervals),
            );
        }
        c.set("status", &mut row.status, self.status);
        if c.set("is_enabled", &mut row.is_enabled, self.is_enabled)
            && row.is_enabled
            && row.status == SubscriptionStatus::Failed
        {
            row.status = SubscriptionStatus::Active;
            row.disabled_reason = None;
            row.consecutive_failures = 0;
        }
        if let Some(s) = self.secret {
            row.secret_hint = Some(s.last4());
            row.secret_key = Some(seal(keyring, row.id, "secret", s.expose()));
            c.push("secret_key");
        }
        c
    }
}

/// The name, trimmed: 1–200 characters, required on create.
fn check_name(sent: Patch<String>, required: bool, errors: &mut FieldErrors) -> Option<String> {
    match sent.value().map(|n| n.trim().to_owned()) {
        Some(n) if n.is_empty() || n.chars().count() > 200 => {
            errors.push("name", "must be 1 to 200 characters");
            None
        }
        Some(n) => Some(n),
        None => {
            if required {
                errors.push("name", "is required");
            }
            None
        }
    }
}

/// The target URL (https unless insecure URLs are allowed), required on
/// create.
async fn check_url(
    sent: Patch<String>,
    required: bool,
    st: &OutboundWebhooks,
    errors: &mut FieldErrors,
) -> Option<String> {
    let Some(u) = sent.value() else {
        if required {
            errors.push("url", "is required");
        }
        return None;
    };
    let checked = check_subscription_url(u.trim(), st.allow_insecure, st.allow_private).await;
    errors.check("url", checked.map(|u| u.to_string()))
}

/// The event patterns, required on create.
fn check_event_types(
    sent: Patch<Value>,
    required: bool,
    errors: &mut FieldErrors,
) -> Option<Value> {
    let Some(v) = sent.value() else {
        if required {
            let message = "is required: a list of exact types, `prefix.*` patterns or `*`";
            errors.push("event_types", message);
        }
        return None;
    };
    let parsed = parse_patterns(&v).map(|p| json!(p));
    errors.check(
        "event_types",
        parsed.map_err(|e| strip_field(&e.to_string())),
    )
}

/// The auth type and settings, when either changes: the settings each type
/// needs, and its secret field, sealed apart (kept when not sent again).
async fn check_auth(
    auth_type: Patch<String>,
    auth_config: Patch<Value>,
    row: &Subscription,
    st: &OutboundWebhooks,
    errors: &mut FieldErrors,
) -> Option<ValidAuth> {
    let auth_type = match auth_type.value().map(|a| a.to_ascii_uppercase()) {
        Some(a) if AUTH_TYPES.contains(&a.as_str()) => a,
        Some(_) => {
            let message = format!("must be one of {}", AUTH_TYPES.join(", "));
            errors.push("auth_type", message);
            row.auth_type.clone()
        }
        None => row.auth_type.clone(),
    };
    if auth_type == row.auth_type && !auth_config.is_set() {
        return None;
    }
    let mut config = auth_config
        .value()
        .or_else(|| row.auth_config.clone())
        .unwrap_or_else(|| json!({}));
    let secret = match config.as_object_mut() {
        None => {
            errors.push("auth_config", "must be an object");
            AuthSecret::Keep
        }
        Some(obj) => {
            check_auth_settings(obj, &auth_type, st, errors).await;
            // Keep the stored secret unless a new one comes; drop shown-only keys.
            obj.retain(|k, _| !k.ends_with("_set") && !k.ends_with("_last4"));
            let secret = auth_secret(obj, &auth_type, row, errors);
            if obj.values().any(|v| !v.is_string()) {
                errors.push("auth_config", "values must be strings");
            }
            secret
        }
    };
    Some(ValidAuth {
        auth_type,
        config,
        secret,
    })
}

/// The settings `auth_type` needs, present and valid.
async fn check_auth_settings(
    obj: &Map<String, Value>,
    auth_type: &str,
    st: &OutboundWebhooks,
    errors: &mut FieldErrors,
) {
    let required: &[&str] = match auth_type {
        "BASIC" => &["username"],
        "API_KEY" => &["header"],
        "OAUTH2" => &["token_url", "client_id"],
        _ => &[],
    };
    for k in required {
        if obj
            .get(*k)
            .is_none_or(|v| v.as_str().is_none_or(str::is_empty))
        {
            errors.push(
                format!("auth_config.{k}"),
                format!("is required for {auth_type}"),
            );
        }
    }
    if auth_type == "API_KEY"
        && let Some(h) = obj.get("header").and_then(|v| v.as_str())
        && (reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err() || reserved(h))
    {
        errors.push(
            "auth_config.header",
            "must be a valid header name the hub does not set itself",
        );
    }
    if auth_type == "OAUTH2"
        && let Some(u) = obj.get("token_url").and_then(|v| v.as_str())
        && let Err(e) = check_subscription_url(u, st.allow_insecure, st.allow_private).await
    {
        errors.push("auth_config.token_url", e);
    }
}

/// The secret field of `auth_type`'s settings, taken out of `obj`.
fn auth_secret(
    obj: &mut Map<String, Value>,
    auth_type: &str,
    row: &Subscription,
    errors: &mut FieldErrors,
) -> AuthSecret {
    let Some(field) = auth_secret_field(auth_type) else {
        return AuthSecret::Clear;
    };
    match obj.remove(field) {
        Some(Value::String(secret)) if !secret.is_empty() => AuthSecret::Set(secret),
        Some(_) => {
            errors.push(format!("auth_config.{field}"), "must be a non-empty string");
            AuthSecret::Keep
        }
        None if row.auth_secret_encrypted.is_none() || auth_type != row.auth_type => {
            errors.push(
                format!("auth_config.{field}"),
                format!("is required for {auth_type}"),
            );
            AuthSecret::Keep
        }
        None => AuthSecret::Keep,
    }
}

fn reserved(header: &str) -> bool {
    RESERVED_HEADERS.contains(&header.to_ascii_lowercase().as_str())
}

fn check_content_type(ct: Patch<String>, errors: &mut FieldErrors) -> Option<String> {
    let ct = ct.value()?;
    let ok =
        ct.len() <= 50 && ct.contains('/') && reqwest::header::HeaderValue::from_str(&ct).is_ok();
    if !ok {
        errors.push(
            "content_type",
            "must be a media type such as application/json (at most 50 characters)",
        );
    }
    ok.then_some(ct)
}

fn check_headers(v: &Value, errors: &mut FieldErrors) {
    let Some(map) = v.as_object() else {
        errors.push(
            "headers",
            "must be an object of header names to string values",
        );
        return;
    };
    if map.len() > 50 {
        errors.push("headers", "at most 50 headers");
    }
    for (k, val) in map {
        let field = format!("headers.{k}");
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
            errors.push(field, "is not a valid header name");
        } else if reserved(k) {
            errors.push(field, "is set by the hub and cannot be overridden");
        } else {
            match val.as_str() {
                Some(s) if reqwest::header::HeaderValue::from_str(s).is_ok() && s.len() <= 1000 => {
                }
                _ => errors.push(field, "must be a string of at most 1000 visible characters"),
            }
        }
    }
}

fn check_template(t: Patch<Value>, errors: &mut FieldErrors) -> Option<Option<Value>> {
    match t.value()? {
        t @ Value::Object(_) if t.as_object().is_some_and(|m| m.len() <= 200) => Some(Some(t)),
        _ => {
            errors.push(
                "transform_template",
                "must be a transformation template reference ({\"template_id\": \"…\", \"version\": 2}) or an object mapping output fields to JSON pointers (\"/data/order_id\") or constants",
            );
            None
        }
    }
}

/// The retry settings sent, completed with the stored ones, checked together.
fn check_retry(
    enabled: Patch<bool>,
    max_retries: Patch<i64>,
    intervals: Patch<Value>,
    row: &Subscription,
    errors: &mut FieldErrors,
) -> Option<Retry> {
    let retry = Retry {
        enabled: enabled.value().unwrap_or(row.retry_enabled),
        max_retries: max_retries.value().unwrap_or(i64::from(row.max_retries)),
        intervals: intervals
            .value()
            .unwrap_or_else(|| row.retry_intervals.clone()),
    };
    match RetryPolicy::new(retry.enabled, retry.max_retries, &retry.intervals) {
        Ok(_) => Some(retry),
        Err(e) => {
            let msg = e.to_string();
            let field = if msg.starts_with("max_retries") {
                "max_retries"
            } else {
                "retry_intervals"
            };
            errors.push(field, strip_field(&msg));
            None
        }
    }
}

fn check_status(status: Patch<String>, errors: &mut FieldErrors) -> Option<SubscriptionStatus> {
    let s = status_of(&status.value()?);
    if let Ok(s @ (SubscriptionStatus::Active | SubscriptionStatus::Paused)) = s {
        Some(s)
    } else {
        errors.push(
            "status",
            "must be ACTIVE or PAUSED (FAILED is set by the hub)",
        );
        None
    }
}
