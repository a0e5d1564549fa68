//! A webhook receiver for tests: a real HTTP server on 127.0.0.1 that
//! records every request and answers as scripted (status codes, delays,
//! `Retry-After`, redirects, huge bodies). `/token` is an OAuth2
//! client-credentials endpoint.

use actix_web::{HttpRequest, HttpResponse, web};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to answer one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status, empty body.
    Status(u16),
    /// This status with a `Retry-After` of so many seconds.
    RetryAfter(u16, u64),
    /// Wait, then this status.
    Slow(Duration, u16),
    /// 200 with a body of this many bytes.
    Big(usize),
    /// 302 to this URL.
    Redirect(String),
}

/// A request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path.
    pub path: String,
    /// Headers, names lowercase.
    pub headers: HashMap<String, String>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

struct State {
    default: Reply,
    script: VecDeque<Reply>,
    requests: Vec<Received>,
    tokens_issued: usize,
}

/// The running receiver (stops on drop).
pub struct Receiver {
    base: String,
    state: Arc<Mutex<State>>,
    handle: actix_web::dev::ServerHandle,
}

async fn handle(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    if req.path() == "/token" {
        let mut s = state.lock().expect("receiver state");
        s.tokens_issued += 1;
        let ok = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Basic "));
        return if ok {
            HttpResponse::Ok().json(serde_json::json!({
                "access_token": format!("token-{}", s.tokens_issued),
                "token_type": "Bearer",
                "expires_in": 3600
            }))
        } else {
            HttpResponse::Unauthorized().json(serde_json::json!({"error": "invalid_client"}))
        };
    }
    let reply = {
        let mut s = state.lock().expect("receiver state");
        s.requests.push(Received {
            path: req.path().to_owned(),
            headers: crate::headers_of(&req),
            body: body.to_vec(),
            at: Instant::now(),
        });
        let d = s.default.clone();
        s.script.pop_front().unwrap_or(d)
    };
    let status = |c: u16| actix_web::http::StatusCode::from_u16(c).expect("valid status");
    match reply {
        Reply::Status(c) => HttpResponse::build(status(c)).body(format!("status {c}")),
        Reply::RetryAfter(c, secs) => HttpResponse::build(status(c))
            .insert_header(("Retry-After", secs.to_string()))
            .body("slow down"),
        Reply::Slow(wait, c) => {
            tokio::time::sleep(wait).await;
            HttpResponse::build(status(c)).finish()
        }
        Reply::Big(n) => HttpResponse::Ok().body(vec![b'x'; n]),
        Reply::Redirect(to) => HttpResponse::Found()
            .insert_header(("Location", to))
            .finish(),
    }
}

impl Receiver {
    /// Starts a receiver answering 200.
    pub async fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("receiver address").port();
        let state = Arc::new(Mutex::new(State {
            default: Reply::Status(200),
            script: VecDeque::new(),
            requests: Vec::new(),
            tokens_issued: 0,
        }));
        let handle =
            crate::serve(listener, state.clone(), 16 * 1024 * 1024, handle).expect("listen");
        Self {
            base: format!("http://127.0.0.1:{port}"),
            state,
            handle,
        }
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Answers every unscripted request with `r` from now on.
    pub fn set_default(&self, r: Reply) {
        self.state.lock().expect("receiver state").default = r;
    }

    /// Answers the next requests with `replies`, in order, then the default.
    pub fn script(&self, replies: Vec<Reply>) {
        self.state
            .lock()
            .expect("receiver state")
            .script
            .extend(replies);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.state.lock().expect("receiver state").requests.clone()
    }

    /// OAuth tokens issued by `/token`.
    pub fn tokens_issued(&self) -> usize {
        self.state.lock().expect("receiver state").tokens_issued
    }

    /// Waits until at least `n` requests arrived (at most `secs`).
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        crate::eventually(secs, &format!("receiver got {n} request(s)"), || async {
            let r = self.requests();
            (r.len() >= n).then_some(r)
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let h = self.handle.clone();
        tokio::spawn(async move { h.stop(false).await });
    }
}
