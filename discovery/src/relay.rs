//! The loopback relay that lets unmodified chitchat gossip over a carrier.
//!
//! chitchat serializes its envelopes itself (that code is crate-private), so
//! we cannot touch its bytes inside a `Socket`. Instead chitchat gets its own
//! public `UdpSocket` bound to `127.0.0.1:<ephemeral>`. For every remote peer
//! the relay keeps a *link*: a loopback UDP socket connected to chitchat's
//! socket. `RelaySocket` wraps chitchat's socket: on `send(peer, envelope)`
//! it lets chitchat's socket serialize the envelope toward the peer's link;
//! the link task hands those bytes to the carrier (which seals them and sends
//! them to the peer). Datagrams the carrier accepts from a peer go out of that
//! peer's link to chitchat's socket, and `recv` maps the link address back to
//! the peer's address. chitchat therefore only ever sees real peer addresses.
//!
//! chitchat answers whoever it hears from, and every answer goes out through
//! a link. So a link is what a source needs to get a reply: the relay makes
//! one for a datagram from the network only when the source is a current
//! member or a seed (the [`Roster`]), or otherwise within a small budget of
//! new links per second ([`NEW_LINK_RATE`]). The carrier hands over only
//! datagrams that passed its checks (for the sealed LAN carrier: opened,
//! fresh, unreplayed, sealed by the address they came from), so a newcomer
//! is admitted on its first such datagram, which proves it holds the key.
//! A datagram refused a link is dropped and counted (`unknown_source`).

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chitchat::ChitchatEnvelope;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport, UdpSocket};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::carrier::Carrier;
use crate::metrics::{GossipMetrics, Reject};
use crate::ratelimit::{Roster, TokenBucket};
use crate::seal::{MAX_DATAGRAM, canonical};

/// Default bound on the number of peer links (least recently used go first):
/// one per peer talked to recently, each an idle loopback socket, so 1,024
/// covers any cluster a 2-core node can gossip with.
pub const DEFAULT_MAX_LINKS: usize = 1024;
/// New links per second for sources that are neither members, seeds nor
/// linked already (bucket of two seconds' worth). Newcomers are rare (a node
/// joining, or restarting as a new generation): 20 per second admits a
/// 100-node cluster restarting at once within 5 s, while a key holder
/// cycling source addresses cannot churn the link table faster than that.
pub const NEW_LINK_RATE: f64 = 20.0;

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
const ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Errors of the relay.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the relay is shut down")]
    Closed,
    #[error("chitchat has not opened its socket on the relay yet")]
    NotOpen,
    #[error("the relay can serve one chitchat socket only")]
    AlreadyOpen,
    #[error("cannot create a loopback link socket: {0}")]
    Link(#[from] io::Error),
}

struct Link {
    loopback: SocketAddr,
    socket: Arc<tokio::net::UdpSocket>,
    task: JoinHandle<()>,
    last_used: u64,
}

#[derive(Default)]
struct State {
    chitchat_addr: Option<SocketAddr>,
    links: HashMap<SocketAddr, Link>,
    by_loopback: HashMap<SocketAddr, SocketAddr>,
    pump: Option<JoinHandle<()>>,
    clock: u64,
    closed: bool,
}

struct Shared {
    carrier: Arc<dyn Carrier>,
    max_links: usize,
    roster: Arc<Roster>,
    new_links: Mutex<TokenBucket>,
    metrics: GossipMetrics,
    state: Mutex<State>,
}

/// Owner of the relay: implements chitchat's `Transport` and stops every
/// relay task on [`Relay::shutdown`] or drop.
pub struct Relay {
    shared: Arc<Shared>,
}

