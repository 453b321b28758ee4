//! The store catalog a WAN member publishes for its cluster: every store of
//! the cluster that announces an external address, with the TLS server
//! name an SNI-routing ingress needs and the label sets the store promised
//! in its announcement. Queriers of other clusters dial those addresses and
//! use a store only when its certificate is of the entry's cluster and its
//! Info label sets are the promised ones.
//!
//! chitchat relays every member's keys through every other member, and any
//! member can write keys under any node id, so each shard is signed by its
//! publisher with the key of its TLS certificate and carries that
//! certificate chain: any reader checks it, whoever relayed it.
//!
//! Wire: keys `skein:catalog/0`, `skein:catalog/1`, ... each one JSON shard
//! of at most [`MAX_VALUE_BYTES`]:
//!
//! ```text
//! {"v":2,"body":"<JSON text>","chain":["<base64 DER>",..],"scheme":<TLS SignatureScheme>,"sig":"<base64>"}
//! body: {"node_id":..,"cluster":..,"federation":..,"signed_at":ms,"expires_at":ms,
//!        "entries":[{"node_id":..,"cluster":..,"address":"host:port","tls_server_name":..,
//!                    "min_time":ms,"max_time":ms,"label_sets":[{"name":"value",..},..]},..]}
//! ```
//!
//! The signature covers `skein.wan.catalog.v1`, NUL, the key name, NUL and
//! the body's exact bytes. A reader accepts a shard only if the chain leads
//! to its own CA, the leaf names an identity of its federation whose node is
//! the chitchat node the shard sits under, the body names that node, cluster
//! and federation, the signature holds, and now is inside
//! `[signed_at - skew, expires_at + skew]`; then it keeps only the entries
//! of the signer's own cluster. Without TLS (development) shards are
//! `{"v":1,"entries":[..]}`, unsigned, and accepted unchecked.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use skein_tls::TlsMaterial;
use skein_tls::identity::verify_signature;

use super::address::WanAddr;
use crate::announcement::{Announcement, LabelSet, MAX_VALUE_BYTES, Role};
use crate::view::Peer;

/// Key prefix of the catalog shards.
pub const CATALOG_PREFIX: &str = "skein:catalog/";
/// How long a signed shard is valid; publishers re-sign well before.
pub const CATALOG_TTL: Duration = Duration::from_secs(3600);
/// Publishers re-sign their catalog this often (and when their TLS
/// material is reloaded).
pub const RESIGN_EVERY: Duration = Duration::from_secs(15 * 60);
/// Clock difference tolerated between publisher and reader.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// Largest certificate chain carried in a shard (DER bytes).
pub const MAX_CHAIN_BYTES: usize = 6 * 1024;
/// Default bound on the entries accepted from one member.
pub const DEFAULT_MAX_ENTRIES_PER_MEMBER: usize = 512;

const MAX_ID: usize = 128;
const MAX_SERVER_NAME: usize = 253;
const MAX_LABEL_SETS: usize = 64;
const MAX_LABELS_PER_SET: usize = 64;
const MAX_LABEL_NAME: usize = 128;
const MAX_LABEL_VALUE: usize = 1024;
const MAX_CHAIN_LEN: usize = 4;
const CONTEXT: &[u8] = b"skein.wan.catalog.v1";

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
    /// The external label sets the store announced (what its Info must say).
    #[serde(default)]
    pub label_sets: Vec<LabelSet>,
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

/// The signed wrapper (v2).
#[derive(Serialize, Deserialize)]
struct SignedShard {
    v: u32,
    body: String,
    chain: Vec<String>,
    scheme: u16,
    sig: String,
}

/// What a signed body says besides the entries.
#[derive(Serialize, Deserialize)]
struct Body {
    node_id: String,
    cluster: String,
    federation: String,
    signed_at: i64,
    expires_at: i64,
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
    #[error(
        "catalog entry for {node_id} is of cluster {cluster:?}: a member publishes its own cluster's stores only"
    )]
    OtherCluster { node_id: String, cluster: String },
    #[error("cannot sign the catalog: {0}")]
    Sign(String),
}

