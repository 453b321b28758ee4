//! Fan-out, merge, dedup and partial responses against real tonic servers
//! on 127.0.0.1 serving [`MemStore`]s.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::registry::Registry;
use skein_promql::{LabelMatcher, Labels, MatchOp, Sample, SelectHints, Series, SeriesSource};

use super::client;
use super::fanout::{FanoutError, SeriesQuery, fan_out_series};
use super::labels_api::{self, LabelsQuery};
use super::memstore::{MemStore, MemStoreOptions, RunningStore};
use super::metrics::QueryMetrics;
use super::source::{SourceOptions, StoreApiSource};
use super::store_set::StoreStatus;
use super::{QueryConfig, QueryHandle, RequestOptions};

const SCRAPE: i64 = 15_000;

fn samples(from: i64, to: i64, step: i64, v: f64) -> Vec<Sample> {
    (0..)
        .map(|i| from + i * step)
        .take_while(|t| *t <= to)
        .map(|t| Sample { t, v })
        .collect()
}

fn series(pairs: &[(&str, &str)], samples: Vec<Sample>) -> Series {
    Series::new(Labels::from_pairs(pairs.iter().copied()), samples)
}

fn ext(pairs: &[(&str, &str)]) -> MemStoreOptions {
    MemStoreOptions {
        external_labels: Labels::from_pairs(pairs.iter().copied()),
        component_type: "sidecar".into(),
        ..Default::default()
    }
}

async fn serve(series: Vec<Series>, opts: MemStoreOptions) -> RunningStore {
    MemStore::new(series, opts).serve().await.unwrap()
}

/// A store status as the store set would hold it after one Info round.
async fn status(addr: &str) -> StoreStatus {
    let mut s = StoreStatus::new(addr);
    let res = match &s.channel {
        Some(ch) => client::info(ch.clone(), Duration::from_secs(2))
            .await
            .map_err(|e| e.to_string()),
        None => Err("no channel".to_string()),
    };
    s.apply(res, SystemTime::now());
    s
}

fn eq(name: &str, v: &str) -> LabelMatcher {
    LabelMatcher::new(name, MatchOp::Equal, v)
}

fn query(ms: Vec<LabelMatcher>, partial: bool) -> SeriesQuery {
    SeriesQuery {
        min_time: 0,
        max_time: 1_000_000,
        matchers: ms,
        partial_response: partial,
        ..Default::default()
    }
}

fn source(
    stores: Vec<StoreStatus>,
    dedup: bool,
    partial: bool,
    timeout: Duration,
) -> StoreApiSource {
    StoreApiSource::new(
        Arc::new(stores),
        SourceOptions {
            dedup,
            replica_labels: vec!["replica".into()],
            partial_response: partial,
            store_timeout: timeout,
            store_limits: Default::default(),
        },
        QueryMetrics::unregistered(),
    )
}

fn hints(start: i64, end: i64) -> SelectHints {
    SelectHints {
        start_ms: start,
        end_ms: end,
        ..Default::default()
    }
}

/// Two HA replicas of one Prometheus: replica "a" misses 60s..120s,
/// replica "b" is offset by one second and complete.
async fn ha_pair() -> (RunningStore, RunningStore) {
    let mut a = samples(0, 300_000, SCRAPE, 1.0);
    a.retain(|s| !(60_000..=120_000).contains(&s.t));
    let b = samples(1_000, 300_000, SCRAPE, 2.0);
    let up = |s| vec![series(&[("__name__", "up"), ("job", "node")], s)];
    let sa = serve(up(a), ext(&[("cluster", "eu"), ("replica", "a")])).await;
    let sb = serve(up(b), ext(&[("cluster", "eu"), ("replica", "b")])).await;
    (sa, sb)
}

#[tokio::test]
async fn merges_stores_in_label_order_and_filters_by_external_labels() {
    let s1 = serve(
        vec![
            series(
                &[("__name__", "up"), ("job", "a")],
                samples(0, 60_000, SCRAPE, 1.0),
            ),
            series(
                &[("__name__", "up"), ("job", "c")],
                samples(0, 60_000, SCRAPE, 1.0),
            ),
        ],
        ext(&[("cluster", "eu")]),
    )
    .await;
    let s2 = serve(
        vec![
            series(
                &[("__name__", "up"), ("job", "b")],
                samples(0, 60_000, SCRAPE, 1.0),
            ),
            series(
                &[("__name__", "up"), ("job", "d")],
                samples(0, 60_000, SCRAPE, 1.0),
            ),
        ],
        ext(&[("cluster", "us")]),
    )
    .await;
    let stores = vec![status(&s1.address()).await, status(&s2.address()).await];
    assert!(stores.iter().all(|s| s.healthy), "{stores:?}");
    assert_eq!(
        stores[0].label_sets,
        vec![Labels::from_pairs([("cluster", "eu")])]
    );
    let m = QueryMetrics::unregistered();
    let out = fan_out_series(
        &stores,
        &query(vec![eq("__name__", "up")], true),
        Duration::from_secs(5),
        &m,
    )
    .await
    .unwrap();
    let jobs: Vec<_> = out
        .series
        .iter()
        .map(|s| s.labels.get("job").unwrap().to_string())
        .collect();
    assert_eq!(jobs, vec!["a", "c", "b", "d"]);
    // Sorted by full label sets: cluster="eu" series come before cluster="us".
    let clusters: Vec<_> = out
        .series
        .iter()
        .map(|s| s.labels.get("cluster").unwrap())
        .collect();
    assert_eq!(clusters, vec!["eu", "eu", "us", "us"]);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    // A matcher on an external label rules out the other store entirely.
    let out = fan_out_series(
        &stores,
        &query(vec![eq("__name__", "up"), eq("cluster", "us")], true),
        Duration::from_secs(5),
        &m,
    )
    .await
    .unwrap();
    assert_eq!(out.series.len(), 2);
    assert!(
        out.series
            .iter()
            .all(|s| s.labels.get("cluster") == Some("us"))
    );
}

