//! The oracle: the exact answer of every workload query, computed from
//! the generator with Prometheus 3 semantics (5 m lookback, left-open
//! windows, extrapolated rate), and the comparison of an answer with it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::datagen::{DataSpec, Metric, STEP_MS};
use crate::schedule::Rng;

pub type Labels = BTreeMap<String, String>;

/// A query result: each series' points (one point for an instant query).
pub type Answer = BTreeMap<Labels, Vec<(i64, f64)>>;

const LOOKBACK_MS: i64 = 300_000;
const RATE_RANGE_MS: i64 = 300_000;

/// The shapes of query the workload sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Kind {
    SumByCluster,
    CountAll,
    CountByCluster,
    RateSumByCluster,
    RateSumAll,
    Selector { instance: usize },
    AndFlag { a: usize, b: usize },
    UnlessFlag { a: usize, b: usize },
}

/// One query: PromQL text plus evaluation time(s).
#[derive(Clone, Debug, Serialize)]
pub struct Query {
    pub kind: Kind,
    pub promql: String,
    /// Instant query time, or range start.
    pub start_ms: i64,
    /// For range queries: end and step.
    pub range: Option<(i64, i64)>,
}

impl Kind {
    pub fn promql(self) -> String {
        let c = DataSpec::cluster_name;
        match self {
            Kind::SumByCluster => "sum by (cluster) (chaos_gauge)".into(),
            Kind::CountAll => "count(chaos_gauge)".into(),
            Kind::CountByCluster => "count by (cluster) (chaos_gauge)".into(),
            Kind::RateSumByCluster => "sum by (cluster) (rate(chaos_requests_total[5m]))".into(),
            Kind::RateSumAll => "sum(rate(chaos_requests_total[5m]))".into(),
            Kind::Selector { instance } => format!(
                "chaos_gauge{{instance=\"{}\"}}",
                DataSpec::instance_name(instance)
            ),
            Kind::AndFlag { a, b } => format!(
                "chaos_flag{{cluster=\"{}\"}} and on(instance) (chaos_flag{{cluster=\"{}\"}} == 1)",
                c(a),
                c(b)
            ),
            Kind::UnlessFlag { a, b } => format!(
                "chaos_flag{{cluster=\"{}\"}} unless on(instance) (chaos_flag{{cluster=\"{}\"}} == 1)",
                c(a),
                c(b)
            ),
        }
    }

    /// A short name for reports.
    pub fn label(self) -> &'static str {
        match self {
            Kind::SumByCluster => "sum_by_cluster",
            Kind::CountAll => "count",
            Kind::CountByCluster => "count_by_cluster",
            Kind::RateSumByCluster => "rate_sum_by_cluster",
            Kind::RateSumAll => "rate_sum",
            Kind::Selector { .. } => "selector",
            Kind::AndFlag { .. } => "and",
            Kind::UnlessFlag { .. } => "unless",
        }
    }
}

/// Computes expected answers over one data set.
pub struct Oracle {
    spec: DataSpec,
    /// values[cluster][instance][metric]
    values: Vec<Vec<BTreeMap<Metric, Vec<f64>>>>,
}

