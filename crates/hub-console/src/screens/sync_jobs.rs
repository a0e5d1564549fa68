//! Sync Job History: the tenant's sync jobs with filters (integration,
//! status, entity), paged; one job with its progress (refreshed every 2 s
//! while it runs), refused records and conflicts (each with both versions
//! and a form to keep either); cancelling a job that has not finished, and
//! rolling back an ended IMPORT after a confirmation (offering to leave the
//! records changed since as they are when the API refuses because of them).

use crate::api::{enc, query};
use crate::layout::{
    empty, error, fragment, is_htmx, loading, page, pager, pager_named, tenant_only,
};
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
        .route("/console/sync-jobs/{id}/live", web::get().to(live))
        .route("/console/sync-jobs/{id}/cancel", web::post().to(cancel))
        .route("/console/sync-jobs/{id}/rollback", web::post().to(rollback))
        .route(
            "/console/sync-jobs/{id}/conflicts/{conflict}/resolve",
            web::post().to(resolve),
        );
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

async fn one(
    s: Session,
    id: web::Path<Uuid>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let conflicts = q.get("conflicts_cursor").map(String::as_str);
    render(&s, *id, conflicts, None).await
}

/// The job's live part alone (htmx polls it every 2 s while the job runs).
async fn live(
    s: Session,
    id: web::Path<Uuid>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let conflicts = q.get("conflicts_cursor").map(String::as_str);
    match job_view(&s, *id, conflicts.filter(|c| !c.is_empty())).await {
        Ok((_, m)) => fragment(m),
        Err(f) => fragment(error(&f)),
    }
}

/// The job's page, with `notice` (an outcome or a problem) above it.
async fn render(
    s: &Session,
    id: Uuid,
    conflicts: Option<&str>,
    notice: Option<Markup>,
) -> HttpResponse {
    match job_view(s, id, conflicts.filter(|c| !c.is_empty())).await {
        Ok((job, m)) => page(
            Some(s),
            &format!(
                "{} {} · sync job",
                t(&job, "job_type"),
                t(&job, "entity_type")
            ),
            "sync-jobs",
            html! {
                @if let Some(n) = notice { (n) }
                (m)
                p { a href="/console/sync-jobs" { "Back to the history" } }
            },
        ),
        Err(f) => page(Some(s), TITLE, "sync-jobs", error(&f)),
    }
}

