//! How a provider's entity is synced, as its manifest declares it (the
//! `sync` section): the list call, the incremental call, where the records
//! are in an answer, each record's id and timestamp, and the provider's
//! paging style. Pure: it builds requests and reads answers; the sync
//! engine sends them through the gateway. Adding an entity to a provider is
//! a manifest change.
//!
//! Paging styles: `cursor` (HubSpot `paging.next.after`, Samsara
//! `endCursor`), `next_url` (Salesforce `nextRecordsUrl`), `page` (Xero,
//! Zoho, NewsAPI, KeepTruckin: a page number, until a short page or a
//! "more" flag says no), `offset` (QuickBooks `STARTPOSITION`: a 1-based
//! position placed in the query text), `none` (one answer holds them all:
//! Alpha Vantage). Page and offset styles also stop once they have read the
//! total the answer tells, if it does. A checkpoint (`{"cursor": …}`,
//! `{"url": …}`, `{"page": n}`, `{"offset": n}`) is where the next page
//! starts; the engine commits it with each page, so a resumed job goes on
//! from there.
//!
//! Placeholders in paths, query values, headers and bodies: `{since}` (the
//! watermark, in the form `since_format` says), `{page}`, `{offset}`,
//! `{size}`, `{cursor}`, and `{config.<field>}` (a scalar of the
//! integration's config: QuickBooks' `realm_id` in the path, NewsAPI's
//! search).
//!
//! Records are the elements of the array at `records`, or, with
//! `entry_key`, the entries of the object there (Alpha Vantage's
//! `Time Series (Daily)`, keyed by date): each entry's value with its key
//! added under `entry_key`.

use crate::template::{self, Segment, Syntax};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub mod export;

/// The `sync` section of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSpec {
    /// By the provider's entity name (`contacts`, `Opportunity`).
    pub entities: BTreeMap<String, EntitySync>,
    /// How the provider's webhooks name the records they concern, when
    /// they update synced records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<WebhookSync>,
}

/// How a provider's webhook payload names synced records: where its events
/// are, each event's type (which says the entity), the record's id, and
/// optionally the record itself. HubSpot sends an array of
/// `{"objectId": 123, "subscriptionType": "contact.propertyChange", …}`
/// without the record, which is then re-read with the entity's `get` call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSync {
    /// Dotted path of the events array in a payload (absent: the payload
    /// itself, an array of events or one event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<String>,
    /// Dotted path of an event's type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Event type → the synced entity it concerns (`contact.propertyChange`
    /// → `contacts`); other types are ignored.
    pub entities: BTreeMap<String, String>,
    /// Dotted path of the record's id in an event.
    pub id: String,
    /// Dotted path of the record embedded in an event (absent: re-read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

/// A synced record a webhook event names.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRef {
    /// The entity (a key of `sync.entities`).
    pub entity: String,
    /// The record's id at the provider.
    pub id: String,
    /// The record, when the event carries it.
    pub record: Option<Value>,
}

impl WebhookSync {
    /// The synced records `payload` names, in order, each once per entity
    /// (the last event of a record wins); events of other types, or
    /// without an id, are left out.
    pub fn refs(&self, payload: &Value) -> Vec<WebhookRef> {
        let root = match self.events.as_deref() {
            Some(p) => at(payload, p),
            None => Some(payload),
        };
        let events: Vec<&Value> = match root {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v) => vec![v],
        };
        let mut out: Vec<WebhookRef> = Vec::new();
        for e in events {
            let Some(kind) = at(e, &self.event_type).and_then(Value::as_str) else {
                continue;
            };
            let Some(entity) = self.entities.get(kind) else {
                continue;
            };
            let id = match at(e, &self.id) {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => continue,
            };
            let record = self.record.as_deref().and_then(|p| at(e, p)).cloned();
            out.retain(|r| !(r.entity == *entity && r.id == id));
            out.push(WebhookRef {
                entity: entity.clone(),
                id,
                record,
            });
        }
        out
    }
}

