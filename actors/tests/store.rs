//! The store over a bucket of promtool-written blocks shipped by the shipper: Series equal to
//! the source samples, matchers on series and external labels, time ranges, label APIs, Info,
//! corrupt and partial blocks skipped, local index headers, bounded caches; local directory
//! bucket and Garage.

mod storage_support;

use futures::StreamExt;
use prometheus_client::registry::Registry;
use skein_actors::shipper::{ExternalLabelsSource, Shipper, ShipperConfig, ShipperMetrics};
use skein_actors::store::metrics::StoreMetrics;
use skein_actors::store::{
    BucketSource, BucketStore, StoreActor, StoreConfig, StoreService, SyncNow,
};
use skein_objstore::{Bucket, ObjstoreConfig, ObjstoreMetrics, Ulid, block_path};
use skein_proto::thanos::info::InfoRequest;
use skein_proto::thanos::info::info_server::Info;
use skein_proto::thanos::store_server::Store;
use skein_proto::thanos::{
    LabelMatcher, LabelNamesRequest, LabelValuesRequest, SeriesRequest, series_response,
};
use skein_tsdb::chunkenc::decode_xor_all;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use storage_support::garage::Garage;
use storage_support::{Samples, block_dirs, prometheus_data_dir};
use tonic::Request;

type Got = BTreeMap<Vec<(String, String)>, Vec<(i64, f64)>>;

fn fs_bucket(dir: &Path) -> Bucket {
    Bucket::from_config(&ObjstoreConfig::filesystem(dir), ObjstoreMetrics::default()).unwrap()
}

/// Ships a fresh Prometheus data dir with external labels `ext` into `bucket`.
async fn ship(
    bucket: &Bucket,
    series: usize,
    hours: i64,
    ext: &[(&str, &str)],
) -> (Samples, Vec<Ulid>) {
    let data = tempfile::tempdir().unwrap();
    let samples = prometheus_data_dir(data.path(), series, hours);
    let s = Shipper::new(
        ShipperConfig::new(data.path()),
        bucket.clone(),
        ExternalLabelsSource::from_pairs(ext.iter().copied()),
        ShipperMetrics::default(),
    );
    let r = s.sync().await.unwrap();
    assert_eq!(r.uploaded.len(), block_dirs(data.path()).len());
    (samples, r.uploaded)
}

fn store_cfg(dir: &Path) -> StoreConfig {
    // The bucket is passed in directly; the source here is informational.
    StoreConfig::new(
        dir,
        BucketSource::Config(Box::new(ObjstoreConfig::filesystem("/nonexistent"))),
    )
}

async fn open_store(bucket: &Bucket, local: &Path, reg: &mut Registry) -> Arc<BucketStore> {
    let s = Arc::new(
        BucketStore::new(
            store_cfg(local),
            bucket.clone(),
            StoreMetrics::register(reg),
        )
        .unwrap(),
    );
    s.sync().await.unwrap();
    s
}

fn eq(name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: 0,
        name: name.into(),
        value: value.into(),
    }
}

fn re(name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: 2,
        name: name.into(),
        value: value.into(),
    }
}

