//! Metrics of the query actor (prefix `skein_query_`).

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type LabelPairs = Vec<(&'static str, String)>;

fn duration_histogram() -> Histogram {
    // 5 ms .. ~82 s
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Counters and histograms shared by every clone of the query handle.
#[derive(Clone, Debug)]
pub struct QueryMetrics {
    queries: Family<LabelPairs, Counter>,
    duration: Family<LabelPairs, Histogram, fn() -> Histogram>,
    store_errors: Family<LabelPairs, Counter>,
    bad_requests: Family<LabelPairs, Counter>,
    store_responses_rejected: Family<LabelPairs, Counter>,
    store_addresses_rejected: Family<LabelPairs, Counter>,
}

impl QueryMetrics {
    /// Registers the metrics under `skein_query_` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = QueryMetrics {
            queries: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            store_errors: Family::default(),
            bad_requests: Family::default(),
            store_responses_rejected: Family::default(),
            store_addresses_rejected: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("skein_query");
        r.register(
            "requests",
            "API requests by endpoint and outcome (success, error type)",
            m.queries.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time to answer an API request, by endpoint",
            m.duration.clone(),
        );
        r.register(
            "store_request_errors",
            "Failed or timed out StoreAPI calls, by store",
            m.store_errors.clone(),
        );
        r.register(
            "bad_requests",
            "Requests rejected for bad parameters, by endpoint",
            m.bad_requests.clone(),
        );
        r.register(
            "store_responses_rejected",
            "Store answers the querier threw away (too large, unsorted, corrupt, too slow), by reason",
            m.store_responses_rejected.clone(),
        );
        r.register(
            "store_addresses_rejected",
            "Store addresses refused (not host:port), by where they came from",
            m.store_addresses_rejected.clone(),
        );
        m
    }

    /// Metrics that go nowhere (for callers without a registry).
    pub fn unregistered() -> Self {
        Self::register(&mut Registry::default())
    }

    /// Counts one answered request and its duration.
    pub fn observe(&self, endpoint: &str, outcome: &str, took: Duration) {
        self.queries
            .get_or_create(&vec![
                ("endpoint", endpoint.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        self.duration
            .get_or_create(&vec![("endpoint", endpoint.to_string())])
            .observe(took.as_secs_f64());
    }

    pub fn store_error(&self, store: &str) {
        self.store_errors
            .get_or_create(&vec![("store", store.to_string())])
            .inc();
    }

    pub fn bad_request(&self, endpoint: &str) {
        self.bad_requests
            .get_or_create(&vec![("endpoint", endpoint.to_string())])
            .inc();
    }

    /// Counts a store answer the querier refused (`reason`: frame_too_large, unsorted, ...).
    pub fn store_response_rejected(&self, reason: &str) {
        self.store_responses_rejected
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    /// Counts a store address refused (`source`: gossip, file, ...).
    pub fn store_address_rejected(&self, source: &str) {
        self.store_addresses_rejected
            .get_or_create(&vec![("source", source.to_string())])
            .inc();
    }
}
