//! TSDB readers: the index, chunk segments and XOR chunks.

use super::mode;
use crate::fixup;
use skein_tsdb::Ulid;
use skein_tsdb::block::{Block, BlockMeta, BlockStats};
use skein_tsdb::chunkenc::{ENCODING_XOR, decode_xor, decode_xor_all, encode_xor};
use skein_tsdb::chunks::{ChunkReader, chunk_ref};
use skein_tsdb::index::{IndexReader, MatchOp, Matcher};

/// Most label names/values/series a run looks at, so one input stays fast.
const LOOK_AT: usize = 64;

/// Index file: the input after the mode byte is the whole file (mode bit 0: repair its
/// checksums first). Opens it, then walks names, values, postings, a few selections and
/// the series they return.
pub fn index(data: &[u8]) {
    let (m, rest) = mode(data);
    let mut file = rest.to_vec();
    if m & 1 == 1 {
        fixup::index(&mut file);
    }
    let Ok(ix) = IndexReader::open(file) else {
        return;
    };
    let _ = ix.symbol_count();
    let _ = ix.memory_bytes();
    let names = ix.label_names();
    let mut matchers = Vec::new();
    for name in names.iter().take(LOOK_AT) {
        let _ = ix.label_value_count(name);
        let Ok(values) = ix.label_values(name) else {
            continue;
        };
        for v in values.iter().take(LOOK_AT) {
            let _ = ix.postings(name, v);
        }
        if let Some(v) = values.first() {
            matchers.push(Matcher::equal(name.clone(), v.clone()));
        }
        if matchers.len() < 4
            && let Ok(re) = Matcher::new(MatchOp::RegexMatch, name.clone(), ".+")
        {
            matchers.push(re);
        }
    }
    let mut selections = vec![Vec::new()];
    for m in matchers.iter().take(8) {
        selections.push(vec![m.clone()]);
        let mut neg = m.clone();
        neg.op = MatchOp::NotEqual;
        selections.push(vec![neg]);
    }
    if matchers.len() > 1 {
        selections.push(matchers.iter().take(4).cloned().collect());
    }
    if let Ok(m) = Matcher::new(MatchOp::RegexNoMatch, "__name__", "x.*") {
        selections.push(vec![m]);
    }
    for sel in &selections {
        let Ok(refs) = ix.select(sel) else { continue };
        let refs: Vec<_> = refs.into_iter().take(LOOK_AT).collect();
        if let Ok(series) = ix.series_many(&refs) {
            assert_eq!(series.len(), refs.len(), "series_many answers every ref");
        }
        for r in refs.iter().take(8) {
            let _ = ix.series(*r);
        }
    }
    if let Ok(all) = ix.all_postings() {
        // Refs straight from the file: possibly unsorted, possibly outside the series.
        let refs: Vec<_> = all.into_iter().take(LOOK_AT).collect();
        let _ = ix.series_many(&refs);
    }
}

/// One chunk segment file (mode bit 0: repair chunk checksums; bit 1: force a valid
/// segment header). Reads every chunk a sequential walk finds plus refs taken from the
/// input's tail, and decodes the XOR ones.
pub fn chunks(data: &[u8]) {
    let (m, rest) = mode(data);
    let mut seg = rest.to_vec();
    if m & 2 == 2 && seg.len() >= 8 {
        seg[..8].copy_from_slice(&[0x85, 0xBD, 0x40, 0xDD, 1, 0, 0, 0]);
    }
    if m & 1 == 1 {
        fixup::segment(&mut seg);
    }
    let mut refs: Vec<u64> = fixup::segment_chunk_offsets(&seg)
        .into_iter()
        .take(LOOK_AT)
        .map(|off| chunk_ref(0, off))
        .collect();
    for tail in rest.rchunks_exact(8).take(4) {
        let mut b = [0u8; 8];
        b.copy_from_slice(tail);
        refs.push(u64::from_be_bytes(b));
    }
    refs.push(chunk_ref(1, 8));
    refs.push(chunk_ref(0, u32::MAX));
    let Ok(reader) = ChunkReader::new(vec![seg]) else {
        return;
    };
    for r in refs {
        let Ok(c) = reader.chunk(r) else { continue };
        if c.encoding == ENCODING_XOR {
            decode_fully(&c.data);
        }
    }
}

fn decode_fully(data: &[u8]) {
    if let Ok(it) = decode_xor(data) {
        let announced = it.num_samples();
        let n = it.take_while(Result::is_ok).count();
        assert!(
            n <= announced,
            "decoded {n} samples of {announced} announced"
        );
    }
}

/// Raw XOR chunk bytes. Whatever decodes must re-encode to the same samples, bit for bit.
pub fn xor_chunk(data: &[u8]) {
    decode_fully(data);
    let Ok(samples) = decode_xor_all(data) else {
        return;
    };
    let again = decode_xor_all(&encode_xor(&samples)).expect("re-encoded chunk decodes");
    let bits = |s: &[(i64, f64)]| s.iter().map(|&(t, v)| (t, v.to_bits())).collect::<Vec<_>>();
    assert_eq!(bits(&samples), bits(&again), "XOR round trip");
}

/// A whole block as the store reads it: `mode | index length <4b BE> | index | segment`
/// (mode bit 0: repair the checksums of both files). Selects series over a few time
/// windows and decodes their samples through the chunk references the index holds.
pub fn block(data: &[u8]) {
    let (m, rest) = mode(data);
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return;
    };
    let split = (u32::from_be_bytes(*len) as usize).min(rest.len());
    let (mut index, mut segment) = (rest[..split].to_vec(), rest[split..].to_vec());
    if m & 1 == 1 {
        fixup::index(&mut index);
        fixup::segment(&mut segment);
    }
    let meta = BlockMeta::new(Ulid::default(), i64::MIN, i64::MAX, BlockStats::default());
    let Ok(block) = Block::from_parts(meta, index, vec![segment]) else {
        return;
    };
    let all = Matcher::new(MatchOp::RegexMatch, "__name__", ".*").ok();
    let matchers: Vec<Matcher> = all.into_iter().collect();
    for (lo, hi) in [
        (i64::MIN, i64::MAX),
        (0, 1_700_000_100_000),
        (i64::MAX, i64::MIN),
    ] {
        let Ok(series) = block.select(&matchers, lo, hi) else {
            continue;
        };
        for s in series.iter().take(LOOK_AT) {
            if let Ok(samples) = block.samples(s, lo, hi) {
                assert!(samples.iter().all(|&(t, _)| t >= lo && t <= hi));
            }
        }
    }
}
