//! Integration Marketplace: the provider catalog as tiles grouped by
//! category, with a search and filters; a provider's details (capabilities,
//! auth type, rate limit, documentation) and "Connect", which opens the
//! Setup Wizard.

use crate::api::{enc, query};
use crate::layout::{empty, error, fragment, is_htmx, loading, page, tenant_only};
use crate::session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

const CATEGORIES: [&str; 5] = ["LOAD_BOARD", "ACCOUNTING", "ELD", "CRM", "INTEL"];

/// Registers the marketplace's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/marketplace", web::get().to(list))
        .route("/console/marketplace/{code}", web::get().to(details));
}

async fn list(
    req: HttpRequest,
    s: Session,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if s.is_operator() {
        return tenant_only(&s, "Integration Marketplace");
    }
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let (text, category) = (get("q"), get("category"));
    let qs = query(&[("q", text), ("category", category)]);
    if is_htmx(&req) {
        return fragment(
            match s
                .api
                .get(&format!("/api/v1/integrations/providers{qs}"))
                .await
            {
                Ok(v) => tiles(&v),
                Err(f) => error(&f),
            },
        );
    }
    page(
        Some(&s),
        "Integration Marketplace",
        "marketplace",
        html! {
            form.filters method="get" action="/console/marketplace" role="search" {
                div {
                    label for="q" { "Search" }
                    input #q type="search" name="q" value=(text) placeholder="Name, code or description";
                }
                div {
                    label for="category" { "Category" }
                    select #category name="category" {
                        option value="" selected[category.is_empty()] { "All" }
                        @for c in CATEGORIES { option value=(c) selected[category == c] { (c) } }
                    }
                }
                button type="submit" { "Search" }
            }
            (loading(&format!("/console/marketplace{qs}")))
        },
    )
}

fn tiles(v: &Value) -> Markup {
    // `{data: [...], next_cursor}` (the whole catalog in one page).
    let providers = v["data"]
        .as_array()
        .or_else(|| v.as_array())
        .cloned()
        .unwrap_or_default();
    if providers.is_empty() {
        return empty(
            "No provider matches this search.",
            Some(("/console/marketplace", "Show all providers")),
        );
    }
    let mut by_category: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for p in &providers {
        by_category
            .entry(p["category"].as_str().unwrap_or("OTHER").to_owned())
            .or_default()
            .push(p);
    }
    html! {
        div #providers {
            p.meta { (providers.len()) " providers" }
            @for (category, list) in &by_category {
                section aria-labelledby={"cat-" (category)} {
                    h2 #{"cat-" (category)} { (category) }
                    div.tiles {
                        @for p in list { (tile(p)) }
                    }
                }
            }
        }
    }
}

fn tile(p: &Value) -> Markup {
    let code = p["code"].as_str().unwrap_or_default();
    let m = &p["manifest"];
    let status = p["status"].as_str().unwrap_or_default();
    html! {
        article.tile data-provider=(code) {
            h3 { (p["name"].as_str().unwrap_or(code)) }
            p.meta {
                span.badge { (m["auth_type"].as_str().unwrap_or_default()) }
                @if status != "ACTIVE" { " " span.badge.warn { (status) } }
            }
            p { (m["description"].as_str().unwrap_or_default()) }
            div.actions {
                a.button.secondary href={"/console/marketplace/" (enc(code))} aria-label={"Details of " (p["name"].as_str().unwrap_or(code))} { "Details" }
                @if status == "ACTIVE" {
                    a.button href={"/console/setup/" (enc(code))} aria-label={"Connect " (p["name"].as_str().unwrap_or(code))} { "Connect" }
                }
            }
        }
    }
}

async fn details(s: Session, code: web::Path<String>) -> HttpResponse {
    if s.is_operator() {
        return tenant_only(&s, "Integration Marketplace");
    }
    let p = match s
        .api
        .get(&format!("/api/v1/integrations/providers/{}", enc(&code)))
        .await
    {
        Ok(p) => p,
        Err(f) => return page(Some(&s), "Provider", "marketplace", error(&f)),
    };
    let m = &p["manifest"];
    let caps = &m["capabilities"];
    let yes = |k: &str| {
        if caps[k].as_bool().unwrap_or(false) {
            "yes"
        } else {
            "no"
        }
    };
    let name = p["name"].as_str().unwrap_or(&code).to_owned();
    let entities: Vec<&str> = caps["entities"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    page(
        Some(&s),
        &name,
        "marketplace",
        html! {
            p { (m["description"].as_str().unwrap_or_default()) }
            dl.facts {
                dt { "Code" } dd { code { (p["code"].as_str().unwrap_or_default()) } }
                dt { "Category" } dd { (p["category"].as_str().unwrap_or_default()) }
                dt { "Status" } dd { (p["status"].as_str().unwrap_or_default()) }
                dt { "Auth type" } dd #auth-type { (m["auth_type"].as_str().unwrap_or_default()) }
                dt { "Rate limit" } dd #rate-limit {
                    (m["rate_limit"]["requests"].as_u64().unwrap_or_default()) " requests per "
                    (m["rate_limit"]["window_seconds"].as_u64().unwrap_or_default()) " s"
                }
                dt { "Webhooks" } dd { (yes("supports_webhooks")) }
                dt { "Batch" } dd { (yes("supports_batch")) }
                dt { "Real time" } dd { (yes("supports_realtime")) }
                dt { "Entities" } dd { @if entities.is_empty() { "—" } @else { (entities.join(", ")) } }
                dt { "API" } dd { code { (m["base_url"].as_str().unwrap_or_default()) } @if let Some(v) = m["api_version"].as_str() { " (" (v) ")" } }
                dt { "Documentation" } dd {
                    @if let Some(u) = m["documentation_url"].as_str() { a href=(u) rel="noopener noreferrer" target="_blank" { (u) } } @else { "—" }
                }
            }
            div.actions {
                @if p["status"].as_str() == Some("ACTIVE") {
                    a.button href={"/console/setup/" (enc(&code))} { "Connect" }
                }
                a href="/console/marketplace" { "Back to the marketplace" }
            }
        },
    )
}
