//! The querier's side of a StoreAPI Series call: one store's answer as it comes off the
//! wire (gRPC frames decoded by tonic), checked by the querier's reader, merged with a
//! second replica and decoded.

use super::mode;
use bytes::Bytes;
use prost::Message;
use skein_actors::query::client::StoreLimits;
use skein_actors::query::fanout::{SeriesQuery, StoreBudget, read_series_answer};
use skein_actors::query::merge::merge_sorted;
use skein_actors::query::source::decode_all;
use skein_proto::thanos::SeriesResponse;
use std::sync::OnceLock;
use std::time::Duration;
use tonic::codec::{Codec, Streaming};

/// Most messages re-framed from one input.
const MAX_MESSAGES: usize = 256;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
    })
}

/// Re-frames length-delimited protobuf messages as gRPC frames (`0 | len <4b BE> | msg`).
fn grpc_frames(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..MAX_MESSAGES {
        if b.is_empty() {
            break;
        }
        let Ok(msg) = SeriesResponse::decode_length_delimited(&mut b) else {
            break;
        };
        let enc = msg.encode_to_vec();
        out.push(0);
        out.extend_from_slice(&(enc.len() as u32).to_be_bytes());
        out.extend_from_slice(&enc);
    }
    out
}

/// A store's Series response body. Mode bit 0: the rest is length-delimited
/// `SeriesResponse` messages, framed for gRPC here (else the rest is the raw body);
/// bit 1: the query asks for `[0, 10^12]` instead of all time. Small limits make the
/// size and count checks reachable.
pub fn series(data: &[u8]) {
    let (m, rest) = mode(data);
    let body = if m & 1 == 1 {
        grpc_frames(rest)
    } else {
        rest.to_vec()
    };
    let (min_time, max_time) = if m & 2 == 2 {
        (0, 1_000_000_000_000)
    } else {
        (i64::MIN, i64::MAX)
    };
    let q = SeriesQuery {
        min_time,
        max_time,
        matchers: Vec::new(),
        skip_chunks: false,
        query_hints: None,
        partial_response: true,
        limit: 0,
    };
    let budget = StoreBudget {
        timeout: Duration::from_secs(5),
        limits: StoreLimits {
            max_message_bytes: 16 * 1024,
            max_response_bytes: 48 * 1024,
            max_series: 64,
            max_label_values: 64,
        },
    };
    let decoder = tonic_prost::ProstCodec::<SeriesResponse, SeriesResponse>::default().decoder();
    let mut stream = Streaming::new_response(
        decoder,
        http_body_util::Full::new(Bytes::from(body)),
        tonic::codegen::http::StatusCode::OK,
        None,
        Some(budget.limits.max_message_bytes),
    );
    let answer = runtime().block_on(async {
        let deadline = tokio::time::Instant::now() + budget.timeout;
        read_series_answer("fuzz", &mut stream, &q, &budget, deadline).await
    });
    let Ok(answer) = answer else { return };
    assert!(answer.series.len() <= budget.limits.max_series);
    for w in answer.series.windows(2) {
        assert!(
            w[0].labels < w[1].labels,
            "a checked answer is sorted and unique"
        );
    }
    // Two HA replicas that answered alike, as the querier merges them.
    let merged = merge_sorted(vec![answer.series.clone(), answer.series]);
    let replica = ["replica".to_string()];
    let (series, _) = decode_all(merged.clone(), min_time, max_time, Some(&replica));
    for s in &series {
        assert!(s.samples.windows(2).all(|w| w[0].t < w[1].t));
    }
    let _ = decode_all(merged, min_time, max_time, None);
}
