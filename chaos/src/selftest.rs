//! Self-tests: runs with a bug injected on purpose; each must make the
//! oracle invariant fail, or the harness could not catch that bug.

use std::path::Path;
use std::time::Duration;

use crate::harness::{self, RunConfig};
use crate::invariants::Verdict;
use crate::schedule::{Fault, Window};
use crate::workload::Inject;

/// Config of one self-test run.
pub fn config(name: &str, inject: Inject, out: &Path, skein: &Path) -> RunConfig {
    let mut cfg = RunConfig::new(
        7,
        Duration::from_secs(60),
        out.join(name),
        skein.to_path_buf(),
    );
    cfg.tag = format!("{}-", &name[..2.min(name.len())]);
    cfg.inject = inject;
    cfg.qps = 4.0;
    cfg.script = Some(match inject {
        // Dropped warnings only show when an answer is partial: cut the
        // clusters apart so each querier loses the other cluster.
        Inject::DropWarnings => vec![Window {
            id: 0,
            start_s: 10.0,
            end_s: 35.0,
            fault: Fault::Partition { a: 0, b: 1 },
        }],
        _ => vec![],
    });
    cfg
}

/// Runs one injected bug; true when the oracle invariant failed.
pub fn detect(cfg: RunConfig) -> anyhow::Result<(bool, String)> {
    let r = harness::run(cfg)?;
    let inv = r
        .invariants
        .iter()
        .find(|i| i.name == "no_silent_wrong_answer")
        .ok_or_else(|| anyhow::anyhow!("no oracle invariant in the report"))?;
    Ok((inv.verdict == Verdict::Fail, inv.detail.clone()))
}

/// Every self-test: (name, detected, detail).
pub fn run_all(out: &Path, skein: &Path) -> anyhow::Result<Vec<(String, bool, String)>> {
    let mut res = Vec::new();
    for (name, inject) in [
        ("drop-warnings", Inject::DropWarnings),
        ("no-dedup", Inject::NoDedup),
    ] {
        let (d, detail) = detect(config(name, inject, out, skein))?;
        res.push((name.to_string(), d, detail));
    }
    Ok(res)
}
