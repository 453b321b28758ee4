//! Benchmark data: 10,000 series (configurable) of counters, gauges and a
//! classic histogram at a 15 s scrape interval, generated deterministically
//! and streamed out in time windows, so that the same samples can be written
//! as OpenMetrics text for promtool (one file per 2 h block: promtool 2.42
//! re-reads its whole input once per 2 h block it creates) and loaded into
//! skein-promql's in-memory source.
//!
//! Per 10,000 series: 40 % `bench_requests_total{job,instance,code}`
//! counters, 40 % `bench_gauge{job,instance,shard}` random walks, 20 %
//! `bench_latency_seconds_bucket{job,instance,le}` (10 buckets per target).

use std::io::Write;

use crate::datagen::escape_label_value;
use crate::xorshift::XorShift64;

/// Scrape interval.
pub const SLOT_MS: i64 = 15_000;
/// Histogram bucket bounds.
pub const BUCKETS: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf",
];

#[derive(Debug, Clone)]
enum State {
    Counter(f64),
    Gauge(f64),
    /// Cumulative bucket counts.
    Histogram(Vec<f64>),
}

/// One scrape target's contribution: one series, or 10 bucket series.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Family index (0 counters, 1 gauges, 2 histogram), for OpenMetrics grouping.
    pub family: usize,
    /// Label sets (without `__name__`) of the unit's series, rendered `a="b",...`.
    pub labels: Vec<Vec<(String, String)>>,
    pub name: &'static str,
    rng: XorShift64,
    state: State,
}

/// Family names and types, in output order.
pub const FAMILIES: [(&str, &str); 3] = [
    ("bench_requests_total", "counter"),
    ("bench_gauge", "gauge"),
    ("bench_latency_seconds", "histogram"),
];

