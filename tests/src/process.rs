//! Child processes owned by a guard: killed and reaped on drop, output captured
//! to a file in the test's temp dir, and the tail printed when the test fails.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running child process. Dropping the guard kills the child and waits for it.
#[derive(Debug)]
pub struct ProcessGuard {
    name: String,
    child: Option<Child>,
    log_path: PathBuf,
}

impl ProcessGuard {
    /// Spawn `cmd` with stdout and stderr both appended to `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> anyhow::Result<Self> {
        let log_path = log_dir.join(format!("{name}.log"));
        let out = File::create(&log_path)?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {name} ({:?}): {e}", cmd.get_program()))?;
        Ok(Self {
            name: name.to_string(),
            child: Some(child),
            log_path,
        })
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where stdout/stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The OS process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if the child has already exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The last `lines` lines of the captured output.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of_file(&self.log_path, lines)
    }

    /// Kill the child (SIGKILL) and reap it. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!(
                "----- last lines of {} ({}) -----\n{}\n----- end of {} -----",
                self.name,
                self.log_path.display(),
                self.log_tail(40),
                self.name
            );
        }
    }
}

/// The last `lines` lines of a file (reads at most the last 64 KiB).
pub fn tail_of_file(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return format!("<cannot open {}>", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(64 * 1024);
    let _ = f.seek(SeekFrom::Start(from));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

/// Run `cmd` to completion within `timeout`, capturing stdout and stderr through
/// files in `scratch` (no pipe deadlocks). Kills the child on timeout.
pub fn run_with_timeout(
    mut cmd: Command,
    timeout: Duration,
    scratch: &Path,
) -> anyhow::Result<Output> {
    let id = format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let out_path = scratch.join(format!("run-{id}.out"));
    let err_path = scratch.join(format!("run-{id}.err"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?);
    let program = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {program}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!(
                "{program} did not finish within {timeout:?}; stderr:\n{}",
                tail_of_file(&err_path, 20)
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: std::fs::read(&out_path)?,
        stderr: std::fs::read(&err_path)?,
    })
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
