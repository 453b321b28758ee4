//! Prometheus metrics of the gossip layer (prometheus-client), and the
//! rate-limited logging of dropped datagrams.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing::{debug, warn};

use crate::frame::FrameError;
use crate::replay::ReplayError;
use crate::seal::OpenError;

type Labels = Vec<(&'static str, &'static str)>;

/// At most one warning per reason per this interval; every drop is logged
/// at debug level.
pub const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// Why a received gossip datagram was dropped: the `reason` label of
/// `skein_gossip_packets_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    /// Shorter than the smallest sealed datagram.
    TooShort,
    /// Longer than the UDP limit.
    Oversize,
    /// The retired seal format v1.
    LegacyV1,
    /// Not a known seal format.
    BadVersion,
    /// Sealed under a key id we do not hold.
    UnknownKey,
    /// Failed authentication.
    AuthFailed,
    /// Authenticated, but a malformed header or frame inside.
    BadFrame,
    /// Send time outside the freshness window.
    Stale,
    /// Sealed for another recipient.
    Misdirected,
    /// Sealed by an address other than the one it came from.
    SpoofedSender,
    /// Already received within the window.
    Replayed,
    /// Replay cache full of unexpired nonces (fail closed).
    ReplayCacheFull,
    /// Over the source's (or the strangers') datagram rate.
    RateLimited,
    /// A partial message dropped to keep reassembly within its budgets.
    FragmentLimit,
    /// A source that is neither a member, a seed nor linked, refused a relay
    /// link because the budget for new links was spent.
    UnknownSource,
}

