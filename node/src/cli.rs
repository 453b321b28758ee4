//! Command line: `skein node` and its flags. Every config key has a flag
//! and an environment variable; flags win over the file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{
    Config, ConfigError, FileConfig, LogFormat, QuerySettings, Role, SidecarSettings, parse_addr,
    parse_duration,
};

#[derive(Debug, Parser)]
#[command(
    name = "skein",
    version,
    about = "One PromQL view and long-term storage over many Prometheus servers",
    long_about = "Skein gives many Prometheus servers, in many clusters, one PromQL view and \
                  long-term storage. Every node runs the roles its config names: sidecar (serves \
                  a Prometheus over the Thanos StoreAPI) and query (fans PromQL out over StoreAPIs \
                  and serves the Prometheus HTTP API)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node with the roles its config or flags name.
    Node(Box<NodeArgs>),
    /// Work with config files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the live gossip view of a running node.
    Members {
        /// HTTP address of any node with gossip on.
        #[arg(long, default_value = "http://127.0.0.1:10902", env = "SKEIN_URL")]
        url: String,
    },
    /// Operator tools: certificates, bucket inspection.
    #[command(subcommand)]
    Tools(crate::tools::ToolsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load a config file with the node's loader and report the first
    /// problem (exit 2) or that it is valid (exit 0). Environment variables
    /// are ignored, so the file alone is checked.
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// YAML config file; flags and environment variables override its keys.
    #[arg(long, env = "SKEIN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Roles this node runs, comma separated: sidecar, query. [config: roles]
    #[arg(
        long,
        env = "SKEIN_ROLES",
        value_delimiter = ',',
        value_name = "ROLE,..."
    )]
    pub roles: Option<Vec<Role>>,

    /// Unique id of this node in gossip. [config: node_id]
    /// [default: <hostname>-<http address>]
    #[arg(long = "node-id", env = "SKEIN_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,

    /// Cluster this node belongs to; names its LAN gossip pool.
    /// [config: cluster]
    #[arg(long, env = "SKEIN_CLUSTER", value_name = "NAME")]
    pub cluster: Option<String>,

    /// Federation of clusters (the WAN pool). [config: federation] [default: skein]
    #[arg(long, env = "SKEIN_FEDERATION", value_name = "NAME")]
    pub federation: Option<String>,

    /// StoreAPI address announced to the cluster (needed when the gRPC
    /// listen address is a wildcard such as 0.0.0.0). [config: advertise_address]
    #[arg(
        long = "advertise-address",
        env = "SKEIN_ADVERTISE_ADDRESS",
        value_name = "HOST:PORT"
    )]
    pub advertise_address: Option<String>,

    /// StoreAPI address reachable from other clusters (an ingress or load
    /// balancer with TLS passthrough); makes this node a WAN member.
    /// [config: external_address]
    #[arg(
        long = "external-address",
        env = "SKEIN_EXTERNAL_ADDRESS",
        value_name = "HOST:PORT"
    )]
    pub external_address: Option<String>,

    /// UDP address for LAN gossip; gossip is off unless set.
    /// [config: gossip.listen_address]
    #[arg(
        long = "gossip.listen-address",
        env = "SKEIN_GOSSIP_LISTEN_ADDRESS",
        value_name = "HOST:PORT"
    )]
    pub gossip_listen_address: Option<String>,

    /// Gossip address announced to peers (needed with a wildcard listen
    /// address). It is sealed into every datagram as the sender, and peers
    /// drop datagrams that do not come from it, so it must be the address
    /// this node's datagrams leave from (no NAT between LAN members).
    /// [config: gossip.advertise_address]
    #[arg(
        long = "gossip.advertise-address",
        env = "SKEIN_GOSSIP_ADVERTISE_ADDRESS",
        value_name = "HOST:PORT"
    )]
    pub gossip_advertise_address: Option<String>,

    /// LAN gossip seed, repeatable (host:port; DNS names re-resolved).
    /// [config: gossip.seeds]
    #[arg(
        long = "gossip.seed",
        env = "SKEIN_GOSSIP_SEEDS",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    pub gossip_seeds: Vec<String>,

    /// WAN seed (another cluster's external gRPC address), repeatable.
    /// [config: gossip.wan_seeds]
    #[arg(
        long = "gossip.wan-seed",
        env = "SKEIN_GOSSIP_WAN_SEEDS",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    pub gossip_wan_seeds: Vec<String>,

    /// Store catalog entries accepted from one WAN member; more are dropped
    /// and counted. Default 512: a cluster's WAN member lists that
    /// cluster's stores, far fewer in practice, and 512 entries with label
    /// sets stay under ~300 KiB of gossip state per member.
    /// [config: gossip.wan_max_catalog_entries] [default: 512]
    #[arg(
        long = "gossip.wan-max-catalog-entries",
        env = "SKEIN_GOSSIP_WAN_MAX_CATALOG_ENTRIES",
        value_name = "N"
    )]
    pub gossip_wan_max_catalog_entries: Option<usize>,

    /// File with the gossip keys, one per line (base64 or hex of 32
    /// bytes); the first seals, all open. Re-read when it changes. Keys are
    /// never taken from the command line. [config: gossip.keyring_file]
    #[arg(
        long = "gossip.keyring-file",
        env = "SKEIN_GOSSIP_KEYRING_FILE",
        value_name = "FILE"
    )]
    pub gossip_keyring_file: Option<String>,

    /// Gossip round interval. [config: gossip.interval] [default: 1s]
    #[arg(
        long = "gossip.interval",
        env = "SKEIN_GOSSIP_INTERVAL",
        value_name = "DURATION"
    )]
    pub gossip_interval: Option<String>,

    #[command(flatten)]
    pub gossip_limits: crate::gossip::GossipLimitArgs,

    /// Listen address for HTTP: /metrics, /-/healthy, /-/ready and, with the
    /// query role, the Prometheus HTTP API. [config: http_address] [default: 127.0.0.1:10902]
    #[arg(
        long = "http-address",
        env = "SKEIN_HTTP_ADDRESS",
        value_name = "HOST:PORT"
    )]
    pub http_address: Option<String>,

    /// Listen address for gRPC: the StoreAPI (thanos.Store, thanos.info.Info)
    /// of the sidecar role. [config: grpc_address] [default: 127.0.0.1:10901]
    #[arg(
        long = "grpc-address",
        env = "SKEIN_GRPC_ADDRESS",
        value_name = "HOST:PORT"
    )]
    pub grpc_address: Option<String>,

    /// TLS handshakes in flight on the gRPC port; a connection over the cap
    /// is closed at once. 64 keeps handshake CPU and memory small on a 2-core
    /// node while honest peers (a few per querier) never wait.
    /// [config: grpc.max_tls_handshakes] [default: 64]
    #[arg(
        long = "grpc.max-tls-handshakes",
        env = "SKEIN_GRPC_MAX_TLS_HANDSHAKES",
        value_name = "N"
    )]
    pub grpc_max_tls_handshakes: Option<usize>,

    /// Time a peer has to finish its TLS handshake; 10s covers a slow WAN
    /// link while a silent connection frees its slot soon.
    /// [config: grpc.tls_handshake_timeout] [default: 10s]
    #[arg(
        long = "grpc.tls-handshake-timeout",
        env = "SKEIN_GRPC_TLS_HANDSHAKE_TIMEOUT",
        value_name = "DURATION"
    )]
    pub grpc_tls_handshake_timeout: Option<String>,

    /// Open gRPC connections (after the handshake); more are closed at once.
    /// 1024 connections of HTTP/2 buffers stay well under 1 GiB.
    /// [config: grpc.max_connections] [default: 1024]
    #[arg(
        long = "grpc.max-connections",
        env = "SKEIN_GRPC_MAX_CONNECTIONS",
        value_name = "N"
    )]
    pub grpc_max_connections: Option<usize>,

    /// HTTP/2 streams (calls) one connection may have open; 100 is the
    /// HTTP/2 recommended floor and more than a querier ever opens.
    /// [config: grpc.max_concurrent_streams] [default: 100]
    #[arg(
        long = "grpc.max-concurrent-streams",
        env = "SKEIN_GRPC_MAX_CONCURRENT_STREAMS",
        value_name = "N"
    )]
    pub grpc_max_concurrent_streams: Option<u32>,

    /// Requests one connection may have in service at once (others wait
    /// for a slot); 64 leaves room for a querier's fan-out on 2 cores.
    /// [config: grpc.max_concurrent_requests_per_connection] [default: 64]
    #[arg(
        long = "grpc.max-concurrent-requests-per-connection",
        env = "SKEIN_GRPC_MAX_CONCURRENT_REQUESTS_PER_CONNECTION",
        value_name = "N"
    )]
    pub grpc_max_concurrent_requests_per_connection: Option<usize>,

    /// Largest request message accepted; a SeriesRequest is a few KiB, so
    /// 4MiB (gRPC's own default) is plenty. [config: grpc.max_recv_message_size] [default: 4MiB]
    #[arg(
        long = "grpc.max-recv-message-size",
        env = "SKEIN_GRPC_MAX_RECV_MESSAGE_SIZE",
        value_name = "SIZE"
    )]
    pub grpc_max_recv_message_size: Option<String>,

    /// Largest HTTP/2 header list of a request; gRPC metadata is small and
    /// 16KiB is what HTTP/2 servers commonly allow.
    /// [config: grpc.max_header_list_size] [default: 16KiB]
    #[arg(
        long = "grpc.max-header-list-size",
        env = "SKEIN_GRPC_MAX_HEADER_LIST_SIZE",
        value_name = "SIZE"
    )]
    pub grpc_max_header_list_size: Option<String>,

    /// Series calls served at once across all connections (Thanos:
    /// --store.grpc.series-max-concurrency, default 20); more wait, then
    /// get RESOURCE_EXHAUSTED. [config: grpc.series_max_concurrency] [default: 20]
    #[arg(
        long = "grpc.series-max-concurrency",
        env = "SKEIN_GRPC_SERIES_MAX_CONCURRENCY",
        value_name = "N"
    )]
    pub grpc_series_max_concurrency: Option<usize>,

    /// How long a Series call waits for a slot before RESOURCE_EXHAUSTED; 5s
    /// absorbs a burst without letting callers queue forever.
    /// [config: grpc.series_queue_timeout] [default: 5s]
    #[arg(
        long = "grpc.series-queue-timeout",
        env = "SKEIN_GRPC_SERIES_QUEUE_TIMEOUT",
        value_name = "DURATION"
    )]
    pub grpc_series_queue_timeout: Option<String>,

    /// Matchers one StoreAPI request may carry; selectors hold a handful,
    /// so 128 is generous. [config: grpc.max_matchers] [default: 128]
    #[arg(
        long = "grpc.max-matchers",
        env = "SKEIN_GRPC_MAX_MATCHERS",
        value_name = "N"
    )]
    pub grpc_max_matchers: Option<usize>,

    /// Largest matcher (name plus value); 64KiB fits a long Grafana
    /// multi-value regex. [config: grpc.max_matcher_size] [default: 64KiB]
    #[arg(
        long = "grpc.max-matcher-size",
        env = "SKEIN_GRPC_MAX_MATCHER_SIZE",
        value_name = "SIZE"
    )]
    pub grpc_max_matcher_size: Option<String>,

    /// HTTP/2 ping interval on idle gRPC connections; with the timeout below
    /// a dead peer's connection is closed within 40s.
    /// [config: grpc.keepalive_interval] [default: 30s]
    #[arg(
        long = "grpc.keepalive-interval",
        env = "SKEIN_GRPC_KEEPALIVE_INTERVAL",
        value_name = "DURATION"
    )]
    pub grpc_keepalive_interval: Option<String>,

    /// How long a keepalive ping may go unanswered before the connection is
    /// closed. [config: grpc.keepalive_timeout] [default: 10s]
    #[arg(
        long = "grpc.keepalive-timeout",
        env = "SKEIN_GRPC_KEEPALIVE_TIMEOUT",
        value_name = "DURATION"
    )]
    pub grpc_keepalive_timeout: Option<String>,

    /// Log format. [config: log.format] [default: text]
    #[arg(long = "log.format", env = "SKEIN_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log level or tracing filter (e.g. info, debug, skein_actors=debug).
    /// [config: log.level] [default: info]
    #[arg(long = "log.level", env = "SKEIN_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Certificate chain (PEM) this node presents on gRPC, as server and as
    /// client. Reloaded when the file changes. [config: tls.cert_file]
    #[arg(
        long = "tls.cert-file",
        env = "SKEIN_TLS_CERT_FILE",
        value_name = "FILE"
    )]
    pub tls_cert_file: Option<String>,

    /// Private key (PEM) of the certificate. [config: tls.key_file]
    #[arg(long = "tls.key-file", env = "SKEIN_TLS_KEY_FILE", value_name = "FILE")]
    pub tls_key_file: Option<String>,

    /// CA bundle (PEM) that peers' certificates must chain to.
    /// [config: tls.ca_file]
    #[arg(long = "tls.ca-file", env = "SKEIN_TLS_CA_FILE", value_name = "FILE")]
    pub tls_ca_file: Option<String>,

    /// Name in this node's certificate that peers verify and send as SNI.
    /// [config: tls.server_name]
    #[arg(
        long = "tls.server-name",
        env = "SKEIN_TLS_SERVER_NAME",
        value_name = "NAME"
    )]
    pub tls_server_name: Option<String>,

    /// Development mode: allows plaintext gRPC when no TLS files are set.
    /// Never in production. [config: dev]
    #[arg(long, env = "SKEIN_DEV", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub dev: bool,

    /// URL of the Prometheus the sidecar serves. [config: sidecar.prometheus_url]
    /// [default: http://127.0.0.1:9090]
    #[arg(
        long = "sidecar.prometheus-url",
        env = "SKEIN_SIDECAR_PROMETHEUS_URL",
        value_name = "URL"
    )]
    pub sidecar_prometheus_url: Option<String>,

    /// How often the sidecar re-reads Prometheus's external labels and checks
    /// it is up. [config: sidecar.refresh_interval] [default: 30s]
    #[arg(
        long = "sidecar.refresh-interval",
        env = "SKEIN_SIDECAR_REFRESH_INTERVAL",
        value_name = "DURATION"
    )]
    pub sidecar_refresh_interval: Option<String>,

    /// Timeout of the sidecar's calls to Prometheus's HTTP API (not remote
    /// read streams). [config: sidecar.request_timeout] [default: 30s]
    #[arg(
        long = "sidecar.request-timeout",
        env = "SKEIN_SIDECAR_REQUEST_TIMEOUT",
        value_name = "DURATION"
    )]
    pub sidecar_request_timeout: Option<String>,

    /// Prometheus's TSDB directory; with an objstore config, the sidecar
    /// ships its finished blocks to object storage. [config: sidecar.tsdb_path]
    #[arg(
        long = "sidecar.tsdb-path",
        env = "SKEIN_SIDECAR_TSDB_PATH",
        value_name = "DIR"
    )]
    pub sidecar_tsdb_path: Option<String>,

    /// Bucket the sidecar ships blocks to (Thanos objstore.yml format).
    /// [config: sidecar.objstore_config_file]
    #[arg(
        long = "sidecar.objstore-config-file",
        env = "SKEIN_SIDECAR_OBJSTORE_CONFIG_FILE",
        value_name = "FILE"
    )]
    pub sidecar_objstore_config_file: Option<String>,

    /// How often the shipper looks for finished blocks.
    /// [config: sidecar.ship_interval] [default: 30s]
    #[arg(
        long = "sidecar.ship-interval",
        env = "SKEIN_SIDECAR_SHIP_INTERVAL",
        value_name = "DURATION"
    )]
    pub sidecar_ship_interval: Option<String>,

    /// Local directory of the store role (index headers).
    /// [config: store.data_dir] [default: ./data/store]
    #[arg(
        long = "store.data-dir",
        env = "SKEIN_STORE_DATA_DIR",
        value_name = "DIR"
    )]
    pub store_data_dir: Option<String>,

    /// Bucket the store role serves (Thanos objstore.yml format).
    /// [config: store.objstore_config_file]
    #[arg(
        long = "store.objstore-config-file",
        env = "SKEIN_STORE_OBJSTORE_CONFIG_FILE",
        value_name = "FILE"
    )]
    pub store_objstore_config_file: Option<String>,

    /// How often the store re-reads the bucket's block list.
    /// [config: store.sync_interval] [default: 1m]
    #[arg(
        long = "store.sync-interval",
        env = "SKEIN_STORE_SYNC_INTERVAL",
        value_name = "DURATION"
    )]
    pub store_sync_interval: Option<String>,

    /// Memory for cached index pages. [config: store.index_cache_size] [default: 256MiB]
    #[arg(
        long = "store.index-cache-size",
        env = "SKEIN_STORE_INDEX_CACHE_SIZE",
        value_name = "SIZE"
    )]
    pub store_index_cache_size: Option<String>,

    /// Memory for cached chunk pages. [config: store.chunk_cache_size] [default: 512MiB]
    #[arg(
        long = "store.chunk-cache-size",
        env = "SKEIN_STORE_CHUNK_CACHE_SIZE",
        value_name = "SIZE"
    )]
    pub store_chunk_cache_size: Option<String>,

    /// StoreAPI address to query, repeatable (host:port).
    /// [config: query.stores]
    #[arg(
        long = "query.store",
        env = "SKEIN_QUERY_STORES",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    pub query_stores: Vec<String>,

    /// File of StoreAPI endpoints (one host:port per line, or Thanos file
    /// SD YAML/JSON), re-read when it changes. Repeatable.
    /// [config: query.store_files]
    #[arg(
        long = "query.store-file",
        env = "SKEIN_QUERY_STORE_FILES",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    pub query_store_files: Vec<String>,

    /// Label that tells HA replicas apart; removed for deduplication.
    /// Repeatable. [config: query.replica_labels] [default: replica]
    #[arg(
        long = "query.replica-label",
        env = "SKEIN_QUERY_REPLICA_LABELS",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub query_replica_labels: Vec<String>,

    /// How far back an instant selector looks for a sample.
    /// [config: query.lookback_delta] [default: 5m]
    #[arg(
        long = "query.lookback-delta",
        env = "SKEIN_QUERY_LOOKBACK_DELTA",
        value_name = "DURATION"
    )]
    pub query_lookback_delta: Option<String>,

    /// Maximum time a query may run. [config: query.timeout] [default: 2m]
    #[arg(
        long = "query.timeout",
        env = "SKEIN_QUERY_TIMEOUT",
        value_name = "DURATION"
    )]
    pub query_timeout: Option<String>,

    /// Maximum number of samples a query may hold in memory.
    /// [config: query.max_samples] [default: 50000000]
    #[arg(
        long = "query.max-samples",
        env = "SKEIN_QUERY_MAX_SAMPLES",
        value_name = "N"
    )]
    pub query_max_samples: Option<usize>,

    /// Answer with the data of the stores that answered (and a warning)
    /// when some fail; false fails the query. Per request: partial_response=.
    /// [config: query.partial_response] [default: true]
    #[arg(
        long = "query.partial-response",
        env = "SKEIN_QUERY_PARTIAL_RESPONSE",
        value_name = "BOOL"
    )]
    pub query_partial_response: Option<bool>,

    /// How often each store's Info is checked. [config: query.info_interval] [default: 5s]
    #[arg(
        long = "query.info-interval",
        env = "SKEIN_QUERY_INFO_INTERVAL",
        value_name = "DURATION"
    )]
    pub query_info_interval: Option<String>,

    /// Timeout of one Info call. [config: query.info_timeout] [default: 5s]
    #[arg(
        long = "query.info-timeout",
        env = "SKEIN_QUERY_INFO_TIMEOUT",
        value_name = "DURATION"
    )]
    pub query_info_timeout: Option<String>,

    /// Deadline of one store's Series stream; a slower store becomes a
    /// warning. [config: query.store_timeout] [default: 2m]
    #[arg(
        long = "query.store-timeout",
        env = "SKEIN_QUERY_STORE_TIMEOUT",
        value_name = "DURATION"
    )]
    pub query_store_timeout: Option<String>,

    /// Largest gRPC message taken from a store (one Series frame, one label
    /// answer); a bigger one fails that store. 32MiB holds a year of one
    /// series' raw chunks. [config: query.store_max_message_size] [default: 32MiB]
    #[arg(
        long = "query.store-max-message-size",
        env = "SKEIN_QUERY_STORE_MAX_MESSAGE_SIZE",
        value_name = "SIZE"
    )]
    pub query_store_max_message_size: Option<String>,

    /// Most bytes one store's answer to one request may hold; more fails
    /// that store. 512MiB bounds a hostile store's memory on a 2-core node
    /// above what 50M samples need. [config: query.store_max_response_size] [default: 512MiB]
    #[arg(
        long = "query.store-max-response-size",
        env = "SKEIN_QUERY_STORE_MAX_RESPONSE_SIZE",
        value_name = "SIZE"
    )]
    pub query_store_max_response_size: Option<String>,

    /// Most series one store may send for one request; more fails that
    /// store. 1M series is beyond what a 2-core querier evaluates.
    /// [config: query.store_max_series] [default: 1000000]
    #[arg(
        long = "query.store-max-series",
        env = "SKEIN_QUERY_STORE_MAX_SERIES",
        value_name = "N"
    )]
    pub query_store_max_series: Option<usize>,

    /// Most label names or values one store may answer with; more fails
    /// that store. 1M values is beyond what a UI can show.
    /// [config: query.store_max_label_values] [default: 1000000]
    #[arg(
        long = "query.store-max-label-values",
        env = "SKEIN_QUERY_STORE_MAX_LABEL_VALUES",
        value_name = "N"
    )]
    pub query_store_max_label_values: Option<usize>,

    /// Longest PromQL query or match[] selector; longer is a 400. 128KiB is
    /// about 20x the longest Grafana-templated queries and parses in
    /// milliseconds. [config: query.max_length] [default: 128KiB]
    #[arg(
        long = "query.max-length",
        env = "SKEIN_QUERY_MAX_LENGTH",
        value_name = "SIZE"
    )]
    pub query_max_length: Option<String>,

    /// Deepest nesting of brackets and of the expression tree; deeper is a
    /// 400. 256 is far beyond hand-written queries; evaluation recurses once
    /// per level on a 2 MiB stack (at most 512). [config: query.max_depth]
    /// [default: 256]
    #[arg(
        long = "query.max-depth",
        env = "SKEIN_QUERY_MAX_DEPTH",
        value_name = "N"
    )]
    pub query_max_depth: Option<usize>,

    /// Most operators in a query (binary, unary, set, offset, @, range and
    /// subquery brackets); more is a 400. Generated queries stay in the
    /// hundreds and parse time grows faster than linearly (at most 4096).
    /// [config: query.max_operators] [default: 1000]
    #[arg(
        long = "query.max-operators",
        env = "SKEIN_QUERY_MAX_OPERATORS",
        value_name = "N"
    )]
    pub query_max_operators: Option<usize>,

    /// Most match[] values on series, labels and label values; more is a
    /// 400. Grafana sends one or a few, and each is a fan-out to every
    /// store. [config: query.max_match] [default: 100]
    #[arg(
        long = "query.max-match",
        env = "SKEIN_QUERY_MAX_MATCH",
        value_name = "N"
    )]
    pub query_max_match: Option<usize>,

    /// Largest request body (form POST) and query string; larger is a 400.
    /// 1MiB holds a maximal query plus a hundred long selectors and bounds
    /// what waiting requests hold. [config: query.max_body_size] [default: 1MiB]
    #[arg(
        long = "query.max-body-size",
        env = "SKEIN_QUERY_MAX_BODY_SIZE",
        value_name = "SIZE"
    )]
    pub query_max_body_size: Option<String>,

    /// Requests (query, query_range, series, labels, label values)
    /// evaluating at once; more wait in the queue. 20 is Thanos's default:
    /// a query mostly waits on stores, not on the CPU.
    /// [config: query.max_concurrent] [default: 20]
    #[arg(
        long = "query.max-concurrent",
        env = "SKEIN_QUERY_MAX_CONCURRENT",
        value_name = "N"
    )]
    pub query_max_concurrent: Option<usize>,

    /// Requests waiting for an evaluation slot; past this a request gets 503
    /// at once, and waiting counts against its timeout. 100 is a few
    /// dashboards loading at once. [config: query.max_queued] [default: 100]
    #[arg(
        long = "query.max-queued",
        env = "SKEIN_QUERY_MAX_QUEUED",
        value_name = "N"
    )]
    pub query_max_queued: Option<usize>,

    /// Largest compiled program of a regex from a request (PromQL and
    /// StoreAPI matchers, label_replace), on every role; larger is refused.
    /// 4MiB admits alternations of a few thousand names (Grafana "All") and
    /// compiles in ~0.1 s on one core. [config: max_regex_size] [default: 4MiB]
    #[arg(
        long = "max-regex-size",
        env = "SKEIN_MAX_REGEX_SIZE",
        value_name = "SIZE"
    )]
    pub max_regex_size: Option<String>,
}

