//! Prometheus metrics of the gossip layer (prometheus-client).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::seal::OpenError;

type Labels = Vec<(&'static str, &'static str)>;

/// Counters and gauges of one membership instance. Clones share the values.
#[derive(Clone, Debug)]
pub struct GossipMetrics {
    too_short: Counter,
    unknown_key: Counter,
    auth_failed: Counter,
    bad_frame: Counter,
    packets_opened: Counter,
    packets_sealed: Counter,
    send_errors: Counter,
    fragmented: Counter,
    recv_errors: Counter,
    announcements_invalid: Counter,
    keyring_reloads: Counter,
    keyring_reload_errors: Counter,
    peers: Gauge,
}

impl GossipMetrics {
    /// Creates the metrics and registers them.
    ///
    /// Names (as exposed): `skein_gossip_packets_rejected_total{reason}`,
    /// `skein_gossip_packets_received_total`, `skein_gossip_packets_sent_total`,
    /// `skein_gossip_send_errors_total`, `skein_gossip_fragmented_datagrams_total`,
    /// `skein_gossip_recv_errors_total`, `skein_gossip_keyring_reloads_total`,
    /// `skein_gossip_keyring_reload_errors_total`,
    /// `skein_gossip_announcements_invalid_total`, `skein_gossip_peers`.
    pub fn register(registry: &mut Registry) -> GossipMetrics {
        GossipMetrics::register_as(registry, "skein_gossip")
    }

    /// Like [`GossipMetrics::register`] with another name prefix (the WAN
    /// pool uses `skein_wan_gossip`).
    pub fn register_as(registry: &mut Registry, prefix: &str) -> GossipMetrics {
        let rejected: Family<Labels, Counter> = Family::default();
        let reason = |r: &'static str| rejected.get_or_create(&vec![("reason", r)]).clone();
        let metrics = GossipMetrics {
            too_short: reason(OpenError::TooShort.reason()),
            unknown_key: reason(OpenError::UnknownKey.reason()),
            auth_failed: reason(OpenError::Forged.reason()),
            bad_frame: reason("bad_frame"),
            packets_opened: Counter::default(),
            packets_sealed: Counter::default(),
            send_errors: Counter::default(),
            fragmented: Counter::default(),
            recv_errors: Counter::default(),
            announcements_invalid: Counter::default(),
            keyring_reloads: Counter::default(),
            keyring_reload_errors: Counter::default(),
            peers: Gauge::default(),
        };
        registry.register(
            format!("{prefix}_packets_rejected"),
            "Gossip datagrams dropped: failed to open under the keyring, or a malformed frame inside",
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
        metrics
    }

    /// A set of metrics registered nowhere (tests, tools).
    pub fn unregistered() -> GossipMetrics {
        GossipMetrics::register(&mut Registry::default())
    }

    pub(crate) fn rejected(&self, err: OpenError) {
        match err {
            OpenError::TooShort => self.too_short.inc(),
            OpenError::UnknownKey => self.unknown_key.inc(),
            OpenError::Forged => self.auth_failed.inc(),
        };
    }

    pub(crate) fn bad_frame(&self) {
        self.bad_frame.inc();
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
        self.too_short.get()
            + self.unknown_key.get()
            + self.auth_failed.get()
            + self.bad_frame.get()
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
        m.rejected(OpenError::Forged);
        m.rejected(OpenError::TooShort);
        assert_eq!(m.packets_rejected(), 2);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("skein_gossip_packets_rejected_total{reason=\"auth_failed\"} 1"));
        assert!(text.contains("skein_gossip_packets_rejected_total{reason=\"unknown_key\"} 0"));
        assert!(text.contains("skein_gossip_announcements_invalid_total 0"));
        assert!(text.contains("skein_gossip_peers 0"));
    }
}
