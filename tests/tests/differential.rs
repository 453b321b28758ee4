//! Differential test: Skein's PromQL (querier over a sidecar) against a live
//! Prometheus 2.42 on the same data. By default a seeded subset (>= 100
//! queries, a third of every family); `DIFFERENTIAL_FULL=1` runs the full set
//! (>= 300). `DIFFERENTIAL_SEED` changes the seed (data and queries).
//! Fails on any mismatch, on any query Prometheus itself rejects, and when too
//! many answers are empty to prove anything.

use skein_e2e::differential::queries::{Windows, generate, subset};
use skein_e2e::differential::runner::{Outcome, print_table, run_all, tally};
use skein_e2e::differential::semantics::print_rules;
use skein_e2e::differential::setup::Setup;

const DEFAULT_SEED: u64 = 42;

#[test]
fn skein_answers_like_prometheus() {
    let seed = std::env::var("DIFFERENTIAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let full = std::env::var("DIFFERENTIAL_FULL").is_ok_and(|v| v == "1");
    let started = std::time::Instant::now();
    let setup = Setup::start(seed).expect("differential setup");
    let (live_times, live_step_ms) = setup.live_times();
    let windows = Windows {
        blocks: setup.window(),
        live_times,
        live_step_ms,
    };
    let all = generate(seed, &windows);
    let queries = if full {
        all.clone()
    } else {
        subset(&all, seed, 0.33)
    };
    println!(
        "seed {seed}; {} of {} generated queries ({}); setup took {:.1?}; {} live scrapes",
        queries.len(),
        all.len(),
        if full { "full set" } else { "seeded subset" },
        started.elapsed(),
        setup.scrape_times.len()
    );
    print_rules();
    let runs = run_all(&setup, &queries);
    print_table(&runs);
    println!("total time {:.1?}", started.elapsed());

    let total = tally(&runs)["~TOTAL"];
    let min = if full { 300 } else { 100 };
    assert!(
        total.queries >= min,
        "only {} queries ran (want >= {min})",
        total.queries
    );
    assert!(
        total.skipped * 10 <= total.queries,
        "{} of {} queries skipped",
        total.skipped,
        total.queries
    );
    assert!(
        total.empty * 5 <= total.passed,
        "{} of {} passing queries compared empty answers",
        total.empty,
        total.passed
    );
    let live_compared = runs
        .iter()
        .filter(|r| r.query.family == "live_staleness" && matches!(r.outcome, Outcome::Pass { .. }))
        .count();
    assert!(
        live_compared >= 4,
        "only {live_compared} live queries compared"
    );
    assert_eq!(
        total.harness_errors, 0,
        "Prometheus rejected queries of the generated set (see HARNESS ERROR above)"
    );
    assert_eq!(
        total.failed, 0,
        "{} of {} queries answered differently (see MISMATCH above)",
        total.failed, total.queries
    );
}