impl Relay {
    /// A relay in front of `carrier`, with at most `max_links` peer links;
    /// sources on `roster` get a link without spending the new-link budget.
    pub fn new(
        carrier: Arc<dyn Carrier>,
        max_links: usize,
        roster: Arc<Roster>,
        metrics: GossipMetrics,
    ) -> Relay {
        Relay {
            shared: Arc::new(Shared {
                carrier,
                max_links: max_links.max(1),
                roster,
                new_links: Mutex::new(TokenBucket::new(
                    NEW_LINK_RATE,
                    2.0 * NEW_LINK_RATE,
                    Instant::now(),
                )),
                metrics,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Number of peer links currently open.
    pub fn num_links(&self) -> usize {
        self.shared.lock().links.len()
    }

    /// True when a link to `peer` is open.
    pub fn has_link(&self, peer: SocketAddr) -> bool {
        self.shared.lock().links.contains_key(&canonical(peer))
    }

    /// Stops the pump and every link, and waits for their tasks to end.
    pub async fn shutdown(&self) {
        let tasks = self.shared.close();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for task in self.shared.close() {
            task.abort();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self) -> Vec<JoinHandle<()>> {
        let mut state = self.lock();
        state.closed = true;
        state.by_loopback.clear();
        let mut tasks: Vec<JoinHandle<()>> = state.links.drain().map(|(_, l)| l.task).collect();
        tasks.extend(state.pump.take());
        tasks
    }

    /// The link toward `peer`, created on first use. An `inbound` datagram
    /// from a source without a link gets one only when the source is on the
    /// roster or the new-link budget allows (`Ok(None)` otherwise); chitchat's
    /// own sends always get one (chitchat sends only to members, seeds and
    /// sources it heard through a link).
    fn link(
        self: &Arc<Self>,
        peer: SocketAddr,
        inbound: bool,
    ) -> Result<Option<(SocketAddr, Arc<tokio::net::UdpSocket>)>, RelayError> {
        let peer = canonical(peer);
        let mut state = self.lock();
        if state.closed {
            return Err(RelayError::Closed);
        }
        state.clock += 1;
        let now = state.clock;
        if let Some(link) = state.links.get_mut(&peer) {
            link.last_used = now;
            return Ok(Some((link.loopback, link.socket.clone())));
        }
        let chitchat_addr = state.chitchat_addr.ok_or(RelayError::NotOpen)?;
        if inbound && !self.roster.contains(peer) {
            let admitted = self
                .new_links
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_take(Instant::now());
            if !admitted {
                return Ok(None);
            }
        }
        if state.links.len() >= self.max_links {
            evict_oldest(&mut state);
        }
        let std_socket = std::net::UdpSocket::bind((LOOPBACK, 0))?;
        std_socket.connect(chitchat_addr)?;
        std_socket.set_nonblocking(true)?;
        let socket = Arc::new(tokio::net::UdpSocket::from_std(std_socket)?);
        let loopback = socket.local_addr()?;
        let task = tokio::spawn(outbound(socket.clone(), self.carrier.clone(), peer));
        state.by_loopback.insert(loopback, peer);
        state.links.insert(
            peer,
            Link {
                loopback,
                socket: socket.clone(),
                task,
                last_used: now,
            },
        );
        self.metrics.set_relay_links(state.links.len());
        debug!(peer = %peer, loopback = %loopback, "opened gossip relay link");
        Ok(Some((loopback, socket)))
    }

    fn peer_of(&self, loopback: SocketAddr) -> Option<SocketAddr> {
        self.lock().by_loopback.get(&loopback).copied()
    }
}

fn evict_oldest(state: &mut State) {
    let oldest = state
        .links
        .iter()
        .min_by_key(|(_, l)| l.last_used)
        .map(|(peer, _)| *peer);
    if let Some(peer) = oldest
        && let Some(link) = state.links.remove(&peer)
    {
        state.by_loopback.remove(&link.loopback);
        link.task.abort();
        debug!(peer = %peer, "evicted least recently used gossip relay link");
    }
}

/// Forwards what chitchat sends to one peer's link out through the carrier.
/// The buffer is allocated only while a datagram is waiting, so idle links
/// cost no memory beyond their socket.
async fn outbound(socket: Arc<tokio::net::UdpSocket>, carrier: Arc<dyn Carrier>, peer: SocketAddr) {
    loop {
        if let Err(e) = socket.readable().await {
            warn!(peer = %peer, error = %e, "gossip relay link failed");
            tokio::time::sleep(ERROR_BACKOFF).await;
            continue;
        }
        let mut buf = Vec::with_capacity(MAX_DATAGRAM);
        match socket.try_recv_buf(&mut buf) {
            Ok(_) => {
                if let Err(e) = carrier.send(peer, &buf).await {
                    debug!(peer = %peer, error = %e, "failed to send gossip datagram");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                debug!(peer = %peer, error = %e, "gossip relay link recv error");
            }
        }
    }
}

/// Feeds what the carrier accepts to chitchat, through the sender's link.
async fn inbound(shared: Arc<Shared>) {
    loop {
        let (peer, datagram) = match shared.carrier.recv().await {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "gossip carrier recv failed");
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
        match shared.link(peer, true) {
            Ok(Some((_, socket))) => {
                if let Err(e) = socket.send(&datagram).await {
                    debug!(peer = %peer, error = %e, "cannot hand gossip datagram to chitchat");
                }
            }
            Ok(None) => shared.metrics.reject(
                Reject::UnknownSource,
                peer,
                &format_args!(
                    "no relay link (hence no reply) for a source that is neither a member nor                      a seed: the budget of {NEW_LINK_RATE} new links per second is spent"
                ),
            ),
            Err(RelayError::Closed) => return,
            Err(e) => warn!(peer = %peer, error = %e, "dropping gossip datagram"),
        }
    }
}

#[async_trait]
impl Transport for Relay {
    /// Opens chitchat's socket on loopback (the requested address is ignored:
    /// the carrier owns the network address) and starts the inbound pump.
    async fn open(&self, _listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        {
            let state = self.shared.lock();
            if state.closed {
                return Err(RelayError::Closed.into());
            }
            if state.chitchat_addr.is_some() {
                return Err(RelayError::AlreadyOpen.into());
            }
        }
        let inner = UdpSocket::open((LOOPBACK, 0).into()).await?;
        let addr = inner.local_addr()?;
        let mut state = self.shared.lock();
        if state.chitchat_addr.is_some() {
            return Err(RelayError::AlreadyOpen.into());
        }
        state.chitchat_addr = Some(addr);
        state.pump = Some(tokio::spawn(inbound(self.shared.clone())));
        Ok(Box::new(RelaySocket {
            inner,
            shared: self.shared.clone(),
        }))
    }
}

/// chitchat's socket, with destinations redirected to peer links and sources
/// mapped back to peer addresses.
struct RelaySocket {
    inner: UdpSocket,
    shared: Arc<Shared>,
}

#[async_trait]
impl Socket for RelaySocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.inner.local_addr()
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        let (loopback, _) = self.shared.link(to, false)?.ok_or(RelayError::NotOpen)?;
        self.inner.send(loopback, envelope).await
    }

    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        loop {
            let mut outcome = self.inner.recv().await?;
            match self.shared.peer_of(outcome.from_addr) {
                Some(peer) => {
                    outcome.from_addr = peer;
                    return Ok(outcome);
                }
                None => {
                    debug!(from = %outcome.from_addr, "dropped local datagram not from a relay link")
                }
            }
        }
    }
}
