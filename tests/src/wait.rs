//! Bounded waiting: every wait in these tests has a deadline.

use std::thread;
use std::time::{Duration, Instant};

/// What one poll found.
pub enum Poll<T> {
    /// Done, with this value.
    Ready(T),
    /// Not yet; try again (the text says why, for the timeout message).
    Pending(String),
    /// Give up now (e.g. the process being waited for has exited).
    Fatal(anyhow::Error),
}

/// Poll `f` every `every` until it returns `Ok(Some(v))`, or fail after `timeout`
/// with the last error or "no result" in the message. Errors are retried.
pub fn poll_until<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    poll(what, timeout, every, || match f() {
        Ok(Some(v)) => Poll::Ready(v),
        Ok(None) => Poll::Pending("condition never held".into()),
        Err(e) => Poll::Pending(format!("{e:#}")),
    })
}

/// Like [`poll_until`], but `f` can also end the wait early with [`Poll::Fatal`].
pub fn poll<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Poll<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match f() {
            Poll::Ready(v) => return Ok(v),
            Poll::Pending(why) => last = why,
            Poll::Fatal(e) => return Err(e.context(format!("while waiting for {what}"))),
        }
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}: {last}");
        }
        thread::sleep(every);
    }
}

/// Wait until `GET <base_url>/-/ready` answers 200; fails at once, with the log
/// tail, if the process exits meanwhile.
pub fn wait_ready(
    guard: &mut crate::process::ProcessGuard,
    base_url: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let probe = crate::http::ApiClient::with_timeout(base_url, Duration::from_secs(2))?;
    let name = guard.name().to_string();
    poll(
        &format!("{name} /-/ready"),
        timeout,
        Duration::from_millis(100),
        || {
            if let Some(status) = guard.exited() {
                return Poll::Fatal(anyhow::anyhow!(
                    "{name} exited with {status}:\n{}",
                    guard.log_tail(30)
                ));
            }
            match probe.status_of("/-/ready") {
                Ok(200) => Poll::Ready(()),
                Ok(code) => Poll::Pending(format!("/-/ready answered {code}")),
                Err(e) => Poll::Pending(format!("{e:#}")),
            }
        },
    )
}
