//! The WAN pool: one chitchat pool per federation (pool id = federation)
//! over the gRPC carrier. Its members are the nodes with an external
//! address (queriers, gateways); each publishes its cluster's store catalog
//! and reads everyone else's.
//!
//! Start-up is in two steps because the gRPC server must serve
//! `Wan/Deliver` on the node's port before peers can answer:
//! [`WanEndpoint::new`] makes the carrier and the service (add
//! [`WanEndpoint::service`] to the router), then [`WanPool::start`] starts
//! gossip.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use skein_proto::skein::gossip::v1::wan_server::WanServer;
use skein_tls::TlsReloader;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::address::{WanAddr, WanAddrError};
use super::book::{AddressBook, RouteSource};
use super::carrier::{CarrierSettings, GrpcCarrier};
use super::catalog::{
    self, CATALOG_PREFIX, CatalogEntry, CatalogError, DEFAULT_MAX_ENTRIES_PER_MEMBER, Publisher,
    RESIGN_EVERY, Rejection, Verify, VerifyCache,
};
use super::metrics::WanMetrics;
use super::service::WanService;
use crate::announcement::{Announcement, Role};
use crate::carrier::GossipSecurity;
use crate::extra_keys::ValuesPublisher;
use crate::membership::{
    FailureDetection, Membership, MembershipConfig, MembershipError, PoolScope,
};
use crate::metrics::GossipMetrics;
use crate::relay::DEFAULT_MAX_LINKS;
use crate::view::Peer;

/// Errors of the WAN layer.
#[derive(Debug, thiserror::Error)]
pub enum WanError {
    #[error(transparent)]
    Address(#[from] WanAddrError),
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("WAN gossip identity: {0}")]
    Identity(String),
}

/// Settings of a WAN member.
#[derive(Clone, Debug)]
pub struct WanConfig {
    pub node_id: String,
    /// The WAN pool id.
    pub federation: String,
    /// This node's cluster (announced; catalogs are per cluster).
    pub cluster: String,
    /// Roles announced in the WAN pool (informational).
    pub roles: Vec<Role>,
    /// Name in this node's certificate, announced so peers check it (and
    /// send it as SNI). Default: the external address's host.
    pub tls_server_name: Option<String>,
    /// WAN seeds: other members' external `host:port`.
    pub seeds: Vec<String>,
    pub gossip_interval: Duration,
    pub failure_detection: FailureDetection,
    pub max_links: usize,
    /// Catalog entries accepted from one member; more are dropped and
    /// counted.
    pub max_catalog_entries: usize,
}

impl WanConfig {
    pub fn new(
        node_id: impl Into<String>,
        federation: impl Into<String>,
        cluster: impl Into<String>,
    ) -> WanConfig {
        WanConfig {
            node_id: node_id.into(),
            federation: federation.into(),
            cluster: cluster.into(),
            roles: vec![Role::Query],
            tls_server_name: None,
            seeds: Vec::new(),
            gossip_interval: Duration::from_secs(1),
            failure_detection: FailureDetection::default(),
            max_links: DEFAULT_MAX_LINKS,
            max_catalog_entries: DEFAULT_MAX_ENTRIES_PER_MEMBER,
        }
    }
}

/// The carrier and the gRPC service of a WAN member, before gossip starts.
pub struct WanEndpoint {
    carrier: Arc<GrpcCarrier>,
    service: WanService,
    metrics: GossipMetrics,
    wan_metrics: WanMetrics,
    tls: Option<Arc<TlsReloader>>,
}

impl WanEndpoint {
    /// Registers the WAN metrics: the pool's gossip metrics as
    /// `skein_wan_gossip_*` and the carrier's as `skein_wan_gossip_*` too.
    pub fn new(
        settings: CarrierSettings,
        tls: Option<Arc<TlsReloader>>,
        registry: &mut Registry,
    ) -> WanEndpoint {
        let metrics = GossipMetrics::register_as(registry, "skein_wan_gossip");
        let wan_metrics = WanMetrics::register(registry.sub_registry_with_prefix("skein"));
        WanEndpoint::with_metrics(settings, tls, metrics, wan_metrics)
    }

    /// Like [`WanEndpoint::new`] with metrics made by the caller.
    pub fn with_metrics(
        settings: CarrierSettings,
        tls: Option<Arc<TlsReloader>>,
        metrics: GossipMetrics,
        wan_metrics: WanMetrics,
    ) -> WanEndpoint {
        let (carrier, service) =
            GrpcCarrier::new(settings, tls.clone(), metrics.clone(), wan_metrics.clone());
        WanEndpoint {
            carrier,
            service,
            metrics,
            wan_metrics,
            tls,
        }
    }

