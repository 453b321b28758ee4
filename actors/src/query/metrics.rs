//! Metrics of the query actor (prefix `skein_query_`).

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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
    rejected: Family<LabelPairs, Counter>,
    in_flight: Gauge,
    queued: Gauge,
    store_rejected: Family<Vec<(&'static str, String)>, Counter>,
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
            rejected: Family::default(),
            in_flight: Gauge::default(),
            queued: Gauge::default(),
            store_rejected: Family::default(),
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
        r.register(
            "rejected",
            "Requests refused by a limit before the work, by reason (query_too_long, too_deep, \
             too_many_operators, non_ascii, regex_too_large, regex_too_deep, too_many_matchers, \
             body_too_large, too_many_points, too_many_samples, queue_full, queue_timeout)",
            m.rejected.clone(),
        );
        r.register(
            "queries_in_flight",
            "API requests evaluating now (query, query_range, series, labels, label values)",
            m.in_flight.clone(),
        );
        r.register(
            "queries_queued",
            "API requests waiting for an evaluation slot",
            m.queued.clone(),
        );
        r.register(
            "store_rejected",
            "Stores found through gossip that were refused: certificate of another cluster (identity) or Info label sets other than announced (label_sets); counted when refused",
            m.store_rejected.clone(),
        );
        for reason in ["identity", "label_sets"] {
            let _ = m
                .store_rejected
                .get_or_create(&vec![("reason", reason.to_string())]);
        }
        m
    }

    /// The counter the store set counts refused stores in.
    pub fn store_rejected(&self) -> Family<Vec<(&'static str, String)>, Counter> {
        self.store_rejected.clone()
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

    /// Counts a request refused by a limit.
    pub fn rejected(&self, reason: &str) {
        self.rejected
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    /// Counts a store address refused (`source`: gossip, file, ...).
    pub fn store_address_rejected(&self, source: &str) {
        self.store_addresses_rejected
            .get_or_create(&vec![("source", source.to_string())])
            .inc();
    }

    /// How many requests were refused for `reason` (for tests).
    pub fn rejected_count(&self, reason: &str) -> u64 {
        self.rejected
            .get_or_create(&vec![("reason", reason.to_string())])
            .get()
    }

    pub(crate) fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    pub(crate) fn queued(&self) -> &Gauge {
        &self.queued
    }
}
