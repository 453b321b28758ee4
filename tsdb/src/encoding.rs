//! Low-level encodings shared by chunks and the index: a most-significant-bit-first bit
//! writer/reader (the layout of Prometheus' `bstream`), LEB128 varints and a bounds-checked
//! byte cursor for big-endian fields.

use thiserror::Error;

/// Why a byte or bit read failed.
#[derive(Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before the field was complete.
    #[error("unexpected end of data")]
    UnexpectedEof,
    /// A varint did not terminate within 10 bytes or overflowed 64 bits.
    #[error("varint overflows 64 bits")]
    VarintOverflow,
}

/// Appends bits to a byte vector, most significant bit first, with the same byte layout as
/// Prometheus' `bstream` (including its empty trailing byte after byte-aligned writes).
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    buf: Vec<u8>,
    /// Free bits left in the last byte of `buf` (0 means the next bit starts a new byte).
    free: u8,
}

impl BitWriter {
    /// Starts writing after `prefix` (which is kept as whole bytes).
    pub fn with_prefix(prefix: Vec<u8>) -> Self {
        Self {
            buf: prefix,
            free: 0,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.buf.push(0);
            self.free = 8;
        }
        self.free -= 1;
        if bit && let Some(last) = self.buf.last_mut() {
            *last |= 1 << self.free;
        }
    }

    /// Writes the low `nbits` bits of `value`, most significant first. `nbits` is at most 64.
    pub fn write_bits(&mut self, value: u64, nbits: u8) {
        let mut left = nbits.min(64);
        while left > 0 {
            if self.free == 0 {
                self.buf.push(0);
                self.free = 8;
            }
            let take = left.min(self.free);
            // The `take` bits of value just below bit position `left`.
            let chunk = (value >> (left - take)) & mask(take);
            self.free -= take;
            if let Some(last) = self.buf.last_mut() {
                *last |= (chunk as u8) << self.free;
            }
            left -= take;
        }
        // Prometheus' bstream writes whole bytes with `writeByte`, which always leaves an empty
        // trailing byte when it ends on a byte boundary. Mirror that so chunks are byte-identical.
        if nbits > 0 && nbits.is_multiple_of(8) && self.free == 0 {
            self.buf.push(0);
            self.free = 8;
        }
    }

    pub fn write_byte(&mut self, b: u8) {
        self.write_bits(u64::from(b), 8);
    }

    pub fn write_uvarint(&mut self, v: u64) {
        let mut tmp = Vec::with_capacity(10);
        put_uvarint(&mut tmp, v);
        for b in tmp {
            self.write_byte(b);
        }
    }

    pub fn write_varint(&mut self, v: i64) {
        self.write_uvarint(zigzag(v));
    }
}

fn mask(n: u8) -> u64 {
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

/// Reads bits most significant first from a byte slice.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Absolute bit position of the next bit.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub fn read_bit(&mut self) -> Result<bool, DecodeError> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or(DecodeError::UnexpectedEof)?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads `nbits` (at most 64) bits as an unsigned integer.
    pub fn read_bits(&mut self, nbits: u8) -> Result<u64, DecodeError> {
        let nbits = usize::from(nbits.min(64));
        if self.pos + nbits > self.data.len() * 8 {
            return Err(DecodeError::UnexpectedEof);
        }
        let mut out = 0u64;
        let mut left = nbits;
        while left > 0 {
            let byte = self
                .data
                .get(self.pos / 8)
                .ok_or(DecodeError::UnexpectedEof)?;
            let offset = self.pos % 8;
            let avail = 8 - offset;
            let take = left.min(avail);
            let bits = (u64::from(*byte) >> (avail - take)) & mask(take as u8);
            out = if take == 64 {
                bits
            } else {
                (out << take) | bits
            };
            self.pos += take;
            left -= take;
        }
        Ok(out)
    }

    pub fn read_byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.read_bits(8)? as u8)
    }

    pub fn read_uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut out = 0u64;
        for i in 0..10u32 {
            let b = self.read_byte()?;
            if i == 9 && b > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    pub fn read_varint(&mut self) -> Result<i64, DecodeError> {
        Ok(unzigzag(self.read_uvarint()?))
    }
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` as a zigzag signed varint.
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

/// Number of bytes `put_uvarint` writes for `v`.
pub fn uvarint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// A bounds-checked forward reader over bytes (big-endian integers, varints, slices).
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::UnexpectedEof)?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or(DecodeError::UnexpectedEof)?;
        self.pos = end;
        Ok(s)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.bytes(n).map(|_| ())
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    pub fn be_u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn be_u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    pub fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut out = 0u64;
        for i in 0..10u32 {
            let b = self.u8()?;
            if i == 9 && b > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    pub fn varint(&mut self) -> Result<i64, DecodeError> {
        Ok(unzigzag(self.uvarint()?))
    }

    /// A uvarint length followed by that many bytes.
    pub fn uvarint_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| DecodeError::UnexpectedEof)?;
        self.bytes(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() {
        let mut w = BitWriter::default();
        w.write_bit(true);
        w.write_bits(0b101, 3);
        w.write_bits(u64::MAX, 64);
        w.write_bits(0x1234, 14);
        w.write_uvarint(300);
        w.write_varint(-5);
        w.write_bits(0, 0);
        let bytes = w.into_bytes();
        let mut r = BitReader::new(&bytes);
        assert!(r.read_bit().unwrap());
        assert_eq!(r.read_bits(3).unwrap(), 0b101);
        assert_eq!(r.read_bits(64).unwrap(), u64::MAX);
        assert_eq!(r.read_bits(14).unwrap(), 0x1234);
        assert_eq!(r.read_uvarint().unwrap(), 300);
        assert_eq!(r.read_varint().unwrap(), -5);
        assert!(r.read_bits(8).is_err());
    }

    #[test]
    fn varints() {
        for v in [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 1 << 40] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(Cursor::new(&b).varint().unwrap(), v);
        }
        for v in [0u64, 127, 128, u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert_eq!(b.len(), uvarint_len(v));
            assert_eq!(Cursor::new(&b).uvarint().unwrap(), v);
        }
        assert_eq!(
            Cursor::new(&[0xff; 11]).uvarint(),
            Err(DecodeError::VarintOverflow)
        );
        assert_eq!(
            Cursor::new(&[0x80]).uvarint(),
            Err(DecodeError::UnexpectedEof)
        );
    }
}
