//! Framing inside a sealed datagram, so chitchat datagrams of any size (up to
//! the 65,507 bytes chitchat itself allows) still fit once the seal is added:
//! a datagram too large for one sealed packet travels as fragments that the
//! receiver reassembles. Frames are only parsed after the seal opened, so
//! only key holders can make a node buffer fragments, and that buffer is
//! bounded anyway.
//!
//! Frame layout (all inside the AEAD):
//! - `0x00 || datagram` — a whole datagram;
//! - `0x01 || message id (u32 BE) || index (u16 BE) || count (u16 BE) || part`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::seal::MAX_DATAGRAM;

const WHOLE: u8 = 0;
const FRAGMENT: u8 = 1;
/// Bytes of the whole-datagram header.
pub const WHOLE_HEADER: usize = 1;
/// Bytes of a fragment header.
pub const FRAGMENT_HEADER: usize = 1 + 4 + 2 + 2;
/// Largest reassembled datagram (what chitchat can send or read).
pub const MAX_MESSAGE: usize = MAX_DATAGRAM;
/// Partial messages kept at once; the oldest goes first.
const MAX_PARTIALS: usize = 256;
/// A partial message older than this is dropped.
const PARTIAL_TTL: Duration = Duration::from_secs(10);

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
    parts: Vec<Option<Vec<u8>>>,
    missing: usize,
    bytes: usize,
    started: Instant,
}

/// Reassembles fragments per sender and message id.
#[derive(Default)]
pub struct Reassembler {
    partials: HashMap<(SocketAddr, u32), Partial>,
}

impl Reassembler {
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

    fn push_fragment(
        &mut self,
        from: SocketAddr,
        rest: &[u8],
    ) -> Result<Option<Vec<u8>>, FrameError> {
        let (id, rest) = split_array::<4>(rest)?;
        let (index, rest) = split_array::<2>(rest)?;
        let (count, part) = split_array::<2>(rest)?;
        let id = u32::from_be_bytes(id);
        let index = usize::from(u16::from_be_bytes(index));
        let count = usize::from(u16::from_be_bytes(count));
        if count < 2 || index >= count || part.is_empty() {
            return Err(FrameError::Range);
        }
        let now = Instant::now();
        self.partials
            .retain(|_, p| now.duration_since(p.started) < PARTIAL_TTL);
        let key = (from, id);
        if !self.partials.contains_key(&key) && self.partials.len() >= MAX_PARTIALS {
            let oldest = self
                .partials
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.partials.remove(&k);
            }
        }
        let partial = self.partials.entry(key).or_insert_with(|| Partial {
            parts: vec![None; count],
            missing: count,
            bytes: 0,
            started: now,
        });
        if partial.parts.len() != count {
            return Err(FrameError::Count);
        }
        let Some(slot) = partial.parts.get_mut(index) else {
            return Err(FrameError::Range);
        };
        if slot.is_some() {
            return Ok(None); // duplicate fragment
        }
        if partial.bytes + part.len() > MAX_MESSAGE {
            self.partials.remove(&key);
            return Err(FrameError::TooLarge);
        }
        *slot = Some(part.to_vec());
        partial.missing -= 1;
        partial.bytes += part.len();
        if partial.missing > 0 {
            return Ok(None);
        }
        let done = self.partials.remove(&key);
        Ok(done.map(|p| p.parts.into_iter().flatten().flatten().collect()))
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
    fn partials_are_bounded() {
        let mut r = Reassembler::default();
        for id in 0..(MAX_PARTIALS as u32 + 50) {
            let frames = encode(&[0u8; 300], 100, id).unwrap();
            assert_eq!(r.push(from(), &frames[0]).unwrap(), None);
        }
        assert_eq!(r.pending(), MAX_PARTIALS);
    }
}
