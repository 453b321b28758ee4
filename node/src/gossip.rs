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

use crate::config::{Config, ConfigError, FileGossip, GossipSettings, parse_duration, parse_size};
use crate::readiness::Readiness;

/// Flags bounding what LAN gossip accepts from the network (see
/// discovery/README.md, "Freshness, replays and who gets an answer").
#[derive(Debug, Default, Clone, clap::Args)]
pub struct GossipLimitArgs {
    /// Datagrams whose sealed send time is further than this from the local
    /// clock (either way) are dropped as stale. [config: gossip.max_clock_skew]
    /// [default: 30s: NTP keeps nodes within milliseconds, so this only has to
    /// cover a drifting clock, and it bounds how long a nonce is remembered]
    #[arg(
        long = "gossip.max-clock-skew",
        env = "SKEIN_GOSSIP_MAX_CLOCK_SKEW",
        value_name = "DURATION"
    )]
    pub max_clock_skew: Option<String>,

    /// Nonces of accepted datagrams remembered to refuse replays; when full,
    /// new datagrams are dropped rather than a nonce forgotten.
    /// [config: gossip.replay_cache_entries] [default: 131072: about 11 MiB full,
    /// 60 s of 2,000 datagrams a second, 40x what a 16-node cluster sends]
    #[arg(
        long = "gossip.replay-cache-entries",
        env = "SKEIN_GOSSIP_REPLAY_CACHE_ENTRIES",
        value_name = "N"
    )]
    pub replay_cache_entries: Option<usize>,

    /// Datagrams per second accepted from one member, seed or proven sender
    /// (bursts of two seconds' worth). [config: gossip.source_rate]
    /// [default: 500: ten times the busiest honest peer measured, about 60/s
    /// with 100 ms rounds and 256-byte fragments]
    #[arg(
        long = "gossip.source-rate",
        env = "SKEIN_GOSSIP_SOURCE_RATE",
        value_name = "N"
    )]
    pub source_rate: Option<u32>,

    /// Datagrams per second shared by all sources that are not members or
    /// seeds, at most a tenth of it per address. [config: gossip.stranger_rate]
    /// [default: 200: a newcomer needs one datagram to prove its key, and
    /// this caps the AEAD work spent on unauthenticated traffic]
    #[arg(
        long = "gossip.stranger-rate",
        env = "SKEIN_GOSSIP_STRANGER_RATE",
        value_name = "N"
    )]
    pub stranger_rate: Option<u32>,

    /// Memory for partial fragmented messages, all peers together.
    /// [config: gossip.reassembly_bytes] [default: 4MiB: 64 full-size
    /// messages in flight, while a peer has one or two at a time]
    #[arg(
        long = "gossip.reassembly-bytes",
        env = "SKEIN_GOSSIP_REASSEMBLY_BYTES",
        value_name = "SIZE"
    )]
    pub reassembly_bytes: Option<String>,

    /// Memory for one peer's partial fragmented messages (at least 90KiB,
    /// one whole message). [config: gossip.reassembly_bytes_per_source]
    /// [default: 512KiB: about eight full-size messages from one peer]
    #[arg(
        long = "gossip.reassembly-bytes-per-source",
        env = "SKEIN_GOSSIP_REASSEMBLY_BYTES_PER_SOURCE",
        value_name = "SIZE"
    )]
    pub reassembly_bytes_per_source: Option<String>,
}

