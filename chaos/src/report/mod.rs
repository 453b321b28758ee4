//! The run report: figures per fault window, written as JSON, Markdown
//! and an SVG chart.

pub mod chart;
pub mod json;
pub mod markdown;

use serde::Serialize;

use crate::datagen::DataSpec;
use crate::invariants::{Invariant, WindowRun};
use crate::procs::Crash;
use crate::schedule::{Schedule, Window};
use crate::workload::{Inject, Outcome, Record};

/// Availability and latency of a set of queries.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    pub queries: usize,
    /// Answered exactly, no warning.
    pub exact: usize,
    /// Answered with a warning (exact or partial).
    pub answered_with_warning: usize,
    /// ... of which equal to the oracle anyway (e.g. the other HA replica covered).
    pub exact_with_warning: usize,
    /// ... of which partial (data missing, and said so).
    pub partial_with_warning: usize,
    /// Answered, wrong, no warning.
    pub silent_wrong: usize,
    pub failed: usize,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted.get(idx).copied().unwrap_or(0.0)
}

impl Stats {
    pub fn of<'a>(rs: impl Iterator<Item = &'a Record>) -> Stats {
        let mut s = Stats::default();
        let mut lat = Vec::new();
        for r in rs {
            s.queries += 1;
            match r.outcome {
                Outcome::Exact => s.exact += 1,
                Outcome::ExactWarned => {
                    s.answered_with_warning += 1;
                    s.exact_with_warning += 1;
                }
                Outcome::PartialWarned => {
                    s.answered_with_warning += 1;
                    s.partial_with_warning += 1;
                }
                Outcome::SilentWrong => s.silent_wrong += 1,
                Outcome::Failed => s.failed += 1,
            }
            lat.push(r.latency_ms);
        }
        lat.sort_by(f64::total_cmp);
        s.latency_p50_ms = percentile(&lat, 0.50);
        s.latency_p90_ms = percentile(&lat, 0.90);
        s.latency_p99_ms = percentile(&lat, 0.99);
        s
    }
}

/// One fault window with what happened and its figures.
#[derive(Clone, Debug, Serialize)]
pub struct WindowReport {
    #[serde(flatten)]
    pub window: Window,
    pub label: String,
    #[serde(flatten)]
    pub run: WindowRun,
    pub stats: Stats,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub duration_s: f64,
    pub qps: f64,
    pub inject: Inject,
    pub skein: String,
    pub topology: Vec<String>,
    pub data: DataSpec,
    pub schedule: Schedule,
    pub windows: Vec<WindowReport>,
    pub quiet: Stats,
    pub overall: Stats,
    pub invariants: Vec<Invariant>,
    pub crashes: Vec<Crash>,
    pub passed: bool,
    pub notes: Vec<String>,
}

/// Splits records into per-window stats and the rest.
pub fn window_stats(
    records: &[Record],
    windows: &[Window],
    runs: &[WindowRun],
) -> (Vec<WindowReport>, Stats) {
    let inside = |r: &Record, w: &Window, run: &WindowRun| {
        let start = run.began_s.unwrap_or(w.start_s).min(w.start_s);
        let end = run.healed_s.unwrap_or(w.end_s).max(w.end_s);
        r.at_s >= start && r.at_s < end
    };
    let reports = windows
        .iter()
        .zip(runs)
        .map(|(w, run)| WindowReport {
            window: w.clone(),
            label: w.fault.label(),
            run: run.clone(),
            stats: Stats::of(records.iter().filter(|r| inside(r, w, run))),
        })
        .collect();
    let quiet = Stats::of(
        records
            .iter()
            .filter(|r| !windows.iter().zip(runs).any(|(w, run)| inside(r, w, run))),
    );
    (reports, quiet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[3.0], 0.9), 3.0);
    }
}
