//! An in-memory [`SeriesSource`]: series held sorted by labels, selected by
//! matchers and time range. Used by the conformance runner, unit tests and
//! benches, and usable by anything that has its series at hand.

use async_trait::async_trait;
use regex::Regex;

use crate::labels::Labels;
use crate::source::{
    LabelMatcher, MatchOp, Sample, SelectHints, SelectResult, Series, SeriesSource, SourceError,
};

#[derive(Clone, Debug, Default)]
pub struct MemSource {
    series: Vec<Series>,
}

/// A matcher ready to run: regexes compiled fully anchored.
pub enum CompiledMatcher {
    Equal(String, String),
    NotEqual(String, String),
    Regex(String, Regex),
    NotRegex(String, Regex),
}

impl CompiledMatcher {
    pub fn new(m: &LabelMatcher) -> Result<Self, SourceError> {
        let re = || {
            crate::re::anchored(&m.value).map_err(|e| {
                SourceError::BadRequest(format!("invalid regular expression {:?}: {e}", m.value))
            })
        };
        Ok(match m.op {
            MatchOp::Equal => CompiledMatcher::Equal(m.name.clone(), m.value.clone()),
            MatchOp::NotEqual => CompiledMatcher::NotEqual(m.name.clone(), m.value.clone()),
            MatchOp::Regex => CompiledMatcher::Regex(m.name.clone(), re()?),
            MatchOp::NotRegex => CompiledMatcher::NotRegex(m.name.clone(), re()?),
        })
    }

    /// Whether a label set matches; a missing label has the empty value.
    pub fn matches(&self, l: &Labels) -> bool {
        match self {
            CompiledMatcher::Equal(n, v) => l.get(n).unwrap_or("") == v,
            CompiledMatcher::NotEqual(n, v) => l.get(n).unwrap_or("") != v,
            CompiledMatcher::Regex(n, r) => r.is_match(l.get(n).unwrap_or("")),
            CompiledMatcher::NotRegex(n, r) => !r.is_match(l.get(n).unwrap_or("")),
        }
    }
}

impl MemSource {
    /// Builds a source; series are sorted by labels and samples by time,
    /// and series with equal labels are merged (later samples win).
    pub fn new(mut series: Vec<Series>) -> Self {
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let mut out: Vec<Series> = Vec::with_capacity(series.len());
        for s in series {
            match out.last_mut() {
                Some(last) if last.labels == s.labels => last.samples.extend(s.samples),
                _ => out.push(s),
            }
        }
        for s in out.iter_mut() {
            s.samples.sort_by_key(|x| x.t);
            let mut dedup: Vec<Sample> = Vec::with_capacity(s.samples.len());
            for x in s.samples.drain(..) {
                match dedup.last_mut() {
                    Some(last) if last.t == x.t => *last = x,
                    _ => dedup.push(x),
                }
            }
            s.samples = dedup;
        }
        MemSource { series: out }
    }

    pub fn series(&self) -> &[Series] {
        &self.series
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The series matching all matchers with their samples in
    /// `[start_ms, end_ms]`; series without such samples are left out.
    pub fn select_sync(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, SourceError> {
        let compiled: Vec<CompiledMatcher> = matchers
            .iter()
            .map(CompiledMatcher::new)
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for s in &self.series {
            if !compiled.iter().all(|m| m.matches(&s.labels)) {
                continue;
            }
            let lo = s.samples.partition_point(|x| x.t < start_ms);
            let hi = s.samples.partition_point(|x| x.t <= end_ms);
            if hi > lo {
                out.push(Series::new(
                    s.labels.clone(),
                    s.samples.get(lo..hi).unwrap_or(&[]).to_vec(),
                ));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl SeriesSource for MemSource {
    async fn select(
        &self,
        matchers: &[LabelMatcher],
        hints: &SelectHints,
    ) -> Result<SelectResult, SourceError> {
        Ok(SelectResult {
            series: self.select_sync(matchers, hints.start_ms, hints.end_ms)?,
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> MemSource {
        let mk = |pairs: &[(&str, &str)], ts: &[i64]| {
            Series::new(
                Labels::from_pairs(pairs.iter().copied()),
                ts.iter()
                    .map(|t| Sample {
                        t: *t,
                        v: *t as f64,
                    })
                    .collect(),
            )
        };
        MemSource::new(vec![
            mk(&[("__name__", "up"), ("job", "b")], &[10, 20, 30]),
            mk(&[("__name__", "up"), ("job", "a")], &[10, 20]),
            mk(&[("__name__", "down")], &[10]),
        ])
    }

    #[test]
    fn selects_by_matchers_and_range() {
        let s = src();
        let m = [LabelMatcher::new("__name__", MatchOp::Equal, "up")];
        let r = s.select_sync(&m, 15, 30).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].labels.get("job"), Some("a"));
        assert_eq!(r[0].samples.len(), 1);
        assert_eq!(r[1].samples.len(), 2);
        let m = [LabelMatcher::new("job", MatchOp::Regex, "a|b")];
        assert_eq!(s.select_sync(&m, 0, 100).unwrap().len(), 2);
        // Anchored: "a" does not match "job=~''" partially.
        let m = [LabelMatcher::new("job", MatchOp::Regex, "")];
        assert_eq!(s.select_sync(&m, 0, 100).unwrap().len(), 1);
        let m = [LabelMatcher::new("job", MatchOp::NotRegex, "b")];
        assert_eq!(s.select_sync(&m, 0, 100).unwrap().len(), 2);
        let m = [LabelMatcher::new("job", MatchOp::Regex, "(")];
        assert!(s.select_sync(&m, 0, 100).is_err());
    }
}
