//! Comparing query results, and building the expected querier answer from the
//! answers of the individual Prometheus servers.
//!
//! Equality: series are compared as sets keyed by label set, timestamps must be
//! equal exactly, values within 1e-9 relative (plus 1e-12 absolute, for values
//! that sum to about zero in a different order), NaN equals NaN, infinities
//! equal themselves.

use std::collections::BTreeMap;

use anyhow::bail;

use crate::labels::{LabelSet, render};
use crate::promjson::{Point, QueryData};

/// Relative tolerance for values.
pub const REL_TOLERANCE: f64 = 1e-9;
/// Absolute tolerance for values near zero.
pub const ABS_TOLERANCE: f64 = 1e-12;

/// Float equality as documented in the module.
pub fn float_eq(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    let diff = (a - b).abs();
    diff <= ABS_TOLERANCE || diff <= REL_TOLERANCE * a.abs().max(b.abs())
}

const MAX_DIFFS: usize = 12;

fn push_diff(diffs: &mut Vec<String>, total: &mut usize, msg: String) {
    *total += 1;
    if diffs.len() < MAX_DIFFS {
        diffs.push(msg);
    }
}

/// `Ok(())` if `got` equals `expected`; otherwise a readable list of differences.
pub fn compare(expected: &QueryData, got: &QueryData) -> Result<(), String> {
    let mut diffs = Vec::new();
    let mut total = 0usize;
    match (expected, got) {
        (QueryData::Vector(e), QueryData::Vector(g)) => {
            for (ls, ep) in e {
                match g.get(ls) {
                    None => push_diff(
                        &mut diffs,
                        &mut total,
                        format!("missing series {} (expected {ep:?})", render(ls)),
                    ),
                    Some(gp) if gp.0 != ep.0 || !float_eq(gp.1, ep.1) => push_diff(
                        &mut diffs,
                        &mut total,
                        format!("series {}: expected {ep:?}, got {gp:?}", render(ls)),
                    ),
                    Some(_) => {}
                }
            }
            for (ls, gp) in g {
                if !e.contains_key(ls) {
                    push_diff(
                        &mut diffs,
                        &mut total,
                        format!("unexpected series {} = {gp:?}", render(ls)),
                    );
                }
            }
        }
        (QueryData::Matrix(e), QueryData::Matrix(g)) => {
            for (ls, ep) in e {
                match g.get(ls) {
                    None => push_diff(
                        &mut diffs,
                        &mut total,
                        format!("missing series {} ({} points)", render(ls), ep.len()),
                    ),
                    Some(gp) => compare_points(ls, ep, gp, &mut diffs, &mut total),
                }
            }
            for (ls, gp) in g {
                if !e.contains_key(ls) {
                    push_diff(
                        &mut diffs,
                        &mut total,
                        format!(
                            "unexpected series {} ({} points, first {:?})",
                            render(ls),
                            gp.len(),
                            gp.first()
                        ),
                    );
                }
            }
        }
        (QueryData::Scalar(e), QueryData::Scalar(g)) => {
            if e.0 != g.0 || !float_eq(e.1, g.1) {
                push_diff(
                    &mut diffs,
                    &mut total,
                    format!("scalar: expected {e:?}, got {g:?}"),
                );
            }
        }
        (QueryData::String(et, es), QueryData::String(gt, gs)) => {
            if et != gt || es != gs {
                push_diff(
                    &mut diffs,
                    &mut total,
                    format!("string: expected ({et}, {es:?}), got ({gt}, {gs:?})"),
                );
            }
        }
        (e, g) => {
            push_diff(
                &mut diffs,
                &mut total,
                format!("result type: expected {}, got {}", e.kind(), g.kind()),
            );
        }
    }
    if total == 0 {
        Ok(())
    } else {
        let more = if total > diffs.len() {
            format!("\n  ... and {} more", total - diffs.len())
        } else {
            String::new()
        };
        Err(format!(
            "{total} difference(s) (expected {} series/{} points, got {} series/{} points):\n  {}{more}",
            expected.series_count(),
            expected.point_count(),
            got.series_count(),
            got.point_count(),
            diffs.join("\n  ")
        ))
    }
}

fn compare_points(
    ls: &LabelSet,
    e: &[Point],
    g: &[Point],
    diffs: &mut Vec<String>,
    total: &mut usize,
) {
    let em: BTreeMap<i64, f64> = e.iter().copied().collect();
    let gm: BTreeMap<i64, f64> = g.iter().copied().collect();
    if em.len() != e.len() || gm.len() != g.len() {
        push_diff(
            diffs,
            total,
            format!("series {}: duplicate timestamps", render(ls)),
        );
    }
    for (t, ev) in &em {
        match gm.get(t) {
            None => push_diff(
                diffs,
                total,
                format!(
                    "series {}: missing point at {t} (expected {ev})",
                    render(ls)
                ),
            ),
            Some(gv) if !float_eq(*ev, *gv) => push_diff(
                diffs,
                total,
                format!("series {} at {t}: expected {ev}, got {gv}", render(ls)),
            ),
            Some(_) => {}
        }
    }
    for (t, gv) in &gm {
        if !em.contains_key(t) {
            push_diff(
                diffs,
                total,
                format!("series {}: unexpected point at {t} = {gv}", render(ls)),
            );
        }
    }
}

