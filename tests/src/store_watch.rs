//! Watching a store node while its bucket changes underneath it (a
//! sidecar uploading, crashing, restarting): the store must never serve a block
//! that is not complete in the bucket, and must never fail to load one.
//!
//! Each poll reads the store's `skein_store_blocks_loaded` and
//! `skein_store_block_load_failures_total` first and lists the bucket second.
//! Complete blocks (with meta.json) only ever get added during these tests, so
//! "loaded now <= complete a moment later" must hold at every poll; a store that
//! loaded a block without its meta.json, or a half-written one, breaks it or
//! counts a load failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::bucket::TestBucket;
use crate::http::ApiClient;
use crate::scrape::{fetch, metric_sum};

/// What the watch saw.
#[derive(Debug, Clone, Default)]
pub struct WatchReport {
    pub polls: usize,
    /// Polls where the bucket held a block dir without meta.json.
    pub polls_with_partial_blocks: usize,
    /// Highest `blocks_loaded` seen.
    pub max_loaded: usize,
    /// Highest load-failure count seen.
    pub max_load_failures: f64,
    /// Human-readable descriptions of broken invariants (the first 20).
    pub violations: Vec<String>,
    /// Polls whose metrics or listing could not be read.
    pub errors: usize,
}

/// A running watch; [`StoreWatch::stop`] ends it and returns the report.
pub struct StoreWatch {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<WatchReport>>,
}

fn poll_once(store: &ApiClient, bucket: &TestBucket, r: &mut WatchReport) -> anyhow::Result<()> {
    let text = fetch(store)?;
    let loaded = metric_sum(&text, "skein_store_blocks_loaded").unwrap_or(0.0) as usize;
    let failures = metric_sum(&text, "skein_store_block_load_failures_total").unwrap_or(0.0);
    let dirs = bucket.block_states()?;
    let complete = dirs.iter().filter(|(_, c)| *c).count();
    r.polls += 1;
    if dirs.iter().any(|(_, c)| !c) {
        r.polls_with_partial_blocks += 1;
    }
    r.max_loaded = r.max_loaded.max(loaded);
    r.max_load_failures = r.max_load_failures.max(failures);
    if r.violations.len() >= 20 {
        return Ok(());
    }
    if loaded > complete {
        r.violations.push(format!(
            "poll {}: store serves {loaded} blocks but the bucket holds only {complete} complete ones ({dirs:?})",
            r.polls
        ));
    }
    if failures > 0.0 {
        r.violations.push(format!(
            "poll {}: store counted {failures} block load failures",
            r.polls
        ));
    }
    Ok(())
}

impl StoreWatch {
    /// Poll every `every` until stopped.
    pub fn start(store: ApiClient, bucket: Arc<TestBucket>, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut r = WatchReport::default();
            while !flag.load(Ordering::Acquire) {
                if poll_once(&store, &bucket, &mut r).is_err() {
                    r.errors += 1;
                }
                std::thread::sleep(every);
            }
            r
        });
        Self {
            stop,
            handle: Some(handle),
        }
    }

    /// Stop and return what was seen.
    pub fn stop(mut self) -> WatchReport {
        self.stop.store(true, Ordering::Release);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for StoreWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