#[tokio::test]
async fn split_frames_are_joined_and_unsorted_stores_are_dropped() {
    let jobs = |names: &[&str]| {
        names
            .iter()
            .map(|j| {
                series(
                    &[("__name__", "up"), ("job", j)],
                    samples(0, 3_600_000, SCRAPE, 1.0),
                )
            })
            .collect::<Vec<_>>()
    };
    let split = serve(
        jobs(&["a", "c", "e"]),
        MemStoreOptions {
            split_frames: true,
            ..ext(&[])
        },
    )
    .await;
    let unsorted = serve(
        jobs(&["b", "c", "d"]),
        MemStoreOptions {
            unsorted: true,
            ..ext(&[])
        },
    )
    .await;
    let stores = vec![
        status(&split.address()).await,
        status(&unsorted.address()).await,
    ];
    let m = QueryMetrics::unregistered();
    let out = fan_out_series(
        &stores,
        &SeriesQuery {
            max_time: 3_600_000,
            ..query(vec![eq("__name__", "up")], true)
        },
        Duration::from_secs(5),
        &m,
    )
    .await
    .unwrap();
    let got: Vec<_> = out
        .series
        .iter()
        .map(|s| s.labels.get("job").unwrap())
        .collect();
    // The store that broke the sort order is dropped whole (its "b", "c",
    // "d" would otherwise be merged into a silently wrong answer), named
    // in a warning.
    assert_eq!(got, vec!["a", "c", "e"]);
    assert_eq!(out.failed, vec![unsorted.address()]);
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains(&unsorted.address()) && w.contains("sorted by labels")),
        "{:?}",
        out.warnings
    );
    // 241 samples: 3 chunks, sent over two frames.
    assert!(
        out.series.iter().all(|s| s.chunks.len() == 3),
        "{:?}",
        out.series
            .iter()
            .map(|s| s.chunks.len())
            .collect::<Vec<_>>()
    );
    let src = source(stores, true, true, Duration::from_secs(5));
    let r = src
        .select(&[eq("__name__", "up")], &hints(0, 3_600_000))
        .await
        .unwrap();
    assert!(r.series.iter().all(|s| s.samples.len() == 241));
}

#[tokio::test]
async fn identical_chunks_from_two_stores_are_kept_once() {
    let data = || {
        vec![series(
            &[("__name__", "x")],
            samples(0, 600_000, SCRAPE, 3.0),
        )]
    };
    let s1 = serve(data(), ext(&[("cluster", "eu")])).await;
    let s2 = serve(data(), ext(&[("cluster", "eu")])).await;
    let stores = vec![status(&s1.address()).await, status(&s2.address()).await];
    let m = QueryMetrics::unregistered();
    let out = fan_out_series(
        &stores,
        &query(vec![eq("__name__", "x")], true),
        Duration::from_secs(5),
        &m,
    )
    .await
    .unwrap();
    assert_eq!(out.series.len(), 1);
    // 41 samples in one chunk from each store; the copy is dropped.
    assert_eq!(out.series[0].chunks.len(), 1);
    let src = source(stores, true, true, Duration::from_secs(5));
    let r = src
        .select(&[eq("__name__", "x")], &hints(0, 600_000))
        .await
        .unwrap();
    assert_eq!(r.series.len(), 1);
    assert_eq!(r.series[0].samples.len(), 41);
}

#[tokio::test]
async fn dedup_merges_replicas_and_fills_gaps() {
    let (sa, sb) = ha_pair().await;
    let stores = vec![status(&sa.address()).await, status(&sb.address()).await];
    let src = source(stores.clone(), true, true, Duration::from_secs(5));
    let r = src
        .select(&[eq("__name__", "up")], &hints(0, 300_000))
        .await
        .unwrap();
    assert_eq!(r.series.len(), 1, "{:?}", r.series);
    let s = &r.series[0];
    assert_eq!(
        s.labels,
        Labels::from_pairs([("__name__", "up"), ("cluster", "eu"), ("job", "node")])
    );
    // The gap of replica a is filled from b; no timestamp is doubled and
    // samples are never closer than a scrape interval.
    assert!(
        s.samples.windows(2).all(|w| w[1].t - w[0].t >= SCRAPE),
        "{:?}",
        s.samples
    );
    assert!(
        s.samples
            .iter()
            .any(|x| (60_000..=120_000).contains(&x.t) && x.v == 2.0)
    );
    assert_eq!(s.samples.first().map(|x| x.v), Some(1.0));
    assert!(
        s.samples.len() >= 19 && s.samples.len() <= 21,
        "{}",
        s.samples.len()
    );

    // Without dedup both replicas come back, labelled.
    let src = source(stores, false, true, Duration::from_secs(5));
    let r = src
        .select(&[eq("__name__", "up")], &hints(0, 300_000))
        .await
        .unwrap();
    let replicas: Vec<_> = r
        .series
        .iter()
        .map(|s| s.labels.get("replica").unwrap())
        .collect();
    assert_eq!(replicas, vec!["a", "b"]);
    assert_eq!(r.series[1].samples.len(), 20);
}

