//! Sending webhook attempts against a real socket.

use hub_connectors::client::TargetPolicy;
use hub_connectors::webhook::{Outbound, OutboundAuth, Sender};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A receiver that answers the first request on each connection and keeps
/// it open, then closes it when the next request arrives on it, without an
/// answer: what a server does when its keep-alive timeout fires just as a
/// kept-alive connection is reused. Counts the requests it answered.
async fn closes_reused_connections() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                // Read the first request (headers and its small body).
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await;
                count.fetch_add(1, Ordering::SeqCst);
                // The next request on this connection: close, no answer.
                let _ = s.read(&mut buf).await;
            });
        }
    });
    (url, answered)
}

fn outbound(url: &str, n: u32) -> Outbound {
    Outbound {
        url: url.to_owned(),
        content_type: "application/json".into(),
        headers: Vec::new(),
        auth: OutboundAuth::None,
        secrets: Vec::new(),
        msg_id: format!("msg_{n}"),
        timestamp: 1_700_000_000,
        body: format!(r#"{{"n":{n}}}"#).into_bytes(),
        token_key: "sub".into(),
    }
}

#[tokio::test]
async fn a_kept_alive_connection_the_receiver_closed_is_not_a_failed_attempt() {
    let (url, answered) = closes_reused_connections().await;
    let sender = Sender::new(TargetPolicy::AllowPrivate, Duration::from_secs(5), 10);
    for n in 0..5 {
        let r = sender.send(&outbound(&url, n)).await;
        assert!(r.success, "attempt {n} failed: {:?}", r.error);
        assert_eq!(r.status, Some(200));
    }
    assert_eq!(answered.load(Ordering::SeqCst), 5);
}
