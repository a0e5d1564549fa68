//! KeepTruckin (Motive) v1 under `/v1` (`X-Api-Key: <key>` or
//! `Authorization: Bearer <token>`): `GET /vehicle_locations` and
//! `GET /hos_logs` (`start_date`/`end_date`), paged with `per_page` (25 by
//! default, 100 at most) and `page_no`, `pagination.total`; a page past
//! the end is empty. Each item is wrapped (`{"vehicle": {…}}`), as Motive
//! does. Shapes of `hos_logs` are approximate.

use super::*;

const DEFAULT_PER_PAGE: u64 = 25;
const MAX_PER_PAGE: u64 = 100;
const VEHICLE_ID_BASE: u64 = 80_000;
const LOG_ID_BASE: u64 = 4_100_000;
const DRIVER_ID_BASE: u64 = 120_000;

pub(super) static SCHEMA: KeepTruckin = KeepTruckin;

/// Motive's objects: `vehicle_locations` (one record per vehicle, its last
/// position) and `hos_logs` (one record per duty-status entry).
pub(super) struct KeepTruckin;

const OBJECTS: [ObjectSpec; 2] = [
    ObjectSpec {
        name: "vehicle_locations",
        default_count: 7,
    },
    ObjectSpec {
        name: "hos_logs",
        default_count: 28,
    },
];

fn driver(n: u64) -> Value {
    let d = (n - 1) % 7 + 1;
    json!({
        "id": DRIVER_ID_BASE + d,
        "first_name": (["Ana", "Ben", "Chloe", "Dev", "Eli", "Fay", "Gus"][(d - 1) as usize]),
        "last_name": format!("Driver{d}"),
        "username": format!("driver{d}"),
        "email": format!("driver{d}@fakefreight.example.com"),
        "driver_company_id": format!("D{d:03}"),
        "status": "active",
        "role": "driver",
    })
}

fn position(n: u64, version: u64) -> (f64, f64) {
    // Spread over the south-western US, whatever the fleet's size.
    let k = (n % 64) as f64;
    (
        36.1 + k * 0.113 + version as f64 * 0.02,
        -115.2 + k * 0.171 + version as f64 * 0.02,
    )
}

const STATUSES: [&str; 4] = ["off_duty", "on_duty", "driving", "sleeper"];

impl Schema for KeepTruckin {
    fn objects(&self) -> &'static [ObjectSpec] {
        &OBJECTS
    }

    fn generate(&self, object: &'static str, n: u64) -> Fields {
        let value = if object == "vehicle_locations" {
            let (lat, lon) = position(n, 0);
            json!({
                "number": format!("Truck {n:02}"),
                "year": "2020",
                "make": "Kenworth",
                "model": "T680",
                "vin": format!("1XKYD49X0LJ{n:06}"),
                "lat": lat,
                "lon": lon,
                "bearing": (n * 37 % 360) as f64,
                "description": format!("{} mi NE of Barstow, CA", 3 + n % 40),
                "current_driver": driver(n),
            })
        } else {
            let truck = (n - 1) % 7 + 1;
            json!({
                "status": STATUSES[n as usize % STATUSES.len()],
                "duration": 3600 * (1 + n % 4),
                "location": format!("Barstow, CA ({})", n % 40),
                "notes": "",
                "driver": driver(n),
                "vehicle": {"id": VEHICLE_ID_BASE + truck, "number": format!("Truck {truck:02}")},
            })
        };
        store::fields_of(value)
    }

    fn id(&self, object: &'static str, n: u64) -> String {
        let base = if object == "vehicle_locations" {
            VEHICLE_ID_BASE
        } else {
            LOG_ID_BASE
        };
        (base + n).to_string()
    }

    fn number(&self, object: &'static str, id: &str) -> Option<u64> {
        let base = if object == "vehicle_locations" {
            VEHICLE_ID_BASE
        } else {
            LOG_ID_BASE
        };
        id.parse::<u64>()
            .ok()?
            .checked_sub(base)
            .filter(|n| *n >= 1)
    }

    fn touched(&self, object: &'static str, record: &Record) -> Fields {
        let mut f = Fields::new();
        if object == "vehicle_locations" {
            let (lat, lon) = position(record.num, record.version);
            f.insert("lat".into(), json!(lat));
            f.insert("lon".into(), json!(lon));
        } else {
            f.insert(
                "notes".into(),
                json!(format!("Edited by the carrier (v{})", record.version)),
            );
        }
        f
    }

    fn render(&self, object: &'static str, record: &Record) -> Value {
        let id = self
            .id(object, record.num)
            .parse::<u64>()
            .unwrap_or_default();
        let f = &record.fields;
        let get = |k: &str| f.get(k).cloned().unwrap_or(Value::Null);
        if object == "vehicle_locations" {
            json!({"vehicle": {
                "id": id,
                "number": get("number"),
                "year": get("year"),
                "make": get("make"),
                "model": get("model"),
                "vin": get("vin"),
                "current_location": {
                    "lat": get("lat"),
                    "lon": get("lon"),
                    "bearing": get("bearing"),
                    "located_at": utc_seconds(record.modified),
                    "description": get("description"),
                },
                "current_driver": get("current_driver"),
            }})
        } else {
            let seconds = f.get("duration").and_then(Value::as_i64).unwrap_or(3600);
            let start = record.modified - chrono::Duration::seconds(seconds);
            json!({"hos_log": {
                "id": id,
                "log_date": start.format("%Y-%m-%d").to_string(),
                "status": get("status"),
                "start_time": utc_seconds(start),
                "end_time": utc_seconds(record.modified),
                "duration": seconds,
                "location": get("location"),
                "notes": get("notes"),
                "driver": get("driver"),
                "vehicle": get("vehicle"),
                "updated_at": utc_seconds(record.modified),
            }})
        }
    }
}

