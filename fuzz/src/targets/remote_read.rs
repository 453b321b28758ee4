//! The sidecar's reading of Prometheus remote-read answers.

use super::mode;
use crate::fixup;
use skein_actors::sidecar::remote_read::{
    FrameDecoder, decode_samples_response, from_chunked_series,
};
use skein_tsdb::chunkenc::decode_xor_all;

/// A streamed (`STREAMED_XOR_CHUNKS`) body. Mode: bit 0 repairs frame checksums; the
/// upper bits pick the size of the pieces the body arrives in (as from a socket).
pub fn stream(data: &[u8]) {
    let (m, rest) = mode(data);
    let mut body = rest.to_vec();
    if m & 1 == 1 {
        fixup::remote_read_frames(&mut body);
    }
    let piece = usize::from(m >> 1).max(1) * 7;
    let mut d = FrameDecoder::new();
    for part in body.chunks(piece) {
        d.push(part);
        loop {
            match d.next_frame() {
                Ok(Some(frame)) => {
                    for s in frame.chunked_series {
                        let Ok(raw) = from_chunked_series(s) else {
                            continue;
                        };
                        for c in raw.chunks.iter().filter_map(|c| c.raw.as_ref()) {
                            if c.r#type == 0 {
                                let _ = decode_xor_all(&c.data);
                            }
                        }
                    }
                }
                Ok(None) => break,
                // The sidecar drops the whole answer on the first error.
                Err(_) => return,
            }
        }
    }
    let _ = d.finish();
}

/// A `SAMPLES` body (snappy block of a `ReadResponse`). Mode bit 0: the rest is the
/// uncompressed protobuf and is compressed first, so mutations reach the decoder.
/// Every series that comes back re-encodes exactly the samples it was sent.
pub fn samples(data: &[u8]) {
    let (m, rest) = mode(data);
    let body = if m & 1 == 1 {
        match snap::raw::Encoder::new().compress_vec(rest) {
            Ok(b) => b,
            Err(_) => return,
        }
    } else {
        rest.to_vec()
    };
    let Ok(series) = decode_samples_response(&body) else {
        return;
    };
    for s in &series {
        for c in s.chunks.iter().filter_map(|c| c.raw.as_ref()) {
            let decoded = decode_xor_all(&c.data).expect("re-encoded chunk decodes");
            assert!(!decoded.is_empty() && decoded.len() <= 120);
        }
    }
}
