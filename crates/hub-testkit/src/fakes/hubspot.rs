//! HubSpot CRM v3: `GET /crm/v3/objects/{type}` (cursor paging),
//! `GET …/{type}/{id}`, `POST …/{type}/search` (filters on
//! `hs_lastmodifieddate` or `hs_object_id`, one sort, offset paging capped at
//! 10,000 results), and the writes: `POST …/{type}`, `PATCH …/{type}/{id}`,
//! `DELETE …/{type}/{id}` (archive).

use chrono::SecondsFormat;

use super::*;

const COMPANIES: [&str; 6] = [
    "Acme Freight",
    "Blue Ridge Logistics",
    "Cascade Carriers",
    "Delta Hauling",
    "Evergreen Transport",
    "Frontier Brokerage",
];
const FIRST: [&str; 5] = ["Ana", "Ben", "Chloe", "Dev", "Eli"];
const LAST: [&str; 5] = ["Ng", "Okafor", "Park", "Quinn", "Rossi"];
const STAGES: [&str; 4] = [
    "appointmentscheduled",
    "qualifiedtobuy",
    "contractsent",
    "closedwon",
];

/// The most records one search can reach: `after` past it is refused.
const SEARCH_CAP: u64 = 10_000;
/// The largest page a search returns.
const SEARCH_MAX_LIMIT: u64 = 200;
/// The largest page a list returns.
const LIST_MAX_LIMIT: u64 = 100;

/// The properties the fake maintains itself (read-only to writes).
const SYSTEM: [&str; 4] = [
    "createdate",
    "hs_lastmodifieddate",
    "hs_object_id",
    "lastmodifieddate",
];

pub(super) static SCHEMA: HubSpot = HubSpot;

/// HubSpot's objects and records.
pub(super) struct HubSpot;

const OBJECTS: [ObjectSpec; 3] = [
    ObjectSpec {
        name: "contacts",
        default_count: 25,
    },
    ObjectSpec {
        name: "companies",
        default_count: 12,
    },
    ObjectSpec {
        name: "deals",
        default_count: 18,
    },
];

/// HubSpot's timestamps: ISO 8601 in UTC with milliseconds.
fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The properties a read returns when the call names none.
fn default_properties(object: &str) -> &'static [&'static str] {
    match object {
        "contacts" => &["email", "firstname", "lastname"],
        "companies" => &["domain", "name"],
        _ => &["amount", "closedate", "dealname", "dealstage", "pipeline"],
    }
}

fn first_last(n: u64) -> (&'static str, &'static str) {
    let i = n as usize;
    (FIRST[i % FIRST.len()], LAST[(i / FIRST.len()) % LAST.len()])
}

