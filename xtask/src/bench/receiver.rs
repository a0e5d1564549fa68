//! The webhook receiver the dispatcher delivers to: answers 200 to every POST
//! and records what arrived, when.
//!
//! It runs on its own thread with one actix worker, apart from the load
//! generator's runtime, so a busy generator does not delay arrival stamps.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// How many scenarios can run in one process (each has its own URL path).
pub const MAX_SCENARIOS: usize = 6;
/// One request in how many has its signature checked (HMAC costs CPU the
/// dispatcher would otherwise get).
const VERIFY_ONE_IN: u64 = 100;
/// Timestamp tolerance for the sampled verification.
const TOLERANCE_SECS: i64 = 300;

/// One delivery as the receiver saw it.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// The subscription's index within its scenario.
    pub sub: u8,
    /// The `webhook-id` header as a UUID (0 when absent or not a UUID).
    pub webhook_id: u128,
    /// The first `"id":"…"` of the body: the envelope's event id when the
    /// payload is the envelope (0 when absent).
    pub body_id: u128,
    pub at: Instant,
}

/// What the receiver records, shared with the bench.
#[derive(Default)]
pub struct Recorded {
    arrivals: [Mutex<Vec<Arrival>>; MAX_SCENARIOS],
    counts: [AtomicU64; MAX_SCENARIOS],
    /// Requests without `webhook-signature` (or `webhook-timestamp`).
    pub unsigned: AtomicU64,
    /// Sampled requests whose signature was checked, and those that failed.
    pub verified: AtomicU64,
    pub bad_signature: AtomicU64,
    /// Requests to a path that is not `/hook/<scenario>/<sub>`.
    pub stray: AtomicU64,
    seq: AtomicU64,
    secrets: RwLock<HashMap<(u8, u8), WebhookSecret>>,
    /// While set, every POST hangs unanswered until it is cleared, then gets
    /// a 503 and is not recorded (`cargo xtask chaos`: a receiver that
    /// accepts connections and stops answering).
    blackhole: AtomicBool,
}

impl Recorded {
    /// Deliveries received so far for `scenario` (duplicates included).
    pub fn count(&self, scenario: usize) -> u64 {
        self.counts[scenario].load(Ordering::Relaxed)
    }

    /// A copy of the scenario's arrivals so far.
    pub fn arrivals(&self, scenario: usize) -> Vec<Arrival> {
        self.arrivals[scenario]
            .lock()
            .expect("arrivals lock")
            .clone()
    }

    /// The scenario's arrivals from the `from`-th on (to follow them as they come).
    pub fn arrivals_since(&self, scenario: usize, from: usize) -> Vec<Arrival> {
        let arrivals = self.arrivals[scenario].lock().expect("arrivals lock");
        arrivals.get(from..).unwrap_or_default().to_vec()
    }

    /// Starts or ends the blackhole: while on, requests hang unanswered.
    pub fn set_blackhole(&self, on: bool) {
        self.blackhole.store(on, Ordering::SeqCst);
    }

    /// Registers a subscription's signing secret, for the sampled checks.
    pub fn add_secret(&self, scenario: usize, sub: usize, secret: WebhookSecret) {
        self.secrets
            .write()
            .expect("secrets lock")
            .insert((scenario as u8, sub as u8), secret);
    }

