//! The operator's screen (admin token): tenants, with a form that creates a
//! tenant and its first API key, and a new key for any tenant. A key is
//! shown once, with a copy button.

use crate::api::{Failure, enc};
use crate::layout::{empty, error, fragment, is_htmx, loading, page, pager};
use crate::session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Registers the operator's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/operator", web::get().to(show))
        .route("/console/operator/tenants", web::post().to(create_tenant))
        .route(
            "/console/operator/tenants/{id}/api-keys",
            web::post().to(create_key),
        );
}

fn not_operator(s: &Session) -> HttpResponse {
    page(
        Some(s),
        "Tenants and keys",
        "operator",
        html! { p { "Only the operator (signed in with the admin token) manages tenants and keys." } },
    )
}

async fn show(
    req: HttpRequest,
    s: Session,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if !s.is_operator() {
        return not_operator(&s);
    }
    let cursor = q
        .get("cursor")
        .map(String::as_str)
        .filter(|c| !c.is_empty());
    if is_htmx(&req) {
        let path = match cursor {
            Some(c) => format!("/api/v1/admin/tenants?limit=50&cursor={}", enc(c)),
            None => "/api/v1/admin/tenants?limit=50".to_owned(),
        };
        return fragment(match s.api.get(&path).await {
            Ok(page) => tenants(&s, &page, cursor),
            Err(f) => error(&f),
        });
    }
    let here = match cursor {
        Some(c) => format!("/console/operator?cursor={}", enc(c)),
        None => "/console/operator".to_owned(),
    };
    page(
        Some(&s),
        "Tenants and keys",
        "operator",
        html! {
            (create_form(&s, None))
            h2 { "Tenants" }
            (loading(&here))
        },
    )
}

fn create_form(s: &Session, problem: Option<&Failure>) -> Markup {
    html! {
        form method="post" action="/console/operator/tenants" {
            fieldset {
                legend { "New tenant" }
                @if let Some(f) = problem { (error(f)) }
                input type="hidden" name="_csrf" value=(s.csrf);
                label for="name" { "Name" }
                input #name type="text" name="name" required maxlength="200";
                label for="slug" { "Slug" }
                p.hint #slug-hint { "1–63 of a-z, 0-9 and -; used in inbound webhook URLs." }
                input #slug type="text" name="slug" required pattern="[a-z0-9-]{1,63}" aria-describedby="slug-hint";
                label for="key_name" { "First API key's label" }
                input #key_name type="text" name="key_name" value="console" required maxlength="200";
                div.actions { button type="submit" { "Create tenant and key" } }
            }
        }
    }
}

fn tenants(s: &Session, page: &Value, cursor: Option<&str>) -> Markup {
    let rows = page["data"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return empty("No tenants yet: create the first one above.", None);
    }
    html! {
        div.table {
            table {
                thead { tr { th { "Name" } th { "Slug" } th { "Id (X-Tenant-ID)" } th { "Status" } th { span.meta { "Actions" } } } }
                tbody {
                    @for t in &rows {
                        tr {
                            td { (t["name"].as_str().unwrap_or_default()) }
                            td { (t["slug"].as_str().unwrap_or_default()) }
                            td { code { (t["id"].as_str().unwrap_or_default()) } }
                            td { (t["status"].as_str().unwrap_or_default()) }
                            td {
                                form method="post" action={"/console/operator/tenants/" (t["id"].as_str().unwrap_or_default()) "/api-keys"} {
                                    input type="hidden" name="_csrf" value=(s.csrf);
                                    input type="hidden" name="key_name" value="console";
                                    button.secondary type="submit" aria-label={"New API key for " (t["name"].as_str().unwrap_or_default())} { "New API key" }
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager("/console/operator", cursor, page["next_cursor"].as_str()))
    }
}

/// The page showing a new key once.
fn key_shown(s: &Session, tenant: &Value, key: &Value) -> HttpResponse {
    page(
        Some(s),
        "API key created",
        "operator",
        html! {
            div.notice role="status" {
                p { "Copy the key now: it is not stored and cannot be shown again." }
            }
            dl.facts {
                dt { "Tenant" } dd { (tenant["name"].as_str().unwrap_or_default()) }
                dt { "Tenant id" } dd { code #tenant-id { (tenant["id"].as_str().unwrap_or_default()) } }
                dt { "Key label" } dd { (key["name"].as_str().unwrap_or_default()) }
            }
            label for="new-key" { "API key" }
            div.secret {
                input #new-key type="text" readonly value=(key["key"].as_str().unwrap_or_default()) size="60";
                button.secondary type="button" data-copy="new-key" { "Copy" }
            }
            p { a href="/console/operator" { "Back to tenants" } }
        },
    )
}

async fn create_tenant(
    req: HttpRequest,
    s: Session,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    if !s.is_operator() {
        return not_operator(&s);
    }
    let field = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let body = json!({"name": field("name"), "slug": field("slug")});
    let again = |f: Failure| {
        page(
            Some(&s),
            "Tenants and keys",
            "operator",
            html! {
                (create_form(&s, Some(&f)))
                p { a href="/console/operator" { "Back to tenants" } }
            },
        )
    };
    let tenant = match s.api.post("/api/v1/admin/tenants", body).await {
        Ok(t) => t,
        Err(f) => return again(f),
    };
    let id = tenant["id"].as_str().unwrap_or_default();
    let key_name = Some(field("key_name"))
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "console".into());
    match s
        .api
        .post(
            &format!("/api/v1/admin/tenants/{id}/api-keys"),
            json!({"name": key_name}),
        )
        .await
    {
        Ok(key) => key_shown(&s, &tenant, &key),
        Err(f) => again(f),
    }
}

async fn create_key(
    req: HttpRequest,
    s: Session,
    id: web::Path<uuid::Uuid>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    if !s.is_operator() {
        return not_operator(&s);
    }
    let tenant = match s.api.get(&format!("/api/v1/admin/tenants/{id}")).await {
        Ok(t) => t,
        Err(f) => return page(Some(&s), "Tenants and keys", "operator", error(&f)),
    };
    let name = form
        .get("key_name")
        .cloned()
        .unwrap_or_else(|| "console".into());
    match s
        .api
        .post(
            &format!("/api/v1/admin/tenants/{id}/api-keys"),
            json!({"name": name}),
        )
        .await
    {
        Ok(key) => key_shown(&s, &tenant, &key),
        Err(f) => page(Some(&s), "Tenants and keys", "operator", error(&f)),
    }
}
