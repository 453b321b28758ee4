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

/// Checks that a store address is `host:port` and nothing else: no scheme
/// (the node's TLS settings pick the transport, never the address), no
/// path, user or whitespace, a non-empty host and a port in 1..=65535. The
/// error says what is wrong with the address.
pub fn check_store_address(addr: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{addr:?} is not a host:port address: {why}"));
    if addr.contains("://") {
        return bad("no scheme allowed (TLS or not is the node's setting, not the address's)");
    }
    if addr.is_empty() || addr.len() > 512 {
        return bad("empty or longer than 512 bytes");
    }
    if addr
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '?' | '#' | '\\'))
    {
        return bad("no path, user, query or whitespace allowed");
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return bad("no port");
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        _ => return bad("the port must be a number from 1 to 65535"),
    }
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty() && !host.contains([':', '[', ']'])
    };
    if !host_ok {
        return bad("bad host (an IPv6 address goes in brackets: [::1]:10901)");
    }
    Ok(())
}

/// How this querier dials stores, decided once from the node's TLS
/// settings: with TLS material every channel is mutual TLS; plaintext
/// exists only when the node has none (`--dev`, which config resolution
/// requires for that). An address cannot change the choice: it may carry
/// no scheme.
#[derive(Clone, Copy)]
pub enum Dialer<'a> {
    /// Mutual TLS with this material.
    Tls(&'a skein_tls::TlsMaterial),
    /// Plaintext: development mode only.
    DevPlaintext,
}

impl<'a> From<Option<&'a skein_tls::TlsMaterial>> for Dialer<'a> {
    fn from(m: Option<&'a skein_tls::TlsMaterial>) -> Self {
        match m {
            Some(m) => Dialer::Tls(m),
            None => Dialer::DevPlaintext,
        }
    }
}

/// A lazily connecting channel to `addr` (`host:port`, checked with
/// [`check_store_address`]); it reconnects by itself after failures. With
/// [`Dialer::Tls`] the link is mutual TLS and the store's certificate must
/// carry `server_name` (default: the host of `addr`). Needs a running tokio
/// runtime.
pub fn channel<'a>(
    addr: &str,
    dialer: impl Into<Dialer<'a>>,
    server_name: Option<&str>,
) -> Result<Channel, ClientError> {
    let bad = |reason: String| ClientError::BadAddress {
        addr: addr.to_string(),
        reason,
    };
    check_store_address(addr).map_err(bad)?;
    let endpoint = match dialer.into() {
        Dialer::Tls(m) => {
            let name = server_name.unwrap_or_else(|| host_of(addr));
            Endpoint::from_shared(format!("https://{addr}"))
                .map_err(|e| bad(e.to_string()))?
                .tls_config(m.client_config(name))
                .map_err(|e| bad(format!("TLS: {e}")))?
        }
        Dialer::DevPlaintext => {
            Endpoint::from_shared(format!("http://{addr}")).map_err(|e| bad(e.to_string()))?
        }
    };
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect_lazy())
}

/// Like [`channel`] over mutual TLS, and the store's certificate must also
/// name an identity of `expect`'s federation and cluster (a store found
/// through gossip). The verifier tells why a handshake was refused.
pub fn channel_expecting(
    addr: &str,
    tls: &skein_tls::TlsMaterial,
    server_name: Option<&str>,
    expect: skein_tls::identity::ExpectedIdentity,
) -> Result<
    (
        Channel,
        std::sync::Arc<skein_tls::identity::IdentityVerifier>,
    ),
    ClientError,
> {
    let bad = |reason: String| ClientError::BadAddress {
        addr: addr.to_string(),
        reason,
    };
    check_store_address(addr).map_err(bad)?;
    let name = server_name.unwrap_or_else(|| host_of(addr));
    let (cfg, verifier) = tls
        .client_config_expecting(name, expect)
        .map_err(|e| bad(format!("TLS: {e}")))?;
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .map_err(|e| bad(e.to_string()))?
        .tls_config_with_verifier(cfg, verifier.clone())
        .map_err(|e| bad(format!("TLS: {e}")))?;
    Ok((
        endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy(),
        verifier,
    ))
}

/// What one store's answer to one request may be before the querier drops
/// it (a hostile or broken store must not take the querier's memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Largest gRPC message (one Series frame, one label answer).
    pub max_message_bytes: usize,
    /// Most bytes of one store's whole answer (frames added up).
    pub max_response_bytes: usize,
    /// Most series in one store's Series answer.
    pub max_series: usize,
    /// Most label names or values in one store's answer.
    pub max_label_values: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_message_bytes: 32 << 20,
            max_response_bytes: 512 << 20,
            max_series: 1_000_000,
            max_label_values: 1_000_000,
        }
    }
}

/// Largest Info answer taken from a store (label sets and per-block infos).
const MAX_INFO_MESSAGE_BYTES: usize = 32 << 20;

/// A StoreAPI client whose received messages are bounded by
/// `max_message_bytes`; a bigger frame fails the call.
pub fn store_client(ch: Channel, max_message_bytes: usize) -> StoreClient<Channel> {
    StoreClient::new(ch)
        .max_decoding_message_size(max_message_bytes)
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
    let mut client = InfoClient::new(ch).max_decoding_message_size(MAX_INFO_MESSAGE_BYTES);
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
