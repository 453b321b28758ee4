//! promtool, the Prometheus CLI, works against the skein querier: instant and
//! range queries, series and label values, with the printed values checked
//! against what the Prometheus servers behind it say.
//!
//! The same checks run against a single "global" Prometheus holding both
//! clusters' data with their `cluster` label, which proves the checks (and the
//! parsing of promtool's text output) without skein.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use skein_e2e::compare::{add_labels, compare, union};
use skein_e2e::datagen::{DataSpec, Dataset, ODD_LABEL_VALUE};
use skein_e2e::fixture::{Cluster, TwoClusters, start_clusters};
use skein_e2e::labels::{LabelSet, label_set};
use skein_e2e::prometheus::PrometheusServer;
use skein_e2e::promtool;
use skein_e2e::timefmt::secs_string;
use skein_e2e::wait::poll_until;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Run every promtool check against `url`; returns the failures.
fn promtool_checks(
    url: &str,
    clusters: &[Cluster],
    window: (i64, i64),
    scratch: &Path,
) -> Vec<String> {
    let (start, end) = window;
    let mut failures = Vec::new();
    let mut fail = |what: &str, e: String| failures.push(format!("{what}: {e}"));

    // Instant query: sum by (cluster) at the window end.
    let q = "sum by (cluster) (gen_queue_depth)";
    let expected = union(
        clusters
            .iter()
            .map(|c| {
                add_labels(
                    c.prometheus
                        .client
                        .query("sum(gen_queue_depth)", end)
                        .unwrap(),
                    &c.external_labels,
                )
            })
            .collect(),
    )
    .unwrap();
    match promtool::run(
        &["query", "instant", "--time", &secs_string(end), url, q],
        scratch,
        TIMEOUT,
    )
    .and_then(|out| promtool::parse_instant(&out))
    {
        Ok(got) => {
            if let Err(d) = compare(&expected, &got) {
                fail("promtool query instant", d);
            }
        }
        Err(e) => fail("promtool query instant", format!("{e:#}")),
    }

    // Range query over the last 30 minutes of the window at 1 m steps.
    let q = "sum by (cluster) (rate(gen_http_requests_total[5m]))";
    let (rs, re, step) = (end - 30 * 60_000, end, 60_000);
    let expected = union(
        clusters
            .iter()
            .map(|c| {
                let d = c
                    .prometheus
                    .client
                    .query_range("sum(rate(gen_http_requests_total[5m]))", rs, re, step)
                    .unwrap();
                add_labels(d, &c.external_labels)
            })
            .collect(),
    )
    .unwrap();
    let args = [
        "query",
        "range",
        "--start",
        &secs_string(rs),
        "--end",
        &secs_string(re),
        "--step",
        "1m",
        url,
        q,
    ];
    match promtool::run(&args, scratch, TIMEOUT).and_then(|out| promtool::parse_range(&out)) {
        Ok(got) => {
            if got.point_count() != 2 * 31 {
                fail(
                    "promtool query range",
                    format!("expected 62 points, got {}", got.point_count()),
                );
            }
            if let Err(d) = compare(&expected, &got) {
                fail("promtool query range", d);
            }
        }
        Err(e) => fail("promtool query range", format!("{e:#}")),
    }

    // Series: two matchers, over the window.
    let mut expected: BTreeSet<LabelSet> = BTreeSet::new();
    for c in clusters {
        let ds: &Dataset = &c.dataset;
        for s in ds
            .series_named("gen_queue_depth")
            .into_iter()
            .chain(ds.series_named("gen_build_info"))
        {
            if s.labels.get("__name__").map(String::as_str) == Some("gen_queue_depth")
                && s.labels.get("job").map(String::as_str) != Some("api")
            {
                continue;
            }
            let mut ls = s.labels.clone();
            for (k, v) in &c.external_labels {
                ls.entry(k.clone()).or_insert_with(|| v.clone());
            }
            expected.insert(ls);
        }
    }
    let args = [
        "query",
        "series",
        "--match",
        r#"gen_queue_depth{job="api"}"#,
        "--match",
        "gen_build_info",
        "--start",
        &secs_string(start),
        "--end",
        &secs_string(end),
        url,
    ];
    match promtool::run(&args, scratch, TIMEOUT).and_then(|out| promtool::parse_series(&out)) {
        Ok(got) => {
            let got: BTreeSet<LabelSet> = got.into_iter().collect();
            if got != expected {
                fail(
                    "promtool query series",
                    format!(
                        "missing {:?}\nunexpected {:?}",
                        expected.difference(&got).collect::<Vec<_>>(),
                        got.difference(&expected).collect::<Vec<_>>()
                    ),
                );
            }
        }
        Err(e) => fail("promtool query series", format!("{e:#}")),
    }

    // Label values: job (generated jobs must be there), cluster (exactly the
    // external labels), path (the odd value, escaped through every layer).
    let window_args = [
        "--start".to_string(),
        secs_string(start),
        "--end".to_string(),
        secs_string(end),
    ];
    for (name, want, exact) in [
        ("job", vec!["api", "batch", "cache", "db"], false),
        ("cluster", vec!["eu1", "us1"], true),
        ("path", vec![ODD_LABEL_VALUE], true),
    ] {
        let mut args: Vec<&str> = vec!["query", "labels"];
        args.extend(window_args.iter().map(String::as_str));
        args.extend([url, name]);
        match promtool::run(&args, scratch, TIMEOUT) {
            Ok(out) => {
                let got = promtool::parse_label_values(&out);
                let ok = if exact {
                    got == want
                } else {
                    want.iter().all(|w| got.iter().any(|g| g == w))
                };
                if !ok {
                    fail(
                        &format!("promtool query labels {name}"),
                        format!("expected {want:?}, got {got:?}"),
                    );
                }
            }
            Err(e) => fail(&format!("promtool query labels {name}"), format!("{e:#}")),
        }
    }
    failures
}

#[test]
fn promtool_reads_the_querier() {
    let setup = TwoClusters::start_small().unwrap();
    let clusters = &setup.clusters.clusters;
    let url = setup.querier.http_url.clone();
    let scratch = setup.clusters.dir.path();
    let mut failures = promtool_checks(&url, clusters, setup.window(), scratch);

    // `sum by (cluster) (up)` at "now": Prometheus' own scrape (head data, read
    // live through the sidecars) shows up = 1 for both clusters. The first
    // scrape happens within one 15 s interval of start.
    let want: Vec<LabelSet> = clusters
        .iter()
        .map(|c| label_set(&[("cluster", &c.name)]))
        .collect();
    let seen = poll_until(
        "up from both clusters",
        Duration::from_secs(40),
        Duration::from_millis(500),
        || {
            let out = promtool::run(
                &["query", "instant", &url, "sum by (cluster) (up)"],
                scratch,
                TIMEOUT,
            )?;
            let got = promtool::parse_instant(&out)?;
            let ok = want
                .iter()
                .all(|ls| got.vector_point(ls).map(|p| p.1) == Some(1.0));
            Ok(ok.then_some(got))
        },
    );
    if let Err(e) = seen {
        failures.push(format!(
            "promtool query instant sum by (cluster) (up): {e:#}"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} promtool checks failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn promtool_checks_hold_on_a_global_prometheus() {
    let setup = start_clusters(DataSpec::small).unwrap();
    let parts: Vec<(&Dataset, &LabelSet)> = setup
        .clusters
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
    let failures = promtool_checks(
        &global.url,
        &setup.clusters,
        setup.window(),
        setup.dir.path(),
    );
    assert!(
        failures.is_empty(),
        "{} promtool checks failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
