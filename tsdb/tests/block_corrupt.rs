//! Damaged blocks give typed errors: truncated index, bad chunk CRC, missing chunk files,
//! broken meta.json.

use skein_tsdb::Label;
use skein_tsdb::block::{Block, BlockError, write_block};
use skein_tsdb::chunks::ChunkFileError;
use skein_tsdb::index::IndexError;
use std::path::{Path, PathBuf};

fn make_block(parent: &Path) -> PathBuf {
    let series = (0..5).map(|i| {
        let labels = vec![Label::new("__name__", "m"), Label::new("i", i.to_string())];
        let samples = (0..300).map(|k| (k * 1000, (k * i) as f64)).collect();
        (labels, samples)
    });
    let meta = write_block(parent, series).unwrap();
    parent.join(meta.ulid.to_string())
}

fn read_everything(b: &Block<skein_tsdb::FileRange>) -> Result<usize, BlockError> {
    let mut n = 0;
    for s in b.select(&[], i64::MIN, i64::MAX)? {
        n += b.samples(&s, i64::MIN, i64::MAX)?.len();
    }
    Ok(n)
}

#[test]
fn intact_block_reads() {
    let dir = tempfile::tempdir().unwrap();
    let b = Block::open(&make_block(dir.path())).unwrap();
    assert_eq!(read_everything(&b).unwrap(), 1500);
    assert!(b.memory_bytes() > 0);
}

#[test]
fn truncated_index() {
    let dir = tempfile::tempdir().unwrap();
    let block = make_block(dir.path());
    let index = block.join("index");
    let bytes = std::fs::read(&index).unwrap();
    std::fs::write(&index, &bytes[..bytes.len() - 20]).unwrap();
    let err = Block::open(&block).unwrap_err();
    assert!(
        matches!(
            err,
            BlockError::Index(IndexError::Checksum { section: "toc", .. })
        ),
        "{err}"
    );
    std::fs::write(&index, &bytes[..30]).unwrap();
    assert!(matches!(
        Block::open(&block),
        Err(BlockError::Index(IndexError::TooSmall(30)))
    ));
}

#[test]
fn bad_chunk_crc() {
    let dir = tempfile::tempdir().unwrap();
    let block = make_block(dir.path());
    let seg = block.join("chunks/000001");
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&seg, bytes).unwrap();
    let b = Block::open(&block).unwrap();
    let err = read_everything(&b).unwrap_err();
    assert!(
        matches!(err, BlockError::ChunkFile(ChunkFileError::Checksum { .. })),
        "{err}"
    );
}

#[test]
fn truncated_chunk_file() {
    let dir = tempfile::tempdir().unwrap();
    let block = make_block(dir.path());
    let seg = block.join("chunks/000001");
    let bytes = std::fs::read(&seg).unwrap();
    std::fs::write(&seg, &bytes[..bytes.len() - 3]).unwrap();
    let b = Block::open(&block).unwrap();
    let err = read_everything(&b).unwrap_err();
    assert!(
        matches!(err, BlockError::ChunkFile(ChunkFileError::Corrupt { .. })),
        "{err}"
    );
    std::fs::write(&seg, b"oops").unwrap();
    assert!(Block::open(&block).is_err());
}

#[test]
fn missing_chunk_file() {
    let dir = tempfile::tempdir().unwrap();
    let block = make_block(dir.path());
    std::fs::remove_file(block.join("chunks/000001")).unwrap();
    let b = Block::open(&block).unwrap();
    let err = read_everything(&b).unwrap_err();
    assert!(
        matches!(
            err,
            BlockError::ChunkFile(ChunkFileError::MissingSegment {
                segment: 0,
                available: 0
            })
        ),
        "{err}"
    );
    std::fs::remove_dir(block.join("chunks")).unwrap();
    let err = Block::open(&block).unwrap_err();
    assert!(
        matches!(&err, BlockError::Io { path, .. } if path.ends_with("chunks")),
        "{err}"
    );
}

#[test]
fn bad_or_missing_meta() {
    let dir = tempfile::tempdir().unwrap();
    let block = make_block(dir.path());
    std::fs::write(block.join("meta.json"), b"{\"ulid\": 5}").unwrap();
    assert!(matches!(Block::open(&block), Err(BlockError::Meta { .. })));
    std::fs::remove_file(block.join("meta.json")).unwrap();
    assert!(matches!(Block::open(&block), Err(BlockError::Io { .. })));
}

#[test]
fn writer_rejects_bad_series_and_cleans_up() {
    use skein_tsdb::block::BlockWriter;
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new(dir.path()).unwrap();
    let l = vec![Label::new("a", "1")];
    assert!(matches!(
        w.add_series(l.clone(), &[(2, 1.0), (1, 1.0)]),
        Err(BlockError::Invalid(_))
    ));
    assert!(matches!(
        w.add_series(
            vec![Label::new("a", "1"), Label::new("a", "2")],
            &[(1, 1.0)]
        ),
        Err(BlockError::Invalid(_))
    ));
    assert!(matches!(
        w.add_series(vec![Label::new("a", "")], &[(1, 1.0)]),
        Err(BlockError::Invalid(_))
    ));
    w.add_series(l.clone(), &[(1, 1.0)]).unwrap();
    w.add_series(l, &[(5, 1.0)]).unwrap();
    // Duplicate series are caught when the index is written; nothing is left behind.
    assert!(matches!(
        w.finish(),
        Err(BlockError::Index(IndexError::InvalidInput(_)))
    ));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let w = BlockWriter::new(dir.path()).unwrap();
    drop(w);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
