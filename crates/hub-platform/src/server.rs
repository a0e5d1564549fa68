//! The bootstrap every service binary uses: `ServiceApp::build(service, config)`
//! is what `main` runs and what tests run (on port 0), so what is tested is
//! what ships.

use crate::auth::AuthState;
use crate::config::Config;
use crate::error::{ApiError, ErrorCode};
use crate::http::{self, ServiceName};
use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, middleware, web};
use hub_bus::{Bus, Handler};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use std::net::TcpListener;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Largest JSON body the API accepts.
pub const JSON_LIMIT: usize = 1024 * 1024;

/// What a service's routes and handlers get to work with.
#[derive(Clone)]
pub struct Context {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The hub database pool.
    pub pool: PgPool,
    /// The bus connection.
    pub bus: Arc<Bus>,
    /// Cancelled when the service shuts down.
    pub shutdown: CancellationToken,
    /// Stages outbox rows for this process's relay, which publishes them
    /// straight after their commit (`Handoff::stage`, then `Staged::publish`).
    pub outbox: hub_bus::relay::Handoff,
    /// The service's name.
    pub service: &'static str,
}

/// Registers a service's routes.
pub type Configure = Arc<dyn Fn(&Context, &mut web::ServiceConfig) + Send + Sync>;

/// A background task of a service, started after the database is ready.
pub type Task = Box<dyn FnOnce(Context) -> futures::future::BoxFuture<'static, ()> + Send>;

/// A service's start-up, run once after migrations and before listening:
/// builds its state (keyrings, HTTP clients, writers) and returns what uses
/// it; an error stops the start.
pub type Start =
    Box<dyn FnOnce(Context) -> futures::future::BoxFuture<'static, Result<Started, String>> + Send>;

/// What a service's [`Start`] made, holding the state it built once.
pub struct Started {
    /// Its routes (called once per HTTP worker: it hands out the state, it
    /// does not build any).
    pub configure: Configure,
    /// What it does with the events on its queue, if it consumes any.
    pub handler: Option<Arc<dyn Handler>>,
    /// Its own background loops.
    pub tasks: Vec<Task>,
}

impl Started {
    /// Routes only: no consumer, no tasks.
    pub fn routes(configure: Configure) -> Self {
        Self {
            configure,
            handler: None,
            tasks: Vec::new(),
        }
    }
}

