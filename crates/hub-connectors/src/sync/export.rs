//! How an entity is pushed to its provider (the `export` key of an entity's
//! `sync` section), pure: which platform events change it and where the
//! record is in one, the create and update calls, the template mapping the
//! hub's record back to the provider's body, the provider's concurrency
//! token (QuickBooks `SyncToken`) and how it refuses a stale one, and where
//! an answer carries the record, its new id and its new timestamp. The sync
//! engine sends the requests through the gateway.
//!
//! Placeholders in paths and query values: `{id}` (the provider's id of the
//! record) and `{config.<field>}` (the integration's config, e.g.
//! QuickBooks' `realm_id`), both percent-encoded.

use super::{EntitySync, Request, at};
use crate::template;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub use hub_domain::sync::{PLACEHOLDER_PREFIX, is_placeholder, placeholder};

/// The `export` section of an entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    /// Code of the transformation template mapping the hub's record
    /// (`invoice`, `c_opportunity`) to the provider's body.
    pub template: String,
    /// The platform events that change this entity, by event type; an
    /// integration opts in to some of them (`export_events`).
    #[serde(default)]
    pub events: BTreeMap<String, ExportEvent>,
    /// The create call (its answer names the new id).
    pub create: WriteCall,
    /// The update call (`{id}` in its path, or the id in its body).
    pub update: WriteCall,
    /// The single-record read (`{id}` in its path): after a write whose
    /// answer holds no record (Salesforce's 204 and 201), and to re-read a
    /// record whose token was stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<WriteCall>,
    /// Dotted path of the record in a write's or read's answer (QuickBooks
    /// `Invoice`); absent: the answer is the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_record: Option<String>,
    /// Dotted path of the new id in a create's answer when it holds no
    /// record (Salesforce `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_id: Option<String>,
    /// The provider's optimistic-concurrency token, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenSpec>,
    /// Dotted paths, tried in order, of the human message in an error
    /// answer (QuickBooks `Fault.Error.0.Detail`, Salesforce `0.message`).
    #[serde(default)]
    pub error_message: Vec<String>,
    /// Records pushed per batch (each batch commits with the job's
    /// progress; a cancel is honoured between batches). Default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<u32>,
}

/// A platform event that changes the entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportEvent {
    /// Dotted path of the hub record in the event's `data` (absent: `data`
    /// itself). Its fields are laid over the record the hub holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// Dotted path in `data` of the platform's own id of the record (an
    /// invoice's id): the same thing changed twice is one record.
    pub key: String,
    /// Dotted path in `data` of the provider's id of the record, when the
    /// platform knows it (a record that came from the provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// A write (or single read) call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteCall {
    /// `POST` (default), `PATCH`, `PUT` or, for reads, `GET`.
    #[serde(default = "post")]
    pub method: String,
    /// Path below the API base, with `{id}` and `{config.<field>}`.
    pub path: String,
    /// Query parameters (same placeholders).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Body field the provider's id goes in (QuickBooks `Id`), for updates
    /// whose path does not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_field: Option<String>,
    /// Fields added to every body (QuickBooks `{"sparse": true}`: only the
    /// fields sent change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Map<String, Value>>,
}

fn post() -> String {
    "POST".into()
}

/// The provider's concurrency token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Dotted path of the token in the hub's record (as the entity's read
    /// template maps it: `sync_token`).
    pub held: String,
    /// The provider's field: in its records, and where the token goes back
    /// in an update's body (`SyncToken`).
    pub field: String,
    /// How the provider refuses a stale token.
    pub stale: StaleAnswer,
}

/// A provider's "stale token" answer: its status and one of its codes at a
/// path of the body (QuickBooks 400 with `Fault.Error.0.code` 5010).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaleAnswer {
    /// HTTP status.
    pub status: u16,
    /// Dotted path of the error code in the answer.
    pub code: String,
    /// The codes that mean "stale".
    pub codes: Vec<String>,
}

/// What a platform event says about a record.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalChange {
    /// The platform's id of the record.
    pub key: String,
    /// The provider's id, when the platform knows it.
    pub external_id: Option<String>,
    /// The changed fields, in the hub entity's shape.
    pub record: Map<String, Value>,
}