/// Add `extra` labels to every series, as Prometheus adds external labels on
/// remote read: a label the series already has is kept as is.
pub fn add_labels(d: QueryData, extra: &LabelSet) -> QueryData {
    let relabel = |mut ls: LabelSet| {
        for (k, v) in extra {
            ls.entry(k.clone()).or_insert_with(|| v.clone());
        }
        ls
    };
    match d {
        QueryData::Vector(m) => {
            QueryData::Vector(m.into_iter().map(|(k, v)| (relabel(k), v)).collect())
        }
        QueryData::Matrix(m) => {
            QueryData::Matrix(m.into_iter().map(|(k, v)| (relabel(k), v)).collect())
        }
        other => other,
    }
}

/// Union of per-cluster results whose series are disjoint (after external labels).
pub fn union(parts: Vec<QueryData>) -> anyhow::Result<QueryData> {
    let mut iter = parts.into_iter();
    let Some(mut acc) = iter.next() else {
        bail!("union of nothing");
    };
    for part in iter {
        match (&mut acc, part) {
            (QueryData::Vector(a), QueryData::Vector(b)) => {
                for (k, v) in b {
                    if a.insert(k.clone(), v).is_some() {
                        bail!("series {} in more than one cluster", render(&k));
                    }
                }
            }
            (QueryData::Matrix(a), QueryData::Matrix(b)) => {
                for (k, v) in b {
                    if a.insert(k.clone(), v).is_some() {
                        bail!("series {} in more than one cluster", render(&k));
                    }
                }
            }
            (a, b) => bail!("cannot union {} with {}", a.kind(), b.kind()),
        }
    }
    Ok(acc)
}

/// How per-cluster aggregates combine into the global one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// sum of sums; also count = sum of counts.
    Sum,
    /// max of maxes.
    Max,
    /// min of mins.
    Min,
}

impl Combine {
    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Combine::Sum => a + b,
            Combine::Max => {
                if a.is_nan() || b > a {
                    b
                } else {
                    a
                }
            }
            Combine::Min => {
                if a.is_nan() || b < a {
                    b
                } else {
                    a
                }
            }
        }
    }
}

/// Combine per-cluster aggregation results series by series (same label set)
/// and timestamp by timestamp; a cluster without a point contributes nothing.
pub fn combine(parts: Vec<QueryData>, op: Combine) -> anyhow::Result<QueryData> {
    let mut iter = parts.into_iter();
    let Some(mut acc) = iter.next() else {
        bail!("combine of nothing");
    };
    for part in iter {
        acc = match (acc, part) {
            (QueryData::Vector(mut a), QueryData::Vector(b)) => {
                for (k, (t, v)) in b {
                    match a.get_mut(&k) {
                        Some(p) => {
                            if p.0 != t {
                                bail!("clusters disagree on the timestamp of {}", render(&k));
                            }
                            p.1 = op.apply(p.1, v);
                        }
                        None => {
                            a.insert(k, (t, v));
                        }
                    }
                }
                QueryData::Vector(a)
            }
            (QueryData::Matrix(a), QueryData::Matrix(b)) => {
                let mut merged: BTreeMap<LabelSet, BTreeMap<i64, f64>> = a
                    .into_iter()
                    .map(|(k, pts)| (k, pts.into_iter().collect()))
                    .collect();
                for (k, pts) in b {
                    let series = merged.entry(k).or_default();
                    for (t, v) in pts {
                        series
                            .entry(t)
                            .and_modify(|x| *x = op.apply(*x, v))
                            .or_insert(v);
                    }
                }
                QueryData::Matrix(
                    merged
                        .into_iter()
                        .map(|(k, pts)| (k, pts.into_iter().collect()))
                        .collect(),
                )
            }
            (QueryData::Scalar(a), QueryData::Scalar(b)) => {
                if a.0 != b.0 {
                    bail!("scalar timestamps differ");
                }
                QueryData::Scalar((a.0, op.apply(a.1, b.1)))
            }
            (a, b) => bail!("cannot combine {} with {}", a.kind(), b.kind()),
        };
    }
    Ok(acc)
}

