//! Webhook Configuration: OUTBOUND subscriptions (URL, event types with
//! patterns, auth, headers, retry policy; create, edit, send a test, the
//! secret shown once) and INBOUND endpoints (the URL to give the provider,
//! signature scheme, IP allowlist; create, secret rotation shown once).

use crate::Console;
use crate::api::{Failure, enc};
use crate::layout::{empty, error, fragment, is_htmx, loading, page, pager_named, tenant_only};
use crate::session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// Registers the configuration's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/webhooks", web::get().to(show))
        .route(
            "/console/webhooks/subscriptions",
            web::post().to(create_subscription),
        )
        .route(
            "/console/webhooks/subscriptions/{id}",
            web::get().to(edit_subscription),
        )
        .route(
            "/console/webhooks/subscriptions/{id}",
            web::post().to(update_subscription),
        )
        .route(
            "/console/webhooks/subscriptions/{id}/test",
            web::post().to(test_subscription),
        )
        .route(
            "/console/webhooks/endpoints",
            web::post().to(create_endpoint),
        )
        .route(
            "/console/webhooks/endpoints/{id}/rotate",
            web::post().to(rotate_endpoint),
        );
}

const TITLE: &str = "Webhook Configuration";
const AUTH_TYPES: [&str; 5] = ["HMAC", "NONE", "BASIC", "API_KEY", "OAUTH2"];
const SCHEMES: [&str; 13] = [
    "standard-webhooks",
    "github",
    "stripe",
    "shopify",
    "slack",
    "hubspot-v3",
    "twilio",
    "quickbooks",
    "xero",
    "samsara",
    "hmac-sha256",
    "hmac-sha1",
    "none",
];
const HANDLERS: [&str; 4] = ["CUSTOM", "LOAD_STATUS", "TRACKING", "INVOICE"];

fn t(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

fn list_of(raw: Option<&String>) -> Vec<String> {
    raw.map(|r| {
        r.split([',', '\n'])
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
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
    if is_htmx(&req) {
        let part = q.get("part").map(String::as_str).unwrap_or("subscriptions");
        let mut path = format!(
            "/api/v1/webhooks/{}?limit=50",
            if part == "endpoints" {
                "endpoints"
            } else {
                "subscriptions"
            }
        );
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", enc(c)));
        }
        return fragment(match s.api.get(&path).await {
            Ok(v) if part == "endpoints" => endpoints_table(&s, &v, cursor),
            Ok(v) => subscriptions_table(&v, cursor),
            Err(f) => error(&f),
        });
    }
    // Each list pages with its own parameter (`cursor_subscriptions`, `cursor_endpoints`).
    let with_cursor = |part: &str| match q.get(&format!("cursor_{part}")).filter(|c| !c.is_empty())
    {
        Some(c) => format!("/console/webhooks?part={part}&cursor={}", enc(c)),
        None => format!("/console/webhooks?part={part}"),
    };
    page(
        Some(&s),
        TITLE,
        "webhooks",
        html! {
            h2 { "Outbound subscriptions" }
            p.hint { "Where the hub sends events: each matching event becomes a signed delivery." }
            (loading(&with_cursor("subscriptions")))
            details {
                summary { "New subscription" }
                (subscription_form(&s, "/console/webhooks/subscriptions", &Value::Null, None))
            }
            h2 { "Inbound endpoints" }
            p.hint { "Where providers send their webhooks: give them the URL and the secret." }
            (loading(&with_cursor("endpoints")))
            details {
                summary { "New inbound endpoint" }
                (endpoint_form(&s, None))
            }
        },
    )
}

fn subscriptions_table(v: &Value, cursor: Option<&str>) -> Markup {
    let rows = v["data"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return empty("No subscriptions yet: create one below.", None);
    }
    html! {
        div.table { table #subscriptions {
            thead { tr { th { "Name" } th { "URL" } th { "Event types" } th { "Status" } th { "Circuit" } th { "Delivered / failed" } th { span.meta { "Actions" } } } }
            tbody { @for r in &rows { tr {
                td { a href={"/console/webhooks/subscriptions/" (t(r, "id"))} { (t(r, "name")) } }
                td { code { (t(r, "url")) } }
                td { (t(r, "event_types")) }
                td { (t(r, "status")) @if !r["is_enabled"].as_bool().unwrap_or(true) { " (disabled)" } }
                td { (t(r, "circuit_state")) }
                td { (t(r, "total_delivered")) " / " (t(r, "total_failed")) }
                td { a href={"/console/deliveries?subscription=" (t(r, "id"))} { "Deliveries" } }
            } } }
        } }
        (pager_named("/console/webhooks", "cursor_subscriptions", cursor, v["next_cursor"].as_str()))
    }
}

fn endpoints_table(s: &Session, v: &Value, cursor: Option<&str>) -> Markup {
    let rows = v["data"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return empty("No inbound endpoints yet: create one below.", None);
    }
    html! {
        div.table { table #endpoints {
            thead { tr { th { "Path" } th { "URL to give the provider" } th { "Scheme" } th { "Allowed sources" } th { "Status" } th { "Received" } th { span.meta { "Actions" } } } }
            tbody { @for r in &rows { tr {
                td { (t(r, "endpoint_path")) }
                td { code.endpoint-url { (t(r, "url_path")) } }
                td { (t(r, "signature_algorithm")) }
                td { @if r["ip_whitelist"].is_null() { "anyone" } @else { (t(r, "ip_whitelist")) } }
                td { (t(r, "status")) }
                td { (t(r, "total_received")) }
                td {
                    form method="post" action={"/console/webhooks/endpoints/" (t(r, "id")) "/rotate"} {
                        input type="hidden" name="_csrf" value=(s.csrf);
                        button.secondary type="submit" aria-label={"Rotate the secret of " (t(r, "endpoint_path"))} { "Rotate secret" }
                    }
                }
            } } }
        } }
        (pager_named("/console/webhooks", "cursor_endpoints", cursor, v["next_cursor"].as_str()))
    }
}

