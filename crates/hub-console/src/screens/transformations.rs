//! Transformation Builder: the tenant's templates and the system ones
//! (filters, paging; a system template is read-only and can be copied), and
//! the editor: source and target format, a sample (pasted or read from a
//! file in the browser), the source fields the sample holds, one row per
//! mapping rule (source → target with the engine's steps, type, default and
//! condition), a live preview with the engine's errors at their rule, a
//! validation, saving as a new version, and the template's versions.
//!
//! The source fields come from the API's own preview: the sample is run
//! through an identity rule (`$` → `$`) in its source format, and the tree
//! that comes back is flattened into paths. The fields are therefore what
//! the codecs make of the sample for every format (XML attributes, CSV rows,
//! X12 loops), which a parser in the browser could only guess for JSON.

use crate::api::{Failure, enc, query};
use crate::layout::{empty, error, fragment, is_htmx, loading, page, pager, tenant_only};
use crate::session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Registers the builder's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // A resource of POSTs only, taking the builder's large forms; the guard
    // lets other methods reach the GET routes of the same path.
    let post = |path: &str| {
        web::resource(path)
            .guard(actix_web::guard::Post())
            .app_data(web::FormConfig::default().limit(MAX_FORM_BYTES))
    };
    cfg.route("/console/transformations", web::get().to(list))
        .service(post("/console/transformations").route(web::post().to(create)))
        .route("/console/transformations/new", web::get().to(new))
        .route("/console/transformations/row", web::get().to(row))
        .service(post("/console/transformations/preview").route(web::post().to(preview)))
        .service(post("/console/transformations/fields").route(web::post().to(fields)))
        .service(post("/console/transformations/validate").route(web::post().to(validate)))
        .route("/console/transformations/{id}", web::get().to(open))
        .service(post("/console/transformations/{id}").route(web::post().to(save_version)))
        .route("/console/transformations/{id}/copy", web::post().to(copy));
}

const TITLE: &str = "Transformation Builder";
const SLUG: &str = "transformations";
const FORMATS: [&str; 4] = ["JSON", "XML", "CSV", "X12"];
const TYPES: [&str; 4] = ["number", "integer", "boolean", "string"];
/// Largest sample, in bytes: the API takes JSON bodies of up to 1 MiB, and
/// a sample's text grows when it is escaped into one.
pub const MAX_SAMPLE_BYTES: usize = 256 * 1024;
/// Largest form the builder takes (a sample, URL-encoded, and the rules).
const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;
/// Most source or target fields listed.
const MAX_FIELDS: usize = 400;
/// Most versions shown in the history.
const MAX_VERSIONS: i64 = 50;

fn t(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A page with `status` (a 404 for a template the tenant cannot see).
fn page_with(status: StatusCode, s: &Session, title: &str, body: Markup) -> HttpResponse {
    let mut r = page(Some(s), title, SLUG, body);
    *r.status_mut() = status;
    r
}

/// The status of the page that shows `f`: the API's 4xx, else 502.
fn status_of(f: &Failure) -> StatusCode {
    f.status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .filter(StatusCode::is_client_error)
        .unwrap_or(StatusCode::BAD_GATEWAY)
}

// ---------------------------------------------------------------- the list

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
        ("category", get("category")),
        ("source_format", get("source_format")),
        ("target_format", get("target_format")),
        ("is_system", get("is_system")),
    ];
    let here = format!("/console/transformations{}", query(&filters));
    let cursor = Some(get("cursor")).filter(|c| !c.is_empty());
    if is_htmx(&req) {
        let mut api = filters.to_vec();
        api.push(("limit", "50"));
        api.push(("cursor", cursor.unwrap_or_default()));
        return fragment(
            match s
                .api
                .get(&format!("/api/v1/transformations{}", query(&api)))
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
    let select = |id: &str, label: &str| {
        html! {
            div {
                label for=(id) { (label) }
                select #(id) name=(id) {
                    option value="" { "Any" }
                    @for f in FORMATS { option value=(f) selected[get(id) == f] { (f) } }
                }
            }
        }
    };
    page(
        Some(&s),
        TITLE,
        SLUG,
        html! {
            p.hint { "Templates turn one format into another: yours, and the hub's system templates (read-only; copy one to change it)." }
            div.actions { a.button href="/console/transformations/new" #new-template { "New template" } }
            form.filters method="get" action="/console/transformations" {
                div { label for="category" { "Category" } input #category type="text" name="category" value=(get("category")) size="12"; }
                (select("source_format", "From"))
                (select("target_format", "To"))
                div {
                    label for="is_system" { "Kind" }
                    select #is_system name="is_system" {
                        option value="" { "Yours and system" }
                        option value="false" selected[get("is_system") == "false"] { "Yours" }
                        option value="true" selected[get("is_system") == "true"] { "System" }
                    }
                }
                button type="submit" { "Filter" }
            }
            (loading(&load))
        },
    )
}

fn table(v: &Value, here: &str, cursor: Option<&str>) -> Markup {
    let rows = v["data"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return empty(
            "No template matches these filters.",
            Some(("/console/transformations/new", "New template")),
        );
    }
    html! {
        div.table { table #templates {
            thead { tr { th { "Name" } th { "Code" } th { "Formats" } th { "Category" } th { "Version" } th { "Kind" } } }
            tbody { @for r in &rows { tr {
                td { a href={"/console/transformations/" (t(r, "id"))} { (t(r, "name")) } }
                td { code { (t(r, "code")) } }
                td { (t(r, "source_format")) " → " (t(r, "target_format")) }
                td { (t(r, "category")) }
                td { (t(r, "version")) }
                td { @if r["is_system"].as_bool().unwrap_or(false) { span.badge { "system" } } @else { span.badge.ok { "yours" } } }
            } } }
        } }
        (pager(here, cursor, v["next_cursor"].as_str()))
    }
}

// ------------------------------------------------------ the editor's state

/// One mapping rule as the editor shows it: the common keys as fields, and
/// every other key (`each`, `where`, `description`, …) kept as JSON, so a
/// rule the fields cannot show is saved back unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
struct Row {
    /// Names the row's fields (`rule.<key>.target`) and elements.
    key: String,
    /// `source`, `sources`, `value` or `expr`: what `input` is.
    kind: String,
    input: String,
    target: String,
    /// Step names separated by commas, or a JSON array.
    steps: String,
    ty: String,
    required: bool,
    default: String,
    when: String,
    /// The rule's other keys, a JSON object.
    extra: String,
}

