//! NewsAPI v2: `/everything` and `/top-headlines`, paged with `page` and
//! `pageSize`, newest first, `from`/`to` bounds on `publishedAt`, the
//! developer plan's cap of 100 results (426 `maximumResultsReached` past
//! it; [`FakeProvider::set_newsapi_developer_plan`] lifts it). Articles are
//! the `articles` object's records: article `n` was published at the
//! generated time of record `n` (one a minute from 2024-01-01T08:00:00Z),
//! a created one when it was created, so the newest come first; its `url`
//! is its id.

use super::*;

/// Results a developer-plan search can page through.
pub(super) const DEVELOPER_RESULT_CAP: u64 = 100;

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
        store::fields_of(article(n, "freight"))
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
        let mut out = record.fields.clone();
        out.insert("publishedAt".into(), json!(utc_seconds(record.modified)));
        Value::Object(out)
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

/// Article `i` found by a search for `topic` (`publishedAt` is added when
/// it is served).
fn article(i: u64, topic: &str) -> Value {
    let (id, name) = SOURCES[i as usize % SOURCES.len()];
    json!({
        "source": {"id": id, "name": name},
        "author": format!("Reporter {}", i % 9),
        "title": format!("{topic}: spot rates move on lane {i}"),
        "description": format!("Market update {i} on {topic}."),
        "url": format!("https://news.example.com/articles/{i}"),
        "urlToImage": format!("https://news.example.com/images/{i}.jpg"),
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
    let spec = &OBJECTS[0];
    let mut q = Query {
        order: Order::Modified,
        descending: true,
        ..Query::default()
    };
    for (name, bound) in [
        ("from", Bound::AtOrAfter as fn(_) -> _),
        ("to", Bound::AtOrBefore),
    ] {
        let Some(raw) = call.param(name) else {
            continue;
        };
        let Some(t) = published_bound(raw) else {
            return error(
                StatusCode::BAD_REQUEST,
                "parameterInvalid",
                &format!(
                    "The {name} parameter must be an ISO 8601 date or date-time, not {raw:?}."
                ),
            );
        };
        q.time.push(bound(t));
    }
    let page_size = call.u64_param("pageSize").unwrap_or(100).clamp(1, 100);
    let page = call.u64_param("page").unwrap_or(1).max(1);
    let first = (page - 1).saturating_mul(page_size);
    let cap = call.shared.lock().newsapi_result_cap;
    if let Some(cap) = cap
        && first + page_size > cap
    {
        // Any page reaching past the cap, even partly.
        return error(
            StatusCode::UPGRADE_REQUIRED,
            "maximumResultsReached",
            &format!(
                "You have requested too many results. Developer accounts are limited to a max of {cap} results. You are trying to request results {first} to {}. Please upgrade to a paid plan if you need more results.",
                first + page_size
            ),
        );
    }
    let (records, total) = call.shared.query(spec, &q, first, page_size);
    let articles: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut a = SCHEMA.render(spec.name, r);
            // The title names the search it answers.
            a["title"] = json!(format!("{topic}: spot rates move on lane {}", r.num));
            a
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "totalResults": total,
        "articles": articles,
    }))
}

/// `from`/`to` as NewsAPI takes them: a date-time with or without offset
/// (UTC), or a date.
fn published_bound(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

impl FakeProvider {
    /// NewsAPI: `true` (the default) caps every search at the developer
    /// plan's 100 results (a page reaching past them is a 426
    /// `maximumResultsReached`); `false` is a paid plan, which pages
    /// through every result.
    ///
    /// # Panics
    /// If the fake is not NewsAPI.
    pub fn set_newsapi_developer_plan(&self, on: bool) {
        assert_eq!(self.kind, Kind::NewsApi, "only NewsAPI has plans");
        self.shared.lock().newsapi_result_cap = on.then_some(DEVELOPER_RESULT_CAP);
    }
}
