//! `meta.json`: Prometheus block metadata plus the optional Thanos section. Unknown fields are
//! kept (in `extra`) and written back unchanged.

use crate::ulid::Ulid;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The only meta.json version.
pub const META_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: Ulid,
    /// First timestamp in the block (ms, inclusive).
    pub min_time: i64,
    /// End of the block (ms, exclusive).
    pub max_time: i64,
    #[serde(default)]
    pub stats: BlockStats,
    #[serde(default)]
    pub compaction: Compaction,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thanos: Option<ThanosMeta>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_samples: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_series: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_chunks: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Compaction {
    #[serde(default)]
    pub level: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Ulid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A parent block of a compacted block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDesc {
    pub ulid: Ulid,
    pub min_time: i64,
    pub max_time: i64,
}

/// Thanos' additions: external labels, downsampling, origin and file list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThanosMeta {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub downsample: Downsample,
    /// Who wrote the block ("sidecar", "compactor", "receive", ...).
    #[serde(default)]
    pub source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segment_files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ThanosFile>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downsample {
    /// Resolution in milliseconds; 0 for raw data.
    #[serde(default)]
    pub resolution: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosFile {
    pub rel_path: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size_bytes: u64,
}

impl BlockMeta {
    /// Metadata of a fresh level-1 block.
    pub fn new(ulid: Ulid, min_time: i64, max_time: i64, stats: BlockStats) -> Self {
        Self {
            ulid,
            min_time,
            max_time,
            stats,
            compaction: Compaction {
                level: 1,
                sources: vec![ulid],
                ..Compaction::default()
            },
            version: META_VERSION,
            thanos: None,
            extra: Map::new(),
        }
    }

    pub fn from_json(b: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(b)
    }

    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec_pretty(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMETHEUS: &str = r#"{
        "ulid": "01M8AGBQV34W9J9C04B8T9S7XC",
        "minTime": 1700000000000,
        "maxTime": 1700000435001,
        "stats": {"numSamples": 30, "numSeries": 1, "numChunks": 1, "numFloatSamples": 30},
        "compaction": {"level": 1, "sources": ["01M8AGBQV34W9J9C04B8T9S7XC"], "hints": ["x"]},
        "version": 1
    }"#;

    const THANOS: &str = r#"{
        "ulid": "01M8AGBQV34W9J9C04B8T9S7XC",
        "minTime": 0, "maxTime": 7200000,
        "stats": {},
        "compaction": {"level": 2, "sources": ["01M8AGBQV34W9J9C04B8T9S7XC"],
            "parents": [{"ulid": "01M8AGBQV34W9J9C04B8T9S7XC", "minTime": 0, "maxTime": 3600000}]},
        "version": 1,
        "thanos": {
            "labels": {"cluster": "eu1", "replica": "a"},
            "downsample": {"resolution": 300000},
            "source": "sidecar",
            "segment_files": ["000001"],
            "files": [{"rel_path": "chunks/000001", "size_bytes": 78}, {"rel_path": "meta.json"}],
            "index_stats": {"series_max_size": 12}
        },
        "somethingNew": true
    }"#;

    #[test]
    fn prometheus_meta() {
        let m = BlockMeta::from_json(PROMETHEUS.as_bytes()).unwrap();
        assert_eq!(m.stats.num_samples, 30);
        assert_eq!(m.compaction.level, 1);
        assert_eq!(m.stats.extra["numFloatSamples"], 30);
        assert!(m.thanos.is_none());
        let again = BlockMeta::from_json(&m.to_json().unwrap()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn thanos_meta_round_trips_unknown_fields() {
        let m = BlockMeta::from_json(THANOS.as_bytes()).unwrap();
        let t = m.thanos.as_ref().unwrap();
        assert_eq!(t.labels["replica"], "a");
        assert_eq!(t.downsample.resolution, 300_000);
        assert_eq!(t.files[0].size_bytes, 78);
        assert_eq!(t.files[1].size_bytes, 0);
        assert_eq!(m.compaction.parents[0].max_time, 3_600_000);
        assert_eq!(m.extra["somethingNew"], true);
        let json: Value = serde_json::from_slice(&m.to_json().unwrap()).unwrap();
        assert_eq!(json["thanos"]["index_stats"]["series_max_size"], 12);
        assert_eq!(json["somethingNew"], true);
        assert_eq!(BlockMeta::from_json(&m.to_json().unwrap()).unwrap(), m);
    }

    #[test]
    fn bad_meta_is_an_error() {
        assert!(BlockMeta::from_json(b"{").is_err());
        assert!(
            BlockMeta::from_json(br#"{"ulid":"bad","minTime":0,"maxTime":1,"version":1}"#).is_err()
        );
    }
}