#[tokio::test]
async fn samples_are_trimmed_to_the_requested_range() {
    let s1 = serve(
        vec![series(
            &[("__name__", "x")],
            samples(0, 3_600_000, SCRAPE, 1.0),
        )],
        ext(&[]),
    )
    .await;
    let src = source(
        vec![status(&s1.address()).await],
        true,
        true,
        Duration::from_secs(5),
    );
    let r = src
        .select(&[eq("__name__", "x")], &hints(100_000, 200_000))
        .await
        .unwrap();
    let ts: Vec<i64> = r.series[0].samples.iter().map(|s| s.t).collect();
    assert_eq!(ts.first(), Some(&105_000));
    assert_eq!(ts.last(), Some(&195_000));
}

#[tokio::test]
async fn a_store_that_is_down_gives_a_warning_not_an_error() {
    let (sa, sb) = ha_pair().await;
    // Found healthy, then gone before the query.
    let gone = serve(
        vec![series(&[("__name__", "up")], samples(0, 1000, SCRAPE, 1.0))],
        ext(&[("cluster", "x")]),
    )
    .await;
    let gone_status = status(&gone.address()).await;
    assert!(gone_status.healthy);
    drop(gone);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Never reachable at all.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let dead_status = status(&dead).await;
    assert!(!dead_status.healthy);
    assert!(dead_status.last_error.is_some());
    let stores = vec![
        status(&sa.address()).await,
        status(&sb.address()).await,
        gone_status,
        dead_status,
    ];
    let started = Instant::now();
    let src = source(stores.clone(), true, true, Duration::from_secs(5));
    let r = src
        .select(&[eq("__name__", "up")], &hints(0, 300_000))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(r.series.len(), 1);
    let w = r.warnings.join("\n");
    assert!(
        w.contains(&stores[2].name) && w.contains(&stores[3].name),
        "{w}"
    );

    // With partial responses off, the failure fails the request.
    let src = source(stores, true, false, Duration::from_secs(5));
    let e = src
        .select(&[eq("__name__", "up")], &hints(0, 300_000))
        .await
        .unwrap_err();
    assert!(
        matches!(e, skein_promql::SourceError::Unavailable(_)),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_hanging_store_is_cut_off_at_its_timeout() {
    let fast = serve(
        vec![series(
            &[("__name__", "up"), ("job", "fast")],
            samples(0, 60_000, SCRAPE, 1.0),
        )],
        ext(&[("cluster", "a")]),
    )
    .await;
    let slow = serve(
        vec![series(
            &[("__name__", "up"), ("job", "slow")],
            samples(0, 60_000, SCRAPE, 1.0),
        )],
        MemStoreOptions {
            delay: Some(Duration::from_secs(30)),
            ..ext(&[("cluster", "b")])
        },
    )
    .await;
    let stores = vec![status(&fast.address()).await, status(&slow.address()).await];
    let m = QueryMetrics::unregistered();
    let started = Instant::now();
    let out = fan_out_series(
        &stores,
        &query(vec![eq("__name__", "up")], true),
        Duration::from_millis(500),
        &m,
    )
    .await
    .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(out.series.len(), 1);
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains(&slow.address()) && w.contains("timed out")),
        "{:?}",
        out.warnings
    );
    let err = fan_out_series(
        &stores,
        &query(vec![eq("__name__", "up")], false),
        Duration::from_millis(300),
        &m,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, FanoutError::Unavailable(ref m) if m.contains("timed out")),
        "{err:?}"
    );
}

#[tokio::test]
async fn in_band_warnings_and_failing_series_calls() {
    let warn = serve(
        vec![series(
            &[("__name__", "up")],
            samples(0, 60_000, SCRAPE, 1.0),
        )],
        MemStoreOptions {
            warning: Some("some blocks were skipped".into()),
            ..ext(&[("cluster", "a")])
        },
    )
    .await;
    let failing = serve(
        vec![series(
            &[("__name__", "up")],
            samples(0, 60_000, SCRAPE, 1.0),
        )],
        MemStoreOptions {
            fail_series: Some("disk on fire".into()),
            ..ext(&[("cluster", "b")])
        },
    )
    .await;
    let stores = vec![
        status(&warn.address()).await,
        status(&failing.address()).await,
    ];
    let m = QueryMetrics::unregistered();
    let out = fan_out_series(
        &stores,
        &query(vec![eq("__name__", "up")], true),
        Duration::from_secs(5),
        &m,
    )
    .await
    .unwrap();
    assert_eq!(out.series.len(), 1);
    let w = out.warnings.join("\n");
    assert!(w.contains("some blocks were skipped"), "{w}");
    assert!(w.contains("disk on fire"), "{w}");
}

