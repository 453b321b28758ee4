//! Investigating a differential mismatch (not part of the normal run; ignored
//! unless asked for): `DIFFERENTIAL_SEED=<seed> DIFFERENTIAL_PROBE_ID=<query id>
//! DIFFERENTIAL_PROBE_EXPRS='expr1;;expr2' cargo test -p skein-e2e --test
//! differential_probe -- --ignored --nocapture` regenerates that seed's data
//! and query set, and runs query <id> and each given variant expression at
//! the same evaluation times, printing every difference.

use skein_e2e::differential::queries::{Expr, Ext, Windows, generate};
use skein_e2e::differential::runner::run_one;
use skein_e2e::differential::setup::Setup;

#[test]
#[ignore = "a tool for investigating mismatches; run with --ignored"]
fn probe() {
    let env = |k: &str| std::env::var(k).ok();
    let seed: u64 = env("DIFFERENTIAL_SEED")
        .and_then(|s| s.parse().ok())
        .unwrap_or(42);
    let id: usize = env("DIFFERENTIAL_PROBE_ID")
        .and_then(|s| s.parse().ok())
        .expect("DIFFERENTIAL_PROBE_ID");
    let setup = Setup::start(seed).expect("setup");
    let (live_times, live_step_ms) = setup.live_times();
    let all = generate(
        seed,
        &Windows {
            blocks: setup.window(),
            live_times,
            live_step_ms,
        },
    );
    let q = all.iter().find(|q| q.id == id).expect("no such query id");
    println!("query #{id} [{}] {:?}: {}", q.family, q.eval, q.expr.prom);
    println!("  -> {:?}", run_one(&setup, q));
    for variant in env("DIFFERENTIAL_PROBE_EXPRS")
        .unwrap_or_default()
        .split(";;")
    {
        let variant = variant.trim();
        if variant.is_empty() {
            continue;
        }
        let (text, ext) = match variant.strip_prefix("drop:") {
            Some(t) => (t, Ext::Drop),
            None => (variant, Ext::Keep),
        };
        let mut v = q.clone();
        v.expr = Expr::same(text.to_string(), ext);
        println!("variant {text} ({ext:?})\n  -> {:?}", run_one(&setup, &v));
    }
    // DIFFERENTIAL_PROBE_HOLD=<seconds>: keep everything running for manual queries.
    if let Some(secs) = env("DIFFERENTIAL_PROBE_HOLD").and_then(|s| s.parse::<u64>().ok()) {
        println!(
            "holding {secs} s: prometheus {} querier {}",
            setup.prometheus.base(),
            setup.querier.http_url
        );
        std::thread::sleep(std::time::Duration::from_secs(secs));
    }
}
