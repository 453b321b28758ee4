//! Membership over chitchat's in-memory `ChannelTransport`: partitions made
//! with `remove_link`/`add_link`, no sockets involved.

use std::net::SocketAddr;
use std::time::Duration;

use chitchat::transport::ChannelTransport;

use crate::announcement::Announcement;
use crate::carrier::GossipSecurity;
use crate::membership::{FailureDetection, Membership, MembershipConfig};
use crate::metrics::GossipMetrics;

fn addr(port: u16) -> SocketAddr {
    ([10, 0, 0, 1], port).into()
}

async fn start(name: &str, port: u16, seeds: &[u16], transport: &ChannelTransport) -> Membership {
    let mut cfg = MembershipConfig::new(
        name,
        "fed",
        "mem",
        addr(port),
        GossipSecurity::InsecurePlaintext,
    );
    cfg.seeds = seeds.iter().map(|p| addr(*p).to_string()).collect();
    cfg.gossip_interval = Duration::from_millis(50);
    cfg.failure_detection = FailureDetection {
        phi_threshold: 12.0,
        initial_interval: Duration::from_millis(50),
        max_interval: Duration::from_secs(2),
        dead_node_grace_period: Duration::from_secs(60),
    };
    let m = Membership::start_on(
        cfg,
        addr(port),
        addr(port),
        Announcement::new(name, "mem"),
        transport,
        GossipMetrics::unregistered(),
        None,
    )
    .await
    .unwrap();
    m.set_ready(true).await;
    m
}

fn names(m: &Membership) -> Vec<String> {
    m.peers().into_iter().map(|p| p.node_id).collect()
}

async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

#[tokio::test]
async fn partition_removes_and_heal_restores_peers_without_restart() {
    let t = ChannelTransport::with_mtu(65_507);
    let a = start("a", 1, &[], &t).await;
    let b = start("b", 2, &[1], &t).await;
    let c = start("c", 3, &[1], &t).await;
    assert!(eventually(|| names(&a) == ["b", "c"] && names(&c) == ["a", "b"]).await);
    let c_generation = c.self_id().generation_id;
    let mut watch = b.watch();
    watch.borrow_and_update();

    t.remove_link(addr(1), addr(3)).await;
    t.remove_link(addr(2), addr(3)).await;
    assert!(eventually(|| names(&a) == ["b"] && names(&b) == ["a"] && names(&c).is_empty()).await);
    assert!(watch.has_changed().unwrap());

    t.add_link(addr(1), addr(3)).await;
    t.add_link(addr(2), addr(3)).await;
    assert!(
        eventually(|| names(&a) == ["b", "c"]
            && names(&b) == ["a", "c"]
            && names(&c) == ["a", "b"])
        .await
    );
    // Same incarnation: the partition healed, nothing restarted.
    let back = a.peers().into_iter().find(|p| p.node_id == "c").unwrap();
    assert_eq!(back.generation, c_generation);
    for m in [a, b, c] {
        m.shutdown().await;
    }
}

#[tokio::test]
async fn readiness_gates_the_view() {
    let t = ChannelTransport::with_mtu(65_507);
    let a = start("a", 11, &[], &t).await;
    let b = start("b", 12, &[11], &t).await;
    assert!(eventually(|| names(&a) == ["b"]).await);
    b.set_ready(false).await;
    assert!(eventually(|| names(&a).is_empty()).await);
    // b still sees a: readiness is about what b offers, not what it sees.
    assert_eq!(names(&b), ["a"]);
    b.set_ready(true).await;
    assert!(eventually(|| names(&a) == ["b"]).await);
}

#[test]
fn membership_and_its_futures_can_cross_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let t = ChannelTransport::with_mtu(65_507);
        let m = start("s", 21, &[], &t).await;
        send_sync(&m);
        send(m.set_ready(true));
        send(m.set_announcement(Announcement::new("s", "mem")));
        let m = std::sync::Arc::new(m);
        let m2 = m.clone();
        tokio::spawn(async move { m2.set_ready(false).await })
            .await
            .unwrap();
    });
}
