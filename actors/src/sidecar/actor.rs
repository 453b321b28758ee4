//! The sidecar actor: owns what the sidecar knows about its Prometheus
//! (external labels, lowest timestamp, version, readiness) and refreshes it
//! at start and then periodically. Readers get an `Arc` snapshot.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use prometheus_client::registry::Registry;
use skein_promql::Labels;

use super::metrics::SidecarMetrics;
use super::prometheus::{PrometheusClient, PrometheusError};

/// How often the sidecar retries while Prometheus is not ready, at most.
const NOT_READY_RETRY: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct SidecarConfig {
    /// Base URL of Prometheus, e.g. `http://127.0.0.1:9090`.
    pub prometheus_url: String,
    /// How often external labels and min time are re-read (Thanos: 30 s).
    pub refresh_interval: Duration,
    /// Bound on each Prometheus API call (and on each body read of remote read).
    pub request_timeout: Duration,
}

impl Default for SidecarConfig {
    fn default() -> Self {
        SidecarConfig {
            prometheus_url: "http://127.0.0.1:9090".into(),
            refresh_interval: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// What the sidecar currently knows; handed out as `Arc<SidecarState>`.
#[derive(Clone, Debug)]
pub struct SidecarState {
    /// Prometheus answered the last refresh and has external labels.
    pub ready: bool,
    /// The external labels last read (empty until first read).
    pub external_labels: Labels,
    /// Lowest timestamp in Prometheus's TSDB, ms (i64::MIN until known).
    pub min_time: i64,
    /// Always i64::MAX: a sidecar can answer for any future time.
    pub max_time: i64,
    /// Prometheus's version from its build info.
    pub version: Option<String>,
    /// Why the last refresh failed, if it did.
    pub last_error: Option<String>,
    /// The client the StoreAPI uses to read Prometheus.
    pub prometheus: PrometheusClient,
}

/// Returns the current state snapshot.
#[derive(Message)]
#[rtype(result = "Arc<SidecarState>")]
pub struct GetState;

/// Whether the sidecar is ready (Prometheus reachable, external labels read).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsReady;

/// Refreshes from Prometheus now; answers readiness after the refresh.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Refresh;

#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("sidecar configuration: {0}")]
    Config(#[from] PrometheusError),
}

pub struct SidecarActor {
    cfg: SidecarConfig,
    state: Arc<SidecarState>,
    metrics: SidecarMetrics,
    /// Sequence number of the last refresh started, and of the last applied,
    /// so a slow refresh never overwrites a newer one.
    started_seq: u64,
    applied_seq: u64,
}

struct Polled {
    labels: Labels,
    min_time: i64,
    version: Option<String>,
}

impl SidecarActor {
    /// Builds the actor and registers its metrics. Fails on an invalid URL.
    pub fn new(cfg: SidecarConfig, registry: &mut Registry) -> Result<Self, SidecarError> {
        let metrics = SidecarMetrics::register(registry);
        let prometheus = PrometheusClient::new(&cfg.prometheus_url, cfg.request_timeout)?
            .with_read_bytes_counter(metrics.remote_read_bytes.clone());
        Ok(SidecarActor {
            state: Arc::new(SidecarState {
                ready: false,
                external_labels: Labels::default(),
                min_time: i64::MIN,
                max_time: i64::MAX,
                version: None,
                last_error: Some("not refreshed yet".into()),
                prometheus,
            }),
            cfg,
            metrics,
            started_seq: 0,
            applied_seq: 0,
        })
    }

    /// The metrics, for the StoreAPI service to count into.
    pub fn metrics(&self) -> SidecarMetrics {
        self.metrics.clone()
    }

    fn poll_future(&mut self) -> impl ActorFuture<Self, Output = ()> + 'static {
        self.started_seq += 1;
        let seq = self.started_seq;
        let client = self.state.prometheus.clone();
        async move { poll(&client).await }
            .into_actor(self)
            .map(move |res, act, _ctx| act.apply(seq, res))
    }

    fn apply(&mut self, seq: u64, res: Result<Polled, PrometheusError>) {
        if seq <= self.applied_seq {
            return;
        }
        self.applied_seq = seq;
        let mut next = (*self.state).clone();
        match res {
            Ok(p) => {
                if !next.ready || next.external_labels != p.labels {
                    tracing::info!(
                        prometheus = %self.cfg.prometheus_url,
                        external_labels = %p.labels,
                        version = p.version.as_deref().unwrap_or("unknown"),
                        min_time = p.min_time,
                        "sidecar ready"
                    );
                }
                next.ready = true;
                next.external_labels = p.labels;
                next.min_time = p.min_time;
                next.version = p.version.or(next.version);
                next.last_error = None;
                self.metrics.prometheus_up.set(1);
            }
            Err(e) => {
                let msg = e.to_string();
                // Warn on a change only: retries while down come every 2 s.
                if next.ready || next.last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(prometheus = %self.cfg.prometheus_url, error = %msg, "sidecar not ready");
                } else {
                    tracing::debug!(prometheus = %self.cfg.prometheus_url, error = %msg, "sidecar still not ready");
                }
                self.metrics.prometheus_failure("status");
                next.ready = false;
                next.last_error = Some(msg);
                self.metrics.prometheus_up.set(0);
            }
        }
        self.state = Arc::new(next);
    }

    /// Refreshes, then schedules the next refresh: sooner while not ready.
    fn refresh_loop(&mut self, ctx: &mut Context<Self>) {
        let fut = self
            .poll_future()
            .map(|_, act: &mut Self, ctx: &mut Context<Self>| {
                let wait = refresh_wait(act.cfg.refresh_interval, act.state.ready);
                ctx.run_later(wait, |act, ctx| act.refresh_loop(ctx));
            });
        ctx.spawn(fut);
    }
}

/// Time to the next refresh: the configured interval, sooner while not
/// ready, never below [`crate::interval::MIN_LOOP_INTERVAL`] (a `0s` would
/// spin).
pub fn refresh_wait(configured: Duration, ready: bool) -> Duration {
    let wait = if ready {
        configured
    } else {
        configured.min(NOT_READY_RETRY)
    };
    crate::interval::loop_interval(wait)
}

async fn poll(client: &PrometheusClient) -> Result<Polled, PrometheusError> {
    let labels = client.fetch_external_labels().await?;
    let min_time = match client.min_time().await {
        Ok(t) => advertised_min_time(t, now_ms()),
        Err(PrometheusError::NoLowestTimestamp) => {
            tracing::warn!(
                "Prometheus does not expose its lowest timestamp; advertising no lower bound"
            );
            i64::MIN
        }
        Err(e) => return Err(e),
    };
    let version = match client.version().await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read Prometheus build info");
            None
        }
    };
    Ok(Polled {
        labels,
        min_time,
        version,
    })
}

