//! Hostile queries against the engine: each gets an error with the
//! Prometheus error type, never a panic, a stack overflow or an allocation
//! the limits do not allow.

use std::sync::atomic::{AtomicUsize, Ordering};

use skein_promql::{
    Engine, EngineOptions, LabelMatcher, Labels, MemSource, ParseLimits, QueryError, QueryOptions,
    Sample, SelectHints, SelectResult, Series, SeriesSource, SourceError, Value,
};

fn gauge(job: &str, n: i64) -> Series {
    Series::new(
        Labels::from_pairs([("__name__", "x"), ("job", job)]),
        (0..n)
            .map(|i| Sample {
                t: i * 15_000,
                v: i as f64,
            })
            .collect(),
    )
}

/// A [`MemSource`] that counts the selections made through it.
struct Counting {
    inner: MemSource,
    selects: AtomicUsize,
}

impl Counting {
    fn new() -> Self {
        Counting {
            inner: MemSource::new(vec![gauge("a", 400), gauge("b", 400)]),
            selects: AtomicUsize::new(0),
        }
    }
}

#[async_trait::async_trait]
impl SeriesSource for Counting {
    async fn select(
        &self,
        matchers: &[LabelMatcher],
        hints: &SelectHints,
    ) -> Result<SelectResult, SourceError> {
        self.selects.fetch_add(1, Ordering::Relaxed);
        self.inner.select(matchers, hints).await
    }
}

fn engine(max_samples: usize, parse: ParseLimits) -> Engine {
    Engine::new(EngineOptions {
        max_samples,
        parse,
        ..Default::default()
    })
}

async fn instant(e: &Engine, src: &Counting, q: &str) -> Result<Value, QueryError> {
    e.query_instant(src, q, 3_000_000, &QueryOptions::default())
        .await
        .map(|o| o.value)
}

