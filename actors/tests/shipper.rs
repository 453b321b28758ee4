//! The shipper against real promtool-written blocks, to a local-directory bucket and to Garage:
//! safe upload order, Thanos meta.json, exactly-once across restarts and crashes, and
//! Prometheus's files left untouched.

mod storage_support;

use prometheus_client::registry::Registry;
use serde_json::Value;
use skein_actors::shipper::{
    ExternalLabelsSource, Shipper, ShipperActor, ShipperConfig, ShipperMetrics, ShipperState,
    SyncNow,
};
use skein_objstore::{Bucket, ObjstoreConfig, ObjstoreMetrics, Ulid, UploadStep, block_path};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use storage_support::garage::Garage;
use storage_support::{block_dirs, prometheus_data_dir, snapshot};

const OWN: &[&str] = &["thanos.shipper.json", "thanos"];

fn labels() -> ExternalLabelsSource {
    ExternalLabelsSource::from_pairs([("cluster", "eu1"), ("replica", "a")])
}

fn shipper(data: &Path, bucket: &Bucket, reg: &mut Registry) -> Shipper {
    Shipper::new(
        ShipperConfig::new(data),
        bucket.clone(),
        labels(),
        ShipperMetrics::register(reg),
    )
}

fn metric(reg: &Registry, name: &str) -> f64 {
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, reg).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.parse().unwrap())
        .unwrap_or(0.0)
}

fn fs_bucket(dir: &Path) -> Bucket {
    Bucket::from_config(&ObjstoreConfig::filesystem(dir), ObjstoreMetrics::default()).unwrap()
}

fn garage_bucket(g: &Garage) -> Bucket {
    Bucket::from_config(
        &ObjstoreConfig::from_yaml(&g.objstore_yaml(None)).unwrap(),
        ObjstoreMetrics::default(),
    )
    .unwrap()
}

fn ids(data: &Path) -> Vec<Ulid> {
    block_dirs(data)
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().parse().unwrap())
        .collect()
}

/// Every local block is in the bucket byte for byte, with a Thanos meta.json.
async fn check_bucket_matches(data: &Path, bucket: &Bucket) {
    for dir in block_dirs(data) {
        let id: Ulid = dir.file_name().unwrap().to_str().unwrap().parse().unwrap();
        let mut files = vec!["index".to_string()];
        for e in std::fs::read_dir(dir.join("chunks")).unwrap() {
            files.push(format!(
                "chunks/{}",
                e.unwrap().file_name().to_str().unwrap()
            ));
        }
        for f in &files {
            let local = std::fs::read(dir.join(f)).unwrap();
            let remote = bucket.get(&block_path(id, f)).await.unwrap();
            assert_eq!(&remote[..], &local[..], "{id}/{f}");
        }
        let meta: Value =
            serde_json::from_slice(&bucket.get(&block_path(id, "meta.json")).await.unwrap())
                .unwrap();
        let local: Value =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
        for k in [
            "ulid",
            "minTime",
            "maxTime",
            "stats",
            "compaction",
            "version",
        ] {
            assert_eq!(meta[k], local[k], "{k}");
        }
        let t = &meta["thanos"];
        assert_eq!(t["labels"]["cluster"], "eu1");
        assert_eq!(t["labels"]["replica"], "a");
        assert_eq!(t["source"], "sidecar");
        assert_eq!(t["downsample"]["resolution"], 0);
        let listed: Vec<&str> = t["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rel_path"].as_str().unwrap())
            .collect();
        assert_eq!(listed.last(), Some(&"meta.json"));
        for f in &files {
            let entry = t["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["rel_path"] == f.as_str())
                .unwrap_or_else(|| panic!("{f} not in files"));
            assert_eq!(
                entry["size_bytes"].as_u64().unwrap(),
                std::fs::metadata(dir.join(f)).unwrap().len()
            );
        }
        // Nothing else of the block (tombstones, staging) was uploaded.
        let objs = bucket.list_objects(&id.to_string()).await.unwrap();
        assert_eq!(objs.len(), files.len() + 1);
    }
}