/// How one entity is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitySync {
    /// The hub entity it becomes (`c_contact`).
    pub entity: String,
    /// Code of the transformation template mapping one record (the
    /// tenant's own template with that code if it has one, else the system
    /// template).
    pub template: String,
    /// The full listing.
    pub list: CallSpec,
    /// What changed since `{since}` (INCREMENTAL; without it INCREMENTAL
    /// reads the full listing and keeps what is newer than the watermark).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<CallSpec>,
    /// How `{since}` is written: `iso` (default, `2024-01-15T10:30:00Z`),
    /// `iso_millis`, `epoch_millis`, `http_date` (If-Modified-Since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_format: Option<String>,
    /// Dotted path of the records array in an answer (`results`,
    /// `QueryResponse.Invoice`).
    pub records: String,
    /// When the records are an object's entries rather than an array's
    /// elements (`{"2024-01-02": {…}, "2024-01-01": {…}}`): the field each
    /// record gets its entry's key in (`date`). Entries whose value is not
    /// an object are kept under `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_key: Option<String>,
    /// Dotted path of a record's id.
    pub id: String,
    /// Dotted path of a record's last-modified timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Dotted path of the total in an answer, when the provider tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<String>,
    /// How pages follow each other.
    pub paging: Paging,
    /// JSON Schema every record must pass (others become item errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_schema: Option<Value>,
    /// One record by its id (`{id}` in the path or a query value): how a
    /// record a webhook names is re-read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get: Option<CallSpec>,
    /// How local changes are pushed back (EXPORT), when they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<export::ExportSpec>,
}

/// One call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// `GET` (default) or `POST`.
    #[serde(default = "get")]
    pub method: String,
    /// Path below the API base (`/crm/v3/objects/contacts`).
    pub path: String,
    /// Query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Headers (`If-Modified-Since: {since}`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON body (POST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

fn get() -> String {
    "GET".into()
}

/// A provider's paging style.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Paging {
    /// The answer names the next cursor; it goes in `param` (a query
    /// parameter, or a body field for a POST).
    Cursor {
        /// Dotted path of the next cursor in an answer (absent: last page).
        next: String,
        /// Where it goes.
        param: String,
    },
    /// The answer holds the next page's URL (a path below the host, or
    /// absolute on the same host).
    NextUrl {
        /// Dotted path of the URL (absent or null: last page).
        next: String,
    },
    /// Page numbers from `first`.
    Page {
        /// The page-number parameter (or `{page}` placeholders).
        param: String,
        /// The first page's number.
        #[serde(default = "one")]
        first: u64,
        /// Records a full page holds.
        size: u64,
        /// Dotted path of a "more pages" flag, when the provider has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        more: Option<String>,
    },
    /// A 1-based position (`{offset}` placeholders in the call).
    Offset {
        /// Records a full page holds (`{size}`).
        size: u64,
    },
    /// One answer holds every record (Alpha Vantage's time series).
    None,
}

fn one() -> u64 {
    1
}

/// A request to send (relative to the API base).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GET` or `POST`.
    pub method: String,
    /// Path and query, or an absolute URL (`next_url`).
    pub path_and_query: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: Option<Value>,
}

/// One page read from an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRead {
    /// The records.
    pub records: Vec<Value>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<Value>,
    /// The total, if the provider told.
    pub total: Option<i64>,
}

