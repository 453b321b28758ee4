//! A seeded episode end to end (network namespaces, real Prometheus pairs,
//! skein sidecars and queriers, faults) that must pass every invariant.

mod support;

use std::time::Duration;

use skein_chaos::harness::{self, RunConfig};
use skein_chaos::invariants::Verdict;
use skein_chaos::schedule::Pace;

#[test]
fn seeded_episode_passes_every_invariant() {
    support::require_root();
    let out = support::out_dir("episode");
    let mut cfg = RunConfig::new(
        11,
        Duration::from_secs(150),
        out.clone(),
        support::skein_bin(),
    );
    cfg.tag = "ep-".into();
    cfg.pace = Pace {
        warmup: 10.0,
        fault: (6.0, 12.0),
        quiet: (15.0, 20.0),
        tail: 18.0,
    };
    let r = harness::run(cfg).expect("run");
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(out.join("report.json").is_file());
    assert!(out.join("chart.svg").is_file());
    assert!(
        r.windows.len() >= 4,
        "{} fault windows\n{md}",
        r.windows.len()
    );
    assert!(r.overall.queries >= 500, "{md}");
    for i in &r.invariants {
        assert_ne!(i.verdict, Verdict::Fail, "{}: {}\n{md}", i.name, i.detail);
    }
    assert!(r.passed);
    // Nothing of the run is left behind.
    let left: Vec<String> = skein_chaos::topology::netns::list_ours()
        .into_iter()
        .filter(|n| n.contains("-ep-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