    /// The `skein.gossip.v1.Wan` service to add to the node's gRPC router.
    pub fn service(&self) -> WanServer<WanService> {
        self.service.clone().server()
    }

    /// This node's external address.
    pub fn external(&self) -> &WanAddr {
        self.carrier.external()
    }

    pub fn carrier(&self) -> &Arc<GrpcCarrier> {
        &self.carrier
    }

    pub fn wan_metrics(&self) -> &WanMetrics {
        &self.wan_metrics
    }
}

/// A running WAN member. See the module docs.
pub struct WanPool {
    membership: Membership,
    carrier: Arc<GrpcCarrier>,
    catalog_rx: watch::Receiver<Arc<Vec<CatalogEntry>>>,
    publisher: CatalogPublisher,
    _tasks: Tasks,
    wan_metrics: WanMetrics,
}

/// Publishes a WAN member's store catalog; see [`WanPool::catalog_publisher`].
/// With TLS every shard is signed with the node's key and carries its
/// certificate chain; the catalog is re-signed every [`RESIGN_EVERY`] and
/// when the TLS material is reloaded.
#[derive(Clone)]
pub struct CatalogPublisher {
    values: ValuesPublisher,
    who: Publisher,
    tls: Option<Arc<TlsReloader>>,
    last: Arc<StdMutex<Option<Published>>>,
}

#[derive(Clone)]
struct Published {
    entries: Vec<CatalogEntry>,
    at: Instant,
    tls_generation: u64,
}

impl CatalogPublisher {
    /// Replaces the published catalog with `entries`, which must all be of
    /// this member's cluster.
    pub async fn publish(&self, entries: &[CatalogEntry]) -> Result<(), WanError> {
        if let Some(e) = entries.iter().find(|e| e.cluster != self.who.cluster) {
            return Err(CatalogError::OtherCluster {
                node_id: e.node_id.clone(),
                cluster: e.cluster.clone(),
            }
            .into());
        }
        let (shards, generation) = match &self.tls {
            Some(tls) => {
                let generation = tls.generation();
                let material = tls.material();
                (
                    catalog::encode_signed(entries, &self.who, &material, catalog::signing_time())?,
                    generation,
                )
            }
            None => (catalog::encode(entries)?, 0),
        };
        self.values.publish(&shards).await?;
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Published {
            entries: entries.to_vec(),
            at: Instant::now(),
            tls_generation: generation,
        });
        Ok(())
    }

    /// Publishes the last catalog again, signed anew, if it is due (older
    /// than [`RESIGN_EVERY`], or signed with material since reloaded).
    async fn resign_if_due(&self) {
        let Some(tls) = &self.tls else { return };
        let due = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .filter(|p| p.at.elapsed() >= RESIGN_EVERY || p.tls_generation != tls.generation());
        if let Some(p) = due {
            match self.publish(&p.entries).await {
                Ok(()) => debug_resigned(p.entries.len()),
                Err(e) => warn!(error = %e, "cannot re-sign the WAN catalog"),
            }
        }
    }
}

fn debug_resigned(n: usize) {
    tracing::debug!(entries = n, "WAN catalog re-signed");
}

/// Checks that this node's certificate lets it take part in WAN gossip:
/// an identity of `federation` naming this node, and its external host
/// among the SANs (peers check both).
fn check_own_identity(
    tls: &TlsReloader,
    cfg: &WanConfig,
    external: &WanAddr,
) -> Result<(), WanError> {
    let facts = tls
        .material()
        .own_facts()
        .map_err(|e| WanError::Identity(e.to_string()))?;
    let want = skein_tls::identity::NodeIdentity::new(
        cfg.federation.clone(),
        cfg.cluster.clone(),
        cfg.node_id.clone(),
    );
    let fix = format!(
        "issue it with that identity as a URI SAN (`skein tools certs --federation {} --node {}@{}=...`)",
        cfg.federation, cfg.node_id, cfg.cluster
    );
    match facts.cluster_in(&cfg.federation) {
        Ok(c) if c == cfg.cluster && facts.names_node(&cfg.federation, &cfg.node_id) => {}
        _ => {
            return Err(WanError::Identity(format!(
                "this node's certificate does not name {want}, so WAN peers would refuse its gossip; {fix}"
            )));
        }
    }
    if !facts.has_host(external.host()) {
        return Err(WanError::Identity(format!(
            "the external address's host {} is not a DNS/IP SAN of this node's certificate, so WAN peers would refuse its gossip",
            external.host()
        )));
    }
    Ok(())
}