/// What a write's (or read's) answer says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriteAnswer {
    /// The provider's version of the record, when the answer holds it.
    pub record: Option<Value>,
    /// The record's provider id (from the record, or the create's answer).
    pub id: Option<String>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl ExportEvent {
    /// Reads an event's `data`: the key, the provider's id if any, and the
    /// record (an object).
    pub fn read(&self, data: &Value) -> Result<LocalChange, String> {
        let key = at(data, &self.key)
            .and_then(text)
            .ok_or_else(|| format!("data.{}: the record's id is missing", self.key))?;
        let record = match &self.record {
            Some(p) => at(data, p),
            None => Some(data),
        };
        let Some(Value::Object(record)) = record else {
            return Err(format!(
                "data{}: the record must be an object",
                self.record
                    .as_deref()
                    .map(|p| format!(".{p}"))
                    .unwrap_or_default()
            ));
        };
        let external_id = self
            .external_id
            .as_deref()
            .and_then(|p| at(data, p))
            .and_then(text)
            .filter(|id| !is_placeholder(id));
        Ok(LocalChange {
            key,
            external_id,
            record: record.clone(),
        })
    }
}

impl ExportSpec {
    /// Checks the section; errors name the field.
    pub fn check(&self) -> Result<(), String> {
        if self.template.trim().is_empty() {
            return Err("export.template: a template code is required".into());
        }
        for (name, call) in [("create", &self.create), ("update", &self.update)] {
            if !matches!(call.method.as_str(), "POST" | "PATCH" | "PUT") {
                return Err(format!("export.{name}: method must be POST, PATCH or PUT"));
            }
            if !call.path.starts_with('/') {
                return Err(format!("export.{name}: path must start with /"));
            }
        }
        if !self.update.path.contains("{id}") && self.update.id_field.is_none() {
            return Err(
                "export.update: the path needs {id} or id_field must say where the id goes".into(),
            );
        }
        if let Some(read) = &self.read {
            if read.method != "GET" || !read.path.starts_with('/') || !read.path.contains("{id}") {
                return Err("export.read: a GET whose path starts with / and holds {id}".into());
            }
        } else if self.token.is_some() {
            return Err("export.read: required with a token (a stale record is re-read)".into());
        }
        for (event, e) in &self.events {
            hub_domain::EventType::parse(event)
                .map_err(|_| format!("export.events.{event}: not an event type"))?;
            if e.key.trim().is_empty() {
                return Err(format!(
                    "export.events.{event}.key: a dotted path is required"
                ));
            }
        }
        if self.batch == Some(0) {
            return Err("export.batch: at least 1".into());
        }
        Ok(())
    }

    /// Records a batch holds.
    pub fn batch_size(&self) -> u32 {
        self.batch.unwrap_or(50).clamp(1, 1000)
    }

    /// The create request for `body` (the template's output).
    pub fn create_request(&self, body: Value, config: &Value) -> Result<Request, String> {
        build(&self.create, None, body, config)
    }

    /// The update request of record `id` for `body`, with the held `token`
    /// when the provider has one.
    pub fn update_request(
        &self,
        id: &str,
        body: Value,
        token: Option<&Value>,
        config: &Value,
    ) -> Result<Request, String> {
        let mut req = build(&self.update, Some(id), body, config)?;
        if let (Some(spec), Some(token), Some(Value::Object(b))) =
            (&self.token, token, req.body.as_mut())
        {
            b.insert(spec.field.clone(), token.clone());
        }
        Ok(req)
    }

    /// The single-record read of `id`, if the manifest has one.
    pub fn read_request(&self, id: &str, config: &Value) -> Option<Result<Request, String>> {
        let read = self.read.as_ref()?;
        Some(build(read, Some(id), Value::Null, config).map(|mut r| {
            r.body = None;
            r
        }))
    }

    /// The token of the hub's record (`None` when the provider has none).
    pub fn held_token<'a>(&self, record: &'a Value) -> Option<&'a Value> {
        at(record, &self.token.as_ref()?.held).filter(|v| !v.is_null())
    }

    /// The token of a provider's record.
    pub fn provider_token<'a>(&self, record: &'a Value) -> Option<&'a Value> {
        at(record, &self.token.as_ref()?.field).filter(|v| !v.is_null())
    }

    /// Whether an answer refuses the write for a stale token.
    pub fn is_stale(&self, status: u16, answer: &Value) -> bool {
        let Some(spec) = self.token.as_ref().map(|t| &t.stale) else {
            return false;
        };
        status == spec.status
            && at(answer, &spec.code)
                .and_then(text)
                .is_some_and(|c| spec.codes.contains(&c))
    }

    /// Reads a write's or read's answer; `entity` gives a record's id path.
    pub fn read_answer(&self, entity: &EntitySync, answer: &Value) -> WriteAnswer {
        let record = match &self.answer_record {
            Some(p) => at(answer, p),
            None => Some(answer),
        }
        .filter(|r| r.is_object())
        .filter(|r| entity.id_of(r).is_some())
        .cloned();
        let id = record.as_ref().and_then(|r| entity.id_of(r)).or_else(|| {
            self.created_id
                .as_deref()
                .and_then(|p| at(answer, p))
                .and_then(text)
        });
        WriteAnswer { record, id }
    }

    /// The provider's message in an error answer (else its text, cut).
    pub fn error_message(&self, answer: &Value, raw: &str) -> String {
        self.error_message
            .iter()
            .find_map(|p| at(answer, p).and_then(Value::as_str))
            .map_or_else(|| raw.chars().take(500).collect(), str::to_owned)
    }
}

