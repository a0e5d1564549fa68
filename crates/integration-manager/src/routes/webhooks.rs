//! Outbound webhook subscriptions: CRUD, signing secrets, test sends,
//! delivery history and replay. Deliveries themselves are made by the
//! webhook-dispatcher; `test` sends once, here, with the same sender.

use super::event;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use hub_connectors::client::TargetPolicy;
use hub_connectors::webhook::{
    Outbound, SealedSubscription, Sender, auth_secret_field, check_subscription_url,
    open_subscription, render_body, secret_context,
};
use hub_domain::secret::{Keyring, last_four};
use hub_domain::webhook::{RetryPolicy, WebhookSecret, parse_patterns};
use hub_domain::{Envelope, EventType, FieldError};
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, ErrorCode, Problem};
use hub_platform::http::{ListParams, Page};
use hub_platform::server::Context;
use hub_storage::StorageError;
use hub_storage::deliveries::{self, Attempt, DeliveryFilter, NewDelivery, ReplaySelection};
use hub_storage::subscriptions::{self as store, Subscription};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// How long a rotated-out signing secret keeps signing.
const ROTATION_GRACE: chrono::Duration = chrono::Duration::hours(24);
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

/// Shared state of the webhook routes.
#[derive(Clone)]
pub struct Webhooks {
    keyring: Arc<Keyring>,
    sender: Arc<Sender>,
    allow_insecure: bool,
    allow_private: bool,
}

impl Webhooks {
    /// State for a service's configuration, sealing with `keyring`.
    pub fn new(config: &hub_platform::Config, keyring: Arc<Keyring>) -> Self {
        let policy = if config.hub_allow_private_targets {
            TargetPolicy::AllowPrivate
        } else {
            TargetPolicy::PublicOnly
        };
        Self {
            keyring,
            sender: Arc::new(Sender::new(
                policy,
                Duration::from_secs(u64::from(config.webhook_timeout_seconds)),
                8,
            )),
            allow_insecure: config.hub_allow_insecure_urls,
            allow_private: config.hub_allow_private_targets,
        }
    }
}

/// A subscription as shown (no secrets: only whether each is set and its
/// last four characters).
#[derive(Serialize, ToSchema)]
pub struct SubscriptionBody {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Target URL.
    pub url: String,
    /// Exact types, `prefix.*` patterns or `*`.
    #[schema(value_type = Vec<String>)]
    pub event_types: Value,
    /// NONE, HMAC, BASIC, API_KEY, OAUTH2.
    pub auth_type: String,
    /// Non-secret auth settings, plus `<secret field>_set` / `_last4`.
    #[schema(value_type = Object)]
    pub auth_config: Option<Value>,
    /// Whether a signing secret is set.
    pub secret_set: bool,
    /// Its last four characters.
    pub secret_last4: Option<String>,
    /// Until when the previous secret still signs (after a rotation).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Content-Type of deliveries.
    pub content_type: String,
    /// Extra headers.
    #[schema(value_type = Object)]
    pub headers: Value,
    /// Field mapping applied to the event before sending.
    #[schema(value_type = Object)]
    pub transform_template: Option<Value>,
    /// Retry failed attempts.
    pub retry_enabled: bool,
    /// Retries after the first attempt.
    pub max_retries: i32,
    /// Seconds between attempts.
    #[schema(value_type = Vec<u32>)]
    pub retry_intervals: Value,
    /// ACTIVE, PAUSED, FAILED.
    pub status: String,
    /// Enabled.
    pub is_enabled: bool,
    /// Why it was disabled automatically.
    pub disabled_reason: Option<String>,
    /// Circuit breaker: CLOSED, OPEN, HALF_OPEN.
    pub circuit_state: String,
    /// When the breaker last opened.
    pub circuit_opened_at: Option<DateTime<Utc>>,
    /// Attempts sent.
    pub total_sent: i64,
    /// Deliveries that succeeded.
    pub total_delivered: i64,
    /// Deliveries that failed for good.
    pub total_failed: i64,
    /// Last attempt.
    pub last_triggered_at: Option<DateTime<Utc>>,
    /// Last success.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Last failed attempt.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Deliveries failed in a row.
    pub consecutive_failures: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// API key that last changed it.
    pub updated_by: Option<Uuid>,
}

