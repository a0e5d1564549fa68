//! Health Dashboard: every integration of the page with its status,
//! circuit state, rate-limit use and last success and error, counted by
//! state at the top; refreshes itself every 10 s.

use crate::api::{enc, query};
use crate::layout::{empty, error, fragment, is_htmx, loading, page, pager, tenant_only};
use crate::session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Registers the dashboard's route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/health", web::get().to(show));
}

const TITLE: &str = "Health Dashboard";

fn t(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn show(
    req: HttpRequest,
    s: Session,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if s.is_operator() {
        return tenant_only(&s, TITLE);
    }
    let cursor = q
        .get("cursor")
        .map(String::as_str)
        .filter(|c| !c.is_empty());
    let here = format!(
        "/console/health{}",
        query(&[("cursor", cursor.unwrap_or_default())])
    );
    if !is_htmx(&req) {
        return page(Some(&s), TITLE, "health", loading(&here));
    }
    let path = match cursor {
        Some(c) => format!("/api/v1/integrations?limit=50&cursor={}", enc(c)),
        None => "/api/v1/integrations?limit=50".to_owned(),
    };
    let list = match s.api.get(&path).await {
        Ok(v) => v,
        Err(f) => return fragment(error(&f)),
    };
    let rows = list["data"].as_array().cloned().unwrap_or_default();
    // One health call per integration of the page, concurrently.
    let paths: Vec<String> = rows
        .iter()
        .map(|r| format!("/api/v1/integrations/{}/health", t(r, "id")))
        .collect();
    let healths = futures::future::join_all(paths.iter().map(|p| s.api.get(p))).await;
    fragment(board(
        &rows,
        &healths,
        &here,
        cursor,
        list["next_cursor"].as_str(),
    ))
}

fn board(
    rows: &[Value],
    healths: &[Result<Value, crate::api::Failure>],
    here: &str,
    cursor: Option<&str>,
    next: Option<&str>,
) -> Markup {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for h in healths.iter().flatten() {
        *counts.entry(t(h, "circuit_state")).or_default() += 1;
    }
    for r in rows {
        *counts.entry(t(r, "status")).or_default() += 1;
    }
    html! {
        div #health-board hx-get=(here) hx-trigger="every 10s" hx-swap="outerHTML" {
            @if rows.is_empty() {
                (empty("No integrations to watch yet.", Some(("/console/marketplace", "Connect one"))))
            } @else {
                p.meta #health-counts {
                    @for (k, n) in &counts { span.badge { (k) ": " (n) } " " }
                }
                div.table { table #health {
                    thead { tr { th { "Integration" } th { "Status" } th { "Circuit" } th { "Calls this hour" } th { "Last success" } th { "Last error" } } }
                    tbody { @for (r, h) in rows.iter().zip(healths) { tr {
                        td { a href={"/console/integrations/" (t(r, "id"))} { (t(r, "name")) } " " span.meta { (t(r, "provider_code")) } }
                        td { (t(r, "status")) @if !r["is_enabled"].as_bool().unwrap_or(false) { " (disabled)" } }
                        @match h {
                            Ok(h) => {
                                td { (t(h, "circuit_state")) }
                                td { (t(&h["rate_limit"], "used_this_hour")) " of " (t(&h["rate_limit"], "limit_per_hour")) }
                            }
                            Err(f) => { td colspan="2" { "health unavailable: " (f.message) } }
                        }
                        td { (t(r, "last_successful_call")) }
                        td { (t(r, "last_error")) }
                    } } }
                } }
                (pager("/console/health", cursor, next))
            }
        }
    }
}
