//! Salesforce REST API v60.0 on the org's `instance_url`: `GET /limits`
//! (the connection test), SOQL `GET /query?q=…` paged with
//! `nextRecordsUrl` over a snapshot taken when the query ran, and
//! `GET`/`PATCH`/`DELETE /sobjects/{type}/{Id}`, `POST /sobjects/{type}`.
//! Errors are JSON arrays of `{"message","errorCode"}`; every answer carries
//! `Sforce-Limit-Info` (added by the caller).

use std::collections::{HashMap, VecDeque};

use chrono::SecondsFormat;

use super::*;

/// The org's daily API allowance shown in `Sforce-Limit-Info` when no limit
/// is enforced.
pub(super) const DAILY_LIMIT: u32 = 15_000;

const PREFIX: &str = "/services/data/v60.0";
/// Records a query page holds unless `Sforce-Query-Options: batchSize=N`
/// says otherwise (200 to 2,000).
const DEFAULT_BATCH: u64 = 2000;
const MIN_BATCH: u64 = 200;
/// Query cursors kept (the oldest go first; the real ones expire after 15
/// minutes).
const CURSORS_KEPT: usize = 1000;

const STAGES: [(&str, u32); 4] = [
    ("Prospecting", 10),
    ("Qualification", 20),
    ("Negotiation/Review", 80),
    ("Closed Won", 100),
];
const INDUSTRIES: [&str; 3] = ["Transportation", "Manufacturing", "Retail"];
const OWNER: &str = "005Fk000000FAKEIAA";
/// Fields Salesforce maintains itself.
const SYSTEM: [&str; 5] = [
    "Id",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "IsDeleted",
];

pub(super) static SCHEMA: Salesforce = Salesforce;

/// Salesforce's objects and records.
pub(super) struct Salesforce;

const OBJECTS: [ObjectSpec; 3] = [
    ObjectSpec {
        name: "Opportunity",
        default_count: 250,
    },
    ObjectSpec {
        name: "Account",
        default_count: 40,
    },
    ObjectSpec {
        name: "Contact",
        default_count: 120,
    },
];

fn key_prefix(object: &str) -> &'static str {
    match object {
        "Opportunity" => "006",
        "Account" => "001",
        _ => "003",
    }
}

/// Salesforce's datetime format (`2024-01-01T09:00:00.000+0000`).
fn sf_time(t: DateTime<Utc>) -> String {
    let iso = t.to_rfc3339_opts(SecondsFormat::Millis, true);
    format!("{}+0000", iso.trim_end_matches('Z'))
}

/// The Id of the Account that record `n` of another object belongs to.
fn account_id(n: u64) -> String {
    SCHEMA.id("Account", n % 40 + 1)
}

