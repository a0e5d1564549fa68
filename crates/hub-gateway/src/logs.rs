//! The request log (placeholder until the request-log work lands: records
//! nothing).

/// Which way a logged request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A provider called the hub.
    Inbound,
    /// The hub called a provider.
    Outbound,
}

/// One HTTP exchange, before redaction.
#[derive(Debug)]
#[allow(missing_docs)]
pub struct Exchange {
    pub id: uuid::Uuid,
    pub tenant_id: uuid::Uuid,
    pub integration_id: Option<uuid::Uuid>,
    pub direction: Direction,
    pub method: String,
    pub url: String,
    pub request_headers: http::HeaderMap,
    pub request_body: bytes::Bytes,
    pub response_status: Option<u16>,
    pub response_headers: Option<http::HeaderMap>,
    pub response_body: bytes::Bytes,
    pub response_size: Option<u64>,
    pub latency: std::time::Duration,
    pub correlation_id: Option<String>,
    pub source_ip: Option<String>,
    pub error: Option<String>,
    pub timed_out: bool,
    pub retry_of: Option<uuid::Uuid>,
    pub attempt: u32,
    pub secrets: Vec<String>,
    pub secret_names: Vec<String>,
}

/// The log writer.
#[derive(Clone, Default)]
pub struct Recorder {
    _placeholder: (),
}

impl Recorder {
    /// Queues one exchange.
    pub async fn record(&self, _e: Exchange) {}
}