fn dur(
    key: &'static str,
    flag: &Option<String>,
    file: Option<&String>,
    default: &str,
) -> Result<std::time::Duration, ConfigError> {
    let s = flag
        .as_deref()
        .or(file.map(String::as_str))
        .unwrap_or(default);
    let d = parse_duration(key, s)?;
    if d.is_zero() {
        // A zero interval or timeout would spin a loop or fail every call.
        return Err(ConfigError::Invalid {
            key,
            message: format!("{s:?}: must be greater than 0"),
        });
    }
    Ok(d)
}

/// A count limit that must be at least 1.
fn count<T: Copy + Default + PartialEq + std::fmt::Display>(
    key: &'static str,
    flag: Option<T>,
    file: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    let v = flag.or(file).unwrap_or(default);
    if v == T::default() {
        return Err(ConfigError::Invalid {
            key,
            message: format!("{v}: must be greater than 0"),
        });
    }
    Ok(v)
}

/// A size like `4MiB` that must be at least 1 byte.
fn size(
    key: &'static str,
    flag: &Option<String>,
    file: Option<&String>,
    default: &str,
) -> Result<u64, ConfigError> {
    let s = flag
        .as_deref()
        .or(file.map(String::as_str))
        .unwrap_or(default);
    let n = crate::config::parse_size(key, s)?;
    if n == 0 {
        return Err(ConfigError::Invalid {
            key,
            message: format!("{s:?}: must be greater than 0"),
        });
    }
    Ok(n)
}