fn subscription_form(s: &Session, action: &str, v: &Value, problem: Option<&Failure>) -> Markup {
    let get = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let events = v["event_types"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let headers = v["headers"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, x)| format!("{k}: {}", x.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let intervals = v["retry_intervals"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let auth = v["auth_type"].as_str().unwrap_or("HMAC");
    let status = v["status"].as_str().unwrap_or("ACTIVE");
    html! {
        form method="post" action=(action) #subscription-form {
            @if let Some(f) = problem { (error(f)) }
            input type="hidden" name="_csrf" value=(s.csrf);
            label for="sub-name" { "Name" }
            input #sub-name type="text" name="name" required maxlength="200" value=(get("name"));
            label for="sub-url" { "URL" }
            input #sub-url type="url" name="url" required value=(get("url"));
            label for="sub-events" { "Event types" }
            p.hint #sub-events-hint { "Comma-separated: exact types, prefix.* patterns or *." }
            input #sub-events type="text" name="event_types" required value=(events) aria-describedby="sub-events-hint";
            label for="sub-auth" { "Auth" }
            select #sub-auth name="auth_type" {
                @for a in AUTH_TYPES { option value=(a) selected[auth == a] { (a) } }
            }
            label for="sub-headers" { "Extra headers" }
            p.hint #sub-headers-hint { "One \"Name: value\" per line." }
            textarea #sub-headers name="headers" rows="3" aria-describedby="sub-headers-hint" { (headers) }
            label for="sub-retries" { "Max retries" }
            input #sub-retries type="number" name="max_retries" min="0" max="20" value=[v["max_retries"].as_i64()];
            label for="sub-intervals" { "Retry intervals (seconds, comma-separated)" }
            input #sub-intervals type="text" name="retry_intervals" value=(intervals) placeholder="60, 300, 900, 3600, 7200";
            @if !v.is_null() {
                label for="sub-status" { "Status" }
                select #sub-status name="status" {
                    @for st in ["ACTIVE", "PAUSED"] { option value=(st) selected[status == st] { (st) } }
                }
            }
            div.actions { button type="submit" { @if v.is_null() { "Create subscription" } @else { "Save" } } }
        }
    }
}

fn subscription_body(form: &HashMap<String, String>, creating: bool) -> Result<Value, Failure> {
    let mut b = Map::new();
    let text = |k: &str| form.get(k).map(|x| x.trim().to_owned()).unwrap_or_default();
    b.insert("name".into(), json!(text("name")));
    b.insert("url".into(), json!(text("url")));
    b.insert(
        "event_types".into(),
        json!(list_of(form.get("event_types"))),
    );
    b.insert("auth_type".into(), json!(text("auth_type")));
    let mut headers = Map::new();
    let mut bad = Vec::new();
    for line in text("headers")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        match line.split_once(':') {
            Some((k, v)) => {
                headers.insert(k.trim().to_owned(), json!(v.trim()));
            }
            None => bad.push((
                "headers".to_owned(),
                format!("\"{line}\" is not \"Name: value\""),
            )),
        }
    }
    b.insert("headers".into(), Value::Object(headers));
    if !text("max_retries").is_empty() {
        match text("max_retries").parse::<i64>() {
            Ok(n) => {
                b.insert("max_retries".into(), json!(n));
            }
            Err(_) => bad.push(("max_retries".into(), "must be a whole number".into())),
        }
    }
    let intervals = list_of(form.get("retry_intervals"));
    if !intervals.is_empty() {
        match intervals
            .iter()
            .map(|x| x.parse::<i64>())
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(n) => {
                b.insert("retry_intervals".into(), json!(n));
            }
            Err(_) => bad.push((
                "retry_intervals".into(),
                "must be whole numbers of seconds".into(),
            )),
        }
    }
    if !creating && !text("status").is_empty() {
        b.insert("status".into(), json!(text("status")));
    }
    if bad.is_empty() {
        Ok(Value::Object(b))
    } else {
        Err(Failure {
            status: None,
            code: Some("validation_failed".into()),
            message: "Some fields are not valid.".into(),
            fields: bad,
        })
    }
}