/// The description of one service binary.
pub struct Service {
    /// `integration-manager`, `integration-sync` or `webhook-dispatcher`.
    pub name: &'static str,
    /// Its OpenAPI document (service routes only; the platform adds its own).
    pub openapi: utoipa::openapi::OpenApi,
    /// Its start-up: its state, routes, consumer and loops.
    pub start: Start,
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A start-up step of the service failed.
    #[error("start-up failed: {0}")]
    Init(String),
    /// Postgres was unreachable for the whole start-up timeout, or migrating failed.
    #[error("database not ready: {0}; check DATABASE_URL and that Postgres is running")]
    Database(#[from] hub_storage::StorageError),
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source}; is another process using the port? set PORT")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A built service: listening, with its background tasks running.
pub struct ServiceApp {
    server: Server,
    port: u16,
    ctx: Context,
    tasks: Vec<JoinHandle<()>>,
}

fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            .expect("valid buckets");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (several services in one
        // test process); then ours only renders what it has.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

impl ServiceApp {
    /// Connects, migrates (unless `HUB_MIGRATE_ON_START=false`), starts the
    /// outbox relay, the consumer and the service's tasks, and binds the port.
    pub async fn build(service: Service, config: Config) -> Result<Self, StartupError> {
        config.encryption_keys()?;
        let config = Arc::new(config);
        let pool = hub_storage::pool(
            &config.database_url,
            &hub_storage::PoolSettings {
                max_connections: config.hub_database_max_connections,
                acquire_timeout: Duration::from_secs(5),
            },
        )?;
        // Bind first: a taken port fails fast, before anything is started.
        let (listener, addr, port) = bind(&config)?;
        wait_for_database(&pool, &config, config.hub_migrate_on_start).await?;
        let bus = Bus::new(service.name, config.bus());
        let shutdown = CancellationToken::new();
        let (outbox, handoff_queue) = hub_bus::relay::handoff(config.hub_outbox_handoff_room);
        let ctx = Context {
            config: config.clone(),
            pool: pool.clone(),
            bus: bus.clone(),
            shutdown: shutdown.clone(),
            outbox,
            service: service.name,
        };
        prometheus();
        let started = (service.start)(ctx.clone())
            .await
            .map_err(StartupError::Init)?;

        // Bind the service's own queue before its relay publishes: an event
        // published before any queue is bound to its type reaches nobody.
        if let Some(handler) = &started.handler {
            declare_queue(&bus, service.name, handler.as_ref()).await;
        }
        let mut tasks = vec![
            tokio::spawn(hub_bus::relay::run(
                bus.clone(),
                pool.clone(),
                hub_bus::relay::RelayConfig {
                    wake: Some(handoff_queue.overflow_signal()),
                    poll: std::time::Duration::from_millis(config.hub_outbox_poll_ms),
                    ..Default::default()
                },
                shutdown.clone(),
            )),
            tokio::spawn(hub_bus::relay::run_handoff(
                bus.clone(),
                pool.clone(),
                handoff_queue,
                shutdown.clone(),
            )),
        ];
        if let Some(handler) = started.handler.clone() {
            tasks.push(tokio::spawn(hub_bus::consumer::run(
                bus.clone(),
                pool.clone(),
                service.name.to_owned(),
                handler,
                shutdown.clone(),
            )));
        }
        for task in started.tasks {
            tasks.push(tokio::spawn(task(ctx.clone())));
        }

        let doc = Arc::new(document(service.name, service.openapi));
        let auth_state = AuthState::new(pool.clone(), config.hub_admin_token.as_deref());
        tasks.push(tokio::spawn(
            auth_state.clone().watch_revocations(shutdown.clone()),
        ));
        let name = service.name;
        let server = http_server(&ctx, doc, auth_state, started.configure, listener, &addr)?;
        tracing::info!(service = name, port, "listening");
        Ok(Self {
            server,
            port,
            ctx,
            tasks,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cancel this to shut the service down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.ctx.shutdown.clone()
    }

    /// Serves until SIGTERM, Ctrl-C or the shutdown token; then stops taking
    /// requests, lets in-flight requests and background work finish within
    /// `HUB_SHUTDOWN_TIMEOUT_SECONDS`, and closes connections.
    pub async fn run(self) -> std::io::Result<()> {
        let Self {
            server, ctx, tasks, ..
        } = self;
        let handle = server.handle();
        let token = ctx.shutdown.clone();
        let signals = tokio::spawn(wait_for_signal(token.clone()));
        let mut server = tokio::spawn(server);
        let result = tokio::select! {
            _ = token.cancelled() => {
                tracing::info!(service = ctx.service, "shutting down: no new work; finishing in-flight work");
                handle.stop(true).await;
                server.await.unwrap_or(Ok(()))
            }
            r = &mut server => {
                token.cancel();
                r.unwrap_or(Ok(()))
            }
        };
        signals.abort();
        tracing::debug!("HTTP server stopped; waiting for background work");
        let deadline = Duration::from_secs(ctx.config.hub_shutdown_timeout_seconds);
        if tokio::time::timeout(deadline, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            tracing::warn!(
                service = ctx.service,
                "background work did not finish within the shutdown deadline; unfinished work stays queued for another replica"
            );
        }
        tracing::debug!("closing the RabbitMQ connection");
        ctx.bus.close().await;
        tracing::debug!("closing the database pool");
        ctx.pool.close().await;
        tracing::info!(service = ctx.service, "stopped");
        result
    }
}

async fn wait_for_signal(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    token.cancel();
}

/// Binds the service's port: the listener, the address and the port bound.
fn bind(config: &Config) -> Result<(TcpListener, String, u16), StartupError> {
    let addr = format!("{}:{}", config.hub_host, config.port);
    let bind_error = |source| StartupError::Bind {
        addr: addr.clone(),
        source,
    };
    let listener = TcpListener::bind(&addr).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    Ok((listener, addr, port))
}

/// Declares the service's own queue and its bindings, so that events
/// published before its consumer starts are kept. A broker that is not
/// reachable now is not fatal: the consumer declares it when it connects.
async fn declare_queue(bus: &Bus, name: &str, handler: &dyn hub_bus::consumer::Handler) {
    let declared = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let ch = bus.channel().await?;
        bus.declare_service(&ch, name, &handler.bindings(), handler.entry_only())
            .await?;
        let _ = ch.close(200, "declared".into()).await;
        Ok::<(), hub_bus::BusError>(())
    })
    .await;
    if !matches!(declared, Ok(Ok(()))) {
        tracing::warn!(
            "could not declare the service queue at start-up; the consumer will when the broker is reachable"
        );
    }
}

/// The HTTP server: the platform's routes (`/health`, `/ready`, `/metrics`,
/// `/openapi.json`, `/docs`) and the service's own (`configure`), every
/// connection with `TCP_NODELAY`.
fn http_server(
    ctx: &Context,
    doc: Arc<utoipa::openapi::OpenApi>,
    auth_state: AuthState,
    configure: Configure,
    listener: TcpListener,
    addr: &str,
) -> Result<actix_web::dev::Server, StartupError> {
    let auth = web::Data::new(auth_state);
    let app_ctx = ctx.clone();
    let name = ctx.service;
    let config = &ctx.config;
    let mut server = HttpServer::new(move || {
        let doc_json = doc.clone();
        App::new()
            .app_data(web::Data::new(app_ctx.clone()))
            .app_data(auth.clone())
            .app_data(web::Data::new(ServiceName(name)))
            .app_data(http::json_config(JSON_LIMIT))
            .app_data(http::path_config())
            .app_data(http::query_config())
            .wrap(middleware::from_fn(http::observe))
            .wrap(middleware::Compress::default())
            .route("/health", web::get().to(health))
            .route("/ready", web::get().to(ready))
            .route("/metrics", web::get().to(metrics_text))
            .route(
                "/openapi.json",
                web::get().to(move || {
                    let d = doc_json.clone();
                    async move { HttpResponse::Ok().json(&*d) }
                }),
            )
            .configure(crate::docs::configure)
            .configure(|cfg| configure(&app_ctx, cfg))
            .default_service(web::to(http::route_not_found))
    })
    // Answers are small and written in one go: without this, Nagle's
    // algorithm may hold an answer's tail until the client's delayed
    // ACK (40 ms), and every request on a kept-alive connection waits.
    .tcp_nodelay(true)
    .listen(listener)
    .map_err(|source| StartupError::Bind {
        addr: addr.to_owned(),
        source,
    })?
    .disable_signals()
    .shutdown_timeout(config.hub_shutdown_timeout_seconds);
    if config.hub_http_workers > 0 {
        server = server.workers(config.hub_http_workers);
    }
    Ok(server.run())
}

/// Waits (up to `HUB_STARTUP_TIMEOUT_SECONDS`) until Postgres answers, and
/// applies pending migrations first when `migrate`.
async fn wait_for_database(
    pool: &PgPool,
    config: &Config,
    migrate: bool,
) -> Result<(), hub_storage::StorageError> {
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(config.hub_startup_timeout_seconds);
    use hub_bus::backoff::Backoff as _;
    let mut backoff =
        hub_bus::backoff::doubling(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        let attempt = async {
            if migrate {
                hub_storage::migrate(pool).await
            } else {
                hub_storage::ping(pool).await
            }
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "waiting for Postgres");
                let wait = backoff.next_backoff().unwrap_or(backoff.max_interval);
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "The process is alive")))]
async fn health(ctx: web::Data<Context>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "service": ctx.service,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// Readiness: Postgres and RabbitMQ reachable.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Postgres and RabbitMQ are reachable"),
    (status = 503, description = "A dependency is unreachable; the body names it", body = crate::error::Problem, content_type = "application/problem+json"),
))]
async fn ready(ctx: web::Data<Context>) -> Result<HttpResponse, ApiError> {
    let limit = Duration::from_secs(2);
    let (db, bus) = tokio::join!(
        tokio::time::timeout(limit, hub_storage::ping(&ctx.pool)),
        tokio::time::timeout(limit, ctx.bus.ping()),
    );
    let describe = |r: Result<Result<(), String>, tokio::time::error::Elapsed>| match r {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some("no answer within 2 s".to_owned()),
    };
    let db = describe(db.map(|r| r.map_err(|e| e.to_string())));
    let bus = describe(bus.map(|r| r.map_err(|e| e.to_string())));
    let checks = serde_json::json!({
        "postgres": db.as_deref().map_or("ok".to_owned(), |e| format!("unavailable: {e}")),
        "rabbitmq": bus.as_deref().map_or("ok".to_owned(), |e| format!("unavailable: {e}")),
    });
    let failing: Vec<&str> = [("postgres", &db), ("rabbitmq", &bus)]
        .into_iter()
        .filter_map(|(n, e)| e.as_ref().map(|_| n))
        .collect();
    if failing.is_empty() {
        Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready", "checks": checks })))
    } else {
        Err(ApiError::new(
            ErrorCode::DependencyUnavailable,
            format!("not ready: {} unreachable", failing.join(" and ")),
        )
        .with_extension("checks", checks))
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics_text(ctx: web::Data<Context>) -> HttpResponse {
    if let Ok(Ok((n, age))) = tokio::time::timeout(
        Duration::from_secs(1),
        hub_storage::outbox::backlog(&ctx.pool),
    )
    .await
    {
        metrics::gauge!("hub_outbox_backlog").set(n as f64);
        metrics::gauge!("hub_outbox_oldest_age_seconds").set(age);
    }
    let handle = prometheus();
    handle.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}

#[derive(OpenApi)]
#[openapi(
    paths(health, ready, metrics_text),
    components(schemas(crate::error::Problem, crate::error::ProblemField))
)]
struct PlatformDoc;

