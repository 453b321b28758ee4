//! Fan-out of a Series request: pick the stores that can hold matching
//! data, call them concurrently with a per-store deadline, and read each
//! store's sorted stream.

use std::collections::VecDeque;
use std::time::Duration;

use futures::future::join_all;
use skein_promql::{LabelMatcher, Labels};
use skein_proto::thanos::{
    AggrChunk, PartialResponseStrategy, QueryHints, Series, SeriesRequest, SeriesResponse,
    series_response,
};
use tokio::time::Instant;
use tonic::Streaming;

use super::client::{status_message, store_client};
use super::merge::{MergeOutput, MergedSeries, merge_streams};
use super::metrics::QueryMetrics;
use super::store_set::StoreStatus;
use crate::matchers::{CompiledMatcher, compile_all, labels_from_wire, to_wire_matcher};

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// The request cannot be served as asked (bad matcher...).
    #[error("{0}")]
    BadRequest(String),
    /// A store failed and partial responses are off.
    #[error("{0}")]
    Unavailable(String),
}

/// A Series request in the engine's terms.
#[derive(Clone, Debug, Default)]
pub struct SeriesQuery {
    pub min_time: i64,
    pub max_time: i64,
    pub matchers: Vec<LabelMatcher>,
    pub skip_chunks: bool,
    pub query_hints: Option<QueryHints>,
    pub partial_response: bool,
    /// Most series per store; 0 for no limit.
    pub limit: i64,
}

/// True when some external label set of the store is accepted by every
/// matcher on a label that set carries. Matchers on other labels cannot
/// rule a store out.
pub fn labels_can_match(label_sets: &[Labels], ms: &[CompiledMatcher]) -> bool {
    if label_sets.is_empty() {
        return true;
    }
    label_sets.iter().any(|ls| {
        ms.iter()
            .all(|m| ls.get(&m.name).is_none_or(|v| m.matches(v)))
    })
}

/// The stores a request goes to, and the ones that could hold matching
/// data but are down (their last Info call failed or none was made yet).
#[derive(Debug, Default)]
pub struct Selection<'a> {
    pub ready: Vec<&'a StoreStatus>,
    pub unavailable: Vec<&'a StoreStatus>,
}

impl Selection<'_> {
    /// Warnings for the unavailable stores, or the error when partial
    /// responses are off.
    pub fn unavailable_warnings(&self, partial: bool) -> Result<Vec<String>, FanoutError> {
        let msgs: Vec<String> = self
            .unavailable
            .iter()
            .map(|s| {
                format!(
                    "store {} is unavailable: {}",
                    s.name,
                    s.last_error.as_deref().unwrap_or("not checked yet")
                )
            })
            .collect();
        match msgs.first() {
            Some(first) if !partial => Err(FanoutError::Unavailable(first.clone())),
            _ => Ok(msgs),
        }
    }
}

/// Splits the stores whose time range overlaps `[min_time, max_time]` and
/// whose external labels can match into healthy and unavailable ones.
pub fn select_stores<'a>(
    stores: &'a [StoreStatus],
    min_time: i64,
    max_time: i64,
    ms: &[CompiledMatcher],
) -> Selection<'a> {
    let mut sel = Selection::default();
    for s in stores {
        if s.min_time > max_time || s.max_time < min_time || !labels_can_match(&s.label_sets, ms) {
            continue;
        }
        if s.healthy && s.channel.is_some() {
            sel.ready.push(s);
        } else {
            sel.unavailable.push(s);
        }
    }
    sel
}

/// One store's Series stream, read series by series.
pub struct StoreStream {
    name: String,
    inner: Streaming<SeriesResponse>,
    deadline: Instant,
    timeout: Duration,
    pending: VecDeque<Series>,
    peeked: Option<MergedSeries>,
    last: Option<Labels>,
    /// The store broke the sort order at least once.
    unsorted: bool,
    warnings: Vec<String>,
    done: bool,
}

impl StoreStream {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True once the store sent a series that sorts before an earlier one.
    pub fn unsorted(&self) -> bool {
        self.unsorted
    }

    pub fn take_warnings(&mut self) -> &mut Vec<String> {
        &mut self.warnings
    }

