//! NewsAPI v2: `/everything` and `/top-headlines`, paged with `page` and
//! `pageSize`, developer-plan cap of 100 results.

use super::*;

const ARTICLES: usize = 42;
const DEVELOPER_RESULT_CAP: usize = 100;
const SOURCES: [(Option<&str>, &str); 4] = [
    (None, "FreightWaves"),
    (Some("reuters"), "Reuters"),
    (Some("bloomberg"), "Bloomberg"),
    (None, "Transport Topics"),
];

fn error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"status": "error", "code": code, "message": message}))
}

fn article(i: usize, topic: &str) -> Value {
    let (id, name) = SOURCES[i % SOURCES.len()];
    json!({
        "source": {"id": id, "name": name},
        "author": format!("Reporter {}", i % 9),
        "title": format!("{topic}: spot rates move on lane {i}"),
        "description": format!("Market update {i} on {topic}."),
        "url": format!("https://news.example.com/articles/{i}"),
        "urlToImage": format!("https://news.example.com/images/{i}.jpg"),
        "publishedAt": (Utc::now() - chrono::Duration::hours(i64::try_from(i).unwrap_or(0))).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "content": format!("Market update {i} on {topic}. Carriers and brokers … [+1200 chars]"),
    })
}

fn api_key<'a>(call: &'a Call<'_>) -> Option<&'a str> {
    call.header("x-api-key")
        .or_else(|| call.param("apiKey"))
        .or_else(|| {
            call.header("authorization")
                .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
        })
}

pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
    match api_key(call) {
        None => {
            return error(
                StatusCode::UNAUTHORIZED,
                "apiKeyMissing",
                "Your API key is missing. Append this to the URL with the apiKey param, or use the x-api-key HTTP header.",
            );
        }
        Some(key) if key != call.valid_token => {
            return error(
                StatusCode::UNAUTHORIZED,
                "apiKeyInvalid",
                "Your API key is invalid or incorrect. Check your key, or go to https://newsapi.org to create a free API key.",
            );
        }
        Some(_) => {}
    }
    let topic = match (call.method, call.path.trim_end_matches('/')) {
        (&Method::GET, "/everything") => {
            let q = call.param("q").or_else(|| call.param("qInTitle"));
            match q
                .or_else(|| call.param("sources"))
                .or_else(|| call.param("domains"))
            {
                Some(t) => t.to_owned(),
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "parametersMissing",
                        "Required parameters are missing, the scope of your search is too broad. Please set any of the following required parameters and try again: q, qInTitle, sources, domains.",
                    );
                }
            }
        }
        (&Method::GET, "/top-headlines") => {
            match ["q", "country", "category", "sources"]
                .iter()
                .find_map(|p| call.param(p))
            {
                Some(t) => t.to_owned(),
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "parametersMissing",
                        "Required parameters are missing. Please set any of the following parameters and try again: sources, q, language, country, category.",
                    );
                }
            }
        }
        _ => return not_found(Kind::NewsApi, call.path),
    };
    let page_size = call.usize_param("pageSize").unwrap_or(100).clamp(1, 100);
    let page = call.usize_param("page").unwrap_or(1).max(1);
    let first = (page - 1) * page_size;
    if first >= DEVELOPER_RESULT_CAP {
        return error(
            StatusCode::UPGRADE_REQUIRED,
            "maximumResultsReached",
            "You have requested too many results. Developer accounts are limited to a max of 100 results. You are trying to request results 100 to 200. Please upgrade to a paid plan if you need more results.",
        );
    }
    let articles: Vec<Value> = (first..ARTICLES.min(first + page_size))
        .map(|i| article(i + 1, &topic))
        .collect();
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "totalResults": ARTICLES,
        "articles": articles,
    }))
}
