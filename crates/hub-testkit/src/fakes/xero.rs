//! Xero accounting 2.0 under `/api.xro/2.0`: `/Organisation`, paged
//! `/Invoices`, `/Contacts`, `/Payments` (`page=N`, 100 a page unless
//! `pageSize`; an empty page ends; `If-Modified-Since`), reads by id, and
//! the writes `POST` (create, or update by `InvoiceID`/…) and `PUT`
//! (create); plus `GET /connections` at the root.

use super::*;

const PAGE_SIZE: u64 = 100;
const MAX_PAGE_SIZE: u64 = 1000;
const MINUTE_LIMIT: u32 = 60;
const DAY_LIMIT: u32 = 5000;

pub(super) static SCHEMA: Xero = Xero;

/// Xero's objects and records.
pub(super) struct Xero;

const OBJECTS: [ObjectSpec; 3] = [
    ObjectSpec {
        name: "Invoices",
        default_count: 150,
    },
    ObjectSpec {
        name: "Contacts",
        default_count: 7,
    },
    ObjectSpec {
        name: "Payments",
        default_count: 30,
    },
];

/// The data set of the object's stable UUIDs.
fn uuid_set(object: &str) -> u32 {
    match object {
        "Invoices" => 0x1e,
        "Contacts" => 0xc1,
        _ => 0xa7,
    }
}

/// The name of the object's id field (`InvoiceID`).
fn id_field(object: &str) -> &'static str {
    match object {
        "Invoices" => "InvoiceID",
        "Contacts" => "ContactID",
        _ => "PaymentID",
    }
}

/// Xero's `/Date(1518685950940+0000)/`.
fn ms_date(t: DateTime<Utc>) -> String {
    format!("/Date({}+0000)/", t.timestamp_millis())
}

/// The contact (1 to 7) invoice or payment `n` is for.
fn contact_of(n: u64) -> u64 {
    n % 7 + 1
}

fn invoice_amounts(n: u64) -> (f64, f64, f64) {
    let subtotal = (100_000 + n * 3_137) as f64 / 100.0;
    let tax = (subtotal * 0.15 * 100.0).round() / 100.0;
    (subtotal, tax, subtotal + tax)
}

