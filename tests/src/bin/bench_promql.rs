//! PromQL benchmark (not a test): a fixed range-query set over 10,000 series
//! (BENCH_SERIES) x 24 h (BENCH_HOURS) at 15 s, timed three ways:
//!
//! 1. skein-promql's `Engine` alone, in this process, over a `MemSource`
//!    holding the same samples (no network, no encoding);
//! 2. Prometheus 2.42 directly (`/api/v1/query_range?stats=all`: wall time,
//!    and Prometheus' own `execTotalTime`/`evalTotalTime` from `stats`);
//! 3. Skein: querier -> sidecar -> that Prometheus (wall time).
//!
//! Median of BENCH_ITERATIONS runs after one warm-up; Skein/Prometheus ratios
//! per query and overall (median of all runs, geometric mean of ratios); peak
//! memory (VmHWM) of Prometheus, the sidecar, the querier, and of this process
//! after the in-process engine runs (data + engine). Every answer is first
//! checked against Prometheus' (same rules as the e2e tests).
//!
//! Run: `scripts/bench-promql.sh` (release builds; SKEIN_BIN=target/release/skein).
//! BENCH_QUERY_HOURS: the range each query covers (default: all but the first
//! 30 min of the data); BENCH_STEP_SECONDS (default 60).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::Value as Json;
use skein_e2e::benchdata::{SLOT_MS, units};
use skein_e2e::compare::{add_labels, compare};
use skein_e2e::http::ApiClient;
use skein_e2e::labels::{LabelSet, label_set};
use skein_e2e::prometheus::PrometheusServer;
use skein_e2e::promjson::QueryData;
use skein_e2e::promtool::PROMTOOL;
use skein_e2e::skein::SkeinNode;
use skein_e2e::timefmt::now_ms;
use skein_e2e::wait::poll_until;
use skein_promql::{Engine, EngineOptions, Labels, MemSource, QueryOptions, Sample, Series, Value};

const HOUR: i64 = 3_600_000;
const BLOCK: i64 = 2 * HOUR;

/// (query, keeps the external labels through Skein)
const QUERIES: [(&str, bool); 6] = [
    ("sum(rate(bench_requests_total[5m]))", false),
    ("topk(5, rate(bench_requests_total[5m]))", true),
    (
        "histogram_quantile(0.99, sum by (le) (rate(bench_latency_seconds_bucket[5m])))",
        false,
    ),
    ("avg without (instance) (bench_gauge)", true),
    ("count by (job) (bench_gauge > 50)", false),
    (
        "max_over_time(sum by (job) (rate(bench_requests_total[5m]))[30m:1m])",
        false,
    ),
];

fn env_i64(name: &str, default: i64) -> anyhow::Result<i64> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

fn proc_field(pid: &str, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
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

fn mem_total() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.replace("MemTotal:", "").trim().to_string())
        })
        .unwrap_or_default()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn to_query_data(v: &Value) -> anyhow::Result<QueryData> {
    let ls = |l: &Labels| -> LabelSet {
        l.iter()
            .map(|x| (x.name.clone(), x.value.clone()))
            .collect()
    };
    Ok(match v {
        Value::Matrix(m) => QueryData::Matrix(
            m.iter()
                .map(|s| {
                    (
                        ls(&s.labels),
                        s.samples.iter().map(|x| (x.t, x.v)).collect(),
                    )
                })
                .collect(),
        ),
        Value::Vector(m) => {
            QueryData::Vector(m.iter().map(|s| (ls(&s.labels), (s.t, s.v))).collect())
        }
        Value::Scalar { t, v } => QueryData::Scalar((*t, *v)),
        Value::String { t, v } => QueryData::String(*t, v.clone()),
    })
}

/// Phase 1: the engine alone over an in-memory copy of the data.
struct EngineFigures {
    load: Duration,
    samples: usize,
    medians: Vec<Duration>,
    results: Vec<QueryData>,
    vm_hwm: String,
}