impl Schema for Salesforce {
    fn objects(&self) -> &'static [ObjectSpec] {
        &OBJECTS
    }

    fn generate(&self, object: &'static str, n: u64) -> Fields {
        let mut f = Fields::new();
        match object {
            "Opportunity" => {
                let (stage, probability) = STAGES[n as usize % STAGES.len()];
                f.insert("Name".into(), json!(format!("Lane contract {n}")));
                f.insert("Amount".into(), json!((1500 * n) as f64));
                f.insert("StageName".into(), json!(stage));
                f.insert("Probability".into(), json!(probability));
                let close = (store::generated_time(n) + chrono::Duration::days(60)).date_naive();
                f.insert(
                    "CloseDate".into(),
                    json!(close.format("%Y-%m-%d").to_string()),
                );
                f.insert("AccountId".into(), json!(account_id(n)));
            }
            "Account" => {
                f.insert("Name".into(), json!(format!("Shipper {n}")));
                f.insert(
                    "Industry".into(),
                    json!(INDUSTRIES[n as usize % INDUSTRIES.len()]),
                );
                f.insert("AnnualRevenue".into(), json!((250_000 * n) as f64));
                f.insert("NumberOfEmployees".into(), json!(10 * n));
                f.insert("BillingCountry".into(), json!("United States"));
                f.insert(
                    "Phone".into(),
                    json!(format!("(702) 555-{:04}", n % 10_000)),
                );
                f.insert(
                    "Website".into(),
                    json!(format!("https://shipper{n}.example.com")),
                );
            }
            _ => {
                f.insert(
                    "FirstName".into(),
                    json!(["Ana", "Ben", "Chloe", "Dev"][n as usize % 4]),
                );
                f.insert("LastName".into(), json!(format!("Driver{n}")));
                f.insert("Email".into(), json!(format!("contact{n}@example.com")));
                f.insert("Title".into(), json!("Dispatcher"));
                f.insert(
                    "Phone".into(),
                    json!(format!("(775) 555-{:04}", n % 10_000)),
                );
                f.insert("AccountId".into(), json!(account_id(n)));
            }
        }
        f.insert("OwnerId".into(), json!(OWNER));
        f
    }

    fn id(&self, object: &'static str, n: u64) -> String {
        format!("{}Fk000{n:07}IAW", key_prefix(object))
    }

    fn number(&self, object: &'static str, id: &str) -> Option<u64> {
        // 18-character Ids, or their 15-character case-sensitive form.
        let head = format!("{}Fk000", key_prefix(object));
        let ok = match id.len() {
            18 => id.get(15..).is_some_and(|s| s.eq_ignore_ascii_case("IAW")),
            15 => true,
            _ => false,
        };
        if !ok || !id.get(..8).is_some_and(|h| h.eq_ignore_ascii_case(&head)) {
            return None;
        }
        id.get(8..15)?.parse().ok().filter(|n| *n >= 1)
    }

    fn touched(&self, object: &'static str, record: &Record) -> Fields {
        let (n, v) = (record.num, record.version);
        let mut f = Fields::new();
        match object {
            "Opportunity" => {
                let (stage, probability) = STAGES[(n + v) as usize % STAGES.len()];
                f.insert("Amount".into(), json!((1500 * n + 100 * v) as f64));
                f.insert("StageName".into(), json!(stage));
                f.insert("Probability".into(), json!(probability));
            }
            "Account" => {
                f.insert("NumberOfEmployees".into(), json!(10 * n + v));
            }
            _ => {
                f.insert("Title".into(), json!(format!("Dispatcher v{v}")));
            }
        }
        f
    }

    fn render(&self, object: &'static str, record: &Record) -> Value {
        let all = all_fields(object, record);
        let names: Vec<String> = all.keys().cloned().collect();
        record_json(object, &all, &names)
    }
}

/// Every field of `record`, the system ones included.
fn all_fields(object: &'static str, record: &Record) -> Fields {
    let mut f = Fields::new();
    f.insert("Id".into(), json!(SCHEMA.id(object, record.num)));
    for (k, v) in &record.fields {
        f.insert(k.clone(), v.clone());
    }
    f.insert("IsDeleted".into(), json!(record.deleted));
    f.insert("CreatedDate".into(), json!(sf_time(record.created)));
    let modified = sf_time(record.modified);
    f.insert("LastModifiedDate".into(), json!(modified.clone()));
    f.insert("SystemModstamp".into(), json!(modified));
    f
}

/// The names of every field `object` has, system ones included.
fn field_names(object: &'static str) -> Vec<String> {
    let mut names: Vec<String> = SYSTEM.iter().map(|s| (*s).to_owned()).collect();
    names.extend(SCHEMA.generate(object, 1).keys().cloned());
    names
}

/// The canonical name of field `name` of `object` (any case).
fn canonical(object: &'static str, name: &str) -> Option<String> {
    field_names(object)
        .into_iter()
        .find(|k| k.eq_ignore_ascii_case(name))
}

