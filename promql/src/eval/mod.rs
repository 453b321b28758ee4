//! In-memory evaluation of a parsed expression over a set of step times.
//!
//! Every instant-vector expression evaluates to a [`StepVectors`]: a table of
//! label sets and, for each step, the `(series index, value)` pairs present
//! at that step. Keeping labels in a table (not per sample) lets grouping and
//! matching work once per series instead of once per sample.

pub(crate) mod aggregate;
pub(crate) mod binary;
pub(crate) mod extended;
pub(crate) mod functions;
pub(crate) mod selector;
pub(crate) mod subquery;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use promql_parser::parser::{AtModifier, Expr, Offset};

use crate::error::QueryError;
use crate::labels::Labels;
use crate::source::Series;

/// The stale marker bit pattern Prometheus writes when a series disappears.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Instant vectors over the steps of an evaluation.
#[derive(Clone, Debug, Default)]
pub(crate) struct StepVectors {
    pub labels: Vec<Labels>,
    pub steps: Vec<Vec<(u32, f64)>>,
}

impl StepVectors {
    pub fn empty(nsteps: usize) -> Self {
        StepVectors {
            labels: Vec::new(),
            steps: vec![Vec::new(); nsteps],
        }
    }

    pub fn points(&self) -> usize {
        self.steps.iter().map(Vec::len).sum()
    }

    /// Replaces every label set with `f(labels)` and merges series whose new
    /// label sets are equal. Two merged series present at the same step are
    /// an error, as in Prometheus.
    pub fn relabel(self, mut f: impl FnMut(&Labels) -> Labels) -> Result<StepVectors, QueryError> {
        let mut index: HashMap<Labels, u32> = HashMap::with_capacity(self.labels.len());
        let mut table = Vec::with_capacity(self.labels.len());
        let mut remap = Vec::with_capacity(self.labels.len());
        let mut merged = false;
        for l in &self.labels {
            let nl = f(l);
            let id = match index.get(&nl) {
                Some(id) => {
                    merged = true;
                    *id
                }
                None => {
                    let id = table.len() as u32;
                    index.insert(nl.clone(), id);
                    table.push(nl);
                    id
                }
            };
            remap.push(id);
        }
        let mut steps = self.steps;
        let mut seen = vec![u32::MAX; if merged { table.len() } else { 0 }];
        for (si, step) in steps.iter_mut().enumerate() {
            for (id, _) in step.iter_mut() {
                let nid = remap[*id as usize];
                if merged {
                    if seen[nid as usize] == si as u32 {
                        return Err(QueryError::exec(
                            "vector cannot contain metrics with the same labelset",
                        ));
                    }
                    seen[nid as usize] = si as u32;
                }
                *id = nid;
            }
        }
        Ok(StepVectors {
            labels: table,
            steps,
        })
    }

    /// Removes the metric name from every series.
    pub fn drop_name(self) -> Result<StepVectors, QueryError> {
        if self.labels.iter().all(|l| {
            l.metric_name().is_none() && l.get("__type__").is_none() && l.get("__unit__").is_none()
        }) {
            return Ok(self);
        }
        self.relabel(|l| {
            let mut l = l.clone();
            l.drop_metric_name();
            l
        })
    }

    /// Drops series that no step refers to.
    pub fn compact(self) -> StepVectors {
        let mut used = vec![u32::MAX; self.labels.len()];
        for step in &self.steps {
            for (id, _) in step {
                used[*id as usize] = 0;
            }
        }
        if used.iter().all(|u| *u == 0) {
            return self;
        }
        let mut labels = Vec::new();
        for (i, l) in self.labels.into_iter().enumerate() {
            if used[i] == 0 {
                used[i] = labels.len() as u32;
                labels.push(l);
            }
        }
        let mut steps = self.steps;
        for step in steps.iter_mut() {
            for (id, _) in step.iter_mut() {
                *id = used[*id as usize];
            }
        }
        StepVectors { labels, steps }
    }
}

/// A range vector argument: series (stale markers removed) and, per step,
/// the inclusive end of the left-open window `(end - range, end]`.
#[derive(Clone, Debug)]
pub(crate) struct RangeVectors {
    pub series: Arc<Vec<Series>>,
    pub range_ms: i64,
    pub ends: Vec<i64>,
}

impl RangeVectors {
    /// The samples of series `i` in the window of step `s`.
    pub fn window(&self, i: usize, s: usize) -> &[crate::source::Sample] {
        let Some(series) = self.series.get(i) else {
            return &[];
        };
        let Some(end) = self.ends.get(s) else {
            return &[];
        };
        window(&series.samples, *end - self.range_ms, *end)
    }
}

/// Samples with `start < t <= end`.
pub(crate) fn window(
    samples: &[crate::source::Sample],
    start: i64,
    end: i64,
) -> &[crate::source::Sample] {
    let lo = samples.partition_point(|s| s.t <= start);
    let hi = samples.partition_point(|s| s.t <= end);
    samples.get(lo..hi.max(lo)).unwrap_or(&[])
}

