//! The established TCP connections this process holds, and whether each
//! disables Nagle's algorithm (`TCP_NODELAY`).
//!
//! Services started by a test run in the test's own process, so their
//! Postgres pool, RabbitMQ connection, accepted HTTP connections and HTTP
//! clients are all sockets of this process. A socket without `TCP_NODELAY`
//! holds the tail of a small write until the peer's delayed ACK (40 ms on
//! Linux): every request/response exchange over it can stall that long.

use nix::sys::socket::{getsockopt, sockopt};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// One established TCP connection of this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSocket {
    /// Our end's port.
    pub local_port: u16,
    /// The peer's port.
    pub remote_port: u16,
    /// Whether `TCP_NODELAY` is set.
    pub nodelay: bool,
}

/// Every established TCP connection (IPv4 and IPv6) this process holds now.
pub fn tcp_sockets() -> Vec<TcpSocket> {
    let mut by_inode = HashMap::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        by_inode.extend(established(&text));
    }
    let mut out = Vec::new();
    let dir = std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd is readable");
    for entry in dir.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Some(inode) = socket_inode(fd) else {
            continue;
        };
        let Some(&(local_port, remote_port)) = by_inode.get(&inode) else {
            continue;
        };
        // The connection may close between the listing and here: skip it then.
        let Some(owned) = duplicate(fd) else { continue };
        if socket_inode(owned.as_raw_fd()) != Some(inode) {
            continue;
        }
        if let Ok(nodelay) = getsockopt(&owned, sockopt::TcpNoDelay) {
            out.push(TcpSocket {
                local_port,
                remote_port,
                nodelay,
            });
        }
    }
    out
}

/// The port of a `scheme://host:port/…` URL (Postgres's and RabbitMQ's
/// default when it has none).
pub fn port_of(url: &str) -> u16 {
    let u = url::Url::parse(url).expect("a URL");
    u.port_or_known_default()
        .or(match u.scheme() {
            "postgres" | "postgresql" => Some(5432),
            "amqp" => Some(5672),
            _ => None,
        })
        .expect("a port")
}

/// Asserts that `which` selects some of `socks` and that each of them has
/// `TCP_NODELAY`; `what` names them in the failure.
pub fn assert_nodelay(socks: &[TcpSocket], what: &str, which: impl Fn(&TcpSocket) -> bool) {
    let picked: Vec<&TcpSocket> = socks.iter().filter(|s| which(s)).collect();
    assert!(!picked.is_empty(), "no {what} connection open: {socks:?}");
    let slow: Vec<_> = picked.iter().filter(|s| !s.nodelay).collect();
    assert!(
        slow.is_empty(),
        "{} of {} {what} connections without TCP_NODELAY: {slow:?}",
        slow.len(),
        picked.len()
    );
}

/// A descriptor of our own on whatever `fd` refers to now, so that what we
/// inspect stays open while we inspect it.
#[allow(unsafe_code)]
fn duplicate(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: `fd` was listed in /proc/self/fd just before; the borrow lives
    // only for the `dup` below, which fails cleanly (EBADF) if another
    // thread closed it meanwhile. The caller checks that the duplicate is
    // still the socket it listed.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    borrowed.try_clone_to_owned().ok()
}

/// The socket inode `fd` refers to (`socket:[12345]`), if it is a socket.
fn socket_inode(fd: RawFd) -> Option<u64> {
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    let target = target.to_str()?;
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Established connections of a `/proc/net/tcp` table: inode → (local port,
/// remote port).
fn established(table: &str) -> impl Iterator<Item = (u64, (u16, u16))> + '_ {
    table.lines().skip(1).filter_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        if f.len() < 10 || f[3] != "01" {
            return None;
        }
        let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
        Some((f[9].parse().ok()?, (port(f[1])?, port(f[2])?)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_established_rows_of_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   110        0 20523 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 77001 1 0000000000000000 20 4 30 10 -1
";
        let rows: Vec<_> = established(table).collect();
        assert_eq!(rows, vec![(77001, (0xC350, 5432))]);
    }

    #[tokio::test]
    async fn sees_this_process_connections_and_their_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.set_nodelay(true).unwrap();
        server.set_nodelay(false).unwrap();
        let socks = tcp_sockets();
        let of = |f: &dyn Fn(&TcpSocket) -> bool| -> Vec<bool> {
            socks.iter().filter(|s| f(s)).map(|s| s.nodelay).collect()
        };
        assert_eq!(of(&|s| s.remote_port == port), vec![true]);
        assert_eq!(of(&|s| s.local_port == port), vec![false]);
    }
}
