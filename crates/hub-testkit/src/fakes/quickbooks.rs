//! QuickBooks Online v3: `companyinfo/{realm}` and `query` under
//! `/v3/company/{realmId}`. JSON only when `Accept` asks for it, XML
//! otherwise, as the real API does.

use super::*;

const INVOICES: usize = 30;
const CUSTOMERS: [&str; 5] = [
    "Acme Freight",
    "Blue Ridge Logistics",
    "Cascade Carriers",
    "Delta Hauling",
    "Evergreen Transport",
];

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

/// The `Fault` body of a QuickBooks error.
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

fn customer(i: usize) -> Value {
    let name = CUSTOMERS[(i - 1) % CUSTOMERS.len()];
    json!({
        "Id": i.to_string(),
        "SyncToken": "0",
        "DisplayName": name,
        "CompanyName": name,
        "PrimaryEmailAddr": {"Address": format!("ap@{}.example.com", name.to_lowercase().replace(' ', ""))},
        "Balance": 0,
        "Active": true,
        "MetaData": {"CreateTime": qb_time(record_time(0)), "LastUpdatedTime": qb_time(record_time(i))},
    })
}

fn invoice(i: usize) -> Value {
    let customer = (i - 1) % CUSTOMERS.len() + 1;
    let cents = 125_000 + i * 7_319;
    let amount = cents as f64 / 100.0;
    let date = record_time(i).date_naive();
    json!({
        "Id": (100 + i).to_string(),
        "SyncToken": (i % 3).to_string(),
        "MetaData": {"CreateTime": qb_time(record_time(i) - chrono::Duration::hours(2)), "LastUpdatedTime": qb_time(record_time(i))},
        "DocNumber": (1000 + i).to_string(),
        "TxnDate": date.format("%Y-%m-%d").to_string(),
        "DueDate": (date + chrono::Duration::days(30)).format("%Y-%m-%d").to_string(),
        "CustomerRef": {"value": customer.to_string(), "name": CUSTOMERS[customer - 1]},
        "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
        "Line": [{
            "Id": "1",
            "LineNum": 1,
            "Description": format!("Linehaul, load {}", 5000 + i),
            "Amount": amount,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Freight"}, "Qty": 1, "UnitPrice": amount},
        }, {
            "Amount": amount,
            "DetailType": "SubTotalLineDetail",
            "SubTotalLineDetail": {},
        }],
        "TotalAmt": amount,
        "Balance": if i.is_multiple_of(4) { 0.0 } else { amount },
        "EmailStatus": "NotSet",
    })
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
        "MetaData": {"CreateTime": qb_time(record_time(0)), "LastUpdatedTime": qb_time(record_time(1))},
    })
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
        _ => not_found(Kind::QuickBooks, call.path),
    }
}

/// Reads the number after `keyword` in a lower-cased query.
fn number_after(query: &str, keyword: &str) -> Option<usize> {
    let at = query.find(keyword)? + keyword.len();
    query[at..].split_whitespace().next()?.parse().ok()
}

/// The quoted timestamp of `Metadata.LastUpdatedTime > '…'`, if any.
fn updated_after(query: &str) -> Result<Option<DateTime<Utc>>, ()> {
    let lower = query.to_ascii_lowercase();
    let Some(at) = lower.find("metadata.lastupdatedtime") else {
        return Ok(None);
    };
    let rest = &query[at..];
    let quoted = rest.split('\'').nth(1).ok_or(())?;
    DateTime::parse_from_rfc3339(quoted)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| ())
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
    let lower = q.to_ascii_lowercase();
    let entity = lower
        .split_once(" from ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .map(str::to_owned);
    let (Some(entity), true) = (entity, lower.trim_start().starts_with("select ")) else {
        return fault(
            call,
            StatusCode::BAD_REQUEST,
            "QueryParserError",
            "4000",
            &format!("Error parsing query: {q}"),
            "ValidationFault",
        );
    };
    let Ok(after) = updated_after(q) else {
        return fault(
            call,
            StatusCode::BAD_REQUEST,
            "QueryValidationError",
            "4001",
            "Invalid date in Metadata.LastUpdatedTime",
            "ValidationFault",
        );
    };
    let (name, total, make): (&str, usize, fn(usize) -> Value) = match entity.as_str() {
        "invoice" => ("Invoice", INVOICES, invoice),
        "customer" => ("Customer", CUSTOMERS.len(), customer),
        _ => return HttpResponse::Ok().json(json!({"QueryResponse": {}, "time": now()})),
    };
    let matching: Vec<usize> = (1..=total)
        .filter(|i| after.is_none_or(|t| record_time(*i) > t))
        .collect();
    if lower.contains("count(*)") {
        return HttpResponse::Ok()
            .json(json!({"QueryResponse": {"totalCount": matching.len()}, "time": now()}));
    }
    let start = number_after(&lower, "startposition").unwrap_or(1).max(1);
    let max = number_after(&lower, "maxresults")
        .unwrap_or(100)
        .clamp(1, 1000);
    let page: Vec<Value> = matching
        .iter()
        .skip(start - 1)
        .take(max)
        .map(|i| make(*i))
        .collect();
    if page.is_empty() {
        // The real API drops the entity key, and the paging fields, when nothing matches.
        return HttpResponse::Ok().json(json!({"QueryResponse": {}, "time": now()}));
    }
    let count = page.len();
    let mut response = serde_json::Map::new();
    response.insert(name.to_owned(), Value::Array(page));
    response.insert("startPosition".into(), json!(start));
    response.insert("maxResults".into(), json!(count));
    HttpResponse::Ok().json(json!({"QueryResponse": response, "time": now()}))
}
