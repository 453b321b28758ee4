//! Byte-range access to bucket objects for the synchronous TSDB readers: [`BucketFile`] serves
//! reads from a page cache and fetches missing pages with ranged GETs. The readers run on
//! blocking threads (`spawn_blocking`); each fetch is handed to the async runtime and awaited
//! over a channel, so no runtime is ever blocked on from inside itself.

use super::cache::PageCache;
use bytes::Bytes;
use skein_objstore::Bucket;
use skein_tsdb::RangeRead;
use std::borrow::Cow;
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_FILE_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique id for a cached file.
pub fn next_file_id() -> u64 {
    NEXT_FILE_ID.fetch_add(1, Ordering::Relaxed)
}

/// Runs bucket range reads on the async runtime for blocking callers.
#[derive(Clone, Debug)]
pub struct Fetcher {
    bucket: Bucket,
    handle: tokio::runtime::Handle,
}

impl Fetcher {
    pub fn new(bucket: Bucket, handle: tokio::runtime::Handle) -> Self {
        Self { bucket, handle }
    }

    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// Fetches `ranges` of `path`; blocks the calling (non-async) thread until done.
    pub fn fetch(&self, path: &str, ranges: Vec<Range<u64>>) -> io::Result<Vec<Bytes>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let bucket = self.bucket.clone();
        let p = path.to_string();
        self.handle.spawn(async move {
            let r = if ranges.len() == 1 {
                match ranges.first() {
                    Some(r) => bucket.get_range(&p, r.clone()).await.map(|b| vec![b]),
                    None => Ok(Vec::new()),
                }
            } else {
                bucket.get_ranges(&p, &ranges).await
            };
            let _ = tx.send(r);
        });
        match rx.recv() {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.is_not_found() => Err(io::Error::new(io::ErrorKind::NotFound, e)),
            Ok(Err(e)) => Err(io::Error::other(e)),
            Err(_) => Err(io::Error::other(format!(
                "fetch of {path} was dropped (runtime shutting down)"
            ))),
        }
    }
}

/// One immutable bucket object read in cached pages.
#[derive(Debug, Clone)]
pub struct BucketFile {
    fetcher: Fetcher,
    path: String,
    len: u64,
    id: u64,
    cache: Arc<PageCache>,
    page_size: u64,
}

impl BucketFile {
    pub fn new(
        fetcher: Fetcher,
        path: String,
        len: u64,
        cache: Arc<PageCache>,
        page_size: u64,
    ) -> Self {
        Self {
            fetcher,
            path,
            len,
            id: next_file_id(),
            cache,
            page_size: page_size.max(512),
        }
    }

    /// The id its pages are cached under.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn page_range(&self, p: u64) -> Range<u64> {
        let start = p * self.page_size;
        start..(start + self.page_size).min(self.len)
    }
}

fn eof(off: u64, len: u64, total: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("range {off}+{len} beyond end {total}"),
    )
}

impl BucketFile {
    /// Fetches `missing` pages (sorted ascending), runs of consecutive pages together in one
    /// request, and caches them.
    fn fetch_pages(&self, missing: &[u64]) -> io::Result<Vec<(u64, Bytes)>> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for &p in missing {
            match runs.last_mut() {
                Some((_, e)) if *e + 1 == p => *e = p,
                Some((_, e)) if *e >= p => {}
                _ => runs.push((p, p)),
            }
        }
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let ranges: Vec<Range<u64>> = runs
            .iter()
            .map(|&(a, b)| self.page_range(a).start..self.page_range(b).end)
            .collect();
        let got = self.fetcher.fetch(&self.path, ranges)?;
        let mut out = Vec::with_capacity(missing.len());
        for (&(a, b), data) in runs.iter().zip(got) {
            let base = self.page_range(a).start;
            for p in a..=b {
                let r = self.page_range(p);
                let (s, e) = ((r.start - base) as usize, (r.end - base) as usize);
                if e > data.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("short read of {}", self.path),
                    ));
                }
                let page = data.slice(s..e);
                self.cache.insert((self.id, p), page.clone());
                out.push((p, page));
            }
        }
        Ok(out)
    }

    /// Loads the pages covering `ranges` into the cache with as few requests as possible
    /// (one request of several ranges; the client merges close ones). At most half the
    /// cache's capacity is prefetched so the pages are still there when read.
    pub fn prefetch(&self, ranges: &[Range<u64>]) -> io::Result<()> {
        let mut wanted = std::collections::BTreeSet::new();
        for r in ranges {
            let end = r.end.min(self.len);
            if r.start >= end {
                continue;
            }
            wanted.extend(r.start / self.page_size..=(end - 1) / self.page_size);
        }
        let budget = (self.cache.capacity() / 2) / self.page_size;
        let missing: Vec<u64> = wanted
            .into_iter()
            .filter(|&p| !self.cache.contains((self.id, p)))
            .take(usize::try_from(budget).unwrap_or(usize::MAX))
            .collect();
        self.fetch_pages(&missing).map(|_| ())
    }
}

impl RangeRead for BucketFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_range(&self, off: u64, len: u64) -> io::Result<Cow<'_, [u8]>> {
        let end = off
            .checked_add(len)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| eof(off, len, self.len))?;
        if len == 0 {
            return Ok(Cow::Owned(Vec::new()));
        }
        let n = usize::try_from(len).map_err(|_| eof(off, len, self.len))?;
        let first = off / self.page_size;
        let last = (end - 1) / self.page_size;
        let mut pages: Vec<Option<Bytes>> = (first..=last)
            .map(|p| self.cache.get((self.id, p)))
            .collect();
        let missing: Vec<u64> = pages
            .iter()
            .enumerate()
            .filter(|(_, pg)| pg.is_none())
            .map(|(i, _)| first + i as u64)
            .collect();
        for (p, page) in self.fetch_pages(&missing)? {
            if let Some(slot) = pages.get_mut((p - first) as usize) {
                *slot = Some(page);
            }
        }
        let mut out = Vec::with_capacity(n);
        for (i, page) in pages.iter().enumerate() {
            let p = first + i as u64;
            let r = self.page_range(p);
            let page = page
                .as_ref()
                .ok_or_else(|| io::Error::other("page missing after fetch"))?;
            let s = off.max(r.start) - r.start;
            let e = end.min(r.end) - r.start;
            let part = page
                .get(s as usize..e as usize)
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "short page"))?;
            out.extend_from_slice(part);
        }
        Ok(Cow::Owned(out))
    }
}
