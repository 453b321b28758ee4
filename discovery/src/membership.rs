//! `Membership`: one chitchat pool behind the sealed relay, the node's own
//! announcement, and a watch channel of ready peers.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chitchat::transport::Transport;
use chitchat::{
    ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig, ProtocolVersion,
    spawn_chitchat,
};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::announcement::{self, Announcement, AnnouncementError, KEY_READY};
use crate::carrier::{
    Carrier, CarrierError, GossipLimits, GossipSecurity, MIN_DATAGRAM, UdpCarrier,
};
use crate::keyring::Keyring;
use crate::metrics::GossipMetrics;
use crate::ratelimit::Roster;
use crate::relay::{DEFAULT_MAX_LINKS, Relay};
use crate::reload;
use crate::view::{Peer, ViewBuilder};

/// Failure detector settings (chitchat's phi-accrual detector).
#[derive(Clone, Debug)]
pub struct FailureDetection {
    /// Phi above which a peer counts as dead.
    pub phi_threshold: f64,
    /// Heartbeat interval assumed before any heartbeat was seen.
    pub initial_interval: Duration,
    /// Heartbeat gaps longer than this are not sampled.
    pub max_interval: Duration,
    /// How long a dead peer's state is kept before it is forgotten.
    pub dead_node_grace_period: Duration,
}

impl Default for FailureDetection {
    fn default() -> FailureDetection {
        FailureDetection {
            phi_threshold: 8.0,
            initial_interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(10),
            dead_node_grace_period: Duration::from_secs(15 * 60),
        }
    }
}

/// Settings of one membership pool.
#[derive(Clone, Debug)]
pub struct MembershipConfig {
    /// Unique, stable id of this node.
    pub node_id: String,
    pub federation: String,
    pub cluster: String,
    /// UDP address to bind (port 0 picks a free port).
    pub listen_addr: SocketAddr,
    /// Address peers reach this node at. Required when `listen_addr` is a
    /// wildcard; defaults to the bound listen address otherwise.
    pub advertise_addr: Option<SocketAddr>,
    /// Seed peers, `ip:port` or `host:port` (re-resolved every 60 s).
    pub seeds: Vec<String>,
    pub gossip_interval: Duration,
    pub failure_detection: FailureDetection,
    /// Sealed (keyring) or explicitly insecure plaintext.
    pub security: GossipSecurity,
    /// Bound on relay links (one per peer talked to recently).
    pub max_links: usize,
    /// Largest sealed datagram sent; bigger chitchat datagrams go as
    /// fragments. 65,507 (the UDP limit) by default; lower it (e.g. 1,400)
    /// on networks that drop IP fragments.
    pub max_datagram: usize,
    /// LAN (one pool per cluster) or WAN (one pool per federation).
    pub scope: PoolScope,
    /// What the LAN carrier accepts: freshness window, replay cache, rate
    /// and reassembly budgets (unused by other carriers).
    pub limits: GossipLimits,
}

/// Which pool a membership is: it names the chitchat cluster id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PoolScope {
    /// The nodes of one cluster: pool id `federation/cluster`.
    #[default]
    Lan,
    /// The WAN members of every cluster of a federation: pool id `federation`.
    Wan,
}

impl MembershipConfig {
    /// A config with default timings (gossip every second) and no seeds.
    pub fn new(
        node_id: impl Into<String>,
        federation: impl Into<String>,
        cluster: impl Into<String>,
        listen_addr: SocketAddr,
        security: GossipSecurity,
    ) -> MembershipConfig {
        MembershipConfig {
            node_id: node_id.into(),
            federation: federation.into(),
            cluster: cluster.into(),
            listen_addr,
            advertise_addr: None,
            seeds: Vec::new(),
            gossip_interval: Duration::from_secs(1),
            failure_detection: FailureDetection::default(),
            security,
            max_links: DEFAULT_MAX_LINKS,
            max_datagram: crate::seal::MAX_DATAGRAM,
            scope: PoolScope::Lan,
            limits: GossipLimits::default(),
        }
    }

    /// The chitchat cluster id of this pool: `federation/cluster` for a LAN
    /// pool, `federation` for the WAN pool.
    pub fn pool_id(&self) -> String {
        match self.scope {
            PoolScope::Lan => format!("{}/{}", self.federation, self.cluster),
            PoolScope::Wan => self.federation.clone(),
        }
    }
}