impl From<&Subscription> for SubscriptionBody {
    fn from(s: &Subscription) -> Self {
        let auth_config = s.auth_config.clone().map(|mut c| {
            if let (Some(field), Some(obj)) = (auth_secret_field(&s.auth_type), c.as_object_mut()) {
                obj.insert(
                    format!("{field}_set"),
                    json!(s.auth_secret_encrypted.is_some()),
                );
                obj.insert(format!("{field}_last4"), json!(s.auth_secret_hint));
            }
            c
        });
        Self {
            id: s.id,
            name: s.name.clone(),
            description: s.description.clone(),
            url: s.url.clone(),
            event_types: s.event_types.clone(),
            auth_type: s.auth_type.clone(),
            auth_config,
            secret_set: s.secret_key.is_some(),
            secret_last4: s.secret_hint.clone(),
            previous_secret_expires_at: s.previous_secret_expires_at.filter(|t| *t > Utc::now()),
            content_type: s.content_type.clone(),
            headers: s.headers.clone(),
            transform_template: s.transform_template.clone(),
            retry_enabled: s.retry_enabled,
            max_retries: s.max_retries,
            retry_intervals: s.retry_intervals.clone(),
            status: s.status.clone(),
            is_enabled: s.is_enabled,
            disabled_reason: s.disabled_reason.clone(),
            circuit_state: s.circuit_state.clone(),
            circuit_opened_at: s.circuit_opened_at,
            total_sent: s.total_sent,
            total_delivered: s.total_delivered,
            total_failed: s.total_failed,
            last_triggered_at: s.last_triggered_at,
            last_success_at: s.last_success_at,
            last_failure_at: s.last_failure_at,
            consecutive_failures: s.consecutive_failures,
            created_at: s.created_at,
            updated_at: s.updated_at,
            updated_by: s.updated_by_key,
        }
    }
}

/// A created subscription: the body plus its signing secret, shown once here.
#[derive(Serialize, ToSchema)]
pub struct CreatedSubscription {
    /// The subscription.
    #[serde(flatten)]
    pub subscription: SubscriptionBody,
    /// The signing secret (`whsec_…`); also readable later at `…/{id}/secret`.
    pub secret: String,
}

/// Fields of a subscription as a client sends them (the
/// `webhook_subscriptions` column names). On update, absent fields are kept.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionInput {
    /// Name (1–200 characters).
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// https URL (http with HUB_ALLOW_INSECURE_URLS=true).
    pub url: Option<String>,
    /// Exact types, `prefix.*` patterns or `*`.
    #[schema(value_type = Option<Vec<String>>)]
    pub event_types: Option<Value>,
    /// NONE, HMAC (default), BASIC, API_KEY, OAUTH2. Every type but NONE
    /// also signs with the Standard Webhooks headers.
    pub auth_type: Option<String>,
    /// BASIC `{username, password}`; API_KEY `{header, value}`; OAUTH2
    /// `{token_url, client_id, client_secret, scope?}`. The secret field is
    /// sealed apart and never shown.
    #[schema(value_type = Option<Object>)]
    pub auth_config: Option<Value>,
    /// A signing secret of your own (`whsec_` + base64 of 24–64 bytes);
    /// generated when absent.
    pub secret_key: Option<String>,
    /// Content-Type of deliveries (default application/json).
    pub content_type: Option<String>,
    /// Extra request headers (string values).
    #[schema(value_type = Option<Object>)]
    pub headers: Option<Value>,
    /// `{"out_field": "/json/pointer/into/the/event"}`.
    #[schema(value_type = Option<Object>)]
    pub transform_template: Option<Value>,
    /// Retry failed attempts (default true).
    pub retry_enabled: Option<bool>,
    /// Retries after the first attempt, 0–20 (default WEBHOOK_MAX_RETRIES).
    pub max_retries: Option<i64>,
    /// Seconds between attempts (default [60, 300, 900, 3600, 7200]).
    #[schema(value_type = Option<Vec<u32>>)]
    pub retry_intervals: Option<Value>,
    /// ACTIVE or PAUSED.
    pub status: Option<String>,
    /// Enabled (re-enabling a FAILED subscription makes it ACTIVE again).
    pub is_enabled: Option<bool>,
}

impl std::fmt::Debug for SubscriptionInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubscriptionInput([redacted])")
    }
}

fn seal(keyring: &Keyring, id: Uuid, what: &str, plain: &str) -> String {
    keyring.seal(&secret_context(&id.to_string(), what), plain.as_bytes())
}

fn parse_header_map(v: &Value, errors: &mut Vec<FieldError>) {
    let Some(map) = v.as_object() else {
        errors.push(FieldError::new(
            "headers",
            "must be an object of header names to string values",
        ));
        return;
    };
    if map.len() > 50 {
        errors.push(FieldError::new("headers", "at most 50 headers"));
    }
    for (k, val) in map {
        let field = format!("headers.{k}");
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
            errors.push(FieldError::new(field, "is not a valid header name"));
        } else if RESERVED_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
            errors.push(FieldError::new(
                field,
                "is set by the hub and cannot be overridden",
            ));
        } else {
            match val.as_str() {
                Some(s) if reqwest::header::HeaderValue::from_str(s).is_ok() && s.len() <= 1000 => {
                }
                _ => errors.push(FieldError::new(
                    field,
                    "must be a string of at most 1000 visible characters",
                )),
            }
        }
    }
}