fn error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error_message": message }))
}

/// The key or token the request carries, if any.
fn credential<'a>(call: &'a Call<'_>) -> Option<&'a str> {
    call.header("x-api-key").or_else(|| call.bearer())
}

pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
    match credential(call) {
        None => {
            return error(
                StatusCode::UNAUTHORIZED,
                "Please provide an API key (X-Api-Key) or an access token (Authorization: Bearer)",
            );
        }
        Some(key) if key != call.valid_token => {
            let expired = call.shared.lock().oauth.check_access(key) == TokenCheck::Expired;
            let message = if expired {
                "The access token expired"
            } else {
                "Invalid API key or access token"
            };
            return error(StatusCode::UNAUTHORIZED, message);
        }
        Some(_) => {}
    }
    let object = match (call.method, call.path.trim_end_matches('/')) {
        (&Method::GET, "/vehicle_locations") => "vehicle_locations",
        (&Method::GET, "/hos_logs") => "hos_logs",
        _ => return not_found(Kind::KeepTruckin, call.path),
    };
    let Some(spec) = Kind::KeepTruckin.object(object) else {
        return not_found(Kind::KeepTruckin, call.path);
    };
    let per_page = call
        .u64_param("per_page")
        .unwrap_or(DEFAULT_PER_PAGE)
        .clamp(1, MAX_PER_PAGE);
    let page_no = call.u64_param("page_no").unwrap_or(1).max(1);
    let mut q = Query::default();
    if object == "hos_logs" {
        for (name, start) in [("start_date", true), ("end_date", false)] {
            let Some(raw) = call.param(name) else {
                continue;
            };
            let Ok(day) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") else {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("{name} must be a date (YYYY-MM-DD), not {raw:?}"),
                );
            };
            let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
            q.time.push(if start {
                Bound::AtOrAfter(midnight)
            } else {
                Bound::Before(midnight + chrono::Duration::days(1))
            });
        }
    }
    let (records, total) =
        call.shared
            .query(spec, &q, (page_no - 1).saturating_mul(per_page), per_page);
    let items: Vec<Value> = records
        .iter()
        .map(|r| SCHEMA.render(spec.name, r))
        .collect();
    let key = if object == "vehicle_locations" {
        "vehicles"
    } else {
        "hos_logs"
    };
    let mut body = Fields::new();
    body.insert(key.into(), Value::Array(items));
    body.insert(
        "pagination".into(),
        json!({"per_page": per_page, "page_no": page_no, "total": total}),
    );
    HttpResponse::Ok().json(Value::Object(body))
}
