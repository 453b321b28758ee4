//! Sealing of one gossip datagram: `key id (1 byte) || nonce (24 bytes) ||
//! XChaCha20-Poly1305 ciphertext with its 16-byte tag`. The nonce is random
//! (192 bits, so random nonces do not collide in practice).

use chacha20poly1305::XNonce;
use chacha20poly1305::aead::{Aead, AeadCore, OsRng, Payload};

use crate::keyring::Keyring;

/// Bytes of the key id.
pub const KEY_ID_LEN: usize = 1;
/// Bytes of the XChaCha20 nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes of the Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed datagram adds to its plaintext.
pub const SEAL_OVERHEAD: usize = KEY_ID_LEN + NONCE_LEN + TAG_LEN;
/// Largest UDP payload over IPv4.
pub const MAX_DATAGRAM: usize = 65_507;

/// Associated data bound to every sealed packet (domain separation).
const AAD: &[u8] = b"skein-gossip/1";

/// Why a received datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("datagram shorter than the seal overhead")]
    TooShort,
    #[error("datagram sealed with a key id not in the keyring")]
    UnknownKey,
    #[error("datagram failed authentication under every key with its id")]
    Forged,
}

impl OpenError {
    /// Short label for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            OpenError::TooShort => "too_short",
            OpenError::UnknownKey => "unknown_key",
            OpenError::Forged => "auth_failed",
        }
    }
}

/// Why a datagram could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed datagram would be {0} bytes, over the {MAX_DATAGRAM}-byte UDP limit")]
    TooLarge(usize),
    #[error("AEAD encryption failed")]
    Cipher,
}

/// Seals `plaintext` under the primary key.
pub fn seal(keyring: &Keyring, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let total = plaintext.len() + SEAL_OVERHEAD;
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
                msg: plaintext,
                aad: AAD,
            },
        )
        .map_err(|_| SealError::Cipher)?;
    let mut out = Vec::with_capacity(total);
    out.push(key.id);
    out.extend_from_slice(nonce.as_slice());
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens a sealed datagram with whichever key of the ring sealed it.
pub fn open(keyring: &Keyring, datagram: &[u8]) -> Result<Vec<u8>, OpenError> {
    if datagram.len() < SEAL_OVERHEAD {
        return Err(OpenError::TooShort);
    }
    let (id, rest) = datagram.split_at(KEY_ID_LEN);
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce = XNonce::from_slice(nonce);
    let id = id.first().copied().ok_or(OpenError::TooShort)?;
    let mut tried = false;
    for key in keyring.candidates(id) {
        tried = true;
        let payload = Payload {
            msg: ciphertext,
            aad: AAD,
        };
        if let Ok(plain) = key.cipher.decrypt(nonce, payload) {
            return Ok(plain);
        }
    }
    if tried {
        Err(OpenError::Forged)
    } else {
        Err(OpenError::UnknownKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(bytes: &[u8]) -> Keyring {
        let keys: Vec<[u8; 32]> = bytes.iter().map(|b| [*b; 32]).collect();
        Keyring::from_keys(&keys).unwrap()
    }

    #[test]
    fn round_trip_and_layout() {
        let k = ring(&[1]);
        let sealed = seal(&k, b"hello chitchat").unwrap();
        assert_eq!(sealed.len(), 14 + SEAL_OVERHEAD);
        assert_eq!(sealed[0], k.primary_id());
        assert_eq!(open(&k, &sealed).unwrap(), b"hello chitchat");
        // Two seals of the same plaintext differ (random nonce).
        assert_ne!(seal(&k, b"x").unwrap(), seal(&k, b"x").unwrap());
        // Empty plaintext still seals and opens.
        assert_eq!(open(&k, &seal(&k, b"").unwrap()).unwrap(), b"");
    }

    #[test]
    fn secondary_keys_open_primary_seals() {
        let old = ring(&[1]);
        let rotating = ring(&[2, 1]);
        // A node that added the new key as primary can still read old packets...
        assert!(open(&rotating, &seal(&old, b"a").unwrap()).is_ok());
        // ...but the old node cannot read the new primary's packets.
        assert!(open(&old, &seal(&rotating, b"b").unwrap()).is_err());
    }

    #[test]
    fn tampering_and_garbage_are_rejected() {
        let k = ring(&[1]);
        let mut sealed = seal(&k, b"payload").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(open(&k, &sealed), Err(OpenError::Forged));
        assert_eq!(open(&k, &[k.primary_id(); 10]), Err(OpenError::TooShort));
        let mut other = vec![0u8; 100];
        other[0] = k.primary_id().wrapping_add(1);
        assert_eq!(open(&k, &other), Err(OpenError::UnknownKey));
        let wrong = ring(&[9]);
        let e = open(&wrong, &seal(&k, b"p").unwrap()).unwrap_err();
        assert!(matches!(e, OpenError::UnknownKey | OpenError::Forged));
    }

    #[test]
    fn oversize_plaintext_is_refused() {
        let k = ring(&[1]);
        let big = vec![0u8; MAX_DATAGRAM - SEAL_OVERHEAD + 1];
        assert!(matches!(seal(&k, &big), Err(SealError::TooLarge(_))));
        let fits = vec![0u8; MAX_DATAGRAM - SEAL_OVERHEAD];
        assert_eq!(seal(&k, &fits).unwrap().len(), MAX_DATAGRAM);
    }
}
