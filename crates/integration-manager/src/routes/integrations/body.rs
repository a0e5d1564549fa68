//! Request and response types of the catalog and integration routes. A
//! provider and an integration are shown as stored
//! ([`hub_storage::providers::Provider`], OpenAPI `ProviderBody`;
//! [`Integration`], OpenAPI `IntegrationBody`).

use crate::credentials::CredentialsInput;
use crate::routes::list::Listed;
use crate::routes::patch::Patch;
use hub_storage::integrations::Integration;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Query of the catalog.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProviderQuery {
    /// `LOAD_BOARD`, `ACCOUNTING`, `ELD`, `CRM`, `INTEL`.
    pub category: Option<String>,
    /// Text in the code, name or description.
    pub q: Option<String>,
    /// `ACTIVE`, `DEPRECATED`, `COMING_SOON`.
    pub status: Option<String>,
}

impl Listed for Integration {
    fn id(&self) -> Uuid {
        self.id
    }
}

/// Body of create (all fields) and update (any subset of the mutable ones).
#[derive(Deserialize, ToSchema, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct IntegrationInput {
    /// Provider code (create only; or `provider_id`).
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub provider_code: Patch<String>,
    /// Provider row id (create only; or `provider_code`).
    #[schema(value_type = Option<Uuid>)]
    #[serde(default)]
    pub provider_id: Patch<Uuid>,
    /// 1–200 characters.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub name: Patch<String>,
    /// Free text.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub description: Patch<String>,
    /// Provider settings, per the provider's `config_schema`.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub config: Patch<Value>,
    /// `PRODUCTION` (default), `SANDBOX`, `TEST` (create only).
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub environment: Patch<String>,
    /// Secrets; stored encrypted, never returned.
    #[schema(value_type = Option<CredentialsInput>)]
    #[serde(default)]
    pub credentials: Patch<CredentialsInput>,
    /// Retry provider calls (default true).
    #[schema(value_type = Option<bool>)]
    #[serde(default)]
    pub retry_enabled: Patch<bool>,
    /// 0–10 (default 3).
    #[schema(value_type = Option<i32>)]
    #[serde(default)]
    pub max_retries: Patch<i32>,
    /// 1–300 (default 30).
    #[schema(value_type = Option<i32>)]
    #[serde(default)]
    pub timeout_seconds: Patch<i32>,
    /// The integration's own rate limit, requests per window (1–1,000,000,000),
    /// instead of its provider's documented one; sent together with
    /// `rate_limit_window_seconds`, both `null` to go back to the provider's.
    #[schema(value_type = Option<i32>)]
    #[serde(default)]
    pub rate_limit_requests: Patch<i32>,
    /// The window of `rate_limit_requests`, in seconds (1–86,400).
    #[schema(value_type = Option<i32>)]
    #[serde(default)]
    pub rate_limit_window_seconds: Patch<i32>,
    /// How often the sync scheduler syncs the integration's entities:
    /// `REALTIME` (every minute), `HOURLY`, `DAILY` (counted from the last
    /// scheduled run), `MANUAL` (never scheduled), or a five-field cron
    /// expression in UTC (`minute hour day-of-month month day-of-week`, such
    /// as `*/15 * * * *`; at most 50 characters). Setting it sets
    /// `next_sync_at`.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub sync_frequency: Patch<String>,
    /// Migration support.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub external_id: Patch<String>,
    /// Migration support.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub source_system: Patch<String>,
    /// Free-form fields (an object).
    #[schema(value_type = Object)]
    #[serde(default)]
    pub custom_fields: Patch<Value>,
    /// The platform events whose changes are exported to the provider
    /// (those its manifest's entities export, e.g. QuickBooks
    /// `invoice.generated`); `[]` or `null` exports nothing.
    #[schema(value_type = Option<Vec<String>>)]
    #[serde(default)]
    pub export_events: Patch<Vec<String>>,
}

/// List filters (with the page parameters,
/// [`ListParams`](crate::routes::list::ListParams)).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IntegrationFilter {
    /// Status.
    pub status: Option<String>,
    /// Provider code.
    pub provider: Option<String>,
    /// Provider category.
    pub category: Option<String>,
    /// Environment.
    pub environment: Option<String>,
}

/// The result of a connection test.
#[derive(Serialize, ToSchema)]
pub struct TestResult {
    /// Whether the provider accepted the call.
    pub ok: bool,
    /// The provider's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Time to the answer.
    pub latency_ms: u64,
    /// What went wrong.
    pub error: Option<String>,
}

/// Body of the visibility admin route.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Visibility {
    /// Hide the provider from the tenant's catalog.
    pub hidden: bool,
}
