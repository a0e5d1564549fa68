//! Integration List: the tenant's integrations with status, health at a
//! glance and filters (status, category, environment, provider), paged.

use crate::api::{enc, query};
use crate::layout::{empty, error, fragment, is_htmx, loading, page, pager, tenant_only};
use crate::session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde_json::Value;
use std::collections::HashMap;

/// Registers the list's route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/integrations", web::get().to(list));
}

const STATUSES: [&str; 4] = ["ACTIVE", "PENDING_AUTH", "ERROR", "PAUSED"];
const CATEGORIES: [&str; 5] = ["LOAD_BOARD", "ACCOUNTING", "ELD", "CRM", "INTEL"];
const ENVIRONMENTS: [&str; 3] = ["PRODUCTION", "SANDBOX", "TEST"];

fn select(id: &str, label: &str, options: &[&str], current: &str) -> Markup {
    html! {
        div {
            label for=(id) { (label) }
            select #(id) name=(id) {
                option value="" selected[current.is_empty()] { "All" }
                @for o in options { option value=(o) selected[current == *o] { (o) } }
            }
        }
    }
}

async fn list(
    req: HttpRequest,
    s: Session,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if s.is_operator() {
        return tenant_only(&s, "Integration List");
    }
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let filters = [
        ("status", get("status")),
        ("category", get("category")),
        ("environment", get("environment")),
        ("provider", get("provider")),
    ];
    let qs = query(&filters);
    let cursor = Some(get("cursor")).filter(|c| !c.is_empty());
    if is_htmx(&req) {
        let mut path = format!("/api/v1/integrations{qs}");
        path.push(if qs.is_empty() { '?' } else { '&' });
        path.push_str("limit=50");
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", enc(c)));
        }
        return fragment(match s.api.get(&path).await {
            Ok(v) => table(&v, &format!("/console/integrations{qs}"), cursor),
            Err(f) => error(&f),
        });
    }
    let here = match cursor {
        Some(c) => format!(
            "/console/integrations{qs}{}cursor={}",
            if qs.is_empty() { '?' } else { '&' },
            enc(c)
        ),
        None => format!("/console/integrations{qs}"),
    };
    page(
        Some(&s),
        "Integration List",
        "integrations",
        html! {
            form.filters method="get" action="/console/integrations" {
                (select("status", "Status", &STATUSES, get("status")))
                (select("category", "Category", &CATEGORIES, get("category")))
                (select("environment", "Environment", &ENVIRONMENTS, get("environment")))
                div {
                    label for="provider" { "Provider code" }
                    input #provider type="text" name="provider" value=(get("provider")) size="14";
                }
                button type="submit" { "Filter" }
            }
            div.actions { a.button href="/console/marketplace" { "Connect an integration" } }
            (loading(&here))
        },
    )
}

/// The badge of an integration's status.
fn status_badge(status: &str) -> Markup {
    let class = match status {
        "ACTIVE" => "badge ok",
        "ERROR" => "badge bad",
        _ => "badge warn",
    };
    html! { span class=(class) { (status) } }
}

fn table(v: &Value, path: &str, cursor: Option<&str>) -> Markup {
    let rows = v["data"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return if cursor.is_none() && !path.contains('?') {
            empty(
                "No integrations yet.",
                Some(("/console/marketplace", "Browse the marketplace")),
            )
        } else {
            empty(
                "No integration matches these filters.",
                Some(("/console/integrations", "Clear the filters")),
            )
        };
    }
    let t = |r: &Value, k: &str| r[k].as_str().unwrap_or("—").to_owned();
    html! {
        div.table #integrations {
            table {
                thead { tr {
                    th { "Name" } th { "Provider" } th { "Environment" } th { "Status" } th { "Enabled" }
                    th { "Last success" } th { "Last error" }
                } }
                tbody {
                    @for r in &rows {
                        tr data-integration=(t(r, "id")) {
                            td { a href={"/console/integrations/" (t(r, "id"))} { (t(r, "name")) } }
                            td { (t(r, "provider_code")) }
                            td { (t(r, "environment")) }
                            td { (status_badge(r["status"].as_str().unwrap_or_default())) }
                            td { (if r["is_enabled"].as_bool().unwrap_or(false) { "yes" } else { "no" }) }
                            td { (t(r, "last_successful_call")) }
                            td { (t(r, "last_error")) }
                        }
                    }
                }
            }
        }
        (pager(path, cursor, v["next_cursor"].as_str()))
    }
}
