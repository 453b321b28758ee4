//! One shipper sync pass: scan the data dir, skip what is recorded or already in the bucket,
//! upload the rest (chunks, index, meta.json last) and record each block as soon as it is up.

use super::config::ShipperConfig;
use super::labels::{ExternalLabels, ExternalLabelsSource};
use super::metrics::ShipperMetrics;
use super::scan::{LocalBlock, scan_blocks};
use super::state::ShipperState;
use bytes::Bytes;
use serde_json::{Value, json};
use skein_objstore::{Bucket, BucketError, META_FILENAME, Ulid, UploadStep, local_block_files};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use thiserror::Error;
use tokio::sync::Mutex;

/// Why a sync pass failed as a whole (single block failures are reported in [`SyncReport`]).
#[derive(Error, Debug)]
pub enum ShipperError {
    #[error("cannot read data dir {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write shipper state in {path}: {source}")]
    State {
        path: String,
        source: std::io::Error,
    },
}

/// What one sync pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// The external labels were not known yet (or empty while that is not allowed), so
    /// nothing was shipped.
    pub waiting_for_labels: bool,
    /// Blocks uploaded in this pass.
    pub uploaded: Vec<Ulid>,
    /// Blocks found complete in the bucket and recorded without upload.
    pub found_in_bucket: Vec<Ulid>,
    /// Blocks left for later because of their compaction level.
    pub skipped_compacted: Vec<Ulid>,
    /// Blocks whose upload failed, with the reason; retried next pass.
    pub failed: Vec<(Ulid, String)>,
}

/// Ships the blocks of one Prometheus data dir.
pub struct Shipper {
    cfg: ShipperConfig,
    bucket: Bucket,
    labels: ExternalLabelsSource,
    metrics: ShipperMetrics,
    /// Serialises sync passes.
    lock: Mutex<()>,
}

/// Thanos's `files` entry list: chunks and index with sizes, meta.json without.
fn files_json(dir: &Path) -> Result<Vec<Value>, BucketError> {
    let mut files: Vec<Value> = local_block_files(dir)?
        .into_iter()
        .map(|f| json!({"rel_path": f.rel_path, "size_bytes": f.size}))
        .collect();
    files.push(json!({ "rel_path": META_FILENAME }));
    Ok(files)
}

/// meta.json as uploaded: Prometheus's fields unchanged plus the Thanos section.
pub fn meta_with_thanos_section(
    block: &LocalBlock,
    labels: &ExternalLabels,
    source: &str,
    files: Vec<Value>,
) -> Result<Bytes, serde_json::Error> {
    let mut meta = block.meta_json.clone();
    if let Value::Object(m) = &mut meta {
        m.insert(
            "thanos".into(),
            json!({
                "version": 1,
                "labels": labels,
                "downsample": {"resolution": 0},
                "source": source,
                "files": files,
            }),
        );
    }
    serde_json::to_vec_pretty(&meta).map(Bytes::from)
}

/// Hard-links the block's data files into `staging` (same file system as Prometheus's dir),
/// so a compaction that deletes the block meanwhile cannot cut the upload short.
fn stage(block: &LocalBlock, staging: &Path) -> std::io::Result<()> {
    if staging.exists() {
        std::fs::remove_dir_all(staging)?;
    }
    std::fs::create_dir_all(staging.join(skein_objstore::CHUNKS_DIRNAME))?;
    let files = local_block_files(&block.dir).map_err(std::io::Error::other)?;
    for f in files {
        std::fs::hard_link(block.dir.join(&f.rel_path), staging.join(&f.rel_path))?;
    }
    Ok(())
}

impl Shipper {
    pub fn new(
        cfg: ShipperConfig,
        bucket: Bucket,
        labels: ExternalLabelsSource,
        metrics: ShipperMetrics,
    ) -> Self {
        Self {
            cfg,
            bucket,
            labels,
            metrics,
            lock: Mutex::new(()),
        }
    }

    pub fn config(&self) -> &ShipperConfig {
        &self.cfg
    }

    fn upload_root(&self) -> PathBuf {
        self.cfg.data_dir.join("thanos").join("upload")
    }

    /// One sync pass.
    pub async fn sync(&self) -> Result<SyncReport, ShipperError> {
        self.sync_with_progress(|_, _| {}).await
    }

