//! A querier process against hostile StoreAPI servers, beside an honest
//! real Prometheus + sidecar. Each hostile store is a real tonic server on
//! 127.0.0.1, in this test process, speaking the real proto and breaking
//! its contract on purpose:
//! - a Series frame over the querier's message size limit;
//! - series out of order, and a series repeated at the end of the stream;
//! - chunks whose XOR bytes are garbage, of an unknown encoding, with
//!   min_time after max_time, or dated outside the requested range;
//! - endless series lists and endless label names and values;
//! - a stream that never ends (an empty frame every 50 ms).
//!
//! For each: the HTTP answer holds exactly the honest store's data and a
//! warning naming the hostile store, `partial_response=false` fails the
//! query, `skein_query_store_responses_rejected_total{reason}` counts it on
//! /metrics, and the querier is alive afterwards.
//!
//! Also here: the transport refusals a new user meets at start-up (a
//! gossip-only querier without TLS, a store address with a scheme) with the
//! real binary.

use std::process::Command;
use std::time::{Duration, Instant};

use skein_actors::query::memstore::{Hostile, MemStore, MemStoreOptions, RunningStore};
use skein_e2e::compare::{add_labels, compare};
use skein_e2e::datagen::DataSpec;
use skein_e2e::fixture::start_clusters;
use skein_e2e::http::ApiClient;
use skein_e2e::scrape;
use skein_e2e::skein::{SkeinNode, skein_bin};
use skein_promql::{Labels, Sample, Series};

/// The hostile stores: (name, fault, reason counted).
fn faults() -> Vec<(&'static str, Hostile, bool, &'static str)> {
    vec![
        (
            "huge-frame",
            Hostile::HugeFrame(2 << 20),
            false,
            "frame_too_large",
        ),
        (
            "unsorted",
            Hostile::Trickle(Duration::ZERO),
            true,
            "unsorted",
        ),
        ("repeated", Hostile::RepeatedSeries, false, "unsorted"),
        ("corrupt-xor", Hostile::CorruptXor, false, "corrupt_chunk"),
        (
            "bad-encoding",
            Hostile::UnknownEncoding,
            false,
            "corrupt_chunk",
        ),
        (
            "min-after-max",
            Hostile::MinAfterMax,
            false,
            "corrupt_chunk",
        ),
        (
            "out-of-range",
            Hostile::ChunkOutOfRange,
            false,
            "chunk_out_of_range",
        ),
        ("endless", Hostile::Endless(5_000), false, "too_many_series"),
        (
            "trickle",
            Hostile::Trickle(Duration::from_millis(50)),
            false,
            "timeout",
        ),
    ]
}

/// Series of the metric the test queries, under a `hostile` label so that
/// any of them leaking into an answer shows.
fn hostile_series(name: &str, start: i64, end: i64) -> Vec<Series> {
    ["a", "b", "c"]
        .iter()
        .map(|inst| {
            let samples = (0..)
                .map(|i| start + i * 15_000)
                .take_while(|t| *t <= end)
                .map(|t| Sample { t, v: 666.0 })
                .collect();
            Series::new(
                Labels::from_pairs([
                    ("__name__", "gen_queue_depth"),
                    ("hostile", name),
                    ("instance", inst),
                ]),
                samples,
            )
        })
        .collect()
}

struct Hostiles {
    // Keeps the servers' runtime alive.
    _rt: tokio::runtime::Runtime,
    stores: Vec<(&'static str, &'static str, RunningStore)>,
}

fn start_hostiles(start: i64, end: i64) -> Hostiles {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let stores = rt.block_on(async {
        let mut out = Vec::new();
        for (name, fault, unsorted, reason) in faults() {
            // `Trickle(0)` stands for "no fault but the order": the
            // `unsorted` option reverses the stream.
            let hostile = match fault {
                Hostile::Trickle(d) if d.is_zero() => None,
                f => Some(f),
            };
            let store = MemStore::new(
                hostile_series(name, start, end),
                MemStoreOptions {
                    component_type: "store".into(),
                    unsorted,
                    hostile,
                    ..Default::default()
                },
            )
            .serve()
            .await
            .unwrap();
            out.push((name, reason, store));
        }
        out
    });
    Hostiles { _rt: rt, stores }
}

fn rejected(q: &ApiClient, reason: &str) -> f64 {
    let text = scrape::fetch(q).unwrap();
    let key = format!("skein_query_store_responses_rejected_total{{reason=\"{reason}\"}}");
    scrape::metric_sum(&text, &key).unwrap_or(0.0)
}

