//! Prometheus' XOR chunk: 2-byte big-endian sample count, then a bit stream with the first
//! timestamp (signed varint) and value (64 raw bits), the second timestamp as an unsigned varint
//! delta, and after that delta-of-delta timestamps in variable-width buckets and values XOR'd with
//! their predecessor (Gorilla encoding).

use super::ChunkError;
use crate::encoding::{BitReader, BitWriter, DecodeError};

/// Leading-zero count marking "no value window yet".
const NO_WINDOW: u8 = 0xff;

/// Timestamp delta-of-delta buckets: (prefix bits, prefix length, payload bits).
const DOD_BUCKETS: [(u64, u8, u8); 3] = [(0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20)];

/// Whether `x` fits the `nbits` two's-complement bucket as Prometheus defines it
/// (the range is -(2^(n-1)-1) ..= 2^(n-1)).
fn fits(x: i64, nbits: u8) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}

/// Appends samples to one XOR chunk.
#[derive(Debug, Clone)]
pub struct XorEncoder {
    w: BitWriter,
    num: u16,
    t: i64,
    t_delta: u64,
    v: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl XorEncoder {
    pub fn new() -> Self {
        Self {
            w: BitWriter::with_prefix(vec![0, 0]),
            num: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// Whether the chunk holds the most samples its 16-bit count can express.
    pub fn is_full(&self) -> bool {
        self.num == u16::MAX
    }

    /// Appends a sample. Timestamps should increase (as in Prometheus), but any order
    /// round-trips. A full chunk (65535 samples, see [`is_full`](Self::is_full)) ignores
    /// further samples; callers cut chunks long before that (Prometheus uses 120).
    pub fn append(&mut self, t: i64, v: f64) {
        if self.is_full() {
            return;
        }
        let vbits = v.to_bits();
        match self.num {
            0 => {
                self.w.write_varint(t);
                self.w.write_bits(vbits, 64);
            }
            1 => {
                let delta = t.wrapping_sub(self.t) as u64;
                self.w.write_uvarint(delta);
                self.write_value(vbits);
                self.t_delta = delta;
            }
            _ => {
                let delta = t.wrapping_sub(self.t) as u64;
                let dod = delta.wrapping_sub(self.t_delta) as i64;
                self.write_dod(dod);
                self.write_value(vbits);
                self.t_delta = delta;
            }
        }
        self.t = t;
        self.v = vbits;
        self.num += 1;
        let [hi, lo] = self.num.to_be_bytes();
        let head = self.w.bytes_mut();
        head[0] = hi;
        head[1] = lo;
    }

    fn write_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.w.write_bit(false);
            return;
        }
        for (prefix, plen, nbits) in DOD_BUCKETS {
            if fits(dod, nbits) {
                self.w.write_bits(prefix, plen);
                self.w.write_bits(dod as u64, nbits);
                return;
            }
        }
        self.w.write_bits(0b1111, 4);
        self.w.write_bits(dod as u64, 64);
    }

    fn write_value(&mut self, vbits: u64) {
        let x = vbits ^ self.v;
        if x == 0 {
            self.w.write_bit(false);
            return;
        }
        self.w.write_bit(true);
        // Five bits hold the leading-zero count, so it is capped at 31.
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            self.w.write_bit(false);
            let sig = 64 - self.leading - self.trailing;
            self.w.write_bits(x >> self.trailing, sig);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        self.w.write_bit(true);
        self.w.write_bits(u64::from(leading), 5);
        let sig = 64 - leading - trailing;
        // 64 significant bits are written as 0 in the 6-bit field.
        self.w.write_bits(u64::from(sig) & 0x3f, 6);
        self.w.write_bits(x >> trailing, sig);
    }

    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    /// The chunk bytes so far (header included), as stored in chunk files.
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.w.into_bytes()
    }
}

/// Encodes `samples` into one XOR chunk.
pub fn encode_xor(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut e = XorEncoder::new();
    for &(t, v) in samples {
        e.append(t, v);
    }
    e.into_bytes()
}

/// Decodes an XOR chunk lazily, one sample per `next`. After an error it yields `None`.
#[derive(Debug, Clone)]
pub struct XorIter<'a> {
    r: BitReader<'a>,
    total: usize,
    read: usize,
    t: i64,
    t_delta: u64,
    v: u64,
    leading: u8,
    trailing: u8,
    failed: bool,
}

