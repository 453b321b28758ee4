//! A TLS accept loop for tonic's `serve_with_incoming`: every connection is
//! handshaken with the current server config, so reloaded certificates and
//! CAs apply to new connections without a restart.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::reload::TlsReloader;

/// Accepts on `listener` until the returned stream is dropped; failed
/// handshakes are logged, counted and skipped.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<TlsReloader>,
    handshake_timeout: Duration,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = tx.closed() => return,
            };
            // gRPC answers are several small writes: without TCP_NODELAY, Nagle holds
            // them back until the peer's delayed ACK (~40 ms per answer).
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
            }
            let acceptor = TlsAcceptor::from(tls.server_config());
            let tx = tx.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => {
                        tls.handshake_failed();
                        tracing::warn!(%peer, error = %e, "TLS handshake failed");
                    }
                    Err(_) => {
                        tls.handshake_failed();
                        tracing::warn!(%peer, "TLS handshake timed out");
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