#[tokio::test]
async fn non_ascii_outside_strings_is_bad_data_not_a_panic() {
    let src = Counting::new();
    let e = engine(50_000_000, ParseLimits::default());
    // Once a panic in the `info()` rewrite (a str sliced inside 'ö').
    let err = instant(&e, &src, "x + größe").await.unwrap_err();
    assert_eq!((err.error_type(), err.http_status()), ("bad_data", 400));
    assert_eq!(
        err.to_string(),
        "1:7: parse error: unexpected character: 'ö'"
    );
    assert_eq!(err.rejection_reason(), Some("non_ascii"));
    for q in [
        "info(größe)",
        "größe offset 5m",
        "x[5m] smöothed",
        "x{a=\"ö\"} + ö",
    ] {
        let err = instant(&e, &src, q).await.unwrap_err();
        assert_eq!(err.error_type(), "bad_data", "{q}: {err}");
    }
    // Inside strings it keeps working.
    let Value::Vector(v) = instant(&e, &src, "x{job=~\"a|größe\"}").await.unwrap() else {
        panic!("not a vector");
    };
    assert_eq!(v.len(), 1);
    assert_eq!(src.selects.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn subquery_grids_are_counted_before_fetching() {
    let src = Counting::new();
    // 3,600 one-second steps cost 7,200 samples of grid: over 5,000.
    // (The evaluation itself would hold 3,600 points per series, under
    // the limit: the grid was not counted before.)
    let e = engine(5_000, ParseLimits::default());
    let err = instant(&e, &src, "max_over_time(x{job=\"a\"}[1h:1s])")
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::TooManySamples), "{err}");
    assert_eq!((err.error_type(), err.http_status()), ("execution", 422));
    assert_eq!(src.selects.load(Ordering::Relaxed), 0, "fetched anyway");
    // Within the limit it answers.
    let e = engine(10_000, ParseLimits::default());
    assert!(
        instant(&e, &src, "max_over_time(x{job=\"a\"}[1h:1s])")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn subquery_bombs_are_refused_before_allocating() {
    let src = Counting::new();
    let e = engine(50_000_000, ParseLimits::default());
    for q in [
        // 31.5 billion steps, nested.
        "max_over_time(max_over_time(x[1y:1ms])[1y:1ms])",
        // 31.5 million steps: under the sample limit as a step count, but
        // its grid alone (timestamps and per-step lists) is over 1 GB.
        "max_over_time(x[1y:1s])",
        // Nested subqueries widen the grids.
        "max_over_time(max_over_time(max_over_time(x[90d:1s])[90d:1s])[90d:1s])",
    ] {
        let err = instant(&e, &src, q).await.unwrap_err();
        assert!(matches!(err, QueryError::TooManySamples), "{q}: {err}");
        assert_eq!(err.rejection_reason(), Some("too_many_samples"));
    }
    assert_eq!(src.selects.load(Ordering::Relaxed), 0);
    // A range query over a subquery multiplies nothing: the grid is the
    // union of the steps.
    let ok = e
        .query_range(
            &src,
            "max_over_time(x[1h:1m])",
            0,
            6_000_000,
            60_000,
            &QueryOptions::default(),
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
}

/// At the hard ceilings the parser, the planner and the evaluator run on
/// ordinary 2 MiB thread stacks (the engine evaluates on a blocking
/// thread; this test runs on one too).
#[tokio::test]
async fn the_hard_ceilings_are_safe_for_the_stack() {
    let src = Counting::new();
    let ceiling = ParseLimits {
        max_depth: skein_promql::parse::HARD_MAX_DEPTH,
        max_operators: skein_promql::parse::HARD_MAX_OPERATORS,
        ..Default::default()
    };
    let d = skein_promql::parse::HARD_MAX_DEPTH;
    let e = engine(50_000_000, ceiling.clone());
    let deep_parens = format!("{}x{}", "(".repeat(d), ")".repeat(d));
    let deep_sums = format!("{}x{}", "sum(".repeat(d), ")".repeat(d));
    let deep_abs = format!("{}x{}", "abs(".repeat(d), ")".repeat(d));
    let chain = format!("x{}", " + x".repeat(d));
    let minus = format!("{}x", "-".repeat(d));
    for q in [&deep_parens, &deep_sums, &deep_abs, &chain, &minus] {
        let out = instant(&e, &src, q).await;
        assert!(out.is_ok(), "{}...: {:?}", &q[..20], out.err());
    }
    // One more is refused, not run.
    let err = instant(
        &e,
        &src,
        &format!("{}x{}", "(".repeat(d + 1), ")".repeat(d + 1)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.rejection_reason(), Some("too_deep"));
    // The longest operator chain the guard lets through parses (and is
    // refused for its depth), without overflowing the stack.
    let long = format!(
        "x{}",
        " + x".repeat(skein_promql::parse::HARD_MAX_OPERATORS)
    );
    let err = instant(&e, &src, &long).await.unwrap_err();
    assert_eq!(err.rejection_reason(), Some("too_deep"));
    let longer = format!(
        "x{}",
        " + x".repeat(skein_promql::parse::HARD_MAX_OPERATORS + 1)
    );
    let err = instant(&e, &src, &longer).await.unwrap_err();
    assert_eq!(err.rejection_reason(), Some("too_many_operators"));
}

#[tokio::test]
async fn oversized_regexes_are_bad_data() {
    let src = Counting::new();
    let e = engine(
        50_000_000,
        ParseLimits {
            max_regex_bytes: 200_000,
            ..Default::default()
        },
    );
    let err = instant(&e, &src, "x{job=~\"a{1000}{1000}\"}")
        .await
        .unwrap_err();
    assert_eq!((err.error_type(), err.http_status()), ("bad_data", 400));
    assert_eq!(err.rejection_reason(), Some("regex_too_large"));
    let alternation: Vec<String> = (0..5_000).map(|i| format!("job_{i:06}")).collect();
    let q = format!("x{{job=~\"{}\"}}", alternation.join("|"));
    let err = instant(&e, &src, &q).await.unwrap_err();
    assert_eq!(err.rejection_reason(), Some("regex_too_large"));
    assert_eq!(src.selects.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn parse_errors_on_long_or_deep_input_stay_bounded() {
    let src = Counting::new();
    let e = engine(50_000_000, ParseLimits::default());
    // Unbalanced nesting through the position search: refused by the
    // guard before any parse (once a stack overflow).
    let err = instant(&e, &src, &format!("{}x", "(".repeat(50_000)))
        .await
        .unwrap_err();
    assert_eq!(err.rejection_reason(), Some("too_deep"));
    // Unbalanced nesting within the depth limit: a positioned parse
    // error.
    let err = instant(&e, &src, &format!("{}x", "(".repeat(200)))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "1:202: parse error: unclosed left parenthesis"
    );
    // A long query with a mistake at its end: an answer (maybe without a
    // position), not minutes of searching.
    let long = format!("x{{job=\"{}\"}} +", "y".repeat(100_000));
    let err = instant(&e, &src, &long).await.unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    // Over the length limit.
    let err = instant(&e, &src, &"x".repeat(200_000)).await.unwrap_err();
    assert_eq!(err.rejection_reason(), Some("query_too_long"));
}
