//! Framing inside a sealed datagram, so chitchat datagrams of any size (up to
//! the 65,507 bytes chitchat itself allows) still fit once the seal is added:
//! a datagram too large for one sealed packet travels as fragments that the
//! receiver reassembles. Frames are only parsed after the seal opened and
//! passed the freshness, replay and sender checks, so only key holders can
//! make a node buffer fragments, and that buffer is bounded anyway.
//!
//! Frame layout (all inside the AEAD):
//! - `0x00 || datagram` — a whole datagram;
//! - `0x01 || message id (u32 BE) || index (u16 BE) || count (u16 BE) || part`.
//!
//! Reassembly memory follows the bytes actually received, never the counts
//! in a fragment header: a partial message holds only the parts that came,
//! and every part is charged its length plus a fixed overhead against a
//! per-source and a total byte budget. When a budget would be exceeded, the
//! oldest partial message of the source holding the most partials goes
//! first, so a source flooding fragments evicts its own partials, not an
//! honest peer's (which has one or two messages in flight).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::seal::{MAX_DATAGRAM, MAX_OVERHEAD};

const WHOLE: u8 = 0;
const FRAGMENT: u8 = 1;
/// Bytes of the whole-datagram header.
pub const WHOLE_HEADER: usize = 1;
/// Bytes of a fragment header.
pub const FRAGMENT_HEADER: usize = 1 + 4 + 2 + 2;
/// Largest reassembled datagram (what chitchat can send or read).
pub const MAX_MESSAGE: usize = MAX_DATAGRAM;
/// Smallest sealed datagram limit a sender may use (the carrier clamps to it).
pub const MIN_DATAGRAM: usize = 256;
/// Most fragments one message can have: the largest message cut into the
/// smallest parts a sender can produce (at the [`MIN_DATAGRAM`] limit).
pub const MAX_FRAGMENTS: usize =
    MAX_MESSAGE.div_ceil(MIN_DATAGRAM - MAX_OVERHEAD - FRAGMENT_HEADER);
/// Partial messages kept at once, all sources together.
const MAX_PARTIALS: usize = 256;
/// Partial messages kept at once per source (a peer has a handful of
/// messages in flight to us per gossip round: SYN, SYN-ACK, ACK).
const MAX_PARTIALS_PER_SOURCE: usize = 16;
/// A partial message older than this is dropped.
const PARTIAL_TTL: Duration = Duration::from_secs(10);
/// Bytes charged per stored part beyond its payload (map node, vector header).
pub const PART_OVERHEAD: usize = 64;
/// Bytes charged per partial message beyond its parts.
pub const PARTIAL_OVERHEAD: usize = 128;
/// Bytes one complete message can be charged at most: every budget must
/// hold at least this, or a legitimate message could never complete.
pub const MAX_MESSAGE_CHARGE: usize =
    MAX_MESSAGE + MAX_FRAGMENTS * PART_OVERHEAD + PARTIAL_OVERHEAD;

/// Budgets of the reassembly buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Bytes held across all partial messages.
    pub max_bytes: usize,
    /// Bytes held across one source's partial messages.
    pub max_bytes_per_source: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> ReassemblyLimits {
        ReassemblyLimits {
            max_bytes: 4 << 20,
            max_bytes_per_source: 512 << 10,
        }
    }
}

impl ReassemblyLimits {
    /// The limits raised to what one complete message needs, and the total
    /// to at least the per-source budget.
    pub fn sane(self) -> ReassemblyLimits {
        let per_source = self.max_bytes_per_source.max(MAX_MESSAGE_CHARGE);
        ReassemblyLimits {
            max_bytes: self.max_bytes.max(per_source),
            max_bytes_per_source: per_source,
        }
    }
}

/// A frame that does not follow the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("unknown frame type {0}")]
    Type(u8),
    #[error("fragment header truncated")]
    Header,
    #[error("fragment index or count out of range")]
    Range,
    #[error("fragment count disagrees with earlier fragments")]
    Count,
    #[error("reassembled message would exceed {MAX_MESSAGE} bytes")]
    TooLarge,
}

