//! Wiring: the actix System on a multi-thread tokio runtime, the actors of
//! each role, the HTTP and gRPC servers, and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use futures::FutureExt;
use prometheus_client::registry::Registry;
use skein_actors::query::{QueryConfig, QueryHandle};
use skein_actors::shipper::{ExternalLabelsSource, ShipperActor, ShipperConfig};
use skein_actors::sidecar::{GetState, IsReady, SidecarActor, SidecarConfig, SidecarStore};
use skein_actors::store::{
    BucketSource, GetBlocks, IsReady as StoreIsReady, StoreActor, StoreConfig, StoreService,
};
use tokio::sync::oneshot;

use crate::config::{Config, Role};
use crate::readiness::Readiness;

pub fn node(config: Config) -> anyhow::Result<()> {
    let sys = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("skein-worker")
            .build()
            .expect("building the tokio runtime")
    });
    let res = sys.block_on(run(config));
    // The process exits next. Dropping the System would poll actors that
    // never started (on start-up errors) outside any reactor and panic.
    std::mem::forget(sys);
    res
}

async fn run(config: Config) -> anyhow::Result<()> {
    // Every component names its metrics `skein_<component>_*` itself.
    let mut registry = Registry::default();
    // Every regex from a request, on every role, compiles under this.
    skein_promql::re::set_size_limit(config.max_regex_size);
    skein_promql::re::register_metrics(&mut registry);
    let mut readiness = Readiness::default();
    let mut grpc_stop: Option<oneshot::Sender<()>> = None;
    let mut grpc_task = None;
    let mut served: Option<crate::gossip::ServedFn> = None;

    let tls = match &config.tls {
        Some(t) => {
            let r = skein_tls::TlsReloader::new(t.files.clone(), &mut registry)?;
            r.watch(Duration::from_secs(10));
            tracing::info!(cert = %t.files.cert.display(), ca = %t.files.ca.display(), "mutual TLS on gRPC");
            Some(r)
        }
        None => {
            tracing::warn!("development mode: gRPC is plaintext and unauthenticated");
            None
        }
    };

    tracing::info!(
        roles = ?config.roles,
        http = %config.http_address,
        grpc = %config.grpc_address,
        version = env!("CARGO_PKG_VERSION"),
        "starting skein node"
    );

    // WAN gossip rides the gRPC port: its service must be in the router.
    let wan_plan = crate::wan::prepare(&config, tls.clone(), &mut registry)?;
    let wan_service = || wan_plan.as_ref().map(|p| p.service());

    if config.has(Role::Sidecar) {
        let s = &config.sidecar;
        let cfg = SidecarConfig {
            prometheus_url: s.prometheus_url.clone(),
            refresh_interval: s.refresh_interval,
            request_timeout: s.request_timeout,
        };
        let actor = SidecarActor::new(cfg, &mut registry)?;
        let metrics = actor.metrics();
        let addr = actor.start();
        let ready_addr = addr.clone();
        readiness.add("sidecar", move || {
            let a = ready_addr.clone();
            async move {
                match a.send(IsReady).timeout(Duration::from_secs(2)).await {
                    Ok(true) => Ok(()),
                    Ok(false) => {
                        Err("Prometheus not reachable or external labels not read yet".into())
                    }
                    Err(e) => Err(format!("sidecar actor did not answer: {e}")),
                }
            }
            .boxed()
        });
        let state_addr = addr.clone();
        served = Some(Arc::new(move || {
            let a = state_addr.clone();
            async move {
                let s = a
                    .send(GetState)
                    .timeout(Duration::from_secs(2))
                    .await
                    .ok()?;
                s.ready.then(|| crate::gossip::Served {
                    label_sets: vec![s.external_labels.clone()],
                    min_time: s.min_time,
                    max_time: s.max_time,
                })
            }
            .boxed()
        }));
        if let Some(sh) = &s.shipper {
            let bucket = open_bucket(&sh.objstore_config_file, &mut registry)?;
            let mut cfg = ShipperConfig::new(&sh.tsdb_path);
            cfg.interval = sh.interval;
            let labels = ExternalLabelsSource::Sidecar(addr.clone());
            ShipperActor::new(cfg, bucket, labels, &mut registry).start();
            tracing::info!(
                tsdb = %sh.tsdb_path.display(),
                bucket = %sh.objstore_config_file.display(),
                "shipper started: finished blocks go to the bucket"
            );
        }
        let store = SidecarStore::new(addr, metrics);
        let (tx, rx) = oneshot::channel();
        grpc_task = Some(
            crate::grpc::start_store_api_and_wan(
                config.grpc_address,
                tls.clone(),
                store,
                wan_service(),
                crate::grpc::ServerOptions {
                    settings: &config.grpc,
                    registry: &mut registry,
                },
                rx,
            )
            .await?,
        );
        grpc_stop = Some(tx);
        tracing::info!(grpc = %config.grpc_address, prometheus = %s.prometheus_url, "sidecar role started");
    }

    if let Some(st) = &config.store {
        let mut cfg = StoreConfig::new(
            &st.data_dir,
            BucketSource::ConfigFile(st.objstore_config_file.clone()),
        );
        cfg.sync_interval = st.sync_interval;
        cfg.index_cache_bytes = st.index_cache_bytes;
        cfg.chunk_cache_bytes = st.chunk_cache_bytes;
        let addr = StoreActor::new(cfg, &mut registry)?.start();
        let ready_addr = addr.clone();
        readiness.add("store", move || {
            let a = ready_addr.clone();
            async move {
                match a.send(StoreIsReady).timeout(Duration::from_secs(2)).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err("first bucket sync not done yet".into()),
                    Err(e) => Err(format!("store actor did not answer: {e}")),
                }
            }
            .boxed()
        });
        let blocks_addr = addr.clone();
        served = Some(Arc::new(move || {
            let a = blocks_addr.clone();
            async move {
                let (set, ready) = a
                    .send(GetBlocks)
                    .timeout(Duration::from_secs(2))
                    .await
                    .ok()?;
                if !ready {
                    return None;
                }
                let info = skein_actors::store::service::info_from_blocks(&set);
                let (min, max) = info
                    .store
                    .as_ref()
                    .map_or((i64::MIN, i64::MAX), |s| (s.min_time, s.max_time));
                let label_sets = info
                    .label_sets
                    .iter()
                    .map(|z| skein_actors::matchers::labels_from_wire(&z.labels))
                    .collect();
                // An empty store announces an empty range (min == max).
                let (min, max) = if min > max {
                    (i64::MAX, i64::MAX)
                } else {
                    (min, max)
                };
                Some(crate::gossip::Served {
                    label_sets,
                    min_time: min,
                    max_time: max,
                })
            }
            .boxed()
        }));
        let svc = StoreService::new(addr, &mut registry);
        let (tx, rx) = oneshot::channel();
        grpc_task = Some(
            crate::grpc::start_store_api_and_wan(
                config.grpc_address,
                tls.clone(),
                svc,
                wan_service(),
                crate::grpc::ServerOptions {
                    settings: &config.grpc,
                    registry: &mut registry,
                },
                rx,
            )
            .await?,
        );
        grpc_stop = Some(tx);
        tracing::info!(
            grpc = %config.grpc_address,
            bucket = %st.objstore_config_file.display(),
            "store role started"
        );
    }

    if grpc_task.is_none()
        && let Some(wan) = wan_service()
    {
        let (tx, rx) = oneshot::channel();
        let opts = crate::grpc::ServerOptions {
            settings: &config.grpc,
            registry: &mut registry,
        };
        grpc_task =
            Some(crate::grpc::start_wan(config.grpc_address, tls.clone(), wan, opts, rx).await?);
        grpc_stop = Some(tx);
        tracing::info!(grpc = %config.grpc_address, "gRPC server for WAN gossip listening");
    }

    let query = if config.has(Role::Query) {
        let q = &config.query;
        let cfg = QueryConfig {
            stores: q.stores.clone(),
            replica_labels: q.replica_labels.clone(),
            lookback_delta: q.lookback_delta,
            timeout: q.timeout,
            max_samples: q.max_samples,
            partial_response: q.partial_response,
            info_interval: q.info_interval,
            info_timeout: q.info_timeout,
            store_timeout: q.store_timeout,
            store_limits: q.store_limits,
            limits: q.limits.clone(),
        };
        tracing::info!(stores = ?q.stores, "query role started");
        let handle = QueryHandle::start_with_tls(cfg, tls.clone(), &mut registry);
        if let Some(g) = &config.gossip {
            // Gossip needs a few rounds to find every store (and a WAN
            // catalog a few more): until then answers warn and the node is
            // not ready, rather than answering silently without them.
            let settle = (g.interval * 5).max(Duration::from_secs(3));
            handle.discovery_settles_at(std::time::Instant::now() + settle);
        }
        if !q.store_files.is_empty() {
            crate::filesd::watch(
                q.store_files.clone(),
                handle.clone(),
                Duration::from_secs(5),
            );
        }
        let ready_handle = handle.clone();
        readiness.add("query", move || {
            let h = ready_handle.clone();
            async move { h.ready().await }.boxed()
        });
        Some(handle)
    } else {
        None
    };

    let mut wan_pool = None;
    let membership = match &config.gossip {
        Some(g) => {
            let roles: Vec<skein_discovery::Role> = config
                .roles
                .iter()
                .map(|r| match r {
                    Role::Sidecar => skein_discovery::Role::Sidecar,
                    Role::Store => skein_discovery::Role::Store,
                    Role::Query => skein_discovery::Role::Query,
                })
                .collect();
            let m = crate::gossip::start(
                &config,
                g,
                roles,
                served.clone(),
                readiness.clone(),
                &mut registry,
            )
            .await?;
            if let Some(plan) = wan_plan {
                wan_pool = Some(crate::wan::start(plan, &config, &m, served.clone()).await?);
            }
            match (&query, &wan_pool) {
                (Some(q), Some(w)) => crate::wan::feed_store_set(
                    &m,
                    w,
                    config.federation.clone(),
                    config.cluster.clone(),
                    q.clone(),
                ),
                (Some(q), None) => crate::gossip::feed_store_set(
                    &m,
                    config.federation.clone(),
                    config.cluster.clone(),
                    q.clone(),
                ),
                (None, _) => {}
            }
            Some(m)
        }
        None => None,
    };

    let state = crate::http::HttpState {
        registry: Arc::new(registry),
        readiness,
        membership: membership.clone(),
    };
    let http = crate::http::start(config.http_address, state, query)?;
    tracing::info!(http = %config.http_address, "HTTP server listening");

    wait_for_signal().await;
    tracing::info!("shutting down");
    http.stop(true).await;
    if let Some(w) = wan_pool {
        // Peers of other clusters drop this member (and its catalog) now.
        w.leave().await;
    }
    if let Some(m) = membership {
        // Announce not-ready so queriers drop this node now rather than
        // after failure detection; give the news two rounds to spread.
        m.set_ready(false).await;
        let round = config
            .gossip
            .as_ref()
            .map_or(Duration::from_secs(1), |g| g.interval);
        tokio::time::sleep(round * 2).await;
    }
    if let Some(tx) = grpc_stop {
        let _ = tx.send(());
    }
    if let Some(t) = grpc_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    actix_rt::System::current().stop();
    tracing::info!("stopped");
    Ok(())
}

/// Opens the bucket an objstore.yml names.
pub fn open_bucket(
    path: &std::path::Path,
    registry: &mut Registry,
) -> anyhow::Result<skein_objstore::Bucket> {
    let cfg = skein_objstore::ObjstoreConfig::from_file(path)?;
    let metrics = skein_objstore::ObjstoreMetrics::register(registry);
    Ok(skein_objstore::Bucket::from_config(&cfg, metrics)?)
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    /// Components name their metrics `skein_<component>_*`; the node's
    /// registry adds nothing (it once doubled the prefix).
    #[test]
    fn metric_names_carry_one_skein_prefix() {
        let mut r = Registry::default();
        skein_actors::query::QueryMetrics::register(&mut r);
        skein_actors::sidecar::SidecarActor::new(Default::default(), &mut r).unwrap();
        skein_objstore::ObjstoreMetrics::register(&mut r);
        skein_discovery::GossipMetrics::register(&mut r);
        skein_discovery::GossipMetrics::register_as(&mut r, "skein_wan_gossip");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert!(names.len() > 10, "{text}");
        for n in names {
            assert!(
                n.starts_with("skein_") && !n.starts_with("skein_skein"),
                "{n}"
            );
        }
    }
}