impl EntitySync {
    /// Checks the section: placeholders known, paths non-empty, schema an
    /// object. Errors name the field.
    pub fn check(&self) -> Result<(), String> {
        for (what, path) in [("records", &self.records), ("id", &self.id)] {
            if path.trim().is_empty() {
                return Err(format!("{what}: a dotted path is required"));
            }
        }
        if self.entry_key.as_ref().is_some_and(|k| k.trim().is_empty()) {
            return Err("entry_key: a field name is required".into());
        }
        for call in std::iter::once(&self.list).chain(self.incremental.as_ref()) {
            for text in call.texts() {
                if let Err(message) = template::parse(text, Syntax::Body) {
                    return Err(format!("{}: {message}", call.path));
                }
                if template::parse(text, Syntax::Body)
                    .is_ok_and(|segs| segs.contains(&Segment::ApiKey))
                {
                    return Err(format!(
                        "{}: {{api_key}} is not a sync placeholder; the gateway adds the credentials",
                        call.path
                    ));
                }
            }
        }
        if let Some(s) = &self.since_format
            && !matches!(
                s.as_str(),
                "iso" | "iso_millis" | "epoch_millis" | "http_date"
            )
        {
            return Err(format!("since_format: unknown {s:?}"));
        }
        if let Some(s) = &self.record_schema
            && !s.is_object()
        {
            return Err("record_schema: must be a JSON Schema object".into());
        }
        for call in std::iter::once(&self.list)
            .chain(self.incremental.as_ref())
            .chain(self.get.as_ref())
        {
            if !matches!(call.method.as_str(), "GET" | "POST") {
                return Err(format!("{}: method must be GET or POST", call.path));
            }
            if !call.path.starts_with('/') {
                return Err(format!("{}: path must start with /", call.path));
            }
        }
        if let Some(x) = &self.export {
            x.check()?;
        }
        Ok(())
    }

    /// The request for the page at `checkpoint` (`None`: the first page),
    /// with `since` for an incremental run, for an integration whose config
    /// is `config` (its `{config.<field>}` placeholders). Errs, naming the
    /// field, when the config lacks a value a placeholder needs.
    pub fn request(
        &self,
        config: &Value,
        checkpoint: Option<&Value>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Request, String> {
        if let (Paging::NextUrl { .. }, Some(url)) = (
            &self.paging,
            checkpoint
                .and_then(|c| c.get("url"))
                .and_then(Value::as_str),
        ) {
            return Ok(Request {
                method: "GET".into(),
                path_and_query: url.to_owned(),
                headers: Vec::new(),
                body: None,
            });
        }
        let call = match (since, &self.incremental) {
            (Some(_), Some(inc)) => inc,
            _ => &self.list,
        };
        let since_text = since.map(|s| self.since_text(s)).unwrap_or_default();
        let mut vars: Vec<(&str, String)> = vec![("since", since_text)];
        let mut extra: Option<(String, Value)> = None;
        match &self.paging {
            Paging::Cursor { param, .. } => {
                if let Some(c) = checkpoint.and_then(|c| c.get("cursor")) {
                    let text = c.as_str().map_or_else(|| c.to_string(), str::to_owned);
                    vars.push(("cursor", text.clone()));
                    extra = Some((param.clone(), Value::String(text)));
                }
            }
            Paging::Page {
                param, first, size, ..
            } => {
                let page = checkpoint
                    .and_then(|c| c.get("page"))
                    .and_then(Value::as_u64)
                    .unwrap_or(*first);
                vars.push(("page", page.to_string()));
                vars.push(("size", size.to_string()));
                extra = Some((param.clone(), json!(page.to_string())));
            }
            Paging::Offset { size } => {
                let offset = checkpoint
                    .and_then(|c| c.get("offset"))
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                vars.push(("offset", offset.to_string()));
                vars.push(("size", size.to_string()));
            }
            Paging::NextUrl { .. } | Paging::None => {}
        }
        // `{config.…}` first (the manifest's text), then the paging and
        // watermark values.
        let fill = |t: &str, place: &str, encode: &dyn Fn(&str) -> String| {
            let mut out = with_config(t, config, place, encode)?;
            for (k, v) in &vars {
                out = out.replace(&format!("{{{k}}}"), v);
            }
            Ok::<String, String>(out)
        };
        let raw = |t: &str| t.to_owned();
        let mut query: Vec<(String, String)> = Vec::with_capacity(call.query.len() + 1);
        for (k, v) in &call.query {
            query.push((k.clone(), fill(v, &format!("query parameter {k}"), &raw)?));
        }
        let mut body = match &call.body {
            Some(b) => Some(fill_value(b, &|t: &str| fill(t, "body", &raw))?),
            None => None,
        };
        if let Some((param, value)) = extra
            && !call
                .query
                .values()
                .any(|v| v.contains(&format!("{{{}}}", placeholder(&self.paging))))
        {
            match body.as_mut().and_then(Value::as_object_mut) {
                Some(b) if call.method == "POST" => {
                    b.insert(param, value);
                }
                _ => query.push((param, value.as_str().unwrap_or_default().to_owned())),
            }
        }
        let qs: Vec<String> = query
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let path = fill(&call.path, "path", &template::percent_encode)?;
        let path_and_query = if qs.is_empty() {
            path
        } else {
            format!("{path}?{}", qs.join("&"))
        };
        let mut headers = Vec::with_capacity(call.headers.len());
        for (k, v) in &call.headers {
            let value = fill(v, &format!("header {k}"), &raw)?;
            if value.chars().any(char::is_control) {
                return Err(format!(
                    "header {k}: the config value would put a control character in it"
                ));
            }
            if !value.is_empty() {
                headers.push((k.clone(), value));
            }
        }
        Ok(Request {
            method: call.method.clone(),
            path_and_query,
            headers,
            body,
        })
    }

    /// The config fields the entity's calls use (`{config.<field>}`), each
    /// once, in order of appearance.
    pub fn config_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for call in std::iter::once(&self.list).chain(self.incremental.as_ref()) {
            for text in call.texts() {
                for name in template::config_fields(text, Syntax::Body).unwrap_or_default() {
                    if !out.iter().any(|o| o == name) {
                        out.push(name.to_owned());
                    }
                }
            }
        }
        out
    }

