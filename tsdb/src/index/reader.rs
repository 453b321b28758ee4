//! Reading an index through byte ranges: only the header, TOC, symbol table and a sample of the
//! postings offset table are held in memory; postings and series are fetched on demand.

use super::postings::decode_postings;
use super::postings_table::PostingsTable;
use super::section::read_section;
use super::series::{IndexSeries, decode_series, frame_series};
use super::symbols::Symbols;
use super::toc::{TOC_LEN, Toc};
use super::{
    FORMAT_V2, HEADER_LEN, IndexError, MAGIC, MatchOp, Matcher, SeriesRef, intersect, subtract,
    union_all,
};
use crate::encoding::Cursor;
use crate::range::{RangeRead, read_up_to};

/// Bytes read past a series' start when its length is not yet known.
const SERIES_GUESS: u64 = 512;
/// Series closer than this are fetched with one range read.
const COALESCE_GAP: u64 = 16 * 1024;
/// Upper bound for one coalesced series read.
const COALESCE_MAX: u64 = 1024 * 1024;

/// An open index file.
#[derive(Debug)]
pub struct IndexReader<R> {
    r: R,
    toc: Toc,
    symbols: Symbols,
    table: PostingsTable,
    series_end: u64,
}

impl<R: RangeRead> IndexReader<R> {
    /// Checks header and TOC and loads symbols and the postings offset table sample.
    pub fn open(r: R) -> Result<Self, IndexError> {
        let len = r.len();
        if len < HEADER_LEN + TOC_LEN {
            return Err(IndexError::TooSmall(len));
        }
        let head = r.read_range(0, HEADER_LEN)?;
        let mut c = Cursor::new(&head);
        let magic = c.be_u32().map_err(IndexError::decode("header", 0))?;
        if magic != MAGIC {
            return Err(IndexError::BadMagic(magic));
        }
        let version = c.u8().map_err(IndexError::decode("header", 0))?;
        if version != FORMAT_V2 {
            return Err(IndexError::UnsupportedVersion(version));
        }
        let toc_pos = len - TOC_LEN;
        let toc = Toc::parse(&r.read_range(toc_pos, TOC_LEN)?, toc_pos)?;
        for (name, off) in [
            ("symbols", toc.symbols),
            ("series", toc.series),
            ("postings", toc.postings),
            ("postings offset table", toc.postings_table),
        ] {
            if off != 0 && (off < HEADER_LEN || off >= toc_pos) {
                return Err(IndexError::corrupt(
                    name,
                    off,
                    "TOC offset outside the file",
                ));
            }
        }
        let symbols = if toc.symbols == 0 {
            Symbols::default()
        } else {
            Symbols::parse(&read_section(&r, toc.symbols, "symbols")?, toc.symbols + 4)?
        };
        let table = if toc.postings_table == 0 {
            PostingsTable::default()
        } else {
            let body = read_section(&r, toc.postings_table, "postings offset table")?;
            PostingsTable::parse(&body, toc.postings_table + 4)?
        };
        // The series section ends where the next non-empty section begins.
        let series_end = [
            toc.label_indices,
            toc.postings,
            toc.label_indices_table,
            toc.postings_table,
        ]
        .into_iter()
        .filter(|&o| o > toc.series)
        .min()
        .unwrap_or(toc_pos);
        Ok(Self {
            r,
            toc,
            symbols,
            table,
            series_end,
        })
    }

    pub fn toc(&self) -> &Toc {
        &self.toc
    }

    /// Number of symbols.
    pub fn symbol_count(&self) -> usize {
        self.symbols.len()
    }

