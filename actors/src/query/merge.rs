//! K-way merge of sorted per-store series streams into one sorted stream,
//! joining equal label sets and dropping chunks several stores sent alike
//! (HA stores with the same block).

use std::collections::HashSet;

use futures::future::join_all;
use skein_promql::Labels;
use skein_proto::thanos::AggrChunk;
use xxhash_rust::xxh64::xxh64;

use super::fanout::{FanoutError, StoreStream};
use super::metrics::QueryMetrics;

/// One series after the merge: its labels and every chunk any store sent.
#[derive(Clone, Debug, PartialEq)]
pub struct MergedSeries {
    pub labels: Labels,
    pub chunks: Vec<AggrChunk>,
}

/// Identity of a chunk for dropping duplicates: its hash (computed when the
/// store left it out) and time range.
fn chunk_key(c: &AggrChunk) -> (u64, i64, i64, usize) {
    let hash = c
        .raw
        .as_ref()
        .map(|r| {
            if r.hash != 0 {
                r.hash
            } else {
                xxh64(&r.data, 0)
            }
        })
        .unwrap_or(0);
    let len = c.raw.as_ref().map(|r| r.data.len()).unwrap_or(0);
    (hash, c.min_time, c.max_time, len)
}

/// Appends `more` to `into`, skipping chunks already present, and keeps the
/// chunks ordered by min time.
pub fn merge_chunks(into: &mut Vec<AggrChunk>, more: Vec<AggrChunk>) {
    let mut seen: HashSet<_> = into.iter().map(chunk_key).collect();
    for c in more {
        if seen.insert(chunk_key(&c)) {
            into.push(c);
        }
    }
    into.sort_by_key(|c| (c.min_time, c.max_time));
}

/// What came out of the merge: the series in label order and the warnings
/// (failed stores and in-band store warnings).
#[derive(Debug, Default)]
pub struct MergeOutput {
    pub series: Vec<MergedSeries>,
    pub warnings: Vec<String>,
    /// Names of the stores that failed (their errors are in `warnings`).
    pub failed: Vec<String>,
}

/// Merges the streams. A store whose stream fails or passes its deadline is
/// dropped with a warning; with `partial` off, that fails the whole merge.
pub async fn merge_streams(
    mut streams: Vec<StoreStream>,
    partial: bool,
    metrics: &QueryMetrics,
) -> Result<MergeOutput, FanoutError> {
    let mut out = MergeOutput::default();
    let mut heads: Vec<Option<MergedSeries>> = vec![None; streams.len()];
    let mut alive: Vec<bool> = vec![true; streams.len()];
    let mut refill: Vec<usize> = (0..streams.len()).collect();
    loop {
        // Fetch the next series of every stream whose head was consumed,
        // concurrently; each fetch is bounded by its store's deadline.
        let fetches = streams
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| refill.contains(i))
            .map(|(i, s)| async move { (i, s.next_series().await) });
        for (i, res) in join_all(fetches).await {
            match res {
                Ok(Some(series)) => heads[i] = Some(series),
                Ok(None) => alive[i] = false,
                Err(e) => {
                    alive[i] = false;
                    let name = streams[i].name().to_string();
                    metrics.store_error(&name);
                    if !partial {
                        return Err(FanoutError::Unavailable(format!(
                            "receive series from store {name}: {e}"
                        )));
                    }
                    out.warnings
                        .push(format!("receive series from store {name}: {e}"));
                    out.failed.push(name);
                }
            }
        }
        refill.clear();
        let min = heads.iter().flatten().map(|s| &s.labels).min().cloned();
        let Some(min) = min else { break };
        let mut merged: Option<MergedSeries> = None;
        for (i, head) in heads.iter_mut().enumerate() {
            if head.as_ref().is_some_and(|s| s.labels == min) {
                if let Some(s) = head.take() {
                    match merged.as_mut() {
                        None => merged = Some(s),
                        Some(m) => merge_chunks(&mut m.chunks, s.chunks),
                    }
                }
                if alive[i] {
                    refill.push(i);
                }
            }
        }
        if let Some(m) = merged {
            out.series.push(m);
        }
    }
    if streams.iter().any(StoreStream::unsorted) {
        out.series = sort_and_join(std::mem::take(&mut out.series));
    }
    for s in &mut streams {
        out.warnings.append(s.take_warnings());
    }
    Ok(out)
}

/// Sorts series by labels and joins equal label sets: the fallback when a
/// store did not stream in order.
pub fn sort_and_join(mut series: Vec<MergedSeries>) -> Vec<MergedSeries> {
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut out: Vec<MergedSeries> = Vec::with_capacity(series.len());
    for s in series {
        match out.last_mut() {
            Some(prev) if prev.labels == s.labels => merge_chunks(&mut prev.chunks, s.chunks),
            _ => out.push(s),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use skein_proto::thanos::Chunk;

    fn chunk(min: i64, max: i64, data: &[u8], hash: u64) -> AggrChunk {
        AggrChunk {
            min_time: min,
            max_time: max,
            raw: Some(Chunk {
                r#type: 0,
                data: data.to_vec(),
                hash,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn identical_chunks_are_dropped_and_order_kept() {
        let mut a = vec![chunk(10, 20, b"b", 7), chunk(0, 9, b"a", 0)];
        merge_chunks(&mut a, vec![chunk(10, 20, b"b", 7), chunk(0, 9, b"a", 0)]);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].min_time, 0);
        merge_chunks(&mut a, vec![chunk(0, 9, b"c", 0), chunk(30, 40, b"d", 9)]);
        assert_eq!(a.len(), 4);
        assert_eq!(
            a.iter().map(|c| c.min_time).collect::<Vec<_>>(),
            vec![0, 0, 10, 30]
        );
    }
}