#[test]
fn hostile_stores_are_dropped_named_and_counted_while_the_honest_one_answers_exactly() {
    let clusters = start_clusters(DataSpec::small).unwrap();
    let dir = clusters.dir.path();
    let eu = &clusters.clusters[0];
    let (start, end) = clusters.window();
    let hostiles = start_hostiles(end - 3_600_000, end);
    let sidecar = SkeinNode::start_sidecar(dir, "sidecar-eu1", &eu.prometheus.url, &[]).unwrap();
    let mut stores = vec![sidecar.store_address()];
    stores.extend(hostiles.stores.iter().map(|(_, _, s)| s.address()));
    let mut querier = SkeinNode::start_querier(
        dir,
        "querier",
        &stores,
        &[
            "--query.info-interval".into(),
            "1s".into(),
            "--query.store-timeout".into(),
            "4s".into(),
            "--query.store-max-message-size".into(),
            "1MiB".into(),
            "--query.store-max-series".into(),
            "1000".into(),
            "--query.store-max-label-values".into(),
            "1000".into(),
        ],
    )
    .unwrap();
    let q = ApiClient::with_timeout(&querier.http_url, Duration::from_secs(60)).unwrap();
    let expected = add_labels(
        eu.prometheus.client.query("gen_queue_depth", end).unwrap(),
        &eu.external_labels,
    );
    let mut failures = Vec::new();

    // Instant query, retried until every store answered its first Info.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut resp = q.query_raw("gen_queue_depth", end).unwrap();
    while Instant::now() < deadline
        && hostiles
            .stores
            .iter()
            .any(|(_, _, s)| !resp.warnings().iter().any(|w| w.contains(&s.address())))
    {
        std::thread::sleep(Duration::from_millis(500));
        resp = q.query_raw("gen_queue_depth", end).unwrap();
    }
    match resp.data() {
        Ok(d) => {
            if let Err(e) = compare(&expected, &d) {
                failures.push(format!("instant query is not the honest store's data: {e}"));
            }
        }
        Err(e) => failures.push(format!("instant query: {e:#}")),
    }
    let warnings = resp.warnings();
    for (name, _, s) in &hostiles.stores {
        if !warnings.iter().any(|w| w.contains(&s.address())) {
            failures.push(format!(
                "no warning names the {name} store {}: {warnings:?}",
                s.address()
            ));
        }
    }
    if warnings
        .iter()
        .any(|w| w.contains(&sidecar.store_address()))
    {
        failures.push(format!("a warning names the honest sidecar: {warnings:?}"));
    }
    for (name, reason, _) in &hostiles.stores {
        if rejected(&q, reason) < 1.0 {
            failures.push(format!(
                "{name}: no rejection counted under reason {reason}"
            ));
        }
    }

    // Range query: the honest store's data too.
    let expected_range = add_labels(
        eu.prometheus
            .client
            .query_range("gen_queue_depth", end - 1_800_000, end, 300_000)
            .unwrap(),
        &eu.external_labels,
    );
    match q
        .query_range_raw("gen_queue_depth", end - 1_800_000, end, 300_000)
        .and_then(|r| r.data())
    {
        Ok(d) => {
            if let Err(e) = compare(&expected_range, &d) {
                failures.push(format!("range query is not the honest store's data: {e}"));
            }
        }
        Err(e) => failures.push(format!("range query: {e:#}")),
    }

    // partial_response=false: the query fails and names a hostile store.
    let strict = q
        .get(
            "/api/v1/query",
            &[
                ("query", "gen_queue_depth".into()),
                ("time", skein_e2e::timefmt::secs_string(end)),
                ("partial_response", "false".into()),
            ],
        )
        .unwrap();
    if strict.status == 200
        || !hostiles
            .stores
            .iter()
            .any(|(_, _, s)| strict.text.contains(&s.address()))
    {
        failures.push(format!(
            "partial_response=false should fail naming a hostile store: HTTP {} {}",
            strict.status, strict.text
        ));
    }

    // Label values and series: endless lists are refused, the honest
    // values come through.
    let endless = &hostiles
        .stores
        .iter()
        .find(|(n, _, _)| *n == "endless")
        .unwrap()
        .2;
    let before = rejected(&q, "too_many_values");
    let lv = q
        .get(
            "/api/v1/label/instance/values",
            &[
                ("start", skein_e2e::timefmt::secs_string(start)),
                ("end", skein_e2e::timefmt::secs_string(end)),
            ],
        )
        .unwrap();
    let want_values = eu
        .prometheus
        .client
        .get(
            "/api/v1/label/instance/values",
            &[
                ("start", skein_e2e::timefmt::secs_string(start)),
                ("end", skein_e2e::timefmt::secs_string(end)),
            ],
        )
        .unwrap();
    let values = |r: &skein_e2e::http::ApiResponse| -> Vec<String> {
        r.body["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    // The honest values, plus those of the hostile stores whose label
    // answers are well-formed (only their Series answers are broken).
    let got = values(&lv);
    for v in values(&want_values) {
        if !got.contains(&v) {
            failures.push(format!("label values miss honest value {v:?}"));
        }
    }
    if got.iter().any(|v| v.starts_with("endless_")) {
        failures.push(format!(
            "label values carry the endless store's values: {} of them",
            got.len()
        ));
    }
    if !lv.warnings().iter().any(|w| w.contains(&endless.address())) {
        failures.push(format!(
            "label values: no warning names {}: {:?}",
            endless.address(),
            lv.warnings()
        ));
    }
    if rejected(&q, "too_many_values") <= before {
        failures.push("label values: no too_many_values rejection counted".into());
    }
    let series = q
        .get(
            "/api/v1/series",
            &[
                ("match[]", "gen_queue_depth".into()),
                ("start", skein_e2e::timefmt::secs_string(end - 600_000)),
                ("end", skein_e2e::timefmt::secs_string(end)),
            ],
        )
        .unwrap();
    let n = series.body["data"].as_array().map_or(0, Vec::len);
    if n == 0 || n >= 1000 {
        failures.push(format!(
            "series: {n} series (the endless store's must be dropped)"
        ));
    }
    if !series
        .warnings()
        .iter()
        .any(|w| w.contains(&endless.address()))
    {
        failures.push(format!("series: no warning names {}", endless.address()));
    }

    // Alive afterwards, and still answering.
    if querier.exited().is_some() {
        failures.push("the querier exited".into());
    }
    let healthy = q.get("/-/healthy", &[]).map(|r| r.status);
    if !matches!(healthy, Ok(200)) {
        failures.push(format!("/-/healthy after the hostile stores: {healthy:?}"));
    }
    if let Err(e) = q.query_raw("gen_queue_depth", end).and_then(|r| r.data()) {
        failures.push(format!("querier no longer answers: {e:#}"));
    }

    assert!(
        failures.is_empty(),
        "{} hostile-store checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `skein node` with `args` (never `--dev`), which must exit with status 2
/// and say `needle` on stderr (a node that starts instead is killed after
/// 20 s and fails the check).
fn refused(args: &[&str], needle: &str, scratch: &std::path::Path) -> Result<(), String> {
    let mut cmd = Command::new(skein_bin().map_err(|e| e.to_string())?);
    cmd.arg("node")
        .args(args)
        .args([
            "--http-address",
            "127.0.0.1:0",
            "--grpc-address",
            "127.0.0.1:0",
        ])
        .env_remove("SKEIN_DEV");
    let out = skein_e2e::process::run_with_timeout(cmd, Duration::from_secs(20), scratch)
        .map_err(|e| format!("{args:?}: {e:#}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2) || !stderr.contains(needle) {
        return Err(format!(
            "{args:?}: expected exit 2 saying {needle:?}, got {:?}: {stderr}",
            out.status.code()
        ));
    }
    Ok(())
}

#[test]
fn plaintext_and_scheme_addresses_are_refused_at_start_up() {
    let tmp = tempfile::tempdir().unwrap();
    let keyring = tmp.path().join("keyring");
    std::fs::write(&keyring, "").unwrap();
    let certs =
        skein_e2e::certs::CertDir::create(&tmp.path().join("certs"), &["query-0"], tmp.path())
            .unwrap();
    let tls = certs.flags("query-0");
    let mut failures = Vec::new();
    // A querier that finds its stores by gossip, with no TLS and no --dev.
    if let Err(e) = refused(
        &[
            "--roles",
            "query",
            "--cluster",
            "eu1",
            "--gossip.listen-address",
            "127.0.0.1:0",
            "--gossip.keyring-file",
            keyring.to_str().unwrap(),
        ],
        "mutual TLS",
        tmp.path(),
    ) {
        failures.push(e);
    }
    // A store address with a scheme beside TLS settings.
    for bad in [
        "http://127.0.0.1:10901",
        "https://127.0.0.1:10901",
        "127.0.0.1:10901/x",
    ] {
        let mut args = vec!["--roles", "query", "--query.store", bad];
        args.extend(tls.iter().map(String::as_str));
        if let Err(e) = refused(&args, "query.stores", tmp.path()) {
            failures.push(e);
        }
    }
    // A zero interval.
    if let Err(e) = refused(
        &["--roles", "query", "--dev", "--query.info-interval", "0s"],
        "query.info_interval",
        tmp.path(),
    ) {
        failures.push(e);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
