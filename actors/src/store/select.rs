//! Series selection inside blocks: matchers on external labels decide per block, the rest go to
//! the index; labels get the block's external labels; chunks pass through as stored bytes.

use super::block::LoadedBlock;
use skein_proto::thanos::{self, AggrChunk, Chunk, chunk::Encoding, label_matcher};
use skein_tsdb::Label;
use skein_tsdb::block::BlockError;
use skein_tsdb::chunks::split_ref;
use skein_tsdb::index::{ChunkMeta, MatchOp, Matcher};
use std::collections::BTreeMap;

/// Converts wire matchers; a bad regex is an error naming the matcher.
pub fn convert_matchers(ms: &[thanos::LabelMatcher]) -> Result<Vec<Matcher>, String> {
    ms.iter()
        .map(|m| {
            let op = match label_matcher::Type::try_from(m.r#type) {
                Ok(label_matcher::Type::Eq) => MatchOp::Equal,
                Ok(label_matcher::Type::Neq) => MatchOp::NotEqual,
                Ok(label_matcher::Type::Re) => MatchOp::RegexMatch,
                Ok(label_matcher::Type::Nre) => MatchOp::RegexNoMatch,
                Err(_) => return Err(format!("unknown matcher type {}", m.r#type)),
            };
            let re = match op {
                MatchOp::RegexMatch | MatchOp::RegexNoMatch => Some(
                    skein_promql::re::anchored(&m.value)
                        .map_err(|e| format!("bad regex in matcher on {:?}: {e}", m.name))?,
                ),
                MatchOp::Equal | MatchOp::NotEqual => None,
            };
            Ok(Matcher::with_regex(op, m.name.clone(), m.value.clone(), re))
        })
        .collect()
}

/// The matchers to run against the block's index, or `None` when a matcher on one of the
/// block's external labels rules the whole block out.
pub fn plan_block(ext: &[Label], ms: &[Matcher]) -> Option<Vec<Matcher>> {
    let mut keep = Vec::with_capacity(ms.len());
    for m in ms {
        match ext.iter().find(|l| l.name == m.name) {
            Some(l) if !m.matches(&l.value) => return None,
            Some(_) => {}
            None => keep.push(m.clone()),
        }
    }
    Some(keep)
}

/// Series labels with the external labels added (they win over series labels of the same
/// name), external labels named in `drop` removed, sorted by name.
pub fn with_external(series: Vec<Label>, ext: &[Label], drop: &[String]) -> Vec<Label> {
    let mut out: Vec<Label> = series
        .into_iter()
        .filter(|l| !ext.iter().any(|e| e.name == l.name))
        .collect();
    out.extend(ext.iter().filter(|e| !drop.contains(&e.name)).cloned());
    out.sort();
    out
}

/// The wire encoding of a Prometheus chunk encoding byte.
pub fn wire_encoding(enc: u8) -> Option<Encoding> {
    match enc {
        1 => Some(Encoding::Xor),
        2 => Some(Encoding::Histogram),
        3 => Some(Encoding::FloatHistogram),
        _ => None,
    }
}

/// Bytes assumed for a chunk whose end is not known from the next chunk's start.
const CHUNK_ESTIMATE: u64 = 2048;

/// Warms the chunk cache for `chunks` with one batched request per segment instead of one
/// request per chunk page. Failures only cost the later reads a round trip each.
fn prefetch_chunks<'a>(b: &LoadedBlock, chunks: impl Iterator<Item = &'a ChunkMeta>) {
    let mut by_segment: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for c in chunks {
        let (seg, off) = split_ref(c.chunk_ref);
        by_segment.entry(seg).or_default().push(u64::from(off));
    }
    for (seg, mut offs) in by_segment {
        let Some(file) = b.segments.get(seg as usize) else {
            continue;
        };
        offs.sort_unstable();
        offs.dedup();
        let ranges: Vec<std::ops::Range<u64>> = offs
            .iter()
            .enumerate()
            .map(|(i, &o)| {
                let next = offs.get(i + 1).copied().unwrap_or(u64::MAX);
                o..next.min(o.saturating_add(CHUNK_ESTIMATE))
            })
            .collect();
        if let Err(e) = file.prefetch(&ranges) {
            tracing::debug!(block = %b.id, segment = seg, error = %e, "chunk prefetch failed");
        }
    }
}

/// One block's series for a request.
pub type BlockSeries = Vec<(Vec<Label>, Vec<AggrChunk>)>;

/// Reads the series of `b` matching `index_matchers` with chunks in `[min, max]`.
/// Blocking (ranged reads): call from a blocking thread.
pub fn read_block_series(
    b: &LoadedBlock,
    index_matchers: &[Matcher],
    min: i64,
    max: i64,
    skip_chunks: bool,
    drop: &[String],
) -> Result<BlockSeries, BlockError> {
    let selected = b.block.select(index_matchers, min, max)?;
    if !skip_chunks {
        prefetch_chunks(b, selected.iter().flat_map(|s| s.chunks.iter()));
    }
    let mut out = Vec::with_capacity(selected.len());
    for s in selected {
        let mut chunks = Vec::new();
        if !skip_chunks {
            chunks.reserve(s.chunks.len());
            for cm in &s.chunks {
                let raw = b.block.chunk(cm)?;
                let Some(enc) = wire_encoding(raw.encoding) else {
                    tracing::warn!(block = %b.id, encoding = raw.encoding, "skipping chunk of unknown encoding");
                    continue;
                };
                let hash = xxhash_rust::xxh64::xxh64(&raw.data, 0);
                chunks.push(AggrChunk {
                    min_time: cm.min_time,
                    max_time: cm.max_time,
                    raw: Some(Chunk {
                        r#type: enc as i32,
                        data: raw.data,
                        hash,
                    }),
                    ..AggrChunk::default()
                });
            }
        }
        out.push((with_external(s.labels, &b.ext_labels, drop), chunks));
    }
    Ok(out)
}

/// Merges per-block answers into series sorted by labels; chunks of the same series from
/// several blocks are concatenated in time order, exact duplicates dropped.
pub fn merge(parts: Vec<BlockSeries>) -> Vec<thanos::Series> {
    let mut all: BTreeMap<Vec<Label>, Vec<AggrChunk>> = BTreeMap::new();
    for part in parts {
        for (labels, chunks) in part {
            all.entry(labels).or_default().extend(chunks);
        }
    }
    all.into_iter()
        .map(|(labels, mut chunks)| {
            chunks.sort_by_key(|c| (c.min_time, c.max_time, c.raw.as_ref().map_or(0, |r| r.hash)));
            chunks.dedup_by(|a, b| {
                a.min_time == b.min_time
                    && a.max_time == b.max_time
                    && a.raw.as_ref().map(|r| r.hash) == b.raw.as_ref().map(|r| r.hash)
            });
            thanos::Series {
                labels: labels
                    .into_iter()
                    .map(|l| thanos::Label {
                        name: l.name,
                        value: l.value,
                    })
                    .collect(),
                chunks,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_regexes_compile_under_the_size_limit() {
        let wire = |v: &str| thanos::LabelMatcher {
            r#type: label_matcher::Type::Re as i32,
            name: "job".into(),
            value: v.into(),
        };
        let e = convert_matchers(&[wire("a{1000}{1000}")]).unwrap_err();
        assert!(e.contains("regex too large"), "{e}");
        assert!(convert_matchers(&[wire("a{1000}")]).is_ok());
    }

    #[test]
    fn external_labels_plan_and_overlay() {
        let ext = vec![Label::new("cluster", "eu"), Label::new("replica", "a")];
        let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
        assert!(plan_block(&ext, &[m(MatchOp::Equal, "cluster", "us")]).is_none());
        let keep = plan_block(
            &ext,
            &[
                m(MatchOp::RegexMatch, "cluster", "e.*"),
                m(MatchOp::Equal, "job", "api"),
            ],
        )
        .unwrap();
        assert_eq!(keep.len(), 1);
        assert_eq!(keep[0].name, "job");
        let l = with_external(
            vec![Label::new("__name__", "up"), Label::new("replica", "x")],
            &ext,
            &["replica".into(), "job".into()],
        );
        assert_eq!(
            l,
            vec![Label::new("__name__", "up"), Label::new("cluster", "eu")]
        );
        let wire = [thanos::LabelMatcher {
            r#type: 2,
            name: "a".into(),
            value: "(".into(),
        }];
        assert!(convert_matchers(&wire).is_err());
        let wire = [thanos::LabelMatcher {
            r#type: 9,
            name: "a".into(),
            value: "".into(),
        }];
        assert!(convert_matchers(&wire).is_err());
    }

    #[test]
    fn merge_sorts_and_dedups() {
        let c = |min, hash| AggrChunk {
            min_time: min,
            max_time: min + 10,
            raw: Some(Chunk {
                r#type: 0,
                data: vec![],
                hash,
            }),
            ..AggrChunk::default()
        };
        let a = vec![Label::new("a", "1")];
        let b = vec![Label::new("a", "2")];
        let out = merge(vec![
            vec![(b.clone(), vec![c(5, 1)]), (a.clone(), vec![c(20, 2)])],
            vec![(a.clone(), vec![c(0, 3), c(20, 2)])],
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].labels[0].value, "1");
        let mins: Vec<i64> = out[0].chunks.iter().map(|c| c.min_time).collect();
        assert_eq!(mins, vec![0, 20]);
    }
}
