//! Launching a real Prometheus 2.42 on a temp data dir, optionally pre-filled
//! with generated blocks, with external labels and a self-scrape job.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::datagen::Dataset;
use crate::http::ApiClient;
use crate::labels::LabelSet;
use crate::ports::free_port;
use crate::process::ProcessGuard;
use crate::wait::wait_ready;

/// Installed Prometheus binary.
pub const PROMETHEUS: &str = "/usr/bin/prometheus";

/// How long Prometheus may take to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(40);

/// A running Prometheus server (killed on drop).
#[derive(Debug)]
pub struct PrometheusServer {
    pub name: String,
    pub url: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub external_labels: LabelSet,
    pub client: ApiClient,
    guard: ProcessGuard,
}

impl PrometheusServer {
    /// Start Prometheus `name` under `work_dir/<name>`: blocks from `dataset` are
    /// written first (if any), then the server is started and waited for on /-/ready.
    pub fn start(
        work_dir: &Path,
        name: &str,
        external_labels: &LabelSet,
        dataset: Option<&Dataset>,
    ) -> anyhow::Result<Self> {
        Self::start_with_args(work_dir, name, external_labels, dataset, &[])
    }

    /// Like [`PrometheusServer::start`], with additional command-line flags
    /// (e.g. `--storage.tsdb.min-block-duration=2h`).
    pub fn start_with_args(
        work_dir: &Path,
        name: &str,
        external_labels: &LabelSet,
        dataset: Option<&Dataset>,
        extra_args: &[String],
    ) -> anyhow::Result<Self> {
        let dir = work_dir.join(name);
        let data_dir = dir.join("data");
        std::fs::create_dir_all(&data_dir)?;
        if let Some(ds) = dataset {
            ds.write_blocks(&dir, &data_dir, Duration::from_secs(600))?;
        }
        let port = free_port()?;
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, config_yaml(port, external_labels))?;
        let mut cmd = Command::new(PROMETHEUS);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data_dir.display()))
            .arg("--storage.tsdb.retention.time=30d")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=info")
            .args(extra_args);
        let guard = ProcessGuard::spawn(name, cmd, &dir)?;
        let url = format!("http://127.0.0.1:{port}");
        let client = ApiClient::with_timeout(&url, Duration::from_secs(60))?;
        let mut server = Self {
            name: name.to_string(),
            url,
            port,
            data_dir,
            external_labels: external_labels.clone(),
            client,
            guard,
        };
        server.wait_ready(READY_TIMEOUT)?;
        Ok(server)
    }

    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        wait_ready(&mut self.guard, &self.url, timeout)
    }

    /// The process guard (log tail, pid).
    pub fn guard(&self) -> &ProcessGuard {
        &self.guard
    }

    /// Kill the server now.
    pub fn kill(&mut self) {
        self.guard.kill();
    }
}

/// prometheus.yml: 15 s scrapes of itself, the given external labels.
pub fn config_yaml(port: u16, external_labels: &LabelSet) -> String {
    let mut s = String::from("global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n");
    if !external_labels.is_empty() {
        s.push_str("  external_labels:\n");
        for (k, v) in external_labels {
            s.push_str(&format!("    {k}: {}\n", yaml_quote(v)));
        }
    }
    s.push_str(&format!(
        "scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
    ));
    s
}

fn yaml_quote(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}
