//! Binary operators: arithmetic, comparisons and set operators, with
//! Prometheus's vector matching.

use std::collections::HashMap;

use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::{Evaluator, StepVectors, Val};
use crate::error::QueryError;
use crate::labels::{Labels, METRIC_NAME};

pub(crate) fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

pub(crate) fn arith(op: &str, l: f64, r: f64) -> f64 {
    match op {
        "+" => l + r,
        "-" => l - r,
        "*" => l * r,
        "/" => l / r,
        "%" => l % r,
        "^" => l.powf(r),
        "atan2" => l.atan2(r),
        _ => f64::NAN,
    }
}

pub(crate) fn compare(op: &str, l: f64, r: f64) -> bool {
    match op {
        "==" => l == r,
        "!=" => l != r,
        ">" => l > r,
        "<" => l < r,
        ">=" => l >= r,
        "<=" => l <= r,
        _ => false,
    }
}

/// The metric name and the `__type__`/`__unit__` labels that go with it.
pub(crate) fn is_metadata(name: &str) -> bool {
    name == METRIC_NAME || name == "__type__" || name == "__unit__"
}

/// The labels two series are matched on.
fn match_labels(l: &Labels, on: bool, names: &[String]) -> Labels {
    Labels::new(
        l.iter()
            .filter(|x| {
                let listed = names.contains(&x.name);
                if on {
                    listed
                } else {
                    !listed && !is_metadata(&x.name)
                }
            })
            .cloned()
            .collect(),
    )
}

struct Matching {
    on: bool,
    names: Vec<String>,
    card: VectorMatchCardinality,
    return_bool: bool,
    /// `fill_left` / `fill_right` values (experimental Prometheus 3).
    fill_lhs: Option<f64>,
    fill_rhs: Option<f64>,
}

fn matching(m: &Option<BinModifier>) -> Matching {
    match m {
        None => Matching {
            on: false,
            names: Vec::new(),
            card: VectorMatchCardinality::OneToOne,
            return_bool: false,
            fill_lhs: None,
            fill_rhs: None,
        },
        Some(m) => {
            let (on, names) = match &m.matching {
                Some(LabelModifier::Include(ls)) => (true, ls.labels.clone()),
                Some(LabelModifier::Exclude(ls)) => (false, ls.labels.clone()),
                None => (false, Vec::new()),
            };
            Matching {
                on,
                names,
                card: m.card.clone(),
                return_bool: m.return_bool,
                fill_lhs: m.fill_values.lhs,
                fill_rhs: m.fill_values.rhs,
            }
        }
    }
}

impl Evaluator<'_> {
    pub(crate) fn eval_binary(&self, b: &BinaryExpr) -> Result<Val, QueryError> {
        let op = b.op.to_string();
        let m = matching(&b.modifier);
        let lhs = self.eval(&b.lhs)?;
        let rhs = self.eval(&b.rhs)?;
        let cmp = is_comparison(&op);
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
                l.iter()
                    .zip(r.iter())
                    .map(|(a, b)| {
                        if cmp {
                            if compare(&op, *a, *b) { 1.0 } else { 0.0 }
                        } else {
                            arith(&op, *a, *b)
                        }
                    })
                    .collect(),
            )),
            (Val::Vector(v), Val::Scalar(s)) => Ok(Val::Vector(vector_scalar(
                &op,
                v,
                &s,
                false,
                m.return_bool,
            )?)),
            (Val::Scalar(s), Val::Vector(v)) => {
                Ok(Val::Vector(vector_scalar(&op, v, &s, true, m.return_bool)?))
            }
            (Val::Vector(l), Val::Vector(r)) => {
                let out = match op.as_str() {
                    "and" | "or" | "unless" => set_op(&op, l, r, &m)?,
                    _ => vector_vector(&op, l, r, &m)?,
                };
                Ok(Val::Vector(out))
            }
            (l, r) => Err(QueryError::exec(format!(
                "binary expression must contain only scalar and instant vector types, got {} and {}",
                l.type_name(),
                r.type_name()
            ))),
        }
    }
}

fn vector_scalar(
    op: &str,
    mut v: StepVectors,
    s: &[f64],
    swap: bool,
    return_bool: bool,
) -> Result<StepVectors, QueryError> {
    let cmp = is_comparison(op);
    for (si, step) in v.steps.iter_mut().enumerate() {
        let sv = s.get(si).copied().unwrap_or(f64::NAN);
        step.retain_mut(|(_, x)| {
            let (a, b) = if swap { (sv, *x) } else { (*x, sv) };
            if cmp {
                let keep = compare(op, a, b);
                if return_bool {
                    *x = if keep { 1.0 } else { 0.0 };
                    true
                } else {
                    keep
                }
            } else {
                *x = arith(op, a, b);
                true
            }
        });
    }
    if !cmp || return_bool {
        v.drop_name()
    } else {
        Ok(v.compact())
    }
}