    async fn next_frame(&mut self) -> Result<Option<MergedSeries>, String> {
        loop {
            if let Some(s) = self.pending.pop_front() {
                return Ok(Some(MergedSeries {
                    labels: labels_from_wire(&s.labels),
                    chunks: s.chunks,
                }));
            }
            if self.done {
                return Ok(None);
            }
            let msg = tokio::time::timeout_at(self.deadline, self.inner.message())
                .await
                .map_err(|_| format!("timed out after {:?}", self.timeout))?
                .map_err(|s| status_message(&s))?;
            let Some(msg) = msg else {
                self.done = true;
                continue;
            };
            match msg.result {
                Some(series_response::Result::Series(s)) => self.pending.push_back(s),
                Some(series_response::Result::Batch(b)) => self.pending.extend(b.series),
                Some(series_response::Result::Warning(w)) => {
                    self.warnings.push(format!("store {}: {w}", self.name))
                }
                Some(series_response::Result::Hints(_)) | None => {}
            }
        }
    }

    /// The next series, its frames joined. A store that breaks the sort
    /// order is noted (see [`StoreStream::unsorted`]), not failed: the merge
    /// then re-sorts its output.
    pub async fn next_series(&mut self) -> Result<Option<MergedSeries>, String> {
        let mut cur = match self.peeked.take() {
            Some(s) => s,
            None => match self.next_frame().await? {
                Some(s) => s,
                None => return Ok(None),
            },
        };
        while let Some(next) = self.next_frame().await? {
            if next.labels == cur.labels {
                cur.chunks.extend(next.chunks);
            } else {
                self.peeked = Some(next);
                break;
            }
        }
        if let Some(last) = &self.last
            && cur.labels <= *last
            && !self.unsorted
        {
            tracing::debug!(store = %self.name, series = %cur.labels, after = %last,
                "store streams series out of order; the merged result will be re-sorted");
            self.unsorted = true;
        }
        self.last = Some(cur.labels.clone());
        Ok(Some(cur))
    }
}

fn series_request(q: &SeriesQuery) -> SeriesRequest {
    let strategy = if q.partial_response {
        PartialResponseStrategy::Warn
    } else {
        PartialResponseStrategy::Abort
    };
    SeriesRequest {
        min_time: q.min_time,
        max_time: q.max_time,
        matchers: q.matchers.iter().map(to_wire_matcher).collect(),
        partial_response_disabled: !q.partial_response,
        partial_response_strategy: strategy as i32,
        skip_chunks: q.skip_chunks,
        query_hints: q.query_hints.clone(),
        limit: q.limit,
        ..Default::default()
    }
}

/// Runs a Series request against every store that can answer it and merges
/// the answers.
pub async fn fan_out_series(
    stores: &[StoreStatus],
    q: &SeriesQuery,
    store_timeout: Duration,
    metrics: &QueryMetrics,
) -> Result<MergeOutput, FanoutError> {
    let compiled = compile_all(&q.matchers).map_err(|e| FanoutError::BadRequest(e.to_string()))?;
    let selection = select_stores(stores, q.min_time, q.max_time, &compiled);
    let mut warnings = selection.unavailable_warnings(q.partial_response)?;
    let req = series_request(q);
    let opens = selection.ready.iter().filter_map(|s| {
        let ch = s.channel.clone()?;
        let req = req.clone();
        let name = s.name.clone();
        Some(async move {
            let deadline = Instant::now() + store_timeout;
            let mut client = store_client(ch);
            let res = tokio::time::timeout_at(deadline, client.series(req))
                .await
                .map_err(|_| format!("timed out after {store_timeout:?}"))
                .and_then(|r| r.map_err(|s| status_message(&s)));
            (name, deadline, res)
        })
    });
    let mut streams = Vec::new();
    let mut failed = Vec::new();
    for (name, deadline, res) in join_all(opens).await {
        match res {
            Ok(resp) => streams.push(StoreStream {
                name,
                inner: resp.into_inner(),
                deadline,
                timeout: store_timeout,
                pending: VecDeque::new(),
                peeked: None,
                last: None,
                unsorted: false,
                warnings: Vec::new(),
                done: false,
            }),
            Err(e) => {
                metrics.store_error(&name);
                let msg = format!("fetch series from store {name}: {e}");
                if !q.partial_response {
                    return Err(FanoutError::Unavailable(msg));
                }
                warnings.push(msg);
                failed.push(name);
            }
        }
    }
    let mut out = merge_streams(streams, q.partial_response, metrics).await?;
    warnings.append(&mut out.warnings);
    out.warnings = warnings;
    out.failed.append(&mut failed);
    Ok(out)
}

/// Chunks of one series, for callers that only need the raw ones.
pub fn raw_chunks(
    chunks: &[AggrChunk],
) -> impl Iterator<Item = (i64, i64, &skein_proto::thanos::Chunk)> {
    chunks
        .iter()
        .filter_map(|c| c.raw.as_ref().map(|r| (c.min_time, c.max_time, r)))
}