/// Background tasks of a pool, aborted when it is dropped or stopped.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

impl WanPool {
    /// Starts gossip over `endpoint`'s carrier and marks this member ready.
    pub async fn start(endpoint: WanEndpoint, cfg: WanConfig) -> Result<WanPool, WanError> {
        let WanEndpoint {
            carrier,
            service,
            metrics,
            wan_metrics,
            tls,
        } = endpoint;
        let external = carrier.external().clone();
        if let Some(tls) = &tls {
            check_own_identity(tls, &cfg, &external)?;
        }
        service.set_federation(&cfg.federation);
        let book = carrier.address_book().clone();
        let mut seeds = Vec::new();
        for s in &cfg.seeds {
            let a = WanAddr::parse(s)?;
            if a == external {
                continue;
            }
            seeds.push(book.learn(&a, None, RouteSource::Seed).to_string());
        }
        let mut mc = MembershipConfig::new(
            cfg.node_id.clone(),
            cfg.federation.clone(),
            cfg.cluster.clone(),
            external.socket_addr(),
            GossipSecurity::InsecurePlaintext,
        );
        mc.scope = PoolScope::Wan;
        // The external address is the identity peers know; nothing binds it.
        mc.advertise_addr = Some(external.socket_addr());
        mc.seeds = seeds;
        mc.gossip_interval = cfg.gossip_interval;
        mc.failure_detection = cfg.failure_detection.clone();
        mc.max_links = cfg.max_links;
        let mut announcement = Announcement::new(cfg.node_id.clone(), cfg.cluster.clone());
        announcement.roles = cfg.roles.clone();
        announcement.store_external = Some(external.to_string());
        announcement.tls_server_name = Some(
            cfg.tls_server_name
                .clone()
                .unwrap_or_else(|| external.host().to_string()),
        );
        let protection = if tls.is_some() {
            format!("WAN gossip as gRPC Wan/Deliver on {external}, mutual TLS")
        } else {
            format!("WAN gossip as INSECURE PLAINTEXT gRPC Wan/Deliver on {external}")
        };
        let membership =
            Membership::start_with_carrier(mc, announcement, carrier.clone(), &protection, metrics)
                .await?;
        let mut tasks = vec![tokio::spawn(learn_routes(membership.watch(), book))];
        let values = membership.watch_values(CATALOG_PREFIX).await?;
        let (catalog_tx, catalog_rx) = watch::channel(Arc::new(Vec::new()));
        tasks.push(tokio::spawn(follow_catalogs(
            values,
            catalog_tx,
            wan_metrics.clone(),
            tls.clone(),
            cfg.federation.clone(),
            cfg.max_catalog_entries,
        )));
        let publisher = CatalogPublisher {
            values: membership.values_publisher(CATALOG_PREFIX)?,
            who: Publisher {
                node_id: cfg.node_id.clone(),
                cluster: cfg.cluster.clone(),
                federation: cfg.federation.clone(),
            },
            tls: tls.clone(),
            last: Arc::new(StdMutex::new(None)),
        };
        let resigner = publisher.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                resigner.resign_if_due().await;
            }
        }));
        membership.set_ready(true).await;
        info!(
            pool = %membership.pool_id(), external = %external,
            gossip_addr = %membership.gossip_addr(), seeds = ?cfg.seeds,
            "WAN member started"
        );
        Ok(WanPool {
            membership,
            carrier,
            catalog_rx,
            publisher,
            _tasks: Tasks(tasks),
            wan_metrics,
        })
    }

    /// Publishes this member's store catalog (replacing the previous one).
    pub async fn publish_catalog(&self, entries: &[CatalogEntry]) -> Result<(), WanError> {
        self.catalog_publisher()?.publish(entries).await
    }

    /// A cloneable handle that publishes this member's catalog from a task.
    pub fn catalog_publisher(&self) -> Result<CatalogPublisher, WanError> {
        Ok(self.publisher.clone())
    }

    /// The merged catalogs of the other live WAN members (any cluster,
    /// this node's own cluster included: filter by `cluster`).
    pub fn catalog(&self) -> watch::Receiver<Arc<Vec<CatalogEntry>>> {
        self.catalog_rx.clone()
    }

    /// The WAN membership (peers, gossip address, pool id).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    pub fn carrier(&self) -> &Arc<GrpcCarrier> {
        &self.carrier
    }

    pub fn wan_metrics(&self) -> &WanMetrics {
        &self.wan_metrics
    }

    /// Graceful leave (peers drop this member at once), then stop.
    pub async fn leave(self) {
        self.membership.leave().await;
    }

    /// Stops at once.
    pub async fn shutdown(self) {
        self.membership.shutdown().await;
    }
}

