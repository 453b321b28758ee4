//! The postings offset table: (name, value) -> postings list offset, sorted by name and value.
//! Only every 32nd value of each name (and its last) is kept in memory; other entries are found by
//! reading the short stretch of table between two kept entries.

use super::IndexError;
use crate::encoding::{Cursor, put_uvarint};
use crate::range::RangeRead;
use std::collections::BTreeMap;

/// Keep every SAMPLE_EVERY-th value of a name in memory.
const SAMPLE_EVERY: usize = 32;

#[derive(Debug, Clone)]
struct Kept {
    value: String,
    /// File offset of this table entry.
    entry_pos: u64,
    /// File offset of the postings list.
    postings: u64,
}

#[derive(Debug, Clone, Default)]
struct NameEntries {
    kept: Vec<Kept>,
    /// File offset just past this name's last entry.
    end: u64,
    count: usize,
    /// During parsing: the latest entry when it is not a sample.
    last: Option<Kept>,
}

/// The in-memory part of a postings offset table.
#[derive(Debug, Clone, Default)]
pub struct PostingsTable {
    names: BTreeMap<String, NameEntries>,
    /// Offset of the list of all series (the entry with empty name and value).
    all: Option<u64>,
}

/// One table entry: (name, value, postings offset).
struct Entry<'a> {
    name: &'a str,
    value: &'a str,
    postings: u64,
}

fn next_entry<'a>(c: &mut Cursor<'a>, pos: u64) -> Result<Entry<'a>, IndexError> {
    let err = IndexError::decode("postings offset table", pos);
    let n = c.u8().map_err(&err)?;
    if n != 2 {
        return Err(IndexError::corrupt(
            "postings offset table",
            pos,
            format!("entry with {n} keys, want 2"),
        ));
    }
    let name = utf8(c.uvarint_bytes().map_err(&err)?, pos)?;
    let value = utf8(c.uvarint_bytes().map_err(&err)?, pos)?;
    let postings = c.uvarint().map_err(&err)?;
    Ok(Entry {
        name,
        value,
        postings,
    })
}

fn utf8(b: &[u8], pos: u64) -> Result<&str, IndexError> {
    std::str::from_utf8(b).map_err(|e| IndexError::corrupt("postings offset table", pos, e))
}

impl PostingsTable {
    /// Builds the in-memory part from the table body (`#entries <4b>` then entries), whose
    /// first byte is at file offset `body_pos`.
    pub fn parse(body: &[u8], body_pos: u64) -> Result<Self, IndexError> {
        let mut c = Cursor::new(body);
        let n = c
            .be_u32()
            .map_err(IndexError::decode("postings offset table", body_pos))?;
        let mut t = Self::default();
        let mut prev: Option<(&str, &str)> = None;
        for _ in 0..n {
            let pos = body_pos + c.position() as u64;
            let e = next_entry(&mut c, pos)?;
            if prev.is_some_and(|p| p >= (e.name, e.value)) {
                return Err(IndexError::corrupt(
                    "postings offset table",
                    pos,
                    "entries not sorted",
                ));
            }
            prev = Some((e.name, e.value));
            let end = body_pos + c.position() as u64;
            if e.name.is_empty() {
                if e.value.is_empty() {
                    t.all = Some(e.postings);
                }
                continue;
            }
            let ne = match t.names.get_mut(e.name) {
                Some(ne) => ne,
                None => t.names.entry(e.name.to_string()).or_default(),
            };
            let kept = Kept {
                value: e.value.to_string(),
                entry_pos: pos,
                postings: e.postings,
            };
            if ne.count % SAMPLE_EVERY == 0 {
                ne.kept.push(kept);
                ne.last = None;
            } else {
                ne.last = Some(kept);
            }
            ne.end = end;
            ne.count += 1;
        }
        // The last value of every name is always kept, so a lookup never scans past it.
        for ne in t.names.values_mut() {
            if let Some(last) = ne.last.take() {
                ne.kept.push(last);
            }
        }
        Ok(t)
    }

    /// Offset of the all-series postings list, if the index has one.
    pub fn all_postings(&self) -> Option<u64> {
        self.all
    }

    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }

    /// Number of values of `name`.
    pub fn value_count(&self, name: &str) -> usize {
        self.names.get(name).map_or(0, |n| n.count)
    }

    /// Offset of the postings list for `name="value"`, reading a short table stretch if needed.
    pub fn find<R: RangeRead + ?Sized>(
        &self,
        r: &R,
        name: &str,
        value: &str,
    ) -> Result<Option<u64>, IndexError> {
        let Some(ne) = self.names.get(name) else {
            return Ok(None);
        };
        let k = ne.kept.partition_point(|k| k.value.as_str() <= value);
        let Some(start) = k.checked_sub(1).and_then(|i| ne.kept.get(i)) else {
            return Ok(None);
        };
        if start.value == value {
            return Ok(Some(start.postings));
        }
        let end = ne.kept.get(k).map_or(ne.end, |n| n.entry_pos);
        let mut found = None;
        scan(r, start.entry_pos, end, |v, off| {
            if v == value {
                found = Some(off);
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// All values of `name` with their postings offsets, in order (one range read).
    pub fn values<R: RangeRead + ?Sized>(
        &self,
        r: &R,
        name: &str,
    ) -> Result<Vec<(String, u64)>, IndexError> {
        let Some(ne) = self.names.get(name) else {
            return Ok(Vec::new());
        };
        let Some(first) = ne.kept.first() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(ne.count);
        scan(r, first.entry_pos, ne.end, |v, off| {
            out.push((v.to_string(), off));
            Ok(())
        })?;
        Ok(out)
    }

    /// Bytes held in memory (approximate).
    pub fn memory_bytes(&self) -> usize {
        self.names
            .iter()
            .map(|(n, ne)| {
                n.capacity()
                    + 48
                    + ne.kept
                        .iter()
                        .map(|k| k.value.capacity() + std::mem::size_of::<Kept>())
                        .sum::<usize>()
            })
            .sum()
    }
}

/// Reads table entries in `[from, to)` and calls `f(value, postings offset)` for each.
fn scan<R: RangeRead + ?Sized>(
    r: &R,
    from: u64,
    to: u64,
    mut f: impl FnMut(&str, u64) -> Result<(), IndexError>,
) -> Result<(), IndexError> {
    let buf = r
        .read_range(from, to.saturating_sub(from))
        .map_err(|e| IndexError::corrupt("postings offset table", from, e))?;
    let mut c = Cursor::new(&buf);
    while !c.is_empty() {
        let pos = from + c.position() as u64;
        let e = next_entry(&mut c, pos)?;
        f(e.value, e.postings)?;
    }
    Ok(())
}

/// Encodes a table body from sorted (name, value, postings offset) entries.
pub fn encode_table<'a>(
    entries: impl ExactSizeIterator<Item = (&'a str, &'a str, u64)>,
) -> Result<Vec<u8>, IndexError> {
    let n = u32::try_from(entries.len())
        .map_err(|_| IndexError::InvalidInput("more than 2^32 postings".into()))?;
    let mut body = n.to_be_bytes().to_vec();
    for (name, value, off) in entries {
        body.push(2);
        put_uvarint(&mut body, name.len() as u64);
        body.extend_from_slice(name.as_bytes());
        put_uvarint(&mut body, value.len() as u64);
        body.extend_from_slice(value.as_bytes());
        put_uvarint(&mut body, off);
    }
    Ok(body)
}
