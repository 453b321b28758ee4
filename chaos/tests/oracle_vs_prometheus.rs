//! The oracle against a real Prometheus holding every cluster's data
//! (cluster as a series label): random workload queries must agree.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skein_chaos::datagen::{self, DataSpec};
use skein_chaos::oracle::{Oracle, compare};
use skein_chaos::schedule::Rng;
use skein_chaos::workload;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_matches_prometheus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let spec = DataSpec::ending_before(5, 2, 4, 3, now);
    datagen::write_blocks(
        &spec.openmetrics_of(&[0, 1], true),
        &dir.path().join("tsdb"),
    )
    .expect("blocks");
    std::fs::write(dir.path().join("p.yml"), "scrape_configs: []\n").expect("config");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let _prom = Kill(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("p.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=30d")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{base}/-/ready"))
        .send()
        .await
        .map(|r| !r.status().is_success())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "prometheus not ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let oracle = Oracle::new(spec);
    let mut rng = Rng::new(99);
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..120 {
        let q = oracle.random_query(&mut rng);
        let want = oracle.answer(&q);
        let (got, warnings) = workload::send(&client, &base, &q, Duration::from_secs(10))
            .await
            .expect("query");
        assert!(warnings.is_empty(), "{warnings:?}");
        if let Err(d) = compare(&want, &got) {
            panic!("{} at {} {:?}: {d}", q.promql, q.start_ms, q.range);
        }
        if !want.is_empty() {
            kinds.insert(q.kind.label());
        }
    }
    assert_eq!(kinds.len(), 8, "{kinds:?}");
}
