//! Object-storage metrics (prefix `skein_objstore_`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels naming one bucket operation (`get`, `get_range`, `put`, `upload`, `head`, `list`,
/// `delete`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub operation: String,
}

fn new_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 10))
}

/// Cheap to clone: clones share their values with the registered metrics.
#[derive(Clone, Debug)]
pub struct ObjstoreMetrics {
    /// Operations attempted (each retry counts), by operation.
    pub operations: Family<OpLabels, Counter>,
    /// Failed attempts, by operation.
    pub failures: Family<OpLabels, Counter>,
    /// Payload bytes moved, by operation (reads for gets, writes for puts and uploads).
    pub bytes: Family<OpLabels, Counter>,
    /// Duration of successful operations, by operation.
    pub duration: Family<OpLabels, Histogram, fn() -> Histogram>,
}

impl Default for ObjstoreMetrics {
    fn default() -> Self {
        Self {
            operations: Family::default(),
            failures: Family::default(),
            bytes: Family::default(),
            duration: Family::new_with_constructor(new_histogram),
        }
    }
}

impl ObjstoreMetrics {
    /// Creates the metrics and registers them under `skein_objstore_`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("skein_objstore");
        r.register(
            "operations",
            "Object storage operations attempted, by operation",
            m.operations.clone(),
        );
        r.register(
            "operation_failures",
            "Object storage operations that failed, by operation",
            m.failures.clone(),
        );
        r.register(
            "bytes",
            "Payload bytes read from or written to object storage, by operation",
            m.bytes.clone(),
        );
        r.register(
            "operation_duration_seconds",
            "Duration of successful object storage operations, by operation",
            m.duration.clone(),
        );
        m
    }

    pub(crate) fn labels(op: &str) -> OpLabels {
        OpLabels {
            operation: op.to_string(),
        }
    }
}