/// Applies `input` to `row` (validating every field); returns the names of
/// the fields that changed. Secrets in `auth_config` are sealed apart.
async fn apply(
    st: &Webhooks,
    row: &mut Subscription,
    input: SubscriptionInput,
    creating: bool,
) -> Result<Vec<&'static str>, ApiError> {
    let mut errors = Vec::new();
    let mut changed = Vec::new();
    if let Some(n) = input.name {
        let n = n.trim().to_owned();
        if n.is_empty() || n.chars().count() > 200 {
            errors.push(FieldError::new("name", "must be 1 to 200 characters"));
        } else if n != row.name {
            row.name = n;
            changed.push("name");
        }
    } else if creating {
        errors.push(FieldError::new("name", "is required"));
    }
    if let Some(d) = input.description
        && Some(&d) != row.description.as_ref()
    {
        if d.len() > 2000 {
            errors.push(FieldError::new(
                "description",
                "must be at most 2000 characters",
            ));
        }
        row.description = Some(d);
        changed.push("description");
    }
    if let Some(u) = input.url {
        match check_subscription_url(u.trim(), st.allow_insecure, st.allow_private).await {
            Ok(url) => {
                if url.as_str() != row.url {
                    row.url = url.to_string();
                    changed.push("url");
                }
            }
            Err(e) => errors.push(FieldError::new("url", e)),
        }
    } else if creating {
        errors.push(FieldError::new("url", "is required"));
    }
    if let Some(v) = input.event_types {
        match parse_patterns(&v) {
            Ok(p) => {
                let v = json!(p);
                if v != row.event_types {
                    row.event_types = v;
                    changed.push("event_types");
                }
            }
            Err(e) => errors.push(FieldError::new("event_types", strip_field(&e.to_string()))),
        }
    } else if creating {
        errors.push(FieldError::new(
            "event_types",
            "is required: a list of exact types, `prefix.*` patterns or `*`",
        ));
    }
    let auth_type = match input.auth_type.as_deref().map(str::to_ascii_uppercase) {
        Some(a) if AUTH_TYPES.contains(&a.as_str()) => a,
        Some(_) => {
            errors.push(FieldError::new(
                "auth_type",
                format!("must be one of {}", AUTH_TYPES.join(", ")),
            ));
            row.auth_type.clone()
        }
        None => row.auth_type.clone(),
    };
    let auth_changed = auth_type != row.auth_type || input.auth_config.is_some();
    if auth_changed {
        let mut cfg = input
            .auth_config
            .clone()
            .or_else(|| row.auth_config.clone())
            .unwrap_or_else(|| json!({}));
        match cfg.as_object_mut() {
            None => errors.push(FieldError::new("auth_config", "must be an object")),
            Some(obj) => {
                let required: &[&str] = match auth_type.as_str() {
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
                        errors.push(FieldError::new(
                            format!("auth_config.{k}"),
                            format!("is required for {auth_type}"),
                        ));
                    }
                }
                if auth_type == "API_KEY"
                    && let Some(h) = obj.get("header").and_then(|v| v.as_str())
                    && (reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err()
                        || RESERVED_HEADERS.contains(&h.to_ascii_lowercase().as_str()))
                {
                    errors.push(FieldError::new(
                        "auth_config.header",
                        "must be a valid header name the hub does not set itself",
                    ));
                }
                if auth_type == "OAUTH2"
                    && let Some(u) = obj.get("token_url").and_then(|v| v.as_str())
                    && let Err(e) =
                        check_subscription_url(u, st.allow_insecure, st.allow_private).await
                {
                    errors.push(FieldError::new("auth_config.token_url", e));
                }
                // Keep the stored secret unless a new one comes; drop shown-only keys.
                obj.retain(|k, _| !k.ends_with("_set") && !k.ends_with("_last4"));
                match auth_secret_field(&auth_type) {
                    Some(field) => match obj.remove(field) {
                        Some(Value::String(secret)) if !secret.is_empty() => {
                            row.auth_secret_hint = Some(last_four(&secret));
                            row.auth_secret_encrypted =
                                Some(seal(&st.keyring, row.id, "auth", &secret));
                        }
                        Some(_) => errors.push(FieldError::new(
                            format!("auth_config.{field}"),
                            "must be a non-empty string",
                        )),
                        None if row.auth_secret_encrypted.is_none()
                            || auth_type != row.auth_type =>
                        {
                            errors.push(FieldError::new(
                                format!("auth_config.{field}"),
                                format!("is required for {auth_type}"),
                            ))
                        }
                        None => {}
                    },
                    None => {
                        row.auth_secret_encrypted = None;
                        row.auth_secret_hint = None;
                    }
                }
                if obj.values().any(|v| !v.is_string()) {
                    errors.push(FieldError::new("auth_config", "values must be strings"));
                }
            }
        }
        row.auth_type = auth_type;
        row.auth_config = Some(cfg);
        changed.push("auth_config");
    }
    if let Some(ct) = input.content_type {
        let ok = ct.len() <= 50
            && ct.contains('/')
            && reqwest::header::HeaderValue::from_str(&ct).is_ok();
        if !ok {
            errors.push(FieldError::new(
                "content_type",
                "must be a media type such as application/json (at most 50 characters)",
            ));
        } else if ct != row.content_type {
            row.content_type = ct;
            changed.push("content_type");
        }
    }
    if let Some(h) = input.headers {
        parse_header_map(&h, &mut errors);
        if h != row.headers {
            row.headers = h;
            changed.push("headers");
        }
    }
    if let Some(t) = input.transform_template {
        match &t {
            Value::Null => {}
            Value::Object(m) if m.len() <= 200 => {}
            _ => errors.push(FieldError::new(
                "transform_template",
                "must be an object mapping output fields to JSON pointers (\"/data/order_id\") or constants",
            )),
        }
        let t = (!t.is_null()).then_some(t);
        if t != row.transform_template {
            row.transform_template = t;
            changed.push("transform_template");
        }
    }
    let retry_enabled = input.retry_enabled.unwrap_or(row.retry_enabled);
    let max_retries = input.max_retries.unwrap_or(i64::from(row.max_retries));
    let intervals = input
        .retry_intervals
        .clone()
        .unwrap_or_else(|| row.retry_intervals.clone());
    match RetryPolicy::new(retry_enabled, max_retries, &intervals) {
        Ok(_) => {
            if retry_enabled != row.retry_enabled {
                row.retry_enabled = retry_enabled;
                changed.push("retry_enabled");
            }
            if max_retries != i64::from(row.max_retries) {
                row.max_retries = max_retries as i32;
                changed.push("max_retries");
            }
            if intervals != row.retry_intervals {
                row.retry_intervals = intervals;
                changed.push("retry_intervals");
            }
        }
        Err(e) => {
            let msg = e.to_string();
            let field = if msg.starts_with("max_retries") {
                "max_retries"
            } else {
                "retry_intervals"
            };
            errors.push(FieldError::new(field, strip_field(&msg)));
        }
    }
    if let Some(s) = input.status.map(|s| s.to_ascii_uppercase()) {
        if !matches!(s.as_str(), "ACTIVE" | "PAUSED") {
            errors.push(FieldError::new(
                "status",
                "must be ACTIVE or PAUSED (FAILED is set by the hub)",
            ));
        } else if s != row.status {
            row.status = s;
            changed.push("status");
        }
    }
    if let Some(e) = input.is_enabled
        && e != row.is_enabled
    {
        row.is_enabled = e;
        changed.push("is_enabled");
        if e && row.status == "FAILED" {
            row.status = "ACTIVE".into();
            row.disabled_reason = None;
            row.consecutive_failures = 0;
        }
    }
    if let Some(secret) = input.secret_key {
        match WebhookSecret::parse(&secret) {
            Ok(s) => {
                row.secret_hint = Some(s.last4());
                row.secret_key = Some(seal(&st.keyring, row.id, "secret", s.expose()));
                changed.push("secret_key");
            }
            Err(e) => errors.push(FieldError::new("secret_key", strip_field(&e.to_string()))),
        }
    }
    if errors.is_empty() {
        Ok(changed)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Domain error messages start with their field name; the problem's field
/// member already says it.
fn strip_field(msg: &str) -> String {
    match msg.split_once(": ") {
        Some((head, rest)) if !head.contains(' ') => rest.to_owned(),
        _ => msg.to_owned(),
    }
}

async fn find(ctx: &Context, t: &Tenant, id: Uuid) -> Result<Subscription, ApiError> {
    store::get(&ctx.pool, t.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription"))
}

fn open_secret(st: &Webhooks, s: &Subscription) -> Result<String, ApiError> {
    let sealed = s
        .secret_key
        .as_deref()
        .ok_or_else(|| ApiError::internal("subscription has no signing secret"))?;
    let plain = st
        .keyring
        .open(&secret_context(&s.id.to_string(), "secret"), sealed)
        .map_err(ApiError::internal)?;
    String::from_utf8(plain).map_err(ApiError::internal)
}

/// Creates a subscription; its signing secret is generated unless given.
#[utoipa::path(post, path = "/api/v1/webhooks/subscriptions", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    request_body = SubscriptionInput,
    responses((status = 201, body = CreatedSubscription), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Webhooks>,
    input: web::Json<SubscriptionInput>,
) -> Result<HttpResponse, ApiError> {
    let mut input = input.into_inner();
    let now = Utc::now();
    let mut row = Subscription {
        id: Uuid::now_v7(),
        tenant_id: t.id.0,
        name: String::new(),
        description: None,
        url: String::new(),
        event_types: json!([]),
        auth_type: "HMAC".into(),
        auth_config: None,
        secret_key: None,
        previous_secret_key: None,
        previous_secret_expires_at: None,
        secret_hint: None,
        auth_secret_encrypted: None,
        auth_secret_hint: None,
        content_type: "application/json".into(),
        headers: json!({}),
        transform_template: None,
        retry_enabled: true,
        max_retries: i32::try_from(ctx.config.webhook_max_retries).unwrap_or(5),
        retry_intervals: json!(RetryPolicy::DEFAULT_INTERVALS),
        status: "ACTIVE".into(),
        is_enabled: true,
        disabled_reason: None,
        total_sent: 0,
        total_delivered: 0,
        total_failed: 0,
        last_triggered_at: None,
        last_success_at: None,
        last_failure_at: None,
        consecutive_failures: 0,
        circuit_state: "CLOSED".into(),
        circuit_opened_at: None,
        circuit_failures: 0,
        created_at: now,
        updated_at: now,
        created_by_key: Some(t.api_key_id.0),
        updated_by_key: Some(t.api_key_id.0),
    };
    let secret = match input.secret_key.take() {
        Some(s) => WebhookSecret::parse(&s).map_err(|e| {
            ApiError::validation(vec![FieldError::new(
                "secret_key",
                strip_field(&e.to_string()),
            )])
        })?,
        None => WebhookSecret::generate(),
    };
    apply(&st, &mut row, input, true).await?;
    row.secret_hint = Some(secret.last4());
    row.secret_key = Some(seal(&st.keyring, row.id, "secret", secret.expose()));
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    store::insert(&mut tx, &row).await?;
    let data = json!({"id": row.id, "name": row.name, "url": row.url, "event_types": row.event_types, "actor_api_key_id": t.api_key_id});
    hub_storage::outbox::enqueue(
        &mut tx,
        &[event("webhook.subscription.created", t.id, data)],
    )
    .await?;
    tx.commit().await.map_err(StorageError::from)?;
    route_to_dispatcher(&ctx, &row.event_types).await;
    let stored = find(&ctx, &t, row.id).await?;
    Ok(HttpResponse::Created().json(CreatedSubscription {
        subscription: SubscriptionBody::from(&stored),
        secret: secret.expose().to_owned(),
    }))
}

/// Binds the dispatcher's queue to the event types of `event_types` that
/// its standing bindings do not cover, before the caller answers: an event
/// published right after the answer reaches the dispatcher. If the broker
/// cannot be reached the dispatcher binds them itself within seconds.
async fn route_to_dispatcher(ctx: &Context, event_types: &Value) {
    let entries = event_types.as_array().into_iter().flatten();
    let keys: Vec<String> =
        hub_domain::webhook::extra_binding_keys(entries.filter_map(Value::as_str))
            .into_iter()
            .collect();
    if keys.is_empty() {
        return;
    }
    let bound = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        ctx.bus.bind(hub_domain::webhook::DISPATCHER, &keys),
    )
    .await;
    if !matches!(bound, Ok(Ok(()))) {
        tracing::warn!(
            ?keys,
            "could not bind the dispatcher's queue to these event types now; it will bind them itself"
        );
    }
}

/// List filters.
#[derive(Deserialize, IntoParams)]
pub struct SubscriptionQuery {
    /// ACTIVE, PAUSED or FAILED.
    pub status: Option<String>,
    /// Enabled or not.
    pub is_enabled: Option<bool>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The tenant's subscriptions.
#[utoipa::path(get, path = "/api/v1/webhooks/subscriptions", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(SubscriptionQuery), responses((status = 200, description = "`{data: [Subscription], next_cursor}`")))]
pub async fn list(
    t: Tenant,
    ctx: web::Data<Context>,
    q: web::Query<SubscriptionQuery>,
) -> Result<HttpResponse, ApiError> {
    let (limit, after) = ListParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    }
    .parse()?;
    let filter = store::Filter {
        status: q.status.as_ref().map(|s| s.to_ascii_uppercase()),
        is_enabled: q.is_enabled,
        after,
    };
    let rows = store::list(&ctx.pool, t.id, &filter, limit).await?;
    Ok(HttpResponse::Ok().json(Page::new(
        rows.iter().map(SubscriptionBody::from).collect(),
        limit,
        |b: &SubscriptionBody| b.id,
    )))
}

/// One subscription.
#[utoipa::path(get, path = "/api/v1/webhooks/subscriptions/{id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = SubscriptionBody), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(SubscriptionBody::from(&find(&ctx, &t, *id).await?)))
}