#[tokio::test]
async fn label_apis_merge_and_strip_replica_labels() {
    let (sa, sb) = ha_pair().await;
    let other = serve(
        vec![series(
            &[("__name__", "node_load1"), ("instance", "h1")],
            samples(0, 60_000, SCRAPE, 1.0),
        )],
        ext(&[("cluster", "us")]),
    )
    .await;
    let stores = vec![
        status(&sa.address()).await,
        status(&sb.address()).await,
        status(&other.address()).await,
    ];
    let m = QueryMetrics::unregistered();
    let t = Duration::from_secs(5);
    let q = LabelsQuery {
        start: 0,
        end: 1_000_000,
        partial_response: true,
        replica_labels: vec!["replica".into()],
        ..Default::default()
    };
    let names = labels_api::label_names(&stores, &q, t, &m).await.unwrap();
    assert_eq!(names.data, vec!["__name__", "cluster", "instance", "job"]);
    let values = labels_api::label_values(&stores, "__name__", &q, t, &m)
        .await
        .unwrap();
    assert_eq!(values.data, vec!["node_load1", "up"]);
    let only_us = LabelsQuery {
        matcher_sets: vec![vec![eq("cluster", "us")]],
        ..q.clone()
    };
    let values = labels_api::label_values(&stores, "__name__", &only_us, t, &m)
        .await
        .unwrap();
    assert_eq!(values.data, vec!["node_load1"]);
    let sq = LabelsQuery {
        matcher_sets: vec![
            vec![eq("__name__", "up")],
            vec![eq("__name__", "node_load1")],
        ],
        ..q.clone()
    };
    let found = labels_api::series(&stores, &sq, t, &m).await.unwrap();
    assert_eq!(
        found.data,
        vec![
            Labels::from_pairs([
                ("__name__", "node_load1"),
                ("cluster", "us"),
                ("instance", "h1")
            ]),
            Labels::from_pairs([("__name__", "up"), ("cluster", "eu"), ("job", "node")]),
        ]
    );
    let limited = labels_api::series(
        &stores,
        &LabelsQuery {
            limit: 1,
            ..sq.clone()
        },
        t,
        &m,
    )
    .await
    .unwrap();
    assert_eq!(limited.data.len(), 1);
    assert_eq!(limited.warnings, vec![labels_api::TRUNCATED_WARNING]);
    let keep = LabelsQuery {
        replica_labels: vec![],
        matcher_sets: vec![vec![eq("__name__", "up")]],
        ..q
    };
    assert_eq!(
        labels_api::series(&stores, &keep, t, &m)
            .await
            .unwrap()
            .data
            .len(),
        2
    );
}

