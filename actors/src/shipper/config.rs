//! Shipper settings.

use std::path::PathBuf;
use std::time::Duration;

/// Settings of the shipper.
#[derive(Debug, Clone, PartialEq)]
pub struct ShipperConfig {
    /// Prometheus's TSDB directory (`--storage.tsdb.path`).
    pub data_dir: PathBuf,
    /// Time between two sync passes (Thanos: 30 s).
    pub interval: Duration,
    /// Ship blocks of every compaction level, not only level 1 (Thanos
    /// `--shipper.upload-compacted`). Off by default: Prometheus's own compactions are left to
    /// the bucket's compactor.
    pub upload_compacted: bool,
    /// The `thanos.source` written into meta.json.
    pub source: String,
    /// Ship even when the external labels are empty. Off by default, as in Thanos: blocks
    /// without external labels cannot be told apart from other producers' blocks.
    pub allow_empty_external_labels: bool,
}

impl ShipperConfig {
    /// Defaults for the sidecar shipping `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            interval: Duration::from_secs(30),
            upload_compacted: false,
            source: "sidecar".into(),
            allow_empty_external_labels: false,
        }
    }
}