/// The page showing a secret once.
fn secret_page(s: &Session, title: &str, what: Markup, secret: &str, back: &str) -> HttpResponse {
    page(
        Some(s),
        title,
        "webhooks",
        html! {
            div.notice role="status" { p { "Copy the secret now: it is not shown again." } }
            (what)
            label for="new-secret" { "Signing secret" }
            div.secret {
                input #new-secret type="text" readonly value=(secret) size="60";
                button.secondary type="button" data-copy="new-secret" { "Copy" }
            }
            p { a href=(back) { "Continue" } }
        },
    )
}

async fn create_subscription(
    req: HttpRequest,
    s: Session,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    let again = |f: Failure| {
        page(
            Some(&s),
            TITLE,
            "webhooks",
            html! {
                h2 { "New subscription" }
                (subscription_form(&s, "/console/webhooks/subscriptions", &Value::Null, Some(&f)))
            },
        )
    };
    let body = match subscription_body(&form, true) {
        Ok(b) => b,
        Err(f) => return again(f),
    };
    match s.api.post("/api/v1/webhooks/subscriptions", body).await {
        Ok(created) => {
            let id = t(&created, "id");
            secret_page(
                &s,
                "Subscription created",
                html! { p { "Deliveries to " code { (t(&created, "url")) } " are signed with this secret (Standard Webhooks)." } },
                created["secret"].as_str().unwrap_or_default(),
                &format!("/console/webhooks/subscriptions/{id}"),
            )
        }
        Err(f) => again(f),
    }
}

async fn subscription_page(s: &Session, id: Uuid, notice: Option<Markup>) -> HttpResponse {
    let v = match s
        .api
        .get(&format!("/api/v1/webhooks/subscriptions/{id}"))
        .await
    {
        Ok(v) => v,
        Err(f) => return page(Some(s), TITLE, "webhooks", error(&f)),
    };
    page(
        Some(s),
        &format!("{} · subscription", t(&v, "name")),
        "webhooks",
        html! {
            @if let Some(n) = notice { (n) }
            dl.facts {
                dt { "Status" } dd #subscription-status { (t(&v, "status")) }
                dt { "Circuit" } dd { (t(&v, "circuit_state")) }
                dt { "Secret" } dd { @if v["secret_set"].as_bool().unwrap_or(false) { "set (…" (t(&v, "secret_last4")) ")" } @else { "none" } }
                dt { "Sent / delivered / failed" } dd { (t(&v, "total_sent")) " / " (t(&v, "total_delivered")) " / " (t(&v, "total_failed")) }
            }
            div.actions {
                form hx-post={"/console/webhooks/subscriptions/" (id) "/test"} hx-target="#send-result" {
                    input type="hidden" name="_csrf" value=(s.csrf);
                    button.secondary type="submit" { "Send test" }
                }
                a href={"/console/deliveries?subscription=" (id)} { "Deliveries" }
            }
            div #send-result aria-live="polite" {}
            h2 { "Settings" }
            (subscription_form(s, &format!("/console/webhooks/subscriptions/{id}"), &v, None))
            p { a href="/console/webhooks" { "Back to webhooks" } }
        },
    )
}

async fn edit_subscription(s: Session, id: web::Path<Uuid>) -> HttpResponse {
    if s.is_operator() {
        return tenant_only(&s, TITLE);
    }
    subscription_page(&s, *id, None).await
}

async fn update_subscription(
    req: HttpRequest,
    s: Session,
    id: web::Path<Uuid>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    let notice = match subscription_body(&form, false) {
        Err(f) => error(&f),
        Ok(body) => match s
            .api
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/webhooks/subscriptions/{id}"),
                Some(body),
            )
            .await
        {
            Ok(_) => html! { div.notice role="status" { p { "Saved." } } },
            Err(f) => error(&f),
        },
    };
    subscription_page(&s, *id, Some(notice)).await
}

