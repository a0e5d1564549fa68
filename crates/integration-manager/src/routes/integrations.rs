//! The provider catalog and tenant integrations: CRUD, enable/disable,
//! connection tests, health and statistics.

use super::event;
use crate::credentials::{self, CredentialsInput};
use crate::state::{Integrations, catalog};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use hub_connectors::client::test_connection;
use hub_connectors::manifest::{ProviderManifest, ProviderStatus};
use hub_domain::{FieldError, TenantId};
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, ErrorCode};
use hub_platform::http::{ListParams, Page};
use hub_platform::server::Context;
use hub_storage::StorageError;
use hub_storage::integrations::{self as store, Integration};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

type Problem = hub_platform::error::Problem;

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

fn provider_body(p: hub_storage::providers::Provider) -> ProviderBody {
    ProviderBody {
        code: p.code,
        name: p.name,
        category: p.category,
        status: p.status,
        manifest: p.manifest,
    }
}

/// The providers this tenant may use.
#[utoipa::path(get, path = "/api/v1/integrations/providers", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(ProviderQuery), responses((status = 200, body = Vec<ProviderBody>)))]
pub async fn list_providers(
    t: Tenant,
    ctx: web::Data<Context>,
    q: web::Query<ProviderQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let upper = |s: Option<String>| {
        s.map(|v| v.trim().to_ascii_uppercase())
            .filter(|v| !v.is_empty())
    };
    let text = q.q.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let rows = hub_storage::providers::list_visible(
        &ctx.pool,
        t.id,
        upper(q.category).as_deref(),
        upper(q.status).as_deref(),
        text.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "data": rows.into_iter().map(provider_body).collect::<Vec<_>>(), "next_cursor": null })))
}

/// One provider.
#[utoipa::path(get, path = "/api/v1/integrations/providers/{code}", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("code" = String, Path, description = "Provider code")),
    responses((status = 200, body = ProviderBody), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_provider(
    t: Tenant,
    ctx: web::Data<Context>,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = hub_storage::providers::get_visible(&ctx.pool, t.id, &code)
        .await?
        .ok_or_else(|| ApiError::not_found("provider"))?;
    Ok(HttpResponse::Ok().json(provider_body(p)))
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
    pub status: String,
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
            status: i.status.clone(),
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

/// Body of create (all fields) and update (any subset of the mutable ones).
#[derive(Deserialize, ToSchema, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct IntegrationInput {
    /// Provider code (create only; or `provider_id`).
    pub provider_code: Option<String>,
    /// Provider row id (create only; or `provider_code`).
    pub provider_id: Option<Uuid>,
    /// 1–200 characters.
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Provider settings, per the provider's `config_schema`.
    #[schema(value_type = Object)]
    pub config: Option<Value>,
    /// `PRODUCTION` (default), `SANDBOX`, `TEST` (create only).
    pub environment: Option<String>,
    /// Secrets; stored encrypted, never returned.
    pub credentials: Option<CredentialsInput>,
    /// Retry provider calls (default true).
    pub retry_enabled: Option<bool>,
    /// 0–10 (default 3).
    pub max_retries: Option<i32>,
    /// 1–300 (default 30).
    pub timeout_seconds: Option<i32>,
    /// `REALTIME`, `HOURLY`, `DAILY`, `MANUAL`.
    pub sync_frequency: Option<String>,
    /// Migration support.
    pub external_id: Option<String>,
    /// Migration support.
    pub source_system: Option<String>,
    /// Free-form fields (an object).
    #[schema(value_type = Object)]
    pub custom_fields: Option<Value>,
}

fn manifest_of(code: &str) -> Result<&'static ProviderManifest, ApiError> {
    catalog()
        .map_err(ApiError::internal)?
        .get(code)
        .ok_or_else(|| ApiError::internal(format!("provider {code} has no manifest")))
}

