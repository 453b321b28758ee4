//! The two-cluster setup: Prometheus eu1 and us1 with different generated data,
//! a sidecar next to each, and one querier over both sidecars.

use std::time::Duration;

use anyhow::{Context, anyhow};
use tempfile::TempDir;

use crate::datagen::{DataSpec, Dataset};
use crate::labels::{LabelSet, label_set};
use crate::prometheus::PrometheusServer;
use crate::promjson::QueryData;
use crate::skein::SkeinNode;
use crate::timefmt::now_ms;
use crate::wait::poll_until;

/// Cluster names (the `cluster` external label) and data seeds.
pub const CLUSTERS: [(&str, u64); 2] = [("eu1", 11), ("us1", 22)];

/// The data window ends this long before now, so Prometheus' own scraped data
/// (which starts at launch) never falls into it, even with a 5 m lookback.
pub const WINDOW_END_BEFORE_NOW_MS: i64 = 10 * 60 * 1000;

/// One cluster: its external labels, data and Prometheus.
#[derive(Debug)]
pub struct Cluster {
    pub name: String,
    pub external_labels: LabelSet,
    pub dataset: Dataset,
    pub prometheus: PrometheusServer,
}

/// Prometheus servers only (no skein).
#[derive(Debug)]
pub struct Clusters {
    pub clusters: Vec<Cluster>,
    // Dropped last: the servers above must be gone before their dirs go.
    pub dir: TempDir,
}

/// Start one Prometheus per entry of [`CLUSTERS`], in parallel, on data from
/// `spec_for(seed, window_end_ms)`.
pub fn start_clusters(spec_for: impl Fn(u64, i64) -> DataSpec + Sync) -> anyhow::Result<Clusters> {
    start_clusters_with_args(spec_for, &[])
}

/// Like [`start_clusters`], with additional Prometheus flags for every server.
pub fn start_clusters_with_args(
    spec_for: impl Fn(u64, i64) -> DataSpec + Sync,
    prometheus_args: &[String],
) -> anyhow::Result<Clusters> {
    let dir = tempfile::Builder::new().prefix("skein-e2e-").tempdir()?;
    let end = now_ms() - WINDOW_END_BEFORE_NOW_MS;
    let results: Vec<anyhow::Result<Cluster>> = std::thread::scope(|s| {
        let handles: Vec<_> = CLUSTERS
            .iter()
            .map(|(name, seed)| {
                let dir = dir.path();
                let spec_for = &spec_for;
                s.spawn(move || -> anyhow::Result<Cluster> {
                    let dataset = Dataset::generate(spec_for(*seed, end))?;
                    let labels = label_set(&[("cluster", name)]);
                    let prometheus = PrometheusServer::start_with_args(
                        dir,
                        &format!("prometheus-{name}"),
                        &labels,
                        Some(&dataset),
                        prometheus_args,
                    )
                    .with_context(|| format!("starting Prometheus {name}"))?;
                    Ok(Cluster {
                        name: (*name).to_string(),
                        external_labels: labels,
                        dataset,
                        prometheus,
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("cluster thread panicked")))
            })
            .collect()
    });
    let clusters = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Clusters { clusters, dir })
}

impl Clusters {
    /// The data window `[start, end)` shared by all clusters (same spec shape).
    pub fn window(&self) -> (i64, i64) {
        let spec = &self.clusters[0].dataset.spec;
        (spec.start_ms, spec.end_ms())
    }
}

/// The full setup: clusters + one sidecar each + one querier.
#[derive(Debug)]
pub struct TwoClusters {
    pub querier: SkeinNode,
    pub sidecars: Vec<SkeinNode>,
    pub clusters: Clusters,
}

impl TwoClusters {
    /// Start everything on the small test data and wait until the querier
    /// answers with data from every cluster.
    pub fn start_small() -> anyhow::Result<Self> {
        Self::start(DataSpec::small, &[])
    }

    /// Start everything; `querier_extra` are additional querier flags.
    pub fn start(
        spec_for: impl Fn(u64, i64) -> DataSpec + Sync,
        querier_extra: &[String],
    ) -> anyhow::Result<Self> {
        Self::start_with(spec_for, |_| Ok(Vec::new()), querier_extra)
    }

    /// Start everything; `sidecar_extra(name)` gives each sidecar's additional
    /// flags (`name` is `sidecar-<cluster>`), `querier_extra` the querier's.
    pub fn start_with(
        spec_for: impl Fn(u64, i64) -> DataSpec + Sync,
        sidecar_extra: impl Fn(&str) -> anyhow::Result<Vec<String>>,
        querier_extra: &[String],
    ) -> anyhow::Result<Self> {
        let clusters = start_clusters(spec_for)?;
        let mut sidecars = Vec::new();
        for c in &clusters.clusters {
            let name = format!("sidecar-{}", c.name);
            let extra = sidecar_extra(&name)?;
            sidecars.push(SkeinNode::start_sidecar(
                clusters.dir.path(),
                &name,
                &c.prometheus.url,
                &extra,
            )?);
        }
        let stores: Vec<String> = sidecars.iter().map(SkeinNode::store_address).collect();
        let mut extra = vec!["--query.info-interval".to_string(), "1s".to_string()];
        extra.extend_from_slice(querier_extra);
        let querier = SkeinNode::start_querier(clusters.dir.path(), "querier", &stores, &extra)?;
        let setup = Self {
            querier,
            sidecars,
            clusters,
        };
        if let Err(e) = setup.wait_querier_sees_all(Duration::from_secs(30)) {
            let tails: Vec<String> = std::iter::once(&setup.querier)
                .chain(setup.sidecars.iter())
                .map(|n| format!("--- {} ---\n{}", n.name, n.guard().log_tail(15)))
                .collect();
            return Err(e.context(format!("node logs:\n{}", tails.join("\n"))));
        }
        Ok(setup)
    }

    /// The data window.
    pub fn window(&self) -> (i64, i64) {
        self.clusters.window()
    }

    /// Wait until `count by (cluster) (gen_queue_depth)` through the querier
    /// shows every cluster (store discovery is asynchronous).
    pub fn wait_querier_sees_all(&self, timeout: Duration) -> anyhow::Result<()> {
        let (_, end) = self.window();
        let want: Vec<String> = self
            .clusters
            .clusters
            .iter()
            .map(|c| c.name.clone())
            .collect();
        poll_until(
            "querier to see every cluster",
            timeout,
            Duration::from_millis(250),
            || {
                let data = self
                    .querier
                    .client
                    .query("count by (cluster) (gen_queue_depth)", end)?;
                let seen: Vec<String> = match &data {
                    QueryData::Vector(m) => m
                        .keys()
                        .filter_map(|ls| ls.get("cluster").cloned())
                        .collect(),
                    _ => Vec::new(),
                };
                if want.iter().all(|w| seen.contains(w)) {
                    Ok(Some(()))
                } else {
                    Err(anyhow!("clusters seen so far: {seen:?}"))
                }
            },
        )
    }
}
