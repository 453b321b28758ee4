//! Skein membership: nodes find each other by chitchat gossip. Each node
//! publishes a small versioned announcement (its StoreAPI endpoint, roles,
//! labels, time range, readiness); every LAN datagram is sealed with an AEAD
//! under a rotating keyring by a loopback relay in front of unmodified
//! chitchat. See README.md for the design.

pub mod announcement;
pub mod carrier;
pub mod extra_keys;
pub mod frame;
pub mod keyring;
pub mod membership;
pub mod metrics;
pub mod ratelimit;
pub mod relay;
mod reload;
pub mod replay;
pub mod seal;
pub mod view;
pub mod wan;

#[cfg(test)]
mod pool_tests;

pub use announcement::{Announcement, AnnouncementError, LabelSet, Role};
pub use carrier::{Carrier, CarrierError, GossipLimits, GossipSecurity, UdpCarrier};
pub use extra_keys::{PeerValues, ValuesPublisher};
pub use frame::ReassemblyLimits;
pub use keyring::{Keyring, KeyringError};
pub use membership::{FailureDetection, Membership, MembershipConfig, MembershipError, PoolScope};
pub use metrics::{GossipMetrics, Reject};
pub use relay::{Relay, RelayError};
pub use view::{Peer, PeerChange, diff};

/// chitchat's node identity, returned by `Membership::self_id`.
pub use chitchat::ChitchatId;
