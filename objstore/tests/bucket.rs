//! Bucket operations and safe-order block uploads against the local file system and a real S3
//! server (Garage, when installed).

mod support;

use bytes::Bytes;
use prometheus_client::registry::Registry;
use skein_objstore::{
    Bucket, BucketError, ObjstoreConfig, ObjstoreMetrics, RetryPolicy, Ulid, UploadStep, block_path,
};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::garage::Garage;

fn metrics_text(r: &Registry) -> String {
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, r).unwrap();
    s
}

/// A local block dir with two chunk segments (one big enough for multipart uploads), an index
/// and a meta.json.
fn fake_block(dir: &Path, id: Ulid, big: usize) -> Vec<u8> {
    std::fs::create_dir_all(dir.join("chunks")).unwrap();
    let seg1: Vec<u8> = (0..big).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("chunks/000001"), &seg1).unwrap();
    std::fs::write(dir.join("chunks/000002"), b"second segment").unwrap();
    std::fs::write(dir.join("index"), b"index bytes").unwrap();
    let meta = format!(
        r#"{{"ulid":"{id}","minTime":0,"maxTime":1000,"version":1,"compaction":{{"level":1,"sources":["{id}"]}}}}"#
    );
    std::fs::write(dir.join("meta.json"), &meta).unwrap();
    seg1
}

async fn exercise(bucket: Bucket) {
    // Plain objects.
    assert!(!bucket.exists("a/b.txt").await.unwrap());
    assert!(bucket.get("a/b.txt").await.unwrap_err().is_not_found());
    assert_eq!(bucket.get_opt("a/b.txt").await.unwrap(), None);
    bucket
        .put("a/b.txt", Bytes::from_static(b"hello world"))
        .await
        .unwrap();
    assert!(bucket.exists("a/b.txt").await.unwrap());
    assert_eq!(bucket.size("a/b.txt").await.unwrap(), 11);
    assert_eq!(&bucket.get("a/b.txt").await.unwrap()[..], b"hello world");
    assert_eq!(
        &bucket.get_range("a/b.txt", 6..11).await.unwrap()[..],
        b"world"
    );
    let parts = bucket.get_ranges("a/b.txt", &[0..5, 6..11]).await.unwrap();
    assert_eq!(&parts[0][..], b"hello");
    assert_eq!(&parts[1][..], b"world");
    assert!(bucket.get_range("a/b.txt", 6..40).await.is_err());
    assert!(matches!(
        bucket.get("../x").await,
        Err(BucketError::InvalidPath { .. })
    ));
    bucket.delete("a/b.txt").await.unwrap();
    bucket.delete("a/b.txt").await.unwrap();
    assert!(!bucket.exists("a/b.txt").await.unwrap());

    // A block, uploaded in the safe order.
    let tmp = tempfile::tempdir().unwrap();
    let id = Ulid::new();
    let big = 6 << 20;
    let seg1 = fake_block(tmp.path(), id, big);
    let meta = Bytes::from(std::fs::read(tmp.path().join("meta.json")).unwrap());
    let steps = Arc::new(Mutex::new(Vec::new()));
    let s2 = steps.clone();
    let stats = bucket
        .clone()
        .with_part_size(5 << 20)
        .upload_block_with_progress(tmp.path(), id, meta.clone(), move |s| {
            s2.lock().unwrap().push(match s {
                UploadStep::File(f) => f.to_string(),
                UploadStep::Meta => "meta.json".into(),
            })
        })
        .await
        .unwrap();
    assert_eq!(
        *steps.lock().unwrap(),
        ["chunks/000001", "chunks/000002", "index", "meta.json"]
    );
    assert_eq!(stats.files.len(), 4);
    assert_eq!(stats.bytes, (big + 14 + 11 + meta.len()) as u64);
    assert_eq!(
        bucket
            .get(&block_path(id, "chunks/000001"))
            .await
            .unwrap()
            .len(),
        big
    );
    assert_eq!(
        bucket
            .get_range(&block_path(id, "chunks/000001"), 5_000_000..5_000_010)
            .await
            .unwrap(),
        &seg1[5_000_000..5_000_010]
    );
    let listed: Vec<String> = bucket
        .list_objects(&id.to_string())
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.path)
        .collect();
    assert_eq!(
        listed,
        [
            block_path(id, "chunks/000001"),
            block_path(id, "chunks/000002"),
            block_path(id, "index"),
            block_path(id, "meta.json"),
        ]
    );
    // A partial block (no meta.json) is listed as a dir but has no meta.
    let partial = Ulid::new();
    bucket
        .put(&block_path(partial, "index"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    bucket
        .put("debug/metas/x.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let mut want = vec![id, partial];
    want.sort();
    assert_eq!(bucket.list_block_ids().await.unwrap(), want);
    assert!(bucket.has_meta(id).await.unwrap());
    assert!(!bucket.has_meta(partial).await.unwrap());
    assert_eq!(bucket.block_meta(partial).await.unwrap(), None);
    let m = bucket.block_meta(id).await.unwrap().unwrap();
    assert_eq!((m.ulid, m.max_time, m.compaction.level), (id, 1000, 1));
    assert_eq!(bucket.list_dirs(None).await.unwrap().len(), 3);

    // Re-upload is idempotent.
    bucket
        .upload_block(tmp.path(), id, meta.clone())
        .await
        .unwrap();
    assert_eq!(bucket.list_objects(&id.to_string()).await.unwrap().len(), 4);

    // Deletion: mark, then delete (meta.json first, mark last).
    assert_eq!(bucket.deletion_mark(id).await.unwrap(), None);
    bucket.mark_for_deletion(id, "test").await.unwrap();
    let mark = bucket.deletion_mark(id).await.unwrap().unwrap();
    assert_eq!((mark.id, mark.version), (id, 1));
    assert!(mark.deletion_time > 1_600_000_000);
    bucket.delete_block(id).await.unwrap();
    assert!(
        bucket
            .list_objects(&id.to_string())
            .await
            .unwrap()
            .is_empty()
    );
    bucket.delete_block(partial).await.unwrap();
    assert!(bucket.list_block_ids().await.unwrap().is_empty());

    // A missing local index is refused before anything is uploaded.
    std::fs::remove_file(tmp.path().join("index")).unwrap();
    let other = Ulid::new();
    assert!(matches!(
        bucket.upload_block(tmp.path(), other, meta).await,
        Err(BucketError::InvalidBlock { .. })
    ));
    assert!(
        bucket
            .list_objects(&other.to_string())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn filesystem_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = Registry::default();
    let cfg = ObjstoreConfig::filesystem(dir.path().join("bucket"));
    let bucket = Bucket::from_config(&cfg, ObjstoreMetrics::register(&mut reg)).unwrap();
    exercise(bucket).await;
    let text = metrics_text(&reg);
    assert!(
        text.contains("skein_objstore_operations_total{operation=\"upload\"}"),
        "{text}"
    );
    assert!(text.contains("skein_objstore_bytes_total{operation=\"upload\"}"));
    // The failed out-of-range read counts as a failure; not-found answers do not.
    assert!(
        text.contains("skein_objstore_operation_failures_total{operation=\"get_range\"} 1"),
        "{text}"
    );
    assert!(!text.contains("skein_objstore_operation_failures_total{operation=\"get\"}"));
}

#[tokio::test]
async fn filesystem_prefix_keeps_objects_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}\nprefix: tenant-a\n",
        dir.path().display()
    );
    let cfg = ObjstoreConfig::from_yaml(&yaml).unwrap();
    let bucket = Bucket::from_config(&cfg, ObjstoreMetrics::default()).unwrap();
    bucket.put("x/y", Bytes::from_static(b"1")).await.unwrap();
    assert!(dir.path().join("tenant-a/x/y").is_file());
    assert_eq!(bucket.list_dirs(None).await.unwrap(), ["x"]);
}

