//! The seeded fault schedule: a warm-up, then faults one at a time, each
//! followed by a quiet period, and a quiet tail. The same seed and targets
//! always give the same schedule.

use serde::{Deserialize, Serialize};

use crate::datagen::mix;

/// A small deterministic PRNG (splitmix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed ^ 0x5eed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in [0, n); 0 when n is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform in [lo, hi] seconds, in tenths.
    pub fn secs(&mut self, lo: f64, hi: f64) -> f64 {
        let tenths = ((hi - lo) * 10.0).max(0.0) as u64;
        lo + self.below(tenths + 1) as f64 / 10.0
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> Option<&'a T> {
        xs.get(self.below(xs.len() as u64) as usize)
    }
}

/// One fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// kill -9 at the start, restart at the end.
    KillRestart { proc: String },
    /// SIGSTOP at the start, SIGCONT at the end.
    Pause { proc: String },
    /// Drop all traffic between two clusters' subnets.
    Partition { a: usize, b: usize },
    /// Drop all traffic in and out of one host.
    Isolate { host: String },
    /// Drop all traffic to the S3 server.
    S3Outage,
    /// kill -9 a sidecar while it uploads, restart at the end.
    SidecarKillDuringUpload { proc: String },
    /// SIGTERM every querier (exit 0 expected), start them again.
    QuerierTierRestart,
}

impl Fault {
    pub fn label(&self) -> String {
        match self {
            Fault::KillRestart { proc } => format!("kill -9 {proc}"),
            Fault::Pause { proc } => format!("SIGSTOP {proc}"),
            Fault::Partition { a, b } => format!("partition c{} / c{}", a + 1, b + 1),
            Fault::Isolate { host } => format!("isolate {host}"),
            Fault::S3Outage => "S3 outage".into(),
            Fault::SidecarKillDuringUpload { proc } => format!("kill -9 {proc} during upload"),
            Fault::QuerierTierRestart => "restart querier tier".into(),
        }
    }
}

/// A fault and when it is active (seconds from the run's start).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub id: usize,
    pub start_s: f64,
    pub end_s: f64,
    pub fault: Fault,
}

/// What the schedule may target.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Targets {
    pub clusters: usize,
    pub processes: Vec<String>,
    pub sidecars: Vec<String>,
    pub hosts: Vec<String>,
    pub s3: bool,
    pub shipper: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Schedule {
    pub seed: u64,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub windows: Vec<Window>,
}

/// Timing knobs (seconds).
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub warmup: f64,
    pub fault: (f64, f64),
    pub quiet: (f64, f64),
    pub tail: f64,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace {
            warmup: 15.0,
            fault: (8.0, 20.0),
            quiet: (15.0, 25.0),
            tail: 20.0,
        }
    }
}

fn pick_fault(rng: &mut Rng, t: &Targets) -> Option<Fault> {
    for _ in 0..32 {
        let f = match rng.below(100) {
            0..25 => rng
                .pick(&t.processes)
                .map(|p| Fault::KillRestart { proc: p.clone() }),
            25..45 => rng
                .pick(&t.processes)
                .map(|p| Fault::Pause { proc: p.clone() }),
            45..62 if t.clusters >= 2 => {
                let a = rng.below(t.clusters as u64) as usize;
                let b = (a + 1 + rng.below(t.clusters as u64 - 1) as usize) % t.clusters;
                Some(Fault::Partition {
                    a: a.min(b),
                    b: a.max(b),
                })
            }
            62..77 => rng
                .pick(&t.hosts)
                .map(|h| Fault::Isolate { host: h.clone() }),
            77..87 => Some(Fault::QuerierTierRestart),
            87..94 if t.s3 => Some(Fault::S3Outage),
            94..100 if t.shipper => rng
                .pick(&t.sidecars)
                .map(|p| Fault::SidecarKillDuringUpload { proc: p.clone() }),
            _ => None,
        };
        if f.is_some() {
            return f;
        }
    }
    None
}

/// The schedule of a run.
pub fn generate(seed: u64, duration_s: f64, targets: &Targets, pace: Pace) -> Schedule {
    let mut rng = Rng::new(seed);
    let mut windows = Vec::new();
    let mut t = pace.warmup;
    loop {
        let len = rng.secs(pace.fault.0, pace.fault.1);
        if t + len + pace.tail > duration_s {
            break;
        }
        let Some(fault) = pick_fault(&mut rng, targets) else {
            break;
        };
        windows.push(Window {
            id: windows.len(),
            start_s: t,
            end_s: t + len,
            fault,
        });
        t += len + rng.secs(pace.quiet.0, pace.quiet.1);
    }
    Schedule {
        seed,
        duration_s,
        warmup_s: pace.warmup,
        windows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Targets {
        Targets {
            clusters: 2,
            processes: vec!["c1p0".into(), "c1s0".into(), "c1q".into()],
            sidecars: vec!["c1s0".into()],
            hosts: vec!["c1n0".into(), "c2n0".into()],
            s3: true,
            shipper: true,
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let a = generate(42, 600.0, &targets(), Pace::default());
        let b = generate(42, 600.0, &targets(), Pace::default());
        assert_eq!(a.windows, b.windows);
        assert!(a.windows.len() >= 10, "{}", a.windows.len());
    }

    #[test]
    fn other_seed_other_schedule() {
        let a = generate(1, 600.0, &targets(), Pace::default());
        let b = generate(2, 600.0, &targets(), Pace::default());
        assert_ne!(a.windows, b.windows);
    }

    #[test]
    fn windows_do_not_overlap_and_leave_a_tail() {
        let p = Pace::default();
        for seed in 0..50 {
            let s = generate(seed, 300.0, &targets(), p);
            for w in s.windows.windows(2) {
                assert!(w[0].end_s + p.quiet.0 <= w[1].start_s + 1e-9);
            }
            if let Some(last) = s.windows.last() {
                assert!(last.end_s + p.tail <= 300.0);
            }
            assert!(s.windows.iter().all(|w| w.start_s >= p.warmup));
        }
    }

    #[test]
    fn every_fault_kind_appears_over_many_seeds() {
        let mut kinds = std::collections::HashSet::new();
        for seed in 0..40 {
            for w in generate(seed, 600.0, &targets(), Pace::default()).windows {
                kinds.insert(std::mem::discriminant(&w.fault));
            }
        }
        assert_eq!(kinds.len(), 7);
    }

    #[test]
    fn no_partition_with_one_cluster() {
        let mut t = targets();
        t.clusters = 1;
        for seed in 0..30 {
            let s = generate(seed, 600.0, &t, Pace::default());
            assert!(
                !s.windows
                    .iter()
                    .any(|w| matches!(w.fault, Fault::Partition { .. }))
            );
        }
    }
}
