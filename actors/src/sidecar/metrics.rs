//! The sidecar's metrics (prefix `skein_sidecar_`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of a StoreAPI/Info request: the API and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub api: String,
    pub outcome: String,
}

/// Labels naming one API (StoreAPI method or Prometheus endpoint).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub api: String,
}

/// Cheap to clone: every metric shares its value with the registered one.
#[derive(Clone, Debug, Default)]
pub struct SidecarMetrics {
    /// StoreAPI and Info requests by API and outcome (`success`, `invalid`,
    /// `unavailable`, `error`).
    pub requests: Family<RequestLabels, Counter>,
    /// Requests refused as invalid (bad matcher, bad label name), by API.
    pub invalid_requests: Family<ApiLabels, Counter>,
    /// Bytes read from Prometheus's remote-read endpoint (on the wire).
    pub remote_read_bytes: Counter,
    /// Failed calls to Prometheus, by Prometheus endpoint.
    pub prometheus_failures: Family<ApiLabels, Counter>,
    /// 1 while Prometheus answers and its external labels are known, else 0.
    pub prometheus_up: Gauge,
}

impl SidecarMetrics {
    /// Creates the metrics and registers them under `skein_sidecar_`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = SidecarMetrics::default();
        let r = registry.sub_registry_with_prefix("skein_sidecar");
        r.register(
            "requests",
            "StoreAPI and Info requests served, by API and outcome",
            m.requests.clone(),
        );
        r.register(
            "invalid_requests",
            "Requests refused as invalid (bad matchers or arguments), by API",
            m.invalid_requests.clone(),
        );
        r.register(
            "remote_read_bytes",
            "Bytes received from Prometheus remote read",
            m.remote_read_bytes.clone(),
        );
        r.register(
            "prometheus_failures",
            "Failed calls to Prometheus, by endpoint",
            m.prometheus_failures.clone(),
        );
        r.register(
            "prometheus_up",
            "Whether Prometheus answers and its external labels are known (1) or not (0)",
            m.prometheus_up.clone(),
        );
        m
    }

    pub fn request(&self, api: &str, outcome: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                api: api.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn invalid(&self, api: &str) {
        self.invalid_requests
            .get_or_create(&ApiLabels {
                api: api.to_string(),
            })
            .inc();
    }

    pub fn prometheus_failure(&self, endpoint: &str) {
        self.prometheus_failures
            .get_or_create(&ApiLabels {
                api: endpoint.to_string(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn registered_names_carry_the_prefix() {
        let mut reg = Registry::default();
        let m = SidecarMetrics::register(&mut reg);
        m.request("series", "success");
        m.invalid("series");
        m.remote_read_bytes.inc_by(10);
        m.prometheus_failure("read");
        m.prometheus_up.set(1);
        let mut out = String::new();
        encode(&mut out, &reg).unwrap();
        for want in [
            "skein_sidecar_requests_total{api=\"series\",outcome=\"success\"} 1",
            "skein_sidecar_invalid_requests_total{api=\"series\"} 1",
            "skein_sidecar_remote_read_bytes_total 10",
            "skein_sidecar_prometheus_failures_total{api=\"read\"} 1",
            "skein_sidecar_prometheus_up 1",
        ] {
            assert!(out.contains(want), "missing {want} in\n{out}");
        }
    }
}
