//! The processes of a run: started inside their namespace, killed,
//! paused, restarted, and watched for exits the harness did not cause.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::topology::netns::Netns;

/// How to (re)start one process.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub ns: Netns,
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Readiness URL (GET answers 200 when ready).
    pub ready_url: Option<String>,
    /// Part of the system under test: a slow or unclean graceful stop is
    /// recorded. Helpers (the S3 server) are only stopped.
    pub under_test: bool,
}

/// What the harness last did to a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum State {
    Running,
    Paused,
    /// Killed with SIGKILL by the harness; any exit is expected.
    Killed,
    /// Asked to stop with SIGTERM; exit status 0 is expected.
    Terminated,
}

/// An exit the harness did not cause, or an unclean graceful stop.
#[derive(Clone, Debug, Serialize)]
pub struct Crash {
    pub name: String,
    pub at_s: f64,
    pub status: String,
    pub log_tail: String,
    /// Exit 0 after logging a signal-driven shutdown: something outside
    /// the harness sent SIGTERM/SIGINT (not a crash of the process).
    pub external_stop: bool,
}

struct Proc {
    spec: Spec,
    child: Option<Child>,
    state: State,
    starts: u32,
}

/// Every process of the run.
pub struct Procs {
    procs: BTreeMap<String, Proc>,
    pub crashes: Vec<Crash>,
    log_dir: PathBuf,
    t0: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("unknown process {0}")]
    Unknown(String),
    #[error("cannot start {name}: {msg}")]
    Start { name: String, msg: String },
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: plain syscall on a pid this harness spawned and has not reaped.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

impl Procs {
    pub fn new(log_dir: PathBuf, t0: Instant) -> Procs {
        Procs {
            procs: BTreeMap::new(),
            crashes: Vec::new(),
            log_dir,
            t0,
        }
    }

    /// Sets the instant crash times are measured from.
    pub fn set_epoch(&mut self, t0: Instant) {
        self.t0 = t0;
    }

    fn now_s(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("{name}.log"))
    }

    /// Registers and starts a process.
    pub fn add(&mut self, spec: Spec) -> Result<(), ProcError> {
        let name = spec.name.clone();
        self.procs.insert(
            name.clone(),
            Proc {
                spec,
                child: None,
                state: State::Killed,
                starts: 0,
            },
        );
        self.start(&name)
    }

    /// (Re)starts a registered process that is not running.
    pub fn start(&mut self, name: &str) -> Result<(), ProcError> {
        let log = self.log_path(name);
        let p = self
            .procs
            .get_mut(name)
            .ok_or_else(|| ProcError::Unknown(name.to_string()))?;
        let err = |msg: String| ProcError::Start {
            name: name.to_string(),
            msg,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| err(e.to_string()))?;
        let file2 = file.try_clone().map_err(|e| err(e.to_string()))?;
        let mut cmd = p
            .spec
            .ns
            .command(&p.spec.program)
            .map_err(|e| err(e.to_string()))?;
        cmd.args(&p.spec.args)
            .envs(p.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2);
        let child = cmd.spawn().map_err(|e| err(e.to_string()))?;
        p.child = Some(child);
        p.state = State::Running;
        p.starts += 1;
        Ok(())
    }

    pub fn ready_url(&self, name: &str) -> Option<String> {
        self.procs.get(name).and_then(|p| p.spec.ready_url.clone())
    }

    pub fn names(&self) -> Vec<String> {
        self.procs.keys().cloned().collect()
    }

    pub fn state(&self, name: &str) -> Option<State> {
        self.procs.get(name).map(|p| p.state)
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.procs
            .get(name)
            .and_then(|p| p.child.as_ref())
            .map(Child::id)
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self, name: &str) -> Result<(), ProcError> {
        let p = self
            .procs
            .get_mut(name)
            .ok_or_else(|| ProcError::Unknown(name.to_string()))?;
        if let Some(mut c) = p.child.take() {
            if p.state == State::Paused {
                signal(&c, libc::SIGCONT);
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        p.state = State::Killed;
        Ok(())
    }

    /// SIGSTOP (`pause = true`) or SIGCONT.
    pub fn pause(&mut self, name: &str, pause: bool) -> Result<(), ProcError> {
        let p = self
            .procs
            .get_mut(name)
            .ok_or_else(|| ProcError::Unknown(name.to_string()))?;
        if let Some(c) = &p.child {
            signal(c, if pause { libc::SIGSTOP } else { libc::SIGCONT });
            p.state = if pause { State::Paused } else { State::Running };
        }
        Ok(())
    }

    /// SIGTERM, wait up to `grace`, and record a crash unless it exits 0.
    pub fn terminate(&mut self, name: &str, grace: Duration) -> Result<(), ProcError> {
        let now = self.now_s();
        let log = self.log_path(name);
        let p = self
            .procs
            .get_mut(name)
            .ok_or_else(|| ProcError::Unknown(name.to_string()))?;
        let Some(mut c) = p.child.take() else {
            return Ok(());
        };
        if p.state == State::Paused {
            signal(&c, libc::SIGCONT);
        }
        signal(&c, libc::SIGTERM);
        p.state = State::Terminated;
        let deadline = Instant::now() + grace;
        let status = loop {
            match c.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => break None,
            }
        };
        let bad = match status {
            Some(s) if s.success() => None,
            Some(s) => Some(format!("graceful stop exited with {s}")),
            None => {
                let _ = c.kill();
                let _ = c.wait();
                Some(format!("did not exit within {grace:?} of SIGTERM"))
            }
        };
        if let Some(status) = bad.filter(|_| p.spec.under_test) {
            self.crashes.push(Crash {
                name: name.to_string(),
                at_s: now,
                status,
                log_tail: tail(&log),
                external_stop: false,
            });
        }
        Ok(())
    }

    /// Records every process that exited while it should run; returns
    /// their names (they are not restarted here).
    pub fn check(&mut self) -> Vec<String> {
        let now = self.now_s();
        let mut exited = Vec::new();
        for (name, p) in self.procs.iter_mut() {
            if !matches!(p.state, State::Running | State::Paused) {
                continue;
            }
            let Some(c) = p.child.as_mut() else { continue };
            if let Ok(Some(status)) = c.try_wait() {
                p.child = None;
                p.state = State::Killed;
                exited.push(name.clone());
                let log_tail = tail(&self.log_dir.join(format!("{name}.log")));
                self.crashes.push(Crash {
                    name: name.clone(),
                    at_s: now,
                    status: status.to_string(),
                    external_stop: status.success()
                        && (log_tail.contains("shutting down")
                            || log_tail.contains("exiting gracefully")),
                    log_tail,
                });
            }
        }
        exited
    }

    /// Stops everything: SIGTERM with a grace, then SIGKILL.
    pub fn shutdown(&mut self, grace: Duration) {
        self.check();
        for name in self.names() {
            let _ = self.terminate(&name, grace);
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for p in self.procs.values_mut() {
            if let Some(mut c) = p.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// The last lines of a log file.
pub fn tail(path: &std::path::Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    let from = lines.len().saturating_sub(15);
    lines.get(from..).unwrap_or_default().join("\n")
}

/// Polls `url` until it answers 200 or the deadline passes.
pub async fn wait_ready(
    client: &reqwest::Client,
    url: &str,
    within: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut last = String::from("never tried");
    while start.elapsed() < within {
        match client.get(url).timeout(Duration::from_secs(2)).send().await {
            Ok(r) if r.status().is_success() => return Ok(start.elapsed()),
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("{url} not ready within {within:?}: {last}"))
}
