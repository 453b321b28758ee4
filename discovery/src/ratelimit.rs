//! Per-source rate limits on received gossip datagrams, applied before any
//! AEAD work.
//!
//! Sources the node has reason to trust get a token bucket each: current
//! members and seeds (the [`Roster`]), and sources whose datagram opened,
//! was fresh, unreplayed and sealed by that very address ("vouched"). Every
//! other source is a stranger: strangers share one bucket, and within it
//! each source IP address (hashed with a per-process key into one of
//! [`STRANGER_SLOTS`] slots) gets at most [`STRANGER_SHARE`] of it. So a
//! flood of garbage or replays from any number of spoofed addresses spends
//! only the strangers' budget, never a member's; a flood from a few
//! addresses leaves room for a newcomer's first datagram (after which it is
//! vouched); and the state kept is bounded whatever the number of sources.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::RwLock;
use std::time::Instant;

use crate::seal::canonical;

/// Most addresses the roster keeps per kind (members, seeds).
pub const MAX_ROSTER: usize = 4_096;
/// Most sources with their own bucket (roster and vouched together); the
/// least recently seen goes first. A dropped bucket is recreated full.
pub const MAX_SOURCES: usize = 4_096;
/// Slots that stranger IP addresses are hashed into, each with its own
/// share of the strangers' rate.
pub const STRANGER_SLOTS: usize = 1_024;
/// The part of the strangers' rate one slot (one IP address, barring
/// collisions) may use.
pub const STRANGER_SHARE: f64 = 0.1;

