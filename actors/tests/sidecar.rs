//! The sidecar against a real Prometheus 2.42: StoreAPI Series (all matcher
//! types, external labels, skip_chunks, replica labels, limit), LabelNames,
//! LabelValues, Info, invalid requests, a Prometheus without external
//! labels, and a Prometheus that goes away.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::{Actor, Addr};
use prometheus_client::registry::Registry;
use skein_actors::sidecar::{
    GetState, IsReady, PrometheusClient, Refresh, SidecarActor, SidecarConfig, SidecarStore,
};
use skein_proto::prometheus::read_request::ResponseType;
use skein_proto::thanos::info::InfoRequest;
use skein_proto::thanos::info::info_client::InfoClient;
use skein_proto::thanos::info::info_server::InfoServer;
use skein_proto::thanos::store_client::StoreClient;
use skein_proto::thanos::store_server::StoreServer;
use skein_proto::thanos::{
    LabelMatcher, LabelNamesRequest, LabelValuesRequest, SeriesRequest, label_matcher::Type,
    series_response,
};
use skein_tsdb::chunkenc::decode_xor_all;
use support::prometheus::TestPrometheus;
use tonic::Code;
use tonic::transport::Channel;

const EXT_CONFIG: &str =
    "global:\n  scrape_interval: 1m\n  external_labels:\n    cluster: c1\n    replica: r0\n";
const STEP_S: i64 = 15;
const SAMPLES: i64 = 240;

type LabelSet = Vec<(String, String)>;

/// One test series: labels (without external ones) and samples (ms, value).
struct TestSeries {
    labels: LabelSet,
    samples: Vec<(i64, f64)>,
}

fn ls(pairs: &[(&str, &str)]) -> LabelSet {
    let mut v: LabelSet = pairs
        .iter()
        .map(|(n, val)| (n.to_string(), val.to_string()))
        .collect();
    v.sort();
    v
}

/// Series starting at the start of a 2h block 4 to 6 hours ago (so promtool
/// writes one block), one sample every 15 s for an hour.
fn dataset() -> (i64, Vec<TestSeries>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t0 = (now - 4 * 3600) / 7200 * 7200;
    let defs: Vec<(LabelSet, f64, f64)> = vec![
        (
            ls(&[("__name__", "up"), ("instance", "1"), ("job", "a")]),
            0.0,
            1.0,
        ),
        (
            ls(&[("__name__", "up"), ("instance", "2"), ("job", "a")]),
            1000.0,
            1.0,
        ),
        (
            ls(&[("__name__", "up"), ("instance", "1"), ("job", "b")]),
            2000.0,
            0.5,
        ),
        (ls(&[("__name__", "other"), ("job", "a")]), 3000.0, 1.0),
        // With the external label `replica`, {x, job=a} sorts after
        // {x, job=a, region=eu}: Prometheus's order is the other way.
        (ls(&[("__name__", "x"), ("job", "a")]), 4000.0, 2.0),
        (
            ls(&[("__name__", "x"), ("job", "a"), ("region", "eu")]),
            5000.0,
            -1.0,
        ),
    ];
    let series = defs
        .into_iter()
        .map(|(labels, base, slope)| TestSeries {
            labels,
            samples: (0..SAMPLES)
                .map(|i| ((t0 + i * STEP_S) * 1000, base + slope * i as f64))
                .collect(),
        })
        .collect();
    (t0 * 1000, series)
}