#[derive(Clone, Debug)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    Str(String),
    Vector(StepVectors),
    Matrix(RangeVectors),
}

impl Val {
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Str(_) => "string",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
        }
    }
}

/// What every evaluator of one query shares.
pub(crate) struct Ctx {
    /// Selected series per selector key (see [`crate::plan::selector_key`]).
    pub data: HashMap<String, Arc<Vec<Series>>>,
    pub lookback_ms: i64,
    pub query_start: i64,
    pub query_end: i64,
    /// The range query's step; 0 for instant queries.
    pub query_step: i64,
    pub default_subquery_step_ms: i64,
    pub deadline: Instant,
    pub cancel: Arc<AtomicBool>,
    pub max_samples: usize,
    pub warnings: RefCell<Vec<String>>,
    pub infos: RefCell<Vec<String>>,
}

impl Ctx {
    pub fn check(&self) -> Result<(), QueryError> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(QueryError::Canceled);
        }
        if Instant::now() >= self.deadline {
            return Err(QueryError::Timeout);
        }
        Ok(())
    }

    pub fn warn(&self, msg: String) {
        let mut w = self.warnings.borrow_mut();
        if !w.contains(&msg) {
            w.push(msg);
        }
    }

    pub fn info(&self, msg: String) {
        let mut w = self.infos.borrow_mut();
        if !w.contains(&msg) {
            w.push(msg);
        }
    }

    pub fn count(&self, points: usize) -> Result<(), QueryError> {
        if points > self.max_samples {
            return Err(QueryError::TooManySamples);
        }
        Ok(())
    }
}

/// Evaluates expressions at a list of step times.
pub(crate) struct Evaluator<'a> {
    pub ctx: &'a Ctx,
    pub times: Vec<i64>,
}

/// Milliseconds of a duration, capped so time arithmetic cannot overflow
/// (about 31,000 years).
pub(crate) fn dur_ms(d: std::time::Duration) -> i64 {
    d.as_millis().min(1_000_000_000_000_000) as i64
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => dur_ms(*d),
        Some(Offset::Neg(d)) => -dur_ms(*d),
    }
}

pub(crate) fn at_ms(ctx: &Ctx, at: &Option<AtModifier>) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(ctx.query_start),
        Some(AtModifier::End) => Some(ctx.query_end),
        Some(AtModifier::At(t)) => Some(system_time_ms(*t)),
    }
}

pub(crate) fn system_time_ms(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => dur_ms(d),
        Err(e) => -dur_ms(e.duration()),
        // dur_ms caps at about 31,000 years either way.
    }
}

impl<'a> Evaluator<'a> {
    pub fn nsteps(&self) -> usize {
        self.times.len()
    }

    pub fn eval(&self, expr: &Expr) -> Result<Val, QueryError> {
        self.ctx.check()?;
        let v = match expr {
            Expr::NumberLiteral(n) => Val::Scalar(vec![n.val; self.nsteps()]),
            Expr::StringLiteral(s) => Val::Str(s.val.clone()),
            Expr::Paren(p) => self.eval(&p.expr)?,
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Val::Scalar(v) => Val::Scalar(v.into_iter().map(|x| -x).collect()),
                Val::Vector(mut sv) => {
                    for step in sv.steps.iter_mut() {
                        for (_, v) in step.iter_mut() {
                            *v = -*v;
                        }
                    }
                    Val::Vector(sv.drop_name()?)
                }
                other => {
                    return Err(QueryError::exec(format!(
                        "unary expression only allowed on expressions of type scalar or vector, got {}",
                        other.type_name()
                    )));
                }
            },
            Expr::VectorSelector(vs) => Val::Vector(self.eval_vector_selector(vs)?),
            Expr::MatrixSelector(ms) => Val::Matrix(self.eval_matrix_selector(ms)?),
            Expr::Subquery(sq) => Val::Matrix(self.eval_subquery(sq)?),
            Expr::Aggregate(a) => Val::Vector(self.eval_aggregate(a)?),
            Expr::Binary(b) => self.eval_binary(b)?,
            Expr::Call(c) => self.eval_call(c)?,
            Expr::Extension(_) => {
                return Err(QueryError::exec("extension expressions are not supported"));
            }
        };
        if let Val::Vector(sv) = &v {
            self.ctx.count(sv.points())?;
        }
        Ok(v)
    }

    pub fn eval_vector(&self, expr: &Expr) -> Result<StepVectors, QueryError> {
        match self.eval(expr)? {
            Val::Vector(v) => Ok(v),
            other => Err(QueryError::exec(format!(
                "expected instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    pub fn eval_scalar(&self, expr: &Expr) -> Result<Vec<f64>, QueryError> {
        match self.eval(expr)? {
            Val::Scalar(v) => Ok(v),
            other => Err(QueryError::exec(format!(
                "expected scalar, got {}",
                other.type_name()
            ))),
        }
    }
}
