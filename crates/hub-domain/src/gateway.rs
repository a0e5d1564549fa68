//! Rules of the API gateway that need no I/O: which limit applies, how a
//! provider says "slow down", what is retried, what counts against the
//! breaker, and which headers cross the proxy.

use std::time::{Duration, SystemTime};

/// A rate limit: at most `requests` in each fixed window of `window_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per window (at least 1).
    pub requests: u32,
    /// Window length in seconds (at least 1).
    pub window_seconds: u32,
}

impl RateLimit {
    /// The limit that applies to an integration: its own override, else the
    /// provider's documented one, else the configured default
    /// (`DEFAULT_RATE_LIMIT` per `RATE_LIMIT_WINDOW_SECONDS`). Zeros count as 1.
    pub fn resolve(
        overridden: Option<(u32, u32)>,
        provider: Option<(u32, u32)>,
        default: (u32, u32),
    ) -> Self {
        let (requests, window_seconds) = overridden.or(provider).unwrap_or(default);
        Self {
            requests: requests.max(1),
            window_seconds: window_seconds.max(1),
        }
    }

    /// The same limit per hour (for usage displays), rounded down, at least 1.
    pub fn per_hour(&self) -> u64 {
        (u64::from(self.requests) * 3600 / u64::from(self.window_seconds)).max(1)
    }

