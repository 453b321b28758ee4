//! A small seeded byte mutator for the replay test: it cannot follow coverage like
//! libFuzzer, but it runs on every `make test` and reaches the error paths of inputs that
//! are almost valid (bit flips, truncations, splices, length fields pushed to extremes).

/// SplitMix64: tiny, seeded, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Values that make length and count fields interesting.
const EXTREMES_32: [u32; 8] = [0, 1, 0x7f, 0x80, 0xffff, 0x7fff_ffff, 0x8000_0000, u32::MAX];
const EXTREMES_64: [u64; 6] = [0, 1, i64::MAX as u64, i64::MIN as u64, u64::MAX, 1 << 32];

/// Returns a mutation of `input` (1 to 4 stacked edits), at most `max_len` bytes long;
/// `others` are spliced in from time to time.
pub fn mutate(input: &[u8], others: &[&[u8]], rng: &mut Rng, max_len: usize) -> Vec<u8> {
    let mut b = input.to_vec();
    let edits = 1 + rng.below(4);
    for _ in 0..edits {
        edit(&mut b, others, rng);
    }
    b.truncate(max_len);
    b
}

fn edit(b: &mut Vec<u8>, others: &[&[u8]], rng: &mut Rng) {
    let len = b.len();
    match rng.below(11) {
        // Flip one bit.
        0 if len > 0 => {
            let i = rng.below(len);
            b[i] ^= 1 << rng.below(8);
        }
        // Set a byte to a boundary value.
        1 if len > 0 => {
            let i = rng.below(len);
            b[i] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff][rng.below(6)];
        }
        // Random byte.
        2 if len > 0 => {
            let i = rng.below(len);
            b[i] = rng.next_u64() as u8;
        }
        // Truncate.
        3 if len > 0 => {
            b.truncate(rng.below(len));
        }
        // Delete a stretch.
        4 if len > 1 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            b.drain(at..at + n);
        }
        // Insert random bytes.
        5 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            b.splice(at..at, bytes);
        }
        // Duplicate a stretch.
        6 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(256));
            let copy = b[at..at + n].to_vec();
            let to = rng.below(len + 1);
            b.splice(to..to, copy);
        }
        // Splice another input in.
        7 if !others.is_empty() => {
            let o = others[rng.below(others.len())];
            if !o.is_empty() {
                let from = rng.below(o.len());
                let n = 1 + rng.below(o.len() - from);
                let at = rng.below(len + 1);
                let end = (at + n).min(len);
                b.splice(at..end, o[from..from + n].iter().copied());
            }
        }
        // A big-endian u32 length/count pushed to an extreme.
        8 if len >= 4 => {
            let at = rng.below(len - 3);
            let v = EXTREMES_32[rng.below(EXTREMES_32.len())];
            b[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        // A big-endian u64 (offsets, timestamps) pushed to an extreme.
        9 if len >= 8 => {
            let at = rng.below(len - 7);
            let v = EXTREMES_64[rng.below(EXTREMES_64.len())];
            b[at..at + 8].copy_from_slice(&v.to_be_bytes());
        }
        // A varint made huge (up to 10 bytes of continuation).
        10 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below(10);
            let mut v = vec![0xff; n];
            if let Some(last) = v.last_mut() {
                *last = [0x01, 0x7f, 0xff][rng.below(3)];
            }
            let end = (at + n).min(len);
            b.splice(at..end, v);
        }
        _ => b.push(rng.next_u64() as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_runs_repeat_and_respect_max_len() {
        let input = b"0123456789abcdef".repeat(4);
        let others: [&[u8]; 1] = [b"xyz"];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..200)
                .map(|_| mutate(&input, &others, &mut rng, 70))
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        assert!(a.iter().all(|m| m.len() <= 70));
        assert!(a.iter().any(|m| m.as_slice() != input.as_slice()));
    }
}
