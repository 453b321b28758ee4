//! Key families beyond the announcement: a node publishes a list of values
//! under `{prefix}0`, `{prefix}1`, ... (each value one key, so a long list
//! never has to fit one key), and readers watch the values every live,
//! ready peer publishes under a prefix. The WAN store catalog rides on this.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use chitchat::Chitchat;
use tokio::sync::{Mutex, watch};

use crate::announcement::{self, MAX_VALUE_BYTES};
use crate::membership::{Membership, MembershipError};

/// Prefixes of the announcement's own keys; extra families may not use them.
const RESERVED: [&str; 4] = [
    announcement::KEY_NODE,
    announcement::KEY_STORE,
    announcement::KEY_LABELS,
    announcement::KEY_READY,
];
const MAX_PREFIX: usize = 64;
/// Bound on the values of one family (keeps a node's state small).
pub const MAX_VALUES: usize = 256;

/// The values a live and ready peer publishes under one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerValues {
    pub node_id: String,
    /// The peer's generation (start time in ns).
    pub generation: u64,
    /// The address the peer gossips on.
    pub gossip_addr: SocketAddr,
    /// The values, ordered by their index.
    pub values: Vec<String>,
    /// The key of each value (`{prefix}{index}`), same order.
    pub keys: Vec<String>,
}

fn check_prefix(prefix: &str) -> Result<(), MembershipError> {
    let bad = |why: &str| MembershipError::Config(format!("key prefix {prefix:?}: {why}"));
    if prefix.is_empty() || prefix.len() > MAX_PREFIX {
        return Err(bad("must be 1 to 64 bytes"));
    }
    if !prefix.ends_with('/') {
        return Err(bad("must end with '/'"));
    }
    if RESERVED
        .iter()
        .any(|r| prefix.starts_with(r) || r.starts_with(prefix))
    {
        return Err(bad("overlaps the announcement's keys"));
    }
    Ok(())
}

/// The index of `key` in the family `prefix`, if it is one of its keys.
fn index_of(prefix: &str, key: &str) -> Option<usize> {
    let rest = key.strip_prefix(prefix)?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) || rest.len() > 4 {
        return None;
    }
    rest.parse().ok()
}

/// Publishes one key family of a node; cheap to clone, usable from tasks
/// that do not own the [`Membership`]. Writes after the membership stopped
/// go nowhere.
#[derive(Clone)]
pub struct ValuesPublisher {
    chitchat: Option<Arc<Mutex<Chitchat>>>,
    prefix: String,
}

impl ValuesPublisher {
    /// The family's prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Publishes `values` under `{prefix}0..`, deleting this node's keys of
    /// the family that are no longer needed. Each value must fit
    /// [`MAX_VALUE_BYTES`]; at most [`MAX_VALUES`] values.
    pub async fn publish(&self, values: &[String]) -> Result<(), MembershipError> {
        let prefix = self.prefix.as_str();
        if values.len() > MAX_VALUES {
            return Err(MembershipError::Config(format!(
                "{} values under {prefix:?}, at most {MAX_VALUES}",
                values.len()
            )));
        }
        if let Some(v) = values.iter().find(|v| v.len() > MAX_VALUE_BYTES) {
            return Err(MembershipError::Config(format!(
                "a value under {prefix:?} is {} bytes, over {MAX_VALUE_BYTES}",
                v.len()
            )));
        }
        let Some(chitchat) = &self.chitchat else {
            return Ok(());
        };
        let mut guard = chitchat.lock().await;
        let state = guard.self_node_state();
        {
            let stale: Vec<String> = state
                .iter_prefix(prefix)
                .filter(|(k, _)| index_of(prefix, k).is_some_and(|i| i >= values.len()))
                .map(|(k, _)| k.to_string())
                .collect();
            for (i, v) in values.iter().enumerate() {
                state.set(format!("{prefix}{i}"), v);
            }
            for k in stale {
                state.delete(&k);
            }
        }
        Ok(())
    }
}

impl Membership {
    /// A publisher of the key family `prefix` (which must end with `/` and
    /// must not overlap the announcement's keys).
    pub fn values_publisher(&self, prefix: &str) -> Result<ValuesPublisher, MembershipError> {
        check_prefix(prefix)?;
        Ok(ValuesPublisher {
            chitchat: self.chitchat(),
            prefix: prefix.to_string(),
        })
    }

    /// Publishes `values` under `{prefix}0..` (see [`ValuesPublisher::publish`]).
    pub async fn publish_values(
        &self,
        prefix: &str,
        values: &[String],
    ) -> Result<(), MembershipError> {
        self.values_publisher(prefix)?.publish(values).await
    }