fn engine_phase(
    seed: u64,
    series: usize,
    start: i64,
    slots: usize,
    eval: (i64, i64, i64),
    iterations: usize,
) -> anyhow::Result<EngineFigures> {
    let started = Instant::now();
    let mut all = Vec::new();
    let mut samples = 0;
    for mut u in units(seed, series) {
        let per = u.generate(start, slots);
        for (labels, pts) in u.labels.iter().zip(per) {
            let mut pairs: Vec<(&str, &str)> = vec![("__name__", u.name)];
            pairs.extend(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            samples += pts.len();
            all.push(Series::new(
                Labels::from_pairs(pairs),
                pts.into_iter().map(|(t, v)| Sample { t, v }).collect(),
            ));
        }
    }
    let source = MemSource::new(all);
    let load = started.elapsed();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let engine = Engine::new(EngineOptions::default());
    let opts = QueryOptions::default();
    let mut medians = Vec::new();
    let mut results = Vec::new();
    for (q, _) in QUERIES {
        let run = || -> anyhow::Result<(Duration, Value)> {
            let t0 = Instant::now();
            let out = rt
                .block_on(engine.query_range(&source, q, eval.0, eval.1, eval.2, &opts))
                .map_err(|e| anyhow!("engine: {q}: {e}"))?;
            Ok((t0.elapsed(), out.value))
        };
        let (_, value) = run()?;
        results.push(to_query_data(&value)?);
        let mut times = Vec::new();
        for _ in 0..iterations {
            times.push(run()?.0);
        }
        medians.push(median(times));
    }
    drop(source);
    Ok(EngineFigures {
        load,
        samples,
        medians,
        results,
        vm_hwm: proc_field("self", "VmHWM:"),
    })
}

fn reap(running: &mut Vec<(Child, PathBuf)>, keep: usize) -> anyhow::Result<()> {
    while running.len() > keep {
        let (mut child, om) = running.remove(0);
        let status = child.wait()?;
        if !status.success() {
            bail!("promtool failed on {} ({status})", om.display());
        }
        std::fs::remove_file(&om)?;
    }
    Ok(())
}

/// Phase 2: OpenMetrics text per 2 h block, promtool on each (two at a time).
fn write_blocks(
    seed: u64,
    series: usize,
    start: i64,
    hours: i64,
    dir: &Path,
    data_dir: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let mut us = units(seed, series);
    let mut running: Vec<(Child, PathBuf)> = Vec::new();
    let slots_per_block = (BLOCK / SLOT_MS) as usize;
    for b in 0..(hours * HOUR / BLOCK) {
        let om = dir.join(format!("block-{b}.om"));
        {
            let mut w = BufWriter::new(File::create(&om)?);
            skein_e2e::benchdata::write_window(
                &mut us,
                start + b * BLOCK,
                slots_per_block,
                &mut w,
            )?;
            w.flush()?;
        }
        reap(&mut running, 1)?;
        let log = File::create(dir.join(format!("promtool-{b}.log")))?;
        let child = std::process::Command::new(PROMTOOL)
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            .arg(&om)
            .arg(data_dir)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        running.push((child, om));
    }
    reap(&mut running, 0)
}

/// Wall time and Prometheus' own timings (execTotalTime, evalTotalTime).
fn time_prometheus(
    c: &ApiClient,
    q: &str,
    eval: (i64, i64, i64),
) -> anyhow::Result<(Duration, Option<f64>, Option<f64>)> {
    use skein_e2e::timefmt::secs_string;
    let t0 = Instant::now();
    let resp = c.get(
        "/api/v1/query_range",
        &[
            ("query", q.to_string()),
            ("start", secs_string(eval.0)),
            ("end", secs_string(eval.1)),
            ("step", secs_string(eval.2)),
            ("stats", "all".to_string()),
        ],
    )?;
    let wall = t0.elapsed();
    resp.ensure_success()?;
    let timing = |k: &str| {
        resp.body
            .pointer(&format!("/data/stats/timings/{k}"))
            .and_then(Json::as_f64)
    };
    Ok((wall, timing("execTotalTime"), timing("evalTotalTime")))
}

fn time_skein(c: &ApiClient, q: &str, eval: (i64, i64, i64)) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let resp = c.query_range_raw(q, eval.0, eval.1, eval.2)?;
    let wall = t0.elapsed();
    resp.ensure_success()?;
    Ok(wall)
}

