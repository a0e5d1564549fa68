//! Operator API: tenants and their API keys. Authenticated with
//! `HUB_ADMIN_TOKEN`; off when it is unset. Tenants and keys are shown as
//! stored ([`Tenant`], OpenAPI `TenantBody`; [`ApiKey`], `ApiKeyBody`).

use super::event;
use super::list::{ListParams, ListQuery, Listed};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use hub_domain::{ApiKeyId, ApiKeySecret, TenantId, TenantName, TenantSlug};
use hub_platform::auth::Admin;
use hub_platform::error::{ApiError, ErrorCode};
use hub_platform::server::Context;
use hub_storage::StorageError;
use hub_storage::tenants::{ApiKey, Tenant};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A page of tenants.
#[derive(Serialize, ToSchema)]
pub struct TenantPage {
    /// The tenants.
    pub data: Vec<Tenant>,
    /// Cursor of the next page, `null` on the last.
    pub next_cursor: Option<String>,
}

/// Body of `POST /api/v1/admin/tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Display name, 1–200 characters.
    pub name: String,
    /// URL slug: 1–63 of `a-z`, `0-9`, `-`.
    pub slug: String,
}

/// Body of `POST …/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// Label, 1–200 characters.
    pub name: String,
}

/// A new API key: the secret is in `key`, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// Its id.
    pub id: Uuid,
    /// Label.
    pub name: String,
    /// The first characters of the key.
    pub prefix: String,
    /// The key. It is not stored and cannot be shown again.
    pub key: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl Listed for Tenant {
    fn id(&self) -> Uuid {
        self.id.0
    }
}

/// Filter of `GET /api/v1/admin/tenants` (with the page parameters,
/// [`ListParams`]).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantFilter {
    /// Only the tenant with this slug.
    pub slug: Option<String>,
}

/// Creates a tenant.
#[utoipa::path(post, path = "/api/v1/admin/tenants", tag = "admin", security(("admin_token" = [])),
    request_body = CreateTenant,
    responses(
        (status = 201, body = Tenant),
        (status = 409, description = "The slug is taken", body = hub_platform::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name or slug", body = hub_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_tenant(
    _: Admin,
    ctx: web::Data<Context>,
    body: web::Json<CreateTenant>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let name = TenantName::parse(&body.name)
        .map_err(|e| errors.push(e))
        .ok();
    let slug = TenantSlug::parse(&body.slug)
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(name), Some(slug)) = (name, slug) else {
        return Err(ApiError::validation(errors));
    };
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    let tenant = match hub_storage::tenants::insert(&mut tx, TenantId::new(), &name, &slug).await {
        Err(StorageError::Conflict { .. }) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("slug: {:?} is taken by another tenant", slug.as_str()),
            ));
        }
        other => other?,
    };
    hub_storage::outbox::enqueue(
        &mut tx,
        &[event(
            "tenant.created",
            tenant.id,
            serde_json::to_value(&tenant).expect("serializes"),
        )],
    )
    .await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(HttpResponse::Created().json(tenant))
}

/// Lists tenants, optionally the one with a slug.
#[utoipa::path(get, path = "/api/v1/admin/tenants", tag = "admin", security(("admin_token" = [])),
    params(TenantFilter, ListParams), responses((status = 200, body = TenantPage)))]
pub async fn list_tenants(
    _: Admin,
    ctx: web::Data<Context>,
    ListQuery { filter: q, paging }: ListQuery<TenantFilter>,
) -> Result<HttpResponse, ApiError> {
    let (slug, after) = (q.slug.as_deref(), paging.cursor);
    let rows = hub_storage::tenants::list(&ctx.pool, slug, after, paging.fetch()).await?;
    Ok(HttpResponse::Ok().json(paging.page_of(rows)))
}

async fn existing_tenant(ctx: &Context, id: Uuid) -> Result<Tenant, ApiError> {
    hub_storage::tenants::get(&ctx.pool, TenantId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))
}

