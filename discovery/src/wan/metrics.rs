//! Metrics of the WAN carrier beyond the pool's [`crate::GossipMetrics`]
//! (which it shares for sent, received and send errors).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

/// Why a WAN datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The receive queue was full (the pool cannot keep up).
    QueueFull,
    /// Empty or oversized payload.
    BadDatagram,
    /// The sender's `from` is not a `host:port` address.
    BadFrom,
    /// chitchat sent to an address the address book does not know.
    UnknownPeer,
    /// The pool is stopped (or not started yet).
    Stopped,
    /// The caller's certificate names no Skein identity of this federation
    /// (or there is no certificate on a TLS connection).
    NoIdentity,
    /// The datagram's `from` host is not a SAN of the caller's certificate.
    FromMismatch,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::BadDatagram => "bad_datagram",
            DropReason::BadFrom => "bad_from",
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::Stopped => "stopped",
            DropReason::NoIdentity => "no_identity",
            DropReason::FromMismatch => "from_mismatch",
        }
    }
}

/// Clones share the values.
#[derive(Clone, Debug, Default)]
pub struct WanMetrics {
    dropped: Family<Labels, Counter>,
    channels: Gauge,
    catalog_invalid: Counter,
    catalog_entries: Gauge,
    catalog_rejected: Family<Labels, Counter>,
}

impl WanMetrics {
    /// Registers `wan_gossip_datagrams_dropped_total{reason}`,
    /// `wan_gossip_channels`, `wan_gossip_catalog_entries`,
    /// `wan_gossip_catalog_entries_invalid_total` and
    /// `wan_gossip_catalog_rejected_total{reason}` (under the registry's
    /// prefix).
    pub fn register(registry: &mut Registry) -> WanMetrics {
        let m = WanMetrics::default();
        registry.register(
            "wan_gossip_datagrams_dropped",
            "WAN gossip datagrams dropped, by reason",
            m.dropped.clone(),
        );
        registry.register(
            "wan_gossip_channels",
            "gRPC channels to WAN peers currently cached",
            m.channels.clone(),
        );
        registry.register(
            "wan_gossip_catalog_entries",
            "Store catalog entries published by the other live WAN members (merged)",
            m.catalog_entries.clone(),
        );
        registry.register(
            "wan_gossip_catalog_entries_invalid",
            "Store catalog entries from WAN peers that failed validation",
            m.catalog_invalid.clone(),
        );
        registry.register(
            "wan_gossip_catalog_rejected",
            "Store catalog shards or entries from WAN peers refused (unsigned, bad signature or certificate, another cluster's entries, over the size caps, ...), by reason",
            m.catalog_rejected.clone(),
        );
        for r in crate::wan::catalog::Rejection::ALL {
            let _ = m
                .catalog_rejected
                .get_or_create(&vec![("reason", r.as_str())]);
        }
        m
    }

    pub fn unregistered() -> WanMetrics {
        WanMetrics::default()
    }

    pub(crate) fn dropped(&self, reason: DropReason) {
        self.dropped
            .get_or_create(&vec![("reason", reason.as_str())])
            .inc();
    }

    pub(crate) fn set_channels(&self, n: usize) {
        self.channels.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn catalog_invalid(&self, n: usize) {
        self.catalog_invalid
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    pub(crate) fn catalog_rejected(&self, reason: crate::wan::catalog::Rejection) {
        self.catalog_rejected
            .get_or_create(&vec![("reason", reason.as_str())])
            .inc();
    }

    /// Catalog refusals for `reason` so far.
    pub fn catalog_rejected_count(&self, reason: crate::wan::catalog::Rejection) -> u64 {
        self.catalog_rejected
            .get_or_create(&vec![("reason", reason.as_str())])
            .get()
    }

    pub(crate) fn set_catalog_entries(&self, n: usize) {
        self.catalog_entries
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Entries in the merged catalog of the other members.
    pub fn catalog_entries(&self) -> i64 {
        self.catalog_entries.get()
    }

    /// Datagrams dropped for `reason` so far.
    pub fn dropped_count(&self, reason: DropReason) -> u64 {
        self.dropped
            .get_or_create(&vec![("reason", reason.as_str())])
            .get()
    }

    /// Catalog entries refused so far.
    pub fn catalog_entries_invalid(&self) -> u64 {
        self.catalog_invalid.get()
    }
}
