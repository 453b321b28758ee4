//! Gossip keyring: 32-byte keys for XChaCha20-Poly1305. The first key is the
//! primary (it seals); every key opens. Keys come from a file or an
//! environment variable, never from the command line.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{AeadInPlace, OsRng, rand_core::RngCore};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

/// Length of one key in bytes.
pub const KEY_LEN: usize = 32;

/// Errors while loading a keyring.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("the gossip keyring is empty")]
    Empty,
    #[error("gossip key {index}: not a 32-byte key in base64 or hex")]
    BadKey { index: usize },
    #[error("gossip key {index} repeats key {first}")]
    Duplicate { index: usize, first: usize },
    #[error("cannot read gossip keyring file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("environment variable {0} with the gossip keyring is not set or not UTF-8")]
    Env(String),
    #[error(
        "gossip needs a keyring (file or environment variable), or insecure plaintext chosen explicitly"
    )]
    NotConfigured,
    #[error(
        "give one gossip keyring source: a file, an environment variable, or insecure plaintext"
    )]
    Conflicting,
}

/// One key: a one-byte id (derived from the key, carried in clear in every
/// sealed packet so the receiver tries the right key first) and its cipher.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) id: u8,
    pub(crate) cipher: XChaCha20Poly1305,
    fingerprint: [u8; 16],
}

/// An ordered set of gossip keys; index 0 is the primary.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.keys.iter().map(|k| format!("{:02x}", k.id)).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

impl Keyring {
    /// Builds a keyring from raw keys; the first one is the primary.
    pub fn from_keys(keys: &[[u8; KEY_LEN]]) -> Result<Keyring, KeyringError> {
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        let mut out: Vec<Key> = Vec::with_capacity(keys.len());
        for (index, raw) in keys.iter().enumerate() {
            let key = Key::new(raw);
            if let Some(first) = out.iter().position(|k| k.fingerprint == key.fingerprint) {
                return Err(KeyringError::Duplicate {
                    index: index + 1,
                    first: first + 1,
                });
            }
            out.push(key);
        }
        Ok(Keyring { keys: out })
    }

    /// Parses keys separated by newlines, commas or blanks, each base64
    /// (standard alphabet) or 64 hex digits. `#` starts a comment to the end
    /// of the line. The first key is the primary.
    pub fn parse(text: &str) -> Result<Keyring, KeyringError> {
        let mut raw: Zeroizing<Vec<[u8; KEY_LEN]>> = Zeroizing::new(Vec::new());
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            for token in line.split(|c: char| c == ',' || c.is_whitespace()) {
                if token.is_empty() {
                    continue;
                }
                let index = raw.len() + 1;
                raw.push(decode_key(token).ok_or(KeyringError::BadKey { index })?);
            }
        }
        Keyring::from_keys(&raw)
    }

    /// Reads a keyring file (see [`Keyring::parse`]). Warns when the file is
    /// readable by other users.
    pub fn from_file(path: &Path) -> Result<Keyring, KeyringError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| KeyringError::Read {
                    path: path.display().to_string(),
                    source,
                })?,
            );
        warn_if_world_readable(path);
        Keyring::parse(&text)
    }

    /// Reads a keyring from an environment variable (see [`Keyring::parse`]).
    pub fn from_env(var: &str) -> Result<Keyring, KeyringError> {
        let text =
            Zeroizing::new(std::env::var(var).map_err(|_| KeyringError::Env(var.to_string()))?);
        Keyring::parse(&text)
    }

    /// A fresh random key as base64, for operators writing a keyring file.
    pub fn generate_key() -> String {
        let mut raw = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(raw.as_mut());
        BASE64.encode(raw.as_ref())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a keyring holds at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Id byte of the primary key (the one that seals).
    pub fn primary_id(&self) -> u8 {
        self.primary().id
    }

    /// Id bytes of all keys, primary first (safe to log).
    pub fn key_ids(&self) -> Vec<u8> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// True when both rings hold the same keys in the same order.
    pub fn same_keys(&self, other: &Keyring) -> bool {
        self.keys.len() == other.keys.len()
            && self
                .keys
                .iter()
                .zip(&other.keys)
                .all(|(a, b)| a.fingerprint == b.fingerprint)
    }

    pub(crate) fn primary(&self) -> &Key {
        // `from_keys` refuses an empty keyring, so index 0 exists.
        &self.keys[0]
    }

    /// Keys with this id, primary first (ids are one byte, so two keys may share one).
    pub(crate) fn candidates(&self, id: u8) -> impl Iterator<Item = &Key> {
        self.keys.iter().filter(move |k| k.id == id)
    }
}

