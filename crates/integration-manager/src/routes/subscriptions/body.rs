//! Request and response types of the outbound subscription routes
//! (subscriptions, their secrets, deliveries and replays). Attempts are
//! shown as stored ([`Attempt`], OpenAPI `AttemptBody`); subscriptions and
//! deliveries as stored plus what their bodies compute.

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
    /// The subscription as stored, without its secrets.
    #[serde(flatten)]
    #[schema(inline)]
    pub subscription: Subscription,
    /// Non-secret auth settings, plus `<secret field>_set` / `_last4`.
    #[schema(value_type = Object)]
    pub auth_config: Option<Value>,
    /// Whether a signing secret is set.
    pub secret_set: bool,
    /// Until when the previous secret still signs (after a rotation).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Deliveries still to be sent (PENDING or RETRYING), counted up to
    /// 10,000 (a figure of 10,000 means at least that many). In the list
    /// and in one subscription's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog: Option<i64>,
}

impl From<Subscription> for SubscriptionBody {
    fn from(s: Subscription) -> Self {
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
            auth_config,
            secret_set: s.secret_key.is_some(),
            previous_secret_expires_at: s.previous_secret_expires_at.filter(|t| *t > Utc::now()),
            backlog: None,
            subscription: s,
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
        self.subscription.id
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
    /// The body sent instead of the event: a transformation template
    /// reference (`{"template_id": "…"}` follows its active version,
    /// `{"template_id": "…", "version": 2}` pins one; the template reads
    /// the event as JSON and its output format sets the content type unless
    /// `content_type` says otherwise), or a field map
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
#[into_params(parameter_in = Query)]
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

/// A delivery as shown.
#[derive(Serialize, ToSchema)]
pub struct DeliveryBody {
    /// The delivery as listed.
    #[serde(flatten)]
    #[schema(inline)]
    pub delivery: Delivery,
    /// Its attempts (on the single-delivery route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<Attempt>>,
}

impl From<Delivery> for DeliveryBody {
    fn from(delivery: Delivery) -> Self {
        Self {
            delivery,
            attempts: None,
        }
    }
}

impl Listed for DeliveryBody {
    fn id(&self) -> Uuid {
        self.delivery.id
    }
}

/// Delivery history filters (with the page parameters,
/// [`ListParams`](crate::routes::list::ListParams)).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
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
    pub attempt: Attempt,
}
