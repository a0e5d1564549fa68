//! Alpha Vantage: `GET /query?function=…&symbol=…&apikey=…`, with
//! `TIME_SERIES_DAILY` (`outputsize=compact`, the latest 100 trading days,
//! or `full`) and `GLOBAL_QUOTE`, as JSON or `datatype=csv`. Errors and
//! throttling are 200 answers whose body is only an `Error Message`, a
//! `Note` or an `Information`, as the real API gives them.

use std::fmt::Write as _;

use super::*;

/// Trading days a compact series holds.
const COMPACT: u64 = 100;

pub(super) static SCHEMA: AlphaVantage = AlphaVantage;

/// Alpha Vantage's one object: `TIME_SERIES_DAILY`, its trading days,
/// record 1 the latest (2024-06-28), each further one a weekday earlier.
/// Every symbol has them (prices derive from the symbol); a touch corrects
/// a day's close; `FakeProvider::record` shows IBM's bar.
pub(super) struct AlphaVantage;

const OBJECTS: [ObjectSpec; 1] = [ObjectSpec {
    name: "TIME_SERIES_DAILY",
    default_count: 260,
}];

/// The date of trading day `n` (1: the latest).
fn trading_day(n: u64) -> chrono::NaiveDate {
    let latest = chrono::NaiveDate::from_ymd_opt(2024, 6, 28).unwrap_or_default();
    let back = n.saturating_sub(1);
    // 2024-06-28 is a Friday: whole weeks back, then weekdays within one.
    let days = (back / 5) * 7 + back % 5;
    latest - chrono::Duration::days(i64::try_from(days).unwrap_or(0))
}

/// FNV-1a of the symbol: its price level.
fn symbol_seed(symbol: &str) -> u64 {
    symbol
        .to_ascii_uppercase()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// One day's bar for `symbol`: open, high, low, close, volume.
fn bar(symbol: &str, n: u64, correction: f64) -> (f64, f64, f64, f64, u64) {
    let seed = symbol_seed(symbol);
    let base = 20.0 + (seed % 480) as f64;
    let wave = ((n as f64) * 0.7 + (seed % 17) as f64).sin();
    let close = base * (1.0 + 0.02 * wave) + correction;
    let open = close * (1.0 - 0.004 * ((n % 5) as f64 - 2.0));
    let high = open.max(close) * 1.008;
    let low = open.min(close) * 0.992;
    let volume = 1_000_000 + (seed ^ n.wrapping_mul(7919)) % 5_000_000;
    (open, high, low, close, volume)
}

impl Schema for AlphaVantage {
    fn objects(&self) -> &'static [ObjectSpec] {
        &OBJECTS
    }

    fn generate(&self, _object: &'static str, n: u64) -> Fields {
        let mut f = Fields::new();
        f.insert(
            "date".into(),
            json!(trading_day(n).format("%Y-%m-%d").to_string()),
        );
        f.insert("correction".into(), json!(0.0));
        f
    }

    fn id(&self, _object: &'static str, n: u64) -> String {
        trading_day(n).format("%Y-%m-%d").to_string()
    }

    fn number(&self, _object: &'static str, id: &str) -> Option<u64> {
        let day = chrono::NaiveDate::parse_from_str(id, "%Y-%m-%d").ok()?;
        let latest = trading_day(1);
        let days = u64::try_from((latest - day).num_days()).ok()?;
        if days % 7 >= 5 {
            return None;
        }
        Some((days / 7) * 5 + days % 7 + 1)
    }

    fn touched(&self, _object: &'static str, record: &Record) -> Fields {
        let mut f = Fields::new();
        f.insert("correction".into(), json!(record.version as f64 * 0.25));
        f
    }

    fn render(&self, object: &'static str, record: &Record) -> Value {
        let (open, high, low, close, volume) = bar("IBM", record.num, correction(record));
        let mut day = Fields::new();
        day.insert("1. open".into(), json!(format!("{open:.4}")));
        day.insert("2. high".into(), json!(format!("{high:.4}")));
        day.insert("3. low".into(), json!(format!("{low:.4}")));
        day.insert("4. close".into(), json!(format!("{close:.4}")));
        day.insert("5. volume".into(), json!(volume.to_string()));
        let mut out = Fields::new();
        out.insert(self.id(object, record.num), Value::Object(day));
        Value::Object(out)
    }
}

fn correction(record: &Record) -> f64 {
    record
        .fields
        .get("correction")
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}

/// A 200 whose body is only `{key: message}`: how Alpha Vantage says
/// anything went wrong.
fn only(key: &str, message: &str) -> HttpResponse {
    let mut body = Fields::new();
    body.insert(key.to_owned(), json!(message));
    HttpResponse::Ok().json(Value::Object(body))
}

/// The throttled answer: a `Note` for the per-minute limit, an
/// `Information` for the daily one.
pub(super) fn throttled(per_minute: bool) -> HttpResponse {
    if per_minute {
        only(
            "Note",
            "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would like to target a higher API call frequency.",
        )
    } else {
        only(
            "Information",
            "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day. Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to instantly remove all daily rate limits.",
        )
    }
}