/// Splits `datagram` into frames of at most `max_frame` bytes each.
/// `max_frame` must leave room for a fragment header and one payload byte.
pub fn encode(
    datagram: &[u8],
    max_frame: usize,
    message_id: u32,
) -> Result<Vec<Vec<u8>>, FrameError> {
    if datagram.len() > MAX_MESSAGE || max_frame <= FRAGMENT_HEADER {
        return Err(FrameError::TooLarge);
    }
    if datagram.len() + WHOLE_HEADER <= max_frame {
        let mut frame = Vec::with_capacity(datagram.len() + WHOLE_HEADER);
        frame.push(WHOLE);
        frame.extend_from_slice(datagram);
        return Ok(vec![frame]);
    }
    let part_len = max_frame - FRAGMENT_HEADER;
    let count = datagram.len().div_ceil(part_len);
    if count > MAX_FRAGMENTS {
        return Err(FrameError::Range);
    }
    let count16 = u16::try_from(count).map_err(|_| FrameError::Range)?;
    let mut frames = Vec::with_capacity(count);
    for (index, part) in (0u16..).zip(datagram.chunks(part_len)) {
        let mut frame = Vec::with_capacity(FRAGMENT_HEADER + part.len());
        frame.push(FRAGMENT);
        frame.extend_from_slice(&message_id.to_be_bytes());
        frame.extend_from_slice(&index.to_be_bytes());
        frame.extend_from_slice(&count16.to_be_bytes());
        frame.extend_from_slice(part);
        frames.push(frame);
    }
    Ok(frames)
}

struct Partial {
    count: u16,
    /// Only the parts received, by index.
    parts: BTreeMap<u16, Vec<u8>>,
    /// Payload bytes received.
    data: usize,
    /// Bytes charged against the budgets.
    charged: usize,
    started: Instant,
}

/// Reassembles fragments per sender and message id, within byte budgets.
pub struct Reassembler {
    limits: ReassemblyLimits,
    partials: HashMap<(SocketAddr, u32), Partial>,
    /// Bytes charged per source, and partial messages per source.
    per_source: HashMap<SocketAddr, (usize, usize)>,
    total: usize,
    /// Partial messages dropped to stay within a budget, not yet reported.
    evicted: u64,
}

impl Default for Reassembler {
    fn default() -> Reassembler {
        Reassembler::new(ReassemblyLimits::default())
    }
}

impl Reassembler {
    /// An empty reassembler with these budgets (see [`ReassemblyLimits::sane`]).
    pub fn new(limits: ReassemblyLimits) -> Reassembler {
        Reassembler {
            limits: limits.sane(),
            partials: HashMap::new(),
            per_source: HashMap::new(),
            total: 0,
            evicted: 0,
        }
    }

    /// Takes one opened frame from `from`; returns a complete datagram when
    /// this frame was a whole datagram or the last missing fragment.
    pub fn push(&mut self, from: SocketAddr, frame: &[u8]) -> Result<Option<Vec<u8>>, FrameError> {
        let (&kind, rest) = frame.split_first().ok_or(FrameError::Empty)?;
        match kind {
            WHOLE => Ok(Some(rest.to_vec())),
            FRAGMENT => self.push_fragment(from, rest),
            other => Err(FrameError::Type(other)),
        }
    }

    /// Partial messages held now.
    pub fn pending(&self) -> usize {
        self.partials.len()
    }

    /// Bytes charged for everything buffered now (payload plus overheads).
    pub fn buffered_bytes(&self) -> usize {
        self.total
    }

    /// Bytes charged for `from`'s partial messages now.
    pub fn buffered_bytes_from(&self, from: SocketAddr) -> usize {
        self.per_source.get(&from).map_or(0, |(b, _)| *b)
    }

    /// Partial messages dropped to stay within a budget since the last call.
    pub fn take_evicted(&mut self) -> u64 {
        std::mem::take(&mut self.evicted)
    }

