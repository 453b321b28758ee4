//! The querier's side of a StoreAPI Series call: what a store sends, merged and decoded.

use prost::Message;
use skein_actors::matchers::labels_from_wire;
use skein_actors::query::merge::{MergedSeries, sort_and_join};
use skein_actors::query::source::decode_all;
use skein_proto::thanos::{SeriesResponse, series_response};

/// Most messages read from one input.
const MAX_MESSAGES: usize = 256;

/// Length-delimited `SeriesResponse` messages, as one store's stream. Their series are
/// merged and sorted as the querier does for a store that streams out of order, then
/// decoded over a window taken from the first message and over all time, with and without
/// replica dedup.
pub fn series(data: &[u8]) {
    let mut buf = data;
    let mut merged = Vec::new();
    let mut warnings = Vec::new();
    for _ in 0..MAX_MESSAGES {
        if buf.is_empty() {
            break;
        }
        let Ok(msg) = SeriesResponse::decode_length_delimited(&mut buf) else {
            break;
        };
        let list = match msg.result {
            Some(series_response::Result::Series(s)) => vec![s],
            Some(series_response::Result::Batch(b)) => b.series,
            Some(series_response::Result::Warning(w)) => {
                warnings.push(w);
                continue;
            }
            _ => continue,
        };
        for s in list {
            merged.push(MergedSeries {
                labels: labels_from_wire(&s.labels),
                chunks: s.chunks,
            });
        }
    }
    let merged = sort_and_join(merged);
    for w in merged.windows(2) {
        assert!(
            w[0].labels < w[1].labels,
            "sort_and_join leaves sorted, distinct series"
        );
    }
    let window = merged
        .first()
        .and_then(|s| s.chunks.first())
        .map_or((0, 0), |c| (c.min_time, c.max_time));
    let replica = ["replica".to_string()];
    let (series, _) = decode_all(merged.clone(), window.0, window.1, Some(&replica));
    for s in &series {
        assert!(s.samples.windows(2).all(|w| w[0].t < w[1].t));
    }
    let _ = decode_all(merged, i64::MIN, i64::MAX, None);
}
