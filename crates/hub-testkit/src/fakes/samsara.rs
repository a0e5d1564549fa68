//! Samsara: `GET /fleet/vehicles` and `GET /fleet/vehicles/locations`,
//! cursor-paged with `after` / `pagination.endCursor`.

use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const VEHICLES: usize = 7;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn vehicle_id(i: usize) -> String {
    (212_014_918_086_160_u64 + i as u64).to_string()
}

fn vehicle(i: usize) -> Value {
    json!({
        "id": vehicle_id(i),
        "name": format!("Truck {i:02}"),
        "vin": format!("1FUJGLDR5CLBP{i:04}"),
        "licensePlate": format!("7TRK{i:03}"),
        "make": "Freightliner",
        "model": "Cascadia",
        "year": "2021",
        "serial": format!("G9ZK{i:04}"),
        "externalIds": {"samsara.vin": format!("1FUJGLDR5CLBP{i:04}")},
    })
}

fn location(i: usize) -> Value {
    let lat = 39.5 + i as f64 * 0.137;
    let lon = -119.8 + i as f64 * 0.211;
    json!({
        "id": vehicle_id(i),
        "name": format!("Truck {i:02}"),
        "location": {
            "time": rfc3339(Utc::now() - chrono::Duration::seconds(i64::try_from(i * 17).unwrap_or(0))),
            "latitude": lat,
            "longitude": lon,
            "heading": (i * 45 % 360) as f64,
            "speed": 55.0 + i as f64,
            "reverseGeo": {"formattedLocation": format!("I-80 mile {}, NV", 12 + i * 9)},
        },
    })
}

fn cursor(offset: usize) -> String {
    STANDARD.encode(format!("offset:{offset}"))
}

fn parse_cursor(raw: &str) -> Option<usize> {
    let bytes = STANDARD.decode(raw).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

fn error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"message": message, "requestId": request_id()}))
}

fn page(call: &Call<'_>, item: fn(usize) -> Value) -> HttpResponse {
    let limit = call.usize_param("limit").unwrap_or(512).clamp(1, 512);
    let offset = match call.param("after") {
        None | Some("") => 0,
        Some(raw) => match parse_cursor(raw) {
            Some(o) => o,
            None => return error(StatusCode::BAD_REQUEST, "Invalid pagination cursor"),
        },
    };
    let end = (offset + limit).min(VEHICLES);
    let data: Vec<Value> = (offset + 1..=end).map(item).collect();
    let has_next = end < VEHICLES;
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
        (&Method::GET, "/fleet/vehicles") => page(call, vehicle),
        (&Method::GET, "/fleet/vehicles/locations") => page(call, location),
        _ => not_found(Kind::Samsara, call.path),
    }
}
