//! Self-test of the Prometheus-only parts of the harness: generated data goes
//! through promtool into blocks, a real Prometheus serves it, and what it
//! answers equals what the generator computed. This proves the data path the
//! e2e tests build on, without any skein process.

use skein_e2e::compare::{compare, float_eq};
use skein_e2e::datagen::{DataSpec, Dataset, ODD_LABEL_VALUE, SLOT_MS};
use skein_e2e::fixture::start_clusters;
use skein_e2e::labels::{LabelSet, label_set, selector};
use skein_e2e::promjson::QueryData;

fn series_labels(name: &str, pairs: &[(&str, &str)]) -> LabelSet {
    let mut ls = label_set(pairs);
    ls.insert("__name__".into(), name.into());
    ls
}

#[test]
fn prometheus_serves_exactly_the_generated_data() {
    let setup = start_clusters(DataSpec::small).unwrap();
    let (start, end) = setup.window();
    let eu = &setup.clusters[0];
    let client = &eu.prometheus.client;
    let ds: &Dataset = &eu.dataset;

    // 1. The exact last sample of a gauge: an instant query at the window end
    //    returns it, stamped with the evaluation time.
    let ls = series_labels(
        "gen_temperature_celsius",
        &[("job", "api"), ("instance", "host-0:9100")],
    );
    let series = ds.find(&ls).expect("generated series");
    let (_, last_v) = *series.samples.last().unwrap();
    let got = client.query(&selector(&ls), end).unwrap();
    assert_eq!(got.vector_point(&ls), Some((end, last_v)), "last sample");

    // 2. Raw samples over the last 2 minutes: timestamps and values exact.
    let raw = client
        .query(&format!("{}[2m]", selector(&ls)), end)
        .unwrap();
    let expected: Vec<(i64, f64)> = series
        .samples
        .iter()
        .copied()
        .filter(|(t, _)| *t > end - 120_000 && *t <= end)
        .collect();
    assert_eq!(expected.len(), 8);
    match &raw {
        QueryData::Matrix(m) => assert_eq!(m.get(&ls), Some(&expected)),
        other => panic!("expected a matrix, got {other:?}"),
    }

    // 3. Every generated counter series is there.
    let counters = ds.series_named("gen_http_requests_total");
    let count = client.query("count(gen_http_requests_total)", end).unwrap();
    assert_eq!(
        count.vector_point(&LabelSet::new()),
        Some((end, counters.len() as f64))
    );

    // 4. The series that appears and vanishes: absent at the window start and
    //    end, present in the middle.
    let mid = start + (end - start) / 2;
    let mid = mid - mid.rem_euclid(SLOT_MS);
    for (t, n) in [(start + 5 * 60_000, 0.0), (mid, 2.0), (end, 0.0)] {
        let got = client
            .query("count(gen_ephemeral_jobs) or vector(0)", t)
            .unwrap();
        assert_eq!(
            got.vector_point(&LabelSet::new()),
            Some((t, n)),
            "ephemeral at {t}"
        );
    }

    // 5. The odd label value survives the promtool/Prometheus path.
    let info = client.query("gen_build_info", end).unwrap();
    let labels = info.label_sets();
    assert_eq!(labels.len(), 1);
    assert_eq!(
        labels[0].get("path").map(String::as_str),
        Some(ODD_LABEL_VALUE)
    );

    // 6. A range query of a gauge at 15 s steps yields, at each step, the
    //    latest generated sample at or before it (lookback 5 m).
    let range = client
        .query_range(&selector(&ls), end - 10 * 60_000, end, 15_000)
        .unwrap();
    let mut want = Vec::new();
    let mut t = end - 10 * 60_000;
    while t <= end {
        let v = series
            .samples
            .iter()
            .rev()
            .find(|(st, _)| *st <= t)
            .unwrap()
            .1;
        want.push((t, v));
        t += 15_000;
    }
    let mut exp = std::collections::BTreeMap::new();
    exp.insert(ls.clone(), want);
    compare(&QueryData::Matrix(exp), &range).unwrap();

    // 7. The two clusters hold different data.
    let us = setup.clusters[1]
        .prometheus
        .client
        .query(&selector(&ls), end)
        .unwrap();
    let us_v = us.vector_point(&ls).unwrap().1;
    assert!(!float_eq(us_v, last_v), "clusters must differ");

    // 8. Prometheus is healthy and serves /metrics.
    for p in ["/-/healthy", "/-/ready", "/metrics"] {
        assert_eq!(client.status_of(p).unwrap(), 200, "{p}");
    }
}

/// The case expectations (union with external labels, sums of sums, ...) are
/// right: a single "global" Prometheus holding both clusters' data with their
/// `cluster` label answers every standard case exactly as the expectation
/// built from the two cluster Prometheus servers says. This is what the skein
/// querier must reproduce, so the cases are proven meaningful before skein runs.
#[test]
fn global_prometheus_matches_every_case_expectation() {
    use skein_e2e::case_list::{plan, standard_cases};
    use skein_e2e::cases::check;
    use skein_e2e::prometheus::PrometheusServer;

    let setup = start_clusters(DataSpec::small).unwrap();
    let (start, end) = setup.window();
    let clusters = &setup.clusters;
    let parts: Vec<(&Dataset, &LabelSet)> = clusters
        .iter()
        .map(|c| (&c.dataset, &c.external_labels))
        .collect();
    let merged = Dataset::merged(&parts).unwrap();
    let global = PrometheusServer::start(
        setup.dir.path(),
        "prometheus-global",
        &LabelSet::new(),
        Some(&merged),
    )
    .unwrap();

    let mut failures = Vec::new();
    let mut passed = 0;
    for (case, codes) in standard_cases(clusters.len()) {
        for eval in plan(codes, start, end) {
            match check(&global.client, clusters, &case, eval) {
                Ok(()) => passed += 1,
                Err(e) => failures.push(e),
            }
        }
    }
    println!("{passed} checks passed");
    assert!(
        failures.is_empty(),
        "{} checks failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(passed >= 60, "only {passed} checks ran");
}
