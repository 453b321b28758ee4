//! Running `promtool` (the Prometheus 2.42 CLI) with a deadline.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::bail;

use crate::process::run_with_timeout;

/// Installed promtool.
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// Run promtool with `args`; returns stdout, fails with stderr on a non-zero exit.
pub fn run(args: &[&str], scratch: &Path, timeout: Duration) -> anyhow::Result<String> {
    let mut cmd = Command::new(PROMTOOL);
    cmd.args(args);
    let out = run_with_timeout(cmd, timeout, scratch)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "promtool {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}
