//! Prometheus remote read, without the HTTP: the request body, the frame
//! decoder of the streamed (`STREAMED_XOR_CHUNKS`) answer, and the
//! re-encoding of a `SAMPLES` answer into XOR chunks.
//!
//! A streamed answer is a sequence of frames, each
//! `uvarint(len) | u32 big-endian CRC32-Castagnoli(payload) | payload`,
//! where the payload is a `ChunkedReadResponse`.

use bytes::{Buf, BytesMut};
use prost::Message;
use skein_promql::{Label, LabelMatcher, Labels, MatchOp};
use skein_proto::prometheus as prompb;
use skein_proto::thanos;
use skein_tsdb::chunkenc::encode_xor;

/// Largest frame accepted from Prometheus, as Thanos does.
pub const MAX_FRAME_BYTES: usize = 50 * 1024 * 1024;

/// Most samples put in one XOR chunk when re-encoding a `SAMPLES` answer.
pub const SAMPLES_PER_CHUNK: usize = 120;

#[derive(Debug, thiserror::Error)]
pub enum RemoteReadError {
    #[error("remote read frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: u64, max: usize },
    #[error(
        "remote read frame checksum mismatch: header says {expected:#010x}, payload has {actual:#010x}"
    )]
    Checksum { expected: u32, actual: u32 },
    #[error("remote read frame length is not a valid uvarint")]
    BadLength,
    #[error("remote read response ended inside a frame ({0} bytes left over)")]
    Truncated(usize),
    #[error("cannot decode remote read protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error(
        "remote read SAMPLES response decompresses to {len} bytes, over the limit of {max} bytes (ask for a shorter time range or fewer series)"
    )]
    ResponseTooLarge { len: usize, max: usize },
    #[error("cannot snappy-decompress remote read response: {0}")]
    Snappy(#[from] snap::Error),
    #[error("remote read chunk has unknown encoding {0}")]
    UnknownChunkEncoding(i32),
    #[error(
        "remote read SAMPLES response holds native histograms, which the sidecar cannot re-encode"
    )]
    Histograms,
    #[error("remote read SAMPLES response has {got} query results, expected 1")]
    ResultCount { got: usize },
}

/// One series as Prometheus returned it: labels sorted, chunks in StoreAPI
/// form (raw only).
#[derive(Clone, Debug, PartialEq)]
pub struct RawSeries {
    pub labels: Labels,
    pub chunks: Vec<thanos::AggrChunk>,
}

/// The snappy(block)-compressed `ReadRequest` for one query, accepting the
/// given answer types in order of preference.
pub fn encode_request(
    start_ms: i64,
    end_ms: i64,
    matchers: &[LabelMatcher],
    accepted: &[prompb::read_request::ResponseType],
) -> Result<Vec<u8>, RemoteReadError> {
    let req = prompb::ReadRequest {
        queries: vec![prompb::Query {
            start_timestamp_ms: start_ms,
            end_timestamp_ms: end_ms,
            matchers: matchers.iter().map(to_prompb_matcher).collect(),
            hints: None,
        }],
        accepted_response_types: accepted.iter().map(|t| *t as i32).collect(),
    };
    Ok(snap::raw::Encoder::new().compress_vec(&req.encode_to_vec())?)
}

pub fn to_prompb_matcher(m: &LabelMatcher) -> prompb::LabelMatcher {
    use prompb::label_matcher::Type;
    let t = match m.op {
        MatchOp::Equal => Type::Eq,
        MatchOp::NotEqual => Type::Neq,
        MatchOp::Regex => Type::Re,
        MatchOp::NotRegex => Type::Nre,
    };
    prompb::LabelMatcher {
        r#type: t as i32,
        name: m.name.clone(),
        value: m.value.clone(),
    }
}

/// Splits a byte stream into `ChunkedReadResponse` frames. Feed it bytes as
/// they arrive; it keeps at most one partial frame.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `None` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<prompb::ChunkedReadResponse>, RemoteReadError> {
        let Some((len, varint_len)) = read_uvarint(&self.buf)? else {
            return Ok(None);
        };
        if len > MAX_FRAME_BYTES as u64 {
            return Err(RemoteReadError::FrameTooLarge {
                len,
                max: MAX_FRAME_BYTES,
            });
        }
        // len <= 50 MiB, so it fits a usize.
        let len = len as usize;
        let total = varint_len + 4 + len;
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(varint_len);
        let expected = self.buf.get_u32();
        let payload = self.buf.split_to(len);
        let actual = crc32c::crc32c(&payload);
        if actual != expected {
            return Err(RemoteReadError::Checksum { expected, actual });
        }
        Ok(Some(prompb::ChunkedReadResponse::decode(payload.freeze())?))
    }

    /// Call at the end of the body: leftover bytes mean a cut-off frame.
    pub fn finish(&self) -> Result<(), RemoteReadError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(RemoteReadError::Truncated(self.buf.len()))
        }
    }
}