/// The full OpenAPI document of a service: its routes, the platform routes,
/// the security schemes and the error-code table.
pub fn document(name: &str, service: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut doc = service.merge_from(PlatformDoc::openapi());
    doc.info.title = name.to_owned();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.info.description = Some(format!(
        "Part of Integration Hub. Tenant routes under `/api/v1` take `Authorization: Bearer <api key>` and `X-Tenant-ID: <tenant uuid>`; admin routes take `Authorization: Bearer <HUB_ADMIN_TOKEN>`. Errors are `application/problem+json` with a stable `code`:\n\n{}",
        crate::error::codes_markdown()
    ));
    doc.info.license = None;
    let bearer = |what: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(what))
                .build(),
        )
    };
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme("api_key", bearer("A tenant API key"));
    components.add_security_scheme(
        "tenant",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-Tenant-ID",
            "The tenant's UUID",
        ))),
    );
    components.add_security_scheme("admin_token", bearer("HUB_ADMIN_TOKEN"));
    add_platform_errors(&mut doc);
    doc
}

/// Documents on every operation the errors the platform answers before or
/// around its handler, by what the operation takes, unless the operation
/// documents that status itself: 400 for malformed parameters, bodies or
/// `X-Tenant-ID`; 401 and 503 (the credential is checked in Postgres) for
/// authenticated routes; 403 for tenant routes (another tenant's key, a
/// suspended tenant); 404 for admin routes (the admin API is off without
/// `HUB_ADMIN_TOKEN`); 413 for routes that take a body, 415 for those whose
/// required body the JSON extractor reads (not a raw payload); 422 for lists
/// (`limit` out of range).
fn add_platform_errors(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let schemes = serde_json::to_value(&op.security).unwrap_or_default();
            let uses = |scheme: &str| {
                schemes
                    .as_array()
                    .is_some_and(|all| all.iter().any(|s| s.get(scheme).is_some()))
            };
            let (tenant, admin) = (uses("tenant"), uses("admin_token"));
            let params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let body = op.request_body.is_some();
            // A required body read by the JSON extractor
            // ([`http::json_config`]). Not a raw payload (inbound webhooks
            // take the provider's as it comes, documented as a string), nor
            // an optional body (read as bytes and parsed whatever its
            // Content-Type: `optional_json` in the manager's routes).
            let json_body = serde_json::to_value(&op.request_body)
                .ok()
                .filter(|b| b["required"] == true)
                .and_then(|b| b.get("content")?.get("application/json").cloned())
                .is_some_and(|media| media["schema"]["type"] != "string");
            // The shared list parameters ([`http::ListParams`]): a `limit`
            // out of range is a field error.
            let list = serde_json::to_value(&op.parameters)
                .unwrap_or_default()
                .as_array()
                .is_some_and(|all| {
                    all.iter()
                        .any(|p| p["in"] == "query" && p["name"] == "limit")
                });
            let mut add = |status: &str, when: bool, description: &str| {
                if when {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem_response(description));
                }
            };
            add(
                "400",
                tenant || params || body,
                "A malformed parameter, body or X-Tenant-ID header",
            );
            add(
                "401",
                tenant || admin,
                "Credentials missing, unknown or revoked",
            );
            add(
                "403",
                tenant,
                "The API key belongs to another tenant, or the tenant is suspended",
            );
            add("404", admin, "The admin API is off (no HUB_ADMIN_TOKEN)");
            add("413", body, "The body is too large");
            add(
                "422",
                list,
                "A list parameter is out of range (`limit`: 1–200)",
            );
            add("415", json_body, "The body is not sent as application/json");
            add(
                "503",
                tenant || admin,
                "Postgres or RabbitMQ is unavailable; retry later",
            );
        }
    }
}

