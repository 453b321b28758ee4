//! [`StoreService`]: `thanos.Store` (Series, LabelNames, LabelValues) and `thanos.info.Info`
//! over the blocks of a [`BucketStore`]. Blocks are filtered by time range, resolution and
//! matchers on their external labels before any of their data is read; block reads run on
//! blocking threads.

use super::actor::{GetBlocks, StoreActor};
use super::block::LoadedBlock;
use super::metrics::StoreApiMetrics;
use super::select::{BlockSeries, convert_matchers, merge, plan_block, read_block_series};
use super::sync::{BlockSet, BucketStore};
use actix::Addr;
use futures::StreamExt;
use prometheus_client::registry::Registry;
use skein_proto::thanos::{
    self, LabelNamesRequest, LabelNamesResponse, LabelValuesRequest, LabelValuesResponse,
    SeriesBatch, SeriesRequest, SeriesResponse, info, series_response, store_server,
};
use skein_tsdb::block::BlockError;
use skein_tsdb::index::Matcher;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Code, Request, Response, Status};

/// Where the service takes its block snapshots from.
#[derive(Clone)]
enum Source {
    Actor(Addr<StoreActor>),
    Direct(Arc<BucketStore>),
}

/// The store's StoreAPI and Info services. Cheap to clone.
#[derive(Clone)]
pub struct StoreService {
    source: Source,
    metrics: StoreApiMetrics,
    concurrency: usize,
}

type Candidate = (Arc<LoadedBlock>, Vec<Matcher>);

fn abort_on_error(strategy: i32) -> bool {
    strategy == thanos::PartialResponseStrategy::Abort as i32
}

/// `[start, end]` of a label request; 0/0 means everything.
fn label_range(start: i64, end: i64) -> (i64, i64) {
    if start == 0 && end == 0 {
        (i64::MIN, i64::MAX)
    } else {
        (start, end)
    }
}

impl StoreService {
    /// Serves the blocks of the store actor; registers the `skein_store_requests_total` family
    /// and friends.
    pub fn new(addr: Addr<StoreActor>, registry: &mut Registry) -> Self {
        Self {
            source: Source::Actor(addr),
            metrics: StoreApiMetrics::register(registry),
            concurrency: 4,
        }
    }

    /// Serves the blocks of `store` directly (no actor).
    pub fn from_store(store: Arc<BucketStore>, registry: &mut Registry) -> Self {
        let concurrency = store.config().query_concurrency.max(1);
        Self {
            source: Source::Direct(store),
            metrics: StoreApiMetrics::register(registry),
            concurrency,
        }
    }

    async fn snapshot(&self) -> Result<Arc<BlockSet>, Status> {
        let (set, ready) = match &self.source {
            Source::Direct(s) => (s.blocks(), s.is_ready()),
            Source::Actor(a) => a
                .send(GetBlocks)
                .timeout(Duration::from_secs(5))
                .await
                .map_err(|e| Status::unavailable(format!("store state unavailable: {e}")))?,
        };
        if !ready {
            return Err(Status::unavailable(
                "store not ready: the first bucket sync has not completed",
            ));
        }
        Ok(set)
    }

    fn record<T>(&self, api: &str, r: &Result<T, Status>) {
        let outcome = match r.as_ref().err().map(Status::code) {
            None => "success",
            Some(Code::InvalidArgument) => "invalid",
            Some(Code::Unavailable) => "unavailable",
            Some(_) => "error",
        };
        self.metrics.record(api, outcome);
    }

    /// Blocks that can hold matching data in `[min, max]`, with their index matchers.
    fn candidates(set: &BlockSet, ms: &[Matcher], min: i64, max: i64) -> Vec<Candidate> {
        set.blocks
            .values()
            .filter(|b| b.resolution() == 0 && b.overlaps(min, max))
            .filter_map(|b| plan_block(&b.ext_labels, ms).map(|im| (b.clone(), im)))
            .collect()
    }

