#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The skein binary: `$SKEIN_BIN`, else `<workspace>/target/debug/skein`.
pub fn skein_bin() -> PathBuf {
    let p = match std::env::var_os("SKEIN_BIN") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/skein"),
    };
    assert!(
        p.is_file(),
        "skein binary not found at {}: build it first with `cargo build -p skein-node --bin skein` (or set SKEIN_BIN)",
        p.display()
    );
    p
}

/// A fresh output directory that is kept (reports are worth reading)
/// under the target dir.
pub fn out_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/chaos-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("out dir");
    d
}

/// Namespaces need root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(uid, 0, "skein-chaos tests need root (network namespaces)");
}
