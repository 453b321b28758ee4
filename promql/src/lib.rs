//! PromQL engine.