/// A response documented as a problem+json document.
fn problem_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

/// What `<binary> migrate` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MigrateCommand {
    /// `migrate`: apply the pending migrations and exit.
    Apply,
    /// `migrate --wait`: apply nothing; exit 0 once none is pending (another
    /// process, such as the Kubernetes migration Job, applies them).
    Wait,
}

/// The whole `main` of a service binary: `<binary> openapi` prints the OpenAPI
/// document; `<binary> migrate [--wait]` migrates the database (or waits until
/// it is migrated) and exits; otherwise load config (exit 2 naming the bad
/// key), install telemetry, build, and serve until SIGTERM/Ctrl-C.
pub async fn main(default_port: u16, make: fn() -> Service) -> std::process::ExitCode {
    use std::process::ExitCode;
    let service = make();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if args.first() == Some(&"openapi") {
        let doc = document(service.name, service.openapi);
        println!("{}", doc.to_pretty_json().expect("OpenAPI serializes"));
        return ExitCode::SUCCESS;
    }
    let migrate = match args.as_slice() {
        ["migrate"] => Some(MigrateCommand::Apply),
        ["migrate", "--wait"] => Some(MigrateCommand::Wait),
        ["migrate", ..] => {
            eprintln!("{}: usage: {} migrate [--wait]", service.name, service.name);
            return ExitCode::from(2);
        }
        _ => None,
    };
    let config = match Config::load(default_port) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", service.name);
            return ExitCode::from(2);
        }
    };
    let _telemetry = crate::telemetry::init(service.name, &config);
    if let Some(command) = migrate {
        return migrate_command(service.name, &config, command).await;
    }
    tracing::info!(service = service.name, config = ?config, "starting");
    let name = service.name;
    let app = match ServiceApp::build(service, config).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "could not start");
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `<binary> migrate [--wait]`: see [`MigrateCommand`]. Both give up after
/// `HUB_STARTUP_TIMEOUT_SECONDS` (exit 1).
async fn migrate_command(
    name: &'static str,
    config: &Config,
    command: MigrateCommand,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let pool = match hub_storage::pool(
        &config.database_url,
        &hub_storage::PoolSettings {
            max_connections: 2,
            acquire_timeout: Duration::from_secs(5),
        },
    ) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match command {
        MigrateCommand::Apply => {
            let before = hub_storage::pending_migrations(&pool).await.ok();
            wait_for_database(&pool, config, true)
                .await
                .map(|()| match before {
                    Some(pending) => format!("applied {} pending migration(s)", pending.len()),
                    None => "migrations applied".to_owned(),
                })
                .map_err(|e| e.to_string())
        }
        MigrateCommand::Wait => wait_until_migrated(name, &pool, config).await,
    };
    pool.close().await;
    match outcome {
        Ok(done) => {
            tracing::info!(service = name, "{done}");
            println!("{name}: {done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(service = name, error = %e, "migrate failed");
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Polls until the database has applied every migration this binary embeds.
async fn wait_until_migrated(name: &str, pool: &PgPool, config: &Config) -> Result<String, String> {
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(config.hub_startup_timeout_seconds);
    loop {
        let last = match hub_storage::pending_migrations(pool).await {
            Ok(pending) if pending.is_empty() => {
                return Ok("the database has every migration applied".to_owned());
            }
            Ok(pending) => format!("{} migration(s) pending: {pending:?}", pending.len()),
            Err(e) => format!("cannot read the applied migrations: {e}"),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "gave up after HUB_STARTUP_TIMEOUT_SECONDS ({} s): {last}; run `{name} migrate` (the migration Job) first",
                config.hub_startup_timeout_seconds
            ));
        }
        tracing::info!("waiting for migrations: {last}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