impl Schema for Xero {
    fn objects(&self) -> &'static [ObjectSpec] {
        &OBJECTS
    }

    fn generate(&self, object: &'static str, n: u64) -> Fields {
        let date = store::generated_time(n);
        let day = |t: DateTime<Utc>| t.format("%Y-%m-%dT00:00:00").to_string();
        let value = match object {
            "Invoices" => {
                let (subtotal, tax, total) = invoice_amounts(n);
                let paid = n.is_multiple_of(5);
                let contact = contact_of(n);
                let due = date + chrono::Duration::days(30);
                json!({
                    "Type": "ACCREC",
                    "InvoiceNumber": format!("INV-{n:04}"),
                    "Reference": format!("Load {}", 7000 + n),
                    "Contact": {"ContactID": stable_uuid(0xc1, contact as usize), "Name": format!("Shipper {contact}")},
                    "Date": ms_date(date),
                    "DateString": day(date),
                    "DueDate": ms_date(due),
                    "DueDateString": day(due),
                    "Status": if paid { "PAID" } else { "AUTHORISED" },
                    "LineAmountTypes": "Exclusive",
                    "LineItems": [{
                        "Description": format!("Linehaul, load {}", 7000 + n),
                        "Quantity": 1.0,
                        "UnitAmount": subtotal,
                        "AccountCode": "200",
                        "TaxAmount": tax,
                        "LineAmount": subtotal,
                    }],
                    "SubTotal": subtotal,
                    "TotalTax": tax,
                    "Total": total,
                    "AmountDue": if paid { 0.0 } else { total },
                    "AmountPaid": if paid { total } else { 0.0 },
                    "CurrencyCode": "USD",
                    "HasAttachments": false,
                })
            }
            "Contacts" => json!({
                "ContactStatus": "ACTIVE",
                "Name": format!("Shipper {n}"),
                "EmailAddress": format!("ap{n}@shipper.example.com"),
                "IsSupplier": false,
                "IsCustomer": true,
                "DefaultCurrency": "USD",
            }),
            _ => {
                let (_, _, total) = invoice_amounts(n);
                let paid = date + chrono::Duration::days(12);
                json!({
                    "Date": ms_date(paid),
                    "Amount": total,
                    "Reference": format!("Remittance {}", 9000 + n),
                    "Status": "AUTHORISED",
                    "PaymentType": "ACCRECPAYMENT",
                    "IsReconciled": false,
                    "Invoice": {"InvoiceID": stable_uuid(0x1e, n as usize), "InvoiceNumber": format!("INV-{n:04}")},
                    "Account": {"AccountID": stable_uuid(0xac, 1), "Code": "090"},
                })
            }
        };
        store::fields_of(value)
    }

    fn id(&self, object: &'static str, n: u64) -> String {
        stable_uuid(uuid_set(object), n as usize)
    }

    fn number(&self, object: &'static str, id: &str) -> Option<u64> {
        let head = format!("{:08x}-0000-4000-8000-", uuid_set(object));
        let tail = id.to_ascii_lowercase();
        let hex = tail.strip_prefix(&head)?;
        if hex.len() != 12 {
            return None;
        }
        u64::from_str_radix(hex, 16).ok().filter(|n| *n >= 1)
    }

    fn touched(&self, object: &'static str, record: &Record) -> Fields {
        let (n, v) = (record.num, record.version);
        let mut f = Fields::new();
        match object {
            "Invoices" => {
                f.insert(
                    "Reference".into(),
                    json!(format!("Load {} rev {v}", 7000 + n)),
                );
            }
            "Contacts" => {
                f.insert(
                    "EmailAddress".into(),
                    json!(format!("ap{n}+v{v}@shipper.example.com")),
                );
            }
            _ => {
                f.insert(
                    "Reference".into(),
                    json!(format!("Remittance {} rev {v}", 9000 + n)),
                );
            }
        }
        f
    }

    fn render(&self, object: &'static str, record: &Record) -> Value {
        let mut out = Fields::new();
        out.insert(id_field(object).into(), json!(self.id(object, record.num)));
        for (k, v) in &record.fields {
            out.insert(k.clone(), v.clone());
        }
        out.insert("UpdatedDateUTC".into(), json!(ms_date(record.modified)));
        if record.deleted {
            out.insert("Status".into(), json!("DELETED"));
        }
        Value::Object(out)
    }
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
    let created = store::generated_time(0)
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

/// `If-Modified-Since` as Xero takes it: an HTTP date, or an ISO
/// date-time (without offset meaning UTC).
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
            NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
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
    let segments: Vec<&str> = call.path.trim_matches('/').split('/').collect();
    let mut response = match (call.method, segments.as_slice()) {
        (&Method::GET, ["Organisation"]) => HttpResponse::Ok().json(envelope(
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
                "CreatedDateUTC": ms_date(store::generated_time(0)),
                "ShortCode": "!fk3x9",
                "Edition": "BUSINESS",
                "Class": "STANDARD",
            }]),
        )),
        (&Method::GET, [object]) if Kind::Xero.object(object).is_some() => {
            list(call, Kind::Xero.object(object))
        }
        (&Method::GET, [object, id]) if Kind::Xero.object(object).is_some() => match Kind::Xero
            .object(object)
            .and_then(|spec| Some((spec, call.shared.find(spec, id)?)))
        {
            Some((spec, record)) => HttpResponse::Ok().json(envelope(
                spec.name,
                json!([SCHEMA.render(spec.name, &record)]),
            )),
            None => problem(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("The resource you're looking for cannot be found: {id}"),
            ),
        },
        (&Method::POST | &Method::PUT, [object]) if Kind::Xero.object(object).is_some() => {
            match Kind::Xero.object(object) {
                Some(spec) => write(call, spec),
                None => not_found(Kind::Xero, call.path),
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

/// `GET /Invoices|Contacts|Payments[?page=N&pageSize=M&order=…]`, filtered by
/// `If-Modified-Since`; every match without `page`.
fn list(call: &Call<'_>, spec: Option<&'static ObjectSpec>) -> HttpResponse {
    let Some(spec) = spec else {
        return not_found(Kind::Xero, call.path);
    };
    let mut q = Query::default();
    if let Some(since) = modified_since(call) {
        q.time.push(Bound::After(since));
    }
    if let Some(order) = call.param("order") {
        let mut words = order.split_whitespace();
        let field = words.next().unwrap_or_default();
        if field.eq_ignore_ascii_case("UpdatedDateUTC") {
            q.order = Order::Modified;
        } else if !field.eq_ignore_ascii_case(id_field(spec.name)) {
            return validation(&format!(
                "the fake Xero orders by UpdatedDateUTC or {}, not {field:?}",
                id_field(spec.name)
            ));
        }
        q.descending = words.next().is_some_and(|d| d.eq_ignore_ascii_case("DESC"));
    }
    let Some(p) = call.param("page") else {
        let (records, _) = call.shared.query(spec, &q, 0, u64::MAX);
        return HttpResponse::Ok().json(envelope(
            spec.name,
            records
                .iter()
                .map(|r| SCHEMA.render(spec.name, r))
                .collect(),
        ));
    };
    let Ok(page) = p.parse::<u64>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Validation error",
            "page must be a positive integer",
        );
    };
    let page = page.max(1);
    let size = call
        .u64_param("pageSize")
        .unwrap_or(PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let (records, total) = call
        .shared
        .query(spec, &q, (page - 1).saturating_mul(size), size);
    let items: Vec<Value> = records
        .iter()
        .map(|r| SCHEMA.render(spec.name, r))
        .collect();
    let mut body = envelope(spec.name, Value::Array(items));
    body["pagination"] = json!({
        "page": page,
        "pageSize": size,
        "pageCount": total.div_ceil(size),
        "itemCount": total,
    });
    HttpResponse::Ok().json(body)
}

fn validation(message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [{"ValidationErrors": [{"Message": message}]}],
    }))
}