    /// Approximate bytes this reader keeps in memory.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.symbols.memory_bytes() + self.table.memory_bytes()
    }

    /// The range reader this index reads from.
    pub fn source(&self) -> &R {
        &self.r
    }

    /// Label names, sorted.
    pub fn label_names(&self) -> Vec<String> {
        self.table.label_names().map(str::to_string).collect()
    }

    /// Number of distinct values of label `name` (from memory).
    pub fn label_value_count(&self, name: &str) -> usize {
        self.table.value_count(name)
    }

    /// Values of label `name`, sorted.
    pub fn label_values(&self, name: &str) -> Result<Vec<String>, IndexError> {
        Ok(self
            .table
            .values(&self.r, name)?
            .into_iter()
            .map(|(v, _)| v)
            .collect())
    }

    fn postings_at(&self, off: u64) -> Result<Vec<SeriesRef>, IndexError> {
        decode_postings(&read_section(&self.r, off, "postings")?, off)
    }

    /// Series with `name="value"`.
    pub fn postings(&self, name: &str, value: &str) -> Result<Vec<SeriesRef>, IndexError> {
        match self.table.find(&self.r, name, value)? {
            Some(off) => self.postings_at(off),
            None => Ok(Vec::new()),
        }
    }

    /// Every series in the index.
    pub fn all_postings(&self) -> Result<Vec<SeriesRef>, IndexError> {
        if let Some(off) = self.table.all_postings() {
            return self.postings_at(off);
        }
        // Without the all-series list, every series still has at least one label.
        let mut lists = Vec::new();
        for name in self.table.label_names() {
            for (_, off) in self.table.values(&self.r, name)? {
                lists.push(self.postings_at(off)?);
            }
        }
        Ok(union_all(lists))
    }

    /// Union of the postings of all values of `m.name` for which `keep(value)` holds.
    fn postings_where(
        &self,
        m: &Matcher,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<SeriesRef>, IndexError> {
        let mut lists = Vec::new();
        for (v, off) in self.table.values(&self.r, &m.name)? {
            if keep(&v) {
                lists.push(self.postings_at(off)?);
            }
        }
        Ok(union_all(lists))
    }

    /// Series matching all `matchers` (Prometheus semantics: a missing label is the empty
    /// value), as sorted refs. No matchers selects every series.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<SeriesRef>, IndexError> {
        let mut positive: Option<Vec<SeriesRef>> = None;
        let mut negative: Vec<Vec<SeriesRef>> = Vec::new();
        for m in matchers {
            if m.matches("") {
                // Series without the label match; remove those whose value does not.
                let drop = match m.op {
                    MatchOp::Equal => self.postings_where(m, |_| true)?,
                    MatchOp::NotEqual => self.postings(&m.name, &m.value)?,
                    MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                        self.postings_where(m, |v| !m.matches(v))?
                    }
                };
                negative.push(drop);
                continue;
            }
            let list = match m.op {
                MatchOp::Equal => self.postings(&m.name, &m.value)?,
                _ => self.postings_where(m, |v| m.matches(v))?,
            };
            let next = match positive {
                None => list,
                Some(p) => intersect(&p, &list),
            };
            let empty = next.is_empty();
            positive = Some(next);
            if empty {
                return Ok(Vec::new());
            }
        }
        let mut out = match positive {
            Some(p) => p,
            None => self.all_postings()?,
        };
        for n in &negative {
            if out.is_empty() {
                break;
            }
            out = subtract(&out, n);
        }
        Ok(out)
    }

    fn series_pos(&self, r: SeriesRef) -> Result<u64, IndexError> {
        let pos = u64::from(r) * 16;
        if pos < self.toc.series || pos >= self.series_end || self.toc.series == 0 {
            return Err(IndexError::corrupt(
                "series",
                pos,
                format!("series ref {r} outside the series section"),
            ));
        }
        Ok(pos)
    }

    fn decode_at(
        &self,
        r: SeriesRef,
        buf: &[u8],
        pos: u64,
    ) -> Result<Option<IndexSeries>, IndexError> {
        let Some(body) = frame_series(buf, pos)? else {
            return Ok(None);
        };
        let (labels, chunks) = decode_series(body, &self.symbols, pos)?;
        Ok(Some(IndexSeries {
            series_ref: r,
            labels,
            chunks,
        }))
    }

    /// Labels and chunk metadata of one series.
    pub fn series(&self, r: SeriesRef) -> Result<IndexSeries, IndexError> {
        let pos = self.series_pos(r)?;
        let max = self.series_end - pos;
        let buf = read_up_to(&self.r, pos, SERIES_GUESS.min(max))?;
        if let Some(s) = self.decode_at(r, &buf, pos)? {
            return Ok(s);
        }
        let mut c = Cursor::new(&buf);
        let len = c.uvarint().map_err(IndexError::decode("series", pos))?;
        let total = (c.position() as u64).saturating_add(len).saturating_add(4);
        if total > max {
            return Err(IndexError::corrupt(
                "series",
                pos,
                "entry runs past the series section",
            ));
        }
        let buf = self.r.read_range(pos, total)?;
        self.decode_at(r, &buf, pos)?
            .ok_or_else(|| IndexError::corrupt("series", pos, "truncated entry"))
    }

    /// Several series (refs sorted ascending, as `select` returns them), reading nearby entries
    /// with one range read each.
    pub fn series_many(&self, refs: &[SeriesRef]) -> Result<Vec<IndexSeries>, IndexError> {
        let mut out = Vec::with_capacity(refs.len());
        let mut i = 0;
        while let Some(&first) = refs.get(i) {
            let start = self.series_pos(first)?;
            let mut j = i + 1;
            let mut last = start;
            while let Some(&next) = refs.get(j) {
                let p = u64::from(next) * 16;
                if p < last || p - last > COALESCE_GAP || p - start > COALESCE_MAX {
                    break;
                }
                last = p;
                j += 1;
            }
            let end = (last + SERIES_GUESS).min(self.series_end);
            let buf = self.r.read_range(start, end.saturating_sub(start))?;
            for &r in refs.get(i..j).unwrap_or_default() {
                let pos = self.series_pos(r)?;
                let rel = (pos - start) as usize;
                let got = match buf.get(rel..) {
                    Some(b) => self.decode_at(r, b, pos)?,
                    None => None,
                };
                match got {
                    Some(s) => out.push(s),
                    None => out.push(self.series(r)?),
                }
            }
            i = j;
        }
        Ok(out)
    }
}
