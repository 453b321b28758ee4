//! Round trips of the XOR chunk codec over many sample shapes, and corrupt-input handling.

use skein_tsdb::chunkenc::{ChunkError, XorEncoder, decode_xor, decode_xor_all, encode_xor};

/// Small deterministic PRNG (xorshift64*) so tests need no extra crates.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn assert_round_trip(samples: &[(i64, f64)]) {
    let bytes = encode_xor(samples);
    let got = decode_xor_all(&bytes).unwrap();
    assert_eq!(got.len(), samples.len());
    for (i, (a, b)) in samples.iter().zip(&got).enumerate() {
        assert_eq!(a.0, b.0, "timestamp {i}");
        assert_eq!(
            a.1.to_bits(),
            b.1.to_bits(),
            "value bits {i}: {} vs {}",
            a.1,
            b.1
        );
    }
}

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

#[test]
fn empty_chunk_is_two_zero_bytes() {
    let bytes = encode_xor(&[]);
    assert_eq!(bytes, vec![0, 0]);
    assert!(decode_xor_all(&bytes).unwrap().is_empty());
}

#[test]
fn one_sample() {
    assert_round_trip(&[(1_700_000_000_000, 42.5)]);
    let bytes = encode_xor(&[(0, 1.0)]);
    // count, varint(0), 8 raw bytes of 1.0, and the empty trailing byte Prometheus' bstream
    // leaves after byte-aligned writes.
    assert_eq!(
        bytes,
        [&[0u8, 1, 0][..], &1.0f64.to_bits().to_be_bytes()[..], &[0]].concat()
    );
}

#[test]
fn regular_120_samples() {
    let s: Vec<_> = (0..120)
        .map(|i| (1_700_000_000_000 + i * 15_000, i as f64))
        .collect();
    assert_round_trip(&s);
    let bytes = encode_xor(&s);
    // Regular timestamps cost 1 bit each; integer counters a few bytes: far below 16 bytes/sample.
    assert!(bytes.len() < 120 * 4, "{} bytes", bytes.len());
}

#[test]
fn constant_values_and_regular_times_are_tiny() {
    let s: Vec<_> = (0..120).map(|i| (i * 1000, 7.0)).collect();
    let bytes = encode_xor(&s);
    assert_round_trip(&s);
    // header 2 + varint 1 + 8 value + delta 2 + 1 bit value + 118 * 2 bits
    assert!(bytes.len() <= 2 + 1 + 8 + 2 + 31, "{} bytes", bytes.len());
}

#[test]
fn jittered_and_random_values() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..200 {
        let n = 1 + rng.below(200) as usize;
        let mut t = rng.next() as i64 >> 20;
        let mut s = Vec::with_capacity(n);
        for _ in 0..n {
            t += 15_000 + rng.below(2_000) as i64 - 1_000;
            let v = match rng.below(5) {
                0 => f64::from_bits(rng.next()),
                1 => (rng.below(1000) as f64) * 0.25,
                2 => s.last().map(|x: &(i64, f64)| x.1).unwrap_or(0.0),
                3 => -(rng.next() as f64),
                _ => rng.below(10) as f64,
            };
            s.push((t, v));
        }
        assert_round_trip(&s);
    }
}

#[test]
fn all_delta_of_delta_buckets_and_edges() {
    // Each delta change lands at bucket edges: 2^13, 2^13+1, 2^16, 2^19, and beyond.
    let deltas: [i64; 16] = [
        10,
        10,
        10 + 8192,
        10,
        10 + 8193,
        10 - 8191,
        10 - 8192,
        65_536 + 10,
        10,
        1 << 19,
        1 << 20,
        10,
        1 << 40,
        -5,
        0,
        3,
    ];
    let mut t = 1000i64;
    let mut s = vec![(t, 0.0)];
    for (i, d) in deltas.iter().enumerate() {
        t += d;
        s.push((t, i as f64));
    }
    assert_round_trip(&s);
}

