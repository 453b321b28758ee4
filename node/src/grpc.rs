//! The node's gRPC server: the StoreAPI of its data role and, on a WAN
//! member, WAN gossip, over mutual TLS (or plaintext in development mode).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use skein_proto::skein::gossip::v1::wan_server::WanServer;
use skein_proto::thanos::info::info_server::InfoServer;
use skein_proto::thanos::store_server::StoreServer;
use skein_tls::TlsReloader;
use tokio::sync::oneshot;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;

/// The WAN gossip service (`skein.gossip.v1.Wan`) of a WAN member.
pub type WanService = WanServer<skein_discovery::wan::WanService>;

/// Binds now (so a busy port fails start-up) and serves the StoreAPI (and,
/// on a WAN member, WAN gossip on the same port) on a tokio task until
/// `shutdown` fires.
pub async fn start_store_api_and_wan<S>(
    addr: SocketAddr,
    tls: Option<Arc<TlsReloader>>,
    store: S,
    wan: Option<WanService>,
    shutdown: oneshot::Receiver<()>,
) -> anyhow::Result<tokio::task::JoinHandle<()>>
where
    S: skein_proto::thanos::store_server::Store
        + skein_proto::thanos::info::info_server::Info
        + Clone,
{
    let router = tonic::transport::Server::builder()
        .add_service(
            StoreServer::new(store.clone())
                .max_decoding_message_size(usize::MAX >> 1)
                .max_encoding_message_size(usize::MAX >> 1),
        )
        .add_service(InfoServer::new(store))
        .add_optional_service(wan);
    serve(addr, tls, router, shutdown).await
}

/// A gRPC server for a node without a data role that is a WAN member (a
/// query node with an external address): WAN gossip only.
pub async fn start_wan(
    addr: SocketAddr,
    tls: Option<Arc<TlsReloader>>,
    wan: WanService,
    shutdown: oneshot::Receiver<()>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let router = tonic::transport::Server::builder().add_service(wan);
    serve(addr, tls, router, shutdown).await
}

async fn serve(
    addr: SocketAddr,
    tls: Option<Arc<TlsReloader>>,
    router: tonic::transport::server::Router,
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
                let incoming = skein_tls::server::incoming(listener, tls, Duration::from_secs(10));
                router.serve_with_incoming_shutdown(incoming, signal).await
            }
            None => {
                // TCP_NODELAY on every accepted connection: without it, Nagle holds
                // back the small writes of a gRPC answer until the peer's delayed
                // ACK (~40 ms per answer).
                let incoming = TcpListenerStream::new(listener).map(|r| {
                    r.inspect(|s| {
                        if let Err(e) = s.set_nodelay(true) {
                            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                        }
                    })
                });
                router.serve_with_incoming_shutdown(incoming, signal).await
            }
        };
        if let Err(e) = res {
            tracing::error!(error = %e, "gRPC server failed");
        }
    }))
}
