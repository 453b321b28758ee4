//! The differential query set: templates per query family, instantiated with a
//! seeded PRNG into concrete queries with evaluation times.
//!
//! Every template says whether the result series keep the sidecar's external
//! labels ([`Ext::Keep`]: Skein's answer is Prometheus's with the external
//! labels added; [`Ext::Drop`]: the labels are aggregated or matched away, the
//! answers must be equal as they are).
//!
//! Ranges, offsets and subquery steps are multiples of 15 s for the generated
//! data, and evaluation times sit 7.321 s after a 15 s slot (see
//! [`super::semantics`] for why).

use crate::cases::Eval;
use crate::xorshift::XorShift64;

/// Whether result series keep the external labels (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ext {
    Keep,
    Drop,
}

/// Which data a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    /// The generated blocks (whole-second samples 1-4 s after 15 s slots).
    Blocks,
    /// The live-scraped flapping target (real staleness markers).
    Live,
}

/// One generated expression before it gets evaluation times.
#[derive(Debug, Clone)]
pub struct Expr {
    /// What Prometheus 2.42 runs.
    pub prom: String,
    /// What Skein runs (differs only where the function was renamed).
    pub skein: String,
    pub ext: Ext,
    /// The answer's series order is meaningful (sort, sort_desc on instant queries).
    pub ordered: bool,
    /// The 2.42 vs 3 rule that made Skein's form differ, if any.
    pub rule: Option<&'static str>,
    /// 2.42 keeps `__name__` where 3 drops it (atan2): compare without it.
    pub drop_prom_name: bool,
}

impl Expr {
    /// The same expression on both sides.
    pub fn same(q: String, ext: Ext) -> Self {
        Self {
            skein: q.clone(),
            prom: q,
            ext,
            ordered: false,
            rule: None,
            drop_prom_name: false,
        }
    }
}

/// One concrete differential query.
#[derive(Debug, Clone)]
pub struct Query {
    pub id: usize,
    pub family: &'static str,
    pub expr: Expr,
    pub eval: Eval,
    pub data: Data,
}

/// The time windows queries may be evaluated in.
#[derive(Debug, Clone)]
pub struct Windows {
    /// Generated data `[start, end)`, start on the 15 s grid.
    pub blocks: (i64, i64),
    /// Evaluation times usable for live data (boundary-checked by the caller),
    /// in ascending order, and the step (ms) between them that keeps them safe.
    pub live_times: Vec<i64>,
    pub live_step_ms: i64,
}

/// Offset of every evaluation time from the 15 s grid (ms).
pub const EVAL_OFFSET_MS: i64 = 7_321;
const SLOT: i64 = 15_000;
const MIN: i64 = 60_000;

type Gen = fn(&mut XorShift64) -> Expr;

fn pick<'a>(rng: &mut XorShift64, xs: &[&'a str]) -> &'a str {
    xs[rng.range_i64(0, xs.len() as i64 - 1) as usize]
}

const GAUGES: &[&str] = &[
    "gen_temperature_celsius",
    "gen_queue_depth",
    "gen_ephemeral_jobs",
    r#"gen_temperature_celsius{job!="db"}"#,
    r#"gen_queue_depth{instance=~"host-[01]:9100"}"#,
];
/// Gauges whose values practically never tie (for topk/bottomk/sort).
const SMOOTH: &[&str] = &[
    "gen_temperature_celsius",
    r#"gen_temperature_celsius{job=~"api|cache"}"#,
];
const COUNTERS: &[&str] = &[
    "gen_http_requests_total",
    r#"gen_http_requests_total{code="500"}"#,
    r#"gen_http_requests_total{job=~"api|db"}"#,
    "gen_request_duration_seconds_count",
    "gen_request_duration_seconds_sum",
    r#"gen_http_requests_total{code="500",instance="host-0:9100"}"#,
];
const RANGES: &[&str] = &["1m", "90s", "2m", "5m", "10m", "15m"];
const AGGS: &[&str] = &[
    "sum", "avg", "min", "max", "count", "stddev", "stdvar", "group",
];
const PHIS: &[&str] = &["0", "0.1", "0.5", "0.9", "0.99", "1", "-0.5", "1.5"];

