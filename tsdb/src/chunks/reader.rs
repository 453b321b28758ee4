//! Reading chunks by reference from segment files through byte ranges.

use super::{ChunkFileError, FORMAT_V1, MAGIC, RawChunk, SEGMENT_HEADER_LEN, split_ref};
use crate::encoding::Cursor;
use crate::range::{FileRange, RangeRead, read_up_to};
use std::path::Path;

/// Bytes read at a chunk's offset before its length is known; most chunks fit.
const CHUNK_GUESS: u64 = 1024;

/// The segment files of one block.
#[derive(Debug)]
pub struct ChunkReader<R> {
    segments: Vec<R>,
}

impl ChunkReader<FileRange> {
    /// Opens `dir/000001`, `dir/000002`, ... (names must be consecutive from 1; an empty
    /// directory is a block without chunks).
    pub fn open_dir(dir: &Path) -> Result<Self, ChunkFileError> {
        let mut names: Vec<(u32, std::path::PathBuf)> = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name();
            let Some(n) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            names.push((n, e.path()));
        }
        names.sort();
        for (i, (n, p)) in names.iter().enumerate() {
            if *n as usize != i + 1 {
                return Err(ChunkFileError::SegmentGap(p.display().to_string()));
            }
        }
        let segments = names
            .iter()
            .map(|(_, p)| FileRange::open(p))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(segments)
    }
}

impl<R: RangeRead> ChunkReader<R> {
    /// Checks each segment's header.
    pub fn new(segments: Vec<R>) -> Result<Self, ChunkFileError> {
        for (i, s) in segments.iter().enumerate() {
            let segment = i as u32;
            let head = s.read_range(0, SEGMENT_HEADER_LEN)?;
            let mut c = Cursor::new(&head);
            let magic = c.be_u32().map_err(std::io::Error::other)?;
            if magic != MAGIC {
                return Err(ChunkFileError::BadMagic { segment, magic });
            }
            let version = c.u8().map_err(std::io::Error::other)?;
            if version != FORMAT_V1 {
                return Err(ChunkFileError::UnsupportedVersion { segment, version });
            }
        }
        Ok(Self { segments })
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Reads and checks the chunk at `chunk_ref`.
    pub fn chunk(&self, chunk_ref: u64) -> Result<RawChunk, ChunkFileError> {
        let (seg, off) = split_ref(chunk_ref);
        let s = self
            .segments
            .get(seg as usize)
            .ok_or(ChunkFileError::MissingSegment {
                segment: seg,
                available: self.segments.len(),
            })?;
        let off = u64::from(off);
        let corrupt = |reason: String| ChunkFileError::Corrupt { chunk_ref, reason };
        if off < SEGMENT_HEADER_LEN || off >= s.len() {
            return Err(corrupt(format!(
                "offset {off} outside segment of {} bytes",
                s.len()
            )));
        }
        let buf = read_up_to(s, off, CHUNK_GUESS)?;
        let mut c = Cursor::new(&buf);
        let len = c.uvarint().map_err(|e| corrupt(format!("length: {e}")))?;
        let head = c.position() as u64;
        let total = head
            .checked_add(len)
            .and_then(|t| t.checked_add(5))
            .ok_or_else(|| corrupt("length overflow".into()))?;
        if off.saturating_add(total) > s.len() {
            return Err(corrupt(format!(
                "chunk of {len} bytes runs past the segment end"
            )));
        }
        let full;
        let frame: &[u8] = if total <= buf.len() as u64 {
            buf.get(head as usize..total as usize)
                .ok_or_else(|| corrupt("short read".into()))?
        } else {
            full = s.read_range(off + head, total - head)?;
            &full
        };
        let (body, crc) = frame
            .split_last_chunk::<4>()
            .ok_or_else(|| corrupt("missing checksum".into()))?;
        if crc32c::crc32c(body) != u32::from_be_bytes(*crc) {
            return Err(ChunkFileError::Checksum { chunk_ref });
        }
        let (&encoding, data) = body
            .split_first()
            .ok_or_else(|| corrupt("missing encoding byte".into()))?;
        Ok(RawChunk {
            encoding,
            data: data.to_vec(),
        })
    }
}