/// A job: its facts, actions, progress, refused records and conflicts.
/// While it is PENDING or RUNNING the whole part refreshes itself every
/// 2 s; the first view after it ended has no trigger, so polling stops.
async fn job_view(
    s: &Session,
    id: Uuid,
    conflicts_cursor: Option<&str>,
) -> Result<(Value, Markup), crate::api::Failure> {
    let conflicts_path = match conflicts_cursor {
        Some(c) => format!(
            "/api/v1/sync-jobs/{id}/conflicts?limit=50&cursor={}",
            enc(c)
        ),
        None => format!("/api/v1/sync-jobs/{id}/conflicts?limit=50"),
    };
    let paths = [
        format!("/api/v1/sync-jobs/{id}"),
        format!("/api/v1/sync-jobs/{id}/progress"),
        format!("/api/v1/sync-jobs/{id}/errors?limit=50"),
    ];
    let (job, progress, errors, conflicts) = futures::join!(
        s.api.get(&paths[0]),
        s.api.get(&paths[1]),
        s.api.get(&paths[2]),
        s.api.get(&conflicts_path),
    );
    let job = job?;
    let open = matches!(job["status"].as_str(), Some("PENDING" | "RUNNING"));
    let base = format!("/console/sync-jobs/{id}");
    let live = format!(
        "{base}/live{}",
        query(&[("conflicts_cursor", conflicts_cursor.unwrap_or_default())])
    );
    let rollback = job["job_type"] == "IMPORT" && !open && job["rolled_back_at"].is_null();
    let markup = html! {
        div #job hx-get=[open.then_some(&live)] hx-trigger=[open.then_some("every 2s")] hx-swap="outerHTML" {
            dl.facts {
                dt { "Status" } dd #job-status { (t(&job, "status")) }
                dt { "Integration" } dd { a href={"/console/integrations/" (t(&job, "integration_id"))} { (t(&job, "integration_id")) } }
                dt { "Started" } dd { (t(&job, "started_at")) }
                dt { "Finished" } dd { (t(&job, "completed_at")) }
                @if !job["rolled_back_at"].is_null() { dt { "Rolled back" } dd #rolled-back { (t(&job, "rolled_back_at")) } }
                @if !job["error_message"].is_null() { dt { "Error" } dd { (t(&job, "error_message")) } }
            }
            @if open || rollback {
                div.actions {
                    @if open {
                        form method="post" action={(base) "/cancel"} {
                            input type="hidden" name="_csrf" value=(s.csrf);
                            button.danger type="submit" #cancel-job { "Cancel this job" }
                        }
                    }
                    @if rollback {
                        form method="post" action={(base) "/rollback"} data-confirm="rollback" {
                            input type="hidden" name="_csrf" value=(s.csrf);
                            button.danger type="submit" #rollback { "Roll back this import…" }
                            div.confirm role="alertdialog" aria-labelledby="rollback-text" hidden {
                                p #rollback-text { "Roll back this import? Every record it changed gets its earlier version back and the records it created are removed." }
                                button.danger type="submit" #confirm-rollback name="confirm" value="yes" { "Yes, roll it back" }
                            }
                        }
                    }
                }
            }
            h2 { "Progress" @if open { " " span.meta { "(live)" } } }
            @match &progress {
                Ok(p) => {
                    dl.facts #progress {
                        dt { "Processed" } dd #processed { (t(p, "processed")) @if !p["total"].is_null() { " of " (t(p, "total")) } }
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
            h2 { "Conflicts" }
            @match &conflicts {
                Ok(c) => { (conflict_list(s, &base, c, conflicts_cursor)) }
                Err(f) => { (error(f)) }
            }
        }
    };
    Ok((job, markup))
}

/// A job's conflicts: each record's two versions, who won and why, and a
/// form to keep the other (or the same) version instead.
fn conflict_list(s: &Session, base: &str, c: &Value, cursor: Option<&str>) -> Markup {
    let rows = c["data"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return empty("No conflict: no record was changed on both sides.", None);
    }
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    html! {
        ul.conflicts #conflicts {
            @for r in &rows {
                @let cid = t(r, "id");
                li.conflict id={"conflict-" (cid)} {
                    p {
                        strong { "Record " (t(r, "external_id")) } " · "
                        @if r["resolved_at"].is_null() {
                            "kept the " (t(r, "winner").to_lowercase()) " version (" (t(r, "rule")) ")"
                        } @else {
                            span.resolution { "resolved: " (t(r, "resolution")) } " at " (t(r, "resolved_at"))
                        }
                        " " span.meta { (t(r, "created_at")) }
                    }
                    div.versions {
                        div {
                            h3 { "Hub (local)" } p.meta { (t(r, "local_at")) }
                            pre { (pretty(&r["local_version"])) }
                        }
                        div {
                            h3 { "Provider (remote)" } p.meta { (t(r, "remote_at")) }
                            pre { (pretty(&r["remote_version"])) }
                        }
                    }
                    @if r["resolved_at"].is_null() {
                        form.actions method="post" action={(base) "/conflicts/" (cid) "/resolve"} {
                            input type="hidden" name="_csrf" value=(s.csrf);
                            button.secondary type="submit" name="keep" value="local" { "Keep the hub's version" }
                            button.secondary type="submit" name="keep" value="remote" { "Keep the provider's version" }
                        }
                    }
                }
            }
        }
        (pager_named(base, "conflicts_cursor", cursor, c["next_cursor"].as_str()))
    }
}

async fn resolve(
    req: HttpRequest,
    s: Session,
    path: web::Path<(Uuid, Uuid)>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    let (id, conflict) = *path;
    let keep = form.get("keep").cloned().unwrap_or_default();
    match s
        .api
        .post(
            &format!("/api/v1/sync/conflicts/{conflict}/resolve"),
            json!({ "keep": keep }),
        )
        .await
    {
        Ok(_) => HttpResponse::SeeOther()
            .insert_header(("Location", format!("/console/sync-jobs/{id}")))
            .finish(),
        Err(f) => render(&s, id, None, Some(error(&f))).await,
    }
}

async fn rollback(
    req: HttpRequest,
    s: Session,
    id: web::Path<Uuid>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    let id = *id;
    if form.get("confirm").map(String::as_str) != Some("yes") {
        let ask = html! { div.error role="alert" { p { "Confirm the rollback first." } } };
        return render(&s, id, None, Some(ask)).await;
    }
    let skip = form.get("skip_changed").map(String::as_str) == Some("true");
    let path = format!(
        "/api/v1/sync-jobs/{id}/rollback{}",
        if skip { "?skip_changed=true" } else { "" }
    );
    let notice = match s.api.post(&path, json!({})).await {
        Ok(r) => html! {
            div.notice #rollback-done role="status" {
                p { "Rolled back: " (t(&r, "restored")) " record(s) restored, " (t(&r, "removed")) " removed." }
            }
        },
        // Records changed since: offer to roll back the rest.
        Err(f) if f.status == Some(409) && f.message.contains("skip_changed") => html! {
            div.error #rollback-changed role="alert" {
                p { strong { "Nothing was rolled back: " } (f.message) }
                form method="post" action={"/console/sync-jobs/" (id) "/rollback"} {
                    input type="hidden" name="_csrf" value=(s.csrf);
                    input type="hidden" name="confirm" value="yes";
                    input type="hidden" name="skip_changed" value="true";
                    button.danger type="submit" #rollback-skip-changed { "Roll back the rest, leaving the changed records as they are" }
                }
            }
        },
        Err(f) => error(&f),
    };
    render(&s, id, None, Some(notice)).await
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
