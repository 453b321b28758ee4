//! The StoreAPI (`thanos.Store`) and Info (`thanos.info.Info`) services of a
//! sidecar. Each call takes a state snapshot from the [`SidecarActor`] and
//! then talks to Prometheus on a tokio task, outside the actor's mailbox.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use skein_promql::Labels;
use skein_proto::thanos::{
    self, AggrChunk, LabelNamesRequest, LabelNamesResponse, LabelValuesRequest,
    LabelValuesResponse, SeriesRequest, SeriesResponse, info, series_response, store_server,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status};

use super::actor::{GetState, SidecarActor, SidecarState};
use super::extlabels::{self, Plan};
use super::metrics::SidecarMetrics;
use super::order::{self, Orderer};
use super::prometheus::{DEFAULT_ACCEPTED, PrometheusError};
use crate::matchers::{self, CompiledMatcher};

/// Series responses buffered between the Prometheus reader and gRPC.
const STREAM_BUFFER: usize = 16;

/// The sidecar's StoreAPI and Info services. Cheap to clone.
#[derive(Clone)]
pub struct SidecarStore {
    addr: Addr<SidecarActor>,
    metrics: SidecarMetrics,
    snapshot_timeout: Duration,
}

impl SidecarStore {
    /// `metrics` should come from [`SidecarActor::metrics`].
    pub fn new(addr: Addr<SidecarActor>, metrics: SidecarMetrics) -> Self {
        SidecarStore {
            addr,
            metrics,
            snapshot_timeout: Duration::from_secs(5),
        }
    }

    /// Bound on waiting for the actor's state snapshot (default 5 s).
    pub fn with_snapshot_timeout(mut self, d: Duration) -> Self {
        self.snapshot_timeout = d;
        self
    }

    async fn snapshot(&self) -> Result<Arc<SidecarState>, Status> {
        self.addr
            .send(GetState)
            .timeout(self.snapshot_timeout)
            .await
            .map_err(|e| Status::unavailable(format!("sidecar state unavailable: {e}")))
    }

    async fn ready_snapshot(&self) -> Result<Arc<SidecarState>, Status> {
        let state = self.snapshot().await?;
        if !state.ready {
            let why = state.last_error.as_deref().unwrap_or("unknown");
            return Err(Status::unavailable(format!("not ready: {why}")));
        }
        Ok(state)
    }

    fn compile(&self, ms: &[thanos::LabelMatcher]) -> Result<Vec<CompiledMatcher>, Status> {
        let ms = matchers::from_wire_matchers(ms)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        matchers::compile_all(&ms).map_err(|e| Status::invalid_argument(e.to_string()))
    }

    fn record<T>(&self, api: &str, res: &Result<T, Status>) {
        record(&self.metrics, api, res.as_ref().err());
    }

    async fn label_names_inner(
        &self,
        req: LabelNamesRequest,
    ) -> Result<LabelNamesResponse, Status> {
        let ms = self.compile(&req.matchers)?;
        let state = self.ready_snapshot().await?;
        let Plan::Ask(ask) = extlabels::plan(&ms, &state.external_labels) else {
            return Ok(LabelNamesResponse::default());
        };
        let sel = optional_selector(&ask)?;
        let names = state
            .prometheus
            .label_names(sel.as_deref(), req.start, req.end)
            .await
            .map_err(prometheus_status)?;
        let ext =
            extlabels::effective_external(&state.external_labels, &req.without_replica_labels);
        let mut names = extlabels::merge_names(names, &ext);
        names.retain(|n| {
            !(req.without_replica_labels.contains(n) && state.external_labels.get(n).is_some())
        });
        truncate(&mut names, req.limit);
        Ok(LabelNamesResponse {
            names,
            ..Default::default()
        })
    }

    async fn label_values_inner(
        &self,
        req: LabelValuesRequest,
    ) -> Result<LabelValuesResponse, Status> {
        if !extlabels::is_valid_label_name(&req.label) {
            return Err(Status::invalid_argument(format!(
                "invalid label name {:?}",
                req.label
            )));
        }
        let ms = self.compile(&req.matchers)?;
        let state = self.ready_snapshot().await?;
        let Plan::Ask(ask) = extlabels::plan(&ms, &state.external_labels) else {
            return Ok(LabelValuesResponse::default());
        };
        let sel = optional_selector(&ask)?;
        let prom = &state.prometheus;
        let mut values = match state.external_labels.get(&req.label) {
            Some(_) if req.without_replica_labels.contains(&req.label) => Vec::new(),
            Some(v) if sel.is_none() => vec![v.to_string()],
            Some(v) => {
                // The value holds only if some series matches.
                let names = prom
                    .label_names(sel.as_deref(), req.start, req.end)
                    .await
                    .map_err(prometheus_status)?;
                if names.is_empty() {
                    Vec::new()
                } else {
                    vec![v.to_string()]
                }
            }
            None => prom
                .label_values(&req.label, sel.as_deref(), req.start, req.end)
                .await
                .map_err(prometheus_status)?,
        };
        values.sort();
        values.dedup();
        truncate(&mut values, req.limit);
        Ok(LabelValuesResponse {
            values,
            ..Default::default()
        })
    }