    /// The request reading record `id` (the `get` call), if the manifest
    /// has one.
    pub fn get_request(&self, id: &str) -> Option<Request> {
        let call = self.get.as_ref()?;
        let fill = |t: &str| t.replace("{id}", &encode(id));
        let qs: Vec<String> = call
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(&v.replace("{id}", id))))
            .collect();
        let path = fill(&call.path);
        Some(Request {
            method: call.method.clone(),
            path_and_query: if qs.is_empty() {
                path
            } else {
                format!("{path}?{}", qs.join("&"))
            },
            headers: call
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.replace("{id}", id)))
                .collect(),
            body: call.body.clone(),
        })
    }

    fn since_text(&self, since: DateTime<Utc>) -> String {
        match self.since_format.as_deref() {
            Some("epoch_millis") => since.timestamp_millis().to_string(),
            Some("iso_millis") => since.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            Some("http_date") => since.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            _ => since.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        }
    }

    /// Reads a page from `answer`, the page at `checkpoint`.
    pub fn read(&self, answer: &Value, checkpoint: Option<&Value>) -> Result<PageRead, String> {
        let records = match (at(answer, &self.records), &self.entry_key) {
            (None | Some(Value::Null), _) => Vec::new(),
            (Some(Value::Array(a)), None) => a.clone(),
            (Some(Value::Object(m)), Some(key)) => m
                .iter()
                .map(|(k, v)| {
                    let mut record = match v {
                        Value::Object(fields) => fields.clone(),
                        other => {
                            let mut fields = serde_json::Map::new();
                            fields.insert("value".into(), other.clone());
                            fields
                        }
                    };
                    record.insert(key.clone(), Value::String(k.clone()));
                    Value::Object(record)
                })
                .collect(),
            (Some(_), None) => {
                return Err(format!("{} in the answer is not an array", self.records));
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{} in the answer is not an object (entry_key reads its entries)",
                    self.records
                ));
            }
        };
        let total = self
            .total
            .as_deref()
            .and_then(|p| at(answer, p))
            .and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            });
        let n = records.len() as u64;
        let told = total.and_then(|t| u64::try_from(t).ok());
        let next = match &self.paging {
            Paging::Cursor { next, .. } => at(answer, next)
                .filter(|v| !v.is_null() && v.as_str() != Some(""))
                .map(|c| json!({"cursor": c})),
            Paging::NextUrl { next } => at(answer, next)
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
                .map(|u| json!({"url": u})),
            Paging::Page {
                first, size, more, ..
            } => {
                let page = checkpoint
                    .and_then(|c| c.get("page"))
                    .and_then(Value::as_u64)
                    .unwrap_or(*first);
                let more_flag = more
                    .as_deref()
                    .and_then(|p| at(answer, p))
                    .and_then(Value::as_bool);
                let read_so_far = page.saturating_sub(*first).saturating_mul(*size) + n;
                let go_on = match more_flag {
                    Some(flag) => flag && n > 0,
                    None => n >= *size && n > 0 && told.is_none_or(|t| read_so_far < t),
                };
                go_on.then(|| json!({"page": page + 1}))
            }
            Paging::Offset { size } => {
                let offset = checkpoint
                    .and_then(|c| c.get("offset"))
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                let read_so_far = offset - 1 + n;
                (n >= *size && n > 0 && told.is_none_or(|t| read_so_far < t))
                    .then(|| json!({"offset": offset + n}))
            }
            Paging::None => None,
        };
        Ok(PageRead {
            records,
            next,
            total,
        })
    }

    /// A record's id (text; a number is written as text).
    pub fn id_of(&self, record: &Value) -> Option<String> {
        match at(record, &self.id)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// A record's last-modified timestamp, in any of the providers' forms.
    pub fn updated_at_of(&self, record: &Value) -> Option<DateTime<Utc>> {
        parse_time(at(record, self.updated_at.as_deref()?)?)
    }
}

