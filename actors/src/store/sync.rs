//! [`BucketStore`]: the set of blocks served, kept in step with the bucket. A sync lists the
//! bucket, ignores partial blocks (no meta.json) and blocks marked for deletion, loads new
//! blocks (a block that fails to load is logged, counted and skipped; the others keep
//! serving) and drops blocks that are gone.

use super::block::{BlockLoader, LoadedBlock};
use super::cache::PageCache;
use super::config::StoreConfig;
use super::metrics::StoreMetrics;
use super::remote::Fetcher;
use futures::StreamExt;
use skein_objstore::{Bucket, BucketError, Ulid};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use thiserror::Error;

/// Why the store could not be built or synced.
#[derive(Error, Debug)]
pub enum StoreError {
    #[error("objstore config: {0}")]
    Config(#[from] skein_objstore::ConfigError),
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("the store must be created inside a tokio runtime")]
    NoRuntime,
    #[error("cannot list the bucket: {0}")]
    Bucket(#[from] BucketError),
}

/// The blocks served at one moment.
#[derive(Debug, Default)]
pub struct BlockSet {
    pub blocks: BTreeMap<Ulid, Arc<LoadedBlock>>,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub loaded: Vec<Ulid>,
    pub dropped: Vec<Ulid>,
    /// Blocks that failed to load, with the reason.
    pub failed: Vec<(Ulid, String)>,
    /// Block dirs without meta.json (partial uploads).
    pub partial: Vec<Ulid>,
    /// Blocks with a deletion mark.
    pub marked: Vec<Ulid>,
    /// Blocks served after the sync.
    pub total: usize,
}

/// The store's state and sync logic; shared by the actor and the service.
pub struct BucketStore {
    cfg: StoreConfig,
    bucket: Bucket,
    loader: BlockLoader,
    metrics: StoreMetrics,
    blocks: RwLock<Arc<BlockSet>>,
    ready: AtomicBool,
    lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for BucketStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketStore")
            .field("bucket", &self.bucket)
            .field("blocks", &self.blocks().blocks.len())
            .finish()
    }
}

impl BucketStore {
    /// Must be called inside a tokio runtime: bucket reads of the block readers run on it.
    pub fn new(
        cfg: StoreConfig,
        bucket: Bucket,
        metrics: StoreMetrics,
    ) -> Result<Self, StoreError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| StoreError::NoRuntime)?;
        std::fs::create_dir_all(&cfg.data_dir).map_err(|source| StoreError::DataDir {
            path: cfg.data_dir.display().to_string(),
            source,
        })?;
        let loader = BlockLoader {
            fetcher: Fetcher::new(bucket.clone(), handle),
            data_dir: cfg.data_dir.clone(),
            index_cache: Arc::new(PageCache::new(
                cfg.index_cache_bytes,
                metrics.index_cache.clone(),
            )),
            chunk_cache: Arc::new(PageCache::new(
                cfg.chunk_cache_bytes,
                metrics.chunk_cache.clone(),
            )),
            index_page_bytes: cfg.index_page_bytes,
            chunk_page_bytes: cfg.chunk_page_bytes,
        };
        Ok(Self {
            cfg,
            bucket,
            loader,
            metrics,
            blocks: RwLock::new(Arc::new(BlockSet::default())),
            ready: AtomicBool::new(false),
            lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// The blocks served now.
    pub fn blocks(&self) -> Arc<BlockSet> {
        self.blocks
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Whether a first sync has completed.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn set_blocks(&self, set: Arc<BlockSet>) {
        self.metrics.blocks_loaded.set(set.blocks.len() as i64);
        match self.blocks.write() {
            Ok(mut g) => *g = set,
            Err(p) => *p.into_inner() = set,
        }
    }

    /// One sync with the bucket.
    pub async fn sync(&self) -> Result<SyncReport, StoreError> {
        let _guard = self.lock.lock().await;
        self.metrics.syncs.inc();
        let r = self.sync_inner().await;
        match &r {
            Ok(_) => self.ready.store(true, Ordering::Release),
            Err(e) => {
                self.metrics.sync_failures.inc();
                tracing::error!(error = %e, "store sync failed");
            }
        }
        r
    }

    async fn sync_inner(&self) -> Result<SyncReport, StoreError> {
        let mut report = SyncReport::default();
        let current = self.blocks();
        let ids = self.bucket.list_block_ids().await?;
        let mut keep: BTreeMap<Ulid, Arc<LoadedBlock>> = BTreeMap::new();
        let mut to_load: Vec<(Ulid, bytes::Bytes)> = Vec::new();
        for id in ids {
            // Marked blocks stop being served once the mark is older than the delay.
            if self.deletion_due(id).await? {
                report.marked.push(id);
                continue;
            }
            if let Some(b) = current.blocks.get(&id) {
                keep.insert(id, b.clone());
                continue;
            }
            match self.bucket.block_meta_bytes(id).await? {
                Some(raw) => to_load.push((id, raw)),
                None => report.partial.push(id),
            }
        }
        let loader = &self.loader;
        let results: Vec<(Ulid, Result<LoadedBlock, super::block::LoadError>)> =
            futures::stream::iter(to_load)
                .map(|(id, raw)| async move { (id, loader.load(id, &raw).await) })
                .buffer_unordered(self.cfg.load_concurrency.max(1))
                .collect()
                .await;
        for (id, r) in results {
            match r {
                Ok(b) => {
                    self.metrics.block_loads.inc();
                    tracing::info!(block = %id, "block loaded");
                    report.loaded.push(id);
                    keep.insert(id, Arc::new(b));
                }
                Err(e) => {
                    self.metrics.block_load_failures.inc();
                    tracing::error!(block = %id, error = %e, "block failed to load; skipped");
                    report.failed.push((id, e.to_string()));
                }
            }
        }
        for (id, b) in &current.blocks {
            if !keep.contains_key(id) {
                self.metrics.block_drops.inc();
                self.loader.forget(b);
                report.dropped.push(*id);
                tracing::info!(block = %id, "block dropped");
            }
        }
        report.loaded.sort();
        report.total = keep.len();
        self.cleanup_local(&keep);
        self.set_blocks(Arc::new(BlockSet { blocks: keep }));
        Ok(report)
    }

    /// Whether the block has a deletion mark older than `ignore_deletion_marks_delay`. An
    /// unreadable mark counts as due (the block is going away).
    async fn deletion_due(&self, id: Ulid) -> Result<bool, BucketError> {
        let delay = self.cfg.ignore_deletion_marks_delay;
        if delay.is_zero() {
            return self
                .bucket
                .exists(&skein_objstore::block_path(
                    id,
                    skein_objstore::DELETION_MARK_FILENAME,
                ))
                .await;
        }
        match self.bucket.deletion_mark(id).await {
            Ok(None) => Ok(false),
            Ok(Some(m)) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                Ok(now.saturating_sub(m.deletion_time) >= delay.as_secs() as i64)
            }
            Err(BucketError::InvalidBlock { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Removes local block dirs of blocks no longer served.
    fn cleanup_local(&self, keep: &BTreeMap<Ulid, Arc<LoadedBlock>>) {
        let Ok(rd) = std::fs::read_dir(&self.cfg.data_dir) else {
            return;
        };
        for e in rd.flatten() {
            let Some(id) = e.file_name().to_str().and_then(|n| n.parse::<Ulid>().ok()) else {
                continue;
            };
            if !keep.contains_key(&id)
                && let Err(err) = std::fs::remove_dir_all(e.path())
            {
                tracing::warn!(block = %id, error = %err, "cannot remove local block dir");
            }
        }
    }
}