/// Interns the match signature of every series on both sides.
fn signatures(l: &StepVectors, r: &StepVectors, m: &Matching) -> (Vec<u32>, Vec<u32>, Vec<Labels>) {
    let mut index: HashMap<Labels, u32> = HashMap::new();
    let mut table = Vec::new();
    let mut sig = |x: &Labels| {
        let k = match_labels(x, m.on, &m.names);
        *index.entry(k.clone()).or_insert_with(|| {
            table.push(k);
            (table.len() - 1) as u32
        })
    };
    let ls = l.labels.iter().map(&mut sig).collect();
    let rs = r.labels.iter().map(&mut sig).collect();
    (ls, rs, table)
}

fn set_op(
    op: &str,
    l: StepVectors,
    r: StepVectors,
    m: &Matching,
) -> Result<StepVectors, QueryError> {
    let (lsig, rsig, table) = signatures(&l, &r, m);
    let offset = l.labels.len() as u32;
    let mut present = vec![usize::MAX; table.len()];
    let mut steps = Vec::with_capacity(l.steps.len());
    for (si, (ls, rs)) in l.steps.iter().zip(r.steps.iter()).enumerate() {
        let out: Vec<(u32, f64)> = match op {
            "and" => {
                for (id, _) in rs {
                    present[rsig[*id as usize] as usize] = si;
                }
                ls.iter()
                    .filter(|(id, _)| present[lsig[*id as usize] as usize] == si)
                    .copied()
                    .collect()
            }
            "unless" => {
                for (id, _) in rs {
                    present[rsig[*id as usize] as usize] = si;
                }
                ls.iter()
                    .filter(|(id, _)| present[lsig[*id as usize] as usize] != si)
                    .copied()
                    .collect()
            }
            _ => {
                for (id, _) in ls {
                    present[lsig[*id as usize] as usize] = si;
                }
                let mut out = ls.clone();
                out.extend(
                    rs.iter()
                        .filter(|(id, _)| present[rsig[*id as usize] as usize] != si)
                        .map(|(id, v)| (id + offset, *v)),
                );
                out
            }
        };
        steps.push(out);
    }
    let mut labels = l.labels;
    if op == "or" {
        labels.extend(r.labels);
        return StepVectors { labels, steps }
            .relabel(Labels::clone)
            .map(StepVectors::compact);
    }
    Ok(StepVectors { labels, steps }.compact())
}

/// Result label sets of a vector-vector operation, interned.
struct Results {
    index: HashMap<Labels, u32>,
    labels: Vec<Labels>,
    /// Result id by (lhs id or -1, rhs id or -1).
    cache: HashMap<(i64, i64), u32>,
    seen: Vec<usize>,
}

impl Results {
    fn id(&mut self, key: (i64, i64), make: impl FnOnce() -> Labels) -> u32 {
        if let Some(id) = self.cache.get(&key) {
            return *id;
        }
        let l = make();
        let id = match self.index.get(&l) {
            Some(id) => *id,
            None => {
                let id = self.labels.len() as u32;
                self.index.insert(l.clone(), id);
                self.labels.push(l);
                id
            }
        };
        self.cache.insert(key, id);
        id
    }

    /// Records that result `id` is present at step `si`; twice is an error.
    fn mark(&mut self, id: u32, si: usize) -> Result<(), QueryError> {
        if self.seen.len() <= id as usize {
            self.seen.resize(id as usize + 1, usize::MAX);
        }
        if self.seen[id as usize] == si {
            return Err(QueryError::exec(
                "vector cannot contain metrics with the same labelset",
            ));
        }
        self.seen[id as usize] = si;
        Ok(())
    }
}

fn apply(op: &str, a: f64, b: f64, return_bool: bool) -> (f64, bool) {
    if is_comparison(op) {
        let keep = compare(op, a, b);
        if return_bool {
            (if keep { 1.0 } else { 0.0 }, true)
        } else {
            (a, keep)
        }
    } else {
        (arith(op, a, b), true)
    }
}

