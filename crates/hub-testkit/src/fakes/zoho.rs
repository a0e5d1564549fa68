//! Zoho CRM v2 under `/crm/v2` (`Authorization: Zoho-oauthtoken <token>`):
//! `GET /{Deals|Accounts|Contacts}?page=&per_page=` (200 at most a page,
//! `info.more_records`; 204 with no body when there is nothing to list),
//! `If-Modified-Since` (304 with no body when nothing changed since),
//! `sort_by`/`sort_order`, reads by id, and the writes `POST /{module}`,
//! `PUT /{module}/{id}`, `DELETE /{module}/{id}`. Times carry the account's
//! `+05:30` offset.

use super::*;

const MAX_PER_PAGE: u64 = 200;
const ID_BASE: u64 = 3_652_397_000_000_000_000;
const OWNER: (&str, &str) = ("Fake Owner", "3652397000000186017");

pub(super) static SCHEMA: Zoho = Zoho;

/// Zoho CRM's modules and records.
pub(super) struct Zoho;

const OBJECTS: [ObjectSpec; 3] = [
    ObjectSpec {
        name: "Deals",
        default_count: 25,
    },
    ObjectSpec {
        name: "Accounts",
        default_count: 10,
    },
    ObjectSpec {
        name: "Contacts",
        default_count: 30,
    },
];

/// Each module's ids start here (Zoho ids are 19-digit numbers).
fn id_base(object: &str) -> u64 {
    ID_BASE
        + match object {
            "Deals" => 1_000_000_000,
            "Accounts" => 2_000_000_000,
            _ => 3_000_000_000,
        }
}

fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 1800).expect("UTC+05:30 is a valid offset")
}

/// Zoho's times: the account's offset, seconds (`2024-01-01T13:31:00+05:30`).
fn zoho_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&ist())
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn account_ref(n: u64) -> Value {
    let a = n % 10 + 1;
    json!({"name": format!("Shipper {a}"), "id": SCHEMA.id("Accounts", a)})
}

const STAGES: [&str; 4] = [
    "Qualification",
    "Needs Analysis",
    "Negotiation/Review",
    "Closed Won",
];

impl Schema for Zoho {
    fn objects(&self) -> &'static [ObjectSpec] {
        &OBJECTS
    }

    fn generate(&self, object: &'static str, n: u64) -> Fields {
        let value = match object {
            "Deals" => json!({
                "Deal_Name": format!("Lane contract {n}"),
                "Amount": (1500 * n) as f64,
                "Stage": STAGES[n as usize % STAGES.len()],
                "Probability": ([10, 20, 80, 100][n as usize % 4]),
                "Expected_Revenue": ((1500 * n) as f64 * [0.1, 0.2, 0.8, 1.0][n as usize % 4]),
                "Closing_Date": (store::generated_time(n) + chrono::Duration::days(60)).format("%Y-%m-%d").to_string(),
                "Account_Name": account_ref(n),
            }),
            "Accounts" => json!({
                "Account_Name": format!("Shipper {n}"),
                "Industry": (["Transportation", "Manufacturing", "Retail"][n as usize % 3]),
                "Annual_Revenue": (250_000 * n) as f64,
                "Employees": 10 * n,
                "Billing_Country": "United States",
                "Phone": format!("+1 702 555 {:04}", n % 10_000),
                "Website": format!("https://shipper{n}.example.com"),
            }),
            _ => json!({
                "First_Name": (["Ana", "Ben", "Chloe", "Dev"][n as usize % 4]),
                "Last_Name": format!("Driver{n}"),
                "Email": format!("contact{n}@example.com"),
                "Title": "Dispatcher",
                "Phone": format!("+1 775 555 {:04}", n % 10_000),
                "Account_Name": account_ref(n),
            }),
        };
        store::fields_of(value)
    }

    fn id(&self, object: &'static str, n: u64) -> String {
        (id_base(object) + n).to_string()
    }

    fn number(&self, object: &'static str, id: &str) -> Option<u64> {
        let n = id.parse::<u64>().ok()?.checked_sub(id_base(object))?;
        (1..1_000_000_000).contains(&n).then_some(n)
    }

    fn touched(&self, object: &'static str, record: &Record) -> Fields {
        let (n, v) = (record.num, record.version);
        let mut f = Fields::new();
        match object {
            "Deals" => {
                f.insert("Amount".into(), json!((1500 * n + 100 * v) as f64));
                f.insert(
                    "Stage".into(),
                    json!(STAGES[(n + v) as usize % STAGES.len()]),
                );
            }
            "Accounts" => {
                f.insert("Employees".into(), json!(10 * n + v));
            }
            _ => {
                f.insert("Title".into(), json!(format!("Dispatcher v{v}")));
            }
        }
        f
    }

    fn render(&self, object: &'static str, record: &Record) -> Value {
        render(object, record, None)
    }
}

