//! Request and response types of the inbound endpoint routes (endpoints,
//! their secrets, received events and replays).

use crate::routes::list::Listed;
use crate::routes::patch::Patch;
use chrono::{DateTime, Utc};
use hub_storage::inbound_events::EventRow;
use hub_storage::webhook_endpoints::Endpoint;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// An inbound webhook endpoint. The secret appears only in the answers of
/// create and rotate-secret.
#[derive(Serialize, ToSchema)]
pub struct EndpointBody {
    /// Id.
    pub id: Uuid,
    /// The integration it belongs to.
    pub integration_id: Option<Uuid>,
    /// `{path}` of the public URL.
    pub endpoint_path: String,
    /// The path providers call: `/webhooks/{tenant id}/{endpoint_path}` (the tenant's slug works too).
    pub url_path: String,
    /// The signing secret, only right after create or rotate-secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// `{"set": true, "last4": "…"}`.
    #[schema(value_type = Object)]
    pub secret: Value,
    /// Until when the previous secret is still accepted (after a rotation).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Provider event types handled (`invoice.*`, `*`, exact names); empty = all.
    pub event_types: Vec<String>,
    /// `LOAD_STATUS`, `TRACKING`, `INVOICE`, `CUSTOM`.
    pub handler_type: String,
    /// Field mapping applied before routing.
    #[schema(value_type = Object)]
    pub transform_template: Option<Value>,
    /// Where processed events are meant to go.
    pub target_service: Option<String>,
    /// Allowed source networks (CIDRs); null = anyone.
    pub ip_whitelist: Option<Vec<String>>,
    /// Header holding the signature.
    pub signature_header: String,
    /// The verification scheme.
    pub signature_algorithm: String,
    /// Generic schemes: `hex` or `base64`.
    pub signature_encoding: String,
    /// Generic schemes: prefix before the signature.
    pub signature_prefix: Option<String>,
    /// Timestamped schemes: tolerance in seconds.
    pub timestamp_tolerance_seconds: i32,
    /// `ACTIVE`, `PAUSED`, `DISABLED`.
    #[schema(value_type = String)]
    pub status: hub_domain::status::EndpointStatus,
    /// Whether it accepts requests.
    pub is_enabled: bool,
    /// Events received (repeats of an event are not counted).
    pub total_received: i64,
    /// Events processed (or filtered out by `event_types`).
    pub total_processed: i64,
    /// Events failed for good.
    pub total_failed: i64,
    /// Last event received.
    pub last_received_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// API key that created it.
    pub created_by: Option<Uuid>,
    /// API key that last changed it.
    pub updated_by: Option<Uuid>,
}

impl From<&Endpoint> for EndpointBody {
    fn from(e: &Endpoint) -> Self {
        let v = crate::inbound::verifier_of(e);
        Self {
            id: e.id,
            integration_id: e.integration_id,
            endpoint_path: e.endpoint_path.clone(),
            url_path: format!("/webhooks/{}/{}", e.tenant_id, e.endpoint_path),
            secret_key: None,
            secret: json!({"set": true, "last4": e.secret_hint}),
            previous_secret_expires_at: e
                .secret_previous_expires_at
                .filter(|_| e.secret_previous.is_some()),
            event_types: strings(&e.event_types),
            handler_type: e.handler_type.clone(),
            transform_template: e.transform_template.clone(),
            target_service: e.target_service.clone(),
            ip_whitelist: e.ip_whitelist.as_ref().map(strings),
            signature_header: v.header,
            signature_algorithm: v.scheme.as_str().to_owned(),
            signature_encoding: v.encoding.as_str().to_owned(),
            signature_prefix: e.signature_prefix.clone(),
            timestamp_tolerance_seconds: e.timestamp_tolerance_seconds,
            status: e.status,
            is_enabled: e.is_enabled,
            total_received: e.total_received,
            total_processed: e.total_processed,
            total_failed: e.total_failed,
            last_received_at: e.last_received_at,
            created_at: e.created_at,
            updated_at: e.updated_at,
            created_by: e.created_by_key,
            updated_by: e.updated_by_key,
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Listed for EndpointBody {
    fn id(&self) -> Uuid {
        self.id
    }
}

/// Body of create (`endpoint_path` required) and update (any subset).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    /// The tenant's integration it belongs to.
    #[schema(value_type = Option<Uuid>)]
    #[serde(default)]
    pub integration_id: Patch<Uuid>,
    /// Slug, unique per tenant: 1–100 of a-z, 0-9, `-`, `_`.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub endpoint_path: Patch<String>,
    /// The provider's signing secret (8–512 characters); generated when omitted at create.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub secret_key: Patch<String>,
    /// Provider event types to handle; `order.*` and `*` allowed; empty = all.
    #[schema(value_type = Option<Vec<String>>)]
    #[serde(default)]
    pub event_types: Patch<Vec<String>>,
    /// `LOAD_STATUS`, `TRACKING`, `INVOICE`, `CUSTOM` (default).
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub handler_type: Patch<String>,
    /// Field mapping (`{"load_id": "$.data.id"}`); `{}` removes it.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub transform_template: Patch<Value>,
    /// Internal service processed events are meant for.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub target_service: Patch<String>,
    /// Allowed source networks (CIDRs, IPv4 and IPv6); `[]` = anyone.
    #[schema(value_type = Option<Vec<String>>)]
    #[serde(default)]
    pub ip_whitelist: Patch<Vec<String>>,
    /// Header holding the signature (the scheme's preset when omitted).
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub signature_header: Patch<String>,
    /// `standard-webhooks` (default), `github`, `stripe`, `shopify`, `slack`,
    /// `hubspot-v3`, `twilio`, `quickbooks`, `xero`, `samsara`,
    /// `hmac-sha256`, `hmac-sha1`, or `none` (no verification).
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub signature_algorithm: Patch<String>,
    /// Generic schemes: `hex` (default) or `base64`.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub signature_encoding: Patch<String>,
    /// Generic schemes: prefix before the signature (`sha256=`); `""` removes it.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub signature_prefix: Patch<String>,
    /// Timestamped schemes: 1–3600 s (default 300).
    #[schema(value_type = Option<i32>)]
    #[serde(default)]
    pub timestamp_tolerance_seconds: Patch<i32>,
    /// `ACTIVE` (default), `PAUSED`, `DISABLED`.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub status: Patch<String>,
    /// Accept requests (default true).
    #[schema(value_type = Option<bool>)]
    #[serde(default)]
    pub is_enabled: Patch<bool>,
}

impl std::fmt::Debug for EndpointInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointInput([secret redacted])")
    }
}

