//! Prometheus index format v2: symbols, series, postings and their offset table, read through
//! byte ranges and written sequentially.

mod matcher;
mod postings;
mod postings_table;
mod reader;
mod section;
mod series;
mod symbols;
mod toc;
mod writer;

pub use matcher::{MatchOp, Matcher};
pub use postings::{intersect, subtract, union_all};
pub use reader::IndexReader;
pub use series::{ChunkMeta, IndexSeries};
pub use toc::Toc;
pub use writer::{IndexWriter, SeriesToWrite};

use crate::encoding::DecodeError;
use thiserror::Error;

/// Index file magic number.
pub const MAGIC: u32 = 0xBAAA_D700;
/// The only index version read and written.
pub const FORMAT_V2: u8 = 2;
/// Magic (4 bytes) + version (1 byte).
pub const HEADER_LEN: u64 = 5;

/// A series reference: the series' byte offset in the index divided by 16.
pub type SeriesRef = u32;

/// Why an index could not be read or written.
#[derive(Error, Debug)]
pub enum IndexError {
    #[error("index I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("index too small: {0} bytes")]
    TooSmall(u64),
    #[error("bad index magic {0:#010x}")]
    BadMagic(u32),
    #[error("unsupported index version {0} (only 2)")]
    UnsupportedVersion(u8),
    #[error("CRC32C mismatch in {section} at offset {offset}")]
    Checksum { section: &'static str, offset: u64 },
    #[error("corrupt {section} at offset {offset}: {reason}")]
    Corrupt {
        section: &'static str,
        offset: u64,
        reason: String,
    },
    #[error("symbol reference {0} out of range")]
    UnknownSymbol(u32),
    #[error("invalid input for index writer: {0}")]
    InvalidInput(String),
}

impl IndexError {
    pub(crate) fn corrupt(section: &'static str, offset: u64, reason: impl ToString) -> Self {
        Self::Corrupt {
            section,
            offset,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn decode(section: &'static str, offset: u64) -> impl Fn(DecodeError) -> Self {
        move |e| Self::corrupt(section, offset, e)
    }
}
