//! Library side of `skein tools bucket ls | inspect | verify`: printable descriptions of the
//! blocks in a bucket and a full check of one block.

use super::block::{BlockLoader, LoadedBlock};
use super::cache::{CacheMetrics, PageCache};
use super::remote::Fetcher;
use skein_objstore::{Bucket, BucketError, ObjectInfo, Ulid};
use skein_tsdb::chunkenc::{ENCODING_XOR, decode_xor_all};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

#[derive(Error, Debug)]
pub enum ToolError {
    #[error("bucket: {0}")]
    Bucket(#[from] BucketError),
    #[error("block {0} not found in the bucket")]
    NotFound(Ulid),
    #[error("the tools must run inside a tokio runtime")]
    NoRuntime,
}

/// How complete a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockState {
    Complete,
    /// No meta.json: an upload in progress or abandoned.
    Partial,
    MarkedForDeletion,
    /// meta.json does not parse.
    BadMeta,
}

impl fmt::Display for BlockState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlockState::Complete => "complete",
            BlockState::Partial => "partial",
            BlockState::MarkedForDeletion => "marked-for-deletion",
            BlockState::BadMeta => "bad-meta",
        })
    }
}

/// One block of a bucket listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockListing {
    pub id: Ulid,
    pub state: BlockState,
    pub min_time: i64,
    pub max_time: i64,
    pub labels: BTreeMap<String, String>,
    pub level: u32,
    pub resolution: i64,
    pub source: String,
    pub num_series: u64,
    pub num_samples: u64,
    pub num_chunks: u64,
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn format_labels(l: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

impl fmt::Display for BlockListing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if matches!(self.state, BlockState::Partial | BlockState::BadMeta) {
            return write!(f, "{}  {}", self.id, self.state);
        }
        let hours = (self.max_time - self.min_time) as f64 / 3_600_000.0;
        write!(
            f,
            "{}  {}  {}  {:.2}h  series={} samples={} chunks={}  level={} resolution={} source={}  {}",
            self.id,
            format_ms(self.min_time),
            format_ms(self.max_time),
            hours,
            self.num_series,
            self.num_samples,
            self.num_chunks,
            self.level,
            self.resolution,
            if self.source.is_empty() {
                "-"
            } else {
                &self.source
            },
            format_labels(&self.labels),
        )?;
        if self.state != BlockState::Complete {
            write!(f, "  [{}]", self.state)?;
        }
        Ok(())
    }
}

fn empty_listing(id: Ulid, state: BlockState) -> BlockListing {
    BlockListing {
        id,
        state,
        min_time: 0,
        max_time: 0,
        labels: BTreeMap::new(),
        level: 0,
        resolution: 0,
        source: String::new(),
        num_series: 0,
        num_samples: 0,
        num_chunks: 0,
    }
}

async fn describe(bucket: &Bucket, id: Ulid) -> Result<BlockListing, BucketError> {
    let meta = match bucket.block_meta(id).await {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(empty_listing(id, BlockState::Partial)),
        Err(BucketError::InvalidBlock { .. }) => return Ok(empty_listing(id, BlockState::BadMeta)),
        Err(e) => return Err(e),
    };
    let marked = bucket.deletion_mark(id).await.ok().flatten().is_some();
    let thanos = meta.thanos.clone().unwrap_or_default();
    Ok(BlockListing {
        id,
        state: if marked {
            BlockState::MarkedForDeletion
        } else {
            BlockState::Complete
        },
        min_time: meta.min_time,
        max_time: meta.max_time,
        labels: thanos.labels,
        level: meta.compaction.level,
        resolution: thanos.downsample.resolution,
        source: thanos.source,
        num_series: meta.stats.num_series,
        num_samples: meta.stats.num_samples,
        num_chunks: meta.stats.num_chunks,
    })
}

/// Every block directory of the bucket, oldest ULID first.
pub async fn list_blocks(bucket: &Bucket) -> Result<Vec<BlockListing>, BucketError> {
    let mut out = Vec::new();
    for id in bucket.list_block_ids().await? {
        out.push(describe(bucket, id).await?);
    }
    Ok(out)
}

/// Index statistics of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSummary {
    pub symbols: usize,
    pub series: usize,
    /// Label names with their number of values.
    pub label_names: Vec<(String, usize)>,
}