impl NodeArgs {
    /// The arguments of a node run with only a config file: what
    /// `skein config check` validates.
    pub fn from_file(path: PathBuf) -> Self {
        NodeArgs {
            config: Some(path),
            roles: None,
            node_id: None,
            cluster: None,
            federation: None,
            advertise_address: None,
            external_address: None,
            gossip_listen_address: None,
            gossip_advertise_address: None,
            gossip_seeds: vec![],
            gossip_wan_seeds: vec![],
            gossip_wan_max_catalog_entries: None,
            gossip_keyring_file: None,
            gossip_interval: None,
            gossip_limits: Default::default(),
            http_address: None,
            grpc_address: None,
            log_format: None,
            log_level: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_file: None,
            tls_server_name: None,
            dev: false,
            sidecar_prometheus_url: None,
            sidecar_tsdb_path: None,
            sidecar_objstore_config_file: None,
            sidecar_ship_interval: None,
            store_data_dir: None,
            store_objstore_config_file: None,
            store_sync_interval: None,
            store_index_cache_size: None,
            store_chunk_cache_size: None,
            sidecar_refresh_interval: None,
            sidecar_request_timeout: None,
            query_stores: vec![],
            query_store_files: vec![],
            query_replica_labels: vec![],
            query_lookback_delta: None,
            query_timeout: None,
            query_max_samples: None,
            query_partial_response: None,
            query_info_interval: None,
            query_info_timeout: None,
            query_store_timeout: None,
            query_store_max_message_size: None,
            query_store_max_response_size: None,
            query_store_max_series: None,
            query_store_max_label_values: None,
            grpc_max_tls_handshakes: None,
            grpc_tls_handshake_timeout: None,
            grpc_max_connections: None,
            grpc_max_concurrent_streams: None,
            grpc_max_concurrent_requests_per_connection: None,
            grpc_max_recv_message_size: None,
            grpc_max_header_list_size: None,
            grpc_series_max_concurrency: None,
            grpc_series_queue_timeout: None,
            grpc_max_matchers: None,
            grpc_max_matcher_size: None,
            grpc_keepalive_interval: None,
            grpc_keepalive_timeout: None,
            query_max_length: None,
            query_max_depth: None,
            query_max_operators: None,
            query_max_match: None,
            query_max_body_size: None,
            query_max_concurrent: None,
            query_max_queued: None,
            max_regex_size: None,
        }
    }