/// A token bucket: `rate` tokens per second, holding at most `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        let burst = burst.max(1.0);
        TokenBucket {
            tokens: burst,
            rate: rate.max(0.0),
            burst,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The addresses a node answers without further ado: members (from
/// chitchat's live set) and seeds (resolved from the configured seed list).
/// Shared by the carrier (rate limits) and the relay (link admission).
#[derive(Debug, Default)]
pub struct Roster {
    members: RwLock<HashSet<SocketAddr>>,
    seeds: RwLock<HashSet<SocketAddr>>,
}

fn bounded(addrs: impl IntoIterator<Item = SocketAddr>) -> HashSet<SocketAddr> {
    addrs.into_iter().map(canonical).take(MAX_ROSTER).collect()
}

impl Roster {
    /// True for a current member or a seed.
    pub fn contains(&self, addr: SocketAddr) -> bool {
        let addr = canonical(addr);
        let read = |s: &RwLock<HashSet<SocketAddr>>| {
            s.read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(&addr)
        };
        read(&self.members) || read(&self.seeds)
    }

    /// Replaces the member addresses (at most [`MAX_ROSTER`]).
    pub fn set_members(&self, addrs: impl IntoIterator<Item = SocketAddr>) {
        let next = bounded(addrs);
        *self
            .members
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
    }

    /// Replaces the seed addresses (at most [`MAX_ROSTER`]).
    pub fn set_seeds(&self, addrs: impl IntoIterator<Item = SocketAddr>) {
        let next = bounded(addrs);
        *self
            .seeds
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
    }

    /// Numbers of member and seed addresses held.
    pub fn sizes(&self) -> (usize, usize) {
        let len = |s: &RwLock<HashSet<SocketAddr>>| {
            s.read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len()
        };
        (len(&self.members), len(&self.seeds))
    }
}

#[derive(Debug)]
struct Source {
    bucket: TokenBucket,
    last_seen: u64,
}

/// Which budget refused a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// The source's own bucket (a member, seed or vouched source).
    Source,
    /// The bucket shared by all other sources.
    Strangers,
}

/// Per-source buckets plus the strangers' buckets.
#[derive(Debug)]
pub struct SourceLimiter {
    rate: f64,
    burst: f64,
    strangers: TokenBucket,
    stranger_slots: Vec<TokenBucket>,
    slot_hasher: RandomState,
    sources: HashMap<SocketAddr, Source>,
    capacity: usize,
    tick: u64,
}

impl SourceLimiter {
    /// `per_source` datagrams per second for each trusted source and
    /// `strangers` per second shared by everyone else; each bucket holds
    /// two seconds' worth.
    pub fn new(per_source: u32, strangers: u32, now: Instant) -> SourceLimiter {
        SourceLimiter::with_capacity(per_source, strangers, MAX_SOURCES, now)
    }

    /// Like [`SourceLimiter::new`] with a bound on the sources tracked.
    pub fn with_capacity(
        per_source: u32,
        strangers: u32,
        capacity: usize,
        now: Instant,
    ) -> SourceLimiter {
        let rate = f64::from(per_source);
        let shared = f64::from(strangers);
        let slot = (shared * STRANGER_SHARE).max(1.0);
        SourceLimiter {
            rate,
            burst: 2.0 * rate,
            strangers: TokenBucket::new(shared, 2.0 * shared, now),
            stranger_slots: vec![TokenBucket::new(slot, 2.0 * slot, now); STRANGER_SLOTS],
            slot_hasher: RandomState::new(),
            sources: HashMap::new(),
            capacity: capacity.max(1),
            tick: 0,
        }
    }

    /// Spends one token of `from`'s budget: its own bucket when it has one
    /// or is on the roster (`known`), the strangers' bucket otherwise.
    pub fn admit(&mut self, from: SocketAddr, known: bool, now: Instant) -> Result<(), Limited> {
        let from = canonical(from);
        self.tick += 1;
        if !self.sources.contains_key(&from) {
            if !known {
                return self.admit_stranger(from.ip(), now);
            }
            self.insert(from, now);
        }
        let tick = self.tick;
        match self.sources.get_mut(&from) {
            Some(s) => {
                s.last_seen = tick;
                if s.bucket.try_take(now) {
                    Ok(())
                } else {
                    Err(Limited::Source)
                }
            }
            None => Err(Limited::Source),
        }
    }

    fn admit_stranger(&mut self, ip: IpAddr, now: Instant) -> Result<(), Limited> {
        let slot = usize::try_from(self.slot_hasher.hash_one(ip)).unwrap_or(0) % STRANGER_SLOTS;
        let own = self
            .stranger_slots
            .get_mut(slot)
            .is_some_and(|b| b.try_take(now));
        if own && self.strangers.try_take(now) {
            Ok(())
        } else {
            Err(Limited::Strangers)
        }
    }

    /// Gives `from` its own bucket (after a datagram from it passed every
    /// check), so floods of strangers cannot starve it any more.
    pub fn vouch(&mut self, from: SocketAddr, now: Instant) {
        let from = canonical(from);
        if !self.sources.contains_key(&from) {
            self.insert(from, now);
        }
    }

    /// Sources with their own bucket now.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    fn insert(&mut self, from: SocketAddr, now: Instant) {
        if self.sources.len() >= self.capacity {
            let oldest = self
                .sources
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(a, _)| *a);
            if let Some(a) = oldest {
                self.sources.remove(&a);
            }
        }
        self.sources.insert(
            from,
            Source {
                bucket: TokenBucket::new(self.rate, self.burst, now),
                last_seen: self.tick,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addr(i: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 7946))
    }

    #[test]
    fn bucket_refills_at_its_rate_up_to_its_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 20.0, t0);
        assert_eq!((0..25).filter(|_| b.try_take(t0)).count(), 20);
        // Half a second later: five more.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!((0..25).filter(|_| b.try_take(t1)).count(), 5);
        // Long idle: back to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..100).filter(|_| b.try_take(t2)).count(), 20);
        // A clock that goes backwards does not mint tokens.
        assert!(!b.try_take(t0));
    }

    #[test]
    fn strangers_share_one_bucket_and_members_keep_theirs() {
        let t0 = Instant::now();
        let mut l = SourceLimiter::new(5, 30, t0);
        // A flood from 1,000 different unknown addresses: sixty get through
        // (burst of two seconds at 30/s), the rest are refused.
        let passed = (0..1_000)
            .filter(|i| l.admit(addr(*i), false, t0).is_ok())
            .count();
        assert_eq!(passed, 60);
        assert_eq!(l.admit(addr(5_000), false, t0), Err(Limited::Strangers));
        assert_eq!(l.tracked(), 0);
        // A member is unaffected, and limited on its own.
        let member = addr(9_999);
        let ok = (0..20)
            .filter(|_| l.admit(member, true, t0).is_ok())
            .count();
        assert_eq!(ok, 10);
        assert_eq!(l.admit(member, true, t0), Err(Limited::Source));
        // A vouched stranger gets its own bucket.
        l.vouch(addr(1), t0);
        assert!(l.admit(addr(1), false, t0).is_ok());
        assert_eq!(l.tracked(), 2);
    }

    #[test]
    fn one_flooding_address_leaves_room_for_a_newcomer() {
        let t0 = Instant::now();
        let mut l = SourceLimiter::new(5, 100, t0);
        let flooder = |port: u16| SocketAddr::from(([192, 0, 2, 1], port));
        // Any ports of one IP address: at most a tenth of the strangers' budget
        // (10/s, burst 20).
        let passed = (0..5_000u16)
            .filter(|p| l.admit(flooder(*p), false, t0).is_ok())
            .count();
        assert_eq!(passed, 20);
        // Another address still gets its first datagram in.
        assert!(l.admit(addr(7), false, t0).is_ok());
        // A dozen or so flooding addresses spend the whole budget, though.
        for ip in 0..15u8 {
            for _ in 0..100 {
                let _ = l.admit(SocketAddr::from(([198, 51, 100, ip], 1)), false, t0);
            }
        }
        assert_eq!(l.admit(addr(8), false, t0), Err(Limited::Strangers));
    }

    #[test]
    fn tracked_sources_are_bounded() {
        let t0 = Instant::now();
        let mut l = SourceLimiter::with_capacity(5, 3, 100, t0);
        for i in 0..1_000 {
            l.vouch(addr(i), t0);
            assert!(l.tracked() <= 100);
        }
        // The most recent ones are kept.
        assert!(l.admit(addr(999), false, t0).is_ok());
    }

    #[test]
    fn roster_is_canonical_and_bounded() {
        let r = Roster::default();
        r.set_members(["[::ffff:10.9.9.9]:7946".parse().unwrap()]);
        assert!(r.contains("10.9.9.9:7946".parse().unwrap()));
        assert!(!r.contains("10.9.9.9:7947".parse().unwrap()));
        r.set_seeds((0..10_000).map(addr));
        assert_eq!(r.sizes(), (1, MAX_ROSTER));
        r.set_members([]);
        assert!(!r.contains("10.9.9.9:7946".parse().unwrap()));
    }
}