/// One block in detail.
#[derive(Debug, Clone)]
pub struct BlockInspection {
    pub listing: BlockListing,
    pub files: Vec<ObjectInfo>,
    pub index: Option<IndexSummary>,
    /// Why the block could not be opened, if it could not.
    pub open_error: Option<String>,
}

impl fmt::Display for BlockInspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.listing)?;
        writeln!(f, "files:")?;
        for o in &self.files {
            writeln!(f, "  {:>12}  {}", o.size, o.path)?;
        }
        if let Some(i) = &self.index {
            writeln!(f, "index: {} symbols, {} series", i.symbols, i.series)?;
            for (n, c) in &i.label_names {
                writeln!(f, "  {n}: {c} values")?;
            }
        }
        if let Some(e) = &self.open_error {
            writeln!(f, "cannot open block: {e}")?;
        }
        Ok(())
    }
}

/// A throw-away loader for tool runs (small caches, temp dir for the index header).
fn tool_loader(bucket: &Bucket) -> Result<(BlockLoader, TempDir), ToolError> {
    let handle = tokio::runtime::Handle::try_current().map_err(|_| ToolError::NoRuntime)?;
    let dir = TempDir::new();
    Ok((
        BlockLoader {
            fetcher: Fetcher::new(bucket.clone(), handle),
            data_dir: dir.0.clone(),
            index_cache: Arc::new(PageCache::new(64 << 20, CacheMetrics::default())),
            chunk_cache: Arc::new(PageCache::new(64 << 20, CacheMetrics::default())),
            index_page_bytes: 64 << 10,
            chunk_page_bytes: 256 << 10,
        },
        dir,
    ))
}

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!(
            "skein-tools-{}-{}",
            std::process::id(),
            Ulid::new()
        ));
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn open(bucket: &Bucket, loader: &BlockLoader, id: Ulid) -> Result<Arc<LoadedBlock>, String> {
    let raw = match bucket.block_meta_bytes(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err("no meta.json (partial block)".into()),
        Err(e) => return Err(e.to_string()),
    };
    loader
        .load(id, &raw)
        .await
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Describes one block: its meta, its objects and its index.
pub async fn inspect_block(bucket: &Bucket, id: Ulid) -> Result<BlockInspection, ToolError> {
    let files = bucket.list_objects(&id.to_string()).await?;
    if files.is_empty() {
        return Err(ToolError::NotFound(id));
    }
    let listing = describe(bucket, id).await?;
    let (loader, _dir) = tool_loader(bucket)?;
    let (index, open_error) = match open(bucket, &loader, id).await {
        Ok(b) => {
            let summary = tokio::task::spawn_blocking(move || -> Result<IndexSummary, String> {
                let ix = b.block.index();
                let names = ix.label_names();
                Ok(IndexSummary {
                    symbols: ix.symbol_count(),
                    series: ix.all_postings().map_err(|e| e.to_string())?.len(),
                    label_names: names
                        .into_iter()
                        .map(|n| {
                            let c = ix.label_value_count(&n);
                            (n, c)
                        })
                        .collect(),
                })
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
            match summary {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e)),
            }
        }
        Err(e) => (None, Some(e)),
    };
    Ok(BlockInspection {
        listing,
        files,
        index,
        open_error,
    })
}

/// The result of checking a block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub id: Option<Ulid>,
    pub series: u64,
    pub chunks: u64,
    pub samples: u64,
    /// Everything found wrong; empty means the block is healthy.
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.id.map(|i| i.to_string()).unwrap_or_default();
        if self.is_ok() {
            write!(
                f,
                "{id}: OK ({} series, {} chunks, {} samples)",
                self.series, self.chunks, self.samples
            )
        } else {
            writeln!(f, "{id}: {} problem(s)", self.problems.len())?;
            for p in &self.problems {
                writeln!(f, "  - {p}")?;
            }
            Ok(())
        }
    }
}

/// At most this many problems are collected per block.
const MAX_PROBLEMS: usize = 100;

