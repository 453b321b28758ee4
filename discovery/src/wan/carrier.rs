//! The WAN carrier: chitchat datagrams as `skein.gossip.v1.Wan/Deliver`
//! calls on the peers' mutual-TLS gRPC ports. Sending dials the peer's
//! `host:port` from the address book with its TLS server name; receiving
//! reads the queue that [`super::service::WanService`] fills.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use skein_proto::skein::gossip::v1::Datagram;
use skein_proto::skein::gossip::v1::wan_client::WanClient;
use skein_tls::TlsReloader;
use tokio::sync::{Mutex, mpsc};
use tracing::debug;

use super::address::{WanAddr, is_synthetic};
use super::book::{AddressBook, Route, RouteSource};
use super::channels::Channels;
use super::metrics::{DropReason, WanMetrics};
use super::service::WanService;
use crate::carrier::{Carrier, CarrierError};
use crate::metrics::GossipMetrics;

/// Settings of the WAN carrier.
#[derive(Clone, Debug)]
pub struct CarrierSettings {
    /// This node's external `host:port` (where peers reach its gRPC port).
    pub external: WanAddr,
    /// Datagrams received and not yet taken by the pool; more are dropped.
    pub queue_capacity: usize,
    /// Bound on cached gRPC channels (one per peer).
    pub max_channels: usize,
    /// Bound on address book entries.
    pub max_routes: usize,
    /// Deadline of one `Deliver` call (connecting included).
    pub send_timeout: Duration,
}

impl CarrierSettings {
    pub fn new(external: WanAddr) -> CarrierSettings {
        CarrierSettings {
            external,
            queue_capacity: 1024,
            max_channels: 256,
            max_routes: 4096,
            send_timeout: Duration::from_secs(3),
        }
    }
}

/// Carries chitchat datagrams over gRPC. See the module docs.
pub struct GrpcCarrier {
    external: WanAddr,
    local: SocketAddr,
    book: Arc<AddressBook>,
    channels: Channels,
    inbox: Mutex<mpsc::Receiver<(SocketAddr, Vec<u8>)>>,
    // Kept so the queue never closes while the carrier lives.
    _tx: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    send_timeout: Duration,
    metrics: GossipMetrics,
    wan_metrics: WanMetrics,
}

impl GrpcCarrier {
    /// The carrier and the gRPC service that feeds it (serve the latter
    /// with `WanServer`, see [`WanService::server`]). `tls = None` is
    /// plaintext gRPC, for development only.
    pub fn new(
        settings: CarrierSettings,
        tls: Option<Arc<TlsReloader>>,
        metrics: GossipMetrics,
        wan_metrics: WanMetrics,
    ) -> (Arc<GrpcCarrier>, WanService) {
        let (tx, rx) = mpsc::channel(settings.queue_capacity.max(1));
        let book = Arc::new(AddressBook::new(settings.max_routes));
        let service = WanService::new(
            tx.clone(),
            book.clone(),
            metrics.clone(),
            wan_metrics.clone(),
            tls.is_some(),
        );
        let carrier = Arc::new(GrpcCarrier {
            local: settings.external.socket_addr(),
            external: settings.external,
            book,
            channels: Channels::new(
                tls,
                settings.max_channels,
                settings.send_timeout,
                wan_metrics.clone(),
            ),
            inbox: Mutex::new(rx),
            _tx: tx,
            send_timeout: settings.send_timeout,
            metrics,
            wan_metrics,
        });
        (carrier, service)
    }

    /// The address book (seeds and announcements are added by the pool).
    pub fn address_book(&self) -> &Arc<AddressBook> {
        &self.book
    }

    /// This node's external address.
    pub fn external(&self) -> &WanAddr {
        &self.external
    }

    /// Number of cached channels.
    pub fn num_channels(&self) -> usize {
        self.channels.len()
    }

    fn route_to(&self, to: SocketAddr) -> Option<Route> {
        if let Some(r) = self.book.route(to) {
            return Some(r);
        }
        // An IP peer nobody told us about (its announcement has not arrived
        // yet): dial the IP and expect it in the certificate.
        if is_synthetic(&to) {
            return None;
        }
        let addr = WanAddr::parse(&to.to_string()).ok()?;
        Some(Route {
            server_name: addr.host().to_string(),
            addr,
            source: RouteSource::Sender,
        })
    }
}

fn wan_err(msg: String) -> CarrierError {
    CarrierError::Io(std::io::Error::other(msg))
}

#[async_trait]
impl Carrier for GrpcCarrier {
    async fn send(&self, to: SocketAddr, datagram: &[u8]) -> Result<(), CarrierError> {
        let Some(route) = self.route_to(to) else {
            self.wan_metrics.dropped(DropReason::UnknownPeer);
            return Err(wan_err(format!("no WAN route to gossip address {to}")));
        };
        let channel = self.channels.get(&route).map_err(|e| {
            self.metrics.send_error();
            wan_err(format!("cannot dial {}: {e}", route.addr))
        })?;
        let request = Datagram {
            payload: datagram.to_vec(),
            from: self.external.to_string(),
        };
        let call = async { WanClient::new(channel).deliver(request).await };
        match tokio::time::timeout(self.send_timeout, call).await {
            Ok(Ok(_)) => {
                self.metrics.sealed();
                Ok(())
            }
            Ok(Err(status)) => {
                self.metrics.send_error();
                if matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
                ) {
                    self.channels.forget(&route);
                }
                debug!(peer = %route.addr, server_name = %route.server_name, code = ?status.code(), error = %status.message(), "WAN gossip delivery failed");
                Err(wan_err(format!(
                    "Deliver to {} failed: {:?} {}",
                    route.addr,
                    status.code(),
                    status.message()
                )))
            }
            Err(_) => {
                self.metrics.send_error();
                self.channels.forget(&route);
                Err(wan_err(format!(
                    "Deliver to {} timed out after {:?}",
                    route.addr, self.send_timeout
                )))
            }
        }
    }

    async fn recv(&self) -> Result<(SocketAddr, Vec<u8>), CarrierError> {
        let mut rx = self.inbox.lock().await;
        match rx.recv().await {
            Some(d) => Ok(d),
            // Unreachable while `_tx` lives; report it as an error anyway.
            None => Err(wan_err("WAN receive queue closed".into())),
        }
    }

    fn local_addr(&self) -> Result<SocketAddr, CarrierError> {
        Ok(self.local)
    }
}