fn csv(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-download")
        .insert_header(("Content-Disposition", "attachment; filename=query.csv"))
        .body(body)
}

pub(super) fn handle(call: &Call<'_>) -> HttpResponse {
    if call.path.trim_end_matches('/') != "/query" || call.method != Method::GET {
        return not_found(Kind::AlphaVantage, call.path);
    }
    match call.param("apikey") {
        Some(key) if key == call.valid_token => {}
        _ => {
            return only(
                "Error Message",
                "the parameter apikey is invalid or missing. Please claim your free API key on (https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds.",
            );
        }
    }
    let function = call.param("function").unwrap_or_default().to_owned();
    let invalid_call = || {
        only(
            "Error Message",
            &format!(
                "Invalid API call. Please retry or visit the documentation (https://www.alphavantage.co/documentation/) for {function}."
            ),
        )
    };
    let Some(symbol) = call
        .param("symbol")
        .filter(|s| !s.is_empty() && s.len() <= 20)
        .map(str::to_owned)
    else {
        return match function.as_str() {
            "TIME_SERIES_DAILY" | "GLOBAL_QUOTE" => invalid_call(),
            other => only(
                "Error Message",
                &format!("This API function ({other}) does not exist."),
            ),
        };
    };
    let as_csv = call.param("datatype") == Some("csv");
    let spec = &OBJECTS[0];
    match function.as_str() {
        "TIME_SERIES_DAILY" => {
            let full = match call.param("outputsize") {
                None | Some("compact") => false,
                Some("full") => true,
                Some(_) => return invalid_call(),
            };
            let limit = if full { u64::MAX } else { COMPACT };
            let (days, _) = call.shared.query(spec, &Query::default(), 0, limit);
            daily(&symbol, &days, full, as_csv)
        }
        "GLOBAL_QUOTE" => {
            let (days, _) = call.shared.query(spec, &Query::default(), 0, 2);
            quote(&symbol, &days, as_csv)
        }
        other => only(
            "Error Message",
            &format!("This API function ({other}) does not exist."),
        ),
    }
}

/// `TIME_SERIES_DAILY`, newest day first (the JSON written by hand so the
/// days keep that order).
fn daily(symbol: &str, days: &[Record], full: bool, as_csv: bool) -> HttpResponse {
    let bars = days.iter().map(|d| {
        (
            trading_day(d.num).format("%Y-%m-%d").to_string(),
            bar(symbol, d.num, correction(d)),
        )
    });
    if as_csv {
        let mut out = String::from("timestamp,open,high,low,close,volume\r\n");
        for (date, (open, high, low, close, volume)) in bars {
            let _ = write!(
                out,
                "{date},{open:.4},{high:.4},{low:.4},{close:.4},{volume}\r\n"
            );
        }
        return csv(out);
    }
    let last = days
        .first()
        .map(|d| trading_day(d.num).format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let meta = json!({
        "1. Information": "Daily Prices (open, high, low, close) and Volumes",
        "2. Symbol": symbol,
        "3. Last Refreshed": last,
        "4. Output Size": if full { "Full size" } else { "Compact" },
        "5. Time Zone": "US/Eastern",
    });
    let mut out = format!("{{\"Meta Data\": {meta}, \"Time Series (Daily)\": {{");
    for (i, (date, (open, high, low, close, volume))) in bars.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "\"{date}\": {{\"1. open\": \"{open:.4}\", \"2. high\": \"{high:.4}\", \"3. low\": \"{low:.4}\", \"4. close\": \"{close:.4}\", \"5. volume\": \"{volume}\"}}"
        );
    }
    out.push_str("}}");
    HttpResponse::Ok()
        .content_type("application/json")
        .body(out)
}

/// `GLOBAL_QUOTE`: the latest day against the one before.
fn quote(symbol: &str, days: &[Record], as_csv: bool) -> HttpResponse {
    let Some(latest) = days.first() else {
        return only("Global Quote", "");
    };
    let (open, high, low, price, volume) = bar(symbol, latest.num, correction(latest));
    let previous = days
        .get(1)
        .map_or(open, |d| bar(symbol, d.num, correction(d)).3);
    let change = price - previous;
    let percent = if previous == 0.0 {
        0.0
    } else {
        change / previous * 100.0
    };
    let day = trading_day(latest.num).format("%Y-%m-%d").to_string();
    if as_csv {
        return csv(format!(
            "symbol,open,high,low,price,volume,latestDay,previousClose,change,changePercent\r\n{symbol},{open:.4},{high:.4},{low:.4},{price:.4},{volume},{day},{previous:.4},{change:.4},{percent:.4}%\r\n"
        ));
    }
    HttpResponse::Ok().json(json!({"Global Quote": {
        "01. symbol": symbol,
        "02. open": format!("{open:.4}"),
        "03. high": format!("{high:.4}"),
        "04. low": format!("{low:.4}"),
        "05. price": format!("{price:.4}"),
        "06. volume": volume.to_string(),
        "07. latest trading day": day,
        "08. previous close": format!("{previous:.4}"),
        "09. change": format!("{change:.4}"),
        "10. change percent": format!("{percent:.4}%"),
    }}))
}
