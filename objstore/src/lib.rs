//! Object storage for Skein.
//!
//! - [`config`]: the Thanos objstore.yml format (`type: FILESYSTEM | S3 | GCS | AZURE`).
//! - [`build`]: turns a config into an `object_store` client (ring-only TLS, see [`tls`]).
//! - [`bucket`]: [`Bucket`], the client with retries, backoff and metrics.
//! - [`block`]: block directories in a bucket: listing, safe-order upload, markers, deletion.
//! - [`meta`]: block meta.json and deletion-mark.json as read from the bucket.
//! - [`metrics`]: `skein_objstore_*` metrics.

pub mod block;
pub mod bucket;
pub mod build;
pub mod config;
pub mod error;
mod fields;
pub mod meta;
pub mod metrics;
pub mod retry;
pub mod tls;

pub use block::{
    BlockFile, CHUNKS_DIRNAME, DELETION_MARK_FILENAME, INDEX_FILENAME, META_FILENAME,
    NO_COMPACT_MARK_FILENAME, UploadStats, UploadStep, block_path, local_block_files,
};
pub use bucket::{Bucket, ObjectInfo};
pub use build::build_store;
pub use config::{ObjstoreConfig, Provider};
pub use error::{BucketError, ConfigError};
pub use meta::{BlockMeta, DeletionMark, ThanosSection};
pub use metrics::ObjstoreMetrics;
pub use retry::RetryPolicy;
pub use skein_tsdb::Ulid;
