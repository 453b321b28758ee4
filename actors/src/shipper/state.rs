//! `<data dir>/thanos.shipper.json`: `{"version":1,"uploaded":[ULIDs]}`, the blocks already
//! shipped. Rewritten atomically (temp file, fsync, rename, fsync of the dir), so a crash
//! leaves either the old or the new record.

use serde::{Deserialize, Serialize};
use skein_objstore::Ulid;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const STATE_FILENAME: &str = "thanos.shipper.json";

/// The shipper's record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipperState {
    pub version: u32,
    #[serde(default)]
    pub uploaded: Vec<Ulid>,
}

impl ShipperState {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(STATE_FILENAME)
    }

    /// Reads the record. A missing file is an empty record; an unreadable or corrupt one is
    /// logged and treated as empty (blocks already in the bucket are then found there and
    /// recorded again without re-upload).
    pub fn load(data_dir: &Path) -> Self {
        let p = Self::path(data_dir);
        match std::fs::read(&p) {
            Ok(b) => match serde_json::from_slice::<ShipperState>(&b) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(path = %p.display(), error = %e, "corrupt shipper state; starting from the bucket's view");
                    Self::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "unreadable shipper state; starting from the bucket's view");
                Self::default()
            }
        }
    }

    /// Writes the record atomically.
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        let p = Self::path(data_dir);
        let tmp = data_dir.join(format!("{STATE_FILENAME}.tmp"));
        let mut out = ShipperState {
            version: 1,
            uploaded: self.uploaded.clone(),
        };
        out.uploaded.sort();
        out.uploaded.dedup();
        let body = serde_json::to_vec_pretty(&out).map_err(std::io::Error::other)?;
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &p)?;
        if let Ok(d) = std::fs::File::open(data_dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_missing_and_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ShipperState::load(dir.path()), ShipperState::default());
        let a = Ulid::new();
        let s = ShipperState {
            version: 1,
            uploaded: vec![a, a],
        };
        s.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(ShipperState::path(dir.path())).unwrap();
        assert!(text.contains("\"version\": 1"), "{text}");
        let back = ShipperState::load(dir.path());
        assert_eq!(back.uploaded, vec![a]);
        assert!(!dir.path().join("thanos.shipper.json.tmp").exists());
        std::fs::write(ShipperState::path(dir.path()), b"{not json").unwrap();
        assert_eq!(ShipperState::load(dir.path()), ShipperState::default());
    }
}