    /// Merges defaults, the config file and the flags into the config the
    /// node runs with, and checks it.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        let fl = file.log.unwrap_or_default();
        let ft = file.tls.unwrap_or_default();
        let dev = self.dev || file.dev.unwrap_or(false);
        let fs = file.sidecar.unwrap_or_default();
        let fq = file.query.unwrap_or_default();

        let roles = self.roles.clone().or(file.roles).unwrap_or_default();
        if roles.is_empty() {
            return Err(ConfigError::Invalid {
                key: "roles",
                message: "no role given; set `roles: [sidecar]`, `[query]` or both".into(),
            });
        }
        let http = self
            .http_address
            .clone()
            .or(file.http_address)
            .unwrap_or_else(|| "127.0.0.1:10902".into());
        let grpc = self
            .grpc_address
            .clone()
            .or(file.grpc_address)
            .unwrap_or_else(|| "127.0.0.1:10901".into());

        let shipper = {
            let tsdb = self.sidecar_tsdb_path.clone().or(fs.tsdb_path);
            let obj = self
                .sidecar_objstore_config_file
                .clone()
                .or(fs.objstore_config_file);
            match (tsdb, obj) {
                (None, None) => None,
                (Some(t), Some(o)) => Some(crate::config::ShipperSettings {
                    tsdb_path: t.into(),
                    objstore_config_file: o.into(),
                    interval: dur(
                        "sidecar.ship_interval",
                        &self.sidecar_ship_interval,
                        fs.ship_interval.as_ref(),
                        "30s",
                    )?,
                }),
                (None, Some(_)) => {
                    return Err(ConfigError::Invalid {
                        key: "sidecar.tsdb_path",
                        message: "shipping blocks needs Prometheus's TSDB directory too".into(),
                    });
                }
                (Some(_), None) => {
                    return Err(ConfigError::Invalid {
                        key: "sidecar.objstore_config_file",
                        message: "shipping blocks needs the bucket's objstore.yml too".into(),
                    });
                }
            }
        };
        let fst = file.store.unwrap_or_default();
        let store = if roles.contains(&Role::Store) {
            let obj = self
                .store_objstore_config_file
                .clone()
                .or(fst.objstore_config_file)
                .ok_or(ConfigError::Invalid {
                    key: "store.objstore_config_file",
                    message: "the store role serves a bucket: give its objstore.yml".into(),
                })?;
            let size = |key: &'static str, flag: &Option<String>, file: Option<String>, d: &str| {
                crate::config::parse_size(key, flag.as_deref().or(file.as_deref()).unwrap_or(d))
            };
            Some(crate::config::StoreSettings {
                data_dir: self
                    .store_data_dir
                    .clone()
                    .or(fst.data_dir)
                    .unwrap_or_else(|| "./data/store".into())
                    .into(),
                objstore_config_file: obj.into(),
                sync_interval: dur(
                    "store.sync_interval",
                    &self.store_sync_interval,
                    fst.sync_interval.as_ref(),
                    "1m",
                )?,
                index_cache_bytes: size(
                    "store.index_cache_size",
                    &self.store_index_cache_size,
                    fst.index_cache_size,
                    "256MiB",
                )?,
                chunk_cache_bytes: size(
                    "store.chunk_cache_size",
                    &self.store_chunk_cache_size,
                    fst.chunk_cache_size,
                    "512MiB",
                )?,
            })
        } else {
            None
        };
        if roles.contains(&Role::Sidecar) && roles.contains(&Role::Store) {
            return Err(ConfigError::Invalid {
                key: "roles",
                message: "sidecar and store both serve the StoreAPI on the gRPC port; run them \
                          as two nodes"
                    .into(),
            });
        }
        let sidecar = SidecarSettings {
            shipper,
            prometheus_url: self
                .sidecar_prometheus_url
                .clone()
                .or(fs.prometheus_url)
                .unwrap_or_else(|| "http://127.0.0.1:9090".into()),
            refresh_interval: dur(
                "sidecar.refresh_interval",
                &self.sidecar_refresh_interval,
                fs.refresh_interval.as_ref(),
                "30s",
            )?,
            request_timeout: dur(
                "sidecar.request_timeout",
                &self.sidecar_request_timeout,
                fs.request_timeout.as_ref(),
                "30s",
            )?,
        };
        if !(sidecar.prometheus_url.starts_with("http://")
            || sidecar.prometheus_url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                key: "sidecar.prometheus_url",
                message: format!(
                    "{:?} must start with http:// or https://",
                    sidecar.prometheus_url
                ),
            });
        }

        let pick = |flag: &Vec<String>, file: Option<Vec<String>>, default: Vec<String>| {
            if !flag.is_empty() {
                flag.clone()
            } else {
                file.unwrap_or(default)
            }
        };
        let max_regex_size = size_usize(
            "max_regex_size",
            self.max_regex_size
                .as_deref()
                .or(file.max_regex_size.as_deref()),
            "4MiB",
        )?;
        let limits = self.query_limits(&fq, max_regex_size)?;
        let query = QuerySettings {
            stores: pick(&self.query_stores, fq.stores, vec![]),
            store_files: pick(&self.query_store_files, fq.store_files, vec![])
                .into_iter()
                .map(std::path::PathBuf::from)
                .collect(),
            replica_labels: pick(
                &self.query_replica_labels,
                fq.replica_labels,
                vec!["replica".into()],
            ),
            lookback_delta: dur(
                "query.lookback_delta",
                &self.query_lookback_delta,
                fq.lookback_delta.as_ref(),
                "5m",
            )?,
            timeout: dur(
                "query.timeout",
                &self.query_timeout,
                fq.timeout.as_ref(),
                "2m",
            )?,
            max_samples: self
                .query_max_samples
                .or(fq.max_samples)
                .unwrap_or(50_000_000),
            partial_response: self
                .query_partial_response
                .or(fq.partial_response)
                .unwrap_or(true),
            info_interval: dur(
                "query.info_interval",
                &self.query_info_interval,
                fq.info_interval.as_ref(),
                "5s",
            )?,
            info_timeout: dur(
                "query.info_timeout",
                &self.query_info_timeout,
                fq.info_timeout.as_ref(),
                "5s",
            )?,
            store_timeout: dur(
                "query.store_timeout",
                &self.query_store_timeout,
                fq.store_timeout.as_ref(),
                "2m",
            )?,
            store_limits: skein_actors::query::StoreLimits {
                max_message_bytes: usize_size(size(
                    "query.store_max_message_size",
                    &self.query_store_max_message_size,
                    fq.store_max_message_size.as_ref(),
                    "32MiB",
                )?),
                max_response_bytes: usize_size(size(
                    "query.store_max_response_size",
                    &self.query_store_max_response_size,
                    fq.store_max_response_size.as_ref(),
                    "512MiB",
                )?),
                max_series: count(
                    "query.store_max_series",
                    self.query_store_max_series,
                    fq.store_max_series,
                    1_000_000,
                )?,
                max_label_values: count(
                    "query.store_max_label_values",
                    self.query_store_max_label_values,
                    fq.store_max_label_values,
                    1_000_000,
                )?,
            },
            limits,
        };
        for s in &query.stores {
            // Only `host:port`: a scheme would pick the transport (plaintext
            // `http://`) behind the node's TLS settings.
            skein_actors::query::client::check_store_address(s).map_err(|message| {
                ConfigError::Invalid {
                    key: "query.stores",
                    message,
                }
            })?;
        }
        if query.max_samples == 0 {
            return Err(ConfigError::Invalid {
                key: "query.max_samples",
                message: "must be greater than 0".into(),
            });
        }

        let tls = resolve_tls(
            self.tls_cert_file.clone().or(ft.cert_file),
            self.tls_key_file.clone().or(ft.key_file),
            self.tls_ca_file.clone().or(ft.ca_file),
            self.tls_server_name.clone().or(ft.server_name),
        )?;
        let fg = file.gossip;
        let gossip_listen = self
            .gossip_listen_address
            .clone()
            .or(fg.as_ref().and_then(|g| g.listen_address.clone()));
        let gossip = match gossip_listen {
            None => None,
            Some(listen) => {
                let fg = fg.unwrap_or_default();
                let limits = crate::gossip::resolve_limits(&self.gossip_limits, &fg)?;
                let listen_address = parse_addr("gossip.listen_address", &listen)?;
                let advertise_address = match self
                    .gossip_advertise_address
                    .clone()
                    .or(fg.advertise_address)
                {
                    Some(a) => Some(parse_addr("gossip.advertise_address", &a)?),
                    None if listen_address.ip().is_unspecified() => {
                        return Err(ConfigError::Invalid {
                            key: "gossip.advertise_address",
                            message: format!(
                                "required when gossip listens on the wildcard {listen_address}: \
                                 peers need an address they can reach"
                            ),
                        });
                    }
                    None => None,
                };
                let keyring_file = self
                    .gossip_keyring_file
                    .clone()
                    .or(fg.keyring_file)
                    .map(std::path::PathBuf::from);
                if keyring_file.is_none() && !dev {
                    return Err(ConfigError::Invalid {
                        key: "gossip.keyring_file",
                        message: "gossip is sealed: give a keyring file (one key per line; \
                                  generate one with `skein tools gossip-key`), or run with \
                                  --dev for plaintext local development"
                            .into(),
                    });
                }
                Some(crate::config::GossipSettings {
                    listen_address,
                    advertise_address,
                    seeds: pick(&self.gossip_seeds, fg.seeds, vec![]),
                    wan_seeds: pick(&self.gossip_wan_seeds, fg.wan_seeds, vec![]),
                    wan_max_catalog_entries: match self
                        .gossip_wan_max_catalog_entries
                        .or(fg.wan_max_catalog_entries)
                    {
                        Some(0) => {
                            return Err(ConfigError::Invalid {
                                key: "gossip.wan_max_catalog_entries",
                                message: "must be at least 1".into(),
                            });
                        }
                        Some(n) => n,
                        None => skein_discovery::wan::catalog::DEFAULT_MAX_ENTRIES_PER_MEMBER,
                    },
                    keyring_file,
                    interval: dur(
                        "gossip.interval",
                        &self.gossip_interval,
                        fg.interval.as_ref(),
                        "1s",
                    )?,
                    limits,
                })
            }
        };
        let cluster = self.cluster.clone().or(file.cluster);
        if gossip.is_some() && cluster.is_none() {
            return Err(ConfigError::Invalid {
                key: "cluster",
                message: "gossip needs the name of this node's cluster".into(),
            });
        }
        let http_addr = parse_addr("http_address", &http)?;
        let node_id = self.node_id.clone().or(file.node_id).unwrap_or_else(|| {
            // Unique per host and HTTP listener, so several nodes on
            // one machine (or loopback addresses) differ.
            let addr: String = http_addr
                .to_string()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            format!("{}-{}", hostname(), addr.trim_matches('-'))
        });
        let advertise_address = self.advertise_address.clone().or(file.advertise_address);
        let external_address = self.external_address.clone().or(file.external_address);
        for (key, a) in [
            ("advertise_address", &advertise_address),
            ("external_address", &external_address),
        ] {
            if let Some(a) = a {
                check_host_port(key, a)?;
            }
        }

        // Every role dials or serves gRPC: a querier dials its stores however
        // it finds them (flags, files, gossip, WAN catalog, or later), the
        // data roles and WAN members serve. Plaintext only with --dev.
        let needs_grpc = roles.contains(&Role::Sidecar)
            || roles.contains(&Role::Store)
            || roles.contains(&Role::Query)
            || external_address.is_some()
            || gossip.is_some();
        if tls.is_none() && needs_grpc && !dev {
            return Err(ConfigError::Invalid {
                key: "tls",
                message: "gRPC links use mutual TLS: set tls.cert_file, tls.key_file and \
                          tls.ca_file (`skein tools certs` makes development ones), or run \
                          with --dev for plaintext local development"
                    .into(),
            });
        }
        let grpc_settings = self.grpc_settings(file.grpc.unwrap_or_default())?;

        Ok(Config {
            roles,
            node_id,
            cluster,
            federation: self
                .federation
                .clone()
                .or(file.federation)
                .unwrap_or_else(|| "skein".into()),
            advertise_address,
            external_address,
            gossip,
            tls,
            dev,
            http_address: http_addr,
            grpc_address: parse_addr("grpc_address", &grpc)?,
            grpc: grpc_settings,
            log_format: self.log_format.or(fl.format).unwrap_or_default(),
            log_level: self
                .log_level
                .clone()
                .or(fl.level)
                .unwrap_or_else(|| "info".into()),
            sidecar,
            store,
            query,
            max_regex_size,
        })
    }

    /// The query API's limits (flags, then the file, then defaults).
    fn query_limits(
        &self,
        fq: &crate::config::FileQuery,
        max_regex_size: usize,
    ) -> Result<skein_actors::query::QueryLimits, ConfigError> {
        use skein_actors::query::config as qc;
        use skein_promql::parse as pl;
        let n =
            |key: &'static str, flag: Option<usize>, file: Option<usize>, d: usize, max: usize| {
                let v = flag.or(file).unwrap_or(d);
                if v == 0 || v > max {
                    return Err(ConfigError::Invalid {
                        key,
                        message: format!("{v} is out of range (1..={max})"),
                    });
                }
                Ok(v)
            };
        let max_bytes = size_usize(
            "query.max_length",
            self.query_max_length
                .as_deref()
                .or(fq.max_length.as_deref()),
            "128KiB",
        )?;
        Ok(skein_actors::query::QueryLimits {
            parse: skein_promql::ParseLimits {
                max_bytes,
                max_depth: n(
                    "query.max_depth",
                    self.query_max_depth,
                    fq.max_depth,
                    pl::DEFAULT_MAX_DEPTH,
                    pl::HARD_MAX_DEPTH,
                )?,
                max_operators: n(
                    "query.max_operators",
                    self.query_max_operators,
                    fq.max_operators,
                    pl::DEFAULT_MAX_OPERATORS,
                    pl::HARD_MAX_OPERATORS,
                )?,
                max_regex_bytes: max_regex_size,
            },
            max_match: n(
                "query.max_match",
                self.query_max_match,
                fq.max_match,
                qc::DEFAULT_MAX_MATCH,
                usize::MAX,
            )?,
            max_body_bytes: size_usize(
                "query.max_body_size",
                self.query_max_body_size
                    .as_deref()
                    .or(fq.max_body_size.as_deref()),
                "1MiB",
            )?,
            max_concurrent: n(
                "query.max_concurrent",
                self.query_max_concurrent,
                fq.max_concurrent,
                qc::DEFAULT_MAX_CONCURRENT,
                100_000,
            )?,
            max_queued: self
                .query_max_queued
                .or(fq.max_queued)
                .unwrap_or(qc::DEFAULT_MAX_QUEUED),
        })
    }
}

