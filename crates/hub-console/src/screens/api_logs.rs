//! API Logs: the request-log explorer. Search the tenant's logged calls
//! (integration, direction, method, result, status code, path prefix,
//! correlation id, time range, text), newest first and paged; one call's
//! request and response (redacted by the hub before they were stored).

use crate::api::{enc, query};
use crate::layout::{empty, error, fragment, is_htmx, loading, page, pager, tenant_only};
use crate::session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// Registers the explorer's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/api-logs", web::get().to(search))
        .route("/console/api-logs/{id}", web::get().to(one));
}

const TITLE: &str = "API Logs";
/// The filters, as the search API names them.
const FILTERS: [&str; 9] = [
    "integration_id",
    "direction",
    "method",
    "status",
    "status_code",
    "path_prefix",
    "correlation_id",
    "from",
    "to",
];

fn t(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A `datetime-local` value (taken as UTC) as RFC 3339; other text as given.
fn rfc3339(v: &str) -> String {
    let v = v.trim();
    if v.len() == 16 && v.as_bytes().get(10) == Some(&b'T') {
        format!("{v}:00Z")
    } else {
        v.to_owned()
    }
}

fn choice(id: &str, label: &str, options: &[&str], current: &str) -> Markup {
    html! {
        div {
            label for=(id) { (label) }
            select #(id) name=(id) {
                option value="" { "All" }
                @for o in options { option value=(o) selected[current == *o] { (o) } }
            }
        }
    }
}

async fn search(
    req: HttpRequest,
    s: Session,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if s.is_operator() {
        return tenant_only(&s, TITLE);
    }
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let mut pairs: Vec<(&str, &str)> = FILTERS.iter().map(|k| (*k, get(k))).collect();
    pairs.push(("q", get("q")));
    let here = format!("/console/api-logs{}", query(&pairs));
    let cursor = Some(get("cursor")).filter(|c| !c.is_empty());
    if is_htmx(&req) {
        let (from, to) = (rfc3339(get("from")), rfc3339(get("to")));
        let mut api: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| match *k {
                "from" => (*k, from.as_str()),
                "to" => (*k, to.as_str()),
                _ => (*k, *v),
            })
            .collect();
        api.push(("limit", "50"));
        api.push(("cursor", cursor.unwrap_or_default()));
        return fragment(
            match s
                .api
                .get(&format!("/api/v1/api-logs/search{}", query(&api)))
                .await
            {
                Ok(v) => table(&v, &here, cursor),
                Err(f) => error(&f),
            },
        );
    }
    let load = match cursor {
        Some(c) => format!(
            "{here}{}cursor={}",
            if here.contains('?') { '&' } else { '?' },
            enc(c)
        ),
        None => here.clone(),
    };
    page(
        Some(&s),
        TITLE,
        "api-logs",
        html! {
            form.filters method="get" action="/console/api-logs" role="search" {
                div { label for="q" { "Text" } input #q type="search" name="q" value=(get("q")) placeholder="3+ characters in the URL or a body"; }
                (choice("direction", "Direction", &["OUTBOUND", "INBOUND"], get("direction")))
                (choice("method", "Method", &["GET", "POST", "PUT", "PATCH", "DELETE"], get("method")))
                (choice("status", "Result", &["SUCCESS", "CLIENT_ERROR", "SERVER_ERROR", "TIMEOUT"], get("status")))
                div { label for="status_code" { "Status code" } input #status_code type="number" name="status_code" min="100" max="599" value=(get("status_code")); }
                div { label for="path_prefix" { "Path prefix" } input #path_prefix type="text" name="path_prefix" value=(get("path_prefix")) size="14"; }
                div { label for="integration_id" { "Integration id" } input #integration_id type="text" name="integration_id" value=(get("integration_id")) size="14"; }
                div { label for="correlation_id" { "Request id" } input #correlation_id type="text" name="correlation_id" value=(get("correlation_id")) size="14"; }
                div { label for="from" { "From (UTC)" } input #from type="datetime-local" name="from" value=(get("from")); }
                div { label for="to" { "To (UTC)" } input #to type="datetime-local" name="to" value=(get("to")); }
                button type="submit" { "Search" }
            }
            (loading(&load))
        },
    )
}

fn table(v: &Value, here: &str, cursor: Option<&str>) -> Markup {
    let rows = v["data"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return empty("No logged call matches these filters.", None);
    }
    html! {
        div.table { table #api-logs {
            thead { tr { th { "When" } th { "Direction" } th { "Method" } th { "Path" } th { "Status" } th { "Time" } th { "Attempt" } } }
            tbody { @for r in &rows { tr {
                td { a href={"/console/api-logs/" (t(r, "id"))} { (t(r, "created_at")) } }
                td { (t(r, "direction")) } td { (t(r, "method")) } td { code { (t(r, "path")) } }
                td { (t(r, "response_status")) " " span.meta { (t(r, "status")) } }
                td { (t(r, "response_time_ms")) " ms" } td { (t(r, "attempt")) }
            } } }
        } }
        (pager(here, cursor, v["next_cursor"].as_str()))
    }
}

async fn one(s: Session, id: web::Path<Uuid>) -> HttpResponse {
    let l = match s.api.get(&format!("/api/v1/api-logs/{id}")).await {
        Ok(l) => l,
        Err(f) => return page(Some(&s), TITLE, "api-logs", error(&f)),
    };
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    page(
        Some(&s),
        &format!("{} {}", t(&l, "method"), t(&l, "path")),
        "api-logs",
        html! {
            dl.facts #log {
                dt { "URL" } dd { code { (t(&l, "url")) } }
                dt { "When" } dd { (t(&l, "created_at")) }
                dt { "Direction" } dd { (t(&l, "direction")) }
                dt { "Result" } dd #log-status { (t(&l, "response_status")) " " (t(&l, "status")) " in " (t(&l, "response_time_ms")) " ms" }
                dt { "Request id" } dd { a href={"/console/api-logs?correlation_id=" (enc(&t(&l, "correlation_id")))} { (t(&l, "correlation_id")) } " (every attempt)" }
                dt { "Attempt" } dd { (t(&l, "attempt")) }
                @if !l["error_message"].is_null() { dt { "Error" } dd { (t(&l, "error_message")) } }
            }
            h2 { "Request" }
            details open { summary { "Headers" } pre { (pretty(&l["headers"])) } }
            details { summary { "Body" } pre { (l["body"].as_str().unwrap_or_default()) } }
            h2 { "Response" }
            details open { summary { "Headers" } pre { (pretty(&l["response_headers"])) } }
            details open { summary { "Body" } pre #response-body { (l["response_body"].as_str().unwrap_or_default()) } }
            p { a href="/console/api-logs" { "Back to the search" } }
        },
    )
}
