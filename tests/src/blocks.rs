//! Finished TSDB blocks in a Prometheus data dir, and the shipper's record of
//! shipped blocks (`thanos.shipper.json`) next to them.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use crate::bucket::is_ulid;

/// One finished block on local disk (a ULID dir with a meta.json).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBlock {
    pub id: String,
    pub min_time: i64,
    /// Exclusive.
    pub max_time: i64,
    pub level: u64,
    pub num_series: u64,
    pub num_samples: u64,
}

/// The finished blocks under `data_dir`, by min time.
pub fn local_blocks(data_dir: &Path) -> anyhow::Result<Vec<LocalBlock>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(data_dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !is_ulid(&name) {
            continue;
        }
        let meta_path = e.path().join("meta.json");
        let Ok(raw) = std::fs::read(&meta_path) else {
            continue;
        };
        let meta: Value = serde_json::from_slice(&raw)
            .with_context(|| format!("parsing {}", meta_path.display()))?;
        let int = |v: &Value| v.as_i64().unwrap_or_default();
        out.push(LocalBlock {
            id: name,
            min_time: int(&meta["minTime"]),
            max_time: int(&meta["maxTime"]),
            level: meta["compaction"]["level"].as_u64().unwrap_or_default(),
            num_series: meta["stats"]["numSeries"].as_u64().unwrap_or_default(),
            num_samples: meta["stats"]["numSamples"].as_u64().unwrap_or_default(),
        });
    }
    out.sort_by(|a, b| (a.min_time, &a.id).cmp(&(b.min_time, &b.id)));
    Ok(out)
}

/// The `uploaded` list of `<data_dir>/thanos.shipper.json` as written (duplicates
/// kept, so a test can see them); `None` when the file does not exist yet.
pub fn shipper_record(data_dir: &Path) -> anyhow::Result<Option<Vec<String>>> {
    let path = data_dir.join("thanos.shipper.json");
    let raw = match std::fs::read(&path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let v: Value =
        serde_json::from_slice(&raw).with_context(|| format!("parsing {}", path.display()))?;
    let ids = v["uploaded"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(ids))
}

/// Whether every id of `blocks` is in the shipper record.
pub fn all_recorded(data_dir: &Path, blocks: &[LocalBlock]) -> anyhow::Result<bool> {
    let Some(rec) = shipper_record(data_dir)? else {
        return Ok(false);
    };
    Ok(blocks.iter().all(|b| rec.contains(&b.id)))
}
