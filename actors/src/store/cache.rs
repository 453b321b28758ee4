//! A bounded LRU cache of fixed-size pages of bucket objects, by bytes held. Index pages and
//! chunk pages live in separate caches so one cannot evict the other.

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// (file id, page number).
pub type PageKey = (u64, u64);

struct Inner {
    map: HashMap<PageKey, (Bytes, u64)>,
    /// Use tick → key; the smallest tick is the least recently used.
    order: BTreeMap<u64, PageKey>,
    tick: u64,
    bytes: u64,
}

/// Counters a cache reports into.
#[derive(Clone, Debug, Default)]
pub struct CacheMetrics {
    pub hits: Counter,
    pub misses: Counter,
    pub evictions: Counter,
    pub bytes: Gauge,
}

/// The page cache. Thread-safe.
pub struct PageCache {
    capacity: u64,
    inner: Mutex<Inner>,
    metrics: CacheMetrics,
}

impl std::fmt::Debug for PageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageCache")
            .field("capacity", &self.capacity)
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl PageCache {
    /// A cache holding at most `capacity` bytes of pages (0 disables caching).
    pub fn new(capacity: u64, metrics: CacheMetrics) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
                bytes: 0,
            }),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that
        // matters for a cache; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The page, marking it recently used.
    pub fn get(&self, key: PageKey) -> Option<Bytes> {
        let mut g = self.lock();
        g.tick += 1;
        let tick = g.tick;
        let found = match g.map.get_mut(&key) {
            Some((b, t)) => {
                let old = *t;
                *t = tick;
                Some((b.clone(), old))
            }
            None => None,
        };
        match found {
            Some((b, old)) => {
                g.order.remove(&old);
                g.order.insert(tick, key);
                self.metrics.hits.inc();
                Some(b)
            }
            None => {
                self.metrics.misses.inc();
                None
            }
        }
    }

    /// Whether the page is cached (no effect on recency or metrics).
    pub fn contains(&self, key: PageKey) -> bool {
        self.lock().map.contains_key(&key)
    }

    /// Stores a page, evicting least recently used pages beyond the capacity.
    pub fn insert(&self, key: PageKey, page: Bytes) {
        let size = page.len() as u64;
        if size > self.capacity {
            return;
        }
        let mut g = self.lock();
        g.tick += 1;
        let tick = g.tick;
        if let Some((old, t)) = g.map.insert(key, (page, tick)) {
            g.order.remove(&t);
            g.bytes -= old.len() as u64;
        }
        g.order.insert(tick, key);
        g.bytes += size;
        while g.bytes > self.capacity {
            let Some((_, k)) = g.order.pop_first() else {
                break;
            };
            if let Some((b, _)) = g.map.remove(&k) {
                g.bytes -= b.len() as u64;
                self.metrics.evictions.inc();
            }
        }
        self.metrics.bytes.set(g.bytes as i64);
    }

    /// Drops every page of `file`.
    pub fn remove_file(&self, file: u64) {
        let mut g = self.lock();
        let keys: Vec<(PageKey, u64)> = g
            .map
            .iter()
            .filter(|(k, _)| k.0 == file)
            .map(|(k, (_, t))| (*k, *t))
            .collect();
        for (k, t) in keys {
            if let Some((b, _)) = g.map.remove(&k) {
                g.bytes -= b.len() as u64;
            }
            g.order.remove(&t);
        }
        self.metrics.bytes.set(g.bytes as i64);
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_within_capacity() {
        let m = CacheMetrics::default();
        let c = PageCache::new(10, m.clone());
        c.insert((1, 0), Bytes::from_static(b"aaaa"));
        c.insert((1, 1), Bytes::from_static(b"bbbb"));
        assert!(c.get((1, 0)).is_some()); // (1,1) is now the oldest
        c.insert((2, 0), Bytes::from_static(b"cccc"));
        assert_eq!(c.bytes(), 8);
        assert!(c.get((1, 1)).is_none());
        assert!(c.get((1, 0)).is_some());
        assert!(c.get((2, 0)).is_some());
        c.insert((3, 0), Bytes::from_static(b"too large page"));
        assert!(c.get((3, 0)).is_none());
        c.remove_file(1);
        assert_eq!(c.bytes(), 4);
        assert!(c.get((1, 0)).is_none());
        assert_eq!(m.evictions.get(), 1);
        assert_eq!(m.hits.get(), 3);
        let zero = PageCache::new(0, CacheMetrics::default());
        zero.insert((1, 0), Bytes::from_static(b"x"));
        assert!(zero.get((1, 0)).is_none());
    }
}
