//! integration-sync: the sync engine (port 3052).
//!
//! Jobs are rows in `sync_jobs` (created through integration-manager's
//! `/api/v1/sync-jobs`); the [`worker`] claims them under a lease and runs
//! them: pages are read from the provider through the API gateway (rate
//! limits, breaker, retries, request logs) as the provider's manifest says
//! (`hub_connectors::sync`), each record is checked against the entity's
//! schema, mapped with its transformation template and written with the
//! page's progress in one transaction ([`pull`]). A worker killed mid-job
//! leaves a lease that lapses; another claims the job and resumes from its
//! last committed page. Platform events (`invoice.generated`, …) become
//! local changes of the integrations that export them ([`triggers`]), and
//! EXPORT jobs push them to the providers ([`export`]).
//!
//! The [`scheduler`] creates the jobs of integrations whose `sync_frequency`
//! says a sync is due (one replica at a time), emits the platform's periodic
//! ticks and prunes old jobs; [`consume`] handles the events the service's
//! queue receives.

pub mod consume;
pub mod export;
pub mod import;
pub mod pull;
pub mod scheduler;
pub mod triggers;
pub mod webhooks;
pub mod worker;

use hub_platform::server::{Service, Started};
use std::sync::Arc;
use utoipa::OpenApi;

/// The service's name (queue, logs, metrics, events' `source`).
pub const NAME: &str = "integration-sync";
/// The default port.
pub const PORT: u16 = 3052;

/// The sync service's OpenAPI document (service routes).
#[derive(OpenApi)]
#[openapi(tags((name = "operations", description = "Health, readiness, metrics")))]
pub struct ApiDoc;

/// The service description `ServiceApp::build` serves.
pub fn service() -> Service {
    Service {
        name: NAME,
        openapi: ApiDoc::openapi(),
        start: Box::new(|ctx| Box::pin(start(ctx))),
    }
}

/// Builds the engine once (gateway, templates, request log) and returns the
/// worker loop that uses it, the scheduler and the event consumer.
async fn start(ctx: hub_platform::server::Context) -> Result<Started, String> {
    let engine = Arc::new(worker::Engine::new(&ctx)?);
    let scheduler = Arc::new(scheduler::Scheduler::new(&ctx));
    let mut started = Started::routes(Arc::new(|_, _| {}));
    started.handler = Some(Arc::new(consume::Consumer::new(
        scheduler.clone(),
        engine.clone(),
        triggers::Triggers::new()?,
    )));
    let stopping = engine.clone();
    started.tasks = vec![
        Box::new(move |ctx| Box::pin(worker::run(ctx, engine))),
        Box::new(move |ctx| Box::pin(scheduler::run(ctx, scheduler))),
        Box::new(move |ctx| {
            Box::pin(async move {
                ctx.shutdown.cancelled().await;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                stopping.stop_logs().await;
            })
        }),
    ];
    Ok(started)
}

/// Builds the service for `config` (what `main` and the tests run).
pub async fn build(
    config: hub_platform::Config,
) -> Result<hub_platform::ServiceApp, hub_platform::StartupError> {
    hub_platform::ServiceApp::build(service(), config).await
}