/// Applies the mutable fields of `input` to `row`; returns the names that changed.
fn apply(
    row: &mut Integration,
    input: &IntegrationInput,
    manifest: &ProviderManifest,
    st: &Integrations,
    errors: &mut Vec<FieldError>,
) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if let Some(name) = &input.name {
        let n = name.trim();
        if n.is_empty() || n.chars().count() > 200 {
            errors.push(FieldError::new("name", "must be 1 to 200 characters"));
        } else if n != row.name {
            row.name = n.to_owned();
            changed.push("name");
        }
    }
    if let Some(d) = &input.description
        && Some(d) != row.description.as_ref()
    {
        row.description = Some(d.clone());
        changed.push("description");
    }
    if let Some(config) = &input.config {
        match manifest.validate_config(config) {
            Ok(()) => {
                if let Some(base) = config.get("base_url").and_then(Value::as_str)
                    && let Err(e) = check_base_url(base, st)
                {
                    errors.push(FieldError::new("config.base_url", e));
                }
                if *config != row.config {
                    row.config = config.clone();
                    changed.push("config");
                }
            }
            Err(errs) => errors.extend(
                errs.into_iter()
                    .map(|e| FieldError::new(e.field, e.message)),
            ),
        }
    }
    if let Some(c) = &input.credentials {
        match credentials::seal_into(row, manifest.auth_type, c, &st.keyring) {
            Ok(()) => changed.push("credentials"),
            Err(errs) => errors.extend(errs),
        }
    }
    if let Some(v) = input.retry_enabled
        && v != row.retry_enabled
    {
        row.retry_enabled = v;
        changed.push("retry_enabled");
    }
    if let Some(v) = input.max_retries {
        if !(0..=10).contains(&v) {
            errors.push(FieldError::new("max_retries", "must be between 0 and 10"));
        } else if v != row.max_retries {
            row.max_retries = v;
            changed.push("max_retries");
        }
    }
    if let Some(v) = input.timeout_seconds {
        if !(1..=300).contains(&v) {
            errors.push(FieldError::new(
                "timeout_seconds",
                "must be between 1 and 300",
            ));
        } else if v != row.timeout_seconds {
            row.timeout_seconds = v;
            changed.push("timeout_seconds");
        }
    }
    if let Some(v) = &input.sync_frequency {
        let v = v.to_ascii_uppercase();
        if !["REALTIME", "HOURLY", "DAILY", "MANUAL"].contains(&v.as_str()) {
            errors.push(FieldError::new(
                "sync_frequency",
                "must be REALTIME, HOURLY, DAILY or MANUAL",
            ));
        } else if Some(&v) != row.sync_frequency.as_ref() {
            row.sync_frequency = Some(v);
            changed.push("sync_frequency");
        }
    }
    for (field, value, slot, max) in [
        ("external_id", &input.external_id, &mut row.external_id, 100),
        (
            "source_system",
            &input.source_system,
            &mut row.source_system,
            50,
        ),
    ] {
        if let Some(v) = value {
            if v.chars().count() > max {
                errors.push(FieldError::new(
                    field,
                    format!("must be at most {max} characters"),
                ));
            } else if Some(v) != slot.as_ref() {
                *slot = Some(v.clone());
                changed.push(field);
            }
        }
    }
    if let Some(v) = &input.custom_fields {
        if !v.is_object() {
            errors.push(FieldError::new("custom_fields", "must be an object"));
        } else if *v != row.custom_fields {
            row.custom_fields = v.clone();
            changed.push("custom_fields");
        }
    }
    changed
}

fn check_base_url(base: &str, st: &Integrations) -> Result<(), String> {
    let url = url::Url::parse(base).map_err(|e| format!("not a URL ({e})"))?;
    hub_connectors::client::check_target(&url, st.policy).map_err(|e| e.to_string())
}