    /// How many tokens a process takes from the shared count at once: one at
    /// a time for small limits, so several replicas share them exactly; a
    /// slice for large ones, so a busy integration costs one database round
    /// trip per slice instead of one per request. Unused tokens lapse with
    /// their window, so the limit holds either way.
    pub fn prefetch(&self) -> u32 {
        if self.requests < 200 {
            0
        } else {
            (self.requests / 50).min(1000)
        }
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date (relative to
/// `now`). A date in the past is a zero wait; garbage is `None`.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(1e9)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether an answer is the provider telling us to slow down: 429 from
/// anyone, Salesforce's 403 `REQUEST_LIMIT_EXCEEDED`, Alpha Vantage's 200
/// with a `"Note"` (or `"Information"`) about call frequency. `body` is the
/// start of the answer (the first few KiB are enough).
pub fn provider_throttled(provider: &str, status: u16, body: &[u8]) -> bool {
    match (provider, status) {
        (_, 429) => true,
        ("SALESFORCE", 403) => contains(body, b"REQUEST_LIMIT_EXCEEDED"),
        ("ALPHA_VANTAGE", 200) => {
            (contains(body, b"\"Note\"") || contains(body, b"\"Information\""))
                && (contains(body, b"call frequency") || contains(body, b"rate limit"))
        }
        _ => false,
    }
}

/// Whether the answer's body must be looked at before it is streamed, to
/// tell a throttling answer from a normal one ([`provider_throttled`]).
pub fn throttle_needs_body(provider: &str, status: u16) -> bool {
    matches!(
        (provider, status),
        ("SALESFORCE", 403) | ("ALPHA_VANTAGE", 200)
    )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether an attempt's outcome counts as a failure for the circuit breaker:
/// no answer (connection error, timeout), 5xx, 408 and 429. Other 4xx are
/// the caller's mistakes, not the provider's ill health.
pub fn breaker_failure(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s >= 500 || s == 408 || s == 429,
    }
}

/// Whether an attempt's outcome may be retried: no answer, 408, 429 and 5xx
/// (except 501 Not Implemented, which will not change).
pub fn retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s == 408 || s == 429 || (s >= 500 && s != 501),
    }
}

/// Whether a request may be sent again without risk of doing it twice: the
/// idempotent methods of RFC 9110 (GET, HEAD, OPTIONS, TRACE, PUT, DELETE),
/// or any method when the client sent an `Idempotency-Key`.
pub fn may_repeat(method: &str, idempotency_key: bool) -> bool {
    idempotency_key
        || matches!(
            method.to_ascii_uppercase().as_str(),
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        )
}

/// Hop-by-hop headers (RFC 9110 7.6.1) and framing headers: never forwarded
/// in either direction; each side frames its own message.
pub fn hop_by_hop(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

/// Whether a client's request header is forwarded to the provider: not
/// hop-by-hop, not one naming the hub side of the call (the client's hub
/// credentials and tenant, its cookies, `Host`, forwarding headers, the
/// hub's own `X-Hub-*`), and not `Accept-Encoding` (answers are logged, so
/// they are asked for uncompressed). `connection_listed` holds the names the
/// client's `Connection` header lists, which are hop-by-hop too.
pub fn forward_request_header(name: &str, connection_listed: &[String]) -> bool {
    let n = name.to_ascii_lowercase();
    !(hop_by_hop(&n)
        || connection_listed.iter().any(|c| c.eq_ignore_ascii_case(&n))
        || n.starts_with("x-hub-")
        || n.starts_with("x-forwarded-")
        || matches!(
            n.as_str(),
            "host"
                | "authorization"
                | "x-tenant-id"
                | "cookie"
                | "forwarded"
                | "x-real-ip"
                | "accept-encoding"
                | "expect"
        ))
}

/// Whether a provider's response header is passed back to the client: not
/// hop-by-hop (or listed in its `Connection`), and no `Set-Cookie` (the
/// provider's session belongs to the hub's connection, not to the client).
pub fn forward_response_header(name: &str, connection_listed: &[String]) -> bool {
    let n = name.to_ascii_lowercase();
    !(hop_by_hop(&n)
        || connection_listed.iter().any(|c| c.eq_ignore_ascii_case(&n))
        || n == "set-cookie")
}

/// The header names a `Connection` header value lists (lower case).
pub fn connection_listed(values: &[&str]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_resolve_in_order() {
        let d = (100, 60);
        assert_eq!(
            RateLimit::resolve(Some((5, 2)), Some((500, 60)), d),
            RateLimit {
                requests: 5,
                window_seconds: 2
            }
        );
        assert_eq!(RateLimit::resolve(None, Some((500, 60)), d).requests, 500);
        assert_eq!(RateLimit::resolve(None, None, d).requests, 100);
        let zero = RateLimit::resolve(Some((0, 0)), None, d);
        assert_eq!((zero.requests, zero.window_seconds), (1, 1));
        assert_eq!(
            RateLimit::resolve(None, Some((100, 10)), d).per_hour(),
            36_000
        );
        assert_eq!(RateLimit::resolve(None, Some((5, 2)), d).prefetch(), 0);
        assert_eq!(
            RateLimit::resolve(None, Some((15_000, 86_400)), d).prefetch(),
            300
        );
        assert_eq!(
            RateLimit::resolve(None, Some((10_000_000, 60)), d).prefetch(),
            1000
        );
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(retry_after("1.5", now), Some(Duration::from_millis(1500)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after(&earlier, now), Some(Duration::ZERO));
        for bad in ["", "soon", "-3", "NaN", "inf"] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn throttling_answers_are_recognised() {
        assert!(provider_throttled("HUBSPOT", 429, b""));
        let sf = br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        assert!(provider_throttled("SALESFORCE", 403, sf));
        assert!(!provider_throttled(
            "SALESFORCE",
            403,
            b"[{\"errorCode\":\"INSUFFICIENT_ACCESS\"}]"
        ));
        assert!(!provider_throttled("XERO", 403, sf));
        let av = br#"{"Note":"Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute"}"#;
        assert!(provider_throttled("ALPHA_VANTAGE", 200, av));
        assert!(!provider_throttled(
            "ALPHA_VANTAGE",
            200,
            br#"{"Global Quote":{}}"#
        ));
        assert!(throttle_needs_body("SALESFORCE", 403));
        assert!(!throttle_needs_body("SALESFORCE", 200));
    }

    #[test]
    fn failures_and_retries() {
        for s in [None, Some(500), Some(503), Some(408), Some(429)] {
            assert!(breaker_failure(s), "{s:?}");
            assert!(retryable(s), "{s:?}");
        }
        for s in [
            Some(200),
            Some(302),
            Some(400),
            Some(401),
            Some(404),
            Some(422),
        ] {
            assert!(!breaker_failure(s), "{s:?}");
            assert!(!retryable(s), "{s:?}");
        }
        assert!(!retryable(Some(501)));
        assert!(may_repeat("get", false));
        assert!(may_repeat("PUT", false));
        assert!(!may_repeat("POST", false));
        assert!(!may_repeat("PATCH", false));
        assert!(may_repeat("POST", true));
    }

    #[test]
    fn headers_crossing_the_proxy() {
        let listed = connection_listed(&["keep-alive, X-Secret-Hop"]);
        for h in [
            "Connection",
            "Transfer-Encoding",
            "Content-Length",
            "Authorization",
            "X-Tenant-ID",
            "Host",
            "Cookie",
            "X-Hub-Priority",
            "X-Forwarded-For",
            "x-secret-hop",
            "Accept-Encoding",
        ] {
            assert!(!forward_request_header(h, &listed), "{h}");
        }
        for h in [
            "Content-Type",
            "Accept",
            "If-Modified-Since",
            "Idempotency-Key",
        ] {
            assert!(forward_request_header(h, &listed), "{h}");
        }
        assert!(!forward_response_header("Set-Cookie", &[]));
        assert!(!forward_response_header("transfer-encoding", &[]));
        assert!(forward_response_header("Retry-After", &[]));
        assert!(forward_response_header(
            "X-HubSpot-RateLimit-Remaining",
            &[]
        ));
    }
}
