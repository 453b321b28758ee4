//! Running promqltest commands against the engine.

use promql_parser::parser::Expr;

use crate::engine::{Engine, EngineOptions, QueryOptions};
use crate::error::QueryError;
use crate::eval::functions::histogram::almost_equal;
use crate::labels::Labels;
use crate::memsource::MemSource;
use crate::plan::selector_matchers;
use crate::promqltest::script::{Command, Eval, EvalKind, Expected, MsgMatch};
use crate::promqltest::series::{SeqValue, SeriesDesc};
use crate::source::{Sample, Series};
use crate::value::{QueryOutput, Value};

const EPSILON: f64 = 1e-6;

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

#[derive(Clone, Debug)]
pub struct CaseResult {
    pub line: usize,
    pub query: String,
    pub outcome: Outcome,
}

/// Test storage and engine for one script.
pub struct Runner {
    engine: Engine,
    series: Vec<Series>,
    source: MemSource,
    /// Label sets of native histogram series (not loaded).
    histograms: MemSource,
}

impl Default for Runner {
    fn default() -> Self {
        Runner::new()
    }
}

fn floats_equal(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || almost_equal(a, b, EPSILON)
}

/// Samples of a loaded series description.
pub fn desc_samples(d: &SeriesDesc, start_ms: i64, step_ms: i64) -> Vec<Sample> {
    d.values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| match v {
            SeqValue::Omitted => None,
            SeqValue::Value(v) => Some(Sample {
                t: start_ms + i as i64 * step_ms,
                v: *v,
            }),
        })
        .collect()
}

fn collect_selectors<'a>(e: &'a Expr, out: &mut Vec<&'a promql_parser::parser::VectorSelector>) {
    match e {
        Expr::VectorSelector(vs) => out.push(vs),
        Expr::MatrixSelector(ms) => out.push(&ms.vs),
        Expr::Aggregate(a) => {
            collect_selectors(&a.expr, out);
            if let Some(p) = &a.param {
                collect_selectors(p, out);
            }
        }
        Expr::Unary(u) => collect_selectors(&u.expr, out),
        Expr::Binary(b) => {
            collect_selectors(&b.lhs, out);
            collect_selectors(&b.rhs, out);
        }
        Expr::Paren(p) => collect_selectors(&p.expr, out),
        Expr::Subquery(s) => collect_selectors(&s.expr, out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| collect_selectors(a, out)),
        _ => {}
    }
}