/// Divide `num` by `den` point by point (same label sets and timestamps), e.g.
/// avg = (sum of sums) / (sum of counts).
pub fn divide(num: &QueryData, den: &QueryData) -> anyhow::Result<QueryData> {
    match (num, den) {
        (QueryData::Vector(n), QueryData::Vector(d)) => {
            let mut out = BTreeMap::new();
            for (k, (t, v)) in n {
                let Some((dt, dv)) = d.get(k) else {
                    bail!("no denominator for {}", render(k));
                };
                if dt != t {
                    bail!("timestamps differ for {}", render(k));
                }
                out.insert(k.clone(), (*t, v / dv));
            }
            if d.len() != n.len() {
                bail!("numerator and denominator have different series");
            }
            Ok(QueryData::Vector(out))
        }
        (QueryData::Matrix(n), QueryData::Matrix(d)) => {
            let mut out = BTreeMap::new();
            for (k, pts) in n {
                let Some(dpts) = d.get(k) else {
                    bail!("no denominator for {}", render(k));
                };
                let dm: BTreeMap<i64, f64> = dpts.iter().copied().collect();
                let mut o = Vec::with_capacity(pts.len());
                for (t, v) in pts {
                    let Some(dv) = dm.get(t) else {
                        bail!("no denominator for {} at {t}", render(k));
                    };
                    o.push((*t, v / dv));
                }
                out.insert(k.clone(), o);
            }
            if d.len() != n.len() {
                bail!("numerator and denominator have different series");
            }
            Ok(QueryData::Matrix(out))
        }
        (a, b) => bail!("cannot divide {} by {}", a.kind(), b.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::label_set;

    type Row<'a> = (&'a [(&'a str, &'a str)], i64, f64);

    fn vec_of(pairs: &[Row]) -> QueryData {
        QueryData::Vector(
            pairs
                .iter()
                .map(|(l, t, v)| (label_set(l), (*t, *v)))
                .collect(),
        )
    }

    #[test]
    fn float_eq_rules() {
        assert!(float_eq(f64::NAN, f64::NAN));
        assert!(!float_eq(f64::NAN, 1.0));
        assert!(float_eq(f64::INFINITY, f64::INFINITY));
        assert!(!float_eq(f64::INFINITY, f64::NEG_INFINITY));
        assert!(float_eq(1.0, 1.0 + 1e-12));
        assert!(!float_eq(1.0, 1.0 + 1e-6));
        assert!(float_eq(0.0, 1e-15));
    }

    #[test]
    fn compare_reports_missing_extra_and_value_diffs() {
        let e = vec_of(&[(&[("a", "1")], 10, 1.0), (&[("a", "2")], 10, 2.0)]);
        assert!(compare(&e, &e.clone()).is_ok());
        let g = vec_of(&[(&[("a", "1")], 10, 1.5), (&[("a", "3")], 10, 2.0)]);
        let err = compare(&e, &g).unwrap_err();
        assert!(err.contains("missing series"), "{err}");
        assert!(err.contains("unexpected series"), "{err}");
        assert!(err.contains("expected (10, 1.0), got (10, 1.5)"), "{err}");
        let g2 = vec_of(&[(&[("a", "1")], 11, 1.0), (&[("a", "2")], 10, 2.0)]);
        assert!(compare(&e, &g2).is_err(), "timestamps must match exactly");
    }

    #[test]
    fn union_combine_divide() {
        let eu = add_labels(
            vec_of(&[(&[("j", "x")], 5, 2.0)]),
            &label_set(&[("cluster", "eu1")]),
        );
        let us = add_labels(
            vec_of(&[(&[("j", "x")], 5, 3.0)]),
            &label_set(&[("cluster", "us1")]),
        );
        let u = union(vec![eu, us]).unwrap();
        assert_eq!(u.series_count(), 2);
        let a = vec_of(&[(&[("j", "x")], 5, 2.0)]);
        let b = vec_of(&[(&[("j", "x")], 5, 3.0), (&[("j", "y")], 5, 7.0)]);
        let s = combine(vec![a.clone(), b.clone()], Combine::Sum).unwrap();
        assert_eq!(s.vector_point(&label_set(&[("j", "x")])), Some((5, 5.0)));
        assert_eq!(s.vector_point(&label_set(&[("j", "y")])), Some((5, 7.0)));
        let m = combine(vec![a.clone(), b.clone()], Combine::Min).unwrap();
        assert_eq!(m.vector_point(&label_set(&[("j", "x")])), Some((5, 2.0)));
        let c = vec_of(&[(&[("j", "x")], 5, 2.0), (&[("j", "y")], 5, 1.0)]);
        let d = divide(&s, &c).unwrap();
        assert_eq!(d.vector_point(&label_set(&[("j", "x")])), Some((5, 2.5)));
        assert!(union(vec![a.clone(), a]).is_err());
    }
}
