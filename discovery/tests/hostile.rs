//! Hostile peers against real sealed nodes, over real UDP sockets on
//! 127.0.0.100..155: datagrams captured from a real node and replayed from
//! another address, from the right address twice, or after the freshness
//! window; datagrams sealed by a key holder with the wrong sender or
//! recipient; floods of garbage and replays; fragment floods; a key holder
//! cycling source addresses. Each is refused and counted with its reason,
//! no reply reaches a refused source, and the honest nodes keep gossiping.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use skein_discovery::{Membership, Reject, seal};
use tokio::net::UdpSocket;

const KEY: u8 = 1;
const CONVERGE: Duration = Duration::from_secs(10);

/// The two flood tests take turns: on a 2-core machine, two floods at once
/// would test the scheduler rather than the budgets.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn sees(m: &Membership, expected: &[&str]) -> bool {
    names(m) == expected
}

/// The first datagram `tap` receives from `from`.
async fn capture(tap: &UdpSocket, from: SocketAddr) -> Vec<u8> {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, src) = tokio::time::timeout(Duration::from_secs(5), tap.recv_from(&mut buf))
            .await
            .expect("the node sent nothing to its seed")
            .unwrap();
        if src == from {
            return buf[..n].to_vec();
        }
    }
}

/// True when nothing arrives on `socket` for `span`.
async fn silent(socket: &UdpSocket, span: Duration) -> bool {
    let mut buf = vec![0u8; 65_536];
    tokio::time::timeout(span, socket.recv_from(&mut buf))
        .await
        .is_err()
}

