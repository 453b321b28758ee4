//! The WAN federation setup: several clusters, each a pair of Prometheus
//! replicas (external labels `cluster`, `replica`) with a sidecar each and
//! one query node, every skein node on its own loopback address
//! (127.0.0.x), sealed LAN gossip per cluster, WAN gossip between the query
//! nodes on their mutual-TLS gRPC ports.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::datagen::{DataSpec, Dataset};
use crate::http::ApiClient;
use crate::labels::label_set;
use crate::process::{ProcessGuard, run_with_timeout};
use crate::prometheus::PrometheusServer;
use crate::skein::skein_bin;
use crate::wait::wait_ready;

/// How long a skein node may take to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A free TCP port on `ip` (bound and released).
pub fn free_tcp(ip: Ipv4Addr) -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind((ip, 0))?;
    Ok(l.local_addr()?)
}

/// A free UDP port on `ip` (bound and released).
pub fn free_udp(ip: Ipv4Addr) -> anyhow::Result<SocketAddr> {
    let s = UdpSocket::bind((ip, 0))?;
    Ok(s.local_addr()?)
}

/// Runs `skein <args>` to completion and returns its stdout.
pub fn skein_tool(args: &[String], scratch: &Path) -> anyhow::Result<String> {
    let mut cmd = Command::new(skein_bin()?);
    cmd.args(args);
    let out = run_with_timeout(cmd, Duration::from_secs(30), scratch)?;
    if !out.status.success() {
        bail!(
            "skein {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The federation every node of these tests belongs to.
pub const FEDERATION: &str = "e2e";

/// `skein tools certs` for nodes given as (name, cluster, IP): the name and
/// the IP are the certificate's SANs, and it names the identity
/// `spiffe://e2e/cluster/<cluster>/node/<name>`. Returns the directory.
pub fn make_certs(
    dir: &Path,
    nodes: &[(&str, &str, Ipv4Addr)],
    scratch: &Path,
) -> anyhow::Result<PathBuf> {
    let mut args: Vec<String> = vec!["tools".into(), "certs".into(), "--out".into()];
    args.push(dir.display().to_string());
    args.extend(["--federation".into(), FEDERATION.into()]);
    for (name, cluster, ip) in nodes {
        args.push("--node".into());
        args.push(format!("{name}@{cluster}={ip}"));
    }
    skein_tool(&args, scratch)?;
    Ok(dir.to_path_buf())
}

/// A keyring file with one fresh key from `skein tools gossip-key`, mode 600.
pub fn make_keyring(path: &Path, scratch: &Path) -> anyhow::Result<PathBuf> {
    let key = skein_tool(&["tools".into(), "gossip-key".into()], scratch)?;
    std::fs::write(path, key.trim())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(path.to_path_buf())
}

/// A skein node on its own loopback address; it can be killed (SIGKILL) and
/// started again with the same flags and addresses.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub ip: Ipv4Addr,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub gossip: SocketAddr,
    pub client: ApiClient,
    args: Vec<String>,
    dir: PathBuf,
    guard: Option<ProcessGuard>,
    starts: usize,
}

/// What a node needs besides its role flags.
#[derive(Debug, Clone)]
pub struct NodeSpec<'a> {
    pub name: &'a str,
    pub ip: Ipv4Addr,
    pub cluster: &'a str,
    pub certs: &'a Path,
    pub keyring: &'a Path,
    /// LAN gossip seeds.
    pub seeds: Vec<String>,
    /// Role flags and anything else.
    pub extra: Vec<String>,
}

impl Node {
    /// Picks free ports on `spec.ip` and starts the node (not waited on).
    pub fn spawn(work_dir: &Path, spec: NodeSpec<'_>) -> anyhow::Result<Node> {
        let grpc = free_tcp(spec.ip)?;
        let http = free_tcp(spec.ip)?;
        let gossip = free_udp(spec.ip)?;
        let name = spec.name;
        let certs = spec.certs;
        let mut args: Vec<String> = vec![
            "node".into(),
            "--node-id".into(),
            name.into(),
            "--cluster".into(),
            spec.cluster.into(),
            "--federation".into(),
            FEDERATION.into(),
            "--grpc-address".into(),
            grpc.to_string(),
            "--http-address".into(),
            http.to_string(),
            "--external-address".into(),
            grpc.to_string(),
            "--gossip.listen-address".into(),
            gossip.to_string(),
            "--gossip.interval".into(),
            "200ms".into(),
            "--gossip.keyring-file".into(),
            spec.keyring.display().to_string(),
            "--tls.cert-file".into(),
            certs.join(format!("{name}.crt")).display().to_string(),
            "--tls.key-file".into(),
            certs.join(format!("{name}.key")).display().to_string(),
            "--tls.ca-file".into(),
            certs.join("ca.crt").display().to_string(),
            "--tls.server-name".into(),
            name.into(),
        ];
        for s in &spec.seeds {
            args.push("--gossip.seed".into());
            args.push(s.clone());
        }
        args.extend(spec.extra);
        let dir = work_dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let http_url = format!("http://{http}");
        let mut node = Node {
            name: name.to_string(),
            ip: spec.ip,
            grpc,
            http,
            gossip,
            client: ApiClient::with_timeout(&http_url, Duration::from_secs(30))?,
            args,
            dir,
            guard: None,
            starts: 0,
        };
        node.start()?;
        Ok(node)
    }

    /// Starts the process (again) with the same flags.
    pub fn start(&mut self) -> anyhow::Result<()> {
        if self.guard.is_some() {
            bail!("{} is already running", self.name);
        }
        let mut cmd = Command::new(skein_bin()?);
        cmd.args(&self.args)
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .env_remove("SKEIN_DEV");
        let log_name = if self.starts == 0 {
            self.name.clone()
        } else {
            format!("{}-{}", self.name, self.starts)
        };
        self.starts += 1;
        self.guard = Some(ProcessGuard::spawn(&log_name, cmd, &self.dir)?);
        Ok(())
    }

    /// Replaces the value of `flag` for the next start (e.g. a restarted
    /// Prometheus's new URL).
    pub fn replace_arg(&mut self, flag: &str, value: &str) -> anyhow::Result<()> {
        let pos = self
            .args
            .iter()
            .position(|a| a == flag)
            .with_context(|| format!("{} has no {flag} flag", self.name))?;
        match self.args.get_mut(pos + 1) {
            Some(v) => *v = value.to_string(),
            None => bail!("{flag} of {} has no value", self.name),
        }
        Ok(())
    }

    /// Waits for `/-/ready`.
    pub fn wait_ready(&mut self) -> anyhow::Result<()> {
        let url = format!("http://{}", self.http);
        match &mut self.guard {
            Some(g) => wait_ready(g, &url, READY_TIMEOUT),
            None => bail!("{} is not running", self.name),
        }
    }

    /// SIGKILL (no graceful leave).
    pub fn kill(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.kill();
        }
    }

    /// The log tail of the current (or last) run.
    pub fn log_tail(&self, lines: usize) -> String {
        self.guard
            .as_ref()
            .map_or_else(|| "<not running>".into(), |g| g.log_tail(lines))
    }

    /// This node's external `host:port` (its gRPC address).
    pub fn external(&self) -> String {
        self.grpc.to_string()
    }
}

