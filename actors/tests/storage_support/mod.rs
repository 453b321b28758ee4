//! Test support for the shipper and store tests: real Prometheus blocks written by promtool,
//! and the samples they hold.
#![allow(dead_code)]

#[path = "../../../objstore/tests/support/garage.rs"]
pub mod garage;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A series' labels, sorted by name, `__name__` included.
pub type SeriesLabels = Vec<(String, String)>;
/// Every sample per series.
pub type Samples = BTreeMap<SeriesLabels, Vec<(i64, f64)>>;

/// Start of the generated data (ms); two-hour aligned.
pub const START_MS: i64 = 1_699_999_200_000;

/// OpenMetrics text (ending in `# EOF`) for `series` instances of two gauges sampled every
/// 15 s for `hours` hours from `start_ms`, and the samples it holds.
pub fn openmetrics(series: usize, hours: i64, start_ms: i64) -> (String, Samples) {
    let mut text = String::new();
    let mut samples = Samples::new();
    for (name, help) in [("node_temp", "temperature"), ("node_load", "load")] {
        writeln!(text, "# HELP {name} {help}").unwrap();
        writeln!(text, "# TYPE {name} gauge").unwrap();
        for s in 0..series {
            let job = if s % 2 == 0 { "api" } else { "db" };
            let inst = format!("host-{s}");
            let labels: SeriesLabels = vec![
                ("__name__".into(), name.into()),
                ("instance".into(), inst.clone()),
                ("job".into(), job.into()),
            ];
            let v = samples.entry(labels).or_default();
            let mut t = start_ms;
            let mut i = 0u64;
            while t < start_ms + hours * 3_600_000 {
                let val = (s as f64) * 1000.0
                    + (i as f64) * 0.25
                    + if name == "node_load" { 0.5 } else { 0.0 };
                writeln!(
                    text,
                    "{name}{{instance=\"{inst}\",job=\"{job}\"}} {val} {}",
                    t / 1000
                )
                .unwrap();
                v.push((t, val));
                t += 15_000;
                i += 1;
            }
        }
    }
    text.push_str("# EOF\n");
    (text, samples)
}

/// Writes [`openmetrics`] data from [`START_MS`] and turns it into TSDB blocks under `out`
/// with `promtool tsdb create-blocks-from openmetrics`.
pub fn promtool_blocks(out: &Path, series: usize, hours: i64) -> Samples {
    std::fs::create_dir_all(out).unwrap();
    let (text, samples) = openmetrics(series, hours, START_MS);
    let input = out.join("input.om");
    std::fs::write(&input, text).unwrap();
    let st = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(out)
        .output()
        .expect("promtool not runnable");
    assert!(
        st.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    std::fs::remove_file(&input).unwrap();
    samples
}

/// A directory that looks like a running Prometheus's: promtool blocks plus a WAL, a head
/// chunks dir, an in-progress block dir and a lock file.
pub fn prometheus_data_dir(dir: &Path, series: usize, hours: i64) -> Samples {
    let samples = promtool_blocks(dir, series, hours);
    std::fs::create_dir_all(dir.join("wal")).unwrap();
    std::fs::write(dir.join("wal/00000000"), b"wal bytes").unwrap();
    std::fs::create_dir_all(dir.join("chunks_head")).unwrap();
    std::fs::write(dir.join("chunks_head/000001"), b"head").unwrap();
    let tmp = dir.join("01HZZZZZZZZZZZZZZZZZZZZZZZ.tmp-for-creation");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("index"), b"partial").unwrap();
    std::fs::write(dir.join("lock"), b"").unwrap();
    samples
}

/// The block dirs (ULID-named) under `dir`, sorted.
pub fn block_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.len() == 26 && !n.contains('.'))
        })
        .collect();
    v.sort();
    v
}

/// Every file under `dir` with its content, for before/after comparisons; `skip` names
/// top-level entries to leave out.
pub fn snapshot(dir: &Path, skip: &[&str]) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, d: &Path, skip: &[&str], out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if rel.components().count() == 1 && skip.iter().any(|s| rel.to_str() == Some(*s)) {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, skip, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, skip, &mut out);
    out
}
