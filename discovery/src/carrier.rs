//! Carriers move chitchat datagrams between this node and its peers. The relay
//! ([`crate::relay`]) hands every datagram chitchat sends to a carrier and
//! feeds what the carrier receives back to chitchat. The LAN carrier is sealed
//! UDP; a WAN carrier (gossip on the gRPC port) implements the same trait.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::net::UdpSocket;
use tokio::sync::Mutex;

use crate::frame::{self, Reassembler, ReassemblyLimits};
use crate::keyring::{Keyring, KeyringError};
use crate::metrics::{GossipMetrics, Reject};
use crate::ratelimit::{Limited, Roster, SourceLimiter};
use crate::replay::ReplayGuard;
use crate::seal::{self, MAX_DATAGRAM, MAX_OVERHEAD, canonical};

/// Smallest sealed datagram size a carrier accepts as its limit.
pub const MIN_DATAGRAM: usize = frame::MIN_DATAGRAM;

/// Errors of a carrier.
#[derive(Debug, thiserror::Error)]
pub enum CarrierError {
    #[error("cannot bind gossip socket {addr}/UDP: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("gossip socket error: {0}")]
    Io(#[from] io::Error),
    #[error("cannot seal gossip datagram: {0}")]
    Seal(#[from] seal::SealError),
    #[error("this carrier runs in insecure plaintext mode and has no keyring")]
    Plaintext,
    #[error("cannot frame gossip datagram: {0}")]
    Frame(#[from] frame::FrameError),
    #[error("the gossip carrier does not know its advertised address yet")]
    NoIdentity,
}

/// Moves opaque chitchat datagrams to and from peers, identified by their
/// gossip address.
#[async_trait]
pub trait Carrier: Send + Sync + 'static {
    /// Sends one datagram to the peer at `to`.
    async fn send(&self, to: SocketAddr, datagram: &[u8]) -> Result<(), CarrierError>;
    /// Waits for the next datagram that passed the carrier's checks. Errors are
    /// socket failures; rejected packets are dropped (and counted) inside.
    async fn recv(&self) -> Result<(SocketAddr, Vec<u8>), CarrierError>;
    /// The address the carrier listens on.
    fn local_addr(&self) -> Result<SocketAddr, CarrierError>;
}

/// How LAN datagrams are protected.
#[derive(Clone, Debug)]
pub enum GossipSecurity {
    /// Every datagram sealed with the keyring's primary key.
    Sealed(Keyring),
    /// No protection at all: for local development only.
    InsecurePlaintext,
}

impl GossipSecurity {
    /// Picks the protection from operator settings: a keyring file, or the
    /// name of an environment variable holding the keys, or an explicit
    /// insecure opt-in. Exactly one must be given.
    pub fn load(
        keyring_file: Option<&std::path::Path>,
        keyring_env: Option<&str>,
        insecure_plaintext: bool,
    ) -> Result<GossipSecurity, KeyringError> {
        match (keyring_file, keyring_env, insecure_plaintext) {
            (None, None, true) => Ok(GossipSecurity::InsecurePlaintext),
            (Some(path), None, false) => Ok(GossipSecurity::Sealed(Keyring::from_file(path)?)),
            (None, Some(var), false) => Ok(GossipSecurity::Sealed(Keyring::from_env(var)?)),
            (None, None, false) => Err(KeyringError::NotConfigured),
            _ => Err(KeyringError::Conflicting),
        }
    }

    /// True for the insecure plaintext mode.
    pub fn is_plaintext(&self) -> bool {
        matches!(self, GossipSecurity::InsecurePlaintext)
    }
}

/// Limits on what the LAN carrier accepts. Defaults fit a 2-core node; see
/// the node's `--gossip.*` flags for the reasons.
#[derive(Clone, Debug, PartialEq)]
pub struct GossipLimits {
    /// A datagram whose sealed send time is further than this from the
    /// local clock (either way) is stale.
    pub max_clock_skew: Duration,
    /// Nonces remembered to refuse replays (each for up to twice the skew).
    pub replay_cache_entries: usize,
    /// Datagrams per second from one member, seed or vouched source
    /// (buckets hold two seconds' worth).
    pub source_rate: u32,
    /// Datagrams per second shared by every other source.
    pub stranger_rate: u32,
    /// Bytes of partial fragmented messages held.
    pub reassembly: ReassemblyLimits,
}

impl Default for GossipLimits {
    fn default() -> GossipLimits {
        GossipLimits {
            max_clock_skew: Duration::from_secs(30),
            replay_cache_entries: 131_072,
            source_rate: 500,
            stranger_rate: 200,
            reassembly: ReassemblyLimits::default(),
        }
    }
}

/// The LAN carrier: one UDP socket, every datagram sealed under a keyring.
/// A chitchat datagram that does not fit one sealed datagram of
/// `max_datagram` bytes is sent as fragments (see [`crate::frame`]).
/// Plaintext mode sends chitchat's datagrams as they are.
///
/// A received sealed datagram is handed on only when, in this order: its
/// size, version and key id are plausible (no cryptography yet); its source
/// is within its rate budget; it opens under the keyring; its sealed send
/// time is fresh; it was sealed for this node's gossip address, by the
/// address it came from; and its nonce was not seen within the window.
pub struct UdpCarrier {
    socket: UdpSocket,
    keyring: RwLock<Option<Arc<Keyring>>>,
    max_datagram: usize,
    next_message_id: AtomicU32,
    identity: OnceLock<SocketAddr>,
    bound: SocketAddr,
    roster: Arc<Roster>,
    recv: Mutex<RecvState>,
    metrics: GossipMetrics,
}

struct RecvState {
    buf: Vec<u8>,
    reassembler: Reassembler,
    replay: ReplayGuard,
    limiter: SourceLimiter,
}

impl UdpCarrier {
    /// Binds the network socket. `max_datagram` (clamped to
    /// [`MIN_DATAGRAM`]..=65,507) bounds every sealed datagram sent.
    pub async fn bind(
        addr: SocketAddr,
        security: GossipSecurity,
        max_datagram: usize,
        metrics: GossipMetrics,
    ) -> Result<UdpCarrier, CarrierError> {
        UdpCarrier::bind_with(
            addr,
            security,
            max_datagram,
            GossipLimits::default(),
            Arc::new(Roster::default()),
            metrics,
        )
        .await
    }

    /// Like [`UdpCarrier::bind`] with explicit limits and the roster of
    /// members and seeds (shared with the relay).
    pub async fn bind_with(
        addr: SocketAddr,
        security: GossipSecurity,
        max_datagram: usize,
        limits: GossipLimits,
        roster: Arc<Roster>,
        metrics: GossipMetrics,
    ) -> Result<UdpCarrier, CarrierError> {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| CarrierError::Bind { addr, source })?;
        let bound = canonical(socket.local_addr()?);
        let keyring = match security {
            GossipSecurity::Sealed(k) => Some(Arc::new(k)),
            GossipSecurity::InsecurePlaintext => None,
        };
        let now = Instant::now();
        Ok(UdpCarrier {
            socket,
            keyring: RwLock::new(keyring),
            max_datagram: max_datagram.clamp(MIN_DATAGRAM, MAX_DATAGRAM),
            next_message_id: AtomicU32::new(rand::random()),
            identity: OnceLock::new(),
            bound,
            roster,
            recv: Mutex::new(RecvState {
                // One byte more than the largest datagram: a truncated one is refused.
                buf: vec![0u8; MAX_DATAGRAM + 1],
                reassembler: Reassembler::new(limits.reassembly),
                replay: ReplayGuard::new(limits.max_clock_skew, limits.replay_cache_entries),
                limiter: SourceLimiter::new(limits.source_rate, limits.stranger_rate, now),
            }),
            metrics,
        })
    }

    /// Sets the gossip address this node advertises: sealed into every
    /// datagram as the sender, and the recipient a datagram must be sealed
    /// for. Set once, before gossip starts; later calls are ignored.
    pub fn set_identity(&self, advertised: SocketAddr) {
        let _ = self.identity.set(canonical(advertised));
    }

    /// The advertised gossip address, once set.
    pub fn identity(&self) -> Option<SocketAddr> {
        self.identity.get().copied()
    }

    /// Replaces the keyring (rotation). Refused in plaintext mode.
    pub fn set_keyring(&self, keyring: Keyring) -> Result<(), CarrierError> {
        let mut guard = self
            .keyring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match guard.as_mut() {
            Some(current) => {
                *current = Arc::new(keyring);
                Ok(())
            }
            None => Err(CarrierError::Plaintext),
        }
    }

    /// The current keyring (`None` in plaintext mode).
    pub fn keyring(&self) -> Option<Arc<Keyring>> {
        self.keyring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// True when `recipient` names this node: its advertised address, or
    /// its bound address when that is not a wildcard.
    fn is_for_me(&self, recipient: SocketAddr) -> bool {
        let recipient = canonical(recipient);
        self.identity() == Some(recipient)
            || (!self.bound.ip().is_unspecified() && self.bound == recipient)
    }

    /// Runs every check on one received sealed datagram; returns the frame
    /// inside when it passes, counts and logs the drop otherwise.
    fn accept_sealed(
        &self,
        state: &mut RecvState,
        keyring: &Keyring,
        from: SocketAddr,
        n: usize,
    ) -> Option<Vec<u8>> {
        let RecvState {
            buf,
            replay,
            limiter,
            ..
        } = state;
        let datagram = buf.get(..n)?;
        let m = &self.metrics;
        if let Err(e) = seal::inspect(keyring, datagram) {
            m.reject(e.into(), from, &format_args!("{e} ({n} bytes)"));
            return None;
        }
        let now = Instant::now();
        let known = self.roster.contains(from);
        if let Err(which) = limiter.admit(from, known, now) {
            let detail = match which {
                Limited::Source => "over this source's datagram rate (--gossip.source-rate)",
                Limited::Strangers => {
                    "over the datagram rate shared by sources that are not members or seeds \
                     (--gossip.stranger-rate)"
                }
            };
            m.reject(Reject::RateLimited, from, &detail);
            return None;
        }
        let opened = match seal::open(keyring, datagram) {
            Ok(o) => o,
            Err(e) => {
                m.reject(e.into(), from, &e);
                return None;
            }
        };
        let now_ms = seal::unix_ms_now();
        if let Err(e) = replay.check_fresh(opened.sent_at_ms, now_ms) {
            m.reject(
                e.into(),
                from,
                &format_args!(
                    "{e}: a replay, or clocks apart by more than --gossip.max-clock-skew"
                ),
            );
            return None;
        }
        if !self.is_for_me(opened.recipient) {
            m.reject(
                Reject::Misdirected,
                from,
                &format_args!(
                    "sealed for {}, this node is {} (a replay, or a seed address that is not \
                     the node's --gossip.advertise-address)",
                    opened.recipient,
                    self.identity().unwrap_or(self.bound)
                ),
            );
            return None;
        }
        if canonical(opened.sender) != canonical(from) {
            m.reject(
                Reject::SpoofedSender,
                from,
                &format_args!(
                    "sealed by {} but sent from {from} (a replay from another address, or a \
                     peer whose datagrams do not leave from its --gossip.advertise-address)",
                    opened.sender
                ),
            );
            return None;
        }
        let accepted = replay.accept(&opened.nonce, opened.sent_at_ms, now_ms);
        m.set_replay_cache_entries(replay.cached());
        if let Err(e) = accepted {
            m.reject(e.into(), from, &e);
            return None;
        }
        limiter.vouch(from, now);
        Some(opened.frame)
    }
}

fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::OutOfMemory
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || err.raw_os_error() == Some(105) // ENOBUFS on Linux
}

#[async_trait]
impl Carrier for UdpCarrier {
    async fn send(&self, to: SocketAddr, datagram: &[u8]) -> Result<(), CarrierError> {
        let Some(keyring) = self.keyring() else {
            return self.send_wire(to, datagram).await;
        };
        let Some(me) = self.identity() else {
            self.metrics.send_error();
            return Err(CarrierError::NoIdentity);
        };
        let id = self.next_message_id.fetch_add(1, Ordering::Relaxed);
        let frames = frame::encode(datagram, self.max_datagram - MAX_OVERHEAD, id)
            .inspect_err(|_| self.metrics.send_error())?;
        if frames.len() > 1 {
            self.metrics.fragmented();
        }
        for frame in frames {
            let sealed =
                seal::seal(&keyring, me, to, &frame).inspect_err(|_| self.metrics.send_error())?;
            self.send_wire(to, &sealed).await?;
        }
        Ok(())
    }

