//! Blocks in a bucket: `<ULID>/meta.json`, `<ULID>/index`, `<ULID>/chunks/NNNNNN`, markers.
//! Uploads put meta.json last so a block is only visible once complete; deletions remove
//! meta.json first and the deletion mark last.

use crate::bucket::Bucket;
use crate::error::BucketError;
use crate::meta::{BlockMeta, DeletionMark};
use bytes::Bytes;
use skein_tsdb::Ulid;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub const META_FILENAME: &str = "meta.json";
pub const INDEX_FILENAME: &str = "index";
pub const CHUNKS_DIRNAME: &str = "chunks";
pub const DELETION_MARK_FILENAME: &str = "deletion-mark.json";
pub const NO_COMPACT_MARK_FILENAME: &str = "no-compact-mark.json";

/// `<id>/<file>`.
pub fn block_path(id: Ulid, file: &str) -> String {
    format!("{id}/{file}")
}

/// A file of a local block: its path relative to the block dir and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockFile {
    pub rel_path: String,
    pub size: u64,
}

/// The files to upload for the local block at `dir`, in upload order: the chunk segments
/// (sorted by name), then the index. meta.json is not included (it goes last, separately).
pub fn local_block_files(dir: &Path) -> Result<Vec<BlockFile>, BucketError> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| BucketError::Local { path: p, source }
    };
    let chunks = dir.join(CHUNKS_DIRNAME);
    let mut out = Vec::new();
    if chunks.is_dir() {
        let mut names = Vec::new();
        for e in std::fs::read_dir(&chunks).map_err(io(&chunks))? {
            let e = e.map_err(io(&chunks))?;
            let md = e.metadata().map_err(io(&e.path()))?;
            if let (true, Some(n)) = (md.is_file(), e.file_name().to_str()) {
                names.push((n.to_string(), md.len()));
            }
        }
        names.sort();
        out.extend(names.into_iter().map(|(n, size)| BlockFile {
            rel_path: format!("{CHUNKS_DIRNAME}/{n}"),
            size,
        }));
    }
    let index = dir.join(INDEX_FILENAME);
    let md = std::fs::metadata(&index).map_err(|e| BucketError::InvalidBlock {
        block: dir.display().to_string(),
        reason: format!("no readable index file: {e}"),
    })?;
    out.push(BlockFile {
        rel_path: INDEX_FILENAME.to_string(),
        size: md.len(),
    });
    Ok(out)
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStats {
    /// Files uploaded, in order, meta.json last.
    pub files: Vec<BlockFile>,
    pub bytes: u64,
}

/// A step of a block upload, reported before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadStep<'a> {
    /// A data file (chunk segment or index), by relative path.
    File(&'a str),
    /// meta.json, the last step.
    Meta,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Bucket {
    /// ULIDs of every block directory in the bucket, complete or not, sorted.
    pub async fn list_block_ids(&self) -> Result<Vec<Ulid>, BucketError> {
        let mut ids: Vec<Ulid> = self
            .list_dirs(None)
            .await?
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The block's meta.json, raw, or `None` if the block has none (absent or partial).
    pub async fn block_meta_bytes(&self, id: Ulid) -> Result<Option<Bytes>, BucketError> {
        self.get_opt(&block_path(id, META_FILENAME)).await
    }

    /// The block's parsed meta.json, or `None` if it has none.
    pub async fn block_meta(&self, id: Ulid) -> Result<Option<BlockMeta>, BucketError> {
        let Some(raw) = self.block_meta_bytes(id).await? else {
            return Ok(None);
        };
        BlockMeta::parse(&raw)
            .map(Some)
            .map_err(|e| BucketError::InvalidBlock {
                block: id.to_string(),
                reason: format!("bad meta.json: {e}"),
            })
    }

    /// Whether the block has a meta.json (is complete).
    pub async fn has_meta(&self, id: Ulid) -> Result<bool, BucketError> {
        self.exists(&block_path(id, META_FILENAME)).await
    }

    /// The block's deletion mark, if any.
    pub async fn deletion_mark(&self, id: Ulid) -> Result<Option<DeletionMark>, BucketError> {
        let Some(raw) = self
            .get_opt(&block_path(id, DELETION_MARK_FILENAME))
            .await?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| BucketError::InvalidBlock {
                block: id.to_string(),
                reason: format!("bad {DELETION_MARK_FILENAME}: {e}"),
            })
    }

    /// Uploads the local block at `dir` as block `id`: chunk segments, then the index, then
    /// `meta` as meta.json last. Re-uploading overwrites the same keys, so it is idempotent.
    pub async fn upload_block(
        &self,
        dir: &Path,
        id: Ulid,
        meta: Bytes,
    ) -> Result<UploadStats, BucketError> {
        self.upload_block_with_progress(dir, id, meta, |_| {}).await
    }

    /// [`Bucket::upload_block`], calling `progress` before each step.
    pub async fn upload_block_with_progress(
        &self,
        dir: &Path,
        id: Ulid,
        meta: Bytes,
        mut progress: impl FnMut(UploadStep<'_>),
    ) -> Result<UploadStats, BucketError> {
        let files = local_block_files(dir)?;
        let mut bytes = 0;
        let mut done = Vec::with_capacity(files.len() + 1);
        for f in files {
            progress(UploadStep::File(&f.rel_path));
            let size = self
                .upload_file(&dir.join(&f.rel_path), &block_path(id, &f.rel_path))
                .await?;
            bytes += size;
            done.push(BlockFile {
                rel_path: f.rel_path,
                size,
            });
        }
        progress(UploadStep::Meta);
        let n = meta.len() as u64;
        self.put(&block_path(id, META_FILENAME), meta).await?;
        bytes += n;
        done.push(BlockFile {
            rel_path: META_FILENAME.to_string(),
            size: n,
        });
        Ok(UploadStats { files: done, bytes })
    }

    /// Writes `deletion-mark.json` for the block unless one exists. Readers stop using marked
    /// blocks; deletion happens later ([`Bucket::delete_block`]).
    pub async fn mark_for_deletion(&self, id: Ulid, details: &str) -> Result<(), BucketError> {
        let path = block_path(id, DELETION_MARK_FILENAME);
        if self.exists(&path).await? {
            return Ok(());
        }
        let mark = DeletionMark {
            id,
            version: 1,
            details: (!details.is_empty()).then(|| details.to_string()),
            deletion_time: now_unix(),
        };
        let data = serde_json::to_vec_pretty(&mark).map_err(|e| BucketError::InvalidBlock {
            block: id.to_string(),
            reason: e.to_string(),
        })?;
        self.put(&path, Bytes::from(data)).await
    }

    /// Deletes every object of the block: meta.json first (the block turns partial at once),
    /// the deletion mark last.
    pub async fn delete_block(&self, id: Ulid) -> Result<(), BucketError> {
        self.delete(&block_path(id, META_FILENAME)).await?;
        let objects = self.list_objects(&id.to_string()).await?;
        let mark = block_path(id, DELETION_MARK_FILENAME);
        for o in objects.iter().filter(|o| o.path != mark) {
            self.delete(&o.path).await?;
        }
        self.delete(&mark).await
    }
}
