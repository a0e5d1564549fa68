//! Source addresses of inbound webhooks: CIDR allowlists (IPv4 and IPv6) and
//! the client address behind trusted proxies.

use ipnet::IpNet;
use std::net::IpAddr;

/// A list of networks; a bare address is a /32 or /128.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cidrs(Vec<IpNet>);

impl Cidrs {
    /// Parses entries such as `203.0.113.0/24`, `2001:db8::/32`, `198.51.100.7`.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        items
            .iter()
            .map(|s| {
                let s = s.as_ref().trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| format!("{s:?} is not an IP address or CIDR"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Parses a comma-separated list (configuration).
    pub fn parse_csv(raw: &str) -> Result<Self, String> {
        let items: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        Self::parse(&items)
    }

    /// Whether no network is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is in one of the networks (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The networks, as text.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy; then
/// `X-Forwarded-For` is read from the right, skipping trusted proxies, and
/// the first untrusted hop is the client. A malformed hop stops the walk at
/// the last address known good.
///
/// `forwarded_for` holds every `X-Forwarded-For` line of the request, in the
/// order received. They are one list, as if comma-joined (RFC 9110 § 5.3,
/// RFC 7230 § 3.2.2 before it): a proxy may append its own line after one
/// the client sent, so reading only the first line would let the client
/// name its own address.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &Cidrs) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(client) {
        return client;
    }
    let hops = forwarded_for.iter().rev().flat_map(|line| line.rsplit(','));
    for hop in hops {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !trusted.contains(client) {
                    return client;
                }
            }
            Err(_) => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_v4_v6_and_bare_addresses() {
        let c = Cidrs::parse(&["203.0.113.0/24", "2001:db8::/32", "198.51.100.7"]).unwrap();
        assert!(c.contains(ip("203.0.113.200")));
        assert!(!c.contains(ip("203.0.114.1")));
        assert!(c.contains(ip("2001:db8:1::5")));
        assert!(!c.contains(ip("2001:db9::1")));
        assert!(c.contains(ip("198.51.100.7")));
        assert!(!c.contains(ip("198.51.100.8")));
        assert!(c.contains(ip("::ffff:203.0.113.9")), "IPv4-mapped");
        assert!(Cidrs::parse(&["300.1.1.1"]).is_err());
        assert!(Cidrs::parse(&["10.0.0.0/33"]).is_err());
        assert!(Cidrs::parse_csv("").unwrap().is_empty());
    }

    #[test]
    fn forwarded_for_is_trusted_only_from_trusted_proxies() {
        let trusted = Cidrs::parse(&["127.0.0.1/32", "10.0.0.0/8"]).unwrap();
        let xff = &["198.51.100.1, 203.0.113.5, 10.1.1.1"][..];
        assert_eq!(client_ip(ip("127.0.0.1"), xff, &trusted), ip("203.0.113.5"));
        assert_eq!(
            client_ip(ip("192.0.2.1"), xff, &trusted),
            ip("192.0.2.1"),
            "untrusted peer"
        );
        assert_eq!(client_ip(ip("127.0.0.1"), &[], &trusted), ip("127.0.0.1"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), &["junk"], &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &["2001:db8::1"], &trusted),
            ip("2001:db8::1")
        );
        let nobody = Cidrs::default();
        assert_eq!(client_ip(ip("127.0.0.1"), xff, &nobody), ip("127.0.0.1"));
    }

    #[test]
    fn every_forwarded_for_line_is_read_as_one_list_in_order() {
        let trusted = Cidrs::parse(&["127.0.0.1/32", "10.0.0.0/8"]).unwrap();
        let peer = ip("127.0.0.1");
        // The client sent a line naming an allowed address; the proxy
        // appended the address it saw on a line of its own.
        assert_eq!(
            client_ip(peer, &["203.0.113.9", "198.51.100.20"], &trusted),
            ip("198.51.100.20"),
            "the proxy's line, not the client's, decides"
        );
        // The same hops on one line or on several: the same client.
        for lines in [
            &["198.51.100.1, 203.0.113.5, 10.1.1.1"][..],
            &["198.51.100.1", "203.0.113.5", "10.1.1.1"],
            &["198.51.100.1, 203.0.113.5", "10.1.1.1"],
            &["198.51.100.1", "203.0.113.5, 10.1.1.1"],
        ] {
            assert_eq!(
                client_ip(peer, lines, &trusted),
                ip("203.0.113.5"),
                "{lines:?}"
            );
        }
        // Trusted hops are skipped across lines.
        assert_eq!(
            client_ip(peer, &["203.0.113.5", "10.0.0.2", "10.0.0.1"], &trusted),
            ip("203.0.113.5")
        );
        // A malformed hop on a later line stops the walk there.
        assert_eq!(
            client_ip(peer, &["203.0.113.5", "junk, 10.0.0.1"], &trusted),
            ip("10.0.0.1")
        );
    }

    proptest! {
        #[test]
        fn a_network_contains_its_own_addresses(a in any::<u32>(), len in 0u8..=32, host in any::<u32>()) {
            let net = format!("{}/{len}", std::net::Ipv4Addr::from(a));
            let c = Cidrs::parse(&[net]).unwrap();
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let inside = std::net::Ipv4Addr::from((a & mask) | (host & !mask));
            prop_assert!(c.contains(IpAddr::V4(inside)));
        }
        #[test]
        fn client_ip_never_panics(lines in proptest::collection::vec("\\PC{0,60}", 0..4)) {
            let trusted = Cidrs::parse(&["127.0.0.1"]).unwrap();
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            let _ = client_ip(ip("127.0.0.1"), &lines, &trusted);
        }
    }
}
