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
