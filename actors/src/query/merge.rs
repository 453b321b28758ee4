//! K-way merge of sorted per-store answers into one sorted list,
//! joining equal label sets and dropping chunks several stores sent alike
//! (HA stores with the same block).

use std::collections::{HashSet, VecDeque};

use skein_promql::Labels;
use skein_proto::thanos::AggrChunk;
use xxhash_rust::xxh64::xxh64;

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

/// K-way merge of per-store answers, each sorted by labels with unique
/// label sets (as [`super::fanout::read_series_answer`] checks): one
/// sorted list, equal label sets joined and their chunks merged.
pub fn merge_sorted(answers: Vec<Vec<MergedSeries>>) -> Vec<MergedSeries> {
    let total: usize = answers.iter().map(Vec::len).sum();
    let mut out: Vec<MergedSeries> = Vec::with_capacity(total);
    let mut queues: Vec<VecDeque<MergedSeries>> = answers
        .into_iter()
        .filter(|a| !a.is_empty())
        .map(VecDeque::from)
        .collect();
    loop {
        let mut min: Option<(usize, &Labels)> = None;
        for (i, q) in queues.iter().enumerate() {
            if let Some(h) = q.front()
                && min.is_none_or(|(_, m)| h.labels < *m)
            {
                min = Some((i, &h.labels));
            }
        }
        let Some((m, _)) = min else { break };
        let Some(mut first) = queues[m].pop_front() else {
            break;
        };
        for (i, q) in queues.iter_mut().enumerate() {
            if i != m
                && q.front().is_some_and(|h| h.labels == first.labels)
                && let Some(s) = q.pop_front()
            {
                merge_chunks(&mut first.chunks, s.chunks);
            }
        }
        out.push(first);
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
