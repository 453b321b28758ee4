//! WAN gossip: one chitchat pool per federation whose datagrams ride the
//! nodes' mutual-TLS gRPC ports (`skein.gossip.v1.Wan/Deliver`), so one
//! HTTP/2 ingress per cluster carries the StoreAPI and gossip alike, and one
//! WAN seed is all a new cluster needs.
//!
//! - [`address`]: `host:port` WAN addresses and the `SocketAddr` chitchat
//!   knows each by;
//! - [`book`]: gossip address -> (`host:port`, TLS server name);
//! - [`carrier`]: [`GrpcCarrier`], the [`crate::Carrier`] that calls
//!   `Deliver` on peers; [`service`]: [`WanService`], the server side;
//! - [`catalog`]: the store catalog each member publishes for its cluster;
//! - [`pool`]: [`WanEndpoint`] and [`WanPool`], putting it together.

pub mod address;
pub mod book;
pub mod carrier;
pub mod catalog;
mod channels;
pub mod metrics;
pub mod pool;
pub mod service;

pub use address::{WanAddr, WanAddrError};
pub use book::{AddressBook, Route, RouteSource};
pub use carrier::{CarrierSettings, GrpcCarrier};
pub use catalog::{CATALOG_PREFIX, CatalogEntry, CatalogError};
pub use metrics::{DropReason, WanMetrics};
pub use pool::{CatalogPublisher, WanConfig, WanEndpoint, WanError, WanPool};
pub use service::WanService;