impl Key {
    fn new(raw: &[u8; KEY_LEN]) -> Key {
        let cipher = XChaCha20Poly1305::new(raw.into());
        // A public fingerprint of the key: the Poly1305 tag of an empty message
        // under the all-zero nonce (a PRF of the key; it reveals nothing of it).
        let mut empty: Vec<u8> = Vec::new();
        let tag = cipher
            .encrypt_in_place_detached(&XNonce::default(), b"skein-gossip-key-id", &mut empty)
            .map(|t| {
                let mut f = [0u8; 16];
                f.copy_from_slice(t.as_slice());
                f
            })
            .unwrap_or_default();
        Key {
            id: tag[0],
            cipher,
            fingerprint: tag,
        }
    }
}

fn decode_key(token: &str) -> Option<[u8; KEY_LEN]> {
    let bytes = Zeroizing::new(if token.len() == 2 * KEY_LEN {
        decode_hex(token)?
    } else {
        BASE64.decode(token).ok()?
    });
    let mut key = [0u8; KEY_LEN];
    if bytes.len() != KEY_LEN {
        return None;
    }
    key.copy_from_slice(&bytes);
    Some(key)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(nibble(*hi)? << 4 | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

#[cfg(unix)]
fn warn_if_world_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        tracing::warn!(path = %path.display(), "gossip keyring file is readable by every user; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_world_readable(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    const K1_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn parses_hex_and_base64_with_comments() {
        let b64 = BASE64.encode([7u8; 32]);
        let text = format!("# rotation 2026-11\n{K1_HEX}\n\n{b64}  # old\n");
        let ring = Keyring::parse(&text).unwrap();
        assert_eq!(ring.len(), 2);
        let again = Keyring::from_keys(&[decode_hex(K1_HEX).unwrap().try_into().unwrap()]).unwrap();
        assert_eq!(ring.primary_id(), again.primary_id());
    }

    #[test]
    fn env_style_comma_list() {
        let a = BASE64.encode([1u8; 32]);
        let b = BASE64.encode([2u8; 32]);
        let ring = Keyring::parse(&format!("{a},{b}")).unwrap();
        assert_eq!(ring.len(), 2);
    }

    #[test]
    fn rejects_bad_short_empty_and_duplicate_keys() {
        assert!(matches!(Keyring::parse(""), Err(KeyringError::Empty)));
        assert!(matches!(
            Keyring::parse("# nothing\n"),
            Err(KeyringError::Empty)
        ));
        let short = BASE64.encode([1u8; 16]);
        assert!(matches!(
            Keyring::parse(&short),
            Err(KeyringError::BadKey { index: 1 })
        ));
        let bad_hex = "zz".repeat(32);
        let e = Keyring::parse(&format!("{K1_HEX}\n{bad_hex}")).unwrap_err();
        assert!(matches!(e, KeyringError::BadKey { index: 2 }));
        // The error text never echoes key material.
        assert!(!e.to_string().contains("zz"));
        let dup = Keyring::parse(&format!(
            "{K1_HEX}\n{}",
            BASE64.encode(decode_hex(K1_HEX).unwrap())
        ));
        assert!(matches!(
            dup,
            Err(KeyringError::Duplicate { index: 2, first: 1 })
        ));
    }

    #[test]
    fn debug_shows_ids_not_keys() {
        let ring = Keyring::parse(K1_HEX).unwrap();
        let dbg = format!("{ring:?}");
        assert!(dbg.contains("key_ids"));
        assert!(!dbg.contains("0102030405"));
    }

    #[test]
    fn reads_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, format!("{}\n", Keyring::generate_key())).unwrap();
        assert_eq!(Keyring::from_file(&path).unwrap().len(), 1);
        assert!(matches!(
            Keyring::from_file(&dir.path().join("missing")),
            Err(KeyringError::Read { .. })
        ));
        assert!(matches!(
            Keyring::from_env("SKEIN_TEST_SURELY_UNSET_KEYRING"),
            Err(KeyringError::Env(_))
        ));
    }
}
