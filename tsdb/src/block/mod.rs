//! Prometheus TSDB blocks: a directory `<ulid>/` holding `meta.json`, `index`, `chunks/NNNNNN`
//! and `tombstones`.

mod meta;
mod reader;
mod writer;

pub use meta::{
    BlockDesc, BlockMeta, BlockStats, Compaction, Downsample, META_VERSION, ThanosFile, ThanosMeta,
};
pub use reader::Block;
pub use writer::{BlockWriter, SAMPLES_PER_CHUNK, write_block};

use crate::chunkenc::ChunkError;
use crate::chunks::ChunkFileError;
use crate::index::IndexError;
use std::path::PathBuf;
use thiserror::Error;

pub const META_FILE: &str = "meta.json";
pub const INDEX_FILE: &str = "index";
pub const CHUNKS_DIR: &str = "chunks";
pub const TOMBSTONES_FILE: &str = "tombstones";

/// Why a block could not be read or written.
#[derive(Error, Debug)]
pub enum BlockError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid meta.json: {source}")]
    Meta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported meta.json version {0}")]
    MetaVersion(u32),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    ChunkFile(#[from] ChunkFileError),
    #[error("chunk {chunk_ref:#x}: {source}")]
    Chunk {
        chunk_ref: u64,
        #[source]
        source: ChunkError,
    },
    #[error("invalid block input: {0}")]
    Invalid(String),
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BlockError {
    let path = path.into();
    move |source| BlockError::Io { path, source }
}
