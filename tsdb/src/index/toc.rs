//! The table of contents closing an index: six big-endian u64 section offsets and a CRC32C.

use super::IndexError;
use crate::encoding::Cursor;

/// Length of the TOC including its checksum.
pub const TOC_LEN: u64 = 6 * 8 + 4;

/// Section offsets of an index file. Zero means the section is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Toc {
    pub symbols: u64,
    pub series: u64,
    pub label_indices: u64,
    pub label_indices_table: u64,
    pub postings: u64,
    pub postings_table: u64,
}

impl Toc {
    /// Parses the last [`TOC_LEN`] bytes of an index; `offset` is where they start.
    pub fn parse(b: &[u8], offset: u64) -> Result<Self, IndexError> {
        let (body, crc) = b
            .split_last_chunk::<4>()
            .filter(|(body, _)| body.len() == 48)
            .ok_or_else(|| IndexError::corrupt("toc", offset, "wrong length"))?;
        if crc32c::crc32c(body) != u32::from_be_bytes(*crc) {
            return Err(IndexError::Checksum {
                section: "toc",
                offset,
            });
        }
        let mut c = Cursor::new(body);
        let mut next = || c.be_u64().map_err(IndexError::decode("toc", offset));
        Ok(Self {
            symbols: next()?,
            series: next()?,
            label_indices: next()?,
            label_indices_table: next()?,
            postings: next()?,
            postings_table: next()?,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(TOC_LEN as usize);
        for v in [
            self.symbols,
            self.series,
            self.label_indices,
            self.label_indices_table,
            self.postings,
            self.postings_table,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_crc() {
        let t = Toc {
            symbols: 5,
            series: 35,
            label_indices: 69,
            label_indices_table: 160,
            postings: 112,
            postings_table: 189,
        };
        let mut b = t.encode();
        assert_eq!(b.len() as u64, TOC_LEN);
        assert_eq!(Toc::parse(&b, 0).unwrap(), t);
        b[3] ^= 1;
        assert!(matches!(
            Toc::parse(&b, 0),
            Err(IndexError::Checksum { .. })
        ));
        assert!(Toc::parse(&b[1..], 0).is_err());
    }
}
