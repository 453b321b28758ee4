//! The Prometheus HTTP API of the querier (being written).