/// Creates an integration (status `PENDING_AUTH` until a connection test passes).
#[utoipa::path(post, path = "/api/v1/integrations", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    request_body = IntegrationInput,
    responses((status = 201, body = IntegrationBody),
        (status = 409, description = "The tenant already has this provider in this environment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, one error each", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Integrations>,
    body: web::Json<IntegrationInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let provider = match (&input.provider_code, input.provider_id) {
        (Some(code), _) => hub_storage::providers::get_visible(&ctx.pool, t.id, code).await?,
        (None, Some(id)) => match hub_storage::providers::get_by_id(&ctx.pool, id).await? {
            Some(p) => hub_storage::providers::get_visible(&ctx.pool, t.id, &p.code).await?,
            None => None,
        },
        (None, None) => {
            return Err(FieldError::new(
                "provider_code",
                "provider_code or provider_id is required",
            )
            .into());
        }
    };
    let Some(provider) = provider else {
        return Err(FieldError::new("provider_code", "no such provider in the catalog").into());
    };
    let manifest = manifest_of(&provider.code)?;
    if manifest.status == ProviderStatus::ComingSoon
        || manifest.status == ProviderStatus::Deprecated
    {
        return Err(FieldError::new(
            "provider_code",
            format!(
                "{} is {} and cannot be set up",
                provider.code,
                manifest.status.as_str()
            ),
        )
        .into());
    }
    let mut errors = Vec::new();
    let environment = input
        .environment
        .clone()
        .unwrap_or_else(|| "PRODUCTION".into())
        .to_ascii_uppercase();
    if !["PRODUCTION", "SANDBOX", "TEST"].contains(&environment.as_str()) {
        errors.push(FieldError::new(
            "environment",
            "must be PRODUCTION, SANDBOX or TEST",
        ));
    }
    if input.name.is_none() {
        errors.push(FieldError::new("name", "is required"));
    }
    let now = Utc::now();
    let mut row = Integration {
        id: Uuid::now_v7(),
        tenant_id: t.id.0,
        provider_id: provider.id,
        provider_code: provider.code.clone(),
        category: provider.category.clone(),
        name: String::new(),
        description: None,
        config: json!({}),
        environment,
        auth_type: manifest.auth_type.as_str().to_owned(),
        api_key_encrypted: None,
        oauth_tokens: None,
        oauth_expires_at: None,
        basic_auth_encrypted: None,
        credentials_hint: json!({}),
        status: "PENDING_AUTH".into(),
        last_successful_call: None,
        last_error: None,
        last_error_at: None,
        error_count: 0,
        is_enabled: true,
        retry_enabled: true,
        max_retries: ctx.config.default_max_retries.min(10) as i32,
        timeout_seconds: ctx.config.default_timeout_seconds.min(300) as i32,
        sync_frequency: None,
        last_sync_at: None,
        next_sync_at: None,
        external_id: None,
        source_system: None,
        custom_fields: json!({}),
        created_at: now,
        updated_at: now,
        created_by_key: Some(t.api_key_id.0),
        updated_by_key: Some(t.api_key_id.0),
    };
    let mut input = input;
    if input.config.is_none() {
        input.config = Some(json!({}));
    }
    if input.credentials.is_none() && manifest.auth_type != hub_connectors::manifest::AuthType::None
    {
        // Credentials may come later (PUT); the integration waits in PENDING_AUTH.
    }
    apply(&mut row, &input, manifest, &st, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    match store::insert(&mut tx, &row).await {
        Err(StorageError::Conflict { .. }) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "this tenant already has a {} integration in {}; update it or use another environment",
                    row.provider_code, row.environment
                ),
            ));
        }
        other => other?,
    }
    let body = IntegrationBody::from(&row);
    let data = json!({"integration": body, "actor_api_key_id": t.api_key_id});
    hub_storage::outbox::enqueue(&mut tx, &[event("integration.created", t.id, data)]).await?;
    tx.commit().await.map_err(StorageError::from)?;
    let stored = store::get(&ctx.pool, t.id, row.id)
        .await?
        .ok_or_else(|| ApiError::internal("integration vanished after insert"))?;
    Ok(HttpResponse::Created().json(IntegrationBody::from(&stored)))
}

