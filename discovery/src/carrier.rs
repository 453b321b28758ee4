//! Carriers move chitchat datagrams between this node and its peers. The relay
//! ([`crate::relay`]) hands every datagram chitchat sends to a carrier and
//! feeds what the carrier receives back to chitchat. The LAN carrier is sealed
//! UDP; a WAN carrier (gossip on the gRPC port) implements the same trait.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use tokio::net::UdpSocket;
use tokio::sync::Mutex;
use tracing::debug;

use crate::frame::{self, Reassembler};
use crate::keyring::{Keyring, KeyringError};
use crate::metrics::GossipMetrics;
use crate::seal::{self, MAX_DATAGRAM, SEAL_OVERHEAD};

/// Smallest sealed datagram size a carrier accepts as its limit.
pub const MIN_DATAGRAM: usize = 128;

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

/// The LAN carrier: one UDP socket, every datagram sealed under a keyring.
/// A chitchat datagram that does not fit one sealed datagram of
/// `max_datagram` bytes is sent as fragments (see [`crate::frame`]).
/// Plaintext mode sends chitchat's datagrams as they are.
pub struct UdpCarrier {
    socket: UdpSocket,
    keyring: RwLock<Option<Arc<Keyring>>>,
    max_datagram: usize,
    next_message_id: AtomicU32,
    recv: Mutex<RecvState>,
    metrics: GossipMetrics,
}

struct RecvState {
    buf: Vec<u8>,
    reassembler: Reassembler,
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
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| CarrierError::Bind { addr, source })?;
        let keyring = match security {
            GossipSecurity::Sealed(k) => Some(Arc::new(k)),
            GossipSecurity::InsecurePlaintext => None,
        };
        Ok(UdpCarrier {
            socket,
            keyring: RwLock::new(keyring),
            max_datagram: max_datagram.clamp(MIN_DATAGRAM, MAX_DATAGRAM),
            next_message_id: AtomicU32::new(rand::random()),
            recv: Mutex::new(RecvState {
                // One byte more than the largest datagram: a truncated one fails to open.
                buf: vec![0u8; MAX_DATAGRAM + 1],
                reassembler: Reassembler::default(),
            }),
            metrics,
        })
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
        let id = self.next_message_id.fetch_add(1, Ordering::Relaxed);
        let frames = frame::encode(datagram, self.max_datagram - SEAL_OVERHEAD, id)
            .inspect_err(|_| self.metrics.send_error())?;
        if frames.len() > 1 {
            self.metrics.fragmented();
        }
        for frame in frames {
            let sealed = seal::seal(&keyring, &frame).inspect_err(|_| self.metrics.send_error())?;
            self.send_wire(to, &sealed).await?;
        }
        Ok(())
    }

    async fn recv(&self) -> Result<(SocketAddr, Vec<u8>), CarrierError> {
        let mut guard = self.recv.lock().await;
        let RecvState { buf, reassembler } = &mut *guard;
        loop {
            let (n, from) = match self.socket.recv_from(&mut buf[..]).await {
                Ok(r) => r,
                Err(e) if is_transient(&e) => {
                    self.metrics.recv_error();
                    debug!(error = %e, "transient gossip recv error");
                    continue;
                }
                Err(e) => {
                    self.metrics.recv_error();
                    return Err(e.into());
                }
            };
            let Some(datagram) = buf.get(..n) else {
                continue;
            };
            match self.keyring() {
                None => {
                    self.metrics.opened();
                    return Ok((from, datagram.to_vec()));
                }
                Some(keyring) => match seal::open(&keyring, datagram) {
                    Ok(plain) => {
                        self.metrics.opened();
                        match reassembler.push(from, &plain) {
                            Ok(Some(whole)) => return Ok((from, whole)),
                            Ok(None) => {}
                            Err(e) => {
                                self.metrics.bad_frame();
                                debug!(from = %from, error = %e, "dropped malformed gossip frame");
                            }
                        }
                    }
                    Err(e) => {
                        self.metrics.rejected(e);
                        debug!(from = %from, len = n, reason = e.reason(), "dropped gossip datagram that failed to open");
                    }
                },
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
