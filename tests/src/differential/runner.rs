//! Running the differential queries through Prometheus and Skein, comparing
//! the answers, and the per-family table.

use std::collections::BTreeMap;

use serde_json::Value;

use super::queries::{Data, Ext, Query};
use super::semantics::boundary_clash;
use super::setup::Setup;
use crate::cases::Eval;
use crate::compare::{add_labels, compare, float_eq};
use crate::http::{ApiClient, ApiResponse};
use crate::promjson::{QueryData, parse_value};

/// Lookback delta of both Prometheus and Skein (their default).
pub const LOOKBACK_MS: i64 = 300_000;
/// Live queries whose window edges come this close to a scrape are skipped.
pub const LIVE_MARGIN_MS: i64 = 50;

/// What happened to one query.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Equal answers (`empty`: both answered with no series).
    Pass { empty: bool },
    /// Answers differ, or only Skein failed: a mismatch.
    Mismatch(String),
    /// Prometheus itself failed: the query set is wrong, not Skein.
    HarnessError(String),
    /// Not compared, and why (a 2.42 vs 3 rule).
    Skipped(String),
}

/// One query's result.
#[derive(Debug, Clone)]
pub struct Run {
    pub query: Query,
    pub outcome: Outcome,
}

fn ask(c: &ApiClient, expr: &str, eval: &Eval) -> anyhow::Result<ApiResponse> {
    match *eval {
        Eval::Instant(t) => c.query_raw(expr, t),
        Eval::Range(s, e, step) => c.query_range_raw(expr, s, e, step),
    }
}

/// The values of a vector answer in the order they were sent.
fn vector_values_in_order(body: &Value) -> Option<Vec<f64>> {
    body.pointer("/data/result")?
        .as_array()?
        .iter()
        .map(|s| {
            s.pointer("/value/1")
                .and_then(Value::as_str)
                .and_then(|v| parse_value(v).ok())
        })
        .collect()
}

fn is_empty(d: &QueryData) -> bool {
    match d {
        QueryData::Vector(m) => m.is_empty(),
        QueryData::Matrix(m) => m.is_empty(),
        _ => false,
    }
}

/// Run one query on both sides and compare.
pub fn run_one(setup: &Setup, q: &Query) -> Outcome {
    if q.data == Data::Live
        && let Some((edge, sample)) = boundary_clash(
            &q.expr.prom,
            &q.eval,
            LOOKBACK_MS,
            &setup.scrape_times,
            LIVE_MARGIN_MS,
        )
    {
        return Outcome::Skipped(format!(
            "rule 1 (boundaries): window edge {edge} is within {LIVE_MARGIN_MS} ms of scrape {sample}"
        ));
    }
    let prom = match ask(&setup.prometheus, &q.expr.prom, &q.eval) {
        Ok(r) => r,
        Err(e) => return Outcome::HarnessError(format!("Prometheus request failed: {e:#}")),
    };
    let expected = match prom.data() {
        Ok(d) => d,
        Err(e) => return Outcome::HarnessError(format!("Prometheus answered an error: {e:#}")),
    };
    let skein = match ask(&setup.querier.client, &q.expr.skein, &q.eval) {
        Ok(r) => r,
        Err(e) => return Outcome::Mismatch(format!("Skein request failed: {e:#}")),
    };
    let got = match skein.data() {
        Ok(d) => d,
        Err(e) => return Outcome::Mismatch(format!("Skein answered an error: {e:#}")),
    };
    let expected = if q.expr.drop_prom_name {
        drop_name(expected)
    } else {
        expected
    };
    let expected = match q.expr.ext {
        Ext::Keep => add_labels(expected, &setup.external_labels),
        Ext::Drop => expected,
    };
    if let Err(diff) = compare(&expected, &got) {
        let selects = q.expr.prom.contains("topk") || q.expr.prom.contains("bottomk");
        if selects && only_tied_swaps(&expected, &got) {
            println!(
                "note #{} [{}] {}: topk/bottomk picked a different series among equal values (rule 6, not a mismatch)",
                q.id, q.family, q.expr.prom
            );
        } else {
            return Outcome::Mismatch(diff);
        }
    }
    if q.expr.ordered && matches!(q.eval, Eval::Instant(_)) {
        let (Some(e), Some(g)) = (
            vector_values_in_order(&prom.body),
            vector_values_in_order(&skein.body),
        ) else {
            return Outcome::Mismatch("sorted answer is not a vector".into());
        };
        if e.len() != g.len() || e.iter().zip(&g).any(|(a, b)| !float_eq(*a, *b)) {
            return Outcome::Mismatch(format!(
                "series order differs: Prometheus values in order {e:?}, Skein {g:?}"
            ));
        }
    }
    Outcome::Pass {
        empty: is_empty(&expected),
    }
}

/// Points per timestamp: (labels, value).
fn by_time(d: &QueryData) -> BTreeMap<i64, Vec<(crate::labels::LabelSet, f64)>> {
    let mut m: BTreeMap<i64, Vec<_>> = BTreeMap::new();
    match d {
        QueryData::Vector(v) => {
            for (ls, (t, x)) in v {
                m.entry(*t).or_default().push((ls.clone(), *x));
            }
        }
        QueryData::Matrix(v) => {
            for (ls, pts) in v {
                for (t, x) in pts {
                    m.entry(*t).or_default().push((ls.clone(), *x));
                }
            }
        }
        _ => {}
    }
    m
}

