//! The parts of a block's meta.json that object-storage users need (Prometheus fields plus the
//! Thanos section), read leniently: unknown fields are ignored and missing optional ones
//! default, so metas written by Prometheus, Thanos and Skein all parse.

use serde::{Deserialize, Serialize};
use skein_tsdb::Ulid;
use std::collections::BTreeMap;

/// Block statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaStats {
    #[serde(default)]
    pub num_samples: u64,
    #[serde(default)]
    pub num_series: u64,
    #[serde(default)]
    pub num_chunks: u64,
}

/// Compaction state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaCompaction {
    #[serde(default)]
    pub level: u32,
    #[serde(default)]
    pub sources: Vec<Ulid>,
}

/// One file of the block as listed in the Thanos section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    pub rel_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

/// Downsampling of the block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaDownsample {
    #[serde(default)]
    pub resolution: i64,
}

/// The `thanos` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosSection {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub downsample: MetaDownsample,
    #[serde(default)]
    pub source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<MetaFile>,
}

/// A block's meta.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: Ulid,
    pub min_time: i64,
    /// Exclusive.
    pub max_time: i64,
    #[serde(default)]
    pub stats: MetaStats,
    #[serde(default)]
    pub compaction: MetaCompaction,
    #[serde(default)]
    pub version: u32,
    #[serde(default)]
    pub thanos: Option<ThanosSection>,
}

impl BlockMeta {
    pub fn parse(data: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(data)
    }

    /// External labels of the Thanos section (empty without one).
    pub fn external_labels(&self) -> BTreeMap<String, String> {
        self.thanos
            .as_ref()
            .map(|t| t.labels.clone())
            .unwrap_or_default()
    }

    /// Downsampling resolution in ms (0 = raw).
    pub fn resolution(&self) -> i64 {
        self.thanos.as_ref().map_or(0, |t| t.downsample.resolution)
    }
}

/// `deletion-mark.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionMark {
    pub id: Ulid,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// Unix seconds.
    pub deletion_time: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_and_thanos_metas() {
        let prom = br#"{"ulid":"01HQ3V2W7K6Q9Z8Y5X4W3V2T1S","minTime":0,"maxTime":7200000,
            "stats":{"numSamples":10,"numSeries":2,"numChunks":2},
            "compaction":{"level":1,"sources":["01HQ3V2W7K6Q9Z8Y5X4W3V2T1S"]},"version":1}"#;
        let m = BlockMeta::parse(prom).unwrap();
        assert_eq!(m.max_time, 7_200_000);
        assert_eq!(m.compaction.level, 1);
        assert!(m.external_labels().is_empty());
        let thanos = br#"{"ulid":"01HQ3V2W7K6Q9Z8Y5X4W3V2T1S","minTime":1,"maxTime":2,"version":1,
            "thanos":{"labels":{"replica":"a"},"downsample":{"resolution":0},"source":"sidecar",
            "files":[{"rel_path":"index","size_bytes":5},{"rel_path":"meta.json"}]}}"#;
        let m = BlockMeta::parse(thanos).unwrap();
        assert_eq!(
            m.external_labels().get("replica").map(String::as_str),
            Some("a")
        );
        assert_eq!(m.thanos.unwrap().files.len(), 2);
        assert!(BlockMeta::parse(b"{}").is_err());
    }
}
