//! QuickBooks Online v3 under `/v3/company/{realmId}`: `companyinfo`, the
//! `query` endpoint (`select * | count(*) from Invoice|Customer|Payment
//! [where …] [orderby …] STARTPOSITION n MAXRESULTS m`), reads by id, and
//! the writes: `POST /{entity}` creates, or updates when the body carries
//! an `Id` (with the current `SyncToken`, else the 5010 Stale Object
//! Error), `POST /{entity}?operation=delete`. Faults are JSON when `Accept`
//! asks for it and XML otherwise; the other answers are JSON.

use super::*;

const CUSTOMERS: [&str; 5] = [
    "Acme Freight",
    "Blue Ridge Logistics",
    "Cascade Carriers",
    "Delta Hauling",
    "Evergreen Transport",
];
/// The most rows one query page returns.
const MAX_RESULTS: u64 = 1000;

pub(super) static SCHEMA: QuickBooks = QuickBooks;

/// QuickBooks' entities and records.
pub(super) struct QuickBooks;

const OBJECTS: [ObjectSpec; 3] = [
    ObjectSpec {
        name: "Invoice",
        default_count: 30,
    },
    ObjectSpec {
        name: "Customer",
        default_count: 5,
    },
    ObjectSpec {
        name: "Payment",
        default_count: 20,
    },
];

/// What record numbers add to make the entity's `Id`.
fn id_offset(object: &str) -> u64 {
    match object {
        "Invoice" => 100,
        "Payment" => 500,
        _ => 0,
    }
}

fn pacific() -> FixedOffset {
    FixedOffset::west_opt(8 * 3600).expect("UTC-8 is a valid offset")
}

/// Intuit's local-offset timestamps (`2024-01-02T09:00:00-08:00`).
fn qb_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&pacific())
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn now() -> String {
    Utc::now()
        .with_timezone(&pacific())
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

fn customer_name(n: u64) -> String {
    let name = CUSTOMERS[(n as usize + CUSTOMERS.len() - 1) % CUSTOMERS.len()];
    if n as usize <= CUSTOMERS.len() {
        name.to_owned()
    } else {
        // QuickBooks wants display names unique.
        format!("{name} {n}")
    }
}

fn money(cents: u64) -> f64 {
    cents as f64 / 100.0
}

impl Schema for QuickBooks {
    fn objects(&self) -> &'static [ObjectSpec] {
        &OBJECTS
    }

    fn generate(&self, object: &'static str, n: u64) -> Fields {
        let date = store::generated_time(n).date_naive();
        let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
        let value = match object {
            "Invoice" => {
                let customer = (n - 1) % CUSTOMERS.len() as u64 + 1;
                let amount = money(125_000 + n * 7_319);
                json!({
                    "DocNumber": (1000 + n).to_string(),
                    "TxnDate": day(date),
                    "DueDate": day(date + chrono::Duration::days(30)),
                    "CustomerRef": {"value": customer.to_string(), "name": customer_name(customer)},
                    "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
                    "Line": [{
                        "Id": "1",
                        "LineNum": 1,
                        "Description": format!("Linehaul, load {}", 5000 + n),
                        "Amount": amount,
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Freight"}, "Qty": 1, "UnitPrice": amount},
                    }, {
                        "Amount": amount,
                        "DetailType": "SubTotalLineDetail",
                        "SubTotalLineDetail": {},
                    }],
                    "TxnTaxDetail": {"TotalTax": 0},
                    "TotalAmt": amount,
                    "Balance": if n.is_multiple_of(4) { 0.0 } else { amount },
                    "EmailStatus": "NotSet",
                })
            }
            "Customer" => {
                let name = customer_name(n);
                json!({
                    "DisplayName": name,
                    "CompanyName": name,
                    "PrimaryEmailAddr": {"Address": format!("ap{n}@{}.example.com", CUSTOMERS[(n as usize + CUSTOMERS.len() - 1) % CUSTOMERS.len()].to_lowercase().replace(' ', ""))},
                    "Balance": 0,
                    "Active": true,
                })
            }
            _ => {
                let invoice = n;
                let customer = (n - 1) % CUSTOMERS.len() as u64 + 1;
                let amount = money(125_000 + n * 7_319);
                json!({
                    "TxnDate": day(date + chrono::Duration::days(10)),
                    "TotalAmt": amount,
                    "UnappliedAmt": 0,
                    "PaymentRefNum": format!("CHK{:05}", 30_000 + n),
                    "CustomerRef": {"value": customer.to_string(), "name": customer_name(customer)},
                    "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
                    "Line": [{
                        "Amount": amount,
                        "LinkedTxn": [{"TxnId": (100 + invoice).to_string(), "TxnType": "Invoice"}],
                    }],
                })
            }
        };
        store::fields_of(value)
    }

    fn id(&self, object: &'static str, n: u64) -> String {
        (id_offset(object) + n).to_string()
    }

    fn number(&self, object: &'static str, id: &str) -> Option<u64> {
        let id: u64 = id.trim().parse().ok()?;
        id.checked_sub(id_offset(object)).filter(|n| *n >= 1)
    }

    fn base_version(&self, object: &'static str, n: u64) -> u64 {
        if object == "Invoice" { n % 3 } else { 0 }
    }

    fn touched(&self, object: &'static str, record: &Record) -> Fields {
        let v = record.version;
        let mut f = Fields::new();
        match object {
            "Invoice" => {
                f.insert(
                    "CustomerMemo".into(),
                    json!({"value": format!("Revision {v}")}),
                );
            }
            "Customer" => {
                f.insert("Notes".into(), json!(format!("Revision {v}")));
            }
            _ => {
                f.insert("PrivateNote".into(), json!(format!("Revision {v}")));
            }
        }
        f
    }

    fn render(&self, object: &'static str, record: &Record) -> Value {
        let mut out = Fields::new();
        out.insert("Id".into(), json!(self.id(object, record.num)));
        out.insert("SyncToken".into(), json!(record.version.to_string()));
        out.insert(
            "MetaData".into(),
            json!({"CreateTime": qb_time(record.created), "LastUpdatedTime": qb_time(record.modified)}),
        );
        out.insert("domain".into(), json!("QBO"));
        out.insert("sparse".into(), json!(false));
        for (k, v) in &record.fields {
            out.insert(k.clone(), v.clone());
        }
        Value::Object(out)
    }
}

