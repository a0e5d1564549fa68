//! webhook-dispatcher: outbound delivery (port 3027).
//!
//! Takes domain events from the bus ([`intake`]) and over HTTP ([`api`]),
//! fans each out to the matching subscriptions ([`fanout`]), and delivers
//! them with signing, retries and a circuit breaker ([`worker`]).

pub mod api;
pub mod fanout;
pub mod intake;
pub mod worker;

use hub_platform::server::{Context, Service, Started};
use std::sync::Arc;
use utoipa::OpenApi;

/// The service's name (queue, logs, metrics).
pub const NAME: &str = hub_domain::webhook::DISPATCHER;
/// The default port.
pub const PORT: u16 = 3027;

/// The dispatcher's OpenAPI document (service routes).
#[derive(OpenApi)]
#[openapi(
    paths(api::submit),
    components(schemas(api::Accepted, api::AcceptedBatch, api::AcceptedAnswer)),
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
        start: Box::new(|ctx| Box::pin(start(ctx))),
    }
}

/// Builds the dispatcher's state once (its subscriptions' bindings, the
/// delivery workers with their keyring and sender, the HTTP intake's writers)
/// and returns the routes, the bus intake and the loops that share it.
async fn start(ctx: Context) -> Result<Started, String> {
    let dispatcher = worker::Dispatcher::new(&ctx)?;
    // The queue is declared with these once start-up is done.
    let bindings: Arc<intake::Bindings> = Arc::default();
    bindings
        .load(&ctx.pool)
        .await
        .map_err(|e| format!("could not read the subscriptions' event types: {e}"))?;
    let (api_intake, writers) =
        api::intake(ctx.pool.clone(), dispatcher.clone(), ctx.shutdown.clone());
    let api_intake = actix_web::web::Data::new(api_intake);
    let handler = intake::EventIntake::new(dispatcher.clone(), bindings.clone());
    Ok(Started {
        configure: Arc::new(move |_, cfg| {
            cfg.app_data(api_intake.clone());
            api::configure(cfg)
        }),
        handler: Some(Arc::new(handler)),
        tasks: vec![
            Box::new(move |ctx| {
                Box::pin(async move {
                    dispatcher.run(ctx.shutdown.clone()).await;
                    let _ = writers.await;
                })
            }),
            Box::new(move |ctx| Box::pin(intake::keep(bindings, ctx))),
            Box::new(|ctx| {
                Box::pin(worker::upkeep(
                    ctx.pool.clone(),
                    ctx.config.webhook_retention_days,
                    ctx.shutdown.clone(),
                ))
            }),
        ],
    })
}

/// Builds the service for `config` (what `main` and the tests run).
pub async fn build(
    config: hub_platform::Config,
) -> Result<hub_platform::ServiceApp, hub_platform::StartupError> {
    hub_platform::ServiceApp::build(service(), config).await
}
