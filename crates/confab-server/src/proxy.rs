//! The client's address behind reverse proxies. `X-Forwarded-For` and `Forwarded` are believed
//! only from a trusted peer (`TRUST_PROXY`, `--trusted-proxies CIDR,…`); then the chain is read
//! from the right, past every trusted hop, and the first untrusted address is the client. Rate
//! limits and per-IP connection limits key on that address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// `true`/`yes`/`1`: loopback and private addresses (a proxy on the same host or network);
    /// `false`/`no`/`0`/empty: none; otherwise a comma-separated list of CIDRs or addresses.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        match spec.to_ascii_lowercase().as_str() {
            "" | "false" | "no" | "0" => return Ok(Self::default()),
            "true" | "yes" | "1" => {
                return Self::parse(
                    "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,169.254.0.0/16,fc00::/7,fe80::/10",
                );
            }
            _ => {}
        }
        spec.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("trusted proxies: {s:?} is not an address or a CIDR"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` with these headers.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let chain = forwarded_chain(headers);
        let mut client = peer;
        for hop in chain.iter().rev() {
            match hop {
                // An address the proxy could not name ("unknown", obfuscated): stop at the proxy.
                None => return client,
                Some(ip) => {
                    client = canonical(*ip);
                    if !self.trusts(client) {
                        return client;
                    }
                }
            }
        }
        client
    }

    /// The client address of a request or socket handshake (`0.0.0.0` when the peer is unknown,
    /// as in in-process tests).
    pub fn client_of(&self, ext: &Extensions, headers: &HeaderMap) -> IpAddr {
        let peer = ext
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        self.client_ip(peer, headers)
    }
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The hops a request passed, oldest first: `Forwarded`'s `for=` when present (RFC 7239), else
/// `X-Forwarded-For`. `None` for a hop whose address is not an IP.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| node_ip(v.trim().trim_matches('"')))
            })
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .map(|s| node_ip(s))
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:443`, `2001:db8::1`.
fn node_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest
            .split(']')
            .next()?
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6);
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_taken_at_their_word_never() {
        let none = TrustedProxies::default();
        let h = headers(&[("x-forwarded-for", "9.9.9.9")]);
        assert_eq!(none.client_ip(ip("1.2.3.4"), &h), ip("1.2.3.4"));
        let local = TrustedProxies::parse("127.0.0.1").unwrap();
        assert_eq!(local.client_ip(ip("1.2.3.4"), &h), ip("1.2.3.4"));
    }

    #[test]
    fn the_chain_is_read_from_the_right() {
        let t = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        // A client-supplied first entry cannot hide the real client behind trusted hops.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 5.5.5.5, 10.1.1.1")]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("5.5.5.5"));
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("6.6.6.6"));
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        let h = headers(&[("x-forwarded-for", "garbage, 10.0.0.3")]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("10.0.0.3"));
        let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
        let h = headers(&[("x-forwarded-for", "8.8.8.8")]);
        assert_eq!(t.client_ip(mapped, &h), ip("8.8.8.8"));
    }

    #[test]
    fn forwarded_header() {
        let t = TrustedProxies::parse("true").unwrap();
        let h = headers(&[(
            "forwarded",
            r#"for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711""#,
        )]);
        assert_eq!(t.client_ip(ip("::1"), &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=unknown"), ("x-forwarded-for", "7.7.7.7")]);
        assert_eq!(t.client_ip(ip("192.168.1.1"), &h), ip("192.168.1.1"));
    }

    #[test]
    fn specs() {
        assert!(TrustedProxies::parse("false").unwrap().is_empty());
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
        assert_eq!(TrustedProxies::parse("::1").unwrap().0.len(), 1);
    }
}
