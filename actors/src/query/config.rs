//! Settings of the query actor.

use std::time::Duration;

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
        }
    }
}
