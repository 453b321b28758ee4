//! Freshness window and replay cache for opened gossip datagrams.
//!
//! A datagram is fresh when its sealed send time is within `max_skew` of the
//! receiver's clock, either way. Within that window the receiver remembers
//! every accepted datagram's nonce, so the same datagram is accepted at most
//! once; after it, the send time alone refuses it. A nonce is therefore kept
//! until `sent_at + max_skew` (at most `2 × max_skew` after receipt) and no
//! longer.
//!
//! The cache holds at most `capacity` nonces. When it is full of nonces that
//! have not expired yet, a new datagram is refused (`CacheFull`): forgetting a
//! live nonce early would let its datagram be replayed, so under a flood the
//! cache fails closed instead of growing or forgetting.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use crate::seal::NONCE_LEN;

/// Why a datagram that opened was refused by the replay guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "send time {sent_at_ms} ms is more than the allowed clock skew away from now ({now_ms} ms)"
    )]
    Stale { sent_at_ms: u64, now_ms: u64 },
    #[error("datagram already received (same nonce) within the freshness window")]
    Replayed,
    #[error("replay cache full of unexpired nonces; refusing rather than forgetting one")]
    CacheFull,
}

/// Nonces of accepted datagrams, each until its expiry time.
#[derive(Debug)]
pub struct NonceCache {
    capacity: usize,
    expiry: HashMap<u128, u64>,
    queue: BinaryHeap<Reverse<(u64, u128)>>,
}

/// The cache key of a nonce: its first 128 bits (random, so as unique as the
/// whole 192 for this purpose, and smaller to keep).
fn key(nonce: &[u8; NONCE_LEN]) -> u128 {
    let mut k = [0u8; 16];
    k.copy_from_slice(&nonce[..16]);
    u128::from_le_bytes(k)
}

impl NonceCache {
    /// An empty cache that holds at most `capacity` nonces (at least 1).
    pub fn new(capacity: usize) -> NonceCache {
        NonceCache {
            capacity: capacity.max(1),
            expiry: HashMap::new(),
            queue: BinaryHeap::new(),
        }
    }

    /// Nonces held now (expired ones may linger until the next insert).
    pub fn len(&self) -> usize {
        self.expiry.len()
    }

    /// Heap bytes held by the map and the expiry queue (their capacities,
    /// not just their lengths; the map's control bytes included).
    pub fn allocated_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(u128, u64)>() + 1;
        let entry = std::mem::size_of::<Reverse<(u64, u128)>>();
        self.expiry.capacity() * slot + self.queue.capacity() * entry
    }

    /// True when no nonce is held.
    pub fn is_empty(&self) -> bool {
        self.expiry.is_empty()
    }

    /// Forgets every nonce whose expiry is before `now_ms`.
    pub fn purge(&mut self, now_ms: u64) {
        while let Some(Reverse((expires, k))) = self.queue.peek().copied() {
            if expires >= now_ms {
                break;
            }
            self.queue.pop();
            if self.expiry.get(&k) == Some(&expires) {
                self.expiry.remove(&k);
            }
        }
    }

    /// Records `nonce` until `expires_ms`; refuses a nonce already held, and
    /// any new one when the cache is full of unexpired nonces.
    pub fn insert(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        expires_ms: u64,
        now_ms: u64,
    ) -> Result<(), ReplayError> {
        let k = key(nonce);
        if let Some(&held) = self.expiry.get(&k)
            && held >= now_ms
        {
            return Err(ReplayError::Replayed);
        }
        self.purge(now_ms);
        if self.expiry.len() >= self.capacity {
            return Err(ReplayError::CacheFull);
        }
        self.expiry.insert(k, expires_ms);
        self.queue.push(Reverse((expires_ms, k)));
        Ok(())
    }
}

/// The freshness window plus the nonce cache.
#[derive(Debug)]
pub struct ReplayGuard {
    max_skew_ms: u64,
    cache: NonceCache,
}

