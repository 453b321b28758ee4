//! The query engine: parse, select (concurrently), evaluate off the async
//! runtime, honouring timeout and cancellation.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use promql_parser::parser::{Expr, value::ValueType};

use crate::error::QueryError;
use crate::eval::{Ctx, Evaluator, Val, is_stale_nan};
use crate::parse::ParseLimits;
use crate::plan::plan;
use crate::source::{Sample, Series, SeriesSource};
use crate::value::{InstantSample, QueryOutput, Value};

/// Subqueries without a step use this resolution, as Prometheus does with
/// its default global evaluation interval.
pub const DEFAULT_SUBQUERY_STEP: Duration = Duration::from_secs(60);

/// The most steps a range query may have, as the Prometheus API allows.
pub const MAX_POINTS: i64 = 11_000;

#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back a vector selector looks for the latest sample (5m).
    pub lookback_delta: Duration,
    /// The most samples a query may hold in memory (50,000,000).
    pub max_samples: usize,
    /// How long a query may run (2m).
    pub timeout: Duration,
    /// Limits on the query text.
    pub parse: ParseLimits,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            parse: ParseLimits::default(),
        }
    }
}

/// Per-request settings.
#[derive(Clone, Debug, Default)]
pub struct QueryOptions {
    /// Overrides the engine's lookback delta for this query.
    pub lookback_delta: Option<Duration>,
}

#[derive(Clone, Debug, Default)]
pub struct Engine {
    opts: EngineOptions,
}

/// Sets the cancel flag when the query future is dropped (the client went
/// away) or finishes, so a blocking evaluation stops early.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The stack of the threads that parse and evaluate. Parsing, planning and
/// evaluation recurse once per nesting level; at the deepest nesting the
/// parse limits allow ([`crate::parse::HARD_MAX_DEPTH`]), an unoptimized
/// build needs about 10 MiB. Only the pages used are backed by memory.
pub const EVAL_STACK_BYTES: usize = 32 << 20;

/// Runs CPU work (parsing, evaluation) on a thread of its own with a
/// [`EVAL_STACK_BYTES`] stack, off the async workers (the HTTP workers
/// await queries). The caller bounds how many run at once (the query API's
/// admission queue).
async fn on_eval_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, QueryError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("skein-eval".into())
        .stack_size(EVAL_STACK_BYTES)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| QueryError::exec(format!("cannot start an evaluation thread: {e}")))?;
    rx.await
        .map_err(|_| QueryError::exec("evaluation failed: its thread ended without an answer"))
}

/// Parses a query under the default limits, with errors worded as
/// Prometheus's ("parse error: ...").
pub fn parse_query(query: &str) -> Result<Expr, QueryError> {
    parse_query_with(query, crate::durexpr::DurationContext::default())
}