impl Schema for HubSpot {
    fn objects(&self) -> &'static [ObjectSpec] {
        &OBJECTS
    }

    fn generate(&self, object: &'static str, n: u64) -> Fields {
        let mut p = Fields::new();
        match object {
            "contacts" => {
                let (first, last) = first_last(n);
                p.insert("firstname".into(), json!(first));
                p.insert("lastname".into(), json!(last));
                p.insert(
                    "email".into(),
                    json!(format!(
                        "{}.{}{n}@example.com",
                        first.to_lowercase(),
                        last.to_lowercase()
                    )),
                );
                p.insert(
                    "phone".into(),
                    json!(format!("+1-775-555-{:04}", n % 10_000)),
                );
                p.insert("jobtitle".into(), json!("Dispatcher"));
            }
            "companies" => {
                let name = COMPANIES[n as usize % COMPANIES.len()];
                p.insert("name".into(), json!(format!("{name} {n}")));
                p.insert(
                    "domain".into(),
                    json!(format!(
                        "{}{n}.example.com",
                        name.to_lowercase().replace(' ', "")
                    )),
                );
                p.insert("industry".into(), json!("TRANSPORTATION_TRUCKING_RAILROAD"));
                p.insert("numberofemployees".into(), json!((n * 37).to_string()));
                p.insert("annualrevenue".into(), json!((250_000 * n).to_string()));
                p.insert("country".into(), json!("United States"));
                p.insert(
                    "phone".into(),
                    json!(format!("+1-702-555-{:04}", n % 10_000)),
                );
            }
            _ => {
                p.insert("dealname".into(), json!(format!("Lane contract {n}")));
                p.insert("amount".into(), json!(format!("{}.00", 1500 * n)));
                p.insert("dealstage".into(), json!(STAGES[n as usize % STAGES.len()]));
                p.insert("pipeline".into(), json!("default"));
                p.insert("hubspot_owner_id".into(), json!("75480123"));
                p.insert(
                    "closedate".into(),
                    json!(iso(store::generated_time(n) + chrono::Duration::days(60))),
                );
            }
        }
        p
    }

    fn id(&self, _object: &'static str, n: u64) -> String {
        n.to_string()
    }

    fn number(&self, _object: &'static str, id: &str) -> Option<u64> {
        id.parse().ok().filter(|n| *n >= 1)
    }

    fn touched(&self, object: &'static str, record: &Record) -> Fields {
        let (n, v) = (record.num, record.version);
        let mut p = Fields::new();
        match object {
            "contacts" => {
                p.insert(
                    "lastname".into(),
                    json!(format!("{} v{v}", first_last(n).1)),
                );
            }
            "companies" => {
                p.insert("numberofemployees".into(), json!((n * 37 + v).to_string()));
            }
            _ => {
                p.insert("amount".into(), json!(format!("{}.00", 1500 * n + 100 * v)));
                p.insert(
                    "dealstage".into(),
                    json!(STAGES[(n + v) as usize % STAGES.len()]),
                );
            }
        }
        p
    }

    fn render(&self, object: &'static str, record: &Record) -> Value {
        render(object, record, None)
    }
}

/// A record as HubSpot returns it; `wanted`: the properties asked for
/// (`None`: every one).
fn render(object: &str, record: &Record, wanted: Option<&[String]>) -> Value {
    let created = iso(record.created);
    let modified = iso(record.modified);
    let mut props = Fields::new();
    let keep = |k: &str| wanted.is_none_or(|w| w.iter().any(|x| x == k));
    for (k, v) in &record.fields {
        if keep(k) {
            props.insert(k.clone(), v.clone());
        }
    }
    // HubSpot always returns these three.
    props.insert("createdate".into(), json!(created));
    props.insert("hs_lastmodifieddate".into(), json!(modified));
    props.insert("hs_object_id".into(), json!(record.num.to_string()));
    if object == "contacts" && keep("lastmodifieddate") {
        props.insert("lastmodifieddate".into(), json!(modified));
    }
    let mut body = json!({
        "id": record.num.to_string(),
        "properties": props,
        "createdAt": created,
        "updatedAt": modified,
        "archived": record.deleted,
    });
    if record.deleted {
        body["archivedAt"] = json!(modified);
    }
    body
}

/// The properties a read asks for: `properties=a,b` (or repeated), else
/// the object's defaults. Unknown names are silently left out, as the real
/// API does.
fn wanted(call: &Call<'_>, object: &str) -> Vec<String> {
    let asked: Vec<String> = call
        .query
        .iter()
        .filter(|(k, _)| k == "properties")
        .flat_map(|(_, v)| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if asked.is_empty() {
        default_properties(object)
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    } else {
        asked
    }
}

/// HubSpot's answer to an access token past its expiry.
fn expired() -> HttpResponse {
    HttpResponse::Unauthorized().json(json!({
        "status": "error",
        "message": "The OAuth token used to make this call expired.",
        "correlationId": request_id(),
        "category": "EXPIRED_AUTHENTICATION",
    }))
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized().json(json!({
        "status": "error",
        "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        "correlationId": request_id(),
        "category": "INVALID_AUTHENTICATION",
    }))
}

fn answer(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("X-HubSpot-RateLimit-Max", "100"))
        .insert_header(("X-HubSpot-RateLimit-Remaining", "99"))
        .insert_header(("X-HubSpot-RateLimit-Interval-Milliseconds", "10000"))
        .insert_header(("X-HubSpot-RateLimit-Daily", "250000"))
        .insert_header(("X-HubSpot-RateLimit-Daily-Remaining", "249999"))
        .json(body)
}

