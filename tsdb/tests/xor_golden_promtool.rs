//! Golden test: chunks written by real Prometheus (`promtool tsdb create-blocks-from
//! openmetrics`) decode to the samples we fed it, and our encoder reproduces their bytes exactly.

use skein_tsdb::block::Block;
use skein_tsdb::chunkenc::{decode_xor_all, encode_xor};
use std::process::Command;

const PROMTOOL: &str = "/usr/bin/promtool";

/// Parses a chunks segment file by its documented layout: 4-byte magic 0x85BD40DD, version 1,
/// 3 padding bytes, then chunks of (uvarint len, encoding byte, data, CRC32C of encoding+data).
fn chunks_of_segment(file: &[u8]) -> Vec<(u8, Vec<u8>)> {
    assert_eq!(&file[..4], &[0x85, 0xBD, 0x40, 0xDD]);
    assert_eq!(file[4], 1);
    let mut pos = 8;
    let mut out = Vec::new();
    while pos < file.len() {
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let b = file[pos];
            pos += 1;
            len |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        let enc = file[pos];
        let data = file[pos + 1..pos + 1 + len].to_vec();
        let crc = u32::from_be_bytes(file[pos + 1 + len..pos + 5 + len].try_into().unwrap());
        assert_eq!(crc, crc32c::crc32c(&file[pos..pos + 1 + len]), "chunk CRC");
        pos += 5 + len;
        out.push((enc, data));
    }
    out
}

/// Writes `samples` of one series as OpenMetrics, runs promtool and returns the chunks, read
/// both by the documented file layout and through Skein's block reader (which must agree).
fn promtool_chunks(samples: &[(i64, f64)]) -> Vec<(u8, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut om = String::from("# HELP golden A golden gauge.\n# TYPE golden gauge\n");
    for (t, v) in samples {
        let val = if v.is_nan() {
            "NaN".to_string()
        } else if v.is_infinite() {
            if *v > 0.0 {
                "+Inf".into()
            } else {
                "-Inf".into()
            }
        } else {
            format!("{v:?}")
        };
        om.push_str(&format!(
            "golden{{job=\"g\"}} {val} {}.{:03}\n",
            t.div_euclid(1000),
            t.rem_euclid(1000)
        ));
    }
    om.push_str("# EOF\n");
    let input = dir.path().join("in.om");
    std::fs::write(&input, om).unwrap();
    let out = dir.path().join("blocks");
    let st = Command::new(PROMTOOL)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&out)
        .output()
        .expect("run promtool");
    assert!(
        st.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let blocks: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    let seg = std::fs::read(blocks[0].join("chunks").join("000001")).unwrap();
    let by_layout = chunks_of_segment(&seg);
    let block = Block::open(&blocks[0]).unwrap();
    let series = block.select(&[], i64::MIN, i64::MAX).unwrap();
    assert_eq!(series.len(), 1);
    let by_reader: Vec<(u8, Vec<u8>)> = series[0]
        .chunks
        .iter()
        .map(|m| {
            let c = block.chunk(m).unwrap();
            let got = decode_xor_all(&c.data).unwrap();
            assert_eq!(got.first().unwrap().0, m.min_time);
            assert_eq!(got.last().unwrap().0, m.max_time);
            (c.encoding, c.data)
        })
        .collect();
    assert_eq!(by_layout, by_reader);
    by_layout
}

#[test]
fn prometheus_chunks_decode_and_match_our_encoder() {
    // Jittered scrape times (ms precision) and a mix of values, including NaN and infinities.
    let base = 1_700_000_000_000i64;
    let mut samples = Vec::new();
    let mut t = base;
    for i in 0..100i64 {
        t += 15_000 + (i * 37 % 11) - 5;
        let v = match i % 10 {
            0 => i as f64 * 1.5,
            1 => -(i as f64) / 7.0,
            2 => 1e300,
            3 => f64::NAN,
            4 => f64::INFINITY,
            5 => f64::NEG_INFINITY,
            6 => 0.1 + i as f64,
            _ => 42.0,
        };
        samples.push((t, v));
    }
    let chunks = promtool_chunks(&samples);
    assert!(!chunks.is_empty());
    let mut decoded = Vec::new();
    for (enc, data) in &chunks {
        assert_eq!(*enc, 1, "XOR encoding");
        let part = decode_xor_all(data).unwrap();
        // Our encoder, fed the same samples, writes exactly Prometheus' bytes.
        assert_eq!(&encode_xor(&part), data, "byte-identical chunk");
        decoded.extend(part);
    }
    assert_eq!(decoded.len(), samples.len());
    for ((t, v), (gt, gv)) in samples.iter().zip(&decoded) {
        assert_eq!(t, gt);
        if v.is_nan() {
            assert!(gv.is_nan());
        } else {
            assert_eq!(v.to_bits(), gv.to_bits());
        }
    }
}

#[test]
fn prometheus_single_sample_chunk() {
    let samples = [(1_600_000_000_123i64, 3.25)];
    let chunks = promtool_chunks(&samples);
    assert_eq!(chunks.len(), 1);
    assert_eq!(decode_xor_all(&chunks[0].1).unwrap(), samples.to_vec());
    assert_eq!(encode_xor(&samples), chunks[0].1);
}