/// A record of a query: `attributes`, then the fields asked for in order.
fn record_json(object: &str, all: &Fields, wanted: &[String]) -> Value {
    let mut out = Fields::new();
    out.insert(
        "attributes".into(),
        json!({"type": object, "url": format!("{PREFIX}/sobjects/{object}/{}", all.get("Id").and_then(Value::as_str).unwrap_or_default())}),
    );
    for f in wanted {
        out.insert(f.clone(), all.get(f).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}

/// Salesforce-side state: the open query cursors.
#[derive(Debug, Default)]
pub(super) struct SfState {
    cursors: HashMap<String, Arc<Cursor>>,
    order: VecDeque<String>,
    next_cursor: u64,
}

/// What `nextRecordsUrl` continues: a query over the records as they were
/// when it ran.
#[derive(Debug)]
struct Cursor {
    spec: &'static ObjectSpec,
    fields: Vec<String>,
    query: Query,
    view: store::View,
    total: u64,
    batch: u64,
}

fn error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!([{"message": message, "errorCode": code}]))
}

/// An error answer not yet built: `(status, errorCode, message)`.
struct Refused(StatusCode, &'static str, String);

impl Refused {
    fn new(status: StatusCode, code: &'static str, message: &str) -> Self {
        Self(status, code, message.to_owned())
    }

    fn answer(&self) -> HttpResponse {
        error(self.0, self.1, &self.2)
    }
}

pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
    if !call.authorized() {
        return error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        );
    }
    let Some(rest) = call.path.strip_prefix(PREFIX) else {
        return not_found(Kind::Salesforce, call.path);
    };
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (call.method, segments.as_slice()) {
        (&Method::GET, ["limits"]) => limits(call),
        (&Method::GET, ["query"]) => query(call),
        (&Method::GET, ["query", locator]) => next_page(call, locator),
        (&Method::GET, ["sobjects", object, id]) => get_record(call, object, id),
        (&Method::PATCH, ["sobjects", object, id]) => patch(call, object, id),
        (&Method::DELETE, ["sobjects", object, id]) => delete(call, object, id),
        (&Method::POST, ["sobjects", object]) => create(call, object),
        _ => not_found(Kind::Salesforce, call.path),
    }
}

fn limits(call: &Call<'_>) -> HttpResponse {
    let used = u32::try_from(call.shared.lock().api_calls).unwrap_or(u32::MAX);
    let pair = |max: u32, used: u32| json!({"Max": max, "Remaining": max.saturating_sub(used)});
    HttpResponse::Ok().json(json!({
        "DailyApiRequests": pair(DAILY_LIMIT, used + 1),
        "DailyAsyncApexExecutions": pair(250_000, 0),
        "DailyBulkApiBatches": pair(15_000, 0),
        "DataStorageMB": pair(5, 1),
        "FileStorageMB": pair(20, 0),
    }))
}

/// The parsed parts of the SOQL the fake understands:
/// `SELECT f1, f2 | COUNT() FROM Object [WHERE c1 AND c2 …] [ORDER BY f [ASC|DESC]] [LIMIT n]`,
/// each condition on `LastModifiedDate`/`SystemModstamp` (a datetime
/// literal) or `Id` (a quoted Id).
struct Soql {
    spec: &'static ObjectSpec,
    /// `None` for `COUNT()`.
    fields: Option<Vec<String>>,
    query: Query,
    limit: Option<u64>,
}

