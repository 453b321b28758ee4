//! ULIDs name blocks: 48 bits of Unix milliseconds and 80 random bits, written as 26 characters
//! of Crockford base32.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use thiserror::Error;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A 128-bit ULID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ulid(pub u128);

#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum UlidError {
    #[error("ULID must be 26 characters, got {0}")]
    Length(usize),
    #[error("invalid ULID character {0:?}")]
    Char(char),
    #[error("ULID overflows 128 bits")]
    Overflow,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// 64 unpredictable bits from the standard library's randomly keyed SipHash.
fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(d) = SystemTime::now().duration_since(UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.write_u32(std::process::id());
    h.finish()
}

impl Ulid {
    /// A new ULID for the current time.
    pub fn new() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self::from_parts(
            ms,
            (u128::from(random_u64()) << 64) | u128::from(random_u64()),
        )
    }

    /// Builds a ULID from a millisecond timestamp (low 48 bits used) and randomness (low 80 bits).
    pub fn from_parts(ms: u64, random: u128) -> Self {
        let time = u128::from(ms & ((1 << 48) - 1));
        Self((time << 80) | (random & ((1u128 << 80) - 1)))
    }

    /// The millisecond timestamp part.
    pub fn timestamp_ms(&self) -> u64 {
        (self.0 >> 80) as u64
    }
}

impl Default for Ulid {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        for (i, c) in out.iter_mut().enumerate() {
            // 26 characters of 5 bits = 130 bits; the first character holds the top 3 bits.
            let shift = 5 * (25 - i);
            *c = ALPHABET[((self.0 >> shift) & 0x1f) as usize];
        }
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

fn decode_char(c: char) -> Result<u128, UlidError> {
    let up = c.to_ascii_uppercase();
    let up = match up {
        'O' => '0',
        'I' | 'L' => '1',
        x => x,
    };
    ALPHABET
        .iter()
        .position(|&a| char::from(a) == up)
        .map(|p| p as u128)
        .ok_or(UlidError::Char(c))
}

impl FromStr for Ulid {
    type Err = UlidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s.chars().count();
        if n != 26 {
            return Err(UlidError::Length(n));
        }
        let mut v: u128 = 0;
        for (i, c) in s.chars().enumerate() {
            let d = decode_char(c)?;
            if i == 0 && d > 7 {
                return Err(UlidError::Overflow);
            }
            v = (v << 5) | d;
        }
        Ok(Self(v))
    }
}

impl Serialize for Ulid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ulid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_known_value() {
        let u: Ulid = "01M8AGBQV34W9J9C04B8T9S7XC".parse().unwrap();
        assert_eq!(u.to_string(), "01M8AGBQV34W9J9C04B8T9S7XC");
        assert_eq!(Ulid(0).to_string(), "00000000000000000000000000");
        assert_eq!(Ulid(u128::MAX).to_string(), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
        assert_eq!(
            "7zzzzzzzzzzzzzzzzzzzzzzzzz".parse::<Ulid>().unwrap(),
            Ulid(u128::MAX)
        );
        assert!("8ZZZZZZZZZZZZZZZZZZZZZZZZZ".parse::<Ulid>().is_err());
        assert!("01M8AGBQV34W9J9C04B8T9S7XU".parse::<Ulid>().is_err());
        assert!("short".parse::<Ulid>().is_err());
    }

    #[test]
    fn new_ulids_are_distinct_and_timed() {
        let a = Ulid::new();
        let b = Ulid::new();
        assert_ne!(a, b);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(now.abs_diff(a.timestamp_ms()) < 60_000);
        assert_eq!(Ulid::from_parts(5, 7).timestamp_ms(), 5);
    }
}
