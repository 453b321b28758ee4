//! Runs a real Prometheus 2.42 (`/usr/bin/prometheus`) for tests: a temp
//! data dir (optionally filled from OpenMetrics text by `promtool tsdb
//! create-blocks-from openmetrics`), a free port on 127.0.0.1, killed on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestPrometheus {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestPrometheus {
    /// Writes `config_yaml`, imports `openmetrics` (if any, must end with
    /// `# EOF`), starts Prometheus and waits until `/-/ready` answers 200.
    pub async fn start(config_yaml: &str, openmetrics: Option<&str>) -> TestPrometheus {
        Self::start_on(free_port(), config_yaml, openmetrics).await
    }

    /// As [`TestPrometheus::start`], on a given port.
    pub async fn start_on(
        port: u16,
        config_yaml: &str,
        openmetrics: Option<&str>,
    ) -> TestPrometheus {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_yaml).unwrap();
        if let Some(om) = openmetrics {
            let input = dir.path().join("input.om");
            std::fs::write(&input, om).unwrap();
            let out = Command::new("promtool")
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&input)
                .arg(&data)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "promtool failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=30d")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut p = TestPrometheus {
            child: Some(child),
            port,
            dir,
        };
        p.wait_ready().await;
        p
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("prometheus.log")
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/-/ready", self.url());
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "prometheus exited with {status}:\n{}",
                    std::fs::read_to_string(self.log_path()).unwrap_or_default()
                );
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready after 60s:\n{}",
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills Prometheus and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        self.stop();
    }
}
