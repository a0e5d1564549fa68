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
//! last committed page.

pub mod import;
pub mod pull;
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
/// worker loop that uses it.
async fn start(ctx: hub_platform::server::Context) -> Result<Started, String> {
    let engine = Arc::new(worker::Engine::new(&ctx)?);
    let mut started = Started::routes(Arc::new(|_, _| {}));
    started.handler = Some(Arc::new(Consumer {
        engine: engine.clone(),
    }));
    let stopping = engine.clone();
    started.tasks = vec![
        Box::new(move |ctx| Box::pin(worker::run(ctx, engine))),
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

/// The service's consumer: inbound webhooks that update synced records
/// ([`webhooks`]). (A minimal handler until the scheduler's consumer, which
/// also takes triggers, joins it.)
struct Consumer {
    engine: Arc<worker::Engine>,
}

#[async_trait::async_trait]
impl hub_bus::Handler for Consumer {
    fn bindings(&self) -> Vec<String> {
        webhooks::BINDINGS.iter().map(|b| (*b).to_owned()).collect()
    }

    fn wants_type(&self, event_type: &str) -> bool {
        webhooks::BINDINGS.contains(&event_type) || event_type == "webhook.received"
    }

    async fn handle(
        &self,
        tx: &mut hub_storage::Tx<'_>,
        event: &hub_domain::Envelope,
    ) -> Result<(), hub_bus::HandlerError> {
        // Publishing waits for the commit: see `handle_committing`.
        webhooks::on_webhook(&self.engine, tx, event)
            .await
            .map(drop)
    }

    async fn handle_committing(
        &self,
        tx: &mut hub_storage::Tx<'_>,
        events: &[hub_domain::Envelope],
    ) -> Result<Option<hub_bus::consumer::AfterCommit>, hub_bus::HandlerError> {
        let mut staged = Vec::new();
        for e in events {
            if let Some(s) = webhooks::on_webhook(&self.engine, tx, e).await? {
                staged.push(s);
            }
        }
        if staged.is_empty() {
            return Ok(None);
        }
        Ok(Some(Box::new(move || {
            for s in staged {
                s.publish();
            }
        })))
    }
}
