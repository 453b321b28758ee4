//! The targets, by area. Each is `pub fn(&[u8])`; most read a first "mode" byte that picks
//! how the rest is prepared (checksums repaired, compressed, split) so the fuzzer reaches
//! the code behind integrity checks.

pub mod gossip;
pub mod meta;
pub mod promql;
pub mod remote_read;
pub mod store;
pub mod tsdb;
pub mod wan;

/// Splits off the mode byte (0 for an empty input).
pub(crate) fn mode(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&m, rest)) => (m, rest),
        None => (0, data),
    }
}