/// The `Fault` body of a QuickBooks error whose `Message` names the error
/// and its codes (authentication, authorization, throttling, server).
pub(super) fn fault_json(name: &str, code: &str, status: u16, detail: &str, kind: &str) -> Value {
    json!({
        "Fault": {
            "Error": [{
                "Message": format!("message={name}; errorCode={code}; statusCode={status}"),
                "Detail": detail,
                "code": code.trim_start_matches('0'),
            }],
            "type": kind,
        },
        "time": now(),
    })
}

fn wants_json(call: &Call<'_>) -> bool {
    call.header("accept")
        .is_some_and(|a| a.to_ascii_lowercase().contains("json"))
}

fn fault(
    call: &Call<'_>,
    status: StatusCode,
    name: &str,
    code: &str,
    detail: &str,
    kind: &str,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.insert_header(("intuit_tid", request_id()));
    if wants_json(call) {
        response.json(fault_json(name, code, status.as_u16(), detail, kind))
    } else {
        response.content_type("application/xml").body(format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{}"><Fault type="{kind}"><Error code="{}"><Message>message={name}; errorCode={code}; statusCode={}</Message><Detail>{detail}</Detail></Error></Fault></IntuitResponse>"#,
            now(),
            code.trim_start_matches('0'),
            status.as_u16()
        ))
    }
}

/// A `ValidationFault` (400): `Message` is the error's name, `Detail` says
/// more, as for a stale `SyncToken` (5010) or a missing field (2020).
fn validation_fault(call: &Call<'_>, code: &str, message: &str, detail: &str) -> HttpResponse {
    let mut response = HttpResponse::BadRequest();
    response.insert_header(("intuit_tid", request_id()));
    if wants_json(call) {
        response.json(json!({
            "Fault": {
                "Error": [{"Message": message, "Detail": detail, "code": code, "element": ""}],
                "type": "ValidationFault",
            },
            "time": now(),
        }))
    } else {
        response.content_type("application/xml").body(format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{}"><Fault type="ValidationFault"><Error code="{code}" element=""><Message>{message}</Message><Detail>{detail}</Detail></Error></Fault></IntuitResponse>"#,
            now(),
        ))
    }
}

fn company_info() -> Value {
    json!({
        "CompanyName": "Fake Freight LLC",
        "LegalName": "Fake Freight Limited Liability Company",
        "CompanyAddr": {"Id": "1", "Line1": "100 Dock St", "City": "Reno", "CountrySubDivisionCode": "NV", "PostalCode": "89501"},
        "Country": "US",
        "Email": {"Address": "books@fakefreight.example.com"},
        "FiscalYearStartMonth": "January",
        "SupportedLanguages": "en",
        "Id": "1",
        "SyncToken": "4",
        "domain": "QBO",
        "sparse": false,
        "MetaData": {"CreateTime": qb_time(store::generated_time(0)), "LastUpdatedTime": qb_time(store::generated_time(1))},
    })
}

