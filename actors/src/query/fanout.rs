//! Fan-out of a Series request: pick the stores that can hold matching
//! data, call them concurrently with a per-store deadline, and read and
//! check each store's sorted answer before merging: a store that sends
//! too much, out of order or corrupt data is dropped whole, never merged
//! into a silently wrong answer.

use std::time::Duration;

use futures::future::join_all;
use prost::Message;
use skein_promql::{LabelMatcher, Labels};
use skein_proto::thanos::{
    AggrChunk, PartialResponseStrategy, QueryHints, SeriesRequest, SeriesResponse, chunk::Encoding,
    series_response,
};
use skein_tsdb::chunkenc::decode_xor;
use tokio::time::Instant;
use tonic::Streaming;

use super::client::{StoreLimits, status_message, store_client};
use super::merge::{MergeOutput, MergedSeries, merge_sorted};
use super::metrics::QueryMetrics;
use super::store_set::StoreStatus;
use crate::matchers::{CompiledMatcher, compile_all_blocking, labels_from_wire, to_wire_matcher};

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
        if s.excluded() {
            // Refused (or not yet announced) discovered stores: not ours.
            continue;
        }
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

/// How long a store may take and how big its answer may be.
#[derive(Clone, Copy, Debug)]
pub struct StoreBudget {
    pub timeout: Duration,
    pub limits: StoreLimits,
}

impl From<Duration> for StoreBudget {
    fn from(timeout: Duration) -> Self {
        StoreBudget {
            timeout,
            limits: StoreLimits::default(),
        }
    }
}

impl From<(Duration, StoreLimits)> for StoreBudget {
    fn from((timeout, limits): (Duration, StoreLimits)) -> Self {
        StoreBudget { timeout, limits }
    }
}

/// Why the querier threw a store's answer away (the `reason` label of
/// `skein_query_store_responses_rejected_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// One gRPC message over `max_message_bytes`.
    FrameTooLarge,
    /// The whole answer over `max_response_bytes`.
    ResponseTooLarge,
    /// More series than `max_series`.
    TooManySeries,
    /// More label names or values than `max_label_values`.
    TooManyValues,
    /// Series not in strictly increasing label order (or repeated).
    Unsorted,
    /// A chunk that does not decode, has an unknown encoding or a time
    /// range that contradicts itself.
    CorruptChunk,
    /// A chunk outside the requested time range.
    ChunkOutOfRange,
    /// The answer did not end before the store deadline.
    Timeout,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::FrameTooLarge => "frame_too_large",
            RejectReason::ResponseTooLarge => "response_too_large",
            RejectReason::TooManySeries => "too_many_series",
            RejectReason::TooManyValues => "too_many_values",
            RejectReason::Unsorted => "unsorted",
            RejectReason::CorruptChunk => "corrupt_chunk",
            RejectReason::ChunkOutOfRange => "chunk_out_of_range",
            RejectReason::Timeout => "timeout",
        }
    }
}

/// A failed store call: the message for the warning and, when the querier
/// itself refused the answer, why.
#[derive(Debug)]
pub struct StoreFailure {
    pub reason: Option<RejectReason>,
    pub message: String,
}

impl StoreFailure {
    fn rejected(reason: RejectReason, message: String) -> Self {
        StoreFailure {
            reason: Some(reason),
            message,
        }
    }

    /// A gRPC error from the store; a message over the client's decoding
    /// limit shows up as one and is a rejection.
    pub fn from_status(s: &tonic::Status) -> Self {
        let message = status_message(s);
        let too_large =
            s.code() == tonic::Code::OutOfRange && s.message().contains("message length too large");
        StoreFailure {
            reason: too_large.then_some(RejectReason::FrameTooLarge),
            message,
        }
    }

    pub fn timeout(after: Duration) -> Self {
        StoreFailure::rejected(RejectReason::Timeout, format!("timed out after {after:?}"))
    }