/// Why (part of) a peer's catalog was refused; the `reason` label of
/// `skein_wan_gossip_catalog_rejected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rejection {
    /// A shard over [`MAX_VALUE_BYTES`], or a chain over [`MAX_CHAIN_BYTES`].
    TooLarge,
    /// Not JSON of the schema.
    Malformed,
    /// An unsigned shard where TLS is on.
    Unsigned,
    /// The chain does not lead to this node's CA, or has expired.
    Certificate,
    /// The certificate names no identity of this federation, or the body
    /// names another federation.
    Identity,
    /// The body or the certificate names another node than the one the
    /// shard sits under.
    NodeMismatch,
    /// The body's cluster is not the certificate's.
    ClusterMismatch,
    /// The signature does not verify (tampered, moved to another key).
    Signature,
    /// Outside its validity window.
    Expired,
    /// An entry for another cluster than the signer's.
    OtherCluster,
    /// An entry that fails validation.
    InvalidEntry,
    /// Entries beyond the per-member bound.
    TooManyEntries,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::TooLarge => "too_large",
            Rejection::Malformed => "malformed",
            Rejection::Unsigned => "unsigned",
            Rejection::Certificate => "certificate",
            Rejection::Identity => "identity",
            Rejection::NodeMismatch => "node_mismatch",
            Rejection::ClusterMismatch => "cluster_mismatch",
            Rejection::Signature => "signature",
            Rejection::Expired => "expired",
            Rejection::OtherCluster => "other_cluster",
            Rejection::InvalidEntry => "invalid_entry",
            Rejection::TooManyEntries => "too_many_entries",
        }
    }

    /// Every reason (for metrics that show zeros).
    pub const ALL: [Rejection; 12] = [
        Rejection::TooLarge,
        Rejection::Malformed,
        Rejection::Unsigned,
        Rejection::Certificate,
        Rejection::Identity,
        Rejection::NodeMismatch,
        Rejection::ClusterMismatch,
        Rejection::Signature,
        Rejection::Expired,
        Rejection::OtherCluster,
        Rejection::InvalidEntry,
        Rejection::TooManyEntries,
    ];
}

fn check_text(v: &str, max: usize) -> bool {
    !v.is_empty() && v.len() <= max && !v.chars().any(char::is_control)
}

