//! HTTP routes of the manager, one module per resource:
//!
//! - [`admin`]: the operator API (tenants, API keys);
//! - [`dead_letters`]: the operator's view of the bus's dead letters, re-drive
//!   and delete;
//! - [`tenant`]: the calling tenant (`/me`) and its audit trail;
//! - [`integrations`]: the provider catalog and the tenant's integrations;
//! - [`subscriptions`]: OUTBOUND webhooks, the subscriptions the dispatcher
//!   delivers events to, with their delivery history and replay;
//! - [`inbound_endpoints`]: INBOUND webhooks, the endpoints providers call,
//!   with their received events and the public route itself
//!   ([`inbound_endpoints::receive`]).
//!
//! A resource folder keeps its handlers in `mod.rs`, its request and response
//! types in `body.rs` and the validation of its create/update body in
//! `input.rs`. What they share is here: [`list`] (paging) and [`patch`]
//! (update bodies), and the transaction and event helpers below.

pub mod admin;
pub mod api_logs;
pub mod dead_letters;
pub mod inbound_endpoints;
pub mod integrations;
pub mod list;
pub mod oauth;
pub mod patch;
pub mod proxy;
pub mod subscriptions;
pub mod sync_jobs;
pub mod tenant;
pub mod transformations;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures::future::LocalBoxFuture;
use hub_domain::{Envelope, EventType, TenantId};
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, ErrorCode};
use hub_platform::server::Context;
use hub_storage::{StorageError, Tx};
use sqlx::PgPool;
use utoipa::OpenApi;
use uuid::Uuid;

