//! The standard query cases of the querier-vs-Prometheus comparison, and the
//! evaluation plan of each (which instants and ranges over the data window).

use crate::cases::{Case, Eval};
use crate::compare::Combine;
use crate::datagen::SLOT_MS;

const MIN: i64 = 60_000;

/// The evaluations named by `codes`: `i` = instants at the window end, middle
/// and start + 45 m; `e` = instant at the end only, `m` = at the middle only; `r` = range at 60 s steps, `R` = 15 s steps, `f` = 5 m
/// steps, each over the whole window `[start, end]`.
pub fn plan(codes: &str, start: i64, end: i64) -> Vec<Eval> {
    let mid = start + (end - start) / 2;
    let mid = mid - mid.rem_euclid(SLOT_MS);
    let mut out = Vec::new();
    for c in codes.chars() {
        match c {
            'i' => {
                out.push(Eval::Instant(end));
                out.push(Eval::Instant(mid));
                out.push(Eval::Instant(start + 45 * MIN));
            }
            'e' => out.push(Eval::Instant(end)),
            'm' => out.push(Eval::Instant(mid)),
            'r' => out.push(Eval::Range(start, end, MIN)),
            'R' => out.push(Eval::Range(start, end, 15_000)),
            'f' => out.push(Eval::Range(start, end, 5 * MIN)),
            _ => {}
        }
    }
    out
}

