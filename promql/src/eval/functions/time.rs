//! time(), timestamp() and the calendar functions (UTC).

use promql_parser::parser::{Call, Expr};

use super::super::{Evaluator, StepVectors, Val};
use crate::error::QueryError;
use crate::labels::Labels;

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic
/// Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

fn calendar(name: &str, secs: f64) -> f64 {
    if !secs.is_finite() || secs.abs() > 1e15 {
        return f64::NAN;
    }
    let s = secs.floor() as i64;
    let days = s.div_euclid(86_400);
    let sod = s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match name {
        "minute" => ((sod / 60) % 60) as f64,
        "hour" => (sod / 3600) as f64,
        "day_of_month" => d as f64,
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => {
            let mut doy = d;
            for mm in 1..m {
                doy += days_in_month(y, mm);
            }
            doy as f64
        }
        "days_in_month" => days_in_month(y, m) as f64,
        "month" => m as f64,
        "year" => y as f64,
        _ => f64::NAN,
    }
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        other => other,
    }
}

impl Evaluator<'_> {
    pub(crate) fn call_time(&self, c: &Call) -> Result<Option<Val>, QueryError> {
        let name = c.func.name;
        match name {
            "time" => Ok(Some(Val::Scalar(
                self.times.iter().map(|t| *t as f64 / 1000.0).collect(),
            ))),
            "timestamp" => {
                let arg = self.arg(c, 0)?;
                let v = match unwrap_parens(arg) {
                    Expr::VectorSelector(vs) => self.select_instant(vs, true)?,
                    _ => {
                        let v = self.eval_vector(arg)?;
                        let times = self.times.clone();
                        self.map_values(v, true, |_, si| times.get(si).map(|t| *t as f64 / 1000.0))?
                    }
                };
                Ok(Some(Val::Vector(v.drop_name()?)))
            }
            "minute" | "hour" | "day_of_month" | "day_of_week" | "day_of_year"
            | "days_in_month" | "month" | "year" => {
                let v = match c.args.args.first() {
                    Some(a) => self.eval_vector(a)?,
                    None => StepVectors {
                        labels: vec![Labels::default()],
                        steps: self
                            .times
                            .iter()
                            .map(|t| vec![(0, *t as f64 / 1000.0)])
                            .collect(),
                    },
                };
                Ok(Some(Val::Vector(
                    self.map_values(v, false, |x, _| Some(calendar(name, x)))?,
                )))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_matches_known_dates() {
        // 2024-02-29T13:45:00Z
        let t = 1_709_214_300.0;
        assert_eq!(calendar("year", t), 2024.0);
        assert_eq!(calendar("month", t), 2.0);
        assert_eq!(calendar("day_of_month", t), 29.0);
        assert_eq!(calendar("days_in_month", t), 29.0);
        assert_eq!(calendar("day_of_year", t), 60.0);
        assert_eq!(calendar("day_of_week", t), 4.0);
        assert_eq!(calendar("hour", t), 13.0);
        assert_eq!(calendar("minute", t), 45.0);
        assert_eq!(calendar("year", -1.0), 1969.0);
    }
}
