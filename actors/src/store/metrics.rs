//! The store's metrics (prefix `skein_store_`).

use super::cache::CacheMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub api: String,
    pub outcome: String,
}

/// Metrics of block syncing and caching (registered by the actor).
#[derive(Clone, Debug, Default)]
pub struct StoreMetrics {
    pub syncs: Counter,
    pub sync_failures: Counter,
    /// Blocks that could not be loaded (truncated index, bad CRC, missing chunk file, ...).
    pub block_load_failures: Counter,
    pub block_loads: Counter,
    pub block_drops: Counter,
    pub blocks_loaded: Gauge,
    pub index_cache: CacheMetrics,
    pub chunk_cache: CacheMetrics,
}

/// Metrics of the StoreAPI (registered by the service).
#[derive(Clone, Debug, Default)]
pub struct StoreApiMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub series_returned: Counter,
    pub chunks_returned: Counter,
    pub blocks_queried: Counter,
}

fn register_cache(r: &mut Registry, name: &str, m: &CacheMetrics) {
    r.register(
        format!("{name}_cache_hits"),
        format!("Page lookups answered by the {name} cache"),
        m.hits.clone(),
    );
    r.register(
        format!("{name}_cache_misses"),
        format!("Page lookups the {name} cache could not answer"),
        m.misses.clone(),
    );
    r.register(
        format!("{name}_cache_evictions"),
        format!("Pages evicted from the {name} cache"),
        m.evictions.clone(),
    );
    r.register(
        format!("{name}_cache_bytes"),
        format!("Bytes held by the {name} cache"),
        m.bytes.clone(),
    );
}

impl StoreMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("skein_store");
        r.register("block_syncs", "Bucket block syncs", m.syncs.clone());
        r.register(
            "block_sync_failures",
            "Bucket block syncs that could not list the bucket",
            m.sync_failures.clone(),
        );
        r.register(
            "block_load_failures",
            "Blocks that failed to load and are skipped",
            m.block_load_failures.clone(),
        );
        r.register("block_loads", "Blocks loaded", m.block_loads.clone());
        r.register(
            "block_drops",
            "Blocks dropped (deleted or marked for deletion)",
            m.block_drops.clone(),
        );
        r.register(
            "blocks_loaded",
            "Blocks currently served",
            m.blocks_loaded.clone(),
        );
        register_cache(r, "index", &m.index_cache);
        register_cache(r, "chunk", &m.chunk_cache);
        m
    }
}

impl StoreApiMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("skein_store");
        r.register(
            "requests",
            "StoreAPI and Info requests, by API and outcome",
            m.requests.clone(),
        );
        r.register(
            "series_returned",
            "Series sent in Series responses",
            m.series_returned.clone(),
        );
        r.register(
            "chunks_returned",
            "Chunks sent in Series responses",
            m.chunks_returned.clone(),
        );
        r.register(
            "blocks_queried",
            "Blocks read for requests",
            m.blocks_queried.clone(),
        );
        m
    }

    pub fn record(&self, api: &str, outcome: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                api: api.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }
}
