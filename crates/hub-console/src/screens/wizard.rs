//! Integration Setup Wizard: step 1 is a form generated from the provider's
//! config JSON Schema, with the credentials its auth type takes and the
//! environment; step 2 connects (OAuth redirect for OAuth apps), tests the
//! connection showing the provider's own error, and enables.

use crate::Console;
use crate::api::{Failure, enc};
use crate::layout::{error, fragment, page, tenant_only};
use crate::session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Registers the wizard's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/setup", web::get().to(start))
        .route("/console/setup/{code}", web::get().to(step1))
        .route("/console/setup/{code}", web::post().to(create))
        .route("/console/setup/{code}/{id}", web::get().to(step2))
        .route("/console/setup/{code}/{id}/test", web::post().to(test))
        .route("/console/setup/{code}/{id}/oauth", web::post().to(oauth))
        .route("/console/setup/{code}/{id}/enable", web::post().to(enable));
}

const TITLE: &str = "Integration Setup Wizard";

fn steps(current: u8) -> Markup {
    let items = ["1. Settings and credentials", "2. Connect, test and enable"];
    html! {
        ol.steps aria-label="Steps" {
            @for (i, label) in items.iter().enumerate() {
                li aria-current=[(usize::from(current) == i + 1).then_some("step")] { (label) }
            }
        }
    }
}

async fn start(s: Session) -> HttpResponse {
    page(
        Some(&s),
        TITLE,
        "setup",
        html! {
            (steps(1))
            p { "Choose the provider to connect in the " a href="/console/marketplace" { "Integration Marketplace" } " and press Connect." }
        },
    )
}

async fn provider(s: &Session, code: &str) -> Result<Value, Failure> {
    s.api
        .get(&format!("/api/v1/integrations/providers/{}", enc(code)))
        .await
}

async fn step1(s: Session, code: web::Path<String>) -> HttpResponse {
    if s.is_operator() {
        return tenant_only(&s, TITLE);
    }
    match provider(&s, &code).await {
        Ok(p) => settings_form(&s, &p, &HashMap::new(), None),
        Err(f) => page(Some(&s), TITLE, "setup", error(&f)),
    }
}

/// The input of one config property (`config.<name>` in the form).
fn field(name: &str, schema: &Value, required: bool, value: Option<&str>) -> Markup {
    let id = format!("config-{name}");
    let kind = schema["type"].as_str().unwrap_or("string");
    let hint = schema["description"].as_str();
    let input_type = match (kind, schema["format"].as_str()) {
        ("integer" | "number", _) => "number",
        (_, Some("uri")) => "url",
        (_, Some("email")) => "email",
        _ => "text",
    };
    let key = format!("config.{name}");
    html! {
        @if kind == "boolean" {
            label.inline for=(id) {
                input #(id) type="checkbox" name=(key) checked[value == Some("on")];
                (name)
            }
        } @else {
            label for=(id) { (name) @if required { " (required)" } }
            @if let Some(h) = hint { p.hint #{(id) "-hint"} { (h) } }
            @if let Some(options) = schema["enum"].as_array() {
                select #(id) name=(key) required[required] {
                    @if !required { option value="" { "—" } }
                    @for o in options {
                        @let o = o.as_str().unwrap_or_default();
                        option value=(o) selected[value == Some(o)] { (o) }
                    }
                }
            } @else {
                input #(id) type=(input_type) name=(key) value=[value] required[required]
                    aria-describedby=[hint.map(|_| format!("{id}-hint"))]
                    placeholder=[(kind == "array").then_some("comma-separated")];
            }
        }
    }
}