#[actix_rt::test]
async fn query_handle_runs_promql_over_the_stores() {
    let (sa, sb) = ha_pair().await;
    let mut registry = Registry::default();
    let handle = QueryHandle::start(
        QueryConfig {
            stores: vec![sa.address(), sb.address()],
            info_interval: Duration::from_secs(60),
            ..Default::default()
        },
        &mut registry,
    );
    let stores = handle.check_stores_now().await.unwrap();
    assert!(stores.iter().all(|s| s.healthy), "{stores:?}");
    assert_eq!(stores[0].component_type, "sidecar");
    let opts = RequestOptions {
        dedup: true,
        ..Default::default()
    };
    let out = handle
        .query_instant("count(up)", 90_000, &opts)
        .await
        .unwrap();
    match out.value {
        skein_promql::Value::Vector(v) => assert_eq!(v.first().map(|s| s.v), Some(1.0)),
        other => panic!("{other:?}"),
    }
    let no_dedup = RequestOptions::default();
    let out = handle
        .query_instant("count(up)", 90_000, &no_dedup)
        .await
        .unwrap();
    match out.value {
        skein_promql::Value::Vector(v) => assert_eq!(v.first().map(|s| s.v), Some(2.0)),
        other => panic!("{other:?}"),
    }
    let out = handle
        .query_range("up", 0, 300_000, 60_000, &opts)
        .await
        .unwrap();
    match out.value {
        skein_promql::Value::Matrix(m) => {
            assert_eq!(m.len(), 1);
            assert_eq!(m[0].samples.len(), 6);
        }
        other => panic!("{other:?}"),
    }
    handle.metrics().bad_request("query");
    handle
        .metrics()
        .observe("query", "success", Duration::from_millis(3));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("skein_query_bad_requests_total{endpoint=\"query\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("skein_query_requests_total{endpoint=\"query\",outcome=\"success\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("skein_query_request_duration_seconds_count{endpoint=\"query\"} 1"),
        "{text}"
    );
}

#[actix_rt::test]
async fn store_set_marks_dead_stores_and_picks_them_up_when_they_come_back() {
    use super::store_set::{CheckNow, GetStores, StoreSetActor};
    use actix::Actor;

    let addr: std::net::SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let slow_info = serve(
        vec![series(&[("__name__", "up")], samples(0, 1000, SCRAPE, 1.0))],
        MemStoreOptions {
            info_delay: Some(Duration::from_secs(30)),
            ..ext(&[])
        },
    )
    .await;
    let names = vec![
        addr.to_string(),
        slow_info.address(),
        "not an address".to_string(),
    ];
    let actor = StoreSetActor::new(
        &names,
        Duration::from_millis(100),
        Duration::from_millis(300),
    )
    .start();
    let started = Instant::now();
    let set = actor.send(CheckNow).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(set.len(), 3);
    assert!(set.iter().all(|s| !s.healthy), "{set:?}");
    assert!(
        set[1]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("timed out"),
        "{set:?}"
    );
    assert!(
        set[2]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("invalid store address"),
        "{set:?}"
    );

    // The store comes up on the address; the next rounds find it.
    let _back = MemStore::new(
        vec![series(&[("__name__", "up")], samples(0, 1000, SCRAPE, 1.0))],
        ext(&[("cluster", "back")]),
    )
    .serve_at(addr)
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let set = actor.send(GetStores).await.unwrap();
        if set[0].healthy {
            assert_eq!(
                set[0].label_sets,
                vec![Labels::from_pairs([("cluster", "back")])]
            );
            assert!(set[0].last_error.is_none());
            assert!(set[0].last_check.is_some());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "store never became healthy: {:?}",
            set[0]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn discovered_stores_join_leave_and_crashed_ones_keep_warning() {
    use super::store_set::{Candidate, CheckNow, GetStores, SetDiscovered, StoreSetActor};
    use actix::Actor;

    let a = serve(
        vec![series(&[("__name__", "up")], samples(0, 1000, SCRAPE, 1.0))],
        ext(&[("cluster", "a")]),
    )
    .await;
    let b = serve(
        vec![series(&[("__name__", "up")], samples(0, 1000, SCRAPE, 1.0))],
        ext(&[("cluster", "b")]),
    )
    .await;
    let cand = |s: &RunningStore, id: &str| Candidate {
        address: s.address(),
        server_name: None,
        node_id: id.into(),
        promise: None,
    };
    // No configured stores: everything comes from gossip.
    let actor = StoreSetActor::new(&[], Duration::from_secs(60), Duration::from_secs(2)).start();
    actor
        .send(SetDiscovered(vec![cand(&a, "a"), cand(&b, "b")]))
        .await
        .unwrap();
    let set = actor.send(CheckNow).await.unwrap();
    assert_eq!(set.len(), 2);
    assert!(set.iter().all(|s| s.healthy && s.discovered), "{set:?}");

    // `a` leaves gracefully (it still answers Info when it leaves the
    // view): gone after the check that follows.
    actor
        .send(SetDiscovered(vec![cand(&b, "b")]))
        .await
        .unwrap();
    let set = actor.send(CheckNow).await.unwrap();
    assert_eq!(
        set.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        vec![b.address()]
    );

    // `b` crashes, and the failure detector drops it from the view before
    // the next periodic Info check: the check that follows the departure
    // fails, so it stays as unavailable and queries about its data warn.
    let b_addr = b.address();
    drop(b);
    tokio::time::sleep(Duration::from_millis(200)).await;
    actor.send(SetDiscovered(vec![])).await.unwrap();
    let set = actor.send(CheckNow).await.unwrap();
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(set[0].departed.is_some() && !set[0].healthy);
    let sel = super::fanout::select_stores(&set, 0, 1000, &[]);
    let warnings = sel.unavailable_warnings(true).unwrap();
    assert!(warnings[0].contains(&b_addr), "{warnings:?}");
    assert!(sel.unavailable_warnings(false).is_err());

    // It comes back into the view: no longer departed.
    actor
        .send(SetDiscovered(vec![Candidate {
            address: b_addr.clone(),
            server_name: None,
            node_id: "b".into(),
            promise: None,
        }]))
        .await
        .unwrap();
    let set = actor.send(GetStores).await.unwrap();
    assert_eq!(set.len(), 1);
    assert!(set[0].departed.is_none());
}

#[actix_rt::test]
async fn a_querier_still_discovering_stores_warns_and_is_not_ready() {
    let store = serve(
        vec![series(
            &[("__name__", "up")],
            samples(0, 100_000, SCRAPE, 1.0),
        )],
        ext(&[("cluster", "a")]),
    )
    .await;
    let q = QueryHandle::start(
        QueryConfig {
            stores: vec![store.address()],
            ..QueryConfig::default()
        },
        &mut Registry::default(),
    );
    q.check_stores_now().await.unwrap();
    q.discovery_settles_at(Instant::now() + Duration::from_millis(400));
    assert!(q.ready().await.unwrap_err().contains("discovery"));
    let opts = RequestOptions {
        dedup: true,
        ..Default::default()
    };
    let out = q.query_instant("up", 60_000, &opts).await.unwrap();
    assert!(
        out.warnings.iter().any(|w| w.contains("has not settled")),
        "{:?}",
        out.warnings
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    q.ready().await.unwrap();
    let out = q.query_instant("up", 60_000, &opts).await.unwrap();
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
}

#[actix_rt::test]
async fn discovery_sources_are_united_and_replaced_one_by_one() {
    use super::store_set::{Candidate, CheckNow, SetSource, StoreSetActor};
    use actix::Actor;

    let a = serve(vec![], ext(&[("cluster", "a")])).await;
    let b = serve(vec![], ext(&[("cluster", "b")])).await;
    let cand = |s: &RunningStore| Candidate {
        address: s.address(),
        server_name: None,
        node_id: s.address(),
        promise: None,
    };
    let actor = StoreSetActor::new(&[], Duration::from_secs(60), Duration::from_secs(2)).start();
    actor
        .send(SetSource("gossip", vec![cand(&a)]))
        .await
        .unwrap();
    actor.send(SetSource("file", vec![cand(&b)])).await.unwrap();
    let names = |set: &[StoreStatus]| {
        let mut v: Vec<String> = set.iter().map(|s| s.name.clone()).collect();
        v.sort();
        v
    };
    let mut both = vec![a.address(), b.address()];
    both.sort();
    assert_eq!(names(&actor.send(CheckNow).await.unwrap()), both);
    // The file now lists nothing: only its store goes (it still answers,
    // so it left gracefully); gossip's stays.
    actor.send(SetSource("file", vec![])).await.unwrap();
    assert_eq!(
        names(&actor.send(CheckNow).await.unwrap()),
        vec![a.address()]
    );
}

/// The querier against purpose-built hostile stores (real tonic servers on
/// 127.0.0.1 that break the StoreAPI contract on purpose): each hostile
/// answer is dropped whole with a warning naming the store and counted by
/// reason, the honest store's answer comes through exactly, and with
/// partial responses off the query fails.
mod hostile_stores {
    use super::*;
    use crate::query::client::StoreLimits;
    use crate::query::fanout::StoreBudget;
    use crate::query::memstore::Hostile;

    fn honest_data() -> Vec<Series> {
        ["a", "b"]
            .iter()
            .map(|j| {
                series(
                    &[("__name__", "up"), ("job", j)],
                    samples(0, 3_600_000, SCRAPE, 1.0),
                )
            })
            .collect()
    }

    fn hostile_data() -> Vec<Series> {
        ["c", "d"]
            .iter()
            .map(|j| {
                series(
                    &[("__name__", "up"), ("job", j)],
                    samples(0, 3_600_000, SCRAPE, 2.0),
                )
            })
            .collect()
    }

    fn small_limits() -> StoreLimits {
        StoreLimits {
            max_message_bytes: 1 << 20,
            max_response_bytes: 8 << 20,
            max_series: 1_000,
            max_label_values: 1_000,
        }
    }

    fn rejected(registry: &Registry, reason: &str) -> u64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        let key = format!("skein_query_store_responses_rejected_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .map_or(0, |v| v.trim().parse().unwrap())
    }

    struct Pair {
        honest: RunningStore,
        hostile: RunningStore,
        stores: Vec<StoreStatus>,
    }

    async fn pair(h: Hostile) -> Pair {
        let honest = serve(honest_data(), ext(&[("cluster", "honest")])).await;
        let hostile = serve(
            hostile_data(),
            MemStoreOptions {
                hostile: Some(h),
                ..ext(&[("cluster", "hostile")])
            },
        )
        .await;
        let stores = vec![
            status(&honest.address()).await,
            status(&hostile.address()).await,
        ];
        Pair {
            honest,
            hostile,
            stores,
        }
    }

    fn budget(timeout: Duration) -> StoreBudget {
        StoreBudget {
            timeout,
            limits: small_limits(),
        }
    }

    /// Series through the fan-out: exactly the honest store's answer, the
    /// hostile store named in a warning and counted under `reason`; with
    /// partial responses off, an error naming it.
    async fn series_case(h: Hostile, reason: &str, skip_chunks: bool) {
        let p = pair(h).await;
        let q = SeriesQuery {
            max_time: 3_600_000,
            skip_chunks,
            ..query(vec![eq("__name__", "up")], true)
        };
        let m = QueryMetrics::unregistered();
        let want = fan_out_series(&p.stores[..1], &q, budget(Duration::from_secs(5)), &m)
            .await
            .unwrap();
        assert_eq!(want.series.len(), 2);
        let mut registry = Registry::default();
        let m = QueryMetrics::register(&mut registry);
        let out = fan_out_series(&p.stores, &q, budget(Duration::from_secs(2)), &m)
            .await
            .unwrap();
        assert_eq!(out.series, want.series, "{reason}: {:?}", out.warnings);
        assert_eq!(out.failed, vec![p.hostile.address()], "{reason}");
        assert!(
            out.warnings
                .iter()
                .any(|w| w.contains(&p.hostile.address())),
            "{reason}: {:?}",
            out.warnings
        );
        assert!(
            !out.warnings.iter().any(|w| w.contains(&p.honest.address())),
            "{:?}",
            out.warnings
        );
        assert_eq!(rejected(&registry, reason), 1, "{reason}");
        let strict = SeriesQuery {
            partial_response: false,
            ..q
        };
        match fan_out_series(&p.stores, &strict, budget(Duration::from_secs(2)), &m).await {
            Err(FanoutError::Unavailable(e)) => {
                assert!(e.contains(&p.hostile.address()), "{e}")
            }
            other => panic!("{reason}: partial_response=false must fail: {other:?}"),
        }
        assert_eq!(rejected(&registry, reason), 2, "{reason}");
    }

    #[tokio::test]
    async fn a_frame_over_the_message_size_limit() {
        series_case(Hostile::HugeFrame(2 << 20), "frame_too_large", false).await;
    }

    #[tokio::test]
    async fn a_repeated_series() {
        series_case(Hostile::RepeatedSeries, "unsorted", false).await;
    }

    #[tokio::test]
    async fn chunks_that_do_not_decode() {
        series_case(Hostile::CorruptXor, "corrupt_chunk", false).await;
    }

    #[tokio::test]
    async fn chunks_of_an_unknown_encoding() {
        series_case(Hostile::UnknownEncoding, "corrupt_chunk", false).await;
    }

    #[tokio::test]
    async fn chunks_with_min_time_after_max_time() {
        series_case(Hostile::MinAfterMax, "corrupt_chunk", false).await;
    }

    #[tokio::test]
    async fn chunks_outside_the_requested_range() {
        series_case(Hostile::ChunkOutOfRange, "chunk_out_of_range", false).await;
    }

    #[tokio::test]
    async fn endless_series_lists() {
        series_case(Hostile::Endless(5_000), "too_many_series", true).await;
    }

    #[tokio::test]
    async fn a_stream_that_never_ends() {
        series_case(
            Hostile::Trickle(Duration::from_millis(50)),
            "timeout",
            false,
        )
        .await;
    }

    #[tokio::test]
    async fn an_answer_over_the_response_size_limit() {
        // 5,000 series of a full hour each (a few hundred bytes a series)
        // pass a series cap of 1M but not 1 MiB.
        let p = pair(Hostile::Endless(5_000)).await;
        let q = SeriesQuery {
            max_time: 3_600_000,
            ..query(vec![eq("__name__", "up")], true)
        };
        let mut registry = Registry::default();
        let m = QueryMetrics::register(&mut registry);
        let limits = StoreLimits {
            max_series: 1_000_000,
            max_message_bytes: 256 << 10,
            max_response_bytes: 1 << 20,
            ..small_limits()
        };
        let out = fan_out_series(
            &p.stores,
            &q,
            StoreBudget {
                timeout: Duration::from_secs(10),
                limits,
            },
            &m,
        )
        .await
        .unwrap();
        assert_eq!(out.series.len(), 2);
        assert_eq!(out.failed, vec![p.hostile.address()]);
        assert_eq!(rejected(&registry, "response_too_large"), 1);
    }

    #[tokio::test]
    async fn endless_label_names_and_values() {
        let p = pair(Hostile::Endless(5_000)).await;
        let mut registry = Registry::default();
        let m = QueryMetrics::register(&mut registry);
        let q = LabelsQuery {
            start: 0,
            end: 3_600_000,
            partial_response: true,
            ..Default::default()
        };
        let values =
            labels_api::label_values(&p.stores, "job", &q, budget(Duration::from_secs(5)), &m)
                .await
                .unwrap();
        assert_eq!(values.data, vec!["a", "b"]);
        assert!(
            values
                .warnings
                .iter()
                .any(|w| w.contains(&p.hostile.address()) && w.contains("store_max_label_values")),
            "{:?}",
            values.warnings
        );
        let names = labels_api::label_names(&p.stores, &q, budget(Duration::from_secs(5)), &m)
            .await
            .unwrap();
        assert_eq!(names.data, vec!["__name__", "cluster", "job"]);
        assert_eq!(rejected(&registry, "too_many_values"), 2);
        let strict = LabelsQuery {
            partial_response: false,
            ..q
        };
        assert!(
            labels_api::label_names(&p.stores, &strict, budget(Duration::from_secs(5)), &m)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_engine_answers_with_the_honest_store_only() {
        let p = pair(Hostile::CorruptXor).await;
        let src = StoreApiSource::new(
            Arc::new(p.stores),
            SourceOptions {
                dedup: false,
                replica_labels: vec![],
                partial_response: true,
                store_timeout: Duration::from_secs(5),
                store_limits: small_limits(),
            },
            QueryMetrics::unregistered(),
        );
        let r = src
            .select(&[eq("__name__", "up")], &hints(0, 3_600_000))
            .await
            .unwrap();
        let jobs: Vec<_> = r.series.iter().map(|s| s.labels.get("job")).collect();
        assert_eq!(jobs, vec![Some("a"), Some("b")]);
        assert!(
            r.series
                .iter()
                .all(|s| s.samples.len() == 241 && s.samples.iter().all(|x| x.v == 1.0))
        );
        assert!(
            r.warnings.iter().any(|w| w.contains(&p.hostile.address())),
            "{:?}",
            r.warnings
        );
    }
}

/// A store found through gossip must report the label sets it announced:
/// refused (visible, counted once) while it does not, used once its
/// announcement agrees; a reconfigured store whose announcement follows
/// within the grace converges without a refusal; one whose announcement
/// never follows is refused after the grace. Refused stores are neither
/// queried nor warned about.
#[actix_rt::test]
async fn discovered_stores_must_report_the_label_sets_they_announced() {
    use super::store_set::{
        Candidate, CheckNow, LABEL_GRACE_ROUNDS, Promise, SetDiscovered, StoreRejection,
        StoreSetActor,
    };
    use actix::Actor;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;

    let cluster = |v: &str| vec![Labels::from_pairs([("cluster", v)])];
    let a = serve(
        vec![series(&[("__name__", "up")], samples(0, 1000, SCRAPE, 1.0))],
        ext(&[("cluster", "a")]),
    )
    .await;
    let addr = a.addr;
    let cand = |sets: Vec<Labels>| Candidate {
        address: addr.to_string(),
        server_name: None,
        node_id: "a".into(),
        promise: Some(Promise::new("fed", "a", sets)),
    };
    let counter: Family<Vec<(&'static str, String)>, Counter> = Family::default();
    let rejected = || {
        counter
            .get_or_create(&vec![("reason", "label_sets".to_string())])
            .get()
    };
    let actor = StoreSetActor::new(&[], Duration::from_secs(3600), Duration::from_secs(2))
        .counting_rejections(counter.clone())
        .start();
    let check = || async { actor.send(CheckNow).await.unwrap() };

    // 1. Its announcement has no label sets yet: not used, not refused.
    actor.send(SetDiscovered(vec![cand(vec![])])).await.unwrap();
    let set = check().await;
    assert!(
        !set[0].healthy && set[0].awaiting_announcement,
        "{:?}",
        set[0]
    );
    assert!(set[0].last_error.as_deref().unwrap().contains("waiting"));
    assert_eq!(rejected(), 0);

    // 2. It announced cluster="b" and reports cluster="a": refused with
    // the reason, counted once however many rounds, left out of queries
    // (no data, no warning).
    actor
        .send(SetDiscovered(vec![cand(cluster("b"))]))
        .await
        .unwrap();
    check().await;
    let set = check().await;
    assert!(!set[0].healthy);
    assert_eq!(set[0].refused, Some(StoreRejection::LabelSets));
    let err = set[0].last_error.clone().unwrap();
    assert!(
        err.contains("refused") && err.contains("cluster=\"a\"") && err.contains("cluster=\"b\""),
        "{err}"
    );
    assert_eq!(rejected(), 1);
    let sel = super::fanout::select_stores(&set, 0, 1000, &[]);
    assert!(sel.ready.is_empty() && sel.unavailable.is_empty());

    // 3. The announcement agrees: used.
    actor
        .send(SetDiscovered(vec![cand(cluster("a"))]))
        .await
        .unwrap();
    let set = check().await;
    assert!(set[0].healthy && set[0].refused.is_none(), "{:?}", set[0]);

    // 4. Prometheus is reconfigured (cluster="a2") before the announcement
    // follows: the verified label sets stay in use, then the announcement
    // catches up; no refusal.
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let restart = |v: &'static str| async move {
        MemStore::new(vec![], ext(&[("cluster", v)]))
            .serve_at(addr)
            .await
            .unwrap()
    };
    let a2 = restart("a2").await;
    for _ in 0..3 {
        let set = check().await;
        assert!(set[0].healthy, "{:?}", set[0]);
        assert_eq!(set[0].label_sets, cluster("a"));
    }
    actor
        .send(SetDiscovered(vec![cand(cluster("a2"))]))
        .await
        .unwrap();
    let set = check().await;
    assert!(
        set[0].healthy && set[0].label_sets == cluster("a2"),
        "{:?}",
        set[0]
    );
    assert_eq!(rejected(), 1);

    // 5. It changes again and its announcement never follows: refused
    // once the grace is over.
    drop(a2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _evil = restart("evil").await;
    for _ in 0..LABEL_GRACE_ROUNDS {
        assert!(check().await[0].healthy);
    }
    let set = check().await;
    assert_eq!(
        set[0].refused,
        Some(StoreRejection::LabelSets),
        "{:?}",
        set[0]
    );
    assert_eq!(rejected(), 2);
}

/// Addresses learned from gossip (LAN announcements, the WAN catalog) or
/// files must be `host:port`: one with a scheme or a path is refused,
/// counted by source and never dialled, the others are used.
#[actix_rt::test]
async fn discovered_addresses_with_a_scheme_are_refused_counted_and_not_dialled() {
    use super::store_set::Candidate;
    let good = serve(
        vec![series(
            &[("__name__", "up")],
            samples(0, 60_000, SCRAPE, 1.0),
        )],
        ext(&[("cluster", "a")]),
    )
    .await;
    let mut registry = Registry::default();
    let handle = QueryHandle::start(
        QueryConfig {
            info_interval: Duration::from_secs(60),
            ..Default::default()
        },
        &mut registry,
    );
    let cand = |address: String| Candidate {
        address,
        server_name: None,
        node_id: "n".into(),
        promise: None,
    };
    // A plaintext scheme pointing at the live store: it must not be used.
    handle.set_discovered(vec![
        cand(good.address()),
        cand(format!("http://{}", good.address())),
        cand(format!("{}/x", good.address())),
    ]);
    handle.set_source("file", vec![cand(format!("https://{}", good.address()))]);
    let stores = handle.check_stores_now().await.unwrap();
    let names: Vec<&str> = stores.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec![good.address().as_str()]);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(r#"skein_query_store_addresses_rejected_total{source="gossip"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"skein_query_store_addresses_rejected_total{source="file"} 1"#),
        "{text}"
    );
}

/// The dialer takes no scheme from an address: with TLS material or in
/// development mode, `http://` and `https://` addresses get no channel.
#[tokio::test]
async fn the_dialer_refuses_addresses_that_pick_their_transport() {
    for bad in [
        "http://127.0.0.1:1",
        "https://127.0.0.1:1",
        "127.0.0.1:1/p",
        "a b:1",
    ] {
        let e = client::channel(bad, client::Dialer::DevPlaintext, None).unwrap_err();
        assert!(e.to_string().contains("not a host:port"), "{bad}: {e}");
    }
    assert!(client::channel("127.0.0.1:1", client::Dialer::DevPlaintext, None).is_ok());
    assert!(client::channel("[::1]:1", client::Dialer::DevPlaintext, None).is_ok());
    let s = StoreStatus::new("http://127.0.0.1:1");
    assert!(s.channel.is_none());
    assert!(s.last_error.unwrap().contains("scheme"));
}
