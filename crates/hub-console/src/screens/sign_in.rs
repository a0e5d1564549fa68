//! Sign-in (a tenant's id and API key, or the operator's admin token) and
//! sign-out. The credential is checked against the API before a session is
//! started (`GET /api/v1/me`, `GET /api/v1/admin/tenants`).

use crate::Console;
use crate::api::{Api, Credential, Failure};
use crate::layout::{error, page};
use crate::session::{self, PRE_COOKIE, Session, random_token, same};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use std::collections::HashMap;

/// Registers the sign-in and sign-out routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/sign-in", web::get().to(show))
        .route("/console/sign-in", web::post().to(tenant))
        .route("/console/sign-in/operator", web::post().to(operator))
        .route("/console/sign-out", web::post().to(sign_out));
}

/// The sign-in forms, with a fresh pre-session CSRF token (double submit:
/// the cookie and the hidden field must match).
fn form_page(console: &Console, req: &HttpRequest, problem: Option<&Failure>) -> HttpResponse {
    let token = random_token();
    let mut resp = page(
        None,
        "Sign in",
        "",
        html! {
            @if let Some(f) = problem { (error(f)) }
            form method="post" action="/console/sign-in" {
                fieldset {
                    legend { "Tenant" }
                    input type="hidden" name="_csrf" value=(token);
                    label for="tenant" { "Tenant id" }
                    p.hint #tenant-hint { "The tenant's id (a UUID), as sent in X-Tenant-ID." }
                    input #tenant type="text" name="tenant" required autocomplete="username" aria-describedby="tenant-hint";
                    label for="api_key" { "API key" }
                    input #api_key type="password" name="api_key" required autocomplete="current-password";
                    div.actions { button type="submit" { "Sign in" } }
                }
            }
            form method="post" action="/console/sign-in/operator" {
                fieldset {
                    legend { "Operator" }
                    input type="hidden" name="_csrf" value=(token);
                    p.hint { "With the admin token (HUB_ADMIN_TOKEN): create tenants and API keys." }
                    label for="admin_token" { "Admin token" }
                    input #admin_token type="password" name="admin_token" required autocomplete="off";
                    div.actions { button type="submit" { "Sign in as operator" } }
                }
            }
        },
    );
    let c = session::cookie(console, req, PRE_COOKIE, token, 3600);
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&c) {
        resp.headers_mut()
            .append(actix_web::http::header::SET_COOKIE, v);
    }
    resp
}

async fn show(req: HttpRequest, console: web::Data<Console>) -> HttpResponse {
    if session::current(&console, &req).await.is_some() {
        return HttpResponse::SeeOther()
            .insert_header(("Location", "/console"))
            .finish();
    }
    form_page(&console, &req, None)
}

/// The pre-session CSRF check of a sign-in form: the double-submit token
/// matches, or the browser says the form came from this origin (`Origin`,
/// which browsers send on every cross-origin POST and cannot be forged by
/// a page).
fn pre_check(req: &HttpRequest, form: &HashMap<String, String>) -> bool {
    let token = match (session::read_cookie(req, PRE_COOKIE), form.get("_csrf")) {
        (Some(c), Some(f)) => same(&c, f),
        _ => false,
    };
    token || same_origin(req)
}

/// Whether the request's `Origin` is this host.
fn same_origin(req: &HttpRequest) -> bool {
    let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
    let host = req.headers().get("host").and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(o), Some(h)) => {
            let o = o
                .strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"));
            o == Some(h)
        }
        _ => false,
    }
}

fn refused(message: &str) -> Failure {
    Failure {
        status: None,
        code: None,
        message: message.to_owned(),
        fields: Vec::new(),
    }
}

async fn tenant(
    req: HttpRequest,
    console: web::Data<Console>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if !pre_check(&req, &form) {
        return form_page(
            &console,
            &req,
            Some(&refused("The sign-in form expired: try again.")),
        );
    }
    let tenant = form.get("tenant").map(|s| s.trim()).unwrap_or_default();
    let key = form.get("api_key").map(|s| s.trim()).unwrap_or_default();
    if uuid::Uuid::parse_str(tenant).is_err() {
        return form_page(
            &console,
            &req,
            Some(&refused(
                "Tenant id: must be the tenant's id, a UUID (the operator sees it under Tenants and keys).",
            )),
        );
    }
    let credential = Credential::Tenant {
        tenant: tenant.to_owned(),
        key: key.to_owned(),
    };
    let api = Api::new(
        console.http.clone(),
        console.base_url(&req),
        credential.clone(),
    );
    match api.get("/api/v1/me").await {
        Ok(me) => {
            let t = &me["tenant"];
            let label = format!(
                "{} ({})",
                t["name"].as_str().unwrap_or("tenant"),
                t["slug"].as_str().unwrap_or(tenant)
            );
            signed_in(&console, &req, &credential, &label, "/console/integrations").await
        }
        Err(f) => form_page(&console, &req, Some(&f)),
    }
}

async fn operator(
    req: HttpRequest,
    console: web::Data<Console>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if !pre_check(&req, &form) {
        return form_page(
            &console,
            &req,
            Some(&refused("The sign-in form expired: try again.")),
        );
    }
    let token = form
        .get("admin_token")
        .map(|s| s.trim())
        .unwrap_or_default();
    let credential = Credential::Operator {
        token: token.to_owned(),
    };
    let api = Api::new(
        console.http.clone(),
        console.base_url(&req),
        credential.clone(),
    );
    match api.get("/api/v1/admin/tenants?limit=1").await {
        Ok(_) => signed_in(&console, &req, &credential, "Operator", "/console/operator").await,
        Err(f) => form_page(&console, &req, Some(&f)),
    }
}

async fn signed_in(
    console: &Console,
    req: &HttpRequest,
    credential: &Credential,
    label: &str,
    to: &str,
) -> HttpResponse {
    match session::start(console, req, credential, label).await {
        Ok(cookie) => HttpResponse::SeeOther()
            .append_header(("Set-Cookie", cookie))
            .append_header(("Set-Cookie", session::removal(PRE_COOKIE)))
            .insert_header(("Location", to))
            .finish(),
        Err(e) => {
            tracing::error!(error = %e, "console: could not start a session");
            form_page(
                console,
                req,
                Some(&refused(
                    "The session could not be stored; try again shortly.",
                )),
            )
        }
    }
}

async fn sign_out(
    req: HttpRequest,
    console: web::Data<Console>,
    s: Session,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    s.end(&console).await;
    HttpResponse::SeeOther()
        .append_header(("Set-Cookie", session::removal(session::COOKIE)))
        .insert_header(("Location", "/console/sign-in"))
        .finish()
}