/// The entity of a path segment (`invoice` → `Invoice`).
fn entity(segment: &str) -> Option<&'static ObjectSpec> {
    Kind::QuickBooks.object(segment)
}

pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
    if !call.authorized() {
        return fault(
            call,
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "003200",
            "Authentication Failed",
            "AUTHENTICATION",
        );
    }
    let segments: Vec<&str> = call.path.trim_matches('/').split('/').collect();
    let (realm, rest) = match segments.as_slice() {
        ["v3", "company", realm, rest @ ..] => (*realm, rest),
        _ => return not_found(Kind::QuickBooks, call.path),
    };
    if realm != QUICKBOOKS_REALM_ID {
        return fault(
            call,
            StatusCode::FORBIDDEN,
            "ApplicationAuthorizationFailed",
            "003100",
            "",
            "AuthorizationFault",
        );
    }
    match (call.method, rest) {
        (&Method::GET, ["companyinfo", id]) if *id == realm => {
            let info = company_info();
            if wants_json(call) {
                HttpResponse::Ok().json(json!({"CompanyInfo": info, "time": now()}))
            } else {
                HttpResponse::Ok().content_type("application/xml").body(format!(
                    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{}"><CompanyInfo domain="QBO" sparse="false"><Id>1</Id><SyncToken>4</SyncToken><CompanyName>Fake Freight LLC</CompanyName><Country>US</Country></CompanyInfo></IntuitResponse>"#,
                    now()
                ))
            }
        }
        (&Method::GET, ["query"]) => query(call),
        (&Method::GET, [segment, id]) if entity(segment).is_some() => {
            let Some(spec) = entity(segment) else {
                return not_found(Kind::QuickBooks, call.path);
            };
            match call.shared.find(spec, id) {
                Some(record) => entity_answer(spec, &record),
                None => object_not_found(call, spec, id),
            }
        }
        (&Method::POST, [segment]) if entity(segment).is_some() => {
            let Some(spec) = entity(segment) else {
                return not_found(Kind::QuickBooks, call.path);
            };
            write(call, spec)
        }
        _ => not_found(Kind::QuickBooks, call.path),
    }
}

fn entity_answer(spec: &ObjectSpec, record: &Record) -> HttpResponse {
    let mut body = Fields::new();
    body.insert(spec.name.to_owned(), SCHEMA.render(spec.name, record));
    body.insert("time".into(), json!(now()));
    HttpResponse::Ok().json(Value::Object(body))
}

fn object_not_found(call: &Call<'_>, spec: &ObjectSpec, id: &str) -> HttpResponse {
    validation_fault(
        call,
        "610",
        "Object Not Found",
        &format!(
            "Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees. ({} {id})",
            spec.name
        ),
    )
}

/// One token of a query: a word, a quoted literal (unquoted), or an
/// operator or bracket.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(String),
}

fn tokenize(q: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(ch) => s.push(ch),
                    None => return Err(format!("unterminated literal in: {q}")),
                }
            }
            out.push(Token::Quoted(s));
        } else if "<>=(),".contains(c) {
            chars.next();
            let mut op = c.to_string();
            if matches!(c, '<' | '>') && chars.peek() == Some(&'=') {
                chars.next();
                op.push('=');
            }
            out.push(Token::Op(op));
        } else {
            let mut s = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || "<>=(),'".contains(ch) {
                    break;
                }
                s.push(ch);
                chars.next();
            }
            out.push(Token::Word(s));
        }
    }
    Ok(out)
}

/// A parsed query.
struct Select {
    spec: Option<&'static ObjectSpec>,
    count: bool,
    query: Query,
    start: u64,
    max: u64,
}

