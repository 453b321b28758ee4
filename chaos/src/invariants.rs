//! Invariant verdicts over a finished run.

use serde::Serialize;

use crate::procs::Crash;
use crate::schedule::Window;
use crate::workload::{Outcome, Record};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Skipped,
}

#[derive(Clone, Debug, Serialize)]
pub struct Invariant {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

/// What happened to one window at run time.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WindowRun {
    pub began_s: Option<f64>,
    pub healed_s: Option<f64>,
    pub begin_error: Option<String>,
    pub heal_error: Option<String>,
    /// Seconds from heal until every querier lists every store healthy.
    pub converged_after_s: Option<f64>,
    /// Healed while another window was still active (no convergence
    /// bound applies to it alone).
    pub overlapped: bool,
    /// Gossip runs: seconds until the faulted store left its cluster's
    /// querier store set (None: still listed when the window ended).
    pub left_after_s: Option<f64>,
    /// Whether departure from the store set was watched in this window.
    pub departure_watched: bool,
    /// What the harness saw when the fault began (upload faults).
    pub note: Option<String>,
}

/// The facts the verdicts are drawn from.
pub struct Facts<'a> {
    pub records: &'a [Record],
    pub crashes: &'a [Crash],
    pub windows: &'a [Window],
    pub runs: &'a [WindowRun],
    pub warmup_s: f64,
    pub grace_s: f64,
    pub converge_bound_s: f64,
    pub baseline: Result<f64, String>,
    pub storage: Option<Check>,
    pub gossip: bool,
}

/// A verdict computed elsewhere.
#[derive(Clone, Debug)]
pub enum Check {
    Pass(String),
    Fail(String),
    Skipped(String),
}

/// Seconds before a fault during which queries are not "steady".
pub const LEAD_S: f64 = 6.0;

/// True when `t` lies in a quiet period: after warm-up, outside every
/// fault window and at least `grace` after each one's heal.
pub fn is_steady(t: f64, f: &Facts) -> bool {
    if t < f.warmup_s {
        return false;
    }
    f.windows.iter().zip(f.runs).all(|(w, r)| {
        let end = r.healed_s.unwrap_or(w.end_s).max(w.end_s);
        let start = r.began_s.unwrap_or(w.start_s).min(w.start_s);
        // A query sent just before a fault can still be running when it
        // starts: leave it out (the stores' deadline is 5 s).
        t < start - LEAD_S || t >= end + f.grace_s
    })
}

