//! Sections framed as `len <4 bytes BE> | body (len bytes) | CRC32C(body) <4 bytes BE>`.

use super::IndexError;
use crate::range::RangeRead;

/// Reads the section starting at `off`, checks its CRC and returns the body.
pub fn read_section<R: RangeRead + ?Sized>(
    r: &R,
    off: u64,
    name: &'static str,
) -> Result<Vec<u8>, IndexError> {
    let head = r
        .read_range(off, 4)
        .map_err(|e| IndexError::corrupt(name, off, e))?;
    let len =
        u64::from(u32::from_be_bytes(head.as_ref().try_into().map_err(
            |_| IndexError::corrupt(name, off, "short length field"),
        )?));
    let all = r
        .read_range(off + 4, len + 4)
        .map_err(|e| IndexError::corrupt(name, off, format!("section length {len}: {e}")))?;
    let (body, crc) = all
        .split_last_chunk::<4>()
        .ok_or_else(|| IndexError::corrupt(name, off, "missing checksum"))?;
    if crc32c::crc32c(body) != u32::from_be_bytes(*crc) {
        return Err(IndexError::Checksum {
            section: name,
            offset: off,
        });
    }
    Ok(body.to_vec())
}

/// Frames `body` as a section.
pub fn encode_section(body: &[u8]) -> Result<Vec<u8>, IndexError> {
    let len = u32::try_from(body.len())
        .map_err(|_| IndexError::InvalidInput(format!("section of {} bytes", body.len())))?;
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32c::crc32c(body).to_be_bytes());
    Ok(out)
}
