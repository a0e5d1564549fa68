//! API errors as `application/problem+json` (RFC 9457) with stable codes.
//!
//! Every error a client can see has an [`ErrorCode`]: a stable machine string,
//! an HTTP status and a title. [`ErrorCode::ALL`] is the table the OpenAPI
//! document publishes.

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, ResponseError};
use hub_domain::FieldError;
use serde::Serialize;
use std::fmt;

macro_rules! codes {
    ($($variant:ident => ($code:literal, $status:literal, $title:literal),)*) => {
        /// The stable error codes of the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode { $(
            #[doc = $title]
            $variant,
        )* }

        impl ErrorCode {
            /// Every code, for documentation.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];
            /// The machine-readable code.
            pub fn as_str(self) -> &'static str { match self { $(ErrorCode::$variant => $code,)* } }
            /// The HTTP status it is sent with.
            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::from_u16($status).expect("valid status"),)* }
            }
            /// A short human title.
            pub fn title(self) -> &'static str { match self { $(ErrorCode::$variant => $title,)* } }
        }
    };
}

codes! {
    InvalidJson => ("invalid_json", 400, "The request body is not valid JSON for this endpoint"),
    InvalidParameter => ("invalid_parameter", 400, "A path or query parameter is malformed"),
    InvalidIdempotencyKey => ("invalid_idempotency_key", 400, "The Idempotency-Key header is empty, longer than 255 characters or not printable ASCII"),
    MissingTenantHeader => ("missing_tenant_header", 400, "The X-Tenant-ID header is required"),
    InvalidTenantHeader => ("invalid_tenant_header", 400, "The X-Tenant-ID header is not a UUID"),
    MissingCredentials => ("missing_credentials", 401, "Authorization: Bearer <api key> is required"),
    InvalidCredentials => ("invalid_credentials", 401, "The API key is unknown, malformed or revoked"),
    InvalidAdminToken => ("invalid_admin_token", 401, "The operator token is missing or wrong"),
    MissingSignature => ("missing_signature", 401, "The webhook's signature (or a header it needs) is missing"),
    InvalidSignature => ("invalid_signature", 401, "The webhook's signature does not match the endpoint's secret"),
    StaleTimestamp => ("stale_timestamp", 401, "The webhook's signed timestamp is outside the tolerance"),
    TenantMismatch => ("tenant_mismatch", 403, "The API key belongs to another tenant"),
    IpNotAllowed => ("ip_not_allowed", 403, "The source address is not in the endpoint's ip_whitelist"),
    TenantSuspended => ("tenant_suspended", 403, "The tenant is suspended"),
    NotFound => ("not_found", 404, "No such resource"),
    RouteNotFound => ("route_not_found", 404, "No such route"),
    AdminDisabled => ("admin_disabled", 404, "The admin API is off"),
    MethodNotAllowed => ("method_not_allowed", 405, "Method not allowed on this route"),
    Conflict => ("conflict", 409, "The request conflicts with existing state"),
    IntegrationNotCallable => ("integration_not_callable", 409, "The integration is paused, disabled or not connected"),
    RateLimited => ("rate_limited", 429, "The integration's rate limit is reached; retry after Retry-After"),
    ProviderUnreachable => ("provider_unreachable", 502, "The provider could not be reached"),
    CircuitOpen => ("circuit_open", 503, "The integration's circuit breaker is open; retry after Retry-After"),
    ProviderTimeout => ("provider_timeout", 504, "The provider did not answer in time"),
    PayloadTooLarge => ("payload_too_large", 413, "The request body is too large"),
    UnsupportedMediaType => ("unsupported_media_type", 415, "Send Content-Type: application/json"),
    ValidationFailed => ("validation_failed", 422, "Some fields are invalid"),
    IdempotencyKeyReused => ("idempotency_key_reused", 422, "The Idempotency-Key was used (within 24 h) for a different request"),
    DependencyUnavailable => ("dependency_unavailable", 503, "A dependency (Postgres, RabbitMQ) is unavailable; retry later"),
    InvalidOAuthState => ("invalid_oauth_state", 400, "The OAuth state is unknown, used or expired; start again with POST .../oauth/authorize"),
    OAuthDenied => ("oauth_denied", 400, "The provider did not grant access (its error is in the detail)"),
    OAuthRevoked => ("oauth_revoked", 409, "The provider refused the OAuth grant; connect the integration again"),
    TokenEndpointUnavailable => ("token_endpoint_unavailable", 503, "The provider's token endpoint is unavailable; retry later"),
    Internal => ("internal_error", 500, "Internal error"),
}

