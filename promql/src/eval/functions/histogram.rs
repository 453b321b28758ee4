//! histogram_quantile over classic (`le` bucket) histograms.

use std::collections::HashMap;

use promql_parser::parser::Call;

use super::super::{Evaluator, StepVectors, Val};
use super::format_go_float;
use crate::error::QueryError;
use crate::labels::Labels;

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

/// Sorts buckets by upper bound and merges equal bounds; `None` unless
/// the last bucket is `+Inf`.
fn prepare(buckets: &mut [(f64, f64)]) -> Option<Vec<(f64, f64)>> {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return None,
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => merged.push(*b),
        }
    }
    Some(merged)
}

/// The fraction of observations between `lower` and `upper`, interpolating
/// linearly inside finite buckets; a bound inside an infinite bucket counts
/// as the bucket's finite edge.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, buckets: &mut [(f64, f64)]) -> f64 {
    let Some(b) = prepare(buckets) else {
        return f64::NAN;
    };
    let count = b.last().map(|x| x.1).unwrap_or(0.0);
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, (ub, bc)) in b.iter().copied().enumerate() {
        let lb = if i > 0 {
            b[i - 1].0
        } else if ub > 0.0 {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        let interp = |v: f64| {
            if lb.is_infinite() {
                bc
            } else if ub.is_infinite() {
                rank
            } else {
                rank + (bc - rank) * (v - lb) / (ub - lb)
            }
        };
        if !lower_set && lb >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lb >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lb < lower && ub > lower {
            lower_rank = interp(lower);
            lower_set = true;
        }
        if !upper_set && lb < upper && ub > upper {
            upper_rank = interp(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = bc;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
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
    let Some(mut merged) = prepare(buckets) else {
        return (f64::NAN, false);
    };
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

/// Classic histogram buckets of a vector, grouped by labels without `le`.
struct BucketGroups {
    /// Group label sets (with the metric name; dropped on output).
    groups: Vec<Labels>,
    /// Group and upper bound of each input series; `None` without a valid `le`.
    member: Vec<Option<(u32, f64)>>,
}

fn format_quantile_label(q: f64) -> String {
    let s = format_go_float(q);
    if s.chars().all(|c| c.is_ascii_digit() || c == '-') {
        format!("{s}.0")
    } else {
        s
    }
}

impl Evaluator<'_> {
    fn bucket_groups(&self, v: &StepVectors) -> BucketGroups {
        let mut index: HashMap<Labels, u32> = HashMap::new();
        let mut groups: Vec<Labels> = Vec::new();
        let mut member = Vec::with_capacity(v.labels.len());
        for l in &v.labels {
            let Some(le) = l.get("le").and_then(|s| s.trim().parse::<f64>().ok()) else {
                self.ctx.warn(format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}",
                    l.get("le").unwrap_or(""),
                    l.metric_name().unwrap_or("")
                ));
                member.push(None);
                continue;
            };
            let mut g = l.clone();
            g.remove("le");
            let id = *index.entry(g.clone()).or_insert_with(|| {
                groups.push(g);
                (groups.len() - 1) as u32
            });
            member.push(Some((id, le)));
        }
        BucketGroups { groups, member }
    }

    /// Applies `f(step, buckets)` to each group's buckets at each step.
    fn over_buckets(
        &self,
        v: &StepVectors,
        bg: &BucketGroups,
        mut f: impl FnMut(usize, &mut [(f64, f64)], &Labels) -> f64,
    ) -> Vec<Vec<(u32, f64)>> {
        let mut steps = Vec::with_capacity(v.steps.len());
        let mut buckets: Vec<Vec<(f64, f64)>> = vec![Vec::new(); bg.groups.len()];
        for (si, step) in v.steps.iter().enumerate() {
            let mut order = Vec::new();
            for (id, val) in step {
                if let Some(Some((g, le))) = bg.member.get(*id as usize) {
                    let b = &mut buckets[*g as usize];
                    if b.is_empty() {
                        order.push(*g);
                    }
                    b.push((*le, *val));
                }
            }
            let mut out = Vec::with_capacity(order.len());
            for g in order {
                let mut b = std::mem::take(&mut buckets[g as usize]);
                out.push((g, f(si, &mut b, &bg.groups[g as usize])));
            }
            steps.push(out);
        }
        steps
    }

    fn warn_quantiles(&self, qs: &[f64]) {
        for q in qs {
            if q.is_nan() || !(0.0..=1.0).contains(q) {
                self.ctx.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}",
                    format_go_float(*q)
                ));
            }
        }
    }

    fn quantile_steps(
        &self,
        v: &StepVectors,
        bg: &BucketGroups,
        q: &[f64],
    ) -> Vec<Vec<(u32, f64)>> {
        self.warn_quantiles(q);
        self.over_buckets(v, bg, |si, b, labels| {
            let qv = q.get(si).copied().unwrap_or(f64::NAN);
            let (res, forced) = bucket_quantile(qv, b);
            if forced {
                self.ctx.info(format!(
                    "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?}",
                    labels.metric_name().unwrap_or("")
                ));
            }
            res
        })
    }

    pub(crate) fn call_histogram(&self, c: &Call) -> Result<Option<Val>, QueryError> {
        let out = match c.func.name {
            "histogram_quantile" => {
                let q = self.eval_scalar(self.arg(c, 0)?)?;
                let v = self.eval_vector(self.arg(c, 1)?)?;
                let bg = self.bucket_groups(&v);
                let steps = self.quantile_steps(&v, &bg, &q);
                StepVectors {
                    labels: bg.groups,
                    steps,
                }
            }
            "histogram_fraction" => {
                let lo = self.eval_scalar(self.arg(c, 0)?)?;
                let hi = self.eval_scalar(self.arg(c, 1)?)?;
                let v = self.eval_vector(self.arg(c, 2)?)?;
                let bg = self.bucket_groups(&v);
                let steps = self.over_buckets(&v, &bg, |si, b, _| {
                    let l = lo.get(si).copied().unwrap_or(f64::NAN);
                    let h = hi.get(si).copied().unwrap_or(f64::NAN);
                    bucket_fraction(l, h, b)
                });
                StepVectors {
                    labels: bg.groups,
                    steps,
                }
            }
            "histogram_quantiles" => {
                let v = self.eval_vector(self.arg(c, 0)?)?;
                let label = match self.eval(self.arg(c, 1)?)? {
                    Val::Str(s) => s,
                    _ => return Err(QueryError::exec("histogram_quantiles needs a label name")),
                };
                let bg = self.bucket_groups(&v);
                let mut labels = Vec::new();
                let mut steps: Vec<Vec<(u32, f64)>> = vec![Vec::new(); v.steps.len()];
                for a in c.args.args.iter().skip(2) {
                    let q = self.eval_scalar(a)?;
                    let offset = labels.len() as u32;
                    let qs = q.first().copied().unwrap_or(f64::NAN);
                    for g in &bg.groups {
                        let mut l = g.clone();
                        l.set(&label, format_quantile_label(qs));
                        labels.push(l);
                    }
                    for (si, st) in self.quantile_steps(&v, &bg, &q).into_iter().enumerate() {
                        if let Some(out) = steps.get_mut(si) {
                            out.extend(st.into_iter().map(|(g, x)| (g + offset, x)));
                        }
                    }
                }
                StepVectors { labels, steps }.relabel(Labels::clone)?
            }
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => {
                // These read native histogram samples only; float samples
                // are ignored, and sources carry floats only.
                let v = self.eval_vector(self.arg(c, 0)?)?;
                StepVectors::empty(v.steps.len())
            }
            _ => return Ok(None),
        };
        Ok(Some(Val::Vector(out.compact().drop_name()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_values_parse_like_go() {
        for (s, v) in [
            ("+Inf", f64::INFINITY),
            ("1e+06", 1e6),
            ("0.005", 0.005),
            ("Inf", f64::INFINITY),
        ] {
            assert_eq!(s.parse::<f64>().ok(), Some(v), "{s}");
        }
    }

    #[test]
    fn quantile_interpolates_within_buckets() {
        // 10 observations <= 1, 20 <= 2, 30 in total.
        let mut b = vec![(f64::INFINITY, 30.0), (1.0, 10.0), (2.0, 20.0)];
        assert_eq!(bucket_quantile(0.5, &mut b).0, 1.5);
        // The highest finite bound when the rank falls in +Inf.
        let mut b = vec![(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 30.0)];
        assert_eq!(bucket_quantile(0.9, &mut b).0, 2.0);
        // No +Inf bucket: NaN.
        let mut b = vec![(1.0, 10.0)];
        assert!(bucket_quantile(0.5, &mut b).0.is_nan());
        // Non-monotonic counts are fixed and reported.
        let mut b = vec![(1.0, 10.0), (2.0, 5.0), (f64::INFINITY, 10.0)];
        assert!(bucket_quantile(0.5, &mut b).1);
        let mut b = vec![(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 40.0)];
        assert_eq!(bucket_fraction(0.0, 1.5, &mut b), 15.0 / 40.0);
    }
}