/// Changes a subscription (absent fields are kept).
#[utoipa::path(put, path = "/api/v1/webhooks/subscriptions/{id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body = SubscriptionInput,
    responses((status = 200, body = SubscriptionBody), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Webhooks>,
    id: web::Path<Uuid>,
    input: web::Json<SubscriptionInput>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    let mut row = store::get_for_update(&mut tx, t.id, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription"))?;
    let changed = apply(&st, &mut row, input.into_inner(), false).await?;
    if !changed.is_empty() {
        row.updated_by_key = Some(t.api_key_id.0);
        store::update(&mut tx, &row).await?;
        let data = json!({"id": row.id, "changed": changed, "actor_api_key_id": t.api_key_id});
        hub_storage::outbox::enqueue(
            &mut tx,
            &[event("webhook.subscription.updated", t.id, data)],
        )
        .await?;
    }
    tx.commit().await.map_err(StorageError::from)?;
    if changed.contains(&"event_types") || changed.contains(&"is_enabled") {
        route_to_dispatcher(&ctx, &row.event_types).await;
    }
    Ok(HttpResponse::Ok().json(SubscriptionBody::from(&find(&ctx, &t, *id).await?)))
}

/// Deletes a subscription with its delivery history.
#[utoipa::path(delete, path = "/api/v1/webhooks/subscriptions/{id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    if !store::delete(&mut tx, t.id, *id).await? {
        return Err(ApiError::not_found("subscription"));
    }
    let data = json!({"id": *id, "actor_api_key_id": t.api_key_id});
    hub_storage::outbox::enqueue(
        &mut tx,
        &[event("webhook.subscription.deleted", t.id, data)],
    )
    .await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(HttpResponse::NoContent().finish())
}

