//! Bounded waiting: every wait in these tests has a deadline.

use std::thread;
use std::time::{Duration, Instant};

/// Poll `f` every `every` until it returns `Ok(Some(v))`, or fail after `timeout`
/// with the last error or "no result" in the message.
pub fn poll_until<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("condition never held");
    loop {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}: {last}");
        }
        thread::sleep(every);
    }
}
