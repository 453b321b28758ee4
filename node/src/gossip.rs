//! LAN membership of a node: what it announces, readiness, keyring reload,
//! and (query role) the store candidates it feeds to the store set.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use prometheus_client::registry::Registry;
use skein_discovery::{
    Announcement, GossipSecurity, Keyring, LabelSet, Membership, MembershipConfig, Peer, Role,
};
use skein_promql::Labels;

use crate::config::{Config, GossipSettings};
use crate::readiness::Readiness;

/// What a data role serves right now: its label sets and time range.
pub type ServedFn = Arc<dyn Fn() -> BoxFuture<'static, Option<Served>> + Send + Sync>;

#[derive(Clone, Debug, PartialEq)]
pub struct Served {
    pub label_sets: Vec<Labels>,
    pub min_time: i64,
    pub max_time: i64,
}

pub(crate) fn label_set(l: &Labels) -> LabelSet {
    l.iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect::<BTreeMap<_, _>>()
}

/// The StoreAPI address announced inside the cluster, and why.
pub fn internal_store_address(config: &Config) -> (Option<String>, &'static str) {
    if let Some(a) = &config.advertise_address {
        return (Some(a.clone()), "--advertise-address");
    }
    if config.grpc_address.ip().is_unspecified() {
        return (
            None,
            "the gRPC listen address is a wildcard and no --advertise-address is set",
        );
    }
    (
        Some(config.grpc_address.to_string()),
        "the gRPC listen address",
    )
}

fn base_announcement(config: &Config, roles: &[Role]) -> Announcement {
    let mut a = Announcement::new(
        config.node_id.clone(),
        config.cluster.clone().unwrap_or_default(),
    );
    a.roles = roles.to_vec();
    if roles
        .iter()
        .any(|r| matches!(r, Role::Sidecar | Role::Store))
    {
        a.store_internal = internal_store_address(config).0;
        a.store_external = config.external_address.clone();
        a.tls_server_name = config.tls.as_ref().and_then(|t| t.server_name.clone());
    }
    a
}

/// Starts the LAN pool and a task that keeps the announcement and the
/// readiness key current every `refresh`.
pub async fn start(
    config: &Config,
    g: &GossipSettings,
    roles: Vec<Role>,
    served: Option<ServedFn>,
    readiness: Readiness,
    registry: &mut Registry,
) -> anyhow::Result<Arc<Membership>> {
    let security = match &g.keyring_file {
        Some(path) => GossipSecurity::Sealed(Keyring::from_file(path)?),
        None => GossipSecurity::InsecurePlaintext,
    };
    let cluster = config.cluster.clone().unwrap_or_default();
    let mut mc = MembershipConfig::new(
        config.node_id.clone(),
        config.federation.clone(),
        cluster,
        g.listen_address,
        security,
    );
    mc.advertise_addr = g.advertise_address;
    mc.seeds = g.seeds.clone();
    mc.gossip_interval = g.interval;
    let base = base_announcement(config, &roles);
    let (store_addr, why) = internal_store_address(config);
    let membership = Arc::new(Membership::start(mc, base.clone(), registry).await?);
    tracing::info!(
        node_id = %config.node_id,
        pool = %membership.pool_id(),
        gossip = %membership.gossip_addr(),
        store_api = store_addr.as_deref().unwrap_or("none"),
        external = config.external_address.as_deref().unwrap_or("none"),
        sealed = g.keyring_file.is_some(),
        "gossip: announcing gossip address {} ({}) and StoreAPI {} ({})",
        membership.gossip_addr(),
        if g.advertise_address.is_some() { "--gossip.advertise-address" } else { "the bound gossip socket" },
        store_addr.as_deref().unwrap_or("none"),
        why,
    );
    if let Some(path) = &g.keyring_file {
        membership.reload_keyring_from(path.clone(), Duration::from_secs(5))?;
    }
    let m = membership.clone();
    tokio::spawn(async move {
        let mut last: Option<Announcement> = None;
        let mut last_ready: Option<bool> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            let mut a = base.clone();
            if let Some(f) = &served {
                match f().await {
                    Some(s) => {
                        a.external_labels = s.label_sets.iter().map(label_set).collect();
                        a.min_time = s.min_time;
                        a.max_time = s.max_time;
                    }
                    None => continue,
                }
            }
            if last.as_ref() != Some(&a) {
                match m.set_announcement(a.clone()).await {
                    Ok(()) => last = Some(a),
                    Err(e) => tracing::warn!(error = %e, "cannot publish the announcement"),
                }
            }
            let ready = readiness.check().await.is_ok();
            if last_ready != Some(ready) {
                m.set_ready(ready).await;
                last_ready = Some(ready);
            }
        }
    });
    Ok(membership)
}

/// The store a querier in `my_cluster` should dial for a peer: its internal
/// address inside the same cluster, its external one across clusters.
pub fn candidate_for(my_cluster: Option<&str>, p: &Peer) -> Option<skein_actors::query::Candidate> {
    let a = &p.announcement;
    if !a
        .roles
        .iter()
        .any(|r| matches!(r, Role::Sidecar | Role::Store))
    {
        return None;
    }
    let same = my_cluster == Some(a.cluster.as_str());
    let addr = if same {
        a.store_internal.clone().or(a.store_external.clone())
    } else {
        a.store_external.clone()
    }?;
    Some(skein_actors::query::Candidate {
        address: addr,
        server_name: a.tls_server_name.clone(),
        node_id: p.node_id.clone(),
    })
}

/// Feeds the query role's store set from the membership view.
pub fn feed_store_set(
    membership: &Membership,
    my_cluster: Option<String>,
    query: skein_actors::query::QueryHandle,
) {
    let mut rx = membership.watch();
    tokio::spawn(async move {
        loop {
            let peers = rx.borrow_and_update().clone();
            // The store set unites and dedups the sources' candidates.
            let cands: Vec<_> = peers
                .iter()
                .filter_map(|p| candidate_for(my_cluster.as_deref(), p))
                .collect();
            tracing::debug!(stores = cands.len(), "gossip view changed");
            query.set_discovered(cands);
            if rx.changed().await.is_err() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(
        cluster: &str,
        roles: Vec<Role>,
        internal: Option<&str>,
        external: Option<&str>,
    ) -> Peer {
        let mut a = Announcement::new("n1", cluster);
        a.roles = roles;
        a.store_internal = internal.map(String::from);
        a.store_external = external.map(String::from);
        a.tls_server_name = Some("n1.skein".into());
        Peer {
            node_id: "n1".into(),
            generation: 1,
            gossip_addr: "127.0.0.1:7946".parse().unwrap(),
            announcement: a,
        }
    }

    #[test]
    fn same_cluster_dials_internal_other_clusters_external() {
        let p = peer(
            "eu1",
            vec![Role::Sidecar],
            Some("10.0.0.1:10901"),
            Some("eu1.example:443"),
        );
        assert_eq!(
            candidate_for(Some("eu1"), &p).unwrap().address,
            "10.0.0.1:10901"
        );
        let c = candidate_for(Some("us1"), &p).unwrap();
        assert_eq!(c.address, "eu1.example:443");
        assert_eq!(c.server_name.as_deref(), Some("n1.skein"));
        // Another cluster without an external address cannot be reached.
        let p = peer("eu1", vec![Role::Store], Some("10.0.0.1:10901"), None);
        assert!(candidate_for(Some("us1"), &p).is_none());
        // Queriers are not stores.
        let p = peer("eu1", vec![Role::Query], Some("10.0.0.1:10901"), None);
        assert!(candidate_for(Some("eu1"), &p).is_none());
    }
}
