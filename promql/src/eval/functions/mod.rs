//! Function calls: dispatch and the helpers functions share.

pub(crate) mod histogram;
mod info;
mod labels;
mod math;
mod range;
mod time;

use promql_parser::parser::{Call, Expr};

use super::{Evaluator, RangeVectors, StepVectors, Val};
use crate::error::QueryError;
use crate::labels::Labels;
use crate::source::Sample;

/// Formats a float as Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn format_go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f == f64::INFINITY {
        "+Inf".to_string()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{f}")
    }
}

impl Evaluator<'_> {
    pub(crate) fn arg<'c>(&self, c: &'c Call, i: usize) -> Result<&'c Expr, QueryError> {
        c.args.args.get(i).map(|b| b.as_ref()).ok_or_else(|| {
            QueryError::exec(format!("missing argument {} to {}", i + 1, c.func.name))
        })
    }

    pub(crate) fn arg_range(&self, c: &Call, i: usize) -> Result<RangeVectors, QueryError> {
        match self.eval(self.arg(c, i)?)? {
            Val::Matrix(m) => Ok(m),
            other => Err(QueryError::exec(format!(
                "expected range vector in call to {}, got {}",
                c.func.name,
                other.type_name()
            ))),
        }
    }

    pub(crate) fn eval_call(&self, c: &Call) -> Result<Val, QueryError> {
        let name = c.func.name;
        self.check_ext_args(c)?;
        if let Some(ext) = c
            .args
            .args
            .first()
            .and_then(|a| super::extended::matrix_ext(a))
        {
            let (ms, ext) = ext;
            return Ok(Val::Vector(self.ext_range(name, ms, ext)?));
        }
        if let Some(v) = self.call_range(c)? {
            return Ok(v);
        }
        if let Some(v) = self.call_math(c)? {
            return Ok(v);
        }
        if let Some(v) = self.call_time(c)? {
            return Ok(v);
        }
        if let Some(v) = self.call_labels(c)? {
            return Ok(v);
        }
        if let Some(v) = self.call_histogram(c)? {
            return Ok(v);
        }
        if let Some(v) = self.call_info(c)? {
            return Ok(v);
        }
        match name {
            "vector" => {
                let s = self.eval_scalar(self.arg(c, 0)?)?;
                Ok(Val::Vector(StepVectors {
                    labels: vec![Labels::default()],
                    steps: s.into_iter().map(|v| vec![(0, v)]).collect(),
                }))
            }
            "scalar" => {
                let v = self.eval_vector(self.arg(c, 0)?)?;
                Ok(Val::Scalar(
                    v.steps
                        .iter()
                        .map(|s| match s.as_slice() {
                            [(_, v)] => *v,
                            _ => f64::NAN,
                        })
                        .collect(),
                ))
            }
            "absent" => self.absent(c),
            "step" | "range" | "start" | "end" => {
                let ctx = self.ctx;
                let v = match name {
                    "step" => ctx.query_step,
                    "range" => ctx.query_end - ctx.query_start,
                    "start" => ctx.query_start,
                    _ => ctx.query_end,
                } as f64
                    / 1000.0;
                Ok(Val::Scalar(vec![v; self.nsteps()]))
            }
            "min_of" | "max_of" => {
                let a = self.eval_scalar(self.arg(c, 0)?)?;
                let b = self.eval_scalar(self.arg(c, 1)?)?;
                Ok(Val::Scalar(
                    a.iter()
                        .zip(b.iter())
                        .map(|(x, y)| {
                            if name == "min_of" {
                                math::go_min(*x, *y)
                            } else {
                                math::go_max(*x, *y)
                            }
                        })
                        .collect(),
                ))
            }
            _ => Err(QueryError::exec(format!(
                "function {name}() is not supported yet"
            ))),
        }
    }

    /// Applies `f` to every window of a range vector argument.
    /// The result keeps the metric name; most callers drop it.
    pub(crate) fn over_windows(
        &self,
        rv: &RangeVectors,
        mut f: impl FnMut(&[Sample], usize) -> Option<f64>,
    ) -> Result<StepVectors, QueryError> {
        let mut steps: Vec<Vec<(u32, f64)>> = vec![Vec::new(); rv.ends.len()];
        let mut points = 0usize;
        for (i, s) in rv.series.iter().enumerate() {
            if i % 64 == 0 {
                self.ctx.check()?;
                self.ctx.count(points)?;
            }
            let mut lo = 0usize;
            let mut hi = 0usize;
            let mut prev_end = i64::MIN;
            for (si, end) in rv.ends.iter().enumerate() {
                let start = end - rv.range_ms;
                let w = if *end >= prev_end {
                    while lo < s.samples.len() && s.samples[lo].t <= start {
                        lo += 1;
                    }
                    hi = hi.max(lo);
                    while hi < s.samples.len() && s.samples[hi].t <= *end {
                        hi += 1;
                    }
                    prev_end = *end;
                    s.samples.get(lo..hi).unwrap_or(&[])
                } else {
                    super::window(&s.samples, start, *end)
                };
                if w.is_empty() {
                    continue;
                }
                if let Some(v) = f(w, si) {
                    steps[si].push((i as u32, v));
                    points += 1;
                }
            }
        }
        Ok(StepVectors {
            labels: rv.series.iter().map(|s| s.labels.clone()).collect(),
            steps,
        }
        .compact())
    }

    fn absent(&self, c: &Call) -> Result<Val, QueryError> {
        let arg = self.arg(c, 0)?;
        let v = self.eval_vector(arg)?;
        let labels = absent_labels(arg);
        Ok(Val::Vector(StepVectors {
            labels: vec![labels],
            steps: v
                .steps
                .iter()
                .map(|s| {
                    if s.is_empty() {
                        vec![(0, 1.0)]
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
        }))
    }
}

/// The labels `absent()` and `absent_over_time()` give their result: the
/// equality matchers of a plain selector (a label matched twice is left out).
pub(crate) fn absent_labels(e: &Expr) -> Labels {
    use promql_parser::label::MatchOp;
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::default(),
    };
    let mut out: Vec<crate::labels::Label> = Vec::new();
    let mut has: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == crate::labels::METRIC_NAME {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) && !has.contains(&m.name.as_str()) {
            out.push(crate::labels::Label::new(m.name.clone(), m.value.clone()));
            has.push(&m.name);
        } else {
            out.retain(|l| l.name != m.name);
        }
    }
    Labels::new(out)
}
