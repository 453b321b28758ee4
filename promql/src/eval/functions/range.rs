//! Functions over range vectors: rate, increase, delta, *_over_time, ...

use promql_parser::parser::Call;

use super::super::aggregate::{kahan_inc, quantile};
use super::super::{Evaluator, StepVectors, Val};
use super::{absent_labels, format_go_float};
use crate::error::QueryError;
use crate::source::Sample;

/// Prometheus's extrapolated rate, for `rate`, `increase` and `delta`.
fn extrapolated(w: &[Sample], start: i64, end: i64, counter: bool, rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let first = w.first()?;
    let last = w.last()?;
    let mut result = last.v - first.v;
    if counter {
        let mut prev = first.v;
        for s in w.iter().skip(1) {
            if s.v < prev {
                result += prev;
            }
            prev = s.v;
        }
    }
    let mut to_start = (first.t - start) as f64 / 1000.0;
    let mut to_end = (end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg = sampled / (w.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if counter {
        let mut to_zero = to_start;
        if result > 0.0 && first.v >= 0.0 {
            to_zero = sampled * (first.v / result);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if rate {
        factor /= (end - start) as f64 / 1000.0;
    }
    Some(result * factor)
}

fn instant_delta(w: &[Sample], rate: bool) -> Option<f64> {
    let n = w.len();
    if n < 2 {
        return None;
    }
    let last = w.get(n - 1)?;
    let prev = w.get(n - 2)?;
    let mut d = last.v - prev.v;
    if rate {
        if last.v < prev.v {
            d = last.v;
        }
        let dt = last.t - prev.t;
        if dt == 0 {
            return None;
        }
        d /= dt as f64 / 1000.0;
    }
    Some(d)
}

pub(crate) fn kahan_mean(w: &[Sample]) -> f64 {
    let Some(first) = w.first() else {
        return f64::NAN;
    };
    let (mut sum, mut c, mut mean) = (first.v, 0.0, 0.0);
    let mut incremental = false;
    for (i, s) in w.iter().enumerate().skip(1) {
        let count = (i + 1) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(s.v, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(s.v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        let n = w.len() as f64;
        sum / n + c / n
    }
}

fn variance(w: &[Sample]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for s in w {
        count += 1.0;
        let delta = s.v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (s.v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

/// Least-squares slope and intercept, x in seconds from `intercept_t`.
pub(crate) fn linear_regression(w: &[Sample], intercept_t: i64) -> (f64, f64) {
    let Some(first) = w.first() else {
        return (f64::NAN, f64::NAN);
    };
    let init_y = first.v;
    let mut const_y = true;
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    for (i, s) in w.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_t) as f64 / 1000.0;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(s.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * s.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn double_exponential_smoothing(w: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let mut s0 = 0.0;
    let mut s1 = w.first()?.v;
    let mut b = w.get(1)?.v - s1;
    for (i, s) in w.iter().enumerate().skip(1) {
        let x = sf * s.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

const COUNTER_SUFFIXES: [&str; 4] = ["_total", "_sum", "_count", "_bucket"];

impl Evaluator<'_> {
    /// Functions taking a range vector; `None` if `c` is not one of them.
    pub(crate) fn call_range(&self, c: &Call) -> Result<Option<Val>, QueryError> {
        let name = c.func.name;
        let (rv_idx, keep_name) = match name {
            "rate"
            | "increase"
            | "delta"
            | "irate"
            | "idelta"
            | "avg_over_time"
            | "sum_over_time"
            | "count_over_time"
            | "min_over_time"
            | "max_over_time"
            | "stddev_over_time"
            | "stdvar_over_time"
            | "changes"
            | "resets"
            | "deriv"
            | "predict_linear"
            | "present_over_time"
            | "double_exponential_smoothing"
            | "mad_over_time"
            | "ts_of_min_over_time"
            | "ts_of_max_over_time"
            | "ts_of_last_over_time"
            | "ts_of_first_over_time" => (0, false),
            "last_over_time" | "first_over_time" => (0, true),
            "quantile_over_time" => (1, false),
            "absent_over_time" => return self.absent_over_time(c).map(Some),
            _ => return Ok(None),
        };
        let rv = self.arg_range(c, rv_idx)?;
        let scalar_args: Vec<Vec<f64>> = c
            .args
            .args
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != rv_idx)
            .map(|(_, a)| self.eval_scalar(a))
            .collect::<Result<_, _>>()?;
        let sarg = |k: usize, si: usize| {
            scalar_args
                .get(k)
                .and_then(|v| v.get(si))
                .copied()
                .unwrap_or(f64::NAN)
        };
        let range = rv.range_ms;
        let ends = rv.ends.clone();
        let win = |si: usize| {
            let e = ends.get(si).copied().unwrap_or(0);
            (e - range, e)
        };
        let times = &self.times;
        if name == "quantile_over_time" {
            for si in 0..self.nsteps() {
                let q = sarg(0, si);
                if q.is_nan() || !(0.0..=1.0).contains(&q) {
                    self.ctx.warn(format!(
                        "PromQL warning: quantile value should be between 0 and 1, got {}",
                        format_go_float(q)
                    ));
                    break;
                }
            }
        }
        if name == "double_exponential_smoothing" {
            for si in 0..self.nsteps() {
                let (sf, tf) = (sarg(0, si), sarg(1, si));
                if sf.is_nan() || sf <= 0.0 || sf >= 1.0 {
                    return Err(QueryError::exec(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                    )));
                }
                if tf.is_nan() || tf <= 0.0 || tf >= 1.0 {
                    return Err(QueryError::exec(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                    )));
                }
            }
        }
        let out = self.over_windows(&rv, |w, si| {
            let (start, end) = win(si);
            match name {
                "rate" => extrapolated(w, start, end, true, true),
                "increase" => extrapolated(w, start, end, true, false),
                "delta" => extrapolated(w, start, end, false, false),
                "irate" => instant_delta(w, true),
                "idelta" => instant_delta(w, false),
                "avg_over_time" => Some(kahan_mean(w)),
                "sum_over_time" => {
                    let (mut s, mut c) = (0.0, 0.0);
                    for x in w {
                        (s, c) = kahan_inc(x.v, s, c);
                    }
                    Some(s + c)
                }
                "count_over_time" => Some(w.len() as f64),
                "present_over_time" => Some(1.0),
                "last_over_time" => w.last().map(|s| s.v),
                "first_over_time" => w.first().map(|s| s.v),
                "ts_of_last_over_time" => w.last().map(|s| s.t as f64 / 1000.0),
                "ts_of_first_over_time" => w.first().map(|s| s.t as f64 / 1000.0),
                "min_over_time"
                | "max_over_time"
                | "ts_of_min_over_time"
                | "ts_of_max_over_time" => {
                    let max = name.contains("max");
                    let mut best = w.first()?;
                    for s in w.iter().skip(1) {
                        let better = if max { s.v > best.v } else { s.v < best.v };
                        if better || best.v.is_nan() {
                            best = s;
                        }
                    }
                    if name.starts_with("ts_of") {
                        Some(best.t as f64 / 1000.0)
                    } else {
                        Some(best.v)
                    }
                }
                "stdvar_over_time" => Some(variance(w)),
                "stddev_over_time" => Some(variance(w).sqrt()),
                "changes" | "resets" => {
                    let mut n = 0.0;
                    for p in w.windows(2) {
                        let (a, b) = (p[0].v, p[1].v);
                        let hit = if name == "changes" {
                            !(a == b || (a.is_nan() && b.is_nan()))
                        } else {
                            b < a
                        };
                        if hit {
                            n += 1.0;
                        }
                    }
                    Some(n)
                }
                "deriv" => {
                    if w.len() < 2 {
                        return None;
                    }
                    Some(linear_regression(w, w.first()?.t).0)
                }
                "predict_linear" => {
                    if w.len() < 2 {
                        return None;
                    }
                    let t = times.get(si).copied().unwrap_or(end);
                    let (slope, intercept) = linear_regression(w, t);
                    Some(slope * sarg(0, si) + intercept)
                }
                "quantile_over_time" => {
                    let mut v: Vec<f64> = w.iter().map(|s| s.v).collect();
                    Some(quantile(sarg(0, si), &mut v))
                }
                "mad_over_time" if w.iter().any(|s| s.v.is_nan()) => Some(f64::NAN),
                "mad_over_time" => {
                    let mut v: Vec<f64> = w.iter().map(|s| s.v).collect();
                    let median = quantile(0.5, &mut v);
                    let mut dev: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
                    Some(quantile(0.5, &mut dev))
                }
                "double_exponential_smoothing" => {
                    double_exponential_smoothing(w, sarg(0, si), sarg(1, si))
                }
                _ => None,
            }
        })?;
        if matches!(name, "rate" | "increase") {
            for l in &out.labels {
                if let Some(n) = l.metric_name()
                    && !COUNTER_SUFFIXES.iter().any(|s| n.ends_with(s))
                {
                    self.ctx.info(format!(
                        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?}"
                    ));
                }
            }
        }
        let out = if keep_name { out } else { out.drop_name()? };
        Ok(Some(Val::Vector(out)))
    }

    fn absent_over_time(&self, c: &Call) -> Result<Val, QueryError> {
        let arg = self.arg(c, 0)?;
        let rv = self.arg_range(c, 0)?;
        let mut present = vec![false; rv.ends.len()];
        for (i, _) in rv.series.iter().enumerate() {
            for (si, p) in present.iter_mut().enumerate() {
                if !*p && !rv.window(i, si).is_empty() {
                    *p = true;
                }
            }
        }
        Ok(Val::Vector(StepVectors {
            labels: vec![absent_labels(arg)],
            steps: present
                .iter()
                .map(|p| if *p { Vec::new() } else { vec![(0, 1.0)] })
                .collect(),
        }))
    }
}
