//! Network namespaces and the bridged network between them.

pub mod bridge;
pub mod netns;
