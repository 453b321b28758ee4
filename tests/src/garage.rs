//! A throw-away single-node Garage (S3-compatible object store) for the storage
//! tests: its own temp dir and ports, one bucket and one access key allowed on it.
//!
//! Binary lookup: `$SKEIN_GARAGE_BIN`, then `garage` on `PATH`, then
//! `~/.cargo/bin/garage`. When none exists, [`GarageServer::start`] answers
//! `Ok(None)` after printing why, except with `CI=true`, where a missing Garage
//! is an error (CI must not silently skip the S3 half of the tests).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use crate::ports::free_port;
use crate::process::{ProcessGuard, run_with_timeout};
use crate::wait::{Poll, poll};

/// Region name configured on the node (any string; clients must send the same).
pub const REGION: &str = "garage";

/// Bucket created at start.
pub const BUCKET: &str = "skein-e2e";

const KEY_NAME: &str = "skein-e2e-key";

/// A running Garage node (killed on drop).
#[derive(Debug)]
pub struct GarageServer {
    /// `127.0.0.1:<port>` of the S3 API.
    pub endpoint: String,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
    bin: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    guard: ProcessGuard,
}

/// Where the garage binary is, if anywhere.
pub fn garage_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SKEIN_GARAGE_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("garage"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let p = PathBuf::from(std::env::var_os("HOME")?).join(".cargo/bin/garage");
        p.is_file().then_some(p)
    })
}

/// Whether the environment says this is CI (`CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// 32 random bytes as hex, from the kernel.
fn random_hex32() -> anyhow::Result<String> {
    let bytes = std::fs::read("/proc/sys/kernel/random/uuid")
        .and_then(|a| std::fs::read("/proc/sys/kernel/random/uuid").map(|b| [a, b].concat()))
        .context("reading /proc/sys/kernel/random/uuid")?;
    let hex: String = String::from_utf8_lossy(&bytes)
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(64)
        .collect();
    if hex.len() != 64 {
        bail!("kernel uuid source gave too few hex digits");
    }
    Ok(hex)
}

/// The value after `name:` on the first line that starts with `name`.
fn field_value(text: &str, name: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(name))
        .map(|rest| rest.trim_start_matches(':').trim().to_string())
        .filter(|v| !v.is_empty())
}

impl GarageServer {
    /// Start Garage under `work_dir/garage`, or `Ok(None)` when it is not
    /// installed and this is not CI.
    pub fn start(work_dir: &Path) -> anyhow::Result<Option<Self>> {
        let Some(bin) = garage_bin() else {
            if in_ci() {
                bail!(
                    "CI=true but no garage binary was found (set SKEIN_GARAGE_BIN, put garage on PATH \
                     or install it to ~/.cargo/bin)"
                );
            }
            println!("SKIP (Garage part): no garage binary found; the S3 checks did not run");
            return Ok(None);
        };
        Self::start_with(bin, work_dir).map(Some)
    }

    fn start_with(bin: PathBuf, work_dir: &Path) -> anyhow::Result<Self> {
        let dir = work_dir.join("garage");
        std::fs::create_dir_all(dir.join("meta"))?;
        std::fs::create_dir_all(dir.join("data"))?;
        let (rpc, s3, admin) = (free_port()?, free_port()?, free_port()?);
        let config = dir.join("garage.toml");
        let toml = format!(
            "metadata_dir = \"{meta}\"\n\
             data_dir = \"{data}\"\n\
             db_engine = \"sqlite\"\n\
             replication_factor = 1\n\
             rpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_secret = \"{secret}\"\n\
             \n\
             [s3_api]\n\
             s3_region = \"{REGION}\"\n\
             api_bind_addr = \"127.0.0.1:{s3}\"\n\
             root_domain = \".s3.garage.localhost\"\n\
             \n\
             [admin]\n\
             api_bind_addr = \"127.0.0.1:{admin}\"\n",
            meta = dir.join("meta").display(),
            data = dir.join("data").display(),
            secret = random_hex32()?,
        );
        std::fs::write(&config, toml)?;
        let mut cmd = Command::new(&bin);
        cmd.arg("-c")
            .arg(&config)
            .arg("server")
            .env("RUST_LOG", "garage=warn");
        let guard = ProcessGuard::spawn("garage", cmd, &dir)?;
        let mut g = Self {
            endpoint: format!("127.0.0.1:{s3}"),
            bucket: BUCKET.to_string(),
            key_id: String::new(),
            secret: String::new(),
            bin,
            config,
            dir,
            guard,
        };
        g.provision()
            .with_context(|| format!("setting up Garage; log:\n{}", g.guard.log_tail(20)))?;
        Ok(g)
    }

    /// Run `garage <args>` once.
    fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-c")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "garage=warn");
        let out = run_with_timeout(cmd, Duration::from_secs(20), &self.dir)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "garage {args:?}: {}: {stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(stdout)
    }

    /// Run `garage <args>` until it succeeds (the node takes a moment to
    /// accept admin commands), failing early if the server exits.
    fn cli_retry(&mut self, args: &[&str]) -> anyhow::Result<String> {
        let what = format!("garage {}", args.join(" "));
        poll(
            &what,
            Duration::from_secs(30),
            Duration::from_millis(200),
            || {
                if let Some(status) = self.guard.exited() {
                    return Poll::Fatal(anyhow!("garage server exited with {status}"));
                }
                match self.cli(args) {
                    Ok(out) => Poll::Ready(out),
                    Err(e) => Poll::Pending(format!("{e:#}")),
                }
            },
        )
    }

    /// Layout with this one node, the bucket, the key, the key's rights.
    fn provision(&mut self) -> anyhow::Result<()> {
        let id = self.cli_retry(&["node", "id", "-q"])?;
        let node = id.trim().split('@').next().unwrap_or_default().to_string();
        if node.is_empty() {
            bail!("garage printed no node id: {id:?}");
        }
        self.cli_retry(&["layout", "assign", "-z", "dc1", "-c", "1G", &node])?;
        self.cli_retry(&["layout", "apply", "--version", "1"])?;
        let bucket = self.bucket.clone();
        self.cli_retry(&["bucket", "create", &bucket])?;
        let key = self.cli_retry(&["key", "create", KEY_NAME])?;
        self.key_id = field_value(&key, "Key ID").ok_or_else(|| anyhow!("no key id in {key}"))?;
        self.secret =
            field_value(&key, "Secret key").ok_or_else(|| anyhow!("no secret in {key}"))?;
        self.cli_retry(&[
            "bucket", "allow", "--read", "--write", "--owner", &bucket, "--key", KEY_NAME,
        ])?;
        let endpoint = self.endpoint.clone();
        poll(
            "Garage S3 port",
            Duration::from_secs(30),
            Duration::from_millis(100),
            || match std::net::TcpStream::connect(&endpoint) {
                Ok(_) => Poll::Ready(()),
                Err(e) => Poll::Pending(e.to_string()),
            },
        )
    }

    /// Thanos objstore.yml for the bucket (plain HTTP to the local node).
    pub fn objstore_yaml(&self) -> String {
        format!(
            "type: S3\nconfig:\n  bucket: {}\n  endpoint: {}\n  region: {REGION}\n  access_key: {}\n  secret_key: {}\n  insecure: true\n",
            self.bucket, self.endpoint, self.key_id, self.secret
        )
    }

    /// The process guard (log tail, pid).
    pub fn guard(&self) -> &ProcessGuard {
        &self.guard
    }
}