fn pairs(p: &[(&str, String)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// All units for `series` series (rounded down to a multiple of 100).
pub fn units(seed: u64, series: usize) -> Vec<Unit> {
    let hundreds = (series / 100).max(1);
    let mut rng = XorShift64::new(seed);
    let mut out = Vec::new();
    // 40 counters per 100 series: 20 targets x 2 codes.
    for i in 0..hundreds * 20 {
        for code in ["200", "500"] {
            let labels = pairs(&[
                ("job", format!("job-{}", i % 10)),
                ("instance", format!("host-{i}:9100")),
                ("code", code.to_string()),
            ]);
            out.push(Unit {
                family: 0,
                labels: vec![labels],
                name: "bench_requests_total",
                rng: XorShift64::new(rng.next_u64()),
                state: State::Counter(rng.rounded(1000.0, 100_000.0, 3)),
            });
        }
    }
    // 40 gauges per 100 series: 20 targets x 2 shards.
    for i in 0..hundreds * 20 {
        for shard in ["a", "b"] {
            let labels = pairs(&[
                ("job", format!("job-{}", i % 10)),
                ("instance", format!("host-{i}:9100")),
                ("shard", shard.to_string()),
            ]);
            out.push(Unit {
                family: 1,
                labels: vec![labels],
                name: "bench_gauge",
                rng: XorShift64::new(rng.next_u64()),
                state: State::Gauge(rng.rounded(0.0, 100.0, 3)),
            });
        }
    }
    // 20 bucket series per 100 series: 2 targets x 10 buckets.
    for i in 0..hundreds * 2 {
        let labels = BUCKETS
            .iter()
            .map(|le| {
                pairs(&[
                    ("job", format!("job-{}", i % 10)),
                    ("instance", format!("host-{i}:9100")),
                    ("le", le.to_string()),
                ])
            })
            .collect();
        let mut acc = 0.0;
        let cum = (0..BUCKETS.len())
            .map(|_| {
                acc += rng.range_i64(1000, 5000) as f64;
                acc
            })
            .collect();
        out.push(Unit {
            family: 2,
            labels,
            name: "bench_latency_seconds_bucket",
            rng: XorShift64::new(rng.next_u64()),
            state: State::Histogram(cum),
        });
    }
    out
}

impl Unit {
    /// Number of series.
    pub fn series(&self) -> usize {
        self.labels.len()
    }

    /// Advance one slot starting at `slot_ms`: the sample time (1-4 s after
    /// the slot) and one value per series.
    pub fn step(&mut self, slot_ms: i64, out: &mut Vec<f64>) -> i64 {
        let ts = slot_ms + self.rng.range_i64(1, 4) * 1000;
        out.clear();
        match &mut self.state {
            State::Counter(v) => {
                // A rare reset (about once a day per series).
                if self.rng.range_i64(0, 5759) == 0 {
                    *v = 0.0;
                }
                *v = ((*v + self.rng.rounded(0.0, 20.0, 3)) * 1000.0).round() / 1000.0;
                out.push(*v);
            }
            State::Gauge(v) => {
                *v = ((*v + self.rng.rounded(-1.0, 1.0, 3)) * 1000.0).round() / 1000.0;
                out.push(*v);
            }
            State::Histogram(cum) => {
                let n = self.rng.range_i64(0, 30);
                for _ in 0..n {
                    let b = self.rng.range_i64(0, cum.len() as i64 - 1) as usize;
                    for c in cum.iter_mut().skip(b) {
                        *c += 1.0;
                    }
                }
                out.extend_from_slice(cum);
            }
        }
        ts
    }

    /// Generate `slots` slots from `start_ms`: per series, its samples.
    pub fn generate(&mut self, start_ms: i64, slots: usize) -> Vec<Vec<(i64, f64)>> {
        let mut per = vec![Vec::with_capacity(slots); self.series()];
        let mut vals = Vec::with_capacity(self.series());
        for k in 0..slots {
            let ts = self.step(start_ms + k as i64 * SLOT_MS, &mut vals);
            for (i, v) in vals.iter().enumerate() {
                per[i].push((ts, *v));
            }
        }
        per
    }
}

/// Write `slots` slots from `start_ms` of every unit as OpenMetrics text
/// (families in order, each series' samples together, `# EOF` at the end).
pub fn write_window(
    units: &mut [Unit],
    start_ms: i64,
    slots: usize,
    out: &mut impl Write,
) -> std::io::Result<()> {
    for (fi, (fname, ftype)) in FAMILIES.iter().enumerate() {
        writeln!(out, "# TYPE {fname} {ftype}")?;
        for u in units.iter_mut().filter(|u| u.family == fi) {
            let per = u.generate(start_ms, slots);
            for (labels, samples) in u.labels.iter().zip(per) {
                let rendered: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
                    .collect();
                let prefix = format!("{}{{{}}}", u.name, rendered.join(","));
                for (t, v) in samples {
                    writeln!(out, "{prefix} {v} {}", t / 1000)?;
                }
            }
        }
    }
    writeln!(out, "# EOF")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_continue_the_same_stream() {
        let mut a = units(3, 100);
        let mut b = units(3, 100);
        assert_eq!(a.iter().map(Unit::series).sum::<usize>(), 100);
        let whole: Vec<_> = a.iter_mut().map(|u| u.generate(0, 10)).collect();
        let first: Vec<_> = b.iter_mut().map(|u| u.generate(0, 4)).collect();
        let rest: Vec<_> = b.iter_mut().map(|u| u.generate(4 * SLOT_MS, 6)).collect();
        for i in 0..whole.len() {
            for s in 0..whole[i].len() {
                let mut joined = first[i][s].clone();
                joined.extend(rest[i][s].iter().copied());
                assert_eq!(whole[i][s], joined);
            }
        }
        // Buckets are cumulative.
        let h = whole.iter().find(|per| per.len() == 10).unwrap();
        for pair in h.windows(2) {
            for (lo, hi) in pair[0].iter().zip(&pair[1]) {
                assert!(hi.1 >= lo.1);
            }
        }
        let mut text = Vec::new();
        write_window(&mut units(3, 100), 0, 2, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.lines().count(), 100 * 2 + 3 + 1);
    }
}
