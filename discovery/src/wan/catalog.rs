//! The store catalog a WAN member publishes for its cluster: every store of
//! the cluster that announces an external address, with the TLS server
//! name an SNI-routing ingress needs. Queriers of other clusters dial those
//! addresses; the Info call then confirms label sets and time range, so the
//! catalog stays small (no label sets).
//!
//! Wire: keys `skein:catalog/0`, `skein:catalog/1`, ... each a JSON shard
//! `{"v":1,"entries":[{"node_id":..,"cluster":..,"address":"host:port",
//! "tls_server_name":..,"min_time":ms,"max_time":ms},..]}` of at most
//! [`MAX_VALUE_BYTES`]. Readers ignore unknown fields, accept any `v >= 1`,
//! and drop (and count) entries that fail validation, keeping the rest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::address::WanAddr;
use crate::announcement::{Announcement, MAX_VALUE_BYTES, Role, SCHEMA_VERSION};
use crate::view::Peer;

/// Key prefix of the catalog shards.
pub const CATALOG_PREFIX: &str = "skein:catalog/";

const MAX_ID: usize = 128;
const MAX_SERVER_NAME: usize = 253;

/// One store reachable from other clusters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub node_id: String,
    pub cluster: String,
    /// External StoreAPI `host:port`.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    #[serde(default = "min_i64")]
    pub min_time: i64,
    #[serde(default = "max_i64")]
    pub max_time: i64,
}

fn min_i64() -> i64 {
    i64::MIN
}

fn max_i64() -> i64 {
    i64::MAX
}

#[derive(Serialize, Deserialize)]
struct Shard {
    v: u32,
    #[serde(default)]
    entries: Vec<serde_json::Value>,
}

/// Why a catalog could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog entry for {node_id}: {reason}")]
    Invalid { node_id: String, reason: String },
    #[error("catalog entry for {0} alone exceeds one gossip key")]
    TooLarge(String),
    #[error("catalog JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl CatalogEntry {
    /// Checks lengths, the address shape, the server name and the time range.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let bad = |reason: String| CatalogError::Invalid {
            node_id: self.node_id.chars().take(MAX_ID).collect(),
            reason,
        };
        for (field, v) in [("node_id", &self.node_id), ("cluster", &self.cluster)] {
            if v.is_empty() || v.len() > MAX_ID || v.chars().any(char::is_control) {
                return Err(bad(format!("{field} empty, too long or not printable")));
            }
        }
        WanAddr::parse(&self.address).map_err(|e| bad(e.to_string()))?;
        if let Some(n) = &self.tls_server_name {
            let ok = !n.is_empty()
                && n.len() <= MAX_SERVER_NAME
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'*'));
            if !ok {
                return Err(bad("tls_server_name is not a DNS name".into()));
            }
        }
        if self.min_time > self.max_time {
            return Err(bad("min_time after max_time".into()));
        }
        Ok(())
    }

    /// The entry for a store's announcement, if it serves the StoreAPI and
    /// has an external address.
    pub fn from_announcement(a: &Announcement) -> Option<CatalogEntry> {
        if !a
            .roles
            .iter()
            .any(|r| matches!(r, Role::Sidecar | Role::Store))
        {
            return None;
        }
        Some(CatalogEntry {
            node_id: a.node_id.clone(),
            cluster: a.cluster.clone(),
            address: a.store_external.clone()?,
            tls_server_name: a.tls_server_name.clone(),
            min_time: a.min_time,
            max_time: a.max_time,
        })
    }
}

/// The catalog of `cluster` from its LAN view: stores of that cluster that
/// announce an external address, sorted and unique by (address, name).
pub fn from_lan_view(cluster: &str, peers: &[Peer]) -> Vec<CatalogEntry> {
    let mut out: Vec<CatalogEntry> = peers
        .iter()
        .filter(|p| p.announcement.cluster == cluster)
        .filter_map(|p| CatalogEntry::from_announcement(&p.announcement))
        .filter(|e| e.validate().is_ok())
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.address == b.address && a.tls_server_name == b.tls_server_name);
    out
}

/// The shards to publish: each a JSON value of at most [`MAX_VALUE_BYTES`].
pub fn encode(entries: &[CatalogEntry]) -> Result<Vec<String>, CatalogError> {
    let mut shards = Vec::new();
    let mut current: Vec<serde_json::Value> = Vec::new();
    let render = |entries: &[serde_json::Value]| {
        serde_json::to_string(&Shard {
            v: SCHEMA_VERSION,
            entries: entries.to_vec(),
        })
    };
    for e in entries {
        e.validate()?;
        let value = serde_json::to_value(e)?;
        current.push(value);
        if render(&current)?.len() > MAX_VALUE_BYTES {
            let last = current.pop();
            if current.is_empty() {
                return Err(CatalogError::TooLarge(e.node_id.clone()));
            }
            shards.push(render(&current)?);
            current = last.into_iter().collect();
        }
    }
    if !current.is_empty() {
        shards.push(render(&current)?);
    }
    Ok(shards)
}