fn settings_form(
    s: &Session,
    p: &Value,
    values: &HashMap<String, String>,
    problem: Option<&Failure>,
) -> HttpResponse {
    let code = p["code"].as_str().unwrap_or_default();
    let m = &p["manifest"];
    let auth = m["auth_type"].as_str().unwrap_or("NONE");
    let schema = &m["config_schema"];
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let props = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let v = |k: &str| values.get(k).map(String::as_str);
    let env = v("environment").unwrap_or("PRODUCTION");
    let name = p["name"].as_str().unwrap_or(code);
    page(
        Some(s),
        &format!("Connect {name}"),
        "setup",
        html! {
            (steps(1))
            @if let Some(f) = problem { (error(f)) }
            form method="post" action={"/console/setup/" (enc(code))} {
                input type="hidden" name="_csrf" value=(s.csrf);
                fieldset {
                    legend { "Integration" }
                    label for="name" { "Name" }
                    input #name type="text" name="name" required maxlength="200" value=(v("name").unwrap_or(name));
                    label for="environment" { "Environment" }
                    select #environment name="environment" {
                        @for e in ["PRODUCTION", "SANDBOX", "TEST"] { option value=(e) selected[env == e] { (e) } }
                    }
                }
                fieldset {
                    legend { "Settings" }
                    @if props.is_empty() { p.hint { "This provider has no settings." } }
                    @for (k, prop) in &props {
                        (field(k, prop, required.contains(&k.as_str()), v(&format!("config.{k}"))))
                    }
                }
                fieldset {
                    legend { "Credentials (" (auth) ")" }
                    @match auth {
                        "API_KEY" => {
                            label for="cred-api_key" { "API key" }
                            input #cred-api_key type="password" name="cred.api_key" autocomplete="off";
                        }
                        "BASIC" => {
                            label for="cred-username" { "Username" }
                            input #cred-username type="text" name="cred.username" autocomplete="off" value=[v("cred.username")];
                            label for="cred-password" { "Password" }
                            input #cred-password type="password" name="cred.password" autocomplete="off";
                        }
                        "OAUTH2" => {
                            p.hint { "Give your OAuth app's client id and secret to connect through the provider's consent page in the next step, or paste an access token obtained elsewhere." }
                            label for="cred-client_id" { "Client id" }
                            input #cred-client_id type="text" name="cred.client_id" autocomplete="off" value=[v("cred.client_id")];
                            label for="cred-client_secret" { "Client secret" }
                            input #cred-client_secret type="password" name="cred.client_secret" autocomplete="off";
                            label for="cred-access_token" { "Access token (instead)" }
                            input #cred-access_token type="password" name="cred.access_token" autocomplete="off";
                        }
                        _ => { p.hint { "This provider needs no credentials." } }
                    }
                    p.hint { "Credentials are encrypted at rest and never shown again." }
                }
                div.actions {
                    button type="submit" { "Save and continue" }
                    a href={"/console/marketplace/" (enc(code))} { "Cancel" }
                }
            }
        },
    )
}

/// The integration body of the step 1 form, typed per the config schema.
fn body(code: &str, schema: &Value, form: &HashMap<String, String>) -> Result<Value, Failure> {
    let mut config = Map::new();
    let mut bad = Vec::new();
    for (k, prop) in schema["properties"].as_object().into_iter().flatten() {
        let raw = form.get(&format!("config.{k}")).map(|s| s.trim());
        let kind = prop["type"].as_str().unwrap_or("string");
        let value = match (kind, raw) {
            ("boolean", r) => Some(Value::Bool(r == Some("on"))),
            (_, None | Some("")) => None,
            ("integer", Some(r)) => match r.parse::<i64>() {
                Ok(n) => Some(json!(n)),
                Err(_) => {
                    bad.push((
                        format!("config.{k}"),
                        format!("must be a whole number (got \"{r}\")"),
                    ));
                    None
                }
            },
            ("number", Some(r)) => match r.parse::<f64>() {
                Ok(n) => Some(json!(n)),
                Err(_) => {
                    bad.push((
                        format!("config.{k}"),
                        format!("must be a number (got \"{r}\")"),
                    ));
                    None
                }
            },
            ("array", Some(r)) => Some(Value::Array(
                r.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(|x| Value::String(x.to_owned()))
                    .collect(),
            )),
            (_, Some(r)) => Some(Value::String(r.to_owned())),
        };
        if let Some(v) = value {
            config.insert(k.clone(), v);
        }
    }
    if !bad.is_empty() {
        return Err(Failure {
            status: None,
            code: Some("validation_failed".into()),
            message: "Some settings are not valid.".into(),
            fields: bad,
        });
    }
    let mut credentials = Map::new();
    for (k, v) in form {
        if let Some(name) = k.strip_prefix("cred.")
            && !v.trim().is_empty()
        {
            credentials.insert(name.to_owned(), Value::String(v.trim().to_owned()));
        }
    }
    let mut b = json!({
        "provider_code": code,
        "name": form.get("name").map(|s| s.trim()).unwrap_or_default(),
        "environment": form.get("environment").map(String::as_str).unwrap_or("PRODUCTION"),
        "config": config,
    });
    if !credentials.is_empty() {
        b["credentials"] = Value::Object(credentials);
    }
    Ok(b)
}