/// A constant as the editor shows it: a string as itself when that cannot
/// be read back as anything else, else JSON.
fn constant_text(v: &Value) -> String {
    match v {
        Value::String(s)
            if !s.is_empty() && s.trim() == s && serde_json::from_str::<Value>(s).is_err() =>
        {
            s.clone()
        }
        other => other.to_string(),
    }
}

/// A constant as typed: JSON when it reads as JSON, else the text.
fn constant_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

impl Row {
    /// A new row's key: random, so rows added in the browser never clash.
    fn new_key() -> String {
        format!("n{}", &Uuid::new_v4().simple().to_string()[..10])
    }

    fn of_rule(key: String, rule: &Value) -> Self {
        let mut rest = rule.as_object().cloned().unwrap_or_default();
        let mut row = Row {
            key,
            kind: "source".into(),
            ..Row::default()
        };
        let mut take = |k: &str, fits: fn(&Value) -> bool| match rest.get(k) {
            Some(v) if fits(v) => rest.remove(k),
            _ => None,
        };
        if let Some(Value::String(s)) = take("target", Value::is_string) {
            row.target = s;
        }
        if let Some(v) = take("source", |v| v.is_string() || v.is_array()) {
            match v {
                Value::String(s) => row.input = s,
                other => {
                    row.kind = "sources".into();
                    row.input = other.to_string();
                }
            }
        } else if let Some(v) = take("value", |_| true) {
            row.kind = "value".into();
            row.input = constant_text(&v);
        } else if let Some(Value::String(s)) = take("expr", Value::is_string) {
            row.kind = "expr".into();
            row.input = s;
        }
        if let Some(Value::Array(steps)) = take("steps", Value::is_array) {
            let names: Option<Vec<&str>> = steps
                .iter()
                .map(|s| {
                    s.as_str()
                        .filter(|n| !n.contains(',') && !n.starts_with('['))
                })
                .collect();
            row.steps = match names {
                Some(n) if !n.is_empty() => n.join(", "),
                _ => Value::Array(steps.clone()).to_string(),
            };
        }
        if let Some(Value::String(s)) = take("type", Value::is_string) {
            row.ty = s;
        }
        if take("required", |v| v == &Value::Bool(true)).is_some() {
            row.required = true;
        }
        if let Some(v) = take("default", |_| true) {
            row.default = constant_text(&v);
        }
        if let Some(Value::String(s)) = take("when", Value::is_string) {
            row.when = s;
        }
        if !rest.is_empty() {
            row.extra = Value::Object(rest).to_string();
        }
        row
    }

    fn is_blank(&self) -> bool {
        [
            &self.input,
            &self.target,
            &self.steps,
            &self.default,
            &self.when,
            &self.extra,
        ]
        .iter()
        .all(|s| s.trim().is_empty())
            && !self.required
    }

    /// The rule this row says, or what is wrong with it.
    fn rule(&self) -> Result<Value, Vec<String>> {
        let mut problems = Vec::new();
        let mut rule = match self.extra.trim() {
            "" => Map::new(),
            text => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    problems.push("Other keys: must be a JSON object ({\"each\": […]})".into());
                    Map::new()
                }
                Err(e) => {
                    problems.push(format!("Other keys: not JSON ({e})"));
                    Map::new()
                }
            },
        };
        let target = self.target.trim();
        if !target.is_empty() {
            rule.insert("target".into(), json!(target));
        }
        let input = self.input.trim();
        if !input.is_empty() {
            match self.kind.as_str() {
                "value" => {
                    rule.insert("value".into(), constant_value(input));
                }
                "expr" => {
                    rule.insert("expr".into(), json!(input));
                }
                "sources" => match serde_json::from_str::<Value>(input) {
                    Ok(v @ Value::Array(_)) => {
                        rule.insert("source".into(), v);
                    }
                    _ => problems.push(
                        "Source paths: a JSON list of paths, like [\"FirstName\", \"LastName\"]"
                            .into(),
                    ),
                },
                _ => {
                    rule.insert("source".into(), json!(input));
                }
            }
        }
        let steps = self.steps.trim();
        if steps.starts_with('[') {
            match serde_json::from_str::<Value>(steps) {
                Ok(v @ Value::Array(_)) => {
                    rule.insert("steps".into(), v);
                }
                _ => problems.push(
                    "Steps: a JSON list like [\"trim\", {\"pad_left\": [8, \"0\"]}], or names separated by commas".into(),
                ),
            }
        } else if !steps.is_empty() {
            let names: Vec<Value> = steps
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| json!(n))
                .collect();
            rule.insert("steps".into(), Value::Array(names));
        }
        if !self.ty.is_empty() {
            rule.insert("type".into(), json!(self.ty));
        }
        if self.required {
            rule.insert("required".into(), json!(true));
        }
        if !self.default.trim().is_empty() {
            rule.insert("default".into(), constant_value(self.default.trim()));
        }
        if !self.when.trim().is_empty() {
            rule.insert("when".into(), json!(self.when.trim()));
        }
        if problems.is_empty() {
            Ok(Value::Object(rule))
        } else {
            Err(problems)
        }
    }
}

/// What the editor holds: a template's fields, its rules as rows, and the
/// sample (which is not part of the template).
#[derive(Debug, Clone, Default)]
struct Draft {
    code: String,
    name: String,
    description: String,
    category: String,
    source_format: String,
    target_format: String,
    source_options: String,
    target_options: String,
    validation_rules: String,
    /// The rule set's other keys (`description`, `version`), a JSON object.
    rules_meta: String,
    rows: Vec<Row>,
    sample: String,
}

/// `v` as the editor's JSON text: empty for `null`.
fn json_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// An optional JSON field of the form: `None` when empty.
fn json_field(
    text: &str,
    label: &str,
    problems: &mut Vec<(String, String)>,
    field: &str,
) -> Option<Value> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push((field.to_owned(), format!("{label}: not JSON ({e})")));
            None
        }
    }
}

/// The body parts built from a draft, with which row each rule came from.
struct Built {
    mapping_rules: Value,
    source_options: Option<Value>,
    target_options: Option<Value>,
    validation_rules: Option<Value>,
    /// `keys[i]` is the row of `rules[i]`.
    keys: Vec<String>,
}

/// What is wrong with a draft before the API sees it: fields, and rows.
#[derive(Default)]
struct Problems {
    fields: Vec<(String, String)>,
    rows: HashMap<String, Vec<String>>,
}