/// The valid entries of a peer's shards, and how many were refused
/// (unparsable shards count as one).
pub fn decode(shards: &[String]) -> (Vec<CatalogEntry>, usize) {
    let mut entries = Vec::new();
    let mut invalid = 0;
    for raw in shards {
        if raw.len() > MAX_VALUE_BYTES {
            invalid += 1;
            continue;
        }
        let shard: Shard = match serde_json::from_str::<Shard>(raw) {
            Ok(s) if s.v >= 1 => s,
            _ => {
                invalid += 1;
                continue;
            }
        };
        for v in shard.entries {
            match serde_json::from_value::<CatalogEntry>(v) {
                Ok(e) if e.validate().is_ok() => entries.push(e),
                _ => invalid += 1,
            }
        }
    }
    (entries, invalid)
}

/// The union of several members' catalogs, one entry per (address, server
/// name) (a cluster's WAN members publish the same stores), sorted.
pub fn merge(catalogs: impl IntoIterator<Item = Vec<CatalogEntry>>) -> Vec<CatalogEntry> {
    let mut by_key: BTreeMap<(String, Option<String>), CatalogEntry> = BTreeMap::new();
    for e in catalogs.into_iter().flatten() {
        by_key
            .entry((e.address.clone(), e.tls_server_name.clone()))
            .or_insert(e);
    }
    by_key.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> CatalogEntry {
        CatalogEntry {
            node_id: format!("sidecar-{i}"),
            cluster: "eu1".into(),
            address: format!("sidecar-{i}.eu1.example.com:443"),
            tls_server_name: Some(format!("sidecar-{i}.eu1.example.com")),
            min_time: 0,
            max_time: 1000,
        }
    }

    #[test]
    fn round_trip_and_sharding() {
        let entries: Vec<CatalogEntry> = (0..300).map(entry).collect();
        let shards = encode(&entries).unwrap();
        assert!(shards.len() > 1, "300 entries fit one key?");
        assert!(shards.iter().all(|s| s.len() <= MAX_VALUE_BYTES));
        let (back, invalid) = decode(&shards);
        assert_eq!(invalid, 0);
        assert_eq!(back, entries);
    }

    #[test]
    fn unknown_fields_tolerated_bad_entries_dropped_and_counted() {
        let raw = r#"{"v":2,"future":true,"entries":[
            {"node_id":"a","cluster":"eu1","address":"a.example:443","new_field":[1]},
            {"node_id":"b","cluster":"eu1","address":"no-port"},
            {"node_id":"c","cluster":"eu1","address":"c.example:443","min_time":5,"max_time":1},
            {"node_id":"d"},
            "garbage"
        ]}"#;
        let (entries, invalid) =
            decode(&[raw.to_string(), "{not json".into(), r#"{"v":0}"#.into()]);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].node_id, "a");
        assert_eq!(entries[0].min_time, i64::MIN);
        assert_eq!(invalid, 6);
    }

    #[test]
    fn lan_view_gives_external_stores_of_the_cluster() {
        let peer = |id: &str, cluster: &str, roles: Vec<Role>, ext: Option<&str>| {
            let mut a = Announcement::new(id, cluster);
            a.roles = roles;
            a.store_internal = Some(format!("{id}.svc:10901"));
            a.store_external = ext.map(String::from);
            a.tls_server_name = Some(format!("{id}.example"));
            Peer {
                node_id: id.into(),
                generation: 1,
                gossip_addr: "127.0.0.1:7946".parse().unwrap(),
                announcement: a,
            }
        };
        let peers = vec![
            peer("s1", "eu1", vec![Role::Sidecar], Some("s1.example:443")),
            peer("s2", "eu1", vec![Role::Sidecar], None),
            peer("q1", "eu1", vec![Role::Query], Some("q1.example:443")),
            peer("s3", "us1", vec![Role::Store], Some("s3.example:443")),
            peer("s4", "eu1", vec![Role::Store], Some("s4.example:443")),
        ];
        let cat = from_lan_view("eu1", &peers);
        let ids: Vec<&str> = cat.iter().map(|e| e.node_id.as_str()).collect();
        assert_eq!(ids, ["s1", "s4"]);
        assert_eq!(cat[0].tls_server_name.as_deref(), Some("s1.example"));
    }

    #[test]
    fn merge_dedups_by_address_and_name() {
        let a = vec![entry(1), entry(2)];
        let b = vec![entry(2), entry(3)];
        let merged = merge([a, b]);
        assert_eq!(merged.len(), 3);
        assert!(
            encode(&[CatalogEntry {
                address: "bad".into(),
                ..entry(1)
            }])
            .is_err()
        );
    }
}