async fn create(
    req: HttpRequest,
    s: Session,
    code: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    if s.is_operator() {
        return tenant_only(&s, TITLE);
    }
    let p = match provider(&s, &code).await {
        Ok(p) => p,
        Err(f) => return page(Some(&s), TITLE, "setup", error(&f)),
    };
    // Secrets are not sent back into the form.
    let kept: HashMap<String, String> = form
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "cred.api_key"
                    | "cred.password"
                    | "cred.client_secret"
                    | "cred.access_token"
                    | "_csrf"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let b = match body(&code, &p["manifest"]["config_schema"], &form) {
        Ok(b) => b,
        Err(f) => return settings_form(&s, &p, &kept, Some(&f)),
    };
    match s.api.post("/api/v1/integrations", b).await {
        Ok(created) => {
            let id = created["id"].as_str().unwrap_or_default();
            HttpResponse::SeeOther()
                .insert_header(("Location", format!("/console/setup/{}/{id}", enc(&code))))
                .finish()
        }
        Err(f) => settings_form(&s, &p, &kept, Some(&f)),
    }
}

fn step2_page(s: &Session, code: &str, i: &Value, problem: Option<&Failure>) -> HttpResponse {
    let id = i["id"].as_str().unwrap_or_default();
    let base = format!("/console/setup/{}/{id}", enc(code));
    let status = i["status"].as_str().unwrap_or_default();
    let creds = &i["credentials"];
    let has = |k: &str| creds[k]["set"].as_bool().unwrap_or(false);
    let oauth_app = i["auth_type"].as_str() == Some("OAUTH2") && has("client_id");
    page(
        Some(s),
        &format!("Connect {}", i["name"].as_str().unwrap_or_default()),
        "setup",
        html! {
            (steps(2))
            @if let Some(f) = problem { (error(f)) }
            dl.facts {
                dt { "Provider" } dd { (i["provider_code"].as_str().unwrap_or_default()) }
                dt { "Environment" } dd { (i["environment"].as_str().unwrap_or_default()) }
                dt { "Status" } dd #integration-status { (status) }
                dt { "Enabled" } dd { (if i["is_enabled"].as_bool().unwrap_or(false) { "yes" } else { "no" }) }
            }
            @if oauth_app && status == "PENDING_AUTH" {
                form method="post" action={(base) "/oauth"} {
                    input type="hidden" name="_csrf" value=(s.csrf);
                    p { "Connect through the provider's consent page; you come back here afterwards." }
                    button type="submit" { "Connect with " (i["provider_code"].as_str().unwrap_or_default()) }
                }
            }
            h2 { "Connection test" }
            p.hint { "Calls the provider with these credentials and shows its answer." }
            form hx-post={(base) "/test"} hx-target="#test-result" hx-swap="innerHTML" hx-indicator="#testing" {
                input type="hidden" name="_csrf" value=(s.csrf);
                div.actions {
                    button.secondary type="submit" { "Test connection" }
                    span #testing .htmx-indicator role="status" { "Testing…" }
                }
            }
            div #test-result aria-live="polite" {}
            h2 { "Enable" }
            form method="post" action={(base) "/enable"} {
                input type="hidden" name="_csrf" value=(s.csrf);
                p.hint { "Enabling runs the connection test first and refuses when it fails." }
                div.actions {
                    button type="submit" { "Enable" }
                    a href={"/console/integrations/" (id)} { "Skip: go to the integration" }
                }
            }
        },
    )
}

