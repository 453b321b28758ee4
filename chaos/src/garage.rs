//! A single-node Garage S3 server (sqlite, replication factor 1) inside
//! its own namespace, with one bucket and one key.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::procs::Spec;
use crate::s3::S3;
use crate::topology::netns::Netns;

pub const S3_PORT: u16 = 3900;
pub const BUCKET: &str = "skein-chaos";
const KEY_NAME: &str = "skein-chaos-key";

/// The garage binary: `$SKEIN_GARAGE_BIN`, PATH, or `~/.cargo/bin/garage`.
pub fn find_binary() -> Option<PathBuf> {
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
        let p = Path::new(&std::env::var_os("HOME")?).join(".cargo/bin/garage");
        p.is_file().then_some(p)
    })
}

/// A hex secret derived from the seed and the pid (not security relevant:
/// the server lives in a private namespace for the run's lifetime).
fn secret(seed: u64) -> String {
    let mut s = String::new();
    let mut x = seed ^ u64::from(std::process::id());
    while s.len() < 64 {
        x = crate::datagen::mix(x);
        s.push_str(&format!("{x:016x}"));
    }
    s
}

/// Writes the config; returns its path.
pub fn write_config(dir: &Path, addr: &str, seed: u64) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("meta"))?;
    std::fs::create_dir_all(dir.join("data"))?;
    let config = dir.join("garage.toml");
    std::fs::write(
        &config,
        format!(
            "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\nreplication_factor = 1\nrpc_bind_addr = \"127.0.0.1:3901\"\nrpc_public_addr = \"127.0.0.1:3901\"\nrpc_secret = \"{s}\"\n\n[s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"{addr}:{S3_PORT}\"\nroot_domain = \".s3.garage.localhost\"\n\n[admin]\napi_bind_addr = \"127.0.0.1:3903\"\n",
            d = dir.display(),
            s = secret(seed),
        ),
    )?;
    Ok(config)
}

/// The server process.
pub fn spec(name: &str, ns: &Netns, bin: &Path, config: &Path) -> Spec {
    Spec {
        name: name.to_string(),
        ns: ns.clone(),
        program: bin.display().to_string(),
        args: vec!["-c".into(), config.display().to_string(), "server".into()],
        env: vec![("RUST_LOG".into(), "garage=warn".into())],
        ready_url: None,
        under_test: false,
    }
}

fn cli(ns: &Netns, bin: &Path, config: &Path, args: &[&str]) -> Result<String, String> {
    let mut cmd: Command = ns
        .command(&bin.display().to_string())
        .map_err(|e| e.to_string())?;
    cmd.arg("-c")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "garage=warn");
    crate::topology::netns::run(&mut cmd).map_err(|e| e.to_string())
}

/// Retries a CLI call until it succeeds or 30 s pass.
fn cli_ok(ns: &Netns, bin: &Path, config: &Path, args: &[&str]) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match cli(ns, bin, config, args) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() > deadline => return Err(format!("garage {args:?}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

fn field(out: &str, name: &str) -> Option<String> {
    out.lines().find_map(|l| {
        l.trim()
            .strip_prefix(name)
            .map(|rest| rest.trim_start_matches(':').trim().to_string())
    })
}

/// Lays out the single node, creates the bucket and a key allowed on it
/// (blocking; the server must be running).
pub fn setup(ns: &Netns, bin: &Path, config: &Path, addr: &str) -> Result<S3, String> {
    let id = cli_ok(ns, bin, config, &["node", "id", "-q"])?;
    let id = id.trim().split('@').next().unwrap_or_default().to_string();
    if id.is_empty() {
        return Err("garage printed no node id".into());
    }
    cli_ok(
        ns,
        bin,
        config,
        &["layout", "assign", "-z", "dc1", "-c", "1G", &id],
    )?;
    cli_ok(ns, bin, config, &["layout", "apply", "--version", "1"])?;
    cli_ok(ns, bin, config, &["bucket", "create", BUCKET])?;
    let key = cli_ok(ns, bin, config, &["key", "create", KEY_NAME])?;
    let key_id = field(&key, "Key ID").ok_or_else(|| format!("no key id in {key}"))?;
    let secret = field(&key, "Secret key").ok_or_else(|| format!("no secret in {key}"))?;
    cli_ok(
        ns,
        bin,
        config,
        &[
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", KEY_NAME,
        ],
    )?;
    Ok(S3 {
        endpoint: format!("{addr}:{S3_PORT}"),
        region: "garage".into(),
        bucket: BUCKET.into(),
        key_id,
        secret,
    })
}

/// The Thanos objstore.yml for this bucket.
pub fn objstore_yaml(s3: &S3) -> String {
    format!(
        "type: S3\nconfig:\n  bucket: {}\n  endpoint: {}\n  region: {}\n  access_key: {}\n  secret_key: {}\n  insecure: true\n  bucket_lookup_type: path\n",
        s3.bucket, s3.endpoint, s3.region, s3.key_id, s3.secret
    )
}