fn ok(body: Value) -> HttpResponse {
    answer(StatusCode::OK, body)
}

fn validation(message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({
        "status": "error",
        "message": message,
        "correlationId": request_id(),
        "category": "VALIDATION_ERROR",
    }))
}

fn object_not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "status": "error",
        "message": "resource not found",
        "correlationId": request_id(),
        "category": "OBJECT_NOT_FOUND",
    }))
}

pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
    match call.token() {
        TokenCheck::Valid => {}
        TokenCheck::Expired => return expired(),
        TokenCheck::Invalid => return unauthorized(),
    }
    let segments: Vec<&str> = call.path.trim_matches('/').split('/').collect();
    let (method, rest) = match segments.as_slice() {
        ["crm", "v3", "objects", rest @ ..] if !rest.is_empty() => (call.method, rest),
        _ => return not_found(Kind::HubSpot, call.path),
    };
    let Some(spec) = Kind::HubSpot.object(rest[0]) else {
        return bad_object(rest[0]);
    };
    match (method, &rest[1..]) {
        (&Method::GET, []) => list(call, spec),
        (&Method::POST, []) => create(call, spec),
        (&Method::POST, ["search"]) => search(call, spec),
        (&Method::GET, [id]) => match call.shared.find(spec, id) {
            Some(record) => ok(render(spec.name, &record, Some(&wanted(call, spec.name)))),
            None => object_not_found(),
        },
        (&Method::PATCH, [id]) => update(call, spec, id),
        (&Method::DELETE, [id]) => {
            let Some(n) = SCHEMA.number(spec.name, id) else {
                return object_not_found();
            };
            match call.shared.api_delete(spec, n, |_| Ok::<(), ()>(())) {
                // HubSpot answers 204 for an id it does not know, too.
                Ok(()) | Err(_) => HttpResponse::NoContent().finish(),
            }
        }
        _ => not_found(Kind::HubSpot, call.path),
    }
}

/// `GET /crm/v3/objects/{type}?limit=&after=&properties=&archived=`: ids
/// from `after` on, `paging.next.after` while more remain.
fn list(call: &Call<'_>, spec: &ObjectSpec) -> HttpResponse {
    let limit = call
        .u64_param("limit")
        .unwrap_or(10)
        .clamp(1, LIST_MAX_LIMIT);
    let start = match call.param("after") {
        None => 1,
        Some(after) => match after.parse::<u64>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return validation(&format!(
                    "Invalid input JSON: after={after:?} is not a valid paging cursor"
                ));
            }
        },
    };
    let q = Query {
        above: start - 1,
        deleted: call.param("archived") == Some("true"),
        ..Query::default()
    };
    let (records, remaining) = call.shared.query(spec, &q, 0, limit);
    let wanted = wanted(call, spec.name);
    let results: Vec<Value> = records
        .iter()
        .map(|r| render(spec.name, r, Some(&wanted)))
        .collect();
    let mut body = json!({ "results": results });
    if let Some(last) = records.last()
        && remaining > records.len() as u64
    {
        let next = last.num + 1;
        body["paging"] = json!({
            "next": {
                "after": next.to_string(),
                "link": format!("https://api.hubapi.com/crm/v3/objects/{}?limit={limit}&after={next}", spec.name),
            }
        });
    }
    ok(body)
}

/// A filter value: epoch milliseconds (number or digits) or an ISO date.
fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    let millis = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        Value::String(s) => {
            return DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .ok()
                .or_else(|| {
                    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .map(|d| d.and_utc())
                });
        }
        _ => None,
    }?;
    DateTime::from_timestamp_millis(millis)
}