fn placeholder(p: &Paging) -> &'static str {
    match p {
        Paging::Cursor { .. } => "cursor",
        Paging::Page { .. } => "page",
        Paging::Offset { .. } => "offset",
        Paging::NextUrl { .. } => "url",
        Paging::None => "none",
    }
}

fn fill_value(v: &Value, fill: &dyn Fn(&str) -> Result<String, String>) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => Value::String(fill(s)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| fill_value(x, fill))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), fill_value(x, fill)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// `text` with its `{config.<field>}` placeholders filled from `config`
/// (each value through `encode`); other braces are left for the paging
/// placeholders.
fn with_config(
    text: &str,
    config: &Value,
    place: &str,
    encode: &dyn Fn(&str) -> String,
) -> Result<String, String> {
    let segments = template::parse(text, Syntax::Body).map_err(|m| format!("{text:?}: {m}"))?;
    let mut out = String::with_capacity(text.len());
    for segment in segments {
        match segment {
            Segment::Literal(t) => out.push_str(t),
            Segment::Config(field) => out.push_str(&encode(
                &template::scalar_text(config, field, place).map_err(|e| e.to_string())?,
            )),
            Segment::ApiKey => out.push_str("{api_key}"),
        }
    }
    Ok(out)
}

impl CallSpec {
    /// Every text of the call that may hold placeholders: the path, query
    /// values, header values and the body's strings.
    fn texts(&self) -> Vec<&str> {
        fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::String(s) => out.push(s),
                Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
                Value::Object(m) => m.values().for_each(|x| strings(x, out)),
                _ => {}
            }
        }
        let mut out = vec![self.path.as_str()];
        out.extend(self.query.values().map(String::as_str));
        out.extend(self.headers.values().map(String::as_str));
        if let Some(b) = &self.body {
            strings(b, &mut out);
        }
        out
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The value at a dotted path (`paging.next.after`, `QueryResponse.Invoice`);
/// a number indexes an array, a negative one from its end (`hosLogs.-1`:
/// the last element).
pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| match v {
        Value::Array(a) => {
            let i: i64 = k.parse().ok()?;
            let i = if i < 0 {
                i64::try_from(a.len()).ok()? + i
            } else {
                i
            };
            a.get(usize::try_from(i).ok()?)
        }
        _ => v.get(k),
    })
}

