//! Which series a query needs: one entry per distinct selector (by its
//! matchers), with the union of the time ranges its uses will read.

use crate::eval::dur_ms;
use std::collections::HashMap;

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{Expr, VectorSelector};

use crate::eval::{Ctx, at_ms, offset_ms};
use crate::extended::{EXT_LABEL, ext_of};
use crate::labels::METRIC_NAME;
use crate::source::{LabelMatcher, MatchOp, SelectHints};

/// One selection to make.
#[derive(Clone, Debug)]
pub struct Selection {
    pub matchers: Vec<LabelMatcher>,
    pub hints: SelectHints,
}

/// The matchers of a selector to send to a source: its metric name as a
/// `__name__` matcher, without the extended-selector marker.
pub fn selector_matchers(vs: &VectorSelector) -> Vec<LabelMatcher> {
    let mut m = all_matchers(vs);
    m.retain(|m| m.name != EXT_LABEL);
    m
}

/// All matchers of a selector, including the extended-selector marker.
pub fn all_matchers(vs: &VectorSelector) -> Vec<LabelMatcher> {
    let mut out = Vec::new();
    if let Some(name) = &vs.name {
        out.push(LabelMatcher::new(METRIC_NAME, MatchOp::Equal, name.clone()));
    }
    for m in &vs.matchers.matchers {
        let op = match m.op {
            PMatchOp::Equal => MatchOp::Equal,
            PMatchOp::NotEqual => MatchOp::NotEqual,
            PMatchOp::Re(_) => MatchOp::Regex,
            PMatchOp::NotRe(_) => MatchOp::NotRegex,
        };
        out.push(LabelMatcher::new(m.name.clone(), op, m.value.clone()));
    }
    out
}

/// A key naming a selector's series, independent of offset, `@` and range.
pub fn selector_key(vs: &VectorSelector) -> String {
    let mut parts: Vec<String> = selector_matchers(vs)
        .iter()
        .map(|m| format!("{}{:?}{:?}", m.name, m.op, m.value))
        .collect();
    parts.sort();
    parts.join("\u{1}")
}

/// The `__name__` matchers of `info()`'s data label selector, which select
/// the info series (`target_info` by default).
pub fn info_matchers(selector: Option<&Expr>) -> Vec<LabelMatcher> {
    let mut out: Vec<LabelMatcher> = match selector {
        Some(Expr::VectorSelector(vs)) => selector_matchers(vs)
            .into_iter()
            .filter(|m| m.name == METRIC_NAME)
            .collect(),
        _ => Vec::new(),
    };
    if out.is_empty() {
        out.push(LabelMatcher::new(
            METRIC_NAME,
            MatchOp::Equal,
            "target_info",
        ));
    } else if !out
        .iter()
        .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::Regex))
    {
        // Only negative name matchers: they narrow the info metrics.
        out.push(LabelMatcher::new(METRIC_NAME, MatchOp::Regex, ".+_info"));
    }
    out
}

/// The data key of the info series selected for `info()`.
pub fn info_key(matchers: &[LabelMatcher]) -> String {
    let mut parts: Vec<String> = matchers
        .iter()
        .map(|m| format!("{}{:?}{:?}", m.name, m.op, m.value))
        .collect();
    parts.sort();
    format!("info\u{2}{}", parts.join("\u{1}"))
}

/// Walks `expr` as evaluated over `[start, end]` and records, for each
/// selector, the time range it reads.
pub(crate) fn plan(
    ctx: &Ctx,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
) -> HashMap<String, Selection> {
    let mut out = HashMap::new();
    walk(ctx, expr, start, end, step, &mut Walk::default(), &mut out);
    out
}

#[derive(Default, Clone)]
struct Walk {
    func: Option<String>,
    grouping: Option<(bool, Vec<String>)>,
}

