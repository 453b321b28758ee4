//! Keyring reload: re-reads the keyring file on an interval and swaps the
//! carrier's keyring when its keys changed, so rotation stages roll out by
//! editing a file (or a mounted Kubernetes secret) without restarts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::carrier::UdpCarrier;
use crate::keyring::Keyring;
use crate::metrics::GossipMetrics;

/// Spawns the reload task. A file that cannot be read or parsed keeps the
/// current keyring, logs a warning and counts a reload error.
pub(crate) fn spawn(
    carrier: Arc<UdpCarrier>,
    path: PathBuf,
    every: Duration,
    metrics: GossipMetrics,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_error: Option<String> = None;
        loop {
            tokio::time::sleep(every).await;
            match Keyring::from_file(&path) {
                Ok(next) => {
                    last_error = None;
                    let changed = carrier
                        .keyring()
                        .is_some_and(|current| !current.same_keys(&next));
                    if changed {
                        let ids: Vec<String> =
                            next.key_ids().iter().map(|i| format!("{i:02x}")).collect();
                        if carrier.set_keyring(next).is_ok() {
                            metrics.keyring_reloaded();
                            info!(path = %path.display(), key_ids = ?ids, "gossip keyring reloaded");
                        }
                    }
                }
                Err(e) => {
                    metrics.keyring_reload_failed();
                    let text = e.to_string();
                    // Log once per distinct problem, not every interval.
                    if last_error.as_deref() != Some(text.as_str()) {
                        warn!(path = %path.display(), error = %text, "gossip keyring reload failed; keeping the current keys");
                        last_error = Some(text);
                    }
                }
            }
        }
    })
}