/// List filters.
#[derive(Deserialize, IntoParams)]
pub struct IntegrationQuery {
    /// Status.
    pub status: Option<String>,
    /// Provider code.
    pub provider: Option<String>,
    /// Provider category.
    pub category: Option<String>,
    /// Environment.
    pub environment: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The tenant's integrations.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(IntegrationQuery), responses((status = 200, description = "`{data: [Integration], next_cursor}`")))]
pub async fn list(
    t: Tenant,
    ctx: web::Data<Context>,
    q: web::Query<IntegrationQuery>,
) -> Result<HttpResponse, ApiError> {
    let (limit, after) = ListParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    }
    .parse()?;
    let up = |s: &Option<String>| s.as_ref().map(|v| v.to_ascii_uppercase());
    let (status, provider, category, environment) = (
        up(&q.status),
        up(&q.provider),
        up(&q.category),
        up(&q.environment),
    );
    let filter = store::Filter {
        status: status.as_deref(),
        provider: provider.as_deref(),
        category: category.as_deref(),
        environment: environment.as_deref(),
    };
    let rows = store::list(&ctx.pool, t.id, &filter, after, limit + 1).await?;
    Ok(HttpResponse::Ok().json(Page::new(
        rows.iter().map(IntegrationBody::from).collect(),
        limit,
        |b: &IntegrationBody| b.id,
    )))
}

async fn find(ctx: &Context, t: &Tenant, id: Uuid) -> Result<Integration, ApiError> {
    store::get(&ctx.pool, t.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("integration"))
}

/// One integration.
#[utoipa::path(get, path = "/api/v1/integrations/{id}", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = IntegrationBody), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(IntegrationBody::from(&find(&ctx, &t, *id).await?)))
}

/// Updates any of the mutable fields. New credentials need a new connection
/// test (status back to `PENDING_AUTH`).
#[utoipa::path(put, path = "/api/v1/integrations/{id}", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body = IntegrationInput,
    responses((status = 200, body = IntegrationBody), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Integrations>,
    id: web::Path<Uuid>,
    body: web::Json<IntegrationInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let mut errors = Vec::new();
    if input.provider_code.is_some() || input.provider_id.is_some() {
        errors.push(FieldError::new(
            "provider_code",
            "cannot change; create a new integration",
        ));
    }
    if input.environment.is_some() {
        errors.push(FieldError::new(
            "environment",
            "cannot change; create a new integration",
        ));
    }
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    let mut row = store::get_for_update(&mut tx, t.id, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("integration"))?;
    let manifest = manifest_of(&row.provider_code)?;
    let changed = apply(&mut row, &input, manifest, &st, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if changed.contains(&"credentials") {
        // New credentials are untested; a paused integration stays paused.
        if row.is_enabled {
            row.status = "PENDING_AUTH".into();
        }
    }
    row.updated_by_key = Some(t.api_key_id.0);
    if !changed.is_empty() {
        store::update(&mut tx, &row).await?;
        let data = json!({"id": row.id, "changed": changed, "actor_api_key_id": t.api_key_id});
        hub_storage::outbox::enqueue(&mut tx, &[event("integration.updated", t.id, data)]).await?;
    }
    tx.commit().await.map_err(StorageError::from)?;
    Ok(HttpResponse::Ok().json(IntegrationBody::from(&find(&ctx, &t, *id).await?)))
}

/// Deletes an integration (its logs and jobs are kept).
#[utoipa::path(delete, path = "/api/v1/integrations/{id}", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    if !store::delete(&mut tx, t.id, *id, t.api_key_id.0).await? {
        return Err(ApiError::not_found("integration"));
    }
    let data = json!({"id": *id, "actor_api_key_id": t.api_key_id});
    hub_storage::outbox::enqueue(&mut tx, &[event("integration.deleted", t.id, data)]).await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(HttpResponse::NoContent().finish())
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

