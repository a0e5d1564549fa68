//! HTTP routes of the manager.

pub mod admin;
pub mod endpoints;
pub mod integrations;
pub mod receive;
pub mod tenant;
pub mod webhooks;

use actix_web::web;
use hub_domain::{Envelope, EventType, TenantId};
use utoipa::OpenApi;

/// The manager's OpenAPI document (service routes).
#[derive(OpenApi)]
#[openapi(
    paths(
        admin::create_tenant, admin::list_tenants, admin::get_tenant,
        admin::create_api_key, admin::list_api_keys, admin::revoke_api_key,
        tenant::me, tenant::audit_log,
        integrations::list_providers, integrations::get_provider, integrations::set_visibility,
        integrations::create, integrations::list, integrations::get, integrations::update, integrations::delete,
        integrations::test, integrations::enable, integrations::disable, integrations::health, integrations::stats,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete, webhooks::secret,
        webhooks::rotate_secret, webhooks::test, webhooks::deliveries, webhooks::delivery, webhooks::replay,
        endpoints::create, endpoints::list, endpoints::get, endpoints::update, endpoints::delete,
        endpoints::rotate_secret, endpoints::events, endpoints::replay, receive::receive,
    ),
    components(schemas(
        admin::TenantBody, admin::CreateTenant, admin::ApiKeyBody, admin::CreateApiKey, admin::CreatedApiKey,
        admin::TenantPage, tenant::Me, tenant::AuditEntryBody, tenant::AuditPage,
        integrations::ProviderBody, integrations::IntegrationBody, integrations::IntegrationInput,
        integrations::TestResult, integrations::Visibility, crate::credentials::CredentialsInput,
        webhooks::SubscriptionBody, webhooks::CreatedSubscription, webhooks::SubscriptionInput, webhooks::SecretBody,
        webhooks::RotateInput, webhooks::AttemptBody, webhooks::DeliveryBody, webhooks::ReplayInput,
        webhooks::ReplayResult, webhooks::DeliveryTestResult,
        endpoints::EndpointBody, endpoints::EndpointInput, endpoints::EndpointRotateInput, endpoints::EventBody, endpoints::EndpointReplayInput,
    )),
    tags(
        (name = "admin", description = "Operator API: tenants and API keys (HUB_ADMIN_TOKEN)"),
        (name = "tenant", description = "The calling tenant"),
        (name = "integrations", description = "Provider catalog and tenant integrations"),
        (name = "webhooks", description = "Outbound subscriptions (deliveries, replay) and inbound endpoints (received events)"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/admin")
            .route("/tenants", web::post().to(admin::create_tenant))
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
            ),
    )
    .service(
        web::scope("/api/v1")
            .route("/me", web::get().to(tenant::me))
            .route("/audit-log", web::get().to(tenant::audit_log))
            // The catalog first: `providers` is not an integration id.
            .route(
                "/integrations/providers",
                web::get().to(integrations::list_providers),
            )
            .route(
                "/integrations/providers/{code}",
                web::get().to(integrations::get_provider),
            )
            .route("/integrations", web::get().to(integrations::list))
            .route("/integrations", web::post().to(integrations::create))
            .route("/integrations/{id}", web::get().to(integrations::get))
            .route("/integrations/{id}", web::put().to(integrations::update))
            .route("/integrations/{id}", web::delete().to(integrations::delete))
            .route(
                "/integrations/{id}/test",
                web::post().to(integrations::test),
            )
            .route(
                "/integrations/{id}/enable",
                web::post().to(integrations::enable),
            )
            .route(
                "/integrations/{id}/disable",
                web::post().to(integrations::disable),
            )
            .route(
                "/integrations/{id}/health",
                web::get().to(integrations::health),
            )
            .route(
                "/integrations/{id}/stats",
                web::get().to(integrations::stats),
            )
            // `/webhooks` lists and creates subscriptions too (an alias).
            .route("/webhooks", web::get().to(webhooks::list))
            .route("/webhooks", web::post().to(webhooks::create))
            .service(
                web::scope("/webhooks/subscriptions")
                    .route("", web::get().to(webhooks::list))
                    .route("", web::post().to(webhooks::create))
                    .route("/{id}", web::get().to(webhooks::get))
                    .route("/{id}", web::put().to(webhooks::update))
                    .route("/{id}", web::delete().to(webhooks::delete))
                    .route("/{id}/secret", web::get().to(webhooks::secret))
                    .route(
                        "/{id}/rotate-secret",
                        web::post().to(webhooks::rotate_secret),
                    )
                    .route("/{id}/test", web::post().to(webhooks::test))
                    .route("/{id}/deliveries", web::get().to(webhooks::deliveries))
                    .route(
                        "/{id}/deliveries/{delivery_id}",
                        web::get().to(webhooks::delivery),
                    )
                    .route("/{id}/replay", web::post().to(webhooks::replay)),
            )
            .route("/webhooks/endpoints", web::get().to(endpoints::list))
            .route("/webhooks/endpoints", web::post().to(endpoints::create))
            .route("/webhooks/endpoints/{id}", web::get().to(endpoints::get))
            .route("/webhooks/endpoints/{id}", web::put().to(endpoints::update))
            .route(
                "/webhooks/endpoints/{id}",
                web::delete().to(endpoints::delete),
            )
            .route(
                "/webhooks/endpoints/{id}/rotate-secret",
                web::post().to(endpoints::rotate_secret),
            )
            .route(
                "/webhooks/endpoints/{id}/events",
                web::get().to(endpoints::events),
            )
            .route(
                "/webhooks/endpoints/{id}/events/replay",
                web::post().to(endpoints::replay),
            ),
    )
    // Public: providers authenticate with their signature.
    .route(
        "/webhooks/{tenant}/{path}",
        web::post().to(receive::receive),
    );
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
