//! The node's gRPC server: the StoreAPI of its data role, over mutual TLS
//! (or plaintext in development mode).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use skein_proto::thanos::info::info_server::InfoServer;
use skein_proto::thanos::store_server::StoreServer;
use skein_tls::TlsReloader;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;

/// Binds now (so a busy port fails start-up) and serves on a tokio task
/// until `shutdown` fires.
pub async fn start_store_api<S>(
    addr: SocketAddr,
    tls: Option<Arc<TlsReloader>>,
    store: S,
    shutdown: oneshot::Receiver<()>,
) -> anyhow::Result<tokio::task::JoinHandle<()>>
where
    S: skein_proto::thanos::store_server::Store
        + skein_proto::thanos::info::info_server::Info
        + Clone,
{
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for gRPC on {addr}: {e}"))?;
    let router = tonic::transport::Server::builder()
        .add_service(
            StoreServer::new(store.clone())
                .max_decoding_message_size(usize::MAX >> 1)
                .max_encoding_message_size(usize::MAX >> 1),
        )
        .add_service(InfoServer::new(store));
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
                router
                    .serve_with_incoming_shutdown(TcpListenerStream::new(listener), signal)
                    .await
            }
        };
        if let Err(e) = res {
            tracing::error!(error = %e, "gRPC server failed");
        }
    }))
}