/// Runs the provider's test call and records the outcome on the integration.
async fn run_test(
    ctx: &Context,
    st: &Integrations,
    t: &Tenant,
    id: Uuid,
) -> Result<(TestResult, Integration), ApiError> {
    let row = find(ctx, t, id).await?;
    let manifest = manifest_of(&row.provider_code)?;
    let creds = credentials::open(&row, &st.keyring).map_err(ApiError::internal)?;
    let timeout = Duration::from_secs(u64::try_from(row.timeout_seconds.max(1)).unwrap_or(30));
    let outcome =
        match test_connection(&st.http, manifest, &row.config, &creds, timeout, st.policy).await {
            Ok(o) => o,
            // Not even attempted (no credentials, forbidden target, …): no
            // call to log, but the failure is recorded on the integration.
            Err(e) => {
                let result = TestResult {
                    ok: false,
                    status: None,
                    latency_ms: 0,
                    error: Some(e.to_string()),
                };
                let row = record_test(ctx, t, id, &result).await?;
                return Ok((result, row));
            }
        };
    let log = store::CallLog {
        tenant_id: t.id.0,
        integration_id: row.id,
        direction: "OUTBOUND",
        method: outcome.method.clone(),
        url: outcome.url.clone(),
        path: outcome.path.clone(),
        headers: outcome.request_headers.clone(),
        response_status: outcome.status.map(i32::from),
        response_body: if ctx.config.log_response_bodies {
            outcome.response_excerpt.clone()
        } else {
            None
        },
        response_time_ms: i32::try_from(outcome.latency_ms).unwrap_or(i32::MAX),
        status: outcome.class,
        error_message: outcome.error.clone(),
        correlation_id: None,
    };
    store::log_call(&ctx.pool, &log).await?;
    let result = TestResult {
        ok: outcome.ok,
        status: outcome.status,
        latency_ms: outcome.latency_ms,
        error: outcome.error,
    };
    let row = record_test(ctx, t, id, &result).await?;
    Ok((result, row))
}

/// Records a test's outcome on the integration, with its events.
async fn record_test(
    ctx: &Context,
    t: &Tenant,
    id: Uuid,
    outcome: &TestResult,
) -> Result<Integration, ApiError> {
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    let mut row = store::get_for_update(&mut tx, t.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("integration"))?;
    let now = Utc::now();
    let mut events = Vec::new();
    if outcome.ok {
        row.last_successful_call = Some(now);
        row.error_count = 0;
        // A paused (disabled) integration stays paused until `enable`.
        if row.is_enabled && matches!(row.status.as_str(), "PENDING_AUTH" | "ERROR") {
            row.status = "ACTIVE".into();
            events.push(event(
                "integration.connected",
                t.id,
                json!({"id": row.id, "status": row.status}),
            ));
        }
    } else {
        row.last_error = outcome.error.clone();
        row.last_error_at = Some(now);
        row.error_count += 1;
        events.push(event(
            "integration.error",
            t.id,
            json!({"id": row.id, "status": outcome.status, "error": outcome.error}),
        ));
        if row.status == "ACTIVE" {
            row.status = "ERROR".into();
            events.push(event(
                "integration.disconnected",
                t.id,
                json!({"id": row.id, "error": outcome.error}),
            ));
        }
    }
    store::update(&mut tx, &row).await?;
    hub_storage::outbox::enqueue(&mut tx, &events).await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(row)
}

/// Tests the connection with the provider's test call.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/test", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = TestResult), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn test(
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Integrations>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (result, _) = run_test(&ctx, &st, &t, *id).await?;
    Ok(HttpResponse::Ok().json(result))
}

/// Enables an integration after a passing connection test (409 with the
/// provider's error when it fails).
#[utoipa::path(post, path = "/api/v1/integrations/{id}/enable", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = IntegrationBody), (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn enable(
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Integrations>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (result, _) = run_test(&ctx, &st, &t, *id).await?;
    if !result.ok {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "connection test failed: {}",
                result
                    .error
                    .clone()
                    .unwrap_or_else(|| "unknown error".into())
            ),
        )
        .with_extension("test", serde_json::to_value(&result).unwrap_or_default()));
    }
    set_enabled(&ctx, &t, *id, true).await
}

/// Disables (pauses) an integration; its configuration is kept.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/disable", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = IntegrationBody), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn disable(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    set_enabled(&ctx, &t, *id, false).await
}

