//! The relay is carrier-agnostic: three pools over an in-process carrier
//! (a hub of channels, standing in for the future WAN carrier on the gRPC
//! port) converge exactly like the UDP ones.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use skein_discovery::{Carrier, CarrierError, GossipMetrics, Membership, MembershipConfig};
use tokio::sync::mpsc;

type Inbox = mpsc::UnboundedSender<(SocketAddr, Vec<u8>)>;

#[derive(Clone, Default)]
struct Hub {
    inboxes: Arc<Mutex<HashMap<SocketAddr, Inbox>>>,
    delivered: Arc<Mutex<usize>>,
}

struct HubCarrier {
    addr: SocketAddr,
    hub: Hub,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<(SocketAddr, Vec<u8>)>>,
}

impl Hub {
    fn carrier(&self, addr: SocketAddr) -> Arc<dyn Carrier> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inboxes.lock().unwrap().insert(addr, tx);
        Arc::new(HubCarrier {
            addr,
            hub: self.clone(),
            rx: tokio::sync::Mutex::new(rx),
        })
    }
}

#[async_trait]
impl Carrier for HubCarrier {
    async fn send(&self, to: SocketAddr, datagram: &[u8]) -> Result<(), CarrierError> {
        let inbox = self.hub.inboxes.lock().unwrap().get(&to).cloned();
        if let Some(inbox) = inbox
            && inbox.send((self.addr, datagram.to_vec())).is_ok()
        {
            *self.hub.delivered.lock().unwrap() += 1;
        }
        Ok(())
    }

    async fn recv(&self) -> Result<(SocketAddr, Vec<u8>), CarrierError> {
        let mut rx = self.rx.lock().await;
        rx.recv()
            .await
            .ok_or_else(|| CarrierError::Io(std::io::ErrorKind::BrokenPipe.into()))
    }

    fn local_addr(&self) -> Result<SocketAddr, CarrierError> {
        Ok(self.addr)
    }
}

async fn start_on_hub(hub: &Hub, name: &str, port: u16, seeds: &[SocketAddr]) -> Membership {
    // Addresses are only names inside the hub; nothing is sent on a network.
    let at: SocketAddr = ([10, 9, 0, 1], port).into();
    let mut cfg = MembershipConfig::new(name, "fed", "wan", at, sealed(&[1]));
    cfg.seeds = seeds.iter().map(|s| s.to_string()).collect();
    cfg.gossip_interval = GOSSIP;
    let m = Membership::start_with_carrier(
        cfg,
        announcement(name),
        hub.carrier(at),
        "in-process hub",
        GossipMetrics::unregistered(),
    )
    .await
    .unwrap();
    m.set_ready(true).await;
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_converge_over_any_carrier() {
    let hub = Hub::default();
    let a = start_on_hub(&hub, "a", 1, &[]).await;
    let b = start_on_hub(&hub, "b", 2, &[a.gossip_addr()]).await;
    let c = start_on_hub(&hub, "c", 3, &[a.gossip_addr()]).await;
    assert!(
        eventually(Duration::from_secs(10), || names(&a) == ["b", "c"]
            && names(&b) == ["a", "c"]
            && names(&c) == ["a", "b"])
        .await
    );
    assert!(*hub.delivered.lock().unwrap() > 10);
    // No keyring in this pool: the hub carrier has none to swap.
    assert!(a.set_keyring(ring(&[2])).is_err());
    for m in [a, b, c] {
        m.shutdown().await;
    }
}
