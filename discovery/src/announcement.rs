//! What a node publishes about itself: a small versioned schema, JSON in a
//! few chitchat keys. Readers ignore unknown fields and unknown keys, so an
//! older node still reads a newer node's announcement.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Schema version this build writes. Readers accept any `v >= 1`.
pub const SCHEMA_VERSION: u32 = 1;
/// Identity: node id, cluster, roles, build version.
pub const KEY_NODE: &str = "skein:node";
/// StoreAPI endpoint: addresses, TLS server name, time range.
pub const KEY_STORE: &str = "skein:store";
/// External label sets.
pub const KEY_LABELS: &str = "skein:labels";
/// Readiness: `true` or `false`.
pub const KEY_READY: &str = "skein:ready";
/// Largest value of one key, far below one datagram so a key always fits.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

const MAX_ID: usize = 128;
const MAX_ROLES: usize = 16;
const MAX_ADDR: usize = 256;
const MAX_SERVER_NAME: usize = 253;
const MAX_BUILD: usize = 64;
const MAX_LABEL_SETS: usize = 64;
const MAX_LABELS_PER_SET: usize = 64;
const MAX_LABEL_NAME: usize = 128;
const MAX_LABEL_VALUE: usize = 1024;

/// A role a node plays. Unknown roles from newer nodes are kept as `Other`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Role {
    Sidecar,
    Store,
    Query,
    Gateway,
    Other(String),
}

impl From<String> for Role {
    fn from(s: String) -> Role {
        match s.as_str() {
            "sidecar" => Role::Sidecar,
            "store" => Role::Store,
            "query" => Role::Query,
            "gateway" => Role::Gateway,
            _ => Role::Other(s),
        }
    }
}

impl From<Role> for String {
    fn from(r: Role) -> String {
        r.as_str().to_string()
    }
}

impl Role {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Role::Sidecar => "sidecar",
            Role::Store => "store",
            Role::Query => "query",
            Role::Gateway => "gateway",
            Role::Other(s) => s,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One external label set (name to value).
pub type LabelSet = BTreeMap<String, String>;

/// A node's announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub node_id: String,
    /// Cluster name (the LAN pool is `federation/cluster`).
    pub cluster: String,
    pub roles: Vec<Role>,
    /// StoreAPI `host:port` reachable inside the cluster.
    pub store_internal: Option<String>,
    /// StoreAPI `host:port` reachable from other clusters.
    pub store_external: Option<String>,
    /// TLS server name to present (SNI) when calling the external address.
    pub tls_server_name: Option<String>,
    pub external_labels: Vec<LabelSet>,
    /// Earliest sample time served, ms since the epoch.
    pub min_time: i64,
    /// Latest sample time served, ms since the epoch.
    pub max_time: i64,
    pub build_version: String,
}

