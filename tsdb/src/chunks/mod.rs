//! Chunk segment files (`chunks/000001`, ...): an 8-byte header, then chunks framed as
//! `len <uvarint> | encoding <1b> | data | CRC32C(encoding, data) <4b>`.
//! A chunk reference is `segment index (0-based) << 32 | byte offset`.

mod reader;
mod writer;

pub use reader::ChunkReader;
pub use writer::ChunkWriter;

use thiserror::Error;

/// Segment file magic number.
pub const MAGIC: u32 = 0x85BD_40DD;
/// Segment file format version.
pub const FORMAT_V1: u8 = 1;
/// Magic, version and 3 padding bytes.
pub const SEGMENT_HEADER_LEN: u64 = 8;
/// Segments are cut before they would grow past this size.
pub const MAX_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;

/// A chunk as stored: its encoding byte and encoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawChunk {
    pub encoding: u8,
    pub data: Vec<u8>,
}

/// Builds a chunk reference.
pub fn chunk_ref(segment: u32, offset: u32) -> u64 {
    (u64::from(segment) << 32) | u64::from(offset)
}

/// Splits a chunk reference into (segment index, offset).
pub fn split_ref(r: u64) -> (u32, u32) {
    ((r >> 32) as u32, r as u32)
}

/// Why chunk segments could not be read or written.
#[derive(Error, Debug)]
pub enum ChunkFileError {
    #[error("chunk file I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("chunk segment {segment}: bad magic {magic:#010x}")]
    BadMagic { segment: u32, magic: u32 },
    #[error("chunk segment {segment}: unsupported version {version}")]
    UnsupportedVersion { segment: u32, version: u8 },
    #[error("chunk segment {segment} missing (block has {available} segment files)")]
    MissingSegment { segment: u32, available: usize },
    #[error("chunk segment file names are not consecutive: {0}")]
    SegmentGap(String),
    #[error("chunk {chunk_ref:#x}: CRC32C mismatch")]
    Checksum { chunk_ref: u64 },
    #[error("chunk {chunk_ref:#x}: {reason}")]
    Corrupt { chunk_ref: u64, reason: String },
    #[error("chunk of {0} bytes is too large")]
    TooLarge(usize),
}