fn parse_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The property a search may filter or sort on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Searchable {
    Modified,
    Id,
}

fn searchable(object: &str, name: &str) -> Option<Searchable> {
    match name {
        "hs_lastmodifieddate" => Some(Searchable::Modified),
        "lastmodifieddate" if object == "contacts" => Some(Searchable::Modified),
        "hs_object_id" => Some(Searchable::Id),
        _ => None,
    }
}

/// Adds one search filter to `q`, or says why it cannot.
fn add_filter(q: &mut Query, object: &str, filter: &Value) -> Result<(), String> {
    let name = filter["propertyName"].as_str().unwrap_or_default();
    let op = filter["operator"].as_str().unwrap_or_default();
    let Some(property) = searchable(object, name) else {
        return Err(format!(
            "the fake HubSpot filters only on hs_lastmodifieddate (or lastmodifieddate) and hs_object_id, not {name:?}"
        ));
    };
    let bad_value = || format!("Invalid value for filter on {name}: {}", filter["value"]);
    // BETWEEN is `>= value` and `<= highValue`.
    let comparisons: Vec<(&str, &Value)> = match op {
        "GT" => vec![(">", &filter["value"])],
        "GTE" => vec![(">=", &filter["value"])],
        "LT" => vec![("<", &filter["value"])],
        "LTE" => vec![("<=", &filter["value"])],
        "EQ" => vec![("=", &filter["value"])],
        "BETWEEN" => vec![(">=", &filter["value"]), ("<=", &filter["highValue"])],
        other => return Err(format!("Unsupported operator {other:?} on {name}")),
    };
    for (op, value) in comparisons {
        match property {
            Searchable::Modified => {
                let t = parse_time(value).ok_or_else(bad_value)?;
                q.time.extend(Bound::of(op, t));
            }
            Searchable::Id => q.narrow_ids(op, parse_id(value).ok_or_else(bad_value)?),
        }
    }
    Ok(())
}

/// `POST /crm/v3/objects/{type}/search`.
fn search(call: &Call<'_>, spec: &ObjectSpec) -> HttpResponse {
    let body: Value = match serde_json::from_slice(call.body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return validation("Invalid input JSON: the body must be a JSON object"),
        Err(e) => return validation(&format!("Invalid input JSON on line {}: {e}", e.line())),
    };
    let mut q = Query::default();
    let groups = body["filterGroups"].as_array().cloned().unwrap_or_default();
    if groups.len() > 1 {
        return validation(
            "the fake HubSpot supports one filter group (its filters are ANDed), not several",
        );
    }
    for group in &groups {
        for filter in group["filters"].as_array().into_iter().flatten() {
            if let Err(message) = add_filter(&mut q, spec.name, filter) {
                return validation(&message);
            }
        }
    }
    let sorts = body["sorts"].as_array().cloned().unwrap_or_default();
    if sorts.len() > 1 {
        return validation("Search only supports one sort");
    }
    if let Some(sort) = sorts.first() {
        let (name, descending) = match sort {
            Value::String(s) => match s.strip_prefix('-') {
                Some(name) => (name.to_owned(), true),
                None => (s.clone(), false),
            },
            _ => (
                sort["propertyName"].as_str().unwrap_or_default().to_owned(),
                sort["direction"].as_str() == Some("DESCENDING"),
            ),
        };
        q.order = match searchable(spec.name, &name) {
            Some(Searchable::Modified) => Order::Modified,
            Some(Searchable::Id) => Order::Id,
            None => {
                return validation(&format!(
                    "the fake HubSpot sorts only on hs_lastmodifieddate or hs_object_id, not {name:?}"
                ));
            }
        };
        q.descending = descending;
    }
    let limit = match &body["limit"] {
        Value::Null => 10,
        v => match parse_id(v) {
            Some(n) if (1..=SEARCH_MAX_LIMIT).contains(&n) => n,
            _ => {
                return validation(&format!(
                    "Invalid input JSON: limit must be between 1 and {SEARCH_MAX_LIMIT}, got {v}"
                ));
            }
        },
    };
    let offset = match &body["after"] {
        Value::Null => 0,
        v => match parse_id(v) {
            Some(n) => n,
            None => {
                return validation(&format!(
                    "Invalid input JSON: after={v} is not a valid paging cursor"
                ));
            }
        },
    };
    if offset >= SEARCH_CAP {
        // The real search cannot page past its 10,000th result.
        return validation(&format!(
            "Cannot page beyond {SEARCH_CAP} results: after={offset}. Narrow the search (e.g. filter on hs_lastmodifieddate or hs_object_id) instead."
        ));
    }
    let limit = limit.min(SEARCH_CAP - offset);
    let asked: Vec<String> = body["properties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    let wanted = if asked.is_empty() {
        default_properties(spec.name)
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    } else {
        asked
    };
    let (records, total) = call.shared.query(spec, &q, offset, limit);
    let results: Vec<Value> = records
        .iter()
        .map(|r| render(spec.name, r, Some(&wanted)))
        .collect();
    let mut answer = json!({ "total": total, "results": results });
    let next = offset + records.len() as u64;
    if !records.is_empty() && next < total {
        answer["paging"] = json!({ "next": { "after": next.to_string() } });
    }
    ok(answer)
}

