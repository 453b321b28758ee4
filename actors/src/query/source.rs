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

/// Above this many chunks, decoding is split over the cores.
const PARALLEL_DECODE_CHUNKS: usize = 4096;

/// How one query reads from the stores.
#[derive(Clone, Debug)]
pub struct SourceOptions {
    pub dedup: bool,
    pub replica_labels: Vec<String>,
    pub partial_response: bool,
    pub store_timeout: Duration,
    /// What one store's answer may be.
    pub store_limits: super::client::StoreLimits,
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
    let decode_part = |part: &[MergedSeries]| {
        let mut warnings = Vec::new();
        let series: Vec<Series> = part
            .iter()
            .map(|m| {
                Series::new(
                    m.labels.clone(),
                    decode_series(m, start, end, &mut warnings),
                )
            })
            .filter(|s| !s.samples.is_empty())
            .collect();
        (series, warnings)
    };
    let chunks: usize = merged.iter().map(|m| m.chunks.len()).sum();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut series, mut warnings) = if chunks < PARALLEL_DECODE_CHUNKS || threads < 2 {
        decode_part(&merged)
    } else {
        // Big answers: decode in parallel, keeping the label order.
        let per = merged.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = merged
                .chunks(per)
                .map(|part| scope.spawn(move || decode_part(part)))
                .collect();
            let mut series = Vec::with_capacity(merged.len());
            let mut warnings = Vec::new();
            for h in handles {
                match h.join() {
                    Ok((s, w)) => {
                        series.extend(s);
                        warnings.extend(w);
                    }
                    Err(_) => warnings.push("decoding a part of the series failed".to_string()),
                }
            }
            (series, warnings)
        })
    };
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
        let out = fan_out_series(
            &self.stores,
            &q,
            (self.opts.store_timeout, self.opts.store_limits),
            &self.metrics,
        )
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use skein_promql::Labels;
    use skein_proto::thanos::{AggrChunk, Chunk};
    use skein_tsdb::chunkenc::encode_xor;

    fn merged(i: usize) -> MergedSeries {
        let name = format!("s{i:05}");
        let samples: Vec<(i64, f64)> = (0..10)
            .map(|k| (k * 1000, (i + k as usize) as f64))
            .collect();
        MergedSeries {
            labels: Labels::from_pairs([("__name__", name.as_str())]),
            chunks: vec![AggrChunk {
                min_time: 0,
                max_time: 9000,
                raw: Some(Chunk {
                    r#type: Encoding::Xor as i32,
                    data: encode_xor(&samples),
                    hash: 0,
                }),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn parallel_decoding_keeps_order_and_values() {
        let n = PARALLEL_DECODE_CHUNKS + 500;
        let input: Vec<MergedSeries> = (0..n).map(merged).collect();
        let (series, warnings) = decode_all(input.clone(), 2000, 5000, None);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(series.len(), n);
        for (i, s) in series.iter().enumerate() {
            assert_eq!(s.labels, input[i].labels);
            let want: Vec<Sample> = (2..=5)
                .map(|k| Sample {
                    t: k * 1000,
                    v: (i + k as usize) as f64,
                })
                .collect();
            assert_eq!(s.samples, want);
        }
        // Small answers take the serial path and agree.
        let (few, _) = decode_all(input[..3].to_vec(), 2000, 5000, None);
        assert_eq!(few.as_slice(), &series[..3]);
    }

    #[test]
    fn corrupt_and_histogram_chunks_become_warnings() {
        let mut m = merged(1);
        m.chunks.push(AggrChunk {
            min_time: 0,
            max_time: 9000,
            raw: Some(Chunk {
                r#type: Encoding::Xor as i32,
                data: vec![0, 5, 1],
                hash: 0,
            }),
            ..Default::default()
        });
        m.chunks.push(AggrChunk {
            min_time: 0,
            max_time: 9000,
            raw: Some(Chunk {
                r#type: Encoding::Histogram as i32,
                data: vec![0, 0],
                hash: 0,
            }),
            ..Default::default()
        });
        let (series, warnings) = decode_all(vec![m], 0, 9000, None);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].samples.len(), 10);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }
}
