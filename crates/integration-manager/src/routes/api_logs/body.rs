//! Request-log query parameters and response pages.

use hub_storage::api_logs::LogSummary;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Request-log search filters (with the page parameters
/// [`ListParams`](crate::routes::list::ListParams): `limit` 1–200, default
/// 50, and `cursor`). Each is checked by name: a bad value is a 400 naming
/// the parameter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogFilter {
    /// Only this integration's logs (an id of the calling tenant).
    pub integration_id: Option<String>,
    /// INBOUND or OUTBOUND.
    pub direction: Option<String>,
    /// HTTP method (any case).
    pub method: Option<String>,
    /// SUCCESS, CLIENT_ERROR, SERVER_ERROR or TIMEOUT.
    pub status: Option<String>,
    /// Exact response status code (100–599).
    pub status_code: Option<String>,
    /// Lowest response status code.
    pub status_code_min: Option<String>,
    /// Highest response status code.
    pub status_code_max: Option<String>,
    /// Paths starting with this (`/v1/contacts`).
    pub path_prefix: Option<String>,
    /// The client call's `X-Hub-Request-Id` (every attempt of it).
    pub correlation_id: Option<String>,
    /// Made at or after (RFC 3339).
    pub from: Option<String>,
    /// Made before (RFC 3339).
    pub to: Option<String>,
    /// Text in the URL or a stored body (case-insensitive; 3–200
    /// characters). It scans the rows the other filters select, newest
    /// first, within `from`/`to`; without `from` it searches the day
    /// before `to` (or now).
    pub q: Option<String>,
}

/// A page of request logs, newest first.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct LogPage {
    /// The rows (without headers and bodies: `GET /api/v1/api-logs/{logId}`).
    pub data: Vec<LogSummary>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl crate::routes::list::Listed for LogSummary {
    fn id(&self) -> Uuid {
        self.id
    }
}
