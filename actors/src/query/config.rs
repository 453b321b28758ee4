//! Settings of the query actor.

use std::time::Duration;

use skein_promql::ParseLimits;

/// Limits on what one client may ask of the query API. Defaults fit a
/// 2-core node; each has a flag (node/src/cli.rs) saying why.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryLimits {
    /// Query and selector text: length, nesting, operators, regex size.
    pub parse: ParseLimits,
    /// Most `match[]` values on series, labels and label values.
    pub max_match: usize,
    /// Largest request body (and query string), in bytes.
    pub max_body_bytes: usize,
    /// Requests evaluating at once (query, query_range, series, labels,
    /// label values).
    pub max_concurrent: usize,
    /// Requests waiting for a slot; past this, 503.
    pub max_queued: usize,
}

/// Default `match[]` count: Grafana sends one or a few, and each is a
/// fan-out to every store.
pub const DEFAULT_MAX_MATCH: usize = 100;
/// Default body size: a maximal query plus a hundred long selectors.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Default concurrent requests (Thanos's `--query.max-concurrent`).
pub const DEFAULT_MAX_CONCURRENT: usize = 20;
/// Default waiting requests: a few dashboards loading at once.
pub const DEFAULT_MAX_QUEUED: usize = 100;

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            parse: ParseLimits::default(),
            max_match: DEFAULT_MAX_MATCH,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            max_queued: DEFAULT_MAX_QUEUED,
        }
    }
}

/// What the querier needs to know: where the stores are, how to dedup and
/// the limits of one query.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryConfig {
    /// StoreAPI addresses (`host:port`), plaintext gRPC.
    pub stores: Vec<String>,
    /// Labels that tell HA replicas apart; removed when deduplicating.
    pub replica_labels: Vec<String>,
    /// How far back an instant selector looks for a sample.
    pub lookback_delta: Duration,
    /// Longest a query may run.
    pub timeout: Duration,
    /// Most samples one query may hold in memory.
    pub max_samples: usize,
    /// Answer with the stores that did respond (plus warnings) when some fail.
    pub partial_response: bool,
    /// How often each store is asked for its Info.
    pub info_interval: Duration,
    /// Deadline of one Info call.
    pub info_timeout: Duration,
    /// Deadline of one store's Series/LabelNames/LabelValues call.
    pub store_timeout: Duration,
    /// What one store's answer may be before it is dropped.
    pub store_limits: super::client::StoreLimits,
    /// Limits on requests.
    pub limits: QueryLimits,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            stores: Vec::new(),
            replica_labels: vec!["replica".to_string()],
            lookback_delta: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            partial_response: true,
            info_interval: Duration::from_secs(5),
            info_timeout: Duration::from_secs(5),
            store_timeout: Duration::from_secs(120),
            store_limits: Default::default(),
            limits: QueryLimits::default(),
        }
    }
}
