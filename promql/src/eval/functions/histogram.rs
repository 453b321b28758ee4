//! histogram_quantile over classic (`le` bucket) histograms.

use std::collections::HashMap;

use promql_parser::parser::Call;

use super::super::{Evaluator, StepVectors, Val};
use super::format_go_float;
use crate::error::QueryError;
use crate::labels::{Labels, METRIC_NAME};

pub(crate) fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

/// Prometheus's `BucketQuantile`; returns the value and whether the
/// buckets had to be forced monotonic.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return (f64::NAN, false),
    }
    // Coalesce equal upper bounds.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => merged.push(*b),
        }
    }
    let mut forced = false;
    if let Some(first) = merged.first() {
        let mut prev = first.1;
        for b in merged.iter_mut().skip(1) {
            let curr = b.1;
            if curr == prev {
                continue;
            }
            if almost_equal(prev, curr, 1e-12) {
                b.1 = prev;
                continue;
            }
            if curr < prev {
                b.1 = prev;
                forced = true;
                continue;
            }
            prev = curr;
        }
    }
    let n = merged.len();
    if n < 2 {
        return (f64::NAN, forced);
    }
    let observations = merged[n - 1].1;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let b = merged[..n - 1].partition_point(|x| x.1 < rank);
    if b == n - 1 {
        return (merged[n - 2].0, forced);
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return (merged[0].0, forced);
    }
    let end = merged[b].0;
    let mut count = merged[b].1;
    let mut start = 0.0;
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

impl Evaluator<'_> {
    pub(crate) fn call_histogram(&self, c: &Call) -> Result<Option<Val>, QueryError> {
        if c.func.name != "histogram_quantile" {
            return Ok(None);
        }
        let q = self.eval_scalar(self.arg(c, 0)?)?;
        let v = self.eval_vector(self.arg(c, 1)?)?;
        // Group series by their labels without `le` and the name.
        let mut index: HashMap<Labels, u32> = HashMap::new();
        let mut groups: Vec<Labels> = Vec::new();
        let mut member: Vec<Option<(u32, f64)>> = Vec::with_capacity(v.labels.len());
        for l in &v.labels {
            let le = l.get("le").map(|s| s.trim().parse::<f64>());
            let le = match le {
                Some(Ok(x)) => x,
                _ => {
                    self.ctx.warn(format!(
                        "PromQL warning: bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}",
                        l.get("le").unwrap_or(""),
                        l.metric_name().unwrap_or("")
                    ));
                    member.push(None);
                    continue;
                }
            };
            let mut g = l.clone();
            g.remove("le");
            g.remove(METRIC_NAME);
            let id = *index.entry(g.clone()).or_insert_with(|| {
                groups.push(g);
                (groups.len() - 1) as u32
            });
            member.push(Some((id, le)));
        }
        let mut steps = Vec::with_capacity(v.steps.len());
        let mut buckets: Vec<Vec<(f64, f64)>> = vec![Vec::new(); groups.len()];
        for (si, step) in v.steps.iter().enumerate() {
            let qv = q.get(si).copied().unwrap_or(f64::NAN);
            if !step.is_empty() && (qv.is_nan() || !(0.0..=1.0).contains(&qv)) {
                self.ctx.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}",
                    format_go_float(qv)
                ));
            }
            let mut order = Vec::new();
            for (id, val) in step {
                if let Some(Some((g, le))) = member.get(*id as usize) {
                    if buckets[*g as usize].is_empty() {
                        order.push(*g);
                    }
                    buckets[*g as usize].push((*le, *val));
                }
            }
            let mut out = Vec::with_capacity(order.len());
            for g in order {
                let mut b = std::mem::take(&mut buckets[g as usize]);
                let (res, forced) = bucket_quantile(qv, &mut b);
                if forced {
                    self.ctx.info(format!(
                        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?}",
                        v.labels
                            .iter()
                            .find_map(|l| l.metric_name())
                            .unwrap_or("")
                    ));
                }
                out.push((g, res));
            }
            steps.push(out);
        }
        Ok(Some(Val::Vector(
            StepVectors {
                labels: groups,
                steps,
            }
            .compact(),
        )))
    }
}
