//! Deterministic test data: a seeded generator of counters, gauges, a classic
//! histogram and a series that appears and vanishes, written as OpenMetrics
//! text and turned into TSDB blocks by `promtool tsdb create-blocks-from
//! openmetrics` before Prometheus starts.
//!
//! Sample slots are 15 s apart starting at a 15 s aligned `start_ms`; each
//! target's sample sits 1 to 4 whole seconds after its slot (seeded jitter), so
//! no sample lies on the 15 s grid. Queries evaluated on that grid with ranges
//! and offsets that are multiples of 15 s therefore never have a sample on a
//! range boundary, and Prometheus 2.42 (closed ranges) and Prometheus 3
//! (left-open ranges) must agree.
//!
//! Counters start far above zero (as on a long-running target): when a series
//! starts inside a rate() range, Prometheus 2.42 and 3 order the "extrapolate
//! to the counter's zero point" and "series starts within the range" rules
//! differently and can disagree; with a zero point far away both give the
//! same, Prometheus 3 answer.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

mod families;

use families::Target;

use crate::labels::LabelSet;
use crate::process::run_with_timeout;
use crate::xorshift::XorShift64;

/// Distance between sample slots.
pub const SLOT_MS: i64 = 15_000;

/// Histogram bucket bounds, as written in the `le` label.
pub const HISTOGRAM_BUCKETS: [&str; 7] = ["0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf"];

/// A label value with characters that need escaping in every text format.
pub const ODD_LABEL_VALUE: &str = "a \"quoted\" \\ path/ü";

/// What to generate.
#[derive(Debug, Clone)]
pub struct DataSpec {
    /// Seed of the PRNG; different clusters use different seeds.
    pub seed: u64,
    /// First slot, ms since the epoch, a multiple of 15 s.
    pub start_ms: i64,
    /// Number of 15 s slots.
    pub slots: usize,
    /// Values of the `job` label.
    pub jobs: Vec<String>,
    /// Targets per job (`instance="host-<i>:9100"`).
    pub instances_per_job: usize,
    /// Series of the extra gauge family `gen_wide_gauge` (for benchmarks).
    pub wide_series: usize,
}

impl DataSpec {
    /// The small data set of the e2e tests: 3 h ending at `end_ms` (rounded down
    /// to the 15 s grid), 3 jobs x 3 instances.
    pub fn small(seed: u64, end_ms: i64) -> Self {
        let end = end_ms - end_ms.rem_euclid(SLOT_MS);
        let slots = 3 * 3600 * 1000 / SLOT_MS as usize;
        Self {
            seed,
            start_ms: end - slots as i64 * SLOT_MS,
            slots,
            jobs: vec!["api".into(), "db".into(), "cache".into()],
            instances_per_job: 3,
            wide_series: 0,
        }
    }

    /// The end of the data window: the slot after the last one.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + self.slots as i64 * SLOT_MS
    }
}

/// Metric family type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One generated series: full label set (with `__name__`) and its samples.
#[derive(Debug, Clone)]
pub struct GenSeries {
    pub labels: LabelSet,
    pub samples: Vec<(i64, f64)>,
}

/// One metric family.
#[derive(Debug, Clone)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub help: String,
    pub series: Vec<GenSeries>,
}

/// The generated data of one cluster.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub spec: DataSpec,
    pub families: Vec<Family>,
}

impl Dataset {
    /// Generate the data for `spec`. Same spec, same data.
    pub fn generate(spec: DataSpec) -> anyhow::Result<Self> {
        if spec.start_ms.rem_euclid(SLOT_MS) != 0 {
            bail!("start_ms {} is not on the 15 s grid", spec.start_ms);
        }
        if spec.slots < 12 {
            bail!("need at least 12 slots");
        }
        let mut rng = XorShift64::new(spec.seed);
        let mut targets = Vec::new();
        for job in &spec.jobs {
            for i in 0..spec.instances_per_job {
                let times = (0..spec.slots)
                    .map(|k| spec.start_ms + k as i64 * SLOT_MS + rng.range_i64(1, 4) * 1000)
                    .collect();
                targets.push(Target {
                    job: job.clone(),
                    instance: format!("host-{i}:9100"),
                    times,
                });
            }
        }
        let mut families = vec![
            families::counters(&spec, &targets, &mut rng),
            families::temperature(&targets, &mut rng),
            families::queue_depth(&targets, &mut rng),
            families::histogram(&targets, &mut rng),
            families::ephemeral(&spec, &mut rng),
            families::build_info(&targets),
        ];
        if spec.wide_series > 0 {
            families.push(families::wide(&spec, &mut rng));
        }
        Ok(Self { spec, families })
    }