fn main() -> anyhow::Result<()> {
    let iterations = env_i64("BENCH_ITERATIONS", 5)?.max(1) as usize;
    let series = env_i64("BENCH_SERIES", 10_000)?.max(100) as usize;
    let hours = env_i64("BENCH_HOURS", 24)?.max(2) / 2 * 2;
    let step = env_i64("BENCH_STEP_SECONDS", 60)?.max(1) * 1000;
    let seed = 4242;
    let skein = skein_e2e::skein::skein_bin()?;
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "machine: nproc {nproc}; CPU {}; RAM {}; load average {}",
        cpu_model(),
        mem_total(),
        loadavg()
    );
    println!("skein binary: {}", skein.display());
    if !skein.to_string_lossy().contains("release") || cfg!(debug_assertions) {
        println!("WARNING: not all release builds; figures are not representative");
    }
    // Blocks are 2 h aligned (promtool cuts at multiples of 2 h since the epoch).
    let end = (now_ms() - 10 * 60_000) / BLOCK * BLOCK;
    let start = end - hours * HOUR;
    let slots = (hours * HOUR / SLOT_MS) as usize;
    let qhours = env_i64("BENCH_QUERY_HOURS", 0)?;
    let qstart = if qhours > 0 {
        (end - qhours * HOUR).max(start + 30 * 60_000)
    } else {
        start + 30 * 60_000
    };
    let eval = (qstart + 7_321, end - 60_000 + 7_321, step);
    println!(
        "data: {series} series x {hours} h at 15 s ({slots} samples per series); queries: range over {:.1} h, step {} s, {iterations} runs after 1 warm-up",
        (eval.1 - eval.0) as f64 / HOUR as f64,
        step / 1000
    );

    // 1. Engine alone.
    let ef = engine_phase(seed, series, start, slots, eval, iterations)?;
    println!(
        "in-process engine: {} samples loaded in {:.1?}; VmHWM of this process (data + engine) {}",
        ef.samples, ef.load, ef.vm_hwm
    );

    // 2. Blocks, Prometheus, sidecar, querier.
    let dir = tempfile::Builder::new()
        .prefix("skein-bench-promql-")
        .tempdir()?;
    let t0 = Instant::now();
    let pdir = dir.path().join("prometheus");
    write_blocks(seed, series, start, hours, &pdir, &pdir.join("data"))?;
    println!("OpenMetrics + promtool blocks: {:.1?}", t0.elapsed());
    let ext = label_set(&[("cluster", "bench")]);
    let prom = PrometheusServer::start_with_args(
        dir.path(),
        "prometheus",
        &ext,
        None,
        &[
            "--storage.tsdb.min-block-duration=2h".into(),
            "--storage.tsdb.max-block-duration=2h".into(),
        ],
    )?;
    let sidecar = SkeinNode::start_sidecar(dir.path(), "sidecar", &prom.url, &[])?;
    let querier = SkeinNode::start_querier(
        dir.path(),
        "querier",
        &[sidecar.store_address()],
        &["--query.info-interval".into(), "1s".into()],
    )?;
    let pc = ApiClient::with_timeout(&prom.url, Duration::from_secs(600))?;
    let qc = ApiClient::with_timeout(&querier.http_url, Duration::from_secs(600))?;
    poll_until(
        "querier to see the data",
        Duration::from_secs(60),
        Duration::from_millis(500),
        || match qc.query("count(bench_gauge)", end - 60_000)? {
            QueryData::Vector(m) if !m.is_empty() => Ok(Some(())),
            other => Err(anyhow!("querier answers {other:?}")),
        },
    )?;
    println!("setup (blocks + start) took {:.1?}", t0.elapsed());

    // 3. Checks, then timings.
    println!();
    println!(
        "{:<78} {:>10} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7}",
        "query (range)", "prom wall", "skein", "ratio", "", "prom exec", "engine", "ratio"
    );
    let mut all_p = Vec::new();
    let mut all_s = Vec::new();
    let mut log_ratio = 0.0;
    let mut log_engine_ratio = 0.0;
    let mut engine_rows = 0;
    let mut checks: BTreeMap<&str, String> = BTreeMap::new();
    for (i, (q, keeps_ext)) in QUERIES.iter().enumerate() {
        let expected = pc.query_range(q, eval.0, eval.1, eval.2)?;
        let got = qc.query_range(q, eval.0, eval.1, eval.2)?;
        let want = if *keeps_ext {
            add_labels(expected.clone(), &ext)
        } else {
            expected.clone()
        };
        let mut note = Vec::new();
        if let Err(e) = compare(&want, &got) {
            note.push(format!("SKEIN DIFFERS: {e}"));
        }
        if let Some(er) = ef.results.get(i)
            && let Err(e) = compare(&expected, er)
        {
            note.push(format!("ENGINE DIFFERS: {e}"));
        }
        if !note.is_empty() {
            checks.insert(q, note.join("\n"));
        }
        time_prometheus(&pc, q, eval)?;
        time_skein(&qc, q, eval)?;
        let (mut p, mut s, mut pe) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..iterations {
            let (wall, exec, evalt) = time_prometheus(&pc, q, eval)?;
            p.push(wall);
            if let Some(x) = exec.or(evalt) {
                pe.push(Duration::from_secs_f64(x));
            }
            s.push(time_skein(&qc, q, eval)?);
        }
        let (pm, sm) = (median(p.clone()), median(s.clone()));
        let ratio = sm.as_secs_f64() / pm.as_secs_f64().max(1e-9);
        log_ratio += ratio.ln();
        all_p.extend(p);
        all_s.extend(s);
        let pem = (!pe.is_empty()).then(|| median(pe));
        let em = ef.medians.get(i).copied().unwrap_or_default();
        let eref = pem.unwrap_or(pm);
        let eratio = em.as_secs_f64() / eref.as_secs_f64().max(1e-9);
        log_engine_ratio += eratio.ln();
        engine_rows += 1;
        println!(
            "{:<78} {:>8.1}ms {:>8.1}ms {:>9.2}x {:>7} {:>8.1}ms {:>8.1}ms {:>6.2}x",
            q,
            ms(pm),
            ms(sm),
            ratio,
            "",
            pem.map(ms).unwrap_or(f64::NAN),
            ms(em),
            eratio
        );
    }
    let (pm, sm) = (median(all_p), median(all_s));
    println!(
        "{:<78} {:>8.1}ms {:>8.1}ms {:>9.2}x",
        "OVERALL (median of all runs)",
        ms(pm),
        ms(sm),
        sm.as_secs_f64() / pm.as_secs_f64().max(1e-9)
    );
    println!(
        "geometric mean of ratios: Skein/Prometheus (wall) {:.2}x; engine alone / Prometheus exec time {:.2}x",
        (log_ratio / QUERIES.len() as f64).exp(),
        (log_engine_ratio / engine_rows.max(1) as f64).exp()
    );
    let pid = |g: Option<u32>| g.map(|p| p.to_string()).unwrap_or_default();
    println!(
        "peak memory (VmHWM): Prometheus {}; skein sidecar {}; skein querier {}; in-process engine run (bench process, data + engine) {}",
        proc_field(&pid(prom.guard().pid()), "VmHWM:"),
        proc_field(&pid(sidecar.guard().pid()), "VmHWM:"),
        proc_field(&pid(querier.guard().pid()), "VmHWM:"),
        ef.vm_hwm
    );
    println!("load average at the end: {}", loadavg());
    if checks.is_empty() {
        println!("answers: Skein (querier) and the engine alone equal Prometheus on every query");
    } else {
        for (q, n) in &checks {
            println!("CHECK FAILED for {q}:\n{n}");
        }
        bail!("{} queries answered differently", checks.len());
    }
    Ok(())
}
