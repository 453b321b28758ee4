//! The peer view: live chitchat nodes turned into ready peers with parsed
//! announcements, and the difference between two views.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use chitchat::{ChitchatId, NodeState, Version};
use tracing::warn;

use crate::announcement::{self, Announcement, AnnouncementError};
use crate::metrics::GossipMetrics;

/// A live and ready peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub node_id: String,
    /// Incarnation: the peer's start time in ns. A restart is a new generation.
    pub generation: u64,
    /// The address the peer gossips on.
    pub gossip_addr: SocketAddr,
    pub announcement: Announcement,
}

/// One change between two views, keyed by node id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerChange {
    Joined(Peer),
    Left(Peer),
    /// Same node id, new announcement or new generation (a restart).
    Changed {
        old: Box<Peer>,
        new: Box<Peer>,
    },
}

/// The changes that turn `old` into `new` (both as produced by the view: one
/// entry per node id).
pub fn diff(old: &[Peer], new: &[Peer]) -> Vec<PeerChange> {
    let old_by_id: HashMap<&str, &Peer> = old.iter().map(|p| (p.node_id.as_str(), p)).collect();
    let new_by_id: HashMap<&str, &Peer> = new.iter().map(|p| (p.node_id.as_str(), p)).collect();
    let mut changes = Vec::new();
    for p in new {
        match old_by_id.get(p.node_id.as_str()) {
            None => changes.push(PeerChange::Joined(p.clone())),
            Some(o) if *o != p => changes.push(PeerChange::Changed {
                old: Box::new((*o).clone()),
                new: Box::new(p.clone()),
            }),
            Some(_) => {}
        }
    }
    for o in old {
        if !new_by_id.contains_key(o.node_id.as_str()) {
            changes.push(PeerChange::Left(o.clone()));
        }
    }
    changes
}

/// Read access to a node's keys (chitchat's `NodeState`, or a map in tests).
pub(crate) trait KeySource {
    fn version(&self) -> Version;
    fn key(&self, key: &str) -> Option<&str>;
}

impl KeySource for NodeState {
    fn version(&self) -> Version {
        self.max_version()
    }

