//! The querier answers like the Prometheus servers behind it.
//!
//! Setup: Prometheus eu1 and us1 (external label `cluster`) with different
//! generated data (3 h window ending 10 min before now), a skein sidecar next to
//! each, and one skein querier over both sidecars.
//!
//! Each case is run on the querier and on both Prometheus servers directly, and
//! the querier's answer must equal the expectation built from the per-cluster
//! answers (series as sets keyed by label set, timestamps exact, values within
//! 1e-9 relative, NaN == NaN):
//! - queries that keep series identity (selectors, functions, arithmetic,
//!   comparisons, `... by (cluster, ...)`, `... without (...)` which keeps
//!   `cluster`): querier(Q) == union over clusters of prometheus_c(Q) with c's
//!   external labels added. For `sum by (cluster) (X)` the per-cluster query is
//!   `sum(X)`; for matchers on `cluster` only the matching cluster contributes.
//! - aggregations across clusters: sum of sums, max of maxes, min of mins,
//!   count = sum of counts, avg = (sum of sums) / (sum of counts), each computed
//!   from separate per-cluster queries.
//!
//! Evaluation times are on the 15 s grid and samples are jittered off it, so no
//! sample sits on a range boundary (Prometheus 2.42 closed vs Prometheus 3
//! left-open ranges cannot disagree).

use skein_e2e::case_list::{plan, standard_cases};
use skein_e2e::cases::check;
use skein_e2e::fixture::TwoClusters;
use skein_e2e::labels::label_set;

#[test]
fn querier_matches_prometheus() {
    let setup = TwoClusters::start_small().unwrap();
    let (start, end) = setup.window();
    let n = setup.clusters.clusters.len();
    let clusters = &setup.clusters.clusters;
    let querier = &setup.querier.client;

    let mut passed = 0usize;
    let mut failures = Vec::new();
    let all = standard_cases(n);
    assert!(all.len() >= 20);
    for (case, codes) in &all {
        for eval in plan(codes, start, end) {
            match check(querier, clusters, case, eval) {
                Ok(()) => passed += 1,
                Err(e) => failures.push(e),
            }
        }
    }

    // `sum by (cluster)` through the querier returns every cluster.
    let by_cluster = querier
        .query("sum by (cluster) (gen_queue_depth)", end)
        .unwrap();
    for c in clusters {
        assert!(
            by_cluster
                .vector_point(&label_set(&[("cluster", &c.name)]))
                .is_some(),
            "sum by (cluster) lacks {}: {by_cluster:?}",
            c.name
        );
    }

    println!("{passed} checks passed, {} failed", failures.len());
    for f in &failures {
        println!("FAIL {f}\n");
    }
    assert!(
        failures.is_empty(),
        "{} of {} checks failed:\n{}",
        failures.len(),
        passed + failures.len(),
        failures.join("\n\n")
    );
}