/// Body of rotate-secret (all optional).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EndpointRotateInput {
    /// The new secret when the provider issues it; generated otherwise.
    pub secret_key: Option<String>,
    /// How long the old secret keeps working: 0–604800 s (default 86400).
    pub grace_period_seconds: Option<i64>,
}

/// A received request.
#[derive(Serialize, ToSchema)]
pub struct EventBody {
    /// Id (what the provider was answered).
    pub id: Uuid,
    /// The provider's event id, if it sent one.
    pub provider_event_id: Option<String>,
    /// What repeats are recognised by: `id:<provider id>` or `sha256:<body hash>`.
    pub dedupe_key: String,
    /// The provider's event type.
    pub event_type: Option<String>,
    /// Whether it repeats an earlier event (then never processed).
    pub duplicate: bool,
    /// The event it repeats.
    pub duplicate_of: Option<Uuid>,
    /// `PENDING`, `PROCESSED`, `SKIPPED` (filtered), `FAILED`, `DUPLICATE`.
    #[schema(value_type = String)]
    pub status: hub_domain::status::InboundEventStatus,
    /// Processing attempts.
    pub attempts: i32,
    /// Last processing error.
    pub last_error: Option<String>,
    /// Method.
    pub method: String,
    /// Request headers.
    #[schema(value_type = Object)]
    pub headers: Value,
    /// The body as received (UTF-8; invalid bytes replaced).
    pub body: String,
    /// Client address.
    pub source_ip: String,
    /// Received.
    pub received_at: DateTime<Utc>,
    /// Processed.
    pub processed_at: Option<DateTime<Utc>>,
    /// Next attempt, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The typed event it produced.
    pub published_event_id: Option<Uuid>,
}

impl From<&EventRow> for EventBody {
    fn from(e: &EventRow) -> Self {
        Self {
            id: e.id,
            provider_event_id: e.provider_event_id.clone(),
            dedupe_key: e.dedupe_key.clone(),
            event_type: e.event_type.clone(),
            duplicate: e.duplicate,
            duplicate_of: e.duplicate_of,
            status: e.status,
            attempts: e.attempts,
            last_error: e.last_error.clone(),
            method: e.method.clone(),
            headers: e.headers.clone(),
            body: String::from_utf8_lossy(&e.body).into_owned(),
            source_ip: e.source_ip.clone(),
            received_at: e.received_at,
            processed_at: e.processed_at,
            next_attempt_at: e.next_attempt_at,
            published_event_id: e.published_event_id,
        }
    }
}

impl Listed for EventBody {
    fn id(&self) -> Uuid {
        self.id
    }
}

/// Filter of the events list (with the page parameters,
/// [`ListParams`](crate::routes::list::ListParams)).
#[derive(Deserialize, IntoParams)]
pub struct EventFilter {
    /// Only this status.
    pub status: Option<String>,
}

/// Body of replay (optional).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EndpointReplayInput {
    /// Only these events (default: every FAILED one).
    pub event_ids: Option<Vec<Uuid>>,
}
