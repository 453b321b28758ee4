//! The server side of WAN gossip: `skein.gossip.v1.Wan/Deliver` pushes
//! each datagram, with the gossip address of its sender, into the WAN
//! carrier's bounded receive queue. It runs on the node's gRPC port next to
//! the StoreAPI, behind the same mutual TLS.
//!
//! With TLS the caller's certificate is the sender's identity: it must name
//! a Skein identity of this federation (URI SAN, see
//! [`skein_tls::identity`]) and the host of the datagram's `from` must be
//! one of its DNS/IP SANs; otherwise the call is refused with
//! `PermissionDenied` and counted. So nobody can send gossip as another
//! member's address (chitchat answers and links to that address).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use skein_proto::skein::gossip::v1::wan_server::{Wan, WanServer};
use skein_proto::skein::gossip::v1::{Ack, Datagram};
use skein_tls::identity::CertFacts;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};
use tracing::{debug, warn};

use super::address::WanAddr;
use super::book::{AddressBook, RouteSource};
use super::metrics::{DropReason, WanMetrics};
use crate::metrics::GossipMetrics;
use crate::seal::MAX_DATAGRAM;

/// Largest `Deliver` request accepted: one chitchat datagram plus room for
/// the sender's address and protobuf framing.
pub const MAX_MESSAGE: usize = MAX_DATAGRAM + 1024;

/// `Wan` service implementation. Cheap to clone.
#[derive(Clone)]
pub struct WanService {
    tx: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    book: Arc<AddressBook>,
    metrics: GossipMetrics,
    wan_metrics: WanMetrics,
    /// Callers must present a certificate (mutual TLS is on).
    tls: bool,
    /// This member's federation, set when the pool starts; until then a
    /// TLS member refuses datagrams.
    federation: Arc<OnceLock<String>>,
}

impl WanService {
    pub(crate) fn new(
        tx: mpsc::Sender<(SocketAddr, Vec<u8>)>,
        book: Arc<AddressBook>,
        metrics: GossipMetrics,
        wan_metrics: WanMetrics,
        tls: bool,
    ) -> WanService {
        WanService {
            tx,
            book,
            metrics,
            wan_metrics,
            tls,
            federation: Arc::new(OnceLock::new()),
        }
    }

    /// The federation whose identities callers must have (once).
    pub(crate) fn set_federation(&self, federation: &str) {
        let _ = self.federation.set(federation.to_string());
    }

