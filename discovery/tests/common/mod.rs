//! Helpers for the real-socket gossip tests: nodes on distinct loopback
//! addresses (127.0.0.x all route over `lo` on Linux), short timings and
//! bounded waits.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use prometheus_client::registry::Registry;
use skein_discovery::{
    Announcement, FailureDetection, GossipSecurity, Keyring, LabelSet, Membership,
    MembershipConfig, Role,
};

pub const GOSSIP: Duration = Duration::from_millis(100);

pub fn ring(keys: &[u8]) -> Keyring {
    let raw: Vec<[u8; 32]> = keys.iter().map(|k| [*k; 32]).collect();
    Keyring::from_keys(&raw).unwrap()
}

pub fn sealed(keys: &[u8]) -> GossipSecurity {
    GossipSecurity::Sealed(ring(keys))
}

pub fn announcement(name: &str) -> Announcement {
    let mut a = Announcement::new(name, "lan-test");
    a.roles = vec![Role::Sidecar, Role::Store];
    a.store_internal = Some(format!("{name}.svc:10901"));
    a.store_external = Some(format!("{name}.example.org:443"));
    a.tls_server_name = Some(format!("{name}.example.org"));
    a.external_labels = vec![LabelSet::from([("replica".to_string(), name.to_string())])];
    a.min_time = 1_000;
    a.max_time = 2_000;
    a
}

pub fn config(
    name: &str,
    listen: SocketAddr,
    seeds: &[SocketAddr],
    security: GossipSecurity,
) -> MembershipConfig {
    let mut cfg = MembershipConfig::new(name, "fed", "lan-test", listen, security);
    cfg.seeds = seeds.iter().map(|s| s.to_string()).collect();
    cfg.gossip_interval = GOSSIP;
    cfg.failure_detection = FailureDetection {
        phi_threshold: 12.0,
        initial_interval: GOSSIP,
        max_interval: Duration::from_secs(2),
        dead_node_grace_period: Duration::from_secs(120),
    };
    cfg
}

/// Starts a ready node on `ip` (port picked by the kernel unless given).
pub async fn node(
    name: &str,
    listen: SocketAddr,
    seeds: &[SocketAddr],
    security: GossipSecurity,
) -> (Membership, Registry) {
    start(config(name, listen, seeds, security), announcement(name)).await
}

/// Starts a ready node from a full config.
pub async fn start(cfg: MembershipConfig, announcement: Announcement) -> (Membership, Registry) {
    let mut registry = Registry::default();
    let m = Membership::start(cfg, announcement, &mut registry)
        .await
        .unwrap();
    m.set_ready(true).await;
    (m, registry)
}

pub fn addr(last: u8) -> SocketAddr {
    ([127, 0, 0, last], 0).into()
}

pub fn names(m: &Membership) -> Vec<String> {
    m.peers().into_iter().map(|p| p.node_id).collect()
}

/// Polls `f` every 50 ms until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks `f` every 50 ms for `span`; false as soon as it fails once.
pub async fn always(span: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < deadline {
        if !f() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}
