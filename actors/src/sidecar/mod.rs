//! The sidecar: a Prometheus served over the StoreAPI.
//!
//! - `actor`: [`SidecarActor`] owns the sidecar's state (external labels,
//!   lowest timestamp, readiness) and refreshes it from Prometheus.
//! - `service`: [`SidecarStore`], the `thanos.Store` and `thanos.info.Info`
//!   gRPC services, streaming from Prometheus on tokio tasks.
//! - `prometheus`: HTTP client for Prometheus (config, build info,
//!   lowest timestamp, series/labels API, remote read).
//! - `remote_read`: remote-read request encoding and answer decoding.
//! - `extlabels`: external labels in matchers and answers.
//! - `order`: keeps the Series stream sorted once external labels are added.
//! - `metrics`: the sidecar's metrics (`skein_sidecar_*`).

pub mod actor;
pub mod extlabels;
pub mod metrics;
pub mod order;
pub mod prometheus;
pub mod remote_read;
pub mod service;

pub use actor::{
    GetState, IsReady, Refresh, SidecarActor, SidecarConfig, SidecarError, SidecarState,
};
pub use metrics::SidecarMetrics;
pub use prometheus::{PrometheusClient, PrometheusError, RemoteReadStream};
pub use remote_read::{RawSeries, RemoteReadError};
pub use service::SidecarStore;