fn openmetrics(series: &[TestSeries]) -> String {
    let mut by_name: BTreeMap<String, Vec<&TestSeries>> = BTreeMap::new();
    for s in series {
        let name = s
            .labels
            .iter()
            .find(|(n, _)| n == "__name__")
            .unwrap()
            .1
            .clone();
        by_name.entry(name).or_default().push(s);
    }
    let mut out = String::new();
    for (name, ss) in by_name {
        out.push_str(&format!("# TYPE {name} gauge\n"));
        for s in ss {
            let lbls: Vec<String> = s
                .labels
                .iter()
                .filter(|(n, _)| n != "__name__")
                .map(|(n, v)| format!("{n}=\"{v}\""))
                .collect();
            for (t, v) in &s.samples {
                out.push_str(&format!("{name}{{{}}} {v} {}\n", lbls.join(","), t / 1000));
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

fn with_ext(labels: &LabelSet) -> LabelSet {
    let mut v = labels.clone();
    v.push(("cluster".into(), "c1".into()));
    v.push(("replica".into(), "r0".into()));
    v.sort();
    v
}

fn m(t: Type, name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: t as i32,
        name: name.into(),
        value: value.into(),
    }
}

/// An independent matcher for the expectations (anchored regexes).
fn matches(ms: &[LabelMatcher], labels: &LabelSet) -> bool {
    ms.iter().all(|mm| {
        let v = labels
            .iter()
            .find(|(n, _)| *n == mm.name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let re = || regex::Regex::new(&format!("^(?:{})$", mm.value)).unwrap();
        match Type::try_from(mm.r#type).unwrap() {
            Type::Eq => v == mm.value,
            Type::Neq => v != mm.value,
            Type::Re => re().is_match(v),
            Type::Nre => !re().is_match(v),
        }
    })
}

/// Expected answer: matching series with external labels, samples in range,
/// sorted by label set.
fn expected(
    data: &[TestSeries],
    ms: &[LabelMatcher],
    mint: i64,
    maxt: i64,
) -> Vec<(LabelSet, Vec<(i64, f64)>)> {
    let mut out: Vec<(LabelSet, Vec<(i64, f64)>)> = data
        .iter()
        .map(|s| (with_ext(&s.labels), s))
        .filter(|(l, _)| matches(ms, l))
        .map(|(l, s)| {
            let samples = s
                .samples
                .iter()
                .copied()
                .filter(|(t, _)| *t >= mint && *t <= maxt)
                .collect();
            (l, samples)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

struct Fixture {
    prom: Option<TestPrometheus>,
    addr: Addr<SidecarActor>,
    registry: Registry,
    store: StoreClient<Channel>,
    info: InfoClient<Channel>,
}

async fn start_sidecar(prom: TestPrometheus) -> Fixture {
    let url = prom.url();
    start_sidecar_at(Some(prom), &url).await
}

async fn start_sidecar_at(prom: Option<TestPrometheus>, url: &str) -> Fixture {
    let mut registry = Registry::default();
    let cfg = SidecarConfig {
        prometheus_url: url.to_string(),
        refresh_interval: Duration::from_secs(30),
        request_timeout: Duration::from_secs(5),
    };
    let actor = SidecarActor::new(cfg, &mut registry).unwrap();
    let metrics = actor.metrics();
    let addr = actor.start();
    let service = SidecarStore::new(addr.clone(), metrics);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(StoreServer::new(service.clone()))
            .add_service(InfoServer::new(service))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Fixture {
        prom,
        addr,
        registry,
        store: StoreClient::new(channel.clone()),
        info: InfoClient::new(channel),
    }
}

async fn wait_ready(addr: &Addr<SidecarActor>) {
    for _ in 0..100 {
        if addr.send(IsReady).await.unwrap() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let st = addr.send(GetState).await.unwrap();
    panic!("sidecar not ready: {:?}", st.last_error);
}

/// Every series of a Series call: labels, decoded samples, raw chunk count.
type Got = Vec<(LabelSet, Vec<(i64, f64)>, usize)>;

async fn series(
    client: &mut StoreClient<Channel>,
    req: SeriesRequest,
) -> Result<Got, tonic::Status> {
    let mut stream = client.series(req).await?.into_inner();
    let mut out = Vec::new();
    while let Some(resp) = stream.message().await? {
        let mut batch = Vec::new();
        match resp.result {
            Some(series_response::Result::Series(s)) => batch.push(s),
            Some(series_response::Result::Batch(b)) => batch.extend(b.series),
            other => panic!("unexpected response {other:?}"),
        }
        for s in batch {
            let labels: LabelSet = s.labels.into_iter().map(|l| (l.name, l.value)).collect();
            let mut samples = Vec::new();
            for c in &s.chunks {
                let raw = c.raw.as_ref().expect("raw chunk");
                assert_eq!(raw.r#type, 0, "XOR");
                assert_eq!(raw.hash, xxhash_rust::xxh64::xxh64(&raw.data, 0));
                let decoded = decode_xor_all(&raw.data).unwrap();
                assert_eq!(decoded.first().unwrap().0, c.min_time);
                assert_eq!(decoded.last().unwrap().0, c.max_time);
                samples.extend(decoded);
            }
            out.push((labels, samples, s.chunks.len()));
        }
    }
    Ok(out)
}

fn trim(got: Got, mint: i64, maxt: i64) -> Vec<(LabelSet, Vec<(i64, f64)>)> {
    got.into_iter()
        .map(|(l, s, _)| {
            (
                l,
                s.into_iter()
                    .filter(|(t, _)| *t >= mint && *t <= maxt)
                    .collect(),
            )
        })
        .collect()
}

fn req(ms: Vec<LabelMatcher>, mint: i64, maxt: i64) -> SeriesRequest {
    SeriesRequest {
        min_time: mint,
        max_time: maxt,
        matchers: ms,
        ..Default::default()
    }
}

#[actix_rt::test]
async fn sidecar_serves_prometheus_over_the_store_api() {
    let (t0, data) = dataset();
    let prom = TestPrometheus::start(EXT_CONFIG, Some(&openmetrics(&data))).await;
    let mut f = start_sidecar(prom).await;
    wait_ready(&f.addr).await;
    let tend = t0 + (SAMPLES - 1) * STEP_S * 1000;

    // Info: external labels, component, time range.
    let info = f.info.info(InfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.component_type, "sidecar");
    assert_eq!(info.label_sets.len(), 1);
    let ext: LabelSet = info.label_sets[0]
        .labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
    assert_eq!(ext, ls(&[("cluster", "c1"), ("replica", "r0")]));
    let store_info = info.store.unwrap();
    assert_eq!(store_info.min_time, t0);
    assert_eq!(store_info.max_time, i64::MAX);
    assert!(store_info.supports_without_replica_labels);

    // Series with every matcher type, full range and a middle window.
    let cases: Vec<Vec<LabelMatcher>> = vec![
        vec![m(Type::Eq, "__name__", "up"), m(Type::Eq, "job", "a")],
        vec![m(Type::Eq, "__name__", "up"), m(Type::Neq, "job", "a")],
        vec![
            m(Type::Re, "__name__", "up|other"),
            m(Type::Re, "instance", "1|"),
        ],
        vec![m(Type::Eq, "__name__", "up"), m(Type::Nre, "instance", "2")],
        vec![m(Type::Re, "__name__", "u.")],
        vec![m(Type::Re, "__name__", "u")], // anchored: matches nothing
        vec![m(Type::Re, "job", ".+")],
        vec![m(Type::Re, "cluster", "c.*"), m(Type::Eq, "job", "b")],
        vec![m(Type::Eq, "replica", "r0"), m(Type::Eq, "__name__", "x")],
        vec![m(Type::Eq, "cluster", "other"), m(Type::Eq, "job", "a")],
        vec![m(Type::Nre, "replica", "r.*"), m(Type::Eq, "job", "a")],
    ];
    let windows = [(t0, tend), (t0 + 20 * 60 * 1000, t0 + 40 * 60 * 1000 - 1)];
    for ms in &cases {
        for (mint, maxt) in windows {
            let got = series(&mut f.store, req(ms.clone(), mint, maxt))
                .await
                .unwrap();
            let want = expected(&data, ms, mint, maxt);
            let labels: Vec<&LabelSet> = got.iter().map(|g| &g.0).collect();
            let mut sorted = labels.clone();
            sorted.sort();
            assert_eq!(labels, sorted, "not sorted for {ms:?}");
            assert_eq!(
                trim(got, mint, maxt),
                want,
                "matchers {ms:?} window {mint}..{maxt}"
            );
        }
    }
    // The ordering case: external labels change the order Prometheus used.
    let got = series(
        &mut f.store,
        req(vec![m(Type::Eq, "__name__", "x")], t0, tend),
    )
    .await
    .unwrap();
    let names: Vec<LabelSet> = got.iter().map(|g| g.0.clone()).collect();
    assert_eq!(
        names,
        vec![
            ls(&[
                ("__name__", "x"),
                ("cluster", "c1"),
                ("job", "a"),
                ("region", "eu"),
                ("replica", "r0")
            ]),
            ls(&[
                ("__name__", "x"),
                ("cluster", "c1"),
                ("job", "a"),
                ("replica", "r0")
            ]),
        ]
    );
    // Full range: 240 samples stream as two XOR chunks passed through.
    assert_eq!(got[0].1.len(), SAMPLES as usize);
    assert_eq!(got[0].2, 2);

    // skip_chunks: labels only.
    let ms = vec![m(Type::Eq, "__name__", "up")];
    let mut r = req(ms.clone(), t0, tend);
    r.skip_chunks = true;
    let got = series(&mut f.store, r).await.unwrap();
    let want: Vec<LabelSet> = expected(&data, &ms, t0, tend)
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(got.iter().map(|g| g.0.clone()).collect::<Vec<_>>(), want);
    assert!(got.iter().all(|g| g.2 == 0));

    // without_replica_labels and limit, batched answers.
    let mut r = req(vec![m(Type::Eq, "__name__", "up")], t0, tend);
    r.without_replica_labels = vec!["replica".into()];
    r.limit = 2;
    r.response_batch_size = 64;
    let got = series(&mut f.store, r).await.unwrap();
    assert_eq!(
        got.iter().map(|g| g.0.clone()).collect::<Vec<_>>(),
        vec![
            ls(&[
                ("__name__", "up"),
                ("cluster", "c1"),
                ("instance", "1"),
                ("job", "a")
            ]),
            ls(&[
                ("__name__", "up"),
                ("cluster", "c1"),
                ("instance", "1"),
                ("job", "b")
            ]),
        ]
    );

    // Invalid requests.
    let bad = series(&mut f.store, req(vec![m(Type::Re, "job", "(")], t0, tend))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    let mut unknown = m(Type::Eq, "job", "a");
    unknown.r#type = 9;
    let bad = series(&mut f.store, req(vec![unknown], t0, tend))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let bad = series(
        &mut f.store,
        req(vec![m(Type::Eq, "cluster", "c1")], t0, tend),
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    // LabelNames / LabelValues.
    let names = f
        .store
        .label_names(LabelNamesRequest {
            start: t0,
            end: tend,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .names;
    assert_eq!(
        names,
        vec![
            "__name__", "cluster", "instance", "job", "region", "replica"
        ]
    );
    let names = f
        .store
        .label_names(LabelNamesRequest {
            start: t0,
            end: tend,
            matchers: vec![m(Type::Eq, "job", "b")],
            without_replica_labels: vec!["replica".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .names;
    assert_eq!(names, vec!["__name__", "cluster", "instance", "job"]);
    let values = |label: &str, ms: Vec<LabelMatcher>| LabelValuesRequest {
        label: label.into(),
        start: t0,
        end: tend,
        matchers: ms,
        ..Default::default()
    };
    let v = f
        .store
        .label_values(values("job", vec![]))
        .await
        .unwrap()
        .into_inner()
        .values;
    assert_eq!(v, vec!["a", "b"]);
    let v = f
        .store
        .label_values(values("instance", vec![m(Type::Re, "job", "b")]))
        .await
        .unwrap()
        .into_inner()
        .values;
    assert_eq!(v, vec!["1"]);
    let v = f
        .store
        .label_values(values("cluster", vec![]))
        .await
        .unwrap()
        .into_inner()
        .values;
    assert_eq!(v, vec!["c1"]);
    let v = f
        .store
        .label_values(values("job", vec![m(Type::Eq, "cluster", "zz")]))
        .await
        .unwrap()
        .into_inner()
        .values;
    assert!(v.is_empty());
    let v = f
        .store
        .label_values(values("cluster", vec![m(Type::Eq, "job", "nope")]))
        .await
        .unwrap()
        .into_inner()
        .values;
    assert!(v.is_empty());
    let bad = f
        .store
        .label_values(values("job", vec![m(Type::Nre, "x", "[")]))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let bad = f
        .store
        .label_values(values("a-b", vec![]))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    // The SAMPLES answer, re-encoded, equals the streamed one.
    let client =
        PrometheusClient::new(&f.prom.as_ref().unwrap().url(), Duration::from_secs(5)).unwrap();
    let ms = [skein_promql::LabelMatcher::new(
        "__name__",
        skein_promql::MatchOp::Equal,
        "up",
    )];
    let mut streamed = client
        .remote_read(t0, tend, &ms, &[ResponseType::StreamedXorChunks])
        .await
        .unwrap();
    let mut sampled = client
        .remote_read(t0, tend, &ms, &[ResponseType::Samples])
        .await
        .unwrap();
    let mut n = 0;
    loop {
        let (a, b) = (
            streamed.next().await.unwrap(),
            sampled.next().await.unwrap(),
        );
        let (Some(a), Some(b)) = (a, b) else {
            assert!(n == 3, "series counts differ after {n}");
            break;
        };
        assert_eq!(a.labels, b.labels);
        let decode = |s: &skein_actors::sidecar::RawSeries| -> Vec<(i64, f64)> {
            s.chunks
                .iter()
                .flat_map(|c| decode_xor_all(&c.raw.as_ref().unwrap().data).unwrap())
                .collect()
        };
        assert_eq!(decode(&a), decode(&b));
        assert_eq!(b.chunks.len(), 2, "240 samples make two chunks of 120");
        n += 1;
    }

    // Metrics.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &f.registry).unwrap();
    for want in [
        "skein_sidecar_prometheus_up 1",
        "skein_sidecar_requests_total{api=\"series\",outcome=\"success\"}",
        "skein_sidecar_requests_total{api=\"series\",outcome=\"invalid\"} 3",
        "skein_sidecar_invalid_requests_total{api=\"label_values\"} 2",
        "skein_sidecar_remote_read_bytes_total",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }

    // Prometheus goes away: Series is Unavailable, then the sidecar is not ready.
    f.prom.as_mut().unwrap().stop();
    let err = series(&mut f.store, req(vec![m(Type::Eq, "job", "a")], t0, tend))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("prometheus"), "{err:?}");
    let err = f
        .store
        .label_names(LabelNamesRequest {
            start: t0,
            end: tend,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(!f.addr.send(Refresh).await.unwrap());
    assert!(!f.addr.send(IsReady).await.unwrap());
    let err = f.info.info(InfoRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(err.message(), "not ready");
    let err = series(&mut f.store, req(vec![m(Type::Eq, "job", "a")], t0, tend))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &f.registry).unwrap();
    assert!(text.contains("skein_sidecar_prometheus_up 0"), "{text}");
}

#[actix_rt::test]
async fn prometheus_without_external_labels_is_refused() {
    let prom = TestPrometheus::start("global:\n  scrape_interval: 1m\n", None).await;
    let mut f = start_sidecar(prom).await;
    assert!(!f.addr.send(Refresh).await.unwrap());
    let state = f.addr.send(GetState).await.unwrap();
    assert!(!state.ready);
    let why = state.last_error.clone().unwrap();
    assert!(why.contains("global.external_labels"), "{why}");
    let err = f.info.info(InfoRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    let err = series(&mut f.store, req(vec![m(Type::Eq, "job", "a")], 0, 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("global.external_labels"), "{err:?}");
}

#[actix_rt::test]
async fn sidecar_becomes_ready_when_prometheus_comes_up() {
    let port = support::prometheus::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut f = start_sidecar_at(None, &url).await;
    assert!(!f.addr.send(Refresh).await.unwrap());
    let err = f.info.info(InfoRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    f.prom = Some(TestPrometheus::start_on(port, EXT_CONFIG, None).await);
    // No Refresh: the actor's own retry loop (every 2 s while not ready)
    // must notice.
    let mut ready = false;
    for _ in 0..100 {
        if f.addr.send(IsReady).await.unwrap() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "sidecar did not become ready by itself");
    let info = f.info.info(InfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.label_sets[0].labels.len(), 2);
}

/// Many series over several metric names, some of which sort differently
/// once external labels are added: the whole answer arrives complete and
/// sorted, through many remote-read frames. Prints the time taken.
#[actix_rt::test]
async fn large_answer_is_complete_and_sorted() {
    let (t0, _) = dataset();
    let mut data = Vec::new();
    for metric in 0..8 {
        for a in 0..25 {
            for b in 0..10 {
                // Every tenth series lacks `b` (it sorts before its
                // siblings in Prometheus but after them once `cluster` and
                // `replica` are added).
                let mut labels = vec![
                    ("__name__".to_string(), format!("metric_{metric}")),
                    ("a".to_string(), format!("{a:03}")),
                ];
                if b > 0 {
                    labels.push(("b".to_string(), format!("{b}")));
                }
                let base = (metric * 1000 + a * 10 + b) as f64;
                data.push(TestSeries {
                    labels,
                    samples: (0..SAMPLES)
                        .map(|i| (t0 + i * STEP_S * 1000, base + i as f64))
                        .collect(),
                });
            }
        }
    }
    let prom = TestPrometheus::start(EXT_CONFIG, Some(&openmetrics(&data))).await;
    let mut f = start_sidecar(prom).await;
    wait_ready(&f.addr).await;
    let tend = t0 + (SAMPLES - 1) * STEP_S * 1000;
    let ms = vec![m(Type::Re, "__name__", "metric_.*")];
    let started = std::time::Instant::now();
    let got = series(&mut f.store, req(ms.clone(), t0, tend))
        .await
        .unwrap();
    let took = started.elapsed();
    let want = expected(&data, &ms, t0, tend);
    assert_eq!(got.len(), want.len());
    let labels: Vec<&LabelSet> = got.iter().map(|g| &g.0).collect();
    let mut sorted = labels.clone();
    sorted.sort();
    assert_eq!(labels, sorted, "answer not sorted");
    assert_eq!(trim(got, t0, tend), want);
    let samples = want.iter().map(|w| w.1.len()).sum::<usize>();
    eprintln!(
        "Series: {} series, {samples} samples in {took:?} ({:.0} samples/s, debug build)",
        want.len(),
        samples as f64 / took.as_secs_f64()
    );
}