impl Oracle {
    pub fn new(spec: DataSpec) -> Oracle {
        let values = (0..spec.clusters)
            .map(|c| {
                (0..spec.instances)
                    .map(|i| {
                        Metric::ALL
                            .iter()
                            .map(|m| (*m, spec.values(c, i, *m)))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Oracle { spec, values }
    }

    pub fn spec(&self) -> &DataSpec {
        &self.spec
    }

    fn series(&self, c: usize, i: usize, m: Metric) -> &[f64] {
        self.values
            .get(c)
            .and_then(|v| v.get(i))
            .and_then(|v| v.get(&m))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Indices of samples with timestamp in (from, to].
    fn window(&self, from: i64, to: i64) -> std::ops::Range<usize> {
        let first = self.spec.ts(0);
        let idx = |t: i64| -> usize {
            // number of samples with ts <= t
            if t < first {
                0
            } else {
                (((t - first) / STEP_MS + 1) as usize).min(self.spec.samples)
            }
        };
        idx(from)..idx(to)
    }

    /// The instant value of a series at `t` (lookback 5 m).
    fn instant(&self, c: usize, i: usize, m: Metric, t: i64) -> Option<f64> {
        let w = self.window(t - LOOKBACK_MS, t);
        let k = w.end.checked_sub(1)?;
        if k < w.start {
            return None;
        }
        self.series(c, i, m).get(k).copied()
    }

    /// `rate(series[5m])` at `t`, Prometheus 3 extrapolation.
    fn rate(&self, c: usize, i: usize, t: i64) -> Option<f64> {
        let w = self.window(t - RATE_RANGE_MS, t);
        if w.len() < 2 {
            return None;
        }
        let v = self.series(c, i, Metric::Requests);
        let (first_k, last_k) = (w.start, w.end - 1);
        let (first, last) = (*v.get(first_k)?, *v.get(last_k)?);
        let mut result = 0.0;
        let mut prev = first;
        for k in w.clone().skip(1) {
            let x = *v.get(k)?;
            // counter resets: add what was there before the reset
            result += if x < prev { x } else { x - prev };
            prev = x;
        }
        let _ = last;
        let (first_t, last_t) = (self.spec.ts(first_k), self.spec.ts(last_k));
        let range_start = t - RATE_RANGE_MS;
        let mut to_start = (first_t - range_start) as f64 / 1000.0;
        let mut to_end = (t - last_t) as f64 / 1000.0;
        let sampled = (last_t - first_t) as f64 / 1000.0;
        let avg = sampled / (w.len() - 1) as f64;
        let threshold = avg * 1.1;
        if to_start >= threshold {
            to_start = avg / 2.0;
        }
        let mut to_zero = to_start;
        if result > 0.0 && first >= 0.0 {
            to_zero = sampled * (first / result);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
        if to_end >= threshold {
            to_end = avg / 2.0;
        }
        let factor = (sampled + to_start + to_end) / sampled / (RATE_RANGE_MS as f64 / 1000.0);
        Some(result * factor)
    }

    fn labels(pairs: &[(&str, String)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// The instant vector of `kind` at `t`.
    pub fn eval(&self, kind: Kind, t: i64) -> Vec<(Labels, f64)> {
        let cn = DataSpec::cluster_name;
        let insts = 0..self.spec.instances;
        let clusters = 0..self.spec.clusters;
        let mut out = Vec::new();
        let per_cluster = |f: &dyn Fn(usize, usize) -> Option<f64>, agg_count: bool| {
            let mut v = Vec::new();
            for c in clusters.clone() {
                let xs: Vec<f64> = insts.clone().filter_map(|i| f(c, i)).collect();
                if !xs.is_empty() {
                    let val = if agg_count {
                        xs.len() as f64
                    } else {
                        xs.iter().sum()
                    };
                    v.push((Self::labels(&[("cluster", cn(c))]), val));
                }
            }
            v
        };
        match kind {
            Kind::SumByCluster => {
                out = per_cluster(&|c, i| self.instant(c, i, Metric::Gauge, t), false)
            }
            Kind::CountByCluster => {
                out = per_cluster(&|c, i| self.instant(c, i, Metric::Gauge, t), true)
            }
            Kind::RateSumByCluster => out = per_cluster(&|c, i| self.rate(c, i, t), false),
            Kind::CountAll | Kind::RateSumAll => {
                let xs: Vec<f64> = clusters
                    .flat_map(|c| insts.clone().map(move |i| (c, i)))
                    .filter_map(|(c, i)| match kind {
                        Kind::CountAll => self.instant(c, i, Metric::Gauge, t).map(|_| 1.0),
                        _ => self.rate(c, i, t),
                    })
                    .collect();
                if !xs.is_empty() {
                    out.push((Labels::new(), xs.iter().sum()));
                }
            }
            Kind::Selector { instance } => {
                for c in clusters {
                    if let Some(v) = self.instant(c, instance, Metric::Gauge, t) {
                        out.push((self.series_labels(Metric::Gauge, c, instance), v));
                    }
                }
            }
            Kind::AndFlag { a, b } | Kind::UnlessFlag { a, b } => {
                let want_match = matches!(kind, Kind::AndFlag { .. });
                for i in insts {
                    let Some(va) = self.instant(a, i, Metric::Flag, t) else {
                        continue;
                    };
                    let matched = self.instant(b, i, Metric::Flag, t) == Some(1.0);
                    if matched == want_match {
                        out.push((self.series_labels(Metric::Flag, a, i), va));
                    }
                }
            }
        }
        out
    }

    fn series_labels(&self, m: Metric, c: usize, i: usize) -> Labels {
        Self::labels(&[
            ("__name__", m.name().to_string()),
            ("cluster", DataSpec::cluster_name(c)),
            ("instance", DataSpec::instance_name(i)),
            ("job", "chaos".to_string()),
        ])
    }

    /// The full expected answer of a query.
    pub fn answer(&self, q: &Query) -> Answer {
        let mut out = Answer::new();
        let times: Vec<i64> = match q.range {
            None => vec![q.start_ms],
            Some((end, step)) if step > 0 => (0..)
                .map(|n| q.start_ms + n * step)
                .take_while(|t| *t <= end)
                .take(11_000)
                .collect(),
            Some(_) => vec![],
        };
        for t in times {
            for (l, v) in self.eval(q.kind, t) {
                out.entry(l).or_default().push((t, v));
            }
        }
        out
    }

    /// A random query over the data: instant (2/3) or range (1/3).
    pub fn random_query(&self, rng: &mut Rng) -> Query {
        let nc = self.spec.clusters.max(1);
        let a = rng.below(nc as u64) as usize;
        let b = if nc > 1 {
            (a + 1 + rng.below(nc as u64 - 1) as usize) % nc
        } else {
            a
        };
        let kind = match rng.below(8) {
            0 => Kind::SumByCluster,
            1 => Kind::CountAll,
            2 => Kind::CountByCluster,
            3 => Kind::RateSumByCluster,
            4 => Kind::RateSumAll,
            5 => Kind::Selector {
                instance: rng.below(self.spec.instances.max(1) as u64) as usize,
            },
            6 => Kind::AndFlag { a, b },
            _ => Kind::UnlessFlag { a, b },
        };
        // Query times: multiples of 15 s from 6 min after the start to the
        // last sample.
        let lo = self.spec.start_ms + 6 * 60_000;
        let steps = ((self.spec.last_ms() - lo) / STEP_MS).max(1) as u64;
        let range = rng.below(3) == 0;
        let span_steps = 120; // 30 min of 15 s steps
        let t = if range {
            lo + rng.below(steps.saturating_sub(span_steps).max(1)) as i64 * STEP_MS
        } else {
            lo + rng.below(steps) as i64 * STEP_MS
        };
        Query {
            kind,
            promql: kind.promql(),
            start_ms: t,
            range: range.then_some((t + span_steps as i64 * STEP_MS, 60_000)),
        }
    }
}

/// Relative/absolute tolerance for float comparison.
fn close(a: f64, b: f64) -> bool {
    if a == b || (a.is_nan() && b.is_nan()) {
        return true;
    }
    let diff = (a - b).abs();
    diff <= 1e-9 || diff <= 1e-9 * a.abs().max(b.abs())
}

/// `Ok` when `got` equals `want`, else the first difference.
pub fn compare(want: &Answer, got: &Answer) -> Result<(), String> {
    for (l, wp) in want {
        let Some(gp) = got.get(l) else {
            return Err(format!("missing series {l:?}"));
        };
        if wp.len() != gp.len() {
            return Err(format!(
                "series {l:?}: {} points, want {}",
                gp.len(),
                wp.len()
            ));
        }
        for ((wt, wv), (gt, gv)) in wp.iter().zip(gp) {
            if wt != gt || !close(*wv, *gv) {
                return Err(format!("series {l:?} at {gt}: {gv}, want {wv} at {wt}"));
            }
        }
    }
    if let Some(l) = got.keys().find(|l| !want.contains_key(*l)) {
        return Err(format!("unexpected series {l:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