/// Errors of the membership layer.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("invalid membership config: {0}")]
    Config(String),
    #[error(transparent)]
    Carrier(#[from] CarrierError),
    #[error(transparent)]
    Announcement(#[from] AnnouncementError),
    #[error("gossip failed to start: {0}")]
    Chitchat(String),
}

/// A running membership pool. Drop or [`Membership::shutdown`] stops it.
pub struct Membership {
    handle: Option<ChitchatHandle>,
    relay: Option<Relay>,
    seeds_task: Option<JoinHandle<()>>,
    carrier: Option<Arc<UdpCarrier>>,
    self_id: ChitchatId,
    pool_id: String,
    peers_rx: watch::Receiver<Arc<Vec<Peer>>>,
    view_task: JoinHandle<()>,
    reloader: std::sync::Mutex<Option<JoinHandle<()>>>,
    gossip_interval: Duration,
    metrics: GossipMetrics,
}

impl Membership {
    /// Binds the gossip socket, starts chitchat behind the relay and the view
    /// task. The node starts not ready; call [`Membership::set_ready`].
    pub async fn start(
        cfg: MembershipConfig,
        announcement: Announcement,
        registry: &mut Registry,
    ) -> Result<Membership, MembershipError> {
        check_config(&cfg, &announcement)?;
        let metrics = GossipMetrics::register(registry);
        let roster = Arc::new(Roster::default());
        let carrier = Arc::new(
            UdpCarrier::bind_with(
                cfg.listen_addr,
                cfg.security.clone(),
                cfg.max_datagram,
                cfg.limits.clone(),
                roster.clone(),
                metrics.clone(),
            )
            .await?,
        );
        let (advertise, _) = advertise_addr(&cfg, carrier.local_addr()?)?;
        carrier.set_identity(advertise);
        let protection = match &cfg.security {
            GossipSecurity::Sealed(k) => format!(
                "UDP sealed with XChaCha20-Poly1305, primary key id {:02x}, {} key(s)",
                k.primary_id(),
                k.len()
            ),
            GossipSecurity::InsecurePlaintext => "INSECURE PLAINTEXT UDP".to_string(),
        };
        let mut m = Membership::start_relayed(
            cfg,
            announcement,
            carrier.clone(),
            &protection,
            metrics,
            roster,
        )
        .await?;
        m.carrier = Some(carrier);
        Ok(m)
    }

    /// Starts a pool over any [`Carrier`] (for example a WAN carrier on the
    /// gRPC port). `protection` says in the start-up log line how the carrier
    /// protects gossip; `metrics` are the pool's metrics (the carrier usually
    /// shares them). `cfg.security` and `cfg.max_datagram` are the carrier's
    /// business and are not used here.
    pub async fn start_with_carrier(
        cfg: MembershipConfig,
        announcement: Announcement,
        carrier: Arc<dyn Carrier>,
        protection: &str,
        metrics: GossipMetrics,
    ) -> Result<Membership, MembershipError> {
        let roster = Arc::new(Roster::default());
        Membership::start_relayed(cfg, announcement, carrier, protection, metrics, roster).await
    }

    async fn start_relayed(
        cfg: MembershipConfig,
        announcement: Announcement,
        carrier: Arc<dyn Carrier>,
        protection: &str,
        metrics: GossipMetrics,
        roster: Arc<Roster>,
    ) -> Result<Membership, MembershipError> {
        check_config(&cfg, &announcement)?;
        let bound = carrier.local_addr()?;
        let (advertise, why) = advertise_addr(&cfg, bound)?;
        info!(
            pool = %cfg.pool_id(), node = %cfg.node_id, listen = %bound, advertise = %advertise,
            "gossip announces {advertise} ({why}); {protection}"
        );
        let relay = Relay::new(carrier, cfg.max_links, roster.clone(), metrics.clone());
        let chitchat_listen: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let seeds = cfg.seeds.clone();
        let mut m = Membership::start_on(
            cfg,
            advertise,
            chitchat_listen,
            announcement,
            &relay,
            metrics,
            Some(roster.clone()),
        )
        .await?;
        m.relay = Some(relay);
        m.seeds_task = Some(tokio::spawn(resolve_seeds(seeds, roster)));
        Ok(m)
    }

    /// Starts on any chitchat transport (the relay in production, chitchat's
    /// in-memory `ChannelTransport` in unit tests).
    pub(crate) async fn start_on(
        cfg: MembershipConfig,
        advertise: SocketAddr,
        chitchat_listen: SocketAddr,
        announcement: Announcement,
        transport: &dyn Transport,
        metrics: GossipMetrics,
        roster: Option<Arc<Roster>>,
    ) -> Result<Membership, MembershipError> {
        let mut kvs = announcement.to_key_values()?;
        kvs.push((
            KEY_READY.to_string(),
            announcement::ready_value(false).to_string(),
        ));
        let self_id = ChitchatId::new(cfg.node_id.clone(), generation_now(), advertise);
        let fd = &cfg.failure_detection;
        let config = ChitchatConfig {
            chitchat_id: self_id.clone(),
            cluster_id: cfg.pool_id(),
            gossip_interval: cfg.gossip_interval,
            listen_addr: chitchat_listen,
            seed_nodes: cfg.seeds.clone(),
            failure_detector_config: FailureDetectorConfig::new(
                fd.phi_threshold,
                1000,
                fd.max_interval,
                fd.initial_interval,
                fd.dead_node_grace_period,
            ),
            marked_for_deletion_grace_period: Duration::from_secs(3600),
            catchup_callback: None,
            extra_liveness_predicate: None,
            protocol_version: ProtocolVersion::V1,
        };
        let handle = spawn_chitchat(config, kvs, transport)
            .await
            .map_err(|e| MembershipError::Chitchat(format!("{e:#}")))?;
        let live_rx = handle.chitchat().lock().await.live_nodes_watcher();
        let (peers_tx, peers_rx) = watch::channel(Arc::new(Vec::new()));
        let builder = ViewBuilder::new(self_id.clone(), metrics.clone());
        let view_task = tokio::spawn(run_view(live_rx, peers_tx, builder, roster));
        Ok(Membership {
            handle: Some(handle),
            relay: None,
            seeds_task: None,
            carrier: None,
            self_id,
            pool_id: cfg.pool_id(),
            peers_rx,
            view_task,
            reloader: std::sync::Mutex::new(None),
            gossip_interval: cfg.gossip_interval,
            metrics,
        })
    }

    /// Publishes a new announcement (its node id must stay the same).
    pub async fn set_announcement(
        &self,
        announcement: Announcement,
    ) -> Result<(), MembershipError> {
        if announcement.node_id != *self.self_id.node_id {
            return Err(MembershipError::Config(
                "announcement node_id differs from the membership node id".into(),
            ));
        }
        let kvs = announcement.to_key_values()?;
        self.with_self_state(move |state| {
            for (k, v) in &kvs {
                state.set(k, v);
            }
        })
        .await;
        Ok(())
    }

    /// Publishes readiness: only ready nodes appear in peers' views.
    pub async fn set_ready(&self, ready: bool) {
        self.with_self_state(|state| state.set(KEY_READY, announcement::ready_value(ready)))
            .await;
    }

    /// Replaces the keyring (key rotation). Refused in plaintext mode.
    pub fn set_keyring(&self, keyring: Keyring) -> Result<(), MembershipError> {
        match &self.carrier {
            Some(c) => Ok(c.set_keyring(keyring)?),
            None => Err(MembershipError::Carrier(CarrierError::Plaintext)),
        }
    }

    /// Re-reads the keyring file every `every` and swaps the keys when they
    /// changed (replacing any earlier reloader). Refused in plaintext mode.
    pub fn reload_keyring_from(
        &self,
        path: PathBuf,
        every: Duration,
    ) -> Result<(), MembershipError> {
        let carrier = match &self.carrier {
            Some(c) if c.keyring().is_some() => c.clone(),
            _ => return Err(MembershipError::Carrier(CarrierError::Plaintext)),
        };
        let task = reload::spawn(carrier, path, every, self.metrics.clone());
        let mut slot = self.reloader.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = slot.replace(task) {
            old.abort();
        }
        Ok(())
    }

    /// Id bytes of the current keys, primary first (`None` in plaintext mode).
    pub fn key_ids(&self) -> Option<Vec<u8>> {
        self.carrier.as_ref()?.keyring().map(|k| k.key_ids())
    }

    /// Live and ready peers (self excluded), sorted by node id.
    pub fn peers(&self) -> Vec<Peer> {
        self.peers_rx.borrow().as_ref().clone()
    }

    /// A receiver of the peer view; it changes on joins, leaves (when the
    /// failure detector marks a peer dead), restarts and announcement updates.
    pub fn watch(&self) -> watch::Receiver<Arc<Vec<Peer>>> {
        self.peers_rx.clone()
    }

    /// This node's gossip identity (node id, generation, advertised address).
    pub fn self_id(&self) -> &ChitchatId {
        &self.self_id
    }

    /// The advertised gossip address (give it to others as a seed).
    pub fn gossip_addr(&self) -> SocketAddr {
        self.self_id.gossip_advertise_addr
    }

    /// The chitchat cluster id (`federation/cluster`).
    pub fn pool_id(&self) -> &str {
        &self.pool_id
    }

    /// This pool's metrics.
    pub fn metrics(&self) -> &GossipMetrics {
        &self.metrics
    }

    /// Relay links open now (one per peer talked to recently).
    pub fn relay_links(&self) -> usize {
        self.relay.as_ref().map_or(0, Relay::num_links)
    }

    /// True when the relay holds a link to `peer`, i.e. chitchat can answer it.
    pub fn has_relay_link(&self, peer: SocketAddr) -> bool {
        self.relay.as_ref().is_some_and(|r| r.has_link(peer))
    }

    /// Graceful leave: publishes "not ready", lets a few gossip rounds carry
    /// it (peers drop this node from their views at once instead of waiting
    /// for the failure detector), then shuts down.
    pub async fn leave(self) {
        self.set_ready(false).await;
        tokio::time::sleep(self.gossip_interval.saturating_mul(3)).await;
        self.shutdown().await;
    }

    /// Stops at once (peers notice through their failure detector): gossip,
    /// the view task, the keyring reloader and the relay; releases the socket.
    pub async fn shutdown(mut self) {
        self.stop_reloader();
        if let Some(handle) = self.handle.take()
            && let Err(e) = handle.shutdown().await
        {
            debug!(error = %e, "chitchat stopped with an error");
        }
        self.view_task.abort();
        if let Some(task) = self.seeds_task.take() {
            task.abort();
        }
        if let Some(relay) = self.relay.take() {
            relay.shutdown().await;
        }
        self.carrier.take();
    }

    fn stop_reloader(&self) {
        let mut slot = self.reloader.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = slot.take() {
            task.abort();
        }
    }

    /// chitchat's state (for the extra-key readers and writers).
    pub(crate) fn chitchat(&self) -> Option<Arc<tokio::sync::Mutex<chitchat::Chitchat>>> {
        self.handle.as_ref().map(|h| h.chitchat())
    }

    pub(crate) async fn with_self_state(&self, f: impl FnOnce(&mut chitchat::NodeState)) {
        if let Some(handle) = &self.handle {
            let chitchat = handle.chitchat();
            let mut guard = chitchat.lock().await;
            f(guard.self_node_state());
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.stop_reloader();
        self.view_task.abort();
        if let Some(task) = &self.seeds_task {
            task.abort();
        }
        if let Some(handle) = &self.handle {
            let _ = handle.initiate_shutdown();
        }
    }
}

async fn run_view(
    mut live_rx: watch::Receiver<std::collections::BTreeMap<ChitchatId, chitchat::NodeState>>,
    peers_tx: watch::Sender<Arc<Vec<Peer>>>,
    mut builder: ViewBuilder,
    roster: Option<Arc<Roster>>,
) {
    loop {
        let view = {
            let live = live_rx.borrow_and_update();
            if let Some(roster) = &roster {
                // Every live node, ready or not, is a member the relay answers.
                roster.set_members(live.keys().map(|id| id.gossip_advertise_addr));
            }
            builder.build(live.iter())
        };
        peers_tx.send_if_modified(|current| {
            if current.as_slice() == view.as_slice() {
                false
            } else {
                *current = Arc::new(view);
                true
            }
        });
        if live_rx.changed().await.is_err() {
            return;
        }
    }
}

/// How often seed names are resolved again for the roster (chitchat does
/// the same for its own seed list).
const SEED_RESOLVE_INTERVAL: Duration = Duration::from_secs(60);
/// Bound on one round of seed resolution.
const SEED_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps the roster's seed addresses current: `host:port` seeds are
/// resolved now and every [`SEED_RESOLVE_INTERVAL`]; a failed lookup keeps
/// the addresses it had.
async fn resolve_seeds(seeds: Vec<String>, roster: Arc<Roster>) {
    let mut known: std::collections::HashMap<String, Vec<SocketAddr>> =
        std::collections::HashMap::new();
    loop {
        for seed in &seeds {
            if let Ok(addr) = seed.parse::<SocketAddr>() {
                known.insert(seed.clone(), vec![addr]);
                continue;
            }
            match tokio::time::timeout(SEED_RESOLVE_TIMEOUT, tokio::net::lookup_host(seed.as_str()))
                .await
            {
                Ok(Ok(addrs)) => {
                    known.insert(seed.clone(), addrs.take(64).collect());
                }
                Ok(Err(e)) => debug!(seed = %seed, error = %e, "cannot resolve gossip seed"),
                Err(_) => debug!(seed = %seed, "gossip seed lookup timed out"),
            }
        }
        roster.set_seeds(known.values().flatten().copied());
        tokio::time::sleep(SEED_RESOLVE_INTERVAL).await;
    }
}

fn check_config(
    cfg: &MembershipConfig,
    announcement: &Announcement,
) -> Result<(), MembershipError> {
    if cfg.node_id.is_empty() {
        return Err(MembershipError::Config("node_id is empty".into()));
    }
    if cfg.federation.is_empty() || cfg.cluster.is_empty() {
        return Err(MembershipError::Config(
            "federation and cluster must be set".into(),
        ));
    }
    if cfg.gossip_interval.is_zero() {
        return Err(MembershipError::Config(
            "gossip_interval must be positive".into(),
        ));
    }
    if !(MIN_DATAGRAM..=crate::seal::MAX_DATAGRAM).contains(&cfg.max_datagram) {
        return Err(MembershipError::Config(format!(
            "max_datagram must be within {MIN_DATAGRAM}..={}",
            crate::seal::MAX_DATAGRAM
        )));
    }
    if cfg.limits.max_clock_skew.is_zero() {
        return Err(MembershipError::Config(
            "max_clock_skew must be positive".into(),
        ));
    }
    if cfg.limits.replay_cache_entries == 0
        || cfg.limits.source_rate == 0
        || cfg.limits.stranger_rate == 0
    {
        return Err(MembershipError::Config(
            "replay_cache_entries, source_rate and stranger_rate must be positive".into(),
        ));
    }
    if cfg.limits.reassembly.max_bytes_per_source < crate::frame::MAX_MESSAGE_CHARGE
        || cfg.limits.reassembly.max_bytes < cfg.limits.reassembly.max_bytes_per_source
    {
        return Err(MembershipError::Config(format!(
            "reassembly budgets must hold one whole message ({} bytes) per source, and the \
             total at least the per-source budget",
            crate::frame::MAX_MESSAGE_CHARGE
        )));
    }
    if announcement.node_id != cfg.node_id {
        return Err(MembershipError::Config(
            "announcement node_id differs from the membership node id".into(),
        ));
    }
    announcement.validate()?;
    Ok(())
}

/// The address to announce, and why.
fn advertise_addr(
    cfg: &MembershipConfig,
    bound: SocketAddr,
) -> Result<(SocketAddr, &'static str), MembershipError> {
    match cfg.advertise_addr {
        Some(a) if a.ip().is_unspecified() || a.port() == 0 => Err(MembershipError::Config(
            format!("advertise address {a} must name a reachable IP and port"),
        )),
        Some(a) => Ok((a, "configured advertise address")),
        None if bound.ip().is_unspecified() => Err(MembershipError::Config(format!(
            "listening on the wildcard address {bound}: set an explicit advertise address"
        ))),
        None => Ok((bound, "the listen address, no advertise address configured")),
    }
}

/// Generation id: the start time in ns, so a restart is a new incarnation.
fn generation_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