impl Problems {
    fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.rows.is_empty()
    }

    fn failure(&self) -> Failure {
        let mut fields = self.fields.clone();
        if !self.rows.is_empty() {
            fields.push((
                "mapping_rules".into(),
                "some rules are not complete: see the rules marked below".into(),
            ));
        }
        Failure {
            status: None,
            code: Some("validation_failed".into()),
            message: "Some fields are not valid.".into(),
            fields,
        }
    }
}

impl Draft {
    fn of_template(v: &Value) -> Self {
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        let (rules, meta) = match &v["mapping_rules"] {
            Value::Array(a) => (a.clone(), String::new()),
            Value::Object(o) => {
                let mut meta = o.clone();
                let rules = match meta.remove("rules") {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                let meta = if meta.is_empty() {
                    String::new()
                } else {
                    Value::Object(meta).to_string()
                };
                (rules, meta)
            }
            _ => (Vec::new(), String::new()),
        };
        Draft {
            code: text("code"),
            name: text("name"),
            description: text("description"),
            category: text("category"),
            source_format: text("source_format"),
            target_format: text("target_format"),
            source_options: json_text(&v["source_options"]),
            target_options: json_text(&v["target_options"]),
            validation_rules: json_text(&v["validation_rules"]),
            rules_meta: meta,
            rows: rules
                .iter()
                .enumerate()
                .map(|(i, r)| Row::of_rule(format!("r{i}"), r))
                .collect(),
            sample: String::new(),
        }
    }

    /// The draft a form posted; rows in the order the page had them.
    fn of_form(form: &[(String, String)]) -> Self {
        let mut d = Draft::default();
        let mut rows: Vec<Row> = Vec::new();
        for (name, value) in form {
            if let Some(rest) = name.strip_prefix("rule.") {
                let Some((key, field)) = rest.split_once('.') else {
                    continue;
                };
                let key: String = key
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(20)
                    .collect();
                let at = match rows.iter().position(|r| r.key == key) {
                    Some(i) => i,
                    None => {
                        rows.push(Row {
                            key,
                            kind: "source".into(),
                            ..Row::default()
                        });
                        rows.len() - 1
                    }
                };
                let row = &mut rows[at];
                let value = value.clone();
                match field {
                    "kind" => row.kind = value,
                    "input" => row.input = value,
                    "target" => row.target = value,
                    "steps" => row.steps = value,
                    "type" => row.ty = value,
                    "required" => row.required = value == "yes",
                    "default" => row.default = value,
                    "when" => row.when = value,
                    "extra" => row.extra = value,
                    _ => {}
                }
                continue;
            }
            let value = value.clone();
            match name.as_str() {
                "code" => d.code = value,
                "name" => d.name = value,
                "description" => d.description = value,
                "category" => d.category = value,
                "source_format" => d.source_format = value,
                "target_format" => d.target_format = value,
                "source_options" => d.source_options = value,
                "target_options" => d.target_options = value,
                "validation_rules" => d.validation_rules = value,
                "rules_meta" => d.rules_meta = value,
                // Browsers send line breaks as CRLF; the sample is read as it was pasted.
                "input" => d.sample = value.replace("\r\n", "\n"),
                _ => {}
            }
        }
        d.rows = rows;
        d
    }

    /// The rules and JSON parts, or what is wrong with them.
    fn build(&self) -> Result<Built, Problems> {
        let mut p = Problems::default();
        let mut rules = Vec::new();
        let mut keys = Vec::new();
        for row in self.rows.iter().filter(|r| !r.is_blank()) {
            match row.rule() {
                Ok(r) => {
                    rules.push(r);
                    keys.push(row.key.clone());
                }
                Err(e) => {
                    p.rows.insert(row.key.clone(), e);
                }
            }
        }
        let mut fields = Vec::new();
        let meta = json_field(
            &self.rules_meta,
            "Rule set keys",
            &mut fields,
            "mapping_rules",
        );
        let mut mapping = match meta {
            Some(Value::Object(m)) => m,
            Some(_) => {
                fields.push((
                    "mapping_rules".into(),
                    "Rule set keys: must be a JSON object".into(),
                ));
                Map::new()
            }
            None => Map::new(),
        };
        mapping.insert("rules".into(), Value::Array(rules));
        let source_options = json_field(
            &self.source_options,
            "Source options",
            &mut fields,
            "source_options",
        );
        let target_options = json_field(
            &self.target_options,
            "Target options",
            &mut fields,
            "target_options",
        );
        let validation_rules = json_field(
            &self.validation_rules,
            "Output schema",
            &mut fields,
            "validation_rules",
        );
        p.fields = fields;
        if !p.is_empty() {
            return Err(p);
        }
        Ok(Built {
            mapping_rules: Value::Object(mapping),
            source_options,
            target_options,
            validation_rules,
            keys,
        })
    }

    /// The formats, options and rules as the preview and validate calls
    /// take them inline.
    fn inline(&self, b: &Built) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("source_format".into(), json!(self.source_format));
        m.insert("target_format".into(), json!(self.target_format));
        m.insert("mapping_rules".into(), b.mapping_rules.clone());
        for (k, v) in [
            ("source_options", &b.source_options),
            ("target_options", &b.target_options),
            ("validation_rules", &b.validation_rules),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v.clone());
            }
        }
        m
    }

    /// The body of a create (`creating`) or of a new version.
    fn body(&self, b: &Built, creating: bool) -> Value {
        let mut m = self.inline(b);
        if creating {
            m.insert("code".into(), json!(self.code.trim()));
        }
        m.insert("name".into(), json!(self.name.trim()));
        m.insert("description".into(), json!(self.description.trim()));
        m.insert("category".into(), json!(self.category.trim()));
        Value::Object(m)
    }
}

/// The index `N` of the first `rules[N]` in `text`.
fn rule_index(text: &str) -> Option<usize> {
    let at = text.find("rules[")? + "rules[".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The problems the API reported, by the row of the rule they concern.
fn by_row(keys: &[String], problems: &[(String, String)]) -> HashMap<String, Vec<String>> {
    let mut rows: HashMap<String, Vec<String>> = HashMap::new();
    for (at, message) in problems {
        if let Some(key) = rule_index(at).and_then(|i| keys.get(i)) {
            rows.entry(key.clone()).or_default().push(message.clone());
        }
    }
    rows
}

// ------------------------------------------------------- the editor's HTML

fn format_select(name: &str, label: &str, current: &str) -> Markup {
    html! {
        div {
            label for=(name) { (label) }
            select #(name) name=(name) {
                @for f in FORMATS { option value=(f) selected[current.eq_ignore_ascii_case(f)] { (f) } }
            }
        }
    }
}

