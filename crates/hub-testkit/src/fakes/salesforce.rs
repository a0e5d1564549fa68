//! Salesforce REST API v60.0 on the org's `instance_url`: `GET /limits`
//! (the connection test), SOQL `GET /query?q=…` paged with
//! `nextRecordsUrl`, `GET`/`PATCH /sobjects/{type}/{Id}`. Errors are JSON
//! arrays of `{"message","errorCode"}`; every answer carries
//! `Sforce-Limit-Info` (added by the caller).

use std::collections::HashMap;

use super::*;

/// The org's daily API allowance shown in `Sforce-Limit-Info` when no limit
/// is enforced.
pub(super) const DAILY_LIMIT: u32 = 15_000;

const PREFIX: &str = "/services/data/v60.0";
/// Records a query page holds unless `Sforce-Query-Options: batchSize=N`
/// says otherwise (200 to 2,000).
const DEFAULT_BATCH: usize = 2000;
const MIN_BATCH: usize = 200;

/// The objects the fake org holds, with their record counts and Id prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Object {
    Opportunity,
    Account,
    Contact,
}

impl Object {
    fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "opportunity" => Some(Object::Opportunity),
            "account" => Some(Object::Account),
            "contact" => Some(Object::Contact),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Object::Opportunity => "Opportunity",
            Object::Account => "Account",
            Object::Contact => "Contact",
        }
    }

    fn count(self) -> usize {
        match self {
            Object::Opportunity => 250,
            Object::Account => 40,
            Object::Contact => 120,
        }
    }

    fn id(self, i: usize) -> String {
        let prefix = match self {
            Object::Opportunity => "006",
            Object::Account => "001",
            Object::Contact => "003",
        };
        format!("{prefix}Fk0000{i:06}IAW")
    }

    /// The record number of `id`, if this object has such a record.
    fn index_of(self, id: &str) -> Option<usize> {
        (1..=self.count()).find(|i| self.id(*i).eq_ignore_ascii_case(id))
    }
}

/// Salesforce's datetime format (`2024-01-01T09:00:00.000+0000`).
fn sf_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

const STAGES: [(&str, u32); 4] = [
    ("Prospecting", 10),
    ("Qualification", 20),
    ("Negotiation/Review", 80),
    ("Closed Won", 100),
];
const INDUSTRIES: [&str; 3] = ["Transportation", "Manufacturing", "Retail"];

/// Every field of record `i` of `object`, in Salesforce's casing.
fn fields(object: Object, i: usize) -> serde_json::Map<String, Value> {
    let modified = record_time(i);
    let mut f = serde_json::Map::new();
    f.insert("Id".into(), json!(object.id(i)));
    match object {
        Object::Opportunity => {
            let (stage, probability) = STAGES[i % STAGES.len()];
            f.insert("Name".into(), json!(format!("Lane contract {i}")));
            f.insert("Amount".into(), json!((1500 * i) as f64));
            f.insert("StageName".into(), json!(stage));
            f.insert("Probability".into(), json!(probability));
            let close = (modified + chrono::Duration::days(60)).date_naive();
            f.insert(
                "CloseDate".into(),
                json!(close.format("%Y-%m-%d").to_string()),
            );
            f.insert("AccountId".into(), json!(Object::Account.id(i % 40 + 1)));
        }
        Object::Account => {
            f.insert("Name".into(), json!(format!("Shipper {i}")));
            f.insert("Industry".into(), json!(INDUSTRIES[i % INDUSTRIES.len()]));
            f.insert("AnnualRevenue".into(), json!((250_000 * i) as f64));
            f.insert("NumberOfEmployees".into(), json!(10 * i));
            f.insert("BillingCountry".into(), json!("United States"));
        }
        Object::Contact => {
            f.insert(
                "FirstName".into(),
                json!(["Ana", "Ben", "Chloe", "Dev"][i % 4]),
            );
            f.insert("LastName".into(), json!(format!("Driver{i}")));
            f.insert("Email".into(), json!(format!("contact{i}@example.com")));
            f.insert("Title".into(), json!("Dispatcher"));
            f.insert("AccountId".into(), json!(Object::Account.id(i % 40 + 1)));
        }
    }
    f.insert("OwnerId".into(), json!("005Fk000000FAKEIAA"));
    f.insert("IsDeleted".into(), json!(false));
    f.insert("CreatedDate".into(), json!(sf_time(record_time(0))));
    f.insert("LastModifiedDate".into(), json!(sf_time(modified)));
    f.insert("SystemModstamp".into(), json!(sf_time(modified)));
    f
}

