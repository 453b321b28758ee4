//! The deterministic data set: every Prometheus of a cluster holds the
//! same samples, computed from the seed, written as OpenMetrics and turned
//! into TSDB blocks by `promtool tsdb create-blocks-from openmetrics`.
//! Sample timestamps sit 7 s into each 15 s step, so no query time or
//! window edge that is a multiple of 15 s ever lands on a sample.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

pub const STEP_MS: i64 = 15_000;
pub const OFFSET_MS: i64 = 7_000;

/// The metrics of the data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Metric {
    /// A gauge with integer values in [0, 1000).
    Gauge,
    /// A counter that grows by an integer in [0, 20) each step.
    Requests,
    /// A 0/1 gauge that changes at most every 5 minutes.
    Flag,
}

impl Metric {
    pub const ALL: [Metric; 3] = [Metric::Gauge, Metric::Requests, Metric::Flag];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Gauge => "chaos_gauge",
            Metric::Requests => "chaos_requests_total",
            Metric::Flag => "chaos_flag",
        }
    }

    fn family(self) -> (&'static str, &'static str) {
        match self {
            Metric::Gauge => ("chaos_gauge", "gauge"),
            Metric::Requests => ("chaos_requests", "counter"),
            Metric::Flag => ("chaos_flag", "gauge"),
        }
    }

    fn index(self) -> u64 {
        match self {
            Metric::Gauge => 0,
            Metric::Requests => 1,
            Metric::Flag => 2,
        }
    }
}

/// What to generate.
#[derive(Clone, Debug, Serialize)]
pub struct DataSpec {
    pub seed: u64,
    pub clusters: usize,
    pub instances: usize,
    /// Timestamp of step 0 minus OFFSET_MS; a multiple of STEP_MS.
    pub start_ms: i64,
    pub samples: usize,
}

/// splitmix64: a tiny, well-mixed, portable hash/PRNG step.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn h(seed: u64, parts: &[u64]) -> u64 {
    parts.iter().fold(mix(seed), |acc, p| mix(acc ^ mix(*p)))
}

impl DataSpec {
    /// `hours` of data ending at least one hour before `now_ms`, aligned
    /// to whole hours.
    pub fn ending_before(
        seed: u64,
        clusters: usize,
        instances: usize,
        hours: i64,
        now_ms: i64,
    ) -> DataSpec {
        let hour = 3_600_000;
        let end = (now_ms / hour) * hour - hour;
        DataSpec {
            seed,
            clusters,
            instances,
            start_ms: end - hours * hour,
            samples: (hours * hour / STEP_MS) as usize,
        }
    }

    pub fn cluster_name(i: usize) -> String {
        format!("c{}", i + 1)
    }

    pub fn instance_name(i: usize) -> String {
        format!("i{i}")
    }

    /// Timestamp of sample `k`.
    pub fn ts(&self, k: usize) -> i64 {
        self.start_ms + k as i64 * STEP_MS + OFFSET_MS
    }

    /// First and last sample timestamps.
    pub fn first_ms(&self) -> i64 {
        self.ts(0)
    }

    pub fn last_ms(&self) -> i64 {
        self.ts(self.samples.saturating_sub(1))
    }

    /// All values of one series, in time order.
    pub fn values(&self, cluster: usize, instance: usize, metric: Metric) -> Vec<f64> {
        let key = |k: u64| {
            h(
                self.seed,
                &[cluster as u64, instance as u64, metric.index(), k],
            )
        };
        match metric {
            Metric::Gauge => (0..self.samples)
                .map(|k| (key(k as u64) % 1000) as f64)
                .collect(),
            Metric::Requests => {
                let mut v = (key(u64::MAX) % 100) as f64;
                (0..self.samples)
                    .map(|k| {
                        v += (key(k as u64) % 20) as f64;
                        v
                    })
                    .collect()
            }
            Metric::Flag => (0..self.samples)
                .map(|k| (key((k / 20) as u64) % 2) as f64)
                .collect(),
        }
    }

    /// The OpenMetrics text of one cluster's Prometheus.
    pub fn openmetrics(&self, cluster: usize) -> String {
        self.openmetrics_of(&[cluster], false)
    }

