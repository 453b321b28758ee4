//! A Prometheus that cuts real blocks from its own scrapes within a test's time
//! budget: it scrapes itself every second and its head becomes a block every
//! `block_duration` (the hidden `--storage.tsdb.{min,max}-block-duration` flags;
//! Prometheus compacts the head once it spans 1.5 block durations).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::http::ApiClient;
use crate::labels::LabelSet;
use crate::ports::free_port;
use crate::process::ProcessGuard;
use crate::prometheus::{PROMETHEUS, READY_TIMEOUT};
use crate::wait::wait_ready;

/// A running self-scraping Prometheus (killed on drop).
#[derive(Debug)]
pub struct LivePrometheus {
    pub url: String,
    pub data_dir: PathBuf,
    pub external_labels: LabelSet,
    pub client: ApiClient,
    guard: ProcessGuard,
}

fn config_yaml(port: u16, external_labels: &LabelSet) -> String {
    let mut s = String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n");
    s.push_str("  external_labels:\n");
    for (k, v) in external_labels {
        s.push_str(&format!("    {k}: {v:?}\n"));
    }
    s.push_str(&format!(
        "scrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
    ));
    s
}

impl LivePrometheus {
    /// Start under `work_dir/<name>` with blocks of `block_duration` (e.g. `30s`).
    pub fn start(
        work_dir: &Path,
        name: &str,
        external_labels: &LabelSet,
        block_duration: &str,
    ) -> anyhow::Result<Self> {
        let dir = work_dir.join(name);
        let data_dir = dir.join("data");
        std::fs::create_dir_all(&data_dir)?;
        let port = free_port()?;
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, config_yaml(port, external_labels))?;
        let mut cmd = Command::new(PROMETHEUS);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data_dir.display()))
            .arg(format!(
                "--storage.tsdb.min-block-duration={block_duration}"
            ))
            .arg(format!(
                "--storage.tsdb.max-block-duration={block_duration}"
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let mut guard = ProcessGuard::spawn(name, cmd, &dir)?;
        let url = format!("http://127.0.0.1:{port}");
        wait_ready(&mut guard, &url, READY_TIMEOUT)?;
        Ok(Self {
            client: ApiClient::with_timeout(&url, Duration::from_secs(60))?,
            url,
            data_dir,
            external_labels: external_labels.clone(),
            guard,
        })
    }

    /// The process guard (log tail, pid).
    pub fn guard(&self) -> &ProcessGuard {
        &self.guard
    }
}
