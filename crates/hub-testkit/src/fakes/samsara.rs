//! Samsara: `GET /fleet/vehicles`, `GET /fleet/vehicles/locations` and
//! `GET /fleet/hos/logs` (`startTime`/`endTime`), cursor-paged with `after`
//! / `pagination.endCursor` and `hasNextPage`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;

/// The largest (and default) page.
const MAX_LIMIT: u64 = 512;
const VEHICLE_ID_BASE: u64 = 212_014_918_086_160;
const DRIVER_ID_BASE: u64 = 53_000;

pub(super) static SCHEMA: Samsara = Samsara;

/// Samsara's objects: `vehicles` (and their last location), and
/// `hos_logs`, one record per driver and duty day.
pub(super) struct Samsara;

const OBJECTS: [ObjectSpec; 2] = [
    ObjectSpec {
        name: "vehicles",
        default_count: 7,
    },
    ObjectSpec {
        name: "hos_logs",
        default_count: 7,
    },
];

fn vehicle_id(n: u64) -> String {
    (VEHICLE_ID_BASE + n).to_string()
}

fn location(n: u64, version: u64) -> Value {
    // Spread over the western US, whatever the fleet's size.
    let k = (n % 64) as f64;
    let lat = 39.5 + k * 0.137 + version as f64 * 0.01;
    let lon = -119.8 + k * 0.211 + version as f64 * 0.01;
    json!({
        "latitude": lat,
        "longitude": lon,
        "heading": ((n + version) * 45 % 360) as f64,
        "speed": 55.0 + n as f64 + version as f64,
        "reverseGeo": {"formattedLocation": format!("I-80 mile {}, NV", 12 + n * 9 + version)},
    })
}

impl Schema for Samsara {
    fn objects(&self) -> &'static [ObjectSpec] {
        &OBJECTS
    }

    fn generate(&self, object: &'static str, n: u64) -> Fields {
        let value = if object == "vehicles" {
            json!({
                "name": format!("Truck {n:02}"),
                "vin": format!("1FUJGLDR5CLBP{n:04}"),
                "licensePlate": format!("7TRK{n:03}"),
                "make": "Freightliner",
                "model": "Cascadia",
                "year": "2021",
                "serial": format!("G9ZK{n:04}"),
                "externalIds": {"samsara.vin": format!("1FUJGLDR5CLBP{n:04}")},
                "location": location(n, 0),
            })
        } else {
            let truck = (n - 1) % 7 + 1;
            json!({
                "driver": {"id": (DRIVER_ID_BASE + n).to_string(), "name": format!("Driver {n}")},
                "vehicle": {"id": vehicle_id(truck), "name": format!("Truck {truck:02}")},
                "statuses": ["offDuty", "onDuty", "driving", "offDuty"],
                "remark": "",
            })
        };
        store::fields_of(value)
    }

    fn id(&self, object: &'static str, n: u64) -> String {
        if object == "vehicles" {
            vehicle_id(n)
        } else {
            (DRIVER_ID_BASE + n).to_string()
        }
    }

    fn number(&self, object: &'static str, id: &str) -> Option<u64> {
        let base = if object == "vehicles" {
            VEHICLE_ID_BASE
        } else {
            DRIVER_ID_BASE
        };
        id.parse::<u64>()
            .ok()?
            .checked_sub(base)
            .filter(|n| *n >= 1)
    }

    fn touched(&self, object: &'static str, record: &Record) -> Fields {
        let mut f = Fields::new();
        if object == "vehicles" {
            f.insert("location".into(), location(record.num, record.version));
        } else {
            f.insert(
                "remark".into(),
                json!(format!("Edited by the carrier (v{})", record.version)),
            );
        }
        f
    }

    fn render(&self, object: &'static str, record: &Record) -> Value {
        if object == "vehicles" {
            vehicle(record)
        } else {
            hos_day(record, None)
        }
    }
}

fn vehicle(record: &Record) -> Value {
    let mut out = Fields::new();
    out.insert("id".into(), json!(vehicle_id(record.num)));
    for (k, v) in record.fields.iter().filter(|(k, _)| *k != "location") {
        out.insert(k.clone(), v.clone());
    }
    Value::Object(out)
}