/// Binds `addr`, retrying while a stopped node's socket is still closing.
async fn bind_retry(addr: SocketAddr) -> UdpSocket {
    for _ in 0..60 {
        if let Ok(s) = UdpSocket::bind(addr).await {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot bind {addr}");
}

/// A node `a` whose seed is a test socket: returns the first datagram `a`
/// sealed for that seed, and the seed's address (free again, `a` stopped).
async fn capture_from_a_real_node(tap_ip: u8, node_ip: u8) -> (Vec<u8>, SocketAddr, SocketAddr) {
    let tap = UdpSocket::bind(addr(tap_ip)).await.unwrap();
    let tap_addr = tap.local_addr().unwrap();
    let (a, _ra) = node("a", addr(node_ip), &[tap_addr], sealed(&[KEY])).await;
    let a_addr = a.gossip_addr();
    let captured = capture(&tap, a_addr).await;
    a.shutdown().await;
    drop(tap);
    // It is a real sealed datagram: from a, for the seed's address.
    let opened = seal::open(&ring(&[KEY]), &captured).unwrap();
    assert_eq!((opened.sender, opened.recipient), (a_addr, tap_addr));
    (captured, a_addr, tap_addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_datagram_replayed_or_spoofed_gets_no_reply_and_no_link() {
    let (captured, a_addr, b_addr) = capture_from_a_real_node(100, 101).await;
    // b is the node the datagram was sealed for (it listens where the seed was).
    let (b, _rb) = node("b", b_addr, &[], sealed(&[KEY])).await;
    assert_eq!(b.gossip_addr(), b_addr);

    // Replayed from another address: refused before chitchat sees it.
    let spoofer = UdpSocket::bind(addr(102)).await.unwrap();
    for _ in 0..3 {
        spoofer.send_to(&captured, b_addr).await.unwrap();
    }
    assert!(
        eventually(Duration::from_secs(5), || b
            .metrics()
            .rejected(Reject::SpoofedSender)
            == 3)
        .await
    );
    assert!(
        silent(&spoofer, Duration::from_secs(1)).await,
        "b answered a replay from a spoofed source"
    );
    assert!(!b.has_relay_link(spoofer.local_addr().unwrap()));
    assert_eq!(b.relay_links(), 0);
    assert_eq!(b.metrics().packets_received(), 0);

    // Delivered late but once, from the address that sealed it: accepted and
    // answered (this is what the spoofed copies would have got).
    let real = bind_retry(a_addr).await;
    real.send_to(&captured, b_addr).await.unwrap();
    assert!(
        !silent(&real, Duration::from_secs(3)).await,
        "the genuine datagram got no answer"
    );
    assert_eq!(b.metrics().packets_received(), 1);

    // The same datagram again from the same address: a replay.
    let linked = b.relay_links();
    real.send_to(&captured, b_addr).await.unwrap();
    real.send_to(&captured, b_addr).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || b
            .metrics()
            .rejected(Reject::Replayed)
            == 2)
        .await,
        "replayed: {}",
        b.metrics().rejected(Reject::Replayed)
    );
    assert_eq!(b.metrics().packets_received(), 1);
    assert_eq!(b.relay_links(), linked);
    assert_eq!(b.metrics().packets_rejected(), 5);
    assert!(b.metrics().replay_cache_entries() >= 1);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_replayed_after_the_window_is_stale() {
    let (captured, a_addr, b_addr) = capture_from_a_real_node(103, 104).await;
    let sent_at = seal::open(&ring(&[KEY]), &captured).unwrap().sent_at_ms;
    let mut cfg = config("b", b_addr, &[], sealed(&[KEY]));
    cfg.limits.max_clock_skew = Duration::from_secs(1);
    let (b, _rb) = start(cfg, announcement("b")).await;
    while seal::unix_ms_now() < sent_at + 1_500 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // From the right address, for the right node, never delivered before:
    // only its age gives it away.
    let real = bind_retry(a_addr).await;
    real.send_to(&captured, b_addr).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || b
            .metrics()
            .rejected(Reject::Stale)
            == 1)
        .await
    );
    assert!(
        silent(&real, Duration::from_secs(1)).await,
        "b answered a stale datagram"
    );
    assert!(!b.has_relay_link(a_addr));
    assert_eq!(b.metrics().packets_received(), 0);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holder_must_seal_its_own_address_and_the_recipients() {
    let keys = ring(&[KEY]);
    let (captured, a_addr, _) = capture_from_a_real_node(105, 106).await;
    // A real chitchat SYN, which any key holder can open and reseal.
    let syn = seal::open(&keys, &captured).unwrap().frame;
    let (b, _rb) = node("b", addr(107), &[], sealed(&[KEY])).await;
    let b_addr = b.gossip_addr();
    let holder = UdpSocket::bind(addr(108)).await.unwrap();
    let me = holder.local_addr().unwrap();

    // Sealed with the right key, but naming another sender.
    let spoofed = seal::seal(&keys, a_addr, b_addr, &syn).unwrap();
    holder.send_to(&spoofed, b_addr).await.unwrap();
    // Sealed for another node.
    let elsewhere: SocketAddr = "127.0.0.109:7946".parse().unwrap();
    let misdirected = seal::seal(&keys, me, elsewhere, &syn).unwrap();
    holder.send_to(&misdirected, b_addr).await.unwrap();
    // The retired format v1 (key id, nonce, ciphertext): refused unopened.
    let mut v1 = vec![keys.primary_id()];
    v1.extend_from_slice(&[0x5a; 24 + 16 + 40]);
    holder.send_to(&v1, b_addr).await.unwrap();
    let v1_reason = if keys.primary_id() == seal::VERSION {
        Reject::AuthFailed
    } else {
        Reject::LegacyV1
    };
    assert!(
        eventually(Duration::from_secs(5), || {
            let m = b.metrics();
            m.rejected(Reject::SpoofedSender) == 1
                && m.rejected(Reject::Misdirected) == 1
                && m.rejected(v1_reason) == 1
        })
        .await
    );
    assert!(silent(&holder, Duration::from_secs(1)).await);
    assert!(!b.has_relay_link(me));

    // The same SYN sealed honestly by the key holder for b: a newcomer
    // proves key possession with it, gets a link and an answer.
    let honest = seal::seal(&keys, me, b_addr, &syn).unwrap();
    holder.send_to(&honest, b_addr).await.unwrap();
    assert!(!silent(&holder, Duration::from_secs(3)).await);
    assert!(b.has_relay_link(me));
    assert_eq!(b.metrics().packets_rejected(), 3);
    b.shutdown().await;
}

/// Sends garbage and replays of `captured` to `targets` from one socket
/// on each address of `from_ips`, about 10,000 datagrams a second, until
/// `stop`.
fn flood(
    from_ips: Vec<u8>,
    targets: Vec<SocketAddr>,
    captured: Vec<Vec<u8>>,
    key_id: u8,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let sockets: Vec<std::net::UdpSocket> = from_ips
            .iter()
            .map(|ip| std::net::UdpSocket::bind(addr(*ip)).unwrap())
            .collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut i: u64 = 0;
        while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            let r = next();
            let socket = &sockets[(r % sockets.len() as u64) as usize];
            let target = targets[((r >> 8) % targets.len() as u64) as usize];
            let datagram = if r.is_multiple_of(2) {
                // Garbage that passes the cheap checks (version, key id) and
                // costs an AEAD attempt unless rate limited first.
                let len = 64 + (r >> 16) as usize % 1_400;
                let mut g: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                g[0] = seal::VERSION;
                g[1] = key_id;
                g
            } else {
                captured[(r >> 24) as usize % captured.len()].clone()
            };
            let _ = socket.send_to(&datagram, target);
            sent.fetch_add(1, Ordering::Relaxed);
            i += 1;
            if i.is_multiple_of(10) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_garbage_and_replays_leave_members_gossiping() {
    let _turn = HEAVY.lock().await;
    // Datagrams for the replays, captured from a real node.
    let mut captured = Vec::new();
    for (tap, n) in [(110u8, 111u8), (112, 113)] {
        captured.push(capture_from_a_real_node(tap, n).await.0);
    }
    let (a, _ra) = node("a", addr(118), &[], sealed(&[KEY])).await;
    let seed = a.gossip_addr();
    let (b, _rb) = node("b", addr(119), &[seed], sealed(&[KEY])).await;
    let (c, _rc) = node("c", addr(120), &[seed], sealed(&[KEY])).await;
    assert!(eventually(CONVERGE, || sees(&a, &["b", "c"]) && sees(&b, &["a", "c"])).await);
    let targets = vec![a.gossip_addr(), b.gossip_addr()];
    let key_id = ring(&[KEY]).primary_id();
    let sent = Arc::new(AtomicU64::new(0));

    // 1. A flood from three addresses: members stay together, and a
    //    newcomer still joins through the flooded seed (the flood spends
    //    only its own addresses' share of the strangers' budget).
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = flood(
        vec![115, 116, 117],
        targets.clone(),
        captured.clone(),
        key_id,
        stop.clone(),
        sent.clone(),
    );
    let heard = a.metrics().packets_received();
    assert!(
        always(Duration::from_secs(2), || sees(&a, &["b", "c"])
            && sees(&b, &["a", "c"]))
        .await,
        "a={:?} b={:?}",
        names(&a),
        names(&b)
    );
    assert!(a.metrics().packets_received() > heard);
    let (d, _rd) = node("d", addr(121), &[seed], sealed(&[KEY])).await;
    assert!(
        eventually(CONVERGE, || sees(&a, &["b", "c", "d"])
            && sees(&b, &["a", "c", "d"])
            && sees(&c, &["a", "b", "d"])
            && sees(&d, &["a", "b", "c"]))
        .await,
        "a={:?} b={:?} c={:?} d={:?}",
        names(&a),
        names(&b),
        names(&c),
        names(&d)
    );
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap();

    // 2. A flood from sixteen addresses spends the whole strangers' budget:
    //    members, with budgets of their own, keep gossiping, and a node that
    //    stops is still seen leaving.
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = flood(
        (140..156).collect(),
        targets,
        captured,
        key_id,
        stop.clone(),
        sent.clone(),
    );
    let heard = a.metrics().packets_received();
    assert!(
        always(Duration::from_secs(4), || sees(&a, &["b", "c", "d"])
            && sees(&b, &["a", "c", "d"]))
        .await,
        "a={:?} b={:?}",
        names(&a),
        names(&b)
    );
    assert!(a.metrics().packets_received() > heard);
    c.shutdown().await;
    assert!(
        eventually(CONVERGE, || sees(&a, &["b", "d"]) && sees(&b, &["a", "d"])).await,
        "a={:?} b={:?}",
        names(&a),
        names(&b)
    );
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap();

    let m = a.metrics();
    eprintln!(
        "flood: {} datagrams sent to a and b; a dropped {} (rate_limited {}, auth_failed {}, \
         spoofed_sender {}, misdirected {})",
        sent.load(Ordering::Relaxed),
        m.packets_rejected(),
        m.rejected(Reject::RateLimited),
        m.rejected(Reject::AuthFailed),
        m.rejected(Reject::SpoofedSender),
        m.rejected(Reject::Misdirected)
    );
    assert!(sent.load(Ordering::Relaxed) > 10_000);
    assert!(m.rejected(Reject::RateLimited) > 1_000);
    // What got past the strangers' budget was refused by the seal checks.
    assert!(m.rejected(Reject::AuthFailed) > 0);
    assert!(m.rejected(Reject::Misdirected) + m.rejected(Reject::SpoofedSender) > 0);
    for n in [a, b, d] {
        n.shutdown().await;
    }
}

/// A fragment that opens the partial message `id` with one `part_len`-byte
/// part of a `count`-part message.
fn first_fragment(id: u32, count: u16, part_len: usize) -> Vec<u8> {
    let mut f = vec![1u8];
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&0u16.to_be_bytes());
    f.extend_from_slice(&count.to_be_bytes());
    f.extend(std::iter::repeat_n(0xAB, part_len));
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_floods_stay_within_the_reassembly_budget() {
    let _turn = HEAVY.lock().await;
    // Honest nodes whose gossip travels as fragments (512-byte datagrams,
    // announcements of a few KB).
    let big = |name: &str| {
        let mut a = announcement(name);
        a.external_labels = (0..12u64)
            .map(|i| {
                (0..8u64)
                    .map(|j| (format!("label_{j}"), format!("{name}-{i}-{j}-{:x}", i * j)))
                    .collect()
            })
            .collect();
        a
    };
    let small = |name: &str, ip: u8, seeds: &[SocketAddr]| {
        let mut cfg = config(name, addr(ip), seeds, sealed(&[KEY]));
        cfg.max_datagram = 512;
        cfg
    };
    let (a, _ra) = start(small("a", 122, &[]), big("a")).await;
    let a_addr = a.gossip_addr();
    let (b, _rb) = start(small("b", 123, &[a_addr]), big("b")).await;
    let (c, _rc) = start(small("c", 124, &[a_addr]), big("c")).await;
    assert!(eventually(CONVERGE, || sees(&a, &["b", "c"]) && sees(&c, &["a", "b"])).await);

    // Twelve key holders (two addresses, six ports each) each open 40
    // partial messages of 60 KB parts: 28 MB if nothing were bounded.
    let keys = ring(&[KEY]);
    let mut holders = Vec::new();
    for ip in [125u8, 126] {
        for _ in 0..6 {
            holders.push(UdpSocket::bind(addr(ip)).await.unwrap());
        }
    }
    let peak = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        let m = a.metrics().clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(m.reassembly_bytes(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    for id in 0..40u32 {
        for h in &holders {
            let me = h.local_addr().unwrap();
            let frame = first_fragment(id, 400, 60_000);
            let sealed = seal::seal(&keys, me, a_addr, &frame).unwrap();
            h.send_to(&sealed, a_addr).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Honest fragmented gossip still completes in the middle of it.
    let mut updated = big("b");
    updated.max_time = 123_456;
    b.set_announcement(updated.clone()).await.unwrap();
    assert!(
        eventually(CONVERGE, || a
            .peers()
            .iter()
            .any(|p| p.node_id == "b" && p.announcement == updated))
        .await
    );
    // Let the last flood datagrams drain.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let peak = peak.load(Ordering::Relaxed);
    let m = a.metrics();
    eprintln!(
        "fragment flood: peak reassembly {peak} bytes, {} partials dropped (fragment_limit), \
         {} rate limited",
        m.rejected(Reject::FragmentLimit),
        m.rejected(Reject::RateLimited)
    );
    // The default total budget is 4 MiB; each source is held to 512 KiB.
    assert!(peak > 0 && peak <= 4 << 20, "peak {peak}");
    assert!(m.rejected(Reject::FragmentLimit) >= 20);
    assert!(sees(&a, &["b", "c"]) && sees(&c, &["a", "b"]));
    assert!(a.metrics().fragmented_datagrams() > 0);
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holder_cycling_source_addresses_is_refused_new_links() {
    let keys = ring(&[KEY]);
    let (b, _rb) = node("b", addr(130), &[], sealed(&[KEY])).await;
    let b_addr = b.gossip_addr();
    // Sixty sources on six addresses, each with one valid datagram (sealed
    // by itself, for b, fresh): each would get a relay link.
    let mut sources = Vec::new();
    for ip in 131u8..137 {
        for _ in 0..10 {
            sources.push(UdpSocket::bind(addr(ip)).await.unwrap());
        }
    }
    for s in &sources {
        let me = s.local_addr().unwrap();
        let d = seal::seal(&keys, me, b_addr, b"\0not chitchat").unwrap();
        s.send_to(&d, b_addr).await.unwrap();
    }
    assert!(
        eventually(Duration::from_secs(5), || b.metrics().packets_received()
            == 60)
        .await,
        "received {}",
        b.metrics().packets_received()
    );
    let refused = b.metrics().rejected(Reject::UnknownSource);
    let links = b.relay_links() as u64;
    eprintln!("new sources: {links} linked, {refused} refused");
    assert_eq!(links + refused, 60);
    // The budget is 20 new links a second with a burst of 40.
    assert!((40..=50).contains(&links), "{links} links");
    b.shutdown().await;
}
