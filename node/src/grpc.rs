//! The node's gRPC server: the StoreAPI of its data role and, on a WAN
//! member, WAN gossip, over mutual TLS (or plaintext in development mode).

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use skein_actors::guard::GuardedStore;
use skein_proto::skein::gossip::v1::wan_server::WanServer;
use skein_proto::thanos::info::info_server::InfoServer;
use skein_proto::thanos::store_server::StoreServer;
use skein_tls::TlsReloader;
use skein_tls::server::{AcceptLimits, AcceptMetrics};
use tokio::sync::oneshot;

use crate::config::GrpcSettings;

/// The WAN gossip service (`skein.gossip.v1.Wan`) of a WAN member.
pub type WanService = WanServer<skein_discovery::wan::WanService>;

/// The server's limits and where its counters go.
pub struct ServerOptions<'a> {
    pub settings: &'a GrpcSettings,
    pub registry: &'a mut Registry,
}

/// A tonic server builder with the HTTP/2 limits of `g`: streams and
/// requests per connection, header list size, keepalive pings that close
/// dead connections.
fn builder(g: &GrpcSettings) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .max_concurrent_streams(g.max_concurrent_streams)
        .concurrency_limit_per_connection(g.max_concurrent_requests_per_connection)
        .http2_max_header_list_size(g.max_header_list_size)
        .http2_keepalive_interval(Some(g.keepalive_interval))
        .http2_keepalive_timeout(Some(g.keepalive_timeout))
        .tcp_keepalive(Some(g.keepalive_interval))
}

/// Binds now (so a busy port fails start-up) and serves the StoreAPI (and,
/// on a WAN member, WAN gossip on the same port) on a tokio task until
/// `shutdown` fires. The StoreAPI sits behind [`GuardedStore`]: matcher
/// limits and the node-wide cap on concurrent Series calls.
pub async fn start_store_api_and_wan<S>(
    addr: SocketAddr,
    tls: Option<Arc<TlsReloader>>,
    store: S,
    wan: Option<WanService>,
    opts: ServerOptions<'_>,
    shutdown: oneshot::Receiver<()>,
) -> anyhow::Result<tokio::task::JoinHandle<()>>
where
    S: skein_proto::thanos::store_server::Store
        + skein_proto::thanos::info::info_server::Info
        + Clone,
{
    let g = opts.settings;
    let store = GuardedStore::new(store, g.store_api, opts.registry);
    let router = builder(g)
        .add_service(
            StoreServer::new(store.clone())
                .max_decoding_message_size(g.max_recv_message_size)
                .max_encoding_message_size(usize::MAX >> 1),
        )
        .add_service(InfoServer::new(store).max_decoding_message_size(g.max_recv_message_size))
        .add_optional_service(wan.map(|w| w.max_decoding_message_size(g.max_recv_message_size)));
    let metrics = AcceptMetrics::register(opts.registry);
    serve(addr, tls, router, g.accept, metrics, shutdown).await
}

/// A gRPC server for a node without a data role that is a WAN member (a
/// query node with an external address): WAN gossip only.
pub async fn start_wan(
    addr: SocketAddr,
    tls: Option<Arc<TlsReloader>>,
    wan: WanService,
    opts: ServerOptions<'_>,
    shutdown: oneshot::Receiver<()>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let g = opts.settings;
    let router = builder(g).add_service(wan.max_decoding_message_size(g.max_recv_message_size));
    let metrics = AcceptMetrics::register(opts.registry);
    serve(addr, tls, router, g.accept, metrics, shutdown).await
}

async fn serve(
    addr: SocketAddr,
    tls: Option<Arc<TlsReloader>>,
    router: tonic::transport::server::Router,
    limits: AcceptLimits,
    metrics: AcceptMetrics,
    shutdown: oneshot::Receiver<()>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for gRPC on {addr}: {e}"))?;
    Ok(tokio::spawn(async move {
        let signal = async {
            let _ = shutdown.await;
        };
        let res = match tls {
            Some(tls) => {
                // Handshakes in flight and open connections are capped here;
                // tonic and hyper bound neither.
                let incoming = skein_tls::server::incoming_limited(listener, tls, limits, metrics);
                router.serve_with_incoming_shutdown(incoming, signal).await
            }
            None => {
                // Development mode: plaintext, with the same cap on open
                // connections (TCP_NODELAY set on each).
                let incoming = skein_tls::server::incoming_plaintext(listener, limits, metrics);
                router.serve_with_incoming_shutdown(incoming, signal).await
            }
        };
        if let Err(e) = res {
            tracing::error!(error = %e, "gRPC server failed");
        }
    }))
}
