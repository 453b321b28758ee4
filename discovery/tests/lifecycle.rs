//! Graceful leave and keyring rotation driven by keyring files, over real
//! UDP on loopback addresses 127.0.0.40 and up.

mod common;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use skein_discovery::{GossipSecurity, Keyring, Membership};

const CONVERGE: Duration = Duration::from_secs(10);

fn sees(m: &Membership, expected: &[&str]) -> bool {
    names(m) == expected
}

fn write_ring(path: &Path, keys: &[u8]) {
    let text: String = keys
        .iter()
        .map(|k| base64::engine::general_purpose::STANDARD.encode([*k; 32]) + "\n")
        .collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_is_seen_at_once_while_a_crash_waits_for_the_detector() {
    // A failure detector so slow (phi 1000) that within this test only an
    // explicit leave can remove a peer.
    let slow = |name: &str, ip: u8, seeds: &[std::net::SocketAddr]| {
        let mut cfg = config(name, addr(ip), seeds, sealed(&[1]));
        cfg.failure_detection.phi_threshold = 1000.0;
        cfg
    };
    let (a, _ra) = start(slow("a", 40, &[]), announcement("a")).await;
    let seed = a.gossip_addr();
    let (b, _rb) = start(slow("b", 41, &[seed]), announcement("b")).await;
    let (c, _rc) = start(slow("c", 42, &[seed]), announcement("c")).await;
    assert!(eventually(CONVERGE, || sees(&a, &["b", "c"]) && sees(&c, &["a", "b"])).await);

    b.leave().await;
    assert!(
        eventually(Duration::from_secs(3), || sees(&a, &["c"])
            && sees(&c, &["a"]))
        .await
    );

    c.shutdown().await;
    assert!(always(Duration::from_secs(2), || sees(&a, &["c"])).await);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_editing_keyring_files_keeps_the_cluster_together() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = ["a", "b", "c"].iter().map(|n| dir.path().join(n)).collect();
    for f in &files {
        write_ring(f, &[1]);
    }
    let from_file = |i: usize| GossipSecurity::Sealed(Keyring::from_file(&files[i]).unwrap());
    let (a, _ra) = node("a", addr(43), &[], from_file(0)).await;
    let seed = a.gossip_addr();
    let (b, _rb) = node("b", addr(44), &[seed], from_file(1)).await;
    let (c, _rc) = node("c", addr(45), &[seed], from_file(2)).await;
    let nodes = [&a, &b, &c];
    for (m, f) in nodes.iter().zip(&files) {
        m.reload_keyring_from(f.clone(), Duration::from_millis(100))
            .unwrap();
    }
    let together = || sees(&a, &["b", "c"]) && sees(&b, &["a", "c"]) && sees(&c, &["a", "b"]);
    assert!(eventually(CONVERGE, together).await);

    let id = |k: u8| ring(&[k]).primary_id();
    for stage in [[1u8, 2].as_slice(), &[2, 1], &[2]] {
        for (m, f) in nodes.iter().zip(&files) {
            write_ring(f, stage);
            let want: Vec<u8> = stage.iter().map(|k| id(*k)).collect();
            assert!(eventually(Duration::from_secs(3), || m.key_ids() == Some(want.clone())).await);
            let heard: Vec<u64> = nodes
                .iter()
                .map(|n| n.metrics().packets_received())
                .collect();
            assert!(always(Duration::from_millis(600), together).await);
            for (n, h) in nodes.iter().zip(heard) {
                assert_eq!(n.metrics().packets_rejected(), 0);
                assert!(n.metrics().packets_received() > h);
            }
        }
    }
    assert_eq!(a.metrics().keyring_reloads(), 3);

    // A broken file keeps the current keys and is counted.
    std::fs::write(&files[0], "not a key\n").unwrap();
    assert!(
        eventually(Duration::from_secs(3), || a
            .metrics()
            .keyring_reload_errors()
            > 0)
        .await
    );
    assert_eq!(a.key_ids(), Some(vec![id(2)]));
    assert!(always(Duration::from_millis(500), together).await);
    for m in [a, b, c] {
        m.shutdown().await;
    }
}

#[tokio::test]
async fn plaintext_refuses_keyring_reload() {
    let (m, _r) = node("p", addr(46), &[], GossipSecurity::InsecurePlaintext).await;
    assert!(m.key_ids().is_none());
    assert!(
        m.reload_keyring_from("/nonexistent".into(), Duration::from_secs(1))
            .is_err()
    );
    m.shutdown().await;
}
