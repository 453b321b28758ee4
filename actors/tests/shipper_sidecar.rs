//! The shipper fed by a real sidecar: a Prometheus 2.42 with external labels and blocks in its
//! data dir (no local compaction, as Thanos requires), the SidecarActor reading its labels, and
//! the shipper writing them into the uploaded meta.json.

#[allow(dead_code)]
#[path = "support/prometheus.rs"]
mod prometheus;
mod storage_support;

use actix::Actor;
use prometheus_client::registry::Registry;
use skein_actors::shipper::{ExternalLabelsSource, Shipper, ShipperConfig, ShipperMetrics};
use skein_actors::sidecar::{SidecarActor, SidecarConfig};
use skein_objstore::{Bucket, ObjstoreConfig, ObjstoreMetrics};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[actix_rt::test]
async fn ships_prometheus_blocks_with_the_sidecars_external_labels() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Six hours ending two hours ago, aligned to 2h so promtool cuts whole blocks.
    let start = (now - 8 * 3_600_000) / 7_200_000 * 7_200_000;
    let (om, _) = storage_support::openmetrics(2, 6, start);
    let config =
        "global:\n  scrape_interval: 1h\n  external_labels:\n    cluster: c1\n    replica: r0\n";
    let prom = prometheus::TestPrometheus::start(config, Some(&om)).await;
    let data = prom.dir.path().join("data");
    let blocks_before = storage_support::block_dirs(&data);
    assert!(!blocks_before.is_empty());

    let mut reg = Registry::default();
    let sidecar = SidecarActor::new(
        SidecarConfig {
            prometheus_url: prom.url(),
            ..SidecarConfig::default()
        },
        &mut reg,
    )
    .unwrap()
    .start();
    let b = tempfile::tempdir().unwrap();
    let bucket = Bucket::from_config(
        &ObjstoreConfig::filesystem(b.path()),
        ObjstoreMetrics::default(),
    )
    .unwrap();
    let shipper = Shipper::new(
        ShipperConfig::new(&data),
        bucket.clone(),
        ExternalLabelsSource::Sidecar(sidecar),
        ShipperMetrics::register(&mut reg),
    );
    let mut uploaded = Vec::new();
    for _ in 0..100 {
        let r = shipper.sync().await.unwrap();
        if !r.waiting_for_labels {
            uploaded = r.uploaded;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!uploaded.is_empty(), "nothing shipped");
    for id in &uploaded {
        let m = bucket.block_meta(*id).await.unwrap().unwrap();
        let labels = m.external_labels();
        assert_eq!(labels.get("cluster").map(String::as_str), Some("c1"));
        assert_eq!(labels.get("replica").map(String::as_str), Some("r0"));
        assert_eq!(m.compaction.level, 1);
        // The block is (still or was) one of Prometheus's.
        assert!(blocks_before.iter().any(|p| p.ends_with(id.to_string())));
    }
}
