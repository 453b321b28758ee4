//! Skein's actors and the StoreAPI services they back.
//!
//! - [`sidecar`]: next to a Prometheus; serves its data over the StoreAPI.
//! - [`query`]: the store set, fan-out over StoreAPIs, merge and dedup, and
//!   the [`skein_promql::SeriesSource`] the engine reads from.
//! - [`shipper`]: uploads Prometheus's finished blocks to object storage.
//! - [`store`]: serves the blocks of an object-storage bucket over the StoreAPI.
//! - [`matchers`]: label and matcher conversions shared by both.

pub mod guard;
pub mod interval;
pub mod matchers;
pub mod query;
pub mod shipper;
pub mod sidecar;
pub mod store;
