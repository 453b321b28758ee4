//! Sixteen sealed nodes on loopback addresses 127.0.0.60..75: the relay keeps
//! a link per peer, and every node must see the fifteen others.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_nodes_converge_and_agree_on_a_crash() {
    const N: u8 = 16;
    // Sixteen nodes share two cores (debug build) with whatever else runs:
    // gossip every 250 ms and a detector of about 4 s keep CPU starvation
    // from flapping the views.
    let lax = |i: u8, seeds: &[std::net::SocketAddr]| {
        let mut cfg = config(&format!("n{i:02}"), addr(60 + i), seeds, sealed(&[1]));
        cfg.gossip_interval = Duration::from_millis(250);
        cfg.failure_detection.initial_interval = cfg.gossip_interval;
        cfg.failure_detection.phi_threshold = 16.0;
        cfg
    };
    let first = start(lax(0, &[]), announcement("n00")).await;
    let seed = first.0.gossip_addr();
    let mut nodes = vec![first];
    for i in 1..N {
        nodes.push(start(lax(i, &[seed]), announcement(&format!("n{i:02}"))).await);
    }
    let started = Instant::now();
    let all: Vec<String> = (0..N).map(|i| format!("n{i:02}")).collect();
    let others = |me: usize| -> Vec<String> {
        all.iter()
            .enumerate()
            .filter(|(i, _)| *i != me)
            .map(|(_, n)| n.clone())
            .collect()
    };
    let converged = eventually(Duration::from_secs(20), || {
        nodes
            .iter()
            .enumerate()
            .all(|(i, (m, _))| names(m) == others(i))
    })
    .await;
    assert!(converged, "node 0 sees {:?}", names(&nodes[0].0));
    let convergence = started.elapsed();
    assert!(
        nodes
            .iter()
            .all(|(m, _)| m.metrics().packets_rejected() == 0)
    );

    // Crash the last node: every survivor drops it.
    let (victim, _) = nodes.pop().unwrap();
    let crashed = Instant::now();
    victim.shutdown().await;
    let gone = format!("n{:02}", N - 1);
    assert!(
        eventually(Duration::from_secs(20), || nodes.iter().all(
            |(m, _)| !names(m).contains(&gone) && names(m).len() == usize::from(N) - 2
        ))
        .await
    );
    eprintln!(
        "{N} nodes: converged in {convergence:?}; crash seen by all survivors in {:?}",
        crashed.elapsed()
    );
    for (m, _) in nodes {
        m.shutdown().await;
    }
}
