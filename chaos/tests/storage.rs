//! Storage faults on a fixed script: an S3 outage while shippers run,
//! and sidecars killed with -9 while uploading new blocks. Every block
//! must end up in the bucket exactly once and whole.

mod support;

use std::time::Duration;

use skein_chaos::harness::{self, RunConfig};
use skein_chaos::invariants::Verdict;
use skein_chaos::schedule::{Fault, Window};

#[test]
fn blocks_survive_s3_outage_and_upload_kills() {
    support::require_root();
    if skein_chaos::garage::find_binary().is_none() {
        eprintln!("SKIP: garage not installed");
        return;
    }
    let out = support::out_dir("storage");
    let mut cfg = RunConfig::new(
        5,
        Duration::from_secs(95),
        out.clone(),
        support::skein_bin(),
    );
    cfg.tag = "st-".into();
    cfg.qps = 3.0;
    let w = |id, start_s, end_s, fault| Window {
        id,
        start_s,
        end_s,
        fault,
    };
    cfg.script = Some(vec![
        w(0, 10.0, 22.0, Fault::S3Outage),
        w(
            1,
            12.0,
            20.0,
            Fault::SidecarKillDuringUpload {
                proc: "c1s0".into(),
            },
        ),
        w(
            2,
            40.0,
            48.0,
            Fault::SidecarKillDuringUpload {
                proc: "c2s1".into(),
            },
        ),
        w(
            3,
            62.0,
            70.0,
            Fault::SidecarKillDuringUpload {
                proc: "c1s1".into(),
            },
        ),
    ]);
    let r = harness::run(cfg).expect("run");
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    let inv = |name: &str| {
        r.invariants
            .iter()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("no invariant {name}"))
    };
    let bucket = inv("blocks_in_bucket_exactly_once");
    if bucket.verdict == Verdict::Skipped {
        eprintln!("SKIP: {}", bucket.detail);
        return;
    }
    assert_eq!(bucket.verdict, Verdict::Pass, "{}\n{md}", bucket.detail);
    assert!(
        bucket.detail.starts_with("11 local blocks"),
        "{}",
        bucket.detail
    );
    for i in &r.invariants {
        assert_ne!(i.verdict, Verdict::Fail, "{}: {}\n{md}", i.name, i.detail);
    }
}