    /// Counts the failure and turns it into the warning naming the store,
    /// or the query's error when partial responses are off.
    pub fn report(
        self,
        what: &str,
        store: &str,
        partial: bool,
        metrics: &QueryMetrics,
    ) -> Result<String, FanoutError> {
        metrics.store_error(store);
        if let Some(r) = self.reason {
            metrics.store_response_rejected(r.as_str());
            tracing::warn!(%store, reason = r.as_str(), error = %self.message,
                "store answer rejected");
        }
        let msg = format!("{what} from store {store}: {}", self.message);
        if partial {
            Ok(msg)
        } else {
            Err(FanoutError::Unavailable(msg))
        }
    }
}

/// Most in-band warnings kept from one store's answer.
pub const MAX_STORE_WARNINGS: usize = 64;

/// One store's whole Series answer, checked: series in strictly increasing
/// label order (frames of one series joined), chunks that decode and lie in
/// the requested range, and the answer within the budget.
#[derive(Debug, Default)]
pub struct StoreAnswer {
    pub series: Vec<MergedSeries>,
    pub warnings: Vec<String>,
}

/// Reads and checks one store's Series stream until it ends, fails or
/// passes `deadline`.
pub async fn read_series_answer(
    name: &str,
    stream: &mut Streaming<SeriesResponse>,
    q: &SeriesQuery,
    budget: &StoreBudget,
    deadline: Instant,
) -> Result<StoreAnswer, StoreFailure> {
    let limits = &budget.limits;
    let mut out = StoreAnswer::default();
    let mut bytes = 0usize;
    let mut cur: Option<MergedSeries> = None;
    loop {
        let msg = tokio::time::timeout_at(deadline, stream.message())
            .await
            .map_err(|_| StoreFailure::timeout(budget.timeout))?
            .map_err(|s| StoreFailure::from_status(&s))?;
        let Some(msg) = msg else { break };
        bytes = bytes.saturating_add(msg.encoded_len());
        if bytes > limits.max_response_bytes {
            return Err(StoreFailure::rejected(
                RejectReason::ResponseTooLarge,
                format!(
                    "answer larger than {} bytes (query.store_max_response_size)",
                    limits.max_response_bytes
                ),
            ));
        }
        let frames = match msg.result {
            Some(series_response::Result::Series(s)) => vec![s],
            Some(series_response::Result::Batch(b)) => b.series,
            Some(series_response::Result::Warning(w)) => {
                if out.warnings.len() < MAX_STORE_WARNINGS {
                    out.warnings.push(format!("store {name}: {w}"));
                }
                continue;
            }
            Some(series_response::Result::Hints(_)) | None => continue,
        };
        for f in frames {
            check_chunks(&f.chunks, q)?;
            let labels = labels_from_wire(&f.labels);
            match &mut cur {
                // Frames of one series come one after the other.
                Some(c) if c.labels == labels => c.chunks.extend(f.chunks),
                _ => {
                    if let Some(done) = cur.take() {
                        push_in_order(&mut out.series, done, limits)?;
                    }
                    cur = Some(MergedSeries {
                        labels,
                        chunks: f.chunks,
                    });
                }
            }
        }
    }
    if let Some(done) = cur.take() {
        push_in_order(&mut out.series, done, limits)?;
    }
    Ok(out)
}

/// Appends a series that must sort after the previous one.
fn push_in_order(
    into: &mut Vec<MergedSeries>,
    s: MergedSeries,
    limits: &StoreLimits,
) -> Result<(), StoreFailure> {
    if let Some(last) = into.last()
        && s.labels <= last.labels
    {
        let what = if s.labels == last.labels {
            "repeated"
        } else {
            "out of order"
        };
        return Err(StoreFailure::rejected(
            RejectReason::Unsorted,
            format!(
                "series {} {what} after {}: a StoreAPI answer must be sorted by labels",
                s.labels, last.labels
            ),
        ));
    }
    if into.len() >= limits.max_series {
        return Err(StoreFailure::rejected(
            RejectReason::TooManySeries,
            format!(
                "more than {} series (query.store_max_series)",
                limits.max_series
            ),
        ));
    }
    into.push(s);
    Ok(())
}

