//! [`ShipperActor`]: runs a [`Shipper`] sync pass every interval.

use super::config::ShipperConfig;
use super::labels::ExternalLabelsSource;
use super::metrics::ShipperMetrics;
use super::ship::{Shipper, ShipperError, SyncReport};
use actix::prelude::*;
use prometheus_client::registry::Registry;
use skein_objstore::Bucket;
use std::sync::Arc;

/// Runs one sync pass now and answers its report.
#[derive(Message)]
#[rtype(result = "Result<SyncReport, ShipperError>")]
pub struct SyncNow;

pub struct ShipperActor {
    shipper: Arc<Shipper>,
    running: bool,
}

impl ShipperActor {
    /// Builds the actor and registers the `skein_shipper_*` metrics.
    pub fn new(
        cfg: ShipperConfig,
        bucket: Bucket,
        labels: ExternalLabelsSource,
        registry: &mut Registry,
    ) -> Self {
        let metrics = ShipperMetrics::register(registry);
        Self {
            shipper: Arc::new(Shipper::new(cfg, bucket, labels, metrics)),
            running: false,
        }
    }

    pub fn shipper(&self) -> Arc<Shipper> {
        self.shipper.clone()
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.running {
            return;
        }
        self.running = true;
        let shipper = self.shipper.clone();
        let fut = async move { shipper.sync().await }
            .into_actor(self)
            .map(|res, act, _| {
                act.running = false;
                if let Err(e) = res {
                    tracing::error!(error = %e, "shipper sync failed");
                }
            });
        ctx.spawn(fut);
    }
}

/// The period of the shipper's pass: the configured one, never below
/// [`crate::interval::MIN_LOOP_INTERVAL`] (a `0s` would spin).
pub fn ship_every(configured: std::time::Duration) -> std::time::Duration {
    crate::interval::loop_interval(configured)
}

impl Actor for ShipperActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let interval = ship_every(self.shipper.config().interval);
        tracing::info!(data_dir = %self.shipper.config().data_dir.display(), ?interval, "shipper started");
        self.tick(ctx);
        ctx.run_interval(interval, |act, ctx| act.tick(ctx));
    }
}

impl Handler<SyncNow> for ShipperActor {
    type Result = ResponseFuture<Result<SyncReport, ShipperError>>;

    fn handle(&mut self, _: SyncNow, _: &mut Self::Context) -> Self::Result {
        let shipper = self.shipper.clone();
        Box::pin(async move { shipper.sync().await })
    }
}

#[cfg(test)]
mod interval_tests {
    #[test]
    fn a_zero_ship_interval_does_not_spin() {
        use std::time::Duration;
        assert!(super::ship_every(Duration::ZERO) >= Duration::from_millis(100));
        assert_eq!(
            super::ship_every(Duration::from_secs(30)),
            Duration::from_secs(30)
        );
    }
}
