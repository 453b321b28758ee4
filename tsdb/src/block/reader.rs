//! An open block: meta.json in memory, index and chunks read through byte ranges.

use super::{BlockError, BlockMeta, CHUNKS_DIR, INDEX_FILE, META_FILE, META_VERSION, io_err};
use crate::chunkenc::{ChunkError, ENCODING_XOR, decode_xor};
use crate::chunks::{ChunkFileError, ChunkReader, RawChunk};
use crate::index::{ChunkMeta, IndexReader, IndexSeries, Matcher};
use crate::range::{FileRange, RangeRead};
use std::path::Path;

/// A readable block.
#[derive(Debug)]
pub struct Block<R> {
    meta: BlockMeta,
    index: IndexReader<R>,
    chunks: ChunkReader<R>,
}

impl Block<FileRange> {
    /// Opens the block directory `dir` (`meta.json`, `index`, `chunks/`).
    pub fn open(dir: &Path) -> Result<Self, BlockError> {
        let meta_path = dir.join(META_FILE);
        let raw = std::fs::read(&meta_path).map_err(io_err(&meta_path))?;
        let meta = BlockMeta::from_json(&raw).map_err(|source| BlockError::Meta {
            path: meta_path,
            source,
        })?;
        let index_path = dir.join(INDEX_FILE);
        let index = FileRange::open(&index_path).map_err(io_err(&index_path))?;
        let chunks_dir = dir.join(CHUNKS_DIR);
        let chunks = ChunkReader::open_dir(&chunks_dir).map_err(|e| match e {
            ChunkFileError::Io(source) => BlockError::Io {
                path: chunks_dir.clone(),
                source,
            },
            other => BlockError::ChunkFile(other),
        })?;
        Self::with_readers(meta, IndexReader::open(index)?, chunks)
    }
}

impl<R: RangeRead> Block<R> {
    /// A block from its meta and range readers for the index and the chunk segments (in order),
    /// e.g. backed by object storage.
    pub fn from_parts(meta: BlockMeta, index: R, segments: Vec<R>) -> Result<Self, BlockError> {
        Self::with_readers(meta, IndexReader::open(index)?, ChunkReader::new(segments)?)
    }

    fn with_readers(
        meta: BlockMeta,
        index: IndexReader<R>,
        chunks: ChunkReader<R>,
    ) -> Result<Self, BlockError> {
        if meta.version != META_VERSION {
            return Err(BlockError::MetaVersion(meta.version));
        }
        Ok(Self {
            meta,
            index,
            chunks,
        })
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn index(&self) -> &IndexReader<R> {
        &self.index
    }

    pub fn chunks(&self) -> &ChunkReader<R> {
        &self.chunks
    }

    /// Approximate bytes held in memory for this block (index symbols and postings sample).
    pub fn memory_bytes(&self) -> usize {
        self.index.memory_bytes() + std::mem::size_of::<Self>()
    }

    /// Series matching `matchers` with only the chunks overlapping `[min_time, max_time]`;
    /// series without such chunks are left out.
    pub fn select(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<IndexSeries>, BlockError> {
        if max_time < self.meta.min_time || min_time >= self.meta.max_time {
            return Ok(Vec::new());
        }
        let refs = self.index.select(matchers)?;
        let mut out = self.index.series_many(&refs)?;
        for s in &mut out {
            s.chunks
                .retain(|c| c.max_time >= min_time && c.min_time <= max_time);
        }
        out.retain(|s| !s.chunks.is_empty());
        Ok(out)
    }

    /// The stored chunk for `meta`.
    pub fn chunk(&self, meta: &ChunkMeta) -> Result<RawChunk, BlockError> {
        Ok(self.chunks.chunk(meta.chunk_ref)?)
    }

    /// Decoded samples of `series` within `[min_time, max_time]` (XOR chunks only).
    pub fn samples(
        &self,
        series: &IndexSeries,
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<(i64, f64)>, BlockError> {
        let mut out = Vec::new();
        for meta in &series.chunks {
            let raw = self.chunk(meta)?;
            let chunk_err = |source| BlockError::Chunk {
                chunk_ref: meta.chunk_ref,
                source,
            };
            if raw.encoding != ENCODING_XOR {
                return Err(chunk_err(ChunkError::UnsupportedEncoding(raw.encoding)));
            }
            for s in decode_xor(&raw.data).map_err(chunk_err)? {
                let (t, v) = s.map_err(chunk_err)?;
                if t >= min_time && t <= max_time {
                    out.push((t, v));
                }
            }
        }
        Ok(out)
    }
}
