//! Webhook Deliveries: a subscription's delivery history with filters
//! (status, event type, time range), live updates (the first page refreshes
//! every 3 s), each delivery's attempts with their request and response,
//! and replay of one delivery or of all failed ones in a range.

use crate::api::{enc, query};
use crate::layout::{empty, error, fragment, is_htmx, page, pager, tenant_only};
use crate::session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// Registers the deliveries' routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/deliveries", web::get().to(list))
        .route("/console/deliveries/{sub}/replay", web::post().to(replay))
        .route("/console/deliveries/{sub}/{id}", web::get().to(one));
}

const TITLE: &str = "Webhook Deliveries";
const STATUSES: [&str; 4] = ["PENDING", "RETRYING", "DELIVERED", "FAILED"];

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

async fn list(
    req: HttpRequest,
    s: Session,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if s.is_operator() {
        return tenant_only(&s, TITLE);
    }
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let sub = get("subscription");
    let (since, until) = (rfc3339(get("since")), rfc3339(get("until")));
    let filters = [
        ("subscription", sub),
        ("status", get("status")),
        ("event_type", get("event_type")),
        ("since", get("since")),
        ("until", get("until")),
    ];
    let here = format!("/console/deliveries{}", query(&filters));
    let cursor = Some(get("cursor")).filter(|c| !c.is_empty());
    if is_htmx(&req) && Uuid::parse_str(sub).is_ok() {
        let api_q = query(&[
            ("status", get("status")),
            ("event_type", get("event_type")),
            ("since", &since),
            ("until", &until),
            ("cursor", cursor.unwrap_or_default()),
            ("limit", "50"),
        ]);
        let live = if cursor.is_none() { &here } else { "" };
        return fragment(
            match s
                .api
                .get(&format!(
                    "/api/v1/webhooks/subscriptions/{sub}/deliveries{api_q}"
                ))
                .await
            {
                Ok(v) => table(sub, &v, &here, cursor, live),
                Err(f) => error(&f),
            },
        );
    }
    let subs = s.api.get("/api/v1/webhooks/subscriptions?limit=200").await;
    let replayed = get("replayed");
    page(
        Some(&s),
        TITLE,
        "deliveries",
        html! {
            @if !replayed.is_empty() {
                div.notice role="status" #replayed { p { "Replayed " (replayed) " deliveries: they are queued again." } }
            }
            @match &subs {
                Err(f) => { (error(f)) }
                Ok(v) if v["data"].as_array().is_none_or(Vec::is_empty) => {
                    (empty("No subscriptions yet: deliveries appear once a subscription exists.", Some(("/console/webhooks", "Configure webhooks"))))
                }
                Ok(v) => {
                    form.filters method="get" action="/console/deliveries" {
                        div {
                            label for="subscription" { "Subscription" }
                            select #subscription name="subscription" required {
                                @if sub.is_empty() { option value="" { "Choose…" } }
                                @for r in v["data"].as_array().into_iter().flatten() {
                                    option value=(t(r, "id")) selected[t(r, "id") == sub] { (t(r, "name")) }
                                }
                            }
                        }
                        div {
                            label for="status" { "Status" }
                            select #status name="status" {
                                option value="" { "All" }
                                @for st in STATUSES { option value=(st) selected[get("status") == st] { (st) } }
                            }
                        }
                        div { label for="event_type" { "Event type" } input #event_type type="text" name="event_type" value=(get("event_type")) size="14"; }
                        div { label for="since" { "From (UTC)" } input #since type="datetime-local" name="since" value=(get("since")); }
                        div { label for="until" { "To (UTC)" } input #until type="datetime-local" name="until" value=(get("until")); }
                        button type="submit" { "Show" }
                    }
                    @if Uuid::parse_str(sub).is_ok() {
                        form method="post" action={"/console/deliveries/" (sub) "/replay"} .actions {
                            input type="hidden" name="_csrf" value=(s.csrf);
                            input type="hidden" name="since" value=(get("since"));
                            input type="hidden" name="until" value=(get("until"));
                            button.secondary type="submit" #replay-failed { "Replay all failed deliveries" @if !get("since").is_empty() || !get("until").is_empty() { " in this range" } }
                        }
                        div.loading hx-get=(match cursor { Some(c) => format!("{here}&cursor={}", enc(c)), None => here.clone() }) hx-trigger="load" hx-swap="outerHTML" aria-busy="true" { p { "Loading…" } }
                    } @else {
                        p { "Choose a subscription to see its deliveries." }
                    }
                }
            }
        },
    )
}

fn status_class(status: &str) -> &'static str {
    match status {
        "DELIVERED" => "badge ok",
        "FAILED" => "badge bad",
        _ => "badge warn",
    }
}