/// A signing secret.
#[derive(Serialize, ToSchema)]
pub struct SecretBody {
    /// The current signing secret (`whsec_…`).
    pub secret: String,
    /// Until when the previous secret also signs (after a rotation).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// The subscription's signing secret, to verify deliveries with.
#[utoipa::path(get, path = "/api/v1/webhooks/subscriptions/{id}/secret", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = SecretBody), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn secret(
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Webhooks>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let s = find(&ctx, &t, *id).await?;
    Ok(HttpResponse::Ok().json(SecretBody {
        secret: open_secret(&st, &s)?,
        previous_secret_expires_at: s.previous_secret_expires_at.filter(|t| *t > Utc::now()),
    }))
}

/// A new secret to rotate to.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateInput {
    /// Your own new secret; generated when absent.
    pub secret: Option<String>,
}

/// Rotates the signing secret: deliveries carry signatures by the new and
/// the old secret for 24 hours, then by the new one only.
#[utoipa::path(post, path = "/api/v1/webhooks/subscriptions/{id}/rotate-secret", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body(content = Option<RotateInput>),
    responses((status = 200, body = SecretBody), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn rotate_secret(
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Webhooks>,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let input: RotateInput = if body.iter().all(u8::is_ascii_whitespace) {
        RotateInput::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidJson,
                format!(
                    "invalid JSON body: {}",
                    hub_platform::http::redact_values(&e.to_string())
                ),
            )
        })?
    };
    let new = match input.secret {
        Some(s) => WebhookSecret::parse(&s).map_err(|e| {
            ApiError::validation(vec![FieldError::new("secret", strip_field(&e.to_string()))])
        })?,
        None => WebhookSecret::generate(),
    };
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    let mut row = store::get_for_update(&mut tx, t.id, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription"))?;
    let old = open_secret(&st, &row)?;
    let until = Utc::now() + ROTATION_GRACE;
    row.previous_secret_key = Some(seal(&st.keyring, row.id, "previous", &old));
    row.previous_secret_expires_at = Some(until);
    row.secret_key = Some(seal(&st.keyring, row.id, "secret", new.expose()));
    row.secret_hint = Some(new.last4());
    row.updated_by_key = Some(t.api_key_id.0);
    store::update(&mut tx, &row).await?;
    let data = json!({"id": row.id, "changed": ["secret_key"], "actor_api_key_id": t.api_key_id});
    hub_storage::outbox::enqueue(
        &mut tx,
        &[event("webhook.subscription.updated", t.id, data)],
    )
    .await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(HttpResponse::Ok().json(SecretBody {
        secret: new.expose().to_owned(),
        previous_secret_expires_at: Some(until),
    }))
}