/// A call with its placeholders filled, and its body (an object) with the
/// call's fixed fields and the id where the manifest says.
fn build(
    call: &WriteCall,
    id: Option<&str>,
    body: Value,
    config: &Value,
) -> Result<Request, String> {
    let fill = |t: &str| fill(t, id, config);
    let path = fill(&call.path)?;
    let mut qs = Vec::new();
    for (k, v) in &call.query {
        let v = fill(v)?;
        qs.push(format!("{}={v}", template::percent_encode(k)));
    }
    let path_and_query = if qs.is_empty() {
        path
    } else {
        format!("{path}?{}", qs.join("&"))
    };
    let body = match body {
        Value::Null => None,
        Value::Object(mut b) => {
            for (k, v) in call.body.iter().flatten() {
                b.insert(k.clone(), v.clone());
            }
            if let (Some(field), Some(id)) = (&call.id_field, id) {
                b.insert(field.clone(), Value::String(id.to_owned()));
            }
            Some(Value::Object(b))
        }
        _ => return Err("the mapped record is not a JSON object".into()),
    };
    Ok(Request {
        method: call.method.clone(),
        path_and_query,
        headers: Vec::new(),
        body,
    })
}

/// `{id}` and `{config.<field>}` filled, percent-encoded.
fn fill(t: &str, id: Option<&str>, config: &Value) -> Result<String, String> {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("{t}: '{{' without a closing '}}'"))?;
        let name = &after[..close];
        let value = match (name, name.strip_prefix("config.")) {
            ("id", _) => id
                .ok_or_else(|| format!("{t}: {{id}} in a call that has no record id"))?
                .to_owned(),
            (_, Some(field)) => {
                template::scalar_text(config, field, "path").map_err(|e| e.to_string())?
            }
            _ => return Err(format!("{t}: unknown placeholder {{{name}}}")),
        };
        out.push_str(&template::percent_encode(&value));
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quickbooks() -> (EntitySync, ExportSpec) {
        let e: EntitySync = serde_json::from_value(json!({
            "entity": "invoice", "template": "quickbooks_invoice_to_invoice",
            "list": {"path": "/v3/company/{config.realm_id}/query"},
            "records": "QueryResponse.Invoice", "id": "Id", "updated_at": "MetaData.LastUpdatedTime",
            "paging": {"style": "offset", "size": 100},
            "export": {
                "template": "invoice_to_quickbooks_invoice",
                "events": {"invoice.generated": {"record": "invoice", "key": "invoice.id", "external_id": "invoice.external_id"}},
                "create": {"path": "/v3/company/{config.realm_id}/invoice", "query": {"minorversion": "75"}},
                "update": {"path": "/v3/company/{config.realm_id}/invoice", "id_field": "Id", "body": {"sparse": true}},
                "read": {"method": "GET", "path": "/v3/company/{config.realm_id}/invoice/{id}"},
                "answer_record": "Invoice",
                "token": {"held": "sync_token", "field": "SyncToken",
                          "stale": {"status": 400, "code": "Fault.Error.0.code", "codes": ["5010"]}},
                "error_message": ["Fault.Error.0.Detail", "Fault.Error.0.Message"]
            }
        }))
        .unwrap();
        e.check().unwrap();
        let x = e.export.clone().unwrap();
        x.check().unwrap();
        (e, x)
    }

    #[test]
    fn an_event_becomes_a_local_change_of_one_record() {
        let (_, x) = quickbooks();
        let ev = &x.events["invoice.generated"];
        let c = ev
            .read(&json!({"invoice": {"id": "inv-7", "number": "7", "total": 10.5}}))
            .unwrap();
        assert_eq!((c.key.as_str(), c.external_id), ("inv-7", None));
        assert_eq!(c.record["total"], 10.5);
        let known = ev
            .read(&json!({"invoice": {"id": 7, "external_id": "131"}}))
            .unwrap();
        assert_eq!(
            (known.key.as_str(), known.external_id.as_deref()),
            ("7", Some("131"))
        );
        assert!(ev.read(&json!({"invoice": {"number": "7"}})).is_err());
        assert!(ev.read(&json!({"invoice": "7"})).is_err());
    }

    #[test]
    fn quickbooks_creates_and_updates_with_the_held_sync_token() {
        let (_, x) = quickbooks();
        let config = json!({"realm_id": "9130357766900456"});
        let c = x
            .create_request(json!({"DocNumber": "7"}), &config)
            .unwrap();
        assert_eq!(
            (c.method.as_str(), c.path_and_query.as_str()),
            (
                "POST",
                "/v3/company/9130357766900456/invoice?minorversion=75"
            )
        );
        assert_eq!(c.body, Some(json!({"DocNumber": "7"})));
        let held = json!({"external_id": "131", "sync_token": "2"});
        let u = x
            .update_request(
                "131",
                json!({"DocNumber": "7"}),
                x.held_token(&held),
                &config,
            )
            .unwrap();
        assert_eq!(u.path_and_query, "/v3/company/9130357766900456/invoice");
        assert_eq!(
            u.body,
            Some(json!({"DocNumber": "7", "Id": "131", "SyncToken": "2", "sparse": true}))
        );
        let r = x.read_request("1 31", &config).unwrap().unwrap();
        assert_eq!(
            (r.method.as_str(), r.path_and_query.as_str()),
            ("GET", "/v3/company/9130357766900456/invoice/1%2031")
        );
        assert!(
            x.create_request(json!({}), &json!({}))
                .unwrap_err()
                .contains("realm_id")
        );
    }

    #[test]
    fn answers_give_the_record_its_id_or_say_the_token_was_stale() {
        let (e, x) = quickbooks();
        let a = x.read_answer(
            &e,
            &json!({"Invoice": {"Id": "131", "SyncToken": "0"}, "time": "…"}),
        );
        assert_eq!(a.id.as_deref(), Some("131"));
        assert_eq!(
            x.provider_token(a.record.as_ref().unwrap()),
            Some(&json!("0"))
        );
        let stale = json!({"Fault": {"Error": [{"Message": "Stale Object Error", "Detail": "Stale Object Error : …", "code": "5010"}], "type": "ValidationFault"}});
        assert!(x.is_stale(400, &stale));
        assert!(!x.is_stale(500, &stale));
        let missing = json!({"Fault": {"Error": [{"Message": "Required param missing", "Detail": "Required parameter Line is missing", "code": "2020"}]}});
        assert!(!x.is_stale(400, &missing));
        assert_eq!(
            x.error_message(&missing, ""),
            "Required parameter Line is missing"
        );
        assert_eq!(x.error_message(&Value::Null, "plain text"), "plain text");
    }

    #[test]
    fn salesforce_patches_by_id_and_reads_the_created_id() {
        let e: EntitySync = serde_json::from_value(json!({
            "entity": "c_opportunity", "template": "salesforce_opportunity_to_c_opportunity",
            "list": {"path": "/services/data/v60.0/query"}, "records": "records", "id": "Id",
            "paging": {"style": "next_url", "next": "nextRecordsUrl"},
            "export": {
                "template": "c_opportunity_to_salesforce_opportunity",
                "create": {"path": "/services/data/v60.0/sobjects/Opportunity"},
                "update": {"method": "PATCH", "path": "/services/data/v60.0/sobjects/Opportunity/{id}"},
                "read": {"method": "GET", "path": "/services/data/v60.0/sobjects/Opportunity/{id}"},
                "created_id": "id", "error_message": ["0.message"]
            }
        }))
        .unwrap();
        let x = e.export.clone().unwrap();
        x.check().unwrap();
        let u = x
            .update_request("006A", json!({"StageName": "Closed Won"}), None, &json!({}))
            .unwrap();
        assert_eq!(
            (u.method.as_str(), u.path_and_query.as_str()),
            ("PATCH", "/services/data/v60.0/sobjects/Opportunity/006A")
        );
        assert_eq!(u.body, Some(json!({"StageName": "Closed Won"})));
        let created = x.read_answer(&e, &json!({"id": "006B", "success": true, "errors": []}));
        assert_eq!(
            (created.id.as_deref(), created.record),
            (Some("006B"), None)
        );
        assert_eq!(
            x.error_message(
                &json!([{"message": "Required fields are missing: [Name]", "errorCode": "REQUIRED_FIELD_MISSING"}]),
                ""
            ),
            "Required fields are missing: [Name]"
        );
    }

    #[test]
    fn malformed_sections_are_refused() {
        let (_, x) = quickbooks();
        let mut bad = x.clone();
        bad.update.id_field = None;
        assert!(bad.check().unwrap_err().contains("{id}"));
        let mut bad = x.clone();
        bad.read = None;
        assert!(bad.check().unwrap_err().contains("read"));
        let mut bad = x;
        bad.create.method = "GET".into();
        assert!(bad.check().is_err());
        assert!(fill("/a/{nope}", None, &json!({})).is_err());
        assert!(placeholder("inv-1").starts_with(PLACEHOLDER_PREFIX));
        assert!(is_placeholder(&placeholder("x")) && !is_placeholder("131"));
    }
}
