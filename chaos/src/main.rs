//! `skein-chaos run | selftest | cleanup`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use skein_chaos::harness::{self, RunConfig};
use skein_chaos::topology::netns;
use skein_chaos::workload::Inject;

#[derive(Parser)]
#[command(
    name = "skein-chaos",
    about = "Fault injection for Skein: seeded faults, exact oracle, invariant verdicts"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one seeded episode and write report.{md,json}, chart.svg, queries.jsonl.
    Run {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        duration: Duration,
        #[arg(long, default_value = "chaos-out")]
        out: PathBuf,
        #[arg(long, default_value = "target/debug/skein")]
        skein: PathBuf,
        /// Clusters (each: a Prometheus pair with sidecars and a querier).
        #[arg(long, default_value_t = 2)]
        clusters: usize,
        /// Queries per second over all queriers.
        #[arg(long, default_value_t = 5.0)]
        qps: f64,
        /// Queriers discover their own cluster's sidecars by LAN gossip.
        #[arg(long)]
        gossip: bool,
        /// JSON list of fault windows to run instead of the seeded schedule,
        /// e.g. [{"id":0,"start_s":10,"end_s":70,"fault":{"kind":"kill_restart","proc":"c1s0"}}]
        #[arg(long)]
        script: Option<PathBuf>,
    },
    /// Show that the invariants catch injected bugs (a harness that drops
    /// warnings, and queriers that do not deduplicate HA replicas).
    Selftest {
        #[arg(long, default_value = "chaos-selftest")]
        out: PathBuf,
        #[arg(long, default_value = "target/debug/skein")]
        skein: PathBuf,
    },
    /// Remove namespaces (and their processes) left by runs that are gone.
    Cleanup {
        /// Also remove those of runs that are still alive.
        #[arg(long)]
        all: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("skein-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<bool> {
    match Cli::parse().cmd {
        Cmd::Run {
            seed,
            duration,
            out,
            skein,
            clusters,
            qps,
            gossip,
            script,
        } => {
            let mut cfg = RunConfig::new(seed, duration, out.clone(), skein);
            cfg.clusters = clusters;
            cfg.qps = qps;
            cfg.gossip = gossip;
            if let Some(path) = script {
                let text = std::fs::read_to_string(&path)?;
                cfg.script = Some(serde_json::from_str(&text)?);
            }
            let r = harness::run(cfg)?;
            println!("{}", out.join("report.md").display());
            for i in &r.invariants {
                println!("{:<32} {:?}  {}", i.name, i.verdict, i.detail);
            }
            println!(
                "queries {} exact {} warned {} failed {} silently-wrong {}  p50 {:.0}ms p99 {:.0}ms",
                r.overall.queries,
                r.overall.exact,
                r.overall.answered_with_warning,
                r.overall.failed,
                r.overall.silent_wrong,
                r.overall.latency_p50_ms,
                r.overall.latency_p99_ms
            );
            Ok(r.passed)
        }
        Cmd::Selftest { out, skein } => {
            let res = skein_chaos::selftest::run_all(&out, &skein)?;
            for (name, detected, detail) in &res {
                println!(
                    "{name:<16} {}  {detail}",
                    if *detected { "DETECTED" } else { "MISSED" }
                );
            }
            Ok(res.iter().all(|(_, d, _)| *d))
        }
        Cmd::Cleanup { all } => {
            let removed = netns::cleanup(all);
            for n in &removed {
                println!("removed {n}");
            }
            println!("{} namespaces removed", removed.len());
            let _ = Inject::None;
            Ok(true)
        }
    }
}
