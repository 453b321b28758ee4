//! The Markdown report.

use std::fmt::Write as _;

use super::{Report, Stats};
use crate::invariants::Verdict;

fn stats_row(name: &str, s: &Stats) -> String {
    format!(
        "| {} | {} | {} | {} ({} exact, {} partial) | {} | {} | {:.0} | {:.0} | {:.0} |",
        name.replace('|', "\\|"),
        s.queries,
        s.exact,
        s.answered_with_warning,
        s.exact_with_warning,
        s.partial_with_warning,
        s.failed,
        s.silent_wrong,
        s.latency_p50_ms,
        s.latency_p90_ms,
        s.latency_p99_ms
    )
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# skein-chaos run, seed {}\n", r.seed);
    let _ = writeln!(
        o,
        "**Result: {}** — duration {:.0}s, {:.1} queries/s, inject: {:?}, skein: `{}`\n",
        if r.passed { "PASS" } else { "FAIL" },
        r.duration_s,
        r.qps,
        r.inject,
        r.skein
    );
    let _ = writeln!(o, "![queries over time](chart.svg)\n");
    let _ = writeln!(
        o,
        "## Invariants\n\n| invariant | verdict | detail |\n|---|---|---|"
    );
    for i in &r.invariants {
        let v = match i.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "**FAIL**",
            Verdict::Skipped => "skipped",
        };
        let _ = writeln!(
            o,
            "| {} | {v} | {} |",
            i.name,
            i.detail.replace('|', "\\|").replace('\n', " ")
        );
    }
    let _ = writeln!(
        o,
        "\n## Availability and latency\n\n| period | queries | exact | answered with warning | failed | silently wrong | p50 ms | p90 ms | p99 ms |\n|---|---|---|---|---|---|---|---|---|"
    );
    let _ = writeln!(o, "{}", stats_row("all", &r.overall));
    let _ = writeln!(o, "{}", stats_row("outside faults", &r.quiet));
    for w in &r.windows {
        let name = format!(
            "#{} {} [{:.0}s–{:.0}s]",
            w.window.id, w.label, w.window.start_s, w.window.end_s
        );
        let _ = writeln!(o, "{}", stats_row(&name, &w.stats));
    }
    let _ = writeln!(
        o,
        "\n## Fault windows\n\n| # | fault | scheduled | applied | healed | store set converged after | left gossip view after | notes and errors |\n|---|---|---|---|---|---|---|---|"
    );
    for w in &r.windows {
        let f = |x: Option<f64>| x.map(|v| format!("{v:.1}s")).unwrap_or_else(|| "-".into());
        let errs: Vec<&str> = [&w.run.note, &w.run.begin_error, &w.run.heal_error]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let _ = writeln!(
            o,
            "| {} | {} | {:.1}s–{:.1}s | {} | {} | {} | {} | {} |",
            w.window.id,
            w.label,
            w.window.start_s,
            w.window.end_s,
            f(w.run.began_s),
            f(w.run.healed_s),
            f(w.run.converged_after_s),
            f(w.run.left_after_s),
            errs.join("; ").replace('|', "\\|").replace('\n', " ")
        );
    }
    if !r.crashes.is_empty() {
        let _ = writeln!(o, "\n## Unexpected exits\n");
        for c in &r.crashes {
            let _ = writeln!(
                o,
                "- `{}` at {:.1}s: {}\n\n```\n{}\n```",
                c.name, c.at_s, c.status, c.log_tail
            );
        }
    }
    let _ = writeln!(o, "\n## Setup\n");
    for t in &r.topology {
        let _ = writeln!(o, "- {t}");
    }
    let _ = writeln!(
        o,
        "- data: {} clusters × 2 replicas, {} instances × 3 metrics, {} samples per series every 15s from {} ms",
        r.data.clusters, r.data.instances, r.data.samples, r.data.start_ms
    );
    for n in &r.notes {
        let _ = writeln!(o, "- {n}");
    }
    o
}