    /// A receiver of the values every live and ready peer (self excluded)
    /// publishes under `prefix`, one entry per node id (the newest
    /// generation), sorted by node id. Peers without such keys are left out.
    /// It changes when any peer's state changes.
    pub async fn watch_values(
        &self,
        prefix: &str,
    ) -> Result<watch::Receiver<Arc<Vec<PeerValues>>>, MembershipError> {
        check_prefix(prefix)?;
        let (tx, rx) = watch::channel(Arc::new(Vec::new()));
        let Some(chitchat) = self.chitchat() else {
            return Ok(rx);
        };
        let mut live_rx = chitchat.lock().await.live_nodes_watcher();
        let self_node = self.self_id().node_id.to_string();
        let prefix = prefix.to_string();
        tokio::spawn(async move {
            loop {
                let values = {
                    let live = live_rx.borrow_and_update();
                    collect(&prefix, &self_node, live.iter())
                };
                tx.send_if_modified(|current| {
                    if current.as_slice() == values.as_slice() {
                        false
                    } else {
                        *current = Arc::new(values);
                        true
                    }
                });
                tokio::select! {
                    changed = live_rx.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(rx)
    }
}

fn collect<'a>(
    prefix: &str,
    self_node: &str,
    live: impl Iterator<Item = (&'a chitchat::ChitchatId, &'a chitchat::NodeState)>,
) -> Vec<PeerValues> {
    let mut best: BTreeMap<String, PeerValues> = BTreeMap::new();
    for (id, state) in live {
        if *id.node_id == *self_node {
            continue;
        }
        if !matches!(
            announcement::parse_ready(state.get(announcement::KEY_READY)),
            Ok(true)
        ) {
            continue;
        }
        let mut indexed: Vec<(usize, String)> = state
            .iter_prefix(prefix)
            .filter_map(|(k, v)| Some((index_of(prefix, k)?, v.value.clone())))
            .collect();
        if indexed.is_empty() {
            continue;
        }
        indexed.sort_by_key(|(i, _)| *i);
        indexed.truncate(MAX_VALUES);
        let pv = PeerValues {
            node_id: id.node_id.to_string(),
            generation: id.generation_id,
            gossip_addr: id.gossip_advertise_addr,
            keys: indexed
                .iter()
                .map(|(i, _)| format!("{prefix}{i}"))
                .collect(),
            values: indexed.into_iter().map(|(_, v)| v).collect(),
        };
        let newer = best
            .get(&pv.node_id)
            .is_none_or(|b| b.generation < pv.generation);
        if newer {
            best.insert(pv.node_id.clone(), pv);
        }
    }
    best.into_values().collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chitchat::transport::ChannelTransport;

    use super::*;
    use crate::announcement::Announcement;
    use crate::carrier::GossipSecurity;
    use crate::membership::{FailureDetection, MembershipConfig};
    use crate::metrics::GossipMetrics;

    async fn start(name: &str, port: u16, seed: Option<u16>, t: &ChannelTransport) -> Membership {
        let at: SocketAddr = ([10, 0, 0, 2], port).into();
        let mut cfg =
            MembershipConfig::new(name, "fed", "keys", at, GossipSecurity::InsecurePlaintext);
        cfg.seeds = seed
            .map(|p| SocketAddr::from(([10, 0, 0, 2], p)).to_string())
            .into_iter()
            .collect();
        cfg.gossip_interval = Duration::from_millis(50);
        cfg.failure_detection = FailureDetection {
            phi_threshold: 12.0,
            initial_interval: Duration::from_millis(50),
            max_interval: Duration::from_secs(2),
            dead_node_grace_period: Duration::from_secs(60),
        };
        Membership::start_on(
            cfg,
            at,
            at,
            Announcement::new(name, "keys"),
            t,
            GossipMetrics::unregistered(),
            None,
        )
        .await
        .unwrap()
    }

    async fn until(
        rx: &mut watch::Receiver<Arc<Vec<PeerValues>>>,
        f: impl Fn(&[PeerValues]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if f(&rx.borrow_and_update()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return f(&rx.borrow());
            }
        }
    }

    #[tokio::test]
    async fn values_propagate_shrink_and_need_readiness() {
        let t = ChannelTransport::with_mtu(65_507);
        let a = start("a", 1, None, &t).await;
        let b = start("b", 2, Some(1), &t).await;
        b.set_ready(true).await;
        let mut rx = a.watch_values("test:v/").await.unwrap();
        let three: Vec<String> = ["x", "y", "z"].iter().map(|s| s.to_string()).collect();
        b.publish_values("test:v/", &three).await.unwrap();
        assert!(until(&mut rx, |v| v.len() == 1 && v[0].values == three).await);
        assert_eq!(rx.borrow()[0].node_id, "b");
        // Shrinking deletes the stale keys.
        b.publish_values("test:v/", &["w".to_string()])
            .await
            .unwrap();
        assert!(until(&mut rx, |v| v.len() == 1 && v[0].values == ["w"]).await);
        // A peer that is not ready is not listed.
        b.set_ready(false).await;
        assert!(until(&mut rx, |v| v.is_empty()).await);
        // Refused: reserved or malformed prefixes, oversized values.
        assert!(b.publish_values("skein:store/", &[]).await.is_err());
        assert!(b.publish_values("nope", &[]).await.is_err());
        let big = "x".repeat(MAX_VALUE_BYTES + 1);
        assert!(b.publish_values("test:v/", &[big]).await.is_err());
        assert!(a.watch_values("skein:node/").await.is_err());
        a.shutdown().await;
        b.shutdown().await;
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("skein:catalog/").is_ok());
        assert!(check_prefix("skein:catalog").is_err());
        assert!(check_prefix("").is_err());
        assert!(check_prefix("skein:store/").is_err());
        assert!(check_prefix("skein:ready/").is_err());
        assert!(check_prefix(&format!("{}/", "x".repeat(80))).is_err());
    }

    #[test]
    fn indexes_are_digits_only() {
        assert_eq!(index_of("p/", "p/0"), Some(0));
        assert_eq!(index_of("p/", "p/12"), Some(12));
        assert_eq!(index_of("p/", "p/"), None);
        assert_eq!(index_of("p/", "p/x"), None);
        assert_eq!(index_of("p/", "p/-1"), None);
        assert_eq!(index_of("p/", "p/99999"), None);
        assert_eq!(index_of("p/", "q/1"), None);
    }
}
