//! Checksum repair for mutated TSDB files. CRC32C guards every index section, series entry
//! and chunk, so a mutated valid file almost never gets past the first check. The targets
//! take a mode byte: with its low bit set, these functions walk the (mutated) file the way
//! a reader would, leniently, and rewrite every checksum they find a place for, so the
//! decoders behind the checks see the mutation. The walk is deterministic: a saved input
//! replays the same way in libFuzzer and in the replay test.

use skein_tsdb::encoding::Cursor;

const TOC_LEN: usize = 52;
const INDEX_HEADER_LEN: usize = 5;
/// Bound on the entries and series a walk visits, so a fix-up stays cheap.
const MAX_WALK: usize = 4096;

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    Some(u64::from_be_bytes(s.try_into().ok()?))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(s.try_into().ok()?))
}

/// Writes the CRC32C of `f[from..to]` at `f[to..to + 4]` when all of it is inside `f`.
fn put_crc(f: &mut [u8], from: usize, to: usize) -> Option<()> {
    let crc = crc32c::crc32c(f.get(from..to)?);
    f.get_mut(to..to.checked_add(4)?)?
        .copy_from_slice(&crc.to_be_bytes());
    Some(())
}

/// Fixes the CRC of the `len | body | crc` section at `off`; returns the body's range.
fn fix_section(f: &mut [u8], off: u64) -> Option<(usize, usize)> {
    let off = usize::try_from(off).ok()?;
    if off == 0 {
        return None;
    }
    let len = usize::try_from(be_u32(f, off)?).ok()?;
    let start = off.checked_add(4)?;
    let end = start.checked_add(len)?;
    put_crc(f, start, end)?;
    Some((start, end))
}

/// Repairs every checksum of an index file that a lenient walk finds.
pub fn index(f: &mut [u8]) {
    if f.len() < INDEX_HEADER_LEN + TOC_LEN {
        return;
    }
    let toc_pos = f.len() - TOC_LEN;
    let toc: Vec<u64> = (0..6)
        .map(|i| be_u64(f, toc_pos + 8 * i).unwrap_or(0))
        .collect();
    let (symbols, series, label_indices, label_table, postings, postings_table) =
        (toc[0], toc[1], toc[2], toc[3], toc[4], toc[5]);
    fix_section(f, symbols);
    if let Some((start, end)) = fix_section(f, postings_table) {
        for off in table_offsets(&f[start..end]) {
            fix_section(f, off);
        }
    }
    if let Some((start, end)) = fix_section(f, label_table) {
        for off in table_offsets(&f[start..end]) {
            fix_section(f, off);
        }
    }
    fix_series(
        f,
        series,
        toc_pos,
        [label_indices, postings, label_table, postings_table],
    );
    let _ = put_crc(f, toc_pos, toc_pos + 48);
}

/// The offsets in an offset table body (`#entries <4b>`, then entries of `n <1b>`, n
/// uvarint-prefixed strings and a uvarint offset).
fn table_offsets(body: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut c = Cursor::new(body);
    let Ok(n) = c.be_u32() else { return out };
    for _ in 0..(n as usize).min(MAX_WALK) {
        let Ok(keys) = c.u8() else { break };
        for _ in 0..keys {
            if c.uvarint_bytes().is_err() {
                return out;
            }
        }
        match c.uvarint() {
            Ok(off) => out.push(off),
            Err(_) => break,
        }
    }
    out
}

/// Series entries are 16-byte aligned `uvarint len | body | crc` from `series` to the next
/// section.
fn fix_series(f: &mut [u8], series: u64, toc_pos: usize, later: [u64; 4]) {
    let Ok(mut pos) = usize::try_from(series) else {
        return;
    };
    if pos == 0 {
        return;
    }
    let end = later
        .into_iter()
        .filter(|&o| o > series)
        .min()
        .and_then(|o| usize::try_from(o).ok())
        .unwrap_or(toc_pos)
        .min(f.len());
    for _ in 0..MAX_WALK {
        if pos >= end {
            break;
        }
        let Some(rest) = f.get(pos..end) else { break };
        let mut c = Cursor::new(rest);
        let Ok(len) = c.uvarint() else { break };
        let Ok(len) = usize::try_from(len) else { break };
        let Some(body_start) = pos.checked_add(c.position()) else {
            break;
        };
        let Some(body_end) = body_start.checked_add(len) else {
            break;
        };
        if len == 0 || put_crc(f, body_start, body_end).is_none() {
            break;
        }
        pos = (body_end + 4).next_multiple_of(16);
    }
}

/// Repairs the checksum of every chunk in a segment file (8-byte header, then chunks
/// framed as `uvarint len | encoding | data (len bytes) | crc`).
pub fn segment(f: &mut [u8]) {
    let mut pos = 8usize;
    for _ in 0..MAX_WALK {
        let Some(rest) = f.get(pos..) else { return };
        let mut c = Cursor::new(rest);
        let Ok(len) = c.uvarint() else { return };
        let Ok(len) = usize::try_from(len) else {
            return;
        };
        let Some(start) = pos.checked_add(c.position()) else {
            return;
        };
        let Some(end) = start.checked_add(len).and_then(|e| e.checked_add(1)) else {
            return;
        };
        if put_crc(f, start, end).is_none() {
            return;
        }
        pos = end + 4;
    }
}

/// Offsets of the chunks a sequential walk finds in a segment (after [`segment`] they are
/// the chunks with good checksums).
pub fn segment_chunk_offsets(f: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    let mut pos = 8usize;
    for _ in 0..MAX_WALK {
        let Some(rest) = f.get(pos..) else { break };
        let mut c = Cursor::new(rest);
        let Ok(len) = c.uvarint() else { break };
        let Ok(len) = usize::try_from(len) else { break };
        let Some(end) = pos
            .checked_add(c.position())
            .and_then(|s| s.checked_add(len))
            .and_then(|e| e.checked_add(5))
        else {
            break;
        };
        let Ok(p) = u32::try_from(pos) else { break };
        out.push(p);
        pos = end;
    }
    out
}

/// Repairs the CRC of every complete remote-read frame (`uvarint len | crc <4b BE> |
/// payload`) in a streamed response.
pub fn remote_read_frames(b: &mut [u8]) {
    let mut pos = 0usize;
    for _ in 0..MAX_WALK {
        let Some(rest) = b.get(pos..) else { return };
        let mut c = Cursor::new(rest);
        let Ok(len) = c.uvarint() else { return };
        let Ok(len) = usize::try_from(len) else {
            return;
        };
        let Some(crc_at) = pos.checked_add(c.position()) else {
            return;
        };
        let Some(end) = crc_at.checked_add(4).and_then(|s| s.checked_add(len)) else {
            return;
        };
        let Some(payload) = b.get(crc_at + 4..end) else {
            return;
        };
        let crc = crc32c::crc32c(payload);
        b[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
        pos = end;
    }
}
