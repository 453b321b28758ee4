//! `bucket ls | inspect | verify` library functions over shipped promtool blocks.

mod storage_support;

use skein_actors::shipper::{ExternalLabelsSource, Shipper, ShipperConfig, ShipperMetrics};
use skein_actors::store::tools::{BlockState, ToolError, inspect_block, list_blocks, verify_block};
use skein_objstore::{Bucket, ObjstoreConfig, ObjstoreMetrics, Ulid, block_path};
use storage_support::prometheus_data_dir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_inspect_verify() {
    let b = tempfile::tempdir().unwrap();
    let bucket = Bucket::from_config(
        &ObjstoreConfig::filesystem(b.path()),
        ObjstoreMetrics::default(),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    prometheus_data_dir(data.path(), 3, 5);
    let shipper = Shipper::new(
        ShipperConfig::new(data.path()),
        bucket.clone(),
        ExternalLabelsSource::from_pairs([("replica", "r1")]),
        ShipperMetrics::default(),
    );
    let ids = shipper.sync().await.unwrap().uploaded;
    let partial = Ulid::new();
    bucket
        .put(
            &block_path(partial, "index"),
            bytes::Bytes::from_static(b"x"),
        )
        .await
        .unwrap();
    bucket.mark_for_deletion(ids[1], "test").await.unwrap();

    let ls = list_blocks(&bucket).await.unwrap();
    assert_eq!(ls.len(), ids.len() + 1);
    let first = ls.iter().find(|l| l.id == ids[0]).unwrap();
    assert_eq!(first.state, BlockState::Complete);
    assert_eq!(first.labels.get("replica").map(String::as_str), Some("r1"));
    assert_eq!(first.source, "sidecar");
    assert_eq!(first.num_series, 6);
    let line = first.to_string();
    assert!(
        line.contains("series=6") && line.contains("replica=\"r1\""),
        "{line}"
    );
    assert_eq!(
        ls.iter().find(|l| l.id == ids[1]).unwrap().state,
        BlockState::MarkedForDeletion
    );
    let p = ls.iter().find(|l| l.id == partial).unwrap();
    assert_eq!(p.state, BlockState::Partial);
    assert!(p.to_string().ends_with("partial"));

    let ins = inspect_block(&bucket, ids[0]).await.unwrap();
    assert!(ins.open_error.is_none(), "{:?}", ins.open_error);
    let ix = ins.index.clone().unwrap();
    assert_eq!(ix.series, 6);
    let names: Vec<&str> = ix.label_names.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["__name__", "instance", "job"]);
    assert_eq!(ix.label_names[1].1, 3);
    assert!(ins.files.iter().any(|f| f.path.ends_with("chunks/000001")));
    assert!(ins.to_string().contains("6 series"));
    let ins = inspect_block(&bucket, partial).await.unwrap();
    assert!(ins.open_error.unwrap().contains("partial"));
    assert!(matches!(
        inspect_block(&bucket, Ulid::new()).await,
        Err(ToolError::NotFound(_))
    ));

    let v = verify_block(&bucket, ids[0]).await.unwrap();
    assert!(v.is_ok(), "{v}");
    let meta = bucket.block_meta(ids[0]).await.unwrap().unwrap();
    assert_eq!(v.series, meta.stats.num_series);
    assert_eq!(v.chunks, meta.stats.num_chunks);
    assert_eq!(v.samples, meta.stats.num_samples);
    assert!(v.to_string().contains("OK"));

    // A flipped byte in chunk data is found.
    let path = block_path(ids[0], "chunks/000001");
    let mut seg = bucket.get(&path).await.unwrap().to_vec();
    let mid = seg.len() / 2;
    seg[mid] ^= 0x40;
    bucket.put(&path, seg.into()).await.unwrap();
    let v = verify_block(&bucket, ids[0]).await.unwrap();
    assert!(!v.is_ok());
    assert!(v.problems.iter().any(|p| p.contains("CRC")), "{v}");
    // A block that cannot be opened is reported, not an error.
    let v = verify_block(&bucket, partial).await.unwrap();
    assert!(v.problems[0].contains("cannot open"), "{v}");
}
