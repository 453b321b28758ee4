//! Store benchmark (not a test): the same TSDB blocks served by Prometheus
//! directly and by a Skein store node (local FILESYSTEM bucket, blocks shipped
//! by a Skein sidecar) behind a Skein querier.
//!
//! Measures, with every Skein answer first checked against Prometheus's:
//! - Series throughput: samples per second for one selector over every series
//!   and the whole window (`count_over_time(...[window])`: every sample crosses
//!   the StoreAPI, is decoded and counted; tiny JSON answer), and raw samples
//!   per second for a range selector returned as JSON;
//! - latency of a fixed set of range and instant queries (median over N runs
//!   after one cold run), as Skein/Prometheus ratios;
//! - memory: VmRSS of the store after loading, against the number of series and
//!   blocks (also minus an idle store on an empty bucket), and Prometheus's RSS.
//!
//! Run: `SKEIN_BIN=target/release/skein cargo run --release -p skein-e2e --bin bench_store`.
//! Environment: BENCH_SERIES (default 4000), BENCH_HOURS (default 12),
//! BENCH_ITERATIONS (default 7).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use skein_e2e::bucket::TestBucket;
use skein_e2e::cases::{Case, Eval, check};
use skein_e2e::compare::{add_labels, compare};
use skein_e2e::datagen::{DataSpec, Dataset, SLOT_MS};
use skein_e2e::fixture::{Cluster, WINDOW_END_BEFORE_NOW_MS};
use skein_e2e::http::ApiClient;
use skein_e2e::labels::label_set;
use skein_e2e::procinfo::{cpu_model, dir_size, mem_total_bytes, nproc, rss_bytes};
use skein_e2e::prometheus::PrometheusServer;
use skein_e2e::skein::{SkeinNode, skein_bin};
use skein_e2e::storage::{
    blocks_to_ship, no_compaction_args, shipper_args, start_store, wait_clusters_visible,
    wait_recorded, wait_store_blocks,
};
use skein_e2e::timefmt::now_ms;

const MIN: i64 = 60_000;
const MIB: f64 = 1024.0 * 1024.0;

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One timed query: instant at `t` or range.
fn timed(client: &ApiClient, expr: &str, eval: Eval) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let resp = match eval {
        Eval::Instant(t) => client.query_raw(expr, t)?,
        Eval::Range(s, e, step) => client.query_range_raw(expr, s, e, step)?,
    };
    let took = started.elapsed();
    resp.ensure_success()
        .with_context(|| format!("{expr} on {}", client.base()))?;
    Ok(took)
}

/// Medians of Prometheus and Skein over `n` alternating runs, plus Skein's first (cold) run.
struct Timing {
    prom: Duration,
    skein: Duration,
    skein_cold: Duration,
}

fn time_both(
    prom: &ApiClient,
    skein: &ApiClient,
    prom_expr: &str,
    skein_expr: &str,
    eval: Eval,
    n: usize,
) -> anyhow::Result<Timing> {
    let skein_cold = timed(skein, skein_expr, eval)?;
    timed(prom, prom_expr, eval)?;
    let (mut p, mut s) = (Vec::new(), Vec::new());
    for _ in 0..n {
        p.push(timed(prom, prom_expr, eval)?);
        s.push(timed(skein, skein_expr, eval)?);
    }
    Ok(Timing {
        prom: median(p),
        skein: median(s),
        skein_cold,
    })
}

