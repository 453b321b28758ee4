//! Series entries: label symbol references and chunk metadata, framed as
//! `len <uvarint> | body | CRC32C(body) <4b>` and aligned to 16 bytes in the file.

use super::IndexError;
use super::symbols::Symbols;
use crate::encoding::{Cursor, put_uvarint, put_varint};
use crate::labels::Label;

/// Where a chunk lives and which time range it covers (both ends inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Segment file index (0-based) in the upper 32 bits, byte offset in the lower 32.
    pub chunk_ref: u64,
    pub min_time: i64,
    pub max_time: i64,
}

/// Decodes a series body (after the length, without the CRC).
pub fn decode_series(
    body: &[u8],
    symbols: &Symbols,
    offset: u64,
) -> Result<(Vec<Label>, Vec<ChunkMeta>), IndexError> {
    let err = IndexError::decode("series", offset);
    let mut c = Cursor::new(body);
    let nlabels = c.uvarint().map_err(&err)?;
    // Each label takes at least two bytes.
    let mut labels = Vec::with_capacity((nlabels as usize).min(c.remaining() / 2));
    for _ in 0..nlabels {
        let name = sym_ref(&mut c, offset)?;
        let value = sym_ref(&mut c, offset)?;
        labels.push(Label::new(symbols.get(name)?, symbols.get(value)?));
    }
    let nchunks = c.uvarint().map_err(&err)?;
    let mut chunks = Vec::with_capacity((nchunks as usize).min(c.remaining() / 3));
    let mut prev: Option<ChunkMeta> = None;
    for _ in 0..nchunks {
        let meta = match prev {
            None => {
                let min_time = c.varint().map_err(&err)?;
                let d = c.uvarint().map_err(&err)?;
                let chunk_ref = c.uvarint().map_err(&err)?;
                ChunkMeta {
                    chunk_ref,
                    min_time,
                    max_time: min_time.wrapping_add(d as i64),
                }
            }
            Some(p) => {
                let min_time = p.max_time.wrapping_add(c.uvarint().map_err(&err)? as i64);
                let max_time = min_time.wrapping_add(c.uvarint().map_err(&err)? as i64);
                let chunk_ref = p.chunk_ref.wrapping_add(c.varint().map_err(&err)? as u64);
                ChunkMeta {
                    chunk_ref,
                    min_time,
                    max_time,
                }
            }
        };
        chunks.push(meta);
        prev = Some(meta);
    }
    Ok((labels, chunks))
}

fn sym_ref(c: &mut Cursor<'_>, offset: u64) -> Result<u32, IndexError> {
    let v = c.uvarint().map_err(IndexError::decode("series", offset))?;
    u32::try_from(v).map_err(|_| IndexError::corrupt("series", offset, "symbol ref over 32 bits"))
}

/// Encodes a full series entry (length, body, CRC). `labels` are (name, value) symbol refs.
/// Chunks must be sorted by time and not overlap.
pub fn encode_series(labels: &[(u32, u32)], chunks: &[ChunkMeta]) -> Result<Vec<u8>, IndexError> {
    let mut body = Vec::with_capacity(8 + labels.len() * 4 + chunks.len() * 12);
    put_uvarint(&mut body, labels.len() as u64);
    for &(n, v) in labels {
        put_uvarint(&mut body, u64::from(n));
        put_uvarint(&mut body, u64::from(v));
    }
    put_uvarint(&mut body, chunks.len() as u64);
    let mut prev: Option<&ChunkMeta> = None;
    for c in chunks {
        if c.max_time < c.min_time {
            return Err(IndexError::InvalidInput(format!(
                "chunk max time {} before min time {}",
                c.max_time, c.min_time
            )));
        }
        match prev {
            None => {
                put_varint(&mut body, c.min_time);
                put_uvarint(&mut body, c.max_time.wrapping_sub(c.min_time) as u64);
                put_uvarint(&mut body, c.chunk_ref);
            }
            Some(p) => {
                if c.min_time < p.max_time {
                    return Err(IndexError::InvalidInput(format!(
                        "chunk starting at {} overlaps previous chunk ending at {}",
                        c.min_time, p.max_time
                    )));
                }
                put_uvarint(&mut body, c.min_time.wrapping_sub(p.max_time) as u64);
                put_uvarint(&mut body, c.max_time.wrapping_sub(c.min_time) as u64);
                put_varint(&mut body, c.chunk_ref.wrapping_sub(p.chunk_ref) as i64);
            }
        }
        prev = Some(c);
    }
    let mut out = Vec::with_capacity(body.len() + 14);
    put_uvarint(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    Ok(out)
}

/// Splits a framed series entry at the start of `buf` into its checked body.
/// Returns `Ok(None)` when `buf` is too short to hold the whole entry.
pub fn frame_series(buf: &[u8], offset: u64) -> Result<Option<&[u8]>, IndexError> {
    let mut c = Cursor::new(buf);
    let len = match c.uvarint() {
        Ok(l) => l,
        Err(crate::encoding::DecodeError::UnexpectedEof) => return Ok(None),
        Err(e) => return Err(IndexError::corrupt("series", offset, e)),
    };
    let Ok(len) = usize::try_from(len) else {
        return Err(IndexError::corrupt("series", offset, "length overflow"));
    };
    if c.remaining() < len.saturating_add(4) {
        return Ok(None);
    }
    let body = c.bytes(len).map_err(IndexError::decode("series", offset))?;
    let crc = c.be_u32().map_err(IndexError::decode("series", offset))?;
    if crc32c::crc32c(body) != crc {
        return Err(IndexError::Checksum {
            section: "series",
            offset,
        });
    }
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::symbols::encode_symbols;

    #[test]
    fn round_trip() {
        let syms =
            Symbols::parse(&encode_symbols(["a", "b", "c"].into_iter()).unwrap(), 0).unwrap();
        let chunks = [
            ChunkMeta {
                chunk_ref: 8,
                min_time: -100,
                max_time: 50,
            },
            ChunkMeta {
                chunk_ref: 80,
                min_time: 50,
                max_time: 900,
            },
            ChunkMeta {
                chunk_ref: (1 << 32) | 8,
                min_time: 1000,
                max_time: 1000,
            },
        ];
        let enc = encode_series(&[(0, 1), (2, 2)], &chunks).unwrap();
        let body = frame_series(&enc, 0).unwrap().unwrap();
        let (labels, got) = decode_series(body, &syms, 0).unwrap();
        assert_eq!(labels, vec![Label::new("a", "b"), Label::new("c", "c")]);
        assert_eq!(got, chunks);
        assert!(frame_series(&enc[..enc.len() - 1], 0).unwrap().is_none());
        let mut bad = enc.clone();
        bad[2] ^= 0xff;
        assert!(matches!(
            frame_series(&bad, 0),
            Err(IndexError::Checksum { .. })
        ));
        let bad_sym = encode_series(&[(0, 7)], &[]).unwrap();
        let body = frame_series(&bad_sym, 0).unwrap().unwrap();
        assert!(matches!(
            decode_series(body, &syms, 0),
            Err(IndexError::UnknownSymbol(7))
        ));
    }
}

/// A series as read from the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSeries {
    pub series_ref: super::SeriesRef,
    pub labels: Vec<Label>,
    pub chunks: Vec<ChunkMeta>,
}