/// The cases for `n` clusters (cluster 0 is eu1, cluster 1 is us1), each with
/// its evaluation codes (see [`plan`]).
pub fn standard_cases(n: usize) -> Vec<(Case, &'static str)> {
    use Combine::{Max, Min, Sum};
    vec![
        // Selectors: every matcher type, on labels and on __name__.
        (Case::union("gen_queue_depth", n), "ir"),
        (Case::union(r#"gen_queue_depth{job="api"}"#, n), "i"),
        (Case::union(r#"gen_queue_depth{job!="api"}"#, n), "if"),
        (
            Case::union(r#"gen_http_requests_total{code=~"5.."}"#, n),
            "i",
        ),
        (
            Case::union(r#"gen_http_requests_total{instance!~"host-[01]:9100"}"#, n),
            "i",
        ),
        (
            Case::union(r#"{__name__="gen_temperature_celsius", job="db"}"#, n),
            "iR",
        ),
        (
            Case::union(
                r#"{__name__=~"gen_(queue_depth|temperature_celsius)", instance="host-1:9100"}"#,
                n,
            ),
            "i",
        ),
        (
            Case::union(r#"{__name__!~"gen_(http|request).*", job="cache"}"#, n),
            "i",
        ),
        (
            Case::union(
                r#"{__name__=~"gen_.+", __name__!="gen_queue_depth", job="api", instance="host-2:9100"}"#,
                n,
            ),
            "i",
        ),
        (Case::union("gen_build_info", n), "i"),
        // Matchers on the external label: only the matching cluster answers.
        (
            Case::only(r#"gen_queue_depth{cluster="eu1"}"#, 0, "gen_queue_depth", n),
            "ir",
        ),
        (
            Case::only(
                r#"gen_queue_depth{cluster=~"us.*", job="db"}"#,
                1,
                r#"gen_queue_depth{job="db"}"#,
                n,
            ),
            "i",
        ),
        (
            Case::only(
                r#"gen_queue_depth{cluster!="eu1", job="db"}"#,
                1,
                r#"gen_queue_depth{job="db"}"#,
                n,
            ),
            "i",
        ),
        (
            Case::only(
                r#"gen_queue_depth{cluster!~"us.*", job="db"}"#,
                0,
                r#"gen_queue_depth{job="db"}"#,
                n,
            ),
            "i",
        ),
        // Raw samples and offset.
        (
            Case::union(r#"gen_temperature_celsius{job="api"}[2m]"#, n),
            "i",
        ),
        (Case::union("gen_temperature_celsius offset 30m", n), "ir"),
        (
            Case::union(r#"gen_http_requests_total{job="db"}[5m] offset 1h"#, n),
            "em",
        ),
        // The series that appears and vanishes (lookback after the last sample).
        (Case::union("gen_ephemeral_jobs", n), "mR"),
        // Counter and gauge functions.
        (Case::union("rate(gen_http_requests_total[5m])", n), "irf"),
        (Case::union("irate(gen_http_requests_total[1m])", n), "iR"),
        (
            Case::union(r#"increase(gen_http_requests_total{job="api"}[10m])"#, n),
            "if",
        ),
        (Case::union("delta(gen_temperature_celsius[15m])", n), "ir"),
        (
            Case::union("rate(gen_http_requests_total[5m] offset 10m)", n),
            "i",
        ),
        // Aggregations that keep the cluster.
        (
            Case::union_as(
                "sum by (cluster) (rate(gen_http_requests_total[5m]))",
                "sum(rate(gen_http_requests_total[5m]))",
                n,
            ),
            "irf",
        ),
        (
            Case::union_as(
                "sum by (cluster, job) (gen_queue_depth)",
                "sum by (job) (gen_queue_depth)",
                n,
            ),
            "i",
        ),
        (
            Case::union("avg without (instance) (gen_temperature_celsius)", n),
            "if",
        ),
        (
            Case::union(
                "count without (instance, code) (gen_http_requests_total)",
                n,
            ),
            "i",
        ),
        (
            Case::union_as(
                "max by (cluster) (gen_queue_depth)",
                "max(gen_queue_depth)",
                n,
            ),
            "ir",
        ),
        (
            Case::union_as(
                "min by (cluster, job) (gen_temperature_celsius)",
                "min by (job) (gen_temperature_celsius)",
                n,
            ),
            "i",
        ),
        (
            Case::union("min without (instance) (gen_temperature_celsius)", n),
            "ir",
        ),
        (
            Case::union_as(
                "topk by (cluster) (2, gen_temperature_celsius)",
                "topk(2, gen_temperature_celsius)",
                n,
            ),
            "i",
        ),
        // Aggregations across clusters.
        (
            Case::combine(Sum, "sum(rate(gen_http_requests_total[5m]))"),
            "ir",
        ),
        (
            Case::combine(
                Sum,
                "sum by (job, code) (rate(gen_http_requests_total[5m]))",
            ),
            "if",
        ),
        (
            Case::combine(Sum, "sum without (instance, cluster) (gen_queue_depth)"),
            "i",
        ),
        (
            Case::combine(Max, "max by (job) (gen_temperature_celsius)"),
            "ir",
        ),
        (Case::combine(Min, "min(gen_queue_depth)"), "if"),
        (
            Case::combine(
                Max,
                "max without (instance, cluster) (gen_temperature_celsius)",
            ),
            "i",
        ),
        (Case::combine(Sum, "count by (job) (gen_queue_depth)"), "i"),
        (Case::combine(Sum, "count(gen_ephemeral_jobs)"), "r"),
        (
            Case::avg(
                "avg by (job) (gen_queue_depth)",
                "sum by (job) (gen_queue_depth)",
                "count by (job) (gen_queue_depth)",
            ),
            "if",
        ),
        (
            Case::avg(
                "avg(gen_temperature_celsius)",
                "sum(gen_temperature_celsius)",
                "count(gen_temperature_celsius)",
            ),
            "i",
        ),
        // Scalar-vector arithmetic, comparison filters and bool.
        (Case::union("gen_temperature_celsius * 2 + 1", n), "if"),
        (Case::union("100 - gen_queue_depth", n), "i"),
        (Case::union("gen_queue_depth > 25", n), "ir"),
        (Case::union("gen_queue_depth > bool 25", n), "i"),
        (
            Case::union(
                r#"gen_temperature_celsius{job="db"} <= 20 or gen_temperature_celsius{job="db"} > 20"#,
                n,
            ),
            "i",
        ),
        // Vector-vector matching within each cluster.
        (
            Case::union(
                "rate(gen_request_duration_seconds_sum[5m]) / rate(gen_request_duration_seconds_count[5m])",
                n,
            ),
            "ir",
        ),
        (
            Case::union(
                "gen_queue_depth - on (job, instance, cluster) gen_temperature_celsius",
                n,
            ),
            "i",
        ),
        // Classic histogram.
        (
            Case::combine(
                Sum,
                "sum by (le) (rate(gen_request_duration_seconds_bucket[5m]))",
            ),
            "i",
        ),
        (
            Case::union_as(
                "histogram_quantile(0.9, sum by (cluster, le) (rate(gen_request_duration_seconds_bucket[5m])))",
                "histogram_quantile(0.9, sum by (le) (rate(gen_request_duration_seconds_bucket[5m])))",
                n,
            ),
            "ir",
        ),
    ]
}
