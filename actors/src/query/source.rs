//! The engine's view of the stores: a [`SeriesSource`] over the StoreAPI
//! fan-out that decodes chunks into samples and removes HA replicas.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use skein_promql::{
    LabelMatcher, Sample, SelectHints, SelectResult, Series, SeriesSource, SourceError,
};
use skein_proto::thanos::{Func, Grouping, QueryHints, Range, chunk::Encoding};
use skein_tsdb::chunkenc::decode_xor_all;

use super::dedup::dedup_series;
use super::fanout::{FanoutError, SeriesQuery, fan_out_series};
use super::merge::MergedSeries;
use super::metrics::QueryMetrics;
use super::store_set::StoreStatus;

/// How one query reads from the stores.
#[derive(Clone, Debug)]
pub struct SourceOptions {
    pub dedup: bool,
    pub replica_labels: Vec<String>,
    pub partial_response: bool,
    pub store_timeout: Duration,
}

/// A [`SeriesSource`] over a snapshot of the store set.
pub struct StoreApiSource {
    stores: Arc<Vec<StoreStatus>>,
    opts: SourceOptions,
    metrics: QueryMetrics,
}

impl StoreApiSource {
    pub fn new(stores: Arc<Vec<StoreStatus>>, opts: SourceOptions, metrics: QueryMetrics) -> Self {
        StoreApiSource {
            stores,
            opts,
            metrics,
        }
    }
}

impl From<FanoutError> for SourceError {
    fn from(e: FanoutError) -> Self {
        match e {
            FanoutError::BadRequest(m) => SourceError::BadRequest(m),
            FanoutError::Unavailable(m) => SourceError::Unavailable(m),
        }
    }
}

/// The StoreAPI query hints for the engine's select hints.
pub fn query_hints(h: &SelectHints) -> QueryHints {
    QueryHints {
        step_millis: h.step_ms,
        func: h.func.as_ref().map(|name| Func { name: name.clone() }),
        grouping: h.grouping.as_ref().map(|(by, labels)| Grouping {
            by: *by,
            labels: labels.clone(),
        }),
        range: (h.range_ms > 0).then_some(Range { millis: h.range_ms }),
        ..Default::default()
    }
}

/// Decodes one merged series into samples in `[start, end]`, sorted, one
/// per timestamp (the first chunk that has it wins). Chunks it cannot use
/// become warnings.
pub fn decode_series(
    s: &MergedSeries,
    start: i64,
    end: i64,
    warnings: &mut Vec<String>,
) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::new();
    for c in &s.chunks {
        let Some(raw) = &c.raw else { continue };
        if c.max_time < start || c.min_time > end {
            continue;
        }
        match Encoding::try_from(raw.r#type) {
            Ok(Encoding::Xor) => match decode_xor_all(&raw.data) {
                Ok(samples) => out.extend(
                    samples
                        .into_iter()
                        .filter(|(t, _)| *t >= start && *t <= end)
                        .map(|(t, v)| Sample { t, v }),
                ),
                Err(e) => warnings.push(format!("skipped a corrupt chunk of {}: {e}", s.labels)),
            },
            Ok(Encoding::Histogram | Encoding::FloatHistogram) => warnings.push(
                "skipped histogram chunks: native histograms are not supported yet".to_string(),
            ),
            Err(_) => warnings.push(format!(
                "skipped a chunk of {} with unknown encoding {}",
                s.labels, raw.r#type
            )),
        }
    }
    out.sort_by_key(|s| s.t);
    out.dedup_by_key(|s| s.t);
    out
}

/// Decodes every series, drops the empty ones and, when asked, the HA
/// replicas. CPU work: run it off the async threads.
pub fn decode_all(
    merged: Vec<MergedSeries>,
    start: i64,
    end: i64,
    dedup: Option<&[String]>,
) -> (Vec<Series>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut series: Vec<Series> = merged
        .iter()
        .map(|m| {
            Series::new(
                m.labels.clone(),
                decode_series(m, start, end, &mut warnings),
            )
        })
        .filter(|s| !s.samples.is_empty())
        .collect();
    if let Some(replica_labels) = dedup {
        series = dedup_series(series, replica_labels);
    }
    warnings.sort();
    warnings.dedup();
    (series, warnings)
}

#[async_trait]
impl SeriesSource for StoreApiSource {
    async fn select(
        &self,
        matchers: &[LabelMatcher],
        hints: &SelectHints,
    ) -> Result<SelectResult, SourceError> {
        let q = SeriesQuery {
            min_time: hints.start_ms,
            max_time: hints.end_ms,
            matchers: matchers.to_vec(),
            skip_chunks: false,
            query_hints: Some(query_hints(hints)),
            partial_response: self.opts.partial_response,
            limit: 0,
        };
        let out = fan_out_series(&self.stores, &q, self.opts.store_timeout, &self.metrics).await?;
        let (start, end) = (hints.start_ms, hints.end_ms);
        let dedup = self.opts.dedup.then(|| self.opts.replica_labels.clone());
        let (series, mut warnings) = tokio::task::spawn_blocking(move || {
            decode_all(out.series, start, end, dedup.as_deref())
        })
        .await
        .map_err(|e| SourceError::Unavailable(format!("decoding series failed: {e}")))?;
        let mut all = out.warnings;
        all.append(&mut warnings);
        Ok(SelectResult {
            series,
            warnings: all,
        })
    }
}
