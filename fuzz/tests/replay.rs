//! `make test`'s share of the fuzzing: every committed corpus input, every past crash
//! (fuzz/regressions) and the seeds generated at run time go through their target, then a
//! seeded mutation loop runs for a few seconds per target. Nothing here needs
//! instrumentation or nightly. A failing input is written under the target dir's
//! `fuzz-failures/<target>/` so it can be moved into fuzz/regressions.
//!
//! FUZZ_TEST_SECONDS (per target, default 3) and FUZZ_SEED change the loop.

use skein_fuzz::mutate::{Rng, mutate};
use skein_fuzz::{CappedAlloc, TARGETS, Target, check, corpus_dir, read_inputs, regressions_dir};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

/// Prints past the test harness's output capture, so `make test` shows the counts.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn failures_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("fuzz-failures")
        .join(target)
}

/// Runs one input; on a panic saves it and returns where.
fn run_one(t: &Target, data: &[u8]) -> Option<PathBuf> {
    if catch_unwind(AssertUnwindSafe(|| check(t.run, data))).is_ok() {
        return None;
    }
    let dir = failures_dir(t.name);
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("crash-{:08x}", crc32c::crc32c(data)));
    let _ = std::fs::write(&path, data);
    Some(path)
}

#[test]
fn every_target_replays_its_corpus_and_survives_mutation() {
    let seconds = env_u64("FUZZ_TEST_SECONDS", 3);
    let seed = env_u64("FUZZ_SEED", 0x5EED_F022);
    let mut failed: Vec<String> = Vec::new();
    say(&format!(
        "fuzz replay: seed {seed:#x}, {seconds} s of mutations per target"
    ));
    for t in TARGETS {
        let corpus = read_inputs(&corpus_dir(t.name));
        let regressions = read_inputs(&regressions_dir(t.name));
        let generated = skein_fuzz::seeds::generated(t.name);
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for (name, data) in corpus.iter().chain(&regressions).chain(&generated) {
            if let Some(saved) = run_one(t, data) {
                failed.push(format!(
                    "{}: input {name} (copy at {})",
                    t.name,
                    saved.display()
                ));
            }
            inputs.push(data.clone());
        }
        if inputs.is_empty() {
            inputs.push(Vec::new());
        }
        let others: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let mut rng = Rng::new(seed ^ u64::from(crc32c::crc32c(t.name.as_bytes())));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut mutations = 0u64;
        let mut target_failures = 0;
        while Instant::now() < deadline && target_failures < 5 {
            let base = others[rng.below(others.len())];
            let m = mutate(base, &others, &mut rng, t.max_len);
            mutations += 1;
            if let Some(saved) = run_one(t, &m) {
                target_failures += 1;
                failed.push(format!(
                    "{}: mutation #{mutations} (saved at {})",
                    t.name,
                    saved.display()
                ));
            }
        }
        say(&format!(
            "fuzz replay {:<20} {:>4} corpus + {:>3} regressions + {:>2} generated inputs, {:>7} mutations",
            t.name,
            corpus.len(),
            regressions.len(),
            generated.len(),
            mutations
        ));
    }
    assert!(
        failed.is_empty(),
        "inputs that failed:\n{}",
        failed.join("\n")
    );
}