/// The fixed query set: (case, evaluation).
fn queries(start: i64, end: i64) -> Vec<(Case, Eval)> {
    let rs = start + 10 * MIN;
    vec![
        (
            Case::union_as(
                "sum by (cluster) (rate(gen_http_requests_total[5m]))",
                "sum(rate(gen_http_requests_total[5m]))",
                1,
            ),
            Eval::Range(rs, end, MIN),
        ),
        (
            Case::union_as(
                "sum by (cluster, group) (gen_wide_gauge)",
                "sum by (group) (gen_wide_gauge)",
                1,
            ),
            Eval::Range(rs, end, MIN),
        ),
        (
            Case::union_as(
                "max by (cluster) (gen_wide_gauge)",
                "max(gen_wide_gauge)",
                1,
            ),
            Eval::Range(end - 2 * 3_600_000, end, 15_000),
        ),
        (
            Case::union(r#"avg_over_time(gen_wide_gauge{group="3"}[10m])"#, 1),
            Eval::Range(rs, end, 5 * MIN),
        ),
        (
            Case::union_as(
                "count by (cluster) (gen_wide_gauge > 50)",
                "count(gen_wide_gauge > 50)",
                1,
            ),
            Eval::Range(rs, end, 5 * MIN),
        ),
        (
            Case::union("gen_temperature_celsius", 1),
            Eval::Range(rs, end, MIN),
        ),
        (
            Case::union_as(
                "histogram_quantile(0.99, sum by (cluster, le) (rate(gen_request_duration_seconds_bucket[5m])))",
                "histogram_quantile(0.99, sum by (le) (rate(gen_request_duration_seconds_bucket[5m])))",
                1,
            ),
            Eval::Range(rs, end, MIN),
        ),
        (
            Case::union(r#"gen_wide_gauge{shard="42"}"#, 1),
            Eval::Instant(end),
        ),
        (
            Case::union_as(
                "sum by (cluster) (count_over_time(gen_wide_gauge[1h]))",
                "sum(count_over_time(gen_wide_gauge[1h]))",
                1,
            ),
            Eval::Instant(end),
        ),
    ]
}

/// The expression Prometheus runs for `case`.
fn prometheus_expr(case: &Case) -> String {
    use skein_e2e::cases::Expect;
    match &case.expect {
        Expect::Union(per) => per.iter().flatten().next().cloned().unwrap_or_default(),
        Expect::Combine(_, q) => q.clone(),
        Expect::Avg { sum, .. } => sum.clone(),
    }
}

fn rss_mib(pid: Option<u32>) -> anyhow::Result<f64> {
    let pid = pid.context("process not running")?;
    Ok(rss_bytes(pid)? as f64 / MIB)
}

/// RSS of an idle store node over an empty bucket (the baseline).
fn idle_store_rss(dir: &Path) -> anyhow::Result<u64> {
    let empty = TestBucket::filesystem(dir, "empty-bucket")?;
    let store = start_store(dir, "store-idle", &empty, "5m", &[])?;
    std::thread::sleep(Duration::from_secs(1));
    rss_bytes(store.guard().pid().context("idle store not running")?)
}

fn main() -> anyhow::Result<()> {
    let iterations = env_usize("BENCH_ITERATIONS", 7)?.max(1);
    let series_target = env_usize("BENCH_SERIES", 4000)?;
    let hours = env_usize("BENCH_HOURS", 12)?.max(3);
    let skein = skein_bin()?;
    println!("skein binary: {}", skein.display());
    if !skein.to_string_lossy().contains("release") {
        println!("WARNING: not a release build of skein; figures are not representative");
    }
    println!(
        "machine: nproc {}; CPU {}; memory {:.1} GiB",
        nproc(),
        cpu_model(),
        mem_total_bytes().unwrap_or(0) as f64 / (MIB * 1024.0)
    );

    let tmp = tempfile::Builder::new()
        .prefix("skein-bench-store-")
        .tempdir()?;
    let dir = tmp.path();
    let end = now_ms() - WINDOW_END_BEFORE_NOW_MS;
    let end = end - end.rem_euclid(SLOT_MS);
    let slots = hours * 3600 * 1000 / SLOT_MS as usize;
    let mut spec = DataSpec {
        seed: 99,
        start_ms: end - slots as i64 * SLOT_MS,
        slots,
        jobs: vec!["api".into(), "db".into()],
        instances_per_job: 2,
        wide_series: 0,
    };
    let base = Dataset::generate(spec.clone())?.series_count();
    spec.wide_series = series_target.saturating_sub(base).max(10);
    let started = Instant::now();
    let dataset = Dataset::generate(spec)?;
    let (series, samples) = (dataset.series_count(), dataset.sample_count());
    println!(
        "data: {series} series x {hours} h at 15 s = {samples} samples; writing blocks with promtool ..."
    );
    let labels = label_set(&[("cluster", "bench")]);
    let prometheus = PrometheusServer::start_with_args(
        dir,
        "prometheus",
        &labels,
        Some(&dataset),
        &no_compaction_args(),
    )?;
    let data_dir = prometheus.data_dir.clone();
    let blocks = blocks_to_ship(&data_dir)?;
    println!(
        "promtool + Prometheus start: {:.1?}; {} blocks, {:.1} MiB",
        started.elapsed(),
        blocks.len(),
        dir_size(&data_dir) as f64 / MIB
    );

    let bucket = TestBucket::filesystem(dir, "bucket")?;
    let ship_started = Instant::now();
    {
        let mut sidecar = SkeinNode::start_sidecar(
            dir,
            "sidecar",
            &prometheus.url,
            &shipper_args(&data_dir, &bucket, "1s"),
        )?;
        wait_recorded(&data_dir, &blocks, &mut sidecar, Duration::from_secs(600))?;
    }
    println!(
        "shipped {} blocks in {:.1?} (sidecar stopped afterwards)",
        blocks.len(),
        ship_started.elapsed()
    );

    let idle_rss = idle_store_rss(dir)?;
    let load_started = Instant::now();
    let store = start_store(dir, "store", &bucket, "5m", &[])?;
    wait_store_blocks(&store, blocks.len(), Duration::from_secs(600))?;
    let load_time = load_started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let store_pid = store.guard().pid();
    let store_rss_loaded = rss_bytes(store_pid.context("store not running")?)?;
    let extra = ["--query.info-interval".to_string(), "1s".to_string()];
    let querier = SkeinNode::start_querier(dir, "querier", &[store.store_address()], &extra)?;
    let (start, end) = (dataset.spec.start_ms, dataset.spec.end_ms());
    let skein_api = ApiClient::with_timeout(&querier.http_url, Duration::from_secs(600))?;
    let prom_api = ApiClient::with_timeout(&prometheus.url, Duration::from_secs(600))?;
    wait_clusters_visible(
        &skein_api,
        "gen_queue_depth",
        &["bench"],
        end,
        Duration::from_secs(60),
    )?;
    let prom_rss_start = rss_mib(prometheus.guard().pid())?;
    println!(
        "store: start to {} blocks served in {load_time:.1?}",
        blocks.len()
    );

    let cluster = Cluster {
        name: "bench".into(),
        external_labels: labels.clone(),
        dataset,
        prometheus,
    };
    let clusters = std::slice::from_ref(&cluster);

    // Throughput: every sample of every series through one selector.
    println!("\n== Series throughput ({iterations} runs, medians) ==");
    let window_ms = end - start + MIN;
    // (One metric name: count_over_time drops names, so several names would collide.)
    let all = format!("count_over_time(gen_wide_gauge[{window_ms}ms])");
    let wide = cluster.dataset.series_named("gen_wide_gauge");
    let (wide_series, wide_samples) = (
        wide.len(),
        wide.iter().map(|s| s.samples.len()).sum::<usize>(),
    );
    let want = add_labels(prom_api.query(&all, end)?, &labels);
    let got = skein_api.query(&all, end)?;
    if let Err(d) = compare(&want, &got) {
        bail!("skein's count_over_time differs from Prometheus:\n{d}");
    }
    let t = time_both(
        &prom_api,
        &skein_api,
        &all,
        &all,
        Eval::Instant(end),
        iterations,
    )?;
    let per_sec = |d: Duration, n: usize| n as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "{:<58} {:>14} {:>14} {:>8}",
        "", "prometheus", "skein", "ratio"
    );
    println!(
        "{:<58} {:>11.2} M/s {:>11.2} M/s {:>7.2}x   (skein cold run {:.0} ms)",
        format!("count_over_time, {wide_series} series, {wide_samples} samples"),
        per_sec(t.prom, wide_samples) / 1e6,
        per_sec(t.skein, wide_samples) / 1e6,
        per_sec(t.skein, wide_samples) / per_sec(t.prom, wide_samples),
        ms(t.skein_cold)
    );
    let raw = format!("gen_wide_gauge{{group=\"3\"}}[{window_ms}ms]");
    let want = add_labels(prom_api.query(&raw, end)?, &labels);
    let raw_samples = want.point_count();
    let got = skein_api.query(&raw, end)?;
    if let Err(d) = compare(&want, &got) {
        bail!("skein's raw samples differ from Prometheus:\n{d}");
    }
    let t = time_both(
        &prom_api,
        &skein_api,
        &raw,
        &raw,
        Eval::Instant(end),
        iterations,
    )?;
    println!(
        "{:<58} {:>11.2} M/s {:>11.2} M/s {:>7.2}x   (skein cold run {:.0} ms)",
        format!("raw samples as JSON, {raw_samples} samples"),
        per_sec(t.prom, raw_samples) / 1e6,
        per_sec(t.skein, raw_samples) / 1e6,
        per_sec(t.skein, raw_samples) / per_sec(t.prom, raw_samples),
        ms(t.skein_cold)
    );

    // Latency.
    println!("\n== Query latency ({iterations} runs after one cold run, medians) ==");
    println!(
        "{:<100} {:>10} {:>11} {:>11} {:>11} {:>7}",
        "query", "eval", "prometheus", "skein", "skein cold", "ratio"
    );
    let mut log_ratio_sum = 0.0;
    let cases = queries(start, end);
    for (case, eval) in &cases {
        if let Err(e) = check(&skein_api, clusters, case, *eval) {
            bail!("skein's answer differs from Prometheus, benchmark aborted:\n{e}");
        }
        let t = time_both(
            &prom_api,
            &skein_api,
            &prometheus_expr(case),
            &case.query,
            *eval,
            iterations,
        )?;
        let ratio = t.skein.as_secs_f64() / t.prom.as_secs_f64().max(1e-9);
        log_ratio_sum += ratio.ln();
        let eval_s = match eval {
            Eval::Instant(_) => "instant".to_string(),
            Eval::Range(s, e, step) => format!("{}h/{}s", (e - s) / 3_600_000, step / 1000),
        };
        println!(
            "{:<100} {eval_s:>10} {:>9.1}ms {:>9.1}ms {:>9.1}ms {:>6.2}x",
            case.query,
            ms(t.prom),
            ms(t.skein),
            ms(t.skein_cold),
            ratio
        );
    }
    println!(
        "geometric mean of Skein/Prometheus latency ratios: {:.2}x",
        (log_ratio_sum / cases.len() as f64).exp()
    );

    // Memory.
    let store_rss_after = rss_bytes(store_pid.context("store not running")?)?;
    let querier_rss = rss_mib(querier.guard().pid())?;
    let prom_rss_after = rss_mib(cluster.prometheus.guard().pid())?;
    let n_blocks = blocks.len();
    let marginal = store_rss_loaded.saturating_sub(idle_rss) as f64;
    println!("\n== Memory (VmRSS) ==");
    println!(
        "bucket: {n_blocks} blocks, {series} series per block set, {:.1} MiB of block files",
        dir_size(bucket.fs_root.as_deref().unwrap_or(dir)) as f64 / MIB
    );
    println!(
        "store, idle on an empty bucket:   {:>8.1} MiB",
        idle_rss as f64 / MIB
    );
    println!(
        "store, after loading all blocks:  {:>8.1} MiB  = {:.0} B/series, {:.1} KiB/block; above idle: {:.0} B/series, {:.1} KiB/block",
        store_rss_loaded as f64 / MIB,
        store_rss_loaded as f64 / series as f64,
        store_rss_loaded as f64 / n_blocks as f64 / 1024.0,
        marginal / series as f64,
        marginal / n_blocks as f64 / 1024.0
    );
    println!(
        "store, after the queries:         {:>8.1} MiB  (index/chunk page caches filled)",
        store_rss_after as f64 / MIB
    );
    println!("querier, after the queries:       {querier_rss:>8.1} MiB");
    println!(
        "Prometheus, after start:          {prom_rss_start:>8.1} MiB;  after the queries: {prom_rss_after:.1} MiB"
    );
    Ok(())
}