fn row_markup(r: &Row, problems: Option<&Vec<String>>) -> Markup {
    let k = &r.key;
    let id = |f: &str| format!("rule-{k}-{f}");
    let name = |f: &str| format!("rule.{k}.{f}");
    let kinds = [
        ("source", "Source path"),
        ("sources", "Source paths (JSON list)"),
        ("value", "Constant"),
        ("expr", "Expression"),
    ];
    let has_options = !(r.steps.is_empty()
        && r.ty.is_empty()
        && !r.required
        && r.default.is_empty()
        && r.when.is_empty()
        && r.extra.is_empty());
    html! {
        fieldset.rule #{"rule-" (k)} {
            // The number is a CSS counter: it follows rows added and removed.
            legend { span.rule-number {} }
            div.rule-main {
                div.rule-from {
                    label for=(id("kind")) { "Take" }
                    select #(id("kind")) name=(name("kind")) {
                        @for (v, l) in kinds { option value=(v) selected[r.kind == v] { (l) } }
                    }
                    label.sr-only for=(id("input")) { "Source path, constant or expression" }
                    input #(id("input")) .rule-input type="text" name=(name("input")) value=(r.input)
                        placeholder="customer.name" autocomplete="off" spellcheck="false";
                }
                span.arrow aria-hidden="true" { "→" }
                div.rule-to {
                    label for=(id("target")) { "Target path" }
                    input #(id("target")) type="text" name=(name("target")) value=(r.target)
                        placeholder="name" autocomplete="off" spellcheck="false";
                }
            }
            details.rule-options open[has_options] {
                summary { "Steps, type, default, condition" }
                div.rule-grid {
                    div {
                        label for=(id("steps")) { "Steps" }
                        p.hint #(id("steps-hint")) { "Names separated by commas (trim, upper), or a JSON list: [{\"date\": {\"to\": \"date\"}}]." }
                        input #(id("steps")) type="text" name=(name("steps")) value=(r.steps) aria-describedby=(id("steps-hint")) autocomplete="off" spellcheck="false";
                    }
                    div {
                        label for=(id("type")) { "Type" }
                        select #(id("type")) name=(name("type")) {
                            option value="" { "as read" }
                            @for ty in TYPES { option value=(ty) selected[r.ty == ty] { (ty) } }
                        }
                    }
                    div {
                        label for=(id("required")) { "Required" }
                        select #(id("required")) name=(name("required")) {
                            option value="no" { "no: a missing source is a warning" }
                            option value="yes" selected[r.required] { "yes: a missing source fails" }
                        }
                    }
                    div {
                        label for=(id("default")) { "Default" }
                        input #(id("default")) type="text" name=(name("default")) value=(r.default) autocomplete="off";
                    }
                    div {
                        label for=(id("when")) { "Only when (expression)" }
                        input #(id("when")) type="text" name=(name("when")) value=(r.when) placeholder="exists(Amount)" autocomplete="off" spellcheck="false";
                    }
                    div {
                        label for=(id("extra")) { "Other keys (JSON object: each, where, description)" }
                        textarea #(id("extra")) name=(name("extra")) rows="2" spellcheck="false" { (r.extra) }
                    }
                }
            }
            div.rule-foot {
                button.secondary.small type="button" data-remove-rule=(k) { "Remove rule" }
            }
            div.rule-errors #{"rule-err-" (k)} aria-live="polite" {
                @if let Some(p) = problems { (row_problems(p)) }
            }
        }
    }
}

fn row_problems(p: &[String]) -> Markup {
    html! { ul.problems { @for m in p { li { (m) } } } }
}

/// The error slots of every row, for an htmx out-of-band swap: each row's
/// problems, or nothing.
fn row_slots(d: &Draft, rows: &HashMap<String, Vec<String>>) -> Markup {
    html! {
        @for r in &d.rows {
            div #{"rule-err-" (r.key)} hx-swap-oob="innerHTML" {
                @if let Some(p) = rows.get(&r.key) { (row_problems(p)) }
            }
        }
    }
}

/// Where the editor's form posts: a new template, or a new version of `id`.
fn action(id: Option<Uuid>) -> String {
    match id {
        Some(id) => format!("/console/transformations/{id}"),
        None => "/console/transformations".to_owned(),
    }
}