    async fn recv(&self) -> Result<(SocketAddr, Vec<u8>), CarrierError> {
        let mut guard = self.recv.lock().await;
        loop {
            let (n, from) = match self.socket.recv_from(&mut guard.buf[..]).await {
                Ok(r) => r,
                Err(e) if is_transient(&e) => {
                    self.metrics.recv_error();
                    tracing::debug!(error = %e, "transient gossip recv error");
                    continue;
                }
                Err(e) => {
                    self.metrics.recv_error();
                    return Err(e.into());
                }
            };
            let from = canonical(from);
            let Some(keyring) = self.keyring() else {
                let Some(datagram) = guard.buf.get(..n) else {
                    continue;
                };
                self.metrics.opened();
                return Ok((from, datagram.to_vec()));
            };
            let Some(frame) = self.accept_sealed(&mut guard, &keyring, from, n) else {
                continue;
            };
            self.metrics.opened();
            let pushed = guard.reassembler.push(from, &frame);
            for _ in 0..guard.reassembler.take_evicted() {
                self.metrics.reject(
                    Reject::FragmentLimit,
                    from,
                    &"dropped a partial fragmented message to stay within the reassembly \
                      budgets (--gossip.reassembly-bytes, --gossip.reassembly-bytes-per-source)",
                );
            }
            self.metrics
                .set_reassembly_bytes(guard.reassembler.buffered_bytes());
            match pushed {
                Ok(Some(whole)) => return Ok((from, whole)),
                Ok(None) => {}
                Err(e) => self.metrics.reject(e.into(), from, &e),
            }
        }
    }

