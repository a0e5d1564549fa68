//! The provider catalog as a tenant sees it, and the operator's per-tenant
//! visibility of its providers.

use super::body::{ProviderBody, ProviderQuery, Visibility};
use actix_web::{HttpResponse, web};
use hub_domain::TenantId;
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, Problem};
use hub_platform::server::Context;
use serde_json::json;
use uuid::Uuid;

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
    Ok(HttpResponse::Ok().json(json!({ "data": rows.into_iter().map(ProviderBody::from).collect::<Vec<_>>(), "next_cursor": null })))
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
    Ok(HttpResponse::Ok().json(ProviderBody::from(p)))
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