/// A record as Zoho returns it; `wanted`: the `fields` asked for (`None`:
/// all).
fn render(object: &'static str, record: &Record, wanted: Option<&[String]>) -> Value {
    let owner = json!({"name": OWNER.0, "id": OWNER.1});
    let mut out = Fields::new();
    out.insert("id".into(), json!(SCHEMA.id(object, record.num)));
    let keep = |k: &str| wanted.is_none_or(|w| w.iter().any(|x| x == k));
    for (k, v) in &record.fields {
        if keep(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    if wanted.is_none() {
        out.insert("Owner".into(), owner.clone());
        out.insert("Created_By".into(), owner.clone());
        out.insert("Modified_By".into(), owner);
        out.insert("Created_Time".into(), json!(zoho_time(record.created)));
        out.insert("$approved".into(), json!(true));
        out.insert("$editable".into(), json!(true));
    }
    if keep("Modified_Time") || wanted.is_none() {
        out.insert("Modified_Time".into(), json!(zoho_time(record.modified)));
    }
    Value::Object(out)
}

fn error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "code": code,
        "details": {},
        "message": message,
        "status": "error",
    }))
}

/// The token of `Authorization: Zoho-oauthtoken <token>`.
fn zoho_token<'a>(call: &'a Call<'_>) -> Option<&'a str> {
    let value = call.header("authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("zoho-oauthtoken")
        .then(|| token.trim())
}

fn authorized(call: &Call<'_>) -> TokenCheck {
    match zoho_token(call) {
        None => TokenCheck::Invalid,
        Some(t) if t == call.valid_token => TokenCheck::Valid,
        Some(t) => call.shared.lock().oauth.check_access(t),
    }
}

/// `If-Modified-Since` as Zoho takes it: ISO 8601 with an offset (or an
/// HTTP date).
fn modified_since(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .or_else(|_| DateTime::parse_from_rfc2822(raw.trim()))
        .map(|t| t.with_timezone(&Utc))
        .ok()
}

pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
    match authorized(call) {
        TokenCheck::Valid => {}
        TokenCheck::Expired => {
            return error(
                StatusCode::UNAUTHORIZED,
                "INVALID_TOKEN",
                "invalid oauth token",
            );
        }
        TokenCheck::Invalid => {
            let message = if call.header("authorization").is_some() {
                "invalid oauth token"
            } else {
                "Authorization header is missing"
            };
            return error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN", message);
        }
    }
    let segments: Vec<&str> = call.path.trim_matches('/').split('/').collect();
    let (module, rest) = match segments.as_slice() {
        ["crm", "v2", module, rest @ ..] => (*module, rest),
        _ => return not_found(Kind::Zoho, call.path),
    };
    let Some(spec) = Kind::Zoho.object(module) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_MODULE",
            "the module name given seems to be invalid",
        );
    };
    match (call.method, rest) {
        (&Method::GET, []) => list(call, spec),
        (&Method::GET, [id]) => match call.shared.find(spec, id) {
            Some(record) => {
                HttpResponse::Ok().json(json!({"data": [SCHEMA.render(spec.name, &record)]}))
            }
            // Zoho answers an unknown id with no content.
            None => HttpResponse::NoContent().finish(),
        },
        (&Method::POST, []) => create(call, spec),
        (&Method::PUT, [id]) => update(call, spec, id),
        (&Method::DELETE, [id]) => {
            let outcome = SCHEMA.number(spec.name, id).map(|n| {
                call.shared
                    .api_delete(spec, n, |_| Ok::<(), ()>(()))
                    .is_ok()
            });
            if outcome == Some(true) {
                HttpResponse::Ok().json(json!({"data": [{
                    "code": "SUCCESS", "details": {"id": id}, "message": "record deleted", "status": "success",
                }]}))
            } else {
                invalid_id(id)
            }
        }
        _ => not_found(Kind::Zoho, call.path),
    }
}

fn invalid_id(id: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"data": [{
        "code": "INVALID_DATA", "details": {"id": id}, "message": "the id given seems to be invalid", "status": "error",
    }]}))
}

