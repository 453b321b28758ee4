//! The sidecar actor: a Prometheus served over the StoreAPI.
//!
//! - [`prometheus`]: HTTP client for Prometheus (config, build info,
//!   lowest timestamp, series/labels API, remote read).
//! - [`remote_read`]: remote-read request encoding and answer decoding.
//! - [`metrics`]: the sidecar's metrics.

pub mod metrics;
pub mod prometheus;
pub mod remote_read;

pub use metrics::SidecarMetrics;
pub use prometheus::{PrometheusClient, PrometheusError, RemoteReadStream};
pub use remote_read::{RawSeries, RemoteReadError};