async fn series(
    svc: &StoreService,
    min: i64,
    max: i64,
    ms: Vec<LabelMatcher>,
) -> (Got, Vec<String>) {
    let req = SeriesRequest {
        min_time: min,
        max_time: max,
        matchers: ms,
        ..Default::default()
    };
    let mut stream = svc.series(Request::new(req)).await.unwrap().into_inner();
    let mut got = Got::new();
    let mut warnings = Vec::new();
    let mut last: Option<Vec<(String, String)>> = None;
    while let Some(frame) = stream.next().await {
        match frame.unwrap().result.unwrap() {
            series_response::Result::Series(s) => {
                let labels: Vec<(String, String)> = s
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                let mut sorted = labels.clone();
                sorted.sort();
                assert_eq!(labels, sorted, "labels not sorted");
                if let Some(prev) = &last {
                    assert!(prev < &labels, "series not sorted / repeated");
                }
                last = Some(labels.clone());
                let v = got.entry(labels).or_default();
                for c in s.chunks {
                    let raw = c.raw.unwrap();
                    assert_eq!(raw.r#type, 0);
                    assert_eq!(raw.hash, xxhash_rust::xxh64::xxh64(&raw.data, 0));
                    let samples = decode_xor_all(&raw.data).unwrap();
                    assert_eq!(samples.first().unwrap().0, c.min_time);
                    assert_eq!(samples.last().unwrap().0, c.max_time);
                    v.extend(samples);
                }
            }
            series_response::Result::Warning(w) => warnings.push(w),
            other => panic!("unexpected frame {other:?}"),
        }
    }
    (got, warnings)
}

/// `samples` with the external labels added and restricted to chunks' coverage of [min, max].
fn expected(
    samples: &Samples,
    ext: &[(&str, &str)],
    keep: impl Fn(&[(String, String)]) -> bool,
) -> Got {
    samples
        .iter()
        .map(|(l, v)| {
            let mut l = l.clone();
            l.extend(ext.iter().map(|(a, b)| (a.to_string(), b.to_string())));
            l.sort();
            (l, v.clone())
        })
        .filter(|(l, _)| keep(l))
        .collect()
}

fn within(got: &Got, min: i64, max: i64) -> Got {
    got.iter()
        .map(|(l, v)| {
            (
                l.clone(),
                v.iter()
                    .copied()
                    .filter(|(t, _)| *t >= min && *t <= max)
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

fn metric(reg: &Registry, name: &str) -> f64 {
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, reg).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.parse().unwrap())
        .unwrap_or(0.0)
}

async fn serves_source_samples(bucket: Bucket) {
    let ext_a: &[(&str, &str)] = &[("cluster", "eu1"), ("replica", "a")];
    let ext_b: &[(&str, &str)] = &[("cluster", "us1"), ("replica", "a")];
    let (samples_a, ids_a) = ship(&bucket, 4, 7, ext_a).await;
    let (samples_b, _) = ship(&bucket, 2, 3, ext_b).await;
    let local = tempfile::tempdir().unwrap();
    let mut reg = Registry::default();
    let store = open_store(&bucket, local.path(), &mut reg).await;
    let svc = StoreService::from_store(store.clone(), &mut reg);
    assert_eq!(
        store.blocks().blocks.len(),
        ids_a.len() + block_count(&bucket).await - ids_a.len()
    );

    // Everything.
    let (got, warnings) = series(&svc, i64::MIN, i64::MAX, vec![]).await;
    assert!(warnings.is_empty());
    let mut want = expected(&samples_a, ext_a, |_| true);
    want.extend(expected(&samples_b, ext_b, |_| true));
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);

    // Series matchers and external-label matchers.
    let (got, _) = series(
        &svc,
        i64::MIN,
        i64::MAX,
        vec![eq("job", "api"), eq("cluster", "eu1")],
    )
    .await;
    let want = expected(&samples_a, ext_a, |l| {
        l.iter().any(|(n, v)| n == "job" && v == "api")
    });
    assert_eq!(got, want);
    assert_eq!(got.len(), 4); // 2 of 4 hosts, 2 metrics
    let (got, _) = series(&svc, i64::MIN, i64::MAX, vec![eq("cluster", "nowhere")]).await;
    assert!(got.is_empty());
    let (got, _) = series(
        &svc,
        i64::MIN,
        i64::MAX,
        vec![re("cluster", "us.*"), eq("__name__", "node_load")],
    )
    .await;
    assert_eq!(
        got,
        expected(&samples_b, ext_b, |l| l
            .iter()
            .any(|(n, v)| n == "__name__" && v == "node_load"))
    );

    // A time range inside the data: every sample in range comes back; chunks may reach out.
    let (min, max) = (
        storage_support::START_MS + 2 * 3_600_000 + 123_000,
        storage_support::START_MS + 3 * 3_600_000,
    );
    let (got, _) = series(&svc, min, max, vec![eq("cluster", "eu1")]).await;
    assert_eq!(
        within(&got, min, max),
        within(&expected(&samples_a, ext_a, |_| true), min, max)
    );
    // A range before all data.
    let (got, _) = series(&svc, 0, 1000, vec![]).await;
    assert!(got.is_empty());

    // Labels.
    let names = svc
        .label_names(Request::new(LabelNamesRequest {
            start: 0,
            end: i64::MAX,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .names;
    assert_eq!(names, ["__name__", "cluster", "instance", "job", "replica"]);
    let vals = |label: &str, ms: Vec<LabelMatcher>| {
        let svc = svc.clone();
        let label = label.to_string();
        async move {
            svc.label_values(Request::new(LabelValuesRequest {
                label,
                start: 0,
                end: i64::MAX,
                matchers: ms,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .values
        }
    };
    assert_eq!(vals("cluster", vec![]).await, ["eu1", "us1"]);
    assert_eq!(
        vals("instance", vec![eq("cluster", "us1")]).await,
        ["host-0", "host-1"]
    );
    assert_eq!(
        vals("instance", vec![]).await,
        ["host-0", "host-1", "host-2", "host-3"]
    );
    assert_eq!(vals("job", vec![eq("instance", "host-1")]).await, ["db"]);
    let names = svc
        .label_names(Request::new(LabelNamesRequest {
            start: 0,
            end: i64::MAX,
            without_replica_labels: vec!["replica".into()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .names;
    assert_eq!(names, ["__name__", "cluster", "instance", "job"]);

    // Info.
    let info = svc
        .info(Request::new(InfoRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.component_type, "store");
    assert_eq!(info.label_sets.len(), 2);
    let st = info.store.unwrap();
    assert_eq!(st.min_time, storage_support::START_MS);
    assert!(st.max_time > storage_support::START_MS + 6 * 3_600_000);
    assert_eq!(st.tsdb_infos.len(), store.blocks().blocks.len());

    // Bad matcher → InvalidArgument.
    let bad = SeriesRequest {
        min_time: 0,
        max_time: 1,
        matchers: vec![re("a", "(")],
        ..Default::default()
    };
    assert_eq!(
        svc.series(Request::new(bad)).await.err().unwrap().code(),
        tonic::Code::InvalidArgument
    );

    // Index headers are on local disk; reads went through the caches.
    for id in store.blocks().blocks.keys() {
        assert!(
            local
                .path()
                .join(id.to_string())
                .join("index-header")
                .is_file()
        );
    }
    assert!(metric(&reg, "skein_store_chunk_cache_misses_total") > 0.0);
    assert_eq!(
        metric(&reg, "skein_store_blocks_loaded"),
        store.blocks().blocks.len() as f64
    );
    assert_eq!(metric(&reg, "skein_store_block_load_failures_total"), 0.0);

    // A second query is answered from the caches.
    let hits = metric(&reg, "skein_store_chunk_cache_hits_total");
    series(&svc, i64::MIN, i64::MAX, vec![]).await;
    assert!(metric(&reg, "skein_store_chunk_cache_hits_total") > hits);

    // Deleted and marked blocks are dropped at the next sync.
    bucket.mark_for_deletion(ids_a[0], "test").await.unwrap();
    let r = store.sync().await.unwrap();
    assert_eq!(r.dropped, vec![ids_a[0]]);
    assert!(!local.path().join(ids_a[0].to_string()).exists());
    bucket.delete_block(ids_a[1]).await.unwrap();
    let r = store.sync().await.unwrap();
    assert_eq!(r.dropped, vec![ids_a[1]]);
}

async fn block_count(bucket: &Bucket) -> usize {
    bucket.list_block_ids().await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_store_serves_source_samples() {
    let b = tempfile::tempdir().unwrap();
    serves_source_samples(fs_bucket(b.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_store_serves_source_samples() {
    let Some(g) = Garage::start() else { return };
    let bucket = Bucket::from_config(
        &ObjstoreConfig::from_yaml(&g.objstore_yaml(None)).unwrap(),
        ObjstoreMetrics::default(),
    )
    .unwrap();
    serves_source_samples(bucket).await;
}

/// Copies block `src` to a new id inside the bucket with `edit` applied to its files.
async fn corrupt_copy(
    bucket: &Bucket,
    src: Ulid,
    edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>,
) -> Ulid {
    let id = Ulid::new();
    let objs = bucket.list_objects(&src.to_string()).await.unwrap();
    let mut meta = None;
    for o in objs {
        let rel = o.path.strip_prefix(&format!("{src}/")).unwrap().to_string();
        let data = bucket.get(&o.path).await.unwrap().to_vec();
        if rel == "meta.json" {
            let mut v: serde_json::Value = serde_json::from_slice(&data).unwrap();
            v["ulid"] = id.to_string().into();
            meta = Some(serde_json::to_vec(&v).unwrap());
            continue;
        }
        if let Some(d) = edit(&rel, data) {
            bucket.put(&block_path(id, &rel), d.into()).await.unwrap();
        }
    }
    bucket
        .put(&block_path(id, "meta.json"), meta.unwrap().into())
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_partial_blocks_are_skipped() {
    let b = tempfile::tempdir().unwrap();
    let bucket = fs_bucket(b.path());
    let ext: &[(&str, &str)] = &[("replica", "a")];
    let (samples, ids) = ship(&bucket, 2, 3, ext).await;
    let good = ids[0];
    // Truncated index.
    let truncated = corrupt_copy(&bucket, good, |rel, mut d| {
        if rel == "index" {
            d.truncate(d.len() / 2);
        }
        Some(d)
    })
    .await;
    // Bad CRC in the symbol table (a byte flipped inside the first symbol).
    let bad_crc = corrupt_copy(&bucket, good, |rel, mut d| {
        if rel == "index" {
            d[5 + 4 + 4 + 2] ^= 0x55;
        }
        Some(d)
    })
    .await;
    // Missing chunk file.
    let no_chunks = corrupt_copy(&bucket, good, |rel, d| {
        (rel != "chunks/000001").then_some(d)
    })
    .await;
    // Partial upload: data but no meta.json.
    let partial = Ulid::new();
    bucket
        .put(
            &block_path(partial, "index"),
            bucket.get(&block_path(good, "index")).await.unwrap(),
        )
        .await
        .unwrap();

    let local = tempfile::tempdir().unwrap();
    let mut reg = Registry::default();
    let store = Arc::new(
        BucketStore::new(
            store_cfg(local.path()),
            bucket.clone(),
            StoreMetrics::register(&mut reg),
        )
        .unwrap(),
    );
    let r = store.sync().await.unwrap();
    let mut failed: Vec<Ulid> = r.failed.iter().map(|(id, _)| *id).collect();
    failed.sort();
    let mut want = vec![truncated, bad_crc, no_chunks];
    want.sort();
    assert_eq!(failed, want, "{:?}", r.failed);
    assert_eq!(r.partial, vec![partial]);
    assert_eq!(r.loaded, ids);
    assert_eq!(metric(&reg, "skein_store_block_load_failures_total"), 3.0);
    for (id, why) in &r.failed {
        eprintln!("{id}: {why}");
    }
    // The healthy blocks keep serving everything.
    let svc = StoreService::from_store(store.clone(), &mut reg);
    let (got, warnings) = series(&svc, i64::MIN, i64::MAX, vec![]).await;
    assert!(warnings.is_empty());
    assert_eq!(got, expected(&samples, ext, |_| true));
    // Failed blocks are retried (and fail again) on the next sync.
    let r = store.sync().await.unwrap();
    assert_eq!(r.failed.len(), 3);
    assert_eq!(metric(&reg, "skein_store_block_load_failures_total"), 6.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_header_is_reused_and_rebuilt_when_corrupt() {
    let b = tempfile::tempdir().unwrap();
    let bucket = fs_bucket(b.path());
    let ext: &[(&str, &str)] = &[("replica", "a")];
    let (samples, ids) = ship(&bucket, 2, 3, ext).await;
    let local = tempfile::tempdir().unwrap();
    let mut reg = Registry::default();
    let store = open_store(&bucket, local.path(), &mut reg).await;
    let header = local.path().join(ids[0].to_string()).join("index-header");
    let before = std::fs::read(&header).unwrap();
    drop(store);
    // Restart with an intact header: reused as is.
    let mut reg2 = Registry::default();
    open_store(&bucket, local.path(), &mut reg2).await;
    assert_eq!(std::fs::read(&header).unwrap(), before);
    // Corrupt it: rebuilt from the bucket, queries still right.
    let mut bad = before.clone();
    let n = bad.len();
    bad[n / 2] ^= 0xff;
    std::fs::write(&header, &bad).unwrap();
    let mut reg3 = Registry::default();
    let store = open_store(&bucket, local.path(), &mut reg3).await;
    assert_eq!(std::fs::read(&header).unwrap(), before);
    let svc = StoreService::from_store(store, &mut reg3);
    let (got, _) = series(&svc, i64::MIN, i64::MAX, vec![]).await;
    assert_eq!(got, expected(&samples, ext, |_| true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_stay_within_their_bounds() {
    let b = tempfile::tempdir().unwrap();
    let bucket = fs_bucket(b.path());
    let ext: &[(&str, &str)] = &[("replica", "a")];
    let (samples, _) = ship(&bucket, 6, 5, ext).await;
    let local = tempfile::tempdir().unwrap();
    let mut cfg = store_cfg(local.path());
    cfg.chunk_cache_bytes = 8 << 10;
    cfg.index_cache_bytes = 4 << 10;
    cfg.chunk_page_bytes = 1 << 10;
    cfg.index_page_bytes = 1 << 10;
    let mut reg = Registry::default();
    let store = Arc::new(BucketStore::new(cfg, bucket, StoreMetrics::register(&mut reg)).unwrap());
    store.sync().await.unwrap();
    let svc = StoreService::from_store(store, &mut reg);
    let (got, _) = series(&svc, i64::MIN, i64::MAX, vec![]).await;
    assert_eq!(got, expected(&samples, ext, |_| true));
    assert!(metric(&reg, "skein_store_chunk_cache_bytes") <= (8 << 10) as f64);
    assert!(metric(&reg, "skein_store_index_cache_bytes") <= (4 << 10) as f64);
    assert!(metric(&reg, "skein_store_chunk_cache_evictions_total") > 0.0);
}

#[test]
fn actor_and_service_over_objstore_config_file() {
    let b = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let yml = b.path().join("objstore.yml");
    std::fs::write(
        &yml,
        format!(
            "type: FILESYSTEM\nconfig:\n  directory: {}/bucket\n",
            b.path().display()
        ),
    )
    .unwrap();
    let sys = actix::System::new();
    sys.block_on(async {
        let bucket = fs_bucket(&b.path().join("bucket"));
        let ext: &[(&str, &str)] = &[("replica", "z")];
        let (samples, _) = ship(&bucket, 1, 3, ext).await;
        let mut reg = Registry::default();
        let cfg = StoreConfig::new(local.path(), BucketSource::ConfigFile(yml.clone()));
        let actor = StoreActor::new(cfg, &mut reg).unwrap();
        let addr = actix::Actor::start(actor);
        let svc = StoreService::new(addr.clone(), &mut reg);
        let r = addr.send(SyncNow).await.unwrap().unwrap();
        assert_eq!(r.failed.len(), 0);
        let (got, _) = series(&svc, i64::MIN, i64::MAX, vec![]).await;
        assert_eq!(got, expected(&samples, ext, |_| true));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        assert!(
            text.contains("skein_store_requests_total{api=\"series\",outcome=\"success\"}"),
            "{text}"
        );
        assert!(text.contains("skein_objstore_operations_total"));
    });
}

#[test]
fn store_outside_a_runtime_is_an_error() {
    let local = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let e = BucketStore::new(
        store_cfg(local.path()),
        fs_bucket(b.path()),
        StoreMetrics::default(),
    );
    assert!(matches!(e, Err(skein_actors::store::StoreError::NoRuntime)));
}

/// A query for one series reads a small part of the bucket: index header sections come from
/// local disk, postings/series/chunks by ranged GETs of a few pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selective_query_reads_a_fraction_of_the_bucket() {
    let b = tempfile::tempdir().unwrap();
    let mut reg = Registry::default();
    let bucket = Bucket::from_config(
        &ObjstoreConfig::filesystem(b.path()),
        ObjstoreMetrics::register(&mut reg),
    )
    .unwrap();
    let ext: &[(&str, &str)] = &[("replica", "a")];
    let (samples, _) = ship(&bucket, 500, 4, ext).await;
    let total: u64 = bucket
        .list_objects("")
        .await
        .unwrap()
        .iter()
        .map(|o| o.size)
        .sum();
    let local = tempfile::tempdir().unwrap();
    let store = open_store(&bucket, local.path(), &mut reg).await;
    let svc = StoreService::from_store(store, &mut reg);
    let read = |reg: &Registry| {
        metric(reg, "skein_objstore_bytes_total{operation=\"get_range\"}")
            + metric(reg, "skein_objstore_bytes_total{operation=\"get\"}")
    };
    let before = read(&reg);
    let (got, _) = series(&svc, i64::MIN, i64::MAX, vec![eq("instance", "host-7")]).await;
    let used = read(&reg) - before;
    assert_eq!(
        got,
        expected(&samples, ext, |l| l
            .iter()
            .any(|(n, v)| n == "instance" && v == "host-7"))
    );
    eprintln!(
        "bucket {total} bytes; query for 1 instance (2 series) fetched {used} bytes ({:.1}%)",
        100.0 * used / total as f64
    );
    assert!(used < total as f64 * 0.15, "{used} of {total}");
}

/// Over gRPC: a tonic server with the store's Store and Info services, queried with the
/// generated clients (batched and unbatched Series, Info while not ready and after).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_round_trip() {
    use skein_proto::thanos::info::info_client::InfoClient;
    use skein_proto::thanos::info::info_server::InfoServer;
    use skein_proto::thanos::store_client::StoreClient;
    use skein_proto::thanos::store_server::StoreServer;

    let b = tempfile::tempdir().unwrap();
    let bucket = fs_bucket(b.path());
    let ext: &[(&str, &str)] = &[("replica", "g")];
    let (samples, _) = ship(&bucket, 3, 3, ext).await;
    let local = tempfile::tempdir().unwrap();
    let mut reg = Registry::default();
    let store = Arc::new(
        BucketStore::new(
            store_cfg(local.path()),
            bucket,
            StoreMetrics::register(&mut reg),
        )
        .unwrap(),
    );
    let svc = StoreService::from_store(store.clone(), &mut reg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(StoreServer::new(svc.clone()))
            .add_service(InfoServer::new(svc))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut info = InfoClient::new(channel.clone());
    let mut client = StoreClient::new(channel);
    // Not synced yet: unavailable.
    let e = info.info(InfoRequest {}).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable);
    store.sync().await.unwrap();
    let i = info.info(InfoRequest {}).await.unwrap().into_inner();
    assert_eq!(i.label_sets[0].labels[0].name, "replica");
    for batch in [0, 4] {
        let req = SeriesRequest {
            min_time: i64::MIN,
            max_time: i64::MAX,
            matchers: vec![eq("__name__", "node_temp")],
            response_batch_size: batch,
            ..Default::default()
        };
        let mut stream = client.series(req).await.unwrap().into_inner();
        let mut got = Got::new();
        let mut frames = 0;
        while let Some(frame) = stream.message().await.unwrap() {
            frames += 1;
            let list = match frame.result.unwrap() {
                series_response::Result::Series(s) => vec![s],
                series_response::Result::Batch(b) => b.series,
                other => panic!("{other:?}"),
            };
            for s in list {
                let labels = s
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                let v: &mut Vec<(i64, f64)> = got.entry(labels).or_default();
                for c in s.chunks {
                    v.extend(decode_xor_all(&c.raw.unwrap().data).unwrap());
                }
            }
        }
        assert_eq!(
            got,
            expected(&samples, ext, |l| l
                .iter()
                .any(|(n, v)| n == "__name__" && v == "node_temp"))
        );
        assert_eq!(frames, if batch == 0 { 3 } else { 1 });
    }
    let vals = client
        .label_values(LabelValuesRequest {
            label: "job".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .values;
    assert_eq!(vals, ["api", "db"]);
}

/// With a deletion-mark delay, a freshly marked block keeps serving; an old mark drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_marks_respect_the_delay() {
    let b = tempfile::tempdir().unwrap();
    let bucket = fs_bucket(b.path());
    let (_, ids) = ship(&bucket, 1, 3, &[("replica", "a")]).await;
    let local = tempfile::tempdir().unwrap();
    let mut cfg = store_cfg(local.path());
    cfg.ignore_deletion_marks_delay = std::time::Duration::from_secs(3600);
    let store = BucketStore::new(cfg, bucket.clone(), StoreMetrics::default()).unwrap();
    bucket.mark_for_deletion(ids[0], "fresh").await.unwrap();
    let r = store.sync().await.unwrap();
    assert!(r.loaded.contains(&ids[0]) && r.marked.is_empty(), "{r:?}");
    // Backdate the mark by two hours.
    let mark = skein_objstore::DeletionMark {
        id: ids[0],
        version: 1,
        details: None,
        deletion_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - 7200,
    };
    bucket
        .put(
            &block_path(ids[0], "deletion-mark.json"),
            serde_json::to_vec(&mark).unwrap().into(),
        )
        .await
        .unwrap();
    let r = store.sync().await.unwrap();
    assert_eq!(r.marked, vec![ids[0]]);
    assert_eq!(r.dropped, vec![ids[0]]);
}
