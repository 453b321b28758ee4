//! Prometheus TSDB formats: XOR chunks and (later) blocks.

pub mod chunkenc;
pub mod encoding;
