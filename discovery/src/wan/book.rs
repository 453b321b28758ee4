//! The WAN address book: for every gossip address chitchat may send to, the
//! `host:port` to dial and the TLS server name the peer's certificate must
//! carry. Seeds give `host -> host` (the seed's own name), a datagram's
//! sender gives its address with the host as default name, and a WAN
//! member's announcement gives its external address and announced server
//! name, which win over the others.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::address::WanAddr;

/// Where an entry came from; a better source replaces a worse one's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteSource {
    /// The `from` of a datagram received.
    Sender,
    /// A configured WAN seed.
    Seed,
    /// The peer's own WAN announcement.
    Announcement,
}

/// How to reach one gossip address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub addr: WanAddr,
    /// Name checked in the peer's certificate (and sent as SNI).
    pub server_name: String,
    pub source: RouteSource,
}

struct Entry {
    route: Route,
    last_used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<SocketAddr, Entry>,
    clock: u64,
}

/// Bounded map from gossip address to [`Route`]. When full, the least
/// recently used entry learned from a datagram goes first (then any).
pub struct AddressBook {
    inner: Mutex<Inner>,
    max_entries: usize,
}

impl AddressBook {
    pub fn new(max_entries: usize) -> AddressBook {
        AddressBook {
            inner: Mutex::new(Inner::default()),
            max_entries: max_entries.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `addr` (name defaults to its host) and returns the gossip
    /// address chitchat knows it by. A worse source does not replace the
    /// server name a better one gave.
    pub fn learn(
        &self,
        addr: &WanAddr,
        server_name: Option<&str>,
        source: RouteSource,
    ) -> SocketAddr {
        let key = addr.socket_addr();
        let route = Route {
            addr: addr.clone(),
            server_name: server_name.unwrap_or(addr.host()).to_string(),
            source,
        };
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        match inner.entries.get_mut(&key) {
            Some(e) => {
                e.last_used = now;
                if source >= e.route.source {
                    e.route = route;
                }
            }
            None => {
                if inner.entries.len() >= self.max_entries {
                    evict(&mut inner);
                }
                inner.entries.insert(
                    key,
                    Entry {
                        route,
                        last_used: now,
                    },
                );
            }
        }
        key
    }

    /// The route to a gossip address, if known.
    pub fn route(&self, to: SocketAddr) -> Option<Route> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let e = inner.entries.get_mut(&to)?;
        e.last_used = now;
        Some(e.route.clone())
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn evict(inner: &mut Inner) {
    let victim = inner
        .entries
        .iter()
        .min_by_key(|(_, e)| (e.route.source != RouteSource::Sender, e.last_used))
        .map(|(k, _)| *k);
    if let Some(k) = victim {
        inner.entries.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> WanAddr {
        WanAddr::parse(s).unwrap()
    }

    #[test]
    fn better_sources_win_names() {
        let book = AddressBook::new(8);
        let a = addr("q0.eu1.example.com:443");
        let key = book.learn(&a, None, RouteSource::Seed);
        assert_eq!(book.route(key).unwrap().server_name, "q0.eu1.example.com");
        book.learn(&a, Some("node-0.eu1"), RouteSource::Announcement);
        // A datagram from the same address does not undo the announcement.
        book.learn(&a, None, RouteSource::Sender);
        let r = book.route(key).unwrap();
        assert_eq!(r.server_name, "node-0.eu1");
        assert_eq!(r.source, RouteSource::Announcement);
        assert_eq!(r.addr, a);
        assert!(book.route("127.0.0.9:1".parse().unwrap()).is_none());
    }

    #[test]
    fn bounded_and_senders_evicted_first() {
        let book = AddressBook::new(2);
        let seed = book.learn(&addr("10.0.0.1:1"), None, RouteSource::Seed);
        let s1 = book.learn(&addr("10.0.0.2:1"), None, RouteSource::Sender);
        book.route(s1);
        let s2 = book.learn(&addr("10.0.0.3:1"), None, RouteSource::Sender);
        assert_eq!(book.len(), 2);
        assert!(book.route(seed).is_some());
        assert!(book.route(s1).is_none());
        assert!(book.route(s2).is_some());
    }
}
