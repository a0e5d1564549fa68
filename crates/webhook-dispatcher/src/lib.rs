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
use std::sync::{Arc, OnceLock};
use utoipa::OpenApi;

/// The service's name (queue, logs, metrics).
pub const NAME: &str = hub_domain::webhook::DISPATCHER;
/// The default port.
pub const PORT: u16 = 3027;

/// The dispatcher's OpenAPI document (service routes).
#[derive(OpenApi)]
#[openapi(
    paths(api::submit),
    components(schemas(api::Accepted, api::AcceptedBatch)),
    tags(
        (name = "events", description = "Submit domain events for outbound delivery"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// What the routes, the bus intake and the workers share, made at start-up.
struct Runtime {
    dispatcher: Arc<worker::Dispatcher>,
    intake: api::Intake,
    writers: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The service description `ServiceApp::build` serves.
pub fn service() -> Service {
    let runtime: Arc<OnceLock<Runtime>> = Arc::default();
    let dispatcher: Arc<OnceLock<Arc<worker::Dispatcher>>> = Arc::default();
    let (for_routes, for_workers, for_init) = (runtime.clone(), runtime.clone(), runtime);
    let for_intake = dispatcher.clone();
    let bindings: Arc<intake::Bindings> = Arc::default();
    let (bindings_for_init, bindings_for_task) = (bindings.clone(), bindings.clone());
    Service {
        name: NAME,
        openapi: ApiDoc::openapi(),
        configure: Arc::new(move |_, cfg| {
            // Set by the init step, which runs before the server starts.
            if let Some(rt) = for_routes.get() {
                cfg.app_data(actix_web::web::Data::new(rt.intake.clone()));
            }
            api::configure(cfg)
        }),
        handler: Some(Arc::new(intake::EventIntake::new(for_intake, bindings))),
        tasks: vec![
            Box::new(move |ctx| {
                Box::pin(async move {
                    let Some(rt) = for_workers.get() else { return };
                    rt.dispatcher.clone().run(ctx.shutdown.clone()).await;
                    let writers = rt.writers.lock().expect("writers").take();
                    if let Some(w) = writers {
                        let _ = w.await;
                    }
                })
            }),
            Box::new(move |ctx| Box::pin(intake::keep(bindings_for_task, ctx))),
            Box::new(|ctx| {
                Box::pin(worker::upkeep(
                    ctx.pool.clone(),
                    ctx.config.webhook_retention_days,
                    ctx.shutdown.clone(),
                ))
            }),
        ],
        init: vec![Box::new(move |ctx| {
            Box::pin(async move {
                ctx.config.keyring().map_err(|e| e.to_string())?;
                // The queue is declared with these once init is done.
                bindings_for_init
                    .load(&ctx.pool)
                    .await
                    .map_err(|e| format!("could not read the subscriptions' event types: {e}"))?;
                let d = worker::Dispatcher::new(&ctx)?;
                let (intake, writers) =
                    api::intake(ctx.pool.clone(), d.clone(), ctx.shutdown.clone());
                let _ = dispatcher.set(d.clone());
                let _ = for_init.set(Runtime {
                    dispatcher: d,
                    intake,
                    writers: std::sync::Mutex::new(Some(writers)),
                });
                Ok(())
            })
        })],
    }
}

/// Builds the service for `config` (what `main` and the tests run).
pub async fn build(
    config: hub_platform::Config,
) -> Result<hub_platform::ServiceApp, hub_platform::StartupError> {
    hub_platform::ServiceApp::build(service(), config).await
}
