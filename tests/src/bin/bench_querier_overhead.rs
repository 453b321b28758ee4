//! Querier overhead benchmark (not a test): the two-cluster setup with larger
//! data, a fixed set of range queries run N times directly on the Prometheus
//! servers and through Skein (querier -> sidecar -> Prometheus), and the median
//! latencies and the Skein/Prometheus ratio per query and overall.
//!
//! "Directly on Prometheus" is the wall time of sending the query to both
//! Prometheus servers at once (one thread each) and getting both answers: the
//! least a fan-out over the two clusters could cost. Each query's Skein answer
//! is first checked against the Prometheus answers (same rules as the e2e
//! tests), so the benchmark measures correct work.
//!
//! Run with release builds: `make bench` (SKEIN_BIN=target/release/skein).
//! Environment: BENCH_ITERATIONS (default 10), BENCH_SERIES (series per
//! cluster, default 2000), BENCH_HOURS (data window, default 6).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use skein_e2e::cases::{Case, Eval, check};
use skein_e2e::compare::Combine;
use skein_e2e::datagen::{DataSpec, SLOT_MS};
use skein_e2e::fixture::{Cluster, TwoClusters};
use skein_e2e::http::ApiClient;

const MIN: i64 = 60_000;

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

/// The fixed query set: (querier case, step); step 0 = an instant query at
/// the window end (used to pull raw samples through a range selector, which
/// separates data transfer from evaluation).
fn queries(n: usize, hours: usize) -> Vec<(Case, i64)> {
    vec![
        (
            Case::union(&format!("gen_http_requests_total[{hours}h]"), n),
            0,
        ),
        (Case::union("rate(gen_http_requests_total[5m])", n), MIN),
        (
            Case::combine(Combine::Sum, "sum(rate(gen_http_requests_total[5m]))"),
            MIN,
        ),
        (
            Case::combine(Combine::Sum, "sum by (group) (gen_wide_gauge)"),
            MIN,
        ),
        (Case::combine(Combine::Max, "max(gen_wide_gauge)"), 15_000),
        (
            Case::union(r#"avg_over_time(gen_wide_gauge{group="3"}[10m])"#, n),
            5 * MIN,
        ),
        (
            Case::combine(Combine::Sum, "count(gen_wide_gauge > 50)"),
            5 * MIN,
        ),
        (Case::union("gen_temperature_celsius", n), MIN),
        (
            Case::union_as(
                "histogram_quantile(0.99, sum by (cluster, le) (rate(gen_request_duration_seconds_bucket[5m])))",
                "histogram_quantile(0.99, sum by (le) (rate(gen_request_duration_seconds_bucket[5m])))",
                n,
            ),
            MIN,
        ),
    ]
}

/// The expression each Prometheus runs for `case` (its own per-cluster query).
fn prometheus_query(case: &Case) -> String {
    use skein_e2e::cases::Expect;
    match &case.expect {
        Expect::Union(per) => per.iter().flatten().next().cloned().unwrap_or_default(),
        Expect::Combine(_, q) => q.clone(),
        Expect::Avg { sum, .. } => sum.clone(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn time_skein(q: &ApiClient, expr: &str, eval: (i64, i64, i64)) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let resp = if eval.2 == 0 {
        q.query_raw(expr, eval.1)?
    } else {
        q.query_range_raw(expr, eval.0, eval.1, eval.2)?
    };
    let took = started.elapsed();
    resp.ensure_success()?;
    Ok(took)
}

fn time_prometheus(
    clusters: &[Cluster],
    expr: &str,
    eval: (i64, i64, i64),
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
        let hs: Vec<_> = clusters
            .iter()
            .map(|c| {
                s.spawn(move || {
                    let client = &c.prometheus.client;
                    let resp = if eval.2 == 0 {
                        client.query_raw(expr, eval.1)?
                    } else {
                        client.query_range_raw(expr, eval.0, eval.1, eval.2)?
                    };
                    resp.ensure_success()
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("thread panicked")))
            })
            .collect()
    });
    let took = started.elapsed();
    for r in results {
        r?;
    }
    Ok(took)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(path) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn main() -> anyhow::Result<()> {
    let iterations = env_usize("BENCH_ITERATIONS", 10)?.max(1);
    let series_target = env_usize("BENCH_SERIES", 2000)?;
    let hours = env_usize("BENCH_HOURS", 6)?.max(1);
    let skein = skein_e2e::skein::skein_bin()?;
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("skein binary: {}", skein.display());
    if !skein.to_string_lossy().contains("release") {
        println!("WARNING: not a release build of skein; figures are not representative");
    }
    println!(
        "nproc: {nproc}; CPU: {}; load average: {}",
        cpu_model(),
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into())
    );

    // The small spec has 120 series per cluster; the wide gauge family makes up the rest.
    let base = 120usize;
    let wide = series_target.saturating_sub(base).max(10);
    let spec_for = move |seed: u64, end_ms: i64| {
        let mut spec = DataSpec::small(seed, end_ms);
        spec.slots = hours * 3600 * 1000 / SLOT_MS as usize;
        spec.start_ms = spec.start_ms + 3 * 3600 * 1000 - spec.slots as i64 * SLOT_MS;
        spec.wide_series = wide;
        spec
    };
    let gen_started = Instant::now();
    println!("generating data and starting 2 x (Prometheus + sidecar) + querier ...");
    let setup = TwoClusters::start(spec_for, &[])?;
    println!("setup took {:.1?}", gen_started.elapsed());
    let clusters = &setup.clusters.clusters;
    for c in clusters {
        println!(
            "cluster {}: {} series, {} samples, {:.1} MiB of blocks",
            c.name,
            c.dataset.series_count(),
            c.dataset.sample_count(),
            dir_size(&c.prometheus.data_dir) as f64 / (1024.0 * 1024.0)
        );
    }
    let (start, end) = setup.window();
    println!(
        "window: {} h, range queries over [start + 10m, end]; {iterations} iterations after 1 warm-up",
        hours
    );
    let q = ApiClient::with_timeout(&setup.querier.http_url, Duration::from_secs(300))?;
    let rs = start + 10 * MIN;

    println!();
    println!(
        "{:<96} {:>5} {:>12} {:>12} {:>7}",
        "query", "step", "prometheus", "skein", "ratio"
    );
    let mut all_prom = Vec::new();
    let mut all_skein = Vec::new();
    let mut log_ratio_sum = 0.0;
    let cases = queries(clusters.len(), hours);
    for (case, step) in &cases {
        let eval = (rs, end, *step);
        let how = if *step == 0 {
            Eval::Instant(end)
        } else {
            Eval::Range(rs, end, *step)
        };
        if let Err(e) = check(&q, clusters, case, how) {
            bail!("skein's answer differs from Prometheus, benchmark aborted:\n{e}");
        }
        let prom_expr = prometheus_query(case);
        time_prometheus(clusters, &prom_expr, eval)?;
        time_skein(&q, &case.query, eval)?;
        let mut p = Vec::new();
        let mut s = Vec::new();
        for _ in 0..iterations {
            p.push(time_prometheus(clusters, &prom_expr, eval)?);
            s.push(time_skein(&q, &case.query, eval)?);
        }
        let (pm, sm) = (median(p.clone()), median(s.clone()));
        let ratio = sm.as_secs_f64() / pm.as_secs_f64().max(1e-9);
        log_ratio_sum += ratio.ln();
        all_prom.extend(p);
        all_skein.extend(s);
        let step_text = if *step == 0 {
            "inst".to_string()
        } else {
            format!("{}s", step / 1000)
        };
        println!(
            "{:<96} {:>5} {:>10.1}ms {:>10.1}ms {:>6.2}x",
            case.query,
            step_text,
            pm.as_secs_f64() * 1e3,
            sm.as_secs_f64() * 1e3,
            ratio
        );
    }
    let (pm, sm) = (median(all_prom), median(all_skein));
    println!(
        "{:<96} {:>5} {:>10.1}ms {:>10.1}ms {:>6.2}x",
        "OVERALL (median of all runs)",
        "",
        pm.as_secs_f64() * 1e3,
        sm.as_secs_f64() * 1e3,
        sm.as_secs_f64() / pm.as_secs_f64().max(1e-9)
    );
    println!(
        "geometric mean of per-query ratios: {:.2}x",
        (log_ratio_sum / cases.len() as f64).exp()
    );
    Ok(())
}