/// One attempt as shown.
#[derive(Serialize, ToSchema)]
pub struct AttemptBody {
    /// Which attempt (1-based).
    pub attempt_number: i32,
    /// URL called.
    pub request_url: String,
    /// Request headers (secrets redacted).
    #[schema(value_type = Object)]
    pub request_headers: Value,
    /// Response status.
    pub response_status: Option<i32>,
    /// Response headers.
    #[schema(value_type = Object)]
    pub response_headers: Option<Value>,
    /// Response body (first 64 KiB).
    pub response_body: Option<String>,
    /// Latency.
    pub response_time_ms: i32,
    /// What went wrong.
    pub error_message: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<&Attempt> for AttemptBody {
    fn from(a: &Attempt) -> Self {
        Self {
            attempt_number: a.attempt_number,
            request_url: a.request_url.clone(),
            request_headers: a.request_headers.clone(),
            response_status: a.response_status,
            response_headers: a.response_headers.clone(),
            response_body: a.response_body.clone(),
            response_time_ms: a.response_time_ms,
            error_message: a.error_message.clone(),
            created_at: a.at,
        }
    }
}

/// A delivery as shown.
#[derive(Serialize, ToSchema)]
pub struct DeliveryBody {
    /// Id.
    pub id: Uuid,
    /// Subscription.
    pub subscription_id: Uuid,
    /// Event type.
    pub event_type: String,
    /// Event id (the `webhook-id` header).
    pub event_id: Uuid,
    /// PENDING, RETRYING, DELIVERED, FAILED.
    pub status: String,
    /// Attempts made.
    pub attempt_number: i32,
    /// Last response status.
    pub response_status: Option<i32>,
    /// Last latency.
    pub response_time_ms: Option<i32>,
    /// Last error.
    pub error_message: Option<String>,
    /// Next attempt.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The event as delivered.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Its attempts (on the single-delivery route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<AttemptBody>>,
}

impl From<&deliveries::Delivery> for DeliveryBody {
    fn from(d: &deliveries::Delivery) -> Self {
        Self {
            id: d.id,
            subscription_id: d.subscription_id,
            event_type: d.event_type.clone(),
            event_id: d.event_id,
            status: d.status.clone(),
            attempt_number: d.attempt_number,
            response_status: d.response_status,
            response_time_ms: d.response_time_ms,
            error_message: d.error_message.clone(),
            next_retry_at: d.next_retry_at,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
            payload: d.payload.clone(),
            attempts: None,
        }
    }
}

/// Delivery history filters.
#[derive(Deserialize, IntoParams)]
pub struct DeliveryQuery {
    /// PENDING, RETRYING, DELIVERED or FAILED.
    pub status: Option<String>,
    /// Exact event type.
    pub event_type: Option<String>,
    /// Created at or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The subscription's deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/subscriptions/{id}/deliveries", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), DeliveryQuery),
    responses((status = 200, description = "`{data: [Delivery], next_cursor}`"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn deliveries(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
    q: web::Query<DeliveryQuery>,
) -> Result<HttpResponse, ApiError> {
    find(&ctx, &t, *id).await?;
    let (limit, before) = ListParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    }
    .parse()?;
    let status = q.status.as_ref().map(|s| s.to_ascii_uppercase());
    if let Some(s) = &status
        && !matches!(s.as_str(), "PENDING" | "RETRYING" | "DELIVERED" | "FAILED")
    {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "status: must be PENDING, RETRYING, DELIVERED or FAILED",
        ));
    }
    let filter = DeliveryFilter {
        status,
        event_type: q.event_type.clone(),
        since: q.since,
        until: q.until,
        before,
    };
    let rows = deliveries::list(&ctx.pool, t.id, *id, &filter, limit).await?;
    Ok(HttpResponse::Ok().json(Page::new(
        rows.iter().map(DeliveryBody::from).collect(),
        limit,
        |b: &DeliveryBody| b.id,
    )))
}

/// One delivery with its attempts.
#[utoipa::path(get, path = "/api/v1/webhooks/subscriptions/{id}/deliveries/{delivery_id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), ("delivery_id" = Uuid, Path)),
    responses((status = 200, body = DeliveryBody), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delivery(
    t: Tenant,
    ctx: web::Data<Context>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (sub, id) = *path;
    let d = deliveries::get(&ctx.pool, t.id, sub, id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    let attempts = deliveries::attempts(&ctx.pool, d.id).await?;
    let mut body = DeliveryBody::from(&d);
    body.attempts = Some(attempts.iter().map(AttemptBody::from).collect());
    Ok(HttpResponse::Ok().json(body))
}

/// What to replay: a status and time window, or delivery ids.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayInput {
    /// FAILED (default) or DELIVERED.
    pub status: Option<String>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Created before.
    pub until: Option<DateTime<Utc>>,
    /// These deliveries (instead of a filter; at most 1000).
    pub delivery_ids: Option<Vec<Uuid>>,
}

/// What was re-queued.
#[derive(Serialize, ToSchema)]
pub struct ReplayResult {
    /// How many deliveries were re-queued.
    pub replayed: usize,
    /// Their ids.
    pub delivery_ids: Vec<Uuid>,
}

/// Re-queues finished deliveries as new attempts (retry budget restarts).
#[utoipa::path(post, path = "/api/v1/webhooks/subscriptions/{id}/replay", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body = ReplayInput,
    responses((status = 202, body = ReplayResult), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn replay(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
    input: web::Json<ReplayInput>,
) -> Result<HttpResponse, ApiError> {
    let input = input.into_inner();
    let sel = match input.delivery_ids {
        Some(ids) => {
            if input.status.is_some() || input.since.is_some() || input.until.is_some() {
                return Err(ApiError::validation(vec![FieldError::new(
                    "delivery_ids",
                    "give either delivery_ids or a status/since/until filter, not both",
                )]));
            }
            if ids.is_empty() || ids.len() > 1000 {
                return Err(ApiError::validation(vec![FieldError::new(
                    "delivery_ids",
                    "must hold 1 to 1000 ids",
                )]));
            }
            ReplaySelection::Ids(ids)
        }
        None => {
            let status = input
                .status
                .map_or_else(|| "FAILED".to_owned(), |s| s.to_ascii_uppercase());
            if !matches!(status.as_str(), "FAILED" | "DELIVERED") {
                return Err(ApiError::validation(vec![FieldError::new(
                    "status",
                    "must be FAILED or DELIVERED",
                )]));
            }
            if let (Some(a), Some(b)) = (input.since, input.until)
                && a >= b
            {
                return Err(ApiError::validation(vec![FieldError::new(
                    "until",
                    "must be after since",
                )]));
            }
            ReplaySelection::Filter {
                status,
                since: input.since,
                until: input.until,
            }
        }
    };
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    store::get_for_update(&mut tx, t.id, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription"))?;
    let ids = deliveries::replay(&mut tx, t.id, *id, &sel, 10_000).await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(HttpResponse::Accepted().json(ReplayResult {
        replayed: ids.len(),
        delivery_ids: ids,
    }))
}

/// The outcome of a test send.
#[derive(Serialize, ToSchema)]
pub struct DeliveryTestResult {
    /// The receiver answered 2xx.
    pub ok: bool,
    /// Its status, if it answered.
    pub status: Option<u16>,
    /// Time to the answer.
    pub latency_ms: u64,
    /// What went wrong.
    pub error: Option<String>,
    /// The recorded delivery (in the history, event type `webhook.test`).
    pub delivery_id: Uuid,
    /// The attempt.
    pub attempt: AttemptBody,
}

/// Sends a `webhook.test` event to the subscription now, once, signed like
/// any delivery, and returns the attempt (also kept in the history).
#[utoipa::path(post, path = "/api/v1/webhooks/subscriptions/{id}/test", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = DeliveryTestResult), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn test(
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Webhooks>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let s = find(&ctx, &t, *id).await?;
    let ev = Envelope::new(
        crate::NAME,
        EventType::parse("webhook.test").expect("static event type"),
        Some(t.id),
        json!({"subscription_id": s.id, "message": "This is a test delivery from Integration Hub."}),
    );
    let payload = serde_json::to_value(&ev).map_err(ApiError::internal)?;
    let now = Utc::now();
    let sid = s.id.to_string();
    let (auth, secrets) = open_subscription(
        &st.keyring,
        SealedSubscription {
            id: &sid,
            auth_type: &s.auth_type,
            auth_config: s.auth_config.as_ref(),
            secret_key: s.secret_key.as_deref(),
            previous_secret_key: s.previous_secret_key.as_deref(),
            previous_secret_expires_at: s.previous_secret_expires_at,
            auth_secret: s.auth_secret_encrypted.as_deref(),
        },
        now,
    )
    .map_err(ApiError::internal)?;
    let body = render_body(&payload, s.transform_template.as_ref());
    let r = st
        .sender
        .send(&Outbound {
            url: s.url.clone(),
            content_type: s.content_type.clone(),
            headers: hub_connectors::webhook::custom_headers(&s.headers),
            auth,
            secrets,
            msg_id: ev.id.to_string(),
            timestamp: now.timestamp(),
            body: serde_json::to_vec(&body).map_err(ApiError::internal)?,
            token_key: sid.clone(),
        })
        .await;
    let delivery_id = Uuid::now_v7();
    let attempt = Attempt {
        id: Uuid::now_v7(),
        delivery_id,
        attempt_number: 1,
        status: if r.success { "DELIVERED" } else { "FAILED" },
        next_retry_at: None,
        request_url: s.url.chars().take(500).collect(),
        request_headers: r.request_headers.clone(),
        response_status: r.status.map(i32::from),
        response_headers: r.response_headers.clone(),
        response_body: r.response_body.clone(),
        response_time_ms: i32::try_from(r.latency.as_millis()).unwrap_or(i32::MAX),
        error_message: r.error.clone(),
        at: Utc::now(),
    };
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    deliveries::insert_events(&mut tx, std::slice::from_ref(&ev)).await?;
    deliveries::insert(
        &mut tx,
        &[NewDelivery {
            id: delivery_id,
            subscription_id: s.id,
            tenant_id: t.id.0,
            event_type: "webhook.test".into(),
            event_id: ev.id.0,
            payload,
            request_url: s.url.chars().take(500).collect(),
        }],
        // Leased at once so no dispatcher picks the test delivery up.
        Some(600),
    )
    .await?;
    deliveries::record(&mut tx, std::slice::from_ref(&attempt)).await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(HttpResponse::Ok().json(DeliveryTestResult {
        ok: r.success,
        status: r.status,
        latency_ms: r.latency.as_millis() as u64,
        error: r.error,
        delivery_id,
        attempt: AttemptBody::from(&attempt),
    }))
}
