//! Differential test: Skein's PromQL (querier over a sidecar) against a live
//! Prometheus 2.42 on the same data. By default a seeded subset (>= 100
//! queries, a third of every family); `DIFFERENTIAL_FULL=1` runs the full set
//! (>= 300). `DIFFERENTIAL_SEED` changes the seed (data and queries).
//! Fails on any mismatch, on any query Prometheus itself rejects, and when too
//! many answers are empty to prove anything.

use skein_e2e::cases::Eval;
use skein_e2e::differential::queries::{
    Data, EVAL_OFFSET_MS, Expr, Ext, Query, Windows, generate, subset,
};
use skein_e2e::differential::runner::{Outcome, print_table, run_all, run_one, tally};
use skein_e2e::differential::semantics::print_rules;
use skein_e2e::differential::setup::Setup;
use skein_e2e::promjson::QueryData;

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
    let mut by_rule: std::collections::BTreeMap<&str, usize> = Default::default();
    for q in &queries {
        if let Some(r) = q.expr.rule {
            *by_rule.entry(r).or_default() += 1;
        }
    }
    for (rule, n) in &by_rule {
        println!("rule applied to {n} queries: {rule}");
    }
    controls(&setup);
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

fn control(family: &'static str, prom: &str, skein: &str, ext: Ext, eval: Eval) -> Query {
    let mut expr = Expr::same(prom.to_string(), ext);
    expr.skein = skein.to_string();
    Query {
        id: usize::MAX,
        family,
        expr,
        eval,
        data: if family == "control-live" {
            Data::Live
        } else {
            Data::Blocks
        },
    }
}

/// The comparison can fail (a wrong answer, a missing external label, a
/// wrong series order are all caught), and the live data holds real
/// staleness markers that Skein honours.
fn controls(setup: &Setup) {
    let (start, _) = setup.window();
    let t = start + 240 * 15_000 + EVAL_OFFSET_MS;
    let wrong = [
        ("gen_queue_depth", "gen_queue_depth + 1", Ext::Keep),
        ("gen_queue_depth", "gen_queue_depth", Ext::Drop),
        ("sum(gen_queue_depth)", "sum(gen_queue_depth)", Ext::Keep),
        ("gen_queue_depth", "gen_queue_depth offset 15s", Ext::Keep),
    ];
    for (p, s, ext) in wrong {
        for eval in [Eval::Instant(t), Eval::Range(t, t + 600_000, 60_000)] {
            let o = run_one(setup, &control("control", p, s, ext, eval));
            assert!(
                matches!(o, Outcome::Mismatch(_)),
                "control {p:?} vs {s:?} ({ext:?}) should mismatch, got {o:?}"
            );
        }
    }
    let mut sorted = control(
        "control",
        "sort(gen_temperature_celsius)",
        "sort_desc(gen_temperature_celsius)",
        Ext::Keep,
        Eval::Instant(t),
    );
    sorted.expr.ordered = true;
    assert!(matches!(run_one(setup, &sorted), Outcome::Mismatch(_)));

    // Rule 1 shown, not assumed: a subquery evaluated at a time on its own
    // step grid has a point exactly on its range start; Prometheus 2.42 counts
    // it (closed range), Skein does not (left-open, as Prometheus 3).
    let on_grid = (start + 3_600_000) / 60_000 * 60_000;
    let count = |c: &skein_e2e::http::ApiClient| match c
        .query(
            r#"count_over_time(gen_queue_depth{job="api",instance="host-0:9100"}[30m:30s])"#,
            on_grid,
        )
        .expect("subquery count")
    {
        QueryData::Vector(m) => m.values().next().map(|p| p.1).unwrap_or(f64::NAN),
        other => panic!("not a vector: {other:?}"),
    };
    let (p, s) = (count(&setup.prometheus), count(&setup.querier.client));
    assert_eq!(
        (p, s),
        (61.0, 60.0),
        "subquery boundary: Prometheus 2.42 should count 61 points, Skein (3 semantics) 60"
    );
    println!(
        "rule 1 shown: a [30m:30s] subquery on its step grid has {p} points in Prometheus 2.42, {s} in Skein"
    );

    // Staleness: the flapping series has holes far shorter than the 5 m
    // lookback (only staleness markers end it early), and Skein agrees.
    let (times, step) = setup.live_times();
    let (Some(first), Some(last)) = (times.first(), times.last()) else {
        panic!("no live evaluation times");
    };
    let eval = Eval::Range(*first, *last, step);
    let flap = r#"diff_live_gauge{id="flap"}"#;
    let prom = setup
        .prometheus
        .query_range(flap, *first, *last, step)
        .expect("live range query");
    let QueryData::Matrix(m) = &prom else {
        panic!("not a matrix: {prom:?}")
    };
    let pts = m.values().next().expect("flap series present");
    let holes = pts.windows(2).filter(|w| w[1].0 - w[0].0 > step).count();
    assert!(
        holes >= 1 && pts.len() < times.len(),
        "no staleness gaps in {pts:?}"
    );
    let o = run_one(setup, &control("control-live", flap, flap, Ext::Keep, eval));
    assert!(matches!(o, Outcome::Pass { .. }), "flap series: {o:?}");
    println!(
        "controls ok: 9 deliberate differences caught; the flapping series has {holes} staleness gap(s) in {} steps and Skein agrees",
        times.len()
    );
}