    fn local_addr(&self) -> Result<SocketAddr, CarrierError> {
        Ok(self.socket.local_addr()?)
    }
}

impl UdpCarrier {
    async fn send_wire(&self, to: SocketAddr, wire: &[u8]) -> Result<(), CarrierError> {
        match self.socket.send_to(wire, to).await {
            Ok(_) => {
                self.metrics.sealed();
                Ok(())
            }
            Err(e) => {
                self.metrics.send_error();
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_needs_exactly_one_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, Keyring::generate_key()).unwrap();
        assert!(matches!(
            GossipSecurity::load(Some(&path), None, false),
            Ok(GossipSecurity::Sealed(_))
        ));
        assert!(
            GossipSecurity::load(None, None, true)
                .unwrap()
                .is_plaintext()
        );
        assert!(matches!(
            GossipSecurity::load(None, None, false),
            Err(KeyringError::NotConfigured)
        ));
        assert!(matches!(
            GossipSecurity::load(Some(&path), None, true),
            Err(KeyringError::Conflicting)
        ));
        assert!(matches!(
            GossipSecurity::load(Some(&path), Some("X"), false),
            Err(KeyringError::Conflicting)
        ));
        assert!(matches!(
            GossipSecurity::load(None, Some("SKEIN_TEST_SURELY_UNSET_KEYRING"), false),
            Err(KeyringError::Env(_))
        ));
    }
}
