//! Material that follows its files: re-read when they change, the last
//! good version kept when a new one does not load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use crate::material::{TlsError, TlsFiles, TlsMaterial};

#[derive(Clone, Default)]
struct Metrics {
    reloads: Counter,
    reload_failures: Counter,
    handshake_failures: Counter,
}

struct Current {
    material: Arc<TlsMaterial>,
    server: Arc<rustls::ServerConfig>,
}

/// The current TLS material and the server config built from it.
pub struct TlsReloader {
    files: TlsFiles,
    current: RwLock<Current>,
    generation: AtomicU64,
    metrics: Metrics,
}

type Stamp = Vec<Option<(SystemTime, u64)>>;

fn stamp(files: &TlsFiles) -> Stamp {
    [&files.cert, &files.key, &files.ca]
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

impl TlsReloader {
    /// Loads the files (an error if they do not load) and registers
    /// `skein_tls_reloads_total`, `skein_tls_reload_failures_total` and
    /// `skein_tls_handshake_failures_total`.
    pub fn new(files: TlsFiles, registry: &mut Registry) -> Result<Arc<Self>, TlsError> {
        let material = TlsMaterial::load(&files)?;
        let server = material.server_config()?;
        let metrics = Metrics::default();
        registry.register(
            "skein_tls_reloads",
            "TLS material reloaded after its files changed",
            metrics.reloads.clone(),
        );
        registry.register(
            "skein_tls_reload_failures",
            "Changed TLS files that did not load (the previous material stays in use)",
            metrics.reload_failures.clone(),
        );
        registry.register(
            "skein_tls_handshake_failures",
            "Incoming TLS handshakes that failed (untrusted or missing client certificate, bad protocol)",
            metrics.handshake_failures.clone(),
        );
        Ok(Arc::new(TlsReloader {
            files,
            current: RwLock::new(Current {
                material: Arc::new(material),
                server,
            }),
            generation: AtomicU64::new(0),
            metrics,
        }))
    }

    pub fn material(&self) -> Arc<TlsMaterial> {
        match self.current.read() {
            Ok(c) => c.material.clone(),
            Err(p) => p.into_inner().material.clone(),
        }
    }

    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        match self.current.read() {
            Ok(c) => c.server.clone(),
            Err(p) => p.into_inner().server.clone(),
        }
    }

    /// Grows by one at every successful reload; clients rebuild their
    /// channels when it changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn handshake_failed(&self) {
        self.metrics.handshake_failures.inc();
    }

    /// Re-reads the files now. On failure the previous material stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let loaded = TlsMaterial::load(&self.files).and_then(|m| {
            let s = m.server_config()?;
            Ok((m, s))
        });
        match loaded {
            Ok((material, server)) => {
                let mut c = match self.current.write() {
                    Ok(c) => c,
                    Err(p) => p.into_inner(),
                };
                *c = Current {
                    material: Arc::new(material),
                    server,
                };
                self.generation.fetch_add(1, Ordering::AcqRel);
                self.metrics.reloads.inc();
                tracing::info!(cert = %self.files.cert.display(), "TLS material reloaded");
                Ok(())
            }
            Err(e) => {
                self.metrics.reload_failures.inc();
                tracing::error!(error = %e, "TLS files changed but do not load; keeping the previous material");
                Err(e)
            }
        }
    }

    /// Watches the files' modification times and sizes every `every` and
    /// reloads on change, until the returned task is aborted.
    pub fn watch(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut last = stamp(&me.files);
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let now = stamp(&me.files);
                if now != last {
                    // A failed load is retried at the next change only, so
                    // a half-written file does not spam errors.
                    let _ = me.reload();
                    last = now;
                }
            }
        })
    }
}
