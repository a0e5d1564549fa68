//! NewsAPI v2: `/everything` and `/top-headlines`, paged with `page` and
//! `pageSize`, developer-plan cap of 100 results (426
//! `maximumResultsReached` past it). Articles are newest first, one an hour
//! back from now; how many there are is the `articles` object's count.

use super::*;

const DEVELOPER_RESULT_CAP: usize = 100;

pub(super) static SCHEMA: NewsApi = NewsApi;

/// NewsAPI's one object: the `articles` a search finds. Only their count
/// reaches the API (an article's title names the search it answers).
pub(super) struct NewsApi;

const OBJECTS: [ObjectSpec; 1] = [ObjectSpec {
    name: "articles",
    default_count: 42,
}];

impl Schema for NewsApi {
    fn objects(&self) -> &'static [ObjectSpec] {
        &OBJECTS
    }

    fn generate(&self, _object: &'static str, n: u64) -> Fields {
        store::fields_of(article(n as usize, "freight"))
    }

    fn id(&self, _object: &'static str, n: u64) -> String {
        format!("https://news.example.com/articles/{n}")
    }

    fn number(&self, _object: &'static str, id: &str) -> Option<u64> {
        id.strip_prefix("https://news.example.com/articles/")?
            .parse()
            .ok()
            .filter(|n| *n >= 1)
    }

    fn touched(&self, _object: &'static str, record: &Record) -> Fields {
        let mut f = Fields::new();
        f.insert(
            "description".into(),
            json!(format!(
                "Market update {} (updated, v{}).",
                record.num, record.version
            )),
        );
        f
    }

    fn render(&self, _object: &'static str, record: &Record) -> Value {
        Value::Object(record.fields.clone())
    }
}
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
        "publishedAt": utc_seconds(Utc::now() - chrono::Duration::hours(i64::try_from(i).unwrap_or(0))),
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
    let articles_total = {
        let state = call.shared.lock();
        state.store.view(&OBJECTS[0]).total(&Query::default())
    };
    let articles_total = usize::try_from(articles_total).unwrap_or(usize::MAX);
    let page_size = call.usize_param("pageSize").unwrap_or(100).clamp(1, 100);
    let page = call.usize_param("page").unwrap_or(1).max(1);
    let first = (page - 1) * page_size;
    if first + page_size > DEVELOPER_RESULT_CAP {
        // Any page reaching past the 100th result, even partly.
        return error(
            StatusCode::UPGRADE_REQUIRED,
            "maximumResultsReached",
            &format!(
                "You have requested too many results. Developer accounts are limited to a max of {DEVELOPER_RESULT_CAP} results. You are trying to request results {first} to {}. Please upgrade to a paid plan if you need more results.",
                first + page_size
            ),
        );
    }
    let articles: Vec<Value> = (first..articles_total.min(first + page_size))
        .map(|i| article(i + 1, &topic))
        .collect();
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "totalResults": articles_total,
        "articles": articles,
    }))
}
