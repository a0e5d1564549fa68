//! Integration Details: status and health (last success and error, circuit
//! state, rate-limit usage), settings, recent request logs and sync jobs;
//! test, enable or disable, and delete with a confirmation.

use crate::layout::{empty, error, fragment, page, tenant_only};
use crate::session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// Registers the details' routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/integrations/details", web::get().to(pick))
        .route("/console/integrations/{id}", web::get().to(show))
        .route("/console/integrations/{id}/test", web::post().to(test))
        .route("/console/integrations/{id}/enable", web::post().to(enable))
        .route(
            "/console/integrations/{id}/disable",
            web::post().to(disable),
        )
        .route("/console/integrations/{id}/delete", web::post().to(delete));
}

const TITLE: &str = "Integration Details";

async fn pick(s: Session) -> HttpResponse {
    page(
        Some(&s),
        TITLE,
        "integrations/details",
        html! {
            p { "Open an integration from the " a href="/console/integrations" { "Integration List" } " to see its details." }
        },
    )
}

fn t(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn show(s: Session, id: web::Path<Uuid>) -> HttpResponse {
    if s.is_operator() {
        return tenant_only(&s, TITLE);
    }
    render(&s, *id, None).await
}

async fn render(s: &Session, id: Uuid, notice: Option<Markup>) -> HttpResponse {
    let paths = [
        format!("/api/v1/integrations/{id}"),
        format!("/api/v1/integrations/{id}/health"),
        format!("/api/v1/integrations/{id}/logs?limit=10"),
        format!("/api/v1/sync-jobs?integration_id={id}&limit=10"),
    ];
    let (i, health, logs, jobs) = futures::join!(
        s.api.get(&paths[0]),
        s.api.get(&paths[1]),
        s.api.get(&paths[2]),
        s.api.get(&paths[3]),
    );
    let i = match i {
        Ok(i) => i,
        Err(f) => return page(Some(s), TITLE, "integrations/details", error(&f)),
    };
    let enabled = i["is_enabled"].as_bool().unwrap_or(false);
    let base = format!("/console/integrations/{id}");
    let creds: Vec<String> = i["credentials"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| v["set"].as_bool().unwrap_or(false))
                .map(|(k, v)| match v["last4"].as_str() {
                    Some(l) => format!("{k} (…{l})"),
                    None => k.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    page(
        Some(s),
        &format!("{} · {}", t(&i, "name"), TITLE),
        "integrations/details",
        html! {
            @if let Some(n) = notice { (n) }
            div.actions {
                form hx-post={(base) "/test"} hx-target="#test-result" hx-indicator="#testing" {
                    input type="hidden" name="_csrf" value=(s.csrf);
                    button.secondary type="submit" { "Test connection" }
                }
                @if enabled {
                    form method="post" action={(base) "/disable"} {
                        input type="hidden" name="_csrf" value=(s.csrf);
                        button.secondary type="submit" { "Disable" }
                    }
                } @else {
                    form method="post" action={(base) "/enable"} {
                        input type="hidden" name="_csrf" value=(s.csrf);
                        button type="submit" { "Enable" }
                    }
                }
                form method="post" action={(base) "/delete"} data-confirm="delete" {
                    input type="hidden" name="_csrf" value=(s.csrf);
                    button.danger type="submit" #delete { "Delete…" }
                    div.confirm role="alertdialog" aria-labelledby="confirm-text" hidden {
                        p #confirm-text { "Delete " strong { (t(&i, "name")) } "? Its credentials are erased; this cannot be undone." }
                        button.danger type="submit" #confirm-delete name="confirm" value="yes" { "Yes, delete it" }
                    }
                }
                span #testing .htmx-indicator role="status" { "Testing…" }
            }
            div #test-result aria-live="polite" {}
            h2 { "Status" }
            dl.facts #status {
                dt { "Provider" } dd { (t(&i, "provider_code")) " (" (t(&i, "category")) ")" }
                dt { "Environment" } dd { (t(&i, "environment")) }
                dt { "Status" } dd #integration-status { (t(&i, "status")) }
                dt { "Enabled" } dd #integration-enabled { (if enabled { "yes" } else { "no" }) }
                dt { "Last success" } dd { (t(&i, "last_successful_call")) }
                dt { "Last error" } dd { (t(&i, "last_error")) @if !i["last_error_at"].is_null() { " at " (t(&i, "last_error_at")) } }
                dt { "Errors since last success" } dd { (t(&i, "error_count")) }
            }
            h2 { "Health" }
            @match &health {
                Ok(h) => {
                    @let rl = &h["rate_limit"];
                    dl.facts #health {
                        dt { "Circuit" } dd #circuit-state { (t(h, "circuit_state")) }
                        dt { "Rate limit" } dd { (t(rl, "requests")) " per " (t(rl, "window_seconds")) " s" @if rl["overridden"].as_bool().unwrap_or(false) { " (the integration's own)" } }
                        dt { "Used this window" } dd { (t(rl, "used_this_window")) }
                        dt { "Used this hour" } dd { (t(rl, "used_this_hour")) " of " (t(rl, "limit_per_hour")) }
                        @if !rl["provider_blocked_until"].is_null() { dt { "Provider asked to wait until" } dd { (t(rl, "provider_blocked_until")) } }
                    }
                }
                Err(f) => { (error(f)) }
            }
            h2 { "Settings" }
            dl.facts {
                dt { "Credentials" } dd { @if creds.is_empty() { "none set" } @else { (creds.join(", ")) } }
                dt { "Retries" } dd { (if i["retry_enabled"].as_bool().unwrap_or(false) { "on" } else { "off" }) ", at most " (t(&i, "max_retries")) }
                dt { "Timeout" } dd { (t(&i, "timeout_seconds")) " s" }
                dt { "Sync frequency" } dd { (t(&i, "sync_frequency")) }
                dt { "Config" } dd { pre { (serde_json::to_string_pretty(&i["config"]).unwrap_or_default()) } }
            }
            h2 { "Recent request logs" }
            @match &logs {
                Ok(l) => { (logs_table(l)) }
                Err(f) => { (error(f)) }
            }
            h2 { "Sync jobs" }
            @match &jobs {
                Ok(j) => { (jobs_table(j)) }
                Err(f) => { (error(f)) }
            }
            p { a href="/console/integrations" { "Back to the list" } }
        },
    )
}

fn logs_table(v: &Value) -> Markup {
    let rows = v["data"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return empty("No calls to the provider yet.", None);
    }
    html! {
        div.table { table #logs {
            thead { tr { th { "When" } th { "Method" } th { "Path" } th { "Status" } th { "Time" } th { "Attempt" } } }
            tbody { @for r in &rows { tr {
                td { (t(r, "created_at")) } td { (t(r, "method")) } td { code { (t(r, "path")) } }
                td { (t(r, "response_status")) " " span.meta { (t(r, "status")) } }
                td { (t(r, "response_time_ms")) " ms" } td { (t(r, "attempt")) }
            } } }
        } }
    }
}