fn aggregation() -> Vec<Gen> {
    vec![
        |r| Expr::same(format!("{}({})", pick(r, AGGS), pick(r, GAUGES)), Ext::Drop),
        |r| {
            let q = format!("{} by (job) ({})", pick(r, AGGS), pick(r, GAUGES));
            Expr::same(q, Ext::Drop)
        },
        |r| {
            let q = format!("{} without (instance) ({})", pick(r, AGGS), pick(r, GAUGES));
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "{} by (job, code) (rate({}[{}]))",
                pick(r, AGGS),
                pick(r, &COUNTERS[..3]),
                pick(r, RANGES)
            );
            Expr::same(q, Ext::Drop)
        },
        |r| {
            let q = format!(
                "{}({}, rate({}[{}]))",
                pick(r, &["topk", "bottomk"]),
                pick(r, &["1", "2", "3", "5", "40"]),
                pick(r, COUNTERS),
                pick(r, RANGES)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "{} by (job) ({}, {})",
                pick(r, &["topk", "bottomk"]),
                pick(r, &["1", "2"]),
                pick(r, SMOOTH)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!("quantile({}, {})", pick(r, PHIS), pick(r, GAUGES));
            Expr::same(q, Ext::Drop)
        },
        |r| {
            let q = format!(
                "quantile by (job) ({}, rate({}[{}]))",
                pick(r, PHIS),
                pick(r, &COUNTERS[..3]),
                pick(r, RANGES)
            );
            Expr::same(q, Ext::Drop)
        },
        |r| {
            let q = format!(
                "quantile without (instance) ({}, {})",
                pick(r, PHIS),
                pick(r, GAUGES)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let (grouping, ext) = match r.range_i64(0, 2) {
                0 => ("", Ext::Drop),
                1 => (" by (job)", Ext::Drop),
                _ => (" without (instance)", Ext::Keep),
            };
            let q = format!(
                "count_values{grouping}(\"{}\", {})",
                pick(r, &["value", "depth"]),
                pick(
                    r,
                    &[
                        "gen_queue_depth",
                        "round(gen_temperature_celsius)",
                        "gen_queue_depth / 4"
                    ]
                )
            );
            Expr::same(q, ext)
        },
        |r| {
            let q = format!(
                "sum(rate({}[{}])) by (code)",
                pick(r, &COUNTERS[..3]),
                pick(r, RANGES)
            );
            Expr::same(q, Ext::Drop)
        },
    ]
}

/// Why atan2 answers are compared without the metric name.
pub const ATAN2_RULE: &str =
    "atan2 keeps the metric name in 2.42, drops it since 2.46 (prometheus/prometheus#12595)";

const ARITH: &[&str] = &["+", "-", "*", "/", "%", "^"];
const NUMS: &[&str] = &["2", "0.5", "3", "10", "-1.5", "0"];

fn binary() -> Vec<Gen> {
    vec![
        |r| {
            let q = format!("{} {} {}", pick(r, GAUGES), pick(r, ARITH), pick(r, NUMS));
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!("{} {} {}", pick(r, NUMS), pick(r, ARITH), pick(r, GAUGES));
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let op = pick(r, &["+", "-", "*", "/", "%", "atan2"]);
            let q = format!("gen_temperature_celsius {op} gen_queue_depth");
            let mut e = Expr::same(q, Ext::Keep);
            if op == "atan2" {
                e.drop_prom_name = true;
                e.rule = Some(ATAN2_RULE);
            }
            e
        },
        |r| {
            let q = format!(
                "gen_temperature_celsius {} on(job, instance) gen_queue_depth",
                pick(r, &["+", "-", "*", "/"])
            );
            Expr::same(q, Ext::Drop)
        },
        |r| {
            let rg = pick(r, RANGES);
            let q = format!(
                "rate(gen_http_requests_total{{code=\"500\"}}[{rg}]) / ignoring(code) rate(gen_http_requests_total{{code=\"200\"}}[{rg}])"
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "gen_http_requests_total / ignoring(code) group_left sum without(code) ({})",
                pick(r, &["gen_http_requests_total", "gen_queue_depth + 1"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let rg = pick(r, RANGES);
            let q = format!(
                "sum without(code) (rate(gen_http_requests_total[{rg}])) / ignoring(code) group_right rate(gen_http_requests_total[{rg}])"
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "{} * on(job, instance) group_left(path) gen_build_info",
                pick(r, SMOOTH)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "gen_request_duration_seconds_bucket / on(job, instance) group_left {}",
                pick(
                    r,
                    &[
                        "gen_request_duration_seconds_count",
                        "gen_request_duration_seconds_sum"
                    ]
                )
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "rate(gen_http_requests_total[{}]) * on(job) group_left sum by (job) (gen_queue_depth)",
                pick(r, RANGES)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "sum by (job) (rate({}[{}])) / on(job) sum by (job) ({})",
                pick(r, &COUNTERS[..3]),
                pick(r, RANGES),
                pick(r, &GAUGES[..2])
            );
            Expr::same(q, Ext::Drop)
        },
        |r| Expr::same(format!("-{}", pick(r, GAUGES)), Ext::Keep),
    ]
}

fn logical() -> Vec<Gen> {
    vec![
        |r| {
            let q = format!(
                "{} and gen_queue_depth > {}",
                pick(r, SMOOTH),
                pick(r, &["10", "25", "40"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "gen_temperature_celsius and on(job) gen_queue_depth > {}",
                pick(r, &["30", "45"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "{} or {}",
                pick(r, &["gen_temperature_celsius", "gen_queue_depth > 30"]),
                pick(r, &["gen_ephemeral_jobs", "gen_temperature_celsius"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "gen_temperature_celsius unless gen_queue_depth < {}",
                pick(r, &["10", "20", "35"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "gen_temperature_celsius unless on(instance) (gen_queue_depth > {})",
                pick(r, &["30", "45"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "rate(gen_http_requests_total[{}]) and ignoring(code) gen_queue_depth > 25",
                pick(r, RANGES)
            );
            Expr::same(q, Ext::Keep)
        },
    ]
}

const CMPS: &[&str] = &["==", "!=", ">", "<", ">=", "<="];

fn comparison() -> Vec<Gen> {
    vec![
        |r| {
            let q = format!(
                "{} {} {}",
                pick(r, GAUGES),
                pick(r, CMPS),
                pick(r, &["20", "25", "19.5", "0"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "{} {} bool {}",
                pick(r, GAUGES),
                pick(r, CMPS),
                pick(r, &["20", "25", "19.5"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!("gen_temperature_celsius {} gen_queue_depth", pick(r, CMPS));
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "gen_queue_depth {} bool gen_temperature_celsius",
                pick(r, CMPS)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "gen_queue_depth {} bool on(job, instance) gen_temperature_celsius",
                pick(r, CMPS)
            );
            Expr::same(q, Ext::Drop)
        },
        |r| {
            let q = format!(
                "{} {} bool {}",
                pick(r, &["1", "2.5", "NaN"]),
                pick(r, CMPS),
                pick(r, &["2.5", "Inf"])
            );
            Expr::same(q, Ext::Drop)
        },
        |r| {
            let q = format!("20 {} {}", pick(r, CMPS), pick(r, SMOOTH));
            Expr::same(q, Ext::Keep)
        },
    ]
}

fn counter() -> Vec<Gen> {
    vec![
        |r| {
            let q = format!(
                "{}({}[{}])",
                pick(r, &["rate", "irate", "increase", "resets", "changes"]),
                pick(r, COUNTERS),
                pick(r, RANGES)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "{}({}[{}])",
                pick(r, &["delta", "idelta", "deriv", "changes", "resets"]),
                pick(r, GAUGES),
                pick(r, RANGES)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "predict_linear({}[{}], {})",
                pick(r, GAUGES),
                pick(r, RANGES),
                pick(r, &["60", "300", "3600", "-600", "0"])
            );
            Expr::same(q, Ext::Keep)
        },
    ]
}

fn over_time() -> Vec<Gen> {
    vec![
        |r| {
            let q = format!(
                "{}_over_time({}[{}])",
                pick(
                    r,
                    &[
                        "avg", "min", "max", "sum", "count", "stddev", "stdvar", "last", "present"
                    ]
                ),
                pick(r, GAUGES),
                pick(r, RANGES)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "quantile_over_time({}, {}[{}])",
                pick(r, PHIS),
                pick(r, GAUGES),
                pick(r, RANGES)
            );
            Expr::same(q, Ext::Keep)
        },
    ]
}

const HPHIS: &[&str] = &["0", "0.25", "0.5", "0.9", "0.99", "1", "-0.1", "1.1"];

fn histogram() -> Vec<Gen> {
    vec![
        |r| {
            let q = format!(
                "histogram_quantile({}, rate(gen_request_duration_seconds_bucket[{}]))",
                pick(r, HPHIS),
                pick(r, RANGES)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let (by, ext) = match r.range_i64(0, 2) {
                0 => ("by (le)", Ext::Drop),
                1 => ("by (job, le)", Ext::Drop),
                _ => ("without (instance)", Ext::Keep),
            };
            let q = format!(
                "histogram_quantile({}, sum {by} (rate(gen_request_duration_seconds_bucket[{}])))",
                pick(r, HPHIS),
                pick(r, RANGES)
            );
            Expr::same(q, ext)
        },
        |r| {
            let q = format!(
                "histogram_quantile({}, gen_request_duration_seconds_bucket)",
                pick(r, HPHIS)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let rg = pick(r, RANGES);
            let q = format!(
                "sum(rate(gen_request_duration_seconds_sum[{rg}])) / sum(rate(gen_request_duration_seconds_count[{rg}]))"
            );
            Expr::same(q, Ext::Drop)
        },
    ]
}

fn label() -> Vec<Gen> {
    vec![
        |r| {
            let q = format!(
                r#"label_replace({}, "host", "$1", "instance", "(.*):.*")"#,
                pick(r, GAUGES)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                r#"label_replace({}, "job", "x-$1", "job", "(a.*)")"#,
                pick(r, GAUGES)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                r#"label_replace({}, "nomatch", "$1", "instance", "zzz(.*)")"#,
                pick(r, GAUGES)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                r#"label_join({}, "pair", "{}", "job", "instance")"#,
                pick(r, GAUGES),
                pick(r, &["/", "", "--"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                r#"sum by (host) (label_replace(rate({}[{}]), "host", "$1", "instance", "(host-[0-9]+).*"))"#,
                pick(r, &COUNTERS[..3]),
                pick(r, RANGES)
            );
            Expr::same(q, Ext::Drop)
        },
        |_| {
            Expr::same(
                r#"label_replace(gen_build_info, "p2", "<$1>", "path", "(.*)")"#.into(),
                Ext::Keep,
            )
        },
    ]
}

fn absent() -> Vec<Gen> {
    vec![
        |r| {
            let q = format!(
                "absent({})",
                pick(
                    r,
                    &[
                        "nonexistent_metric",
                        r#"nonexistent_metric{job="x", a=~"b"}"#,
                        "gen_queue_depth",
                        r#"gen_ephemeral_jobs{job="batch"}"#,
                        "sum(nonexistent_metric)",
                    ]
                )
            );
            Expr::same(q, Ext::Drop)
        },
        |r| {
            let q = format!(
                "absent_over_time({}[{}])",
                pick(
                    r,
                    &[
                        r#"gen_ephemeral_jobs{job="batch"}"#,
                        r#"nonexistent_metric{job="y"}"#,
                        "gen_temperature_celsius",
                    ]
                ),
                pick(r, RANGES)
            );
            Expr::same(q, Ext::Drop)
        },
    ]
}

fn sort() -> Vec<Gen> {
    vec![
        |r| {
            let q = format!("{}({})", pick(r, &["sort", "sort_desc"]), pick(r, SMOOTH));
            ordered(Expr::same(q, Ext::Keep))
        },
        |r| {
            let q = format!(
                "{}(rate({}[{}]))",
                pick(r, &["sort", "sort_desc"]),
                pick(r, COUNTERS),
                pick(r, RANGES)
            );
            ordered(Expr::same(q, Ext::Keep))
        },
        |r| {
            let q = format!(
                "{}(sum by (job) ({}))",
                pick(r, &["sort", "sort_desc"]),
                pick(r, GAUGES)
            );
            ordered(Expr::same(q, Ext::Drop))
        },
        |r| {
            let q = format!("{}(gen_queue_depth)", pick(r, &["sort", "sort_desc"]));
            ordered(Expr::same(q, Ext::Keep))
        },
    ]
}

fn ordered(mut e: Expr) -> Expr {
    e.ordered = true;
    e
}

fn math() -> Vec<Gen> {
    vec![
        |r| {
            let q = format!(
                "{}({})",
                pick(
                    r,
                    &[
                        "abs", "ceil", "floor", "round", "sqrt", "ln", "log2", "log10", "sgn",
                        "sin", "cos", "atan", "deg", "rad", "asinh"
                    ]
                ),
                pick(r, GAUGES)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "{}({} - 20)",
                pick(r, &["abs", "sgn", "sqrt", "ln", "exp", "round", "ceil"]),
                pick(r, GAUGES)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "clamp({}, {}, {})",
                pick(r, GAUGES),
                pick(r, &["18", "10", "-Inf"]),
                pick(r, &["22", "30", "5"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "{}({}, {})",
                pick(r, &["clamp_min", "clamp_max"]),
                pick(r, GAUGES),
                pick(r, &["20", "25", "NaN"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "round({}, {})",
                pick(r, GAUGES),
                pick(r, &["0.5", "2", "0.01", "10", "-3"])
            );
            Expr::same(q, Ext::Keep)
        },
    ]
}

fn time_scalar() -> Vec<Gen> {
    vec![
        |r| Expr::same(format!("timestamp({})", pick(r, GAUGES)), Ext::Keep),
        |r| {
            let q = pick(
                r,
                &[
                    "vector(time())",
                    "time()",
                    "vector(1) + vector(2)",
                    "scalar(sum(gen_queue_depth))",
                    "scalar(gen_queue_depth)",
                    "scalar(gen_build_info)",
                    "vector(scalar(sum(rate(gen_http_requests_total[5m]))))",
                ],
            );
            Expr::same(q.into(), Ext::Drop)
        },
        |r| {
            let q = format!("{} * scalar(count({}))", pick(r, SMOOTH), pick(r, GAUGES));
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!("time() - timestamp({})", pick(r, GAUGES));
            Expr::same(q, Ext::Keep)
        },
    ]
}

const TIME_FNS: &[&str] = &[
    "hour",
    "minute",
    "day_of_week",
    "day_of_month",
    "day_of_year",
    "days_in_month",
    "month",
    "year",
];

fn time_funcs() -> Vec<Gen> {
    vec![
        |r| Expr::same(format!("{}()", pick(r, TIME_FNS)), Ext::Drop),
        |r| {
            let q = format!("{}(timestamp({}))", pick(r, TIME_FNS), pick(r, GAUGES));
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "{}(vector({}))",
                pick(r, TIME_FNS),
                pick(r, &["1709164800", "951782400.5", "0", "4102444799"])
            );
            Expr::same(q, Ext::Drop)
        },
    ]
}

const SUB_RANGES: &[&str] = &["10m", "30m", "1h"];
const SUB_STEPS: &[&str] = &["15s", "30s", "1m", "5m"];

fn subquery() -> Vec<Gen> {
    vec![
        |r| {
            let q = format!(
                "max_over_time(rate({}[{}])[{}:{}])",
                pick(r, COUNTERS),
                pick(r, RANGES),
                pick(r, SUB_RANGES),
                pick(r, SUB_STEPS)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "avg_over_time(sum by (job) ({})[{}:{}])",
                pick(r, GAUGES),
                pick(r, SUB_RANGES),
                pick(r, SUB_STEPS)
            );
            Expr::same(q, Ext::Drop)
        },
        |r| {
            let q = format!(
                "rate(sum({})[{}:{}])",
                pick(r, &COUNTERS[..3]),
                pick(r, SUB_RANGES),
                pick(r, SUB_STEPS)
            );
            Expr::same(q, Ext::Drop)
        },
        |r| {
            let q = format!(
                "deriv({}[{}:{}])",
                pick(r, GAUGES),
                pick(r, SUB_RANGES),
                pick(r, SUB_STEPS)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "min_over_time({}[{}:{}] offset {})",
                pick(r, GAUGES),
                pick(r, SUB_RANGES),
                pick(r, SUB_STEPS),
                pick(r, &["5m", "30m", "-5m"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "quantile_over_time(0.9, rate({}[{}])[{}:{}])",
                pick(r, COUNTERS),
                pick(r, RANGES),
                pick(r, SUB_RANGES),
                pick(r, SUB_STEPS)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "max_over_time(max_over_time({}[{}])[{}:])",
                pick(r, GAUGES),
                pick(r, RANGES),
                pick(r, SUB_RANGES)
            );
            Expr::same(q, Ext::Keep)
        },
    ]
}

fn offset_at() -> Vec<Gen> {
    vec![
        |r| {
            let q = format!(
                "{} offset {}",
                pick(r, GAUGES),
                pick(r, &["5m", "30m", "1h", "-5m"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "rate({}[{}] offset {})",
                pick(r, COUNTERS),
                pick(r, RANGES),
                pick(r, &["5m", "1h", "-10m"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!("{} @ {}", pick(r, GAUGES), pick(r, &["start()", "end()"]));
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "rate({}[{}] @ {})",
                pick(r, COUNTERS),
                pick(r, RANGES),
                pick(r, &["start()", "end()"])
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "{} offset {} - {}",
                pick(r, SMOOTH),
                pick(r, &["15m", "1h"]),
                "gen_temperature_celsius"
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!(
                "sum by (job) ({} @ end() offset {})",
                pick(r, GAUGES),
                pick(r, &["5m", "1h"])
            );
            Expr::same(q, Ext::Drop)
        },
    ]
}

fn literals() -> Vec<Gen> {
    vec![
        |r| {
            let q = pick(
                r,
                &[
                    "1e3",
                    "Inf",
                    "-Inf",
                    "NaN",
                    "1e3 + 2.5",
                    "2 ^ 10",
                    "0x1F",
                    "1.5e-3 * 4",
                    "-Inf * 0",
                    "NaN == bool NaN",
                    "Inf > bool 1e308",
                    "+5 % 3",
                ],
            );
            Expr::same(q.into(), Ext::Drop)
        },
        |r| {
            let q = format!(
                "{} {}",
                pick(r, GAUGES),
                pick(
                    r,
                    &[
                        "* 1e3", "+ NaN", "> -Inf", "< Inf", "/ Inf", "* -1e-3", "- 1e308"
                    ]
                )
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let q = format!("vector({})", pick(r, &["NaN", "-Inf", "1e-3", "Inf", ".5"]));
            Expr::same(q, Ext::Drop)
        },
    ]
}

fn holt_winters() -> Vec<Gen> {
    vec![|r| {
        let args = format!(
            "{}[{}], {}, {}",
            pick(r, GAUGES),
            pick(r, &["2m", "5m", "10m"]),
            pick(r, &["0.1", "0.5", "0.9"]),
            pick(r, &["0.1", "0.5", "0.9"])
        );
        Expr {
            prom: format!("holt_winters({args})"),
            skein: format!("double_exponential_smoothing({args})"),
            ext: Ext::Keep,
            ordered: false,
            rule: Some("holt_winters (2.42) is double_exponential_smoothing (3)"),
            drop_prom_name: false,
        }
    }]
}

const LIVE_RANGES: &[&str] = &["2s", "3s", "5s", "10s"];

fn live() -> Vec<Gen> {
    vec![
        |r| {
            let q = pick(
                r,
                &[
                    "diff_live_gauge",
                    r#"diff_live_gauge{id="flap"}"#,
                    r#"up{job="flap"}"#,
                    "timestamp(diff_live_gauge)",
                    "diff_live_gauge offset 3s",
                ],
            );
            Expr::same(q.into(), Ext::Keep)
        },
        |r| {
            let q = pick(
                r,
                &[
                    "count(diff_live_gauge)",
                    r#"absent(diff_live_gauge{id="flap"})"#,
                    "sum(diff_live_requests_total)",
                ],
            );
            Expr::same(q.into(), Ext::Drop)
        },
        |r| {
            let q = format!(
                "{}_over_time(diff_live_gauge[{}])",
                pick(r, &["last", "count", "present", "max", "avg"]),
                pick(r, LIVE_RANGES)
            );
            Expr::same(q, Ext::Keep)
        },
        |r| {
            let f = pick(r, &["rate", "increase", "changes", "resets", "irate"]);
            // rate()/increase() only over the counter that starts far from zero (rule 3).
            let m = if f == "rate" || f == "increase" {
                "diff_live_requests_total"
            } else {
                pick(r, &["diff_live_requests_total", "diff_live_gauge"])
            };
            let q = format!("{f}({m}[{}])", pick(r, &["5s", "10s"]));
            Expr::same(q, Ext::Keep)
        },
    ]
}

fn edge_cases() -> Vec<Gen> {
    vec![
        |r| {
            let q = pick(
                r,
                &[
                    "2 ^ 3 ^ 2",
                    "vector(1) / 0",
                    "vector(-1) / 0",
                    "vector(0) / 0",
                    "round(vector(-2.5))",
                    "round(vector(2.5))",
                    "round(vector(-0.5), 0.3)",
                    "ln(vector(0))",
                    "day_of_week(vector(-1))",
                    "year(vector(1e10))",
                    "days_in_month(vector(951782400))",
                    "time() % 3600",
                    "scalar(nonexistent_metric)",
                    "sgn(vector(-0.0))",
                ],
            );
            Expr::same(q.into(), Ext::Drop)
        },
        |r| {
            let q = pick(
                r,
                &[
                    "-gen_queue_depth ^ 2",
                    "gen_queue_depth % -3",
                    "-gen_temperature_celsius % 7",
                    r#"{__name__=~"gen_(temperature_celsius|queue_depth)"}"#,
                    r#"{job="api"}"#,
                    r#"{__name__=~"gen_.*", job="db"} > 40"#,
                    r#"gen_queue_depth{job=~"a.*|c.*", instance!~"host-1.*"}"#,
                    r#"label_replace(gen_queue_depth, "__name__", "renamed_$1", "job", "(.*)")"#,
                    r#"label_replace(gen_queue_depth, "whole", "[$0]", "instance", "host-(.)")"#,
                    r#"label_join(gen_queue_depth, "instance", "+", "instance", "job")"#,
                    "deriv(gen_build_info[5m])",
                    "changes(gen_build_info[10m])",
                    "resets(gen_request_duration_seconds_bucket[15m])",
                    "irate(gen_ephemeral_jobs[2m])",
                    "timestamp(gen_queue_depth offset 5m)",
                    "hour(gen_queue_depth)",
                    r#"gen_queue_depth == bool 3"#,
                    r#"histogram_quantile(0.5, rate(gen_request_duration_seconds_bucket{le!="+Inf"}[5m]))"#,
                    r#"histogram_quantile(0.5, rate(gen_request_duration_seconds_bucket{le!="0.25"}[5m]))"#,
                    r#"gen_temperature_celsius * ignoring(path) group_left gen_build_info"#,
                    "topk(1, gen_ephemeral_jobs)",
                    "stddev_over_time(gen_ephemeral_jobs[15m])",
                ],
            );
            Expr::same(q.into(), Ext::Keep)
        },
        |r| {
            let q = pick(
                r,
                &[
                    r#"sum by (__name__) ({job="api"})"#,
                    r#"count_values("v", gen_queue_depth / 0)"#,
                    r#"count_values by (job) ("job", gen_queue_depth)"#,
                    "quantile(0.5, gen_queue_depth / 0)",
                    "max by (job) (sum without (code) (rate(gen_http_requests_total[5m])))",
                    "avg by (job) (gen_temperature_celsius) * on(job) group_left count by (job) (gen_queue_depth)",
                    "sort_desc(count_values(\"v\", gen_queue_depth))",
                    "increase(sum(gen_http_requests_total)[30m:1m])",
                    "last_over_time(sum(gen_queue_depth)[1m:15s])",
                    "predict_linear(sum(gen_temperature_celsius)[30m:1m], 600)",
                    "absent_over_time(nonexistent_metric[5m:1m])",
                    "stdvar by (job) (gen_temperature_celsius)",
                    "sum(gen_queue_depth @ AT_LITERAL)",
                    "count(gen_temperature_celsius @ AT_LITERAL offset 10m)",
                ],
            );
            Expr::same(q.into(), Ext::Drop)
        },
        |r| {
            let q = pick(
                r,
                &[
                    r#"count_values without (instance) ("job", gen_queue_depth)"#,
                    "max_over_time(rate(gen_http_requests_total[5m])[30m:1m] @ end())",
                    "gen_queue_depth @ AT_LITERAL",
                    "rate(gen_http_requests_total[5m] @ AT_LITERAL)",
                    "gen_temperature_celsius unless ignoring(job) gen_build_info",
                    "gen_temperature_celsius and ignoring(path) gen_build_info",
                    "quantile_over_time(0.5, gen_ephemeral_jobs[30m])",
                ],
            );
            Expr::same(q.into(), Ext::Keep)
        },
    ]
}

/// A random nested instant-vector expression of at most `depth` levels, and
/// whether its series keep the source labels (and so the external labels).
fn nested(r: &mut XorShift64, depth: u32) -> (String, bool) {
    if depth == 0 || r.range_i64(0, 5) == 0 {
        return match r.range_i64(0, 2) {
            0 => (pick(r, &GAUGES[..2]).to_string(), true),
            1 => (
                format!(
                    "{}({}[{}])",
                    pick(r, &["rate", "increase", "irate"]),
                    pick(r, &COUNTERS[..2]),
                    pick(r, RANGES)
                ),
                true,
            ),
            _ => (
                format!(
                    "{}_over_time({}[{}])",
                    pick(r, &["avg", "max", "min", "last", "stddev"]),
                    pick(r, &GAUGES[..2]),
                    pick(r, RANGES)
                ),
                true,
            ),
        };
    }
    let (x, ext) = nested(r, depth - 1);
    match r.range_i64(0, 10) {
        0 => (format!("{} by (job) ({x})", pick(r, AGGS)), false),
        1 => (format!("{} without (instance) ({x})", pick(r, AGGS)), ext),
        2 => (
            format!("{}({x})", pick(r, &["abs", "ceil", "sqrt", "exp", "sgn"])),
            ext,
        ),
        3 => (
            format!("({x}) {} {}", pick(r, ARITH), pick(r, &["2", "0.5", "-3"])),
            ext,
        ),
        4 => (
            format!(
                "({x}) {} {}",
                pick(r, CMPS),
                pick(r, &["1", "20", "bool 10"])
            ),
            ext,
        ),
        // No subquery inside a subquery (see semantics rule 1).
        5 if !x.contains(":") => (
            format!(
                "{}(({x})[{}:{}])",
                // No rate()/increase() over subqueries that may have gaps (rule 3).
                pick(
                    r,
                    &[
                        "max_over_time",
                        "avg_over_time",
                        "delta",
                        "deriv",
                        "changes"
                    ]
                ),
                pick(r, SUB_RANGES),
                pick(r, SUB_STEPS)
            ),
            ext,
        ),
        6 => {
            let (y, _) = nested(r, depth - 1);
            (
                format!("({x}) {} scalar(sum({y}))", pick(r, &["+", "*", "/"])),
                ext,
            )
        }
        7 => (
            format!(r#"label_replace({x}, "tag", "t-$1", "job", "(.*)")"#),
            ext,
        ),
        8 => {
            // Set operators match on all labels: both sides must carry the
            // external labels, or neither, for Prometheus' answer to apply.
            let (y, ext_y) = nested(r, depth - 1);
            if ext_y == ext {
                (format!("({x}) {} ({y})", pick(r, &["and", "unless"])), ext)
            } else {
                (format!("-({x})"), ext)
            }
        }
        // Sample age rather than the raw timestamp: stddev/stdvar over values
        // near 1.8e9 that differ by seconds lose ~8 digits to cancellation, and
        // 2.42's and 3's summation orders then differ beyond 1e-9 (rule 5).
        9 => (format!("time() - timestamp({x})"), ext),
        _ => (format!("-({x})"), ext),
    }
}

fn random_nested() -> Vec<Gen> {
    vec![|r| {
        let (q, ext) = nested(r, 4);
        Expr::same(q, if ext { Ext::Keep } else { Ext::Drop })
    }]
}

/// Families: name, templates, data, how many queries to generate.
fn families() -> Vec<(&'static str, Vec<Gen>, Data, usize)> {
    vec![
        ("aggregation", aggregation(), Data::Blocks, 44),
        ("binary_arith", binary(), Data::Blocks, 30),
        ("logical", logical(), Data::Blocks, 16),
        ("comparison", comparison(), Data::Blocks, 20),
        ("counter_gauge_fns", counter(), Data::Blocks, 26),
        ("over_time", over_time(), Data::Blocks, 24),
        ("histogram", histogram(), Data::Blocks, 16),
        ("label", label(), Data::Blocks, 14),
        ("absent", absent(), Data::Blocks, 12),
        ("sort", sort(), Data::Blocks, 12),
        ("math", math(), Data::Blocks, 20),
        ("time_vector_scalar", time_scalar(), Data::Blocks, 14),
        ("time_funcs", time_funcs(), Data::Blocks, 12),
        ("subquery", subquery(), Data::Blocks, 20),
        ("offset_at", offset_at(), Data::Blocks, 18),
        ("literals", literals(), Data::Blocks, 14),
        ("holt_winters", holt_winters(), Data::Blocks, 6),
        ("edge_cases", edge_cases(), Data::Blocks, 40),
        ("random_nested", random_nested(), Data::Blocks, 50),
        ("live_staleness", live(), Data::Live, 24),
    ]
}

/// A block-data evaluation: instant at a random off-grid time, or a range
/// query with a step that is a multiple of 15 s.
fn block_eval(rng: &mut XorShift64, w: (i64, i64), instant: bool) -> Eval {
    let (start, end) = w;
    let slots = (end - start) / SLOT;
    // Leave 80 min of history, so that no range, subquery or offset window
    // reaches back before the data starts (rule 3); allow up to 6 min past
    // the end (series vanishing, absent()).
    let first = 80 * MIN / SLOT;
    let last = slots + 24;
    if instant {
        let k = rng.range_i64(first, last);
        Eval::Instant(start + k * SLOT + EVAL_OFFSET_MS)
    } else {
        let (step, points) = match rng.range_i64(0, 3) {
            0 => (SLOT, rng.range_i64(20, 120)),
            1 => (2 * SLOT, rng.range_i64(20, 90)),
            2 => (MIN, rng.range_i64(20, 100)),
            _ => (5 * MIN, rng.range_i64(6, 24)),
        };
        let span_slots = (points * step) / SLOT;
        let k = rng.range_i64(first, (last - span_slots).max(first));
        let s = start + k * SLOT + EVAL_OFFSET_MS;
        Eval::Range(s, s + points * step, step)
    }
}

fn live_eval(rng: &mut XorShift64, w: &Windows, instant: bool) -> Option<Eval> {
    let n = w.live_times.len() as i64;
    if n < 4 {
        return None;
    }
    if instant {
        let i = rng.range_i64(0, n - 1) as usize;
        Some(Eval::Instant(w.live_times[i]))
    } else {
        let i = rng.range_i64(0, n / 2) as usize;
        let j = rng.range_i64(i as i64 + 2, n - 1) as usize;
        Some(Eval::Range(
            w.live_times[i],
            w.live_times[j],
            w.live_step_ms,
        ))
    }
}

/// The full query set for `seed`: every family's templates in turn, half the
/// queries instant, half range (sort: instant only, where order matters).
pub fn generate(seed: u64, w: &Windows) -> Vec<Query> {
    let mut rng = XorShift64::new(seed);
    let mut out = Vec::new();
    for (family, gens, data, count) in families() {
        for i in 0..count {
            let g = gens[i % gens.len()];
            let mut expr = g(&mut rng);
            if expr.prom.contains("AT_LITERAL") {
                // An `@` time inside the data, 7.321 s after a slot like every evaluation time.
                let (start, end) = w.blocks;
                let k = rng.range_i64(30 * MIN / SLOT, (end - start) / SLOT - 1);
                let at = crate::timefmt::secs_string(start + k * SLOT + EVAL_OFFSET_MS);
                expr.prom = expr.prom.replace("AT_LITERAL", &at);
                expr.skein = expr.skein.replace("AT_LITERAL", &at);
            }
            let instant = i % 2 == 0 || (expr.ordered && i % 4 != 3);
            let eval = match data {
                Data::Blocks => Some(block_eval(&mut rng, w.blocks, instant)),
                Data::Live => live_eval(&mut rng, w, instant),
            };
            let Some(eval) = eval else { continue };
            out.push(Query {
                id: out.len(),
                family,
                expr,
                eval,
                data,
            });
        }
    }
    out
}

/// A seeded subset: about `fraction` of each family (at least 2 per family).
pub fn subset(all: &[Query], seed: u64, fraction: f64) -> Vec<Query> {
    let mut rng = XorShift64::new(seed ^ 0x5u64);
    let mut families: Vec<&str> = Vec::new();
    for q in all {
        if !families.contains(&q.family) {
            families.push(q.family);
        }
    }
    let mut out = Vec::new();
    for f in families {
        let mut qs: Vec<&Query> = all.iter().filter(|q| q.family == f).collect();
        let want = ((qs.len() as f64 * fraction).ceil() as usize).max(2);
        for _ in 0..want {
            if qs.is_empty() {
                break;
            }
            let i = rng.range_i64(0, qs.len() as i64 - 1) as usize;
            out.push(qs.swap_remove(i).clone());
        }
    }
    out.sort_by_key(|q| q.id);
    out
}