#[test]
fn huge_deltas_and_negative_timestamps() {
    assert_round_trip(&[
        (i64::MIN, 1.0),
        (i64::MAX, 2.0),
        (0, 3.0),
        (i64::MIN + 1, 4.0),
        (-1, 5.0),
    ]);
    assert_round_trip(&[
        (-1_000_000, 1.0),
        (-999_000, 1.5),
        (-998_000, 2.0),
        (-997_000, 2.5),
    ]);
    assert_round_trip(&[(5, 0.0), (5, 0.0), (5, 0.0)]);
}

#[test]
fn special_floats_keep_their_bits() {
    let vals = [
        f64::NAN,
        f64::from_bits(STALE_NAN),
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        f64::MIN_POSITIVE,
        f64::from_bits(1),
        f64::MAX,
        f64::MIN,
        f64::from_bits(STALE_NAN),
        f64::from_bits(0xfff8_0000_0000_0001),
        1.0,
    ];
    let s: Vec<_> = vals
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64 * 30_000, *v))
        .collect();
    assert_round_trip(&s);
    let got = decode_xor_all(&encode_xor(&s)).unwrap();
    assert_eq!(got[1].1.to_bits(), STALE_NAN);
}

#[test]
fn encoder_incremental_api() {
    let mut e = XorEncoder::new();
    assert_eq!(e.num_samples(), 0);
    e.append(1, 1.0);
    e.append(2, 2.0);
    assert_eq!(e.num_samples(), 2);
    assert_eq!(&e.bytes()[..2], &[0, 2]);
    let snapshot = e.bytes().to_vec();
    assert_eq!(decode_xor_all(&snapshot).unwrap(), vec![(1, 1.0), (2, 2.0)]);
    e.append(3, 3.0);
    let all = e.into_bytes();
    assert_eq!(
        decode_xor_all(&all).unwrap(),
        vec![(1, 1.0), (2, 2.0), (3, 3.0)]
    );
    assert_eq!(decode_xor(&all).unwrap().num_samples(), 3);
}

#[test]
fn too_short_header() {
    assert!(matches!(decode_xor(&[]), Err(ChunkError::TooShort(0))));
    assert!(matches!(decode_xor(&[1]), Err(ChunkError::TooShort(1))));
}

#[test]
fn truncated_chunks_error_and_never_panic() {
    let mut rng = Rng(42);
    let s: Vec<_> = (0..120)
        .map(|i| {
            (
                i * 15_000 + rng.below(100) as i64,
                f64::from_bits(rng.next()),
            )
        })
        .collect();
    let bytes = encode_xor(&s);
    for cut in 0..bytes.len() {
        // The last byte may hold only padding bits, so cutting it can still decode fully.
        let r = decode_xor_all(&bytes[..cut]);
        if cut + 1 < bytes.len() {
            assert!(r.is_err(), "cut at {cut} of {} decoded", bytes.len());
        }
    }
    // Claiming more samples than present is an error too (padding bits may hold a few).
    let mut more = bytes.clone();
    more[1] = 200;
    assert!(matches!(
        decode_xor_all(&more),
        Err(ChunkError::Truncated { total: 200, .. })
    ));
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(7);
    let mut errs = 0;
    for _ in 0..20_000 {
        let n = rng.below(64) as usize;
        let mut b: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        if b.len() >= 2 && rng.below(2) == 0 {
            b[0] = 0;
            b[1] = rng.below(40) as u8;
        }
        match decode_xor_all(&b) {
            Ok(v) => assert!(v.len() <= 0xffff),
            Err(_) => errs += 1,
        }
        // The lazy iterator stops after the first error.
        if let Ok(it) = decode_xor(&b) {
            let mut seen_err = false;
            for x in it {
                assert!(!seen_err);
                seen_err = x.is_err();
            }
        }
    }
    assert!(errs > 0);
}

#[test]
fn bit_flips_never_panic() {
    let mut rng = Rng(99);
    let s: Vec<_> = (0..120)
        .map(|i| (i * 10_000, (i * i) as f64 / 3.0))
        .collect();
    let good = encode_xor(&s);
    for _ in 0..5_000 {
        let mut b = good.clone();
        let i = rng.below(b.len() as u64) as usize;
        b[i] ^= 1 << rng.below(8);
        let _ = decode_xor_all(&b);
    }
}
