//! The generated metric families: counters with a reset, gauges, a classic
//! histogram, a series that appears and vanishes, an info metric with an odd
//! label value, and a wide gauge family for benchmarks.

use super::{DataSpec, Family, GenSeries, HISTOGRAM_BUCKETS, Kind, ODD_LABEL_VALUE, SLOT_MS};
use crate::labels::LabelSet;
use crate::xorshift::XorShift64;

/// One scrape target: its labels and its sample timestamps (one per slot).
pub(super) struct Target {
    pub(super) job: String,
    pub(super) instance: String,
    /// Sample timestamps, one per slot.
    pub(super) times: Vec<i64>,
}

fn labels(name: &str, pairs: &[(&str, &str)]) -> LabelSet {
    let mut ls: LabelSet = pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    ls.insert("__name__".into(), name.into());
    ls
}

pub(super) fn counters(spec: &DataSpec, targets: &[Target], rng: &mut XorShift64) -> Family {
    let mut series = Vec::new();
    for (ti, t) in targets.iter().enumerate() {
        for (code, hi) in [("200", 20.0), ("500", 2.0)] {
            let mut v = rng.rounded(1000.0, 5000.0, 2);
            // One series per cluster restarts half-way: rate() must handle the reset.
            let reset_at = (ti == 0 && code == "500").then_some(spec.slots / 2);
            let samples = t
                .times
                .iter()
                .enumerate()
                .map(|(k, ts)| {
                    if Some(k) == reset_at {
                        v = 0.0;
                    }
                    v += rng.rounded(0.0, hi, 2);
                    (*ts, v)
                })
                .collect();
            series.push(GenSeries {
                labels: labels(
                    "gen_http_requests_total",
                    &[("job", &t.job), ("instance", &t.instance), ("code", code)],
                ),
                samples,
            });
        }
    }
    Family {
        name: "gen_http_requests".into(),
        kind: Kind::Counter,
        help: "Generated HTTP requests.".into(),
        series,
    }
}

pub(super) fn temperature(targets: &[Target], rng: &mut XorShift64) -> Family {
    let series = targets
        .iter()
        .map(|t| {
            let mut v = rng.rounded(15.0, 25.0, 3);
            let samples = t
                .times
                .iter()
                .map(|ts| {
                    v = ((v + rng.rounded(-0.5, 0.5, 3)) * 1000.0).round() / 1000.0;
                    (*ts, v)
                })
                .collect();
            GenSeries {
                labels: labels(
                    "gen_temperature_celsius",
                    &[("job", &t.job), ("instance", &t.instance)],
                ),
                samples,
            }
        })
        .collect();
    Family {
        name: "gen_temperature_celsius".into(),
        kind: Kind::Gauge,
        help: "Generated temperature.".into(),
        series,
    }
}

pub(super) fn queue_depth(targets: &[Target], rng: &mut XorShift64) -> Family {
    let series = targets
        .iter()
        .map(|t| GenSeries {
            labels: labels(
                "gen_queue_depth",
                &[("job", &t.job), ("instance", &t.instance)],
            ),
            samples: t
                .times
                .iter()
                .map(|ts| (*ts, rng.range_i64(0, 50) as f64))
                .collect(),
        })
        .collect();
    Family {
        name: "gen_queue_depth".into(),
        kind: Kind::Gauge,
        help: "Generated queue depth.".into(),
        series,
    }
}

