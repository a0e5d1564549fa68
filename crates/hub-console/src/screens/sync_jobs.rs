//! Sync Job History: the tenant's sync jobs with filters (integration,
//! status, entity), paged; one job's progress and refused records, and
//! cancelling a job that has not finished.

use crate::api::{enc, query};
use crate::layout::{empty, error, fragment, is_htmx, loading, page, pager, tenant_only};
use crate::session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// Registers the history's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/sync-jobs", web::get().to(list))
        .route("/console/sync-jobs/{id}", web::get().to(one))
        .route("/console/sync-jobs/{id}/cancel", web::post().to(cancel));
}

const TITLE: &str = "Sync Job History";
const STATUSES: [&str; 5] = ["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"];

fn t(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn list(
    req: HttpRequest,
    s: Session,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if s.is_operator() {
        return tenant_only(&s, TITLE);
    }
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let filters = [
        ("integration_id", get("integration_id")),
        ("status", get("status")),
        ("entity_type", get("entity_type")),
    ];
    let here = format!("/console/sync-jobs{}", query(&filters));
    let cursor = Some(get("cursor")).filter(|c| !c.is_empty());
    if is_htmx(&req) {
        let mut api = filters.to_vec();
        api.push(("limit", "50"));
        api.push(("cursor", cursor.unwrap_or_default()));
        return fragment(
            match s
                .api
                .get(&format!("/api/v1/sync-jobs{}", query(&api)))
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
        "sync-jobs",
        html! {
            form.filters method="get" action="/console/sync-jobs" {
                div { label for="integration_id" { "Integration id" } input #integration_id type="text" name="integration_id" value=(get("integration_id")) size="20"; }
                div {
                    label for="status" { "Status" }
                    select #status name="status" {
                        option value="" { "All" }
                        @for st in STATUSES { option value=(st) selected[get("status") == st] { (st) } }
                    }
                }
                div { label for="entity_type" { "Entity" } input #entity_type type="text" name="entity_type" value=(get("entity_type")) size="14"; }
                button type="submit" { "Filter" }
            }
            (loading(&load))
        },
    )
}

fn table(v: &Value, here: &str, cursor: Option<&str>) -> Markup {
    let rows = v["data"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return empty("No sync jobs match these filters.", None);
    }
    html! {
        div.table { table #sync-jobs {
            thead { tr { th { "Created" } th { "Type" } th { "Entity" } th { "Status" } th { "Processed" } th { "Created / updated" } th { "Errors" } th { "Finished" } } }
            tbody { @for r in &rows { tr {
                td { a href={"/console/sync-jobs/" (t(r, "id"))} { (t(r, "created_at")) } }
                td { (t(r, "job_type")) } td { (t(r, "entity_type")) } td { (t(r, "status")) }
                td { (t(r, "processed_records")) } td { (t(r, "created_count")) " / " (t(r, "updated_count")) }
                td { (t(r, "error_count")) } td { (t(r, "completed_at")) }
            } } }
        } }
        (pager(here, cursor, v["next_cursor"].as_str()))
    }
}

async fn one(s: Session, id: web::Path<Uuid>) -> HttpResponse {
    let id = *id;
    let paths = [
        format!("/api/v1/sync-jobs/{id}"),
        format!("/api/v1/sync-jobs/{id}/progress"),
        format!("/api/v1/sync-jobs/{id}/errors?limit=50"),
    ];
    let (job, progress, errors) = futures::join!(
        s.api.get(&paths[0]),
        s.api.get(&paths[1]),
        s.api.get(&paths[2]),
    );
    let job = match job {
        Ok(j) => j,
        Err(f) => return page(Some(&s), TITLE, "sync-jobs", error(&f)),
    };
    let open = matches!(job["status"].as_str(), Some("PENDING" | "RUNNING"));
    page(
        Some(&s),
        &format!(
            "{} {} · sync job",
            t(&job, "job_type"),
            t(&job, "entity_type")
        ),
        "sync-jobs",
        html! {
            dl.facts {
                dt { "Status" } dd #job-status { (t(&job, "status")) }
                dt { "Integration" } dd { a href={"/console/integrations/" (t(&job, "integration_id"))} { (t(&job, "integration_id")) } }
                dt { "Started" } dd { (t(&job, "started_at")) }
                dt { "Finished" } dd { (t(&job, "completed_at")) }
                @if !job["error_message"].is_null() { dt { "Error" } dd { (t(&job, "error_message")) } }
            }
            @if open {
                form method="post" action={"/console/sync-jobs/" (id) "/cancel"} .actions {
                    input type="hidden" name="_csrf" value=(s.csrf);
                    button.danger type="submit" #cancel-job { "Cancel this job" }
                }
            }
            h2 { "Progress" }
            @match &progress {
                Ok(p) => {
                    dl.facts #progress {
                        dt { "Processed" } dd { (t(p, "processed")) @if !p["total"].is_null() { " of " (t(p, "total")) } }
                        dt { "Created / updated / unchanged / deleted" } dd { (t(p, "created")) " / " (t(p, "updated")) " / " (t(p, "unchanged")) " / " (t(p, "deleted")) }
                        dt { "Conflicts" } dd { (t(p, "conflicts")) }
                        dt { "Errors" } dd { (t(p, "errors")) }
                        dt { "Rate" } dd { (t(p, "rate")) " records/s" }
                        dt { "ETA" } dd { (t(p, "eta_seconds")) " s" }
                    }
                }
                Err(f) => { (error(f)) }
            }
            h2 { "Refused records" }
            @match &errors {
                Ok(e) => {
                    @let rows = e["data"].as_array().cloned().unwrap_or_default();
                    @if rows.is_empty() { (empty("No record was refused.", None)) } @else {
                        div.table { table { thead { tr { th { "Record" } th { "Page" } th { "What was wrong" } } }
                            tbody { @for r in &rows { tr { td { (t(r, "external_id")) } td { (t(r, "page")) } td { (t(r, "error")) } } } } } }
                    }
                }
                Err(f) => { (error(f)) }
            }
            p { a href="/console/sync-jobs" { "Back to the history" } }
        },
    )
}

async fn cancel(
    req: HttpRequest,
    s: Session,
    id: web::Path<Uuid>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    match s
        .api
        .post(&format!("/api/v1/sync-jobs/{id}/cancel"), json!({}))
        .await
    {
        Ok(_) => HttpResponse::SeeOther()
            .insert_header(("Location", format!("/console/sync-jobs/{id}")))
            .finish(),
        Err(f) => page(Some(&s), TITLE, "sync-jobs", error(&f)),
    }
}
