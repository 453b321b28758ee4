//! The index header kept on local disk per block (`<data dir>/<ULID>/index-header`): the byte
//! ranges of the index that every query touches (header, symbol table, postings offset table,
//! TOC), copied from the bucket once. [`IndexFile`] answers reads inside those ranges from the
//! local file and everything else (postings, series) from the bucket.
//!
//! File layout: `SKIH` | version u8 = 1 | index length u64 | n u32 | n × (offset u64, length
//! u64) | the n ranges' bytes | CRC32C of everything before, u32. All integers big-endian.

use super::remote::BucketFile;
use skein_tsdb::index::Toc;
use skein_tsdb::{FileRange, RangeRead};
use std::borrow::Cow;
use std::io;
use std::path::Path;

pub const HEADER_FILENAME: &str = "index-header";
const MAGIC: &[u8; 4] = b"SKIH";
const VERSION: u8 = 1;
const TOC_LEN: u64 = 52;

/// A byte range of the index held locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    off: u64,
    len: u64,
    /// Where its bytes start in the local file.
    local: u64,
}

/// The ranges of the index to keep locally, read from the bucket copy of the index.
pub fn header_ranges(index: &impl RangeRead) -> io::Result<Vec<(u64, u64)>> {
    let len = index.len();
    if len < 5 + TOC_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("index of {len} bytes is too small"),
        ));
    }
    let toc_pos = len - TOC_LEN;
    let toc = Toc::parse(&index.read_range(toc_pos, TOC_LEN)?, toc_pos)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let mut ranges = vec![(0, 5), (toc_pos, TOC_LEN)];
    for off in [toc.symbols, toc.postings_table] {
        if off == 0 {
            continue;
        }
        if off < 5 || off + 4 > toc_pos {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("TOC offset {off} outside the index"),
            ));
        }
        let head = index.read_range(off, 4)?;
        let b: [u8; 4] = head
            .as_ref()
            .try_into()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "short section length"))?;
        let total = 4 + u64::from(u32::from_be_bytes(b)) + 4;
        if off + total > toc_pos {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("section at {off} runs past the TOC"),
            ));
        }
        ranges.push((off, total));
    }
    ranges.sort();
    Ok(ranges)
}

/// Builds the header file's bytes from the bucket copy of the index.
pub fn build_header(index: &impl RangeRead) -> io::Result<Vec<u8>> {
    let ranges = header_ranges(index)?;
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&index.len().to_be_bytes());
    out.extend_from_slice(&(ranges.len() as u32).to_be_bytes());
    for &(off, len) in &ranges {
        out.extend_from_slice(&off.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
    }
    for &(off, len) in &ranges {
        out.extend_from_slice(&index.read_range(off, len)?);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(out)
}

fn bad(reason: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.into())
}

fn be_u64(b: &[u8], at: usize) -> io::Result<u64> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| bad("truncated index header"))
}

/// Checks a header file and returns its segments.
fn parse_header(b: &[u8], index_len: u64) -> io::Result<Vec<Segment>> {
    let (body, crc) = b
        .split_last_chunk::<4>()
        .ok_or_else(|| bad("truncated index header"))?;
    if crc32c::crc32c(body) != u32::from_be_bytes(*crc) {
        return Err(bad("index header checksum mismatch"));
    }
    if body.get(..4) != Some(MAGIC.as_slice()) || body.get(4) != Some(&VERSION) {
        return Err(bad("not an index header"));
    }
    if be_u64(body, 5)? != index_len {
        return Err(bad("index header is for an index of another size"));
    }
    let n = body
        .get(13..17)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| bad("truncated index header"))? as usize;
    let table_end = 17usize
        .checked_add(n.checked_mul(16).ok_or_else(|| bad("bad segment count"))?)
        .ok_or_else(|| bad("bad segment count"))?;
    let mut local = table_end as u64;
    let mut segs = Vec::with_capacity(n.min(16));
    for i in 0..n {
        let off = be_u64(body, 17 + 16 * i)?;
        let len = be_u64(body, 17 + 16 * i + 8)?;
        if off.checked_add(len).is_none_or(|e| e > index_len) {
            return Err(bad("index header segment outside the index"));
        }
        segs.push(Segment { off, len, local });
        local = local
            .checked_add(len)
            .ok_or_else(|| bad("bad segment length"))?;
    }
    if local != body.len() as u64 {
        return Err(bad("index header size does not match its segments"));
    }
    Ok(segs)
}

/// An index in the bucket with its header ranges served from the local header file.
#[derive(Debug)]
pub struct IndexFile {
    local: FileRange,
    segments: Vec<Segment>,
    remote: BucketFile,
}

impl IndexFile {
    /// Opens `dir/index-header` for `remote`, building (and atomically writing) it first when
    /// it is missing, corrupt or stale. Blocking: call from a blocking thread.
    pub fn open(dir: &Path, remote: BucketFile) -> io::Result<Self> {
        let path = dir.join(HEADER_FILENAME);
        let existing = std::fs::read(&path).ok();
        let segments = match existing.as_deref().map(|b| parse_header(b, remote.len())) {
            Some(Ok(s)) => s,
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!(path = %path.display(), error = %e, "rebuilding index header");
                }
                let data = build_header(&remote)?;
                let segs = parse_header(&data, remote.len())?;
                std::fs::create_dir_all(dir)?;
                let tmp = dir.join(format!("{HEADER_FILENAME}.tmp"));
                std::fs::write(&tmp, &data)?;
                std::fs::rename(&tmp, &path)?;
                segs
            }
        };
        Ok(Self {
            local: FileRange::open(&path)?,
            segments,
            remote,
        })
    }

    /// Bytes of the index served locally.
    pub fn local_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    pub fn remote(&self) -> &BucketFile {
        &self.remote
    }
}

impl RangeRead for IndexFile {
    fn len(&self) -> u64 {
        self.remote.len()
    }

    fn read_range(&self, off: u64, len: u64) -> io::Result<Cow<'_, [u8]>> {
        let end = off.saturating_add(len);
        for s in &self.segments {
            if off >= s.off && end <= s.off + s.len {
                return self.local.read_range(s.local + (off - s.off), len);
            }
        }
        self.remote.read_range(off, len)
    }
}
