//! The console's client of the manager's public HTTP API: the same routes,
//! headers and rules as any other client, with the signed-in session's
//! credentials (a tenant's API key and `X-Tenant-ID`, or the admin token).

use reqwest::Method;
use serde_json::Value;

/// Who the calls are made as.
#[derive(Clone)]
pub enum Credential {
    /// A tenant's API key.
    Tenant {
        /// The tenant's id (`X-Tenant-ID`).
        tenant: String,
        /// The API key.
        key: String,
    },
    /// The operator's admin token.
    Operator {
        /// `HUB_ADMIN_TOKEN`.
        token: String,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tenant { tenant, .. } => write!(f, "Tenant({tenant}, [redacted])"),
            Self::Operator { .. } => f.write_str("Operator([redacted])"),
        }
    }
}

/// What went wrong with a call, as the console shows it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The API's status, `None` when it could not be reached.
    pub status: Option<u16>,
    /// The problem's stable `code`, when the API sent one.
    pub code: Option<String>,
    /// A sentence for the user (the problem's `detail`).
    pub message: String,
    /// Field errors (`validation_failed`): `(field, message)`.
    pub fields: Vec<(String, String)>,
}

impl Failure {
    /// Builds the failure of an answer that was not a success.
    fn from_answer(status: u16, body: &Value) -> Self {
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        let fields = body
            .get("errors")
            .and_then(Value::as_array)
            .map(|errs| {
                errs.iter()
                    .map(|e| {
                        (
                            e["field"].as_str().unwrap_or_default().to_owned(),
                            e["message"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            status: Some(status),
            code: text("code"),
            message: text("detail")
                .or_else(|| text("title"))
                .unwrap_or_else(|| format!("the API answered {status}")),
            fields,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} ({s})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// One session's view of the API.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    credential: Credential,
}

impl Api {
    /// Calls `base` (the manager's own origin) as `credential`.
    pub fn new(http: reqwest::Client, base: String, credential: Credential) -> Self {
        Self {
            http,
            base,
            credential,
        }
    }

    /// GET `path` (with its query string): the JSON answer of a 2xx.
    pub async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.send(Method::GET, path, None).await
    }

    /// POST `body` to `path`: the JSON answer of a 2xx (`null` for 204).
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, Failure> {
        self.send(Method::POST, path, Some(body)).await
    }

    /// Any call: the JSON answer of a 2xx (`null` when empty), else the
    /// problem it answered.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        req = match &self.credential {
            Credential::Tenant { tenant, key } => {
                req.bearer_auth(key).header("X-Tenant-ID", tenant.as_str())
            }
            Credential::Operator { token } => req.bearer_auth(token),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| Failure {
            status: None,
            code: None,
            message: format!("the API could not be reached: {e}"),
            fields: Vec::new(),
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(Failure::from_answer(status, &body))
        }
    }
}

/// `value` encoded for a query string.
pub fn enc(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A query string (`?a=1&b=2`) of the pairs whose value is not empty.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", enc(v.trim())))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}