fn check_all(b: &LoadedBlock, r: &mut VerifyReport) {
    let meta = b.meta().clone();
    let ix = b.block.index();
    let refs = match ix.all_postings() {
        Ok(r) => r,
        Err(e) => {
            r.problems.push(format!("all-series postings: {e}"));
            return;
        }
    };
    let mut prev: Option<Vec<skein_tsdb::Label>> = None;
    for batch in refs.chunks(1024) {
        let series = match ix.series_many(batch) {
            Ok(s) => s,
            Err(e) => {
                r.problems.push(format!("series: {e}"));
                return;
            }
        };
        for s in series {
            r.series += 1;
            if s.labels.windows(2).any(|w| w[0].name >= w[1].name) {
                r.problems.push(format!(
                    "series {}: labels not sorted or repeated",
                    s.series_ref
                ));
            }
            if let Some(p) = &prev
                && *p >= s.labels
            {
                r.problems.push(format!(
                    "series {}: out of order in the index",
                    s.series_ref
                ));
            }
            let mut last_max = i64::MIN;
            for cm in &s.chunks {
                r.chunks += 1;
                if cm.min_time < meta.min_time || cm.max_time >= meta.max_time {
                    r.problems.push(format!(
                        "series {} chunk {:#x}: [{}, {}] outside block [{}, {})",
                        s.series_ref,
                        cm.chunk_ref,
                        cm.min_time,
                        cm.max_time,
                        meta.min_time,
                        meta.max_time
                    ));
                }
                if cm.min_time > cm.max_time || cm.min_time <= last_max && last_max != i64::MIN {
                    r.problems.push(format!(
                        "series {} chunk {:#x}: overlapping or inverted time range",
                        s.series_ref, cm.chunk_ref
                    ));
                }
                last_max = cm.max_time;
                match b.block.chunk(cm) {
                    Err(e) => r.problems.push(format!("series {}: {e}", s.series_ref)),
                    Ok(raw) if raw.encoding == ENCODING_XOR => match decode_xor_all(&raw.data) {
                        Ok(samples) => {
                            r.samples += samples.len() as u64;
                            let first = samples.first().map(|x| x.0);
                            let last = samples.last().map(|x| x.0);
                            if first != Some(cm.min_time) || last != Some(cm.max_time) {
                                r.problems.push(format!(
                                    "series {} chunk {:#x}: samples span {first:?}..{last:?}, index says {}..{}",
                                    s.series_ref, cm.chunk_ref, cm.min_time, cm.max_time
                                ));
                            }
                        }
                        Err(e) => r.problems.push(format!(
                            "series {} chunk {:#x}: {e}",
                            s.series_ref, cm.chunk_ref
                        )),
                    },
                    Ok(_) => {}
                }
                if r.problems.len() >= MAX_PROBLEMS {
                    return;
                }
            }
            prev = Some(s.labels);
        }
    }
    let st = &meta.stats;
    for (what, want, got) in [
        ("series", st.num_series, r.series),
        ("chunks", st.num_chunks, r.chunks),
        ("samples", st.num_samples, r.samples),
    ] {
        if want != 0 && want != got {
            r.problems.push(format!(
                "meta.json counts {want} {what}, the block holds {got}"
            ));
        }
    }
}

/// Checks one block fully: meta.json, its files against the Thanos file list, index
/// structure and order, every chunk's checksum and samples, and meta.json's counts.
pub async fn verify_block(bucket: &Bucket, id: Ulid) -> Result<VerifyReport, ToolError> {
    let mut report = VerifyReport {
        id: Some(id),
        ..VerifyReport::default()
    };
    if bucket.list_objects(&id.to_string()).await?.is_empty() {
        return Err(ToolError::NotFound(id));
    }
    let (loader, _dir) = tool_loader(bucket)?;
    let b = match open(bucket, &loader, id).await {
        Ok(b) => b,
        Err(e) => {
            report.problems.push(format!("cannot open: {e}"));
            return Ok(report);
        }
    };
    let r = tokio::task::spawn_blocking(move || {
        let mut r = report;
        check_all(&b, &mut r);
        r
    })
    .await
    .map_err(|e| {
        ToolError::Bucket(BucketError::InvalidBlock {
            block: id.to_string(),
            reason: format!("verify task failed: {e}"),
        })
    })?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ms(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(format_ms(-1000), "1969-12-31T23:59:59Z");
    }
}
