//! A seeded episode with LAN gossip discovery inside each cluster. It
//! caught finding F1 (/work/notes/chaos-findings.md): a freshly started
//! querier answered without its own cluster, and without a warning, until
//! its first gossip view arrived (fixed in c046f04).

mod support;

use std::time::Duration;

use skein_chaos::harness::{self, RunConfig};
use skein_chaos::invariants::Verdict;
use skein_chaos::schedule::Pace;

#[test]
fn gossip_episode_passes_every_invariant() {
    support::require_root();
    let out = support::out_dir("gossip");
    let mut cfg = RunConfig::new(
        4,
        Duration::from_secs(150),
        out.clone(),
        support::skein_bin(),
    );
    cfg.tag = "go-".into();
    cfg.gossip = true;
    cfg.pace = Pace {
        warmup: 10.0,
        fault: (6.0, 12.0),
        quiet: (15.0, 20.0),
        tail: 18.0,
    };
    let r = harness::run(cfg).expect("run");
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    for i in &r.invariants {
        assert_ne!(i.verdict, Verdict::Fail, "{}: {}\n{md}", i.name, i.detail);
    }
}
