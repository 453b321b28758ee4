//! WAN gossip addresses. Operators write `host:port` (a DNS name behind an
//! ingress, or an IP); chitchat identifies peers by `SocketAddr`. An IP
//! literal maps to itself. A DNS name maps to a stable synthetic address in
//! the IPv6 unique-local range (`fd` followed by 120 bits of an FNV-1a hash
//! of the lower-cased name, same port), computed identically on every node
//! and never dialed: the carrier dials the name. So two WAN members behind
//! one ingress (`q0.eu1.example.com:443`, `q1.eu1.example.com:443`, same IP)
//! stay two peers, and an ingress changing its IP changes nothing in gossip.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

const MAX_HOST: usize = 253;

/// Why a WAN address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid WAN gossip address {addr:?}: {reason}")]
pub struct WanAddrError {
    pub addr: String,
    pub reason: &'static str,
}

/// A parsed `host:port` WAN gossip address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WanAddr {
    /// Lower-cased DNS name, or the IP literal (without brackets).
    host: String,
    port: u16,
    ip: Option<IpAddr>,
}

impl WanAddr {
    /// Parses `host:port` (`[v6]:port` for IPv6 literals).
    pub fn parse(s: &str) -> Result<WanAddr, WanAddrError> {
        let bad = |reason| WanAddrError {
            addr: s.chars().take(300).collect(),
            reason,
        };
        if s.len() > MAX_HOST + 8 {
            return Err(bad("too long"));
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("no :port"))?;
        let port: u16 = port.parse().map_err(|_| bad("port is not a number"))?;
        if port == 0 {
            return Err(bad("port 0"));
        }
        let inner = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        let bracketed = inner.is_some();
        let bare = inner.unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            if ip.is_unspecified() {
                return Err(bad("unspecified IP"));
            }
            if ip.is_ipv6() && !bracketed {
                return Err(bad("IPv6 literals need brackets"));
            }
            return Ok(WanAddr {
                host: ip.to_string(),
                port,
                ip: Some(ip),
            });
        }
        if bracketed || bare.is_empty() || bare.len() > MAX_HOST {
            return Err(bad("host is not a DNS name or IP"));
        }
        let valid = bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid || bare.starts_with('.') || bare.starts_with('-') || bare.contains("..") {
            return Err(bad("host is not a DNS name or IP"));
        }
        Ok(WanAddr {
            host: bare.to_ascii_lowercase(),
            port,
            ip: None,
        })
    }

    /// The host: a lower-cased DNS name or an IP literal (no brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// True when the host is a DNS name (its gossip address is synthetic).
    pub fn is_name(&self) -> bool {
        self.ip.is_none()
    }

    /// The address chitchat knows this peer by.
    pub fn socket_addr(&self) -> SocketAddr {
        match self.ip {
            Some(ip) => SocketAddr::new(ip, self.port),
            None => SocketAddr::new(IpAddr::V6(synthetic_ip(&self.host)), self.port),
        }
    }

    /// The URI authority to dial (`host:port`, IPv6 in brackets).
    pub fn authority(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for WanAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// True for addresses [`WanAddr::socket_addr`] makes up for DNS names.
pub fn is_synthetic(addr: &SocketAddr) -> bool {
    matches!(addr.ip(), IpAddr::V6(ip) if ip.octets()[0] == 0xfd)
}

/// `fd` + the low 120 bits of FNV-1a-128 of the name.
fn synthetic_ip(name: &str) -> Ipv6Addr {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    let mut h = OFFSET;
    for b in name.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(PRIME);
    }
    let mut octets = h.to_be_bytes();
    octets[0] = 0xfd;
    Ipv6Addr::from(octets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_map_to_themselves() {
        let a = WanAddr::parse("127.0.0.5:10901").unwrap();
        assert_eq!(a.socket_addr(), "127.0.0.5:10901".parse().unwrap());
        assert!(!a.is_name());
        assert_eq!(a.to_string(), "127.0.0.5:10901");
        let v6 = WanAddr::parse("[::1]:443").unwrap();
        assert_eq!(v6.socket_addr(), "[::1]:443".parse().unwrap());
        assert_eq!(v6.to_string(), "[::1]:443");
        assert_eq!(v6.host(), "::1");
    }

    #[test]
    fn names_map_to_stable_distinct_synthetic_addresses() {
        let a = WanAddr::parse("Q0.eu1.example.com:443").unwrap();
        let b = WanAddr::parse("q0.eu1.example.com:443").unwrap();
        let c = WanAddr::parse("q1.eu1.example.com:443").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.socket_addr(), b.socket_addr());
        assert_ne!(a.socket_addr(), c.socket_addr());
        assert!(is_synthetic(&a.socket_addr()));
        assert_eq!(a.socket_addr().port(), 443);
        assert_eq!(a.host(), "q0.eu1.example.com");
        // Pinned: every node and every build must compute the same value
        // (FNV-1a-128, checked against an independent implementation).
        assert_eq!(
            WanAddr::parse("Observer.Example.com:443")
                .unwrap()
                .socket_addr(),
            "[fd8e:acc0:d8f6:f136:b4cb:ee08:44bc:6a7c]:443"
                .parse()
                .unwrap()
        );
        assert!(!is_synthetic(&"127.0.0.1:1".parse().unwrap()));
    }

    #[test]
    fn bad_addresses_are_refused() {
        for s in [
            "",
            "host",
            "host:",
            "host:0",
            "host:70000",
            ":443",
            "0.0.0.0:443",
            "::1:443",
            "[nope]:443",
            "bad host:443",
            "a..b:443",
            "-a:443",
            "[]:1",
        ] {
            assert!(WanAddr::parse(s).is_err(), "{s:?} accepted");
        }
        assert!(WanAddr::parse(&format!("{}:1", "a".repeat(300))).is_err());
    }
}
