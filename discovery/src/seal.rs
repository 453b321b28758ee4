//! Sealing of one gossip datagram, format v2:
//!
//! ```text
//! version 0x02 (1) || key id (1) || nonce (24) || XChaCha20-Poly1305(inner) with its 16-byte tag
//! inner = sent_at (u64 BE, unix ms) || sender address || recipient address || frame
//! address = 0x04 || IPv4 (4) || port (u16 BE)   or   0x06 || IPv6 (16) || port (u16 BE)
//! ```
//!
//! The associated data is `skein-gossip/2 || version || key id`, so the
//! clear header is authenticated too. Everything a receiver needs to refuse a
//! replay (the send time, who sealed it, for whom) is inside the AEAD: an
//! attacker without a key can neither read nor change it. The nonce is random
//! (192 bits, so random nonces do not collide in practice) and doubles as the
//! datagram's identity in the receiver's replay cache.
//!
//! Format v1 (`key id || nonce || ciphertext`, no time, no addresses) is not
//! read any more: accepting it would accept replays. A v1 datagram is
//! recognised without any cryptography (its first byte is one of our key ids,
//! not the version) and refused as [`OpenError::LegacyV1`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use chacha20poly1305::XNonce;
use chacha20poly1305::aead::{Aead, AeadCore, OsRng, Payload};

use crate::keyring::Keyring;

/// The format version byte that starts every sealed datagram.
pub const VERSION: u8 = 2;
/// Bytes of the version byte.
pub const VERSION_LEN: usize = 1;
/// Bytes of the key id.
pub const KEY_ID_LEN: usize = 1;
/// Bytes of the XChaCha20 nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes of the Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Bytes of the clear header: version, key id, nonce.
pub const HEADER_LEN: usize = VERSION_LEN + KEY_ID_LEN + NONCE_LEN;
/// Bytes the seal adds around the inner plaintext.
pub const SEAL_OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Bytes of the send time inside the seal.
pub const TIME_LEN: usize = 8;
/// Bytes of the largest encoded address (IPv6).
pub const MAX_ADDR_LEN: usize = 1 + 16 + 2;
/// Bytes of the smallest encoded address (IPv4).
pub const MIN_ADDR_LEN: usize = 1 + 4 + 2;
/// Most bytes a sealed datagram adds to the frame it carries.
pub const MAX_OVERHEAD: usize = SEAL_OVERHEAD + TIME_LEN + 2 * MAX_ADDR_LEN;
/// The smallest well-formed sealed datagram (IPv4 addresses, empty frame).
pub const MIN_SEALED: usize = SEAL_OVERHEAD + TIME_LEN + 2 * MIN_ADDR_LEN;
/// Largest UDP payload over IPv4.
pub const MAX_DATAGRAM: usize = 65_507;
/// Bytes of a format v1 seal (key id, nonce, tag), to recognise v1 datagrams.
const V1_OVERHEAD: usize = KEY_ID_LEN + NONCE_LEN + TAG_LEN;

/// Associated data prefix of every v2 datagram (domain separation).
const AAD_PREFIX: &[u8; 14] = b"skein-gossip/2";

/// Why a received datagram was dropped before or while opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("datagram shorter than the smallest sealed datagram")]
    TooShort,
    #[error("datagram longer than the {MAX_DATAGRAM}-byte UDP limit (truncated on receipt)")]
    Oversize,
    #[error(
        "datagram in the retired seal format v1 (no time or sender inside); upgrade the sender"
    )]
    LegacyV1,
    #[error("datagram does not start with a known seal format version")]
    BadVersion,
    #[error("datagram sealed with a key id not in the keyring")]
    UnknownKey,
    #[error("datagram failed authentication under every key with its id")]
    Forged,
    #[error("authenticated datagram with a malformed header inside the seal")]
    BadInner,
}

/// Why a datagram could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed datagram would be {0} bytes, over the {MAX_DATAGRAM}-byte UDP limit")]
    TooLarge(usize),
    #[error("AEAD encryption failed")]
    Cipher,
}

