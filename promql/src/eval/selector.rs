//! Vector and range selectors.

use super::dur_ms;
use std::sync::Arc;

use promql_parser::parser::{MatrixSelector, VectorSelector};

use super::{Evaluator, RangeVectors, StepVectors, at_ms, is_stale_nan, offset_ms};
use crate::error::QueryError;
use crate::plan::selector_key;
use crate::source::Series;

impl Evaluator<'_> {
    pub(crate) fn selected(&self, vs: &VectorSelector) -> Result<Arc<Vec<Series>>, QueryError> {
        self.ctx
            .data
            .get(&selector_key(vs))
            .cloned()
            .ok_or_else(|| QueryError::exec("internal error: selector was not planned"))
    }

    /// The time each step reads at: the `@` time or the step time, minus
    /// the offset.
    pub(crate) fn ref_times(&self, at: Option<i64>, offset: i64) -> Vec<i64> {
        self.times
            .iter()
            .map(|t| at.unwrap_or(*t) - offset)
            .collect()
    }

    /// The latest non-stale sample in `(t - lookback, t]` of each series at
    /// each step; with `with_ts`, the values are the sample timestamps in
    /// seconds instead (for `timestamp()`).
    pub(crate) fn select_instant(
        &self,
        vs: &VectorSelector,
        with_ts: bool,
    ) -> Result<StepVectors, QueryError> {
        let series = self.selected(vs)?;
        let refs = self.ref_times(at_ms(self.ctx, &vs.at), offset_ms(&vs.offset));
        let lookback = self.ctx.lookback_ms;
        let mut steps: Vec<Vec<(u32, f64)>> = vec![Vec::new(); refs.len()];
        let monotonic = refs.windows(2).all(|w| w[0] <= w[1]);
        let mut points = 0usize;
        for (id, s) in series.iter().enumerate() {
            if id % 256 == 0 {
                self.ctx.check()?;
                self.ctx.count(points)?;
            }
            let samples = &s.samples;
            let mut pos = 0usize;
            for (si, rt) in refs.iter().enumerate() {
                // Index of the first sample after rt.
                if monotonic {
                    while pos < samples.len() && samples[pos].t <= *rt {
                        pos += 1;
                    }
                } else {
                    pos = samples.partition_point(|x| x.t <= *rt);
                }
                if pos == 0 {
                    continue;
                }
                let Some(last) = samples.get(pos - 1) else {
                    continue;
                };
                if last.t <= rt - lookback || is_stale_nan(last.v) {
                    continue;
                }
                let v = if with_ts {
                    last.t as f64 / 1000.0
                } else {
                    last.v
                };
                steps[si].push((id as u32, v));
                points += 1;
            }
        }
        let labels = series.iter().map(|s| s.labels.clone()).collect();
        Ok(StepVectors { labels, steps }.compact())
    }

    pub(crate) fn eval_vector_selector(
        &self,
        vs: &VectorSelector,
    ) -> Result<StepVectors, QueryError> {
        if crate::extended::ext_of(&crate::plan::all_matchers(vs))
            == Some(crate::extended::Ext::Smoothed)
        {
            return self.smoothed_instant(vs);
        }
        self.select_instant(vs, false)
    }

    pub(crate) fn eval_matrix_selector(
        &self,
        ms: &MatrixSelector,
    ) -> Result<RangeVectors, QueryError> {
        let series = self.selected(&ms.vs)?;
        let has_stale = series
            .iter()
            .any(|s| s.samples.iter().any(|x| is_stale_nan(x.v)));
        let series = if has_stale {
            Arc::new(
                series
                    .iter()
                    .map(|s| {
                        Series::new(
                            s.labels.clone(),
                            s.samples
                                .iter()
                                .filter(|x| !is_stale_nan(x.v))
                                .copied()
                                .collect(),
                        )
                    })
                    .collect(),
            )
        } else {
            series
        };
        let ends = self.ref_times(at_ms(self.ctx, &ms.vs.at), offset_ms(&ms.vs.offset));
        Ok(RangeVectors {
            series,
            range_ms: dur_ms(ms.range),
            ends,
        })
    }
}
