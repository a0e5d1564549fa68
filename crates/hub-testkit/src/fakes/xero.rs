//! Xero accounting 2.0: `/Organisation` and paged `/Invoices` under
//! `/api.xro/2.0`, plus `GET /connections` at the root.

use super::*;

const INVOICES: usize = 150;
const PAGE_SIZE: usize = 100;
const MINUTE_LIMIT: u32 = 60;
const DAY_LIMIT: u32 = 5000;

/// Xero's `/Date(1518685950940+0000)/`.
fn ms_date(t: DateTime<Utc>) -> String {
    format!("/Date({}+0000)/", t.timestamp_millis())
}

pub(super) fn day_remaining(state: &State) -> u32 {
    DAY_LIMIT.saturating_sub(state.xero_day_used)
}

fn problem(status: StatusCode, title: &str, detail: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "Type": null,
        "Title": title,
        "Status": status.as_u16(),
        "Detail": detail,
        "Instance": request_id(),
        "Extensions": {},
    }))
}

/// Xero's answer to an access token past its expiry.
fn expired() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("WWW-Authenticate", "Bearer error=\"invalid_token\""))
        .json(json!({
            "Type": null,
            "Title": "Unauthorized",
            "Status": 401,
            "Detail": "TokenExpired: token expired",
            "Instance": request_id(),
            "Extensions": {},
        }))
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("WWW-Authenticate", "Bearer error=\"invalid_token\""))
        .json(json!({
            "Type": null,
            "Title": "Unauthorized",
            "Status": 401,
            "Detail": "AuthenticationUnsuccessful",
            "Instance": request_id(),
            "Extensions": {},
        }))
}

/// `GET /connections`: the tenants the token may act for.
pub(super) fn connections(call: &Call<'_>) -> HttpResponse {
    match call.token() {
        TokenCheck::Valid => {}
        TokenCheck::Expired => return expired(),
        TokenCheck::Invalid => return unauthorized(),
    }
    // .NET ticks precision, as Xero prints it.
    let created = record_time(0)
        .format("%Y-%m-%dT%H:%M:%S.0000000")
        .to_string();
    HttpResponse::Ok().json(json!([{
        "id": stable_uuid(0xc0, 1),
        "authEventId": stable_uuid(0xae, 1),
        "tenantId": XERO_TENANT_ID,
        "tenantType": "ORGANISATION",
        "tenantName": "Fake Freight Ltd",
        "createdDateUtc": created,
        "updatedDateUtc": created,
    }]))
}

fn envelope(key: &str, items: Value) -> Value {
    let mut body = json!({
        "Id": request_id(),
        "Status": "OK",
        "ProviderName": "Integration Hub",
        "DateTimeUTC": ms_date(Utc::now()),
    });
    body[key] = items;
    body
}

fn invoice(i: usize) -> Value {
    let date = record_time(i);
    let subtotal = (100_000 + i * 3_137) as f64 / 100.0;
    let tax = (subtotal * 0.15 * 100.0).round() / 100.0;
    let total = subtotal + tax;
    let paid = i.is_multiple_of(5);
    json!({
        "Type": "ACCREC",
        "InvoiceID": stable_uuid(0x1e, i),
        "InvoiceNumber": format!("INV-{i:04}"),
        "Reference": format!("Load {}", 7000 + i),
        "Contact": {"ContactID": stable_uuid(0xc1, i % 7), "Name": format!("Shipper {}", i % 7)},
        "Date": ms_date(date),
        "DateString": date.format("%Y-%m-%dT00:00:00").to_string(),
        "DueDate": ms_date(date + chrono::Duration::days(30)),
        "DueDateString": (date + chrono::Duration::days(30)).format("%Y-%m-%dT00:00:00").to_string(),
        "Status": if paid { "PAID" } else { "AUTHORISED" },
        "LineAmountTypes": "Exclusive",
        "SubTotal": subtotal,
        "TotalTax": tax,
        "Total": total,
        "AmountDue": if paid { 0.0 } else { total },
        "AmountPaid": if paid { total } else { 0.0 },
        "CurrencyCode": "USD",
        "UpdatedDateUTC": ms_date(date),
        "HasAttachments": false,
    })
}

