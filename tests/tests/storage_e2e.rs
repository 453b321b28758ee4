//! Blocks shipped to object storage and served by a store node answer like the
//! Prometheus that wrote them.
//!
//! Set-up of the differential tests (against a local FILESYSTEM bucket and a
//! real Garage S3 bucket): Prometheus eu1 and us1, each on generated data (3 h,
//! samples jittered off the 15 s grid) turned into blocks by `promtool tsdb
//! create-blocks-from openmetrics`, started with 2 h min/max block durations so
//! it compacts nothing; a skein sidecar next to each with the shipper on; once
//! `thanos.shipper.json` lists every block and `skein tools bucket verify`
//! passes, a store node over the bucket and a querier over ONLY the store. The
//! querier must then answer the standard query cases like the two Prometheus
//! servers (their answers with the `cluster` external label added, see
//! src/cases.rs).
//!
//! Then: a live Prometheus cutting real blocks (30 s block duration); a sidecar
//! killed with SIGKILL in the middle of block uploads (FILESYSTEM and Garage)
//! while a store node syncs the same bucket; corrupt blocks in the bucket.
//! Garage missing: those tests print SKIP and pass, except with CI=true.
//!
//! Tests run one at a time (a process-wide lock): each starts up to seven
//! processes and the machine has two cores.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use skein_e2e::blocks::{LocalBlock, local_blocks, shipper_record};
use skein_e2e::bucket::TestBucket;
use skein_e2e::case_list::{plan, standard_cases};
use skein_e2e::cases::{Case, Eval, check};
use skein_e2e::compare::{add_labels, compare};
use skein_e2e::datagen::{DataSpec, Dataset, SLOT_MS};
use skein_e2e::fixture::{Cluster, Clusters, WINDOW_END_BEFORE_NOW_MS, start_clusters_with_args};
use skein_e2e::labels::{LabelSet, label_set};
use skein_e2e::live::LivePrometheus;
use skein_e2e::prometheus::PrometheusServer;
use skein_e2e::scrape::{fetch, metric, metric_sum};
use skein_e2e::skein::SkeinNode;
use skein_e2e::storage::{
    blocks_to_ship, no_compaction_args, shipper_args, spawn_node, start_store,
    wait_clusters_visible, wait_recorded, wait_store_at_least, wait_store_blocks,
};
use skein_e2e::store_watch::StoreWatch;
use skein_e2e::timefmt::now_ms;
use skein_e2e::wait::{Poll, poll, poll_until};
use skein_e2e::xorshift::XorShift64;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Each block id appears exactly once in `ids`.
fn assert_each_once(what: &str, ids: &[String], want: &BTreeSet<String>) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in ids {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dups.is_empty(),
        "{what}: ids listed more than once: {dups:?}"
    );
    let got: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(&got, want, "{what}: block ids differ from the local blocks");
}

/// Start a shipping sidecar per cluster, wait until every block is recorded as
/// shipped, and check the bucket: each block once, complete, `verify` OK.
/// Returns the sidecars (still running) and all shipped blocks.
fn ship_all(clusters: &Clusters, bucket: &TestBucket) -> (Vec<SkeinNode>, Vec<LocalBlock>) {
    let dir = clusters.dir.path();
    let mut sidecars = Vec::new();
    let mut all = Vec::new();
    for c in &clusters.clusters {
        let data_dir = &c.prometheus.data_dir;
        let blocks = blocks_to_ship(data_dir).unwrap();
        let mut sidecar = SkeinNode::start_sidecar(
            dir,
            &format!("sidecar-{}", c.name),
            &c.prometheus.url,
            &shipper_args(data_dir, bucket, "2s"),
        )
        .unwrap();
        wait_recorded(data_dir, &blocks, &mut sidecar, Duration::from_secs(60)).unwrap();
        let record = shipper_record(data_dir).unwrap().unwrap_or_default();
        let want: BTreeSet<String> = blocks.iter().map(|b| b.id.clone()).collect();
        assert_each_once(&format!("{} shipper record", c.name), &record, &want);
        sidecars.push(sidecar);
        all.extend(blocks);
    }
    let listed = bucket.ls().unwrap();
    let want: BTreeSet<String> = all.iter().map(|b| b.id.clone()).collect();
    let ids: Vec<String> = listed.iter().map(|b| b.id.clone()).collect();
    assert_each_once(&format!("{} bucket ls", bucket.kind), &ids, &want);
    for b in &listed {
        assert_eq!(b.state, "complete", "{}", b.line);
    }
    let v = bucket.verify(&[]).unwrap();
    assert!(
        v.ok,
        "verify failed on a freshly shipped {} bucket:\n{}\n{}",
        bucket.kind, v.stdout, v.stderr
    );
    assert!(
        v.stdout
            .contains(&format!("{} block(s) checked, 0 broken", all.len())),
        "{}",
        v.stdout
    );
    (sidecars, all)
}