/// The editor: the form with its panels. `stored` is the version shown
/// (none for a new template).
fn editor(
    s: &Session,
    d: &Draft,
    stored: Option<&Value>,
    problem: Option<&Failure>,
    rows: &HashMap<String, Vec<String>>,
) -> Markup {
    let id = stored.and_then(|v| v["id"].as_str()?.parse::<Uuid>().ok());
    let system = stored.is_some_and(|v| v["is_system"].as_bool().unwrap_or(false));
    html! {
        @if let Some(f) = problem { (error(f)) }
        form #builder method="post" action=(action(id))
            hx-post="/console/transformations/preview"
            hx-trigger="load, input changed delay:400ms, rules-changed from:body delay:50ms"
            hx-target="#preview" hx-swap="innerHTML" hx-sync="this:replace"
            data-sample-key=(if d.code.is_empty() { "new" } else { d.code.as_str() }) {
            input type="hidden" name="_csrf" value=(s.csrf);
            input type="hidden" name="rules_meta" value=(d.rules_meta);
            fieldset {
                legend { "Template" }
                div.fields {
                    @if stored.is_none() {
                        div {
                            label for="code" { "Code" }
                            p.hint #code-hint { "Letters, digits, _ - and . (at most 50); it cannot change later." }
                            input #code type="text" name="code" required maxlength="50" value=(d.code) aria-describedby="code-hint" autocomplete="off";
                        }
                    }
                    div {
                        label for="name" { "Name" }
                        input #name type="text" name="name" required maxlength="200" value=(d.name);
                    }
                    div {
                        label for="category" { "Category" }
                        input #category type="text" name="category" maxlength="50" value=(d.category) placeholder="LOAD, INVOICE, CRM…";
                    }
                    div {
                        label for="description" { "Description" }
                        input #description type="text" name="description" value=(d.description);
                    }
                }
            }
            fieldset {
                legend { "Formats" }
                div.fields {
                    (format_select("source_format", "Source format", &d.source_format))
                    span.arrow aria-hidden="true" { "→" }
                    (format_select("target_format", "Target format", &d.target_format))
                }
            }
            fieldset {
                legend { "Sample input" }
                label for="sample" { "Sample in the source format" }
                p.hint #sample-hint { "Paste a sample, or read one from a file (at most " (MAX_SAMPLE_BYTES / 1024) " KiB). It is not saved with the template." }
                textarea #sample name="input" rows="8" maxlength=(MAX_SAMPLE_BYTES) spellcheck="false" aria-describedby="sample-hint" { (d.sample) }
                label for="sample-file" { "Or read a sample file" }
                input #sample-file type="file" data-sample-file="sample" data-max-bytes=(MAX_SAMPLE_BYTES)
                    accept=".json,.xml,.csv,.txt,.edi,.x12,application/json,text/xml,text/csv,text/plain";
                p.hint #sample-file-status aria-live="polite" {}
            }
            div.builder {
                section.panel aria-labelledby="source-fields-title" {
                    h2 #source-fields-title { "Source fields" }
                    p.hint { "From the sample. Choose one to map it." }
                    div #source-fields aria-live="polite"
                        hx-post="/console/transformations/fields" hx-target="this" hx-swap="innerHTML" hx-sync="this:replace"
                        hx-trigger="load, input changed delay:400ms from:#sample, input from:#source_format, input changed delay:400ms from:#source_options" {
                        p.meta { "Paste or read a sample to list its fields." }
                    }
                }
                section.panel.rules-panel aria-labelledby="rules-title" {
                    h2 #rules-title { "Mapping rules" }
                    p.hint { "Each rule writes one target, in order. Paths like " code { "lines[*].sku" } "; see the API reference for steps and expressions." }
                    div #rules .rules {
                        @for r in &d.rows { (row_markup(r, rows.get(&r.key))) }
                    }
                    div.actions {
                        button.secondary type="button" #add-rule hx-get="/console/transformations/row" hx-target="#rules" hx-swap="beforeend" hx-sync="this:drop" { "Add rule" }
                    }
                }
                section.panel aria-labelledby="target-fields-title" {
                    h2 #target-fields-title { "Target fields" }
                    p.hint { "What each rule wrote on the sample." }
                    div #target-fields aria-live="polite" { p.meta { "Nothing mapped yet." } }
                }
            }
            section aria-labelledby="preview-title" {
                h2 #preview-title { "Preview" span.htmx-indicator.meta { " updating…" } }
                div #preview aria-live="polite" { p.meta { "Loading…" } }
            }
            details.advanced open[!d.source_options.is_empty() || !d.target_options.is_empty() || !d.validation_rules.is_empty()] {
                summary { "Format options and output schema (JSON)" }
                label for="source_options" { "Source options" }
                p.hint #source-options-hint { "CSV: {\"delimiter\": \";\", \"header\": true}; XML: {\"trim_text\": true}; X12 takes none." }
                textarea #source_options name="source_options" rows="3" spellcheck="false" aria-describedby="source-options-hint" { (d.source_options) }
                label for="target_options" { "Target options" }
                p.hint #target-options-hint { "JSON: {\"pretty\": true}; XML: {\"root\": \"Invoice\"}; CSV: {\"delimiter\": \";\"}." }
                textarea #target_options name="target_options" rows="3" spellcheck="false" aria-describedby="target-options-hint" { (d.target_options) }
                label for="validation_rules" { "Output schema (JSON Schema, or {\"input\": …, \"output\": …})" }
                textarea #validation_rules name="validation_rules" rows="6" spellcheck="false" { (d.validation_rules) }
            }
            div.actions {
                button.secondary type="button" #validate hx-post="/console/transformations/validate" hx-target="#validation" hx-swap="innerHTML" hx-sync="this:replace" { "Validate" }
                @if system {
                    span.meta { "System templates are read-only: make a copy below to save changes." }
                } @else {
                    button type="submit" #save { @if stored.is_some() { "Save as a new version" } @else { "Create template" } }
                }
            }
            div #validation aria-live="polite" {}
        }
    }
}

// ----------------------------------------------------------- the handlers

async fn new(s: Session, q: web::Query<HashMap<String, String>>) -> HttpResponse {
    if s.is_operator() {
        return tenant_only(&s, TITLE);
    }
    let pick = |k: &str| {
        q.get(k)
            .map(|f| f.to_ascii_uppercase())
            .filter(|f| FORMATS.contains(&f.as_str()))
            .unwrap_or_else(|| "JSON".to_owned())
    };
    let d = Draft {
        source_format: pick("source_format"),
        target_format: pick("target_format"),
        rows: vec![Row {
            key: Row::new_key(),
            kind: "source".into(),
            ..Row::default()
        }],
        ..Draft::default()
    };
    page(
        Some(&s),
        "New transformation template",
        SLUG,
        html! {
            (editor(&s, &d, None, None, &HashMap::new()))
            p { a href="/console/transformations" { "Back to the templates" } }
        },
    )
}

/// `GET /console/transformations/row`: a new, empty rule row (with
/// `?source=` filled in, for a source field that was chosen).
async fn row(_s: Session, q: web::Query<HashMap<String, String>>) -> HttpResponse {
    let source = q.get("source").cloned().unwrap_or_default();
    // The target suggested for a source path: its last name.
    let target = source
        .rsplit(['.', '['])
        .map(|seg| seg.trim_end_matches(']').trim_matches(['"', '\'']).trim())
        .find(|seg| !seg.is_empty() && *seg != "*" && seg.parse::<i64>().is_err())
        .unwrap_or_default()
        .to_owned();
    let r = Row {
        key: Row::new_key(),
        kind: "source".into(),
        input: source,
        target,
        ..Row::default()
    };
    let mut resp = fragment(row_markup(&r, None));
    resp.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("hx-trigger-after-settle"),
        actix_web::http::header::HeaderValue::from_static("rules-changed"),
    );
    resp
}

/// The form's fields as pairs, and as a map for the CSRF check.
fn checked(
    req: &HttpRequest,
    s: &Session,
    form: &[(String, String)],
) -> Result<(), Box<HttpResponse>> {
    let map: HashMap<String, String> = form.iter().filter(|(k, _)| k == "_csrf").cloned().collect();
    s.check(req, &map)
}