#[tokio::test]
async fn garage_bucket() {
    let Some(g) = Garage::start() else { return };
    let mut reg = Registry::default();
    let cfg = ObjstoreConfig::from_yaml(&g.objstore_yaml(None)).unwrap();
    let bucket = Bucket::from_config(&cfg, ObjstoreMetrics::register(&mut reg)).unwrap();
    exercise(bucket).await;
    // Same bucket under a prefix sees nothing of the root and writes below the prefix.
    let cfg = ObjstoreConfig::from_yaml(&g.objstore_yaml(Some("pfx"))).unwrap();
    let pb = Bucket::from_config(&cfg, ObjstoreMetrics::default()).unwrap();
    pb.put("k", Bytes::from_static(b"v")).await.unwrap();
    let root = Bucket::from_config(
        &ObjstoreConfig::from_yaml(&g.objstore_yaml(None)).unwrap(),
        ObjstoreMetrics::default(),
    )
    .unwrap();
    assert_eq!(&root.get("pfx/k").await.unwrap()[..], b"v");
}

#[tokio::test]
async fn unreachable_s3_retries_then_fails_with_metrics() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = format!(
        "type: S3\nconfig:\n  bucket: b\n  endpoint: 127.0.0.1:{port}\n  access_key: a\n  secret_key: s\n  insecure: true\n  max_retries: 0\n"
    );
    let mut reg = Registry::default();
    let bucket = Bucket::from_config(
        &ObjstoreConfig::from_yaml(&yaml).unwrap(),
        ObjstoreMetrics::register(&mut reg),
    )
    .unwrap()
    .with_retry(RetryPolicy {
        attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
    });
    let e = bucket.get("x").await.unwrap_err();
    assert!(matches!(e, BucketError::Store { op: "get", .. }), "{e}");
    let text = metrics_text(&reg);
    assert!(
        text.contains("skein_objstore_operations_total{operation=\"get\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("skein_objstore_operation_failures_total{operation=\"get\"} 3"),
        "{text}"
    );
}