async fn test_subscription(
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
            .post(
                &format!("/api/v1/webhooks/subscriptions/{id}/test"),
                json!({}),
            )
            .await
        {
            Ok(r) if r["ok"].as_bool().unwrap_or(false) => html! {
                div.notice role="status" #send-ok { p { "The receiver answered HTTP " (t(&r, "status")) " in " (t(&r, "latency_ms")) " ms." } }
            },
            Ok(r) => html! {
                div.error role="alert" #send-failed { p { "The test delivery failed: " (t(&r, "error")) " (HTTP " (t(&r, "status")) ")" } }
            },
            Err(f) => error(&f),
        },
    )
}

fn endpoint_form(s: &Session, problem: Option<&Failure>) -> Markup {
    html! {
        form method="post" action="/console/webhooks/endpoints" #endpoint-form {
            @if let Some(f) = problem { (error(f)) }
            input type="hidden" name="_csrf" value=(s.csrf);
            label for="ep-path" { "Path" }
            p.hint #ep-path-hint { "The last part of the URL: a-z, 0-9, - and _." }
            input #ep-path type="text" name="endpoint_path" required aria-describedby="ep-path-hint";
            label for="ep-scheme" { "Signature scheme" }
            select #ep-scheme name="signature_algorithm" {
                @for sc in SCHEMES { option value=(sc) { (sc) } }
            }
            label for="ep-handler" { "Handler" }
            select #ep-handler name="handler_type" {
                @for h in HANDLERS { option value=(h) { (h) } }
            }
            label for="ep-events" { "Event types (comma-separated; empty = all)" }
            input #ep-events type="text" name="event_types";
            label for="ep-ips" { "IP allowlist (CIDRs, comma-separated; empty = anyone)" }
            input #ep-ips type="text" name="ip_whitelist";
            label for="ep-secret" { "Provider's signing secret (empty = generate one)" }
            input #ep-secret type="password" name="secret_key" autocomplete="off";
            div.actions { button type="submit" { "Create endpoint" } }
        }
    }
}

async fn create_endpoint(
    req: HttpRequest,
    console: web::Data<Console>,
    s: Session,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    let text = |k: &str| form.get(k).map(|x| x.trim().to_owned()).unwrap_or_default();
    let mut body = json!({
        "endpoint_path": text("endpoint_path"),
        "signature_algorithm": text("signature_algorithm"),
        "handler_type": text("handler_type"),
        "event_types": list_of(form.get("event_types")),
    });
    let ips = list_of(form.get("ip_whitelist"));
    if !ips.is_empty() {
        body["ip_whitelist"] = json!(ips);
    }
    if !text("secret_key").is_empty() {
        body["secret_key"] = json!(text("secret_key"));
    }
    match s.api.post("/api/v1/webhooks/endpoints", body).await {
        Ok(e) => secret_page(
            &s,
            "Inbound endpoint created",
            endpoint_facts(&console, &e),
            e["secret_key"].as_str().unwrap_or("(the one you gave)"),
            "/console/webhooks",
        ),
        Err(f) => page(
            Some(&s),
            TITLE,
            "webhooks",
            html! {
                h2 { "New inbound endpoint" }
                (endpoint_form(&s, Some(&f)))
            },
        ),
    }
}

fn endpoint_facts(console: &Console, e: &Value) -> Markup {
    let url = console.public(e["url_path"].as_str().unwrap_or_default());
    html! {
        dl.facts {
            dt { "URL to give the provider" } dd { code #endpoint-url { (url) } }
            dt { "Scheme" } dd { (t(e, "signature_algorithm")) " (header " code { (t(e, "signature_header")) } ")" }
        }
    }
}

async fn rotate_endpoint(
    req: HttpRequest,
    console: web::Data<Console>,
    s: Session,
    id: web::Path<Uuid>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    match s
        .api
        .post(
            &format!("/api/v1/webhooks/endpoints/{id}/rotate-secret"),
            json!({}),
        )
        .await
    {
        Ok(e) => secret_page(
            &s,
            "Secret rotated",
            html! {
                (endpoint_facts(&console, &e))
                p { "The previous secret is still accepted until " (t(&e, "previous_secret_expires_at")) "." }
            },
            e["secret_key"].as_str().unwrap_or_default(),
            "/console/webhooks",
        ),
        Err(f) => page(Some(&s), TITLE, "webhooks", error(&f)),
    }
}
