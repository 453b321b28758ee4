//! Cross-cluster federation by WAN gossip on the mutual-TLS gRPC ports.
//!
//! Three clusters (a, b, c), each a pair of Prometheus replicas (external
//! labels cluster=X, replica="0"/"1") on the same generated data, a sidecar
//! per replica and one query node, every skein node on its own loopback
//! address, sealed LAN gossip per cluster, certificates from `skein tools
//! certs`. The query node of `a` knows ONE WAN seed (b's query node); c's
//! query node knows b's too. The querier of `a` must answer
//! `sum by (cluster) (gen_queue_depth)` over all three clusters exactly like
//! the Prometheus servers, replicas deduplicated. Then: a replica of b is
//! killed (-9) -- answers stay equal; the replica comes back; all of c is
//! killed -- answers cover a and b and warn about c's stores, and with
//! partial_response=false fail with a clear error; c restarts -- it comes
//! back without restarting anything else.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use skein_e2e::compare::float_eq;
use skein_e2e::datagen::DataSpec;
use skein_e2e::fixture::WINDOW_END_BEFORE_NOW_MS;
use skein_e2e::http::{ApiClient, ApiResponse};
use skein_e2e::promjson::QueryData;
use skein_e2e::timefmt::{now_ms, secs_string};
use skein_e2e::wait::poll_until;
use skein_e2e::wan::{
    Node, NodeSpec, Replica, WanCluster, ip_of, loopback_usable, make_certs, make_keyring,
    node_names, restart_prometheus, start_replicas,
};

const QUERY: &str = "sum by (cluster) (gen_queue_depth)";
const CLUSTERS: [&str; 3] = ["a", "b", "c"];