fn examples(rs: &[&Record]) -> String {
    rs.iter()
        .take(3)
        .map(|r| {
            format!(
                "[t={:.1}s {} `{}`{}: {:?} {}]",
                r.at_s,
                r.querier,
                r.promql,
                if r.range { " (range)" } else { "" },
                r.outcome,
                r.detail
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn evaluate(f: &Facts) -> Vec<Invariant> {
    let mut out = Vec::new();
    let silent: Vec<&Record> = f
        .records
        .iter()
        .filter(|r| r.outcome == Outcome::SilentWrong)
        .collect();
    out.push(Invariant {
        name: "no_silent_wrong_answer",
        verdict: if silent.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        detail: if silent.is_empty() {
            format!(
                "{} answers: each equal to the oracle or carrying a warning",
                f.records.iter().filter(|r| r.outcome.answered()).count()
            )
        } else {
            format!(
                "{} answers differ from the oracle without a warning: {}",
                silent.len(),
                examples(&silent)
            )
        },
    });
    let crashes: Vec<String> = f
        .crashes
        .iter()
        .filter(|c| !c.external_stop)
        .map(|c| format!("{} at {:.1}s: {}", c.name, c.at_s, c.status))
        .collect();
    let external = f.crashes.iter().filter(|c| c.external_stop).count();
    out.push(Invariant {
        name: "no_unexpected_exit",
        verdict: if crashes.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        detail: format!(
            "{}{}",
            if crashes.is_empty() {
                "no crash: every exit was caused by the harness; every SIGTERM gave exit 0".into()
            } else {
                crashes.join("; ")
            },
            if external > 0 {
                format!(
                    " ({external} graceful stops by a signal from outside the harness, not counted)"
                )
            } else {
                String::new()
            }
        ),
    });
    let unsteady: Vec<&Record> = f
        .records
        .iter()
        .filter(|r| is_steady(r.at_s, f) && r.outcome != Outcome::Exact)
        .collect();
    let steady = f.records.iter().filter(|r| is_steady(r.at_s, f)).count();
    out.push(Invariant {
        name: "exact_when_healed",
        verdict: if unsteady.is_empty() && steady > 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        detail: format!(
            "{} of {steady} queries sent {:.0}s or more after a heal were not exact{}",
            unsteady.len(),
            f.grace_s,
            if unsteady.is_empty() {
                String::new()
            } else {
                format!(": {}", examples(&unsteady))
            }
        ),
    });
    let slow: Vec<String> = f
        .windows
        .iter()
        .zip(f.runs)
        .filter(|(_, r)| !r.overlapped && r.began_s.is_some())
        .filter(|(_, r)| r.converged_after_s.is_none_or(|s| s > f.converge_bound_s))
        .map(|(w, r)| {
            format!(
                "window {} ({}): {:?}",
                w.id,
                w.fault.label(),
                r.converged_after_s
            )
        })
        .collect();
    out.push(Invariant {
        name: "store_set_converges_after_heal",
        verdict: if slow.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        detail: if slow.is_empty() {
            format!(
                "after every heal each querier listed every store healthy{} within {:.0}s",
                if f.gossip {
                    " and every sidecar of its cluster in its gossip view"
                } else {
                    ""
                },
                f.converge_bound_s
            )
        } else {
            slow.join("; ")
        },
    });
    let faults_applied: Vec<String> = f
        .windows
        .iter()
        .zip(f.runs)
        .filter_map(|(w, r)| {
            r.begin_error
                .as_ref()
                .or(r.heal_error.as_ref())
                .map(|e| format!("window {}: {e}", w.id))
        })
        .collect();
    out.push(Invariant {
        name: "faults_applied",
        verdict: if faults_applied.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        detail: if faults_applied.is_empty() {
            format!("{} faults applied and healed", f.windows.len())
        } else {
            faults_applied.join("; ")
        },
    });
    out.push(Invariant {
        name: "baseline_exact",
        verdict: if f.baseline.is_ok() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        detail: match &f.baseline {
            Ok(s) => format!("every querier answered exactly {s:.1}s after start-up"),
            Err(e) => e.clone(),
        },
    });
    let (verdict, detail) = match f.storage.clone() {
        Some(Check::Pass(d)) => (Verdict::Pass, d),
        Some(Check::Fail(d)) => (Verdict::Fail, d),
        Some(Check::Skipped(d)) => (Verdict::Skipped, d),
        None => (Verdict::Skipped, "skipped: no S3 server in this run".into()),
    };
    out.push(Invariant {
        name: "blocks_in_bucket_exactly_once",
        verdict,
        detail,
    });
    out.push(gossip_invariant(f));
    out
}

/// Dead stores leave the store set within the bound (gossip runs).
fn gossip_invariant(f: &Facts) -> Invariant {
    if !f.gossip {
        return Invariant {
            name: "dead_stores_leave_gossip_view",
            verdict: Verdict::Skipped,
            detail: "skipped: static discovery in this run (see store_set_converges_after_heal)"
                .into(),
        };
    }
    let watched: Vec<(&Window, &WindowRun)> = f
        .windows
        .iter()
        .zip(f.runs)
        .filter(|(_, r)| r.departure_watched)
        .collect();
    let mut left: Vec<f64> = watched.iter().filter_map(|(_, r)| r.left_after_s).collect();
    left.sort_by(f64::total_cmp);
    // A window at least as long as the bound must see the store leave
    // within the bound; shorter ones only give figures.
    let slow: Vec<String> = watched
        .iter()
        .filter(|(w, r)| {
            let long = w.end_s - w.start_s >= f.converge_bound_s;
            match r.left_after_s {
                Some(s) => s > f.converge_bound_s,
                None => long,
            }
        })
        .map(|(w, r)| {
            format!(
                "window {} ({}, {:.0}s): {}",
                w.id,
                w.fault.label(),
                w.end_s - w.start_s,
                r.left_after_s
                    .map(|s| format!("left after {s:.1}s"))
                    .unwrap_or_else(|| "never left".into())
            )
        })
        .collect();
    Invariant {
        name: "dead_stores_leave_gossip_view",
        verdict: if slow.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        detail: format!(
            "{} of {} killed/isolated sidecars left their querier's gossip view before the heal; departure p50 {:.1}s max {:.1}s (bound {:.0}s){}",
            left.len(),
            watched.len(),
            left.get(left.len().saturating_sub(1) / 2)
                .copied()
                .unwrap_or(0.0),
            left.last().copied().unwrap_or(0.0),
            f.converge_bound_s,
            if slow.is_empty() {
                String::new()
            } else {
                format!("; too slow: {}", slow.join("; "))
            }
        ),
    }
}

/// True when no invariant failed.
pub fn all_pass(inv: &[Invariant]) -> bool {
    inv.iter().all(|i| i.verdict != Verdict::Fail)
}
