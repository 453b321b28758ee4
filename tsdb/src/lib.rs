//! Prometheus TSDB formats: XOR chunks, chunk segment files, index v2, block meta.json, and
//! block reading/writing over byte ranges.

pub mod block;
pub mod chunkenc;
pub mod chunks;
pub mod encoding;
pub mod index;
pub mod labels;
pub mod range;
pub mod ulid;

pub use labels::Label;
pub use range::{FileRange, RangeRead};
pub use ulid::Ulid;