/// Like [`parse_query`], with the step and range that `step()` and
/// `range()` in duration expressions stand for.
pub fn parse_query_with(
    query: &str,
    durations: crate::durexpr::DurationContext,
) -> Result<Expr, QueryError> {
    Ok(crate::parse::parse_promql(
        query,
        durations,
        &ParseLimits::default(),
    )?)
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Parses on a blocking thread: the guard, the rewrites, the parser
    /// and the error-position search are CPU work that must not hold up
    /// the async worker (an HTTP worker) that awaits the query.
    async fn parse(
        &self,
        query: &str,
        durations: crate::durexpr::DurationContext,
    ) -> Result<Expr, QueryError> {
        // Over-long text is refused without a copy or a thread.
        crate::parse::check_length(query, &self.opts.parse)?;
        let query = query.to_string();
        let limits = self.opts.parse.clone();
        on_eval_thread(move || {
            crate::parse::parse_promql(&query, durations, &limits).map_err(QueryError::from)
        })
        .await?
    }

    pub async fn query_instant(
        &self,
        source: &dyn SeriesSource,
        query: &str,
        time_ms: i64,
        opts: &QueryOptions,
    ) -> Result<QueryOutput, QueryError> {
        let expr = self.parse(query, Default::default()).await?;
        if !(-1_000_000_000_000_000..=1_000_000_000_000_000).contains(&time_ms) {
            return Err(QueryError::Parse {
                message: "query time out of range".into(),
            });
        }
        self.run(source, expr, time_ms, time_ms, 0, opts).await
    }

    pub async fn query_range(
        &self,
        source: &dyn SeriesSource,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        opts: &QueryOptions,
    ) -> Result<QueryOutput, QueryError> {
        let expr = self
            .parse(
                query,
                crate::durexpr::DurationContext {
                    step_ms,
                    range_ms: end_ms.saturating_sub(start_ms),
                },
            )
            .await?;
        if step_ms <= 0 {
            return Err(QueryError::Parse {
                message: "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            });
        }
        if end_ms < start_ms {
            return Err(QueryError::Parse {
                message: "end timestamp must not be before start time".into(),
            });
        }
        const LIMIT: i64 = 1_000_000_000_000_000;
        if !(-LIMIT..=LIMIT).contains(&start_ms) || !(-LIMIT..=LIMIT).contains(&end_ms) {
            return Err(QueryError::Parse {
                message: "query time out of range".into(),
            });
        }
        if (end_ms - start_ms) / step_ms >= MAX_POINTS {
            return Err(QueryError::Parse {
                message: "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            });
        }
        let vt = expr.value_type();
        if vt != ValueType::Scalar && vt != ValueType::Vector {
            let name = match vt {
                ValueType::Matrix => "range vector",
                ValueType::String => "string",
                _ => "unknown",
            };
            return Err(QueryError::Parse {
                message: format!(
                    "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
                ),
            });
        }
        self.run(source, expr, start_ms, end_ms, step_ms, opts)
            .await
    }

    async fn run(
        &self,
        source: &dyn SeriesSource,
        expr: Expr,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOptions,
    ) -> Result<QueryOutput, QueryError> {
        let began = Instant::now();
        let deadline = began + self.opts.timeout;
        let cancel = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop(cancel.clone());
        // A zero lookback means the default, as in Prometheus.
        let lookback = [opts.lookback_delta, Some(self.opts.lookback_delta)]
            .into_iter()
            .flatten()
            .find(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(300));
        let mut ctx = Ctx {
            data: HashMap::new(),
            lookback_ms: lookback.as_millis().min(1_000_000_000_000_000) as i64,
            query_start: start,
            query_end: end,
            query_step: step,
            default_subquery_step_ms: DEFAULT_SUBQUERY_STEP.as_millis() as i64,
            deadline,
            cancel: cancel.clone(),
            max_samples: self.opts.max_samples,
            warnings: RefCell::new(Vec::new()),
            infos: RefCell::new(Vec::new()),
        };
        // Refuse what would not fit before allocating or fetching anything:
        // every step of every expression's evaluation grid costs memory.
        if crate::plan::grid_cost(&ctx, &expr, start, end, step) > self.opts.max_samples as u128 {
            return Err(QueryError::TooManySamples);
        }
        let selections = plan(&ctx, &expr, start, end, step.max(1));
        let fetches = selections.into_iter().map(|(key, sel)| async move {
            let r = source.select(&sel.matchers, &sel.hints).await?;
            Ok::<_, QueryError>((key, r))
        });
        let fetched =
            tokio::time::timeout(self.opts.timeout, futures::future::try_join_all(fetches))
                .await
                .map_err(|_| QueryError::Timeout)??;
        let mut warnings = Vec::new();
        let mut loaded = 0usize;
        for (key, r) in fetched {
            for w in r.warnings {
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
            loaded += r.series.iter().map(|s| s.samples.len()).sum::<usize>();
            ctx.count(loaded)?;
            ctx.data.insert(key, Arc::new(r.series));
        }
        let times: Vec<i64> = if step == 0 {
            vec![start]
        } else {
            let n = (end - start) / step + 1;
            (0..n).map(|i| start + i * step).collect()
        };
        let range_query = step != 0;
        let task = on_eval_thread(move || {
            let ev = Evaluator {
                ctx: &ctx,
                times: times.clone(),
            };
            let val = ev.eval(&expr)?;
            let value = to_value(val, &times, range_query)?;
            let w = ctx.warnings.take();
            let i = ctx.infos.take();
            Ok::<_, QueryError>((value, w, i))
        });
        let remaining = deadline.saturating_duration_since(Instant::now());
        let (value, w, infos) = match tokio::time::timeout(remaining, task).await {
            Err(_) => {
                cancel.store(true, Ordering::Relaxed);
                return Err(QueryError::Timeout);
            }
            Ok(r) => r??,
        };
        for x in w {
            if !warnings.contains(&x) {
                warnings.push(x);
            }
        }
        Ok(QueryOutput {
            value,
            warnings,
            infos,
        })
    }
}

fn to_value(val: Val, times: &[i64], range_query: bool) -> Result<Value, QueryError> {
    let t0 = times.first().copied().unwrap_or(0);
    Ok(match val {
        Val::Scalar(v) if !range_query => Value::Scalar {
            t: t0,
            v: v.first().copied().unwrap_or(f64::NAN),
        },
        Val::Scalar(v) => Value::Matrix(vec![Series::new(
            Default::default(),
            times
                .iter()
                .zip(v)
                .map(|(t, v)| Sample { t: *t, v })
                .collect(),
        )]),
        Val::Str(s) if !range_query => Value::String { t: t0, v: s },
        Val::Str(_) => {
            return Err(QueryError::exec(
                "invalid expression type \"string\" for range query, must be Scalar or instant Vector",
            ));
        }
        Val::Vector(sv) if !range_query => {
            let mut out = Vec::new();
            if let Some(step) = sv.steps.first() {
                for (id, v) in step {
                    if is_stale_nan(*v) {
                        continue;
                    }
                    if let Some(l) = sv.labels.get(*id as usize) {
                        out.push(InstantSample {
                            labels: l.clone(),
                            t: t0,
                            v: *v,
                        });
                    }
                }
            }
            Value::Vector(out)
        }
        Val::Vector(sv) => {
            let mut series: Vec<Series> = sv
                .labels
                .into_iter()
                .map(|l| Series::new(l, Vec::new()))
                .collect();
            for (si, step) in sv.steps.iter().enumerate() {
                let Some(t) = times.get(si) else { continue };
                for (id, v) in step {
                    if is_stale_nan(*v) {
                        continue;
                    }
                    if let Some(s) = series.get_mut(*id as usize) {
                        s.samples.push(Sample { t: *t, v: *v });
                    }
                }
            }
            series.retain(|s| !s.samples.is_empty());
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(series)
        }
        Val::Matrix(rv) if !range_query => {
            let mut out = Vec::new();
            for (i, s) in rv.series.iter().enumerate() {
                let w = rv.window(i, 0);
                if !w.is_empty() {
                    out.push(Series::new(s.labels.clone(), w.to_vec()));
                }
            }
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(out)
        }
        Val::Matrix(_) => {
            return Err(QueryError::exec(
                "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector",
            ));
        }
    })
}
