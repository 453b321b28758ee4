//! [`StoreActor`]: syncs the [`BucketStore`] at start and every interval, and hands snapshots
//! of the served blocks to the service.

use super::config::{BucketSource, StoreConfig};
use super::metrics::StoreMetrics;
use super::sync::{BlockSet, BucketStore, StoreError, SyncReport};
use actix::prelude::*;
use prometheus_client::registry::Registry;
use skein_objstore::{Bucket, ObjstoreConfig, ObjstoreMetrics};
use std::sync::Arc;

/// The blocks served now and whether the first sync is done.
#[derive(Message)]
#[rtype(result = "(Arc<BlockSet>, bool)")]
pub struct GetBlocks;

/// Syncs with the bucket now; answers the report.
#[derive(Message)]
#[rtype(result = "Result<SyncReport, Arc<StoreError>>")]
pub struct SyncNow;

/// Whether the first sync has completed.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsReady;

pub struct StoreActor {
    store: Arc<BucketStore>,
    running: bool,
}

impl StoreActor {
    /// Builds the bucket from `cfg.bucket` (registering `skein_objstore_*`) and the store
    /// (registering `skein_store_*`). Call inside the actix system (a tokio runtime).
    pub fn new(cfg: StoreConfig, registry: &mut Registry) -> Result<Self, StoreError> {
        let objcfg = match &cfg.bucket {
            BucketSource::ConfigFile(p) => ObjstoreConfig::from_file(p)?,
            BucketSource::Config(c) => (**c).clone(),
        };
        let bucket = Bucket::from_config(&objcfg, ObjstoreMetrics::register(registry))?;
        Self::with_bucket(cfg, bucket, registry)
    }

    /// Uses an existing bucket (e.g. one shared with the shipper, whose objstore metrics are
    /// already registered); registers `skein_store_*`.
    pub fn with_bucket(
        cfg: StoreConfig,
        bucket: Bucket,
        registry: &mut Registry,
    ) -> Result<Self, StoreError> {
        let metrics = StoreMetrics::register(registry);
        Ok(Self {
            store: Arc::new(BucketStore::new(cfg, bucket, metrics)?),
            running: false,
        })
    }

    pub fn store(&self) -> Arc<BucketStore> {
        self.store.clone()
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.running {
            return;
        }
        self.running = true;
        let store = self.store.clone();
        ctx.spawn(
            async move { store.sync().await }
                .into_actor(self)
                .map(|res, act, _| {
                    act.running = false;
                    if let Ok(r) = res
                        && (!r.loaded.is_empty() || !r.dropped.is_empty() || !r.failed.is_empty())
                    {
                        tracing::info!(
                            loaded = r.loaded.len(),
                            dropped = r.dropped.len(),
                            failed = r.failed.len(),
                            total = r.total,
                            "store synced"
                        );
                    }
                }),
        );
    }
}

/// The period of the bucket sync: the configured one, never below
/// [`crate::interval::MIN_LOOP_INTERVAL`] (a `0s` would spin).
pub fn sync_every(configured: std::time::Duration) -> std::time::Duration {
    crate::interval::loop_interval(configured)
}

impl Actor for StoreActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let interval = sync_every(self.store.config().sync_interval);
        tracing::info!(bucket = %self.store.bucket(), ?interval, "store started");
        self.tick(ctx);
        ctx.run_interval(interval, |act, ctx| act.tick(ctx));
    }
}

impl Handler<GetBlocks> for StoreActor {
    type Result = MessageResult<GetBlocks>;

    fn handle(&mut self, _: GetBlocks, _: &mut Self::Context) -> Self::Result {
        MessageResult((self.store.blocks(), self.store.is_ready()))
    }
}

impl Handler<IsReady> for StoreActor {
    type Result = bool;

    fn handle(&mut self, _: IsReady, _: &mut Self::Context) -> bool {
        self.store.is_ready()
    }
}

impl Handler<SyncNow> for StoreActor {
    type Result = ResponseFuture<Result<SyncReport, Arc<StoreError>>>;

    fn handle(&mut self, _: SyncNow, _: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        Box::pin(async move { store.sync().await.map_err(Arc::new) })
    }
}

#[cfg(test)]
mod interval_tests {
    #[test]
    fn a_zero_sync_interval_does_not_spin() {
        use std::time::Duration;
        assert!(super::sync_every(Duration::ZERO) >= Duration::from_millis(100));
        assert_eq!(
            super::sync_every(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
    }
}
