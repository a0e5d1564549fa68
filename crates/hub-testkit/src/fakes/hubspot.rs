//! HubSpot CRM v3: `GET /crm/v3/objects/{type}` and `…/{type}/{id}`.

use super::*;

const COMPANIES: [&str; 6] = [
    "Acme Freight",
    "Blue Ridge Logistics",
    "Cascade Carriers",
    "Delta Hauling",
    "Evergreen Transport",
    "Frontier Brokerage",
];
const FIRST: [&str; 5] = ["Ana", "Ben", "Chloe", "Dev", "Eli"];
const LAST: [&str; 5] = ["Ng", "Okafor", "Park", "Quinn", "Rossi"];
const STAGES: [&str; 4] = [
    "appointmentscheduled",
    "qualifiedtobuy",
    "contractsent",
    "closedwon",
];

fn size(object: &str) -> Option<usize> {
    match object {
        "contacts" => Some(25),
        "companies" => Some(12),
        "deals" => Some(18),
        _ => None,
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Every property of record `id` (1-based) of `object`.
fn properties(object: &str, id: usize) -> serde_json::Map<String, Value> {
    let created = iso(record_time(id) - chrono::Duration::days(30));
    let modified = iso(record_time(id));
    let mut p = serde_json::Map::new();
    match object {
        "contacts" => {
            let first = FIRST[id % FIRST.len()];
            let last = LAST[(id / FIRST.len()) % LAST.len()];
            p.insert("firstname".into(), json!(first));
            p.insert("lastname".into(), json!(last));
            p.insert(
                "email".into(),
                json!(format!(
                    "{}.{}{id}@example.com",
                    first.to_lowercase(),
                    last.to_lowercase()
                )),
            );
            p.insert("lastmodifieddate".into(), json!(modified));
        }
        "companies" => {
            let name = COMPANIES[id % COMPANIES.len()];
            p.insert("name".into(), json!(format!("{name} {id}")));
            p.insert(
                "domain".into(),
                json!(format!(
                    "{}{id}.example.com",
                    name.to_lowercase().replace(' ', "")
                )),
            );
            p.insert("industry".into(), json!("TRANSPORTATION_TRUCKING_RAILROAD"));
            p.insert("numberofemployees".into(), json!((id * 37).to_string()));
        }
        _ => {
            p.insert("dealname".into(), json!(format!("Lane contract {id}")));
            p.insert("amount".into(), json!(format!("{}.00", 1500 * id)));
            p.insert("dealstage".into(), json!(STAGES[id % STAGES.len()]));
            p.insert("pipeline".into(), json!("default"));
            p.insert(
                "closedate".into(),
                json!(iso(record_time(id) + chrono::Duration::days(60))),
            );
        }
    }
    p.insert("createdate".into(), json!(created));
    p.insert("hs_lastmodifieddate".into(), json!(modified));
    p.insert("hs_object_id".into(), json!(id.to_string()));
    p
}

fn record(call: &Call<'_>, object: &str, id: usize) -> Value {
    let all = properties(object, id);
    // HubSpot returns a default property set unless `properties` names some;
    // unknown names are silently left out, as the real API does.
    let wanted: Vec<String> = call
        .param("properties")
        .map(|p| p.split(',').map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default();
    let props: serde_json::Map<String, Value> = if wanted.is_empty() {
        all
    } else {
        all.into_iter()
            .filter(|(k, _)| {
                wanted.iter().any(|w| w == k)
                    || matches!(
                        k.as_str(),
                        "createdate" | "hs_lastmodifieddate" | "hs_object_id"
                    )
            })
            .collect()
    };
    json!({
        "id": id.to_string(),
        "properties": props,
        "createdAt": iso(record_time(id) - chrono::Duration::days(30)),
        "updatedAt": iso(record_time(id)),
        "archived": false,
    })
}

/// HubSpot's answer to an access token past its expiry.
fn expired() -> HttpResponse {
    HttpResponse::Unauthorized().json(json!({
        "status": "error",
        "message": "The OAuth token used to make this call expired.",
        "correlationId": request_id(),
        "category": "EXPIRED_AUTHENTICATION",
    }))
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized().json(json!({
        "status": "error",
        "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        "correlationId": request_id(),
        "category": "INVALID_AUTHENTICATION",
    }))
}

fn ok(body: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("X-HubSpot-RateLimit-Max", "100"))
        .insert_header(("X-HubSpot-RateLimit-Remaining", "99"))
        .insert_header(("X-HubSpot-RateLimit-Interval-Milliseconds", "10000"))
        .insert_header(("X-HubSpot-RateLimit-Daily", "250000"))
        .insert_header(("X-HubSpot-RateLimit-Daily-Remaining", "249999"))
        .json(body)
}

pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
    match call.token() {
        TokenCheck::Valid => {}
        TokenCheck::Expired => return expired(),
        TokenCheck::Invalid => return unauthorized(),
    }
    let segments: Vec<&str> = call.path.trim_matches('/').split('/').collect();
    match (call.method, segments.as_slice()) {
        (&Method::GET, ["crm", "v3", "objects", object]) => {
            let Some(total) = size(object) else {
                return bad_object(object);
            };
            let limit = call.usize_param("limit").unwrap_or(10).clamp(1, 100);
            let start = match call.param("after") {
                None => 1,
                Some(after) => match after.parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => {
                        return HttpResponse::BadRequest().json(json!({
                            "status": "error",
                            "message": format!("Invalid input JSON: after={after:?} is not a valid paging cursor"),
                            "correlationId": request_id(),
                            "category": "VALIDATION_ERROR",
                        }));
                    }
                },
            };
            let end = (start + limit).min(total + 1);
            let results: Vec<Value> = (start..end).map(|id| record(call, object, id)).collect();
            let mut body = json!({ "results": results });
            if end <= total {
                body["paging"] = json!({
                    "next": {
                        "after": end.to_string(),
                        "link": format!("https://api.hubapi.com/crm/v3/objects/{object}?limit={limit}&after={end}"),
                    }
                });
            }
            ok(body)
        }
        (&Method::GET, ["crm", "v3", "objects", object, id]) => {
            let Some(total) = size(object) else {
                return bad_object(object);
            };
            match id.parse::<usize>() {
                Ok(n) if (1..=total).contains(&n) => ok(record(call, object, n)),
                _ => HttpResponse::NotFound().json(json!({
                    "status": "error",
                    "message": "resource not found",
                    "correlationId": request_id(),
                    "category": "OBJECT_NOT_FOUND",
                })),
            }
        }
        _ => not_found(Kind::HubSpot, call.path),
    }
}

fn bad_object(object: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({
        "status": "error",
        "message": format!("Unable to infer object type from: {object}"),
        "correlationId": request_id(),
        "category": "VALIDATION_ERROR",
    }))
}