    /// With TLS: the caller's certificate must name an identity of this
    /// federation and `from`'s host among its SANs.
    fn check_caller(
        &self,
        certs: Option<&[rustls_pki_types::CertificateDer<'static>]>,
        from: &WanAddr,
    ) -> Result<(), (DropReason, Status)> {
        if !self.tls {
            return Ok(());
        }
        let Some(federation) = self.federation.get() else {
            return Err((
                DropReason::Stopped,
                Status::unavailable("WAN gossip has not started"),
            ));
        };
        let Some(leaf) = certs.and_then(|c| c.first()) else {
            return Err((
                DropReason::NoIdentity,
                Status::permission_denied("WAN gossip needs a client certificate"),
            ));
        };
        let facts = CertFacts::parse(leaf).map_err(|e| {
            (
                DropReason::NoIdentity,
                Status::permission_denied(e.to_string()),
            )
        })?;
        facts.cluster_in(federation).map_err(|e| {
            (
                DropReason::NoIdentity,
                Status::permission_denied(e.to_string()),
            )
        })?;
        if !facts.has_host(from.host()) {
            return Err((
                DropReason::FromMismatch,
                Status::permission_denied(format!(
                    "from {from} is not a name or address of the caller's certificate"
                )),
            ));
        }
        Ok(())
    }

    /// The tonic service to add to a router, with the message size bound.
    pub fn server(self) -> WanServer<WanService> {
        WanServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(1024)
    }

    fn drop_with(&self, reason: DropReason, status: Status) -> Result<Response<Ack>, Status> {
        self.wan_metrics.dropped(reason);
        Err(status)
    }
}

#[tonic::async_trait]
impl Wan for WanService {
    async fn deliver(&self, request: Request<Datagram>) -> Result<Response<Ack>, Status> {
        let certs = request.peer_certs();
        let Datagram { payload, from } = request.into_inner();
        if payload.is_empty() || payload.len() > MAX_DATAGRAM {
            return self.drop_with(
                DropReason::BadDatagram,
                Status::invalid_argument(format!(
                    "payload must be 1..={MAX_DATAGRAM} bytes, got {}",
                    payload.len()
                )),
            );
        }
        let from = match WanAddr::parse(&from) {
            Ok(a) => a,
            Err(e) => {
                return self
                    .drop_with(DropReason::BadFrom, Status::invalid_argument(e.to_string()));
            }
        };
        if let Err((reason, status)) =
            self.check_caller(certs.as_deref().map(|c| c.as_slice()), &from)
        {
            debug!(from = %from, reason = reason.as_str(), error = %status.message(), "WAN datagram refused");
            if reason != DropReason::Stopped && self.wan_metrics.dropped_count(reason) == 0 {
                warn!(from = %from, error = %status.message(), "WAN gossip refused from a caller whose certificate does not match (logged once per reason)");
            }
            return self.drop_with(reason, status);
        }
        let sender = self.book.learn(&from, None, RouteSource::Sender);
        match self.tx.try_send((sender, payload)) {
            Ok(()) => {
                self.metrics.opened();
                Ok(Response::new(Ack {}))
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                debug!(from = %from, "WAN gossip queue full; datagram dropped");
                self.drop_with(
                    DropReason::QueueFull,
                    Status::resource_exhausted("WAN gossip queue full"),
                )
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.drop_with(
                DropReason::Stopped,
                Status::unavailable("WAN gossip is stopped"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carrier::Carrier;
    use crate::wan::carrier::{CarrierSettings, GrpcCarrier};

    fn datagram(from: &str, payload: &[u8]) -> Request<Datagram> {
        Request::new(Datagram {
            payload: payload.to_vec(),
            from: from.to_string(),
        })
    }

    #[tokio::test]
    async fn queue_is_bounded_and_drops_are_counted() {
        let mut settings = CarrierSettings::new(WanAddr::parse("127.0.0.1:9").unwrap());
        settings.queue_capacity = 1;
        let wm = WanMetrics::unregistered();
        let gm = GossipMetrics::unregistered();
        let (carrier, service) = GrpcCarrier::new(settings, None, gm.clone(), wm.clone());
        service
            .deliver(datagram("q0.eu1.example.com:443", b"one"))
            .await
            .unwrap();
        let full = service
            .deliver(datagram("q0.eu1.example.com:443", b"two"))
            .await
            .unwrap_err();
        assert_eq!(full.code(), tonic::Code::ResourceExhausted);
        assert_eq!(wm.dropped_count(DropReason::QueueFull), 1);
        assert_eq!(gm.packets_received(), 1);
        // The datagram comes out with the sender's (synthetic) gossip
        // address, which now routes back to its name.
        let (from, payload) = carrier.recv().await.unwrap();
        let sender = WanAddr::parse("q0.eu1.example.com:443").unwrap();
        assert_eq!(from, sender.socket_addr());
        assert_eq!(payload, b"one");
        let route = carrier.address_book().route(from).unwrap();
        assert_eq!(route.addr, sender);
        assert_eq!(route.server_name, "q0.eu1.example.com");
        // Room again.
        service
            .deliver(datagram("q0.eu1.example.com:443", b"three"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn bad_input_is_refused_and_counted() {
        let settings = CarrierSettings::new(WanAddr::parse("127.0.0.1:9").unwrap());
        let wm = WanMetrics::unregistered();
        let (carrier, service) =
            GrpcCarrier::new(settings, None, GossipMetrics::unregistered(), wm.clone());
        for from in ["", "nohost", "a b:1", "0.0.0.0:1", "x:0"] {
            let e = service.deliver(datagram(from, b"x")).await.unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{from:?}");
        }
        let e = service
            .deliver(datagram("127.0.0.2:1", &vec![0; MAX_DATAGRAM + 1]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let e = service
            .deliver(datagram("127.0.0.2:1", b""))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert_eq!(wm.dropped_count(DropReason::BadFrom), 5);
        assert_eq!(wm.dropped_count(DropReason::BadDatagram), 2);
        // Nothing reached the queue; a send to a name nobody announced fails
        // without dialing.
        assert!(carrier.address_book().is_empty());
        let unknown = WanAddr::parse("nobody.example.com:443")
            .unwrap()
            .socket_addr();
        assert!(carrier.send(unknown, b"hello").await.is_err());
        assert_eq!(wm.dropped_count(DropReason::UnknownPeer), 1);
        // A stopped carrier: the service says so.
        drop(carrier);
        let e = service
            .deliver(datagram("127.0.0.2:1", b"late"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable);
        assert_eq!(wm.dropped_count(DropReason::Stopped), 1);
    }
}
