//! Request and response types of the inbound endpoint routes (endpoints,
//! their secrets, received events and replays). Received events are shown
//! as stored ([`EventRow`], OpenAPI `EventBody`); endpoints as stored plus
//! what their body computes.

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
    /// The endpoint as stored, without its secrets.
    #[serde(flatten)]
    #[schema(inline)]
    pub endpoint: Endpoint,
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
    /// Allowed source networks (CIDRs); null = anyone.
    pub ip_whitelist: Option<Vec<String>>,
    /// Header holding the signature.
    pub signature_header: String,
    /// The verification scheme.
    pub signature_algorithm: String,
    /// Generic schemes: `hex` or `base64`.
    pub signature_encoding: String,
}

impl From<Endpoint> for EndpointBody {
    fn from(e: Endpoint) -> Self {
        let v = crate::inbound::verifier_of(&e);
        Self {
            url_path: format!("/webhooks/{}/{}", e.tenant_id, e.endpoint_path),
            secret_key: None,
            secret: json!({"set": true, "last4": e.secret_hint}),
            previous_secret_expires_at: e
                .secret_previous_expires_at
                .filter(|_| e.secret_previous.is_some()),
            event_types: strings(&e.event_types),
            ip_whitelist: e.ip_whitelist.as_ref().map(strings),
            signature_header: v.header,
            signature_algorithm: v.scheme.as_str().to_owned(),
            signature_encoding: v.encoding.as_str().to_owned(),
            endpoint: e,
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
        self.endpoint.id
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
    /// What the received body becomes: a transformation template reference
    /// (`{"template_id": "…"}` follows its active version, `{"template_id":
    /// "…", "version": 2}` pins one; the template reads the body in its
    /// source format, X12, XML, CSV or JSON, and must write JSON), or a
    /// field map (`{"load_id": "$.data.id"}`); `{}` removes it.
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

impl Listed for EventRow {
    fn id(&self) -> Uuid {
        self.id
    }
}

/// Filter of the events list (with the page parameters,
/// [`ListParams`](crate::routes::list::ListParams)).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
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
