//! Label names, label values and series (labels only) over the fan-out,
//! for `/api/v1/labels`, `/api/v1/label/<name>/values` and `/api/v1/series`.

use futures::future::join_all;
use skein_promql::{LabelMatcher, Labels};
use skein_proto::thanos::{LabelNamesRequest, LabelValuesRequest, PartialResponseStrategy};

use super::client::store_client;
use super::dedup::strip_replica_labels;
use super::fanout::{
    FanoutError, MAX_STORE_WARNINGS, RejectReason, SeriesQuery, StoreBudget, StoreFailure,
    fan_out_series, select_stores,
};
use super::metrics::QueryMetrics;
use super::store_set::StoreStatus;
use crate::matchers::{compile_all_blocking, to_wire_matcher};

/// A labels-side request. `matcher_sets` empty means "every series".
#[derive(Clone, Debug, Default)]
pub struct LabelsQuery {
    pub start: i64,
    pub end: i64,
    pub matcher_sets: Vec<Vec<LabelMatcher>>,
    pub partial_response: bool,
    /// Strip these labels from the answer (dedup on); empty keeps them.
    pub replica_labels: Vec<String>,
    /// Most results; 0 for no limit.
    pub limit: usize,
}

/// A result with the warnings gathered on the way.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer<T> {
    pub data: T,
    pub warnings: Vec<String>,
}

/// Prometheus's warning when `limit` cut the answer.
pub const TRUNCATED_WARNING: &str = "results truncated due to limit";

fn strategy(partial: bool) -> i32 {
    if partial {
        PartialResponseStrategy::Warn as i32
    } else {
        PartialResponseStrategy::Abort as i32
    }
}

fn truncate<T>(v: &mut Vec<T>, limit: usize, warnings: &mut Vec<String>) {
    if limit > 0 && v.len() > limit {
        v.truncate(limit);
        warnings.push(TRUNCATED_WARNING.to_string());
    }
}

/// Calls `call` on every store that can match `matchers` in the range and
/// gathers each store's names or values. An answer with more than
/// `max_label_values` entries (or a message over the size limit) is
/// refused like a failed store.
async fn per_store<F, Fut>(
    stores: &[StoreStatus],
    q: &LabelsQuery,
    matchers: &[LabelMatcher],
    budget: &StoreBudget,
    metrics: &QueryMetrics,
    what: &str,
    call: F,
) -> Result<(Vec<Vec<String>>, Vec<String>), FanoutError>
where
    F: Fn(tonic::transport::Channel) -> Fut,
    Fut: Future<Output = Result<(Vec<String>, Vec<String>), tonic::Status>>,
{
    let compiled = compile_all_blocking(matchers)
        .await
        .map_err(|e| FanoutError::BadRequest(e.to_string()))?;
    let selection = select_stores(stores, q.start, q.end, &compiled);
    let timeout = budget.timeout;
    let max_values = budget.limits.max_label_values;
    let calls = selection.ready.iter().filter_map(|s| {
        let ch = s.channel.clone()?;
        let fut = call(ch);
        let name = s.name.clone();
        Some(async move {
            let res = match tokio::time::timeout(timeout, fut).await {
                Err(_) => Err(StoreFailure::timeout(timeout)),
                Ok(Err(s)) => Err(StoreFailure::from_status(&s)),
                Ok(Ok((d, _))) if d.len() > max_values => Err(StoreFailure {
                    reason: Some(RejectReason::TooManyValues),
                    message: format!(
                        "{} entries, more than {max_values} (query.store_max_label_values)",
                        d.len()
                    ),
                }),
                Ok(Ok(r)) => Ok(r),
            };
            (name, res)
        })
    });
    let mut data = Vec::new();
    let mut warnings = selection.unavailable_warnings(q.partial_response)?;
    for (name, res) in join_all(calls).await {
        match res {
            Ok((d, ws)) => {
                data.push(d);
                warnings.extend(
                    ws.into_iter()
                        .take(MAX_STORE_WARNINGS)
                        .map(|w| format!("store {name}: {w}")),
                );
            }
            Err(e) => warnings.push(e.report(what, &name, q.partial_response, metrics)?),
        }
    }
    Ok((data, warnings))
}

