//! Loading a bucket block for serving: checks its files against meta.json and the listing,
//! keeps its index header on local disk and opens it with the TSDB block reader over ranged
//! bucket reads.

use super::cache::PageCache;
use super::header::IndexFile;
use super::remote::{BucketFile, Fetcher};
use skein_objstore::{BucketError, CHUNKS_DIRNAME, INDEX_FILENAME, Ulid, block_path};
use skein_tsdb::block::{Block, BlockError, BlockMeta};
use skein_tsdb::{Label, RangeRead};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;

/// Why a block could not be loaded.
#[derive(Error, Debug)]
pub enum LoadError {
    #[error("bucket: {0}")]
    Bucket(#[from] BucketError),
    #[error("bad meta.json: {0}")]
    Meta(String),
    #[error("{0}")]
    Files(String),
    #[error("index header: {0}")]
    Header(io::Error),
    #[error("{0}")]
    Block(#[from] BlockError),
    #[error("load task failed: {0}")]
    Task(String),
}

/// The index or a chunk segment of a bucket block.
#[derive(Debug)]
pub enum BlockRange {
    Index(IndexFile),
    Chunks(BucketFile),
}

impl RangeRead for BlockRange {
    fn len(&self) -> u64 {
        match self {
            BlockRange::Index(f) => f.len(),
            BlockRange::Chunks(f) => f.len(),
        }
    }

    fn read_range(&self, off: u64, len: u64) -> io::Result<Cow<'_, [u8]>> {
        match self {
            BlockRange::Index(f) => f.read_range(off, len),
            BlockRange::Chunks(f) => f.read_range(off, len),
        }
    }
}

/// A block ready to serve.
#[derive(Debug)]
pub struct LoadedBlock {
    pub id: Ulid,
    /// External labels from the Thanos section, sorted by name.
    pub ext_labels: Vec<Label>,
    pub block: Block<BlockRange>,
    /// Cache ids of its files (index first), to drop their pages when the block goes.
    pub file_ids: Vec<u64>,
    /// Its chunk segments (sharing pages with the block reader's), for prefetching.
    pub segments: Vec<BucketFile>,
    /// Local directory holding its index header.
    pub local_dir: PathBuf,
}

impl LoadedBlock {
    pub fn meta(&self) -> &BlockMeta {
        self.block.meta()
    }

    /// Downsampling resolution (0 = raw).
    pub fn resolution(&self) -> i64 {
        self.meta()
            .thanos
            .as_ref()
            .map_or(0, |t| t.downsample.resolution)
    }

    /// Whether the block holds data in `[min, max]` (inclusive; block max time is exclusive).
    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        let m = self.meta();
        min < m.max_time && max >= m.min_time
    }
}

/// Loads blocks of one bucket.
#[derive(Debug, Clone)]
pub struct BlockLoader {
    pub fetcher: Fetcher,
    pub data_dir: PathBuf,
    pub index_cache: Arc<PageCache>,
    pub chunk_cache: Arc<PageCache>,
    pub index_page_bytes: u64,
    pub chunk_page_bytes: u64,
}

fn segment_number(path: &str) -> Option<u32> {
    let name = path.rsplit('/').next()?;
    if name.len() != 6 {
        return None;
    }
    name.parse().ok()
}

impl BlockLoader {
    /// Loads block `id` whose meta.json is `meta_raw`.
    pub async fn load(&self, id: Ulid, meta_raw: &[u8]) -> Result<LoadedBlock, LoadError> {
        let meta = BlockMeta::from_json(meta_raw).map_err(|e| LoadError::Meta(e.to_string()))?;
        if meta.ulid != id {
            return Err(LoadError::Meta(format!(
                "meta.json names block {}",
                meta.ulid
            )));
        }
        let bucket = self.fetcher.bucket();
        let index_path = block_path(id, INDEX_FILENAME);
        let index_len = match bucket.size(&index_path).await {
            Ok(n) => n,
            Err(e) if e.is_not_found() => {
                return Err(LoadError::Files("index file missing".into()));
            }
            Err(e) => return Err(e.into()),
        };
        let listed = bucket.list_objects(&block_path(id, CHUNKS_DIRNAME)).await?;
        let mut segments: BTreeMap<u32, (String, u64)> = BTreeMap::new();
        for o in listed {
            if let Some(n) = segment_number(&o.path) {
                segments.insert(n, (o.path, o.size));
            }
        }
        for (i, n) in segments.keys().enumerate() {
            if *n as usize != i + 1 {
                return Err(LoadError::Files(format!(
                    "chunk segment {:06} missing (found {n:06})",
                    i + 1
                )));
            }
        }
        // Files the Thanos section lists must be there with their sizes.
        if let Some(t) = &meta.thanos {
            for f in &t.files {
                let actual = if f.rel_path == INDEX_FILENAME {
                    Some(index_len)
                } else if let Some(n) = f
                    .rel_path
                    .strip_prefix("chunks/")
                    .and_then(|_| segment_number(&f.rel_path))
                {
                    segments.get(&n).map(|(_, s)| *s)
                } else {
                    continue;
                };
                match actual {
                    None => {
                        return Err(LoadError::Files(format!("{} missing", f.rel_path)));
                    }
                    Some(a) if f.size_bytes != 0 && a != f.size_bytes => {
                        return Err(LoadError::Files(format!(
                            "{} is {a} bytes, meta.json says {}",
                            f.rel_path, f.size_bytes
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
        if segments.is_empty() && meta.stats.num_chunks > 0 {
            return Err(LoadError::Files(format!(
                "no chunk segments but meta.json counts {} chunks",
                meta.stats.num_chunks
            )));
        }
        let local_dir = self.data_dir.join(id.to_string());
        let index_remote = BucketFile::new(
            self.fetcher.clone(),
            index_path,
            index_len,
            self.index_cache.clone(),
            self.index_page_bytes,
        );
        let seg_files: Vec<BucketFile> = segments
            .into_values()
            .map(|(path, size)| {
                BucketFile::new(
                    self.fetcher.clone(),
                    path,
                    size,
                    self.chunk_cache.clone(),
                    self.chunk_page_bytes,
                )
            })
            .collect();
        let mut file_ids = vec![index_remote.id()];
        file_ids.extend(seg_files.iter().map(BucketFile::id));
        let ext_labels: Vec<Label> = meta
            .thanos
            .as_ref()
            .map(|t| {
                t.labels
                    .iter()
                    .map(|(k, v)| Label::new(k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let segments = seg_files.clone();
        let dir = local_dir.clone();
        let block = tokio::task::spawn_blocking(move || -> Result<_, LoadError> {
            let index = IndexFile::open(&dir, index_remote).map_err(LoadError::Header)?;
            let segs = seg_files.into_iter().map(BlockRange::Chunks).collect();
            Ok(Block::from_parts(meta, BlockRange::Index(index), segs)?)
        })
        .await
        .map_err(|e| LoadError::Task(e.to_string()))??;
        Ok(LoadedBlock {
            id,
            ext_labels,
            block,
            file_ids,
            segments,
            local_dir,
        })
    }

    /// Drops a block's cached pages.
    pub fn forget(&self, b: &LoadedBlock) {
        if let Some((first, rest)) = b.file_ids.split_first() {
            self.index_cache.remove_file(*first);
            for id in rest {
                self.chunk_cache.remove_file(*id);
            }
        }
    }
}