/// The source fields of `tree`: every leaf and array path, with a sample
/// value; elements of arrays are merged under `[*]`.
fn flatten(tree: &Value) -> Vec<(String, String)> {
    fn name(k: &str) -> String {
        let plain = !k.is_empty()
            && k.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '@' | '$' | '-' | ':'))
            && !k.starts_with('$');
        if plain {
            k.to_owned()
        } else {
            format!("[{}]", Value::String(k.to_owned()))
        }
    }
    fn join(prefix: &str, part: &str) -> String {
        if prefix.is_empty() || part.starts_with('[') {
            format!("{prefix}{part}")
        } else {
            format!("{prefix}.{part}")
        }
    }
    fn shown(v: &Value) -> String {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Array(a) => format!("{} items", a.len()),
            other => other.to_string(),
        };
        if text.chars().count() > 60 {
            format!("{}…", text.chars().take(59).collect::<String>())
        } else {
            text
        }
    }
    fn walk(v: &Value, at: &str, out: &mut Vec<(String, String)>, seen: &mut HashSet<String>) {
        if out.len() >= MAX_FIELDS {
            return;
        }
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    walk(x, &join(at, &name(k)), out, seen);
                }
            }
            Value::Array(a) => {
                if !at.is_empty() && seen.insert(at.to_owned()) {
                    out.push((at.to_owned(), shown(v)));
                }
                let each = format!("{at}[*]");
                for x in a {
                    walk(x, &each, out, seen);
                }
            }
            leaf => {
                if !at.is_empty() && seen.insert(at.to_owned()) {
                    out.push((at.to_owned(), shown(leaf)));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, "", &mut out, &mut HashSet::new());
    out
}

fn source_fields(fields: &[(String, String)]) -> Markup {
    html! {
        @if fields.is_empty() {
            p.meta { "The sample has no fields." }
        } @else {
            ul.fields-list #source-field-list {
                @for (path, value) in fields {
                    li {
                        button.field type="button" hx-get={"/console/transformations/row?source=" (enc(path))}
                            hx-target="#rules" hx-swap="beforeend" hx-sync="this:drop" title={"Map " (path)} {
                            code { (path) }
                        }
                        span.meta { (value) }
                    }
                }
            }
            @if fields.len() >= MAX_FIELDS { p.meta { "The first " (MAX_FIELDS) " fields are listed." } }
        }
    }
}

/// One issue of a preview or validate answer: its stage, where, what.
fn issue(i: &Value, keys: &[String]) -> Markup {
    let path = i["location"]["path"].as_str().unwrap_or_default();
    let message = i["message"].as_str().unwrap_or_default();
    let row = rule_index(path)
        .or_else(|| rule_index(message))
        .and_then(|n| keys.get(n).map(|k| (n, k)));
    let place: Vec<String> = ["line", "column", "segment", "element"]
        .iter()
        .filter_map(|k| i["location"][k].as_u64().map(|n| format!("{k} {n}")))
        .collect();
    html! {
        li {
            span.badge.bad { (t(i, "stage")) } " "
            code { (t(i, "code")) } " "
            @if !path.is_empty() { code { (path) } " " }
            @if !place.is_empty() { span.meta { (place.join(", ")) } " " }
            (message)
            @if let Some((n, k)) = row { " " a href={"#rule-" (k)} { "(rule " (n + 1) ")" } }
        }
    }
}

/// The problems of each row in a preview or validate answer's list.
fn issue_rows(list: &[Value], keys: &[String]) -> HashMap<String, Vec<String>> {
    let pairs: Vec<(String, String)> = list
        .iter()
        .map(|i| {
            let path = i["location"]["path"].as_str().unwrap_or_default();
            let message = i["message"].as_str().unwrap_or_default();
            let at = if rule_index(path).is_some() {
                path
            } else {
                message
            };
            (at.to_owned(), message.to_owned())
        })
        .collect();
    by_row(keys, &pairs)
}

/// A 422's field errors by row, as "`field`: message".
fn failure_rows(f: &Failure, keys: &[String]) -> HashMap<String, Vec<String>> {
    let pairs: Vec<(String, String)> = f
        .fields
        .iter()
        .map(|(field, m)| (field.clone(), format!("{field}: {m}")))
        .collect();
    by_row(keys, &pairs)
}

fn target_fields(d: &Draft, keys: &[String], trace: &[Value]) -> Markup {
    let rows: Vec<&Row> = keys
        .iter()
        .filter_map(|k| d.rows.iter().find(|r| &r.key == k))
        .collect();
    if rows.is_empty() {
        return html! { p.meta { "Nothing mapped yet." } };
    }
    html! {
        ul.fields-list #target-field-list {
            @for (i, r) in rows.iter().enumerate() {
                @let rule = format!("rules[{i}]");
                @let steps: Vec<&Value> = trace.iter().filter(|st| st["rule"] == rule.as_str()).collect();
                li {
                    a href={"#rule-" (r.key)} { code { (if r.target.trim().is_empty() { "(no target)" } else { r.target.trim() }) } }
                    " "
                    span.meta {
                        @match steps.first() {
                            None => { "not written" },
                            Some(st) if !st["skipped"].is_null() => { "skipped: " (t(st, "skipped")) },
                            Some(st) if steps.len() == 1 && st["item"].is_null() => {
                                (short(&st["wrote"]))
                            },
                            Some(_) => { (steps.len()) " writes" },
                        }
                    }
                }
            }
        }
    }
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(79).collect::<String>())
    } else {
        text
    }
}

