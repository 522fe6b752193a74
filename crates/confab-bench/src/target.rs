//! The server under load: a loopback `http://host:port` unless `--allow-remote`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};

use anyhow::{Context as _, bail};

#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub host: String,
    pub addr: SocketAddr,
}

impl Target {
    /// Parses `http://host:port[/]` (or `host:port`). Non-loopback addresses are refused unless
    /// `allow_remote`.
    pub fn parse(url: &str, allow_remote: bool) -> anyhow::Result<Target> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("ws://"))
            .unwrap_or(url);
        if url.starts_with("https://") || url.starts_with("wss://") {
            bail!("TLS targets are not supported: {url}");
        }
        let hostport = rest.split('/').next().unwrap_or(rest);
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h.to_owned(), p.parse::<u16>().context("port")?)
            }
            _ => (hostport.to_owned(), 80),
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addr = (bare, port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {bare}"))?
            .next()
            .with_context(|| format!("{bare} has no address"))?;
        if !allow_remote && !is_loopback(addr.ip()) {
            bail!(
                "refusing non-loopback target {host} ({}): pass --allow-remote to load another machine",
                addr.ip()
            );
        }
        Ok(Target {
            url: format!("http://{hostport}"),
            host,
            addr,
        })
    }

    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.addr.port())
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only() {
        let t = Target::parse("http://127.0.0.1:3000", false).unwrap();
        assert_eq!(t.addr.port(), 3000);
        assert!(Target::parse("localhost:9", false).is_ok());
        assert!(Target::parse("http://[::1]:9/", false).is_ok());
        assert!(Target::parse("http://10.1.2.3:3000", false).is_err());
        assert!(Target::parse("http://10.1.2.3:3000", true).is_ok());
    }
}