async fn ships_all_blocks_once(bucket: Bucket) {
    let data = tempfile::tempdir().unwrap();
    prometheus_data_dir(data.path(), 3, 7);
    let local_ids = ids(data.path());
    assert!(local_ids.len() >= 3, "{local_ids:?}");
    let before = snapshot(data.path(), OWN);
    let mut reg = Registry::default();
    let s = shipper(data.path(), &bucket, &mut reg);
    let r = s.sync().await.unwrap();
    assert_eq!(r.uploaded.len(), local_ids.len(), "{r:?}");
    assert!(r.failed.is_empty());
    check_bucket_matches(data.path(), &bucket).await;
    // Only ULID dirs were shipped: no wal, head chunks or in-progress block.
    assert_eq!(bucket.list_block_ids().await.unwrap(), local_ids);
    assert_eq!(bucket.list_dirs(None).await.unwrap().len(), local_ids.len());
    let state = ShipperState::load(data.path());
    assert_eq!(state.version, 1);
    assert_eq!(state.uploaded, local_ids);
    assert_eq!(
        metric(&reg, "skein_shipper_uploads_total"),
        local_ids.len() as f64
    );
    assert!(metric(&reg, "skein_shipper_uploaded_bytes_total") > 10_000.0);
    assert_eq!(metric(&reg, "skein_shipper_upload_failures_total"), 0.0);
    // Second pass: nothing to do.
    let r = s.sync().await.unwrap();
    assert!(
        r.uploaded.is_empty() && r.found_in_bucket.is_empty(),
        "{r:?}"
    );
    assert_eq!(
        metric(&reg, "skein_shipper_uploads_total"),
        local_ids.len() as f64
    );
    // Prometheus's files are untouched; the staging dir is gone.
    assert_eq!(snapshot(data.path(), OWN), before);
    assert!(
        std::fs::read_dir(data.path().join("thanos/upload"))
            .unwrap()
            .next()
            .is_none(),
        "staging dir left behind"
    );

    // Lost record: blocks already complete in the bucket are recorded, not re-uploaded.
    std::fs::remove_file(ShipperState::path(data.path())).unwrap();
    let mut reg2 = Registry::default();
    let s2 = shipper(data.path(), &bucket, &mut reg2);
    let r = s2.sync().await.unwrap();
    assert!(r.uploaded.is_empty(), "{r:?}");
    assert_eq!(r.found_in_bucket.len(), local_ids.len());
    assert_eq!(ShipperState::load(data.path()).uploaded, local_ids);
    assert_eq!(metric(&reg2, "skein_shipper_uploads_total"), 0.0);

    // A block Prometheus deletes drops out of the record.
    std::fs::remove_dir_all(data.path().join(local_ids[0].to_string())).unwrap();
    s2.sync().await.unwrap();
    assert_eq!(ShipperState::load(data.path()).uploaded, local_ids[1..]);
}

