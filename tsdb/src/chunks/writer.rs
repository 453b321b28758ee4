//! Writing chunks into numbered segment files.

use super::{ChunkFileError, FORMAT_V1, MAGIC, MAX_SEGMENT_SIZE, SEGMENT_HEADER_LEN, chunk_ref};
use crate::encoding::{put_uvarint, uvarint_len};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Appends chunks to `dir/000001`, cutting a new segment before one would pass the size limit.
#[derive(Debug)]
pub struct ChunkWriter {
    dir: PathBuf,
    max_segment: u64,
    /// Open segment: (0-based index, writer, bytes written).
    current: Option<(u32, BufWriter<File>, u64)>,
    /// Finished segments: (file path, size).
    done: Vec<(PathBuf, u64)>,
}

impl ChunkWriter {
    /// Creates `dir` (if needed); segments are created on first write.
    pub fn new(dir: &Path) -> Result<Self, ChunkFileError> {
        Self::with_segment_size(dir, MAX_SEGMENT_SIZE)
    }

    /// Like [`new`](Self::new) with a custom segment size limit (for tests).
    pub fn with_segment_size(dir: &Path, max_segment: u64) -> Result<Self, ChunkFileError> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            max_segment: max_segment.max(SEGMENT_HEADER_LEN + 1),
            current: None,
            done: Vec::new(),
        })
    }

    fn close_current(&mut self) -> Result<(), ChunkFileError> {
        if let Some((seq, w, size)) = self.current.take() {
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            self.done.push((self.segment_path(seq), size));
        }
        Ok(())
    }

    fn segment_path(&self, seq: u32) -> PathBuf {
        self.dir.join(format!("{:06}", seq + 1))
    }

    fn open_segment(&mut self, seq: u32) -> Result<(), ChunkFileError> {
        let mut w = BufWriter::new(File::create(self.segment_path(seq))?);
        w.write_all(&MAGIC.to_be_bytes())?;
        w.write_all(&[FORMAT_V1, 0, 0, 0])?;
        self.current = Some((seq, w, SEGMENT_HEADER_LEN));
        Ok(())
    }

    /// Writes one chunk and returns its reference.
    pub fn write(&mut self, encoding: u8, data: &[u8]) -> Result<u64, ChunkFileError> {
        let size = (uvarint_len(data.len() as u64) + 1 + data.len() + 4) as u64;
        if size > u64::from(u32::MAX) {
            return Err(ChunkFileError::TooLarge(data.len()));
        }
        let cut = match &self.current {
            None => Some(self.done.len() as u32),
            Some((seq, _, pos)) if *pos > SEGMENT_HEADER_LEN && pos + size > self.max_segment => {
                Some(seq + 1)
            }
            Some(_) => None,
        };
        if let Some(seq) = cut {
            self.close_current()?;
            self.open_segment(seq)?;
        }
        let Some((seq, w, pos)) = self.current.as_mut() else {
            return Err(ChunkFileError::Io(std::io::Error::other("no open segment")));
        };
        let offset = u32::try_from(*pos).map_err(|_| ChunkFileError::TooLarge(data.len()))?;
        let mut head = Vec::with_capacity(11);
        put_uvarint(&mut head, data.len() as u64);
        head.push(encoding);
        let mut crc = crc32c::crc32c(&[encoding]);
        crc = crc32c::crc32c_append(crc, data);
        w.write_all(&head)?;
        w.write_all(data)?;
        w.write_all(&crc.to_be_bytes())?;
        *pos += size;
        Ok(chunk_ref(*seq, offset))
    }

    /// Flushes and syncs; returns every segment file with its size.
    pub fn finish(mut self) -> Result<Vec<(PathBuf, u64)>, ChunkFileError> {
        self.close()
    }

    /// Like [`finish`](Self::finish) without consuming the writer; a later write starts a
    /// new segment.
    pub fn close(&mut self) -> Result<Vec<(PathBuf, u64)>, ChunkFileError> {
        self.close_current()?;
        Ok(self.done.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunks::{ChunkFileError, ChunkReader, split_ref};

    #[test]
    fn segments_are_cut_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::with_segment_size(dir.path(), 300).unwrap();
        let mut refs = Vec::new();
        for i in 0..20u8 {
            let data = vec![i; 40 + usize::from(i)];
            refs.push((w.write(1, &data).unwrap(), data));
        }
        // A chunk larger than the limit still gets its own segment.
        let big = vec![7u8; 1000];
        refs.push((w.write(1, &big).unwrap(), big));
        let files = w.finish().unwrap();
        assert!(files.len() > 5);
        assert!(
            files
                .iter()
                .all(|(p, size)| std::fs::metadata(p).unwrap().len() == *size)
        );
        let r = ChunkReader::open_dir(dir.path()).unwrap();
        assert_eq!(r.segment_count(), files.len());
        for (cref, data) in &refs {
            let c = r.chunk(*cref).unwrap();
            assert_eq!(c.encoding, 1);
            assert_eq!(&c.data, data);
        }
        let (seg, off) = split_ref(refs[0].0);
        assert_eq!((seg, off), (0, 8));
        assert!(matches!(
            r.chunk(crate::chunks::chunk_ref(99, 8)),
            Err(ChunkFileError::MissingSegment { segment: 99, .. })
        ));
        assert!(matches!(r.chunk(3), Err(ChunkFileError::Corrupt { .. })));
        // A gap in segment numbering is reported.
        std::fs::remove_file(dir.path().join("000002")).unwrap();
        assert!(matches!(
            ChunkReader::open_dir(dir.path()),
            Err(ChunkFileError::SegmentGap(_))
        ));
    }
}
