//! `info()` (experimental in Prometheus 3): enrich series with the data
//! labels of info series (`target_info` by default) that share their
//! identifying labels (`instance`, `job`).

use std::collections::HashMap;

use promql_parser::parser::{Call, Expr};

use super::super::{Evaluator, StepVectors, Val, is_stale_nan};
use crate::error::QueryError;
use crate::labels::{Labels, METRIC_NAME};
use crate::memsource::CompiledMatcher;
use crate::plan::{info_key, info_matchers, selector_matchers};
use crate::source::{LabelMatcher, MatchOp};

const IDENTIFYING: [&str; 2] = ["instance", "job"];

impl Evaluator<'_> {
    pub(crate) fn call_info(&self, c: &Call) -> Result<Option<Val>, QueryError> {
        if c.func.name != "info" {
            return Ok(None);
        }
        let base = self.eval_vector(self.arg(c, 0)?)?;
        let sel = c.args.args.get(1).map(|b| b.as_ref());
        let name_matchers = info_matchers(sel);
        let data_matchers: Vec<CompiledMatcher> = match sel {
            Some(Expr::VectorSelector(vs)) => selector_matchers(vs)
                .iter()
                .filter(|m| m.name != METRIC_NAME)
                .map(CompiledMatcher::new)
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        let positive: Vec<&LabelMatcher> = name_matchers
            .iter()
            .filter(|m| matches!(m.op, MatchOp::Equal | MatchOp::Regex))
            .collect();
        let name_compiled: Vec<CompiledMatcher> = name_matchers
            .iter()
            .map(CompiledMatcher::new)
            .collect::<Result<_, _>>()?;
        let infos = self
            .ctx
            .data
            .get(&info_key(&name_matchers))
            .cloned()
            .unwrap_or_default();
        // Info series present at each step: (series index, sample time).
        let lookback = self.ctx.lookback_ms;
        let mut present: Vec<Vec<(usize, i64)>> = vec![Vec::new(); self.times.len()];
        for (i, s) in infos.iter().enumerate() {
            for (si, t) in self.times.iter().enumerate() {
                let pos = s.samples.partition_point(|x| x.t <= *t);
                if let Some(last) = pos.checked_sub(1).and_then(|p| s.samples.get(p))
                    && last.t > t - lookback
                    && !is_stale_nan(last.v)
                {
                    present[si].push((i, last.t));
                }
            }
        }
        let empty_ok = data_matchers.iter().all(|m| m.matches(&Labels::default()));
        let mut index: HashMap<Labels, u32> = HashMap::new();
        let mut table: Vec<Labels> = Vec::new();
        let mut seen: Vec<usize> = Vec::new();
        let mut steps = Vec::with_capacity(base.steps.len());
        for (si, step) in base.steps.iter().enumerate() {
            let mut out = Vec::with_capacity(step.len());
            for (id, v) in step {
                let bl = &base.labels[*id as usize];
                let is_info = !positive.is_empty() && name_compiled.iter().all(|m| m.matches(bl));
                let labels = if is_info {
                    Some(bl.clone())
                } else {
                    enrich(bl, &present[si], &infos, &data_matchers, empty_ok)?
                };
                let Some(labels) = labels else { continue };
                let nid = *index.entry(labels.clone()).or_insert_with(|| {
                    table.push(labels);
                    (table.len() - 1) as u32
                });
                if seen.len() <= nid as usize {
                    seen.resize(nid as usize + 1, usize::MAX);
                }
                if seen[nid as usize] == si {
                    return Err(QueryError::exec(
                        "vector cannot contain metrics with the same labelset",
                    ));
                }
                seen[nid as usize] = si;
                out.push((nid, *v));
            }
            steps.push(out);
        }
        Ok(Some(Val::Vector(StepVectors {
            labels: table,
            steps,
        })))
    }
}

/// The enriched labels of one base series at one step, or `None` to drop it.
fn enrich(
    base: &Labels,
    present: &[(usize, i64)],
    infos: &[crate::source::Series],
    data_matchers: &[CompiledMatcher],
    empty_ok: bool,
) -> Result<Option<Labels>, QueryError> {
    let ids: Vec<(&str, &str)> = IDENTIFYING
        .iter()
        .filter_map(|n| base.get(n).map(|v| (*n, v)))
        .collect();
    // The latest matching info series of each info metric name.
    let mut chosen: HashMap<&str, (usize, i64)> = HashMap::new();
    if !ids.is_empty() {
        for (i, t) in present {
            let Some(s) = infos.get(*i) else { continue };
            if !ids.iter().all(|(n, v)| s.labels.get(n) == Some(*v)) {
                continue;
            }
            if !data_matchers.iter().all(|m| m.matches(&s.labels)) {
                continue;
            }
            let name = s.labels.metric_name().unwrap_or("");
            match chosen.get(name) {
                Some((_, bt)) if *bt >= *t => {}
                _ => {
                    chosen.insert(name, (*i, *t));
                }
            }
        }
    }
    if chosen.is_empty() {
        return Ok(empty_ok.then(|| base.clone()));
    }
    let wanted = |name: &str| {
        data_matchers.is_empty()
            || data_matchers.iter().any(|m| match m {
                CompiledMatcher::Equal(n, _)
                | CompiledMatcher::NotEqual(n, _)
                | CompiledMatcher::Regex(n, _)
                | CompiledMatcher::NotRegex(n, _) => n == name,
            })
    };
    let mut out = base.clone();
    let mut added: HashMap<String, String> = HashMap::new();
    let mut chosen: Vec<(usize, i64)> = chosen.into_values().collect();
    chosen.sort();
    for (i, _) in chosen {
        let Some(s) = infos.get(i) else { continue };
        for l in s.labels.iter() {
            if l.name == METRIC_NAME
                || IDENTIFYING.contains(&l.name.as_str())
                || base.get(&l.name).is_some()
                || !wanted(&l.name)
            {
                continue;
            }
            match added.get(&l.name) {
                Some(v) if *v != l.value => {
                    return Err(QueryError::exec(format!(
                        "conflicting label: {} has values {:?} and {:?} in different info metrics",
                        l.name, v, l.value
                    )));
                }
                Some(_) => {}
                None => {
                    added.insert(l.name.clone(), l.value.clone());
                    out.set(&l.name, l.value.clone());
                }
            }
        }
    }
    Ok(Some(out))
}
