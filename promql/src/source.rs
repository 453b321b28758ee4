//! What the engine asks of storage: the series matching a selector over a
//! time range. The query actor implements this over the StoreAPI fan-out;
//! tests implement it over in-memory data.

use async_trait::async_trait;

use crate::labels::Labels;

/// Matcher operators, with regexes fully anchored as in Prometheus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

impl LabelMatcher {
    pub fn new(name: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Self {
        LabelMatcher {
            name: name.into(),
            op,
            value: value.into(),
        }
    }
}

/// Hints for the source: the time range the engine will read (inclusive
/// milliseconds, already widened for range, offset and lookback) and, as in
/// Prometheus's `SelectHints`, the step, function and grouping around the
/// selector. Sources may ignore everything but the range.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SelectHints {
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
    pub range_ms: i64,
    pub func: Option<String>,
    /// `Some((by, labels))` for the aggregation wrapping the selector.
    pub grouping: Option<(bool, Vec<String>)>,
}

/// One float sample. Stale markers are the Prometheus stale NaN bit pattern
/// (0x7ff0000000000002) and must be passed through unchanged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

/// A series with its samples sorted by time, no duplicate timestamps.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

impl Series {
    pub fn new(labels: Labels, samples: Vec<Sample>) -> Self {
        Series { labels, samples }
    }
}

/// What a source returns: series sorted by labels, unique label sets, and
/// warnings (for instance a store that did not answer).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SelectResult {
    pub series: Vec<Series>,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The data could not be fetched (every store failed, or partial
    /// responses are disabled and one failed).
    #[error("{0}")]
    Unavailable(String),
    /// The source rejected the request (too many series, bad matcher...).
    #[error("{0}")]
    BadRequest(String),
    #[error("query canceled")]
    Canceled,
}

#[async_trait]
pub trait SeriesSource: Send + Sync {
    async fn select(
        &self,
        matchers: &[LabelMatcher],
        hints: &SelectHints,
    ) -> Result<SelectResult, SourceError>;
}
