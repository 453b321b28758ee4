//! WAN membership of a node: a query node with an external address joins
//! the federation's WAN pool, whose gossip rides its gRPC port
//! (`skein.gossip.v1.Wan/Deliver`, same mutual TLS as the StoreAPI). It
//! publishes its cluster's store catalog (stores of its LAN view with an
//! external address) and feeds the querier's store set with LAN candidates
//! (internal addresses, own cluster) and the WAN catalog entries of OTHER
//! clusters (external address and TLS server name); static stores stay.

use std::sync::Arc;

use prometheus_client::registry::Registry;
use skein_actors::query::{Candidate, Promise, QueryHandle};
use skein_discovery::wan::{
    CarrierSettings, CatalogEntry, WanAddr, WanConfig, WanEndpoint, WanPool, catalog,
};
use skein_discovery::{FailureDetection, Membership, Peer};
use skein_proto::skein::gossip::v1::wan_server::WanServer;
use skein_tls::TlsReloader;
use tokio::sync::watch;

use crate::config::{Config, Role};

/// A WAN member about to start: its gRPC service exists (serve it on the
/// gRPC port before calling [`start`]); gossip does not run yet.
pub struct WanPlan {
    endpoint: WanEndpoint,
    cfg: WanConfig,
    why: String,
}

impl WanPlan {
    /// The `Wan` gRPC service for the node's router.
    pub fn service(&self) -> WanServer<skein_discovery::wan::WanService> {
        self.endpoint.service()
    }
}

/// Decides whether this node joins WAN gossip: only a query node with
/// `--external-address` and LAN gossip (its cluster's view is what it
/// publishes). Registers the WAN metrics when it does.
pub fn prepare(
    config: &Config,
    tls: Option<Arc<TlsReloader>>,
    registry: &mut Registry,
) -> anyhow::Result<Option<WanPlan>> {
    if !config.has(Role::Query) {
        return Ok(None);
    }
    let Some(external) = &config.external_address else {
        tracing::info!(
            "WAN gossip off: no --external-address (this querier sees its own cluster and static stores)"
        );
        return Ok(None);
    };
    let (Some(g), Some(cluster)) = (&config.gossip, &config.cluster) else {
        tracing::warn!(
            external = %external,
            "WAN gossip off: it needs LAN gossip (--gossip.listen-address and --cluster) to know what its cluster serves"
        );
        return Ok(None);
    };
    if tls.is_none() && !config.dev {
        anyhow::bail!(
            "WAN gossip rides the mutual-TLS gRPC port: set tls.cert_file, tls.key_file and \
             tls.ca_file, or run with --dev for plaintext local development"
        );
    }
    let addr = WanAddr::parse(external)
        .map_err(|e| anyhow::anyhow!("--external-address for WAN gossip: {e}"))?;
    for s in &g.wan_seeds {
        WanAddr::parse(s).map_err(|e| anyhow::anyhow!("--gossip.wan-seed: {e}"))?;
    }
    let mut cfg = WanConfig::new(
        config.node_id.clone(),
        config.federation.clone(),
        cluster.clone(),
    );
    cfg.roles = config
        .roles
        .iter()
        .map(|r| match r {
            Role::Sidecar => skein_discovery::Role::Sidecar,
            Role::Store => skein_discovery::Role::Store,
            Role::Query => skein_discovery::Role::Query,
        })
        .collect();
    let (server_name, name_why) = match config.tls.as_ref().and_then(|t| t.server_name.clone()) {
        Some(n) => (n, "--tls.server-name"),
        None => (addr.host().to_string(), "the host of --external-address"),
    };
    cfg.tls_server_name = Some(server_name.clone());
    cfg.seeds = g.wan_seeds.clone();
    cfg.max_catalog_entries = g.wan_max_catalog_entries;
    cfg.gossip_interval = g.interval;
    // WAN links jitter more than a LAN, and a member declared dead takes
    // its whole cluster's catalog with it: a higher phi threshold than LAN.
    cfg.failure_detection = FailureDetection {
        phi_threshold: 12.0,
        initial_interval: g.interval,
        ..FailureDetection::default()
    };
    let seeds_why = if g.wan_seeds.is_empty() {
        "no --gossip.wan-seed: waiting to be contacted (a WAN seed for other clusters)".to_string()
    } else {
        format!("WAN seeds {}", g.wan_seeds.join(", "))
    };
    let why = format!(
        "WAN gossip: announcing {addr} (--external-address{}), server name {server_name} ({name_why}), \
         on the gRPC port {} with {}; {seeds_why}",
        if addr.is_name() {
            format!(", gossip id {}", addr.socket_addr())
        } else {
            String::new()
        },
        config.grpc_address,
        if tls.is_some() {
            "mutual TLS"
        } else {
            "INSECURE PLAINTEXT (--dev)"
        },
    );
    let endpoint = WanEndpoint::new(CarrierSettings::new(addr), tls, registry);
    Ok(Some(WanPlan { endpoint, cfg, why }))
}

