//! The storage path of a Skein deployment: sidecars that ship Prometheus blocks
//! to a bucket, store nodes that serve the bucket, and the waits between them.

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::{anyhow, bail};

use crate::blocks::{LocalBlock, all_recorded, local_blocks, shipper_record};
use crate::bucket::TestBucket;
use crate::http::ApiClient;
use crate::ports::free_addr;
use crate::process::ProcessGuard;
use crate::promjson::QueryData;
use crate::scrape::metric;
use crate::skein::{SkeinNode, skein_bin};
use crate::wait::{Poll, poll, poll_until};

/// Prometheus flags that keep every block at 2 h and level 1, as a shipping
/// sidecar requires (the shipper leaves compacted blocks to the compactor).
pub fn no_compaction_args() -> Vec<String> {
    vec![
        "--storage.tsdb.min-block-duration=2h".to_string(),
        "--storage.tsdb.max-block-duration=2h".to_string(),
    ]
}

/// Sidecar flags that turn the shipper on.
pub fn shipper_args(tsdb_path: &Path, bucket: &TestBucket, interval: &str) -> Vec<String> {
    vec![
        "--sidecar.tsdb-path".to_string(),
        tsdb_path.display().to_string(),
        "--sidecar.objstore-config-file".to_string(),
        bucket.config_file.display().to_string(),
        "--sidecar.ship-interval".to_string(),
        interval.to_string(),
    ]
}

/// Flags of a store node over `bucket`, index headers under `data_dir`.
pub fn store_args(bucket: &TestBucket, data_dir: &Path, sync_interval: &str) -> Vec<String> {
    vec![
        "--roles".to_string(),
        "store".to_string(),
        "--store.objstore-config-file".to_string(),
        bucket.config_file.display().to_string(),
        "--store.data-dir".to_string(),
        data_dir.display().to_string(),
        "--store.sync-interval".to_string(),
        sync_interval.to_string(),
    ]
}

/// Start a store node over `bucket` (waited on /-/ready).
pub fn start_store(
    work_dir: &Path,
    name: &str,
    bucket: &TestBucket,
    sync_interval: &str,
    extra: &[String],
) -> anyhow::Result<SkeinNode> {
    let mut args = store_args(bucket, &work_dir.join(name).join("data"), sync_interval);
    args.extend_from_slice(extra);
    SkeinNode::start(work_dir, name, &args)
}

/// A skein node started without waiting for readiness (for crash tests that must
/// kill it at an arbitrary moment).
#[derive(Debug)]
pub struct RawNode {
    pub guard: ProcessGuard,
    pub client: ApiClient,
}

/// `skein node --dev <args>` on free ports, not waited for.
pub fn spawn_node(work_dir: &Path, name: &str, args: &[String]) -> anyhow::Result<RawNode> {
    let dir = work_dir.join(name);
    std::fs::create_dir_all(&dir)?;
    let http = free_addr()?;
    let grpc = free_addr()?;
    let mut cmd = Command::new(skein_bin()?);
    cmd.arg("node")
        .args(args)
        .arg("--dev")
        .arg("--http-address")
        .arg(http.to_string())
        .arg("--grpc-address")
        .arg(grpc.to_string())
        .env("NO_COLOR", "1")
        .env_remove("SKEIN_DEV");
    let guard = ProcessGuard::spawn(name, cmd, &dir)?;
    let client = ApiClient::with_timeout(&format!("http://{http}"), Duration::from_secs(10))?;
    Ok(RawNode { guard, client })
}

/// A child process a wait can watch (fail early when it exits).
pub trait Watched {
    fn watched_name(&self) -> String;
    fn exit_status(&mut self) -> Option<ExitStatus>;
    fn tail(&self, lines: usize) -> String;
}

impl Watched for ProcessGuard {
    fn watched_name(&self) -> String {
        self.name().to_string()
    }
    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.exited()
    }
    fn tail(&self, lines: usize) -> String {
        self.log_tail(lines)
    }
}