    fn remove(&mut self, key: (SocketAddr, u32)) -> Option<Partial> {
        let p = self.partials.remove(&key)?;
        self.total -= p.charged;
        if let Some((bytes, n)) = self.per_source.get_mut(&key.0) {
            *bytes -= p.charged;
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&key.0);
            }
        }
        Some(p)
    }

    fn charge(&mut self, key: (SocketAddr, u32), bytes: usize, new_partial: bool) {
        self.total += bytes;
        let entry = self.per_source.entry(key.0).or_insert((0, 0));
        entry.0 += bytes;
        if new_partial {
            entry.1 += 1;
        }
        if let Some(p) = self.partials.get_mut(&key) {
            p.charged += bytes;
        }
    }

    /// The oldest partial of `source` (any source when `None`), other than `keep`.
    fn oldest(
        &self,
        source: Option<SocketAddr>,
        keep: (SocketAddr, u32),
    ) -> Option<(SocketAddr, u32)> {
        self.partials
            .iter()
            .filter(|(k, _)| **k != keep && source.is_none_or(|s| k.0 == s))
            .min_by_key(|(_, p)| p.started)
            .map(|(k, _)| *k)
    }

    /// The partial to drop when a shared budget is exceeded: one of the
    /// source holding the most partial messages, its oldest first. An honest
    /// peer has one or two messages in flight; a source flooding fragments
    /// has many, so its own partials go first.
    fn victim(&self, keep: (SocketAddr, u32)) -> Option<(SocketAddr, u32)> {
        self.partials
            .iter()
            .filter(|(k, _)| **k != keep)
            .min_by_key(|(k, p)| {
                let held = self.per_source.get(&k.0).map_or(0, |v| v.1);
                (std::cmp::Reverse(held), p.started)
            })
            .map(|(k, _)| *k)
    }

    fn evict(&mut self, victim: (SocketAddr, u32)) {
        if self.remove(victim).is_some() {
            self.evicted += 1;
        }
    }

    /// Makes room for `cost` more bytes (and maybe one more partial) from
    /// `key.0`, evicting other partials. False when impossible.
    fn make_room(&mut self, key: (SocketAddr, u32), cost: usize, new_partial: bool) -> bool {
        let from = key.0;
        let source_bytes = |r: &Reassembler| r.per_source.get(&from).map_or((0, 0), |v| *v);
        while source_bytes(self).0 + cost > self.limits.max_bytes_per_source
            || (new_partial && source_bytes(self).1 >= MAX_PARTIALS_PER_SOURCE)
        {
            match self.oldest(Some(from), key) {
                Some(v) => self.evict(v),
                None => return false,
            }
        }
        while self.total + cost > self.limits.max_bytes {
            match self.victim(key) {
                Some(v) => self.evict(v),
                None => return false,
            }
        }
        while new_partial && self.partials.len() >= MAX_PARTIALS {
            match self.victim(key) {
                Some(v) => self.evict(v),
                None => return false,
            }
        }
        true
    }

    fn push_fragment(
        &mut self,
        from: SocketAddr,
        rest: &[u8],
    ) -> Result<Option<Vec<u8>>, FrameError> {
        let (id, rest) = split_array::<4>(rest)?;
        let (index, rest) = split_array::<2>(rest)?;
        let (count, part) = split_array::<2>(rest)?;
        let id = u32::from_be_bytes(id);
        let index = u16::from_be_bytes(index);
        let count = u16::from_be_bytes(count);
        if count < 2 || usize::from(count) > MAX_FRAGMENTS || index >= count || part.is_empty() {
            return Err(FrameError::Range);
        }
        if part.len() > MAX_MESSAGE {
            return Err(FrameError::TooLarge);
        }
        let now = Instant::now();
        let expired: Vec<(SocketAddr, u32)> = self
            .partials
            .iter()
            .filter(|(_, p)| now.duration_since(p.started) >= PARTIAL_TTL)
            .map(|(k, _)| *k)
            .collect();
        for k in expired {
            self.remove(k);
        }
        let key = (from, id);
        let new_partial = match self.partials.get(&key) {
            Some(p) if p.count != count => return Err(FrameError::Count),
            Some(p) if p.parts.contains_key(&index) => return Ok(None), // duplicate
            Some(p) if p.data + part.len() > MAX_MESSAGE => {
                self.remove(key);
                return Err(FrameError::TooLarge);
            }
            Some(_) => false,
            None => true,
        };
        let cost = part.len() + PART_OVERHEAD + if new_partial { PARTIAL_OVERHEAD } else { 0 };
        if !self.make_room(key, cost, new_partial) {
            // Cannot happen with sane limits (one message always fits), but
            // never buffer past a budget.
            self.evicted += 1;
            if let Some(p) = self.remove(key) {
                drop(p);
            }
            return Ok(None);
        }
        if new_partial {
            self.partials.insert(
                key,
                Partial {
                    count,
                    parts: BTreeMap::new(),
                    data: 0,
                    charged: 0,
                    started: now,
                },
            );
        }
        self.charge(key, cost, new_partial);
        let Some(partial) = self.partials.get_mut(&key) else {
            return Ok(None);
        };
        partial.parts.insert(index, part.to_vec());
        partial.data += part.len();
        if partial.parts.len() < usize::from(partial.count) {
            return Ok(None);
        }
        Ok(self
            .remove(key)
            .map(|p| p.parts.into_values().flatten().collect()))
    }
}