    /// The OpenMetrics text of several clusters; with `inline_cluster`
    /// each series carries its `cluster` label (one Prometheus holding
    /// every cluster's data, as a reference for the oracle).
    pub fn openmetrics_of(&self, clusters: &[usize], inline_cluster: bool) -> String {
        let mut out = String::new();
        for m in Metric::ALL {
            let (family, kind) = m.family();
            let _ = writeln!(out, "# TYPE {family} {kind}");
            for &c in clusters {
                let cl = if inline_cluster {
                    format!("cluster=\"{}\",", Self::cluster_name(c))
                } else {
                    String::new()
                };
                for i in 0..self.instances {
                    let inst = Self::instance_name(i);
                    for (k, v) in self.values(c, i, m).iter().enumerate() {
                        let ts = self.ts(k);
                        let _ = writeln!(
                            out,
                            "{}{{{cl}instance=\"{inst}\",job=\"chaos\"}} {v} {}.{:03}",
                            m.name(),
                            ts / 1000,
                            ts % 1000
                        );
                    }
                }
            }
        }
        out.push_str("# EOF\n");
        out
    }

    /// A data set of the same series for the 2 h block `n` (0, 1, ...)
    /// before this one's first 2 h boundary: invisible to every workload
    /// query, it gives the shipper new blocks to upload.
    pub fn earlier_block(&self, n: i64) -> DataSpec {
        let two_h = 7_200_000;
        let base = self.start_ms.div_euclid(two_h) * two_h;
        DataSpec {
            start_ms: base - (n + 1) * two_h,
            samples: (two_h / STEP_MS) as usize - 8,
            ..self.clone()
        }
    }

    /// Writes one cluster's blocks into `data_dir` with promtool.
    pub fn write_blocks(&self, cluster: usize, data_dir: &Path) -> Result<(), String> {
        write_blocks(&self.openmetrics(cluster), data_dir)
    }
}

/// Turns OpenMetrics text into TSDB blocks in `data_dir` with promtool.
pub fn write_blocks(text: &str, data_dir: &Path) -> Result<(), String> {
    {
        std::fs::create_dir_all(data_dir).map_err(|e| e.to_string())?;
        // The input sits next to the data dir, never inside it (a shipper
        // scanning the dir must see only blocks).
        let input = data_dir.with_extension("om");
        std::fs::write(&input, text).map_err(|e| e.to_string())?;
        let out = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(data_dir)
            .output()
            .map_err(|e| format!("promtool: {e}"))?;
        let _ = std::fs::remove_file(&input);
        if !out.status.success() {
            return Err(format!(
                "promtool create-blocks-from failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_values_other_seed_differs() {
        let a = DataSpec::ending_before(7, 2, 3, 1, 10 * 3_600_000);
        let b = DataSpec::ending_before(7, 2, 3, 1, 10 * 3_600_000);
        let c = DataSpec::ending_before(8, 2, 3, 1, 10 * 3_600_000);
        assert_eq!(a.values(1, 2, Metric::Gauge), b.values(1, 2, Metric::Gauge));
        assert_ne!(a.values(1, 2, Metric::Gauge), c.values(1, 2, Metric::Gauge));
        assert_eq!(a.samples, 240);
    }

    #[test]
    fn counters_never_decrease_and_flags_are_binary() {
        let d = DataSpec::ending_before(1, 1, 2, 2, 5 * 3_600_000);
        let v = d.values(0, 1, Metric::Requests);
        assert!(v.windows(2).all(|w| w[1] >= w[0]));
        assert!(
            d.values(0, 0, Metric::Flag)
                .iter()
                .all(|x| *x == 0.0 || *x == 1.0)
        );
    }

    #[test]
    fn timestamps_avoid_step_multiples() {
        let d = DataSpec::ending_before(1, 1, 1, 1, 5 * 3_600_000);
        assert!((0..d.samples).all(|k| d.ts(k) % STEP_MS == OFFSET_MS));
        assert!(d.last_ms() < 4 * 3_600_000);
    }
}