/// The `properties` of a write body, checked: known, writable, as strings.
/// (The refusal is boxed: an `HttpResponse` is large.)
fn properties_of(call: &Call<'_>, object: &'static str) -> Result<Fields, Box<HttpResponse>> {
    let body: Value = serde_json::from_slice(call.body).map_err(|e| {
        Box::new(validation(&format!(
            "Invalid input JSON on line {}: {e}",
            e.line()
        )))
    })?;
    let Some(given) = body["properties"].as_object() else {
        return Err(Box::new(validation(
            "Invalid input JSON: the body must be {\"properties\": {…}}",
        )));
    };
    let known = SCHEMA.generate(object, 1);
    let mut out = Fields::new();
    let mut invalid = Vec::new();
    for (name, value) in given {
        if SYSTEM.contains(&name.as_str()) {
            invalid.push(json!({
                "isValid": false,
                "message": format!("\"{name}\" is a read only property; its value cannot be set."),
                "error": "READ_ONLY_VALUE",
                "name": name,
            }));
            continue;
        }
        if !known.contains_key(name) {
            invalid.push(json!({
                "isValid": false,
                "message": format!("Property \"{name}\" does not exist"),
                "error": "PROPERTY_DOESNT_EXIST",
                "name": name,
            }));
            continue;
        }
        // HubSpot keeps every property value as a string.
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        out.insert(name.clone(), Value::String(text));
    }
    if !invalid.is_empty() {
        return Err(Box::new(HttpResponse::BadRequest().json(json!({
            "status": "error",
            "message": format!("Property values were not valid: {}", Value::Array(invalid)),
            "correlationId": request_id(),
            "category": "VALIDATION_ERROR",
        }))));
    }
    Ok(out)
}

/// `PATCH /crm/v3/objects/{type}/{id}`: 200 and the record.
fn update(call: &Call<'_>, spec: &ObjectSpec, id: &str) -> HttpResponse {
    let patch = match properties_of(call, spec.name) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let Some(n) = SCHEMA.number(spec.name, id) else {
        return object_not_found();
    };
    match call.shared.api_update(spec, n, patch, |_| Ok::<(), ()>(())) {
        Ok(record) => ok(render(spec.name, &record, None)),
        Err(_) => object_not_found(),
    }
}

/// `POST /crm/v3/objects/{type}`: 201 and the record.
fn create(call: &Call<'_>, spec: &ObjectSpec) -> HttpResponse {
    let fields = match properties_of(call, spec.name) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let record = call.shared.api_create(spec, fields, |_, _| {});
    answer(StatusCode::CREATED, render(spec.name, &record, None))
}

fn bad_object(object: &str) -> HttpResponse {
    validation(&format!("Unable to infer object type from: {object}"))
}
