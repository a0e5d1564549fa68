//! Integration Hub's web console, served by integration-manager under
//! `/console`.
//!
//! Server-rendered HTML (maud) with htmx for the parts that load or change
//! without a full page. Every handler gets its data from the manager's
//! public HTTP API ([`api`]), called over loopback with the signed-in
//! session's credentials, so the console follows the same rules as any
//! client; the only table it touches is its own `console_sessions`
//! ([`session`]). Each screen is one module of [`screens`] that the others
//! do not use.

pub mod api;
pub mod assets;
pub mod layout;
pub mod screens;
pub mod session;

use actix_web::{HttpRequest, HttpResponse, web};
use hub_domain::secret::Keyring;
use hub_storage::Pool as PgPool;
use std::sync::Arc;

/// The console's state, shared by every HTTP worker.
pub struct Console {
    pool: PgPool,
    keyring: Arc<Keyring>,
    http: reqwest::Client,
    /// Cookies are `Secure` (the console's public URL is https).
    secure: bool,
    /// `HUB_PUBLIC_URL` without its trailing slash (OAuth `redirect_after`).
    public_url: String,
}

impl Console {
    /// The console of a manager whose database is `pool`, sealing session
    /// credentials with `keyring`; `public_url` is `HUB_PUBLIC_URL` (an
    /// https one makes the cookies `Secure`).
    pub fn new(pool: PgPool, keyring: Arc<Keyring>, public_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .unwrap_or_default();
        Self {
            pool,
            keyring,
            http,
            secure: public_url.starts_with("https://"),
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The manager's own origin as this request reached it: the console
    /// calls the API on the same socket address, over loopback.
    pub fn base_url(&self, req: &HttpRequest) -> String {
        format!("http://{}", req.app_config().local_addr())
    }
}

impl Console {
    /// `HUB_PUBLIC_URL` + `path`: where a browser reaches `path` from outside.
    pub fn public(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }
}

/// Registers `/console` and everything below it (`console` must be in the
/// app data as `web::Data<Console>`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/console", web::get().to(home))
        .route("/console/", web::get().to(home))
        .route("/console/assets/{name}", web::get().to(assets::serve))
        .configure(screens::sign_in::routes)
        .configure(screens::operator::routes)
        .configure(screens::marketplace::routes)
        .configure(screens::wizard::routes)
        .configure(screens::integrations::routes)
        .configure(screens::details::routes)
        .configure(screens::webhooks::routes)
        .configure(screens::deliveries::routes)
        .configure(screens::api_logs::routes)
        .configure(screens::transformations::routes)
        .configure(screens::sync_jobs::routes)
        .configure(screens::health::routes)
        .configure(screens::not_built::routes);
}

/// `/console`: the first screen of the session, or the sign-in page.
async fn home(req: HttpRequest, console: web::Data<Console>) -> HttpResponse {
    let to = match session::current(&console, &req).await {
        Some(s) if s.is_operator() => "/console/operator",
        Some(_) => "/console/integrations",
        None => "/console/sign-in",
    };
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}