/// The whole differential check on one bucket kind.
fn shipped_blocks_answer_like_prometheus(
    make_bucket: impl FnOnce(&Path) -> anyhow::Result<Option<TestBucket>>,
) {
    let clusters = start_clusters_with_args(DataSpec::small, &no_compaction_args()).unwrap();
    let dir = clusters.dir.path();
    let Some(bucket) = make_bucket(dir).unwrap() else {
        return;
    };
    let (_sidecars, blocks) = ship_all(&clusters, &bucket);
    println!(
        "{}: {} blocks shipped and verified",
        bucket.kind,
        blocks.len()
    );

    let store = start_store(dir, "store", &bucket, "1s", &[]).unwrap();
    wait_store_blocks(&store, blocks.len(), Duration::from_secs(30)).unwrap();
    let extra = ["--query.info-interval".to_string(), "1s".to_string()];
    let querier =
        SkeinNode::start_querier(dir, "querier", &[store.store_address()], &extra).unwrap();
    let (start, end) = clusters.window();
    let names: Vec<&str> = clusters.clusters.iter().map(|c| c.name.as_str()).collect();
    wait_clusters_visible(
        &querier.client,
        "gen_queue_depth",
        &names,
        end,
        Duration::from_secs(30),
    )
    .unwrap();

    let cases = standard_cases(clusters.clusters.len());
    let (mut instant, mut range) = (0usize, 0usize);
    let mut failures = Vec::new();
    for (case, codes) in &cases {
        for eval in plan(codes, start, end) {
            match eval {
                Eval::Instant(_) => instant += 1,
                Eval::Range(..) => range += 1,
            }
            if let Err(e) = check(&querier.client, &clusters.clusters, case, eval) {
                failures.push(e);
            }
        }
    }
    println!(
        "{}: {} cases, {instant} instant + {range} range checks, {} failed",
        bucket.kind,
        cases.len(),
        failures.len()
    );
    assert!(instant >= 20 && range >= 20, "too few checks");
    assert!(
        failures.is_empty(),
        "{} of {} checks failed through the store over the {} bucket:\n{}",
        failures.len(),
        instant + range,
        bucket.kind,
        failures.join("\n\n")
    );
}

#[test]
fn filesystem_bucket_store_answers_like_prometheus() {
    let _serial = serial();
    shipped_blocks_answer_like_prometheus(|dir| TestBucket::filesystem(dir, "bucket").map(Some));
}

#[test]
fn garage_bucket_store_answers_like_prometheus() {
    let _serial = serial();
    shipped_blocks_answer_like_prometheus(TestBucket::garage);
}