fn split_array<const N: usize>(bytes: &[u8]) -> Result<([u8; N], &[u8]), FrameError> {
    let (head, rest) = bytes.split_at_checked(N).ok_or(FrameError::Header)?;
    let head: [u8; N] = head.try_into().map_err(|_| FrameError::Header)?;
    Ok((head, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> SocketAddr {
        ([127, 0, 0, 2], 7946).into()
    }

    #[test]
    fn whole_datagram_is_one_frame() {
        let frames = encode(b"abc", 100, 1).unwrap();
        assert_eq!(frames, vec![b"\0abc".to_vec()]);
        let mut r = Reassembler::default();
        assert_eq!(r.push(from(), &frames[0]).unwrap().unwrap(), b"abc");
    }

    #[test]
    fn large_datagram_round_trips_in_any_order_with_duplicates() {
        let data: Vec<u8> = (0..MAX_MESSAGE).map(|i| (i % 251) as u8).collect();
        let mut frames = encode(&data, 1000, 7).unwrap();
        assert!(frames.len() > 60 && frames.iter().all(|f| f.len() <= 1000));
        frames.reverse();
        let dup = frames[3].clone();
        frames.insert(5, dup);
        let mut r = Reassembler::default();
        let mut out = None;
        for f in &frames {
            if let Some(done) = r.push(from(), f).unwrap() {
                assert!(out.is_none());
                out = Some(done);
            }
        }
        assert_eq!(out.unwrap(), data);
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn senders_and_ids_do_not_mix() {
        let a = encode(&[1u8; 300], 100, 1).unwrap();
        let b = encode(&[2u8; 300], 100, 1).unwrap();
        let other: SocketAddr = ([127, 0, 0, 3], 7946).into();
        let mut r = Reassembler::default();
        for (fa, fb) in a.iter().zip(&b) {
            let x = r.push(from(), fa).unwrap();
            let y = r.push(other, fb).unwrap();
            if let (Some(x), Some(y)) = (x, y) {
                assert_eq!(x, vec![1u8; 300]);
                assert_eq!(y, vec![2u8; 300]);
            }
        }
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn malformed_frames_are_errors() {
        let mut r = Reassembler::default();
        assert_eq!(r.push(from(), &[]), Err(FrameError::Empty));
        assert_eq!(r.push(from(), &[9, 1, 2]), Err(FrameError::Type(9)));
        assert_eq!(r.push(from(), &[1, 0, 0]), Err(FrameError::Header));
        // index >= count, count < 2, empty part
        assert_eq!(
            r.push(from(), &[1, 0, 0, 0, 1, 0, 3, 0, 3, 9]),
            Err(FrameError::Range)
        );
        assert_eq!(
            r.push(from(), &[1, 0, 0, 0, 1, 0, 0, 0, 1, 9]),
            Err(FrameError::Range)
        );
        assert_eq!(
            r.push(from(), &[1, 0, 0, 0, 1, 0, 0, 0, 2]),
            Err(FrameError::Range)
        );
        // Count changes between fragments of one message.
        assert_eq!(r.push(from(), &[1, 0, 0, 0, 2, 0, 0, 0, 2, 9]), Ok(None));
        assert_eq!(
            r.push(from(), &[1, 0, 0, 0, 2, 0, 1, 0, 3, 9]),
            Err(FrameError::Count)
        );
        // Too much data for one message.
        let big = vec![0u8; 40_000];
        let mut f = vec![1, 0, 0, 0, 3, 0, 0, 0, 3];
        f.extend_from_slice(&big);
        assert_eq!(r.push(from(), &f), Ok(None));
        f[6] = 1;
        assert_eq!(r.push(from(), &f), Err(FrameError::TooLarge));
        assert!(encode(&[0u8; MAX_MESSAGE + 1], 1000, 1).is_err());
        assert!(encode(b"x", FRAGMENT_HEADER, 1).is_err());
    }

    #[test]
    fn partials_are_bounded_per_source_and_in_total() {
        let mut r = Reassembler::default();
        for id in 0..(MAX_PARTIALS as u32 + 50) {
            let frames = encode(&[0u8; 300], 100, id).unwrap();
            assert_eq!(r.push(from(), &frames[0]).unwrap(), None);
        }
        assert_eq!(r.pending(), MAX_PARTIALS_PER_SOURCE);
        assert_eq!(r.take_evicted(), MAX_PARTIALS as u64 + 50 - 16);
        assert_eq!(r.take_evicted(), 0);
        // Many sources: the total bound holds.
        for s in 0..100u16 {
            let src = SocketAddr::from(([127, 0, 1, (s % 250) as u8], 1000 + s));
            for id in 0..5 {
                let frames = encode(&[0u8; 300], 100, id).unwrap();
                r.push(src, &frames[0]).unwrap();
            }
        }
        assert_eq!(r.pending(), MAX_PARTIALS);
    }

    /// A fragment header claims 65,535 parts: nothing is sized from that
    /// count, the buffer is charged for the bytes that came.
    #[test]
    fn memory_follows_received_bytes_not_header_counts() {
        let mut r = Reassembler::default();
        let mut frame = vec![FRAGMENT, 0, 0, 0, 1, 0, 0];
        frame.extend_from_slice(&(MAX_FRAGMENTS as u16).to_be_bytes());
        frame.extend_from_slice(&[7u8; 10]);
        assert_eq!(r.push(from(), &frame), Ok(None));
        assert_eq!(
            r.buffered_bytes(),
            10 + PART_OVERHEAD + PARTIAL_OVERHEAD,
            "charged for what arrived"
        );
        // A count above what any sender can produce is refused outright.
        let mut huge = vec![FRAGMENT, 0, 0, 0, 2, 0, 0, 0xff, 0xff, 1];
        assert_eq!(r.push(from(), &huge), Err(FrameError::Range));
        huge[7..9].copy_from_slice(&((MAX_FRAGMENTS + 1) as u16).to_be_bytes());
        assert_eq!(r.push(from(), &huge), Err(FrameError::Range));
    }

    /// One source flooding first fragments of big messages stays within its
    /// byte budget and the total one; another source's message still
    /// reassembles in the middle of the flood.
    #[test]
    fn a_fragment_flood_stays_within_budgets_and_honest_messages_complete() {
        let limits = ReassemblyLimits {
            max_bytes: 1 << 20,
            max_bytes_per_source: 256 << 10,
        };
        let mut r = Reassembler::new(limits);
        let honest: SocketAddr = ([127, 0, 0, 9], 7946).into();
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
        let honest_frames = encode(&data, 1_400, 42).unwrap();
        let mut done = None;
        let mut max_seen = 0;
        for (i, id) in (0..5_000u32).enumerate() {
            // Each flood message: the first 4 KB part of a 16-part message.
            let mut f = vec![FRAGMENT];
            f.extend_from_slice(&id.to_be_bytes());
            f.extend_from_slice(&0u16.to_be_bytes());
            f.extend_from_slice(&16u16.to_be_bytes());
            f.extend_from_slice(&[0xAA; 4_000]);
            let attacker = SocketAddr::from(([127, 0, 0, 66], 1000 + (id % 64) as u16));
            assert_eq!(r.push(attacker, &f), Ok(None));
            assert!(r.buffered_bytes_from(attacker) <= limits.max_bytes_per_source);
            if i.is_multiple_of(100)
                && let Some(hf) = honest_frames.get(i / 100)
                && let Some(whole) = r.push(honest, hf).unwrap()
            {
                done = Some(whole);
            }
            max_seen = max_seen.max(r.buffered_bytes());
        }
        assert!(max_seen <= limits.max_bytes, "{max_seen}");
        assert!(done.as_deref() == Some(&data[..]), "honest message lost");
        assert!(r.take_evicted() > 4_000);
    }

    #[test]
    fn limits_are_raised_to_fit_one_message() {
        let l = ReassemblyLimits {
            max_bytes: 1,
            max_bytes_per_source: 1,
        }
        .sane();
        assert_eq!(l.max_bytes_per_source, MAX_MESSAGE_CHARGE);
        assert_eq!(l.max_bytes, MAX_MESSAGE_CHARGE);
        // The smallest allowed datagram limit still reassembles the largest message.
        let data = vec![5u8; MAX_MESSAGE];
        let frames = encode(&data, MIN_DATAGRAM - MAX_OVERHEAD, 3).unwrap();
        assert!(frames.len() <= MAX_FRAGMENTS);
        let mut r = Reassembler::new(l);
        let mut out = None;
        for f in &frames {
            if let Some(d) = r.push(from(), f).unwrap() {
                out = Some(d);
            }
        }
        assert_eq!(out.unwrap(), data);
        assert_eq!(r.buffered_bytes(), 0);
    }
}
