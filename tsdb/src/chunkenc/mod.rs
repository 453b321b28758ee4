//! Chunk encodings. Only Prometheus' XOR (Gorilla-style) float encoding is implemented.

mod xor;

pub use xor::{XorEncoder, XorIter, decode_xor, decode_xor_all, encode_xor};

use crate::encoding::DecodeError;
use thiserror::Error;

/// Encoding byte of an XOR chunk in chunk files and in the StoreAPI.
pub const ENCODING_XOR: u8 = 1;

/// Why a chunk could not be decoded.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// Less than the 2-byte sample count header.
    #[error("chunk too short: {0} bytes, need at least 2")]
    TooShort(usize),
    /// The bit stream ended (or a varint broke) before all announced samples were read.
    #[error("chunk truncated or corrupt at sample {sample} of {total}: {source}")]
    Truncated {
        sample: usize,
        total: usize,
        #[source]
        source: DecodeError,
    },
    /// A value header announced more than 64 significant bits.
    #[error(
        "invalid XOR value window at sample {sample}: {leading} leading zeros + {significant} significant bits > 64"
    )]
    BadValueWindow {
        sample: usize,
        leading: u8,
        significant: u8,
    },
    /// The chunk has an encoding this crate does not decode.
    #[error("unsupported chunk encoding {0}")]
    UnsupportedEncoding(u8),
}