/// A datagram that opened: who sealed it, for whom, when, and the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Send time on the sender's clock, unix milliseconds.
    pub sent_at_ms: u64,
    /// The gossip address of the node that sealed it.
    pub sender: SocketAddr,
    /// The gossip address it was sealed for.
    pub recipient: SocketAddr,
    /// The datagram's nonce (its identity for the replay cache).
    pub nonce: [u8; NONCE_LEN],
    /// The frame inside (see [`crate::frame`]).
    pub frame: Vec<u8>,
}

/// What a sealed datagram says in the clear, checked without cryptography.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub key_id: u8,
}

/// The current time as unix milliseconds (0 before 1970).
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// An address as the seal compares it: IPv4-mapped IPv6 becomes IPv4, and
/// IPv6 flow info and scope ids are dropped.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    SocketAddr::new(ip, addr.port())
}

fn encode_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match canonical(addr) {
        SocketAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        SocketAddr::V6(a) => {
            out.push(6);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
    }
}

fn take<const N: usize>(bytes: &[u8]) -> Option<([u8; N], &[u8])> {
    let (head, rest) = bytes.split_at_checked(N)?;
    Some((head.try_into().ok()?, rest))
}

fn decode_addr(bytes: &[u8]) -> Option<(SocketAddr, &[u8])> {
    let (&family, rest) = bytes.split_first()?;
    let (ip, rest) = match family {
        4 => {
            let (ip, rest) = take::<4>(rest)?;
            (IpAddr::V4(Ipv4Addr::from(ip)), rest)
        }
        6 => {
            let (ip, rest) = take::<16>(rest)?;
            (IpAddr::V6(Ipv6Addr::from(ip)), rest)
        }
        _ => return None,
    };
    let (port, rest) = take::<2>(rest)?;
    Some((SocketAddr::new(ip, u16::from_be_bytes(port)), rest))
}

fn aad(key_id: u8) -> [u8; 16] {
    let mut aad = [0u8; 16];
    aad[..14].copy_from_slice(AAD_PREFIX);
    aad[14] = VERSION;
    aad[15] = key_id;
    aad
}

/// Seals `frame` under the primary key, for `recipient`, as sent now by
/// `sender` (this node's gossip address).
pub fn seal(
    keyring: &Keyring,
    sender: SocketAddr,
    recipient: SocketAddr,
    frame: &[u8],
) -> Result<Vec<u8>, SealError> {
    seal_at(keyring, sender, recipient, unix_ms_now(), frame)
}

/// Like [`seal`] with an explicit send time (tests, tools).
pub fn seal_at(
    keyring: &Keyring,
    sender: SocketAddr,
    recipient: SocketAddr,
    sent_at_ms: u64,
    frame: &[u8],
) -> Result<Vec<u8>, SealError> {
    let mut inner = Vec::with_capacity(TIME_LEN + 2 * MAX_ADDR_LEN + frame.len());
    inner.extend_from_slice(&sent_at_ms.to_be_bytes());
    encode_addr(&mut inner, sender);
    encode_addr(&mut inner, recipient);
    inner.extend_from_slice(frame);
    let total = inner.len() + SEAL_OVERHEAD;
    if total > MAX_DATAGRAM {
        return Err(SealError::TooLarge(total));
    }
    let key = keyring.primary();
    let nonce = chacha20poly1305::XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = key
        .cipher
        .encrypt(
            &nonce,
            Payload {
                msg: &inner,
                aad: &aad(key.id),
            },
        )
        .map_err(|_| SealError::Cipher)?;
    let mut out = Vec::with_capacity(total);
    out.push(VERSION);
    out.push(key.id);
    out.extend_from_slice(nonce.as_slice());
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// The checks that cost no cryptography: length, version, key id. The
/// receiver runs them before spending an AEAD operation on a datagram.
pub fn inspect(keyring: &Keyring, datagram: &[u8]) -> Result<Header, OpenError> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(OpenError::Oversize);
    }
    let Some((&version, rest)) = datagram.split_first() else {
        return Err(OpenError::TooShort);
    };
    if version != VERSION {
        // A v1 datagram starts with its key id; nothing else we know does.
        return if datagram.len() >= V1_OVERHEAD && keyring.candidates(version).next().is_some() {
            Err(OpenError::LegacyV1)
        } else {
            Err(OpenError::BadVersion)
        };
    }
    if datagram.len() < MIN_SEALED {
        return Err(OpenError::TooShort);
    }
    let key_id = rest.first().copied().ok_or(OpenError::TooShort)?;
    if keyring.candidates(key_id).next().is_none() {
        return Err(OpenError::UnknownKey);
    }
    Ok(Header { key_id })
}

