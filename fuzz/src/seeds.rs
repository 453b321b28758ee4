//! Valid inputs made at run time from the real writers and encoders: a block written by the
//! tsdb writer (index, chunk segment, meta.json), remote-read answers, StoreAPI streams and,
//! when promtool is installed, a block Prometheus' own code wrote. The replay test adds
//! them to the committed corpus; `fuzz-seeds` writes them into a corpus directory for
//! `make fuzz` to start from.

use prost::Message;
use skein_proto::prometheus as prompb;
use skein_proto::thanos;
use skein_tsdb::Label;
use skein_tsdb::chunkenc::encode_xor;
use std::path::Path;
use std::process::Command;

/// The files of one block.
pub struct BlockFiles {
    pub index: Vec<u8>,
    pub segment: Vec<u8>,
    pub meta: Vec<u8>,
}

fn read_block(dir: &Path) -> Option<BlockFiles> {
    Some(BlockFiles {
        index: std::fs::read(dir.join("index")).ok()?,
        segment: std::fs::read(dir.join("chunks").join("000001")).ok()?,
        meta: std::fs::read(dir.join("meta.json")).ok()?,
    })
}

fn only_block(parent: &Path) -> Option<BlockFiles> {
    let dir = std::fs::read_dir(parent)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.path().join("index").is_file())?;
    read_block(&dir.path())
}

/// A small block from the tsdb writer: a few series over two label names, some with
/// several chunks, stale markers and odd values.
pub fn skein_block() -> Option<BlockFiles> {
    let dir = tempfile::tempdir().ok()?;
    let mut series = Vec::new();
    for job in ["api", "db", "web"] {
        for i in 0..4 {
            let labels = vec![
                Label::new("__name__", "up"),
                Label::new("instance", format!("h{i}:9100")),
                Label::new("job", job),
            ];
            let samples: Vec<(i64, f64)> = (0..(30 + 50 * i))
                .map(|k| {
                    let v = match k % 7 {
                        0 => f64::from_bits(0x7ff0_0000_0000_0002),
                        1 => -0.0,
                        2 => 1e300,
                        _ => k as f64 * 0.25,
                    };
                    (1_700_000_000_000 + k * 15_000 + (k % 3), v)
                })
                .collect();
            series.push((labels, samples));
        }
    }
    skein_tsdb::block::write_block(dir.path(), series).ok()?;
    only_block(dir.path())
}

/// A block written by promtool (Prometheus' own TSDB code) from OpenMetrics text, if
/// promtool is installed.
pub fn promtool_block() -> Option<BlockFiles> {
    let dir = tempfile::tempdir().ok()?;
    let input = dir.path().join("in.om");
    let mut text = String::new();
    for (i, job) in ["a", "b"].iter().enumerate() {
        for k in 0..130 {
            text.push_str(&format!(
                "http_requests_total{{job=\"{job}\",code=\"{}\"}} {} {}\n",
                200 + i,
                k * 3 + i,
                1_700_000_000 + k * 15
            ));
        }
    }
    text.push_str("# EOF\n");
    std::fs::write(&input, text).ok()?;
    let out = dir.path().join("blocks");
    let status = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&out)
        .output()
        .ok()?;
    if !status.status.success() {
        return None;
    }
    only_block(&out)
}