    fn key(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

/// Builds views, parsing a node's keys only when its version changed (so a
/// bad announcement is counted once, not on every rebuild).
pub(crate) struct ViewBuilder {
    self_id: ChitchatId,
    cache: HashMap<ChitchatId, (Version, Option<Peer>)>,
    metrics: GossipMetrics,
}

impl ViewBuilder {
    pub(crate) fn new(self_id: ChitchatId, metrics: GossipMetrics) -> ViewBuilder {
        ViewBuilder {
            self_id,
            cache: HashMap::new(),
            metrics,
        }
    }

    /// Ready peers among `live`, sorted by node id, self excluded; when two
    /// generations of a node are both live, the newer one wins.
    pub(crate) fn build<'a, S: KeySource + 'a>(
        &mut self,
        live: impl IntoIterator<Item = (&'a ChitchatId, &'a S)>,
    ) -> Vec<Peer> {
        let mut seen: Vec<ChitchatId> = Vec::new();
        let mut best: BTreeMap<String, Peer> = BTreeMap::new();
        for (id, state) in live {
            if id.node_id == self.self_id.node_id {
                continue;
            }
            seen.push(id.clone());
            let version = state.version();
            let peer = match self.cache.get(id) {
                Some((v, peer)) if *v == version => peer.clone(),
                _ => {
                    let peer = self.parse(id, state);
                    self.cache.insert(id.clone(), (version, peer.clone()));
                    peer
                }
            };
            if let Some(peer) = peer {
                let newer = best
                    .get(&peer.node_id)
                    .is_none_or(|b| b.generation < peer.generation);
                if newer {
                    best.insert(peer.node_id.clone(), peer);
                }
            }
        }
        self.cache.retain(|id, _| seen.contains(id));
        let peers: Vec<Peer> = best.into_values().collect();
        self.metrics.set_peers(peers.len());
        peers
    }

    fn parse<S: KeySource>(&self, id: &ChitchatId, state: &S) -> Option<Peer> {
        match parse_peer(id, state) {
            Ok(peer) => peer,
            // Keys still on their way: not an error, just not a peer yet.
            Err(AnnouncementError::Missing(_)) => None,
            Err(e) => {
                self.metrics.invalid_announcement();
                warn!(node = ?id, error = %e, "ignoring peer with an invalid announcement");
                None
            }
        }
    }
}

fn parse_peer<S: KeySource>(id: &ChitchatId, state: &S) -> Result<Option<Peer>, AnnouncementError> {
    if !announcement::parse_ready(state.key(announcement::KEY_READY))? {
        return Ok(None);
    }
    let ann = Announcement::from_key_values(|k| state.key(k))?;
    if ann.node_id != *id.node_id {
        return Err(AnnouncementError::Invalid {
            field: "node_id",
            reason: "differs from the gossip identity",
        });
    }
    Ok(Some(Peer {
        node_id: ann.node_id.clone(),
        generation: id.generation_id,
        gossip_addr: id.gossip_advertise_addr,
        announcement: ann,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announcement::{KEY_NODE, KEY_READY, ready_value};

    struct Fake {
        version: Version,
        keys: HashMap<String, String>,
    }

    impl KeySource for Fake {
        fn version(&self) -> Version {
            self.version
        }
        fn key(&self, key: &str) -> Option<&str> {
            self.keys.get(key).map(String::as_str)
        }
    }

    fn id(name: &str, generation: u64, port: u16) -> ChitchatId {
        ChitchatId::new(name, generation, ([127, 0, 0, 2], port).into())
    }

    fn node(name: &str, ready: bool, version: Version) -> Fake {
        let mut keys: HashMap<String, String> = Announcement::new(name, "c")
            .to_key_values()
            .unwrap()
            .into_iter()
            .collect();
        keys.insert(KEY_READY.into(), ready_value(ready).into());
        Fake { version, keys }
    }

    fn builder() -> (ViewBuilder, GossipMetrics) {
        let m = GossipMetrics::unregistered();
        (ViewBuilder::new(id("self", 1, 1), m.clone()), m)
    }

    #[test]
    fn ready_peers_only_self_excluded_sorted() {
        let (mut b, _) = builder();
        let nodes = [
            (id("self", 1, 1), node("self", true, 3)),
            (id("b", 1, 3), node("b", true, 3)),
            (id("a", 1, 2), node("a", true, 3)),
            (id("c", 1, 4), node("c", false, 3)),
        ];
        let view = b.build(nodes.iter().map(|(i, s)| (i, s)));
        let names: Vec<&str> = view.iter().map(|p| p.node_id.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(view[0].gossip_addr.port(), 2);
    }

    #[test]
    fn newest_generation_wins_and_bad_values_counted_once() {
        let (mut b, m) = builder();
        let mut bad = node("x", true, 5);
        bad.keys.insert(KEY_NODE.into(), "{broken".into());
        let mut impostor = node("y", true, 5);
        impostor.keys = node("someone-else", true, 5).keys;
        let mut incomplete = node("z", true, 5);
        incomplete.keys.remove(KEY_NODE);
        let nodes = [
            (id("a", 1, 2), node("a", true, 3)),
            (id("a", 2, 2), node("a", true, 1)),
            (id("x", 1, 5), bad),
            (id("y", 1, 6), impostor),
            (id("z", 1, 7), incomplete),
        ];
        for _ in 0..3 {
            let view = b.build(nodes.iter().map(|(i, s)| (i, s)));
            assert_eq!(view.len(), 1);
            assert_eq!(view[0].generation, 2);
        }
        assert_eq!(m.announcements_invalid(), 2);
    }

    #[test]
    fn diff_reports_join_leave_change_restart() {
        let (mut b, _) = builder();
        let a1 = (id("a", 1, 2), node("a", true, 3));
        let b1 = (id("b", 1, 3), node("b", true, 3));
        let v1 = b.build([(&a1.0, &a1.1), (&b1.0, &b1.1)]);
        let a2 = (id("a", 2, 2), node("a", true, 1));
        let c1 = (id("c", 1, 4), node("c", true, 1));
        let v2 = b.build([(&a2.0, &a2.1), (&c1.0, &c1.1)]);
        let changes = diff(&v1, &v2);
        assert_eq!(changes.len(), 3);
        assert!(
            changes
                .iter()
                .any(|c| matches!(c, PeerChange::Changed { old, new }
            if old.generation == 1 && new.generation == 2))
        );
        assert!(
            changes
                .iter()
                .any(|c| matches!(c, PeerChange::Joined(p) if p.node_id == "c"))
        );
        assert!(
            changes
                .iter()
                .any(|c| matches!(c, PeerChange::Left(p) if p.node_id == "b"))
        );
        assert!(diff(&v2, &v2).is_empty());
    }
}
