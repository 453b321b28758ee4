//! Finds finished blocks in a Prometheus data dir: directories named by a ULID that hold a
//! meta.json. `wal`, `chunks_head`, `*.tmp-*` dirs and anything else are skipped.

use skein_objstore::{BlockMeta, META_FILENAME, Ulid};
use std::path::{Path, PathBuf};

/// A finished block on local disk.
#[derive(Debug, Clone)]
pub struct LocalBlock {
    pub id: Ulid,
    pub dir: PathBuf,
    pub meta: BlockMeta,
    /// meta.json as written by Prometheus, every field kept.
    pub meta_json: serde_json::Value,
}

/// The finished blocks under `data_dir`, oldest (by min time) first. Blocks whose meta.json
/// cannot be read are logged and left out.
pub fn scan_blocks(data_dir: &Path) -> std::io::Result<Vec<LocalBlock>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(data_dir)? {
        let e = e?;
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Ok(id) = name.parse::<Ulid>() else {
            continue;
        };
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = e.path();
        let raw = match std::fs::read(dir.join(META_FILENAME)) {
            Ok(b) => b,
            Err(err) => {
                tracing::debug!(block = %name, error = %err, "block dir without readable meta.json; skipped");
                continue;
            }
        };
        let parsed = BlockMeta::parse(&raw)
            .and_then(|m| serde_json::from_slice::<serde_json::Value>(&raw).map(|v| (m, v)));
        match parsed {
            Ok((meta, meta_json)) if meta.ulid == id => out.push(LocalBlock {
                id,
                dir,
                meta,
                meta_json,
            }),
            Ok((meta, _)) => {
                tracing::warn!(block = %name, meta_ulid = %meta.ulid, "meta.json names another block; skipped");
            }
            Err(err) => tracing::warn!(block = %name, error = %err, "bad meta.json; skipped"),
        }
    }
    out.sort_by_key(|b| (b.meta.min_time, b.id));
    Ok(out)
}