    async fn info_inner(&self) -> Result<info::InfoResponse, Status> {
        let state = self.snapshot().await?;
        if !state.ready {
            return Err(Status::unavailable("not ready"));
        }
        Ok(info::InfoResponse {
            label_sets: vec![thanos::ZLabelSet {
                labels: matchers::labels_to_wire(&state.external_labels),
            }],
            component_type: "sidecar".into(),
            store: Some(info::StoreInfo {
                min_time: state.min_time,
                max_time: state.max_time,
                supports_without_replica_labels: true,
                ..Default::default()
            }),
            ..Default::default()
        })
    }
}

#[tonic::async_trait]
impl store_server::Store for SidecarStore {
    type SeriesStream = ReceiverStream<Result<SeriesResponse, Status>>;

    async fn series(
        &self,
        request: Request<SeriesRequest>,
    ) -> Result<Response<Self::SeriesStream>, Status> {
        let req = request.into_inner();
        let started = self.start_series(req).await;
        if let Err(e) = &started {
            record(&self.metrics, "series", Some(e));
        }
        started.map(Response::new)
    }

    async fn label_names(
        &self,
        request: Request<LabelNamesRequest>,
    ) -> Result<Response<LabelNamesResponse>, Status> {
        let res = self.label_names_inner(request.into_inner()).await;
        self.record("label_names", &res);
        res.map(Response::new)
    }

    async fn label_values(
        &self,
        request: Request<LabelValuesRequest>,
    ) -> Result<Response<LabelValuesResponse>, Status> {
        let res = self.label_values_inner(request.into_inner()).await;
        self.record("label_values", &res);
        res.map(Response::new)
    }
}

#[tonic::async_trait]
impl info::info_server::Info for SidecarStore {
    async fn info(
        &self,
        _request: Request<info::InfoRequest>,
    ) -> Result<Response<info::InfoResponse>, Status> {
        let res = self.info_inner().await;
        self.record("info", &res);
        res.map(Response::new)
    }
}

/// A request Prometheus will be asked, once validated.
struct SeriesJob {
    state: Arc<SidecarState>,
    req: SeriesRequest,
    ask: Vec<skein_promql::LabelMatcher>,
    /// The `/api/v1/series` selector, for `skip_chunks`.
    selector: Option<String>,
}

impl SidecarStore {
    /// Validates the request and starts the task that streams the answer.
    async fn start_series(
        &self,
        req: SeriesRequest,
    ) -> Result<ReceiverStream<Result<SeriesResponse, Status>>, Status> {
        let ms = self.compile(&req.matchers)?;
        let state = self.ready_snapshot().await?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let ask = match extlabels::plan(&ms, &state.external_labels) {
            Plan::Empty => {
                record(&self.metrics, "series", None);
                return Ok(ReceiverStream::new(rx));
            }
            Plan::Ask(ask) => ask,
        };
        if ask.is_empty() {
            return Err(Status::invalid_argument(
                "no matchers specified (excluding external labels)",
            ));
        }
        if req.max_time < req.min_time {
            record(&self.metrics, "series", None);
            return Ok(ReceiverStream::new(rx));
        }
        let selector = if req.skip_chunks {
            Some(extlabels::selector(&ask).map_err(Status::invalid_argument)?)
        } else {
            None
        };
        let job = SeriesJob {
            state,
            req,
            ask,
            selector,
        };
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let res = run_series(job, &tx).await;
            record(&metrics, "series", res.as_ref().err());
            if let Err(status) = res {
                // The client may be gone; nothing else to do then.
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(ReceiverStream::new(rx))
    }
}

/// Reads the answer from Prometheus, completes label sets and sends the
/// series sorted: remote-read series pass through an [`Orderer`] that holds
/// back only series whose order completion may change; `/api/v1/series`
/// answers (labels only, unsorted) are sorted whole.
async fn run_series(
    job: SeriesJob,
    tx: &mpsc::Sender<Result<SeriesResponse, Status>>,
) -> Result<(), Status> {
    let SeriesJob {
        state,
        req,
        ask,
        selector,
    } = job;
    let ext = &state.external_labels;
    let dropped = &req.without_replica_labels;
    let prom = &state.prometheus;
    let mut out = SeriesSender::new(tx, req.response_batch_size, req.limit);
    if let Some(sel) = selector {
        let sets = prom
            .series(&sel, req.min_time, req.max_time)
            .await
            .map_err(prometheus_status)?;
        let mut sets: Vec<Labels> = sets
            .into_iter()
            .map(|ls| extlabels::complete(ls, ext, dropped))
            .collect();
        sets.sort();
        sets.dedup();
        for ls in sets {
            if !out.send(ls, Vec::new()).await {
                return Ok(());
            }
        }
        out.flush().await;
        return Ok(());
    }
    let mut stream = prom
        .remote_read(req.min_time, req.max_time, &ask, &DEFAULT_ACCEPTED)
        .await
        .map_err(prometheus_status)?;
    let kept = extlabels::effective_external(ext, dropped);
    let mut orderer = Orderer::new(ext, &kept);
    while let Some(s) = stream.next().await.map_err(prometheus_status)? {
        let completed = extlabels::complete(s.labels.clone(), ext, dropped);
        for (ls, chunks) in orderer.push(&s.labels, completed, s.chunks) {
            if !out.send(ls, chunks).await {
                return Ok(());
            }
        }
    }
    for (ls, chunks) in orderer.finish() {
        if !out.send(ls, chunks).await {
            return Ok(());
        }
    }
    out.flush().await;
    Ok(())
}

/// Sends series one per response or in batches, up to a limit.
struct SeriesSender<'a> {
    tx: &'a mpsc::Sender<Result<SeriesResponse, Status>>,
    batch_size: usize,
    batch: Vec<thanos::Series>,
    /// Series still allowed; `None` = no limit.
    left: Option<usize>,
}