fn table(sub: &str, v: &Value, here: &str, cursor: Option<&str>, live: &str) -> Markup {
    let rows = v["data"].as_array().cloned().unwrap_or_default();
    html! {
        // The first page refreshes itself: new deliveries and status
        // changes appear without reloading.
        div #deliveries-live hx-get=[(!live.is_empty()).then_some(live)] hx-trigger=[(!live.is_empty()).then_some("every 3s")] hx-swap="outerHTML" {
            @if rows.is_empty() {
                (empty("No deliveries match these filters yet.", None))
            } @else {
                div.table { table #deliveries {
                    thead { tr { th { "Created" } th { "Event" } th { "Status" } th { "Attempts" } th { "Last response" } th { "Error" } } }
                    tbody { @for r in &rows { tr data-delivery=(t(r, "id")) {
                        td { a href={"/console/deliveries/" (sub) "/" (t(r, "id"))} { (t(r, "created_at")) } }
                        td { (t(r, "event_type")) }
                        td { span class=(status_class(r["status"].as_str().unwrap_or_default())) { (t(r, "status")) } }
                        td { (t(r, "attempt_number")) }
                        td { (t(r, "response_status")) @if !r["response_time_ms"].is_null() { " · " (t(r, "response_time_ms")) " ms" } }
                        td { (t(r, "error_message")) }
                    } } }
                } }
                (pager(here, cursor, v["next_cursor"].as_str()))
            }
        }
    }
}

async fn one(s: Session, path: web::Path<(Uuid, Uuid)>) -> HttpResponse {
    let (sub, id) = path.into_inner();
    let d = match s
        .api
        .get(&format!(
            "/api/v1/webhooks/subscriptions/{sub}/deliveries/{id}"
        ))
        .await
    {
        Ok(d) => d,
        Err(f) => return page(Some(&s), TITLE, "deliveries", error(&f)),
    };
    let attempts = d["attempts"].as_array().cloned().unwrap_or_default();
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    page(
        Some(&s),
        &format!("Delivery of {}", t(&d, "event_type")),
        "deliveries",
        html! {
            dl.facts {
                dt { "Status" } dd #delivery-status { (t(&d, "status")) }
                dt { "Event id" } dd { code { (t(&d, "event_id")) } }
                dt { "Created" } dd { (t(&d, "created_at")) }
                dt { "Delivered" } dd { (t(&d, "delivered_at")) }
                dt { "Next attempt" } dd { (t(&d, "next_retry_at")) }
            }
            form method="post" action={"/console/deliveries/" (sub) "/replay"} .actions {
                input type="hidden" name="_csrf" value=(s.csrf);
                input type="hidden" name="delivery_id" value=(id);
                button.secondary type="submit" #replay-one { "Replay this delivery" }
            }
            h2 { "Payload" }
            pre { (pretty(&d["payload"])) }
            h2 { "Attempts" }
            @if attempts.is_empty() { (empty("No attempt yet.", None)) }
            @for a in &attempts {
                section.attempt {
                    h3 { "Attempt " (t(a, "attempt_number")) " · " (t(a, "created_at")) }
                    dl.facts {
                        dt { "Request" } dd { code { (t(a, "request_url")) } }
                        dt { "Response" } dd { (t(a, "response_status")) " in " (t(a, "response_time_ms")) " ms" }
                        @if !a["error_message"].is_null() { dt { "Error" } dd { (t(a, "error_message")) } }
                    }
                    details { summary { "Request headers" } pre { (pretty(&a["request_headers"])) } }
                    details { summary { "Response headers" } pre { (pretty(&a["response_headers"])) } }
                    details { summary { "Response body" } pre { (a["response_body"].as_str().unwrap_or_default()) } }
                }
            }
            p { a href={"/console/deliveries?subscription=" (sub)} { "Back to the deliveries" } }
        },
    )
}

async fn replay(
    req: HttpRequest,
    s: Session,
    sub: web::Path<Uuid>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    let text = |k: &str| form.get(k).map(|x| x.trim().to_owned()).unwrap_or_default();
    let body = if text("delivery_id").is_empty() {
        let mut b = json!({"status": "FAILED"});
        if !text("since").is_empty() {
            b["since"] = json!(rfc3339(&text("since")));
        }
        if !text("until").is_empty() {
            b["until"] = json!(rfc3339(&text("until")));
        }
        b
    } else {
        json!({"delivery_ids": [text("delivery_id")]})
    };
    match s
        .api
        .post(
            &format!("/api/v1/webhooks/subscriptions/{sub}/replay"),
            body,
        )
        .await
    {
        Ok(r) => HttpResponse::SeeOther()
            .insert_header((
                "Location",
                format!(
                    "/console/deliveries{}",
                    query(&[
                        ("subscription", &sub.to_string()),
                        ("since", &text("since")),
                        ("until", &text("until")),
                        ("replayed", &t(&r, "replayed")),
                    ])
                ),
            ))
            .finish(),
        Err(f) => page(Some(&s), TITLE, "deliveries", error(&f)),
    }
}
