//! Evaluation of `anchored` and `smoothed` selectors (experimental in
//! Prometheus 3).

use promql_parser::parser::{Call, Expr, MatrixSelector, VectorSelector};

use super::{Evaluator, StepVectors, at_ms, dur_ms, is_stale_nan, offset_ms};
use crate::error::QueryError;
use crate::extended::{Ext, ext_of};
use crate::plan::all_matchers;
use crate::source::Sample;

/// Values adjusted for counter resets: each drop adds the previous value.
fn counter_adjusted(pts: &[Sample]) -> Vec<Sample> {
    let mut out = Vec::with_capacity(pts.len());
    let mut offset = 0.0;
    let mut prev: Option<f64> = None;
    for p in pts {
        if let Some(pv) = prev
            && p.v < pv
        {
            offset += pv;
        }
        prev = Some(p.v);
        out.push(Sample {
            t: p.t,
            v: p.v + offset,
        });
    }
    out
}

fn interpolate(a: Sample, b: Sample, t: i64) -> f64 {
    if b.t == a.t {
        return b.v;
    }
    a.v + (b.v - a.v) * (t - a.t) as f64 / (b.t - a.t) as f64
}

pub(crate) fn matrix_ext(e: &Expr) -> Option<(&MatrixSelector, Ext)> {
    match e {
        Expr::MatrixSelector(ms) => ext_of(&all_matchers(&ms.vs)).map(|x| (ms, x)),
        Expr::Paren(p) => matrix_ext(&p.expr),
        _ => None,
    }
}

impl Evaluator<'_> {
    /// Refuses modified range selectors passed to functions that do not
    /// take them.
    pub(crate) fn check_ext_args(&self, c: &Call) -> Result<(), QueryError> {
        for a in &c.args.args {
            if let Some((_, ext)) = matrix_ext(a)
                && !ext.allowed().contains(&c.func.name)
            {
                return Err(QueryError::exec(format!(
                    "{} modifier can only be used with: {} - not with {}",
                    ext.name(),
                    ext.allowed().join(", "),
                    c.func.name
                )));
            }
        }
        Ok(())
    }

    /// rate, increase, delta, changes and resets over an extended range.
    pub(crate) fn ext_range(
        &self,
        name: &str,
        ms: &MatrixSelector,
        ext: Ext,
    ) -> Result<StepVectors, QueryError> {
        let series = self.selected(&ms.vs)?;
        let ends = self.ref_times(at_ms(self.ctx, &ms.vs.at), offset_ms(&ms.vs.offset));
        let range = dur_ms(ms.range);
        let lookback = self.ctx.lookback_ms;
        let counter = matches!(name, "rate" | "increase");
        let mut steps: Vec<Vec<(u32, f64)>> = vec![Vec::new(); ends.len()];
        for (i, s) in series.iter().enumerate() {
            if i % 64 == 0 {
                self.ctx.check()?;
            }
            let samples: Vec<Sample> = s
                .samples
                .iter()
                .filter(|x| !is_stale_nan(x.v))
                .copied()
                .collect();
            for (si, end) in ends.iter().enumerate() {
                let start = end - range;
                let lo = samples.partition_point(|x| x.t <= start);
                let hi = samples.partition_point(|x| x.t <= *end);
                let window = samples.get(lo..hi.max(lo)).unwrap_or(&[]);
                let before = lo
                    .checked_sub(1)
                    .and_then(|k| samples.get(k))
                    .filter(|x| x.t > start - lookback)
                    .copied();
                let after = samples.get(hi).filter(|x| x.t <= end + lookback).copied();
                let v = match ext {
                    Ext::Anchored => anchored(name, before, window, counter),
                    Ext::Smoothed => smoothed(before, window, after, *end, start, counter),
                };
                if let Some(mut v) = v {
                    if name == "rate" {
                        v /= range as f64 / 1000.0;
                    }
                    steps[si].push((i as u32, v));
                }
            }
        }
        StepVectors {
            labels: series.iter().map(|s| s.labels.clone()).collect(),
            steps,
        }
        .compact()
        .drop_name()
    }

    /// `x smoothed`: the value at each step interpolated between the
    /// samples around it.
    pub(crate) fn smoothed_instant(&self, vs: &VectorSelector) -> Result<StepVectors, QueryError> {
        let series = self.selected(vs)?;
        let refs = self.ref_times(at_ms(self.ctx, &vs.at), offset_ms(&vs.offset));
        let lookback = self.ctx.lookback_ms;
        let mut steps: Vec<Vec<(u32, f64)>> = vec![Vec::new(); refs.len()];
        for (i, s) in series.iter().enumerate() {
            let samples = &s.samples;
            for (si, t) in refs.iter().enumerate() {
                let hi = samples.partition_point(|x| x.t <= *t);
                let Some(b) = hi.checked_sub(1).and_then(|k| samples.get(k)) else {
                    continue;
                };
                if b.t <= t - lookback || is_stale_nan(b.v) {
                    continue;
                }
                let v = match samples.get(hi) {
                    Some(a) if a.t <= t + lookback && !is_stale_nan(a.v) => interpolate(*b, *a, *t),
                    _ => b.v,
                };
                steps[si].push((i as u32, v));
            }
        }
        Ok(StepVectors {
            labels: series.iter().map(|s| s.labels.clone()).collect(),
            steps,
        }
        .compact())
    }
}

fn anchored(name: &str, before: Option<Sample>, window: &[Sample], counter: bool) -> Option<f64> {
    if window.is_empty() {
        return None;
    }
    let mut pts: Vec<Sample> = before.into_iter().collect();
    pts.extend_from_slice(window);
    match name {
        "changes" | "resets" => {
            let n = pts
                .windows(2)
                .filter(|p| {
                    let (a, b) = (p[0].v, p[1].v);
                    if name == "changes" {
                        !(a == b || (a.is_nan() && b.is_nan()))
                    } else {
                        b < a
                    }
                })
                .count();
            Some(n as f64)
        }
        _ => {
            let pts = if counter { counter_adjusted(&pts) } else { pts };
            Some(pts.last()?.v - pts.first()?.v)
        }
    }
}

fn smoothed(
    before: Option<Sample>,
    window: &[Sample],
    after: Option<Sample>,
    end: i64,
    start: i64,
    counter: bool,
) -> Option<f64> {
    let mut pts: Vec<Sample> = before.into_iter().collect();
    pts.extend_from_slice(window);
    pts.extend(after);
    if pts.is_empty() || (window.is_empty() && (before.is_none() || after.is_none())) {
        return None;
    }
    let pts = if counter { counter_adjusted(&pts) } else { pts };
    let has_before = before.is_some();
    let v_start = if has_before {
        match pts.get(1) {
            Some(next) => interpolate(*pts.first()?, *next, start),
            None => pts.first()?.v,
        }
    } else {
        pts.first()?.v
    };
    let last_le = pts.iter().rposition(|p| p.t <= end)?;
    let v_end = match (after, pts.get(last_le + 1)) {
        (Some(_), Some(next)) => interpolate(*pts.get(last_le)?, *next, end),
        _ => pts.get(last_le)?.v,
    };
    Some(v_end - v_start)
}