/// A Prometheus cutting real blocks from its own scrapes (1 s scrapes, 30 s
/// blocks): the sidecar ships the first block it cuts, the store serves it, and
/// every raw sample of that block read through the querier (which knows only
/// the store) equals Prometheus's, as does a range query over the block.
#[test]
fn live_prometheus_block_is_shipped_and_served() {
    let _serial = serial();
    let tmp = tempfile::Builder::new()
        .prefix("skein-e2e-live-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let bucket = TestBucket::filesystem(dir, "bucket").unwrap();
    let labels = label_set(&[("cluster", "live")]);
    let prom = LivePrometheus::start(dir, "prometheus-live", &labels, "30s").unwrap();
    let mut sidecar = SkeinNode::start_sidecar(
        dir,
        "sidecar-live",
        &prom.url,
        &shipper_args(&prom.data_dir, &bucket, "1s"),
    )
    .unwrap();
    let store = start_store(dir, "store", &bucket, "1s", &[]).unwrap();
    let extra = ["--query.info-interval".to_string(), "1s".to_string()];
    let querier =
        SkeinNode::start_querier(dir, "querier", &[store.store_address()], &extra).unwrap();

    // Prometheus cuts its first block once its head spans 45 s (about a minute).
    let block = poll(
        "Prometheus to cut a block and the sidecar to ship it",
        Duration::from_secs(110),
        Duration::from_millis(500),
        || {
            if let Some(st) = sidecar.exited() {
                return Poll::Fatal(anyhow::anyhow!("sidecar exited: {st}"));
            }
            let blocks = match local_blocks(&prom.data_dir) {
                Ok(b) => b,
                Err(e) => return Poll::Pending(format!("{e:#}")),
            };
            let Some(first) = blocks.first() else {
                return Poll::Pending("no block cut yet".into());
            };
            match shipper_record(&prom.data_dir) {
                Ok(Some(rec)) if rec.contains(&first.id) => Poll::Ready(first.clone()),
                other => Poll::Pending(format!("block {} not shipped yet: {other:?}", first.id)),
            }
        },
    )
    .unwrap();
    assert_eq!(block.level, 1);
    println!(
        "live block {} [{}, {}) with {} series, {} samples shipped",
        block.id, block.min_time, block.max_time, block.num_series, block.num_samples
    );
    let v = bucket.verify(&[&block.id]).unwrap();
    assert!(v.ok, "verify of the live block failed:\n{}", v.stdout);
    wait_store_at_least(&store, 1, Duration::from_secs(30)).unwrap();

    // Every raw sample of the block: a range selector at the block's last
    // millisecond reaching back to its first sample.
    let at = block.max_time - 1;
    let raw = format!(
        "{{__name__=~\".+\"}}[{}ms]",
        block.max_time - block.min_time
    );
    let want = add_labels(prom.client.query(&raw, at).unwrap(), &labels);
    assert!(
        want.series_count() > 50 && want.point_count() as u64 == block.num_samples,
        "Prometheus answer ({} series, {} points) is not the whole block ({} samples)",
        want.series_count(),
        want.point_count(),
        block.num_samples
    );
    // The querier discovers the store asynchronously: retry until equal.
    let outcome = poll_until(
        "querier answer equal to Prometheus over the live block",
        Duration::from_secs(30),
        Duration::from_millis(500),
        || {
            let got = querier.client.query(&raw, at)?;
            compare(&want, &got).map_err(|d| anyhow::anyhow!("{d}"))?;
            Ok(Some(()))
        },
    );
    outcome.unwrap();

    // A range query at 1 s steps inside the block.
    let q = "sum by (__name__) ({__name__=~\"prometheus_(http|tsdb)_.+\"})";
    let want = add_labels(
        prom.client
            .query_range(q, block.min_time, at, 1000)
            .unwrap(),
        &LabelSet::new(),
    );
    let got = querier
        .client
        .query_range(q, block.min_time, at, 1000)
        .unwrap();
    assert!(want.series_count() > 10);
    compare(&want, &got).unwrap();
}

/// One cluster's Prometheus on larger data (1000 wide series + the standard
/// families, `hours` of 15 s samples: one 2 h block per 2 h).
fn big_cluster(dir: &Path, hours: usize, wide: usize) -> Cluster {
    let end = now_ms() - WINDOW_END_BEFORE_NOW_MS;
    let end = end - end.rem_euclid(SLOT_MS);
    let slots = hours * 3600 * 1000 / SLOT_MS as usize;
    let spec = DataSpec {
        seed: 7,
        start_ms: end - slots as i64 * SLOT_MS,
        slots,
        jobs: vec!["api".into(), "db".into()],
        instances_per_job: 2,
        wide_series: wide,
    };
    let dataset = Dataset::generate(spec).unwrap();
    let labels = label_set(&[("cluster", "eu1")]);
    let prometheus = PrometheusServer::start_with_args(
        dir,
        "prometheus-eu1",
        &labels,
        Some(&dataset),
        &no_compaction_args(),
    )
    .unwrap();
    Cluster {
        name: "eu1".into(),
        external_labels: labels,
        dataset,
        prometheus,
    }
}

/// What the bucket looked like when a sidecar was killed.
#[derive(Debug)]
struct KillPoint {
    target_dirs: usize,
    dirs: usize,
    complete: usize,
    partial: bool,
}

/// kill -9 a shipping sidecar at random moments while the bucket holds some
/// but not all blocks (several attempts, bounded), restart it, and check that
/// every block ends up in the bucket exactly once, complete, verified, and
/// recorded once; a store node syncing every 200 ms meanwhile never serves more
/// blocks than the bucket holds complete, never fails to load one, and loads
/// each block once; the querier over the store then answers like Prometheus.
#[test]
fn sidecar_killed_while_shipping_ships_every_block_once() {
    let _serial = serial();
    crash_while_shipping(|dir| TestBucket::filesystem(dir, "bucket").map(Some));
}

/// The same crash test against a Garage S3 bucket (block states from
/// `skein tools bucket ls`).
#[test]
fn sidecar_killed_while_shipping_to_garage_ships_every_block_once() {
    let _serial = serial();
    crash_while_shipping(TestBucket::garage);
}

fn crash_while_shipping(make_bucket: impl FnOnce(&Path) -> anyhow::Result<Option<TestBucket>>) {
    let tmp = tempfile::Builder::new()
        .prefix("skein-e2e-crash-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let Some(bucket) = make_bucket(dir).unwrap() else {
        return;
    };
    let bucket = Arc::new(bucket);
    let cluster = big_cluster(dir, 24, 1000);
    let data_dir = cluster.prometheus.data_dir.clone();
    let blocks = blocks_to_ship(&data_dir).unwrap();
    let n = blocks.len();
    assert!(n >= 8, "want many blocks, got {n}");
    let want: BTreeSet<String> = blocks.iter().map(|b| b.id.clone()).collect();

    let store = start_store(dir, "store", &bucket, "200ms", &[]).unwrap();
    let watch = StoreWatch::start(
        store.client.clone(),
        bucket.clone(),
        Duration::from_millis(25),
    );

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut rng = XorShift64::new(seed);
    println!("crash test ({}): {n} blocks, kill seed {seed}", bucket.kind);
    let sidecar_args = {
        let mut a = vec![
            "--roles".to_string(),
            "sidecar".to_string(),
            "--sidecar.prometheus-url".to_string(),
            cluster.prometheus.url.clone(),
        ];
        a.extend(shipper_args(&data_dir, &bucket, "1s"));
        a
    };
    let mut kills: Vec<KillPoint> = Vec::new();
    for attempt in 0..4 {
        let dirs_now = bucket.block_states().unwrap().len();
        if dirs_now + 1 >= n {
            break;
        }
        // Kill once `target` blocks are (being) uploaded: more than now, at most
        // n - 1 (some, never all). FILESYSTEM: watch the bucket directory itself
        // (1 ms polls). S3: a listing through the tool takes longer than an
        // upload, so watch the sidecar's own object-store writes (per block:
        // chunks/000001, index, meta.json, each counted when it starts) and kill
        // when the index write of the target block has started: its chunks are
        // in the bucket, its meta.json is not.
        let target = rng.range_i64(dirs_now as i64 + 1, n as i64 - 1) as usize;
        let writes_at_kill = 3 * (target - dirs_now - 1) + 2;
        let fs = bucket.fs_root.is_some();
        let mut node = spawn_node(dir, &format!("sidecar-{attempt}"), &sidecar_args).unwrap();
        let at = poll(
            "the bucket to reach the kill point",
            Duration::from_secs(60),
            Duration::from_millis(1),
            || {
                if let Some(st) = node.guard.exited() {
                    return Poll::Fatal(anyhow::anyhow!(
                        "sidecar exited by itself: {st}\n{}",
                        node.guard.log_tail(20)
                    ));
                }
                if fs {
                    return match bucket.block_states() {
                        Ok(d) if d.len() >= target => Poll::Ready(()),
                        Ok(d) => Poll::Pending(format!("{} block dirs", d.len())),
                        Err(e) => Poll::Pending(format!("{e:#}")),
                    };
                }
                match fetch(&node.client) {
                    Ok(text) => {
                        let writes: f64 = ["upload", "put"]
                            .iter()
                            .filter_map(|op| {
                                metric_sum(
                                    &text,
                                    &format!(
                                        "skein_objstore_operations_total{{operation=\"{op}\"}}"
                                    ),
                                )
                            })
                            .sum();
                        if writes as usize >= writes_at_kill {
                            Poll::Ready(())
                        } else {
                            Poll::Pending(format!("{writes} object writes"))
                        }
                    }
                    Err(e) => Poll::Pending(format!("{e:#}")),
                }
            },
        );
        node.guard.kill();
        at.unwrap();
        let d = bucket.block_states().unwrap();
        let kp = KillPoint {
            target_dirs: target,
            dirs: d.len(),
            complete: d.iter().filter(|(_, c)| *c).count(),
            partial: d.iter().any(|(_, c)| !c),
        };
        println!(
            "attempt {attempt}: SIGKILL at kill point {}: {} block dirs, {} complete, partial block present: {}",
            kp.target_dirs, kp.dirs, kp.complete, kp.partial
        );
        // The record is rewritten atomically: it always parses.
        let rec = shipper_record(&data_dir).unwrap().unwrap_or_default();
        assert!(
            rec.len() <= kp.complete,
            "record {rec:?} ahead of the bucket"
        );
        kills.push(kp);
    }
    assert!(
        kills.iter().any(|k| k.complete > 0 && k.complete < n),
        "no kill landed while the bucket held some but not all blocks: {kills:?}"
    );
    assert!(
        kills.iter().any(|k| k.partial),
        "no kill landed in the middle of a block upload: {kills:?}"
    );

    let mut sidecar = SkeinNode::start(dir, "sidecar-final", &sidecar_args).unwrap();
    wait_recorded(&data_dir, &blocks, &mut sidecar, Duration::from_secs(60)).unwrap();
    wait_store_blocks(&store, n, Duration::from_secs(30)).unwrap();
    let report = watch.stop();
    println!(
        "store watch: {} polls, {} with partial blocks in the bucket, max loaded {}, errors {}",
        report.polls, report.polls_with_partial_blocks, report.max_loaded, report.errors
    );
    assert!(report.polls > 20, "store watch barely ran: {report:?}");
    assert!(
        report.violations.is_empty(),
        "store served incomplete blocks:\n{}",
        report.violations.join("\n")
    );

    let record = shipper_record(&data_dir).unwrap().unwrap_or_default();
    assert_each_once("shipper record", &record, &want);
    let listed = bucket.ls().unwrap();
    let ids: Vec<String> = listed.iter().map(|b| b.id.clone()).collect();
    assert_each_once("bucket ls", &ids, &want);
    for b in &listed {
        assert_eq!(b.state, "complete", "{}", b.line);
    }
    for (id, complete) in bucket.block_states().unwrap() {
        assert!(complete, "{id} has no meta.json");
    }
    let v = bucket.verify(&[]).unwrap();
    assert!(
        v.ok,
        "verify after the crashes:\n{}\n{}",
        v.stdout, v.stderr
    );
    let leftovers: Vec<String> = std::fs::read_dir(data_dir.join("thanos").join("upload"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    println!("staging dirs left under thanos/upload: {leftovers:?}");

    // The store loaded each block exactly once.
    let log = std::fs::read_to_string(store.guard().log_path()).unwrap();
    let loads: Vec<String> = log
        .lines()
        .filter(|l| l.contains("block loaded"))
        .filter_map(|l| l.split("block=").nth(1))
        .map(|s| s.split_whitespace().next().unwrap_or_default().to_string())
        .collect();
    assert_each_once("store 'block loaded' log lines", &loads, &want);

    // And the data is all there, once: the querier over the store equals Prometheus.
    let extra = ["--query.info-interval".to_string(), "1s".to_string()];
    let querier =
        SkeinNode::start_querier(dir, "querier", &[store.store_address()], &extra).unwrap();
    let (start, end) = (cluster.dataset.spec.start_ms, cluster.dataset.spec.end_ms());
    wait_clusters_visible(
        &querier.client,
        "gen_queue_depth",
        &["eu1"],
        end,
        Duration::from_secs(30),
    )
    .unwrap();
    let clusters = [cluster];
    let cases = [
        Case::union("count_over_time(gen_wide_gauge[2h])", 1),
        Case::union_as(
            "sum by (cluster, group) (sum_over_time(gen_wide_gauge[30m]))",
            "sum by (group) (sum_over_time(gen_wide_gauge[30m]))",
            1,
        ),
        Case::union("rate(gen_http_requests_total[5m])", 1),
    ];
    let mut failures = Vec::new();
    for case in &cases {
        for eval in [
            Eval::Range(start + 2 * 3_600_000, end, 30 * 60_000),
            Eval::Instant(end),
        ] {
            if let Err(e) = check(&querier.client, &clusters, case, eval) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `[from, to]` on the 15 s grid strictly inside a block, leaving room for
/// 5 m lookback/range windows at the start.
fn inside(b: &LocalBlock) -> (i64, i64) {
    let from = b.min_time + 10 * 60_000;
    let from = from - from.rem_euclid(SLOT_MS) + SLOT_MS;
    let to = b.max_time - 60_000;
    (from, to - to.rem_euclid(SLOT_MS))
}

/// Three blocks damaged in the bucket (index truncated, chunk file deleted, one
/// chunk byte flipped): `verify` names all three; the store logs an error for
/// and counts the two it cannot load and serves the rest; queries inside
/// intact blocks still answer like Prometheus; a query over the block with the
/// flipped byte answers with a warning naming it.
#[test]
fn corrupt_blocks_are_skipped_counted_and_the_rest_served() {
    let _serial = serial();
    let tmp = tempfile::Builder::new()
        .prefix("skein-e2e-corrupt-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let bucket = TestBucket::filesystem(dir, "bucket").unwrap();
    let cluster = big_cluster(dir, 11, 50);
    let data_dir = cluster.prometheus.data_dir.clone();
    let blocks = blocks_to_ship(&data_dir).unwrap();
    let n = blocks.len();
    assert!(n >= 6, "want at least 6 blocks, got {n}");
    {
        let mut sidecar = SkeinNode::start_sidecar(
            dir,
            "sidecar",
            &cluster.prometheus.url,
            &shipper_args(&data_dir, &bucket, "1s"),
        )
        .unwrap();
        wait_recorded(&data_dir, &blocks, &mut sidecar, Duration::from_secs(60)).unwrap();
    }
    let root = bucket.fs_root.clone().unwrap();
    let (truncated, missing, flipped) = (&blocks[1], &blocks[2], &blocks[3]);
    let index = root.join(&truncated.id).join("index");
    let len = std::fs::metadata(&index).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&index)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    std::fs::remove_file(root.join(&missing.id).join("chunks").join("000001")).unwrap();
    let seg = root.join(&flipped.id).join("chunks").join("000001");
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&seg, &bytes).unwrap();

    let v = bucket.verify(&[]).unwrap();
    assert!(
        !v.ok,
        "verify passed a bucket with corrupt blocks:\n{}",
        v.stdout
    );
    assert!(
        v.stdout
            .contains(&format!("{n} block(s) checked, 3 broken")),
        "{}",
        v.stdout
    );
    for b in [truncated, missing, flipped] {
        assert!(
            v.stdout
                .lines()
                .any(|l| l.contains(&b.id) && !l.contains(": OK")),
            "verify does not report {} as broken:\n{}",
            b.id,
            v.stdout
        );
    }

    let store = start_store(dir, "store", &bucket, "1s", &[]).unwrap();
    wait_store_blocks(&store, n - 2, Duration::from_secs(30)).unwrap();
    let failures = metric(&store.client, "skein_store_block_load_failures_total").unwrap();
    assert!(failures >= 2.0, "load failures = {failures}");
    let log = std::fs::read_to_string(store.guard().log_path()).unwrap();
    for b in [truncated, missing] {
        assert!(
            log.lines()
                .any(|l| l.contains("ERROR") && l.contains(&b.id)),
            "store log has no error for {}:\n{}",
            b.id,
            store.guard().log_tail(20)
        );
    }

    let extra = ["--query.info-interval".to_string(), "1s".to_string()];
    let querier =
        SkeinNode::start_querier(dir, "querier", &[store.store_address()], &extra).unwrap();
    let last = &blocks[n - 1];
    wait_clusters_visible(
        &querier.client,
        "gen_queue_depth",
        &["eu1"],
        inside(last).1,
        Duration::from_secs(30),
    )
    .unwrap();
    let clusters = [cluster];
    let cases = [
        Case::union("gen_queue_depth", 1),
        Case::union("rate(gen_http_requests_total[5m])", 1),
        Case::union_as(
            "count by (cluster, group) (gen_wide_gauge)",
            "count by (group) (gen_wide_gauge)",
            1,
        ),
    ];
    let mut checks = Vec::new();
    let mut failures = Vec::new();
    for b in [&blocks[0], &blocks[4], last] {
        let (from, to) = inside(b);
        if to <= from {
            continue;
        }
        for case in &cases {
            for eval in [Eval::Range(from, to, 60_000), Eval::Instant(to)] {
                checks.push(eval);
                if let Err(e) = check(&querier.client, &clusters, case, eval) {
                    failures.push(e);
                }
            }
        }
    }
    assert!(checks.len() >= 12, "too few checks: {checks:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // Over the block with the flipped byte: an answer, with a warning naming it.
    let (from, to) = (flipped.min_time, flipped.max_time - 1);
    let resp = querier
        .client
        .query_range_raw(r#"{__name__=~"gen_.+"}"#, from, to, 60_000)
        .unwrap();
    resp.ensure_success().unwrap();
    let warnings = resp.warnings();
    assert!(
        warnings.iter().any(|w| w.contains(&flipped.id)),
        "no warning names the block with the flipped chunk byte {}: {warnings:?}",
        flipped.id
    );

    // The documented metric name is there.
    let text = fetch(&store.client).unwrap();
    let documented = metric_sum(&text, "skein_store_block_load_failures_total");
    assert!(
        documented.is_some_and(|v| v >= 2.0),
        "skein_store_block_load_failures_total is not on the store's /metrics (value {documented:?}); \
         names there: {:?}",
        text.lines()
            .filter(|l| l.contains("load_failures") && !l.starts_with('#'))
            .collect::<Vec<_>>()
    );
}
