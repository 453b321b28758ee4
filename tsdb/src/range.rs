//! Byte-range access to index and chunk files. Readers only ever ask for ranges, so a store can
//! back them with object-storage range GETs; here there are implementations for local files
//! (positional reads, no mmap) and for bytes in memory.

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Random access to an immutable byte sequence (a file or object).
pub trait RangeRead: Send + Sync {
    /// Total length in bytes.
    fn len(&self) -> u64;

    /// Whether the object is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads exactly `len` bytes at `off`. Ranges past the end are an
    /// [`io::ErrorKind::UnexpectedEof`] error.
    fn read_range(&self, off: u64, len: u64) -> io::Result<Cow<'_, [u8]>>;
}

fn out_of_range(off: u64, len: u64, total: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("range {off}+{len} beyond end {total}"),
    )
}

fn check(off: u64, len: u64, total: u64) -> io::Result<()> {
    match off.checked_add(len) {
        Some(end) if end <= total => Ok(()),
        _ => Err(out_of_range(off, len, total)),
    }
}

/// A local file read with `pread`; its length is taken once at open (files are immutable).
#[derive(Debug)]
pub struct FileRange {
    file: File,
    len: u64,
}

impl FileRange {
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Self { file, len })
    }
}

impl RangeRead for FileRange {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_range(&self, off: u64, len: u64) -> io::Result<Cow<'_, [u8]>> {
        check(off, len, self.len)?;
        let n = usize::try_from(len).map_err(|_| out_of_range(off, len, self.len))?;
        let mut buf = vec![0u8; n];
        self.file.read_exact_at(&mut buf, off)?;
        Ok(Cow::Owned(buf))
    }
}

fn slice_range(data: &[u8], off: u64, len: u64) -> io::Result<Cow<'_, [u8]>> {
    let total = data.len() as u64;
    check(off, len, total)?;
    // Both fit in usize because they are within `data`.
    let (start, end) = (off as usize, (off + len) as usize);
    data.get(start..end)
        .map(Cow::Borrowed)
        .ok_or_else(|| out_of_range(off, len, total))
}

impl RangeRead for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read_range(&self, off: u64, len: u64) -> io::Result<Cow<'_, [u8]>> {
        slice_range(self, off, len)
    }
}

impl RangeRead for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_range(&self, off: u64, len: u64) -> io::Result<Cow<'_, [u8]>> {
        slice_range(self, off, len)
    }
}

impl<T: RangeRead + ?Sized> RangeRead for Arc<T> {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_range(&self, off: u64, len: u64) -> io::Result<Cow<'_, [u8]>> {
        (**self).read_range(off, len)
    }
}

impl<T: RangeRead + ?Sized> RangeRead for Box<T> {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_range(&self, off: u64, len: u64) -> io::Result<Cow<'_, [u8]>> {
        (**self).read_range(off, len)
    }
}

/// Reads up to `max` bytes at `off`, fewer if the object ends first.
pub fn read_up_to<R: RangeRead + ?Sized>(r: &R, off: u64, max: u64) -> io::Result<Cow<'_, [u8]>> {
    let len = max.min(r.len().saturating_sub(off));
    r.read_range(off, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_memory_agree() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello world").unwrap();
        let f = FileRange::open(&p).unwrap();
        let m = b"hello world".to_vec();
        assert_eq!(f.len(), 11);
        assert_eq!(&*f.read_range(6, 5).unwrap(), b"world");
        assert_eq!(&*m.read_range(6, 5).unwrap(), b"world");
        assert!(f.read_range(6, 6).is_err());
        assert!(m.read_range(u64::MAX, 2).is_err());
        assert_eq!(&*read_up_to(&m, 8, 100).unwrap(), b"rld");
    }
}