/// `Some((value, bytes used))`, `None` if the varint is not complete yet.
fn read_uvarint(buf: &[u8]) -> Result<Option<(u64, usize)>, RemoteReadError> {
    let mut v: u64 = 0;
    for (i, b) in buf.iter().enumerate() {
        if i >= 10 {
            return Err(RemoteReadError::BadLength);
        }
        let bits = u64::from(b & 0x7f);
        if i == 9 && *b > 1 {
            return Err(RemoteReadError::BadLength);
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((v, i + 1)));
        }
    }
    if buf.len() >= 10 {
        return Err(RemoteReadError::BadLength);
    }
    Ok(None)
}

/// Converts a streamed series; chunks pass through untouched (the StoreAPI
/// encoding is the remote-read encoding minus one).
pub fn from_chunked_series(s: prompb::ChunkedSeries) -> Result<RawSeries, RemoteReadError> {
    let chunks = s
        .chunks
        .into_iter()
        .map(|c| {
            let enc = match prompb::chunk::Encoding::try_from(c.r#type) {
                Ok(prompb::chunk::Encoding::Xor) => thanos::chunk::Encoding::Xor,
                Ok(prompb::chunk::Encoding::Histogram) => thanos::chunk::Encoding::Histogram,
                Ok(prompb::chunk::Encoding::FloatHistogram) => {
                    thanos::chunk::Encoding::FloatHistogram
                }
                _ => return Err(RemoteReadError::UnknownChunkEncoding(c.r#type)),
            };
            Ok(aggr_chunk(c.min_time_ms, c.max_time_ms, enc, c.data))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RawSeries {
        labels: labels_from_prompb(s.labels),
        chunks,
    })
}

/// Decodes a `SAMPLES` answer (snappy block body holding a `ReadResponse`)
/// and re-encodes each series' samples into XOR chunks.
/// The decompressed answer is held whole, like one streamed frame, so it has the
/// same bound ([`MAX_FRAME_BYTES`]); the snappy header announces its length, which is
/// checked before anything is allocated.
pub fn decode_samples_response(body: &[u8]) -> Result<Vec<RawSeries>, RemoteReadError> {
    let len = snap::raw::decompress_len(body)?;
    if len > MAX_FRAME_BYTES {
        return Err(RemoteReadError::ResponseTooLarge {
            len,
            max: MAX_FRAME_BYTES,
        });
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body)?;
    let resp = prompb::ReadResponse::decode(raw.as_slice())?;
    if resp.results.len() > 1 {
        return Err(RemoteReadError::ResultCount {
            got: resp.results.len(),
        });
    }
    let mut out = Vec::new();
    for ts in resp.results.into_iter().flat_map(|r| r.timeseries) {
        if !ts.histograms.is_empty() {
            return Err(RemoteReadError::Histograms);
        }
        let samples: Vec<(i64, f64)> = ts.samples.iter().map(|s| (s.timestamp, s.value)).collect();
        let chunks = samples
            .chunks(SAMPLES_PER_CHUNK)
            .filter_map(|part| {
                let (first, last) = (part.first()?, part.last()?);
                Some(aggr_chunk(
                    first.0,
                    last.0,
                    thanos::chunk::Encoding::Xor,
                    encode_xor(part),
                ))
            })
            .collect();
        out.push(RawSeries {
            labels: labels_from_prompb(ts.labels),
            chunks,
        });
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

fn aggr_chunk(
    min_time: i64,
    max_time: i64,
    enc: thanos::chunk::Encoding,
    data: Vec<u8>,
) -> thanos::AggrChunk {
    let hash = xxhash_rust::xxh64::xxh64(&data, 0);
    thanos::AggrChunk {
        min_time,
        max_time,
        raw: Some(thanos::Chunk {
            r#type: enc as i32,
            data,
            hash,
        }),
        ..Default::default()
    }
}

fn labels_from_prompb(ls: Vec<prompb::Label>) -> Labels {
    Labels::new(
        ls.into_iter()
            .map(|l| Label::new(l.name, l.value))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use skein_tsdb::chunkenc::decode_xor_all;

    fn frame(msg: &prompb::ChunkedReadResponse) -> Vec<u8> {
        let payload = msg.encode_to_vec();
        let mut out = Vec::new();
        let mut len = payload.len() as u64;
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
        out.extend_from_slice(&payload);
        out
    }

    fn series(name: &str, ty: i32) -> prompb::ChunkedReadResponse {
        prompb::ChunkedReadResponse {
            chunked_series: vec![prompb::ChunkedSeries {
                labels: vec![prompb::Label {
                    name: "__name__".into(),
                    value: name.into(),
                }],
                chunks: vec![prompb::Chunk {
                    min_time_ms: 1,
                    max_time_ms: 2,
                    r#type: ty,
                    data: encode_xor(&[(1, 1.0), (2, 2.0)]),
                }],
            }],
            query_index: 0,
        }
    }

    #[test]
    fn frames_split_at_any_byte_boundary_decode_the_same() {
        let mut body = frame(&series("a", 1));
        body.extend(frame(&series("b", 1)));
        for step in [1, 3, 7, body.len()] {
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for part in body.chunks(step) {
                d.push(part);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            d.finish().unwrap();
            assert_eq!(got, vec![series("a", 1), series("b", 1)], "step {step}");
        }
    }

    #[test]
    fn checksum_mismatch_truncation_and_oversize_are_errors() {
        let mut body = frame(&series("a", 1));
        let last = body.len() - 1;
        body[last] ^= 0xff;
        let mut d = FrameDecoder::new();
        d.push(&body);
        assert!(matches!(
            d.next_frame(),
            Err(RemoteReadError::Checksum { .. })
        ));

        let body = frame(&series("a", 1));
        let mut d = FrameDecoder::new();
        d.push(&body[..body.len() - 2]);
        assert!(d.next_frame().unwrap().is_none());
        assert!(matches!(d.finish(), Err(RemoteReadError::Truncated(_))));

        let mut d = FrameDecoder::new();
        d.push(&[0x80, 0x80, 0x80, 0x80, 0x01]); // 2^28 bytes
        assert!(matches!(
            d.next_frame(),
            Err(RemoteReadError::FrameTooLarge { .. })
        ));

        let mut d = FrameDecoder::new();
        d.push(&[0xff; 11]);
        assert!(matches!(d.next_frame(), Err(RemoteReadError::BadLength)));
    }

    #[test]
    fn chunk_types_shift_by_one_and_unknown_is_refused() {
        let s = from_chunked_series(series("a", 1).chunked_series.remove(0)).unwrap();
        let raw = s.chunks[0].raw.clone().unwrap();
        assert_eq!(raw.r#type, thanos::chunk::Encoding::Xor as i32);
        assert_eq!(raw.hash, xxhash_rust::xxh64::xxh64(&raw.data, 0));
        let err = from_chunked_series(series("a", 0).chunked_series.remove(0)).unwrap_err();
        assert!(matches!(err, RemoteReadError::UnknownChunkEncoding(0)));
    }

    #[test]
    fn samples_answer_announcing_a_huge_length_is_refused_before_allocating() {
        // A snappy header (uvarint length) claiming 256 MiB, then one literal byte.
        let mut body = Vec::new();
        let mut len: u64 = 256 << 20;
        while len >= 0x80 {
            body.push((len as u8) | 0x80);
            len >>= 7;
        }
        body.push(len as u8);
        body.extend_from_slice(&[0x00, b'x']);
        assert!(matches!(
            decode_samples_response(&body),
            Err(RemoteReadError::ResponseTooLarge { len, .. }) if len == 256 << 20
        ));
    }

    #[test]
    fn samples_are_reencoded_in_chunks_of_120() {
        let samples: Vec<prompb::Sample> = (0..250)
            .map(|i| prompb::Sample {
                value: i as f64 * 0.5,
                timestamp: 1000 + i * 15,
            })
            .collect();
        let resp = prompb::ReadResponse {
            results: vec![prompb::QueryResult {
                timeseries: vec![prompb::TimeSeries {
                    labels: vec![prompb::Label {
                        name: "job".into(),
                        value: "x".into(),
                    }],
                    samples: samples.clone(),
                    ..Default::default()
                }],
            }],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&resp.encode_to_vec())
            .unwrap();
        let got = decode_samples_response(&body).unwrap();
        assert_eq!(got.len(), 1);
        let sizes: Vec<usize> = got[0]
            .chunks
            .iter()
            .map(|c| decode_xor_all(&c.raw.as_ref().unwrap().data).unwrap().len())
            .collect();
        assert_eq!(sizes, vec![120, 120, 10]);
        let all: Vec<(i64, f64)> = got[0]
            .chunks
            .iter()
            .flat_map(|c| decode_xor_all(&c.raw.as_ref().unwrap().data).unwrap())
            .collect();
        let want: Vec<(i64, f64)> = samples.iter().map(|s| (s.timestamp, s.value)).collect();
        assert_eq!(all, want);
        assert_eq!(got[0].chunks[1].min_time, 1000 + 120 * 15);
        assert_eq!(got[0].chunks[1].max_time, 1000 + 239 * 15);
    }
}