/// `POST /console/transformations/preview`: the live preview, with the
/// source fields, target fields and row problems swapped out of band.
async fn preview(
    req: HttpRequest,
    s: Session,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    if let Err(r) = checked(&req, &s, &form) {
        return *r;
    }
    let d = Draft::of_form(&form);
    let nothing = HashMap::new();
    let built = match d.build() {
        Ok(b) => b,
        Err(p) => {
            return fragment(html! {
                (error(&p.failure()))
                (row_slots(&d, &p.rows))
            });
        }
    };
    if d.sample.trim().is_empty() {
        return fragment(html! {
            (empty("Paste a sample, or read one from a file, to see the output.", None))
            div #target-fields hx-swap-oob="innerHTML" { (target_fields(&d, &built.keys, &[])) }
            (row_slots(&d, &nothing))
        });
    }
    if d.sample.len() > MAX_SAMPLE_BYTES {
        return fragment(html! {
            div.error role="alert" { p { "The sample is larger than " (MAX_SAMPLE_BYTES / 1024) " KiB: preview a smaller part of it." } }
        });
    }
    let mut run = d.inline(&built);
    run.insert("input".into(), json!(d.sample));
    let answer = s
        .api
        .post("/api/v1/transformations/preview", Value::Object(run))
        .await;
    let body = match &answer {
        Err(f) => {
            let rows = failure_rows(f, &built.keys);
            html! {
                (error(f))
                div #target-fields hx-swap-oob="innerHTML" { (target_fields(&d, &built.keys, &[])) }
                (row_slots(&d, &rows))
            }
        }
        Ok(v) => {
            let errors = v["errors"].as_array().cloned().unwrap_or_default();
            let warnings = v["warnings"].as_array().cloned().unwrap_or_default();
            let trace = v["trace"].as_array().cloned().unwrap_or_default();
            let output = match (&v["output"], d.target_format.eq_ignore_ascii_case("JSON")) {
                (Value::String(_), true) => Some(json_text(&v["output_tree"])),
                (Value::String(o), false) => Some(o.clone()),
                _ => None,
            };
            let rows = issue_rows(&errors, &built.keys);
            html! {
                @if !errors.is_empty() {
                    div.error role="alert" #preview-errors {
                        p { strong { "The rules did not run cleanly:" } }
                        ul { @for i in &errors { (issue(i, &built.keys)) } }
                    }
                }
                @match &output {
                    Some(o) => { pre #preview-output tabindex="0" aria-label="Output" { (o) } },
                    None => {
                        p.meta { "No output until the errors are fixed. What the other rules wrote:" }
                        pre #preview-partial tabindex="0" { (json_text(&v["output_tree"])) }
                    },
                }
                @if !warnings.is_empty() {
                    details #preview-warnings {
                        summary { (warnings.len()) " warnings" }
                        ul { @for i in &warnings { (issue(i, &built.keys)) } }
                    }
                }
                div #target-fields hx-swap-oob="innerHTML" { (target_fields(&d, &built.keys, &trace)) }
                (row_slots(&d, &rows))
            }
        }
    };
    fragment(body)
}

/// `POST /console/transformations/fields`: the source fields of the sample,
/// as the source format's codec reads it (an identity rule run by the API's
/// preview, its output tree flattened into paths).
async fn fields(
    req: HttpRequest,
    s: Session,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    if let Err(r) = checked(&req, &s, &form) {
        return *r;
    }
    let d = Draft::of_form(&form);
    if d.sample.trim().is_empty() {
        return fragment(html! { p.meta { "Paste or read a sample to list its fields." } });
    }
    if d.sample.len() > MAX_SAMPLE_BYTES {
        return fragment(html! { p.meta { "The sample is too large." } });
    }
    let mut problems = Vec::new();
    let mut identity = Map::new();
    identity.insert("source_format".into(), json!(d.source_format));
    identity.insert("target_format".into(), json!("JSON"));
    if let Some(o) = json_field(
        &d.source_options,
        "Source options",
        &mut problems,
        "source_options",
    ) {
        identity.insert("source_options".into(), o);
    }
    identity.insert(
        "mapping_rules".into(),
        json!({"rules": [{"target": "$", "source": "$"}]}),
    );
    identity.insert("input".into(), json!(d.sample));
    fragment(
        match s
            .api
            .post("/api/v1/transformations/preview", Value::Object(identity))
            .await
        {
            Ok(v) => source_fields(&flatten(&v["output_tree"])),
            Err(f) => html! {
                p.meta #source-fields-error { "No fields: " (f.message)
                    @for (field, m) in &f.fields { " " code { (field) } ": " (m) } }
            },
        },
    )
}

/// `POST /console/transformations/validate`: the rules checked, with the
/// sample when there is one.
async fn validate(
    req: HttpRequest,
    s: Session,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    if let Err(r) = checked(&req, &s, &form) {
        return *r;
    }
    let d = Draft::of_form(&form);
    let built = match d.build() {
        Ok(b) => b,
        Err(p) => {
            return fragment(html! {
                (error(&p.failure()))
                (row_slots(&d, &p.rows))
            });
        }
    };
    let mut body = d.inline(&built);
    if !d.sample.trim().is_empty() {
        body.insert("input".into(), json!(d.sample));
    }
    fragment(
        match s
            .api
            .post("/api/v1/transformations/validate", Value::Object(body))
            .await
        {
            Ok(v) if v["valid"].as_bool().unwrap_or(false) => html! {
                div.notice role="status" #valid {
                    p { "Valid: the rules compile"
                        @if !d.sample.trim().is_empty() { ", every source path is in the sample and the output passes the schema" }
                        "." }
                }
                (row_slots(&d, &HashMap::new()))
            },
            Ok(v) => {
                let problems = v["problems"].as_array().cloned().unwrap_or_default();
                html! {
                    div.error role="alert" #invalid {
                        p { strong { "Not valid: " } (problems.len()) " problems." }
                        ul { @for i in &problems { (issue(i, &built.keys)) } }
                    }
                    (row_slots(&d, &issue_rows(&problems, &built.keys)))
                }
            }
            Err(f) => error(&f),
        },
    )
}

/// The editor page again, with what was posted and what went wrong.
fn again(
    s: &Session,
    d: &Draft,
    stored: Option<&Value>,
    f: &Failure,
    rows: &HashMap<String, Vec<String>>,
) -> HttpResponse {
    let title = stored.map_or_else(
        || "New transformation template".to_owned(),
        |v| format!("{} · template", t(v, "name")),
    );
    page_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        s,
        &title,
        html! {
            (editor(s, d, stored, Some(f), rows))
            p { a href="/console/transformations" { "Back to the templates" } }
        },
    )
}

fn saved(id: &str, version: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            "Location",
            format!("/console/transformations/{id}?saved={}", enc(version)),
        ))
        .finish()
}

async fn create(
    req: HttpRequest,
    s: Session,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    if let Err(r) = checked(&req, &s, &form) {
        return *r;
    }
    let d = Draft::of_form(&form);
    let built = match d.build() {
        Ok(b) => b,
        Err(p) => return again(&s, &d, None, &p.failure(), &p.rows),
    };
    match s
        .api
        .post("/api/v1/transformations", d.body(&built, true))
        .await
    {
        Ok(v) => saved(&t(&v, "id"), &t(&v, "version")),
        Err(f) => again(&s, &d, None, &f, &failure_rows(&f, &built.keys)),
    }
}

