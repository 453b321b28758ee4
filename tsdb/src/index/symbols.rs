//! The symbol table: sorted, deduplicated strings referenced by their position.

use super::IndexError;
use crate::encoding::{Cursor, put_uvarint};

/// All symbols of an index, held in one string buffer plus one offset per symbol.
#[derive(Debug, Clone, Default)]
pub struct Symbols {
    data: String,
    /// Start of symbol i in `data`; one extra entry marks the end of the last.
    starts: Vec<u32>,
}

impl Symbols {
    /// Parses a symbol table section body (`#symbols <4b>` then uvarint-prefixed strings).
    pub fn parse(body: &[u8], offset: u64) -> Result<Self, IndexError> {
        let err = IndexError::decode("symbols", offset);
        let mut c = Cursor::new(body);
        let n = c.be_u32().map_err(&err)?;
        // Each symbol takes at least one byte, which bounds the allocation.
        let mut starts = Vec::with_capacity((n as usize).min(c.remaining()) + 1);
        let mut data = String::with_capacity(c.remaining());
        for _ in 0..n {
            let s = c.uvarint_bytes().map_err(&err)?;
            let s =
                std::str::from_utf8(s).map_err(|e| IndexError::corrupt("symbols", offset, e))?;
            starts.push(data.len() as u32);
            data.push_str(s);
        }
        if data.len() > u32::MAX as usize {
            return Err(IndexError::corrupt("symbols", offset, "table over 4GiB"));
        }
        starts.push(data.len() as u32);
        Ok(Self { data, starts })
    }

    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// The symbol with reference `r`.
    pub fn get(&self, r: u32) -> Result<&str, IndexError> {
        let i = r as usize;
        let (Some(&a), Some(&b)) = (self.starts.get(i), self.starts.get(i + 1)) else {
            return Err(IndexError::UnknownSymbol(r));
        };
        self.data
            .get(a as usize..b as usize)
            .ok_or(IndexError::UnknownSymbol(r))
    }

    /// Bytes held in memory.
    pub fn memory_bytes(&self) -> usize {
        self.data.capacity() + self.starts.capacity() * 4
    }
}

/// Encodes the body of a symbol table for `sorted` (already sorted and deduplicated).
pub fn encode_symbols<'a>(
    sorted: impl ExactSizeIterator<Item = &'a str>,
) -> Result<Vec<u8>, IndexError> {
    let n = u32::try_from(sorted.len())
        .map_err(|_| IndexError::InvalidInput("more than 2^32 symbols".into()))?;
    let mut body = n.to_be_bytes().to_vec();
    for s in sorted {
        put_uvarint(&mut body, s.len() as u64);
        body.extend_from_slice(s.as_bytes());
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let syms = ["", "__name__", "a", "g", "job"];
        let body = encode_symbols(syms.iter().copied()).unwrap();
        let s = Symbols::parse(&body, 5).unwrap();
        assert_eq!(s.len(), 5);
        for (i, want) in syms.iter().enumerate() {
            assert_eq!(s.get(i as u32).unwrap(), *want);
        }
        assert!(matches!(s.get(5), Err(IndexError::UnknownSymbol(5))));
        assert!(Symbols::parse(&body[..body.len() - 1], 5).is_err());
        let mut bad = body.clone();
        bad[4 + 1 + 1] = 0xff; // invalid UTF-8 inside "__name__"
        assert!(Symbols::parse(&bad, 5).is_err());
    }
}