impl CatalogEntry {
    /// Checks lengths, the address shape, the server name, the time range
    /// and the label sets.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let bad = |reason: String| CatalogError::Invalid {
            node_id: self.node_id.chars().take(MAX_ID).collect(),
            reason,
        };
        for (field, v) in [("node_id", &self.node_id), ("cluster", &self.cluster)] {
            if !check_text(v, MAX_ID) {
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
        if self.label_sets.len() > MAX_LABEL_SETS {
            return Err(bad("too many label sets".into()));
        }
        for set in &self.label_sets {
            if set.len() > MAX_LABELS_PER_SET {
                return Err(bad("too many labels in a set".into()));
            }
            for (k, v) in set {
                if !check_text(k, MAX_LABEL_NAME) || v.len() > MAX_LABEL_VALUE {
                    return Err(bad("label name or value too long or empty".into()));
                }
            }
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
            label_sets: a.external_labels.clone(),
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

/// Splits entries into groups whose rendering (each entry's JSON, escaped
/// `escape` times as a JSON string when true) fits `budget` bytes besides
/// `fixed`.
fn pack(
    entries: &[CatalogEntry],
    fixed: usize,
    budget: usize,
    escape: bool,
) -> Result<Vec<Vec<serde_json::Value>>, CatalogError> {
    let mut groups = Vec::new();
    let mut current: Vec<serde_json::Value> = Vec::new();
    let mut size = fixed;
    for e in entries {
        e.validate()?;
        let value = serde_json::to_value(e)?;
        let text = serde_json::to_string(&value)?;
        let len = if escape {
            serde_json::to_string(&text)?.len() - 2
        } else {
            text.len()
        } + 1;
        if fixed + len > budget {
            return Err(CatalogError::TooLarge(e.node_id.clone()));
        }
        if size + len > budget {
            groups.push(std::mem::take(&mut current));
            size = fixed;
        }
        current.push(value);
        size += len;
    }
    if !current.is_empty() {
        groups.push(current);
    }
    Ok(groups)
}

/// The unsigned shards to publish without TLS (development): each a JSON
/// value of at most [`MAX_VALUE_BYTES`].
pub fn encode(entries: &[CatalogEntry]) -> Result<Vec<String>, CatalogError> {
    let empty = serde_json::to_string(&Shard {
        v: 1,
        entries: vec![],
    })?
    .len();
    pack(entries, empty, MAX_VALUE_BYTES, false)?
        .into_iter()
        .map(|entries| Ok(serde_json::to_string(&Shard { v: 1, entries })?))
        .collect()
}

/// Who signs a catalog.
#[derive(Clone, Debug)]
pub struct Publisher {
    pub node_id: String,
    pub cluster: String,
    pub federation: String,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn message(key: &str, body: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTEXT.len() + key.len() + body.len() + 2);
    m.extend_from_slice(CONTEXT);
    m.push(0);
    m.extend_from_slice(key.as_bytes());
    m.push(0);
    m.extend_from_slice(body.as_bytes());
    m
}

/// The signed shards for `entries`, as `who`, with `material`'s key and
/// chain, signed at `signed_at` (ms) and valid for [`CATALOG_TTL`], for the
/// keys `skein:catalog/0`, `/1`, ... Does not check that the entries are of
/// `who`'s cluster (readers do; see [`crate::wan::CatalogPublisher`] for
/// the publishing side's check).
pub fn encode_signed(
    entries: &[CatalogEntry],
    who: &Publisher,
    material: &TlsMaterial,
    signed_at: i64,
) -> Result<Vec<String>, CatalogError> {
    encode_signed_from(entries, who, material, signed_at, 0)
}

/// Like [`encode_signed`], the first shard signed for key
/// `skein:catalog/<first_index>`.
pub fn encode_signed_from(
    entries: &[CatalogEntry],
    who: &Publisher,
    material: &TlsMaterial,
    signed_at: i64,
    first_index: usize,
) -> Result<Vec<String>, CatalogError> {
    let chain: Vec<String> = material
        .chain()
        .iter()
        .take(MAX_CHAIN_LEN)
        .map(|c| B64.encode(c.as_ref()))
        .collect();
    let chain_bytes: usize = material.chain().iter().map(|c| c.len()).sum();
    if chain_bytes > MAX_CHAIN_BYTES || material.chain().len() > MAX_CHAIN_LEN {
        return Err(CatalogError::Sign(format!(
            "the certificate chain ({chain_bytes} bytes, {} certificates) is over {MAX_CHAIN_BYTES} bytes or {MAX_CHAIN_LEN} certificates",
            material.chain().len()
        )));
    }
    let expires_at =
        signed_at.saturating_add(i64::try_from(CATALOG_TTL.as_millis()).unwrap_or(i64::MAX));
    let body_of = |entries: Vec<serde_json::Value>| -> Result<String, CatalogError> {
        Ok(serde_json::to_string(&Body {
            node_id: who.node_id.clone(),
            cluster: who.cluster.clone(),
            federation: who.federation.clone(),
            signed_at,
            expires_at,
            entries,
        })?)
    };
    // Everything but the entries: the wrapper with an empty body, a
    // signature of the largest size (RSA 4096: 512 bytes), the empty body
    // escaped.
    let wrapper = serde_json::to_string(&SignedShard {
        v: 2,
        body: String::new(),
        chain: chain.clone(),
        scheme: 0xffff,
        sig: B64.encode([0u8; 512]),
    })?
    .len();
    let empty_body = serde_json::to_string(&body_of(vec![])?)?.len();
    let mut shards = Vec::new();
    let groups = pack(entries, wrapper + empty_body, MAX_VALUE_BYTES, true)?;
    for (i, group) in groups.into_iter().enumerate() {
        let body = body_of(group)?;
        let key = format!("{CATALOG_PREFIX}{}", first_index + i);
        let (scheme, sig) = material
            .sign(&message(&key, &body))
            .map_err(|e| CatalogError::Sign(e.to_string()))?;
        let shard = serde_json::to_string(&SignedShard {
            v: 2,
            body,
            chain: chain.clone(),
            scheme,
            sig: B64.encode(sig),
        })?;
        if shard.len() > MAX_VALUE_BYTES {
            return Err(CatalogError::TooLarge(who.node_id.clone()));
        }
        shards.push(shard);
    }
    Ok(shards)
}

/// How a reader checks shards.
#[derive(Clone, Copy)]
pub enum Verify<'a> {
    /// No TLS (development): unsigned and signed shards are taken as they
    /// are.
    Unchecked,
    /// Shards must be signed as the module docs say.
    Signed {
        material: &'a TlsMaterial,
        federation: &'a str,
    },
}

/// What a peer's shards gave: the accepted entries and each refusal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub entries: Vec<CatalogEntry>,
    pub rejected: Vec<(Rejection, String)>,
}

/// A verified shard: who signed it, its validity, its raw entries.
#[derive(Clone, Debug)]
struct Verified {
    cluster: String,
    signed_at: i64,
    expires_at: i64,
    not_after_ms: i64,
    entries: Vec<serde_json::Value>,
}

/// Caches shard verification (chain and signature) by node, key and exact
/// value, so an unchanged shard is not checked again at every change of
/// the view; times are checked at every use.
#[derive(Default)]
pub struct VerifyCache {
    entries: HashMap<(String, String), (Arc<str>, VerifyResult)>,
}

type VerifyResult = Result<Arc<Verified>, (Rejection, String)>;

impl VerifyCache {
    /// Drops what is not in `live` (node, key) pairs.
    pub fn retain(&mut self, live: &std::collections::HashSet<(String, String)>) {
        self.entries.retain(|k, _| live.contains(k));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn verify_shard(
    node_id: &str,
    key: &str,
    raw: &str,
    material: &TlsMaterial,
    federation: &str,
) -> Result<Verified, (Rejection, String)> {
    let r = |reason: Rejection, detail: String| (reason, detail);
    let shard: SignedShard = match serde_json::from_str(raw) {
        Ok(s) => s,
        Err(_) => {
            return Err(match serde_json::from_str::<Shard>(raw) {
                Ok(_) => r(Rejection::Unsigned, "unsigned shard".into()),
                Err(e) => r(Rejection::Malformed, e.to_string()),
            });
        }
    };
    if shard.v < 2 {
        return Err(r(Rejection::Unsigned, "unsigned shard".into()));
    }
    if shard.chain.is_empty() || shard.chain.len() > MAX_CHAIN_LEN {
        return Err(r(Rejection::Certificate, "no or too long chain".into()));
    }
    let mut chain = Vec::with_capacity(shard.chain.len());
    let mut chain_bytes = 0;
    for c in &shard.chain {
        let der = B64
            .decode(c)
            .map_err(|e| r(Rejection::Malformed, format!("chain: {e}")))?;
        chain_bytes += der.len();
        chain.push(CertificateDer::from(der));
    }
    if chain_bytes > MAX_CHAIN_BYTES {
        return Err(r(
            Rejection::TooLarge,
            format!("chain of {chain_bytes} bytes"),
        ));
    }
    let facts = material
        .verify_peer_chain(&chain, UnixTime::now())
        .map_err(|e| r(Rejection::Certificate, e.to_string()))?;
    let cert_cluster = facts
        .cluster_in(federation)
        .map_err(|e| r(Rejection::Identity, e.to_string()))?
        .to_string();
    if !facts.names_node(federation, node_id) {
        return Err(r(
            Rejection::NodeMismatch,
            format!("certificate does not name node {node_id:?}"),
        ));
    }
    let sig = B64
        .decode(&shard.sig)
        .map_err(|e| r(Rejection::Malformed, format!("sig: {e}")))?;
    verify_signature(&chain[0], shard.scheme, &message(key, &shard.body), &sig)
        .map_err(|e| r(Rejection::Signature, e.to_string()))?;
    let body: Body =
        serde_json::from_str(&shard.body).map_err(|e| r(Rejection::Malformed, e.to_string()))?;
    if body.federation != federation {
        return Err(r(
            Rejection::Identity,
            format!("body names federation {:?}", body.federation),
        ));
    }
    if body.node_id != node_id {
        return Err(r(
            Rejection::NodeMismatch,
            format!("body names node {:?}", body.node_id),
        ));
    }
    if body.cluster != cert_cluster {
        return Err(r(
            Rejection::ClusterMismatch,
            format!(
                "body names cluster {:?}, certificate {cert_cluster:?}",
                body.cluster
            ),
        ));
    }
    Ok(Verified {
        cluster: cert_cluster,
        signed_at: body.signed_at,
        expires_at: body.expires_at,
        not_after_ms: facts.not_after.saturating_mul(1000),
        entries: body.entries,
    })
}

/// The accepted entries of one peer's shards (`keys[i]` holds
/// `values[i]`), at most `max_entries`, and each refusal.
pub fn decode_peer(
    node_id: &str,
    keys: &[String],
    values: &[String],
    verify: Verify<'_>,
    cache: &mut VerifyCache,
    max_entries: usize,
) -> Decoded {
    let now = now_ms();
    let skew = i64::try_from(CLOCK_SKEW.as_millis()).unwrap_or(0);
    let mut out = Decoded::default();
    for (key, raw) in keys.iter().zip(values) {
        if raw.len() > MAX_VALUE_BYTES {
            out.rejected
                .push((Rejection::TooLarge, format!("{key}: {} bytes", raw.len())));
            continue;
        }
        let (raw_entries, cluster) = match verify {
            Verify::Unchecked => {
                let entries = serde_json::from_str::<SignedShard>(raw)
                    .ok()
                    .and_then(|s| serde_json::from_str::<Body>(&s.body).ok())
                    .map(|b| b.entries)
                    .or_else(|| {
                        serde_json::from_str::<Shard>(raw)
                            .ok()
                            .filter(|s| s.v >= 1)
                            .map(|s| s.entries)
                    });
                match entries {
                    Some(e) => (e, None),
                    None => {
                        out.rejected.push((Rejection::Malformed, key.clone()));
                        continue;
                    }
                }
            }
            Verify::Signed {
                material,
                federation,
            } => {
                let slot = (node_id.to_string(), key.clone());
                let cached = cache
                    .entries
                    .get(&slot)
                    .filter(|(v, _)| **v == *raw.as_str())
                    .map(|(_, res)| res.clone());
                let res = match cached {
                    Some(res) => res,
                    None => {
                        let res =
                            verify_shard(node_id, key, raw, material, federation).map(Arc::new);
                        cache
                            .entries
                            .insert(slot, (Arc::from(raw.as_str()), res.clone()));
                        res
                    }
                };
                match res {
                    Err((reason, detail)) => {
                        out.rejected.push((reason, format!("{key}: {detail}")));
                        continue;
                    }
                    Ok(v) => {
                        if now < v.signed_at.saturating_sub(skew)
                            || now > v.expires_at.saturating_add(skew)
                            || now > v.not_after_ms
                        {
                            out.rejected.push((
                                Rejection::Expired,
                                format!(
                                    "{key}: signed at {} valid until {}",
                                    v.signed_at,
                                    v.expires_at.min(v.not_after_ms)
                                ),
                            ));
                            continue;
                        }
                        (v.entries.clone(), Some(v.cluster.clone()))
                    }
                }
            }
        };
        for v in raw_entries {
            match serde_json::from_value::<CatalogEntry>(v) {
                Ok(e) if e.validate().is_ok() => {
                    if cluster.as_ref().is_some_and(|c| *c != e.cluster) {
                        out.rejected.push((
                            Rejection::OtherCluster,
                            format!("entry {} of cluster {:?}", e.address, e.cluster),
                        ));
                    } else if out.entries.len() >= max_entries {
                        out.rejected.push((Rejection::TooManyEntries, e.address));
                    } else {
                        out.entries.push(e);
                    }
                }
                _ => out.rejected.push((Rejection::InvalidEntry, key.clone())),
            }
        }
    }
    out
}

/// The valid entries of unsigned shards, and how many were refused
/// (unparsable shards count as one). For development pools without TLS.
pub fn decode(shards: &[String]) -> (Vec<CatalogEntry>, usize) {
    let keys: Vec<String> = (0..shards.len())
        .map(|i| format!("{CATALOG_PREFIX}{i}"))
        .collect();
    let d = decode_peer(
        "",
        &keys,
        shards,
        Verify::Unchecked,
        &mut VerifyCache::default(),
        usize::MAX,
    );
    (d.entries, d.rejected.len())
}

/// The union of several members' catalogs, one entry per (address, server
/// name, cluster) (a cluster's WAN members publish the same stores), sorted.
/// The cluster is part of the key so a member of another cluster naming the
/// same address cannot shadow the real entry: the querier dials both, and
/// the store's certificate settles which cluster it is of.
pub fn merge(catalogs: impl IntoIterator<Item = Vec<CatalogEntry>>) -> Vec<CatalogEntry> {
    type Key = (String, Option<String>, String);
    let mut by_key: BTreeMap<Key, CatalogEntry> = BTreeMap::new();
    for e in catalogs.into_iter().flatten() {
        by_key
            .entry((
                e.address.clone(),
                e.tls_server_name.clone(),
                e.cluster.clone(),
            ))
            .or_insert(e);
    }
    by_key.into_values().collect()
}

/// Milliseconds since the epoch now (for [`encode_signed`]).
pub fn signing_time() -> i64 {
    now_ms()
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
            label_sets: vec![],
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

    fn material(cluster: &str, node: &str) -> (tempfile::TempDir, TlsMaterial) {
        use skein_tls::devcerts::{DevCa, NodeCertSpec};
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::generate("t").unwrap();
        let spec = NodeCertSpec::new(node, &[]).with_identity("fed", cluster);
        let (cert, key) = ca.issue_node_to(dir.path(), &spec).unwrap();
        let ca_path = dir.path().join("ca.crt");
        std::fs::write(&ca_path, &ca.cert_pem).unwrap();
        let m = TlsMaterial::load(&skein_tls::TlsFiles {
            cert,
            key,
            ca: ca_path,
        })
        .unwrap();
        (dir, m)
    }

    #[test]
    fn signed_shards_round_trip_with_caps_and_expiry() {
        let (_d, m) = material("eu1", "q0");
        let who = Publisher {
            node_id: "q0".into(),
            cluster: "eu1".into(),
            federation: "fed".into(),
        };
        let entries: Vec<CatalogEntry> = (0..300).map(entry).collect();
        let shards = encode_signed(&entries, &who, &m, signing_time()).unwrap();
        assert!(shards.len() > 1);
        assert!(shards.iter().all(|s| s.len() <= MAX_VALUE_BYTES));
        let keys: Vec<String> = (0..shards.len())
            .map(|i| format!("{CATALOG_PREFIX}{i}"))
            .collect();
        let verify = Verify::Signed {
            material: &m,
            federation: "fed",
        };
        let mut cache = VerifyCache::default();
        let d = decode_peer("q0", &keys, &shards, verify, &mut cache, usize::MAX);
        assert_eq!(d.rejected, vec![]);
        assert_eq!(d.entries, entries);
        assert_eq!(cache.len(), shards.len());
        // The per-member cap.
        let d = decode_peer("q0", &keys, &shards, verify, &mut cache, 100);
        assert_eq!(d.entries.len(), 100);
        assert_eq!(d.rejected.len(), 200);
        assert!(
            d.rejected
                .iter()
                .all(|(r, _)| *r == Rejection::TooManyEntries)
        );
        // Under another node id; in another federation.
        let d = decode_peer("q1", &keys, &shards, verify, &mut cache, usize::MAX);
        assert!(d.entries.is_empty());
        assert!(
            d.rejected
                .iter()
                .all(|(r, _)| *r == Rejection::NodeMismatch)
        );
        let other_fed = Verify::Signed {
            material: &m,
            federation: "other",
        };
        let d = decode_peer(
            "q0",
            &keys,
            &shards,
            other_fed,
            &mut VerifyCache::default(),
            9,
        );
        assert!(d.rejected.iter().all(|(r, _)| *r == Rejection::Identity));
        // Signed two hours ago: expired (TTL one hour plus skew).
        let old = encode_signed(&entries[..1], &who, &m, signing_time() - 2 * 3600 * 1000).unwrap();
        let d = decode_peer("q0", &keys[..1], &old, verify, &mut cache, 9);
        assert_eq!(d.rejected[0].0, Rejection::Expired);
        // In the future beyond the skew.
        let future = encode_signed(&entries[..1], &who, &m, signing_time() + 3600 * 1000).unwrap();
        let d = decode_peer("q0", &keys[..1], &future, verify, &mut cache, 9);
        assert_eq!(d.rejected[0].0, Rejection::Expired);
        // Oversized and garbage values.
        let big = "x".repeat(MAX_VALUE_BYTES + 1);
        let d = decode_peer(
            "q0",
            &keys[..3],
            &[big, "{nope".into(), "[]".into()],
            verify,
            &mut cache,
            9,
        );
        let reasons: Vec<Rejection> = d.rejected.iter().map(|(r, _)| *r).collect();
        assert_eq!(
            reasons,
            [
                Rejection::TooLarge,
                Rejection::Malformed,
                Rejection::Malformed
            ]
        );
        // A label set too large for the schema is refused when writing.
        let mut fat = entry(1);
        fat.label_sets = vec![LabelSet::from([("a".to_string(), "v".repeat(2000))])];
        assert!(encode_signed(&[fat], &who, &m, signing_time()).is_err());
    }
}
