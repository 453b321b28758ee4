//! Starts a throw-away single-node Garage S3 server for tests.
//!
//! Reusable from other crates' tests with
//! `#[path = "<rel>/objstore/tests/support/garage.rs"] mod garage;`. Needs only std.
//!
//! The binary is `$SKEIN_GARAGE_BIN`, else `garage` on `PATH`, else `~/.cargo/bin/garage`.
//! Without it, [`Garage::start`] returns `None` after printing a skip message, unless `CI=true`,
//! where a missing binary fails the test.
#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running Garage node with one bucket and one key allowed on it.
pub struct Garage {
    child: Child,
    dir: PathBuf,
    config: PathBuf,
    bin: PathBuf,
    /// `127.0.0.1:<port>` of the S3 API.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
}

fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SKEIN_GARAGE_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join("garage");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let home = std::env::var_os("HOME")?;
    let p = Path::new(&home).join(".cargo/bin/garage");
    p.is_file().then_some(p)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

fn random_hex(bytes: usize) -> String {
    let mut s = String::new();
    let mut i = 0u64;
    while s.len() < bytes * 2 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u32(std::process::id());
        s.push_str(&format!("{:016x}", h.finish()));
        i += 1;
    }
    s.truncate(bytes * 2);
    s
}

fn field(out: &str, name: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let l = l.trim();
        l.strip_prefix(name)
            .map(|rest| rest.trim_start_matches(':').trim().to_string())
    })
}

impl Garage {
    /// Starts Garage, or returns `None` (with a skip message) when it is not installed and
    /// `CI` is not `true`. Panics on any other failure.
    pub fn start() -> Option<Garage> {
        let Some(bin) = find_binary() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "garage is required when CI=true but was not found \
                     (set SKEIN_GARAGE_BIN, put it on PATH or `cargo install garage`)"
                );
            }
            eprintln!("SKIP: garage binary not found; S3 tests against Garage are skipped");
            return None;
        };
        Some(Self::start_with(bin))
    }

    fn start_with(bin: PathBuf) -> Garage {
        let dir = std::env::temp_dir().join(format!("skein-garage-{}", random_hex(6)));
        std::fs::create_dir_all(dir.join("meta")).unwrap();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let rpc = free_port();
        let s3 = free_port();
        let admin = free_port();
        let config = dir.join("garage.toml");
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
                d = dir.display(),
                secret = random_hex(32),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("garage.log")).unwrap();
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot spawn garage");
        let mut g = Garage {
            child,
            dir,
            config,
            bin,
            endpoint: format!("127.0.0.1:{s3}"),
            region: "garage".into(),
            bucket: "skein-test".into(),
            key_id: String::new(),
            secret: String::new(),
        };
        g.setup();
        g
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "garage=warn")
            .output()
            .expect("cannot run garage")
    }

    /// Runs a CLI command until it succeeds (the node needs a moment to come up).
    fn cli_ok(&mut self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.cli(args);
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("garage server exited ({status}); log: {}", self.log());
            }
            if Instant::now() > deadline {
                panic!(
                    "garage {args:?} failed: {}{}\nlog: {}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn setup(&mut self) {
        let id = self.cli_ok(&["node", "id", "-q"]);
        let id = id.trim().split('@').next().unwrap_or("").to_string();
        assert!(!id.is_empty(), "no garage node id");
        self.cli_ok(&["status"]);
        self.cli_ok(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
        self.cli_ok(&["layout", "apply", "--version", "1"]);
        let bucket = self.bucket.clone();
        self.cli_ok(&["bucket", "create", &bucket]);
        let key = self.cli_ok(&["key", "create", "skein-test-key"]);
        self.key_id = field(&key, "Key ID").unwrap_or_else(|| panic!("no key id in {key}"));
        self.secret = field(&key, "Secret key").unwrap_or_else(|| panic!("no secret in {key}"));
        self.cli_ok(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            &bucket,
            "--key",
            "skein-test-key",
        ]);
        self.wait_s3();
    }

    fn wait_s3(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&self.endpoint).is_err() {
            assert!(Instant::now() < deadline, "garage S3 API never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("garage.log")).unwrap_or_default()
    }

    /// A Thanos-format objstore.yml for this node, with an optional `prefix:`.
    pub fn objstore_yaml(&self, prefix: Option<&str>) -> String {
        let mut y = format!(
            "type: S3\nconfig:\n  bucket: {}\n  endpoint: {}\n  region: {}\n  access_key: {}\n  secret_key: {}\n  insecure: true\n",
            self.bucket, self.endpoint, self.region, self.key_id, self.secret
        );
        if let Some(p) = prefix {
            y.push_str(&format!("prefix: {p}\n"));
        }
        y
    }

    /// Creates another bucket on the node with the same key allowed.
    pub fn create_bucket(&mut self, name: &str) {
        self.cli_ok(&["bucket", "create", name]);
        self.cli_ok(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            name,
            "--key",
            "skein-test-key",
        ]);
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
