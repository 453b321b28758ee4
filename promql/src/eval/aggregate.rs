//! Aggregation operators (`sum`, `avg`, `topk`, `quantile`, ...).

use std::collections::HashMap;

use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use super::functions::format_go_float;
use super::{Evaluator, StepVectors, Val};
use crate::error::QueryError;
use crate::labels::{Label, Labels};

/// Neumaier-compensated addition, as Prometheus's `kahanSumInc`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The labels a series keeps in its group.
pub(crate) fn group_labels(l: &Labels, modifier: &Option<LabelModifier>) -> Labels {
    match modifier {
        None => Labels::default(),
        Some(LabelModifier::Include(ls)) => Labels::new(
            l.iter()
                .filter(|x| ls.labels.contains(&x.name))
                .cloned()
                .collect(),
        ),
        Some(LabelModifier::Exclude(ls)) => Labels::new(
            l.iter()
                .filter(|x| !super::binary::is_metadata(&x.name) && !ls.labels.contains(&x.name))
                .cloned()
                .collect(),
        ),
    }
}

#[derive(Clone, Copy, Default)]
struct Acc {
    count: f64,
    value: f64,
    comp: f64,
    mean: f64,
    incremental: bool,
}

impl Evaluator<'_> {
    pub(crate) fn eval_aggregate(&self, a: &AggregateExpr) -> Result<StepVectors, QueryError> {
        let op = a.op.to_string();
        let input = self.eval_vector(&a.expr)?;
        // Group index of each input series.
        let mut index: HashMap<Labels, u32> = HashMap::new();
        let mut groups: Vec<Labels> = Vec::new();
        let group_of: Vec<u32> = input
            .labels
            .iter()
            .map(|l| {
                let g = group_labels(l, &a.modifier);
                *index.entry(g.clone()).or_insert_with(|| {
                    groups.push(g);
                    (groups.len() - 1) as u32
                })
            })
            .collect();
        match op.as_str() {
            "topk" | "bottomk" | "limitk" | "limit_ratio" => {
                let param = self.param_scalar(a.param.as_deref(), &op)?;
                self.aggregate_k(&op, input, &group_of, groups.len(), &param)
            }
            "quantile" => {
                let param = self.param_scalar(a.param.as_deref(), &op)?;
                self.aggregate_quantile(input, &group_of, groups, &param)
            }
            "count_values" => {
                let name = match a.param.as_deref().map(|p| self.eval(p)).transpose()? {
                    Some(Val::Str(s)) => s,
                    _ => return Err(QueryError::exec("count_values needs a string parameter")),
                };
                if !valid_label_name(&name) {
                    return Err(QueryError::exec(format!("invalid label name {name:?}")));
                }
                count_values(input, &group_of, &groups, &name)
            }
            _ => self.aggregate_simple(&op, input, &group_of, groups),
        }
    }

    fn param_scalar(&self, p: Option<&Expr>, op: &str) -> Result<Vec<f64>, QueryError> {
        match p {
            Some(p) => self.eval_scalar(p),
            None => Err(QueryError::exec(format!("{op} needs a parameter"))),
        }
    }

    fn aggregate_simple(
        &self,
        op: &str,
        input: StepVectors,
        group_of: &[u32],
        groups: Vec<Labels>,
    ) -> Result<StepVectors, QueryError> {
        let mut accs: Vec<Option<Acc>> = vec![None; groups.len()];
        let mut order: Vec<u32> = Vec::new();
        let mut steps = Vec::with_capacity(input.steps.len());
        for step in &input.steps {
            order.clear();
            for (id, f) in step {
                let f = *f;
                let g = group_of[*id as usize];
                let slot = &mut accs[g as usize];
                let Some(acc) = slot else {
                    order.push(g);
                    *slot = Some(Acc {
                        count: 1.0,
                        value: match op {
                            "count" | "group" => 1.0,
                            "stddev" | "stdvar" if f.is_finite() => 0.0,
                            "stddev" | "stdvar" => f64::NAN,
                            _ => f,
                        },
                        comp: 0.0,
                        mean: f,
                        incremental: false,
                    });
                    continue;
                };
                acc.count += 1.0;
                match op {
                    "sum" => (acc.value, acc.comp) = kahan_inc(f, acc.value, acc.comp),
                    "avg" => avg_inc(acc, f),
                    "count" => acc.value += 1.0,
                    "group" => {}
                    "min" => {
                        if acc.value > f || acc.value.is_nan() {
                            acc.value = f;
                        }
                    }
                    "max" => {
                        if acc.value < f || acc.value.is_nan() {
                            acc.value = f;
                        }
                    }
                    "stddev" | "stdvar" => {
                        let delta = f - acc.mean;
                        acc.mean += delta / acc.count;
                        acc.value += delta * (f - acc.mean);
                    }
                    other => {
                        return Err(QueryError::exec(format!(
                            "unsupported aggregation operator {other:?}"
                        )));
                    }
                }
            }
            let mut out = Vec::with_capacity(order.len());
            for g in &order {
                let Some(acc) = accs[*g as usize].take() else {
                    continue;
                };
                let v = match op {
                    "sum" => acc.value + acc.comp,
                    "avg" if acc.incremental => acc.mean + acc.comp,
                    "avg" => acc.value / acc.count + acc.comp / acc.count,
                    "stdvar" => acc.value / acc.count,
                    "stddev" => (acc.value / acc.count).sqrt(),
                    _ => acc.value,
                };
                out.push((*g, v));
            }
            steps.push(out);
        }
        Ok(StepVectors {
            labels: groups,
            steps,
        }
        .compact())
    }

    fn aggregate_k(
        &self,
        op: &str,
        input: StepVectors,
        group_of: &[u32],
        ngroups: usize,
        param: &[f64],
    ) -> Result<StepVectors, QueryError> {
        let mut steps = Vec::with_capacity(input.steps.len());
        let mut members: Vec<Vec<(u32, f64)>> = vec![Vec::new(); ngroups];
        let mut order: Vec<u32> = Vec::new();
        for (si, step) in input.steps.iter().enumerate() {
            let p = param.get(si).copied().unwrap_or(f64::NAN);
            if p.is_nan() {
                return Err(QueryError::exec(if op == "limit_ratio" {
                    "Ratio value is NaN"
                } else {
                    "Parameter value is NaN"
                }));
            }
            if op == "limit_ratio" && !(-1.0..=1.0).contains(&p) {
                return Err(QueryError::exec(format!(
                    "limit_ratio: ratio must be between -1 and 1, got {}",
                    format_go_float(p)
                )));
            }
            order.clear();
            for (id, f) in step {
                let g = group_of[*id as usize] as usize;
                if members[g].is_empty() {
                    order.push(g as u32);
                }
                members[g].push((*id, *f));
            }
            let k = if op == "limit_ratio" || p >= 9.223372036854776e18 {
                i64::MAX
            } else {
                p as i64
            };
            let mut out = Vec::new();
            for g in &order {
                let mut m = std::mem::take(&mut members[*g as usize]);
                match op {
                    "topk" => m.sort_by(|a, b| desc_nan_last(a.1, b.1)),
                    "bottomk" => m.sort_by(|a, b| asc_nan_last(a.1, b.1)),
                    "limit_ratio" => {
                        m.retain(|(id, _)| ratio_keeps(&input.labels[*id as usize], p));
                    }
                    _ => {}
                }
                if k >= 1 {
                    out.extend(m.iter().take(k.min(m.len() as i64) as usize).copied());
                }
            }
            steps.push(out);
        }
        Ok(StepVectors {
            labels: input.labels,
            steps,
        }
        .compact())
    }

    fn aggregate_quantile(
        &self,
        input: StepVectors,
        group_of: &[u32],
        groups: Vec<Labels>,
        param: &[f64],
    ) -> Result<StepVectors, QueryError> {
        let mut steps = Vec::with_capacity(input.steps.len());
        let mut members: Vec<Vec<f64>> = vec![Vec::new(); groups.len()];
        let mut order: Vec<u32> = Vec::new();
        for (si, step) in input.steps.iter().enumerate() {
            let q = param.get(si).copied().unwrap_or(f64::NAN);
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                self.ctx.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}",
                    format_go_float(q)
                ));
            }
            order.clear();
            for (id, f) in step {
                let g = group_of[*id as usize] as usize;
                if members[g].is_empty() {
                    order.push(g as u32);
                }
                members[g].push(*f);
            }
            let mut out = Vec::new();
            for g in &order {
                let mut m = std::mem::take(&mut members[*g as usize]);
                out.push((*g, quantile(q, &mut m)));
            }
            steps.push(out);
        }
        Ok(StepVectors {
            labels: groups,
            steps,
        }
        .compact())
    }
}