/// A provider timestamp in any of the forms providers use: RFC 3339
/// (`2024-01-15T10:30:00.000Z`, `…+05:30`), Salesforce's `+0000`, Xero's
/// `/Date(1518685950940+0000)/`, epoch milliseconds (number or text), or a
/// bare date.
pub fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    if let Some(ms) = v.as_i64() {
        return Utc.timestamp_millis_opt(ms).single();
    }
    let s = v.as_str()?.trim();
    if let Some(inner) = s.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        let digits: String = inner
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        return Utc.timestamp_millis_opt(digits.parse().ok()?).single();
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc());
    }
    s.parse::<i64>()
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(paging: Value, extra: Value) -> EntitySync {
        let mut v = json!({
            "entity": "c_contact", "template": "t", "records": "results", "id": "id",
            "updated_at": "updatedAt",
            "list": {"path": "/crm/v3/objects/contacts", "query": {"limit": "100"}},
            "paging": paging
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn cursor_paging_follows_the_answer_and_stops_without_a_cursor() {
        let s = spec(
            json!({"style": "cursor", "next": "paging.next.after", "param": "after"}),
            json!({}),
        );
        assert_eq!(
            s.request(&Value::Null, None, None).unwrap().path_and_query,
            "/crm/v3/objects/contacts?limit=100"
        );
        let page = s
            .read(
                &json!({"results": [{"id": "1"}], "paging": {"next": {"after": "101"}}}),
                None,
            )
            .unwrap();
        assert_eq!(page.next, Some(json!({"cursor": "101"})));
        let r = s.request(&Value::Null, page.next.as_ref(), None).unwrap();
        assert_eq!(
            r.path_and_query,
            "/crm/v3/objects/contacts?limit=100&after=101"
        );
        let last = s.read(&json!({"results": []}), page.next.as_ref()).unwrap();
        assert_eq!(last.next, None);
    }

    #[test]
    fn an_incremental_post_gets_the_since_and_the_cursor_in_its_body() {
        let s = spec(
            json!({"style": "cursor", "next": "paging.next.after", "param": "after"}),
            json!({"since_format": "epoch_millis", "incremental": {"method": "POST",
                "path": "/crm/v3/objects/contacts/search",
                "body": {"limit": 100, "filterGroups": [{"filters": [
                    {"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": "{since}"}]}]}}}),
        );
        let since = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
        let r = s
            .request(&Value::Null, Some(&json!({"cursor": "200"})), Some(since))
            .unwrap();
        assert_eq!(r.method, "POST");
        let body = r.body.unwrap();
        assert_eq!(body["after"], "200");
        assert_eq!(
            body["filterGroups"][0]["filters"][0]["value"],
            "1700000000000"
        );
    }

    #[test]
    fn next_url_page_and_offset_styles() {
        let sf = spec(
            json!({"style": "next_url", "next": "nextRecordsUrl"}),
            json!({"records": "records", "total": "totalSize"}),
        );
        let p = sf
            .read(&json!({"records": [{"Id": "a"}], "totalSize": 3, "done": false, "nextRecordsUrl": "/services/data/v60.0/query/01g-2000"}), None)
            .unwrap();
        assert_eq!(p.total, Some(3));
        assert_eq!(
            sf.request(&Value::Null, p.next.as_ref(), None)
                .unwrap()
                .path_and_query,
            "/services/data/v60.0/query/01g-2000"
        );
        assert_eq!(
            sf.read(&json!({"records": [], "done": true}), None)
                .unwrap()
                .next,
            None
        );

        let xero = spec(
            json!({"style": "page", "param": "page", "size": 2}),
            json!({"records": "Invoices"}),
        );
        let full = xero.read(&json!({"Invoices": [{}, {}]}), None).unwrap();
        assert_eq!(full.next, Some(json!({"page": 2})));
        assert!(
            xero.request(&Value::Null, full.next.as_ref(), None)
                .unwrap()
                .path_and_query
                .ends_with("page=2")
        );
        assert_eq!(
            xero.read(&json!({"Invoices": [{}]}), full.next.as_ref())
                .unwrap()
                .next,
            None
        );

        let zoho = spec(
            json!({"style": "page", "param": "page", "size": 200, "more": "info.more_records"}),
            json!({"records": "data"}),
        );
        assert_eq!(
            zoho.read(&json!({"data": [{}], "info": {"more_records": true}}), None)
                .unwrap()
                .next,
            Some(json!({"page": 2}))
        );

        let qb = spec(
            json!({"style": "offset", "size": 2}),
            json!({"records": "QueryResponse.Invoice", "list": {"path": "/query",
                   "query": {"query": "select * from Invoice STARTPOSITION {offset} MAXRESULTS {size}"}}}),
        );
        let r = qb.request(&Value::Null, None, None).unwrap();
        assert!(
            r.path_and_query.contains("STARTPOSITION+1+MAXRESULTS+2"),
            "{}",
            r.path_and_query
        );
        let p = qb
            .read(&json!({"QueryResponse": {"Invoice": [{}, {}]}}), None)
            .unwrap();
        assert_eq!(p.next, Some(json!({"offset": 3})));
        assert!(
            qb.request(&Value::Null, p.next.as_ref(), None)
                .unwrap()
                .path_and_query
                .contains("STARTPOSITION+3")
        );
    }

    #[test]
    fn every_provider_time_form_parses() {
        let want = Utc.with_ymd_and_hms(2024, 1, 15, 10, 30, 0).unwrap();
        for v in [
            json!("2024-01-15T10:30:00.000Z"),
            json!("2024-01-15T10:30:00.000+0000"),
            json!("2024-01-15T16:00:00+05:30"),
            json!("/Date(1705314600000+0000)/"),
            json!(1_705_314_600_000_i64),
            json!("1705314600000"),
        ] {
            assert_eq!(parse_time(&v), Some(want), "{v}");
        }
        assert_eq!(parse_time(&json!("not a date")), None);
    }

    #[test]
    fn an_objects_entries_are_records_with_their_key() {
        let s = spec(
            json!({"style": "none"}),
            json!({"records": "Time Series (Daily)", "entry_key": "date", "id": "date"}),
        );
        let page = s
            .read(
                &json!({"Time Series (Daily)": {"2024-01-02": {"4. close": "1"}, "2024-01-03": 7}}),
                None,
            )
            .unwrap();
        assert_eq!(
            page.records,
            vec![
                json!({"date": "2024-01-02", "4. close": "1"}),
                json!({"date": "2024-01-03", "value": 7})
            ]
        );
        assert_eq!(page.next, None, "one answer holds everything");
        assert!(
            s.read(&json!({"Time Series (Daily)": []}), None).is_err(),
            "entry_key wants an object"
        );
        let arrays = spec(json!({"style": "none"}), json!({}));
        assert!(arrays.read(&json!({"results": {"a": {}}}), None).is_err());
    }

    #[test]
    fn config_fields_fill_paths_and_queries_and_a_missing_one_is_named() {
        let s = spec(
            json!({"style": "offset", "size": 10}),
            json!({"list": {"path": "/v3/company/{config.realm_id}/query",
                            "query": {"query": "select * from Invoice STARTPOSITION {offset} MAXRESULTS {size}", "q": "{config.search}"},
                            "headers": {"X-Tag": "{config.search}"}}}),
        );
        assert_eq!(s.config_fields(), vec!["realm_id", "search"]);
        let r = s
            .request(&json!({"realm_id": "12 3", "search": "a&b"}), None, None)
            .unwrap();
        assert!(
            r.path_and_query
                .starts_with("/v3/company/12%203/query?q=a%26b&"),
            "{}",
            r.path_and_query
        );
        assert_eq!(r.headers, vec![("X-Tag".to_owned(), "a&b".to_owned())]);
        let err = s
            .request(&json!({"realm_id": "1"}), None, None)
            .unwrap_err();
        assert!(err.contains("config.search"), "{err}");
        let bad = s
            .request(
                &json!({"realm_id": "1", "search": "x\r\nEvil: 1"}),
                None,
                None,
            )
            .unwrap_err();
        assert!(bad.contains("control character"), "{bad}");
        let mut with_key = s.clone();
        with_key.list.path = "/x/{api_key}".into();
        assert!(with_key.check().unwrap_err().contains("api_key"));
    }

    #[test]
    fn pages_stop_at_the_told_total_and_negative_indexes_count_from_the_end() {
        let s = spec(
            json!({"style": "page", "param": "page", "size": 2}),
            json!({"total": "total"}),
        );
        let full = json!({"results": [{}, {}], "total": 4});
        assert_eq!(s.read(&full, None).unwrap().next, Some(json!({"page": 2})));
        assert_eq!(s.read(&full, Some(&json!({"page": 2}))).unwrap().next, None);
        let v = json!({"logs": [{"end": "a"}, {"end": "b"}]});
        assert_eq!(at(&v, "logs.-1.end"), Some(&json!("b")));
        assert_eq!(at(&v, "logs.-3.end"), None);
        assert_eq!(at(&v, "logs.0.end"), Some(&json!("a")));
    }

    #[test]
    fn webhook_events_name_records_once_and_unknown_types_are_left_out() {
        let w: WebhookSync = serde_json::from_value(json!({
            "type": "subscriptionType", "id": "objectId",
            "entities": {"contact.propertyChange": "contacts", "deal.propertyChange": "deals"}
        }))
        .unwrap();
        let payload = json!([
            {"objectId": 7, "subscriptionType": "contact.propertyChange", "propertyName": "email"},
            {"objectId": 7, "subscriptionType": "contact.propertyChange", "propertyName": "phone"},
            {"objectId": 9, "subscriptionType": "deal.propertyChange"},
            {"objectId": 3, "subscriptionType": "ticket.creation"},
            {"subscriptionType": "contact.propertyChange"}
        ]);
        let refs = w.refs(&payload);
        let got: Vec<(&str, &str)> = refs
            .iter()
            .map(|r| (r.entity.as_str(), r.id.as_str()))
            .collect();
        assert_eq!(got, [("contacts", "7"), ("deals", "9")]);
        assert!(refs.iter().all(|r| r.record.is_none()));
        let embedded: WebhookSync = serde_json::from_value(json!({
            "events": "events", "type": "type", "id": "data.id", "record": "data",
            "entities": {"vehicle.updated": "vehicles"}
        }))
        .unwrap();
        let one = embedded.refs(
            &json!({"events": {"type": "vehicle.updated", "data": {"id": "v1", "name": "Truck"}}}),
        );
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].record, Some(json!({"id": "v1", "name": "Truck"})));
    }

    #[test]
    fn the_get_call_puts_the_id_in_its_path() {
        let s = spec(
            json!({"style": "cursor", "next": "paging.next.after", "param": "after"}),
            json!({"get": {"path": "/crm/v3/objects/contacts/{id}", "query": {"properties": "email"}}}),
        );
        let r = s.get_request("12 3").unwrap();
        assert_eq!(
            r.path_and_query,
            "/crm/v3/objects/contacts/12+3?properties=email"
        );
        assert!(
            spec(json!({"style": "offset", "size": 10}), json!({}))
                .get_request("1")
                .is_none()
        );
    }
}
