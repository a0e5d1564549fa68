//! Request and response types of the outbound subscription routes
//! (subscriptions, their secrets, deliveries and replays).

use crate::routes::list::Listed;
use crate::routes::patch::Patch;
use chrono::{DateTime, Utc};
use hub_connectors::webhook::auth_secret_field;
use hub_storage::deliveries::{Attempt, Delivery};
use hub_storage::subscriptions::Subscription;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

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
    #[schema(value_type = String)]
    pub status: hub_domain::status::SubscriptionStatus,
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
            status: s.status,
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

impl Listed for SubscriptionBody {
    fn id(&self) -> Uuid {
        self.id
    }
}

/// Fields of a subscription as a client sends them (the
/// `webhook_subscriptions` column names). On update, absent fields are kept.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionInput {
    /// Name (1–200 characters).
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub name: Patch<String>,
    /// Description.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub description: Patch<String>,
    /// https URL (http with HUB_ALLOW_INSECURE_URLS=true).
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub url: Patch<String>,
    /// Exact types, `prefix.*` patterns or `*`.
    #[schema(value_type = Option<Vec<String>>)]
    #[serde(default)]
    pub event_types: Patch<Value>,
    /// NONE, HMAC (default), BASIC, API_KEY, OAUTH2. Every type but NONE
    /// also signs with the Standard Webhooks headers.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub auth_type: Patch<String>,
    /// BASIC `{username, password}`; API_KEY `{header, value}`; OAUTH2
    /// `{token_url, client_id, client_secret, scope?}`. The secret field is
    /// sealed apart and never shown.
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    pub auth_config: Patch<Value>,
    /// A signing secret of your own (`whsec_` + base64 of 24–64 bytes);
    /// generated when absent.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub secret_key: Patch<String>,
    /// Content-Type of deliveries (default application/json).
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub content_type: Patch<String>,
    /// Extra request headers (string values).
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    pub headers: Patch<Value>,
    /// `{"out_field": "/json/pointer/into/the/event"}`.
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    pub transform_template: Patch<Value>,
    /// Retry failed attempts (default true).
    #[schema(value_type = Option<bool>)]
    #[serde(default)]
    pub retry_enabled: Patch<bool>,
    /// Retries after the first attempt, 0–20 (default WEBHOOK_MAX_RETRIES).
    #[schema(value_type = Option<i64>)]
    #[serde(default)]
    pub max_retries: Patch<i64>,
    /// Seconds between attempts (default [60, 300, 900, 3600, 7200]).
    #[schema(value_type = Option<Vec<u32>>)]
    #[serde(default)]
    pub retry_intervals: Patch<Value>,
    /// ACTIVE or PAUSED.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub status: Patch<String>,
    /// Enabled (re-enabling a FAILED subscription makes it ACTIVE again).
    #[schema(value_type = Option<bool>)]
    #[serde(default)]
    pub is_enabled: Patch<bool>,
}

impl std::fmt::Debug for SubscriptionInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubscriptionInput([redacted])")
    }
}

/// List filters (with the page parameters, [`ListParams`](crate::routes::list::ListParams)).
#[derive(Deserialize, IntoParams)]
pub struct SubscriptionFilter {
    /// ACTIVE, PAUSED or FAILED.
    pub status: Option<String>,
    /// Enabled or not.
    pub is_enabled: Option<bool>,
}

/// A signing secret.
#[derive(Serialize, ToSchema)]
pub struct SecretBody {
    /// The current signing secret (`whsec_…`).
    pub secret: String,
    /// Until when the previous secret also signs (after a rotation).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// A new secret to rotate to.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateInput {
    /// Your own new secret; generated when absent.
    pub secret: Option<String>,
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
    #[schema(value_type = String)]
    pub status: hub_domain::status::DeliveryStatus,
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

impl From<&Delivery> for DeliveryBody {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id,
            subscription_id: d.subscription_id,
            event_type: d.event_type.clone(),
            event_id: d.event_id,
            status: d.status,
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

impl Listed for DeliveryBody {
    fn id(&self) -> Uuid {
        self.id
    }
}

/// Delivery history filters (with the page parameters,
/// [`ListParams`](crate::routes::list::ListParams)).
#[derive(Deserialize, IntoParams)]
pub struct DeliveryFilter {
    /// PENDING, RETRYING, DELIVERED or FAILED.
    pub status: Option<String>,
    /// Exact event type.
    pub event_type: Option<String>,
    /// Created at or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
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
