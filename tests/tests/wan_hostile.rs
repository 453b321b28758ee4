//! A hostile WAN member against a real two-cluster federation.
//!
//! Clusters a and b: one Prometheus (external labels cluster=X,
//! replica="0") with a sidecar each and one query node each, on their own
//! loopback addresses, sealed LAN gossip, WAN gossip between the query
//! nodes, certificates with identities from `skein tools certs`. The
//! attacker `evil` holds a genuine federation certificate of cluster a. It
//! runs in this test process: a WAN member (the real `WanPool`) and, on the
//! same mutual-TLS port, a StoreAPI whose Info and series claim
//! cluster="b" (an in-memory store with a huge `gen_queue_depth`).
//!
//! It publishes catalog shards signed with its own key: an entry of its
//! own cluster at its own address promising cluster="a" label sets (its
//! store then reports cluster="b"), an entry of cluster a pointing at b's
//! real store, entries of cluster b at its own and at an arbitrary address,
//! and a shard claiming cluster b. It also calls `Deliver` with another
//! member's address as `from`.
//!
//! Expected: both queriers keep answering `sum by (cluster)
//! (gen_queue_depth)` exactly as the Prometheus servers, without warnings;
//! cluster b's entries never reach a's store set; b's querier refuses the
//! attacker's store (label sets) and the redirected entry (certificate of
//! another cluster) with the reason in /api/v1/stores; every refusal is
//! counted in the metrics; the spoofed `Deliver` is PermissionDenied.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use skein_actors::query::memstore::{MemStore, MemStoreOptions};
use skein_discovery::wan::catalog::{self, Publisher};
use skein_discovery::wan::{
    CATALOG_PREFIX, CarrierSettings, CatalogEntry, WanAddr, WanConfig, WanEndpoint, WanMetrics,
    WanPool,
};
use skein_discovery::{FailureDetection, GossipMetrics, LabelSet};
use skein_e2e::compare::float_eq;
use skein_e2e::datagen::{DataSpec, Dataset, SLOT_MS};
use skein_e2e::fixture::WINDOW_END_BEFORE_NOW_MS;
use skein_e2e::http::ApiClient;
use skein_e2e::labels::label_set;
use skein_e2e::prometheus::PrometheusServer;
use skein_e2e::promjson::QueryData;
use skein_e2e::timefmt::{now_ms, secs_string};
use skein_e2e::wait::poll_until;
use skein_e2e::wan::{
    FEDERATION, Node, NodeSpec, ip_of, loopback_usable, make_certs, make_keyring,
};
use skein_promql::{Labels, Sample, Series};
use skein_proto::skein::gossip::v1::Datagram;
use skein_proto::skein::gossip::v1::wan_client::WanClient;
use skein_proto::thanos::info::info_server::InfoServer;
use skein_proto::thanos::store_server::StoreServer;
use skein_tls::{TlsFiles, TlsReloader};

const QUERY: &str = "sum by (cluster) (gen_queue_depth)";

