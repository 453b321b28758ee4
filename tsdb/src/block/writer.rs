//! Writing a block: chunks are written as series arrive; the index, tombstones and meta.json
//! when the block is finished. The block is built in `<ulid>.tmp` and renamed into place.

use super::{
    BlockError, BlockMeta, BlockStats, CHUNKS_DIR, INDEX_FILE, META_FILE, TOMBSTONES_FILE,
    ThanosFile, ThanosMeta, io_err,
};
use crate::chunkenc::{ENCODING_XOR, XorEncoder};
use crate::chunks::{ChunkWriter, RawChunk};
use crate::index::{ChunkMeta, IndexWriter, SeriesToWrite};
use crate::labels::Label;
use crate::ulid::Ulid;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Samples per XOR chunk, as Prometheus cuts them.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// Tombstones file magic; an empty file is magic, version 1 and the CRC of nothing.
const TOMBSTONES_MAGIC: u32 = 0x0130_BA30;

/// Builds one block under a parent directory.
#[derive(Debug)]
pub struct BlockWriter {
    parent: PathBuf,
    tmp: PathBuf,
    ulid: Ulid,
    chunks: ChunkWriter,
    series: Vec<SeriesToWrite>,
    stats: BlockStats,
    min_time: i64,
    max_time: i64,
    thanos: Option<ThanosMeta>,
    /// Set once the block has been moved into place.
    finished: bool,
}

impl Drop for BlockWriter {
    /// An unfinished block (dropped or failed) leaves no temporary directory behind.
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Sorts labels by name, drops empty values (Prometheus treats them as absent) and rejects
/// empty or repeated names.
fn normalize(mut labels: Vec<Label>) -> Result<Vec<Label>, BlockError> {
    labels.retain(|l| !l.value.is_empty());
    labels.sort();
    if labels.is_empty() {
        return Err(BlockError::Invalid("series without labels".into()));
    }
    for w in labels.windows(2) {
        if w[0].name == w[1].name {
            return Err(BlockError::Invalid(format!("label {} repeated", w[0].name)));
        }
    }
    if labels.iter().any(|l| l.name.is_empty()) {
        return Err(BlockError::Invalid("empty label name".into()));
    }
    Ok(labels)
}

impl BlockWriter {
    /// Starts a block with a new ULID in `parent`.
    pub fn new(parent: &Path) -> Result<Self, BlockError> {
        Self::with_ulid(parent, Ulid::new())
    }

    pub fn with_ulid(parent: &Path, ulid: Ulid) -> Result<Self, BlockError> {
        let tmp = parent.join(format!("{ulid}.tmp"));
        std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let chunks = ChunkWriter::new(&tmp.join(CHUNKS_DIR))?;
        Ok(Self {
            parent: parent.to_path_buf(),
            tmp,
            ulid,
            chunks,
            series: Vec::new(),
            stats: BlockStats::default(),
            min_time: i64::MAX,
            max_time: i64::MIN,
            thanos: None,
            finished: false,
        })
    }

    pub fn ulid(&self) -> Ulid {
        self.ulid
    }

    /// Adds a Thanos section to meta.json (its file list is filled in by `finish`).
    pub fn set_thanos(&mut self, thanos: ThanosMeta) {
        self.thanos = Some(thanos);
    }

    /// Adds a series with samples sorted by strictly increasing timestamp; they are cut into
    /// XOR chunks of [`SAMPLES_PER_CHUNK`]. A series without samples is not written.
    pub fn add_series(
        &mut self,
        labels: Vec<Label>,
        samples: &[(i64, f64)],
    ) -> Result<(), BlockError> {
        let labels = normalize(labels)?;
        if let Some(w) = samples.windows(2).find(|w| w[1].0 <= w[0].0) {
            return Err(BlockError::Invalid(format!(
                "timestamps not increasing: {} then {}",
                w[0].0, w[1].0
            )));
        }
        let mut metas = Vec::with_capacity(samples.len().div_ceil(SAMPLES_PER_CHUNK));
        for part in samples.chunks(SAMPLES_PER_CHUNK) {
            let (Some(first), Some(last)) = (part.first(), part.last()) else {
                continue;
            };
            let mut enc = XorEncoder::new();
            for &(t, v) in part {
                enc.append(t, v);
            }
            let chunk_ref = self.chunks.write(ENCODING_XOR, enc.bytes())?;
            metas.push(ChunkMeta {
                chunk_ref,
                min_time: first.0,
                max_time: last.0,
            });
        }
        self.push(labels, metas, samples.len() as u64);
        Ok(())
    }