/// Checks the chunks of one frame: a time range that holds together and
/// overlaps the request, a known encoding and, for XOR chunks, bytes that
/// decode into increasing timestamps from the chunk's min time on.
fn check_chunks(chunks: &[AggrChunk], q: &SeriesQuery) -> Result<(), StoreFailure> {
    for c in chunks {
        if c.min_time > c.max_time {
            return Err(StoreFailure::rejected(
                RejectReason::CorruptChunk,
                format!(
                    "chunk with min_time {} after max_time {}",
                    c.min_time, c.max_time
                ),
            ));
        }
        if c.max_time < q.min_time || c.min_time > q.max_time {
            return Err(StoreFailure::rejected(
                RejectReason::ChunkOutOfRange,
                format!(
                    "chunk [{}, {}] outside the requested range [{}, {}]",
                    c.min_time, c.max_time, q.min_time, q.max_time
                ),
            ));
        }
        let Some(raw) = &c.raw else { continue };
        let corrupt = |why: String| {
            StoreFailure::rejected(
                RejectReason::CorruptChunk,
                format!("corrupt chunk [{}, {}]: {why}", c.min_time, c.max_time),
            )
        };
        match Encoding::try_from(raw.r#type) {
            Ok(Encoding::Xor) => {
                let it = decode_xor(&raw.data).map_err(|e| corrupt(e.to_string()))?;
                let mut prev: Option<i64> = None;
                for sample in it {
                    let (t, _) = sample.map_err(|e| corrupt(e.to_string()))?;
                    // Samples past max_time are tolerated (a head chunk
                    // may grow while Prometheus reads it); decoding
                    // filters by the query's range anyway.
                    if t < c.min_time || prev.is_some_and(|p| t <= p) {
                        return Err(corrupt(format!(
                            "sample at {t} out of order or before the chunk's min_time"
                        )));
                    }
                    prev = Some(t);
                }
            }
            Ok(Encoding::Histogram | Encoding::FloatHistogram) => {}
            Err(_) => return Err(corrupt(format!("unknown encoding {}", raw.r#type))),
        }
    }
    Ok(())
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

/// Runs a Series request against every store that can answer it, checks
/// each store's whole answer ([`read_series_answer`]) and merges them. A
/// store that fails or whose answer is refused is dropped whole, with a
/// warning naming it (or fails the query when partial responses are off).
pub async fn fan_out_series(
    stores: &[StoreStatus],
    q: &SeriesQuery,
    budget: impl Into<StoreBudget>,
    metrics: &QueryMetrics,
) -> Result<MergeOutput, FanoutError> {
    let budget = budget.into();
    let compiled = compile_all_blocking(&q.matchers)
        .await
        .map_err(|e| FanoutError::BadRequest(e.to_string()))?;
    let selection = select_stores(stores, q.min_time, q.max_time, &compiled);
    let mut warnings = selection.unavailable_warnings(q.partial_response)?;
    let req = series_request(q);
    let reads = selection.ready.iter().filter_map(|s| {
        let ch = s.channel.clone()?;
        let req = req.clone();
        let name = s.name.clone();
        let budget = &budget;
        Some(async move {
            let deadline = Instant::now() + budget.timeout;
            let mut client = store_client(ch, budget.limits.max_message_bytes);
            let res = async {
                let mut stream = tokio::time::timeout_at(deadline, client.series(req))
                    .await
                    .map_err(|_| StoreFailure::timeout(budget.timeout))?
                    .map_err(|s| StoreFailure::from_status(&s))?
                    .into_inner();
                read_series_answer(&name, &mut stream, q, budget, deadline).await
            }
            .await;
            (name, res)
        })
    });
    let mut answers = Vec::new();
    let mut failed = Vec::new();
    for (name, res) in join_all(reads).await {
        match res {
            Ok(mut a) => {
                warnings.append(&mut a.warnings);
                answers.push(a.series);
            }
            Err(e) => {
                warnings.push(e.report("fetch series", &name, q.partial_response, metrics)?);
                failed.push(name);
            }
        }
    }
    Ok(MergeOutput {
        series: merge_sorted(answers),
        warnings,
        failed,
    })
}

/// Chunks of one series, for callers that only need the raw ones.
pub fn raw_chunks(
    chunks: &[AggrChunk],
) -> impl Iterator<Item = (i64, i64, &skein_proto::thanos::Chunk)> {
    chunks
        .iter()
        .filter_map(|c| c.raw.as_ref().map(|r| (c.min_time, c.max_time, r)))
}
