//! The provider catalog ([`providers`]) and a tenant's integrations: CRUD
//! here, connection tests, enable/disable, health and statistics in
//! [`connection`].

pub mod body;
pub mod connection;
pub mod input;
pub mod providers;

use super::list::{ListParams, Paging, upper};
use super::{begin, commit, emit};
use crate::state::{Integrations, catalog};
use actix_web::{HttpResponse, web};
use body::{IntegrationBody, IntegrationFilter, IntegrationInput};
use chrono::Utc;
use hub_connectors::manifest::{ProviderManifest, ProviderStatus};
use hub_domain::FieldError;
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, ErrorCode, Problem};
use hub_platform::server::Context;
use hub_storage::StorageError;
use hub_storage::integrations::{self as store, Integration};
use hub_storage::providers::Provider;
use input::{Mode, ValidIntegrationPatch};
use serde_json::json;
use uuid::Uuid;

fn manifest_of(code: &str) -> Result<&'static ProviderManifest, ApiError> {
    catalog()
        .map_err(ApiError::internal)?
        .get(code)
        .ok_or_else(|| ApiError::internal(format!("provider {code} has no manifest")))
}

async fn find(ctx: &Context, t: &Tenant, id: Uuid) -> Result<Integration, ApiError> {
    store::get(&ctx.pool, t.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("integration"))
}

async fn find_for_update(
    tx: &mut hub_storage::Tx<'_>,
    t: &Tenant,
    id: Uuid,
) -> Result<Integration, ApiError> {
    store::get_for_update(tx, t.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("integration"))
}

/// The catalog provider a new integration names (by code or row id), if
/// the tenant may use it and it can be set up, with its manifest.
async fn provider_of(
    ctx: &Context,
    t: &Tenant,
    input: &IntegrationInput,
) -> Result<(Provider, &'static ProviderManifest), ApiError> {
    use hub_storage::providers::{get_by_id, get_visible};
    let provider = match (input.provider_code.get(), input.provider_id.get()) {
        (Some(code), _) => get_visible(&ctx.pool, t.id, code).await?,
        (None, Some(id)) => match get_by_id(&ctx.pool, *id).await? {
            Some(p) => get_visible(&ctx.pool, t.id, &p.code).await?,
            None => None,
        },
        (None, None) => {
            let message = "provider_code or provider_id is required";
            return Err(FieldError::new("provider_code", message).into());
        }
    };
    let Some(provider) = provider else {
        return Err(FieldError::new("provider_code", "no such provider in the catalog").into());
    };
    let manifest = manifest_of(&provider.code)?;
    if manifest.status == ProviderStatus::ComingSoon
        || manifest.status == ProviderStatus::Deprecated
    {
        let status = manifest.status.as_str();
        let message = format!("{} is {status} and cannot be set up", provider.code);
        return Err(FieldError::new("provider_code", message).into());
    }
    Ok((provider, manifest))
}

/// A new integration of `t` with `provider` and the defaults, before its
/// body is applied.
fn new_integration(
    t: &Tenant,
    ctx: &Context,
    provider: &Provider,
    manifest: &ProviderManifest,
    environment: &str,
) -> Integration {
    let now = Utc::now();
    Integration {
        id: Uuid::now_v7(),
        tenant_id: t.id.0,
        provider_id: provider.id,
        provider_code: provider.code.clone(),
        category: provider.category.clone(),
        name: String::new(),
        description: None,
        config: json!({}),
        environment: environment.to_owned(),
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
    }
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
    let (provider, manifest) = provider_of(&ctx, &t, &input).await?;
    // Credentials may come later (PUT); the integration waits in PENDING_AUTH.
    let valid = ValidIntegrationPatch::parse(input, Mode::Create, manifest, &st)?;
    let mut row = new_integration(&t, &ctx, &provider, manifest, valid.environment());
    valid.apply(&mut row, &st.keyring);
    let mut tx = begin(&ctx).await?;
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
    emit(&mut tx, "integration.created", t.id, data).await?;
    commit(tx).await?;
    let stored = store::get(&ctx.pool, t.id, row.id)
        .await?
        .ok_or_else(|| ApiError::internal("integration vanished after insert"))?;
    Ok(HttpResponse::Created().json(IntegrationBody::from(&stored)))
}

/// The tenant's integrations.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations", security(("api_key" = [], "tenant" = [])),
    params(IntegrationFilter, ListParams), responses((status = 200, description = "`{data: [Integration], next_cursor}`")))]
pub async fn list(
    t: Tenant,
    ctx: web::Data<Context>,
    q: web::Query<IntegrationFilter>,
    page: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let paging = Paging::parse(&page)?;
    let (status, provider, category, environment) = (
        upper(&q.status),
        upper(&q.provider),
        upper(&q.category),
        upper(&q.environment),
    );
    let filter = store::Filter {
        status: status.as_deref(),
        provider: provider.as_deref(),
        category: category.as_deref(),
        environment: environment.as_deref(),
    };
    let rows = store::list(&ctx.pool, t.id, &filter, paging.cursor, paging.fetch()).await?;
    Ok(HttpResponse::Ok().json(paging.page::<_, IntegrationBody>(&rows)))
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
    let mut tx = begin(&ctx).await?;
    let mut row = find_for_update(&mut tx, &t, *id).await?;
    let manifest = manifest_of(&row.provider_code)?;
    let changed = ValidIntegrationPatch::parse(body.into_inner(), Mode::Update, manifest, &st)?
        .apply(&mut row, &st.keyring);
    // New credentials are untested; a paused integration stays paused.
    if changed.contains("credentials") && row.is_enabled {
        row.status = "PENDING_AUTH".into();
    }
    row.updated_by_key = Some(t.api_key_id.0);
    if !changed.is_empty() {
        store::update(&mut tx, &row).await?;
        let data = json!({"id": row.id, "changed": changed, "actor_api_key_id": t.api_key_id});
        emit(&mut tx, "integration.updated", t.id, data).await?;
    }
    commit(tx).await?;
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
    let mut tx = begin(&ctx).await?;
    if !store::delete(&mut tx, t.id, *id, t.api_key_id.0).await? {
        return Err(ApiError::not_found("integration"));
    }
    let data = json!({"id": *id, "actor_api_key_id": t.api_key_id});
    emit(&mut tx, "integration.deleted", t.id, data).await?;
    commit(tx).await?;
    Ok(HttpResponse::NoContent().finish())
}