pub(super) fn histogram(targets: &[Target], rng: &mut XorShift64) -> Family {
    let name = "gen_request_duration_seconds";
    let mut series = Vec::new();
    for t in targets {
        let mut buckets = vec![Vec::with_capacity(t.times.len()); HISTOGRAM_BUCKETS.len()];
        let mut sums = Vec::with_capacity(t.times.len());
        let mut counts = Vec::with_capacity(t.times.len());
        // Cumulative counts start high (see the module docs), monotonic in le.
        let mut cum = vec![0.0f64; HISTOGRAM_BUCKETS.len()];
        let mut acc = 0.0;
        for c in cum.iter_mut() {
            acc += rng.range_i64(1000, 3000) as f64;
            *c = acc;
        }
        let mut sum = rng.rounded(1000.0, 3000.0, 3);
        for ts in &t.times {
            let n = rng.range_i64(0, 20);
            for _ in 0..n {
                // Observation in bucket b counts in b and every bucket above it.
                let b = rng.range_i64(0, HISTOGRAM_BUCKETS.len() as i64 - 1) as usize;
                for c in cum.iter_mut().skip(b) {
                    *c += 1.0;
                }
                sum = ((sum + rng.rounded(0.01, 3.0, 3)) * 1000.0).round() / 1000.0;
            }
            for (i, c) in cum.iter().enumerate() {
                buckets[i].push((*ts, *c));
            }
            sums.push((*ts, sum));
            counts.push((*ts, cum[HISTOGRAM_BUCKETS.len() - 1]));
        }
        let base = [("job", t.job.as_str()), ("instance", t.instance.as_str())];
        for (i, samples) in buckets.into_iter().enumerate() {
            series.push(GenSeries {
                labels: labels(
                    &format!("{name}_bucket"),
                    &[base[0], base[1], ("le", HISTOGRAM_BUCKETS[i])],
                ),
                samples,
            });
        }
        series.push(GenSeries {
            labels: labels(&format!("{name}_sum"), &base),
            samples: sums,
        });
        series.push(GenSeries {
            labels: labels(&format!("{name}_count"), &base),
            samples: counts,
        });
    }
    Family {
        name: name.into(),
        kind: Kind::Histogram,
        help: "Generated request durations.".into(),
        series,
    }
}

/// Two `job="batch"` series that exist only in the middle of the window.
pub(super) fn ephemeral(spec: &DataSpec, rng: &mut XorShift64) -> Family {
    let series = (0..2)
        .map(|i| {
            let from = spec.slots / 3 + i * 7;
            let to = 2 * spec.slots / 3 - i * 5;
            let samples = (from..to)
                .map(|k| {
                    let ts = spec.start_ms + k as i64 * SLOT_MS + rng.range_i64(1, 4) * 1000;
                    (ts, rng.rounded(0.0, 100.0, 1))
                })
                .collect();
            GenSeries {
                labels: labels(
                    "gen_ephemeral_jobs",
                    &[("job", "batch"), ("instance", &format!("runner-{i}"))],
                ),
                samples,
            }
        })
        .collect();
    Family {
        name: "gen_ephemeral_jobs".into(),
        kind: Kind::Gauge,
        help: "Generated series that appears and vanishes.".into(),
        series,
    }
}

pub(super) fn build_info(targets: &[Target]) -> Family {
    let series = targets
        .iter()
        .take(1)
        .map(|t| GenSeries {
            labels: labels(
                "gen_build_info",
                &[
                    ("job", &t.job),
                    ("instance", &t.instance),
                    ("path", ODD_LABEL_VALUE),
                ],
            ),
            samples: t.times.iter().map(|ts| (*ts, 1.0)).collect(),
        })
        .collect();
    Family {
        name: "gen_build_info".into(),
        kind: Kind::Gauge,
        help: "Generated info metric with an odd label value.".into(),
        series,
    }
}

pub(super) fn wide(spec: &DataSpec, rng: &mut XorShift64) -> Family {
    let series = (0..spec.wide_series)
        .map(|i| {
            let mut v = rng.rounded(0.0, 100.0, 2);
            let samples = (0..spec.slots)
                .map(|k| {
                    let ts = spec.start_ms + k as i64 * SLOT_MS + rng.range_i64(1, 4) * 1000;
                    v = ((v + rng.rounded(-1.0, 1.0, 2)) * 100.0).round() / 100.0;
                    (ts, v)
                })
                .collect();
            GenSeries {
                labels: labels(
                    "gen_wide_gauge",
                    &[
                        ("job", "wide"),
                        ("shard", &i.to_string()),
                        ("group", &(i % 10).to_string()),
                    ],
                ),
                samples,
            }
        })
        .collect();
    Family {
        name: "gen_wide_gauge".into(),
        kind: Kind::Gauge,
        help: "Generated wide gauge family for benchmarks.".into(),
        series,
    }
}