    fn record(&self, scenario: usize, req: &HttpRequest, sub: u8, body: &[u8]) {
        let at = Instant::now();
        let headers = req.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let webhook_id = header("webhook-id").map_or(0, parse_uuid);
        let body_id = body_event_id(body);
        self.arrivals[scenario]
            .lock()
            .expect("arrivals lock")
            .push(Arrival {
                sub,
                webhook_id,
                body_id,
                at,
            });
        self.counts[scenario].fetch_add(1, Ordering::Relaxed);

        let (Some(signature), Some(timestamp)) =
            (header("webhook-signature"), header("webhook-timestamp"))
        else {
            self.unsigned.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if !self
            .seq
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(VERIFY_ONE_IN)
        {
            return;
        }
        let secrets = self.secrets.read().expect("secrets lock");
        let Some(secret) = secrets.get(&(scenario as u8, sub)) else {
            return;
        };
        let msg_id = header("webhook-id").unwrap_or_default();
        self.verified.fetch_add(1, Ordering::Relaxed);
        if !verify(
            secret,
            msg_id,
            timestamp,
            body,
            signature,
            unix_now(),
            TOLERANCE_SECS,
        ) {
            self.bad_signature.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The running receiver.
pub struct Receiver {
    pub port: u16,
    pub recorded: Arc<Recorded>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Starts listening on `127.0.0.1:<free port>`.
    pub fn start() -> Result<Self> {
        let recorded = Arc::new(Recorded::default());
        let state = web::Data::from(recorded.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("bench-receiver".into())
            .spawn(move || {
                let sys = actix_web::rt::System::new();
                let started = sys.block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(state.clone())
                            .app_data(web::PayloadConfig::new(1024 * 1024))
                            .route("/hook/{scenario}/{sub}", web::post().to(hook))
                            .default_service(web::to(stray))
                    })
                    .workers(1)
                    // As receivers' servers (Go's net/http, nginx) do by default.
                    .tcp_nodelay(true)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .backlog(1024)
                    .bind(("127.0.0.1", 0))?;
                    let port = server.addrs().first().map(|a| a.port()).unwrap_or(0);
                    let server = server.run();
                    Ok::<_, std::io::Error>((port, server))
                });
                match started {
                    Ok((port, server)) => {
                        let _ = tx.send(Ok((port, server.handle())));
                        let _ = sys.block_on(server);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })
            .context("could not start the receiver thread")?;
        let (port, handle) = rx
            .recv()
            .context("the receiver thread ended early")?
            .context("the receiver could not listen on 127.0.0.1")?;
        Ok(Self {
            port,
            recorded,
            handle,
        })
    }

    /// The URL a subscription of `scenario` (its `sub`-th) delivers to.
    pub fn url(&self, scenario: usize, sub: usize) -> String {
        format!("http://127.0.0.1:{}/hook/{scenario}/{sub}", self.port)
    }

    /// Stops accepting and lets in-flight requests finish.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

async fn hook(
    req: HttpRequest,
    path: web::Path<(usize, u8)>,
    body: web::Bytes,
    recorded: web::Data<Recorded>,
) -> HttpResponse {
    let (scenario, sub) = path.into_inner();
    if recorded.blackhole.load(Ordering::SeqCst) {
        // Hang like a receiver that stopped answering; the sender's timeout
        // usually ends the request first.
        while recorded.blackhole.load(Ordering::SeqCst) {
            actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        return HttpResponse::ServiceUnavailable().finish();
    }
    if scenario < MAX_SCENARIOS {
        recorded.record(scenario, &req, sub, &body);
    } else {
        recorded.stray.fetch_add(1, Ordering::Relaxed);
    }
    HttpResponse::Ok().finish()
}

async fn stray(recorded: web::Data<Recorded>) -> HttpResponse {
    recorded.stray.fetch_add(1, Ordering::Relaxed);
    HttpResponse::Ok().finish()
}

/// A subscription's Standard Webhooks signing key (`whsec_` + base64).
///
/// xtask may not depend on hub-domain (ARCHITECTURE.md), and a verifier
/// written apart from the signer's code is a check of it anyway.
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// Parses `whsec_<base64 key>`.
    pub fn parse(s: &str) -> Result<Self> {
        let Some(key) = s.strip_prefix("whsec_") else {
            bail!("no whsec_ prefix");
        };
        match STANDARD.decode(key) {
            Ok(key) if !key.is_empty() => Ok(Self(key)),
            _ => bail!("not base64 after whsec_"),
        }
    }
}

/// Whether any `v1,<base64>` entry of the `webhook-signature` header is the
/// HMAC-SHA256 of `{id}.{timestamp}.{body}`, and the timestamp is within
/// `tolerance_secs` of `now_unix`.
pub fn verify(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
    now_unix: i64,
    tolerance_secs: i64,
) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    if now_unix.abs_diff(ts) > tolerance_secs.unsigned_abs() {
        return false;
    }
    header
        .split_ascii_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|sig| STANDARD.decode(sig).ok())
        .any(|sig| {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes any key length");
            mac.update(msg_id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(body);
            mac.verify_slice(&sig).is_ok()
        })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn parse_uuid(s: &str) -> u128 {
    uuid::Uuid::try_parse(s).map_or(0, |u| u.as_u128())
}

/// The value of the first `"id":"…"` in a JSON body, as a UUID: the event id
/// when the payload is the CloudEvents envelope (serialized `specversion`,
/// then `id`). A byte scan, so the receiver does not parse every body.
pub fn body_event_id(body: &[u8]) -> u128 {
    const KEY: &[u8] = b"\"id\":\"";
    let Some(start) = body
        .windows(KEY.len())
        .position(|w| w == KEY)
        .map(|p| p + KEY.len())
    else {
        return 0;
    };
    body.get(start..start + 36)
        .and_then(|raw| uuid::Uuid::try_parse_ascii(raw).ok())
        .map_or(0, |u| u.as_u128())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_the_published_standard_webhooks_vector() {
        // From the Standard Webhooks reference suite (also in shared/vectors/signatures.json).
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let (id, ts, body) = (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            br#"{"test": 2432232314}"#,
        );
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let now = 1_614_265_330;
        assert!(verify(&secret, id, ts, body, good, now, 300));
        assert!(verify(
            &secret,
            id,
            ts,
            body,
            &format!("v1,bm9wZQ== {good}"),
            now,
            300
        ));
        assert!(!verify(&secret, id, ts, body, good, now + 301, 300));
        assert!(!verify(&secret, id, ts, b"{}", good, now, 300));
        assert!(!verify(&secret, "msg_other", ts, body, good, now, 300));
        assert!(!verify(
            &secret,
            id,
            ts,
            body,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
            now,
            300
        ));
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(WebhookSecret::parse("whsec_!!").is_err());
    }

    #[test]
    fn finds_the_envelope_id_not_a_nested_one() {
        let id = uuid::Uuid::now_v7();
        let body = format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"bench","data":{{"order_id":"x"}}}}"#
        );
        assert_eq!(body_event_id(body.as_bytes()), id.as_u128());
        assert_eq!(body_event_id(br#"{"order_id":"x"}"#), 0);
        assert_eq!(body_event_id(br#"{"id":"short"}"#), 0);
        assert_eq!(body_event_id(b""), 0);
    }
}
