//! Engine behaviour checked by hand against Prometheus semantics.

use skein_promql::{
    Engine, EngineOptions, Labels, MemSource, QueryError, QueryOptions, Sample, Series, Value,
};

fn counter(job: &str, step_ms: i64, n: i64, inc: f64) -> Series {
    Series::new(
        Labels::from_pairs([("__name__", "reqs_total"), ("job", job)]),
        (0..n)
            .map(|i| Sample {
                t: i * step_ms,
                v: i as f64 * inc,
            })
            .collect(),
    )
}

fn source() -> MemSource {
    MemSource::new(vec![
        counter("a", 15_000, 100, 1.5),
        counter("b", 15_000, 100, 3.0),
    ])
}

async fn instant(q: &str, t: i64) -> Result<Value, QueryError> {
    let e = Engine::new(EngineOptions::default());
    e.query_instant(&source(), q, t, &QueryOptions::default())
        .await
        .map(|o| o.value)
}

#[tokio::test]
async fn rate_of_a_steady_counter() {
    let Value::Vector(v) = instant("rate(reqs_total[1m])", 600_000).await.unwrap() else {
        panic!("not a vector");
    };
    assert_eq!(v.len(), 2);
    // 1.5 per 15s = 0.1/s; the metric name is dropped.
    assert!((v[0].v - 0.1).abs() < 1e-9, "{}", v[0].v);
    assert_eq!(v[0].labels, Labels::from_pairs([("job", "a")]));
}

#[tokio::test]
async fn sum_and_binary_ops() {
    let Value::Vector(v) = instant("sum(reqs_total) * 2", 30_000).await.unwrap() else {
        panic!("not a vector");
    };
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].v, (3.0 + 6.0) * 2.0);
    let Value::Vector(v) = instant("reqs_total > 4", 30_000).await.unwrap() else {
        panic!("not a vector");
    };
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].labels.metric_name(), Some("reqs_total"));
    let Value::Scalar { v, .. } = instant("1 + 2 * 3", 0).await.unwrap() else {
        panic!("not a scalar");
    };
    assert_eq!(v, 7.0);
}

#[tokio::test]
async fn range_query_is_sorted_matrix() {
    let e = Engine::new(EngineOptions::default());
    let out = e
        .query_range(
            &source(),
            "reqs_total",
            0,
            60_000,
            15_000,
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    let Value::Matrix(m) = out.value else {
        panic!("not a matrix")
    };
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].labels.get("job"), Some("a"));
    assert_eq!(m[0].samples.len(), 5);
}

#[tokio::test]
async fn errors_carry_prometheus_types() {
    let e = instant("sum(", 0).await.unwrap_err();
    assert_eq!(e.error_type(), "bad_data");
    assert!(e.to_string().contains("parse error"), "{e}");
    let opts = EngineOptions {
        max_samples: 10,
        ..Default::default()
    };
    let e = Engine::new(opts)
        .query_instant(
            &source(),
            "reqs_total[1h]",
            600_000,
            &QueryOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, QueryError::TooManySamples), "{e}");
}

#[tokio::test]
async fn range_queries_are_limited_to_11000_steps() {
    let e = Engine::new(EngineOptions::default());
    let err = e
        .query_range(
            &source(),
            "reqs_total",
            0,
            11_000_000,
            1000,
            &QueryOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "bad_data", "{err}");
    assert!(err.to_string().contains("11,000 points"), "{err}");
}

#[tokio::test]
async fn or_between_matchers_is_rejected() {
    let e = instant(r#"reqs_total{job="a" or job="b"}"#, 0)
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), 400, "{e}");
}

