//! The differential setup: one Prometheus 2.42 on generated blocks that also
//! live-scrapes a flapping target served from the test, one Skein sidecar next
//! to it, one Skein querier over the sidecar.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tempfile::TempDir;

use super::flapper::Flapper;
use crate::datagen::{DataSpec, Dataset};
use crate::fixture::WINDOW_END_BEFORE_NOW_MS;
use crate::http::ApiClient;
use crate::labels::{LabelSet, label_set};
use crate::ports::free_port;
use crate::process::ProcessGuard;
use crate::prometheus::{PROMETHEUS, READY_TIMEOUT};
use crate::promjson::QueryData;
use crate::skein::SkeinNode;
use crate::timefmt::now_ms;
use crate::wait::{poll_until, wait_ready};

/// The sidecar's external labels (Prometheus' `external_labels`).
pub fn external_labels() -> LabelSet {
    label_set(&[("cluster", "eu1")])
}

/// Scrapes the flapping target gets before it goes down.
pub const LIVE_SCRAPES: u64 = 15;

/// Everything a differential run talks to.
#[derive(Debug)]
pub struct Setup {
    pub dataset: Dataset,
    pub external_labels: LabelSet,
    pub prometheus: ApiClient,
    pub prometheus_guard: ProcessGuard,
    pub querier: SkeinNode,
    pub sidecar: SkeinNode,
    /// Timestamps (ms) of every scrape of the flapping target, ascending; the
    /// live data (values and staleness markers) is final before the last one.
    pub scrape_times: Vec<i64>,
    flapper: Flapper,
    // Dropped last: the processes above must be gone before their dir goes.
    pub dir: TempDir,
}

fn config_yaml(target: &str, ext: &LabelSet) -> String {
    let mut s = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 800ms\n  evaluation_interval: 1m\n  external_labels:\n",
    );
    for (k, v) in ext {
        s.push_str(&format!("    {k}: \"{v}\"\n"));
    }
    s.push_str(&format!(
        "scrape_configs:\n  - job_name: flap\n    static_configs:\n      - targets: [\"{target}\"]\n"
    ));
    s
}

fn start_prometheus(
    dir: &Path,
    dataset: &Dataset,
    target: &str,
    ext: &LabelSet,
) -> anyhow::Result<(ApiClient, ProcessGuard)> {
    let pdir = dir.join("prometheus");
    let data_dir = pdir.join("data");
    std::fs::create_dir_all(&data_dir)?;
    dataset.write_blocks(&pdir, &data_dir, Duration::from_secs(300))?;
    let port = free_port()?;
    let config = pdir.join("prometheus.yml");
    std::fs::write(&config, config_yaml(target, ext))?;
    let mut cmd = Command::new(PROMETHEUS);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data_dir.display()))
        .arg("--storage.tsdb.retention.time=30d")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let mut guard = ProcessGuard::spawn("prometheus", cmd, &pdir)?;
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&mut guard, &url, READY_TIMEOUT)?;
    Ok((
        ApiClient::with_timeout(&url, Duration::from_secs(120))?,
        guard,
    ))
}

impl Setup {
    /// Generate data (seeded), start everything, run the live-scrape phase and
    /// wait until the querier answers with data.
    pub fn start(seed: u64) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("skein-differential-")
            .tempdir()?;
        let dataset =
            Dataset::generate(DataSpec::small(seed, now_ms() - WINDOW_END_BEFORE_NOW_MS))?;
        let ext = external_labels();
        let flapper = Flapper::start()?;
        let (prometheus, prometheus_guard) =
            start_prometheus(dir.path(), &dataset, &flapper.addr, &ext)?;
        let sidecar = SkeinNode::start_sidecar(dir.path(), "sidecar", prometheus.base(), &[])?;
        let querier = SkeinNode::start_querier(
            dir.path(),
            "querier",
            &[sidecar.store_address()],
            &["--query.info-interval".to_string(), "1s".to_string()],
        )?;
        let mut setup = Self {
            dataset,
            external_labels: ext,
            prometheus,
            prometheus_guard,
            querier,
            sidecar,
            scrape_times: Vec::new(),
            flapper,
            dir,
        };
        setup.live_phase()?;
        setup.wait_querier_sees_data()?;
        Ok(setup)
    }

    /// The generated data window `[start, end)`.
    pub fn window(&self) -> (i64, i64) {
        (self.dataset.spec.start_ms, self.dataset.spec.end_ms())
    }

    /// Let the flapping target be scraped [`LIVE_SCRAPES`] times, take it down,
    /// wait for two failed scrapes (staleness markers for every series), then
    /// read the scrape timestamps from `up`.
    fn live_phase(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.flapper.scrapes() < LIVE_SCRAPES {
            if Instant::now() > deadline {
                bail!(
                    "the flapping target got only {} scrapes in 60 s; Prometheus log:\n{}",
                    self.flapper.scrapes(),
                    self.prometheus_guard.log_tail(20)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.flapper.go_down();
        let down_at = now_ms();
        let times = poll_until(
            "two failed scrapes of the flapping target",
            Duration::from_secs(20),
            Duration::from_millis(250),
            || {
                let data = self.prometheus.query(r#"up{job="flap"}[10m]"#, now_ms())?;
                let QueryData::Matrix(m) = data else {
                    return Err(anyhow!("up[10m] is not a matrix"));
                };
                let pts = m.values().next().cloned().unwrap_or_default();
                let failed_after = pts
                    .iter()
                    .filter(|(t, v)| *t > down_at && *v == 0.0)
                    .count();
                if failed_after >= 2 {
                    Ok(Some(pts.iter().map(|(t, _)| *t).collect::<Vec<_>>()))
                } else {
                    Err(anyhow!("{failed_after} failed scrapes so far"))
                }
            },
        )?;
        self.scrape_times = times;
        Ok(())
    }

    fn wait_querier_sees_data(&self) -> anyhow::Result<()> {
        let (_, end) = self.window();
        let last_scrape = self.scrape_times.last().copied().unwrap_or(end);
        poll_until(
            "querier to see generated and live data",
            Duration::from_secs(30),
            Duration::from_millis(250),
            || {
                let a = self.querier.client.query("count(gen_queue_depth)", end)?;
                let b = self.querier.client.query("count(up)", last_scrape)?;
                if a.series_count() == 1
                    && b.series_count() == 1
                    && matches!(a, QueryData::Vector(ref m) if !m.is_empty())
                    && matches!(b, QueryData::Vector(ref m) if !m.is_empty())
                {
                    Ok(Some(()))
                } else {
                    Err(anyhow!("querier answers {a:?} / {b:?}"))
                }
            },
        )
        .with_context(|| {
            format!(
                "querier log:\n{}\nsidecar log:\n{}",
                self.querier.guard().log_tail(15),
                self.sidecar.guard().log_tail(15)
            )
        })
    }

    /// Live evaluation times: half-way between scrapes, 1 s apart, from the
    /// 2nd scrape to 1 s before the last one (all live data is written by then).
    pub fn live_times(&self) -> (Vec<i64>, i64) {
        let step = 1000;
        let (Some(first), Some(last)) = (self.scrape_times.get(1), self.scrape_times.last()) else {
            return (Vec::new(), step);
        };
        let mut out = Vec::new();
        let mut t = first + step / 2;
        while t <= last - step {
            out.push(t);
            t += step;
        }
        (out, step)
    }
}
