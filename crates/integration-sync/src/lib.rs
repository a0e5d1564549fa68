//! integration-sync: the sync engine (port 3052).
//!
//! For now it runs the shared platform (health, readiness, metrics, the outbox
//! relay); sync jobs, conflict resolution and the scheduler build on it.

use hub_platform::server::{Service, Started};
use std::sync::Arc;
use utoipa::OpenApi;

/// The service's name (queue, logs, metrics).
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
        start: Box::new(|_| Box::pin(async { Ok(Started::routes(Arc::new(|_, _| {}))) })),
    }
}

/// Builds the service for `config` (what `main` and the tests run).
pub async fn build(
    config: hub_platform::Config,
) -> Result<hub_platform::ServiceApp, hub_platform::StartupError> {
    hub_platform::ServiceApp::build(service(), config).await
}