/// The manager's OpenAPI document (service routes).
#[derive(OpenApi)]
#[openapi(
    paths(
        admin::create_tenant, admin::list_tenants, admin::get_tenant,
        admin::create_api_key, admin::list_api_keys, admin::revoke_api_key,
        dead_letters::overview, dead_letters::list, dead_letters::get, dead_letters::redrive,
        dead_letters::delete, dead_letters::delete_one,
        tenant::me, tenant::audit_log,
        integrations::list_providers, integrations::get_provider, integrations::set_visibility,
        integrations::create, integrations::list, integrations::get, integrations::update, integrations::delete,
        integrations::test, integrations::enable, integrations::disable, integrations::health,
        integrations::stats, proxy::proxy,
        oauth::authorize, oauth::callback, oauth::refresh,
        subscriptions::create, subscriptions::list, subscriptions::get, subscriptions::update,
        subscriptions::delete, subscriptions::secret, subscriptions::rotate_secret,
        subscriptions::test, subscriptions::deliveries, subscriptions::delivery, subscriptions::replay,
        inbound_endpoints::create, inbound_endpoints::list, inbound_endpoints::get, inbound_endpoints::update,
        inbound_endpoints::delete, inbound_endpoints::rotate_secret, inbound_endpoints::events,
        inbound_endpoints::replay, inbound_endpoints::receive::receive,
        api_logs::search, api_logs::get, api_logs::integration_logs,
        transformations::create, transformations::list, transformations::get, transformations::update,
        transformations::delete, transformations::copy, transformations::preview, transformations::validate,
        sync_jobs::create, sync_jobs::list, sync_jobs::get, sync_jobs::cancel, sync_jobs::progress,
        sync_jobs::errors, sync_jobs::job_conflicts, sync_jobs::conflicts, sync_jobs::rollback,
        sync_jobs::resolve,
    ),
    components(schemas(
        // Rows shown as stored: Tenant is `TenantBody`, ApiKey `ApiKeyBody`,
        // AuditEntry `AuditEntryBody`, Provider `ProviderBody`, Integration
        // `IntegrationBody`, Attempt `AttemptBody`, EventRow `EventBody`.
        hub_storage::tenants::Tenant, admin::CreateTenant, hub_storage::tenants::ApiKey, admin::CreateApiKey,
        admin::CreatedApiKey, admin::TenantPage, dead_letters::QueueCounts, dead_letters::DeadLetterOverview,
        dead_letters::DeadLetterSummary, dead_letters::DeadLetterList, dead_letters::DeadLetterDetail,
        dead_letters::DeadLetterFilter, dead_letters::Moved, tenant::Me, hub_storage::audit::AuditEntry, tenant::AuditPage,
        hub_storage::providers::Provider, hub_storage::integrations::Integration, integrations::body::IntegrationInput,
        integrations::body::TestResult, integrations::body::Visibility, crate::credentials::CredentialsInput,
        oauth::body::AuthorizeInput, oauth::body::AuthorizeAnswer, oauth::body::Connected, oauth::body::Refreshed,
        subscriptions::body::SubscriptionBody, subscriptions::body::CreatedSubscription,
        subscriptions::body::SubscriptionInput, subscriptions::body::SecretBody, subscriptions::body::RotateInput,
        hub_storage::deliveries::Attempt, subscriptions::body::DeliveryBody, subscriptions::body::ReplayInput,
        subscriptions::body::ReplayResult, subscriptions::body::DeliveryTestResult,
        inbound_endpoints::body::EndpointBody, inbound_endpoints::body::EndpointInput,
        inbound_endpoints::body::EndpointRotateInput, hub_storage::inbound_events::EventRow,
        inbound_endpoints::body::EndpointReplayInput,
        hub_storage::api_logs::LogSummary, hub_storage::api_logs::LogDetail, api_logs::body::LogPage,
        hub_storage::transformations::Template, transformations::body::TemplateInput,
        transformations::body::PreviewInput, transformations::body::ValidateInput, transformations::body::Issue,
        transformations::body::PreviewResult, transformations::body::ValidateResult,
        hub_storage::sync::Job, hub_storage::sync::ConflictRow, hub_storage::sync::ItemError,
        sync_jobs::JobInput, sync_jobs::JobProgress, sync_jobs::FileInput, sync_jobs::ResolveInput,
    )),
    modifiers(&FlattenedBodies),
    tags(
        (name = "admin", description = "Operator API: tenants, API keys and the bus's dead letters (HUB_ADMIN_TOKEN)"),
        (name = "tenant", description = "The calling tenant"),
        (name = "integrations", description = "Provider catalog and tenant integrations"),
        (name = "webhooks", description = "Outbound subscriptions (deliveries, replay) and inbound endpoints (received events)"),
        (name = "api-logs", description = "Request logs: every call to a provider and every inbound webhook request, redacted"),
        (name = "transformations", description = "Transformation templates (system and the tenant's, versioned), preview and validate"),
        (name = "sync", description = "Sync jobs (run by integration-sync), their progress, errors and conflicts"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// Makes each schema that is an `allOf` of inline objects one object: a
/// body that shows its row flattened (`#[serde(flatten)]`, `#[schema(inline)]`)
/// next to the fields it computes is documented as if declared in one
/// piece, with every property and requirement of its parts.
struct FlattenedBodies;

impl utoipa::Modify for FlattenedBodies {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, Schema};
        let Some(components) = doc.components.as_mut() else {
            return;
        };
        for schema in components.schemas.values_mut() {
            let RefOr::T(Schema::AllOf(all)) = &*schema else {
                continue;
            };
            let description = all.description.clone();
            let Some(mut merged) = merge_inline(schema) else {
                continue;
            };
            merged.description = description;
            *schema = RefOr::T(Schema::Object(merged));
        }
    }
}

/// An inline object, or an `allOf` of them (nested as utoipa nests a
/// documented flattened field), as one object; `None` for anything else
/// (a `$ref` stays a composition).
fn merge_inline(
    schema: &utoipa::openapi::RefOr<utoipa::openapi::Schema>,
) -> Option<utoipa::openapi::schema::Object> {
    use utoipa::openapi::{RefOr, Schema};
    match schema {
        RefOr::T(Schema::Object(o)) => Some(o.clone()),
        RefOr::T(Schema::AllOf(all)) => {
            let mut parts = all.items.iter().map(merge_inline);
            let mut merged = parts.next()??;
            for o in parts {
                let o = o?;
                merged.properties.extend(o.properties);
                merged.required.extend(o.required);
            }
            Some(merged)
        }
        _ => None,
    }
}

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/api/v1/admin").configure(admin_routes))
        // Before the `/api/v1` scope, which would otherwise take it.
        .service(
            web::resource("/api/v1/integrations/{id}/proxy/{path:.*}")
                .route(web::route().to(proxy::proxy)),
        )
        .service(
            web::scope("/api/v1")
                .route("/me", web::get().to(tenant::me))
                .route("/audit-log", web::get().to(tenant::audit_log))
                .configure(api_logs::routes)
                .configure(integration_routes)
                .configure(subscription_routes)
                .configure(transformation_routes)
                .configure(sync_jobs::routes)
                .service(endpoint_routes()),
        )
        // Public: the provider's redirect; the state is the credential.
        .route("/oauth/callback", web::get().to(oauth::callback))
        // Public: providers authenticate with their signature.
        .route(
            "/webhooks/{tenant}/{path}",
            web::post().to(inbound_endpoints::receive::receive),
        );
}

fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/tenants", web::post().to(admin::create_tenant))
        .route("/tenants", web::get().to(admin::list_tenants))
        .route("/tenants/{id}", web::get().to(admin::get_tenant))
        .route(
            "/tenants/{id}/api-keys",
            web::post().to(admin::create_api_key),
        )
        .route(
            "/tenants/{id}/api-keys",
            web::get().to(admin::list_api_keys),
        )
        .route(
            "/tenants/{id}/api-keys/{key_id}",
            web::delete().to(admin::revoke_api_key),
        )
        .route(
            "/tenants/{id}/providers/{code}/visibility",
            web::put().to(integrations::set_visibility),
        )
        .configure(dead_letters::configure);
}

fn integration_routes(cfg: &mut web::ServiceConfig) {
    use integrations::*;
    // The catalog first: `providers` is not an integration id.
    cfg.route("/integrations/providers", web::get().to(list_providers))
        .route(
            "/integrations/providers/{code}",
            web::get().to(get_provider),
        )
        .service(
            web::scope("/integrations")
                .route("", web::get().to(list))
                .route("", web::post().to(create))
                .route("/{id}", web::get().to(get))
                .route("/{id}", web::put().to(update))
                .route("/{id}", web::delete().to(delete))
                .route("/{id}/test", web::post().to(test))
                .route("/{id}/enable", web::post().to(enable))
                .route("/{id}/disable", web::post().to(disable))
                .route("/{id}/health", web::get().to(health))
                .route("/{id}/stats", web::get().to(stats))
                .route("/{id}/oauth/authorize", web::post().to(oauth::authorize))
                .route("/{id}/refresh-oauth", web::post().to(oauth::refresh)),
        );
}

fn subscription_routes(cfg: &mut web::ServiceConfig) {
    use subscriptions::*;
    // `/webhooks` lists and creates outbound subscriptions too (an alias).
    cfg.route("/webhooks", web::get().to(list))
        .route("/webhooks", web::post().to(create))
        .service(
            web::scope("/webhooks/subscriptions")
                .route("", web::get().to(list))
                .route("", web::post().to(create))
                .route("/{id}", web::get().to(get))
                .route("/{id}", web::put().to(update))
                .route("/{id}", web::delete().to(delete))
                .route("/{id}/secret", web::get().to(secret))
                .route("/{id}/rotate-secret", web::post().to(rotate_secret))
                .route("/{id}/test", web::post().to(test))
                .route("/{id}/deliveries", web::get().to(deliveries))
                .route("/{id}/deliveries/{delivery_id}", web::get().to(delivery))
                .route("/{id}/replay", web::post().to(replay)),
        );
}

fn transformation_routes(cfg: &mut web::ServiceConfig) {
    use transformations::*;
    cfg.service(
        web::scope("/transformations")
            .route("", web::get().to(list))
            .route("", web::post().to(create))
            .route("/preview", web::post().to(preview))
            .route("/validate", web::post().to(validate))
            .route("/{id}", web::get().to(get))
            .route("/{id}", web::put().to(update))
            .route("/{id}", web::delete().to(delete))
            .route("/{id}/copy", web::post().to(copy)),
    );
}

fn endpoint_routes() -> actix_web::Scope {
    use inbound_endpoints::*;
    web::scope("/webhooks/endpoints")
        .route("", web::get().to(list))
        .route("", web::post().to(create))
        .route("/{id}", web::get().to(get))
        .route("/{id}", web::put().to(update))
        .route("/{id}", web::delete().to(delete))
        .route("/{id}/rotate-secret", web::post().to(rotate_secret))
        .route("/{id}/events", web::get().to(events))
        .route("/{id}/events/replay", web::post().to(replay))
}

