//! Runs Prometheus's own promqltest files (shared/promql-testdata) against
//! the engine and fails if fewer cases pass than the floors below.
//!
//! `cargo test -p skein-promql --test conformance -- --nocapture` prints a
//! table; `PROMQL_CONFORMANCE_VERBOSE=1` (or a file name prefix) also lists
//! every failing and skipped case of experimental files.

use std::path::PathBuf;

use skein_promql::promqltest::{Outcome, Runner, parse_script};

/// Files that need experimental Prometheus 3 features (see the testdata
/// README); counted separately.
const EXPERIMENTAL: [&str; 8] = [
    "extended_vectors.test",
    "fill-modifier.test",
    "info.test",
    "duration_expression.test",
    "type_and_unit.test",
    "start_timestamps.test",
    "name_label_dropping.test",
    "limit.test",
];

/// Regression floors: the number of passing cases when last raised.
const STABLE_FLOOR: usize = 897;
const EXPERIMENTAL_FLOOR: usize = 348;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/promql-testdata")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_conformance() {
    let dir = testdata();
    if !dir.is_dir() {
        if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
            panic!("{} is missing and CI=true", dir.display());
        }
        println!("skipping: {} is missing", dir.display());
        return;
    }
    let verbose = std::env::var("PROMQL_CONFORMANCE_VERBOSE").ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let (mut stable, mut experimental) = ([0usize; 3], [0usize; 3]);
    println!(
        "{:<28} {:>7} {:>7} {:>7}",
        "file", "passed", "failed", "skipped"
    );
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        let cmds = match parse_script(&text) {
            Ok(c) => c,
            Err(e) => {
                println!("{name:<28} cannot parse: {e}");
                continue;
            }
        };
        let results = Runner::new().run(&cmds).await;
        let mut counts = [0usize; 3];
        for r in &results {
            match &r.outcome {
                Outcome::Pass => counts[0] += 1,
                Outcome::Fail(why) => {
                    counts[1] += 1;
                    // Stable failures are always listed; experimental ones on request.
                    let exp = EXPERIMENTAL.contains(&name.as_str());
                    if !exp
                        || verbose
                            .as_deref()
                            .is_some_and(|v| v == "1" || name.starts_with(v))
                    {
                        println!("  FAIL {name}:{} {}\n       {why}", r.line, r.query);
                    }
                }
                Outcome::Skip(why) => {
                    counts[2] += 1;
                    if verbose
                        .as_deref()
                        .is_some_and(|v| v == "1" || name.starts_with(v))
                    {
                        println!("  SKIP {name}:{} {} ({why})", r.line, r.query);
                    }
                }
            }
        }
        let mut reasons: Vec<String> = results
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Skip(w) => Some(w.clone()),
                _ => None,
            })
            .collect();
        reasons.sort();
        reasons.dedup();
        let exp = EXPERIMENTAL.contains(&name.as_str());
        println!(
            "{name:<28} {:>7} {:>7} {:>7}{}{}",
            counts[0],
            counts[1],
            counts[2],
            if exp { "  (experimental)" } else { "" },
            if reasons.is_empty() {
                String::new()
            } else {
                format!("  skipped: {}", reasons.join("; "))
            }
        );
        let total = if exp { &mut experimental } else { &mut stable };
        for i in 0..3 {
            total[i] += counts[i];
        }
    }
    println!(
        "{:<28} {:>7} {:>7} {:>7}\n{:<28} {:>7} {:>7} {:>7}",
        "TOTAL stable",
        stable[0],
        stable[1],
        stable[2],
        "TOTAL experimental",
        experimental[0],
        experimental[1],
        experimental[2]
    );
    assert!(
        stable[0] >= STABLE_FLOOR,
        "stable passing cases dropped below the floor: {} < {STABLE_FLOOR}",
        stable[0]
    );
    assert!(
        experimental[0] >= EXPERIMENTAL_FLOOR,
        "experimental passing cases dropped below the floor: {} < {EXPERIMENTAL_FLOOR}",
        experimental[0]
    );
}
