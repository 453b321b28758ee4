//! Writing a complete index (format v2) for a sorted list of series in one pass.

use super::postings::encode_postings;
use super::postings_table::encode_table;
use super::section::encode_section;
use super::series::{ChunkMeta, encode_series};
use super::symbols::encode_symbols;
use super::toc::Toc;
use super::{FORMAT_V2, IndexError, MAGIC, SeriesRef};
use crate::encoding::put_uvarint;
use crate::labels::Label;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

/// One series for the index: labels sorted by name, chunks sorted by time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesToWrite {
    pub labels: Vec<Label>,
    pub chunks: Vec<ChunkMeta>,
}

/// Writes index files.
#[derive(Debug, Default, Clone, Copy)]
pub struct IndexWriter;

/// A writer that tracks its position and can pad to an alignment.
struct PosWriter<W> {
    w: W,
    pos: u64,
}

impl<W: Write> PosWriter<W> {
    fn write(&mut self, b: &[u8]) -> Result<(), IndexError> {
        self.w.write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn align(&mut self, to: u64) -> Result<(), IndexError> {
        let pad = (to - self.pos % to) % to;
        self.write(&vec![0u8; pad as usize])
    }
}

fn validate(series: &[SeriesToWrite]) -> Result<(), IndexError> {
    for (i, s) in series.iter().enumerate() {
        if s.labels.is_empty() {
            return Err(IndexError::InvalidInput(format!(
                "series {i} has no labels"
            )));
        }
        for w in s.labels.windows(2) {
            if w[0].name >= w[1].name {
                return Err(IndexError::InvalidInput(format!(
                    "series {i}: label names not sorted and unique ({} then {})",
                    w[0].name, w[1].name
                )));
            }
        }
        if s.labels.iter().any(|l| l.name.is_empty()) {
            return Err(IndexError::InvalidInput(format!(
                "series {i}: empty label name"
            )));
        }
        if i > 0 && series[i - 1].labels >= s.labels {
            return Err(IndexError::InvalidInput(format!(
                "series {i}: series not sorted by labels or duplicated"
            )));
        }
    }
    Ok(())
}

impl IndexWriter {
    /// Writes the index for `series` (sorted by label set, unique) to `out`; returns its size.
    pub fn write<W: Write>(series: &[SeriesToWrite], out: W) -> Result<u64, IndexError> {
        validate(series)?;
        let mut w = PosWriter { w: out, pos: 0 };
        let mut toc = Toc::default();
        w.write(&MAGIC.to_be_bytes())?;
        w.write(&[FORMAT_V2])?;

        // Symbols: every name and value, plus the empty string (as Prometheus writes it).
        let mut set: BTreeSet<&str> = BTreeSet::new();
        set.insert("");
        for s in series {
            for l in &s.labels {
                set.insert(&l.name);
                set.insert(&l.value);
            }
        }
        let symbols: Vec<&str> = set.into_iter().collect();
        let sym = |s: &str| -> Result<u32, IndexError> {
            symbols
                .binary_search(&s)
                .map(|i| i as u32)
                .map_err(|_| IndexError::InvalidInput(format!("missing symbol {s:?}")))
        };
        toc.symbols = w.pos;
        w.write(&encode_section(&encode_symbols(symbols.iter().copied())?)?)?;

        // Series, each 16-byte aligned; collect postings on the way.
        toc.series = w.pos;
        let mut all: Vec<SeriesRef> = Vec::with_capacity(series.len());
        let mut postings: BTreeMap<(&str, &str), Vec<SeriesRef>> = BTreeMap::new();
        for s in series {
            w.align(16)?;
            let r = SeriesRef::try_from(w.pos / 16)
                .map_err(|_| IndexError::InvalidInput("index exceeds 64GiB of series".into()))?;
            let refs = s
                .labels
                .iter()
                .map(|l| Ok((sym(&l.name)?, sym(&l.value)?)))
                .collect::<Result<Vec<_>, IndexError>>()?;
            w.write(&encode_series(&refs, &s.chunks)?)?;
            all.push(r);
            for l in &s.labels {
                postings.entry((&l.name, &l.value)).or_default().push(r);
            }
        }

        // Label indices (one per name; unused by v2 readers but written like Prometheus).
        toc.label_indices = w.pos;
        let mut by_name: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for (name, value) in postings.keys() {
            by_name.entry(name).or_default().push(sym(value)?);
        }
        let mut label_index_offsets = Vec::with_capacity(by_name.len());
        for (name, values) in &by_name {
            w.align(4)?;
            label_index_offsets.push((*name, w.pos));
            let mut body = Vec::with_capacity(8 + values.len() * 4);
            body.extend_from_slice(&1u32.to_be_bytes());
            body.extend_from_slice(&(values.len() as u32).to_be_bytes());
            for v in values {
                body.extend_from_slice(&v.to_be_bytes());
            }
            w.write(&encode_section(&body)?)?;
        }

        // Postings: all series first, then every label pair in order.
        toc.postings = w.pos;
        w.align(4)?;
        let all_off = w.pos;
        w.write(&encode_section(&encode_postings(&all))?)?;
        let mut table: Vec<(&str, &str, u64)> = Vec::with_capacity(postings.len() + 1);
        table.push(("", "", all_off));
        for ((name, value), refs) in &postings {
            w.align(4)?;
            table.push((name, value, w.pos));
            w.write(&encode_section(&encode_postings(refs))?)?;
        }

        toc.label_indices_table = w.pos;
        let mut body = (label_index_offsets.len() as u32).to_be_bytes().to_vec();
        for (name, off) in &label_index_offsets {
            body.push(1);
            put_uvarint(&mut body, name.len() as u64);
            body.extend_from_slice(name.as_bytes());
            put_uvarint(&mut body, *off);
        }
        w.write(&encode_section(&body)?)?;

        toc.postings_table = w.pos;
        w.write(&encode_section(&encode_table(table.into_iter())?)?)?;
        w.write(&toc.encode())?;
        w.w.flush()?;
        Ok(w.pos)
    }
}
