use super::*;

fn spec() -> DataSpec {
    DataSpec::ending_before(3, 2, 3, 2, 100 * 3_600_000)
}

#[test]
fn instant_value_is_last_sample_within_lookback() {
    let o = Oracle::new(spec());
    let s = o.spec().clone();
    // 20 s after sample 10: sample 10 is the latest.
    let t = s.ts(10) + 8_000;
    let v = s.values(0, 1, Metric::Gauge);
    assert_eq!(o.instant(0, 1, Metric::Gauge, t), v.get(10).copied());
    // Before the first sample, nothing.
    assert_eq!(o.instant(0, 1, Metric::Gauge, s.ts(0) - 1), None);
    // More than 5 minutes after the last sample, nothing.
    assert_eq!(o.instant(0, 1, Metric::Gauge, s.last_ms() + 300_001), None);
    assert!(
        o.instant(0, 1, Metric::Gauge, s.last_ms() + 299_000)
            .is_some()
    );
}

#[test]
fn sum_and_count_by_cluster() {
    let o = Oracle::new(spec());
    let s = o.spec().clone();
    let t = s.start_ms + 3_600_000;
    let sums = o.eval(Kind::SumByCluster, t);
    assert_eq!(sums.len(), 2);
    let k = ((t - s.first_ms()) / STEP_MS) as usize;
    let want: f64 = (0..3).map(|i| s.values(1, i, Metric::Gauge)[k]).sum();
    assert_eq!(sums[1].1, want);
    assert_eq!(sums[1].0.get("cluster").map(String::as_str), Some("c2"));
    assert_eq!(o.eval(Kind::CountAll, t), vec![(Labels::new(), 6.0)]);
}

#[test]
fn rate_of_a_steady_counter() {
    // A counter growing by exactly 1 per 15 s has rate 1/15 after
    // extrapolation to the 5 m window.
    let o = Oracle::new(spec());
    let s = o.spec().clone();
    let t = s.start_ms + 3_600_000;
    let r = o.rate(0, 0, t).expect("rate");
    let w = o.window(t - RATE_RANGE_MS, t);
    assert_eq!(w.len(), 20);
    let v = s.values(0, 0, Metric::Requests);
    let inc = v[w.end - 1] - v[w.start];
    // 19 intervals sampled (285 s) extrapolated by 7 s and 8 s.
    let want = inc * (300.0 / 285.0) / 300.0;
    assert!((r - want).abs() < 1e-12, "{r} vs {want}");
}

#[test]
fn and_unless_partition_the_instances() {
    let o = Oracle::new(spec());
    let t = o.spec().start_ms + 1_800_000;
    let and = o.eval(Kind::AndFlag { a: 0, b: 1 }, t);
    let unless = o.eval(Kind::UnlessFlag { a: 0, b: 1 }, t);
    assert_eq!(and.len() + unless.len(), 3);
}

#[test]
fn compare_finds_missing_extra_and_wrong() {
    let o = Oracle::new(spec());
    let q = Query {
        kind: Kind::SumByCluster,
        promql: Kind::SumByCluster.promql(),
        start_ms: o.spec().start_ms + 1_800_000,
        range: Some((o.spec().start_ms + 2_400_000, 60_000)),
    };
    let want = o.answer(&q);
    assert_eq!(want.len(), 2);
    assert!(want.values().all(|p| p.len() == 11));
    assert!(compare(&want, &want).is_ok());
    let mut missing = want.clone();
    missing.pop_first();
    assert!(compare(&want, &missing).is_err());
    let mut extra = want.clone();
    extra.insert(Labels::new(), vec![]);
    assert!(compare(&want, &extra).is_err());
    let mut wrong = want.clone();
    if let Some(p) = wrong.values_mut().next() {
        p[3].1 *= 2.0;
    }
    assert!(compare(&want, &wrong).is_err());
}