fn compare_series(got: &[Series], want: &[(Labels, Vec<Sample>)]) -> Result<(), String> {
    let want: Vec<&(Labels, Vec<Sample>)> = want.iter().filter(|w| !w.1.is_empty()).collect();
    if got.len() != want.len() {
        return Err(format!(
            "expected {} series, got {}: {:?}",
            want.len(),
            got.len(),
            got.iter().map(|s| s.labels.to_string()).collect::<Vec<_>>()
        ));
    }
    for (labels, samples) in want {
        let Some(g) = got.iter().find(|s| &s.labels == labels) else {
            return Err(format!("missing series {labels}"));
        };
        let ok = g.samples.len() == samples.len()
            && g.samples
                .iter()
                .zip(samples.iter())
                .all(|(a, b)| a.t == b.t && floats_equal(b.v, a.v));
        if !ok {
            let fmt = |s: &[Sample]| {
                s.iter()
                    .map(|x| format!("{}@{}", x.v, x.t / 1000))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            return Err(format!(
                "series {labels}: expected [{}], got [{}]",
                fmt(samples),
                fmt(&g.samples)
            ));
        }
    }
    Ok(())
}

fn check_msgs(
    what: &str,
    want: &Option<MsgMatch>,
    none: bool,
    got: &[String],
) -> Result<(), String> {
    if let Some(m) = want {
        if got.is_empty() {
            return Err(format!("expected {what} but got none"));
        }
        if *m != MsgMatch::Any && !got.iter().any(|g| m.matches(g)) {
            return Err(format!("expected {what} {m:?}, got {got:?}"));
        }
    }
    if none && !got.is_empty() {
        return Err(format!("expected no {what}, got {got:?}"));
    }
    Ok(())
}

impl Runner {
    pub fn new() -> Self {
        Runner {
            engine: Engine::new(EngineOptions::default()),
            series: Vec::new(),
            source: MemSource::default(),
            histograms: MemSource::default(),
        }
    }

    pub fn source(&self) -> &MemSource {
        &self.source
    }

    fn load(&mut self, interval_ms: i64, series: &[SeriesDesc], with_nhcb: bool) {
        let mut hist = self.histograms.series().to_vec();
        for d in series {
            // load_with_nhcb also loads classic histograms as native
            // histograms with custom buckets, named without `_bucket`.
            if with_nhcb
                && let (Some(name), Some(_)) = (d.labels.metric_name(), d.labels.get("le"))
                && let Some(base) = name.strip_suffix("_bucket")
            {
                let mut l = d.labels.clone();
                l.remove("le");
                l.set(crate::labels::METRIC_NAME, base.to_string());
                hist.push(Series::new(l, vec![Sample { t: 0, v: 0.0 }]));
            }
            if d.histogram {
                hist.push(Series::new(d.labels.clone(), vec![Sample { t: 0, v: 0.0 }]));
            } else {
                self.series.push(Series::new(
                    d.labels.clone(),
                    desc_samples(d, 0, interval_ms),
                ));
            }
        }
        self.histograms = MemSource::new(hist);
        self.source = MemSource::new(self.series.clone());
    }

    fn clear(&mut self) {
        self.series.clear();
        self.source = MemSource::default();
        self.histograms = MemSource::default();
    }

    /// Why a case cannot be run, if it cannot.
    fn skip_reason(&self, ev: &Eval) -> Option<String> {
        if ev.unparsed.iter().any(|l| l.contains("{{")) {
            return Some("native histograms not supported yet".into());
        }
        if let Some(l) = ev.unparsed.first() {
            return Some(format!("expected line not understood: {l}"));
        }
        if self.histograms.is_empty() {
            return None;
        }
        let expr = match crate::parse::parse_expr(&ev.query, &Default::default()) {
            Ok(e) => e,
            Err(_) => {
                // Unparsable queries over histogram series use native
                // histogram syntax (such as the trim operators `</`, `>/`).
                let uses_hist = self
                    .histograms
                    .series()
                    .iter()
                    .any(|s| s.labels.metric_name().is_some_and(|n| ev.query.contains(n)));
                return uses_hist.then(|| "native histograms not supported yet".into());
            }
        };
        let mut sels = Vec::new();
        collect_selectors(&expr, &mut sels);
        for vs in sels {
            let m = selector_matchers(vs);
            if self
                .histograms
                .select_sync(&m, i64::MIN, i64::MAX)
                .map(|r| !r.is_empty())
                .unwrap_or(false)
            {
                return Some("native histograms not supported yet".into());
            }
        }
        None
    }

    async fn query(&self, q: &str, kind: &EvalKind) -> Result<QueryOutput, QueryError> {
        let o = QueryOptions::default();
        match kind {
            EvalKind::Instant { at_ms } => {
                self.engine.query_instant(&self.source, q, *at_ms, &o).await
            }
            EvalKind::Range {
                start_ms,
                end_ms,
                step_ms,
            } => {
                self.engine
                    .query_range(&self.source, q, *start_ms, *end_ms, *step_ms, &o)
                    .await
            }
        }
    }

    fn compare(&self, ev: &Eval, value: &Value) -> Result<(), String> {
        match (&ev.expected, value) {
            (Expected::String(want), Value::String { v, .. }) => {
                if want == v {
                    Ok(())
                } else {
                    Err(format!("expected string {want:?}, got {v:?}"))
                }
            }
            (Expected::Scalar(want), Value::Scalar { v, .. }) => {
                if floats_equal(*want, *v) {
                    Ok(())
                } else {
                    Err(format!("expected scalar {want}, got {v}"))
                }
            }
            (Expected::Series(want), Value::Vector(got)) => {
                let want: Vec<&SeriesDesc> = want.iter().filter(|d| !d.values.is_empty()).collect();
                if want.len() != got.len() {
                    return Err(format!(
                        "expected {} samples, got {}: {}",
                        want.len(),
                        got.len(),
                        got.iter()
                            .map(|s| format!("{} {}", s.labels, s.v))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                for (i, w) in want.iter().enumerate() {
                    let Some(pos) = got.iter().position(|s| s.labels == w.labels) else {
                        return Err(format!("missing sample {}", w.labels));
                    };
                    if ev.ordered && pos != i {
                        return Err(format!("{} at position {pos}, expected {i}", w.labels));
                    }
                    let wv = match w.values.first() {
                        Some(SeqValue::Value(v)) => *v,
                        _ => return Err(format!("no expected value for {}", w.labels)),
                    };
                    if !floats_equal(wv, got[pos].v) {
                        return Err(format!("{}: expected {wv}, got {}", w.labels, got[pos].v));
                    }
                }
                Ok(())
            }
            (Expected::Series(want), Value::Matrix(got)) => {
                let (start, step) = match ev.kind {
                    EvalKind::Range {
                        start_ms, step_ms, ..
                    } => (start_ms, step_ms),
                    EvalKind::Instant { .. } => {
                        return Err(
                            "instant query returned a matrix without expect range vector".into(),
                        );
                    }
                };
                let want: Vec<(Labels, Vec<Sample>)> = want
                    .iter()
                    .map(|d| (d.labels.clone(), desc_samples(d, start, step)))
                    .collect();
                compare_series(got, &want)
            }
            (
                Expected::RangeVector {
                    start_ms,
                    step_ms,
                    series,
                    ..
                },
                Value::Matrix(got),
            ) => {
                let want: Vec<(Labels, Vec<Sample>)> = series
                    .iter()
                    .map(|d| (d.labels.clone(), desc_samples(d, *start_ms, *step_ms)))
                    .collect();
                compare_series(got, &want)
            }
            (want, got) => Err(format!(
                "expected {want:?}, got a {} result",
                got.type_name()
            )),
        }
    }

    /// Runs one eval as Prometheus's test framework does, including the
    /// check that an instant query gives the same result in range mode.
    pub async fn run_eval(&self, ev: &Eval) -> Outcome {
        if let Some(r) = self.skip_reason(ev) {
            return Outcome::Skip(r);
        }
        let res = self.query(&ev.query, &ev.kind).await;
        if let Some(m) = &ev.fail {
            return match res {
                Ok(_) => Outcome::Fail("expected an error, got a result".into()),
                Err(e) if m.matches(&e.to_string()) => Outcome::Pass,
                Err(e) => Outcome::Fail(format!("expected error {m:?}, got {e}")),
            };
        }
        let out = match res {
            Ok(o) => o,
            Err(e) => return Outcome::Fail(format!("error: {e}")),
        };
        if let Err(e) = check_msgs("warnings", &ev.warn, ev.no_warn, &out.warnings) {
            return Outcome::Fail(e);
        }
        if let Err(e) = check_msgs("infos", &ev.info, ev.no_info, &out.infos) {
            return Outcome::Fail(e);
        }
        if let Err(e) = self.compare(ev, &out.value) {
            return Outcome::Fail(e);
        }
        // The range-mode check does not apply to functions of the query's
        // own range and step.
        let range_dependent = ["step()", "range()", "start()", "end()"]
            .iter()
            .any(|f| ev.query.contains(f));
        if let (EvalKind::Instant { at_ms }, false) = (&ev.kind, ev.ordered || range_dependent)
            && matches!(out.value, Value::Vector(_) | Value::Scalar { .. })
            && let Err(e) = self.check_range_mode(ev, *at_ms, &out.value).await
        {
            return Outcome::Fail(format!("in range mode: {e}"));
        }
        Outcome::Pass
    }

    async fn check_range_mode(&self, ev: &Eval, at: i64, instant: &Value) -> Result<(), String> {
        let kind = EvalKind::Range {
            start_ms: at - 60_000,
            end_ms: at + 60_000,
            step_ms: 60_000,
        };
        let out = self
            .query(&ev.query, &kind)
            .await
            .map_err(|e| e.to_string())?;
        let Value::Matrix(m) = out.value else {
            return Err("range query did not return a matrix".into());
        };
        let mut vec = Vec::new();
        for s in &m {
            if let Some(p) = s.samples.iter().find(|p| p.t == at) {
                vec.push(crate::value::InstantSample {
                    labels: s.labels.clone(),
                    t: at,
                    v: p.v,
                });
            }
        }
        let value = match instant {
            Value::Scalar { .. } => Value::Scalar {
                t: at,
                v: vec.first().map(|s| s.v).unwrap_or(f64::NAN),
            },
            _ => Value::Vector(vec),
        };
        self.compare(ev, &value)
    }

    /// Runs a whole script; evals are the cases.
    pub async fn run(&mut self, cmds: &[Command]) -> Vec<CaseResult> {
        let mut out = Vec::new();
        let mut unsupported_load: Vec<String> = Vec::new();
        for c in cmds {
            match c {
                Command::Clear => {
                    self.clear();
                    unsupported_load.clear();
                }
                Command::Load {
                    interval_ms,
                    series,
                    unsupported,
                    with_nhcb,
                    ..
                } => {
                    self.load(*interval_ms, series, *with_nhcb);
                    unsupported_load.extend(unsupported.iter().cloned());
                }
                Command::Eval(ev) => {
                    let mut outcome = self.run_eval(ev).await;
                    if let (Outcome::Fail(f), Some(l)) = (&outcome, unsupported_load.first()) {
                        outcome = Outcome::Fail(format!("{f} (load line not understood: {l})"));
                    }
                    out.push(CaseResult {
                        line: ev.line,
                        query: ev.query.clone(),
                        outcome,
                    });
                }
            }
        }
        out
    }
}
