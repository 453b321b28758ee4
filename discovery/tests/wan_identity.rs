//! WAN identity on real gRPC ports with real certificates: three members,
//! A (honest, cluster a), B (honest, cluster b) and M (malicious, cluster
//! a). A and M have certificates from CA 1, B from CA 2; A and B trust
//! both CAs, M trusts CA 1 only, so M and B cannot talk: everything of M's
//! reaches B relayed by A.
//!
//! M publishes, under its own node, signed and unsigned catalog shards
//! that claim too much: an entry for cluster b at an address of its
//! choosing, a shard claiming cluster b, a shard claiming to be B's, B's
//! own signed shard copied, an unsigned shard, a tampered one. A and B
//! keep only M's entry for its own cluster, and count every refusal by
//! reason. Then `Deliver` calls whose caller certificate does not match
//! `from`, or names no identity of the federation, are refused
//! (PermissionDenied) and counted.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{GOSSIP, eventually};
use skein_discovery::FailureDetection;
use skein_discovery::GossipMetrics;
use skein_discovery::wan::catalog::{self, Publisher, Rejection};
use skein_discovery::wan::{
    CATALOG_PREFIX, CarrierSettings, CatalogEntry, DropReason, WanAddr, WanConfig, WanEndpoint,
    WanMetrics, WanPool,
};
use skein_proto::skein::gossip::v1::Datagram;
use skein_proto::skein::gossip::v1::wan_client::WanClient;
use skein_tls::devcerts::{DevCa, NodeCertSpec};
use skein_tls::identity::NodeIdentity;
use skein_tls::{TlsFiles, TlsReloader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const FED: &str = "fed";

struct Member {
    pool: WanPool,
    external: String,
    tls: Arc<TlsReloader>,
    wan_metrics: WanMetrics,
    stop: oneshot::Sender<()>,
}

/// A certificate from `ca` for `name` (SAN `ip`) with `identity`, trusting
/// the CAs in `trust`.
fn tls(
    dir: &Path,
    ca: &DevCa,
    trust: &[&DevCa],
    name: &str,
    ip: &str,
    identity: Option<NodeIdentity>,
) -> Arc<TlsReloader> {
    let mut spec = NodeCertSpec::new(name, &[ip.to_string()]);
    spec.identity = identity;
    let (cert, key) = ca.issue_node_to(dir, &spec).unwrap();
    let ca_path = dir.join(format!("{name}-trust.crt"));
    let bundle: String = trust.iter().map(|c| c.cert_pem.clone()).collect();
    std::fs::write(&ca_path, bundle).unwrap();
    TlsReloader::new(
        TlsFiles {
            cert,
            key,
            ca: ca_path,
        },
        &mut prometheus_client::registry::Registry::default(),
    )
    .unwrap()
}

async fn member(
    name: &str,
    cluster: &str,
    ip: [u8; 4],
    tls: Arc<TlsReloader>,
    seeds: &[&str],
) -> Member {
    let listener = TcpListener::bind(SocketAddr::from((ip, 0))).await.unwrap();
    let external = listener.local_addr().unwrap().to_string();
    let wan_metrics = WanMetrics::unregistered();
    let endpoint = WanEndpoint::with_metrics(
        CarrierSettings::new(WanAddr::parse(&external).unwrap()),
        Some(tls.clone()),
        GossipMetrics::unregistered(),
        wan_metrics.clone(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let router = tonic::transport::Server::builder().add_service(endpoint.service());
    let incoming = skein_tls::server::incoming(listener, tls.clone(), Duration::from_secs(5));
    tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = stopped.await;
    }));
    let mut cfg = WanConfig::new(name, FED, cluster);
    cfg.seeds = seeds.iter().map(|s| s.to_string()).collect();
    cfg.gossip_interval = GOSSIP;
    cfg.failure_detection = FailureDetection {
        phi_threshold: 12.0,
        initial_interval: GOSSIP,
        max_interval: Duration::from_secs(2),
        dead_node_grace_period: Duration::from_secs(60),
    };
    let pool = WanPool::start(endpoint, cfg).await.unwrap();
    Member {
        pool,
        external,
        tls,
        wan_metrics,
        stop,
    }
}

