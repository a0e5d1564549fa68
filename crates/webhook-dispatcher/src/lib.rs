//! webhook-dispatcher: outbound delivery (port 3027).
//!
//! Consumes domain events from the bus and stores each once in `events`: the
//! intake that outbound fan-out (subscriptions, signing, retries, circuit
//! breaker) builds on.

pub mod intake;

use hub_platform::server::Service;
use std::sync::Arc;
use utoipa::OpenApi;

/// The service's name (queue, logs, metrics).
pub const NAME: &str = "webhook-dispatcher";
/// The default port.
pub const PORT: u16 = 3027;

/// The dispatcher's OpenAPI document (service routes).
#[derive(OpenApi)]
#[openapi(tags((name = "operations", description = "Health, readiness, metrics")))]
pub struct ApiDoc;

/// The service description `ServiceApp::build` serves.
pub fn service() -> Service {
    Service {
        name: NAME,
        openapi: ApiDoc::openapi(),
        configure: Arc::new(|_, _| {}),
        handler: Some(Arc::new(intake::EventIntake)),
        tasks: Vec::new(),
        init: Vec::new(),
    }
}

/// Builds the service for `config` (what `main` and the tests run).
pub async fn build(
    config: hub_platform::Config,
) -> Result<hub_platform::ServiceApp, hub_platform::StartupError> {
    hub_platform::ServiceApp::build(service(), config).await
}