/// One tenant.
#[utoipa::path(get, path = "/api/v1/admin/tenants/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = Tenant), (status = 404, body = hub_platform::error::Problem, content_type = "application/problem+json")))]
pub async fn get_tenant(
    _: Admin,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(existing_tenant(&ctx, *id).await?))
}

/// Creates an API key for a tenant; the key is in the response, once.
#[utoipa::path(post, path = "/api/v1/admin/tenants/{id}/api-keys", tag = "admin", security(("admin_token" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")), request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 404, body = hub_platform::error::Problem, content_type = "application/problem+json"), (status = 422, body = hub_platform::error::Problem, content_type = "application/problem+json")))]
pub async fn create_api_key(
    _: Admin,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
    body: web::Json<CreateApiKey>,
) -> Result<HttpResponse, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(hub_domain::FieldError::new("name", "must be 1 to 200 characters").into());
    }
    let tenant = existing_tenant(&ctx, *id).await?;
    let secret = ApiKeySecret::generate();
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    let key = hub_storage::tenants::insert_api_key(
        &mut tx,
        ApiKeyId::new(),
        tenant.id,
        name,
        &secret.display_prefix(),
        &secret.hash(),
    )
    .await?;
    let data = serde_json::json!({ "id": key.id, "name": key.name, "prefix": key.prefix });
    hub_storage::outbox::enqueue(&mut tx, &[event("api_key.created", tenant.id, data)]).await?;
    tx.commit().await.map_err(StorageError::from)?;
    tracing::info!(tenant = %tenant.id, key_id = %key.id, prefix = %key.prefix, "API key created");
    Ok(HttpResponse::Created().json(CreatedApiKey {
        id: key.id.0,
        name: key.name,
        prefix: key.prefix,
        key: secret.expose().to_owned(),
        created_at: key.created_at,
    }))
}

/// A tenant's API keys (metadata only).
#[utoipa::path(get, path = "/api/v1/admin/tenants/{id}/api-keys", tag = "admin", security(("admin_token" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = ApiKeyPage), (status = 404, body = hub_platform::error::Problem, content_type = "application/problem+json")))]
pub async fn list_api_keys(
    _: Admin,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tenant = existing_tenant(&ctx, *id).await?;
    let keys = hub_storage::tenants::list_api_keys(&ctx.pool, tenant.id).await?;
    Ok(HttpResponse::Ok().json(ApiKeyPage {
        data: keys,
        next_cursor: None,
    }))
}

/// A tenant's API keys, as every list answers (one page).
#[derive(Serialize, ToSchema)]
pub struct ApiKeyPage {
    /// The keys (without their secrets).
    pub data: Vec<ApiKey>,
    /// Always `null`: a tenant's keys are one page.
    pub next_cursor: Option<String>,
}

/// Revokes an API key: it stops working at once.
#[utoipa::path(delete, path = "/api/v1/admin/tenants/{id}/api-keys/{key_id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = Uuid, Path, description = "Tenant id"), ("key_id" = Uuid, Path, description = "API key id")),
    responses((status = 200, body = ApiKey), (status = 404, body = hub_platform::error::Problem, content_type = "application/problem+json")))]
pub async fn revoke_api_key(
    _: Admin,
    ctx: web::Data<Context>,
    auth: web::Data<hub_platform::auth::AuthState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, key) = path.into_inner();
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    let key = hub_storage::tenants::revoke_api_key(&mut tx, TenantId(tenant), ApiKeyId(key))
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    let data = serde_json::json!({ "id": key.id, "name": key.name, "prefix": key.prefix });
    hub_storage::outbox::enqueue(&mut tx, &[event("api_key.revoked", TenantId(tenant), data)])
        .await?;
    tx.commit().await.map_err(StorageError::from)?;
    // Other processes hear of it on commit; this one must not answer before
    // its own cache has forgotten the key.
    auth.forget_keys();
    Ok(HttpResponse::Ok().json(key))
}