fn malformed(message: &str) -> Refused {
    Refused::new(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", message)
}

/// Parses `q`, or answers the error Salesforce would.
fn parse_soql(q: &str) -> Result<Soql, Refused> {
    let words: Vec<&str> = q.split_whitespace().collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    let from = lower.iter().position(|w| w == "from");
    let (true, Some(from)) = (lower.first().is_some_and(|w| w == "select"), from) else {
        return Err(malformed(&format!(
            "unexpected token: '{}'",
            words.first().unwrap_or(&"")
        )));
    };
    let Some(name) = words.get(from + 1) else {
        return Err(malformed("unexpected token: <EOF>"));
    };
    let Some(spec) = Kind::Salesforce.object(name) else {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            &format!("sObject type '{name}' is not supported."),
        ));
    };
    let selected = words[1..from].join(" ");
    let fields = if selected.replace(' ', "").eq_ignore_ascii_case("count()") {
        None
    } else {
        let mut canonical_fields = Vec::new();
        for f in selected.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            match canonical(spec.name, f) {
                Some(k) => canonical_fields.push(k),
                None => {
                    return Err(Refused::new(
                        StatusCode::BAD_REQUEST,
                        "INVALID_FIELD",
                        &format!("No such column '{f}' on entity '{}'.", spec.name),
                    ));
                }
            }
        }
        if canonical_fields.is_empty() {
            return Err(malformed("unexpected token: 'FROM'"));
        }
        Some(canonical_fields)
    };
    let mut soql = Soql {
        spec,
        fields,
        query: Query::default(),
        limit: None,
    };
    let mut i = from + 2;
    while i < words.len() {
        match lower[i].as_str() {
            "where" | "and" => {
                let (field, op, value) =
                    match (words.get(i + 1), words.get(i + 2), words.get(i + 3)) {
                        (Some(f), Some(o), Some(v)) => (*f, *o, *v),
                        _ => return Err(malformed("unexpected token: <EOF>")),
                    };
                add_condition(&mut soql.query, spec.name, field, op, value)?;
                i += 4;
            }
            "order" => {
                if lower.get(i + 1).map(String::as_str) != Some("by") {
                    return Err(malformed("unexpected token: 'ORDER'"));
                }
                let field = words.get(i + 2).copied().unwrap_or_default();
                soql.query.order = if field.eq_ignore_ascii_case("Id") {
                    Order::Id
                } else if field.eq_ignore_ascii_case("LastModifiedDate")
                    || field.eq_ignore_ascii_case("SystemModstamp")
                {
                    Order::Modified
                } else {
                    return Err(malformed(&format!(
                        "the fake Salesforce orders only by Id, LastModifiedDate or SystemModstamp, not '{field}'"
                    )));
                };
                i += 3;
                match lower.get(i).map(String::as_str) {
                    Some("asc") => i += 1,
                    Some("desc") => {
                        soql.query.descending = true;
                        i += 1;
                    }
                    _ => {}
                }
            }
            "limit" => {
                let n = words.get(i + 1).and_then(|n| n.parse().ok());
                let Some(n) = n else {
                    return Err(malformed("LIMIT must be a non-negative integer"));
                };
                soql.limit = Some(n);
                i += 2;
            }
            other => return Err(malformed(&format!("unexpected token: '{other}'"))),
        }
    }
    Ok(soql)
}

/// Adds `field op value` to the query: a datetime condition on
/// `LastModifiedDate` or `SystemModstamp`, or an Id condition.
fn add_condition(
    q: &mut Query,
    object: &'static str,
    field: &str,
    op: &str,
    value: &str,
) -> Result<(), Refused> {
    if !matches!(op, ">" | ">=" | "<" | "<=" | "=") {
        return Err(malformed(&format!(
            "the fake Salesforce compares with > >= < <= = only, not: {field} {op} {value}"
        )));
    }
    if field.eq_ignore_ascii_case("Id") {
        let unquoted = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .ok_or_else(|| malformed(&format!("invalid ID field: {value}")))?;
        let n = SCHEMA.number(object, unquoted).ok_or_else(|| {
            Refused::new(
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY_FILTER_OPERATOR",
                &format!("invalid ID field: {unquoted}"),
            )
        })?;
        q.narrow_ids(op, n);
        return Ok(());
    }
    let field_ok = field.eq_ignore_ascii_case("LastModifiedDate")
        || field.eq_ignore_ascii_case("SystemModstamp");
    if !field_ok {
        return Err(malformed(&format!(
            "the fake Salesforce filters only on LastModifiedDate, SystemModstamp or Id, not: {field} {op} {value}"
        )));
    }
    if value.starts_with('\'') {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_FILTER_OPERATOR",
            &format!(
                "value of filter criterion for field '{field}' must be of type dateTime and should not be enclosed in quotes"
            ),
        ));
    }
    let t = DateTime::parse_from_rfc3339(value)
        .or_else(|_| DateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            malformed(&format!(
                "line 1:{}: invalid datetime: {value}",
                value.len()
            ))
        })?;
    q.time.extend(Bound::of(op, t));
    Ok(())
}