/// `If-Modified-Since` as Xero takes it: an HTTP date, or an ISO
/// date-time without offset meaning UTC.
fn modified_since(call: &Call<'_>) -> Option<DateTime<Utc>> {
    let raw = call.header("if-modified-since")?;
    DateTime::parse_from_rfc2822(raw)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(raw)
                .map(|t| t.with_timezone(&Utc))
                .ok()
        })
        .or_else(|| {
            NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|n| n.and_utc())
        })
}

pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
    match call.token() {
        TokenCheck::Valid => {}
        TokenCheck::Expired => return expired(),
        TokenCheck::Invalid => return unauthorized(),
    }
    match call.header("xero-tenant-id") {
        Some(t) if t.eq_ignore_ascii_case(XERO_TENANT_ID) => {}
        Some(_) | None => {
            return problem(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "AuthenticationUnsuccessful",
            );
        }
    }
    let (minute_remaining, day_remaining) = {
        let mut state = call.shared.lock();
        if state.xero_minute_started.elapsed() >= Duration::from_secs(60) {
            state.xero_minute_started = Instant::now();
            state.xero_minute_used = 0;
        }
        state.xero_minute_used = state.xero_minute_used.saturating_add(1);
        state.xero_day_used = state.xero_day_used.saturating_add(1);
        (
            MINUTE_LIMIT.saturating_sub(state.xero_minute_used),
            day_remaining(&state),
        )
    };
    let mut response = match (call.method, call.path.trim_matches('/')) {
        (&Method::GET, "Organisation") => HttpResponse::Ok().json(envelope(
            "Organisations",
            json!([{
                "OrganisationID": XERO_TENANT_ID,
                "APIKey": "",
                "Name": "Fake Freight Ltd",
                "LegalName": "Fake Freight Limited",
                "PaysTax": true,
                "Version": "US",
                "OrganisationType": "COMPANY",
                "BaseCurrency": "USD",
                "CountryCode": "US",
                "IsDemoCompany": false,
                "OrganisationStatus": "ACTIVE",
                "FinancialYearEndDay": 31,
                "FinancialYearEndMonth": 12,
                "Timezone": "PACIFICSTANDARDTIME",
                "CreatedDateUTC": ms_date(record_time(0)),
                "ShortCode": "!fk3x9",
                "Edition": "BUSINESS",
                "Class": "STANDARD",
            }]),
        )),
        (&Method::GET, "Invoices") => {
            let since = modified_since(call);
            let matching: Vec<usize> = (1..=INVOICES)
                .filter(|i| since.is_none_or(|t| record_time(*i) > t))
                .collect();
            match call.param("page") {
                None => HttpResponse::Ok().json(envelope(
                    "Invoices",
                    matching.iter().map(|i| invoice(*i)).collect(),
                )),
                Some(p) => {
                    let Ok(page) = p.parse::<usize>() else {
                        return problem(
                            StatusCode::BAD_REQUEST,
                            "Validation error",
                            "page must be a positive integer",
                        );
                    };
                    let page = page.max(1);
                    let items: Vec<Value> = matching
                        .iter()
                        .skip((page - 1) * PAGE_SIZE)
                        .take(PAGE_SIZE)
                        .map(|i| invoice(*i))
                        .collect();
                    let mut body = envelope("Invoices", Value::Array(items));
                    body["pagination"] = json!({
                        "page": page,
                        "pageSize": PAGE_SIZE,
                        "pageCount": matching.len().div_ceil(PAGE_SIZE),
                        "itemCount": matching.len(),
                    });
                    HttpResponse::Ok().json(body)
                }
            }
        }
        _ => not_found(Kind::Xero, call.path),
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-minlimit-remaining", minute_remaining),
        ("x-daylimit-remaining", day_remaining),
        ("x-appminlimit-remaining", 9999),
    ] {
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&value.to_string()) {
            headers.insert(actix_web::http::header::HeaderName::from_static(name), v);
        }
    }
    response
}
