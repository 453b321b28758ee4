//! The store role: serves the TSDB blocks of a bucket over the StoreAPI.
//!
//! - [`config`]: the store settings, [`StoreConfig`].
//! - [`sync`]: the [`BucketStore`], the served block set and its sync with the bucket.
//! - [`actor`]: [`StoreActor`], syncing at start and every interval.
//! - [`service`]: [`StoreService`], `thanos.Store` and `thanos.info.Info`.
//! - [`block`]: loading one bucket block (file checks, index header, block reader).
//! - [`header`]: the index header kept on local disk per block.
//! - [`remote`]: ranged bucket reads behind the synchronous TSDB readers.
//! - [`cache`]: the bounded LRU page caches (index and chunks).
//! - [`select`]: per-block series selection with external labels, and merging.
//! - [`tools`]: `bucket ls | inspect | verify` as library functions.
//! - [`metrics`]: the `skein_store_*` metrics.

pub mod actor;
pub mod block;
pub mod cache;
pub mod config;
pub mod header;
pub mod metrics;
pub mod remote;
pub mod select;
pub mod service;
pub mod sync;
pub mod tools;

pub use actor::{GetBlocks, IsReady, StoreActor, SyncNow};
pub use config::{BucketSource, StoreConfig};
pub use service::StoreService;
pub use sync::{BlockSet, BucketStore, StoreError, SyncReport};