/// `cluster -> value` of a `sum by (cluster)` answer.
fn by_cluster(d: &QueryData) -> BTreeMap<String, f64> {
    match d {
        QueryData::Vector(m) => m
            .iter()
            .filter_map(|(ls, (_, v))| Some((ls.get("cluster")?.clone(), *v)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn same(want: &BTreeMap<String, f64>, got: &BTreeMap<String, f64>) -> bool {
    want.len() == got.len()
        && want
            .iter()
            .all(|(k, v)| got.get(k).is_some_and(|g| float_eq(*v, *g)))
}

fn query(client: &ApiClient, t: i64, partial: bool) -> anyhow::Result<ApiResponse> {
    client.get(
        "/api/v1/query",
        &[
            ("query", QUERY.to_string()),
            ("time", secs_string(t)),
            ("partial_response", partial.to_string()),
        ],
    )
}

/// What the Prometheus servers say: per cluster, the sum over replica 0
/// (both replicas hold the same data).
fn expected(clusters: &[WanCluster], t: i64, only: &[&str]) -> BTreeMap<String, f64> {
    let mut want = BTreeMap::new();
    for c in clusters.iter().filter(|c| only.contains(&c.name.as_str())) {
        let d = c.replicas[0]
            .prometheus
            .client
            .query("sum(gen_queue_depth)", t)
            .unwrap();
        let v = match d {
            QueryData::Vector(m) => m.values().next().map(|(_, v)| *v).unwrap(),
            other => panic!("Prometheus {} answered {other:?}", c.name),
        };
        want.insert(c.name.clone(), v);
    }
    want
}

/// Polls the querier until its answer at each time equals `want[t]`, and
/// `check(response)` holds; returns the last responses.
fn wait_answers(
    what: &str,
    client: &ApiClient,
    wants: &[(i64, BTreeMap<String, f64>)],
    timeout: Duration,
    check: impl Fn(&ApiResponse) -> Result<(), String>,
) -> anyhow::Result<Vec<ApiResponse>> {
    poll_until(what, timeout, Duration::from_millis(300), || {
        let mut out = Vec::new();
        for (t, want) in wants {
            let r = query(client, *t, true)?;
            let got = by_cluster(&r.data()?);
            if !same(want, &got) {
                anyhow::bail!(
                    "at {t}: got {got:?}, want {want:?}; warnings {:?}",
                    r.warnings()
                );
            }
            check(&r).map_err(|e| anyhow::anyhow!("at {t}: {e}"))?;
            out.push(r);
        }
        Ok(Some(out))
    })
}

/// A WAN gauge (`skein_wan_...<name> <value>`) on a query node's /metrics.
fn wan_gauge(client: &ApiClient, name: &str) -> anyhow::Result<u64> {
    let text = client.get("/metrics", &[])?.text;
    text.lines()
        .find(|l| {
            l.starts_with("skein_wan_")
                && l.split_whitespace()
                    .next()
                    .is_some_and(|n| n.ends_with(name))
        })
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no WAN gauge {name} in /metrics"))
}

/// (WAN peers, remote catalog entries) in a query node's view.
fn wan_view(client: &ApiClient) -> anyhow::Result<(u64, u64)> {
    Ok((
        wan_gauge(client, "gossip_peers")?,
        wan_gauge(client, "gossip_catalog_entries")?,
    ))
}

fn logs(clusters: &[WanCluster]) -> String {
    let mut s = String::new();
    for c in clusters {
        s.push_str(&format!(
            "--- {} ---\n{}\n",
            c.query.name,
            c.query.log_tail(25)
        ));
        for r in &c.replicas {
            s.push_str(&format!(
                "--- {} ---\n{}\n",
                r.sidecar.name,
                r.sidecar.log_tail(8)
            ));
        }
    }
    s
}

#[test]
fn three_clusters_federate_over_one_wan_seed() {
    let t0 = Instant::now();
    assert!(
        loopback_usable(ip_of(0, 0)),
        "this test needs 127.0.0.x loopback addresses"
    );
    let work = tempfile::Builder::new()
        .prefix("skein-e2e-wan-")
        .tempdir()
        .unwrap();
    let dir = work.path();

    // Certificates (name and IP as SANs, identity of the node's cluster) and
    // one LAN keyring per cluster.
    let mut cert_nodes = Vec::new();
    let names: Vec<[String; 3]> = CLUSTERS.iter().map(|c| node_names(c)).collect();
    for (ci, n) in names.iter().enumerate() {
        for (i, name) in n.iter().enumerate() {
            cert_nodes.push((name.as_str(), CLUSTERS[ci], ip_of(ci as u8, i as u8)));
        }
    }
    let certs = make_certs(&dir.join("certs"), &cert_nodes, dir).unwrap();
    let keyrings: Vec<_> = CLUSTERS
        .iter()
        .map(|c| make_keyring(&dir.join(format!("keyring-{c}")), dir).unwrap())
        .collect();

    // One hour of data per cluster, ending 10 minutes ago.
    let end = now_ms() - WINDOW_END_BEFORE_NOW_MS;
    let mut data = Vec::new();
    for (ci, c) in CLUSTERS.iter().enumerate() {
        let mut spec = DataSpec::small(100 + ci as u64, end);
        spec.start_ms = spec.end_ms() - 240 * skein_e2e::datagen::SLOT_MS;
        spec.slots = 240;
        data.push(start_replicas(dir, c, spec).unwrap());
    }
    let prom_ready = t0.elapsed();

    // Query nodes: b first (the WAN seed), then a and c, which know only b.
    let query_spec = |ci: usize, wan_seed: Option<String>| {
        let mut extra: Vec<String> = [
            "--roles",
            "query",
            "--query.info-interval",
            "1s",
            "--query.info-timeout",
            "2s",
            "--query.replica-label",
            "replica",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(s) = wan_seed {
            extra.extend(["--gossip.wan-seed".to_string(), s]);
        }
        NodeSpec {
            name: &names[ci][2],
            ip: ip_of(ci as u8, 2),
            cluster: CLUSTERS[ci],
            certs: &certs,
            keyring: &keyrings[ci],
            seeds: Vec::new(),
            extra,
        }
    };
    let qb = Node::spawn(dir, query_spec(1, None)).unwrap();
    let qa = Node::spawn(dir, query_spec(0, Some(qb.external()))).unwrap();
    let qc = Node::spawn(dir, query_spec(2, Some(qb.external()))).unwrap();
    let mut queries = vec![qa, qb, qc];

    let mut clusters: Vec<WanCluster> = Vec::new();
    for (ci, ((dataset, proms), mut q)) in data.into_iter().zip(queries.drain(..)).enumerate() {
        let mut replicas = Vec::new();
        for (ri, prometheus) in proms.into_iter().enumerate() {
            let spec = NodeSpec {
                name: &names[ci][ri],
                ip: ip_of(ci as u8, ri as u8),
                cluster: CLUSTERS[ci],
                certs: &certs,
                keyring: &keyrings[ci],
                seeds: vec![q.gossip.to_string()],
                extra: vec![
                    "--roles".into(),
                    "sidecar".into(),
                    "--sidecar.prometheus-url".into(),
                    prometheus.url.clone(),
                ],
            };
            let sidecar = Node::spawn(dir, spec).unwrap();
            replicas.push(Replica {
                prometheus_dir: prometheus.data_dir.clone(),
                prometheus,
                sidecar,
            });
        }
        q.wait_ready().unwrap();
        for r in &mut replicas {
            r.sidecar.wait_ready().unwrap();
        }
        clusters.push(WanCluster {
            name: CLUSTERS[ci].to_string(),
            dataset,
            replicas,
            query: q,
        });
    }

    // Two evaluation times inside the data window.
    let times = [end - 30 * 60 * 1000, end - 60 * 1000];
    let all = |only: &[&str], clusters: &[WanCluster]| -> Vec<(i64, BTreeMap<String, f64>)> {
        times
            .iter()
            .map(|t| (*t, expected(clusters, *t, only)))
            .collect()
    };
    let want_all = all(&CLUSTERS, &clusters);
    assert!(want_all.iter().all(|(_, w)| w.len() == 3));
    let qa_client = clusters[0].query.client.clone();

    // 1. a's querier answers over all three clusters, replicas deduplicated.
    let started = Instant::now();
    let first = wait_answers(
        "a's querier to answer over a, b and c",
        &qa_client,
        &want_all,
        Duration::from_secs(60),
        |r| {
            if r.warnings().is_empty() {
                Ok(())
            } else {
                Err(format!("warnings: {:?}", r.warnings()))
            }
        },
    );
    if let Err(e) = &first {
        panic!("{e:#}\n{}", logs(&clusters));
    }
    let converged = started.elapsed();
    // Two WAN peers (b's and c's query nodes), four remote stores in their
    // catalogs (b0, b1, c0, c1). One replica per cluster already answers
    // exactly (dedup), so the last catalog entry may still be on its way.
    if let Err(e) = poll_until(
        "a's WAN view: 2 peers, 4 remote stores",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || Ok((wan_view(&qa_client)? == (2, 4)).then_some(())),
    ) {
        panic!("{e:#}: {:?}\n{}", wan_view(&qa_client), logs(&clusters));
    }
    // Without dedup each cluster would count twice: the answer above equals
    // one replica's sum, so dedup worked. The WAN view of a's query node:
    let members = qa_client.get("/api/v1/members", &[]).unwrap();
    eprintln!(
        "federation converged {converged:?} after all nodes were ready ({:?} total, Prometheus ready after {prom_ready:?}); a's LAN members: {}",
        t0.elapsed(),
        members.text.chars().take(300).collect::<String>()
    );

    // 2. kill -9 one replica of b (Prometheus and sidecar): answers stay equal.
    let b1 = &mut clusters[1].replicas[1];
    b1.sidecar.kill();
    b1.prometheus.kill();
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut checks = 0;
    while Instant::now() < deadline {
        for (t, want) in &want_all {
            let r = query(&qa_client, *t, true).unwrap();
            let got = by_cluster(&r.data().unwrap());
            assert!(
                same(want, &got),
                "after killing b1: at {t} got {got:?}, want {want:?} (warnings {:?})",
                r.warnings()
            );
            checks += 1;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(checks >= 10);

    // The replica comes back (new Prometheus port, same sidecar address):
    // answers without warnings again.
    let b1 = &mut clusters[1].replicas[1];
    b1.prometheus = restart_prometheus(dir, &b1.prometheus).unwrap();
    b1.sidecar
        .replace_arg("--sidecar.prometheus-url", &b1.prometheus.url)
        .unwrap();
    b1.sidecar.start().unwrap();
    b1.sidecar.wait_ready().unwrap();
    if let Err(e) = wait_answers(
        "answers without warnings after b1 came back",
        &qa_client,
        &want_all,
        Duration::from_secs(60),
        |r| {
            if r.warnings().is_empty() {
                Ok(())
            } else {
                Err(format!("warnings: {:?}", r.warnings()))
            }
        },
    ) {
        panic!("{e:#}\n{}", logs(&clusters));
    }

    // 3. All of c dies (kill -9): a and b answered, with warnings naming c's
    // stores; with partial_response=false a clear error.
    let c_stores: Vec<String> = clusters[2]
        .replicas
        .iter()
        .map(|r| r.sidecar.external())
        .collect();
    for r in &mut clusters[2].replicas {
        r.sidecar.kill();
        r.prometheus.kill();
    }
    clusters[2].query.kill();
    let want_ab = all(&["a", "b"], &clusters);
    let c_names = c_stores.clone();
    if let Err(e) = wait_answers(
        "answers over a and b that warn about c",
        &qa_client,
        &want_ab,
        Duration::from_secs(30),
        move |r| {
            let w = r.warnings().join("\n");
            if c_names.iter().all(|s| w.contains(s.as_str())) {
                Ok(())
            } else {
                Err(format!(
                    "warnings do not name c's stores {c_names:?}: {w:?}"
                ))
            }
        },
    ) {
        panic!("{e:#}\n{}", logs(&clusters));
    }
    let strict = query(&qa_client, times[1], false).unwrap();
    assert_ne!(
        strict.status, 200,
        "partial_response=false answered: {}",
        strict.text
    );
    assert_eq!(
        strict.body.get("status").and_then(|s| s.as_str()),
        Some("error"),
        "{}",
        strict.text
    );
    let msg = strict.error().unwrap_or_default().to_string();
    assert!(
        msg.to_lowercase().contains("unavailable")
            && c_stores.iter().any(|s| msg.contains(s.as_str())),
        "unclear error: {msg}"
    );
    // The WAN failure detector drops c's query node (and its catalog) from
    // a's view; answers stay the same and keep warning about c.
    poll_until(
        "a's WAN view to lose c",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || Ok((wan_view(&qa_client)? == (1, 2)).then_some(())),
    )
    .unwrap();
    let r = query(&qa_client, times[1], true).unwrap();
    assert!(same(&want_ab[1].1, &by_cluster(&r.data().unwrap())));
    assert!(!r.warnings().is_empty());

    // 4. c restarts (same addresses): it comes back; nothing else restarted.
    let restart_started = Instant::now();
    for r in &mut clusters[2].replicas {
        r.prometheus = restart_prometheus(dir, &r.prometheus).unwrap();
        r.sidecar
            .replace_arg("--sidecar.prometheus-url", &r.prometheus.url)
            .unwrap();
        r.sidecar.start().unwrap();
    }
    clusters[2].query.start().unwrap();
    clusters[2].query.wait_ready().unwrap();
    for r in &mut clusters[2].replicas {
        r.sidecar.wait_ready().unwrap();
    }
    if let Err(e) = wait_answers(
        "c to come back in a's answers",
        &qa_client,
        &want_all,
        Duration::from_secs(60),
        |r| {
            if r.warnings().is_empty() {
                Ok(())
            } else {
                Err(format!("warnings: {:?}", r.warnings()))
            }
        },
    ) {
        panic!("{e:#}\n{}", logs(&clusters));
    }
    let strict = query(&qa_client, times[1], false).unwrap();
    assert_eq!(strict.status, 200, "{}", strict.text);
    // c's stores may answer again before a's WAN view has c's new query
    // node (departed stores stay in the store set for a while); the WAN
    // view must follow.
    let rejoin = Instant::now();
    if let Err(e) = poll_until(
        "a's WAN view to regain c",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || Ok((wan_view(&qa_client)? == (2, 4)).then_some(())),
    ) {
        panic!("{e:#}\n{}", logs(&clusters));
    }
    eprintln!(
        "a's WAN view regained c {:?} after c's stores answered",
        rejoin.elapsed()
    );
    eprintln!(
        "c came back {:?} after its restart began; whole test {:?}",
        restart_started.elapsed(),
        t0.elapsed()
    );
    drop(clusters);
}
