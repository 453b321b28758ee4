//! Fuzz targets for every path where bytes from a user or a peer reach a parser, plus what
//! runs them: a capped, measuring allocator, a deterministic byte mutator and the corpus
//! layout shared by `make fuzz` (cargo-fuzz, coverage-guided) and the replay test that runs
//! in `make test` (tests/replay.rs).
//!
//! Every target is a `fn(&[u8])` that drives the real parsing code and holds it to "an
//! error or an answer": it must not panic, and [`check`] fails it when the input made the
//! code allocate more than [`MEMORY_LIMIT`] bytes at once.

pub mod alloc;
pub mod fixup;
pub mod mutate;
pub mod seeds;
pub mod targets;

pub use alloc::{CappedAlloc, MEMORY_LIMIT};

use std::path::{Path, PathBuf};

/// One fuzz target.
#[derive(Clone, Copy)]
pub struct Target {
    /// Also the name of its cargo-fuzz binary and of its corpus directory.
    pub name: &'static str,
    pub run: fn(&[u8]),
    /// Longest input worth trying (libFuzzer's `-max_len`).
    pub max_len: usize,
    /// What it drives, for `make fuzz`'s listing.
    pub what: &'static str,
}

/// Every target, in the order `make fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "promql",
        run: targets::promql::promql,
        max_len: 4096,
        what: "guarded PromQL parse entry with error positions, match[] selectors, durations",
    },
    Target {
        name: "tsdb_index",
        run: targets::tsdb::index,
        max_len: 64 * 1024,
        what: "index v2 reader: open, label names/values, postings, select, series",
    },
    Target {
        name: "tsdb_chunks",
        run: targets::tsdb::chunks,
        max_len: 64 * 1024,
        what: "chunk segment reader and the XOR decoder of every chunk in it",
    },
    Target {
        name: "tsdb_block",
        run: targets::tsdb::block,
        max_len: 128 * 1024,
        what: "a block as the store reads it: select over time windows, samples via chunk refs",
    },
    Target {
        name: "xor_chunk",
        run: targets::tsdb::xor_chunk,
        max_len: 4096,
        what: "XOR chunk decoder (and re-encoding of what it decodes)",
    },
    Target {
        name: "meta_json",
        run: targets::meta::meta_json,
        max_len: 16 * 1024,
        what: "meta.json as the tsdb crate and the bucket (objstore) read it",
    },
    Target {
        name: "remote_read_stream",
        run: targets::remote_read::stream,
        max_len: 64 * 1024,
        what: "sidecar: STREAMED_XOR_CHUNKS frame decoder and series conversion",
    },
    Target {
        name: "remote_read_samples",
        run: targets::remote_read::samples,
        max_len: 64 * 1024,
        what: "sidecar: SAMPLES (snappy) remote-read answer and its re-encoding",
    },
    Target {
        name: "store_series",
        run: targets::store::series,
        max_len: 64 * 1024,
        what: "querier: a store's Series answer through tonic's decoder and the querier's checks, merge, decoding",
    },
    Target {
        name: "gossip_datagrams",
        run: targets::gossip::datagrams,
        max_len: 64 * 1024,
        what: "sealed LAN gossip: open, replay guard, fragment reassembly within budgets",
    },
    Target {
        name: "wan_delivery",
        run: targets::wan::delivery,
        max_len: 16 * 1024,
        what: "WAN gossip: Deliver (from, payload, chitchat envelope), caller certificate, catalog shards, announcements",
    },
];

/// A target by name.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Runs `run` on `data` and panics if it allocated more than [`MEMORY_LIMIT`] bytes at
/// its peak (the allocator must be [`CappedAlloc`] for that part of the check).
pub fn check(run: fn(&[u8]), data: &[u8]) {
    let guard = alloc::measure(data);
    run(data);
    let peak = guard.finish();
    if peak > MEMORY_LIMIT {
        panic!(
            "input of {} bytes made the code hold {peak} bytes at once (limit {MEMORY_LIMIT})",
            data.len()
        );
    }
}

/// `fuzz/` in the source tree.
pub fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed seed corpus of a target: `fuzz/corpus/<name>`.
pub fn corpus_dir(name: &str) -> PathBuf {
    fuzz_dir().join("corpus").join(name)
}

/// Past crash inputs of a target, kept as regressions: `fuzz/regressions/<name>`.
pub fn regressions_dir(name: &str) -> PathBuf {
    fuzz_dir().join("regressions").join(name)
}

/// Files of a directory, sorted by name (missing directory: none).
pub fn read_inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                return None;
            }
            std::fs::read(e.path()).ok().map(|b| (name, b))
        })
        .collect();
    out.sort();
    out
}

/// Runs target `name` through [`check`] (what each cargo-fuzz binary calls).
///
/// # Panics
/// On an unknown name, and when the target fails on `data`.
pub fn run_target(name: &str, data: &[u8]) {
    let t = target(name).unwrap_or_else(|| panic!("no fuzz target named {name}"));
    check(t.run, data);
}
