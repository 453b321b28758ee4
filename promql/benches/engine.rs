//! Engine benchmarks: a fixed query set over an in-memory source of 10,000
//! series x 24h at a 15s scrape interval (57.6M samples, ~1 GB).
//!
//! The series are a classic histogram: 10 jobs x 100 instances x 10 `le`
//! buckets of `request_duration_seconds_bucket`, each a counter.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use skein_promql::{Engine, EngineOptions, Labels, MemSource, QueryOptions, Sample, Series};

const SCRAPE_MS: i64 = 15_000;
const HOURS: i64 = 24;
const END_MS: i64 = HOURS * 3_600_000;

fn build_source() -> MemSource {
    let les = [
        "0.005", "0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
    ];
    let n = (END_MS / SCRAPE_MS) as usize;
    let mut series = Vec::with_capacity(10_000);
    for job in 0..10 {
        for inst in 0..100 {
            let seed = (job * 100 + inst) as u64;
            for (bi, le) in les.iter().enumerate() {
                let job_s = format!("job-{job}");
                let inst_s = format!("10.0.{job}.{inst}:9090");
                let labels = Labels::from_pairs([
                    ("__name__", "request_duration_seconds_bucket"),
                    ("instance", inst_s.as_str()),
                    ("job", job_s.as_str()),
                    ("le", le),
                ]);
                let mut v = 0.0;
                let mut samples = Vec::with_capacity(n);
                let mut x = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(bi as u64);
                for i in 0..n {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    v += ((x >> 33) % 10) as f64 * (bi + 1) as f64;
                    // An occasional counter reset.
                    if i % 20_000 == 19_999 {
                        v = 0.0;
                    }
                    samples.push(Sample {
                        t: i as i64 * SCRAPE_MS,
                        v,
                    });
                }
                series.push(Series::new(labels, samples));
            }
        }
    }
    MemSource::new(series)
}

fn bench_engine(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let source = build_source();
    let engine = Engine::new(EngineOptions {
        max_samples: 200_000_000,
        timeout: Duration::from_secs(600),
        ..Default::default()
    });
    let opts = QueryOptions::default();
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));

    let instant: [(&str, &str); 3] = [
        (
            "instant_sum_rate",
            "sum(rate(request_duration_seconds_bucket[5m]))",
        ),
        (
            "instant_topk_max_over_time",
            "topk(5, max_over_time(request_duration_seconds_bucket{le=\"+Inf\"}[1h]))",
        ),
        (
            "instant_selector_regex",
            "count(request_duration_seconds_bucket{job=~\"job-[1-3]\", le!=\"+Inf\"})",
        ),
    ];
    for (name, q) in instant {
        g.bench_function(name, |b| {
            b.iter(|| {
                let out = rt
                    .block_on(engine.query_instant(&source, q, END_MS, &opts))
                    .unwrap();
                black_box(out);
            })
        });
    }

    let range: [(&str, &str, i64, i64); 3] = [
        (
            "range_24h_step5m_sum_by_job_rate",
            "sum by (job) (rate(request_duration_seconds_bucket[5m]))",
            0,
            300_000,
        ),
        (
            "range_6h_step1m_histogram_quantile",
            "histogram_quantile(0.99, sum by (job, le) (rate(request_duration_seconds_bucket[5m])))",
            END_MS - 6 * 3_600_000,
            60_000,
        ),
        (
            "range_1h_step15s_avg_without_instance",
            "avg without (instance) (request_duration_seconds_bucket)",
            END_MS - 3_600_000,
            15_000,
        ),
    ];
    for (name, q, start, step) in range {
        g.bench_function(name, |b| {
            b.iter(|| {
                let out = rt
                    .block_on(engine.query_range(&source, q, start, END_MS, step, &opts))
                    .unwrap();
                black_box(out);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_engine);
criterion_main!(benches);