fn vector_vector(
    op: &str,
    l: StepVectors,
    r: StepVectors,
    m: &Matching,
) -> Result<StepVectors, QueryError> {
    let swapped = matches!(m.card, VectorMatchCardinality::OneToMany(_));
    let (l, r) = if swapped { (r, l) } else { (l, r) };
    let include: Vec<String> = match &m.card {
        VectorMatchCardinality::ManyToOne(ls) | VectorMatchCardinality::OneToMany(ls) => {
            ls.labels.clone()
        }
        _ => Vec::new(),
    };
    let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne);
    let (lsig, rsig, sigs) = signatures(&l, &r, m);
    let mut res = Results {
        index: HashMap::new(),
        labels: Vec::new(),
        cache: HashMap::new(),
        seen: Vec::new(),
    };
    let mut right_at: Vec<(usize, u32, f64)> = vec![(usize::MAX, 0, 0.0); sigs.len()];
    let mut left_hit: Vec<usize> = vec![usize::MAX; sigs.len()];
    let mut matched: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut steps = Vec::with_capacity(l.steps.len());
    let order = |lv: f64, rv: f64| if swapped { (rv, lv) } else { (lv, rv) };
    for (si, (ls, rs)) in l.steps.iter().zip(r.steps.iter()).enumerate() {
        let mut out = Vec::new();
        let fill_l = m.fill_lhs.filter(|_| !rs.is_empty());
        let fill_r = m.fill_rhs.filter(|_| !ls.is_empty());
        if (ls.is_empty() || rs.is_empty()) && fill_l.is_none() && fill_r.is_none() {
            steps.push(out);
            continue;
        }
        for (rid, rv) in rs {
            let sig = rsig[*rid as usize] as usize;
            if right_at[sig].0 == si {
                let one_side = if swapped { "left" } else { "right" };
                let dup = &r.labels[right_at[sig].1 as usize];
                return Err(QueryError::exec(format!(
                    "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    sigs[sig], one_side, r.labels[*rid as usize], dup
                )));
            }
            right_at[sig] = (si, *rid, *rv);
        }
        matched.clear();
        for (lid, lv) in ls {
            let sig = lsig[*lid as usize];
            left_hit[sig as usize] = si;
            let (at, rid, rv) = right_at[sig as usize];
            let (rid, rv) = if at == si {
                (Some(rid), rv)
            } else if let Some(f) = fill_r {
                (None, f)
            } else {
                continue;
            };
            let (a, b) = order(*lv, rv);
            let (value, keep) = apply(op, a, b, m.return_bool);
            let key = (*lid as i64, rid.map(|x| x as i64).unwrap_or(-1));
            let res_id = res.id(key, || {
                let empty = Labels::default();
                let rl = rid.map(|x| &r.labels[x as usize]).unwrap_or(&empty);
                result_metric(&l.labels[*lid as usize], rl, op, m, &include, one_to_one)
            });
            let seen = matched.entry(sig).or_default();
            if one_to_one {
                if !seen.is_empty() {
                    return Err(QueryError::exec(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
            } else if seen.contains(&res_id) {
                return Err(QueryError::exec(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
            seen.push(res_id);
            if !keep {
                continue;
            }
            res.mark(res_id, si)?;
            out.push((res_id, value));
        }
        if let Some(f) = fill_l {
            // "One" side series no lhs series matched: the match group's
            // labels, with the lhs value filled in.
            for (rid, rv) in rs {
                let sig = rsig[*rid as usize];
                if left_hit[sig as usize] == si {
                    continue;
                }
                let (a, b) = order(f, *rv);
                let (value, keep) = apply(op, a, b, m.return_bool);
                if !keep {
                    continue;
                }
                let res_id = res.id((-1, *rid as i64), || {
                    let mut l = sigs[sig as usize].clone();
                    for n in &include {
                        if let Some(v) = r.labels[*rid as usize].get(n) {
                            l.set(n, v.to_string());
                        }
                    }
                    l
                });
                res.mark(res_id, si)?;
                out.push((res_id, value));
            }
        }
        steps.push(out);
    }
    Ok(StepVectors {
        labels: res.labels,
        steps,
    })
}

fn result_metric(
    l: &Labels,
    r: &Labels,
    op: &str,
    m: &Matching,
    include: &[String],
    one_to_one: bool,
) -> Labels {
    let mut out = l.clone();
    if !is_comparison(op) || m.return_bool {
        out.drop_metric_name();
    }
    if one_to_one {
        if m.on {
            out = Labels::new(
                out.iter()
                    .filter(|x| m.names.contains(&x.name))
                    .cloned()
                    .collect(),
            );
        } else {
            for n in &m.names {
                out.remove(n);
            }
        }
    }
    for n in include {
        match r.get(n) {
            Some(v) => out.set(n, v.to_string()),
            None => out.remove(n),
        }
    }
    out
}