impl Watched for SkeinNode {
    fn watched_name(&self) -> String {
        self.name.clone()
    }
    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.exited()
    }
    fn tail(&self, lines: usize) -> String {
        self.guard().log_tail(lines)
    }
}

/// Wait until the shipper record in `data_dir` lists every block of `blocks`;
/// fails early when `node` exits.
pub fn wait_recorded(
    data_dir: &Path,
    blocks: &[LocalBlock],
    node: &mut impl Watched,
    timeout: Duration,
) -> anyhow::Result<()> {
    poll(
        &format!(
            "{} to record {} shipped blocks",
            node.watched_name(),
            blocks.len()
        ),
        timeout,
        Duration::from_millis(100),
        || {
            if let Some(st) = node.exit_status() {
                return Poll::Fatal(anyhow!(
                    "{} exited: {st}\n{}",
                    node.watched_name(),
                    node.tail(30)
                ));
            }
            match all_recorded(data_dir, blocks) {
                Ok(true) => Poll::Ready(()),
                Ok(false) => Poll::Pending(format!(
                    "record so far: {:?}",
                    shipper_record(data_dir).ok().flatten()
                )),
                Err(e) => Poll::Pending(format!("{e:#}")),
            }
        },
    )
}

/// The level-1 blocks of a Prometheus data dir: what a sidecar ships. Fails
/// when there are none or when Prometheus compacted some (the test set-up would
/// then not prove what it claims).
pub fn blocks_to_ship(data_dir: &Path) -> anyhow::Result<Vec<LocalBlock>> {
    let blocks = local_blocks(data_dir)?;
    if blocks.is_empty() {
        bail!("no blocks in {}", data_dir.display());
    }
    if let Some(b) = blocks.iter().find(|b| b.level != 1) {
        bail!(
            "block {} in {} has compaction level {}; start Prometheus with no_compaction_args()",
            b.id,
            data_dir.display(),
            b.level
        );
    }
    Ok(blocks)
}

/// Wait until the store node says it serves exactly `n` blocks
/// (`skein_store_blocks_loaded`).
pub fn wait_store_blocks(store: &SkeinNode, n: usize, timeout: Duration) -> anyhow::Result<()> {
    poll_until(
        &format!("{} to serve {n} blocks", store.name),
        timeout,
        Duration::from_millis(200),
        || {
            let loaded = metric(&store.client, "skein_store_blocks_loaded")?;
            if loaded as usize == n {
                Ok(Some(()))
            } else {
                Err(anyhow!("skein_store_blocks_loaded = {loaded}"))
            }
        },
    )
}

/// Wait until the store node serves at least `n` blocks.
pub fn wait_store_at_least(store: &SkeinNode, n: usize, timeout: Duration) -> anyhow::Result<()> {
    poll_until(
        &format!("{} to serve at least {n} blocks", store.name),
        timeout,
        Duration::from_millis(200),
        || {
            let loaded = metric(&store.client, "skein_store_blocks_loaded")?;
            if loaded as usize >= n {
                Ok(Some(()))
            } else {
                Err(anyhow!("skein_store_blocks_loaded = {loaded}"))
            }
        },
    )
}

/// Wait until `count by (cluster) ({__name__=<metric>})` at `at_ms` through
/// `querier` shows every cluster of `want`.
pub fn wait_clusters_visible(
    querier: &ApiClient,
    metric_name: &str,
    want: &[&str],
    at_ms: i64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let q = format!("count by (cluster) ({metric_name})");
    poll_until(
        "querier to see every cluster",
        timeout,
        Duration::from_millis(250),
        || {
            let seen: Vec<String> = match querier.query(&q, at_ms)? {
                QueryData::Vector(m) => m
                    .keys()
                    .filter_map(|ls| ls.get("cluster").cloned())
                    .collect(),
                _ => Vec::new(),
            };
            if want.iter().all(|w| seen.iter().any(|s| s == w)) {
                Ok(Some(()))
            } else {
                Err(anyhow!("clusters seen so far: {seen:?}"))
            }
        },
    )
}