async fn save_version(
    req: HttpRequest,
    s: Session,
    id: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    if let Err(r) = checked(&req, &s, &form) {
        return *r;
    }
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&s);
    };
    let stored = match s.api.get(&format!("/api/v1/transformations/{id}")).await {
        Ok(v) => v,
        Err(f) => return page_with(status_of(&f), &s, TITLE, error(&f)),
    };
    let mut d = Draft::of_form(&form);
    d.code = t(&stored, "code");
    let built = match d.build() {
        Ok(b) => b,
        Err(p) => return again(&s, &d, Some(&stored), &p.failure(), &p.rows),
    };
    match s
        .api
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/transformations/{id}"),
            Some(d.body(&built, false)),
        )
        .await
    {
        Ok(v) => saved(&t(&v, "id"), &t(&v, "version")),
        Err(f) => again(&s, &d, Some(&stored), &f, &failure_rows(&f, &built.keys)),
    }
}

fn not_found(s: &Session) -> HttpResponse {
    page_with(
        StatusCode::NOT_FOUND,
        s,
        TITLE,
        html! {
            div.error role="alert" { p { strong { "No such template: " } "it does not exist, or it is not yours." } p.meta { "HTTP 404" } }
            p { a href="/console/transformations" { "Back to the templates" } }
        },
    )
}

/// The versions of the template `v` belongs to, newest first.
async fn versions(s: &Session, v: &Value) -> Vec<Value> {
    let id = t(v, "id");
    let current = v["version"].as_i64().unwrap_or(1);
    // An inactive version was followed by others: find the last one.
    let mut latest = current;
    if !v["is_active"].as_bool().unwrap_or(true) {
        while latest < current + 1000 {
            let next = s
                .api
                .get(&format!(
                    "/api/v1/transformations/{id}?version={}",
                    latest + 1
                ))
                .await;
            if next.is_err() {
                break;
            }
            latest += 1;
        }
    }
    let first = (latest - MAX_VERSIONS + 1).max(1);
    let paths: Vec<String> = (first..=latest)
        .rev()
        .map(|n| format!("/api/v1/transformations/{id}?version={n}"))
        .collect();
    futures::future::join_all(paths.iter().map(|p| s.api.get(p)))
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect()
}

fn history(shown: &Value, all: &[Value]) -> Markup {
    html! {
        @if all.is_empty() { (empty("No version could be read.", None)) } @else {
            div.table { table #versions {
                thead { tr { th { "Version" } th { "Name" } th { "Rules" } th { "Saved" } th { "State" } } }
                tbody { @for r in all {
                    @let here = r["id"] == shown["id"];
                    tr aria-current=[here.then_some("true")] {
                        td { a href={"/console/transformations/" (t(r, "id"))} aria-current=[here.then_some("page")] { "Version " (t(r, "version")) } }
                        td { (t(r, "name")) }
                        td { (r["mapping_rules"]["rules"].as_array().or(r["mapping_rules"].as_array()).map_or(0, Vec::len)) }
                        td { (t(r, "created_at")) }
                        td { @if r["is_active"].as_bool().unwrap_or(false) { span.badge.ok { "active" } } @else { span.badge { "earlier" } } }
                    }
                } }
            } }
        }
    }
}

/// `GET /console/transformations/{id}`: the editor on one version of a
/// template, with its versions.
async fn open(
    s: Session,
    id: web::Path<String>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if s.is_operator() {
        return tenant_only(&s, TITLE);
    }
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&s);
    };
    let v = match s.api.get(&format!("/api/v1/transformations/{id}")).await {
        Ok(v) => v,
        Err(f) if f.status == Some(404) => return not_found(&s),
        Err(f) => return page_with(status_of(&f), &s, TITLE, error(&f)),
    };
    let all = versions(&s, &v).await;
    let d = Draft::of_template(&v);
    let system = v["is_system"].as_bool().unwrap_or(false);
    let active = v["is_active"].as_bool().unwrap_or(true);
    let latest = all.first().map(|l| t(l, "version"));
    page(
        Some(&s),
        &format!("{} · template", t(&v, "name")),
        SLUG,
        html! {
            @if let Some(n) = q.get("saved") {
                div.notice role="status" #saved { p { "Saved as version " strong #saved-version { (n) } "." } }
            }
            dl.facts {
                dt { "Code" } dd #template-code { code { (t(&v, "code")) } }
                dt { "Version" } dd #template-version { (t(&v, "version")) @if active { " (active)" } }
                dt { "Kind" } dd { @if system { "System template (read-only)" } @else { "Yours" } }
            }
            @if !active {
                div.notice role="status" {
                    p { "This is version " (t(&v, "version")) "; version " (latest.clone().unwrap_or_default()) " is active. Saving makes a new version from what is shown here." }
                }
            }
            @if system {
                form.actions #copy-form method="post" action={"/console/transformations/" (id) "/copy"} {
                    input type="hidden" name="_csrf" value=(s.csrf);
                    div {
                        label for="copy-code" { "Code of your copy" }
                        input #copy-code type="text" name="code" required maxlength="50" value={(t(&v, "code"))};
                    }
                    button type="submit" #copy { "Copy to edit" }
                }
            }
            (editor(&s, &d, Some(&v), None, &HashMap::new()))
            h2 #versions-title { "Versions" }
            (history(&v, &all))
            p { a href="/console/transformations" { "Back to the templates" } }
        },
    )
}

/// `POST /console/transformations/{id}/copy`: the tenant's copy of a
/// template, opened in the editor.
async fn copy(
    req: HttpRequest,
    s: Session,
    id: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(r) = s.check(&req, &form) {
        return *r;
    }
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&s);
    };
    let mut body = Map::new();
    if let Some(code) = form.get("code").map(|c| c.trim()).filter(|c| !c.is_empty()) {
        body.insert("code".into(), json!(code));
    }
    match s
        .api
        .post(
            &format!("/api/v1/transformations/{id}/copy"),
            Value::Object(body),
        )
        .await
    {
        Ok(v) => saved(&t(&v, "id"), &t(&v, "version")),
        Err(f) if f.status == Some(404) => not_found(&s),
        Err(f) => page_with(
            status_of(&f),
            &s,
            TITLE,
            html! {
                (error(&f))
                p { a href={"/console/transformations/" (id)} { "Back to the template" } }
            },
        ),
    }
}