/// Checks the header of an XOR chunk and returns an iterator over its samples.
pub fn decode_xor(data: &[u8]) -> Result<XorIter<'_>, ChunkError> {
    let (head, body) = data
        .split_first_chunk::<2>()
        .ok_or(ChunkError::TooShort(data.len()))?;
    Ok(XorIter {
        r: BitReader::new(body),
        total: usize::from(u16::from_be_bytes(*head)),
        read: 0,
        t: 0,
        t_delta: 0,
        v: 0,
        leading: 0,
        trailing: 0,
        failed: false,
    })
}

/// Decodes every sample of an XOR chunk.
pub fn decode_xor_all(data: &[u8]) -> Result<Vec<(i64, f64)>, ChunkError> {
    let it = decode_xor(data)?;
    let mut out = Vec::with_capacity(it.total.min(data.len() * 8));
    for s in it {
        out.push(s?);
    }
    Ok(out)
}

impl XorIter<'_> {
    /// Number of samples the header announces.
    pub fn num_samples(&self) -> usize {
        self.total
    }

    fn trunc(&self, source: DecodeError) -> ChunkError {
        ChunkError::Truncated {
            sample: self.read,
            total: self.total,
            source,
        }
    }

    fn step(&mut self) -> Result<(i64, f64), ChunkError> {
        match self.read {
            0 => {
                self.t = self.r.read_varint().map_err(|e| self.trunc(e))?;
                self.v = self.r.read_bits(64).map_err(|e| self.trunc(e))?;
            }
            1 => {
                let delta = self.r.read_uvarint().map_err(|e| self.trunc(e))?;
                self.t_delta = delta;
                self.t = self.t.wrapping_add(delta as i64);
                self.read_value()?;
            }
            _ => {
                let dod = self.read_dod().map_err(|e| self.trunc(e))?;
                self.t_delta = self.t_delta.wrapping_add(dod as u64);
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()?;
            }
        }
        self.read += 1;
        Ok((self.t, f64::from_bits(self.v)))
    }

    fn read_dod(&mut self) -> Result<i64, DecodeError> {
        // Count leading one bits of the prefix, up to four.
        let mut ones = 0;
        while ones < 4 {
            if !self.r.read_bit()? {
                break;
            }
            ones += 1;
        }
        let nbits = match ones {
            0 => return Ok(0),
            1 => 14,
            2 => 17,
            3 => 20,
            _ => return Ok(self.r.read_bits(64)? as i64),
        };
        let raw = self.r.read_bits(nbits)?;
        // Values above 2^(n-1) are negative in n-bit two's complement.
        let half = 1u64 << (nbits - 1);
        Ok(if raw > half {
            raw as i64 - (1i64 << nbits)
        } else {
            raw as i64
        })
    }

    fn read_value(&mut self) -> Result<(), ChunkError> {
        if !self.r.read_bit().map_err(|e| self.trunc(e))? {
            return Ok(());
        }
        if self.r.read_bit().map_err(|e| self.trunc(e))? {
            let leading = self.r.read_bits(5).map_err(|e| self.trunc(e))? as u8;
            let mut sig = self.r.read_bits(6).map_err(|e| self.trunc(e))? as u8;
            if sig == 0 {
                sig = 64;
            }
            if leading + sig > 64 {
                return Err(ChunkError::BadValueWindow {
                    sample: self.read,
                    leading,
                    significant: sig,
                });
            }
            self.leading = leading;
            self.trailing = 64 - leading - sig;
        }
        let sig = 64u8.saturating_sub(self.leading.saturating_add(self.trailing));
        let bits = self.r.read_bits(sig).map_err(|e| self.trunc(e))?;
        let shifted = if self.trailing >= 64 {
            0
        } else {
            bits << self.trailing
        };
        self.v ^= shifted;
        Ok(())
    }
}

impl Iterator for XorIter<'_> {
    type Item = Result<(i64, f64), ChunkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.read >= self.total {
            return None;
        }
        let r = self.step();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            (0, Some(0))
        } else {
            (0, Some(self.total - self.read))
        }
    }
}
