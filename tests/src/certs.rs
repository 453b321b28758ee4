//! Development mutual-TLS material made by `skein tools certs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::bail;

use crate::process::run_with_timeout;
use crate::skein::skein_bin;

/// A directory with `ca.crt` and `<node>.crt`/`<node>.key` per node.
#[derive(Debug, Clone)]
pub struct CertDir {
    pub dir: PathBuf,
}

impl CertDir {
    /// `skein tools certs --out <dir> --node <name>=127.0.0.1,localhost ...`;
    /// a node given as `name@cluster` gets the identity of that cluster
    /// (federation `skein`), which gossip-discovered stores need.
    pub fn create(dir: &Path, nodes: &[&str], scratch: &Path) -> anyhow::Result<Self> {
        let mut cmd = Command::new(skein_bin()?);
        cmd.args(["tools", "certs", "--out"]).arg(dir);
        for n in nodes {
            cmd.arg("--node").arg(format!("{n}=127.0.0.1,localhost"));
        }
        let out = run_with_timeout(cmd, Duration::from_secs(30), scratch)?;
        if !out.status.success() {
            bail!(
                "skein tools certs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// `--tls.cert-file/--tls.key-file/--tls.ca-file` flags for `node`.
    pub fn flags(&self, node: &str) -> Vec<String> {
        vec![
            "--tls.cert-file".into(),
            self.dir.join(format!("{node}.crt")).display().to_string(),
            "--tls.key-file".into(),
            self.dir.join(format!("{node}.key")).display().to_string(),
            "--tls.ca-file".into(),
            self.dir.join("ca.crt").display().to_string(),
        ]
    }
}