/// Starts the WAN pool and keeps this node's catalog current from the LAN
/// view (plus this node itself when it serves the StoreAPI externally,
/// with the label sets and time range `served` reports).
pub async fn start(
    plan: WanPlan,
    config: &Config,
    lan: &Membership,
    served: Option<crate::gossip::ServedFn>,
) -> anyhow::Result<WanPool> {
    let WanPlan { endpoint, cfg, why } = plan;
    let cluster = cfg.cluster.clone();
    let pool = WanPool::start(endpoint, cfg).await?;
    tracing::info!(pool = %pool.membership().pool_id(), "{why}");
    let own = own_entry(config, &cluster);
    let mut rx = lan.watch();
    let publisher = pool.catalog_publisher()?;
    tokio::spawn(async move {
        let mut last: Option<Vec<CatalogEntry>> = None;
        // This node's own label sets change without a LAN view change.
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        loop {
            let peers = rx.borrow_and_update().clone();
            let mut entries = catalog::from_lan_view(&cluster, &peers);
            if let Some(mut e) = own.clone() {
                if let Some(s) = match &served {
                    Some(f) => f().await,
                    None => None,
                } {
                    e.label_sets = s.label_sets.iter().map(crate::gossip::label_set).collect();
                    e.min_time = s.min_time;
                    e.max_time = s.max_time;
                }
                if e.validate().is_ok() {
                    entries.push(e);
                }
            }
            entries.sort();
            if last.as_ref() != Some(&entries) {
                match publisher.publish(&entries).await {
                    Ok(()) => {
                        tracing::info!(
                            stores = entries.len(),
                            "WAN catalog of this cluster published"
                        );
                        last = Some(entries);
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot publish the WAN catalog"),
                }
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = tick.tick() => {}
            }
        }
    });
    Ok(pool)
}

/// This node's own catalog entry when it serves the StoreAPI (sidecar or
/// store role) at its external address: it is not in its own LAN view.
fn own_entry(config: &Config, cluster: &str) -> Option<CatalogEntry> {
    if !(config.has(Role::Sidecar) || config.has(Role::Store)) {
        return None;
    }
    let e = CatalogEntry {
        node_id: config.node_id.clone(),
        cluster: cluster.to_string(),
        address: config.external_address.clone()?,
        tls_server_name: config.tls.as_ref().and_then(|t| t.server_name.clone()),
        min_time: i64::MIN,
        max_time: i64::MAX,
        label_sets: Vec::new(),
    };
    e.validate().ok()?;
    Some(e)
}

/// The store candidates of a querier in `my_cluster`: its LAN view (internal
/// addresses) and the WAN catalog entries of other clusters (external
/// address and server name), unique by (address, server name): behind an
/// SNI-routing ingress several stores share one address.
pub fn candidates(
    federation: &str,
    my_cluster: Option<&str>,
    lan: &[Peer],
    wan: &[CatalogEntry],
) -> Vec<Candidate> {
    let mut cands: Vec<Candidate> = lan
        .iter()
        .filter_map(|p| crate::gossip::candidate_for(federation, my_cluster, p))
        .collect();
    cands.extend(
        wan.iter()
            .filter(|e| Some(e.cluster.as_str()) != my_cluster)
            .map(|e| Candidate {
                address: e.address.clone(),
                server_name: e.tls_server_name.clone(),
                node_id: e.node_id.clone(),
                promise: Some(Promise::new(
                    federation,
                    &e.cluster,
                    crate::gossip::promised_labels(&e.label_sets),
                )),
            }),
    );
    // One candidate per store and promised cluster (the store set keeps
    // the same key).
    let key = |c: &Candidate| {
        (
            c.address.clone(),
            c.server_name.clone(),
            c.promise.as_ref().map(|p| p.cluster.clone()),
        )
    };
    cands.sort_by_key(key);
    cands.dedup_by(|a, b| key(a) == key(b));
    cands
}

/// Feeds the query role's store set from the LAN view and the WAN catalog
/// (static stores are kept by the store set itself).
pub fn feed_store_set(
    lan: &Membership,
    wan: &WanPool,
    federation: String,
    my_cluster: Option<String>,
    query: QueryHandle,
) {
    let mut lan_rx = lan.watch();
    let mut wan_rx: watch::Receiver<Arc<Vec<CatalogEntry>>> = wan.catalog();
    tokio::spawn(async move {
        loop {
            let peers = lan_rx.borrow_and_update().clone();
            let remote = wan_rx.borrow_and_update().clone();
            let cands = candidates(&federation, my_cluster.as_deref(), &peers, &remote);
            tracing::debug!(stores = cands.len(), "gossip views changed");
            query.set_discovered(cands);
            tokio::select! {
                r = lan_rx.changed() => if r.is_err() { return },
                r = wan_rx.changed() => if r.is_err() { return },
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use skein_discovery::Announcement;

    fn sidecar(id: &str, cluster: &str) -> Peer {
        let mut a = Announcement::new(id, cluster);
        a.roles = vec![skein_discovery::Role::Sidecar];
        a.store_internal = Some(format!("{id}.svc:10901"));
        a.store_external = Some(format!("{id}.example:443"));
        a.tls_server_name = Some(format!("{id}.example"));
        Peer {
            node_id: id.into(),
            generation: 1,
            gossip_addr: "127.0.0.1:7946".parse().unwrap(),
            announcement: a,
        }
    }

    fn entry(id: &str, cluster: &str) -> CatalogEntry {
        CatalogEntry {
            node_id: id.into(),
            cluster: cluster.into(),
            address: format!("{id}.example:443"),
            tls_server_name: Some(format!("{id}.example")),
            min_time: 0,
            max_time: 1,
            label_sets: vec![],
        }
    }

    #[test]
    fn lan_internal_plus_wan_of_other_clusters() {
        let lan = [sidecar("a0", "a"), sidecar("a1", "a")];
        // The WAN catalog also lists this cluster's stores (another WAN
        // member of cluster a publishes them): those are dialed internally.
        let wan = [entry("a0", "a"), entry("b0", "b"), entry("c0", "c")];
        let c = candidates("fed", Some("a"), &lan, &wan);
        let addrs: Vec<&str> = c.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(
            addrs,
            [
                "a0.svc:10901",
                "a1.svc:10901",
                "b0.example:443",
                "c0.example:443"
            ]
        );
        assert_eq!(c[2].server_name.as_deref(), Some("b0.example"));
        assert_eq!(c[2].node_id, "b0");
    }
}