    /// One data set holding every part's series with that part's extra labels
    /// added (e.g. all clusters' data with their `cluster` label): what a single
    /// global Prometheus would hold. The spec is the first part's, seed 0.
    pub fn merged(parts: &[(&Dataset, &LabelSet)]) -> anyhow::Result<Dataset> {
        let Some((first, _)) = parts.first() else {
            bail!("merge of nothing");
        };
        let mut families: Vec<Family> = Vec::new();
        for (ds, extra) in parts {
            for fam in &ds.families {
                let idx = match families.iter().position(|f| f.name == fam.name) {
                    Some(i) => i,
                    None => {
                        families.push(Family {
                            series: Vec::new(),
                            ..fam.clone()
                        });
                        families.len() - 1
                    }
                };
                for s in &fam.series {
                    let mut labels = s.labels.clone();
                    for (k, v) in extra.iter() {
                        labels.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    families[idx].series.push(GenSeries {
                        labels,
                        samples: s.samples.clone(),
                    });
                }
            }
        }
        let mut spec = first.spec.clone();
        spec.seed = 0;
        Ok(Dataset { spec, families })
    }

    /// The series with exactly these labels (`__name__` included).
    pub fn find(&self, labels: &LabelSet) -> Option<&GenSeries> {
        self.families
            .iter()
            .flat_map(|f| f.series.iter())
            .find(|s| &s.labels == labels)
    }

    /// All series whose `__name__` is `name`.
    pub fn series_named(&self, name: &str) -> Vec<&GenSeries> {
        self.families
            .iter()
            .flat_map(|f| f.series.iter())
            .filter(|s| s.labels.get("__name__").map(String::as_str) == Some(name))
            .collect()
    }

    /// Number of series.
    pub fn series_count(&self) -> usize {
        self.families.iter().map(|f| f.series.len()).sum()
    }

    /// Number of samples.
    pub fn sample_count(&self) -> usize {
        self.families
            .iter()
            .flat_map(|f| f.series.iter())
            .map(|s| s.samples.len())
            .sum()
    }

    /// Write OpenMetrics text (timestamps in whole seconds) ending in `# EOF`.
    pub fn write_openmetrics(&self, out: &mut impl Write) -> std::io::Result<()> {
        for fam in &self.families {
            let kind = match fam.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            writeln!(out, "# TYPE {} {kind}", fam.name)?;
            writeln!(out, "# HELP {} {}", fam.name, fam.help)?;
            for s in &fam.series {
                let name = s.labels.get("__name__").map(String::as_str).unwrap_or("");
                let rendered: Vec<String> = s
                    .labels
                    .iter()
                    .filter(|(k, _)| k.as_str() != "__name__")
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
                    .collect();
                let prefix = format!("{name}{{{}}}", rendered.join(","));
                for (t, v) in &s.samples {
                    writeln!(out, "{prefix} {v} {}", t / 1000)?;
                }
            }
        }
        writeln!(out, "# EOF")
    }

    /// Write the OpenMetrics file and convert it into blocks under `data_dir`.
    pub fn write_blocks(
        &self,
        scratch: &Path,
        data_dir: &Path,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let om = scratch.join(format!("data-{}.om", self.spec.seed));
        {
            let mut w = BufWriter::new(File::create(&om)?);
            self.write_openmetrics(&mut w)?;
            w.flush()?;
        }
        create_blocks(&om, data_dir, scratch, timeout)?;
        // The text is several times the size of the blocks; keep only the blocks.
        std::fs::remove_file(&om)?;
        Ok(())
    }
}

/// OpenMetrics label value escaping: backslash, double quote, newline.
pub fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `promtool tsdb create-blocks-from openmetrics <file> <data_dir>`.
pub fn create_blocks(
    om: &Path,
    data_dir: &Path,
    scratch: &Path,
    timeout: Duration,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let mut cmd = std::process::Command::new(crate::promtool::PROMTOOL);
    cmd.args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(om)
        .arg(data_dir);
    let out = run_with_timeout(cmd, timeout, scratch).context("promtool create-blocks-from")?;
    if !out.status.success() {
        bail!(
            "promtool create-blocks-from failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Count of series per metric name (for quick checks).
pub fn series_per_name(ds: &Dataset) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in ds.families.iter().flat_map(|f| f.series.iter()) {
        if let Some(n) = s.labels.get("__name__") {
            *m.entry(n.clone()).or_insert(0) += 1;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_jittered_and_consistent() {
        let spec = DataSpec::small(1, 1_700_000_000_000);
        let a = Dataset::generate(spec.clone()).unwrap();
        let b = Dataset::generate(spec.clone()).unwrap();
        let mut ta = Vec::new();
        let mut tb = Vec::new();
        a.write_openmetrics(&mut ta).unwrap();
        b.write_openmetrics(&mut tb).unwrap();
        assert_eq!(ta, tb);
        for s in a.families.iter().flat_map(|f| f.series.iter()) {
            for w in s.samples.windows(2) {
                assert!(w[0].0 < w[1].0, "timestamps ascend");
            }
            for (t, _) in &s.samples {
                let off = (t - spec.start_ms).rem_euclid(SLOT_MS);
                assert!((1000..=4000).contains(&off), "jitter {off}");
                assert!(*t < spec.end_ms());
            }
        }
        // Counters never decrease except at the single planned reset.
        let resets: usize = a
            .series_named("gen_http_requests_total")
            .iter()
            .map(|s| s.samples.windows(2).filter(|w| w[1].1 < w[0].1).count())
            .sum();
        assert_eq!(resets, 1);
        let per = series_per_name(&a);
        assert_eq!(per["gen_request_duration_seconds_bucket"], 9 * 7);
        assert_eq!(per["gen_ephemeral_jobs"], 2);
        let other = Dataset::generate(DataSpec::small(2, 1_700_000_000_000)).unwrap();
        assert_ne!(
            a.series_named("gen_queue_depth")[0].samples,
            other.series_named("gen_queue_depth")[0].samples
        );
    }
}
