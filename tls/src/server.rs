//! A TLS accept loop for tonic's `serve_with_incoming`: every connection is
//! handshaken with the current server config, so reloaded certificates and
//! CAs apply to new connections without a restart.
//!
//! The loop is bounded: at most [`AcceptLimits::max_handshakes`] handshakes
//! run at once and at most [`AcceptLimits::max_connections`] connections are
//! open; a connection over either cap is closed at once and counted, so a
//! peer that opens sockets and never speaks cannot exhaust the node (tonic
//! and hyper bound neither).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::reload::TlsReloader;

/// Bounds of the accept loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptLimits {
    /// TLS handshakes in flight; a connection over the cap is closed.
    pub max_handshakes: usize,
    /// Time a peer has to complete its handshake.
    pub handshake_timeout: Duration,
    /// Open connections (handshaken or not); more are closed.
    pub max_connections: usize,
}

impl Default for AcceptLimits {
    fn default() -> Self {
        AcceptLimits {
            max_handshakes: 64,
            handshake_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Metrics of the accept loop: `skein_tls_handshakes_rejected_total`,
/// `skein_tls_handshakes_in_flight`, `skein_grpc_connections_rejected_total`
/// and `skein_grpc_connections_open`.
#[derive(Clone, Debug, Default)]
pub struct AcceptMetrics {
    handshakes_rejected: Counter,
    handshakes_in_flight: Gauge,
    connections_rejected: Counter,
    connections_open: Gauge,
}

impl AcceptMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = AcceptMetrics::default();
        registry.register(
            "skein_tls_handshakes_rejected",
            "Connections closed before their TLS handshake because grpc.max_tls_handshakes were in flight",
            m.handshakes_rejected.clone(),
        );
        registry.register(
            "skein_tls_handshakes_in_flight",
            "TLS handshakes running on the gRPC port",
            m.handshakes_in_flight.clone(),
        );
        registry.register(
            "skein_grpc_connections_rejected",
            "gRPC connections closed at accept because grpc.max_connections were open",
            m.connections_rejected.clone(),
        );
        registry.register(
            "skein_grpc_connections_open",
            "Open gRPC connections (TLS handshake included)",
            m.connections_open.clone(),
        );
        m
    }

    /// Connections closed because too many handshakes were in flight.
    pub fn handshakes_rejected(&self) -> u64 {
        self.handshakes_rejected.get()
    }

    /// Connections closed because too many were open.
    pub fn connections_rejected(&self) -> u64 {
        self.connections_rejected.get()
    }
}

/// A connection that holds its place among the open ones until dropped.
pub struct Limited<T> {
    inner: T,
    _permit: OwnedSemaphorePermit,
    open: Gauge,
}

impl<T> Limited<T> {
    fn new(inner: T, permit: OwnedSemaphorePermit, open: Gauge) -> Self {
        open.inc();
        Limited {
            inner,
            _permit: permit,
            open,
        }
    }
}

impl<T> Drop for Limited<T> {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Limited<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Limited<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The peer's address and, over TLS, its certificates, as tonic needs them
/// (`Request::peer_certs`).
impl<T: Connected> Connected for Limited<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// Accepts one TCP connection (TCP_NODELAY set) or returns `None` once the
/// stream's receiver is gone.
async fn accept_tcp<T>(
    listener: &TcpListener,
    tx: &tokio::sync::mpsc::Sender<T>,
) -> Option<(TcpStream, std::net::SocketAddr)> {
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
            _ = tx.closed() => return None,
        };
        // gRPC answers are several small writes: without TCP_NODELAY, Nagle holds
        // them back until the peer's delayed ACK (~40 ms per answer).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        return Some((tcp, peer));
    }
}

/// Accepts on `listener` until the returned stream is dropped, with the
/// default [`AcceptLimits`] and a handshake timeout; failed handshakes are
/// logged, counted and skipped.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<TlsReloader>,
    handshake_timeout: Duration,
) -> ReceiverStream<Result<Limited<TlsStream<TcpStream>>, io::Error>> {
    let limits = AcceptLimits {
        handshake_timeout,
        ..AcceptLimits::default()
    };
    incoming_limited(listener, tls, limits, AcceptMetrics::default())
}

/// Accepts on `listener` until the returned stream is dropped: at most
/// `limits.max_handshakes` handshakes at once and `limits.max_connections`
/// open connections; a connection over a cap is closed at once and counted
/// in `metrics`. Failed handshakes are logged, counted and skipped.
pub fn incoming_limited(
    listener: TcpListener,
    tls: Arc<TlsReloader>,
    limits: AcceptLimits,
    metrics: AcceptMetrics,
) -> ReceiverStream<Result<Limited<TlsStream<TcpStream>>, io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let handshakes = Arc::new(Semaphore::new(limits.max_handshakes.max(1)));
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::spawn(async move {
        while let Some((tcp, peer)) = accept_tcp(&listener, &tx).await {
            let Ok(conn) = connections.clone().try_acquire_owned() else {
                metrics.connections_rejected.inc();
                tracing::warn!(%peer, max = limits.max_connections,
                    "gRPC connection closed: grpc.max_connections are open");
                drop(tcp);
                continue;
            };
            let Ok(shake) = handshakes.clone().try_acquire_owned() else {
                metrics.handshakes_rejected.inc();
                tracing::warn!(%peer, max = limits.max_handshakes,
                    "connection closed: grpc.max_tls_handshakes are in flight");
                drop(tcp);
                continue;
            };
            let acceptor = TlsAcceptor::from(tls.server_config());
            let tx = tx.clone();
            let tls = tls.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                metrics.handshakes_in_flight.inc();
                let res =
                    tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await;
                metrics.handshakes_in_flight.dec();
                drop(shake);
                match res {
                    Ok(Ok(stream)) => {
                        let stream = Limited::new(stream, conn, metrics.connections_open.clone());
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

/// Plaintext accept loop (development mode) with the same cap on open
/// connections.
pub fn incoming_plaintext(
    listener: TcpListener,
    limits: AcceptLimits,
    metrics: AcceptMetrics,
) -> ReceiverStream<Result<Limited<TcpStream>, io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::spawn(async move {
        while let Some((tcp, peer)) = accept_tcp(&listener, &tx).await {
            let Ok(conn) = connections.clone().try_acquire_owned() else {
                metrics.connections_rejected.inc();
                tracing::warn!(%peer, max = limits.max_connections,
                    "gRPC connection closed: grpc.max_connections are open");
                drop(tcp);
                continue;
            };
            let stream = Limited::new(tcp, conn, metrics.connections_open.clone());
            if tx.send(Ok(stream)).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}
