//! gRPC channels to stores and the Info call. Channel creation lives here
//! alone so TLS can be added in one place.

use std::time::Duration;

use skein_promql::Labels;
use skein_proto::thanos::info::{InfoRequest, info_client::InfoClient};
use skein_proto::thanos::store_client::StoreClient;
use tonic::transport::{Channel, Endpoint};

use crate::matchers::labels_from_wire;

/// Time to set up a TCP connection to a store.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid store address {addr:?}: {reason}")]
    BadAddress { addr: String, reason: String },
    #[error("info call timed out after {0:?}")]
    InfoTimeout(Duration),
    #[error("info call failed: {0}")]
    Info(String),
    #[error("store does not serve the StoreAPI (no store section in its info)")]
    NotAStore,
}

/// The host part of `host:port` (brackets of an IPv6 literal removed): the
/// name a store's certificate must carry when none was announced.
pub fn host_of(addr: &str) -> &str {
    let a = addr.split_once("://").map_or(addr, |(_, rest)| rest);
    let host = a.rsplit_once(':').map_or(a, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A lazily connecting channel to `addr` (`host:port`); it reconnects by
/// itself after failures. With TLS material the link is mutual TLS and the
/// store's certificate must carry `server_name` (default: the host of
/// `addr`). Needs a running tokio runtime.
pub fn channel(
    addr: &str,
    tls: Option<&skein_tls::TlsMaterial>,
    server_name: Option<&str>,
) -> Result<Channel, ClientError> {
    let bad = |reason: String| ClientError::BadAddress {
        addr: addr.to_string(),
        reason,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("{scheme}://{addr}")
    };
    let mut endpoint = Endpoint::from_shared(uri).map_err(|e| bad(e.to_string()))?;
    if let Some(m) = tls {
        let name = server_name.unwrap_or_else(|| host_of(addr));
        endpoint = endpoint
            .tls_config(m.client_config(name))
            .map_err(|e| bad(format!("TLS: {e}")))?;
    }
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect_lazy())
}

/// A StoreAPI client without message size limits (as Thanos sets them).
pub fn store_client(ch: Channel) -> StoreClient<Channel> {
    StoreClient::new(ch)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
}

/// What a store says about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreInfo {
    pub component_type: String,
    pub label_sets: Vec<Labels>,
    pub min_time: i64,
    pub max_time: i64,
}

/// Calls `thanos.info.Info/Info` with a deadline.
pub async fn info(ch: Channel, timeout: Duration) -> Result<StoreInfo, ClientError> {
    let mut client = InfoClient::new(ch).max_decoding_message_size(usize::MAX);
    let resp = tokio::time::timeout(timeout, client.info(InfoRequest {}))
        .await
        .map_err(|_| ClientError::InfoTimeout(timeout))?
        .map_err(|s| ClientError::Info(status_message(&s)))?
        .into_inner();
    let store = resp.store.ok_or(ClientError::NotAStore)?;
    let mut label_sets: Vec<Labels> = resp
        .label_sets
        .iter()
        .map(|ls| labels_from_wire(&ls.labels))
        .collect();
    label_sets.sort();
    label_sets.dedup();
    Ok(StoreInfo {
        component_type: resp.component_type,
        label_sets,
        min_time: store.min_time,
        max_time: store.max_time,
    })
}

/// A short description of a gRPC status for warnings and logs.
pub fn status_message(s: &tonic::Status) -> String {
    if s.message().is_empty() {
        format!("rpc error: code = {:?}", s.code())
    } else {
        format!("rpc error: code = {:?} desc = {}", s.code(), s.message())
    }
}
