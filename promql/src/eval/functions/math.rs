//! Element-wise functions: math, clamping, rounding, sorting.

use promql_parser::parser::Call;

use super::super::{Evaluator, StepVectors, Val};
use crate::error::QueryError;

fn unary(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |x| x * 180.0 / std::f64::consts::PI,
        "rad" => |x| x * std::f64::consts::PI / 180.0,
        "sgn" => |x: f64| {
            if x < 0.0 {
                -1.0
            } else if x > 0.0 {
                1.0
            } else {
                x
            }
        },
        _ => return None,
    })
}

/// Go's `math.Floor(f*toNearestInverse+0.5) / toNearestInverse`.
fn round_to(x: f64, to_nearest: f64) -> f64 {
    let inv = 1.0 / to_nearest;
    (x * inv + 0.5).floor() / inv
}

impl Evaluator<'_> {
    pub(crate) fn map_values(
        &self,
        mut v: StepVectors,
        keep_name: bool,
        mut f: impl FnMut(f64, usize) -> Option<f64>,
    ) -> Result<StepVectors, QueryError> {
        for (si, step) in v.steps.iter_mut().enumerate() {
            step.retain_mut(|(_, x)| match f(*x, si) {
                Some(n) => {
                    *x = n;
                    true
                }
                None => false,
            });
        }
        if keep_name {
            Ok(v.compact())
        } else {
            v.compact().drop_name()
        }
    }

    pub(crate) fn call_math(&self, c: &Call) -> Result<Option<Val>, QueryError> {
        let name = c.func.name;
        if name == "pi" {
            return Ok(Some(Val::Scalar(vec![std::f64::consts::PI; self.nsteps()])));
        }
        if let Some(f) = unary(name) {
            let v = self.eval_vector(self.arg(c, 0)?)?;
            return Ok(Some(Val::Vector(
                self.map_values(v, false, |x, _| Some(f(x)))?,
            )));
        }
        let scalars = |from: usize| -> Result<Vec<Vec<f64>>, QueryError> {
            c.args
                .args
                .iter()
                .skip(from)
                .map(|a| self.eval_scalar(a))
                .collect()
        };
        let get = |s: &Vec<Vec<f64>>, k: usize, si: usize, default: f64| {
            s.get(k).and_then(|v| v.get(si)).copied().unwrap_or(default)
        };
        let out = match name {
            "round" => {
                let v = self.eval_vector(self.arg(c, 0)?)?;
                let s = scalars(1)?;
                self.map_values(v, false, |x, si| Some(round_to(x, get(&s, 0, si, 1.0))))?
            }
            "clamp" => {
                let v = self.eval_vector(self.arg(c, 0)?)?;
                let s = scalars(1)?;
                self.map_values(v, false, |x, si| {
                    let (lo, hi) = (get(&s, 0, si, f64::NAN), get(&s, 1, si, f64::NAN));
                    if hi < lo {
                        return None;
                    }
                    Some(go_max(lo, go_min(hi, x)))
                })?
            }
            "clamp_min" => {
                let v = self.eval_vector(self.arg(c, 0)?)?;
                let s = scalars(1)?;
                self.map_values(v, false, |x, si| Some(go_max(get(&s, 0, si, f64::NAN), x)))?
            }
            "clamp_max" => {
                let v = self.eval_vector(self.arg(c, 0)?)?;
                let s = scalars(1)?;
                self.map_values(v, false, |x, si| Some(go_min(get(&s, 0, si, f64::NAN), x)))?
            }
            "sort" | "sort_desc" => {
                let mut v = self.eval_vector(self.arg(c, 0)?)?;
                if self.nsteps() > 1 {
                    self.ctx.warn(
                        "PromQL warning: sort is ineffective for range queries since results are always ordered by labels".to_string(),
                    );
                }
                let desc = name == "sort_desc";
                for step in v.steps.iter_mut() {
                    step.sort_by(|a, b| {
                        let (x, y) = (a.1, b.1);
                        match (x.is_nan(), y.is_nan()) {
                            (true, true) => std::cmp::Ordering::Equal,
                            (true, false) => std::cmp::Ordering::Greater,
                            (false, true) => std::cmp::Ordering::Less,
                            _ if desc => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
                            _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                        }
                    });
                }
                v
            }
            _ => return Ok(None),
        };
        Ok(Some(Val::Vector(out)))
    }
}

/// Go's `math.Max`: NaN wins, +Inf wins.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}