/// Why an announcement could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AnnouncementError {
    #[error("announcement key {0} is missing")]
    Missing(&'static str),
    #[error("announcement key {key} is not valid JSON for its schema: {source}")]
    Json {
        key: &'static str,
        source: serde_json::Error,
    },
    #[error("announcement key {key} has schema version 0")]
    Version { key: &'static str },
    #[error("announcement field {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error("announcement key {key} is {len} bytes, over {MAX_VALUE_BYTES}")]
    TooLarge { key: &'static str, len: usize },
    #[error("readiness value is neither true nor false")]
    Ready,
}

#[derive(Serialize, Deserialize)]
struct NodeV1 {
    v: u32,
    node_id: String,
    cluster: String,
    #[serde(default)]
    roles: Vec<Role>,
    #[serde(default)]
    build: String,
}

#[derive(Serialize, Deserialize)]
struct StoreV1 {
    v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    internal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    external: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tls_server_name: Option<String>,
    #[serde(default = "min_i64")]
    min_time: i64,
    #[serde(default = "max_i64")]
    max_time: i64,
}

#[derive(Serialize, Deserialize)]
struct LabelsV1 {
    v: u32,
    #[serde(default)]
    sets: Vec<LabelSet>,
}

fn min_i64() -> i64 {
    i64::MIN
}

fn max_i64() -> i64 {
    i64::MAX
}

impl Announcement {
    /// An announcement with no roles, no endpoint, no labels and the full time range.
    pub fn new(node_id: impl Into<String>, cluster: impl Into<String>) -> Announcement {
        Announcement {
            node_id: node_id.into(),
            cluster: cluster.into(),
            roles: Vec::new(),
            store_internal: None,
            store_external: None,
            tls_server_name: None,
            external_labels: Vec::new(),
            min_time: i64::MIN,
            max_time: i64::MAX,
            build_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// True when the node announces this role.
    pub fn has_role(&self, role: &Role) -> bool {
        self.roles.contains(role)
    }

    /// Checks every field against the schema's limits.
    pub fn validate(&self) -> Result<(), AnnouncementError> {
        check_text("node_id", &self.node_id, MAX_ID, false)?;
        check_text("cluster", &self.cluster, MAX_ID, false)?;
        check_text("build_version", &self.build_version, MAX_BUILD, true)?;
        if self.roles.len() > MAX_ROLES {
            return Err(invalid("roles", "too many roles"));
        }
        for role in &self.roles {
            check_text("roles", role.as_str(), MAX_ID, false)?;
        }
        if let Some(a) = &self.store_internal {
            check_addr("store_internal", a)?;
        }
        if let Some(a) = &self.store_external {
            check_addr("store_external", a)?;
        }
        if let Some(n) = &self.tls_server_name {
            check_server_name(n)?;
        }
        if self.min_time > self.max_time {
            return Err(invalid("min_time", "greater than max_time"));
        }
        if self.external_labels.len() > MAX_LABEL_SETS {
            return Err(invalid("external_labels", "too many label sets"));
        }
        for set in &self.external_labels {
            check_label_set(set)?;
        }
        Ok(())
    }

    /// The chitchat key/values carrying this announcement (readiness excluded).
    pub fn to_key_values(&self) -> Result<Vec<(String, String)>, AnnouncementError> {
        self.validate()?;
        let node = NodeV1 {
            v: SCHEMA_VERSION,
            node_id: self.node_id.clone(),
            cluster: self.cluster.clone(),
            roles: self.roles.clone(),
            build: self.build_version.clone(),
        };
        let store = StoreV1 {
            v: SCHEMA_VERSION,
            internal: self.store_internal.clone(),
            external: self.store_external.clone(),
            tls_server_name: self.tls_server_name.clone(),
            min_time: self.min_time,
            max_time: self.max_time,
        };
        let labels = LabelsV1 {
            v: SCHEMA_VERSION,
            sets: self.external_labels.clone(),
        };
        Ok(vec![
            (KEY_NODE.to_string(), to_json(KEY_NODE, &node)?),
            (KEY_STORE.to_string(), to_json(KEY_STORE, &store)?),
            (KEY_LABELS.to_string(), to_json(KEY_LABELS, &labels)?),
        ])
    }

    /// Reads an announcement from a peer's keys. Any problem is an error, never a panic.
    pub fn from_key_values<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Announcement, AnnouncementError> {
        let node: NodeV1 = from_json(KEY_NODE, get(KEY_NODE))?;
        let store: StoreV1 = from_json(KEY_STORE, get(KEY_STORE))?;
        // Labels are optional: a node without labels may omit the key.
        let labels: LabelsV1 = match get(KEY_LABELS) {
            Some(raw) => from_json(KEY_LABELS, Some(raw))?,
            None => LabelsV1 {
                v: SCHEMA_VERSION,
                sets: Vec::new(),
            },
        };
        for (key, v) in [
            (KEY_NODE, node.v),
            (KEY_STORE, store.v),
            (KEY_LABELS, labels.v),
        ] {
            if v == 0 {
                return Err(AnnouncementError::Version { key });
            }
        }
        let ann = Announcement {
            node_id: node.node_id,
            cluster: node.cluster,
            roles: node.roles,
            store_internal: store.internal,
            store_external: store.external,
            tls_server_name: store.tls_server_name,
            external_labels: labels.sets,
            min_time: store.min_time,
            max_time: store.max_time,
            build_version: node.build,
        };
        ann.validate()?;
        Ok(ann)
    }
}

/// Wire value of the readiness key.
pub fn ready_value(ready: bool) -> &'static str {
    if ready { "true" } else { "false" }
}

/// Parses the readiness key; absent means not ready.
pub fn parse_ready(value: Option<&str>) -> Result<bool, AnnouncementError> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(AnnouncementError::Ready),
    }
}

fn to_json<T: Serialize>(key: &'static str, value: &T) -> Result<String, AnnouncementError> {
    let text =
        serde_json::to_string(value).map_err(|source| AnnouncementError::Json { key, source })?;
    if text.len() > MAX_VALUE_BYTES {
        return Err(AnnouncementError::TooLarge {
            key,
            len: text.len(),
        });
    }
    Ok(text)
}

fn from_json<T: for<'de> Deserialize<'de>>(
    key: &'static str,
    raw: Option<&str>,
) -> Result<T, AnnouncementError> {
    let raw = raw.ok_or(AnnouncementError::Missing(key))?;
    if raw.len() > MAX_VALUE_BYTES {
        return Err(AnnouncementError::TooLarge {
            key,
            len: raw.len(),
        });
    }
    serde_json::from_str(raw).map_err(|source| AnnouncementError::Json { key, source })
}

fn invalid(field: &'static str, reason: &'static str) -> AnnouncementError {
    AnnouncementError::Invalid { field, reason }
}

fn check_text(
    field: &'static str,
    s: &str,
    max: usize,
    allow_empty: bool,
) -> Result<(), AnnouncementError> {
    if s.is_empty() && !allow_empty {
        return Err(invalid(field, "empty"));
    }
    if s.len() > max {
        return Err(invalid(field, "too long"));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

/// `host:port` or `[v6]:port`, with a non-zero port.
fn check_addr(field: &'static str, s: &str) -> Result<(), AnnouncementError> {
    check_text(field, s, MAX_ADDR, false)?;
    if s.chars().any(char::is_whitespace) {
        return Err(invalid(field, "contains whitespace"));
    }
    let (host, port) = s.rsplit_once(':').ok_or(invalid(field, "not host:port"))?;
    let port: u16 = port.parse().map_err(|_| invalid(field, "bad port"))?;
    if port == 0 {
        return Err(invalid(field, "port 0"));
    }
    let host = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .ok_or(invalid(field, "unclosed IPv6 bracket"))?,
        None if host.contains(':') => return Err(invalid(field, "IPv6 host needs brackets")),
        None => host,
    };
    if host.is_empty() {
        return Err(invalid(field, "empty host"));
    }
    Ok(())
}

fn check_server_name(s: &str) -> Result<(), AnnouncementError> {
    const FIELD: &str = "tls_server_name";
    check_text(FIELD, s, MAX_SERVER_NAME, false)?;
    let ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '*');
    if !ok {
        return Err(invalid(FIELD, "not a DNS name"));
    }
    Ok(())
}

fn check_label_set(set: &LabelSet) -> Result<(), AnnouncementError> {
    const FIELD: &str = "external_labels";
    if set.len() > MAX_LABELS_PER_SET {
        return Err(invalid(FIELD, "too many labels in a set"));
    }
    for (name, value) in set {
        if name.is_empty() || name.len() > MAX_LABEL_NAME {
            return Err(invalid(FIELD, "label name empty or too long"));
        }
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid(FIELD, "label name is not [a-zA-Z_][a-zA-Z0-9_]*"));
        }
        if value.len() > MAX_LABEL_VALUE {
            return Err(invalid(FIELD, "label value too long"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn sample() -> Announcement {
        let mut a = Announcement::new("node-a", "eu-1");
        a.roles = vec![Role::Sidecar, Role::Query];
        a.store_internal = Some("10.0.0.5:10901".into());
        a.store_external = Some("[2001:db8::1]:443".into());
        a.tls_server_name = Some("node-a.eu-1.skein.example".into());
        a.external_labels = vec![LabelSet::from([
            ("cluster".to_string(), "eu-1".to_string()),
            ("replica".to_string(), "0".to_string()),
        ])];
        a.min_time = 1_700_000_000_000;
        a.max_time = 1_700_000_900_000;
        a
    }

    fn decode(kv: &HashMap<String, String>) -> Result<Announcement, AnnouncementError> {
        Announcement::from_key_values(|k| kv.get(k).map(String::as_str))
    }

    #[test]
    fn round_trip() {
        let a = sample();
        let kv: HashMap<_, _> = a.to_key_values().unwrap().into_iter().collect();
        assert_eq!(kv.len(), 3);
        assert!(kv.values().all(|v| v.len() < 1024));
        assert_eq!(decode(&kv).unwrap(), a);
    }

    #[test]
    fn v2_with_extra_fields_and_keys_reads_as_v1() {
        let mut kv: HashMap<String, String> = HashMap::new();
        kv.insert(
            KEY_NODE.into(),
            r#"{"v":2,"node_id":"n2","cluster":"c","roles":["store","ingester"],"build":"9.9.9",
                "zone":"eu-west-1a","weights":{"cpu":4}}"#
                .into(),
        );
        kv.insert(
            KEY_STORE.into(),
            r#"{"v":2,"internal":"n2:10901","min_time":5,"max_time":10,"protocols":["grpc","quic"]}"#
                .into(),
        );
        kv.insert("skein:future_key".into(), "{}".into());
        let a = decode(&kv).unwrap();
        assert_eq!(a.node_id, "n2");
        assert_eq!(a.roles, vec![Role::Store, Role::Other("ingester".into())]);
        assert_eq!(a.store_internal.as_deref(), Some("n2:10901"));
        assert!(a.external_labels.is_empty());
        assert_eq!((a.min_time, a.max_time), (5, 10));
        assert_eq!(a.build_version, "9.9.9");
    }

    #[test]
    fn bad_peer_values_are_errors() {
        let good: HashMap<_, _> = sample().to_key_values().unwrap().into_iter().collect();
        let cases: Vec<(&str, &str)> = vec![
            (KEY_NODE, "not json"),
            (KEY_NODE, r#"{"v":0,"node_id":"x","cluster":"c"}"#),
            (KEY_NODE, r#"{"v":1,"cluster":"c"}"#),
            (KEY_NODE, r#"{"v":1,"node_id":"","cluster":"c"}"#),
            (KEY_NODE, r#"{"v":1,"node_id":"a\u0000b","cluster":"c"}"#),
            (KEY_NODE, r#"{"v":-1,"node_id":"x","cluster":"c"}"#),
            (KEY_STORE, r#"{"v":1,"internal":"nohostport"}"#),
            (KEY_STORE, r#"{"v":1,"internal":"host:0"}"#),
            (KEY_STORE, r#"{"v":1,"internal":"host:99999"}"#),
            (KEY_STORE, r#"{"v":1,"external":"::1:80"}"#),
            (KEY_STORE, r#"{"v":1,"min_time":10,"max_time":5}"#),
            (KEY_STORE, r#"{"v":1,"tls_server_name":"a b"}"#),
            (KEY_STORE, r#"{"v":1,"min_time":1e400}"#),
            (KEY_LABELS, r#"{"v":1,"sets":[{"9bad":"x"}]}"#),
            (KEY_LABELS, r#"{"v":1,"sets":"nope"}"#),
        ];
        for (key, value) in cases {
            let mut kv = good.clone();
            kv.insert(key.to_string(), value.to_string());
            assert!(decode(&kv).is_err(), "{key}={value} should fail");
        }
        let mut missing = good.clone();
        missing.remove(KEY_STORE);
        assert!(matches!(
            decode(&missing),
            Err(AnnouncementError::Missing(KEY_STORE))
        ));
        let mut huge = good;
        huge.insert(KEY_LABELS.into(), "x".repeat(MAX_VALUE_BYTES + 1));
        assert!(matches!(
            decode(&huge),
            Err(AnnouncementError::TooLarge { .. })
        ));
    }

    #[test]
    fn writer_refuses_invalid_or_oversize() {
        let mut a = sample();
        a.store_internal = Some("missing-port".into());
        assert!(a.to_key_values().is_err());
        let mut b = sample();
        b.external_labels = (0..MAX_LABEL_SETS)
            .map(|i| {
                (0..MAX_LABELS_PER_SET)
                    .map(|j| (format!("l{j}"), format!("{i}-{}", "v".repeat(100))))
                    .collect()
            })
            .collect();
        assert!(matches!(
            b.to_key_values(),
            Err(AnnouncementError::TooLarge {
                key: KEY_LABELS,
                ..
            })
        ));
    }

    #[test]
    fn readiness_values() {
        assert!(!parse_ready(None).unwrap());
        assert!(parse_ready(Some(ready_value(true))).unwrap());
        assert!(!parse_ready(Some(ready_value(false))).unwrap());
        assert!(parse_ready(Some("yes")).is_err());
    }
}
