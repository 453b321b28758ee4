//! The shipper's metrics (prefix `skein_shipper_`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Cheap to clone: clones share values with the registered metrics.
#[derive(Clone, Debug, Default)]
pub struct ShipperMetrics {
    /// Blocks uploaded.
    pub uploads: Counter,
    /// Block uploads that failed.
    pub upload_failures: Counter,
    /// Bytes of uploaded block files (chunks, index, meta.json).
    pub uploaded_bytes: Counter,
    /// Sync passes run.
    pub syncs: Counter,
    /// Sync passes that could not complete (unreadable data dir, state not writable).
    pub sync_failures: Counter,
    /// Blocks recorded as shipped in thanos.shipper.json.
    pub shipped_blocks: Gauge,
}

impl ShipperMetrics {
    /// Creates the metrics and registers them under `skein_shipper_`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("skein_shipper");
        r.register(
            "uploads",
            "Blocks uploaded to object storage",
            m.uploads.clone(),
        );
        r.register(
            "upload_failures",
            "Block uploads that failed",
            m.upload_failures.clone(),
        );
        r.register(
            "uploaded_bytes",
            "Bytes of block files uploaded",
            m.uploaded_bytes.clone(),
        );
        r.register("syncs", "Shipper sync passes", m.syncs.clone());
        r.register(
            "sync_failures",
            "Shipper sync passes that failed",
            m.sync_failures.clone(),
        );
        r.register(
            "shipped_blocks",
            "Blocks recorded as shipped in thanos.shipper.json",
            m.shipped_blocks.clone(),
        );
        m
    }
}