fn avg_inc(acc: &mut Acc, f: f64) {
    if !acc.incremental {
        let (nv, nc) = kahan_inc(f, acc.value, acc.comp);
        if !nv.is_infinite() {
            acc.value = nv;
            acc.comp = nc;
            return;
        }
        acc.incremental = true;
        acc.mean = acc.value / (acc.count - 1.0);
        acc.comp /= acc.count - 1.0;
    }
    let q = (acc.count - 1.0) / acc.count;
    let (m, c) = kahan_inc(f / acc.count, q * acc.mean, q * acc.comp);
    acc.mean = m;
    acc.comp = c;
}

fn desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

fn asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Prometheus's `quantile`: linear interpolation between closest ranks.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts first, as Go's sort.Float64s does.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    let lo = values.get(lower as usize).copied().unwrap_or(f64::NAN);
    let hi = values.get(upper as usize).copied().unwrap_or(f64::NAN);
    lo * (1.0 - weight) + hi * weight
}

/// Whether `limit_ratio(r, ...)` keeps a series: a stable sample by label
/// hash, as Prometheus does.
fn ratio_keeps(l: &Labels, r: f64) -> bool {
    let mut b = Vec::new();
    for x in l.iter() {
        b.extend_from_slice(x.name.as_bytes());
        b.push(0xff);
        b.extend_from_slice(x.value.as_bytes());
        b.push(0xff);
    }
    let h = xxhash_rust::xxh64::xxh64(&b, 0);
    let ratio = h as f64 / u64::MAX as f64;
    if r >= 0.0 {
        ratio < r
    } else {
        ratio >= 1.0 + r
    }
}