/// `POST` (create or update by id) or `PUT` (create) of
/// `{"Invoices": [ … ]}` or a single object: every element applied, or the
/// first refused with Xero's `ValidationException`.
fn write(call: &Call<'_>, spec: &'static ObjectSpec) -> HttpResponse {
    let elements = match serde_json::from_slice::<Value>(call.body) {
        Ok(Value::Object(mut body)) => match body.remove(spec.name) {
            Some(Value::Array(items)) => items,
            Some(_) => return validation(&format!("{} must be an array", spec.name)),
            None => vec![Value::Object(body)],
        },
        Ok(_) | Err(_) => {
            return validation("The request body must be a JSON object (Xero's JSON format)");
        }
    };
    let id_key = id_field(spec.name);
    let required: &[&str] = match spec.name {
        "Invoices" => &["Type", "Contact"],
        "Contacts" => &["Name"],
        _ => &["Invoice", "Account", "Amount"],
    };
    let mut done = Vec::with_capacity(elements.len());
    for element in elements {
        let Value::Object(mut fields) = element else {
            return validation("each element must be a JSON object");
        };
        fields.remove("UpdatedDateUTC");
        let id = fields
            .remove(id_key)
            .and_then(|v| v.as_str().map(str::to_owned));
        let record = match id {
            Some(id) => {
                let Some(n) = SCHEMA.number(spec.name, &id) else {
                    return element_error(fields, &format!("{id_key} {id} could not be found"));
                };
                match call
                    .shared
                    .api_update(spec, n, fields.clone(), |_| Ok::<(), ()>(()))
                {
                    Ok(record) => record,
                    Err(_) => {
                        return element_error(fields, &format!("{id_key} {id} could not be found"));
                    }
                }
            }
            None => {
                if let Some(field) = required
                    .iter()
                    .find(|r| fields.get(**r).is_none_or(Value::is_null))
                {
                    let message = format!("A {field} must be specified");
                    return element_error(fields, &message);
                }
                call.shared.api_create(spec, fields, |_, _| {})
            }
        };
        done.push(SCHEMA.render(spec.name, &record));
    }
    HttpResponse::Ok().json(envelope(spec.name, Value::Array(done)))
}

fn element_error(mut element: Fields, message: &str) -> HttpResponse {
    element.insert("ValidationErrors".into(), json!([{"Message": message}]));
    HttpResponse::BadRequest().json(json!({
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [Value::Object(element)],
    }))
}
