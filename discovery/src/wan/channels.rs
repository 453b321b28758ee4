//! gRPC channels to WAN peers: one lazily connecting channel per (address,
//! server name), at most `max` of them (least recently used dropped first),
//! all rebuilt when the TLS material is reloaded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use skein_tls::TlsReloader;
use tonic::transport::{Channel, Endpoint};

use super::book::Route;
use super::metrics::WanMetrics;

type Key = (String, String);

#[derive(Default)]
struct Inner {
    generation: u64,
    map: HashMap<Key, (Channel, u64)>,
    clock: u64,
}

pub(crate) struct Channels {
    tls: Option<Arc<TlsReloader>>,
    max: usize,
    connect_timeout: Duration,
    inner: Mutex<Inner>,
    metrics: WanMetrics,
}

impl Channels {
    pub(crate) fn new(
        tls: Option<Arc<TlsReloader>>,
        max: usize,
        connect_timeout: Duration,
        metrics: WanMetrics,
    ) -> Channels {
        let generation = tls.as_ref().map_or(0, |t| t.generation());
        Channels {
            tls,
            max: max.max(1),
            connect_timeout,
            inner: Mutex::new(Inner {
                generation,
                ..Inner::default()
            }),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The channel for `route`, built on first use. Needs a tokio runtime.
    pub(crate) fn get(&self, route: &Route) -> Result<Channel, tonic::transport::Error> {
        let key = (route.addr.authority(), route.server_name.clone());
        let mut inner = self.lock();
        if let Some(tls) = &self.tls {
            let generation = tls.generation();
            if generation != inner.generation {
                inner.map.clear();
                inner.generation = generation;
            }
        }
        inner.clock += 1;
        let now = inner.clock;
        if let Some((ch, used)) = inner.map.get_mut(&key) {
            *used = now;
            return Ok(ch.clone());
        }
        let ch = self.build(route)?;
        if inner.map.len() >= self.max {
            let oldest = inner
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                inner.map.remove(&k);
            }
        }
        inner.map.insert(key, (ch.clone(), now));
        self.metrics.set_channels(inner.map.len());
        Ok(ch)
    }

    /// Drops the channel for `route` (the next send dials afresh).
    pub(crate) fn forget(&self, route: &Route) {
        let key = (route.addr.authority(), route.server_name.clone());
        let mut inner = self.lock();
        inner.map.remove(&key);
        self.metrics.set_channels(inner.map.len());
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    fn build(&self, route: &Route) -> Result<Channel, tonic::transport::Error> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", route.addr.authority()))?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.material().client_config(&route.server_name))?;
        }
        Ok(endpoint
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wan::address::WanAddr;
    use crate::wan::book::RouteSource;

    fn route(addr: &str, name: &str) -> Route {
        Route {
            addr: WanAddr::parse(addr).unwrap(),
            server_name: name.into(),
            source: RouteSource::Seed,
        }
    }

    #[tokio::test]
    async fn cache_is_bounded_keyed_by_name_and_forgets() {
        let m = WanMetrics::unregistered();
        let ch = Channels::new(None, 2, Duration::from_secs(1), m);
        ch.get(&route("127.0.0.1:1", "a")).unwrap();
        ch.get(&route("127.0.0.1:1", "a")).unwrap();
        assert_eq!(ch.len(), 1);
        // Same address, other name (SNI routing): another channel.
        ch.get(&route("127.0.0.1:1", "b")).unwrap();
        assert_eq!(ch.len(), 2);
        ch.get(&route("ingress.example.com:443", "c")).unwrap();
        assert_eq!(ch.len(), 2);
        ch.forget(&route("ingress.example.com:443", "c"));
        assert_eq!(ch.len(), 1);
    }
}
