//! Differential testing of Skein's PromQL against a live Prometheus 2.42: the
//! same generated data, the same queries (hundreds, from templates per query
//! family), once directly on Prometheus and once through a Skein querier over a
//! sidecar on that Prometheus; answers must be equal (series as sets, values
//! within 1e-9 relative, NaN == NaN) after adding the sidecar's external labels
//! to Prometheus' series where they survive the query.
//!
//! - [`setup`]: Prometheus on generated blocks plus a live-scraped flapping
//!   target ([`flapper`]) for real staleness markers; sidecar; querier.
//! - [`queries`]: the templates and the seeded query generator.
//! - [`semantics`]: 2.42 vs 3 differences and how queries avoid them.
//! - [`runner`]: running, comparing, printing mismatches and the table.

pub mod flapper;
pub mod queries;
pub mod runner;
pub mod semantics;
pub mod setup;