/// Keeps the address book in step with the members' announcements: each
/// member's gossip address routes to its announced external address and
/// server name.
async fn learn_routes(mut rx: watch::Receiver<Arc<Vec<Peer>>>, book: Arc<AddressBook>) {
    let mut warned: Vec<String> = Vec::new();
    loop {
        let peers = rx.borrow_and_update().clone();
        for p in peers.iter() {
            let a = &p.announcement;
            let Some(ext) = a.store_external.as_deref() else {
                continue;
            };
            match WanAddr::parse(ext) {
                Ok(addr) if addr.socket_addr() == p.gossip_addr => {
                    book.learn(
                        &addr,
                        a.tls_server_name.as_deref(),
                        RouteSource::Announcement,
                    );
                }
                Ok(_) | Err(_) => {
                    if !warned.contains(&p.node_id) {
                        warn!(node = %p.node_id, external = %ext, gossip = %p.gossip_addr,
                            "WAN member announces an external address that does not match its gossip address; ignored");
                        warned.push(p.node_id.clone());
                    }
                }
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// How often catalogs are re-checked without a change (shards expire).
const RECHECK_EVERY: Duration = Duration::from_secs(30);

async fn follow_catalogs(
    mut rx: watch::Receiver<Arc<Vec<crate::extra_keys::PeerValues>>>,
    tx: watch::Sender<Arc<Vec<CatalogEntry>>>,
    metrics: WanMetrics,
    tls: Option<Arc<TlsReloader>>,
    federation: String,
    max_entries: usize,
) {
    // Refusals are counted and logged once per distinct shard value.
    let mut reported: HashMap<(String, String), String> = HashMap::new();
    let mut cache = VerifyCache::default();
    let mut tls_generation = tls.as_ref().map(|t| t.generation());
    loop {
        let peers = rx.borrow_and_update().clone();
        let material = tls.as_ref().map(|t| t.material());
        let generation = tls.as_ref().map(|t| t.generation());
        if generation != tls_generation {
            // New CA or certificate: check everything again.
            cache = VerifyCache::default();
            tls_generation = generation;
        }
        let verify = match &material {
            Some(m) => Verify::Signed {
                material: m,
                federation: &federation,
            },
            None => Verify::Unchecked,
        };
        let mut catalogs = Vec::new();
        let mut live: HashSet<(String, String)> = HashSet::new();
        for p in peers.iter() {
            let decoded = catalog::decode_peer(
                &p.node_id,
                &p.keys,
                &p.values,
                verify,
                &mut cache,
                max_entries,
            );
            for k in &p.keys {
                live.insert((p.node_id.clone(), k.clone()));
            }
            let fingerprint = p.values.join("\u{0}");
            let slot = (p.node_id.clone(), String::new());
            let new_state = reported.get(&slot) != Some(&fingerprint);
            if new_state {
                let mut by_reason: std::collections::BTreeMap<Rejection, usize> =
                    Default::default();
                for (reason, _) in &decoded.rejected {
                    metrics.catalog_rejected(*reason);
                    if matches!(reason, Rejection::InvalidEntry) {
                        metrics.catalog_invalid(1);
                    }
                    *by_reason.entry(*reason).or_default() += 1;
                }
                if let Some((_, first)) = decoded.rejected.first() {
                    let reasons: Vec<String> = by_reason
                        .iter()
                        .map(|(r, n)| format!("{}={n}", r.as_str()))
                        .collect();
                    warn!(node = %p.node_id, refused = %reasons.join(","), first = %first,
                        "WAN member published catalog shards or entries that are refused; they are ignored");
                }
                reported.insert(slot, fingerprint);
            }
            catalogs.push(decoded.entries);
        }
        cache.retain(&live);
        reported.retain(|(node, _), _| peers.iter().any(|p| p.node_id == *node));
        let merged = catalog::merge(catalogs);
        metrics.set_catalog_entries(merged.len());
        tx.send_if_modified(|cur| {
            if cur.as_slice() == merged.as_slice() {
                false
            } else {
                *cur = Arc::new(merged);
                true
            }
        });
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(RECHECK_EVERY) => {}
        }
    }
}
