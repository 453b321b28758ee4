//! Launching `skein node` processes per the CLI contract
//! (/work/notes/cli-contract.md): sidecars next to Prometheus, queriers over
//! static store addresses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::bail;

use crate::http::ApiClient;
use crate::ports::free_addr;
use crate::process::ProcessGuard;
use crate::wait::wait_ready;

/// How long a skein node may take to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The skein binary: `$SKEIN_BIN`, else `<workspace>/target/debug/skein`.
/// Fails with a clear message when it is missing (tests never run cargo).
pub fn skein_bin() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("SKEIN_BIN") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("debug")
            .join("skein"),
    };
    if !path.is_file() {
        bail!(
            "skein binary not found at {} -- build it first with `cargo build -p skein-node --bin skein` \
             (or set SKEIN_BIN)",
            path.display()
        );
    }
    Ok(path)
}

/// A running skein node (killed on drop).
#[derive(Debug)]
pub struct SkeinNode {
    pub name: String,
    pub http_url: String,
    pub grpc_addr: SocketAddr,
    pub client: ApiClient,
    guard: ProcessGuard,
}

impl SkeinNode {
    /// `skein node --roles sidecar --sidecar.prometheus-url <prometheus_url>`.
    pub fn start_sidecar(
        work_dir: &Path,
        name: &str,
        prometheus_url: &str,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let mut args = vec![
            "--roles".to_string(),
            "sidecar".to_string(),
            "--sidecar.prometheus-url".to_string(),
            prometheus_url.to_string(),
        ];
        args.extend_from_slice(extra);
        Self::start(work_dir, name, &args)
    }

    /// `skein node --roles query --query.store A --query.store B ...`.
    pub fn start_querier(
        work_dir: &Path,
        name: &str,
        stores: &[String],
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let mut args = vec!["--roles".to_string(), "query".to_string()];
        for s in stores {
            args.push("--query.store".to_string());
            args.push(s.clone());
        }
        args.extend_from_slice(extra);
        Self::start(work_dir, name, &args)
    }

    /// `skein node <args> --http-address <free> --grpc-address <free>`, waited on /-/ready.
    pub fn start(work_dir: &Path, name: &str, args: &[String]) -> anyhow::Result<Self> {
        let bin = skein_bin()?;
        let dir = work_dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let http = free_addr()?;
        let grpc = free_addr()?;
        let mut cmd = Command::new(bin);
        // Plaintext gRPC on loopback (`--dev`) unless the caller passes TLS files.
        let tls = args.iter().any(|a| a.starts_with("--tls."));
        cmd.arg("node").args(args);
        if !tls {
            cmd.arg("--dev");
        }
        cmd.arg("--http-address")
            .arg(http.to_string())
            .arg("--grpc-address")
            .arg(grpc.to_string())
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            // `--dev` above decides plaintext vs TLS; no inherited setting may override it.
            .env_remove("SKEIN_DEV");
        let guard = ProcessGuard::spawn(name, cmd, &dir)?;
        let http_url = format!("http://{http}");
        let client = ApiClient::with_timeout(&http_url, Duration::from_secs(30))?;
        let mut node = Self {
            name: name.to_string(),
            http_url,
            grpc_addr: grpc,
            client,
            guard,
        };
        node.wait_ready(READY_TIMEOUT)?;
        Ok(node)
    }

    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        wait_ready(&mut self.guard, &self.http_url, timeout)
    }

    /// The gRPC address as `host:port` for `--query.store`.
    pub fn store_address(&self) -> String {
        self.grpc_addr.to_string()
    }

    /// The process guard (log tail, pid).
    pub fn guard(&self) -> &ProcessGuard {
        &self.guard
    }

    /// Whether the process has exited, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.guard.exited()
    }
}
