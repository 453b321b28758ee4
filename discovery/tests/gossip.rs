//! Real UDP gossip between nodes on distinct loopback addresses, every
//! datagram sealed. Each test uses its own addresses so they can run in
//! parallel, and every wait is bounded.

mod common;

use std::time::Duration;

use common::*;
use skein_discovery::{Announcement, GossipSecurity, Keyring, Membership, PeerChange, diff, seal};

const CONVERGE: Duration = Duration::from_secs(10);

fn sees(m: &Membership, expected: &[&str]) -> bool {
    names(m) == expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sealed_nodes_converge_with_announcements() {
    let (a, _ra) = node("a", addr(2), &[], sealed(&[1])).await;
    let seed = a.gossip_addr();
    let (b, _rb) = node("b", addr(3), &[seed], sealed(&[1])).await;
    let (c, _rc) = node("c", addr(4), &[seed], sealed(&[1])).await;
    assert!(
        eventually(CONVERGE, || sees(&a, &["b", "c"])
            && sees(&b, &["a", "c"])
            && sees(&c, &["a", "b"]))
        .await,
        "views: a={:?} b={:?} c={:?}",
        names(&a),
        names(&b),
        names(&c)
    );
    for (viewer, peer) in [(&a, &b), (&b, &c), (&c, &a)] {
        let seen = viewer
            .peers()
            .into_iter()
            .find(|p| p.node_id == peer.self_id().node_id.as_ref())
            .unwrap();
        assert_eq!(seen.announcement, announcement(&seen.node_id));
        assert_eq!(seen.gossip_addr, peer.gossip_addr());
        assert_eq!(seen.generation, peer.self_id().generation_id);
    }
    assert_eq!(a.metrics().packets_rejected(), 0);
    assert!(a.metrics().packets_received() > 0 && a.metrics().packets_sent() > 0);

    // An announcement update and a readiness change propagate.
    let mut updated = announcement("b");
    updated.max_time = 9_999;
    b.set_announcement(updated.clone()).await.unwrap();
    assert!(
        eventually(CONVERGE, || a
            .peers()
            .iter()
            .any(|p| p.node_id == "b" && p.announcement == updated))
        .await
    );
    c.set_ready(false).await;
    assert!(eventually(CONVERGE, || sees(&a, &["b"]) && sees(&b, &["a"])).await);
    c.set_ready(true).await;
    assert!(eventually(CONVERGE, || sees(&a, &["b", "c"])).await);
    // The node id of an announcement cannot change under a running membership.
    assert!(
        b.set_announcement(Announcement::new("other", "x"))
            .await
            .is_err()
    );

    for m in [a, b, c] {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_and_plaintext_nodes_never_join() {
    let (a, ra) = node("a", addr(5), &[], sealed(&[1])).await;
    let seed = a.gossip_addr();
    let (b, _rb) = node("b", addr(6), &[seed], sealed(&[1])).await;
    let (intruder, _ri) = node("intruder", addr(7), &[seed], sealed(&[9])).await;
    let (open, _ro) = node("open", addr(8), &[seed], GossipSecurity::InsecurePlaintext).await;
    assert!(eventually(CONVERGE, || sees(&a, &["b"]) && sees(&b, &["a"])).await);
    // Give the outsiders many gossip rounds: they stay out, and a counts them.
    assert!(
        always(Duration::from_secs(2), || sees(&a, &["b"])
            && sees(&b, &["a"])
            && intruder.peers().is_empty()
            && open.peers().is_empty())
        .await
    );
    assert!(
        a.metrics().packets_rejected() >= 10,
        "rejected {}",
        a.metrics().packets_rejected()
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &ra).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("skein_gossip_packets_rejected_total{reason=\"unknown_key\"}"))
        .unwrap();
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0, "{line}");
    // Keyring reload is refused in plaintext mode.
    assert!(open.set_keyring(ring(&[1])).is_err());
    for m in [a, b, intruder, open] {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_plaintext_nodes_gossip_when_explicitly_insecure() {
    let (a, _ra) = node("a", addr(9), &[], GossipSecurity::InsecurePlaintext).await;
    let (b, _rb) = node(
        "b",
        addr(10),
        &[a.gossip_addr()],
        GossipSecurity::InsecurePlaintext,
    )
    .await;
    assert!(eventually(CONVERGE, || sees(&a, &["b"]) && sees(&b, &["a"])).await);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_key_rotation_keeps_the_cluster_together() {
    let (a, _ra) = node("a", addr(11), &[], sealed(&[1])).await;
    let seed = a.gossip_addr();
    let (b, _rb) = node("b", addr(12), &[seed], sealed(&[1])).await;
    let (c, _rc) = node("c", addr(13), &[seed], sealed(&[1])).await;
    let nodes = [&a, &b, &c];
    let together = || sees(&a, &["b", "c"]) && sees(&b, &["a", "c"]) && sees(&c, &["a", "b"]);
    assert!(eventually(CONVERGE, together).await);

    // A stage is fine when, for a while, every node keeps both peers, no
    // datagram is rejected anywhere, and every node keeps receiving.
    async fn stage_holds(nodes: &[&Membership; 3], together: impl FnMut() -> bool) {
        let before: Vec<u64> = nodes
            .iter()
            .map(|m| m.metrics().packets_received())
            .collect();
        assert!(always(Duration::from_millis(800), together).await);
        for (m, b) in nodes.iter().zip(before) {
            assert_eq!(m.metrics().packets_rejected(), 0, "{:?}", m.self_id());
            assert!(
                m.metrics().packets_received() > b,
                "{:?} stopped hearing",
                m.self_id()
            );
        }
    }

    // 1. Add k2 as a secondary key everywhere.
    for m in nodes {
        m.set_keyring(ring(&[1, 2])).unwrap();
        stage_holds(&nodes, together).await;
    }
    // 2. Make k2 primary, one node at a time.
    for m in nodes {
        m.set_keyring(ring(&[2, 1])).unwrap();
        stage_holds(&nodes, together).await;
    }
    // 3. Retire k1.
    for m in nodes {
        m.set_keyring(ring(&[2])).unwrap();
        stage_holds(&nodes, together).await;
    }
    // A node still on the retired key can no longer join.
    let (stale, _rs) = node("stale", addr(14), &[seed], sealed(&[1])).await;
    assert!(
        always(Duration::from_secs(1), || stale.peers().is_empty()
            && sees(&a, &["b", "c"]))
        .await
    );
    assert!(a.metrics().packets_rejected() > 0);
    for m in [a, b, c, stale] {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_leaves_and_rejoins_as_a_new_generation() {
    let (a, _ra) = node("a", addr(15), &[], sealed(&[1])).await;
    let seed = a.gossip_addr();
    let (b, _rb) = node("b", addr(16), &[seed], sealed(&[1])).await;
    let (c, _rc) = node("c", addr(17), &[seed], sealed(&[1])).await;
    assert!(eventually(CONVERGE, || sees(&a, &["b", "c"]) && sees(&b, &["a", "c"])).await);
    let mut watch = a.watch();
    let before = watch.borrow_and_update().as_ref().clone();
    let c_addr = c.gossip_addr();
    let c_gen = c.self_id().generation_id;

    let stopped = tokio::time::Instant::now();
    c.shutdown().await;
    assert!(
        eventually(Duration::from_secs(10), || sees(&a, &["b"])
            && sees(&b, &["a"]))
        .await,
        "c still seen: a={:?} b={:?}",
        names(&a),
        names(&b)
    );
    let detection = stopped.elapsed();
    // The watch channel reported the leave.
    assert!(watch.has_changed().unwrap());
    let after_leave = watch.borrow_and_update().as_ref().clone();
    assert!(
        matches!(diff(&before, &after_leave).as_slice(), [PeerChange::Left(p)] if p.node_id == "c")
    );

    // Same address, new incarnation; a and b are not restarted.
    let (c2, _rc2) = node("c", c_addr, &[seed], sealed(&[1])).await;
    assert!(c2.self_id().generation_id > c_gen);
    assert!(
        eventually(CONVERGE, || sees(&a, &["b", "c"])
            && sees(&b, &["a", "c"])
            && sees(&c2, &["a", "b"]))
        .await
    );
    let back = a.peers().into_iter().find(|p| p.node_id == "c").unwrap();
    assert_eq!(back.generation, c2.self_id().generation_id);
    let after_rejoin = watch.borrow_and_update().as_ref().clone();
    assert!(
        matches!(diff(&after_leave, &after_rejoin).as_slice(), [PeerChange::Joined(p)] if p.node_id == "c")
    );
    eprintln!("failure detection took {detection:?}");
    for m in [a, b, c2] {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_datagrams_are_dropped_and_counted() {
    let (a, _ra) = node("a", addr(18), &[], sealed(&[1])).await;
    let (b, _rb) = node("b", addr(19), &[a.gossip_addr()], sealed(&[1])).await;
    assert!(eventually(CONVERGE, || sees(&a, &["b"]) && sees(&b, &["a"])).await);

    let attacker = tokio::net::UdpSocket::bind(addr(20)).await.unwrap();
    let target = a.gossip_addr();
    let key_id = ring(&[1]).primary_id();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut junk = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    let mut sent = 0u64;
    for len in [0usize, 1, 24, 40, 41, 100, 1500, 65_000] {
        attacker.send_to(&junk(len), target).await.unwrap();
        let mut with_id = junk(len.max(64));
        with_id[0] = key_id;
        attacker.send_to(&with_id, target).await.unwrap();
        sent += 2;
    }
    // A datagram sealed under the right key, by the address it comes from,
    // whose content is not chitchat: it opens (so it is not counted as
    // rejected) and chitchat drops it.
    let authenticated_junk = seal::seal(
        &ring(&[1]),
        attacker.local_addr().unwrap(),
        target,
        b"\0definitely not a chitchat envelope",
    )
    .unwrap();
    attacker.send_to(&authenticated_junk, target).await.unwrap();
    // A replayed copy of a junk datagram with its tag flipped.
    let mut forged = authenticated_junk.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x55;
    attacker.send_to(&forged, target).await.unwrap();
    sent += 1;

    assert!(
        eventually(Duration::from_secs(5), || a.metrics().packets_rejected()
            >= sent)
        .await,
        "rejected {} of {sent}",
        a.metrics().packets_rejected()
    );
    // Nothing broke: the pair keeps gossiping and stays together.
    let heard = a.metrics().packets_received();
    assert!(
        always(Duration::from_secs(1), || sees(&a, &["b"])
            && sees(&b, &["a"]))
        .await
    );
    assert!(a.metrics().packets_received() > heard);
    assert!(a.peers().iter().all(|p| p.node_id == "b"));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn keyring_from_file_drives_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gossip.keys");
    std::fs::write(
        &path,
        format!("{}\n{}\n", Keyring::generate_key(), Keyring::generate_key()),
    )
    .unwrap();
    let keyring = Keyring::from_file(&path).unwrap();
    let (a, _ra) = node("a", addr(21), &[], GossipSecurity::Sealed(keyring.clone())).await;
    let (b, _rb) = node(
        "b",
        addr(22),
        &[a.gossip_addr()],
        GossipSecurity::Sealed(keyring),
    )
    .await;
    assert!(eventually(CONVERGE, || sees(&a, &["b"]) && sees(&b, &["a"])).await);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_datagram_limit_fragments_and_still_converges() {
    // Announcements of several KB each and a 256-byte datagram limit: every
    // gossip exchange travels as many sealed fragments.
    let big = |name: &str| {
        let mut a = announcement(name);
        a.external_labels = (0..20u64)
            .map(|i| {
                (0..8u64)
                    .map(|j| {
                        (
                            format!("label_{j}"),
                            format!(
                                "{name}-{:016x}",
                                (i * 8 + j + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_u64)
                            ),
                        )
                    })
                    .collect()
            })
            .collect();
        a
    };
    let small = |name: &str, ip: u8, seeds: &[std::net::SocketAddr]| {
        let mut cfg = config(name, addr(ip), seeds, sealed(&[1]));
        cfg.max_datagram = 256;
        cfg
    };
    let (a, _ra) = start(small("a", 23, &[]), big("a")).await;
    let seed = a.gossip_addr();
    let (b, _rb) = start(small("b", 24, &[seed]), big("b")).await;
    let (c, _rc) = start(small("c", 25, &[seed]), big("c")).await;
    assert!(
        eventually(CONVERGE, || sees(&a, &["b", "c"])
            && sees(&b, &["a", "c"])
            && sees(&c, &["a", "b"]))
        .await
    );
    for p in a.peers() {
        assert_eq!(p.announcement, big(&p.node_id));
    }
    assert_eq!(a.metrics().packets_rejected(), 0);
    // Fragments really were used, in both directions.
    assert!(a.metrics().fragmented_datagrams() > 0);
    assert!(b.metrics().fragmented_datagrams() > 0);
    for m in [a, b, c] {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_relay_link_still_works_through_constant_eviction() {
    // max_links = 1: the node's relay evicts and recreates links all the
    // time, and gossip must still get through.
    let mut cfg = config("a", addr(26), &[], sealed(&[1]));
    cfg.max_links = 1;
    let (a, _ra) = start(cfg, announcement("a")).await;
    let seed = a.gossip_addr();
    let (b, _rb) = node("b", addr(27), &[seed], sealed(&[1])).await;
    let (c, _rc) = node("c", addr(28), &[seed], sealed(&[1])).await;
    assert!(
        eventually(CONVERGE, || sees(&a, &["b", "c"])
            && sees(&b, &["a", "c"])
            && sees(&c, &["a", "b"]))
        .await
    );
    for m in [a, b, c] {
        m.shutdown().await;
    }
}

#[tokio::test]
async fn wildcard_listen_needs_an_explicit_advertise_address() {
    let mut registry = prometheus_client::registry::Registry::default();
    let cfg = config("w", "0.0.0.0:0".parse().unwrap(), &[], sealed(&[1]));
    let err = Membership::start(cfg.clone(), announcement("w"), &mut registry)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("advertise"), "{err}");

    let mut with_advertise = cfg;
    with_advertise.listen_addr = addr(29);
    with_advertise.advertise_addr = Some("127.0.0.29:7946".parse().unwrap());
    let m = Membership::start(with_advertise, announcement("w"), &mut registry)
        .await
        .unwrap();
    assert_eq!(m.gossip_addr(), "127.0.0.29:7946".parse().unwrap());
    m.shutdown().await;

    let mut mismatched = config("w", addr(29), &[], sealed(&[1]));
    mismatched.max_datagram = 10;
    assert!(
        Membership::start(mismatched, announcement("w"), &mut registry)
            .await
            .is_err()
    );
    let other = config("w", addr(29), &[], sealed(&[1]));
    assert!(
        Membership::start(other, announcement("not-w"), &mut registry)
            .await
            .is_err()
    );
}
