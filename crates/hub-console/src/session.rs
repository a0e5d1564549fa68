//! Sessions: a random id in an HttpOnly, SameSite=Strict cookie (Secure
//! behind https); the credential kept server-side, sealed, in
//! `console_sessions`; a CSRF token per session checked on every change.

use crate::Console;
use crate::api::{Api, Credential};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use base64::Engine;
use chrono::Utc;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use subtle::ConstantTimeEq;

/// The session cookie.
pub const COOKIE: &str = "hub_console";
/// The cookie of the sign-in forms' CSRF token (before any session exists).
pub const PRE_COOKIE: &str = "hub_console_signin";
/// How long a session lasts.
pub const LIFETIME_HOURS: i64 = 8;

/// A random token: 32 bytes, base64url.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn seal_context(id_hash: &str) -> String {
    format!("console_session:{id_hash}")
}

/// Whether two tokens are equal, in constant time.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    id_hash: String,
    /// The API as this session.
    pub api: Api,
    /// The tenant id of a tenant session.
    pub tenant: Option<String>,
    /// The CSRF token forms and htmx requests carry.
    pub csrf: String,
    /// What the header shows.
    pub label: String,
}

impl Session {
    /// Whether this is the operator (admin token) rather than a tenant.
    pub fn is_operator(&self) -> bool {
        self.tenant.is_none()
    }

    /// Checks the CSRF token of a change: the `_csrf` form field or the
    /// `X-CSRF-Token` header (htmx) must be this session's. A 403 page
    /// otherwise (boxed: a response is large).
    pub fn check(
        &self,
        req: &HttpRequest,
        form: &HashMap<String, String>,
    ) -> Result<(), Box<HttpResponse>> {
        let header = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        let given = form.get("_csrf").map(String::as_str).or(header);
        match given {
            Some(t) if same(t, &self.csrf) => Ok(()),
            _ => Err(Box::new(HttpResponse::Forbidden()
                .content_type("text/html; charset=utf-8")
                .body(
                    "<p>This form has expired or did not come from the console (CSRF check). Reload the page and try again.</p>",
                ))),
        }
    }

    /// Ends the session (sign-out).
    pub async fn end(&self, console: &Console) {
        if let Err(e) = hub_storage::console::delete(&console.pool, &self.id_hash).await {
            tracing::warn!(error = %e, "console sign-out: could not delete the session");
        }
    }
}

/// The value of cookie `name` of the request, if it sent one.
pub fn read_cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Starts a session for `credential` (already checked against the API):
/// stores it and returns the `Set-Cookie` value.
pub async fn start(
    console: &Console,
    req: &HttpRequest,
    credential: &Credential,
    label: &str,
) -> Result<String, String> {
    let id = random_token();
    let id_hash = hash(&id);
    let (kind, tenant_id, secret) = match credential {
        Credential::Tenant { tenant, key } => (
            "TENANT",
            Some(uuid::Uuid::parse_str(tenant).map_err(|e| e.to_string())?),
            key.clone(),
        ),
        Credential::Operator { token } => ("OPERATOR", None, token.clone()),
    };
    let row = hub_storage::console::ConsoleSession {
        credential_sealed: console
            .keyring
            .seal(&seal_context(&id_hash), secret.as_bytes()),
        id_hash,
        kind: kind.to_owned(),
        tenant_id,
        csrf_token: random_token(),
        label: label.chars().take(200).collect(),
        expires_at: Utc::now() + chrono::Duration::hours(LIFETIME_HOURS),
    };
    hub_storage::console::insert(&console.pool, &row)
        .await
        .map_err(|e| e.to_string())?;
    Ok(cookie(console, req, COOKIE, id, LIFETIME_HOURS * 3600))
}

/// A console cookie (the `Set-Cookie` value): HttpOnly, SameSite=Strict,
/// path `/console`, Secure when the console is reached over https. Values
/// are base64url, which needs no quoting.
pub fn cookie(
    console: &Console,
    req: &HttpRequest,
    name: &str,
    value: String,
    max_age_seconds: i64,
) -> String {
    let secure = console.secure || req.connection_info().scheme() == "https";
    format!(
        "{name}={value}; Path=/console; Max-Age={max_age_seconds}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes cookie `name`.
pub fn removal(name: &str) -> String {
    format!("{name}=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict")
}

/// The session of this request's cookie, if it is valid and unexpired.
pub async fn current(console: &Console, req: &HttpRequest) -> Option<Session> {
    let id = read_cookie(req, COOKIE)?;
    let id_hash = hash(&id);
    let row = match hub_storage::console::find(&console.pool, &id_hash).await {
        Ok(r) => r?,
        Err(e) => {
            tracing::warn!(error = %e, "console: could not read the session");
            return None;
        }
    };
    // A session sealed under a key since dropped is simply signed out.
    let secret = console
        .keyring
        .open(&seal_context(&id_hash), &row.credential_sealed)
        .ok()?;
    let secret = String::from_utf8(secret).ok()?;
    let tenant = row.tenant_id.map(|t| t.to_string());
    let credential = match &tenant {
        Some(t) => Credential::Tenant {
            tenant: t.clone(),
            key: secret,
        },
        None => Credential::Operator { token: secret },
    };
    Some(Session {
        id_hash,
        api: Api::new(console.http.clone(), console.base_url(req), credential),
        tenant,
        csrf: row.csrf_token,
        label: row.label,
    })
}

/// Where an unsigned request is sent: the sign-in page (through
/// `HX-Redirect` for htmx requests, which would otherwise swap it in).
pub fn to_sign_in(req: &HttpRequest) -> HttpResponse {
    if req.headers().contains_key("hx-request") {
        HttpResponse::Ok()
            .insert_header(("HX-Redirect", "/console/sign-in"))
            .finish()
    } else {
        HttpResponse::SeeOther()
            .insert_header(("Location", "/console/sign-in"))
            .finish()
    }
}

impl FromRequest for Session {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let console = req
                .app_data::<web::Data<Console>>()
                .expect("the console's state is registered")
                .clone();
            match current(&console, &req).await {
                Some(s) => Ok(s),
                None => Err(actix_web::error::InternalError::from_response(
                    "not signed in",
                    to_sign_in(&req),
                )
                .into()),
            }
        })
    }
}
