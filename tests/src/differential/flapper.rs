//! A tiny scrape target served from the test itself, so Prometheus writes real
//! staleness markers (which only live scraping produces; OpenMetrics text fed to
//! promtool cannot express them).
//!
//! Scrape number `n` (counted from 0) exposes:
//! - `diff_live_gauge{id="steady"}` = n * 1.5, on every scrape;
//! - `diff_live_gauge{id="flap"}` = 100 + n, only while `(n / 3) % 2 == 0` (it
//!   vanishes for 3 scrapes, then comes back: a stale marker each time it goes);
//! - `diff_live_requests_total{id="steady"}` = 5000 + 7 * n (a counter far from
//!   zero, so rate() extrapolation does not depend on the zero-point rule).
//!
//! After [`Flapper::go_down`] every scrape answers 503: the target is down and
//! Prometheus marks all its series stale.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The running target; the server thread stops when this is dropped.
#[derive(Debug)]
pub struct Flapper {
    pub addr: String,
    scrapes: Arc<AtomicU64>,
    down: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The exposition text for scrape number `n`.
pub fn exposition(n: u64) -> String {
    let mut s = String::from("# TYPE diff_live_gauge gauge\n");
    s.push_str(&format!(
        "diff_live_gauge{{id=\"steady\"}} {}\n",
        n as f64 * 1.5
    ));
    if (n / 3).is_multiple_of(2) {
        s.push_str(&format!("diff_live_gauge{{id=\"flap\"}} {}\n", 100 + n));
    }
    s.push_str("# TYPE diff_live_requests_total counter\n");
    s.push_str(&format!(
        "diff_live_requests_total{{id=\"steady\"}} {}\n",
        5000 + 7 * n
    ));
    s
}

impl Flapper {
    /// Listen on a free loopback port and serve scrapes on a thread.
    pub fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?.to_string();
        let scrapes = Arc::new(AtomicU64::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (sc, dn, st) = (scrapes.clone(), down.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = serve(stream, &sc, &dn);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(Self {
            addr,
            scrapes,
            down,
            stop,
            thread: Some(thread),
        })
    }

    /// Successful scrapes served so far.
    pub fn scrapes(&self) -> u64 {
        self.scrapes.load(Ordering::Relaxed)
    }

    /// From now on every scrape fails (HTTP 503).
    pub fn go_down(&self) {
        self.down.store(true, Ordering::Relaxed);
    }
}

impl Drop for Flapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, scrapes: &AtomicU64, down: &AtomicBool) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    // Request line and headers up to the blank line; the body (none) is ignored.
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut out = stream;
    if down.load(Ordering::Relaxed) {
        let body = "down\n";
        write!(
            out,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
    } else {
        let n = scrapes.fetch_add(1, Ordering::Relaxed);
        let body = exposition(n);
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flap_series_comes_and_goes() {
        let present: Vec<bool> = (0..12)
            .map(|n| exposition(n).contains("id=\"flap\""))
            .collect();
        assert_eq!(
            present,
            [
                true, true, true, false, false, false, true, true, true, false, false, false
            ]
        );
        assert!(exposition(5).contains("diff_live_requests_total{id=\"steady\"} 5035"));
    }

    #[test]
    fn serves_and_goes_down() {
        let f = Flapper::start().unwrap();
        let url = format!("http://{}/metrics", f.addr);
        let body = reqwest::blocking::get(&url).unwrap().text().unwrap();
        assert!(body.contains("diff_live_gauge{id=\"steady\"} 0"), "{body}");
        assert_eq!(f.scrapes(), 1);
        f.go_down();
        assert_eq!(reqwest::blocking::get(&url).unwrap().status().as_u16(), 503);
    }
}
