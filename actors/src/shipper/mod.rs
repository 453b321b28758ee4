//! The shipper: uploads the blocks Prometheus finishes to object storage, the way the Thanos
//! sidecar does.
//!
//! - [`config`]: the shipper settings, [`ShipperConfig`].
//! - [`labels`]: [`ExternalLabelsSource`], where the external labels come from (the sidecar).
//! - [`scan`]: finished blocks in the Prometheus data dir.
//! - [`state`]: `thanos.shipper.json`, the record of shipped blocks (atomic rewrite).
//! - [`ship`]: [`Shipper`], one sync pass (scan, check bucket, upload meta.json last, record).
//! - [`actor`]: [`ShipperActor`], runs a sync every interval.
//! - [`metrics`]: the `skein_shipper_*` metrics.
//!
//! The shipper never modifies or deletes anything of Prometheus's: it reads block files
//! through hard links under `<data dir>/thanos/upload/` (so a concurrent compaction cannot pull
//! them away mid-upload) and writes only `thanos.shipper.json` and that upload dir.

pub mod actor;
pub mod config;
pub mod labels;
pub mod metrics;
pub mod scan;
pub mod ship;
pub mod state;

pub use actor::{ShipperActor, SyncNow};
pub use config::ShipperConfig;
pub use labels::ExternalLabelsSource;
pub use metrics::ShipperMetrics;
pub use scan::{LocalBlock, scan_blocks};
pub use ship::{Shipper, ShipperError, SyncReport};
pub use state::ShipperState;
