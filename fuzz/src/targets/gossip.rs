//! Sealed LAN gossip as a node receives it: a run of datagrams, each opened with the
//! node's keyring, checked by the replay guard (freshness, nonce) and fed to the fragment
//! reassembler, whose buffers must stay within their budgets whatever arrives.

use skein_discovery::Keyring;
use skein_discovery::frame::{MAX_MESSAGE, Reassembler, ReassemblyLimits};
use skein_discovery::replay::ReplayGuard;
use skein_discovery::seal::{self, MAX_DATAGRAM};
use std::net::SocketAddr;
use std::time::Duration;

/// The test keyring's only key.
const KEY: [u8; 32] = [0x5e; 32];
/// "Now" for the replay guard, and the base of sealed send times.
const NOW_MS: u64 = 1_700_000_000_000;
/// Most datagrams taken from one input.
const MAX_DATAGRAMS: usize = 512;

fn keyring() -> Keyring {
    Keyring::from_keys(&[KEY]).expect("a one-key keyring")
}

fn peer(n: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1 + n % 8], 7946))
}

/// Datagrams framed as `len <2b BE> | kind | body`. Kind bit 0: seal `body` (a gossip
/// frame: whole message or fragment) with the node's key, from one of eight peers
/// (kind bits 1-3), sent at a time skewed by kind bits 4-7 (so some are stale); else
/// `body` is the datagram as received. Small reassembly budgets make eviction reachable.
pub fn datagrams(data: &[u8]) {
    let ring = keyring();
    let me = SocketAddr::from(([127, 0, 0, 100], 7946));
    let limits = ReassemblyLimits {
        max_bytes: 0,
        max_bytes_per_source: 0,
    }
    .sane();
    let mut reasm = Reassembler::new(limits);
    let mut guard = ReplayGuard::new(Duration::from_secs(30), 64);
    let mut rest = data;
    for _ in 0..MAX_DATAGRAMS {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            break;
        };
        let Some((&kind, tail)) = tail.split_first() else {
            break;
        };
        let n = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (body, next) = tail.split_at(n);
        rest = next;
        let datagram = if kind & 1 == 1 {
            let skew = u64::from(kind >> 4) * 5_000;
            let Ok(d) = seal::seal_at(&ring, peer(kind >> 1), me, NOW_MS - 40_000 + skew, body)
            else {
                continue;
            };
            d
        } else {
            body.to_vec()
        };
        let _ = seal::inspect(&ring, &datagram);
        let Ok(opened) = seal::open(&ring, &datagram) else {
            continue;
        };
        if kind & 1 == 1 {
            assert_eq!(opened.frame, body, "a sealed frame opens to itself");
        }
        if guard
            .accept(&opened.nonce, opened.sent_at_ms, NOW_MS)
            .is_err()
        {
            continue;
        }
        if let Ok(Some(whole)) = reasm.push(opened.sender, &opened.frame) {
            assert!(whole.len() <= MAX_MESSAGE.max(MAX_DATAGRAM));
        }
        reasm.take_evicted();
        assert!(
            reasm.buffered_bytes() <= limits.max_bytes,
            "reassembly over budget"
        );
        assert!(reasm.buffered_bytes_from(opened.sender) <= limits.max_bytes_per_source);
    }
}

/// A run of sealed datagrams: a whole message, a message in three fragments, a stale
/// one and an unsealed one (for the seed corpus).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut run = Vec::new();
    let mut push = |kind: u8, body: &[u8]| {
        run.extend_from_slice(&(body.len() as u16).to_be_bytes());
        run.push(kind);
        run.extend_from_slice(body);
    };
    let mut whole = vec![0u8];
    whole.extend_from_slice(b"chitchat syn");
    push(0x81, &whole);
    if let Ok(frames) = skein_discovery::frame::encode(&[7u8; 900], 400, 42) {
        for f in &frames {
            push(0x83, f);
        }
    }
    push(0x01, &whole);
    push(0x00, b"not sealed at all");
    out.push(("gen-run".to_string(), run));
    if let Ok(d) = seal::seal_at(&keyring(), peer(0), peer(99), NOW_MS, &whole) {
        let mut raw = (d.len() as u16).to_be_bytes().to_vec();
        raw.push(0);
        raw.extend_from_slice(&d);
        out.push(("gen-sealed-datagram".to_string(), raw));
    }
    out
}
