//! integration-manager: the hub's front door (port 3026).
//!
//! Owns the tenant-facing and operator APIs, inbound webhooks and the audit
//! trail of events other systems publish (`#` on the entry exchange). Routes live in [`routes`]; everything shared
//! with the other services comes from `hub-platform`.

pub mod audit;
pub mod credentials;
pub mod inbound;
pub mod rotation;
pub mod routes;
pub mod state;

use hub_platform::server::Service;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::task::JoinHandle;
use utoipa::OpenApi;

/// The service's name (queue, logs, metrics).
pub const NAME: &str = "integration-manager";
/// The default port.
pub const PORT: u16 = 3026;

/// The service description `ServiceApp::build` serves.
pub fn service() -> Service {
    // One group-commit writer (started by the init step, before the server)
    // and one endpoint cache per service, shared by every HTTP worker.
    type Writers = (inbound::writer::Writer, Mutex<Option<JoinHandle<()>>>);
    let writer: Arc<OnceLock<Writers>> = Arc::default();
    let (for_routes, for_task, for_init) = (writer.clone(), writer.clone(), writer);
    let cache = Arc::new(inbound::EndpointCache::default());
    Service {
        name: NAME,
        openapi: routes::ApiDoc::openapi(),
        configure: Arc::new(move |ctx, cfg| {
            // Validated at start-up (init below), so this cannot fail here.
            if let (Ok(st), Some((writer, _))) =
                (state::Integrations::new(&ctx.config), for_routes.get())
            {
                cfg.app_data(actix_web::web::Data::new(inbound::Inbound {
                    keyring: st.keyring.clone(),
                    trusted_proxies: Arc::new(ctx.config.trusted_proxies()),
                    max_body: ctx.config.hub_inbound_max_body,
                    writer: writer.clone(),
                    cache: cache.clone(),
                    policy: Arc::new(inbound::worker::Policy::of(&ctx.config)),
                }));
                cfg.app_data(actix_web::web::Data::new(st));
            }
            if let Ok(st) = routes::webhooks::Webhooks::new(&ctx.config) {
                cfg.app_data(actix_web::web::Data::new(st));
            }
            routes::configure(cfg)
        }),
        handler: Some(Arc::new(audit::AuditTrail)),
        tasks: vec![
            Box::new(move |_| {
                Box::pin(async move {
                    // The writers stop shortly after shutdown; wait for them.
                    let done = for_task.get().and_then(|(_, h)| h.lock().ok()?.take());
                    if let Some(h) = done {
                        let _ = h.await;
                    }
                })
            }),
            Box::new(|ctx| Box::pin(inbound::worker::run(ctx))),
        ],
        init: vec![Box::new(move |ctx| {
            Box::pin(async move {
                state::Integrations::new(&ctx.config)?;
                let (writer, done) = inbound::writer::Writer::spawn(&ctx);
                let _ = for_init.set((writer, Mutex::new(Some(done))));
                let changed = state::load_catalog(&ctx.pool).await?;
                tracing::info!(changed, "provider catalog loaded");
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

/// `integration-manager rotate-key`: re-seals every stored secret under the
/// current `INTEGRATION_ENCRYPTION_KEY` (older keys from
/// `INTEGRATION_ENCRYPTION_KEYS_OLD` open the old ones). Safe while the
/// services run. Exit code 2 on bad configuration, 1 on failure.
pub async fn rotate_key_command() -> std::process::ExitCode {
    use std::process::ExitCode;
    let config = match hub_platform::Config::load(PORT) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rotate-key: {e}");
            return ExitCode::from(2);
        }
    };
    let keyring = match config.keyring() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("rotate-key: {e}");
            return ExitCode::from(2);
        }
    };
    let pool = match hub_storage::pool(&config.database_url, &hub_storage::PoolSettings::default())
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rotate-key: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rotation::rotate_all(&pool, &keyring).await {
        Ok(rotation::Rotated {
            credentials: (rotated, current),
            endpoints: (endpoints, endpoints_current),
        }) => {
            println!(
                "re-sealed {rotated} integration(s) and subscription(s) under key {}; {current} were already current",
                keyring.current_id()
            );
            println!(
                "re-sealed {endpoints} webhook endpoint secret(s); {endpoints_current} were already current"
            );
            println!(
                "once every replica runs with the new key, INTEGRATION_ENCRYPTION_KEYS_OLD can drop the old one"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "rotate-key: {e}; add the key it was sealed with to INTEGRATION_ENCRYPTION_KEYS_OLD"
            );
            ExitCode::FAILURE
        }
    }
}
