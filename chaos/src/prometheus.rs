//! Process specs for Prometheus (on generated blocks, no scraping) and
//! for skein sidecars and queriers.

use std::path::{Path, PathBuf};

use crate::procs::Spec;
use crate::topology::netns::Netns;

/// Writes a Prometheus config with the external labels and no scrape jobs.
pub fn write_config(dir: &Path, cluster: &str, replica: &str) -> std::io::Result<PathBuf> {
    let path = dir.join("prometheus.yml");
    std::fs::write(
        &path,
        format!(
            "global:\n  external_labels:\n    cluster: {cluster}\n    replica: \"{replica}\"\nscrape_configs: []\n"
        ),
    )?;
    Ok(path)
}

/// Prometheus serving `data_dir` on `listen` (host:port).
pub fn spec(name: &str, ns: &Netns, config: &Path, data_dir: &Path, listen: &str) -> Spec {
    Spec {
        name: name.to_string(),
        ns: ns.clone(),
        program: "prometheus".into(),
        args: vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", data_dir.display()),
            format!("--web.listen-address={listen}"),
            "--storage.tsdb.retention.time=30d".into(),
            "--storage.tsdb.min-block-duration=2h".into(),
            "--storage.tsdb.max-block-duration=2h".into(),
            "--log.level=warn".into(),
        ],
        env: vec![],
        ready_url: Some(format!("http://{listen}/-/ready")),
        under_test: true,
    }
}

/// Timeouts the harness gives skein nodes so faults show within seconds.
pub struct NodeTiming {
    pub info_interval: &'static str,
    pub info_timeout: &'static str,
    pub store_timeout: &'static str,
    pub query_timeout: &'static str,
}

pub const TIMING: NodeTiming = NodeTiming {
    info_interval: "2s",
    info_timeout: "1s",
    store_timeout: "5s",
    query_timeout: "20s",
};

/// How skein nodes secure their gRPC links.
#[derive(Clone, Debug)]
pub enum Security {
    /// `--dev`: plaintext.
    Dev,
    /// Mutual TLS with certificates under this directory
    /// (`<name>.crt`, `<name>.key`, `ca.crt`).
    Tls(PathBuf),
}

impl Security {
    /// Issues a development CA and one certificate per `(name[@cluster], ip)`
    /// with `skein tools certs`; falls back to `--dev` when that is missing.
    pub fn issue(skein: &Path, dir: &Path, nodes: &[(String, String)]) -> (Security, String) {
        let mut cmd = std::process::Command::new(skein);
        cmd.args(["tools", "certs", "--out"]).arg(dir);
        for (name, ip) in nodes {
            cmd.arg("--node").arg(format!("{name}={ip}"));
        }
        match cmd.output() {
            Ok(o) if o.status.success() => (
                Security::Tls(dir.to_path_buf()),
                "gRPC links use mutual TLS (certificates from `skein tools certs`)".into(),
            ),
            Ok(o) => (
                Security::Dev,
                format!(
                    "gRPC links run with --dev (plaintext): `skein tools certs` failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            ),
            Err(e) => (
                Security::Dev,
                format!("gRPC links run with --dev (plaintext): {e}"),
            ),
        }
    }

    fn args(&self, name: &str) -> Vec<String> {
        match self {
            Security::Dev => vec!["--dev".into()],
            Security::Tls(d) => vec![
                format!(
                    "--tls.cert-file={}",
                    d.join(format!("{name}.crt")).display()
                ),
                format!("--tls.key-file={}", d.join(format!("{name}.key")).display()),
                format!("--tls.ca-file={}", d.join("ca.crt").display()),
            ],
        }
    }
}

/// A skein sidecar next to the Prometheus at `prom_url`.
pub fn sidecar_spec(
    name: &str,
    ns: &Netns,
    skein: &Path,
    sec: &Security,
    addr: &str,
    prom_url: &str,
) -> Spec {
    let mut args = vec!["node".to_string()];
    args.extend(sec.args(name));
    Spec {
        name: name.to_string(),
        ns: ns.clone(),
        program: skein.display().to_string(),
        args: args
            .into_iter()
            .chain([
                "--roles=sidecar".into(),
                format!("--grpc-address={addr}:10901"),
                format!("--http-address={addr}:10902"),
                format!("--sidecar.prometheus-url={prom_url}"),
                "--sidecar.refresh-interval=2s".into(),
                "--sidecar.request-timeout=5s".into(),
            ])
            .collect(),
        env: vec![],
        ready_url: Some(format!("http://{addr}:10902/-/ready")),
        under_test: true,
    }
}

/// A skein querier over static stores.
pub fn querier_spec(
    name: &str,
    ns: &Netns,
    skein: &Path,
    sec: &Security,
    addr: &str,
    stores: &[String],
    replica_label: &str,
) -> Spec {
    let mut args = vec!["node".to_string()];
    args.extend(sec.args(name));
    args.extend([
        "--roles=query".into(),
        format!("--http-address={addr}:10902"),
        format!("--grpc-address={addr}:10901"),
        format!("--query.replica-label={replica_label}"),
        format!("--query.info-interval={}", TIMING.info_interval),
        format!("--query.info-timeout={}", TIMING.info_timeout),
        format!("--query.store-timeout={}", TIMING.store_timeout),
        format!("--query.timeout={}", TIMING.query_timeout),
    ]);
    args.extend(stores.iter().map(|s| format!("--query.store={s}")));
    Spec {
        name: name.to_string(),
        ns: ns.clone(),
        program: skein.display().to_string(),
        args,
        env: vec![],
        ready_url: Some(format!("http://{addr}:10902/-/ready")),
        under_test: true,
    }
}
