//! Calling a service's HTTP API: an answer read whole, with the checks tests
//! make of it.

use serde_json::Value;
use std::collections::BTreeSet;
use std::future::Future;

/// An answer of an HTTP API, read whole: its status, content type, raw text
/// (for secret scans) and JSON body (`Null` when it is not JSON).
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The `content-type` header (empty when there is none).
    pub content_type: String,
    /// The body as text.
    pub text: String,
    /// The body as JSON; `Null` when it is not JSON.
    pub body: Value,
}

impl Answer {
    /// Reads `resp` whole.
    pub async fn read(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            content_type,
            text,
            body,
        }
    }

    /// Asserts the answer has `status`; returns its body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "status of {}", self.text);
        &self.body
    }

    /// Asserts a problem+json answer with `status` and `code`; returns it.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status, status, "status of {}", self.text);
        assert_eq!(
            self.content_type, "application/problem+json",
            "errors are problem+json: {}",
            self.text
        );
        assert_eq!(self.body["code"], code, "{}", self.text);
        &self.body
    }

    /// The `errors[].field` of a validation problem.
    pub fn fields(&self) -> BTreeSet<String> {
        self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors[] in {}", self.text))
            .iter()
            .map(|e| e["field"].as_str().expect("field").to_owned())
            .collect()
    }
}

/// The `id` of each of `items` (a page's `data`, a list of deliveries).
pub fn ids<C: FromIterator<String>>(items: &[Value]) -> C {
    items
        .iter()
        .map(|item| item["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// Sends a request and reads its [`Answer`].
pub trait Call {
    /// Sends the request (panics if it cannot be sent) and reads the answer.
    fn call(self) -> impl Future<Output = Answer> + Send;
}

impl Call for reqwest::RequestBuilder {
    async fn call(self) -> Answer {
        Answer::read(self.send().await.expect("request sent")).await
    }
}

/// One tenant's view of a service's API: every call carries the tenant's API
/// key and `X-Tenant-ID`.
#[derive(Clone)]
pub struct TenantApi {
    http: reqwest::Client,
    base: String,
    /// The tenant's id.
    pub tenant: String,
    /// The API key it calls with.
    pub key: String,
}

impl TenantApi {
    /// `tenant` calling `service` with `key`.
    pub fn new(env: &crate::TestEnv, service: &crate::Running, tenant: &str, key: &str) -> Self {
        Self {
            http: env.http.clone(),
            base: service.base.clone(),
            tenant: tenant.to_owned(),
            key: key.to_owned(),
        }
    }

    /// The same tenant, calling with another key.
    pub fn with_key(&self, key: &str) -> Self {
        Self {
            key: key.to_owned(),
            ..self.clone()
        }
    }

    /// The same tenant and key, calling another service.
    pub fn at(&self, service: &crate::Running) -> Self {
        Self {
            base: service.base.clone(),
            ..self.clone()
        }
    }

    /// A request of `path` as this tenant, to add to.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("X-Tenant-ID", &self.tenant)
    }

    /// Calls `path` with JSON `body`, if any.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.call().await
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// POST `body` to `path`.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// POST to `path` without a body.
    pub async fn post_empty(&self, path: &str) -> Answer {
        self.send(reqwest::Method::POST, path, None).await
    }

    /// PUT `body` to `path`.
    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    /// DELETE `path`.
    pub async fn delete(&self, path: &str) -> Answer {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// The tenant's audit entries (of `event_type`, if given), newest first,
    /// up to 200 (the manager's `/api/v1/audit-log`).
    pub async fn audit(&self, event_type: Option<&str>) -> Vec<Value> {
        let filter = event_type
            .map(|t| format!("&event_type={t}"))
            .unwrap_or_default();
        let a = self
            .get(&format!("/api/v1/audit-log?limit=200{filter}"))
            .await;
        a.ok(200)["data"].as_array().expect("data").clone()
    }
}