impl Reject {
    /// Every reason, in label order.
    pub const ALL: [Reject; 15] = [
        Reject::TooShort,
        Reject::Oversize,
        Reject::LegacyV1,
        Reject::BadVersion,
        Reject::UnknownKey,
        Reject::AuthFailed,
        Reject::BadFrame,
        Reject::Stale,
        Reject::Misdirected,
        Reject::SpoofedSender,
        Reject::Replayed,
        Reject::ReplayCacheFull,
        Reject::RateLimited,
        Reject::FragmentLimit,
        Reject::UnknownSource,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reject::TooShort => "too_short",
            Reject::Oversize => "oversize",
            Reject::LegacyV1 => "legacy_v1",
            Reject::BadVersion => "bad_version",
            Reject::UnknownKey => "unknown_key",
            Reject::AuthFailed => "auth_failed",
            Reject::BadFrame => "bad_frame",
            Reject::Stale => "stale",
            Reject::Misdirected => "misdirected",
            Reject::SpoofedSender => "spoofed_sender",
            Reject::Replayed => "replayed",
            Reject::ReplayCacheFull => "replay_cache_full",
            Reject::RateLimited => "rate_limited",
            Reject::FragmentLimit => "fragment_limit",
            Reject::UnknownSource => "unknown_source",
        }
    }

    fn index(self) -> usize {
        Reject::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

impl From<OpenError> for Reject {
    fn from(e: OpenError) -> Reject {
        match e {
            OpenError::TooShort => Reject::TooShort,
            OpenError::Oversize => Reject::Oversize,
            OpenError::LegacyV1 => Reject::LegacyV1,
            OpenError::BadVersion => Reject::BadVersion,
            OpenError::UnknownKey => Reject::UnknownKey,
            OpenError::Forged => Reject::AuthFailed,
            OpenError::BadInner => Reject::BadFrame,
        }
    }
}

impl From<ReplayError> for Reject {
    fn from(e: ReplayError) -> Reject {
        match e {
            ReplayError::Stale { .. } => Reject::Stale,
            ReplayError::Replayed => Reject::Replayed,
            ReplayError::CacheFull => Reject::ReplayCacheFull,
        }
    }
}

impl From<FrameError> for Reject {
    fn from(_: FrameError) -> Reject {
        Reject::BadFrame
    }
}

/// Counters and gauges of one membership instance. Clones share the values.
#[derive(Clone, Debug)]
pub struct GossipMetrics {
    rejected: Vec<Counter>,
    last_warned: Arc<Mutex<Vec<Option<Instant>>>>,
    packets_opened: Counter,
    packets_sealed: Counter,
    send_errors: Counter,
    fragmented: Counter,
    recv_errors: Counter,
    announcements_invalid: Counter,
    keyring_reloads: Counter,
    keyring_reload_errors: Counter,
    peers: Gauge,
    relay_links: Gauge,
    reassembly_bytes: Gauge,
    replay_cache_entries: Gauge,
}

impl GossipMetrics {
    /// Creates the metrics and registers them.
    ///
    /// Names (as exposed): `skein_gossip_packets_rejected_total{reason}`,
    /// `skein_gossip_packets_received_total`, `skein_gossip_packets_sent_total`,
    /// `skein_gossip_send_errors_total`, `skein_gossip_fragmented_datagrams_total`,
    /// `skein_gossip_recv_errors_total`, `skein_gossip_keyring_reloads_total`,
    /// `skein_gossip_keyring_reload_errors_total`,
    /// `skein_gossip_announcements_invalid_total`, `skein_gossip_peers`,
    /// `skein_gossip_relay_links`, `skein_gossip_reassembly_bytes`,
    /// `skein_gossip_replay_cache_entries`.
    pub fn register(registry: &mut Registry) -> GossipMetrics {
        GossipMetrics::register_as(registry, "skein_gossip")
    }

    /// Like [`GossipMetrics::register`] with another name prefix (the WAN
    /// pool uses `skein_wan_gossip`).
    pub fn register_as(registry: &mut Registry, prefix: &str) -> GossipMetrics {
        let rejected: Family<Labels, Counter> = Family::default();
        let metrics = GossipMetrics {
            rejected: Reject::ALL
                .iter()
                .map(|r| rejected.get_or_create(&vec![("reason", r.label())]).clone())
                .collect(),
            last_warned: Arc::new(Mutex::new(vec![None; Reject::ALL.len()])),
            packets_opened: Counter::default(),
            packets_sealed: Counter::default(),
            send_errors: Counter::default(),
            fragmented: Counter::default(),
            recv_errors: Counter::default(),
            announcements_invalid: Counter::default(),
            keyring_reloads: Counter::default(),
            keyring_reload_errors: Counter::default(),
            peers: Gauge::default(),
            relay_links: Gauge::default(),
            reassembly_bytes: Gauge::default(),
            replay_cache_entries: Gauge::default(),
        };
        registry.register(
            format!("{prefix}_packets_rejected"),
            "Gossip datagrams dropped, by reason: failed to open, stale, replayed, spoofed or \
             misdirected, over a rate or reassembly budget, or refused a relay link",
            rejected,
        );
        registry.register(
            format!("{prefix}_packets_received"),
            "Gossip datagrams received from the network and handed to chitchat",
            metrics.packets_opened.clone(),
        );
        registry.register(
            format!("{prefix}_packets_sent"),
            "Gossip datagrams sent to the network",
            metrics.packets_sealed.clone(),
        );
        registry.register(
            format!("{prefix}_send_errors"),
            "Gossip datagrams that could not be sealed or sent",
            metrics.send_errors.clone(),
        );
        registry.register(
            format!("{prefix}_fragmented_datagrams"),
            "Chitchat datagrams too large for one sealed datagram, sent as fragments",
            metrics.fragmented.clone(),
        );
        registry.register(
            format!("{prefix}_recv_errors"),
            "Socket errors while receiving gossip datagrams",
            metrics.recv_errors.clone(),
        );
        registry.register(
            format!("{prefix}_announcements_invalid"),
            "Peer announcements that failed to parse or validate",
            metrics.announcements_invalid.clone(),
        );
        registry.register(
            format!("{prefix}_keyring_reloads"),
            "Times a changed gossip keyring file was loaded",
            metrics.keyring_reloads.clone(),
        );
        registry.register(
            format!("{prefix}_keyring_reload_errors"),
            "Failed reads or parses of the gossip keyring file (the old keys stay)",
            metrics.keyring_reload_errors.clone(),
        );
        registry.register(
            format!("{prefix}_peers"),
            "Live and ready peers in this node's view (self excluded)",
            metrics.peers.clone(),
        );
        registry.register(
            format!("{prefix}_relay_links"),
            "Loopback relay links open (one per peer talked to recently)",
            metrics.relay_links.clone(),
        );
        registry.register(
            format!("{prefix}_reassembly_bytes"),
            "Bytes held by partial fragmented messages (payload plus bookkeeping)",
            metrics.reassembly_bytes.clone(),
        );
        registry.register(
            format!("{prefix}_replay_cache_entries"),
            "Nonces of accepted datagrams remembered to refuse replays",
            metrics.replay_cache_entries.clone(),
        );
        metrics
    }

    /// A set of metrics registered nowhere (tests, tools).
    pub fn unregistered() -> GossipMetrics {
        GossipMetrics::register(&mut Registry::default())
    }

    /// Counts a dropped datagram, logs it at debug level, and warns at most
    /// once per [`WARN_INTERVAL`] for each reason.
    pub(crate) fn reject(&self, reason: Reject, from: SocketAddr, detail: &dyn std::fmt::Display) {
        let i = reason.index();
        if let Some(c) = self.rejected.get(i) {
            c.inc();
        }
        debug!(from = %from, reason = reason.label(), "dropped gossip datagram: {detail}");
        let now = Instant::now();
        let due = {
            let mut last = self
                .last_warned
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match last.get_mut(i) {
                Some(slot) if slot.is_none_or(|t| now.duration_since(t) >= WARN_INTERVAL) => {
                    *slot = Some(now);
                    true
                }
                _ => false,
            }
        };
        if due {
            let total = self.rejected.get(i).map_or(0, Counter::get);
            warn!(
                from = %from, reason = reason.label(), total,
                "dropped gossip datagram: {detail} (further drops for this reason are logged at \
                 debug level for {}s; see skein_gossip_packets_rejected_total)",
                WARN_INTERVAL.as_secs()
            );
        }
    }

    /// Datagrams rejected so far for `reason`.
    pub fn rejected(&self, reason: Reject) -> u64 {
        self.rejected.get(reason.index()).map_or(0, Counter::get)
    }

    pub(crate) fn opened(&self) {
        self.packets_opened.inc();
    }

    pub(crate) fn sealed(&self) {
        self.packets_sealed.inc();
    }

    pub(crate) fn send_error(&self) {
        self.send_errors.inc();
    }

    pub(crate) fn fragmented(&self) {
        self.fragmented.inc();
    }

    pub(crate) fn recv_error(&self) {
        self.recv_errors.inc();
    }

    pub(crate) fn invalid_announcement(&self) {
        self.announcements_invalid.inc();
    }

    pub(crate) fn keyring_reloaded(&self) {
        self.keyring_reloads.inc();
    }

    pub(crate) fn keyring_reload_failed(&self) {
        self.keyring_reload_errors.inc();
    }

    pub(crate) fn set_peers(&self, n: usize) {
        self.peers.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Datagrams rejected so far, all reasons.
    pub fn packets_rejected(&self) -> u64 {
        self.rejected.iter().map(Counter::get).sum()
    }

    pub(crate) fn set_relay_links(&self, n: usize) {
        self.relay_links.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn set_reassembly_bytes(&self, n: usize) {
        self.reassembly_bytes
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn set_replay_cache_entries(&self, n: usize) {
        self.replay_cache_entries
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Relay links open now.
    pub fn relay_links(&self) -> u64 {
        u64::try_from(self.relay_links.get()).unwrap_or(0)
    }

    /// Bytes held by partial fragmented messages now.
    pub fn reassembly_bytes(&self) -> u64 {
        u64::try_from(self.reassembly_bytes.get()).unwrap_or(0)
    }

    /// Nonces in the replay cache now.
    pub fn replay_cache_entries(&self) -> u64 {
        u64::try_from(self.replay_cache_entries.get()).unwrap_or(0)
    }

    /// Datagrams received and handed to chitchat so far.
    pub fn packets_received(&self) -> u64 {
        self.packets_opened.get()
    }

    /// Datagrams sent so far.
    pub fn packets_sent(&self) -> u64 {
        self.packets_sealed.get()
    }

    /// Send failures so far.
    pub fn send_errors(&self) -> u64 {
        self.send_errors.get()
    }

    /// Chitchat datagrams sent as fragments so far.
    pub fn fragmented_datagrams(&self) -> u64 {
        self.fragmented.get()
    }

    /// Keyring file reloads that changed the keys so far.
    pub fn keyring_reloads(&self) -> u64 {
        self.keyring_reloads.get()
    }

    /// Failed keyring file reloads so far.
    pub fn keyring_reload_errors(&self) -> u64 {
        self.keyring_reload_errors.get()
    }

    /// Invalid peer announcements seen so far.
    pub fn announcements_invalid(&self) -> u64 {
        self.announcements_invalid.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_documented_names() {
        let mut registry = Registry::default();
        let m = GossipMetrics::register(&mut registry);
        let from: SocketAddr = "127.0.0.1:1".parse().unwrap();
        m.reject(OpenError::Forged.into(), from, &"test");
        m.reject(OpenError::TooShort.into(), from, &"test");
        m.reject(Reject::Replayed, from, &"test");
        assert_eq!(m.packets_rejected(), 3);
        assert_eq!(m.rejected(Reject::Replayed), 1);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("skein_gossip_packets_rejected_total{reason=\"auth_failed\"} 1"));
        assert!(text.contains("skein_gossip_packets_rejected_total{reason=\"unknown_key\"} 0"));
        assert!(text.contains("skein_gossip_announcements_invalid_total 0"));
        assert!(text.contains("skein_gossip_packets_rejected_total{reason=\"replayed\"} 1"));
        for r in Reject::ALL {
            let line = format!(
                "skein_gossip_packets_rejected_total{{reason=\"{}\"}}",
                r.label()
            );
            assert!(text.contains(&line), "{line}");
        }
        assert!(text.contains("skein_gossip_peers 0"));
        assert!(text.contains("skein_gossip_relay_links 0"));
        assert!(text.contains("skein_gossip_reassembly_bytes 0"));
        assert!(text.contains("skein_gossip_replay_cache_entries 0"));
    }
}