/// Parses a query; `Err((code, message, detail))` as QuickBooks reports it.
fn parse_query(q: &str) -> Result<Select, (&'static str, String)> {
    let parse_error = |detail: String| ("4000", detail);
    let tokens = tokenize(q).map_err(parse_error)?;
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) => Some(w.to_ascii_lowercase()),
        _ => None,
    };
    if word(0).as_deref() != Some("select") {
        return Err(parse_error(format!("Error parsing query: {q}")));
    }
    let Some(from) = (1..tokens.len()).find(|i| word(*i).as_deref() == Some("from")) else {
        return Err(parse_error(format!("Error parsing query: {q}")));
    };
    let selected: String = tokens[1..from]
        .iter()
        .map(|t| match t {
            Token::Word(w) | Token::Op(w) | Token::Quoted(w) => w.to_ascii_lowercase(),
        })
        .collect();
    let count = selected == "count(*)";
    if !count && selected != "*" {
        return Err((
            "4001",
            format!(
                "QueryValidationError: the fake QuickBooks selects * or count(*), not {selected}"
            ),
        ));
    }
    let Some(Token::Word(entity)) = tokens.get(from + 1) else {
        return Err(parse_error(format!("Error parsing query: {q}")));
    };
    let mut sel = Select {
        spec: Kind::QuickBooks.object(entity),
        count,
        query: Query::default(),
        start: 1,
        max: 100,
    };
    let mut i = from + 2;
    while i < tokens.len() {
        match word(i).as_deref() {
            Some("where" | "and") => {
                let (Some(Token::Word(field)), Some(Token::Op(op)), Some(Token::Quoted(value))) =
                    (tokens.get(i + 1), tokens.get(i + 2), tokens.get(i + 3))
                else {
                    return Err(parse_error(format!("Error parsing query: {q}")));
                };
                add_condition(&mut sel, field, op, value)?;
                i += 4;
            }
            Some("orderby") => {
                let Some(Token::Word(field)) = tokens.get(i + 1) else {
                    return Err(parse_error(format!("Error parsing query: {q}")));
                };
                sel.query.order = if field.eq_ignore_ascii_case("Id") {
                    Order::Id
                } else if field.eq_ignore_ascii_case("Metadata.LastUpdatedTime") {
                    Order::Modified
                } else {
                    return Err((
                        "4001",
                        format!(
                            "QueryValidationError: the fake QuickBooks orders by Id or Metadata.LastUpdatedTime, not {field}"
                        ),
                    ));
                };
                i += 2;
                match word(i).as_deref() {
                    Some("asc") => i += 1,
                    Some("desc") => {
                        sel.query.descending = true;
                        i += 1;
                    }
                    _ => {}
                }
            }
            Some(kw @ ("startposition" | "maxresults")) => {
                let n = match tokens.get(i + 1) {
                    Some(Token::Word(n)) => n.parse::<u64>().ok(),
                    _ => None,
                };
                let Some(n) = n else {
                    return Err(parse_error(format!("Error parsing query: {q}")));
                };
                if kw == "startposition" {
                    sel.start = n.max(1);
                } else {
                    sel.max = n.clamp(1, MAX_RESULTS);
                }
                i += 2;
            }
            _ => return Err(parse_error(format!("Error parsing query: {q}"))),
        }
    }
    Ok(sel)
}

fn add_condition(
    sel: &mut Select,
    field: &str,
    op: &str,
    value: &str,
) -> Result<(), (&'static str, String)> {
    if field.eq_ignore_ascii_case("Metadata.LastUpdatedTime") {
        let t = DateTime::parse_from_rfc3339(value)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                (
                    "4001",
                    format!(
                        "QueryValidationError: invalid date in Metadata.LastUpdatedTime: {value}"
                    ),
                )
            })?;
        sel.query.time.extend(Bound::of(op, t));
        return Ok(());
    }
    if field.eq_ignore_ascii_case("Id") {
        let n = sel
            .spec
            .and_then(|spec| SCHEMA.number(spec.name, value))
            .unwrap_or(0);
        sel.query.narrow_ids(op, n);
        return Ok(());
    }
    Err((
        "4001",
        format!(
            "QueryValidationError: property '{field}' is not queryable by the fake QuickBooks (Id, Metadata.LastUpdatedTime)"
        ),
    ))
}

fn query(call: &Call<'_>) -> HttpResponse {
    let Some(q) = call.param("query") else {
        return fault(
            call,
            StatusCode::BAD_REQUEST,
            "QueryParserError",
            "4000",
            "Error parsing query: the query parameter is missing",
            "ValidationFault",
        );
    };
    let sel = match parse_query(q) {
        Ok(sel) => sel,
        Err((code, detail)) => {
            let name = if code == "4000" {
                "QueryParserError"
            } else {
                "QueryValidationError"
            };
            return fault(
                call,
                StatusCode::BAD_REQUEST,
                name,
                code,
                &detail,
                "ValidationFault",
            );
        }
    };
    let Some(spec) = sel.spec else {
        // An entity the company has none of: an empty answer, as the real API gives.
        return HttpResponse::Ok().json(json!({"QueryResponse": {}, "time": now()}));
    };
    if sel.count {
        let total = {
            let state = call.shared.lock();
            state.store.view(spec).total(&sel.query)
        };
        return HttpResponse::Ok()
            .json(json!({"QueryResponse": {"totalCount": total}, "time": now()}));
    }
    let (records, _) = call.shared.query(spec, &sel.query, sel.start - 1, sel.max);
    if records.is_empty() {
        // The real API drops the entity key, and the paging fields, when nothing matches.
        return HttpResponse::Ok().json(json!({"QueryResponse": {}, "time": now()}));
    }
    let count = records.len();
    let page: Vec<Value> = records
        .iter()
        .map(|r| SCHEMA.render(spec.name, r))
        .collect();
    let mut response = Fields::new();
    response.insert(spec.name.to_owned(), Value::Array(page));
    response.insert("startPosition".into(), json!(sel.start));
    response.insert("maxResults".into(), json!(count));
    HttpResponse::Ok().json(json!({"QueryResponse": response, "time": now()}))
}