/// A JSON array of strings as a sorted set.
fn string_set(v: &serde_json::Value) -> std::collections::BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The metadata endpoints and POST queries answer like the Prometheus servers:
/// label names = union of the clusters' label names plus the external label
/// names; label values = union (plus the external label values for `cluster`);
/// series = union with external labels; POST form queries (Grafana's default)
/// answer like GET.
#[test]
fn metadata_apis_and_post_match_prometheus() {
    use skein_e2e::cases::{Case, Eval, expected};
    use skein_e2e::compare::compare;
    use skein_e2e::labels::LabelSet;
    use skein_e2e::promjson::parse_query_data;
    use skein_e2e::timefmt::secs_string;
    use std::collections::BTreeSet;

    let setup = TwoClusters::start_small().unwrap();
    let (start, end) = setup.window();
    let clusters = &setup.clusters.clusters;
    let q = &setup.querier.client;
    let range = [("start", secs_string(start)), ("end", secs_string(end))];
    let mut failures = Vec::new();

    // Label names.
    let mut want: BTreeSet<String> = BTreeSet::new();
    for c in clusters {
        let resp = c.prometheus.client.get("/api/v1/labels", &range).unwrap();
        resp.ensure_success().unwrap();
        want.extend(string_set(&resp.body["data"]));
        want.extend(c.external_labels.keys().cloned());
    }
    match q.get("/api/v1/labels", &range) {
        Ok(resp) if resp.ensure_success().is_ok() => {
            let got = string_set(&resp.body["data"]);
            if got != want {
                failures.push(format!("/api/v1/labels: expected {want:?}, got {got:?}"));
            }
        }
        Ok(resp) => failures.push(format!(
            "/api/v1/labels: HTTP {}: {}",
            resp.status, resp.text
        )),
        Err(e) => failures.push(format!("/api/v1/labels: {e:#}")),
    }

    // Label values, with and without match[].
    for (name, matcher) in [
        ("job", None),
        ("instance", Some(r#"gen_queue_depth{job="db"}"#)),
        ("cluster", None),
        ("__name__", None),
    ] {
        let mut params: Vec<(&str, String)> = range.to_vec();
        if let Some(m) = matcher {
            params.push(("match[]", m.to_string()));
        }
        let path = format!("/api/v1/label/{name}/values");
        let mut want: BTreeSet<String> = BTreeSet::new();
        for c in clusters {
            if let Some(v) = c.external_labels.get(name) {
                want.insert(v.clone());
                continue;
            }
            let resp = c.prometheus.client.get(&path, &params).unwrap();
            resp.ensure_success().unwrap();
            want.extend(string_set(&resp.body["data"]));
        }
        assert!(!want.is_empty(), "{path} expectation empty");
        match q.get(&path, &params) {
            Ok(resp) if resp.ensure_success().is_ok() => {
                let got = string_set(&resp.body["data"]);
                if got != want {
                    failures.push(format!(
                        "{path} {matcher:?}: expected {want:?}, got {got:?}"
                    ));
                }
            }
            Ok(resp) => failures.push(format!("{path}: HTTP {}: {}", resp.status, resp.text)),
            Err(e) => failures.push(format!("{path}: {e:#}")),
        }
    }

    // Series.
    let mut params: Vec<(&str, String)> = range.to_vec();
    params.push((
        "match[]",
        r#"gen_temperature_celsius{job="api"}"#.to_string(),
    ));
    params.push(("match[]", "gen_ephemeral_jobs".to_string()));
    let to_sets = |v: &serde_json::Value| -> BTreeSet<LabelSet> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| o.as_object())
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut want: BTreeSet<LabelSet> = BTreeSet::new();
    for c in clusters {
        let resp = c.prometheus.client.get("/api/v1/series", &params).unwrap();
        resp.ensure_success().unwrap();
        for mut ls in to_sets(&resp.body["data"]) {
            for (k, v) in &c.external_labels {
                ls.entry(k.clone()).or_insert_with(|| v.clone());
            }
            want.insert(ls);
        }
    }
    assert_eq!(want.len(), 2 * (3 + 2), "series expectation");
    match q.get("/api/v1/series", &params) {
        Ok(resp) if resp.ensure_success().is_ok() => {
            let got = to_sets(&resp.body["data"]);
            if got != want {
                failures.push(format!(
                    "/api/v1/series: missing {:?}, unexpected {:?}",
                    want.difference(&got).collect::<Vec<_>>(),
                    got.difference(&want).collect::<Vec<_>>()
                ));
            }
        }
        Ok(resp) => failures.push(format!(
            "/api/v1/series: HTTP {}: {}",
            resp.status, resp.text
        )),
        Err(e) => failures.push(format!("/api/v1/series: {e:#}")),
    }

    // POST form queries answer like GET.
    let n = clusters.len();
    let case = Case::union("rate(gen_http_requests_total[5m])", n);
    for (path, params, eval) in [
        (
            "/api/v1/query",
            vec![("query", case.query.clone()), ("time", secs_string(end))],
            Eval::Instant(end),
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", case.query.clone()),
                ("start", secs_string(start)),
                ("end", secs_string(end)),
                ("step", "300".to_string()),
            ],
            Eval::Range(start, end, 300_000),
        ),
    ] {
        let want = expected(clusters, &case, eval).unwrap();
        match q.post_form(path, &params) {
            Ok(resp) if resp.ensure_success().is_ok() => {
                match parse_query_data(&resp.body["data"]) {
                    Ok(got) => {
                        if let Err(d) = compare(&want, &got) {
                            failures.push(format!("POST {path}: {d}"));
                        }
                    }
                    Err(e) => failures.push(format!("POST {path}: {e:#}")),
                }
            }
            Ok(resp) => failures.push(format!("POST {path}: HTTP {}: {}", resp.status, resp.text)),
            Err(e) => failures.push(format!("POST {path}: {e:#}")),
        }
    }

    assert!(
        failures.is_empty(),
        "{} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