impl<'a> SeriesSender<'a> {
    fn new(
        tx: &'a mpsc::Sender<Result<SeriesResponse, Status>>,
        batch_size: i64,
        limit: i64,
    ) -> Self {
        let batch_size = usize::try_from(batch_size).unwrap_or(0).max(1);
        let left = (limit > 0).then(|| usize::try_from(limit).unwrap_or(usize::MAX));
        SeriesSender {
            tx,
            batch_size,
            batch: Vec::new(),
            left,
        }
    }

    /// False once the limit is reached or the client is gone: stop then.
    async fn send(&mut self, labels: Labels, mut chunks: Vec<AggrChunk>) -> bool {
        if self.left == Some(0) {
            return false;
        }
        order::sort_chunks(&mut chunks);
        self.batch.push(thanos::Series {
            labels: matchers::labels_to_wire(&labels),
            chunks,
        });
        if let Some(left) = &mut self.left {
            *left -= 1;
        }
        if self.batch.len() >= self.batch_size && !self.flush().await {
            return false;
        }
        if self.left == Some(0) {
            self.flush().await;
            return false;
        }
        true
    }

    /// Sends what is batched; false if the client is gone.
    async fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let resp = if self.batch_size <= 1 {
            let mut batch = std::mem::take(&mut self.batch);
            match batch.pop() {
                Some(s) => series_response::Result::Series(s),
                None => return true,
            }
        } else {
            series_response::Result::Batch(thanos::SeriesBatch {
                series: std::mem::take(&mut self.batch),
            })
        };
        self.tx
            .send(Ok(SeriesResponse { result: Some(resp) }))
            .await
            .is_ok()
    }
}

fn optional_selector(ask: &[skein_promql::LabelMatcher]) -> Result<Option<String>, Status> {
    if ask.is_empty() {
        return Ok(None);
    }
    extlabels::selector(ask)
        .map(Some)
        .map_err(Status::invalid_argument)
}

fn truncate<T>(v: &mut Vec<T>, limit: i64) {
    if limit > 0 {
        v.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
}

/// Prometheus refusing the request's data is the caller's fault; anything
/// else means Prometheus is not serving.
fn prometheus_status(e: PrometheusError) -> Status {
    match &e {
        PrometheusError::Api { error_type, .. } if error_type == "bad_data" => {
            Status::invalid_argument(format!("prometheus: {e}"))
        }
        _ => Status::unavailable(format!("prometheus: {e}")),
    }
}

fn record(metrics: &SidecarMetrics, api: &str, err: Option<&Status>) {
    let outcome = match err.map(Status::code) {
        None => "success",
        Some(Code::InvalidArgument) => {
            metrics.invalid(api);
            "invalid"
        }
        Some(Code::Unavailable) => "unavailable",
        Some(_) => "error",
    };
    metrics.request(api, outcome);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(i: usize) -> Labels {
        Labels::from_pairs([("i", i.to_string().as_str())])
    }

    async fn run(n: usize, batch: i64, limit: i64) -> Vec<usize> {
        let (tx, mut rx) = mpsc::channel(64);
        let mut out = SeriesSender::new(&tx, batch, limit);
        for i in 0..n {
            if !out.send(series(i), Vec::new()).await {
                break;
            }
        }
        out.flush().await;
        drop(tx);
        let mut sizes = Vec::new();
        while let Some(Ok(r)) = rx.recv().await {
            match r.result {
                Some(series_response::Result::Batch(b)) => sizes.push(b.series.len()),
                Some(series_response::Result::Series(_)) => sizes.push(0),
                other => panic!("unexpected {other:?}"),
            }
        }
        sizes
    }

    #[tokio::test]
    async fn batches_and_limits() {
        assert_eq!(run(5, 2, 0).await, vec![2, 2, 1]);
        assert_eq!(run(5, 0, 0).await, vec![0; 5]);
        assert_eq!(run(5, 1, 3).await, vec![0; 3]);
        assert_eq!(run(5, 2, 3).await, vec![2, 1]);
        assert_eq!(run(2, 64, 3).await, vec![2]);
    }
}
