//! The sidecar actor: a Prometheus served over the StoreAPI.