fn peers(m: &Member) -> Vec<String> {
    m.pool
        .membership()
        .peers()
        .into_iter()
        .map(|p| p.node_id)
        .collect()
}

fn catalog_ids(m: &Member) -> Vec<String> {
    m.pool
        .catalog()
        .borrow()
        .iter()
        .map(|e| e.node_id.clone())
        .collect()
}

fn store(node: &str, cluster: &str, address: &str) -> CatalogEntry {
    CatalogEntry {
        node_id: node.into(),
        cluster: cluster.into(),
        address: address.into(),
        tls_server_name: None,
        min_time: 0,
        max_time: 1_000,
        label_sets: vec![[("cluster".to_string(), cluster.to_string())].into()],
    }
}

fn rejected(m: &Member, r: Rejection) -> u64 {
    m.wan_metrics.catalog_rejected_count(r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_publishes_for_its_own_cluster_only_even_relayed() {
    skein_tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca1 = DevCa::generate("ca-1").unwrap();
    let ca2 = DevCa::generate("ca-2").unwrap();
    let id = |c: &str, n: &str| Some(NodeIdentity::new(FED, c, n));
    let a = member(
        "a",
        "a",
        [127, 0, 0, 61],
        tls(
            dir.path(),
            &ca1,
            &[&ca1, &ca2],
            "a",
            "127.0.0.61",
            id("a", "a"),
        ),
        &[],
    )
    .await;
    let b = member(
        "b",
        "b",
        [127, 0, 0, 62],
        tls(
            dir.path(),
            &ca2,
            &[&ca1, &ca2],
            "b",
            "127.0.0.62",
            id("b", "b"),
        ),
        &[&a.external],
    )
    .await;
    let m = member(
        "m",
        "a",
        [127, 0, 0, 63],
        tls(dir.path(), &ca1, &[&ca1], "m", "127.0.0.63", id("a", "m")),
        &[&a.external],
    )
    .await;
    assert!(
        eventually(Duration::from_secs(15), || peers(&a) == ["b", "m"]
            && peers(&b) == ["a", "m"])
        .await,
        "views: a {:?} b {:?}",
        peers(&a),
        peers(&b)
    );

    // Honest catalogs.
    a.pool
        .publish_catalog(&[store("sa1", "a", "sa1.a.example:443")])
        .await
        .unwrap();
    b.pool
        .publish_catalog(&[store("sb1", "b", "sb1.b.example:443")])
        .await
        .unwrap();
    // An honest publisher refuses another cluster's entries locally.
    assert!(
        a.pool
            .publish_catalog(&[store("sb1", "b", "sb1.b.example:443")])
            .await
            .is_err()
    );
    a.pool
        .publish_catalog(&[store("sa1", "a", "sa1.a.example:443")])
        .await
        .unwrap();
    // M waits for B's signed shard, to copy it.
    let b_shard = {
        let mut rx = m
            .pool
            .membership()
            .watch_values(CATALOG_PREFIX)
            .await
            .unwrap();
        let mut found = None;
        for _ in 0..100 {
            if let Some(p) = rx.borrow_and_update().iter().find(|p| p.node_id == "b") {
                found = p.values.first().cloned();
            }
            if found.is_some() {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
        }
        found.expect("B's catalog relayed to M through A")
    };

    // M's shards, all under its own chitchat node, signed with its own key
    // unless said otherwise.
    let now = catalog::signing_time();
    let material = m.tls.material();
    let as_m = |cluster: &str, node: &str| Publisher {
        node_id: node.into(),
        cluster: cluster.into(),
        federation: FED.into(),
    };
    let sign = |entries: &[CatalogEntry], who: &Publisher, key: usize| {
        catalog::encode_signed_from(entries, who, &material, now, key)
            .unwrap()
            .remove(0)
    };
    let shards = vec![
        // 0: its own cluster (kept) and an entry for b at its own address
        // (dropped: other_cluster).
        sign(
            &[
                store("m-own", "a", "127.0.0.63:1"),
                store("m-as-b", "b", "127.0.0.63:2"),
            ],
            &as_m("a", "m"),
            0,
        ),
        // 1: a body claiming cluster b (cluster_mismatch).
        sign(
            &[store("m-claims-b", "b", "127.0.0.63:3")],
            &as_m("b", "m"),
            1,
        ),
        // 2: a body claiming to be B's (node_mismatch).
        sign(&[store("m-is-b", "b", "127.0.0.63:4")], &as_m("b", "b"), 2),
        // 3: B's genuine signed shard, copied under M's node
        // (node_mismatch: the certificate names b).
        b_shard,
        // 4: unsigned (unsigned).
        catalog::encode(&[store("m-unsigned", "b", "127.0.0.63:5")])
            .unwrap()
            .remove(0),
        // 5: tampered after signing (signature).
        sign(
            &[store("m-tamper", "a", "127.0.0.63:6")],
            &as_m("a", "m"),
            5,
        )
        .replace("m-tamper", "m-tampr"),
        // 6: signed for key 0, moved to key 6 (signature).
        sign(&[store("m-moved", "a", "127.0.0.63:7")], &as_m("a", "m"), 0),
    ];
    m.pool
        .membership()
        .values_publisher(CATALOG_PREFIX)
        .unwrap()
        .publish(&shards)
        .await
        .unwrap();

    // A (direct) and B (relayed by A): M's entry for its own cluster only.
    for (who, want) in [(&a, vec!["m-own", "sb1"]), (&b, vec!["m-own", "sa1"])] {
        assert!(
            eventually(Duration::from_secs(15), || catalog_ids(who) == want).await,
            "catalog {:?}, want {want:?}",
            catalog_ids(who)
        );
    }
    // Every refusal counted by reason, at both.
    for who in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(5), || {
                rejected(who, Rejection::OtherCluster) >= 1
                    && rejected(who, Rejection::ClusterMismatch) >= 1
                    && rejected(who, Rejection::NodeMismatch) >= 2
                    && rejected(who, Rejection::Unsigned) >= 1
                    && rejected(who, Rejection::Signature) >= 2
            })
            .await,
            "rejections: {:?}",
            Rejection::ALL
                .iter()
                .map(|r| (r.as_str(), rejected(who, *r)))
                .collect::<Vec<_>>()
        );
    }
    // M and B never spoke: B's view of M is relayed.
    assert!(b.pool.carrier().num_channels() >= 1);

    for x in [a, b, m] {
        let _ = x.stop.send(());
        x.pool.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_from_must_match_the_callers_certificate() {
    skein_tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::generate("ca").unwrap();
    let a = member(
        "a",
        "a",
        [127, 0, 0, 71],
        tls(
            dir.path(),
            &ca,
            &[&ca],
            "a",
            "127.0.0.71",
            Some(NodeIdentity::new(FED, "a", "a")),
        ),
        &[],
    )
    .await;
    let deliver = |caller: Arc<TlsReloader>, from: &'static str| {
        let external = a.external.clone();
        async move {
            let channel = tonic::transport::Endpoint::from_shared(format!("https://{external}"))
                .unwrap()
                .tls_config(caller.material().client_config("127.0.0.71"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            WanClient::new(channel)
                .deliver(Datagram {
                    payload: vec![0xff; 16],
                    from: from.into(),
                })
                .await
                .map(|_| ())
                .map_err(|s| s.code())
        }
    };
    let named = |name: &str, ip: &str, identity: Option<NodeIdentity>| {
        let mut spec = NodeCertSpec::new(name, &[ip.to_string()]);
        spec.identity = identity;
        tls(dir.path(), &ca, &[&ca], name, ip, spec.identity)
    };
    let m = named("m", "127.0.0.72", Some(NodeIdentity::new(FED, "a", "m")));
    // Its own address: accepted.
    assert_eq!(deliver(m.clone(), "127.0.0.72:9").await, Ok(()));
    assert_eq!(deliver(m.clone(), "m:9").await, Ok(()));
    // Another member's address: refused.
    assert_eq!(
        deliver(m.clone(), "127.0.0.71:9").await,
        Err(tonic::Code::PermissionDenied)
    );
    assert_eq!(
        deliver(m.clone(), "q0.other.example:443").await,
        Err(tonic::Code::PermissionDenied)
    );
    assert_eq!(a.wan_metrics.dropped_count(DropReason::FromMismatch), 2);
    // A certificate of the CA without identity, or with one of another
    // federation: refused whatever `from` says.
    let anon = named("anon", "127.0.0.73", None);
    assert_eq!(
        deliver(anon, "127.0.0.73:9").await,
        Err(tonic::Code::PermissionDenied)
    );
    let foreign = named(
        "foreign",
        "127.0.0.74",
        Some(NodeIdentity::new("other-fed", "a", "foreign")),
    );
    assert_eq!(
        deliver(foreign, "127.0.0.74:9").await,
        Err(tonic::Code::PermissionDenied)
    );
    assert_eq!(a.wan_metrics.dropped_count(DropReason::NoIdentity), 2);
    // Nothing refused reached the address book.
    let book = a.pool.carrier().address_book();
    for refused in ["127.0.0.71:9", "q0.other.example:443", "127.0.0.73:9"] {
        let addr = WanAddr::parse(refused).unwrap().socket_addr();
        assert!(
            book.route(addr).is_none() || refused == "127.0.0.71:9",
            "{refused} was learned"
        );
    }
    let _ = a.stop.send(());
    a.pool.shutdown().await;
}

/// A member whose certificate is renewed re-signs its catalog with the new
/// certificate (readers keep its entries), without being asked to publish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_re_signs_the_catalog() {
    skein_tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::generate("ca").unwrap();
    let id = |c: &str, n: &str| Some(NodeIdentity::new(FED, c, n));
    let a = member(
        "a",
        "a",
        [127, 0, 0, 81],
        tls(dir.path(), &ca, &[&ca], "a", "127.0.0.81", id("a", "a")),
        &[],
    )
    .await;
    let b = member(
        "b",
        "b",
        [127, 0, 0, 82],
        tls(dir.path(), &ca, &[&ca], "b", "127.0.0.82", id("b", "b")),
        &[&a.external],
    )
    .await;
    a.pool
        .publish_catalog(&[store("sa1", "a", "sa1.a.example:443")])
        .await
        .unwrap();
    let mut rx = b
        .pool
        .membership()
        .watch_values(CATALOG_PREFIX)
        .await
        .unwrap();
    let a_shard = |rx: &mut tokio::sync::watch::Receiver<Arc<Vec<skein_discovery::PeerValues>>>| {
        rx.borrow_and_update()
            .iter()
            .find(|p| p.node_id == "a")
            .and_then(|p| p.values.first().cloned())
    };
    assert!(eventually(Duration::from_secs(15), || catalog_ids(&b) == ["sa1"]).await);
    let before = a_shard(&mut rx).unwrap();
    // Renew A's certificate in place (same identity, new key) and reload.
    let mut spec = NodeCertSpec::new("a", &["127.0.0.81".to_string()]);
    spec.identity = id("a", "a");
    ca.issue_node_to(dir.path(), &spec).unwrap();
    a.tls.reload().unwrap();
    let mut after = None;
    for _ in 0..150 {
        if let Some(v) = a_shard(&mut rx).filter(|v| *v != before) {
            after = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = after.expect("A re-signed its catalog after the reload");
    let cert_of = |shard: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(shard).unwrap();
        v["chain"][0].as_str().unwrap().to_string()
    };
    assert_ne!(
        cert_of(&before),
        cert_of(&after),
        "signed with the new certificate"
    );
    assert_eq!(catalog_ids(&b), ["sa1"]);
    assert_eq!(rejected(&b, Rejection::Signature), 0);
    for x in [a, b] {
        let _ = x.stop.send(());
        x.pool.shutdown().await;
    }
}