/// Crashes the sync when the first block's chunks and index are up but its meta.json is not,
/// while a lister checks that no meta.json is ever visible before the block's index and
/// chunks; then a restarted shipper completes everything exactly once.
async fn crash_mid_upload_then_restart(bucket: Bucket) {
    let data = tempfile::tempdir().unwrap();
    prometheus_data_dir(data.path(), 2, 5);
    let local_ids = ids(data.path());
    let first = local_ids[0];

    let stop = Arc::new(AtomicBool::new(false));
    let lister = {
        let bucket = bucket.clone();
        let stop = stop.clone();
        let data = data.path().to_path_buf();
        tokio::spawn(async move {
            let mut checks = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for dir in block_dirs(&data) {
                    let id = dir.file_name().unwrap().to_str().unwrap().to_string();
                    let objs: BTreeSet<String> = bucket
                        .list_objects(&id)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|o| o.path)
                        .collect();
                    if objs.contains(&format!("{id}/meta.json")) {
                        assert!(
                            objs.contains(&format!("{id}/index")),
                            "meta.json before index: {objs:?}"
                        );
                        for c in std::fs::read_dir(dir.join("chunks")).unwrap() {
                            let c = c.unwrap().file_name();
                            let p = format!("{id}/chunks/{}", c.to_str().unwrap());
                            assert!(objs.contains(&p), "meta.json before {p}: {objs:?}");
                        }
                    }
                    checks += 1;
                }
                tokio::task::yield_now().await;
            }
            checks
        })
    };

    // The crash: the first block's upload dies right before its meta.json, i.e. after its
    // chunks and index are up. A panic in the progress callback stops the task at exactly
    // that point (dropping a future could let an already started write finish).
    let mut reg = Registry::default();
    let s = Arc::new(shipper(data.path(), &bucket, &mut reg));
    let s2 = s.clone();
    let crashed = tokio::spawn(async move {
        s2.sync_with_progress(move |id, step| {
            if id == first && step == UploadStep::Meta {
                panic!("simulated crash before {first}/meta.json");
            }
        })
        .await
    })
    .await;
    assert!(crashed.unwrap_err().is_panic());
    assert!(
        !bucket.has_meta(first).await.unwrap(),
        "partial block is visible"
    );
    assert!(bucket.exists(&block_path(first, "index")).await.unwrap());
    assert!(
        bucket
            .exists(&block_path(first, "chunks/000001"))
            .await
            .unwrap()
    );
    assert!(ShipperState::load(data.path()).uploaded.is_empty());

    // Restart.
    let mut reg2 = Registry::default();
    let s2 = shipper(data.path(), &bucket, &mut reg2);
    let r = s2.sync().await.unwrap();
    assert_eq!(r.uploaded, local_ids, "{r:?}");
    let r = s2.sync().await.unwrap();
    assert!(r.uploaded.is_empty() && r.found_in_bucket.is_empty());
    stop.store(true, Ordering::Relaxed);
    let checks = lister.await.unwrap();
    assert!(checks > 0);
    check_bucket_matches(data.path(), &bucket).await;
    assert_eq!(ShipperState::load(data.path()).uploaded, local_ids);
    assert_eq!(
        metric(&reg2, "skein_shipper_uploads_total"),
        local_ids.len() as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_ships_all_blocks_once() {
    let b = tempfile::tempdir().unwrap();
    ships_all_blocks_once(fs_bucket(b.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_crash_mid_upload_then_restart() {
    let b = tempfile::tempdir().unwrap();
    crash_mid_upload_then_restart(fs_bucket(b.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_ships_all_blocks_once() {
    let Some(g) = Garage::start() else { return };
    ships_all_blocks_once(garage_bucket(&g)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_crash_mid_upload_then_restart() {
    let Some(g) = Garage::start() else { return };
    crash_mid_upload_then_restart(garage_bucket(&g)).await;
}

#[tokio::test]
async fn waits_for_external_labels() {
    let data = tempfile::tempdir().unwrap();
    prometheus_data_dir(data.path(), 1, 3);
    let b = tempfile::tempdir().unwrap();
    let bucket = fs_bucket(b.path());
    let (tx, rx) = tokio::sync::watch::channel(None);
    let s = Shipper::new(
        ShipperConfig::new(data.path()),
        bucket.clone(),
        ExternalLabelsSource::Watch(rx),
        ShipperMetrics::default(),
    );
    let r = s.sync().await.unwrap();
    assert!(r.waiting_for_labels);
    assert!(bucket.list_block_ids().await.unwrap().is_empty());
    tx.send(Some([("replica".to_string(), "b".to_string())].into()))
        .unwrap();
    let r = s.sync().await.unwrap();
    assert_eq!(r.uploaded.len(), ids(data.path()).len());
    let m = bucket.block_meta(r.uploaded[0]).await.unwrap().unwrap();
    assert_eq!(
        m.external_labels().get("replica").map(String::as_str),
        Some("b")
    );
}

#[tokio::test]
async fn compacted_blocks_wait_unless_enabled() {
    let data = tempfile::tempdir().unwrap();
    prometheus_data_dir(data.path(), 1, 3);
    let local = ids(data.path());
    // Turn the first block into a level-2 block, as Prometheus's compactor would write it.
    let meta_path = data.path().join(local[0].to_string()).join("meta.json");
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["compaction"]["level"] = 2.into();
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let b = tempfile::tempdir().unwrap();
    let bucket = fs_bucket(b.path());
    let mut cfg = ShipperConfig::new(data.path());
    let s = Shipper::new(
        cfg.clone(),
        bucket.clone(),
        labels(),
        ShipperMetrics::default(),
    );
    let r = s.sync().await.unwrap();
    assert_eq!(r.skipped_compacted, vec![local[0]]);
    assert_eq!(r.uploaded, local[1..]);
    cfg.upload_compacted = true;
    let s = Shipper::new(cfg, bucket.clone(), labels(), ShipperMetrics::default());
    let r = s.sync().await.unwrap();
    assert_eq!(r.uploaded, vec![local[0]]);
}

#[test]
fn actor_ships_on_its_interval() {
    let data = tempfile::tempdir().unwrap();
    prometheus_data_dir(data.path(), 1, 3);
    let b = tempfile::tempdir().unwrap();
    let bucket = fs_bucket(b.path());
    let local = ids(data.path());
    let sys = actix::System::new();
    sys.block_on(async {
        let mut reg = Registry::default();
        let mut cfg = ShipperConfig::new(data.path());
        cfg.interval = Duration::from_millis(100);
        let addr = actix::Actor::start(ShipperActor::new(cfg, bucket.clone(), labels(), &mut reg));
        let mut shipped = Vec::new();
        for _ in 0..100 {
            shipped = ShipperState::load(data.path()).uploaded;
            if shipped.len() == local.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(shipped, local);
        let r = addr.send(SyncNow).await.unwrap().unwrap();
        assert!(r.uploaded.is_empty());
        assert_eq!(
            metric(&reg, "skein_shipper_uploads_total"),
            local.len() as f64
        );
    });
}

#[tokio::test]
async fn empty_external_labels_are_refused_unless_allowed() {
    let data = tempfile::tempdir().unwrap();
    prometheus_data_dir(data.path(), 1, 3);
    let b = tempfile::tempdir().unwrap();
    let bucket = fs_bucket(b.path());
    let mut cfg = ShipperConfig::new(data.path());
    let none = ExternalLabelsSource::Static(Default::default());
    let s = Shipper::new(
        cfg.clone(),
        bucket.clone(),
        none.clone(),
        ShipperMetrics::default(),
    );
    let r = s.sync().await.unwrap();
    assert!(r.waiting_for_labels && r.uploaded.is_empty());
    assert!(bucket.list_block_ids().await.unwrap().is_empty());
    cfg.allow_empty_external_labels = true;
    let s = Shipper::new(cfg, bucket.clone(), none, ShipperMetrics::default());
    let r = s.sync().await.unwrap();
    assert_eq!(r.uploaded, ids(data.path()));
}

/// Prometheus deleting a block (retention, compaction) while it uploads does not break the
/// upload: the shipper reads through hard links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_deleted_by_prometheus_mid_upload_still_uploads_whole() {
    let data = tempfile::tempdir().unwrap();
    prometheus_data_dir(data.path(), 2, 3);
    let local = ids(data.path());
    let victim = local[0];
    let copy = tempfile::tempdir().unwrap();
    let keep = copy.path().join(victim.to_string());
    let st = std::process::Command::new("cp")
        .arg("-r")
        .arg(data.path().join(victim.to_string()))
        .arg(&keep)
        .status()
        .unwrap();
    assert!(st.success());
    let b = tempfile::tempdir().unwrap();
    let bucket = fs_bucket(b.path());
    let s = shipper(data.path(), &bucket, &mut Registry::default());
    let dir = data.path().join(victim.to_string());
    let r = s
        .sync_with_progress(move |id, step| {
            if id == victim && step == UploadStep::File("index") && dir.exists() {
                std::fs::remove_dir_all(&dir).unwrap();
            }
        })
        .await
        .unwrap();
    assert!(r.uploaded.contains(&victim), "{r:?}");
    assert!(!data.path().join(victim.to_string()).exists());
    for f in ["index", "chunks/000001"] {
        let remote = bucket.get(&block_path(victim, f)).await.unwrap();
        assert_eq!(
            &remote[..],
            &std::fs::read(keep.join(f)).unwrap()[..],
            "{f}"
        );
    }
    // Gone locally: dropped from the record, still in the bucket.
    s.sync().await.unwrap();
    assert!(!ShipperState::load(data.path()).uploaded.contains(&victim));
    assert!(bucket.has_meta(victim).await.unwrap());
}
