//! Routes about the calling tenant.

use super::list::{ListParams, ListQuery, Listed};
use actix_web::{HttpResponse, web};
use hub_platform::auth::Tenant;
use hub_platform::error::ApiError;
use hub_platform::server::Context;
use hub_storage::audit::AuditEntry;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Who is calling.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// The tenant.
    pub tenant: hub_storage::tenants::Tenant,
    /// The API key used for this request.
    pub api_key_id: Uuid,
}

/// The calling tenant and key.
#[utoipa::path(get, path = "/api/v1/me", tag = "tenant", security(("api_key" = [], "tenant" = [])),
    responses(
        (status = 200, body = Me),
        (status = 400, description = "X-Tenant-ID missing or malformed", body = hub_platform::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, unknown or revoked API key", body = hub_platform::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key belongs to another tenant", body = hub_platform::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(tenant: Tenant, ctx: web::Data<Context>) -> Result<HttpResponse, ApiError> {
    let t = hub_storage::tenants::get(&ctx.pool, tenant.id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(HttpResponse::Ok().json(Me {
        tenant: t,
        api_key_id: tenant.api_key_id.0,
    }))
}

/// A page of audit entries.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Entries, newest first.
    pub data: Vec<AuditEntry>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

impl Listed for AuditEntry {
    fn id(&self) -> Uuid {
        self.id
    }
}

/// Filter of the audit trail (with the page parameters, [`ListParams`]).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Only this event type.
    pub event_type: Option<String>,
}

/// The tenant's audit trail: every event of the tenant seen on the bus, newest first.
///
/// Except the two whose every occurrence is kept in full elsewhere:
/// `webhook.delivered` (the subscription's delivery history, with every
/// attempt) and `webhook.received` (the endpoint's received events, raw, at
/// `/api/v1/webhooks/endpoints/{id}/events`). What processing a received
/// webhook publishes (`load.status_updated`, `webhook.processed`, …) is here.
#[utoipa::path(get, path = "/api/v1/audit-log", tag = "tenant", security(("api_key" = [], "tenant" = [])),
    params(AuditFilter, ListParams), responses((status = 200, body = AuditPage)))]
pub async fn audit_log(
    tenant: Tenant,
    ctx: web::Data<Context>,
    ListQuery { filter: q, paging }: ListQuery<AuditFilter>,
) -> Result<HttpResponse, ApiError> {
    let (event_type, before) = (q.event_type.as_deref(), paging.cursor);
    let rows =
        hub_storage::audit::list(&ctx.pool, tenant.id, event_type, before, paging.fetch()).await?;
    Ok(HttpResponse::Ok().json(paging.page_of(rows)))
}