/// An error returned to an API client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The stable code (which fixes the status).
    pub code: ErrorCode,
    /// What was wrong, for a human, and what to do.
    pub detail: String,
    /// Per-field validation errors.
    pub errors: Vec<FieldError>,
    /// Extra members of the problem document.
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// The problem document as sent.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:integration-hub:error:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short title of the error class.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong in this request.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    /// Field errors, for `validation_failed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

/// One invalid field.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProblemField {
    /// The field, in request naming.
    pub field: String,
    /// Why it is invalid.
    pub message: String,
}

impl ApiError {
    /// An error with `code` and a detail message.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            extensions: Default::default(),
        }
    }
    /// `validation_failed` with field errors.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            errors,
            ..Self::new(ErrorCode::ValidationFailed, detail)
        }
    }
    /// `not_found` for a `what` (never says whether it exists for someone else).
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }
    /// `internal_error`; the cause is logged, not sent.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            ErrorCode::Internal,
            "internal error; the request id in the X-Request-ID header identifies it in the logs",
        )
    }
    /// Sets `Retry-After` (whole seconds, at least 1) on the answer, also
    /// shown as `retry_after_seconds` in the problem document.
    pub fn with_retry_after(self, after: std::time::Duration) -> Self {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        self.with_extension(RETRY_AFTER_MEMBER, serde_json::json!(secs.max(1)))
    }
    /// Adds a member to the problem document.
    pub fn with_extension(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(key.to_owned(), value);
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let problem = Problem {
            kind: format!("urn:integration-hub:error:{}", self.code.as_str()),
            title: self.code.title().to_owned(),
            status: self.code.status().as_u16(),
            detail: self.detail.clone(),
            code: self.code.as_str().to_owned(),
            errors: self
                .errors
                .iter()
                .map(|e| ProblemField {
                    field: e.field.clone(),
                    message: e.message.clone(),
                })
                .collect(),
        };
        let mut body = serde_json::to_value(problem).expect("problem serializes");
        if let Some(obj) = body.as_object_mut() {
            obj.extend(self.extensions.clone());
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header(ContentType(mime_problem()));
        if let Some(secs) = self
            .extensions
            .get(RETRY_AFTER_MEMBER)
            .and_then(|v| v.as_u64())
        {
            response.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        response.body(body.to_string())
    }
}

const RETRY_AFTER_MEMBER: &str = "retry_after_seconds";

fn mime_problem() -> actix_web::mime::Mime {
    "application/problem+json".parse().expect("valid mime")
}

impl From<hub_storage::StorageError> for ApiError {
    fn from(e: hub_storage::StorageError) -> Self {
        use hub_storage::StorageError as S;
        match e {
            S::Unavailable(_) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::new(
                    ErrorCode::DependencyUnavailable,
                    "the database is unavailable; retry later",
                )
            }
            S::Conflict { constraint } => ApiError::new(
                ErrorCode::Conflict,
                format!("conflicts with an existing record ({constraint})"),
            ),
            other => ApiError::internal(other),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::validation(vec![e])
    }
}

/// The markdown table of all error codes (published in the OpenAPI description).
pub fn codes_markdown() -> String {
    let mut s = String::from("| code | status | meaning |\n|---|---|---|\n");
    for c in ErrorCode::ALL {
        s.push_str(&format!(
            "| `{}` | {} | {} |\n",
            c.as_str(),
            c.status().as_u16(),
            c.title()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn codes_are_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate {}", c.as_str());
            assert!(
                c.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
    }

    #[test]
    fn problem_document_shape() {
        let e = ApiError::validation(vec![FieldError::new("slug", "must not be empty")]);
        let resp = e.error_response();
        assert_eq!(resp.status(), 422);
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
        let body = resp.into_body().try_into_bytes().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "validation_failed");
        assert_eq!(v["status"], 422);
        assert_eq!(v["errors"][0]["field"], "slug");
        assert_eq!(v["type"], "urn:integration-hub:error:validation_failed");
    }
}