    /// Adds a series from already encoded chunks `(min_time, max_time, chunk)`, sorted by time
    /// and not overlapping. `samples` is the total sample count, for the block stats.
    pub fn add_chunks(
        &mut self,
        labels: Vec<Label>,
        chunks: &[(i64, i64, RawChunk)],
        samples: u64,
    ) -> Result<(), BlockError> {
        let labels = normalize(labels)?;
        let mut metas: Vec<ChunkMeta> = Vec::with_capacity(chunks.len());
        for (min_time, max_time, c) in chunks {
            if max_time < min_time || metas.last().is_some_and(|p| p.max_time >= *min_time) {
                return Err(BlockError::Invalid(format!(
                    "chunk [{min_time}, {max_time}] out of order or overlapping"
                )));
            }
            let chunk_ref = self.chunks.write(c.encoding, &c.data)?;
            metas.push(ChunkMeta {
                chunk_ref,
                min_time: *min_time,
                max_time: *max_time,
            });
        }
        self.push(labels, metas, samples);
        Ok(())
    }

    fn push(&mut self, labels: Vec<Label>, chunks: Vec<ChunkMeta>, samples: u64) {
        let (Some(first), Some(last)) = (chunks.first(), chunks.last()) else {
            return;
        };
        self.min_time = self.min_time.min(first.min_time);
        self.max_time = self.max_time.max(last.max_time);
        self.stats.num_series += 1;
        self.stats.num_chunks += chunks.len() as u64;
        self.stats.num_samples += samples;
        self.series.push(SeriesToWrite { labels, chunks });
    }

    /// Writes index, tombstones and meta.json, and moves the block to `<parent>/<ulid>`.
    pub fn finish(mut self) -> Result<BlockMeta, BlockError> {
        let segments = self.chunks.close()?;
        self.series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let index_path = self.tmp.join(INDEX_FILE);
        let f = File::create(&index_path).map_err(io_err(&index_path))?;
        let mut w = BufWriter::new(f);
        let index_size = IndexWriter::write(&self.series, &mut w)?;
        let f = w.into_inner().map_err(|e| BlockError::Io {
            path: index_path.clone(),
            source: e.into_error(),
        })?;
        f.sync_all().map_err(io_err(&index_path))?;

        let tomb_path = self.tmp.join(TOMBSTONES_FILE);
        let mut tomb = TOMBSTONES_MAGIC.to_be_bytes().to_vec();
        tomb.push(1);
        tomb.extend_from_slice(&crc32c::crc32c(&[]).to_be_bytes());
        std::fs::write(&tomb_path, tomb).map_err(io_err(&tomb_path))?;

        let (min_time, max_time) = if self.series.is_empty() {
            (0, 0)
        } else {
            // maxTime is exclusive.
            (self.min_time, self.max_time.saturating_add(1))
        };
        let mut meta = BlockMeta::new(self.ulid, min_time, max_time, self.stats.clone());
        if let Some(mut t) = self.thanos.take() {
            if t.files.is_empty() {
                for (path, size) in &segments {
                    let name = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default();
                    t.files.push(ThanosFile {
                        rel_path: format!("{CHUNKS_DIR}/{name}"),
                        size_bytes: *size,
                    });
                }
                t.files.push(ThanosFile {
                    rel_path: INDEX_FILE.into(),
                    size_bytes: index_size,
                });
                t.files.push(ThanosFile {
                    rel_path: META_FILE.into(),
                    size_bytes: 0,
                });
            }
            meta.thanos = Some(t);
        }
        let meta_path = self.tmp.join(META_FILE);
        let json = meta.to_json().map_err(|source| BlockError::Meta {
            path: meta_path.clone(),
            source,
        })?;
        std::fs::write(&meta_path, json).map_err(io_err(&meta_path))?;

        let dest = self.parent.join(self.ulid.to_string());
        std::fs::rename(&self.tmp, &dest).map_err(io_err(&dest))?;
        self.finished = true;
        Ok(meta)
    }
}

/// Writes a block of `series` (labels, samples) into `parent` and returns its meta.
pub fn write_block(
    parent: &Path,
    series: impl IntoIterator<Item = (Vec<Label>, Vec<(i64, f64)>)>,
) -> Result<BlockMeta, BlockError> {
    let mut w = BlockWriter::new(parent)?;
    for (labels, samples) in series {
        w.add_series(labels, &samples)?;
    }
    w.finish()
}