fn jobs_table(v: &Value) -> Markup {
    let rows = v["data"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return empty("No sync jobs for this integration.", None);
    }
    html! {
        div.table { table #jobs {
            thead { tr { th { "Created" } th { "Type" } th { "Entity" } th { "Status" } th { "Processed" } th { "Errors" } } }
            tbody { @for r in &rows { tr {
                td { (t(r, "created_at")) } td { (t(r, "job_type")) } td { (t(r, "entity_type")) }
                td { (t(r, "status")) } td { (t(r, "processed_records")) } td { (t(r, "error_count")) }
            } } }
        } }
    }
}

async fn test(
    req: HttpRequest,
    s: Session,
    id: web::Path<Uuid>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    fragment(
        match s
            .api
            .post(&format!("/api/v1/integrations/{id}/test"), json!({}))
            .await
        {
            Ok(r) => {
                let ok = r["ok"].as_bool().unwrap_or(false);
                html! {
                    div class=(if ok { "notice" } else { "error" }) role="status" #test-outcome {
                        @if ok { p { strong { "Connection OK" } " (HTTP " (t(&r, "status")) ", " (t(&r, "latency_ms")) " ms)." } }
                        @else { p { strong { "The connection test failed: " } (t(&r, "error")) " (HTTP " (t(&r, "status")) ")" } }
                    }
                }
            }
            Err(f) => error(&f),
        },
    )
}

async fn change(
    req: HttpRequest,
    s: Session,
    id: Uuid,
    form: &HashMap<String, String>,
    action: &str,
    done: &str,
) -> HttpResponse {
    if let Err(r) = s.check(&req, form) {
        return *r;
    }
    let notice = match s
        .api
        .post(&format!("/api/v1/integrations/{id}/{action}"), json!({}))
        .await
    {
        Ok(_) => html! { div.notice role="status" { p { (done) } } },
        Err(f) => error(&f),
    };
    render(&s, id, Some(notice)).await
}

async fn enable(
    req: HttpRequest,
    s: Session,
    id: web::Path<Uuid>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    change(
        req,
        s,
        *id,
        &form,
        "enable",
        "Enabled: the connection test passed.",
    )
    .await
}

async fn disable(
    req: HttpRequest,
    s: Session,
    id: web::Path<Uuid>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    change(
        req,
        s,
        *id,
        &form,
        "disable",
        "Disabled: no calls are made until it is enabled again.",
    )
    .await
}

async fn delete(
    req: HttpRequest,
    s: Session,
    id: web::Path<Uuid>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    if form.get("confirm").map(String::as_str) != Some("yes") {
        return render(
            &s,
            *id,
            Some(html! { div.error role="alert" { p { "Confirm the deletion first." } } }),
        )
        .await;
    }
    match s
        .api
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/integrations/{id}"),
            None,
        )
        .await
    {
        Ok(_) => HttpResponse::SeeOther()
            .insert_header(("Location", "/console/integrations"))
            .finish(),
        Err(f) => render(&s, *id, Some(error(&f))).await,
    }
}