    /// Runs `f` on each candidate on blocking threads; errors are kept per block.
    async fn per_block<T, F>(&self, cands: Vec<Candidate>, f: F) -> Vec<Result<T, String>>
    where
        T: Send + 'static,
        F: Fn(&LoadedBlock, &[Matcher]) -> Result<T, BlockError> + Send + Sync + 'static,
    {
        self.metrics.blocks_queried.inc_by(cands.len() as u64);
        let f = Arc::new(f);
        futures::stream::iter(cands)
            .map(|(b, im)| {
                let f = f.clone();
                async move {
                    let id = b.id;
                    match tokio::task::spawn_blocking(move || f(&b, &im)).await {
                        Ok(Ok(v)) => Ok(v),
                        Ok(Err(e)) => Err(format!("block {id}: {e}")),
                        Err(e) => Err(format!("block {id}: read task failed: {e}")),
                    }
                }
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await
    }

    async fn series_inner(&self, req: SeriesRequest) -> Result<Vec<SeriesResponse>, Status> {
        let ms = convert_matchers(&req.matchers).map_err(Status::invalid_argument)?;
        if req.min_time > req.max_time {
            return Err(Status::invalid_argument(format!(
                "min_time {} after max_time {}",
                req.min_time, req.max_time
            )));
        }
        let set = self.snapshot().await?;
        let (min, max, skip) = (req.min_time, req.max_time, req.skip_chunks);
        let drop = Arc::new(req.without_replica_labels.clone());
        let cands = Self::candidates(&set, &ms, min, max);
        let results = self
            .per_block(cands, move |b, im| {
                read_block_series(b, im, min, max, skip, &drop)
            })
            .await;
        let mut parts: Vec<BlockSeries> = Vec::new();
        let mut warnings = Vec::new();
        for r in results {
            match r {
                Ok(p) => parts.push(p),
                Err(e) if abort_on_error(req.partial_response_strategy) => {
                    return Err(Status::internal(e));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "block read failed; answering partially");
                    warnings.push(e);
                }
            }
        }
        let mut series = merge(parts);
        if req.limit > 0 {
            series.truncate(usize::try_from(req.limit).unwrap_or(usize::MAX));
        }
        self.metrics.series_returned.inc_by(series.len() as u64);
        self.metrics
            .chunks_returned
            .inc_by(series.iter().map(|s| s.chunks.len() as u64).sum());
        let mut frames: Vec<SeriesResponse> = warnings
            .into_iter()
            .map(|w| SeriesResponse {
                result: Some(series_response::Result::Warning(w)),
            })
            .collect();
        if req.response_batch_size > 1 {
            let n = usize::try_from(req.response_batch_size).unwrap_or(usize::MAX);
            let mut it = series.into_iter().peekable();
            while it.peek().is_some() {
                let batch: Vec<thanos::Series> = it.by_ref().take(n).collect();
                frames.push(SeriesResponse {
                    result: Some(series_response::Result::Batch(SeriesBatch {
                        series: batch,
                    })),
                });
            }
        } else {
            frames.extend(series.into_iter().map(|s| SeriesResponse {
                result: Some(series_response::Result::Series(s)),
            }));
        }
        Ok(frames)
    }

    async fn label_names_inner(
        &self,
        req: LabelNamesRequest,
    ) -> Result<LabelNamesResponse, Status> {
        let ms = convert_matchers(&req.matchers).map_err(Status::invalid_argument)?;
        let set = self.snapshot().await?;
        let (min, max) = label_range(req.start, req.end);
        let cands = Self::candidates(&set, &ms, min, max);
        let drop = req.without_replica_labels.clone();
        let results = self
            .per_block(cands, move |b, im| {
                let mut names: BTreeSet<String> = BTreeSet::new();
                if im.is_empty() {
                    names.extend(b.block.index().label_names());
                    names.extend(b.ext_labels.iter().map(|l| l.name.clone()));
                } else {
                    for s in b.block.select(im, min, max)? {
                        names.extend(s.labels.into_iter().map(|l| l.name));
                        names.extend(b.ext_labels.iter().map(|l| l.name.clone()));
                    }
                }
                for d in &drop {
                    if b.ext_labels.iter().any(|l| l.name == *d) {
                        names.remove(d);
                    }
                }
                Ok(names)
            })
            .await;
        let mut all: BTreeSet<String> = BTreeSet::new();
        let mut warnings = Vec::new();
        for r in results {
            match r {
                Ok(n) => all.extend(n),
                Err(e) if abort_on_error(req.partial_response_strategy) => {
                    return Err(Status::internal(e));
                }
                Err(e) => warnings.push(e),
            }
        }
        all.remove("");
        let mut names: Vec<String> = all.into_iter().collect();
        if req.limit > 0 {
            names.truncate(usize::try_from(req.limit).unwrap_or(usize::MAX));
        }
        Ok(LabelNamesResponse {
            names,
            warnings,
            hints: None,
        })
    }

    async fn label_values_inner(
        &self,
        req: LabelValuesRequest,
    ) -> Result<LabelValuesResponse, Status> {
        if req.label.is_empty() {
            return Err(Status::invalid_argument("label name is empty"));
        }
        let ms = convert_matchers(&req.matchers).map_err(Status::invalid_argument)?;
        let set = self.snapshot().await?;
        let (min, max) = label_range(req.start, req.end);
        let cands = Self::candidates(&set, &ms, min, max);
        let name = req.label.clone();
        let drop = req.without_replica_labels.clone();
        let results = self
            .per_block(cands, move |b, im| {
                let mut values: BTreeSet<String> = BTreeSet::new();
                if let Some(l) = b.ext_labels.iter().find(|l| l.name == name) {
                    if !drop.contains(&name) {
                        values.insert(l.value.clone());
                    }
                } else if im.is_empty() {
                    values.extend(b.block.index().label_values(&name)?);
                } else {
                    for s in b.block.select(im, min, max)? {
                        if let Some(l) = s.labels.into_iter().find(|l| l.name == name) {
                            values.insert(l.value);
                        }
                    }
                }
                Ok(values)
            })
            .await;
        let mut all: BTreeSet<String> = BTreeSet::new();
        let mut warnings = Vec::new();
        for r in results {
            match r {
                Ok(v) => all.extend(v),
                Err(e) if abort_on_error(req.partial_response_strategy) => {
                    return Err(Status::internal(e));
                }
                Err(e) => warnings.push(e),
            }
        }
        all.remove("");
        let mut values: Vec<String> = all.into_iter().collect();
        if req.limit > 0 {
            values.truncate(usize::try_from(req.limit).unwrap_or(usize::MAX));
        }
        Ok(LabelValuesResponse {
            values,
            warnings,
            hints: None,
        })
    }

    async fn info_inner(&self) -> Result<info::InfoResponse, Status> {
        let set = self.snapshot().await?;
        Ok(info_from_blocks(&set))
    }
}

fn to_zset(ls: &[skein_tsdb::Label]) -> thanos::ZLabelSet {
    thanos::ZLabelSet {
        labels: ls
            .iter()
            .map(|l| thanos::Label {
                name: l.name.clone(),
                value: l.value.clone(),
            })
            .collect(),
    }
}

/// The Info answer for a block set: the distinct external label sets, the overall time range
/// (empty store: min > max so no query selects it) and one TSDB info per block.
pub fn info_from_blocks(set: &BlockSet) -> info::InfoResponse {
    let mut sets: BTreeSet<Vec<skein_tsdb::Label>> = BTreeSet::new();
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    let mut tsdb_infos = Vec::new();
    for b in set.blocks.values() {
        let m = b.meta();
        min = min.min(m.min_time);
        max = max.max(m.max_time);
        sets.insert(b.ext_labels.clone());
        tsdb_infos.push(info::TsdbInfo {
            labels: Some(to_zset(&b.ext_labels)),
            min_time: m.min_time,
            max_time: m.max_time,
        });
    }
    info::InfoResponse {
        label_sets: sets.iter().map(|s| to_zset(s)).collect(),
        component_type: "store".into(),
        store: Some(info::StoreInfo {
            min_time: min,
            max_time: max,
            supports_sharding: false,
            supports_without_replica_labels: true,
            tsdb_infos,
            supports_projections: false,
        }),
        ..info::InfoResponse::default()
    }
}

#[tonic::async_trait]
impl store_server::Store for StoreService {
    type SeriesStream = futures::stream::Iter<std::vec::IntoIter<Result<SeriesResponse, Status>>>;

    async fn series(
        &self,
        request: Request<SeriesRequest>,
    ) -> Result<Response<Self::SeriesStream>, Status> {
        let r = self.series_inner(request.into_inner()).await;
        self.record("series", &r);
        let frames: Vec<Result<SeriesResponse, Status>> = r?.into_iter().map(Ok).collect();
        Ok(Response::new(futures::stream::iter(frames)))
    }

    async fn label_names(
        &self,
        request: Request<LabelNamesRequest>,
    ) -> Result<Response<LabelNamesResponse>, Status> {
        let r = self.label_names_inner(request.into_inner()).await;
        self.record("label_names", &r);
        r.map(Response::new)
    }

    async fn label_values(
        &self,
        request: Request<LabelValuesRequest>,
    ) -> Result<Response<LabelValuesResponse>, Status> {
        let r = self.label_values_inner(request.into_inner()).await;
        self.record("label_values", &r);
        r.map(Response::new)
    }
}

#[tonic::async_trait]
impl info::info_server::Info for StoreService {
    async fn info(
        &self,
        _request: Request<info::InfoRequest>,
    ) -> Result<Response<info::InfoResponse>, Status> {
        let r = self.info_inner().await;
        self.record("info", &r);
        r.map(Response::new)
    }
}