/// The gossip limits from flags, then the file, then the defaults.
pub fn resolve_limits(
    flags: &GossipLimitArgs,
    file: &FileGossip,
) -> Result<skein_discovery::GossipLimits, ConfigError> {
    let defaults = skein_discovery::GossipLimits::default();
    let pick = |flag: &Option<String>, file: &Option<String>| flag.clone().or(file.clone());
    let positive = |key: &'static str, v: u64| {
        if v == 0 {
            Err(ConfigError::Invalid {
                key,
                message: "must be greater than 0".into(),
            })
        } else {
            Ok(v)
        }
    };
    let max_clock_skew = match pick(&flags.max_clock_skew, &file.max_clock_skew) {
        Some(s) => parse_duration("gossip.max_clock_skew", &s)?,
        None => defaults.max_clock_skew,
    };
    if max_clock_skew.is_zero() {
        return Err(ConfigError::Invalid {
            key: "gossip.max_clock_skew",
            message: "must be greater than 0s (0s would refuse every datagram)".into(),
        });
    }
    let replay_cache_entries = flags
        .replay_cache_entries
        .or(file.replay_cache_entries)
        .unwrap_or(defaults.replay_cache_entries);
    positive("gossip.replay_cache_entries", replay_cache_entries as u64)?;
    let source_rate = flags
        .source_rate
        .or(file.source_rate)
        .unwrap_or(defaults.source_rate);
    positive("gossip.source_rate", u64::from(source_rate))?;
    let stranger_rate = flags
        .stranger_rate
        .or(file.stranger_rate)
        .unwrap_or(defaults.stranger_rate);
    positive("gossip.stranger_rate", u64::from(stranger_rate))?;
    let bytes = |key: &'static str,
                 v: Option<String>,
                 default: usize|
     -> Result<usize, ConfigError> {
        match v {
            Some(s) => usize::try_from(parse_size(key, &s)?).map_err(|_| ConfigError::Invalid {
                key,
                message: format!("{s:?} is too large"),
            }),
            None => Ok(default),
        }
    };
    let per_source = bytes(
        "gossip.reassembly_bytes_per_source",
        pick(
            &flags.reassembly_bytes_per_source,
            &file.reassembly_bytes_per_source,
        ),
        defaults.reassembly.max_bytes_per_source,
    )?;
    let total = bytes(
        "gossip.reassembly_bytes",
        pick(&flags.reassembly_bytes, &file.reassembly_bytes),
        defaults.reassembly.max_bytes,
    )?;
    let one_message = skein_discovery::frame::MAX_MESSAGE_CHARGE;
    if per_source < one_message {
        return Err(ConfigError::Invalid {
            key: "gossip.reassembly_bytes_per_source",
            message: format!(
                "{per_source} bytes cannot hold one whole fragmented message ({one_message} bytes)"
            ),
        });
    }
    if total < per_source {
        return Err(ConfigError::Invalid {
            key: "gossip.reassembly_bytes",
            message: format!(
                "{total} bytes is less than gossip.reassembly_bytes_per_source ({per_source})"
            ),
        });
    }
    Ok(skein_discovery::GossipLimits {
        max_clock_skew,
        replay_cache_entries,
        source_rate,
        stranger_rate,
        reassembly: skein_discovery::ReassemblyLimits {
            max_bytes: total,
            max_bytes_per_source: per_source,
        },
    })
}

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
    mc.limits = g.limits.clone();
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
/// address inside the same cluster, its external one across clusters. It
/// comes with what the peer promised: its certificate must be of the
/// announced cluster of `federation`, its Info label sets the announced ones.
pub fn candidate_for(
    federation: &str,
    my_cluster: Option<&str>,
    p: &Peer,
) -> Option<skein_actors::query::Candidate> {
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
        promise: Some(skein_actors::query::Promise::new(
            federation,
            &a.cluster,
            promised_labels(&a.external_labels),
        )),
    })
}

/// Announced label sets as the store set compares them.
pub fn promised_labels(sets: &[LabelSet]) -> Vec<Labels> {
    sets.iter()
        .map(|set| {
            Labels::new(
                set.iter()
                    .map(|(k, v)| skein_promql::Label::new(k.clone(), v.clone()))
                    .collect(),
            )
        })
        .collect()
}

/// Feeds the query role's store set from the membership view.
pub fn feed_store_set(
    membership: &Membership,
    federation: String,
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
                .filter_map(|p| candidate_for(&federation, my_cluster.as_deref(), p))
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
    fn gossip_limits_resolve_from_flags_file_and_defaults() {
        let none = GossipLimitArgs::default();
        let file = FileGossip::default();
        assert_eq!(
            resolve_limits(&none, &file).unwrap(),
            skein_discovery::GossipLimits::default()
        );
        let file = FileGossip {
            max_clock_skew: Some("10s".into()),
            source_rate: Some(50),
            reassembly_bytes: Some("8MiB".into()),
            ..FileGossip::default()
        };
        let flags = GossipLimitArgs {
            max_clock_skew: Some("45s".into()),
            stranger_rate: Some(7),
            ..GossipLimitArgs::default()
        };
        let l = resolve_limits(&flags, &file).unwrap();
        assert_eq!(l.max_clock_skew, Duration::from_secs(45));
        assert_eq!((l.source_rate, l.stranger_rate), (50, 7));
        assert_eq!(l.reassembly.max_bytes, 8 << 20);
        for (flags, key) in [
            (
                GossipLimitArgs {
                    max_clock_skew: Some("0s".into()),
                    ..GossipLimitArgs::default()
                },
                "gossip.max_clock_skew",
            ),
            (
                GossipLimitArgs {
                    source_rate: Some(0),
                    ..GossipLimitArgs::default()
                },
                "gossip.source_rate",
            ),
            (
                GossipLimitArgs {
                    replay_cache_entries: Some(0),
                    ..GossipLimitArgs::default()
                },
                "gossip.replay_cache_entries",
            ),
            (
                GossipLimitArgs {
                    reassembly_bytes_per_source: Some("1KiB".into()),
                    ..GossipLimitArgs::default()
                },
                "gossip.reassembly_bytes_per_source",
            ),
            (
                GossipLimitArgs {
                    reassembly_bytes: Some("200KiB".into()),
                    ..GossipLimitArgs::default()
                },
                "gossip.reassembly_bytes",
            ),
        ] {
            let e = resolve_limits(&flags, &FileGossip::default()).unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
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
            candidate_for("fed", Some("eu1"), &p).unwrap().address,
            "10.0.0.1:10901"
        );
        let c = candidate_for("fed", Some("us1"), &p).unwrap();
        assert_eq!(c.address, "eu1.example:443");
        assert_eq!(c.server_name.as_deref(), Some("n1.skein"));
        // Another cluster without an external address cannot be reached.
        let p = peer("eu1", vec![Role::Store], Some("10.0.0.1:10901"), None);
        assert!(candidate_for("fed", Some("us1"), &p).is_none());
        // Queriers are not stores.
        let p = peer("eu1", vec![Role::Query], Some("10.0.0.1:10901"), None);
        assert!(candidate_for("fed", Some("eu1"), &p).is_none());
    }
}
