//! Network namespaces: create, delete, run a command inside one, and
//! find the leftovers of earlier runs.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Every namespace this harness creates starts with this.
pub const PREFIX: &str = "skc";

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("`{cmd}` failed: {msg}")]
    Command { cmd: String, msg: String },
    #[error("cannot open namespace {name}: {source}")]
    Open {
        name: String,
        source: std::io::Error,
    },
}

/// Runs a command to completion; an error carries its stderr.
pub fn run(cmd: &mut Command) -> Result<String, NetnsError> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetnsError::Command {
            cmd: shown.clone(),
            msg: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(NetnsError::Command {
            cmd: shown,
            msg: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip ARGS...`
pub fn ip(args: &[&str]) -> Result<String, NetnsError> {
    run(Command::new("ip").args(args))
}

/// A named network namespace (`/run/netns/NAME`).
#[derive(Clone, Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates the namespace and brings its loopback up.
    pub fn create(name: &str) -> Result<Netns, NetnsError> {
        ip(&["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n NAME ARGS...`
    pub fn ip(&self, args: &[&str]) -> Result<String, NetnsError> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A command that will run inside this namespace.
    pub fn command(&self, program: &str) -> Result<Command, NetnsError> {
        let file = self.open()?;
        let mut cmd = Command::new(program);
        // SAFETY: setns is async-signal-safe; the closure only uses the fd
        // it owns, which stays open in the child until exec (CLOEXEC).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(cmd)
    }

    /// Runs `nft -f -` with `script` inside this namespace.
    pub fn nft(&self, script: &str) -> Result<(), NetnsError> {
        use std::io::Write;
        let mut cmd = self.command("nft")?;
        let shown = format!("nft in {}: {script}", self.name);
        let mut child = cmd
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| NetnsError::Command {
                cmd: shown.clone(),
                msg: e.to_string(),
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .map_err(|e| NetnsError::Command {
                    cmd: shown.clone(),
                    msg: e.to_string(),
                })?;
        }
        let out = child.wait_with_output().map_err(|e| NetnsError::Command {
            cmd: shown.clone(),
            msg: e.to_string(),
        })?;
        if !out.status.success() {
            return Err(NetnsError::Command {
                cmd: shown,
                msg: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// The namespace file, for `setns`.
    pub fn open(&self) -> Result<File, NetnsError> {
        let path = format!("/run/netns/{}", self.name);
        File::open(&path).map_err(|source| NetnsError::Open {
            name: self.name.clone(),
            source,
        })
    }

    /// Moves the calling thread into this namespace.
    pub fn enter_current_thread(&self) -> Result<(), NetnsError> {
        let file = self.open()?;
        // SAFETY: plain syscall on an fd we own.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(NetnsError::Command {
                cmd: format!("setns {}", self.name),
                msg: std::io::Error::last_os_error().to_string(),
            });
        }
        Ok(())
    }

    /// Pids of the processes inside this namespace.
    pub fn pids(&self) -> Vec<i32> {
        ip(&["netns", "pids", &self.name])
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Kills what still runs inside and deletes the namespace.
    pub fn destroy(&self) {
        for pid in self.pids() {
            // SAFETY: plain syscall; the pids are inside a namespace this
            // harness created.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Names of every namespace with the harness prefix.
pub fn list_ours() -> Vec<String> {
    ip(&["netns", "list"])
        .map(|s| {
            s.lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter(|n| n.starts_with(PREFIX))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The owning harness pid encoded in a name like `skc1234-c1p0`.
pub fn owner_pid(name: &str) -> Option<i32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

/// True while a process with this pid exists.
pub fn pid_alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes leftover namespaces (and what runs in them) whose harness is
/// gone, or all of ours with `all`. Returns the names removed.
pub fn cleanup(all: bool) -> Vec<String> {
    let me = std::process::id() as i32;
    let mut removed = Vec::new();
    for name in list_ours() {
        let stale = match owner_pid(&name) {
            Some(pid) => pid != me && !pid_alive(pid),
            None => true,
        };
        if all || stale {
            Netns { name: name.clone() }.destroy();
            removed.push(name);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_prefix() {
        assert_eq!(owner_pid("skc1234-c1p0"), Some(1234));
        assert_eq!(owner_pid("skcx-c1"), None);
        assert_eq!(owner_pid("other"), None);
    }
}