async fn set_enabled(
    ctx: &Context,
    t: &Tenant,
    id: Uuid,
    enabled: bool,
) -> Result<HttpResponse, ApiError> {
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    let mut row = store::get_for_update(&mut tx, t.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("integration"))?;
    let was = (row.is_enabled, row.status.clone());
    row.is_enabled = enabled;
    row.status = if enabled {
        "ACTIVE".into()
    } else {
        "PAUSED".into()
    };
    row.updated_by_key = Some(t.api_key_id.0);
    if was != (row.is_enabled, row.status.clone()) {
        store::update(&mut tx, &row).await?;
        let kind = if enabled {
            "integration.connected"
        } else {
            "integration.disconnected"
        };
        let data = json!({"id": row.id, "status": row.status, "actor_api_key_id": t.api_key_id});
        hub_storage::outbox::enqueue(&mut tx, &[event(kind, t.id, data)]).await?;
    }
    tx.commit().await.map_err(StorageError::from)?;
    Ok(HttpResponse::Ok().json(IntegrationBody::from(&find(ctx, t, id).await?)))
}

/// Health of one integration.
#[utoipa::path(get, path = "/api/v1/integrations/{id}/health", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "status, last success/error, error count, circuit state, rate-limit usage this hour")))]
pub async fn health(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = find(&ctx, &t, *id).await?;
    let manifest = manifest_of(&row.provider_code)?;
    let used = store::calls_this_hour(&ctx.pool, t.id, row.id).await?;
    let circuit = store::circuit_state(&ctx.pool, row.id)
        .await?
        .unwrap_or_else(|| "CLOSED".into());
    let per_hour = u64::from(manifest.rate_limit.requests) * 3600
        / u64::from(manifest.rate_limit.window_seconds.max(1));
    Ok(HttpResponse::Ok().json(json!({
        "id": row.id,
        "status": row.status,
        "is_enabled": row.is_enabled,
        "last_successful_call": row.last_successful_call,
        "last_error": row.last_error,
        "last_error_at": row.last_error_at,
        "error_count": row.error_count,
        "circuit_state": circuit,
        "rate_limit": { "used_this_hour": used, "limit_per_hour": per_hour,
                        "requests": manifest.rate_limit.requests, "window_seconds": manifest.rate_limit.window_seconds },
    })))
}

/// Call statistics by hour over the last 24 hours.
#[utoipa::path(get, path = "/api/v1/integrations/{id}/stats", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "calls, errors, p50/p95 latency per hour")))]
pub async fn stats(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = find(&ctx, &t, *id).await?;
    let hours = store::hourly_stats(&ctx.pool, t.id, row.id).await?;
    let calls: i64 = hours.iter().map(|h| h.calls).sum();
    let errors: i64 = hours.iter().map(|h| h.errors).sum();
    Ok(HttpResponse::Ok().json(json!({ "id": row.id, "window_hours": 24, "calls": calls, "errors": errors, "hours": hours })))
}

/// Body of the visibility admin route.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Visibility {
    /// Hide the provider from the tenant's catalog.
    pub hidden: bool,
}

/// Hides or shows a provider for a tenant (operator).
#[utoipa::path(put, path = "/api/v1/admin/tenants/{id}/providers/{code}/visibility", tag = "admin", security(("admin_token" = [])),
    params(("id" = Uuid, Path), ("code" = String, Path)), request_body = Visibility,
    responses((status = 200), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn set_visibility(
    _: hub_platform::auth::Admin,
    ctx: web::Data<Context>,
    path: web::Path<(Uuid, String)>,
    body: web::Json<Visibility>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, code) = path.into_inner();
    hub_storage::tenants::get(&ctx.pool, TenantId(tenant))
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    if !hub_storage::providers::set_hidden(&ctx.pool, TenantId(tenant), &code, body.hidden).await? {
        return Err(ApiError::not_found("provider"));
    }
    Ok(HttpResponse::Ok().json(json!({"tenant_id": tenant, "provider_code": code.to_ascii_uppercase(), "hidden": body.hidden})))
}