/// Fields QuickBooks maintains itself: dropped from a write body.
const SYSTEM: [&str; 5] = ["Id", "SyncToken", "MetaData", "domain", "sparse"];

/// `POST /{entity}[?operation=delete]`: create, update or delete.
fn write(call: &Call<'_>, spec: &'static ObjectSpec) -> HttpResponse {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(call.body) else {
        return validation_fault(
            call,
            "2500",
            "Invalid Request",
            "Request has invalid or unsupported property: the body must be a JSON object",
        );
    };
    let sync_token = body.get("SyncToken").and_then(|t| match t {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let id = body.get("Id").and_then(|t| match t {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let fields: Fields = body
        .iter()
        .filter(|(k, _)| !SYSTEM.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let deleting = call.param("operation") == Some("delete");
    let Some(id) = id else {
        if deleting {
            return missing(call, "Id");
        }
        return create(call, spec, fields);
    };
    let Some(token) = sync_token else {
        return missing(call, "SyncToken");
    };
    let Some(n) = SCHEMA.number(spec.name, &id) else {
        return object_not_found(call, spec, &id);
    };
    // The optimistic-concurrency check, made under the store's lock.
    let fresh = |current: &Record| {
        if current.version.to_string() == token.trim() {
            Ok(())
        } else {
            Err(())
        }
    };
    let stale = || {
        validation_fault(
            call,
            "5010",
            "Stale Object Error",
            "Stale Object Error : You and Fake Freight were working on this at the same time. Fake Freight finished before you did, so your work was not saved.",
        )
    };
    if deleting {
        if spec.name == "Customer" {
            return validation_fault(
                call,
                "6000",
                "A business validation error has occurred while processing your request",
                "Business Validation Error: Customers cannot be deleted; make them inactive (Active: false) instead.",
            );
        }
        return match call.shared.api_delete(spec, n, fresh) {
            Ok(()) => {
                let mut body = Fields::new();
                body.insert(
                    spec.name.to_owned(),
                    json!({"domain": "QBO", "status": "Deleted", "Id": id}),
                );
                body.insert("time".into(), json!(now()));
                HttpResponse::Ok().json(Value::Object(body))
            }
            Err(Some(())) => stale(),
            Err(None) => object_not_found(call, spec, &id),
        };
    }
    match call.shared.api_update(spec, n, fields, fresh) {
        Ok(record) => entity_answer(spec, &record),
        Err(Some(())) => stale(),
        Err(None) => object_not_found(call, spec, &id),
    }
}

fn missing(call: &Call<'_>, field: &str) -> HttpResponse {
    validation_fault(
        call,
        "2020",
        "Required param missing, need to supply the required value for the API",
        &format!("Required parameter {field} is missing in the request"),
    )
}

/// A create: the required fields checked, the totals QuickBooks computes
/// filled in.
fn create(call: &Call<'_>, spec: &'static ObjectSpec, mut fields: Fields) -> HttpResponse {
    let required: &[&str] = match spec.name {
        "Invoice" => &["Line", "CustomerRef"],
        "Customer" => &["DisplayName"],
        _ => &["TotalAmt", "CustomerRef"],
    };
    if let Some(field) = required
        .iter()
        .find(|r| fields.get(**r).is_none_or(Value::is_null))
    {
        return missing(call, field);
    }
    if spec.name == "Invoice" {
        let total: f64 = fields["Line"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["DetailType"] != "SubTotalLineDetail")
            .filter_map(|l| l["Amount"].as_f64())
            .sum();
        fields.entry("TotalAmt").or_insert_with(|| json!(total));
        fields.entry("Balance").or_insert_with(|| json!(total));
    }
    let record = call.shared.api_create(spec, fields, |n, fields| {
        if spec.name == "Invoice" {
            // QuickBooks numbers invoices itself when the body does not.
            fields
                .entry("DocNumber")
                .or_insert_with(|| json!((1000 + n).to_string()));
        }
    });
    entity_answer(spec, &record)
}