impl ReplayGuard {
    /// A guard accepting send times within `max_skew` of the local clock and
    /// remembering at most `capacity` nonces.
    pub fn new(max_skew: Duration, capacity: usize) -> ReplayGuard {
        ReplayGuard {
            max_skew_ms: u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX),
            cache: NonceCache::new(capacity),
        }
    }

    /// True when `sent_at_ms` is within the window around `now_ms` (bounds
    /// included).
    pub fn is_fresh(&self, sent_at_ms: u64, now_ms: u64) -> bool {
        sent_at_ms.abs_diff(now_ms) <= self.max_skew_ms
    }

    /// Refuses a stale datagram without touching the cache.
    pub fn check_fresh(&self, sent_at_ms: u64, now_ms: u64) -> Result<(), ReplayError> {
        if self.is_fresh(sent_at_ms, now_ms) {
            Ok(())
        } else {
            Err(ReplayError::Stale { sent_at_ms, now_ms })
        }
    }

    /// Accepts a fresh datagram's nonce once; see [`NonceCache::insert`].
    pub fn accept(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        sent_at_ms: u64,
        now_ms: u64,
    ) -> Result<(), ReplayError> {
        self.check_fresh(sent_at_ms, now_ms)?;
        let expires = sent_at_ms.saturating_add(self.max_skew_ms);
        self.cache.insert(nonce, expires, now_ms)
    }

    /// Nonces remembered now.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonce(i: u64) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        n[..8].copy_from_slice(&i.to_le_bytes());
        n
    }

    #[test]
    fn window_bounds_are_inclusive_both_ways() {
        let g = ReplayGuard::new(Duration::from_secs(30), 10);
        let now = 1_000_000;
        assert!(g.is_fresh(now, now));
        assert!(g.is_fresh(now - 30_000, now));
        assert!(g.is_fresh(now + 30_000, now));
        assert!(!g.is_fresh(now - 30_001, now));
        assert!(!g.is_fresh(now + 30_001, now));
        assert!(matches!(
            g.check_fresh(0, now),
            Err(ReplayError::Stale { .. })
        ));
        // No overflow at the ends of the clock.
        assert!(!g.is_fresh(u64::MAX, 0));
        assert!(!g.is_fresh(0, u64::MAX));
    }

    #[test]
    fn a_nonce_is_accepted_once_until_its_datagram_goes_stale() {
        let mut g = ReplayGuard::new(Duration::from_secs(30), 10);
        let sent = 1_000_000;
        assert_eq!(g.accept(&nonce(1), sent, sent), Ok(()));
        assert_eq!(
            g.accept(&nonce(1), sent, sent + 5),
            Err(ReplayError::Replayed)
        );
        // Still a replay at the last fresh millisecond...
        assert_eq!(
            g.accept(&nonce(1), sent, sent + 30_000),
            Err(ReplayError::Replayed)
        );
        // ...and stale one millisecond later (the cache is not even asked).
        assert!(matches!(
            g.accept(&nonce(1), sent, sent + 30_001),
            Err(ReplayError::Stale { .. })
        ));
        // A datagram from the future is remembered until it goes stale too.
        let future = sent + 20_000;
        assert_eq!(g.accept(&nonce(2), future, sent), Ok(()));
        assert_eq!(
            g.accept(&nonce(2), future, sent + 49_999),
            Err(ReplayError::Replayed)
        );
        // Other nonces are independent.
        assert_eq!(g.accept(&nonce(3), sent, sent + 1), Ok(()));
    }

    #[test]
    fn expired_nonces_are_forgotten_and_the_cache_stays_bounded() {
        let mut c = NonceCache::new(3);
        for i in 0..3 {
            assert_eq!(c.insert(&nonce(i), 100, 0), Ok(()));
        }
        assert_eq!(c.len(), 3);
        // Full of unexpired nonces: fail closed, nothing forgotten.
        assert_eq!(c.insert(&nonce(9), 100, 50), Err(ReplayError::CacheFull));
        assert_eq!(c.len(), 3);
        assert_eq!(c.insert(&nonce(1), 100, 50), Err(ReplayError::Replayed));
        // At the expiry instant they still count; after it they are gone.
        assert_eq!(c.insert(&nonce(9), 200, 100), Err(ReplayError::CacheFull));
        assert_eq!(c.insert(&nonce(9), 200, 101), Ok(()));
        assert_eq!(c.len(), 1);
        // An expired nonce may be reused (its datagram is stale by then anyway).
        assert_eq!(c.insert(&nonce(1), 300, 101), Ok(()));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_flood_never_grows_the_cache_past_its_capacity() {
        let mut g = ReplayGuard::new(Duration::from_secs(30), 1_000);
        let now = 5_000_000;
        let mut refused = 0;
        for i in 0..10_000u64 {
            match g.accept(&nonce(i), now, now) {
                Ok(()) => {}
                Err(ReplayError::CacheFull) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(g.cached(), 1_000);
        assert_eq!(refused, 9_000);
        // Memory at the default capacity, full.
        let mut c = NonceCache::new(131_072);
        for i in 0..200_000u64 {
            let _ = c.insert(&nonce(i), u64::MAX, 0);
        }
        assert_eq!(c.len(), 131_072);
        let bytes = c.allocated_bytes();
        eprintln!("replay cache full at 131,072 nonces: {bytes} bytes");
        assert!(bytes <= 12 << 20, "{bytes}");
        // Once the window has passed, room comes back.
        assert_eq!(g.accept(&nonce(20_000), now + 60_000, now + 60_000), Ok(()));
        assert_eq!(g.cached(), 1);
    }
}