pub(crate) fn valid_label_name(s: &str) -> bool {
    !s.is_empty() && std::str::from_utf8(s.as_bytes()).is_ok()
}

fn count_values(
    input: StepVectors,
    group_of: &[u32],
    groups: &[Labels],
    name: &str,
) -> Result<StepVectors, QueryError> {
    let mut index: HashMap<Labels, u32> = HashMap::new();
    let mut table: Vec<Labels> = Vec::new();
    let mut steps = Vec::with_capacity(input.steps.len());
    for step in &input.steps {
        let mut counts: Vec<(u32, f64)> = Vec::new();
        let mut pos: HashMap<u32, usize> = HashMap::new();
        for (id, f) in step {
            let g = group_of[*id as usize] as usize;
            let mut l = groups[g].clone().into_vec();
            l.retain(|x| x.name != name);
            l.push(Label::new(name, format_go_float(*f)));
            let l = Labels::new(l);
            let nid = *index.entry(l.clone()).or_insert_with(|| {
                table.push(l);
                (table.len() - 1) as u32
            });
            match pos.get(&nid) {
                Some(p) => counts[*p].1 += 1.0,
                None => {
                    pos.insert(nid, counts.len());
                    counts.push((nid, 1.0));
                }
            }
        }
        steps.push(counts);
    }
    Ok(StepVectors {
        labels: table,
        steps,
    })
}