/// `GET /crm/v2/{module}?page=&per_page=&fields=&sort_by=&sort_order=`.
fn list(call: &Call<'_>, spec: &'static ObjectSpec) -> HttpResponse {
    let per_page = call
        .u64_param("per_page")
        .unwrap_or(MAX_PER_PAGE)
        .clamp(1, MAX_PER_PAGE);
    let page = call.u64_param("page").unwrap_or(1).max(1);
    let mut q = Query::default();
    let since = match call.header("if-modified-since") {
        None => None,
        Some(raw) => match modified_since(raw) {
            Some(t) => Some(t),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_DATA",
                    "the If-Modified-Since header must be an ISO 8601 date-time with offset",
                );
            }
        },
    };
    if let Some(t) = since {
        q.time.push(Bound::After(t));
    }
    match call.param("sort_by") {
        None | Some("id") => {}
        Some("Modified_Time") => q.order = Order::Modified,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_DATA",
                &format!("the fake Zoho sorts by id or Modified_Time, not {other}"),
            );
        }
    }
    q.descending = call.param("sort_order") == Some("desc");
    let wanted: Option<Vec<String>> = call.param("fields").map(|f| {
        f.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    });
    let (records, total) =
        call.shared
            .query(spec, &q, (page - 1).saturating_mul(per_page), per_page);
    if total == 0 && since.is_some() {
        return HttpResponse::NotModified().finish();
    }
    if records.is_empty() {
        return HttpResponse::NoContent().finish();
    }
    let more = (page - 1) * per_page + (records.len() as u64) < total;
    let data: Vec<Value> = records
        .iter()
        .map(|r| render(spec.name, r, wanted.as_deref()))
        .collect();
    HttpResponse::Ok().json(json!({
        "data": data,
        "info": {
            "per_page": per_page,
            "count": records.len(),
            "page": page,
            "more_records": more,
        },
    }))
}

/// The `data` array of a write body.
/// (The refusal is boxed: an `HttpResponse` is large.)
fn data_of(call: &Call<'_>) -> Result<Vec<Fields>, Box<HttpResponse>> {
    let body: Value = serde_json::from_slice(call.body).map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            "the body must be JSON: {\"data\": [ … ]}",
        ))
    })?;
    let Some(items) = body["data"].as_array() else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "MANDATORY_NOT_FOUND",
            "required field not found: data",
        )));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(fields) = item else {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "INVALID_DATA",
                "each element of data must be an object",
            )));
        };
        let mut fields = fields.clone();
        for system in [
            "id",
            "Created_Time",
            "Modified_Time",
            "Owner",
            "Created_By",
            "Modified_By",
        ] {
            fields.remove(system);
        }
        out.push(fields);
    }
    Ok(out)
}

fn success(record: &Record, object: &'static str, message: &str) -> Value {
    let by = json!({"name": OWNER.0, "id": OWNER.1});
    json!({
        "code": "SUCCESS",
        "details": {
            "Modified_Time": zoho_time(record.modified),
            "Modified_By": by.clone(),
            "Created_Time": zoho_time(record.created),
            "id": SCHEMA.id(object, record.num),
            "Created_By": by,
        },
        "message": message,
        "status": "success",
    })
}

/// `POST /crm/v2/{module}`: 201 with one answer per record.
fn create(call: &Call<'_>, spec: &'static ObjectSpec) -> HttpResponse {
    let items = match data_of(call) {
        Ok(items) => items,
        Err(refused) => return *refused,
    };
    let required = match spec.name {
        "Deals" => "Deal_Name",
        "Accounts" => "Account_Name",
        _ => "Last_Name",
    };
    let mut answers = Vec::with_capacity(items.len());
    for fields in items {
        if fields.get(required).is_none_or(Value::is_null) {
            answers.push(json!({
                "code": "MANDATORY_NOT_FOUND",
                "details": {"api_name": required},
                "message": "required field not found",
                "status": "error",
            }));
            continue;
        }
        let record = call.shared.api_create(spec, fields, |_, _| {});
        answers.push(success(&record, spec.name, "record added"));
    }
    HttpResponse::Created().json(json!({"data": answers}))
}

/// `PUT /crm/v2/{module}/{id}`: 200 with the answer for the record.
fn update(call: &Call<'_>, spec: &'static ObjectSpec, id: &str) -> HttpResponse {
    let items = match data_of(call) {
        Ok(items) => items,
        Err(refused) => return *refused,
    };
    let Some(n) = SCHEMA.number(spec.name, id) else {
        return invalid_id(id);
    };
    let patch = items.into_iter().next().unwrap_or_default();
    match call.shared.api_update(spec, n, patch, |_| Ok::<(), ()>(())) {
        Ok(record) => HttpResponse::Ok()
            .json(json!({"data": [success(&record, spec.name, "record updated")]})),
        Err(_) => invalid_id(id),
    }
}