/// Whether the answers differ only by which of several equal values
/// topk/bottomk kept: at every timestamp, the points only one side has carry
/// the same values on both sides.
pub fn only_tied_swaps(expected: &QueryData, got: &QueryData) -> bool {
    let (e, g) = (by_time(expected), by_time(got));
    if e.keys().ne(g.keys()) {
        return false;
    }
    for (t, ep) in &e {
        let Some(gp) = g.get(t) else { return false };
        let only = |a: &[(crate::labels::LabelSet, f64)], b: &[(crate::labels::LabelSet, f64)]| {
            let mut v: Vec<f64> = a
                .iter()
                .filter(|(ls, x)| !b.iter().any(|(l2, y)| l2 == ls && float_eq(*x, *y)))
                .map(|(_, x)| *x)
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let (eo, go) = (only(ep, gp), only(gp, ep));
        if eo.len() != go.len() || eo.iter().zip(&go).any(|(a, b)| !float_eq(*a, *b)) {
            return false;
        }
    }
    true
}

fn drop_name(d: QueryData) -> QueryData {
    let strip = |mut ls: crate::labels::LabelSet| {
        ls.remove("__name__");
        ls
    };
    match d {
        QueryData::Vector(m) => {
            QueryData::Vector(m.into_iter().map(|(k, v)| (strip(k), v)).collect())
        }
        QueryData::Matrix(m) => {
            QueryData::Matrix(m.into_iter().map(|(k, v)| (strip(k), v)).collect())
        }
        other => other,
    }
}

fn describe_eval(e: &Eval) -> String {
    match *e {
        Eval::Instant(t) => format!("instant t={}", crate::timefmt::secs_string(t)),
        Eval::Range(s, end, step) => format!(
            "range start={} end={} step={}s",
            crate::timefmt::secs_string(s),
            crate::timefmt::secs_string(end),
            step / 1000
        ),
    }
}

/// Run every query (printing each mismatch, harness error and skip as it
/// happens) and return the results.
pub fn run_all(setup: &Setup, queries: &[Query]) -> Vec<Run> {
    let mut out = Vec::with_capacity(queries.len());
    for q in queries {
        let outcome = run_one(setup, q);
        let label = match &outcome {
            Outcome::Pass { .. } => None,
            Outcome::Mismatch(_) => Some("MISMATCH"),
            Outcome::HarnessError(_) => Some("HARNESS ERROR"),
            Outcome::Skipped(_) => Some("skipped"),
        };
        if let Some(label) = label {
            let detail = match &outcome {
                Outcome::Mismatch(s) | Outcome::HarnessError(s) | Outcome::Skipped(s) => s.clone(),
                Outcome::Pass { .. } => String::new(),
            };
            let skein_form = if q.expr.skein != q.expr.prom || q.expr.rule.is_some() {
                format!(
                    "\n  skein query: {} ({})",
                    q.expr.skein,
                    q.expr.rule.unwrap_or("")
                )
            } else {
                String::new()
            };
            println!(
                "{label} #{} [{}] {}\n  query: {}{skein_form}\n  {}",
                q.id,
                q.family,
                describe_eval(&q.eval),
                q.expr.prom,
                detail.replace('\n', "\n  ")
            );
        }
        out.push(Run {
            query: q.clone(),
            outcome,
        });
    }
    out
}

/// Per-family counts.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub queries: usize,
    pub passed: usize,
    pub empty: usize,
    pub failed: usize,
    pub harness_errors: usize,
    pub skipped: usize,
    pub instant: usize,
    pub range: usize,
}

/// Count outcomes per family (and a TOTAL row).
pub fn tally(runs: &[Run]) -> BTreeMap<String, Tally> {
    let mut m: BTreeMap<String, Tally> = BTreeMap::new();
    for r in runs {
        for key in [r.query.family, "~TOTAL"] {
            let t = m.entry(key.to_string()).or_default();
            t.queries += 1;
            match r.query.eval {
                Eval::Instant(_) => t.instant += 1,
                Eval::Range(..) => t.range += 1,
            }
            match &r.outcome {
                Outcome::Pass { empty } => {
                    t.passed += 1;
                    if *empty {
                        t.empty += 1;
                    }
                }
                Outcome::Mismatch(_) => t.failed += 1,
                Outcome::HarnessError(_) => t.harness_errors += 1,
                Outcome::Skipped(_) => t.skipped += 1,
            }
        }
    }
    m
}

/// Print the per-family table.
pub fn print_table(runs: &[Run]) {
    println!(
        "\n{:<20} {:>7} {:>7} {:>6} {:>7} {:>7} {:>7} {:>8} {:>7}",
        "family",
        "queries",
        "instant",
        "range",
        "passed",
        "(empty)",
        "failed",
        "harness",
        "skipped"
    );
    for (family, t) in tally(runs) {
        let name = family.trim_start_matches('~');
        println!(
            "{:<20} {:>7} {:>7} {:>6} {:>7} {:>7} {:>7} {:>8} {:>7}",
            name,
            t.queries,
            t.instant,
            t.range,
            t.passed,
            t.empty,
            t.failed,
            t.harness_errors,
            t.skipped
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::label_set;

    #[test]
    fn tied_swaps_are_recognised() {
        let v = |pairs: &[(&str, f64)]| {
            QueryData::Vector(
                pairs
                    .iter()
                    .map(|(i, x)| (label_set(&[("i", i)]), (5, *x)))
                    .collect(),
            )
        };
        let e = v(&[("a", 3.0), ("b", 2.0)]);
        assert!(only_tied_swaps(&e, &v(&[("a", 3.0), ("c", 2.0)])));
        assert!(!only_tied_swaps(&e, &v(&[("a", 3.0), ("c", 2.5)])));
        assert!(!only_tied_swaps(&e, &v(&[("a", 3.0)])));
    }
}