fn batch_size(call: &Call<'_>) -> u64 {
    call.header("sforce-query-options")
        .and_then(|v| {
            v.split(',')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, n)| n.trim().parse().ok())
        })
        .unwrap_or(DEFAULT_BATCH)
        .clamp(MIN_BATCH, DEFAULT_BATCH)
}

fn query(call: &Call<'_>) -> HttpResponse {
    let Some(q) = call.param("q") else {
        return malformed("the q parameter is required").answer();
    };
    let soql = match parse_soql(q) {
        Ok(s) => s,
        Err(refused) => return refused.answer(),
    };
    let (view, total) = {
        let state = call.shared.lock();
        let view = state.store.view(soql.spec);
        let total = view.total(&soql.query);
        (view, total)
    };
    let total = soql.limit.map_or(total, |n| total.min(n));
    let Some(fields) = soql.fields else {
        return HttpResponse::Ok().json(json!({"totalSize": total, "done": true, "records": []}));
    };
    let cursor = Arc::new(Cursor {
        spec: soql.spec,
        fields,
        query: soql.query,
        view,
        total,
        batch: batch_size(call),
    });
    page(call, cursor, None, 0)
}

fn next_page(call: &Call<'_>, locator: &str) -> HttpResponse {
    let found = locator.rsplit_once('-').and_then(|(id, offset)| {
        let offset: u64 = offset.parse().ok()?;
        let cursor = call.shared.lock().salesforce.cursors.get(id).cloned()?;
        Some((id.to_owned(), cursor, offset))
    });
    match found {
        Some((id, cursor, offset)) if offset <= cursor.total => {
            page(call, cursor, Some(id), offset)
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        ),
    }
}

/// The page of `cursor` from `offset`, with `nextRecordsUrl` unless done
/// (registering the cursor, `id`, on its first page).
fn page(call: &Call<'_>, cursor: Arc<Cursor>, id: Option<String>, offset: u64) -> HttpResponse {
    let size = cursor.batch.min(cursor.total - offset);
    let batch = {
        let state = call.shared.lock();
        state
            .store
            .fetch(cursor.spec, &cursor.view, &cursor.query, offset, size)
    };
    let fetched = batch.len() as u64;
    let records: Vec<Value> = batch
        .records(&SCHEMA, cursor.spec.name)
        .iter()
        .map(|r| {
            record_json(
                cursor.spec.name,
                &all_fields(cursor.spec.name, r),
                &cursor.fields,
            )
        })
        .collect();
    let end = offset + fetched;
    let done = end >= cursor.total || fetched == 0;
    let mut body = json!({
        "totalSize": cursor.total,
        "done": done,
        "records": records,
    });
    if !done {
        let id = match id {
            Some(id) => id,
            None => {
                let mut state = call.shared.lock();
                let sf = &mut state.salesforce;
                sf.next_cursor += 1;
                let id = format!("01gFk{:013}", sf.next_cursor);
                sf.cursors.insert(id.clone(), cursor.clone());
                sf.order.push_back(id.clone());
                while sf.order.len() > CURSORS_KEPT {
                    if let Some(old) = sf.order.pop_front() {
                        sf.cursors.remove(&old);
                    }
                }
                id
            }
        };
        body["nextRecordsUrl"] = json!(format!("{PREFIX}/query/{id}-{end}"));
    }
    HttpResponse::Ok().json(body)
}

fn find(call: &Call<'_>, object: &str, id: &str) -> Result<(&'static ObjectSpec, Record), Refused> {
    let Some(spec) = Kind::Salesforce.object(object) else {
        return Err(unsupported_type(object));
    };
    match call.shared.find(spec, id) {
        Some(record) => Ok((spec, record)),
        None => Err(Refused::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {id}"),
        )),
    }
}

