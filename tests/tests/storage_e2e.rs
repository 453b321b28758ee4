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
//! Then: a live Prometheus cutting real blocks (30 s block duration), a sidecar
//! killed with SIGKILL in the middle of shipping, and corrupt blocks in the
//! bucket.
//!
//! Tests run one at a time (a process-wide lock): each starts up to seven
//! processes and the machine has two cores.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use skein_e2e::blocks::{LocalBlock, shipper_record};
use skein_e2e::bucket::TestBucket;
use skein_e2e::case_list::{plan, standard_cases};
use skein_e2e::cases::{Eval, check};
use skein_e2e::datagen::DataSpec;
use skein_e2e::fixture::{Clusters, start_clusters_with_args};
use skein_e2e::skein::SkeinNode;
use skein_e2e::storage::{
    blocks_to_ship, no_compaction_args, shipper_args, start_store, wait_clusters_visible,
    wait_recorded, wait_store_blocks,
};

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
