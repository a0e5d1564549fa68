//! webhook-dispatcher: outbound delivery (port 3027).
//!
//! Takes domain events from the bus ([`intake`]) and over HTTP ([`api`]),
//! fans each out to the matching subscriptions ([`fanout`]), and delivers
//! them with signing, retries and a circuit breaker ([`worker`]).

pub mod api;
pub mod fanout;
pub mod intake;
pub mod worker;

use hub_platform::server::Service;
use std::sync::Arc;
use utoipa::OpenApi;

/// The service's name (queue, logs, metrics).
pub const NAME: &str = "webhook-dispatcher";
/// The default port.
pub const PORT: u16 = 3027;

/// The dispatcher's OpenAPI document (service routes).
#[derive(OpenApi)]
#[openapi(
    paths(api::submit),
    components(schemas(api::Accepted)),
    tags(
        (name = "events", description = "Submit domain events for outbound delivery"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// The service description `ServiceApp::build` serves.
pub fn service() -> Service {
    Service {
        name: NAME,
        openapi: ApiDoc::openapi(),
        configure: Arc::new(|_, cfg| api::configure(cfg)),
        handler: Some(Arc::new(intake::EventIntake)),
        tasks: vec![
            Box::new(|ctx| {
                Box::pin(async move {
                    match worker::Dispatcher::new(&ctx) {
                        Ok(d) => d.run(ctx.shutdown.clone()).await,
                        Err(e) => tracing::error!(error = %e, "delivery workers cannot start"),
                    }
                })
            }),
            Box::new(|ctx| {
                Box::pin(worker::upkeep(
                    ctx.pool.clone(),
                    ctx.config.webhook_retention_days,
                    ctx.shutdown.clone(),
                ))
            }),
        ],
        init: vec![Box::new(|ctx| {
            Box::pin(async move { ctx.config.keyring().map(|_| ()).map_err(|e| e.to_string()) })
        })],
    }
}

/// Builds the service for `config` (what `main` and the tests run).
pub async fn build(
    config: hub_platform::Config,
) -> Result<hub_platform::ServiceApp, hub_platform::StartupError> {
    hub_platform::ServiceApp::build(service(), config).await
}
