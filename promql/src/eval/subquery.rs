//! Subqueries: evaluate the inner expression on its own step grid, then
//! present the result as a range vector.

use super::dur_ms;
use std::sync::Arc;

use promql_parser::parser::SubqueryExpr;

use super::{Evaluator, RangeVectors, at_ms, offset_ms};
use crate::error::QueryError;
use crate::source::{Sample, Series};

impl Evaluator<'_> {
    pub(crate) fn eval_subquery(&self, sq: &SubqueryExpr) -> Result<RangeVectors, QueryError> {
        let off = offset_ms(&sq.offset);
        let range = dur_ms(sq.range);
        let step = sq
            .step
            .map(dur_ms)
            .unwrap_or(self.ctx.default_subquery_step_ms);
        if step <= 0 {
            return Err(QueryError::exec("subquery step must be positive"));
        }
        let ends = self.ref_times(at_ms(self.ctx, &sq.at), off);
        let (Some(first), Some(last)) = (ends.iter().min(), ends.iter().max()) else {
            return Ok(RangeVectors {
                series: Arc::new(Vec::new()),
                range_ms: range,
                ends,
            });
        };
        // The first step-aligned time after `first - range` (Go's truncating
        // division, as Prometheus does).
        let lower = first - range;
        let mut start = step * (lower / step);
        if start <= lower {
            start += step;
        }
        let n = if *last >= start {
            ((last - start) / step + 1) as usize
        } else {
            0
        };
        self.ctx.count(n)?;
        let times: Vec<i64> = (0..n as i64).map(|i| start + i * step).collect();
        let inner = Evaluator {
            ctx: self.ctx,
            times: times.clone(),
        };
        let v = inner.eval_vector(&sq.expr)?;
        let mut series: Vec<Series> = v
            .labels
            .into_iter()
            .map(|l| Series::new(l, Vec::new()))
            .collect();
        for (si, step) in v.steps.iter().enumerate() {
            let Some(t) = times.get(si) else { continue };
            for (id, val) in step {
                if let Some(s) = series.get_mut(*id as usize) {
                    s.samples.push(Sample { t: *t, v: *val });
                }
            }
        }
        series.retain(|s| !s.samples.is_empty());
        Ok(RangeVectors {
            series: Arc::new(series),
            range_ms: range,
            ends,
        })
    }
}