fn framed(msg: &prompb::ChunkedReadResponse) -> Vec<u8> {
    let payload = msg.encode_to_vec();
    let mut out = Vec::new();
    skein_tsdb::encoding::put_uvarint(&mut out, payload.len() as u64);
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

fn prom_label(name: &str, value: &str) -> prompb::Label {
    prompb::Label {
        name: name.into(),
        value: value.into(),
    }
}

/// A streamed remote-read answer: two frames of two series.
pub fn remote_read_stream() -> Vec<u8> {
    let mut body = Vec::new();
    for (q, name) in [(0, "up"), (0, "x")] {
        let msg = prompb::ChunkedReadResponse {
            chunked_series: (0..2)
                .map(|i| prompb::ChunkedSeries {
                    labels: vec![
                        prom_label("__name__", name),
                        prom_label("i", &i.to_string()),
                    ],
                    chunks: vec![prompb::Chunk {
                        min_time_ms: 1000,
                        max_time_ms: 1000 + 15_000 * 9,
                        r#type: 1,
                        data: encode_xor(
                            &(0..10)
                                .map(|k| (1000 + k * 15_000, k as f64))
                                .collect::<Vec<_>>(),
                        ),
                    }],
                })
                .collect(),
            query_index: q,
        };
        body.extend(framed(&msg));
    }
    body
}

/// A `SAMPLES` answer (uncompressed protobuf; the target's mode 1 compresses it).
pub fn remote_read_samples_proto() -> Vec<u8> {
    prompb::ReadResponse {
        results: vec![prompb::QueryResult {
            timeseries: (0..2)
                .map(|i| prompb::TimeSeries {
                    labels: vec![
                        prom_label("__name__", "up"),
                        prom_label("i", &i.to_string()),
                    ],
                    samples: (0..130)
                        .map(|k| prompb::Sample {
                            value: k as f64,
                            timestamp: 1000 + k * 15_000,
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }],
    }
    .encode_to_vec()
}

/// One store's Series stream: series (two replicas of the same one), a batch and a warning.
pub fn store_series_stream() -> Vec<u8> {
    let chunk = |start: i64| thanos::AggrChunk {
        min_time: start,
        max_time: start + 15_000 * 9,
        raw: Some(thanos::Chunk {
            r#type: 0,
            data: encode_xor(
                &(0..10)
                    .map(|k| (start + k * 15_000, k as f64))
                    .collect::<Vec<_>>(),
            ),
            hash: 0,
        }),
        ..Default::default()
    };
    let label = |name: &str, value: &str| thanos::Label {
        name: name.into(),
        value: value.into(),
    };
    let series = |replica: &str, start: i64| thanos::Series {
        labels: vec![label("__name__", "up"), label("replica", replica)],
        chunks: vec![chunk(start), chunk(start + 150_000)],
    };
    let msgs = [
        thanos::SeriesResponse {
            result: Some(thanos::series_response::Result::Series(series("a", 0))),
        },
        thanos::SeriesResponse {
            result: Some(thanos::series_response::Result::Series(series("b", 5_000))),
        },
        thanos::SeriesResponse {
            result: Some(thanos::series_response::Result::Batch(
                thanos::SeriesBatch {
                    series: vec![series("c", 300_000)],
                },
            )),
        },
        thanos::SeriesResponse {
            result: Some(thanos::series_response::Result::Warning("w".into())),
        },
    ];
    let mut out = Vec::new();
    for m in msgs {
        out.extend(m.encode_length_delimited_to_vec());
    }
    out
}

fn with_mode(mode: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 1);
    v.push(mode);
    v.extend_from_slice(body);
    v
}

/// Generated seeds of target `name` (named, for the replay test's report).
pub fn generated(name: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let blocks: Vec<(&str, BlockFiles)> = match name {
        "tsdb_index" | "tsdb_block" | "tsdb_chunks" | "xor_chunk" | "meta_json" => {
            [("skein", skein_block()), ("promtool", promtool_block())]
                .into_iter()
                .filter_map(|(n, b)| b.map(|b| (n, b)))
                .collect()
        }
        _ => Vec::new(),
    };
    match name {
        "tsdb_index" => {
            for (n, b) in &blocks {
                out.push((format!("gen-{n}-index"), with_mode(0, &b.index)));
                out.push((format!("gen-{n}-index-fixup"), with_mode(1, &b.index)));
            }
        }
        "tsdb_block" => {
            for (n, b) in &blocks {
                let mut body = (b.index.len() as u32).to_be_bytes().to_vec();
                body.extend_from_slice(&b.index);
                body.extend_from_slice(&b.segment);
                out.push((format!("gen-{n}-block"), with_mode(0, &body)));
                out.push((format!("gen-{n}-block-fixup"), with_mode(1, &body)));
            }
        }
        "tsdb_chunks" => {
            for (n, b) in &blocks {
                out.push((format!("gen-{n}-segment"), with_mode(0, &b.segment)));
                out.push((format!("gen-{n}-segment-fixup"), with_mode(3, &b.segment)));
            }
        }
        "xor_chunk" => {
            for (n, b) in &blocks {
                // The first chunk of the segment: skip header, length and encoding byte.
                let seg = &b.segment;
                let mut c = skein_tsdb::encoding::Cursor::new(seg.get(8..).unwrap_or_default());
                if let Ok(len) = c.uvarint() {
                    let start = 8 + c.position() + 1;
                    if let Some(chunk) = seg.get(start..start + len as usize) {
                        out.push((format!("gen-{n}-chunk"), chunk.to_vec()));
                    }
                }
            }
        }
        "meta_json" => {
            for (n, b) in &blocks {
                out.push((format!("gen-{n}-meta"), b.meta.clone()));
            }
        }
        "remote_read_stream" => {
            out.push(("gen-stream".into(), with_mode(0, &remote_read_stream())));
            out.push((
                "gen-stream-fixup".into(),
                with_mode(3, &remote_read_stream()),
            ));
        }
        "remote_read_samples" => {
            let proto = remote_read_samples_proto();
            if let Ok(z) = snap::raw::Encoder::new().compress_vec(&proto) {
                out.push(("gen-samples".into(), with_mode(0, &z)));
            }
            out.push(("gen-samples-proto".into(), with_mode(1, &proto)));
        }
        "store_series" => {
            out.push(("gen-stream".into(), with_mode(1, &store_series_stream())));
            out.push((
                "gen-stream-window".into(),
                with_mode(3, &store_series_stream()),
            ));
        }
        "wan_delivery" => out.extend(crate::targets::wan::seeds()),
        "gossip_datagrams" => out.extend(crate::targets::gossip::seeds()),
        "promql" => out.extend(crate::targets::promql::seeds()),
        _ => {}
    }
    out
}