async fn step2(s: Session, path: web::Path<(String, uuid::Uuid)>) -> HttpResponse {
    let (code, id) = path.into_inner();
    match s.api.get(&format!("/api/v1/integrations/{id}")).await {
        Ok(i) => step2_page(&s, &code, &i, None),
        Err(f) => page(Some(&s), TITLE, "setup", error(&f)),
    }
}

/// The result of a connection test, as a fragment.
pub fn test_result(r: &Value) -> Markup {
    let status = r["status"].as_u64();
    let latency = r["latency_ms"].as_u64().unwrap_or_default();
    html! {
        @if r["ok"].as_bool().unwrap_or(false) {
            div.notice role="status" #test-ok {
                p { strong { "Connection OK." } " The provider answered"
                    @if let Some(st) = status { " HTTP " (st) } " in " (latency) " ms." }
            }
        } @else {
            div.error role="alert" #test-failed {
                p { strong { "The connection test failed." } }
                p { "The provider said: " q.provider-error { (r["error"].as_str().unwrap_or("no answer")) } }
                p.meta { @if let Some(st) = status { "HTTP " (st) " · " } (latency) " ms" }
            }
        }
    }
}

async fn test(
    req: HttpRequest,
    s: Session,
    path: web::Path<(String, uuid::Uuid)>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    let (_, id) = path.into_inner();
    fragment(
        match s
            .api
            .post(&format!("/api/v1/integrations/{id}/test"), json!({}))
            .await
        {
            Ok(r) => test_result(&r),
            Err(f) => error(&f),
        },
    )
}

async fn oauth(
    req: HttpRequest,
    console: web::Data<Console>,
    s: Session,
    path: web::Path<(String, uuid::Uuid)>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    let (code, id) = path.into_inner();
    let back = format!("/console/setup/{}/{id}", enc(&code));
    let body = json!({ "redirect_after": console.public(&back) });
    match s
        .api
        .post(&format!("/api/v1/integrations/{id}/oauth/authorize"), body)
        .await
    {
        Ok(a) => {
            let to = a["authorization_url"].as_str().unwrap_or(&back).to_owned();
            HttpResponse::SeeOther()
                .insert_header(("Location", to))
                .finish()
        }
        Err(f) => match s.api.get(&format!("/api/v1/integrations/{id}")).await {
            Ok(i) => step2_page(&s, &code, &i, Some(&f)),
            Err(_) => page(Some(&s), TITLE, "setup", error(&f)),
        },
    }
}

async fn enable(
    req: HttpRequest,
    s: Session,
    path: web::Path<(String, uuid::Uuid)>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    let (code, id) = path.into_inner();
    match s
        .api
        .post(&format!("/api/v1/integrations/{id}/enable"), json!({}))
        .await
    {
        Ok(_) => HttpResponse::SeeOther()
            .insert_header(("Location", format!("/console/integrations/{id}")))
            .finish(),
        Err(f) => match s.api.get(&format!("/api/v1/integrations/{id}")).await {
            Ok(i) => step2_page(&s, &code, &i, Some(&f)),
            Err(_) => page(Some(&s), TITLE, "setup", error(&f)),
        },
    }
}