/// A domain event of the manager about `tenant`, carrying the current trace
/// context (what every route writes to the outbox).
pub(crate) fn event(kind: &str, tenant: TenantId, data: serde_json::Value) -> Envelope {
    Envelope::new(
        crate::NAME,
        EventType::parse(kind).expect("static event type"),
        Some(tenant),
        data,
    )
    .with_traceparent(hub_bus::trace::current_traceparent())
}

/// A call to a tenant route: the calling tenant (its API key checked) and
/// the service's context, which every tenant route takes together.
pub struct Call {
    /// The calling tenant and key.
    pub t: Tenant,
    /// The service's context.
    pub ctx: web::Data<Context>,
}

impl FromRequest for Call {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let tenant = Tenant::from_request(req, payload);
        let ctx = web::Data::<Context>::extract(req).into_inner();
        Box::pin(async move {
            Ok(Self {
                t: tenant.await?,
                ctx: ctx?,
            })
        })
    }
}

/// A tenant-owned row the routes read by id: another tenant's row, like a
/// missing one, is a 404 naming it ([`find`], [`find_for_update`]).
pub(crate) trait Owned: Sized {
    /// What a 404 calls it.
    const WHAT: &'static str;

    /// The row `id` of `tenant`.
    async fn get(pool: &PgPool, tenant: TenantId, id: Uuid) -> Result<Option<Self>, StorageError>;

    /// The row `id` of `tenant`, locked for the rest of `tx`.
    async fn get_for_update(
        tx: &mut Tx<'_>,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<Self>, StorageError>;
}

/// `Owned` for a row type whose storage module has `get` and
/// `get_for_update`.
macro_rules! owned {
    ($row:ty, $what:literal, $store:ident) => {
        impl Owned for $row {
            const WHAT: &'static str = $what;

            async fn get(
                pool: &PgPool,
                tenant: TenantId,
                id: Uuid,
            ) -> Result<Option<Self>, StorageError> {
                hub_storage::$store::get(pool, tenant, id).await
            }

            async fn get_for_update(
                tx: &mut Tx<'_>,
                tenant: TenantId,
                id: Uuid,
            ) -> Result<Option<Self>, StorageError> {
                hub_storage::$store::get_for_update(tx, tenant, id).await
            }
        }
    };
}

owned!(
    hub_storage::integrations::Integration,
    "integration",
    integrations
);
owned!(
    hub_storage::subscriptions::Subscription,
    "subscription",
    subscriptions
);
owned!(
    hub_storage::webhook_endpoints::Endpoint,
    "webhook endpoint",
    webhook_endpoints
);

/// The tenant's row `id`, or a 404.
pub(crate) async fn find<R: Owned>(ctx: &Context, t: &Tenant, id: Uuid) -> Result<R, ApiError> {
    R::get(&ctx.pool, t.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(R::WHAT))
}

/// The tenant's row `id`, locked for the rest of `tx`, or a 404.
pub(crate) async fn find_for_update<R: Owned>(
    tx: &mut Tx<'_>,
    t: &Tenant,
    id: Uuid,
) -> Result<R, ApiError> {
    R::get_for_update(tx, t.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(R::WHAT))
}

/// Begins a transaction.
pub(crate) async fn begin(ctx: &Context) -> Result<Tx<'static>, ApiError> {
    Ok(ctx.pool.begin().await.map_err(StorageError::from)?)
}

/// Commits `tx`.
pub(crate) async fn commit(tx: Tx<'_>) -> Result<(), ApiError> {
    Ok(tx.commit().await.map_err(StorageError::from)?)
}

/// Writes the event `kind` about `tenant` to the outbox in `tx`.
pub(crate) async fn emit(
    tx: &mut Tx<'_>,
    kind: &str,
    tenant: TenantId,
    data: serde_json::Value,
) -> Result<(), ApiError> {
    Ok(hub_storage::outbox::enqueue(tx, &[event(kind, tenant, data)]).await?)
}

/// A JSON body that may be absent (empty means all defaults), with the
/// framework's `invalid_json` errors.
pub(crate) fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!(
                "invalid JSON body: {}",
                hub_platform::http::redact_values(&e.to_string())
            ),
        )
    })
}

/// Domain error messages start with their field name; the problem's field
/// member already says it.
pub(crate) fn strip_field(msg: &str) -> String {
    match msg.split_once(": ") {
        Some((head, rest)) if !head.contains(' ') => rest.to_owned(),
        _ => msg.to_owned(),
    }
}
