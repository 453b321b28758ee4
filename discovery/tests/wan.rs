//! WAN gossip over real tonic servers with mutual TLS: three members on
//! their own loopback addresses (one known by a DNS name, so its gossip
//! address is synthetic) converge from one seed, store catalogs propagate
//! and follow updates, a stopped member's catalog goes away, a node with a
//! certificate from another CA never gets in, and bad `Deliver` calls are
//! refused and counted.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{GOSSIP, eventually};
use prometheus_client::registry::Registry;
use skein_discovery::FailureDetection;
use skein_discovery::GossipMetrics;
use skein_discovery::wan::{
    CarrierSettings, CatalogEntry, DropReason, WanAddr, WanConfig, WanEndpoint, WanMetrics, WanPool,
};
use skein_proto::skein::gossip::v1::Datagram;
use skein_proto::skein::gossip::v1::wan_client::WanClient;
use skein_tls::devcerts::{DevCa, NodeCertSpec};
use skein_tls::identity::NodeIdentity;
use skein_tls::{TlsFiles, TlsReloader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

struct Member {
    pool: WanPool,
    external: String,
    wan_metrics: WanMetrics,
    stop: oneshot::Sender<()>,
}

/// A certificate for `name` with `sans`, naming the identity of node
/// `node` in cluster `cluster` of federation `fed`.
fn tls_for(
    ca: &DevCa,
    dir: &Path,
    name: &str,
    (node, cluster): (&str, &str),
    sans: &[&str],
) -> Arc<TlsReloader> {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut spec = NodeCertSpec::new(name, &sans);
    spec.identity = Some(NodeIdentity::new("fed", cluster, node));
    let (cert, key) = ca.issue_node_to(dir, &spec).unwrap();
    let ca_path = dir.join(format!("{name}-ca.crt"));
    std::fs::write(&ca_path, &ca.cert_pem).unwrap();
    TlsReloader::new(
        TlsFiles {
            cert,
            key,
            ca: ca_path,
        },
        &mut Registry::default(),
    )
    .unwrap()
}

/// Binds `bind_ip:0`, serves `Wan` there over mutual TLS and starts a WAN
/// member whose external address is `host:<port>`.
async fn member(
    name: &str,
    cluster: &str,
    bind_ip: [u8; 4],
    host: &str,
    tls: Option<Arc<TlsReloader>>,
    seeds: &[&str],
) -> Member {
    let listener = TcpListener::bind(SocketAddr::from((bind_ip, 0)))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let external = format!("{host}:{port}");
    let wan_metrics = WanMetrics::unregistered();
    let endpoint = WanEndpoint::with_metrics(
        CarrierSettings::new(WanAddr::parse(&external).unwrap()),
        tls.clone(),
        GossipMetrics::unregistered(),
        wan_metrics.clone(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let router = tonic::transport::Server::builder().add_service(endpoint.service());
    let signal = async {
        let _ = stopped.await;
    };
    match tls {
        Some(tls) => {
            let incoming = skein_tls::server::incoming(listener, tls, Duration::from_secs(5));
            tokio::spawn(router.serve_with_incoming_shutdown(incoming, signal));
        }
        None => {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            tokio::spawn(router.serve_with_incoming_shutdown(incoming, signal));
        }
    }
    let mut cfg = WanConfig::new(name, "fed", cluster);
    cfg.tls_server_name = Some(format!("{name}.wan.test"));
    cfg.seeds = seeds.iter().map(|s| s.to_string()).collect();
    cfg.gossip_interval = GOSSIP;
    cfg.failure_detection = FailureDetection {
        phi_threshold: 8.0,
        initial_interval: GOSSIP,
        max_interval: Duration::from_secs(2),
        dead_node_grace_period: Duration::from_secs(60),
    };
    let pool = WanPool::start(endpoint, cfg).await.unwrap();
    Member {
        pool,
        external,
        wan_metrics,
        stop,
    }
}

fn names(m: &Member) -> Vec<String> {
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

fn store(node: &str, cluster: &str) -> CatalogEntry {
    CatalogEntry {
        node_id: node.into(),
        cluster: cluster.into(),
        address: format!("{node}.{cluster}.example.com:443"),
        tls_server_name: Some(format!("{node}.{cluster}.example.com")),
        min_time: 0,
        max_time: 1_000,
        label_sets: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_converge_from_one_seed_and_share_catalogs() {
    skein_tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::generate("wan-test-ca").unwrap();
    let a = member(
        "a",
        "cluster-a",
        [127, 0, 0, 41],
        "127.0.0.41",
        Some(tls_for(
            &ca,
            dir.path(),
            "a.wan.test",
            ("a", "cluster-a"),
            &["127.0.0.41"],
        )),
        &[],
    )
    .await;
    // B and C know only A. C is known by a DNS name (`localhost`): its
    // gossip address is synthetic and its certificate is checked by name.
    let b = member(
        "b",
        "cluster-b",
        [127, 0, 0, 42],
        "127.0.0.42",
        Some(tls_for(
            &ca,
            dir.path(),
            "b.wan.test",
            ("b", "cluster-b"),
            &["127.0.0.42"],
        )),
        &[&a.external],
    )
    .await;
    let c = member(
        "c",
        "cluster-c",
        [127, 0, 0, 1],
        "localhost",
        Some(tls_for(
            &ca,
            dir.path(),
            "c.wan.test",
            ("c", "cluster-c"),
            &["localhost"],
        )),
        &[&a.external],
    )
    .await;
    let c_gossip = c.pool.membership().gossip_addr();
    assert!(
        skein_discovery::wan::address::is_synthetic(&c_gossip),
        "{c_gossip}"
    );

    assert!(
        eventually(Duration::from_secs(15), || names(&a) == ["b", "c"]
            && names(&b) == ["a", "c"]
            && names(&c) == ["a", "b"])
        .await,
        "no convergence: a={:?} b={:?} c={:?}",
        names(&a),
        names(&b),
        names(&c)
    );
    // B reached C without ever being told its address: through the address
    // book, from C's announcement (external `localhost:port`, name c.wan.test).
    let peer_c = b
        .pool
        .membership()
        .peers()
        .into_iter()
        .find(|p| p.node_id == "c")
        .unwrap();
    assert_eq!(peer_c.gossip_addr, c_gossip);
    assert_eq!(peer_c.announcement.cluster, "cluster-c");
    assert_eq!(
        peer_c.announcement.tls_server_name.as_deref(),
        Some("c.wan.test")
    );
    assert!(b.pool.carrier().num_channels() >= 2);

    a.pool
        .publish_catalog(&[store("s1", "cluster-a"), store("s2", "cluster-a")])
        .await
        .unwrap();
    c.pool
        .publish_catalog(&[store("s9", "cluster-c")])
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || catalog_ids(&b)
            == ["s1", "s2", "s9"])
        .await,
        "catalog at b: {:?}",
        catalog_ids(&b)
    );
    // A sees C's catalog, and never its own.
    assert!(eventually(Duration::from_secs(10), || catalog_ids(&a) == ["s9"]).await);
    let s9 = b
        .pool
        .catalog()
        .borrow()
        .iter()
        .find(|e| e.node_id == "s9")
        .cloned()
        .unwrap();
    assert_eq!(s9, store("s9", "cluster-c"));

    // Updates replace the previous catalog.
    a.pool
        .publish_catalog(&[store("s2", "cluster-a")])
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || catalog_ids(&b) == ["s2", "s9"]).await,
        "catalog at b after update: {:?}",
        catalog_ids(&b)
    );

    // C stops (its gRPC server too): it leaves the views by failure
    // detection and its catalog goes with it.
    let _ = c.stop.send(());
    c.pool.shutdown().await;
    assert!(
        eventually(Duration::from_secs(20), || names(&a) == ["b"]
            && names(&b) == ["a"]
            && catalog_ids(&b) == ["s2"])
        .await,
        "after C stopped: a={:?} b={:?} catalog={:?}",
        names(&a),
        names(&b),
        catalog_ids(&b)
    );
    assert_eq!(a.wan_metrics.dropped_count(DropReason::QueueFull), 0);
    let _ = a.stop.send(());
    let _ = b.stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_ca_stays_out_and_bad_deliveries_are_refused() {
    skein_tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::generate("wan-test-ca").unwrap();
    let other_ca = DevCa::generate("someone-else").unwrap();
    let a = member(
        "a",
        "cluster-a",
        [127, 0, 0, 44],
        "127.0.0.44",
        Some(tls_for(
            &ca,
            dir.path(),
            "a.wan.test",
            ("a", "cluster-a"),
            &["127.0.0.44"],
        )),
        &[],
    )
    .await;
    let b = member(
        "b",
        "cluster-b",
        [127, 0, 0, 45],
        "127.0.0.45",
        Some(tls_for(
            &ca,
            dir.path(),
            "b.wan.test",
            ("b", "cluster-b"),
            &["127.0.0.45"],
        )),
        &[&a.external],
    )
    .await;
    let intruder = member(
        "x",
        "cluster-x",
        [127, 0, 0, 46],
        "127.0.0.46",
        Some(tls_for(
            &other_ca,
            dir.path(),
            "x.wan.test",
            ("x", "cluster-x"),
            &["127.0.0.46"],
        )),
        &[&a.external],
    )
    .await;
    assert!(
        eventually(Duration::from_secs(10), || names(&a) == ["b"]
            && names(&b) == ["a"])
        .await
    );
    // Several seconds of the intruder knocking: it never enters a view.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(names(&a), ["b"]);
    assert_eq!(names(&b), ["a"]);
    assert!(names(&intruder).is_empty());

    // A member's own certificate calling Deliver with bad input directly.
    let tls = tls_for(
        &ca,
        dir.path(),
        "probe.wan.test",
        ("probe", "cluster-a"),
        &["127.0.0.47"],
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{}", a.external))
        .unwrap()
        .tls_config(tls.material().client_config("127.0.0.44"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = WanClient::new(channel);
    let bad_from = client
        .deliver(Datagram {
            payload: vec![1, 2, 3],
            from: "not an address".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_from.code(), tonic::Code::InvalidArgument);
    let empty = client
        .deliver(Datagram {
            payload: Vec::new(),
            from: "127.0.0.47:1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    let huge = client
        .deliver(Datagram {
            payload: vec![0; 200_000],
            from: "127.0.0.47:1".into(),
        })
        .await
        .unwrap_err();
    assert_ne!(huge.code(), tonic::Code::Ok);
    assert_eq!(a.wan_metrics.dropped_count(DropReason::BadFrom), 1);
    assert_eq!(a.wan_metrics.dropped_count(DropReason::BadDatagram), 1);
    // Garbage that passes the checks reaches chitchat, which drops it; the
    // pool keeps going.
    client
        .deliver(Datagram {
            payload: vec![0xff; 64],
            from: "127.0.0.47:1".into(),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(names(&a), ["b"]);
    for m in [a, b, intruder] {
        let _ = m.stop.send(());
        m.pool.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_development_mode_converges_but_not_with_tls_members() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::generate("wan-test-ca").unwrap();
    skein_tls::install_crypto_provider();
    let a = member("a", "cluster-a", [127, 0, 0, 51], "127.0.0.51", None, &[]).await;
    let b = member(
        "b",
        "cluster-b",
        [127, 0, 0, 52],
        "127.0.0.52",
        None,
        &[&a.external],
    )
    .await;
    // A TLS member seeding a plaintext one: the handshake fails, it stays out.
    let t = member(
        "t",
        "cluster-t",
        [127, 0, 0, 53],
        "127.0.0.53",
        Some(tls_for(
            &ca,
            dir.path(),
            "t.wan.test",
            ("t", "cluster-t"),
            &["127.0.0.53"],
        )),
        &[&a.external],
    )
    .await;
    assert!(
        eventually(Duration::from_secs(10), || names(&a) == ["b"]
            && names(&b) == ["a"])
        .await
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(names(&a), ["b"]);
    assert!(names(&t).is_empty());
    for m in [a, b, t] {
        let _ = m.stop.send(());
        m.pool.shutdown().await;
    }
}