/// Opens a sealed datagram with whichever key of the ring sealed it.
pub fn open(keyring: &Keyring, datagram: &[u8]) -> Result<Opened, OpenError> {
    let Header { key_id } = inspect(keyring, datagram)?;
    let nonce_bytes: [u8; NONCE_LEN] = datagram
        .get(VERSION_LEN + KEY_ID_LEN..HEADER_LEN)
        .and_then(|n| n.try_into().ok())
        .ok_or(OpenError::TooShort)?;
    let ciphertext = datagram.get(HEADER_LEN..).ok_or(OpenError::TooShort)?;
    let nonce = XNonce::from_slice(&nonce_bytes);
    let aad = aad(key_id);
    let plain = keyring
        .candidates(key_id)
        .find_map(|key| {
            key.cipher
                .decrypt(
                    nonce,
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .ok()
        })
        .ok_or(OpenError::Forged)?;
    let (time, rest) = take::<TIME_LEN>(&plain).ok_or(OpenError::BadInner)?;
    let (sender, rest) = decode_addr(rest).ok_or(OpenError::BadInner)?;
    let (recipient, frame) = decode_addr(rest).ok_or(OpenError::BadInner)?;
    let header_len = plain.len() - frame.len();
    let mut frame_bytes = plain;
    frame_bytes.drain(..header_len);
    Ok(Opened {
        sent_at_ms: u64::from_be_bytes(time),
        sender,
        recipient,
        nonce: nonce_bytes,
        frame: frame_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(bytes: &[u8]) -> Keyring {
        let keys: Vec<[u8; 32]> = bytes.iter().map(|b| [*b; 32]).collect();
        Keyring::from_keys(&keys).unwrap()
    }

    fn a() -> SocketAddr {
        "127.0.0.2:7946".parse().unwrap()
    }

    fn b() -> SocketAddr {
        "[2001:db8::1]:7947".parse().unwrap()
    }

    #[test]
    fn round_trip_and_layout() {
        let k = ring(&[1]);
        let sealed = seal_at(&k, a(), b(), 1_234, b"hello chitchat").unwrap();
        // IPv4 sender (7 bytes), IPv6 recipient (19 bytes), 8 bytes of time.
        assert_eq!(sealed.len(), 14 + SEAL_OVERHEAD + 8 + 7 + 19);
        assert!(sealed.len() <= 14 + MAX_OVERHEAD);
        assert_eq!(sealed[0], VERSION);
        assert_eq!(sealed[1], k.primary_id());
        let opened = open(&k, &sealed).unwrap();
        assert_eq!(opened.frame, b"hello chitchat");
        assert_eq!(opened.sent_at_ms, 1_234);
        assert_eq!(opened.sender, a());
        assert_eq!(opened.recipient, b());
        assert_eq!(&opened.nonce[..], &sealed[2..26]);
        // Two seals of the same frame differ (random nonce).
        assert_ne!(
            seal_at(&k, a(), a(), 1, b"x").unwrap(),
            seal_at(&k, a(), a(), 1, b"x").unwrap()
        );
        // Empty frame still seals and opens, at the minimum size.
        let empty = seal_at(&k, a(), a(), 0, b"").unwrap();
        assert_eq!(empty.len(), MIN_SEALED);
        assert_eq!(open(&k, &empty).unwrap().frame, b"");
        // seal() stamps the current time.
        let before = unix_ms_now();
        let now = open(&k, &seal(&k, a(), a(), b"t").unwrap()).unwrap();
        assert!(now.sent_at_ms >= before && now.sent_at_ms <= unix_ms_now());
    }

    #[test]
    fn mapped_addresses_are_canonical() {
        let mapped: SocketAddr = "[::ffff:127.0.0.2]:7946".parse().unwrap();
        assert_eq!(canonical(mapped), a());
        let k = ring(&[1]);
        let opened = open(&k, &seal_at(&k, mapped, mapped, 0, b"").unwrap()).unwrap();
        assert_eq!(opened.sender, a());
    }

    #[test]
    fn secondary_keys_open_primary_seals() {
        let old = ring(&[1]);
        let rotating = ring(&[2, 1]);
        // A node that added the new key as primary can still read old packets...
        assert!(open(&rotating, &seal(&old, a(), b(), b"a").unwrap()).is_ok());
        // ...but the old node cannot read the new primary's packets.
        assert!(open(&old, &seal(&rotating, a(), b(), b"b").unwrap()).is_err());
    }

    #[test]
    fn tampering_and_garbage_are_rejected() {
        let k = ring(&[1]);
        let mut sealed = seal(&k, a(), b(), b"payload").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(open(&k, &sealed), Err(OpenError::Forged));
        // The clear header is authenticated: a changed key id byte that still
        // names a key of the ring fails, it does not open under another AAD.
        let two = ring(&[1, 2]);
        let mut relabelled = seal(&two, a(), b(), b"p").unwrap();
        relabelled[1] = two.key_ids()[1];
        if relabelled[1] != two.key_ids()[0] {
            assert_eq!(open(&two, &relabelled), Err(OpenError::Forged));
        }
        assert_eq!(open(&k, &[]), Err(OpenError::TooShort));
        assert_eq!(open(&k, &[VERSION; 10]), Err(OpenError::TooShort));
        let mut other = vec![0u8; 100];
        other[0] = VERSION;
        other[1] = k.primary_id().wrapping_add(1);
        assert_eq!(open(&k, &other), Err(OpenError::UnknownKey));
        let wrong = ring(&[9]);
        let e = open(&wrong, &seal(&k, a(), b(), b"p").unwrap()).unwrap_err();
        assert!(matches!(e, OpenError::UnknownKey | OpenError::Forged));
        assert_eq!(
            open(&k, &vec![VERSION; MAX_DATAGRAM + 1]),
            Err(OpenError::Oversize)
        );
    }

    #[test]
    fn v1_datagrams_are_recognised_without_crypto() {
        let k = ring(&[1]);
        // A v1 datagram: key id || nonce || ciphertext+tag.
        let mut v1 = vec![k.primary_id()];
        v1.extend_from_slice(&[7u8; NONCE_LEN + TAG_LEN + 20]);
        let expected = if k.primary_id() == VERSION {
            // The one key id in 256 that equals the version byte reads as v2.
            OpenError::Forged
        } else {
            OpenError::LegacyV1
        };
        assert_eq!(open(&k, &v1), Err(expected));
        // Same first byte, too short for v1: just a bad version.
        if k.primary_id() != VERSION {
            assert_eq!(open(&k, &v1[..10]), Err(OpenError::BadVersion));
        }
        let mut junk = v1.clone();
        junk[0] = if k.primary_id() == 0x77 { 0x78 } else { 0x77 };
        if junk[0] != VERSION {
            assert_eq!(open(&k, &junk), Err(OpenError::BadVersion));
        }
    }

    #[test]
    fn malformed_inner_header_is_its_own_error() {
        // Sealed with the right key by a keyholder, but not a v2 inner header.
        let k = ring(&[1]);
        let key = k.primary();
        let nonce = chacha20poly1305::XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &[0u8; 30][..],
                    aad: &aad(key.id),
                },
            )
            .unwrap();
        let mut d = vec![VERSION, key.id];
        d.extend_from_slice(nonce.as_slice());
        d.extend_from_slice(&ct);
        assert_eq!(open(&k, &d), Err(OpenError::BadInner));
    }

    #[test]
    fn oversize_frame_is_refused() {
        let k = ring(&[1]);
        let fits = MAX_DATAGRAM - SEAL_OVERHEAD - TIME_LEN - 2 * MIN_ADDR_LEN;
        assert_eq!(
            seal(&k, a(), a(), &vec![0u8; fits]).unwrap().len(),
            MAX_DATAGRAM
        );
        assert!(matches!(
            seal(&k, a(), a(), &vec![0u8; fits + 1]),
            Err(SealError::TooLarge(_))
        ));
        // With IPv6 addresses the overhead is the maximum.
        let fits6 = MAX_DATAGRAM - MAX_OVERHEAD;
        assert!(seal(&k, b(), b(), &vec![0u8; fits6]).is_ok());
        assert!(seal(&k, b(), b(), &vec![0u8; fits6 + 1]).is_err());
    }
}