fn vehicle_location(record: &Record) -> Value {
    let mut location = record.fields.get("location").cloned().unwrap_or(json!({}));
    location["time"] = json!(utc_seconds(record.modified));
    json!({
        "id": vehicle_id(record.num),
        "name": record.fields.get("name").cloned().unwrap_or(Value::Null),
        "location": location,
    })
}

/// A driver's duty day: four logs ending at the record's time, those
/// within `window` (`[start, end]`) if given.
fn hos_day(record: &Record, window: Option<(DateTime<Utc>, DateTime<Utc>)>) -> Value {
    let statuses: Vec<Value> = record
        .fields
        .get("statuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let hours = [8, 1, 9, 6];
    let end = record.modified;
    let span: i64 = hours.iter().sum();
    let mut start = end - chrono::Duration::hours(span);
    let mut logs = Vec::new();
    for (status, h) in statuses.iter().zip(hours) {
        let stop = start + chrono::Duration::hours(h);
        let inside = window.is_none_or(|(from, to)| stop >= from && start <= to);
        if inside {
            logs.push(json!({
                "hosStatusType": status,
                "logStartTime": utc_seconds(start),
                "logEndTime": utc_seconds(stop),
                "vehicle": record.fields.get("vehicle").cloned().unwrap_or(Value::Null),
                "codrivers": [],
                "remark": record.fields.get("remark").cloned().unwrap_or(json!("")),
                "logRecordedLocation": {"latitude": 39.5 + (record.num % 1000) as f64 * 0.01, "longitude": -119.8},
            }));
        }
        start = stop;
    }
    json!({
        "driver": record.fields.get("driver").cloned().unwrap_or(Value::Null),
        "hosLogs": logs,
    })
}

fn cursor(after: u64) -> String {
    STANDARD.encode(format!("after:{after}"))
}

fn parse_cursor(raw: &str) -> Option<u64> {
    let bytes = STANDARD.decode(raw).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("after:")?
        .parse()
        .ok()
}

fn error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"message": message, "requestId": request_id()}))
}

fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// One cursor page of `object` rendered with `item`.
fn page(
    call: &Call<'_>,
    object: &str,
    mut q: Query,
    item: impl Fn(&Record) -> Value,
) -> HttpResponse {
    let limit = call
        .u64_param("limit")
        .unwrap_or(MAX_LIMIT)
        .clamp(1, MAX_LIMIT);
    q.above = match call.param("after") {
        None | Some("") => 0,
        Some(raw) => match parse_cursor(raw) {
            Some(after) => after,
            None => return error(StatusCode::BAD_REQUEST, "Invalid pagination cursor"),
        },
    };
    let Some(spec) = Kind::Samsara.object(object) else {
        return not_found(Kind::Samsara, call.path);
    };
    let (records, remaining) = call.shared.query(spec, &q, 0, limit);
    let has_next = remaining > records.len() as u64;
    let end = records.last().map_or(q.above, |r| r.num);
    let data: Vec<Value> = records.iter().map(item).collect();
    HttpResponse::Ok().json(json!({
        "data": data,
        "pagination": {
            "endCursor": if has_next { cursor(end) } else { String::new() },
            "hasNextPage": has_next,
        },
    }))
}

pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
    if !call.authorized() {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    match (call.method, call.path.trim_end_matches('/')) {
        (&Method::GET, "/fleet/vehicles") => page(call, "vehicles", Query::default(), vehicle),
        (&Method::GET, "/fleet/vehicles/locations") => {
            page(call, "vehicles", Query::default(), vehicle_location)
        }
        (&Method::GET, "/fleet/hos/logs") => {
            let mut q = Query::default();
            let mut window = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
            for (name, at_or_after) in [("startTime", true), ("endTime", false)] {
                let Some(raw) = call.param(name) else {
                    continue;
                };
                let Some(t) = parse_time(raw) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("Invalid {name}: must be an RFC 3339 time"),
                    );
                };
                if at_or_after {
                    // A day that ends at or after the start has logs in the window.
                    q.time.push(Bound::AtOrAfter(t));
                    window.0 = t;
                } else {
                    let span = chrono::Duration::hours(24);
                    q.time.push(Bound::AtOrBefore(t + span));
                    window.1 = t;
                }
            }
            page(call, "hos_logs", q, move |r| hos_day(r, Some(window)))
        }
        _ => not_found(Kind::Samsara, call.path),
    }
}