fn unsupported_type(object: &str) -> Refused {
    Refused::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!("The requested resource does not exist: sObject type '{object}' is not supported"),
    )
}

fn get_record(call: &Call<'_>, object: &str, id: &str) -> HttpResponse {
    match find(call, object, id) {
        Ok((spec, record)) => HttpResponse::Ok().json(SCHEMA.render(spec.name, &record)),
        Err(refused) => refused.answer(),
    }
}

/// The fields of a write body, canonically named and writable, or the error
/// Salesforce gives for a bad body or a field it lacks.
/// (The refusal is boxed: an `HttpResponse` is large.)
fn writable_fields(call: &Call<'_>, object: &'static str) -> Result<Fields, Box<HttpResponse>> {
    let Ok(Value::Object(changes)) = serde_json::from_slice::<Value>(call.body) else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "The request body must be a JSON object of the fields to change",
        )));
    };
    let mut out = Fields::new();
    for (name, value) in changes {
        if name == "attributes" {
            continue;
        }
        let Some(canonical) = canonical(object, &name) else {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                &format!("No such column '{name}' on sobject of type {object}"),
            )));
        };
        if SYSTEM.contains(&canonical.as_str()) {
            return Err(Box::new(HttpResponse::BadRequest().json(json!([{
                "message": format!(
                    "Unable to create/update fields: {canonical}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."
                ),
                "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
                "fields": [canonical],
            }]))));
        }
        out.insert(canonical, value);
    }
    Ok(out)
}

/// `PATCH /sobjects/{type}/{Id}`: 204 and the record changed.
fn patch(call: &Call<'_>, object: &str, id: &str) -> HttpResponse {
    let (spec, record) = match find(call, object, id) {
        Ok(found) => found,
        Err(refused) => return refused.answer(),
    };
    let edits = match writable_fields(call, spec.name) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    match call
        .shared
        .api_update(spec, record.num, edits, |_| Ok::<(), ()>(()))
    {
        Ok(_) => HttpResponse::NoContent().finish(),
        Err(_) => error(
            StatusCode::NOT_FOUND,
            "ENTITY_IS_DELETED",
            "entity is deleted",
        ),
    }
}

/// `POST /sobjects/{type}`: 201 `{"id","success","errors"}`.
fn create(call: &Call<'_>, object: &str) -> HttpResponse {
    let Some(spec) = Kind::Salesforce.object(object) else {
        return unsupported_type(object).answer();
    };
    let mut fields = match writable_fields(call, spec.name) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let required: &[&str] = match spec.name {
        "Opportunity" => &["Name", "StageName", "CloseDate"],
        "Account" => &["Name"],
        _ => &["LastName"],
    };
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|r| fields.get(*r).is_none_or(Value::is_null))
        .collect();
    if !missing.is_empty() {
        return HttpResponse::BadRequest().json(json!([{
            "message": format!("Required fields are missing: [{}]", missing.join(", ")),
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": missing,
        }]));
    }
    fields.entry("OwnerId").or_insert_with(|| json!(OWNER));
    let record = call.shared.api_create(spec, fields, |_, _| {});
    HttpResponse::Created().json(json!({
        "id": SCHEMA.id(spec.name, record.num),
        "success": true,
        "errors": [],
    }))
}

/// `DELETE /sobjects/{type}/{Id}`: 204.
fn delete(call: &Call<'_>, object: &str, id: &str) -> HttpResponse {
    let (spec, record) = match find(call, object, id) {
        Ok(found) => found,
        Err(refused) => return refused.answer(),
    };
    match call
        .shared
        .api_delete(spec, record.num, |_| Ok::<(), ()>(()))
    {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(_) => error(
            StatusCode::NOT_FOUND,
            "ENTITY_IS_DELETED",
            "entity is deleted",
        ),
    }
}