fn by_cluster(d: &QueryData) -> BTreeMap<String, f64> {
    match d {
        QueryData::Vector(m) => m
            .iter()
            .filter_map(|(ls, (_, v))| Some((ls.get("cluster")?.clone(), *v)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The querier's answer at `t` equals `want`, without warnings.
fn answers_exactly(client: &ApiClient, t: i64, want: &BTreeMap<String, f64>) -> Result<(), String> {
    let r = client
        .get(
            "/api/v1/query",
            &[("query", QUERY.to_string()), ("time", secs_string(t))],
        )
        .map_err(|e| e.to_string())?;
    let got = by_cluster(&r.data().map_err(|e| e.to_string())?);
    let same = got.len() == want.len()
        && want
            .iter()
            .all(|(k, v)| got.get(k).is_some_and(|g| float_eq(*v, *g)));
    if !same {
        return Err(format!("got {got:?}, want {want:?}"));
    }
    if !r.warnings().is_empty() {
        return Err(format!("warnings {:?}", r.warnings()));
    }
    Ok(())
}

/// (name, lastError) of every store in /api/v1/stores.
fn stores(client: &ApiClient) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let r = client.get("/api/v1/stores", &[])?;
    let mut out = Vec::new();
    if let Some(groups) = r.body.get("data").and_then(|d| d.as_object()) {
        for list in groups.values().filter_map(|v| v.as_array()) {
            for s in list {
                out.push((
                    s["name"].as_str().unwrap_or_default().to_string(),
                    s["lastError"].as_str().map(String::from),
                ));
            }
        }
    }
    Ok(out)
}

/// The value of the sample `name{labels}` on /metrics (0 when absent).
fn metric(client: &ApiClient, name_and_labels: &str) -> u64 {
    let text = client
        .get("/metrics", &[])
        .map(|r| r.text)
        .unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn entry(
    node: &str,
    cluster: &str,
    address: &str,
    server_name: Option<&str>,
    labels: &[(&str, &str)],
) -> CatalogEntry {
    CatalogEntry {
        node_id: node.into(),
        cluster: cluster.into(),
        address: address.into(),
        tls_server_name: server_name.map(String::from),
        min_time: i64::MIN,
        max_time: i64::MAX,
        label_sets: vec![
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<LabelSet>(),
        ],
    }
}

/// The attacker: a WAN member of cluster a with a genuine certificate, and
/// a lying store on the same port. Returns the pool (keep it alive) and
/// its external address.
async fn attacker(
    certs: &Path,
    ip: Ipv4Addr,
    seed: &str,
    data: (i64, i64),
) -> (WanPool, Arc<TlsReloader>, String) {
    let tls = TlsReloader::new(
        TlsFiles {
            cert: certs.join("evil.crt"),
            key: certs.join("evil.key"),
            ca: certs.join("ca.crt"),
        },
        &mut prometheus_client::registry::Registry::default(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((ip, 0)))
        .await
        .unwrap();
    let external = listener.local_addr().unwrap().to_string();
    let endpoint = WanEndpoint::with_metrics(
        CarrierSettings::new(WanAddr::parse(&external).unwrap()),
        Some(tls.clone()),
        GossipMetrics::unregistered(),
        WanMetrics::unregistered(),
    );
    // Its store: claims cluster b, with a huge queue depth.
    let (start, end) = data;
    let samples: Vec<Sample> = (start..end)
        .step_by(SLOT_MS as usize)
        .map(|t| Sample { t, v: 1e9 })
        .collect();
    let store = MemStore::new(
        vec![Series::new(
            Labels::from_pairs([("__name__", "gen_queue_depth"), ("job", "evil")]),
            samples,
        )],
        MemStoreOptions {
            component_type: "sidecar".into(),
            external_labels: Labels::from_pairs([("cluster", "b"), ("replica", "0")]),
            ..Default::default()
        },
    );
    let router = tonic::transport::Server::builder()
        .add_service(endpoint.service())
        .add_service(StoreServer::new(store.clone()))
        .add_service(InfoServer::new(store));
    let incoming = skein_tls::server::incoming(listener, tls.clone(), Duration::from_secs(5));
    tokio::spawn(router.serve_with_incoming(incoming));
    let mut cfg = WanConfig::new("evil", FEDERATION, "a");
    cfg.seeds = vec![seed.to_string()];
    cfg.gossip_interval = Duration::from_millis(200);
    cfg.failure_detection = FailureDetection {
        phi_threshold: 12.0,
        initial_interval: Duration::from_millis(200),
        ..FailureDetection::default()
    };
    let pool = WanPool::start(endpoint, cfg).await.unwrap();
    (pool, tls, external)
}

#[test]
fn a_hostile_wan_member_cannot_redirect_or_impersonate() {
    assert!(
        loopback_usable(ip_of(3, 0)),
        "this test needs 127.0.0.x loopback addresses"
    );
    let work = tempfile::Builder::new()
        .prefix("skein-e2e-wan-hostile-")
        .tempdir()
        .unwrap();
    let dir = work.path();
    let (a_ip, qa_ip, b_ip, qb_ip, evil_ip) = (
        ip_of(3, 0),
        ip_of(3, 2),
        ip_of(4, 0),
        ip_of(4, 2),
        ip_of(3, 5),
    );
    let certs = make_certs(
        &dir.join("certs"),
        &[
            ("a0", "a", a_ip),
            ("qa", "a", qa_ip),
            ("b0", "b", b_ip),
            ("qb", "b", qb_ip),
            ("evil", "a", evil_ip),
        ],
        dir,
    )
    .unwrap();
    let keyring_a = make_keyring(&dir.join("keyring-a"), dir).unwrap();
    let keyring_b = make_keyring(&dir.join("keyring-b"), dir).unwrap();

    // One hour of data per cluster, ending 10 minutes ago.
    let end = now_ms() - WINDOW_END_BEFORE_NOW_MS;
    let prom = |seed: u64, cluster: &str| {
        let mut spec = DataSpec::small(seed, end);
        spec.start_ms = spec.end_ms() - 240 * SLOT_MS;
        spec.slots = 240;
        let ds = Dataset::generate(spec).unwrap();
        let p = PrometheusServer::start(
            dir,
            &format!("prometheus-{cluster}"),
            &label_set(&[("cluster", cluster), ("replica", "0")]),
            Some(&ds),
        )
        .unwrap();
        (ds, p)
    };
    let (ds_a, prom_a) = prom(301, "a");
    let (_ds_b, prom_b) = prom(302, "b");

    let query_extra = |wan_seed: Option<String>| {
        let mut v: Vec<String> = [
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
            v.extend(["--gossip.wan-seed".to_string(), s]);
        }
        v
    };
    let mut qb = Node::spawn(
        dir,
        NodeSpec {
            name: "qb",
            ip: qb_ip,
            cluster: "b",
            certs: &certs,
            keyring: &keyring_b,
            seeds: vec![],
            extra: query_extra(None),
        },
    )
    .unwrap();
    let mut qa = Node::spawn(
        dir,
        NodeSpec {
            name: "qa",
            ip: qa_ip,
            cluster: "a",
            certs: &certs,
            keyring: &keyring_a,
            seeds: vec![],
            extra: query_extra(Some(qb.external())),
        },
    )
    .unwrap();
    let sidecar = |name: &'static str, ip, cluster: &'static str, keyring, q: &Node, url: &str| {
        Node::spawn(
            dir,
            NodeSpec {
                name,
                ip,
                cluster,
                certs: &certs,
                keyring,
                seeds: vec![q.gossip.to_string()],
                extra: vec![
                    "--roles".into(),
                    "sidecar".into(),
                    "--sidecar.prometheus-url".into(),
                    url.to_string(),
                ],
            },
        )
        .unwrap()
    };
    let mut a0 = sidecar("a0", a_ip, "a", &keyring_a, &qa, &prom_a.url);
    let mut b0 = sidecar("b0", b_ip, "b", &keyring_b, &qb, &prom_b.url);
    for n in [&mut qa, &mut qb, &mut a0, &mut b0] {
        n.wait_ready().unwrap();
    }
    let logs = |nodes: &[&Node]| {
        nodes
            .iter()
            .map(|n| format!("--- {} ---\n{}\n", n.name, n.log_tail(25)))
            .collect::<String>()
    };

    // What Prometheus says, per cluster.
    let t = ds_a.spec.end_ms() - 60 * 1000;
    let mut want = BTreeMap::new();
    for (c, p) in [("a", &prom_a), ("b", &prom_b)] {
        let v = match p.client.query("sum(gen_queue_depth)", t).unwrap() {
            QueryData::Vector(m) => m.values().next().map(|(_, v)| *v).unwrap(),
            other => panic!("Prometheus {c}: {other:?}"),
        };
        want.insert(c.to_string(), v);
    }
    for q in [&qa, &qb] {
        if let Err(e) = poll_until(
            "the querier to answer over a and b",
            Duration::from_secs(60),
            Duration::from_millis(300),
            || Ok(answers_exactly(&q.client, t, &want).ok()),
        ) {
            panic!("{} {e:#}\n{}", q.name, logs(&[&qa, &qb, &a0, &b0]));
        }
    }

    // The attacker joins through b's query node and publishes.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let window = (ds_a.spec.start_ms, ds_a.spec.end_ms());
    let (pool, evil_tls, evil) = rt.block_on(attacker(&certs, evil_ip, &qb.external(), window));
    let b0_ext = b0.external();
    let arbitrary = "127.0.0.250:9";
    let shards = {
        let m = evil_tls.material();
        let now = catalog::signing_time();
        let me = |cluster: &str| Publisher {
            node_id: "evil".into(),
            cluster: cluster.into(),
            federation: FEDERATION.into(),
        };
        vec![
            catalog::encode_signed_from(
                &[
                    // Its own cluster, its own store, promising cluster="a".
                    entry(
                        "evil",
                        "a",
                        &evil,
                        None,
                        &[("cluster", "a"), ("replica", "evil")],
                    ),
                    // Its own cluster, pointing at b's real store.
                    entry(
                        "b0",
                        "a",
                        &b0_ext,
                        Some("b0"),
                        &[("cluster", "b"), ("replica", "0")],
                    ),
                    // Cluster b: its own store, and an arbitrary address.
                    entry(
                        "evil-b",
                        "b",
                        &evil,
                        None,
                        &[("cluster", "b"), ("replica", "0")],
                    ),
                    entry(
                        "far-b",
                        "b",
                        arbitrary,
                        None,
                        &[("cluster", "b"), ("replica", "1")],
                    ),
                ],
                &me("a"),
                &m,
                now,
                0,
            )
            .unwrap()
            .remove(0),
            // A shard claiming to be cluster b's.
            catalog::encode_signed_from(
                &[entry(
                    "evil-b2",
                    "b",
                    &evil,
                    Some("evil"),
                    &[("cluster", "b")],
                )],
                &me("b"),
                &m,
                now,
                1,
            )
            .unwrap()
            .remove(0),
        ]
    };
    rt.block_on(async {
        pool.membership()
            .values_publisher(CATALOG_PREFIX)
            .unwrap()
            .publish(&shards)
            .await
            .unwrap()
    });

    // b's querier refuses the attacker's store and the redirected entry,
    // with the reasons in /api/v1/stores.
    let refused = poll_until(
        "b's querier to refuse the attacker's entries",
        Duration::from_secs(60),
        Duration::from_millis(300),
        || {
            let s = stores(&qb.client)?;
            let lying = s.iter().find(|(n, e)| {
                *n == evil && e.as_deref().is_some_and(|e| e.contains("label sets"))
            });
            let redirected = s.iter().find(|(n, e)| {
                *n == b0_ext && e.as_deref().is_some_and(|e| e.contains("certificate"))
            });
            Ok(lying.zip(redirected).map(|(l, r)| (l.clone(), r.clone())))
        },
    );
    let (lying, redirected) = match refused {
        Ok(x) => x,
        Err(e) => panic!(
            "{e:#}\nqb stores: {:?}\n{}",
            stores(&qb.client),
            logs(&[&qa, &qb])
        ),
    };
    eprintln!("qb refused {lying:?}\nqb refused {redirected:?}");
    assert!(
        metric(
            &qb.client,
            "skein_query_store_rejected_total{reason=\"label_sets\"}"
        ) >= 1
            && metric(
                &qb.client,
                "skein_query_store_rejected_total{reason=\"identity\"}"
            ) >= 1
    );
    // a's querier never gets cluster b's entries from the attacker; both
    // queriers count the shards and entries they refused.
    for q in [&qa, &qb] {
        poll_until(
            "refusals counted",
            Duration::from_secs(30),
            Duration::from_millis(300),
            || {
                Ok((metric(
                    &q.client,
                    "skein_wan_gossip_catalog_rejected_total{reason=\"other_cluster\"}",
                ) >= 2
                    && metric(
                        &q.client,
                        "skein_wan_gossip_catalog_rejected_total{reason=\"cluster_mismatch\"}",
                    ) >= 1)
                    .then_some(()))
            },
        )
        .unwrap_or_else(|e| panic!("{}: {e:#}", q.name));
    }
    let a_stores = stores(&qa.client).unwrap();
    assert!(
        a_stores.iter().all(|(n, _)| *n != evil && n != arbitrary),
        "a's store set: {a_stores:?}"
    );
    // Honest answers, exactly, without warnings, for several rounds.
    for _ in 0..5 {
        for q in [&qa, &qb] {
            answers_exactly(&q.client, t, &want).unwrap_or_else(|e| panic!("{}: {e}", q.name));
        }
        std::thread::sleep(Duration::from_millis(300));
    }

    // Deliver with another member's address as `from`: refused, counted.
    let qb_ext = qb.external();
    let qa_ext = qa.external();
    let code = rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("https://{qa_ext}"))
            .unwrap()
            .tls_config(evil_tls.material().client_config("qa"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        WanClient::new(channel)
            .deliver(Datagram {
                payload: vec![1; 16],
                from: qb_ext,
            })
            .await
            .map(|_| ())
            .map_err(|s| s.code())
    });
    assert_eq!(code, Err(tonic::Code::PermissionDenied));
    assert!(
        metric(
            &qa.client,
            "skein_wan_gossip_datagrams_dropped_total{reason=\"from_mismatch\"}"
        ) >= 1
    );
    rt.block_on(pool.shutdown());
}
