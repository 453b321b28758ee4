//! label_replace, label_join and sort_by_label.

use std::cmp::Ordering;

use promql_parser::parser::Call;

use super::super::{Evaluator, Val};
use crate::error::QueryError;
use crate::labels::Labels;

/// Compares strings with digit runs ordered by number ("a2" < "a10").
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (&x[..nx], &y[..ny]);
                let tx = dx.iter().skip_while(|c| **c == b'0').count();
                let ty = dy.iter().skip_while(|c| **c == b'0').count();
                let ord = tx.cmp(&ty).then_with(|| dx[nx - tx..].cmp(&dy[ny - ty..]));
                if ord != Ordering::Equal {
                    return ord;
                }
                x = &x[nx..];
                y = &y[ny..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

impl Evaluator<'_> {
    fn string_arg(&self, c: &Call, i: usize) -> Result<String, QueryError> {
        match self.eval(self.arg(c, i)?)? {
            Val::Str(s) => Ok(s),
            other => Err(QueryError::exec(format!(
                "expected string argument to {}, got {}",
                c.func.name,
                other.type_name()
            ))),
        }
    }

    pub(crate) fn call_labels(&self, c: &Call) -> Result<Option<Val>, QueryError> {
        match c.func.name {
            "label_replace" => {
                let v = self.eval_vector(self.arg(c, 0)?)?;
                let dst = self.string_arg(c, 1)?;
                let repl = self.string_arg(c, 2)?;
                let src = self.string_arg(c, 3)?;
                let re_src = self.string_arg(c, 4)?;
                let re = crate::re::anchored(&re_src).map_err(|e| match e {
                    crate::re::RegexError::Invalid(_) => QueryError::exec(format!(
                        "invalid regular expression in label_replace(): {re_src}"
                    )),
                    limit => QueryError::Rejected {
                        reason: match limit {
                            crate::re::RegexError::TooDeep { .. } => "regex_too_deep",
                            _ => "regex_too_large",
                        },
                        error_type: "bad_data",
                        message: format!("invalid regular expression in label_replace(): {limit}"),
                    },
                })?;
                if dst.is_empty() {
                    return Err(QueryError::exec(format!(
                        "invalid destination label name in label_replace(): {dst}"
                    )));
                }
                let out = v.relabel(|l| {
                    let value = l.get(&src).unwrap_or("");
                    let Some(caps) = re.captures(value) else {
                        return l.clone();
                    };
                    let mut res = String::new();
                    caps.expand(&repl, &mut res);
                    let mut l = l.clone();
                    l.set(&dst, res);
                    l
                })?;
                Ok(Some(Val::Vector(out)))
            }
            "label_join" => {
                let v = self.eval_vector(self.arg(c, 0)?)?;
                let dst = self.string_arg(c, 1)?;
                let sep = self.string_arg(c, 2)?;
                let srcs: Vec<String> = (3..c.args.args.len())
                    .map(|i| self.string_arg(c, i))
                    .collect::<Result<_, _>>()?;
                if dst.is_empty() {
                    return Err(QueryError::exec(format!(
                        "invalid destination label name in label_join(): {dst}"
                    )));
                }
                let out = v.relabel(|l| {
                    let joined: Vec<&str> = srcs.iter().map(|s| l.get(s).unwrap_or("")).collect();
                    let mut l = l.clone();
                    l.set(&dst, joined.join(&sep));
                    l
                })?;
                Ok(Some(Val::Vector(out)))
            }
            "sort_by_label" | "sort_by_label_desc" => {
                let mut v = self.eval_vector(self.arg(c, 0)?)?;
                let names: Vec<String> = (1..c.args.args.len())
                    .map(|i| self.string_arg(c, i))
                    .collect::<Result<_, _>>()?;
                let desc = c.func.name == "sort_by_label_desc";
                if self.nsteps() > 1 {
                    self.ctx.warn(
                        "PromQL warning: sort is ineffective for range queries since results are always ordered by labels".to_string(),
                    );
                }
                let labels = v.labels.clone();
                let cmp = |a: &Labels, b: &Labels| {
                    for n in &names {
                        let (x, y) = (a.get(n).unwrap_or(""), b.get(n).unwrap_or(""));
                        let o = natural_cmp(x, y);
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    a.cmp(b)
                };
                for step in v.steps.iter_mut() {
                    step.sort_by(|a, b| {
                        let o = cmp(&labels[a.0 as usize], &labels[b.0 as usize]);
                        if desc { o.reverse() } else { o }
                    });
                }
                Ok(Some(Val::Vector(v)))
            }
            _ => Ok(None),
        }
    }
}