/// A positive size in bytes.
fn size_usize(key: &'static str, v: Option<&str>, default: &str) -> Result<usize, ConfigError> {
    let n = crate::config::parse_size(key, v.unwrap_or(default))?;
    match usize::try_from(n) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConfigError::Invalid {
            key,
            message: format!("{n} bytes is out of range"),
        }),
    }
}

impl NodeArgs {
    fn grpc_settings(
        &self,
        f: crate::config::FileGrpc,
    ) -> Result<crate::config::GrpcSettings, ConfigError> {
        let header_list = size(
            "grpc.max_header_list_size",
            &self.grpc_max_header_list_size,
            f.max_header_list_size.as_ref(),
            "16KiB",
        )?;
        Ok(crate::config::GrpcSettings {
            accept: skein_tls::server::AcceptLimits {
                max_handshakes: count(
                    "grpc.max_tls_handshakes",
                    self.grpc_max_tls_handshakes,
                    f.max_tls_handshakes,
                    64,
                )?,
                handshake_timeout: dur(
                    "grpc.tls_handshake_timeout",
                    &self.grpc_tls_handshake_timeout,
                    f.tls_handshake_timeout.as_ref(),
                    "10s",
                )?,
                max_connections: count(
                    "grpc.max_connections",
                    self.grpc_max_connections,
                    f.max_connections,
                    1024,
                )?,
            },
            max_concurrent_streams: count(
                "grpc.max_concurrent_streams",
                self.grpc_max_concurrent_streams,
                f.max_concurrent_streams,
                100,
            )?,
            max_concurrent_requests_per_connection: count(
                "grpc.max_concurrent_requests_per_connection",
                self.grpc_max_concurrent_requests_per_connection,
                f.max_concurrent_requests_per_connection,
                64,
            )?,
            max_recv_message_size: usize_size(size(
                "grpc.max_recv_message_size",
                &self.grpc_max_recv_message_size,
                f.max_recv_message_size.as_ref(),
                "4MiB",
            )?),
            max_header_list_size: u32::try_from(header_list).map_err(|_| ConfigError::Invalid {
                key: "grpc.max_header_list_size",
                message: format!("{header_list} bytes: at most 4GiB"),
            })?,
            keepalive_interval: dur(
                "grpc.keepalive_interval",
                &self.grpc_keepalive_interval,
                f.keepalive_interval.as_ref(),
                "30s",
            )?,
            keepalive_timeout: dur(
                "grpc.keepalive_timeout",
                &self.grpc_keepalive_timeout,
                f.keepalive_timeout.as_ref(),
                "10s",
            )?,
            store_api: skein_actors::guard::StoreApiLimits {
                series_max_concurrency: count(
                    "grpc.series_max_concurrency",
                    self.grpc_series_max_concurrency,
                    f.series_max_concurrency,
                    20,
                )?,
                series_queue_timeout: dur(
                    "grpc.series_queue_timeout",
                    &self.grpc_series_queue_timeout,
                    f.series_queue_timeout.as_ref(),
                    "5s",
                )?,
                max_matchers: count(
                    "grpc.max_matchers",
                    self.grpc_max_matchers,
                    f.max_matchers,
                    128,
                )?,
                max_matcher_bytes: usize_size(size(
                    "grpc.max_matcher_size",
                    &self.grpc_max_matcher_size,
                    f.max_matcher_size.as_ref(),
                    "64KiB",
                )?),
            },
        })
    }
}