    /// One sync pass, calling `progress` before each upload step of each block.
    pub async fn sync_with_progress(
        &self,
        mut progress: impl FnMut(Ulid, UploadStep<'_>),
    ) -> Result<SyncReport, ShipperError> {
        let _guard = self.lock.lock().await;
        self.metrics.syncs.inc();
        let r = self.sync_inner(&mut progress).await;
        if r.is_err() {
            self.metrics.sync_failures.inc();
        }
        r
    }

    async fn sync_inner(
        &self,
        progress: &mut impl FnMut(Ulid, UploadStep<'_>),
    ) -> Result<SyncReport, ShipperError> {
        let mut report = SyncReport::default();
        let Some(labels) = self.labels.current().await else {
            tracing::debug!("external labels not known yet; shipper waits");
            report.waiting_for_labels = true;
            return Ok(report);
        };
        if labels.is_empty() {
            if !self.cfg.allow_empty_external_labels {
                tracing::error!(
                    "refusing to ship blocks without external labels: configure external labels on Prometheus so its blocks can be told apart"
                );
                report.waiting_for_labels = true;
                return Ok(report);
            }
            tracing::warn!("shipping blocks without external labels");
        }
        let data_dir = &self.cfg.data_dir;
        let blocks = scan_blocks(data_dir).map_err(|source| ShipperError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let recorded: BTreeSet<Ulid> = ShipperState::load(data_dir).uploaded.into_iter().collect();
        let mut shipped: BTreeSet<Ulid> = BTreeSet::new();
        for block in &blocks {
            if recorded.contains(&block.id) {
                shipped.insert(block.id);
                continue;
            }
            if block.meta.compaction.level > 1 && !self.cfg.upload_compacted {
                report.skipped_compacted.push(block.id);
                continue;
            }
            match self.bucket.has_meta(block.id).await {
                Ok(true) => {
                    tracing::info!(block = %block.id, "block already complete in the bucket; recorded without upload");
                    report.found_in_bucket.push(block.id);
                    shipped.insert(block.id);
                    self.save(&shipped)?;
                    continue;
                }
                Ok(false) => {}
                Err(e) => {
                    self.metrics.upload_failures.inc();
                    tracing::warn!(block = %block.id, error = %e, "cannot check the bucket for the block; retrying next pass");
                    report.failed.push((block.id, e.to_string()));
                    continue;
                }
            }
            match self.upload(block, &labels, progress).await {
                Ok(bytes) => {
                    self.metrics.uploads.inc();
                    self.metrics.uploaded_bytes.inc_by(bytes);
                    tracing::info!(block = %block.id, bytes, "block uploaded");
                    report.uploaded.push(block.id);
                    shipped.insert(block.id);
                    self.save(&shipped)?;
                }
                Err(e) => {
                    self.metrics.upload_failures.inc();
                    tracing::warn!(block = %block.id, error = %e, "block upload failed; retrying next pass");
                    report.failed.push((block.id, e));
                }
            }
        }
        // Blocks Prometheus has deleted drop out of the record, as in Thanos.
        self.save(&shipped)?;
        Ok(report)
    }

    fn save(&self, shipped: &BTreeSet<Ulid>) -> Result<(), ShipperError> {
        let state = ShipperState {
            version: 1,
            uploaded: shipped.iter().copied().collect(),
        };
        self.metrics.shipped_blocks.set(shipped.len() as i64);
        state
            .save(&self.cfg.data_dir)
            .map_err(|source| ShipperError::State {
                path: self.cfg.data_dir.display().to_string(),
                source,
            })
    }

    /// Uploads one block; returns the bytes uploaded.
    async fn upload(
        &self,
        block: &LocalBlock,
        labels: &ExternalLabels,
        progress: &mut impl FnMut(Ulid, UploadStep<'_>),
    ) -> Result<u64, String> {
        let staging = self.upload_root().join(block.id.to_string());
        let src = match stage(block, &staging) {
            Ok(()) => staging.clone(),
            Err(e) => {
                tracing::debug!(block = %block.id, error = %e, "cannot hard-link the block; uploading from its directory");
                let _ = std::fs::remove_dir_all(&staging);
                block.dir.clone()
            }
        };
        let result = async {
            let files = files_json(&src).map_err(|e| e.to_string())?;
            let meta = meta_with_thanos_section(block, labels, &self.cfg.source, files)
                .map_err(|e| e.to_string())?;
            let id = block.id;
            self.bucket
                .upload_block_with_progress(&src, id, meta, |s| progress(id, s))
                .await
                .map(|st| st.bytes)
                .map_err(|e| e.to_string())
        }
        .await;
        if src == staging {
            let _ = std::fs::remove_dir_all(&staging);
        }
        result
    }
}