fn walk(
    ctx: &Ctx,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
    w: &mut Walk,
    out: &mut HashMap<String, Selection>,
) {
    match expr {
        Expr::VectorSelector(vs) => add(ctx, vs, 0, start, end, step, w, out),
        Expr::MatrixSelector(ms) => add(ctx, &ms.vs, dur_ms(ms.range), start, end, step, w, out),
        Expr::Subquery(sq) => {
            let off = offset_ms(&sq.offset);
            let (s, e) = match at_ms(ctx, &sq.at) {
                Some(t) => (t, t),
                None => (start, end),
            };
            let range = dur_ms(sq.range);
            let sub_step = sq.step.map(dur_ms).unwrap_or(ctx.default_subquery_step_ms);
            walk(ctx, &sq.expr, s - off - range, e - off, sub_step, w, out);
        }
        Expr::Aggregate(a) => {
            let mut inner = w.clone();
            inner.grouping = a.modifier.as_ref().map(|m| {
                (
                    m.is_include(),
                    m.labels().labels.iter().map(|s| s.to_string()).collect(),
                )
            });
            walk(ctx, &a.expr, start, end, step, &mut inner, out);
            if let Some(p) = &a.param {
                walk(ctx, p, start, end, step, w, out);
            }
        }
        Expr::Call(c) if c.func.name == "info" => {
            let mut inner = w.clone();
            inner.func = Some("info".to_string());
            if let Some(a) = c.args.args.first() {
                walk(ctx, a, start, end, step, &mut inner, out);
            }
            let matchers = info_matchers(c.args.args.get(1).map(|b| b.as_ref()));
            let key = info_key(&matchers);
            let sel = out.entry(key).or_insert_with(|| Selection {
                matchers,
                hints: SelectHints {
                    start_ms: start - ctx.lookback_ms + 1,
                    end_ms: end,
                    step_ms: step,
                    func: Some("info".into()),
                    ..Default::default()
                },
            });
            sel.hints.start_ms = sel.hints.start_ms.min(start - ctx.lookback_ms + 1);
            sel.hints.end_ms = sel.hints.end_ms.max(end);
        }
        Expr::Call(c) => {
            let mut inner = w.clone();
            inner.func = Some(c.func.name.to_string());
            for a in &c.args.args {
                walk(ctx, a, start, end, step, &mut inner, out);
            }
        }
        Expr::Binary(b) => {
            walk(ctx, &b.lhs, start, end, step, w, out);
            walk(ctx, &b.rhs, start, end, step, w, out);
        }
        Expr::Paren(p) => walk(ctx, &p.expr, start, end, step, w, out),
        Expr::Unary(u) => walk(ctx, &u.expr, start, end, step, w, out),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

#[allow(clippy::too_many_arguments)]
fn add(
    ctx: &Ctx,
    vs: &VectorSelector,
    range: i64,
    start: i64,
    end: i64,
    step: i64,
    w: &Walk,
    out: &mut HashMap<String, Selection>,
) {
    let off = offset_ms(&vs.offset);
    let (s, e) = match at_ms(ctx, &vs.at) {
        Some(t) => (t, t),
        None => (start, end),
    };
    let back = if range > 0 { range } else { ctx.lookback_ms };
    // Windows are left-open; the first readable sample is one past this.
    let mut mint = s - off - back + 1;
    let mut maxt = e - off;
    // Extended selectors read around their window.
    if ext_of(&all_matchers(vs)).is_some() {
        mint -= ctx.lookback_ms;
        maxt += ctx.lookback_ms;
    }
    let key = selector_key(vs);
    match out.get_mut(&key) {
        Some(sel) => {
            sel.hints.start_ms = sel.hints.start_ms.min(mint);
            sel.hints.end_ms = sel.hints.end_ms.max(maxt);
            if sel.hints.func != w.func {
                sel.hints.func = None;
            }
            if sel.hints.grouping != w.grouping {
                sel.hints.grouping = None;
            }
            sel.hints.range_ms = sel.hints.range_ms.max(range);
        }
        None => {
            out.insert(
                key,
                Selection {
                    matchers: selector_matchers(vs),
                    hints: SelectHints {
                        start_ms: mint,
                        end_ms: maxt,
                        step_ms: step,
                        range_ms: range,
                        func: w.func.clone(),
                        grouping: w.grouping.clone(),
                    },
                },
            );
        }
    }
}

/// What one evaluation step of one expression costs, in samples: its
/// timestamp and its per-step list of values take about as much memory as
/// two samples, whatever the data.
const STEP_COST: u128 = 2;

/// The memory, in samples, of the evaluation grids `expr` needs over
/// `[start, end]` (`step` 0 for an instant query), before any data: every
/// expression costs [`STEP_COST`] per step it is evaluated at, and a
/// subquery evaluates its inner expression at every step of its own grid
/// (which nested subqueries widen). The engine refuses a query whose grids
/// alone exceed its sample limit, before fetching or allocating anything.
pub(crate) fn grid_cost(ctx: &Ctx, expr: &Expr, start: i64, end: i64, step: i64) -> u128 {
    let steps = if step > 0 && end >= start {
        ((end as i128 - start as i128) / step as i128 + 1) as u128
    } else {
        1
    };
    let mut cost = 0u128;
    // (expression, first and last evaluation time, steps); the tree is at
    // most the parse limit deep, but a stack keeps this off the call stack.
    let mut todo: Vec<(&Expr, i64, i64, u128)> = vec![(expr, start, end, steps)];
    while let Some((e, first, last, n)) = todo.pop() {
        cost = cost.saturating_add(n.saturating_mul(STEP_COST));
        match e {
            Expr::Subquery(sq) => {
                let off = offset_ms(&sq.offset);
                let (f, l) = match at_ms(ctx, &sq.at) {
                    Some(t) => (t.saturating_sub(off), t.saturating_sub(off)),
                    None => (first.saturating_sub(off), last.saturating_sub(off)),
                };
                let range = dur_ms(sq.range);
                let sub_step = sq.step.map(dur_ms).unwrap_or(ctx.default_subquery_step_ms);
                if sub_step <= 0 {
                    continue;
                }
                let lower = f.saturating_sub(range);
                let mut s = sub_step.saturating_mul(lower / sub_step);
                if s <= lower {
                    s = s.saturating_add(sub_step);
                }
                let inner = if l >= s {
                    ((l as i128 - s as i128) / sub_step as i128 + 1) as u128
                } else {
                    0
                };
                todo.push((&sq.expr, s, l, inner));
            }
            Expr::Aggregate(a) => {
                todo.push((&a.expr, first, last, n));
                if let Some(p) = &a.param {
                    todo.push((p, first, last, n));
                }
            }
            Expr::Call(c) => todo.extend(c.args.args.iter().map(|a| (a.as_ref(), first, last, n))),
            Expr::Binary(b) => {
                todo.push((&b.lhs, first, last, n));
                todo.push((&b.rhs, first, last, n));
            }
            Expr::Paren(p) => todo.push((&p.expr, first, last, n)),
            Expr::Unary(u) => todo.push((&u.expr, first, last, n)),
            Expr::VectorSelector(_)
            | Expr::MatrixSelector(_)
            | Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::Extension(_) => {}
        }
    }
    cost
}
