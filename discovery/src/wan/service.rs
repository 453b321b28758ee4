//! The server side of WAN gossip: `skein.gossip.v1.Wan/Deliver` pushes
//! each datagram, with the gossip address of its sender, into the WAN
//! carrier's bounded receive queue. It runs on the node's gRPC port next to
//! the StoreAPI, behind the same mutual TLS.

use std::net::SocketAddr;
use std::sync::Arc;

use skein_proto::skein::gossip::v1::wan_server::{Wan, WanServer};
use skein_proto::skein::gossip::v1::{Ack, Datagram};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};
use tracing::debug;

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
}

impl WanService {
    pub(crate) fn new(
        tx: mpsc::Sender<(SocketAddr, Vec<u8>)>,
        book: Arc<AddressBook>,
        metrics: GossipMetrics,
        wan_metrics: WanMetrics,
    ) -> WanService {
        WanService {
            tx,
            book,
            metrics,
            wan_metrics,
        }
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