/// One Prometheus replica and its sidecar.
#[derive(Debug)]
pub struct Replica {
    pub prometheus: PrometheusServer,
    pub sidecar: Node,
    pub prometheus_dir: PathBuf,
}

/// One cluster: two replicas of the same data and a query node.
#[derive(Debug)]
pub struct WanCluster {
    pub name: String,
    pub dataset: Dataset,
    pub replicas: Vec<Replica>,
    pub query: Node,
}

/// The loopback address of node `index` (0, 1: sidecars, 2: query) of
/// cluster number `c`.
pub fn ip_of(c: u8, index: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 100 + c * 10 + index)
}

/// Node names of cluster `name`: sidecars `<name>0`, `<name>1`, query `q<name>`.
pub fn node_names(name: &str) -> [String; 3] {
    [format!("{name}0"), format!("{name}1"), format!("q{name}")]
}

/// Starts the two Prometheus replicas of a cluster (in parallel) on the
/// same generated data.
pub fn start_replicas(
    work_dir: &Path,
    cluster: &str,
    spec: DataSpec,
) -> anyhow::Result<(Dataset, Vec<PrometheusServer>)> {
    let dataset = Dataset::generate(spec)?;
    let servers: Vec<anyhow::Result<PrometheusServer>> = std::thread::scope(|s| {
        let handles: Vec<_> = ["0", "1"]
            .iter()
            .map(|r| {
                let ds = &dataset;
                s.spawn(move || {
                    let labels = label_set(&[("cluster", cluster), ("replica", r)]);
                    PrometheusServer::start(
                        work_dir,
                        &format!("prometheus-{cluster}-{r}"),
                        &labels,
                        Some(ds),
                    )
                    .with_context(|| format!("Prometheus {cluster}/{r}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("Prometheus thread panicked")))
            })
            .collect()
    });
    let servers = servers.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok((dataset, servers))
}

/// Restarts a killed Prometheus replica on its existing data directory.
pub fn restart_prometheus(
    work_dir: &Path,
    old: &PrometheusServer,
) -> anyhow::Result<PrometheusServer> {
    PrometheusServer::start(work_dir, &old.name, &old.external_labels, None)
}

/// True when `ip` is a loopback address other than 127.0.0.1 that this host
/// can bind (Linux routes all of 127/8 to `lo`).
pub fn loopback_usable(ip: Ipv4Addr) -> bool {
    IpAddr::V4(ip).is_loopback() && TcpListener::bind((ip, 0)).is_ok()
}