fn usize_size(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "skein".into())
}

/// `host:port` with a non-empty host and a numeric port.
fn check_host_port(key: &'static str, a: &str) -> Result<(), ConfigError> {
    skein_actors::query::client::check_store_address(a)
        .map_err(|message| ConfigError::Invalid { key, message })
}

/// All three TLS files or none; a partial set names what is missing.
fn resolve_tls(
    cert: Option<String>,
    key: Option<String>,
    ca: Option<String>,
    server_name: Option<String>,
) -> Result<Option<crate::config::TlsSettings>, ConfigError> {
    match (cert, key, ca) {
        (None, None, None) => {
            if server_name.is_some() {
                return Err(ConfigError::Invalid {
                    key: "tls.server_name",
                    message: "set only together with tls.cert_file, tls.key_file and tls.ca_file"
                        .into(),
                });
            }
            Ok(None)
        }
        (Some(cert), Some(key), Some(ca)) => Ok(Some(crate::config::TlsSettings {
            files: skein_tls::TlsFiles {
                cert: cert.into(),
                key: key.into(),
                ca: ca.into(),
            },
            server_name,
        })),
        (c, k, _) => {
            let missing = if c.is_none() {
                "tls.cert_file"
            } else if k.is_none() {
                "tls.key_file"
            } else {
                "tls.ca_file"
            };
            Err(ConfigError::Invalid {
                key: "tls",
                message: format!("{missing} is missing; TLS needs cert_file, key_file and ca_file"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parsing reads SKEIN_* variables; tests that set one hold this lock.
    static ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn args(extra: &[&str]) -> NodeArgs {
        let _env = ENV_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        parse_unlocked(extra)
    }

    fn parse_unlocked(extra: &[&str]) -> NodeArgs {
        let mut v = vec!["skein", "node"];
        v.extend_from_slice(extra);
        match Cli::try_parse_from(v).unwrap().command {
            Command::Node(a) => *a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_override_file_and_defaults_fill_in() {
        let dir = std::env::temp_dir().join(format!("skein-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.yaml");
        std::fs::write(
            &f,
            "roles: [query]\nquery:\n  stores: ['a:1']\n  timeout: 1m\n",
        )
        .unwrap();
        let c = args(&[
            "--config",
            f.to_str().unwrap(),
            "--query.timeout",
            "30s",
            "--dev",
        ])
        .resolve()
        .unwrap();
        assert_eq!(c.roles, vec![Role::Query]);
        assert_eq!(c.query.stores, vec!["a:1".to_string()]);
        assert_eq!(c.query.timeout.as_secs(), 30);
        assert_eq!(c.query.lookback_delta.as_secs(), 300);
        assert_eq!(c.query.replica_labels, vec!["replica".to_string()]);
        assert_eq!(c.http_address.to_string(), "127.0.0.1:10902");
    }

    #[test]
    fn query_limits_from_flags_file_and_defaults() {
        let d = args(&["--roles", "query", "--dev"]).resolve().unwrap();
        assert_eq!(d.query.limits, skein_actors::query::QueryLimits::default());
        assert_eq!(d.max_regex_size, skein_promql::re::DEFAULT_SIZE_LIMIT);
        let dir = std::env::temp_dir().join(format!("skein-cli-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.yaml");
        std::fs::write(
            &f,
            "roles: [query]\nmax_regex_size: 1MiB\nquery:\n  max_length: 64KiB\n  \
             max_depth: 100\n  max_operators: 500\n  max_match: 7\n  max_body_size: 2MiB\n  \
             max_concurrent: 4\n  max_queued: 0\n",
        )
        .unwrap();
        let c = args(&[
            "--config",
            f.to_str().unwrap(),
            "--query.max-depth",
            "50",
            "--dev",
        ])
        .resolve()
        .unwrap();
        let l = &c.query.limits;
        assert_eq!(l.parse.max_bytes, 64 << 10);
        assert_eq!(l.parse.max_depth, 50);
        assert_eq!(l.parse.max_operators, 500);
        assert_eq!(l.parse.max_regex_bytes, 1 << 20);
        assert_eq!((l.max_match, l.max_body_bytes), (7, 2 << 20));
        assert_eq!((l.max_concurrent, l.max_queued), (4, 0));
        assert_eq!(c.max_regex_size, 1 << 20);
        // Beyond the ceilings the stack is proven for: refused, named.
        let e = args(&["--roles", "query", "--dev", "--query.max-depth", "100000"])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("query.max_depth") && e.contains("512"), "{e}");
        let e = args(&["--roles", "query", "--dev", "--query.max-body-size", "lots"])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("query.max_body_size"), "{e}");
    }

    #[test]
    fn missing_roles_and_bad_values_name_the_key() {
        let e = args(&[]).resolve().unwrap_err().to_string();
        assert!(e.contains("roles"), "{e}");
        let e = args(&["--roles", "query", "--http-address", "nowhere"])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("http_address"), "{e}");
        let e = args(&[
            "--roles",
            "sidecar",
            "--sidecar.prometheus-url",
            "localhost:9090",
        ])
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(e.contains("sidecar.prometheus_url"), "{e}");
    }

    #[test]
    fn roles_flag_parses_list_and_rejects_unknown() {
        let c = args(&["--roles", "sidecar,query", "--dev"])
            .resolve()
            .unwrap();
        assert_eq!(c.roles, vec![Role::Sidecar, Role::Query]);
        let v = vec!["skein", "node", "--roles", "gateway"];
        assert!(Cli::try_parse_from(v).is_err());
    }

    #[test]
    fn dev_flag_from_environment_accepts_boolish_values() {
        let _env = ENV_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: every test that parses holds ENV_LOCK, so no other thread
        // of this test binary reads the environment meanwhile.
        unsafe { std::env::set_var("SKEIN_DEV", "1") };
        let on = parse_unlocked(&["--roles", "sidecar"]).resolve();
        unsafe { std::env::set_var("SKEIN_DEV", "false") };
        let off = parse_unlocked(&["--roles", "sidecar"]).resolve();
        unsafe { std::env::remove_var("SKEIN_DEV") };
        assert!(on.unwrap().dev);
        assert!(off.is_err());
    }

    #[test]
    fn grpc_needs_tls_unless_dev_and_tls_needs_all_files() {
        let e = args(&["--roles", "sidecar"])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("mutual TLS") && e.contains("--dev"), "{e}");
        // A querier dials whatever stores it finds later (gossip, files):
        // plaintext needs --dev there too.
        let e = args(&["--roles", "query"])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("mutual TLS"), "{e}");
        assert!(args(&["--roles", "query", "--dev"]).resolve().is_ok());
        let e = args(&[
            "--roles",
            "sidecar",
            "--tls.cert-file",
            "a",
            "--tls.ca-file",
            "c",
        ])
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(e.contains("tls.key_file"), "{e}");
        let c = args(&[
            "--roles",
            "sidecar",
            "--tls.cert-file",
            "a",
            "--tls.key-file",
            "b",
            "--tls.ca-file",
            "c",
            "--tls.server-name",
            "n1",
        ])
        .resolve()
        .unwrap();
        let t = c.tls.unwrap();
        assert_eq!(t.files.key.to_str(), Some("b"));
        assert_eq!(t.server_name.as_deref(), Some("n1"));
    }

    const TLS: [&str; 6] = [
        "--tls.cert-file",
        "a",
        "--tls.key-file",
        "b",
        "--tls.ca-file",
        "c",
    ];

    #[test]
    fn a_gossip_only_querier_without_tls_is_refused() {
        let dir = std::env::temp_dir().join(format!("skein-cli-gossip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let keyring = dir.join("keyring");
        std::fs::write(&keyring, "").unwrap();
        let gossip = [
            "--roles",
            "query",
            "--cluster",
            "eu1",
            "--gossip.listen-address",
            "127.0.0.1:7946",
            "--gossip.keyring-file",
            keyring.to_str().unwrap(),
        ];
        let e = args(&gossip).resolve().unwrap_err().to_string();
        assert!(e.contains("`tls`") && e.contains("--dev"), "{e}");
        let mut with_tls = gossip.to_vec();
        with_tls.extend(TLS);
        assert!(args(&with_tls).resolve().is_ok());
        // The same through `skein config check`'s path: a file alone.
        let f = dir.join("q.yaml");
        std::fs::write(
            &f,
            format!(
                "roles: [query]\ncluster: eu1\ngossip: {{listen_address: '127.0.0.1:7946', keyring_file: '{}'}}\n",
                keyring.display()
            ),
        )
        .unwrap();
        let e = NodeArgs::from_file(f).resolve().unwrap_err().to_string();
        assert!(e.contains("mutual TLS"), "{e}");
    }

    #[test]
    fn store_addresses_with_a_scheme_or_path_are_refused_everywhere() {
        for bad in [
            "http://h:10901",
            "https://h:10901",
            "h:10901/x",
            "user@h:1",
            "h",
            "h:0",
        ] {
            let mut a = vec!["--roles", "query", "--query.store", bad];
            a.extend(TLS);
            let e = args(&a).resolve().unwrap_err().to_string();
            assert!(e.contains("query.stores"), "{bad}: {e}");
        }
        let e = args(&["--roles", "query", "--dev", "--query.store", "http://h:1"])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("query.stores") && e.contains("scheme"), "{e}");
        let dir = std::env::temp_dir().join(format!("skein-cli-scheme-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("q.yaml");
        std::fs::write(
            &f,
            "roles: [query]\ndev: true\nquery: {stores: ['h:1', 'http://h:2']}\n",
        )
        .unwrap();
        let e = NodeArgs::from_file(f).resolve().unwrap_err().to_string();
        assert!(e.contains("query.stores"), "{e}");
        let e = args(&[
            "--roles",
            "sidecar",
            "--dev",
            "--external-address",
            "https://x:443",
        ])
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(e.contains("external_address"), "{e}");
        let mut ok = vec!["--roles", "query", "--query.store", "[::1]:10901"];
        ok.extend(TLS);
        assert!(args(&ok).resolve().is_ok());
    }

    #[test]
    fn zero_intervals_timeouts_and_limits_are_refused_naming_the_key() {
        let dir = std::env::temp_dir().join(format!("skein-cli-zero-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bucket = dir.join("objstore.yml");
        let b = bucket.to_str().unwrap();
        let keyring = dir.join("keyring");
        std::fs::write(&keyring, "").unwrap();
        let k = keyring.to_str().unwrap();
        // (flag, key, value, roles and extra flags that make the key used)
        let cases: Vec<(&str, &str, &str, Vec<&str>)> = vec![
            (
                "--store.sync-interval",
                "store.sync_interval",
                "0s",
                vec!["--roles", "store", "--store.objstore-config-file", b],
            ),
            (
                "--sidecar.ship-interval",
                "sidecar.ship_interval",
                "0s",
                vec![
                    "--roles",
                    "sidecar",
                    "--sidecar.tsdb-path",
                    "/x",
                    "--sidecar.objstore-config-file",
                    b,
                ],
            ),
            (
                "--sidecar.refresh-interval",
                "sidecar.refresh_interval",
                "0s",
                vec!["--roles", "sidecar"],
            ),
            (
                "--sidecar.request-timeout",
                "sidecar.request_timeout",
                "0",
                vec!["--roles", "sidecar"],
            ),
            (
                "--query.info-interval",
                "query.info_interval",
                "0s",
                vec!["--roles", "query"],
            ),
            (
                "--query.info-timeout",
                "query.info_timeout",
                "0ms",
                vec!["--roles", "query"],
            ),
            (
                "--query.store-timeout",
                "query.store_timeout",
                "0s",
                vec!["--roles", "query"],
            ),
            (
                "--query.timeout",
                "query.timeout",
                "0s",
                vec!["--roles", "query"],
            ),
            (
                "--query.lookback-delta",
                "query.lookback_delta",
                "0s",
                vec!["--roles", "query"],
            ),
            (
                "--gossip.interval",
                "gossip.interval",
                "0s",
                vec![
                    "--roles",
                    "query",
                    "--cluster",
                    "c",
                    "--gossip.listen-address",
                    "127.0.0.1:1",
                    "--gossip.keyring-file",
                    k,
                ],
            ),
            (
                "--grpc.tls-handshake-timeout",
                "grpc.tls_handshake_timeout",
                "0s",
                vec!["--roles", "query"],
            ),
            (
                "--grpc.series-queue-timeout",
                "grpc.series_queue_timeout",
                "0s",
                vec!["--roles", "query"],
            ),
            (
                "--grpc.keepalive-interval",
                "grpc.keepalive_interval",
                "0s",
                vec!["--roles", "query"],
            ),
            (
                "--grpc.keepalive-timeout",
                "grpc.keepalive_timeout",
                "0s",
                vec!["--roles", "query"],
            ),
            (
                "--grpc.max-tls-handshakes",
                "grpc.max_tls_handshakes",
                "0",
                vec!["--roles", "query"],
            ),
            (
                "--grpc.max-connections",
                "grpc.max_connections",
                "0",
                vec!["--roles", "query"],
            ),
            (
                "--grpc.max-concurrent-streams",
                "grpc.max_concurrent_streams",
                "0",
                vec!["--roles", "query"],
            ),
            (
                "--grpc.series-max-concurrency",
                "grpc.series_max_concurrency",
                "0",
                vec!["--roles", "query"],
            ),
            (
                "--grpc.max-matchers",
                "grpc.max_matchers",
                "0",
                vec!["--roles", "query"],
            ),
            (
                "--grpc.max-recv-message-size",
                "grpc.max_recv_message_size",
                "0B",
                vec!["--roles", "query"],
            ),
            (
                "--query.store-max-message-size",
                "query.store_max_message_size",
                "0",
                vec!["--roles", "query"],
            ),
            (
                "--query.store-max-series",
                "query.store_max_series",
                "0",
                vec!["--roles", "query"],
            ),
        ];
        for (flag, key, zero, mut base) in cases {
            base.extend(TLS);
            base.extend([flag, zero]);
            let e = args(&base).resolve().unwrap_err().to_string();
            assert!(
                e.contains(key) && e.contains("greater than 0"),
                "{flag}: {e}"
            );
        }
        // The same in the file.
        let f = dir.join("z.yaml");
        std::fs::write(
            &f,
            "roles: [query]\ndev: true\nquery: {info_interval: 0s}\n",
        )
        .unwrap();
        let e = NodeArgs::from_file(f).resolve().unwrap_err().to_string();
        assert!(e.contains("query.info_interval"), "{e}");
    }

    #[test]
    fn limits_have_defaults_and_follow_flags_and_file() {
        let c = args(&["--roles", "query", "--dev"]).resolve().unwrap();
        assert_eq!(c.grpc.accept.max_handshakes, 64);
        assert_eq!(c.grpc.accept.max_connections, 1024);
        assert_eq!(c.grpc.max_recv_message_size, 4 << 20);
        assert_eq!(c.grpc.store_api.series_max_concurrency, 20);
        assert_eq!(c.grpc.max_concurrent_streams, 100);
        assert_eq!(c.query.store_limits.max_message_bytes, 32 << 20);
        let dir = std::env::temp_dir().join(format!("skein-cli-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("l.yaml");
        std::fs::write(
            &f,
            "roles: [query]\ndev: true\ngrpc: {max_tls_handshakes: 8, series_max_concurrency: 3, max_matcher_size: 1KiB}\nquery: {store_max_series: 10}\n",
        )
        .unwrap();
        let c = args(&[
            "--config",
            f.to_str().unwrap(),
            "--grpc.max-tls-handshakes",
            "9",
        ])
        .resolve()
        .unwrap();
        assert_eq!(c.grpc.accept.max_handshakes, 9);
        assert_eq!(c.grpc.store_api.series_max_concurrency, 3);
        assert_eq!(c.grpc.store_api.max_matcher_bytes, 1024);
        assert_eq!(c.query.store_limits.max_series, 10);
    }
}
