//! The harness must catch injected bugs: a response path that drops
//! warnings, and queriers that do not deduplicate HA replicas.

mod support;

use skein_chaos::selftest;
use skein_chaos::workload::Inject;

#[test]
fn dropped_warnings_are_caught() {
    support::require_root();
    let out = support::out_dir("selftest");
    let cfg = selftest::config(
        "drop-warnings",
        Inject::DropWarnings,
        &out,
        &support::skein_bin(),
    );
    let (detected, detail) = selftest::detect(cfg).expect("run");
    assert!(
        detected,
        "a harness that drops warnings went unnoticed: {detail}"
    );
}

#[test]
fn missing_dedup_is_caught() {
    support::require_root();
    let out = support::out_dir("selftest");
    let cfg = selftest::config("no-dedup", Inject::NoDedup, &out, &support::skein_bin());
    let (detected, detail) = selftest::detect(cfg).expect("run");
    assert!(
        detected,
        "queriers without HA dedup went unnoticed: {detail}"
    );
}
