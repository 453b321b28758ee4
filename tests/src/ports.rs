//! Free TCP ports on 127.0.0.1.
//!
//! A port is found by binding port 0 and releasing it; a process-wide set keeps
//! this process from handing out the same port twice (tests run in parallel
//! threads). Another process can still race for it, which is rare enough here.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Mutex, OnceLock};

fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static SET: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    SET.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A currently free port on 127.0.0.1 not handed out before by this process.
pub fn free_port() -> anyhow::Result<u16> {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        drop(listener);
        let mut set = handed_out()
            .lock()
            .map_err(|_| anyhow::anyhow!("port registry poisoned"))?;
        if set.insert(port) {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port found after 100 tries")
}

/// `127.0.0.1:<free port>`.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?)))
}

/// A loopback address where nothing listens (bound and released, never handed out again).
pub fn dead_addr() -> anyhow::Result<SocketAddr> {
    free_addr()
}
