//! Which address an upload is counted against: the connection's peer, unless the
//! peer is a trusted reverse proxy; then the right-most hop of its `Forwarded`
//! (else `X-Forwarded-For`) header that is not a trusted proxy. Anyone can write
//! those headers, so they are read only from the proxies the operator named.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The address to count a request against; `None` when the connection's peer is
/// unknown.
pub fn sender_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| {
        let ip = ip.to_canonical();
        trusted.iter().any(|net| net.contains(&ip))
    };
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut sender = peer;
    // Right to left: each trusted proxy vouches for the hop before it. A hop
    // that does not parse (`unknown`, an obfuscated name) ends the walk.
    for hop in forwarded_hops(headers).into_iter().rev() {
        let Some(ip) = hop else { break };
        sender = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(sender)
}

/// The hops a request passed, left (the original client) to right (the last
/// proxy): from `Forwarded` (RFC 7239) when present, else `X-Forwarded-For`.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_hop(value.trim().trim_matches('"')))
                })?
            })
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|hop| parse_hop(hop.trim()))
        .collect()
}

/// One hop: an address, with or without a port (`192.0.2.1:80`, `[2001:db8::1]:80`).
fn parse_hop(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    // `[2001:db8::1]` without a port.
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &str) -> Vec<IpNet> {
        crate::config::parse_trusted_proxies(list).unwrap()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(
            sender_address(Some(ip("198.51.100.1")), &h, &[]),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(
            sender_address(Some(ip("198.51.100.1")), &h, &nets("10.0.0.0/8")),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(sender_address(None, &h, &nets("10.0.0.0/8")), None);
    }

    /// Forwarding headers, name and value.
    type Hops = &'static [(&'static str, &'static str)];

    /// Asserts that each `(peer, headers, sender)` finds `sender` behind `trusted`.
    fn assert_senders(trusted: &[IpNet], cases: &[(&str, Hops, &str)]) {
        for (peer, h, sender) in cases {
            assert_eq!(
                sender_address(Some(ip(peer)), &headers(h), trusted),
                Some(ip(sender)),
                "{peer} {h:?}"
            );
        }
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_sender() {
        let trusted = nets("10.0.0.0/8, 127.0.0.1");
        let proxy = "127.0.0.1";
        assert_senders(
            &trusted,
            &[
                // The client wrote a fake first hop; the proxies appended the rest.
                (
                    proxy,
                    &[
                        ("x-forwarded-for", "1.1.1.1, 203.0.113.7"),
                        ("x-forwarded-for", "10.1.2.3"),
                    ],
                    "203.0.113.7",
                ),
                // Only proxies: the left-most hop.
                (
                    proxy,
                    &[("x-forwarded-for", "10.9.9.9, 10.1.2.3")],
                    "10.9.9.9",
                ),
                // No header: the proxy itself.
                (proxy, &[], proxy),
                // A hop that is no address ends the walk at the last one vouched for.
                (
                    proxy,
                    &[("x-forwarded-for", "203.0.113.7, unknown, 10.1.2.3")],
                    "10.1.2.3",
                ),
            ],
        );
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_its_forms_parse() {
        let trusted = nets("10.0.0.0/8, 2001:db8:ffff::/48");
        assert_senders(
            &trusted,
            &[
                (
                    "2001:db8:ffff::1",
                    &[
                        (
                            "forwarded",
                            "for=192.0.2.60;proto=http, For=\"[2001:db8:cafe::17]:4711\"",
                        ),
                        ("forwarded", "for=10.0.0.2:8080;by=10.0.0.3"),
                        ("x-forwarded-for", "198.51.100.99"),
                    ],
                    "2001:db8:cafe::17",
                ),
                (
                    "10.0.0.1",
                    &[("forwarded", "for=_hidden, for=10.0.0.2")],
                    "10.0.0.2",
                ),
            ],
        );
        assert_eq!(parse_hop("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("192.0.2.1:80"), Some(ip("192.0.2.1")));
        assert_eq!(parse_hop("example.org"), None);
    }

    #[test]
    fn an_ipv4_mapped_peer_matches_a_v4_proxy() {
        let h = headers(&[("x-forwarded-for", "203.0.113.7")]);
        let mapped = IpAddr::V6(
            "127.0.0.1"
                .parse::<std::net::Ipv4Addr>()
                .unwrap()
                .to_ipv6_mapped(),
        );
        assert_eq!(
            sender_address(Some(mapped), &h, &nets("127.0.0.1")),
            Some(ip("203.0.113.7"))
        );
    }
}
