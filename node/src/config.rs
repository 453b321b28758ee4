//! The node's configuration: one YAML file, every key also a flag.
//!
//! Order of precedence: built-in defaults, then the YAML file, then flags
//! (and their environment variables). Unknown keys are errors that name the
//! key, so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid value for `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Sidecar,
    Store,
    Query,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "sidecar" => Ok(Role::Sidecar),
            "query" => Ok(Role::Query),
            "store" => Ok(Role::Store),
            other => Err(format!(
                "unknown role `{other}` (expected sidecar, store or query)"
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The YAML file as written by the operator. Every field optional, so a
/// file names only what it changes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub roles: Option<Vec<Role>>,
    pub node_id: Option<String>,
    pub cluster: Option<String>,
    pub federation: Option<String>,
    pub advertise_address: Option<String>,
    pub external_address: Option<String>,
    pub gossip: Option<FileGossip>,
    pub http_address: Option<String>,
    pub grpc_address: Option<String>,
    pub grpc: Option<FileGrpc>,
    pub log: Option<FileLog>,
    pub tls: Option<FileTls>,
    pub dev: Option<bool>,
    pub sidecar: Option<FileSidecar>,
    pub store: Option<FileStore>,
    pub query: Option<FileQuery>,
    pub max_regex_size: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStore {
    pub data_dir: Option<String>,
    pub objstore_config_file: Option<String>,
    pub sync_interval: Option<String>,
    pub index_cache_size: Option<String>,
    pub chunk_cache_size: Option<String>,
}

/// Limits of the gRPC server (`grpc:` in the file).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileGrpc {
    pub max_tls_handshakes: Option<usize>,
    pub tls_handshake_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub max_concurrent_streams: Option<u32>,
    pub max_concurrent_requests_per_connection: Option<usize>,
    pub max_recv_message_size: Option<String>,
    pub max_header_list_size: Option<String>,
    pub series_max_concurrency: Option<usize>,
    pub series_queue_timeout: Option<String>,
    pub max_matchers: Option<usize>,
    pub max_matcher_size: Option<String>,
    pub keepalive_interval: Option<String>,
    pub keepalive_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLog {
    pub format: Option<LogFormat>,
    pub level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileGossip {
    pub listen_address: Option<String>,
    pub advertise_address: Option<String>,
    pub seeds: Option<Vec<String>>,
    pub wan_seeds: Option<Vec<String>>,
    pub wan_max_catalog_entries: Option<usize>,
    pub keyring_file: Option<String>,
    pub interval: Option<String>,
    pub max_clock_skew: Option<String>,
    pub replay_cache_entries: Option<usize>,
    pub source_rate: Option<u32>,
    pub stranger_rate: Option<u32>,
    pub reassembly_bytes: Option<String>,
    pub reassembly_bytes_per_source: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTls {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub ca_file: Option<String>,
    pub server_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSidecar {
    pub prometheus_url: Option<String>,
    pub tsdb_path: Option<String>,
    pub objstore_config_file: Option<String>,
    pub ship_interval: Option<String>,
    pub refresh_interval: Option<String>,
    pub request_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileQuery {
    pub stores: Option<Vec<String>>,
    pub store_files: Option<Vec<String>>,
    pub replica_labels: Option<Vec<String>>,
    pub lookback_delta: Option<String>,
    pub timeout: Option<String>,
    pub max_samples: Option<usize>,
    pub partial_response: Option<bool>,
    pub info_interval: Option<String>,
    pub info_timeout: Option<String>,
    pub store_timeout: Option<String>,
    pub store_max_message_size: Option<String>,
    pub store_max_response_size: Option<String>,
    pub store_max_series: Option<usize>,
    pub store_max_label_values: Option<usize>,
    pub max_length: Option<String>,
    pub max_depth: Option<usize>,
    pub max_operators: Option<usize>,
    pub max_match: Option<usize>,
    pub max_body_size: Option<String>,
    pub max_concurrent: Option<usize>,
    pub max_queued: Option<usize>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(FileConfig::default());
        }
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }
}

/// The resolved configuration the node runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub roles: Vec<Role>,
    /// Unique id of this node in gossip.
    pub node_id: String,
    /// The cluster this node belongs to (its LAN gossip pool).
    pub cluster: Option<String>,
    /// The federation of clusters (the WAN pool).
    pub federation: String,
    /// StoreAPI address announced inside the cluster.
    pub advertise_address: Option<String>,
    /// StoreAPI address reachable from other clusters.
    pub external_address: Option<String>,
    pub gossip: Option<GossipSettings>,
    pub http_address: SocketAddr,
    pub grpc_address: SocketAddr,
    /// Limits of the gRPC server.
    pub grpc: GrpcSettings,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Mutual TLS on every gRPC link; `None` only in development mode.
    pub tls: Option<TlsSettings>,
    /// Development mode: plaintext gRPC allowed.
    pub dev: bool,
    pub sidecar: SidecarSettings,
    pub store: Option<StoreSettings>,
    pub query: QuerySettings,
    /// Largest compiled regex from a request, on every role.
    pub max_regex_size: usize,
}

#[derive(Clone, Debug)]
pub struct StoreSettings {
    pub data_dir: std::path::PathBuf,
    pub objstore_config_file: std::path::PathBuf,
    pub sync_interval: Duration,
    pub index_cache_bytes: u64,
    pub chunk_cache_bytes: u64,
}

/// The sidecar's shipper: uploads Prometheus's finished blocks.
#[derive(Clone, Debug)]
pub struct ShipperSettings {
    pub tsdb_path: std::path::PathBuf,
    pub objstore_config_file: std::path::PathBuf,
    pub interval: Duration,
}

#[derive(Clone, Debug)]
pub struct GossipSettings {
    pub listen_address: SocketAddr,
    pub advertise_address: Option<SocketAddr>,
    pub seeds: Vec<String>,
    pub wan_seeds: Vec<String>,
    /// Catalog entries accepted from one WAN member.
    pub wan_max_catalog_entries: usize,
    /// Keyring file (one key per line, the first seals); `None` only in
    /// development mode, which gossips in plaintext.
    pub keyring_file: Option<std::path::PathBuf>,
    pub interval: Duration,
    /// Freshness window, replay cache, rate and reassembly budgets.
    pub limits: skein_discovery::GossipLimits,
}

/// Limits of the gRPC server: TLS accept, HTTP/2 and the StoreAPI.
#[derive(Clone, Debug)]
pub struct GrpcSettings {
    pub accept: skein_tls::server::AcceptLimits,
    pub max_concurrent_streams: u32,
    pub max_concurrent_requests_per_connection: usize,
    pub max_recv_message_size: usize,
    pub max_header_list_size: u32,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub store_api: skein_actors::guard::StoreApiLimits,
}

#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub files: skein_tls::TlsFiles,
    /// The name in this node's certificate that peers check (and send as
    /// SNI); announced to them.
    pub server_name: Option<String>,
}

#[derive(Clone, Debug)]
pub struct SidecarSettings {
    pub prometheus_url: String,
    /// Set when the sidecar ships blocks (needs tsdb_path and objstore).
    pub shipper: Option<ShipperSettings>,
    pub refresh_interval: Duration,
    pub request_timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct QuerySettings {
    pub stores: Vec<String>,
    /// Watched files of StoreAPI endpoints.
    pub store_files: Vec<std::path::PathBuf>,
    pub replica_labels: Vec<String>,
    pub lookback_delta: Duration,
    pub timeout: Duration,
    pub max_samples: usize,
    pub partial_response: bool,
    pub info_interval: Duration,
    pub info_timeout: Duration,
    pub store_timeout: Duration,
    /// What one store's answer may be before the querier drops it.
    pub store_limits: skein_actors::query::StoreLimits,
    /// Limits on requests to the query API.
    pub limits: skein_actors::query::QueryLimits,
}

impl Config {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

pub fn parse_addr(key: &'static str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|e| ConfigError::Invalid {
        key,
        message: format!("{s:?} is not an address like 127.0.0.1:10902 ({e})"),
    })
}

/// Parses durations as Prometheus writes them (`30s`, `5m`, `1h30m`, `2d`)
/// and as humantime does (`1h 30min`).
pub fn parse_duration(key: &'static str, s: &str) -> Result<Duration, ConfigError> {
    let invalid = |m: String| ConfigError::Invalid { key, message: m };
    let s = s.trim();
    if s.is_empty() {
        return Err(invalid("empty duration".into()));
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(d);
    }
    // Prometheus units humantime does not know: `y` and `w` are accepted by
    // both, `d` too; this fallback handles digits-only seconds.
    s.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| invalid(format!("{s:?} is not a duration like 30s, 5m or 1h30m")))
}

/// Parses sizes like `512MiB`, `1GiB`, `100MB`, `4096`.
pub fn parse_size(key: &'static str, s: &str) -> Result<u64, ConfigError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        _ => {
            return Err(ConfigError::Invalid {
                key,
                message: format!("{s:?}: unknown size unit (use B, KiB, MiB, GiB, KB, MB, GB)"),
            });
        }
    };
    let n: f64 = num.parse().map_err(|_| ConfigError::Invalid {
        key,
        message: format!("{s:?} is not a size like 512MiB"),
    })?;
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let e = FileConfig::parse("query:\n  stors: [a]\n").unwrap_err();
        assert!(e.contains("stors"), "{e}");
    }

    #[test]
    fn unknown_role_is_named() {
        let e = FileConfig::parse("roles: [sidecar, qurey]\n").unwrap_err();
        assert!(e.contains("qurey"), "{e}");
    }

    #[test]
    fn full_file_parses() {
        let c = FileConfig::parse(
            "roles: [sidecar, query]\nhttp_address: 127.0.0.1:1\nlog: {format: json, level: debug}\n\
             sidecar: {prometheus_url: 'http://x:9090'}\nquery: {stores: [a:1, b:2], lookback_delta: 5m, max_samples: 10}\n",
        )
        .unwrap();
        assert_eq!(c.roles, Some(vec![Role::Sidecar, Role::Query]));
        assert_eq!(c.query.unwrap().stores.unwrap().len(), 2);
        assert_eq!(c.log.unwrap().format, Some(LogFormat::Json));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("k", "512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("k", "1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("k", "4096").unwrap(), 4096);
        assert!(
            parse_size("store.index_cache_size", "lots")
                .unwrap_err()
                .to_string()
                .contains("store.index_cache_size")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("k", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_duration("k", "1h30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(parse_duration("k", "15").unwrap(), Duration::from_secs(15));
        let e = parse_duration("query.timeout", "soon").unwrap_err();
        assert!(e.to_string().contains("query.timeout"), "{e}");
    }
}