fn big_source(series: usize, samples: i64) -> MemSource {
    MemSource::new(
        (0..series)
            .map(|i| {
                let inst = i.to_string();
                Series::new(
                    Labels::from_pairs([("__name__", "m"), ("i", inst.as_str())]),
                    (0..samples)
                        .map(|t| Sample {
                            t: t * 1000,
                            v: t as f64,
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}

#[tokio::test]
async fn slow_queries_time_out() {
    let src = big_source(500, 20_000);
    let e = Engine::new(EngineOptions {
        timeout: std::time::Duration::from_millis(5),
        ..Default::default()
    });
    let err = e
        .query_range(
            &src,
            "quantile_over_time(0.5, m[10m])",
            0,
            20_000_000,
            2000,
            &QueryOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::Timeout), "{err}");
    assert_eq!(err.error_type(), "timeout");
}

#[test]
fn dropped_queries_stop_evaluating() {
    // One blocking thread: if a dropped query kept evaluating, the next
    // query could not start until it finished (minutes for this one).
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let src = big_source(500, 20_000);
        let e = Engine::new(EngineOptions::default());
        let opts = QueryOptions::default();
        let fut = e.query_range(
            &src,
            "quantile_over_time(0.5, m[10m])",
            0,
            20_000_000,
            2000,
            &opts,
        );
        let r = tokio::time::timeout(std::time::Duration::from_millis(50), fut).await;
        assert!(r.is_err(), "query should not finish in 50ms");
        let started = std::time::Instant::now();
        let out = e
            .query_instant(&src, "count(m)", 1000, &opts)
            .await
            .unwrap();
        let Value::Vector(v) = out.value else {
            panic!("not a vector")
        };
        assert_eq!(v[0].v, 500.0);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "follow-up query waited {:?}",
            started.elapsed()
        );
    });
}

#[tokio::test]
async fn too_many_points_stop_before_building_the_result() {
    // 5M samples load within the limit, but 500 series x 10,001 steps
    // would be 5.0005M points; the limit is checked while selecting, so the
    // query fails instead of building them.
    let src = big_source(500, 10_000);
    let e = Engine::new(EngineOptions {
        max_samples: 5_000_001,
        ..Default::default()
    });
    let err = e
        .query_range(&src, "m", 0, 10_000_000, 1000, &QueryOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::TooManySamples), "{err}");
    assert_eq!(err.http_status(), 422);
}

#[tokio::test]
async fn deep_nesting_is_an_error_not_a_crash() {
    let ok = format!("{}reqs_total{}", "(".repeat(250), ")".repeat(250));
    let Value::Vector(v) = instant(&ok, 30_000).await.unwrap() else {
        panic!("not a vector")
    };
    assert_eq!(v.len(), 2);
    let deep = format!("{}1{}", "(".repeat(20_000), ")".repeat(20_000));
    let e = instant(&deep, 0).await.unwrap_err();
    assert_eq!(e.error_type(), "bad_data", "{e}");
}

#[tokio::test]
async fn huge_operator_chains_are_refused_before_parsing() {
    let q = format!("reqs_total{}", " + reqs_total".repeat(50_000));
    let e = instant(&q, 0).await.unwrap_err();
    assert_eq!(e.error_type(), "bad_data", "{e}");
    // Operators inside strings do not count.
    let q = format!(
        "label_replace(reqs_total, \"x\", \"{}\", \"job\", \"(.*)\")",
        "+".repeat(10_000)
    );
    assert!(instant(&q, 30_000).await.is_ok());
}

#[tokio::test]
async fn pathological_rewrite_inputs_fail_fast() {
    let started = std::time::Instant::now();
    for q in [
        "[".repeat(200_000),
        "x smoothed ".repeat(20_000),
        format!("x{}", "[1m+1m]".repeat(20_000)),
    ] {
        assert!(instant(&q, 0).await.is_err());
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[tokio::test]
async fn deeply_nested_duration_expressions_are_refused() {
    let q = format!("x[{}1m{}]", "(".repeat(2000), ")".repeat(2000));
    assert!(instant(&q, 0).await.is_err());
}

#[test]
fn query_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let e = Engine::new(EngineOptions::default());
    let src = source();
    let opts = QueryOptions::default();
    let f = e.query_instant(&src, "up", 0, &opts);
    assert_send(&f);
    let g = e.query_range(&src, "up", 0, 1000, 1000, &opts);
    assert_send(&g);
}

#[tokio::test]
async fn lookback_override_applies_and_zero_means_default() {
    let e = Engine::new(EngineOptions::default());
    // Last sample at 99 * 15s = 1485s; at 1500s it is 15s old.
    let at = 1_500_000;
    let short = QueryOptions {
        lookback_delta: Some(std::time::Duration::from_secs(10)),
    };
    let out = e
        .query_instant(&source(), "reqs_total", at, &short)
        .await
        .unwrap();
    assert_eq!(out.value, Value::Vector(vec![]));
    let zero = QueryOptions {
        lookback_delta: Some(std::time::Duration::ZERO),
    };
    let out = e
        .query_instant(&source(), "reqs_total", at, &zero)
        .await
        .unwrap();
    let Value::Vector(v) = out.value else {
        panic!("not a vector")
    };
    assert_eq!(v.len(), 2);
}