/// Salesforce-side state: open query cursors and the edits PATCH made.
#[derive(Debug, Default)]
pub(super) struct SfState {
    cursors: HashMap<String, Cursor>,
    next_cursor: u64,
    /// `(object, record number)` → fields PATCH changed, and when.
    edits: HashMap<(&'static str, usize), Edit>,
}

/// What `nextRecordsUrl` continues.
#[derive(Debug, Clone)]
struct Cursor {
    object: Object,
    fields: Vec<String>,
    records: Vec<usize>,
    batch: usize,
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

/// Edits PATCH made to one record: the fields, and when.
type Edit = (serde_json::Map<String, Value>, DateTime<Utc>);

/// The record as it is now (with PATCH edits) and its last modification.
fn current(
    state: &SfState,
    object: Object,
    i: usize,
) -> (serde_json::Map<String, Value>, DateTime<Utc>) {
    let mut f = fields(object, i);
    match state.edits.get(&(object.name(), i)) {
        Some((edits, at)) => {
            f.extend(edits.clone());
            f.insert("LastModifiedDate".into(), json!(sf_time(*at)));
            f.insert("SystemModstamp".into(), json!(sf_time(*at)));
            (f, *at)
        }
        None => (f, record_time(i)),
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
/// `SELECT f1, f2 FROM Object [WHERE LastModifiedDate|SystemModstamp op datetime] [ORDER BY …] [LIMIT n]`.
struct Soql {
    object: Object,
    fields: Vec<String>,
    filter: Option<(String, DateTime<Utc>)>,
    limit: Option<usize>,
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
    let Some(object) = Object::parse(name) else {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            &format!("sObject type '{name}' is not supported."),
        ));
    };
    let fields: Vec<String> = words[1..from]
        .join(" ")
        .split(',')
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect();
    let known = super::salesforce::fields(object, 1);
    let mut canonical = Vec::with_capacity(fields.len());
    for f in &fields {
        match known.keys().find(|k| k.eq_ignore_ascii_case(f)) {
            Some(k) => canonical.push(k.clone()),
            None => {
                return Err(Refused::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD",
                    &format!("No such column '{f}' on entity '{}'.", object.name()),
                ));
            }
        }
    }
    if canonical.is_empty() {
        return Err(malformed("unexpected token: 'FROM'"));
    }
    let mut soql = Soql {
        object,
        fields: canonical,
        filter: None,
        limit: None,
    };
    let mut i = from + 2;
    while i < words.len() {
        match lower[i].as_str() {
            "where" => {
                let (field, op, value) =
                    match (words.get(i + 1), words.get(i + 2), words.get(i + 3)) {
                        (Some(f), Some(o), Some(v)) => (*f, *o, *v),
                        _ => return Err(malformed("unexpected token: <EOF>")),
                    };
                soql.filter = Some(parse_filter(field, op, value)?);
                i += 4;
            }
            "order" => {
                // ORDER BY <field> [ASC|DESC]: the records come in modification order anyway.
                i += 3;
                if matches!(lower.get(i).map(String::as_str), Some("asc" | "desc")) {
                    i += 1;
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

/// `LastModifiedDate > 2024-01-01T00:00:00Z` (the only filter the fake knows).
fn parse_filter(field: &str, op: &str, value: &str) -> Result<(String, DateTime<Utc>), Refused> {
    let field_ok = field.eq_ignore_ascii_case("LastModifiedDate")
        || field.eq_ignore_ascii_case("SystemModstamp");
    if !field_ok || !matches!(op, ">" | ">=" | "<" | "<=" | "=") {
        return Err(malformed(&format!(
            "the fake Salesforce filters only on LastModifiedDate or SystemModstamp, not: {field} {op} {value}"
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
    DateTime::parse_from_rfc3339(value)
        .map(|t| (op.to_owned(), t.with_timezone(&Utc)))
        .map_err(|_| {
            malformed(&format!(
                "line 1:{}: invalid datetime: {value}",
                value.len()
            ))
        })
}

fn batch_size(call: &Call<'_>) -> usize {
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
    let mut state = call.shared.lock();
    let sf = &mut state.salesforce;
    let mut records: Vec<usize> = (1..=soql.object.count())
        .filter(|i| {
            let (_, modified) = current(sf, soql.object, *i);
            soql.filter
                .as_ref()
                .is_none_or(|(op, t)| match op.as_str() {
                    ">" => modified > *t,
                    ">=" => modified >= *t,
                    "<" => modified < *t,
                    "<=" => modified <= *t,
                    _ => modified == *t,
                })
        })
        .collect();
    records.sort_by_key(|i| current(sf, soql.object, *i).1);
    if let Some(n) = soql.limit {
        records.truncate(n);
    }
    let cursor = Cursor {
        object: soql.object,
        fields: soql.fields,
        records,
        batch: batch_size(call),
    };
    page(sf, cursor, 0)
}

fn next_page(call: &Call<'_>, locator: &str) -> HttpResponse {
    let mut state = call.shared.lock();
    let sf = &mut state.salesforce;
    let found = locator.rsplit_once('-').and_then(|(id, offset)| {
        let offset: usize = offset.parse().ok()?;
        sf.cursors.get(id).map(|c| (c.clone(), offset))
    });
    match found {
        Some((cursor, offset)) if offset <= cursor.records.len() => page(sf, cursor, offset),
        _ => error(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        ),
    }
}

/// The page of `cursor` from `offset`, with `nextRecordsUrl` unless done.
fn page(sf: &mut SfState, cursor: Cursor, offset: usize) -> HttpResponse {
    let end = (offset + cursor.batch).min(cursor.records.len());
    let records: Vec<Value> = cursor.records[offset..end]
        .iter()
        .map(|i| record_json(sf, cursor.object, *i, &cursor.fields))
        .collect();
    let done = end >= cursor.records.len();
    let mut body = json!({
        "totalSize": cursor.records.len(),
        "done": done,
        "records": records,
    });
    if !done {
        sf.next_cursor += 1;
        let id = format!("01gFk{:013}", sf.next_cursor);
        body["nextRecordsUrl"] = json!(format!("{PREFIX}/query/{id}-{end}"));
        sf.cursors.insert(id, cursor);
    }
    HttpResponse::Ok().json(body)
}

fn record_json(sf: &SfState, object: Object, i: usize, wanted: &[String]) -> Value {
    let (all, _) = current(sf, object, i);
    let mut out = serde_json::Map::new();
    out.insert(
        "attributes".into(),
        json!({"type": object.name(), "url": format!("{PREFIX}/sobjects/{}/{}", object.name(), object.id(i))}),
    );
    for f in wanted {
        out.insert(f.clone(), all.get(f).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}

fn find(object: &str, id: &str) -> Result<(Object, usize), Refused> {
    let Some(object) = Object::parse(object) else {
        return Err(Refused::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!(
                "The requested resource does not exist: sObject type '{object}' is not supported"
            ),
        ));
    };
    match object.index_of(id) {
        Some(i) => Ok((object, i)),
        None => Err(Refused::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {id}"),
        )),
    }
}

fn get_record(call: &Call<'_>, object: &str, id: &str) -> HttpResponse {
    let (object, i) = match find(object, id) {
        Ok(found) => found,
        Err(refused) => return refused.answer(),
    };
    let state = call.shared.lock();
    let names: Vec<String> = fields(object, i).keys().cloned().collect();
    HttpResponse::Ok().json(record_json(&state.salesforce, object, i, &names))
}

/// `PATCH /sobjects/{type}/{Id}`: 204 and the record changed, or the error
/// Salesforce gives for an unknown record, a bad body or a field it lacks.
fn patch(call: &Call<'_>, object: &str, id: &str) -> HttpResponse {
    let (object, i) = match find(object, id) {
        Ok(found) => found,
        Err(refused) => return refused.answer(),
    };
    let Ok(Value::Object(changes)) = serde_json::from_slice::<Value>(call.body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "The request body must be a JSON object of the fields to change",
        );
    };
    let known = fields(object, i);
    let mut edits = serde_json::Map::new();
    for (name, value) in changes {
        let Some(canonical) = known.keys().find(|k| k.eq_ignore_ascii_case(&name)) else {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                &format!(
                    "No such column '{name}' on sobject of type {}",
                    object.name()
                ),
            );
        };
        if matches!(
            canonical.as_str(),
            "Id" | "CreatedDate" | "LastModifiedDate" | "SystemModstamp" | "IsDeleted"
        ) {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                &format!(
                    "Unable to create/update fields: {canonical}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."
                ),
            );
        }
        edits.insert(canonical.clone(), value);
    }
    let mut state = call.shared.lock();
    let entry = state
        .salesforce
        .edits
        .entry((object.name(), i))
        .or_insert_with(|| (serde_json::Map::new(), Utc::now()));
    entry.0.extend(edits);
    entry.1 = Utc::now();
    HttpResponse::NoContent().finish()
}
