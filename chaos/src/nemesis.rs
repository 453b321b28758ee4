//! Applying and healing faults: signals through the process registry,
//! nft drop rules inside namespaces for partitions, isolation and S3
//! outages.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::datagen::DataSpec;
use crate::procs::Procs;
use crate::schedule::Fault;
use crate::topology::bridge::cidr;
use crate::topology::netns::Netns;

/// What the nemesis can reach.
pub struct Nemesis {
    pub procs: Arc<Mutex<Procs>>,
    pub router: Netns,
    /// host name -> namespace
    pub hosts: BTreeMap<String, Netns>,
    pub queriers: Vec<String>,
    /// Host name of the S3 server and its port.
    pub s3: Option<(String, u16)>,
    /// sidecar -> (cluster index, Prometheus TSDB dir), for upload faults.
    pub uploads: BTreeMap<String, (usize, PathBuf)>,
    pub data: DataSpec,
    /// Blocks added so far (each upload fault adds one).
    pub added: AtomicI64,
}

fn lock(p: &Arc<Mutex<Procs>>) -> Result<std::sync::MutexGuard<'_, Procs>, String> {
    p.lock()
        .map_err(|_| "process registry poisoned".to_string())
}

fn subnet(cluster: usize) -> u8 {
    (cluster + 1) as u8
}

impl Nemesis {
    fn host(&self, name: &str) -> Result<&Netns, String> {
        self.hosts
            .get(name)
            .ok_or_else(|| format!("unknown host {name}"))
    }

    /// Starts a fault (blocking; call from a blocking context).
    pub fn begin(&self, f: &Fault) -> Result<(), String> {
        match f {
            Fault::KillRestart { proc } => lock(&self.procs)?.kill9(proc).map_err(|e| e.to_string()),
            Fault::SidecarKillDuringUpload { proc } => self.kill_during_upload(proc),
            Fault::Pause { proc } => lock(&self.procs)?
                .pause(proc, true)
                .map_err(|e| e.to_string()),
            Fault::Partition { a, b } => {
                let (a, b) = (cidr(subnet(*a)), cidr(subnet(*b)));
                self.router
                    .nft(&format!(
                        "table inet skcpart {{\n chain skcfwd {{\n  type filter hook forward priority 0;\n  ip saddr {a} ip daddr {b} drop\n  ip saddr {b} ip daddr {a} drop\n }}\n}}\n"
                    ))
                    .map_err(|e| e.to_string())
            }
            Fault::Isolate { host } => self
                .host(host)?
                .nft(
                    "table inet skciso {\n chain skcin {\n  type filter hook input priority 0;\n  iifname \"eth0\" drop\n }\n chain skcout {\n  type filter hook output priority 0;\n  oifname \"eth0\" drop\n }\n}\n",
                )
                .map_err(|e| e.to_string()),
            Fault::S3Outage => {
                let (host, port) = self.s3.as_ref().ok_or("no S3 server in this run")?;
                self.host(host)?
                    .nft(&format!(
                        "table inet skcs3 {{\n chain skcin {{\n  type filter hook input priority 0;\n  tcp dport {port} drop\n }}\n}}\n"
                    ))
                    .map_err(|e| e.to_string())
            }
            Fault::QuerierTierRestart => {
                let mut p = lock(&self.procs)?;
                for q in &self.queriers {
                    p.terminate(q, Duration::from_secs(10))
                        .map_err(|e| e.to_string())?;
                }
                for q in &self.queriers {
                    p.start(q).map_err(|e| e.to_string())?;
                }
                Ok(())
            }
        }
    }

    /// Heals a fault (idempotent).
    pub fn end(&self, f: &Fault) -> Result<(), String> {
        match f {
            Fault::KillRestart { proc } | Fault::SidecarKillDuringUpload { proc } => {
                let mut p = lock(&self.procs)?;
                if p.pid(proc).is_none() {
                    p.start(proc).map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Fault::Pause { proc } => lock(&self.procs)?
                .pause(proc, false)
                .map_err(|e| e.to_string()),
            Fault::Partition { .. } => delete_table(&self.router, "skcpart"),
            Fault::Isolate { host } => delete_table(self.host(host)?, "skciso"),
            Fault::S3Outage => match &self.s3 {
                Some((host, _)) => delete_table(self.host(host)?, "skcs3"),
                None => Ok(()),
            },
            Fault::QuerierTierRestart => Ok(()),
        }
    }
}

impl Nemesis {
    /// Gives the sidecar's shipper a new block, then kills the sidecar
    /// while its ship cycle (2 s) is likely uploading it.
    fn kill_during_upload(&self, proc: &str) -> Result<(), String> {
        let (cluster, dir) = self
            .uploads
            .get(proc)
            .ok_or_else(|| format!("{proc} ships no blocks"))?;
        let n = self.added.fetch_add(1, Ordering::SeqCst);
        let spec = self.data.earlier_block(n);
        let text = spec.openmetrics(*cluster);
        crate::datagen::write_blocks(&text, dir)?;
        // A deterministic delay in [0.2, 2.6) s: somewhere in the next
        // ship cycle.
        let delay = 200 + (crate::datagen::mix(self.data.seed ^ n as u64) % 2400);
        std::thread::sleep(Duration::from_millis(delay));
        lock(&self.procs)?.kill9(proc).map_err(|e| e.to_string())
    }
}

fn delete_table(ns: &Netns, table: &str) -> Result<(), String> {
    // "destroy" is newer than this nft; add-then-delete is idempotent.
    ns.nft(&format!("table inet {table}\ndelete table inet {table}\n"))
        .map_err(|e| e.to_string())
}
