//! Request and response types of the catalog and integration routes.

use crate::credentials::CredentialsInput;
use crate::routes::list::Listed;
use crate::routes::patch::Patch;
use chrono::{DateTime, Utc};
use hub_storage::integrations::Integration;
use hub_storage::providers::Provider;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A provider of the catalog.
#[derive(Serialize, ToSchema)]
pub struct ProviderBody {
    /// Code (`HUBSPOT`, …).
    pub code: String,
    /// Name.
    pub name: String,
    /// Category.
    pub category: String,
    /// `ACTIVE`, `DEPRECATED`, `COMING_SOON`.
    pub status: String,
    /// The manifest: auth type, OAuth URLs and scopes, base URL, API version,
    /// documentation URL, capabilities, rate limit, config JSON Schema, test call.
    #[schema(value_type = Object)]
    pub manifest: Value,
}

/// Query of the catalog.
#[derive(Deserialize, IntoParams)]
pub struct ProviderQuery {
    /// `LOAD_BOARD`, `ACCOUNTING`, `ELD`, `CRM`, `INTEL`.
    pub category: Option<String>,
    /// Text in the code, name or description.
    pub q: Option<String>,
    /// `ACTIVE`, `DEPRECATED`, `COMING_SOON`.
    pub status: Option<String>,
}

impl From<Provider> for ProviderBody {
    fn from(p: Provider) -> Self {
        Self {
            code: p.code,
            name: p.name,
            category: p.category,
            status: p.status,
            manifest: p.manifest,
        }
    }
}

/// An integration (never its secrets).
#[derive(Serialize, ToSchema)]
pub struct IntegrationBody {
    /// Id.
    pub id: Uuid,
    /// Provider code.
    pub provider_code: String,
    /// Provider row id.
    pub provider_id: Uuid,
    /// Provider category.
    pub category: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Provider-specific settings (validated against the provider's schema).
    #[schema(value_type = Object)]
    pub config: Value,
    /// `PRODUCTION`, `SANDBOX`, `TEST`.
    pub environment: String,
    /// Auth type of the provider.
    pub auth_type: String,
    /// Which credentials are set, with their last four characters.
    #[schema(value_type = Object)]
    pub credentials: Value,
    /// `PENDING_AUTH`, `ACTIVE`, `ERROR`, `PAUSED`.
    #[schema(value_type = String)]
    pub status: hub_domain::status::IntegrationStatus,
    /// Whether it processes work.
    pub is_enabled: bool,
    /// Last good call.
    pub last_successful_call: Option<DateTime<Utc>>,
    /// Last error.
    pub last_error: Option<String>,
    /// When.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Errors since the last success.
    pub error_count: i32,
    /// Retry provider calls.
    pub retry_enabled: bool,
    /// Retries.
    pub max_retries: i32,
    /// Per-call timeout.
    pub timeout_seconds: i32,
    /// `REALTIME`, `HOURLY`, `DAILY`, `MANUAL`.
    pub sync_frequency: Option<String>,
    /// Last sync.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// Next sync.
    pub next_sync_at: Option<DateTime<Utc>>,
    /// Migration support.
    pub external_id: Option<String>,
    /// Migration support.
    pub source_system: Option<String>,
    /// Free-form fields.
    #[schema(value_type = Object)]
    pub custom_fields: Value,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// API key that created it.
    pub created_by: Option<Uuid>,
    /// API key that last changed it.
    pub updated_by: Option<Uuid>,
}

impl From<&Integration> for IntegrationBody {
    fn from(i: &Integration) -> Self {
        Self {
            id: i.id,
            provider_code: i.provider_code.clone(),
            provider_id: i.provider_id,
            category: i.category.clone(),
            name: i.name.clone(),
            description: i.description.clone(),
            config: i.config.clone(),
            environment: i.environment.clone(),
            auth_type: i.auth_type.clone(),
            credentials: i.credentials_hint.clone(),
            status: i.status,
            is_enabled: i.is_enabled,
            last_successful_call: i.last_successful_call,
            last_error: i.last_error.clone(),
            last_error_at: i.last_error_at,
            error_count: i.error_count,
            retry_enabled: i.retry_enabled,
            max_retries: i.max_retries,
            timeout_seconds: i.timeout_seconds,
            sync_frequency: i.sync_frequency.clone(),
            last_sync_at: i.last_sync_at,
            next_sync_at: i.next_sync_at,
            external_id: i.external_id.clone(),
            source_system: i.source_system.clone(),
            custom_fields: i.custom_fields.clone(),
            created_at: i.created_at,
            updated_at: i.updated_at,
            created_by: i.created_by_key,
            updated_by: i.updated_by_key,
        }
    }
}

impl Listed for IntegrationBody {
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
    /// `REALTIME`, `HOURLY`, `DAILY`, `MANUAL`.
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
}

/// List filters (with the page parameters,
/// [`ListParams`](crate::routes::list::ListParams)).
#[derive(Deserialize, IntoParams)]
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