impl Actor for SidecarActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.metrics.prometheus_up.set(0);
        self.refresh_loop(ctx);
    }
}

impl Handler<GetState> for SidecarActor {
    type Result = MessageResult<GetState>;

    fn handle(&mut self, _: GetState, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.state.clone())
    }
}

impl Handler<IsReady> for SidecarActor {
    type Result = bool;

    fn handle(&mut self, _: IsReady, _: &mut Self::Context) -> bool {
        self.state.ready
    }
}

impl Handler<Refresh> for SidecarActor {
    type Result = ResponseActFuture<Self, bool>;

    fn handle(&mut self, _: Refresh, _: &mut Self::Context) -> Self::Result {
        Box::pin(self.poll_future().map(|_, act, _| act.state.ready))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The min time to advertise from Prometheus's lowest timestamp. An empty
/// TSDB reports a value far in the future; its first sample can come at any
/// moment (and backfilled blocks from the past), so the sidecar then claims
/// no lower bound rather than hiding from queriers until the next refresh.
fn advertised_min_time(lowest: i64, now_ms: i64) -> i64 {
    if lowest > now_ms { i64::MIN } else { lowest }
}

#[cfg(test)]
mod min_time_tests {
    use super::advertised_min_time;

    #[test]
    fn empty_tsdb_advertises_no_lower_bound() {
        let now = 1_795_649_849_000;
        assert_eq!(advertised_min_time(i64::MAX, now), i64::MIN);
        assert_eq!(advertised_min_time(now + 60_000, now), i64::MIN);
        assert_eq!(advertised_min_time(now - 3_600_000, now), now - 3_600_000);
    }
}

#[cfg(test)]
mod interval_tests {
    #[test]
    fn a_zero_refresh_interval_does_not_spin() {
        use std::time::Duration;
        for ready in [true, false] {
            assert!(super::refresh_wait(Duration::ZERO, ready) >= Duration::from_millis(100));
        }
        assert_eq!(
            super::refresh_wait(Duration::from_secs(30), true),
            Duration::from_secs(30)
        );
        assert_eq!(
            super::refresh_wait(Duration::from_secs(30), false),
            Duration::from_secs(2)
        );
    }
}