/// The matcher sets to run: one empty set when none were given.
fn sets(q: &LabelsQuery) -> Vec<Vec<LabelMatcher>> {
    if q.matcher_sets.is_empty() {
        vec![Vec::new()]
    } else {
        q.matcher_sets.clone()
    }
}

fn finish(mut v: Vec<String>, mut warnings: Vec<String>, limit: usize) -> Answer<Vec<String>> {
    v.sort();
    v.dedup();
    truncate(&mut v, limit, &mut warnings);
    warnings.dedup();
    Answer { data: v, warnings }
}

/// Label names, merged over the stores, sorted and unique.
pub async fn label_names(
    stores: &[StoreStatus],
    q: &LabelsQuery,
    budget: impl Into<StoreBudget>,
    metrics: &QueryMetrics,
) -> Result<Answer<Vec<String>>, FanoutError> {
    let budget = budget.into();
    let max_msg = budget.limits.max_message_bytes;
    let mut names = Vec::new();
    let mut warnings = Vec::new();
    for set in sets(q) {
        let req = LabelNamesRequest {
            partial_response_disabled: !q.partial_response,
            partial_response_strategy: strategy(q.partial_response),
            start: q.start,
            end: q.end,
            matchers: set.iter().map(to_wire_matcher).collect(),
            limit: q.limit as i64,
            ..Default::default()
        };
        let (data, ws) = per_store(stores, q, &set, &budget, metrics, "label names", |ch| {
            let req = req.clone();
            async move {
                let r = store_client(ch, max_msg)
                    .label_names(req)
                    .await?
                    .into_inner();
                Ok((r.names, r.warnings))
            }
        })
        .await?;
        names.extend(data.into_iter().flatten());
        warnings.extend(ws);
    }
    names.retain(|n| !q.replica_labels.contains(n));
    Ok(finish(names, warnings, q.limit))
}

/// Values of one label, merged over the stores, sorted and unique.
pub async fn label_values(
    stores: &[StoreStatus],
    name: &str,
    q: &LabelsQuery,
    budget: impl Into<StoreBudget>,
    metrics: &QueryMetrics,
) -> Result<Answer<Vec<String>>, FanoutError> {
    let budget = budget.into();
    let max_msg = budget.limits.max_message_bytes;
    let mut values = Vec::new();
    let mut warnings = Vec::new();
    for set in sets(q) {
        let req = LabelValuesRequest {
            label: name.to_string(),
            partial_response_disabled: !q.partial_response,
            partial_response_strategy: strategy(q.partial_response),
            start: q.start,
            end: q.end,
            matchers: set.iter().map(to_wire_matcher).collect(),
            limit: q.limit as i64,
            ..Default::default()
        };
        let (data, ws) = per_store(stores, q, &set, &budget, metrics, "label values", |ch| {
            let req = req.clone();
            async move {
                let r = store_client(ch, max_msg)
                    .label_values(req)
                    .await?
                    .into_inner();
                Ok((r.values, r.warnings))
            }
        })
        .await?;
        values.extend(data.into_iter().flatten());
        warnings.extend(ws);
    }
    values.retain(|v| !v.is_empty());
    Ok(finish(values, warnings, q.limit))
}

/// Label sets of the series matching any of the sets (labels only), with
/// replica labels stripped, sorted and unique.
pub async fn series(
    stores: &[StoreStatus],
    q: &LabelsQuery,
    budget: impl Into<StoreBudget>,
    metrics: &QueryMetrics,
) -> Result<Answer<Vec<Labels>>, FanoutError> {
    let budget = budget.into();
    let mut all: Vec<Labels> = Vec::new();
    let mut warnings = Vec::new();
    for set in &q.matcher_sets {
        let sq = SeriesQuery {
            min_time: q.start,
            max_time: q.end,
            matchers: set.clone(),
            skip_chunks: true,
            query_hints: None,
            partial_response: q.partial_response,
            limit: q.limit as i64,
        };
        let out = fan_out_series(stores, &sq, budget, metrics).await?;
        all.extend(
            out.series
                .iter()
                .map(|s| strip_replica_labels(&s.labels, &q.replica_labels)),
        );
        warnings.extend(out.warnings);
    }
    all.sort();
    all.dedup();
    truncate(&mut all, q.limit, &mut warnings);
    warnings.dedup();
    Ok(Answer {
        data: all,
        warnings,
    })
}
