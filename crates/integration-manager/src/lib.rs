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

use actix_web::web;
use hub_platform::server::{Context, Service, Started};
use std::sync::Arc;
use utoipa::OpenApi;

/// The service's name (queue, logs, metrics).
pub const NAME: &str = "integration-manager";
/// The default port.
pub const PORT: u16 = 3026;

/// The service description `ServiceApp::build` serves.
pub fn service() -> Service {
    Service {
        name: NAME,
        openapi: routes::ApiDoc::openapi(),
        start: Box::new(|ctx| Box::pin(start(ctx))),
    }
}

/// Builds the manager's state once (keyring, HTTP clients, the group-commit
/// writer, the endpoint cache), loads the provider catalog, and returns the
/// routes, the audit consumer and the loops that share that state.
async fn start(ctx: Context) -> Result<Started, String> {
    let keyring = Arc::new(ctx.config.keyring().map_err(|e| e.to_string())?);
    let keyring_for_gateway = keyring.clone();
    // The web console (`/console`): its sessions are sealed with the same keyring.
    let console = web::Data::new(hub_console::Console::new(
        ctx.pool.clone(),
        keyring.clone(),
        &ctx.config.hub_public_url,
    ));
    let integrations = web::Data::new(state::Integrations::new(&ctx.config, keyring.clone()));
    // OAuth access tokens, refreshed once across replicas (the proxy and
    // `refresh-oauth` use it; a loop below refreshes what is due).
    let tokens = hub_gateway::tokens::Tokens::new(
        ctx.pool.clone(),
        keyring.clone(),
        integrations.http.clone(),
        integrations.policy,
    );
    let token_data = web::Data::new(tokens.clone());
    // The transformation templates endpoints and subscriptions reference,
    // compiled once and cached (the public route, the inbound worker and
    // the checks on save share them).
    let templates = Arc::new(hub_platform::transforms::Templates::new(ctx.pool.clone()));
    let templates_for_worker = templates.clone();
    let outbound = web::Data::new(routes::subscriptions::OutboundWebhooks::new(
        &ctx.config,
        keyring.clone(),
        templates.clone(),
    ));
    // One group-commit writer and one endpoint cache per service, shared by
    // every HTTP worker.
    let (writer, writer_done) = inbound::writer::Writer::spawn(&ctx);
    // One request-log recorder (one batching writer task) per service.
    let log_settings = hub_gateway::logs::LogSettings {
        request_bodies: ctx.config.log_request_bodies,
        response_bodies: ctx.config.log_response_bodies,
        retention_days: ctx.config.log_retention_days,
    };
    let (recorder, recorder_done) =
        hub_gateway::logs::Recorder::spawn(ctx.pool.clone(), log_settings);
    let stopping = recorder.clone();
    let recorder_data = web::Data::new(recorder.clone());
    let inbound = web::Data::new(inbound::Inbound {
        keyring,
        trusted_proxies: Arc::new(ctx.config.trusted_proxies()),
        max_body: ctx.config.hub_inbound_max_body,
        writer,
        recorder,
        cache: Arc::new(inbound::EndpointCache::default()),
        policy: Arc::new(inbound::policy(&ctx.config)),
        templates,
    });
    let gateway = web::Data::new(gateway(
        &ctx,
        keyring_for_gateway,
        tokens.clone(),
        recorder_data.get_ref().clone(),
    )?);
    let changed = state::load_catalog(&ctx.pool).await?;
    tracing::info!(changed, "provider catalog loaded");
    let system = routes::transformations::load_system(&ctx.pool).await?;
    tracing::info!(written = system, "system transformation templates loaded");
    Ok(Started {
        configure: Arc::new(move |_, cfg| {
            cfg.app_data(inbound.clone())
                .app_data(integrations.clone())
                .app_data(token_data.clone())
                .app_data(outbound.clone())
                .app_data(recorder_data.clone())
                .app_data(gateway.clone())
                .app_data(console.clone());
            routes::configure(cfg);
            hub_console::configure(cfg);
        }),
        handler: Some(Arc::new(audit::AuditTrail)),
        tasks: vec![
            // The writer stops shortly after shutdown; wait for it.
            Box::new(move |_| {
                Box::pin(async move {
                    let _ = writer_done.await;
                })
            }),
            Box::new(move |ctx| Box::pin(inbound::worker::run(ctx, templates_for_worker))),
            // The request log: after shutdown, what requests still being
            // answered record (the same half second the group-commit writer
            // gives them), then everything queued is written.
            Box::new(move |ctx| {
                Box::pin(async move {
                    ctx.shutdown.cancelled().await;
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    stopping.stop().await;
                    recorder_done.await;
                })
            }),
            Box::new(move |ctx| {
                Box::pin(hub_gateway::logs::prune_loop(
                    ctx.pool.clone(),
                    log_settings.retention_days,
                    ctx.shutdown.clone().cancelled_owned(),
                ))
            }),
            Box::new(move |ctx| Box::pin(routes::oauth::refresh_loop(ctx, tokens))),
            Box::new(|ctx| {
                Box::pin(hub_gateway::limiter::prune_loop(
                    ctx.pool.clone(),
                    ctx.shutdown.clone().cancelled_owned(),
                ))
            }),
        ],
    })
}

/// The API gateway every provider call of this process goes through.
fn gateway(
    ctx: &Context,
    keyring: Arc<hub_domain::secret::Keyring>,
    tokens: hub_gateway::tokens::Tokens,
    recorder: hub_gateway::logs::Recorder,
) -> Result<hub_gateway::engine::Gateway, String> {
    use hub_gateway::{assemble, engine, limiter};
    let c = &ctx.config;
    assemble::gateway(assemble::Setup {
        pool: ctx.pool.clone(),
        keyring,
        tokens,
        recorder,
        policy: state::target_policy(c),
        queue: limiter::QueuePolicy {
            size: c.gateway_queue_size,
            max_wait: std::time::Duration::from_millis(c.gateway_max_wait_ms),
        },
        breaker: c.breaker_policy(),
        settings: engine::Settings {
            policy: state::target_policy(c),
            deadline: std::time::Duration::from_secs(c.gateway_deadline_seconds),
            default_limit: (c.default_rate_limit, c.rate_limit_window_seconds),
            source: NAME,
        },
    })
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
