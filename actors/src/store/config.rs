//! Store settings.

use skein_objstore::ObjstoreConfig;
use std::path::PathBuf;
use std::time::Duration;

/// Where the store finds its bucket.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketSource {
    /// A Thanos objstore.yml file.
    ConfigFile(PathBuf),
    /// An already parsed configuration.
    Config(Box<ObjstoreConfig>),
}

/// Settings of the store role.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// Local directory for per-block index headers (`<data dir>/<ULID>/`).
    pub data_dir: PathBuf,
    pub bucket: BucketSource,
    /// How often the bucket's block list is re-read.
    pub sync_interval: Duration,
    /// Bytes of index pages (postings, series) cached in memory.
    pub index_cache_bytes: u64,
    /// Bytes of chunk pages cached in memory.
    pub chunk_cache_bytes: u64,
    /// Size of a cached index page (one ranged GET fetches whole pages).
    pub index_page_bytes: u64,
    /// Size of a cached chunk page.
    pub chunk_page_bytes: u64,
    /// Blocks loaded at once during a sync.
    pub load_concurrency: usize,
    /// Blocks read at once for one request.
    pub query_concurrency: usize,
    /// Blocks marked for deletion keep being served until their mark is this old (Thanos
    /// `--ignore-deletion-marks-delay`); zero drops them at the next sync.
    pub ignore_deletion_marks_delay: Duration,
}

impl StoreConfig {
    pub fn new(data_dir: impl Into<PathBuf>, bucket: BucketSource) -> Self {
        Self {
            data_dir: data_dir.into(),
            bucket,
            sync_interval: Duration::from_secs(60),
            index_cache_bytes: 256 << 20,
            chunk_cache_bytes: 512 << 20,
            index_page_bytes: 16 << 10,
            chunk_page_bytes: 16 << 10,
            load_concurrency: 4,
            query_concurrency: 4,
            ignore_deletion_marks_delay: Duration::ZERO,
        }
    }
}
