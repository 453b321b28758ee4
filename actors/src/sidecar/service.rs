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

/// Reads the answer from Prometheus, completes and sorts label sets, and
/// sends it. Series are collected before sending because adding external
/// labels (or dropping replica labels) can change their order.
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
    let mut all: Vec<(Labels, Vec<AggrChunk>)> = Vec::new();
    if let Some(sel) = selector {
        let sets = prom
            .series(&sel, req.min_time, req.max_time)
            .await
            .map_err(prometheus_status)?;
        all.extend(
            sets.into_iter()
                .map(|ls| (extlabels::complete(ls, ext, dropped), Vec::new())),
        );
    } else {
        let mut stream = prom
            .remote_read(req.min_time, req.max_time, &ask, &DEFAULT_ACCEPTED)
            .await
            .map_err(prometheus_status)?;
        while let Some(s) = stream.next().await.map_err(prometheus_status)? {
            all.push((extlabels::complete(s.labels, ext, dropped), s.chunks));
        }
    }
    let mut series = sort_and_merge(all);
    if req.limit > 0 {
        series.truncate(usize::try_from(req.limit).unwrap_or(usize::MAX));
    }
    send_series(series, req.response_batch_size, tx).await;
    Ok(())
}

/// Sorts by label set; series that became equal (a label replaced by an
/// external one) are merged, chunks ordered by time.
fn sort_and_merge(mut all: Vec<(Labels, Vec<AggrChunk>)>) -> Vec<thanos::Series> {
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(Labels, Vec<AggrChunk>)> = Vec::with_capacity(all.len());
    let mut merged = false;
    for (ls, chunks) in all {
        match out.last_mut() {
            Some(last) if last.0 == ls => {
                last.1.extend(chunks);
                merged = true;
            }
            _ => out.push((ls, chunks)),
        }
    }
    if merged {
        for (_, chunks) in &mut out {
            chunks.sort_by_key(|c| (c.min_time, c.max_time));
        }
    }
    out.into_iter()
        .map(|(ls, chunks)| thanos::Series {
            labels: matchers::labels_to_wire(&ls),
            chunks,
        })
        .collect()
}

async fn send_series(
    series: Vec<thanos::Series>,
    batch_size: i64,
    tx: &mpsc::Sender<Result<SeriesResponse, Status>>,
) {
    let batch = usize::try_from(batch_size).unwrap_or(0);
    if batch <= 1 {
        for s in series {
            let resp = SeriesResponse {
                result: Some(series_response::Result::Series(s)),
            };
            if tx.send(Ok(resp)).await.is_err() {
                return;
            }
        }
        return;
    }
    let mut it = series.into_iter().peekable();
    while it.peek().is_some() {
        let part: Vec<thanos::Series> = it.by_ref().take(batch).collect();
        let resp = SeriesResponse {
            result: Some(series_response::Result::Batch(thanos::SeriesBatch {
                series: part,
            })),
        };
        if tx.send(Ok(resp)).await.is_err() {
            return;
        }
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

    fn chunk(min: i64) -> AggrChunk {
        AggrChunk {
            min_time: min,
            max_time: min + 1,
            ..Default::default()
        }
    }

    #[test]
    fn sorting_merges_series_that_became_equal() {
        let a = Labels::from_pairs([("a", "1")]);
        let b = Labels::from_pairs([("a", "1"), ("b", "1")]);
        let out = sort_and_merge(vec![
            (a.clone(), vec![chunk(10)]),
            (b.clone(), vec![chunk(5)]),
            (a.clone(), vec![chunk(0)]),
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].labels, matchers::labels_to_wire(&a));
        let mins: Vec<i64> = out[0].chunks.iter().map(|c| c.min_time).collect();
        assert_eq!(mins, vec![0, 10]);
        assert_eq!(out[1].labels, matchers::labels_to_wire(&b));
    }

    #[tokio::test]
    async fn batches_hold_at_most_the_requested_number_of_series() {
        let series: Vec<thanos::Series> = (0..5)
            .map(|i| thanos::Series {
                labels: vec![thanos::Label {
                    name: "i".into(),
                    value: i.to_string(),
                }],
                chunks: vec![],
            })
            .collect();
        let (tx, mut rx) = mpsc::channel(16);
        send_series(series, 2, &tx).await;
        drop(tx);
        let mut sizes = Vec::new();
        while let Some(Ok(r)) = rx.recv().await {
            match r.result {
                Some(series_response::Result::Batch(b)) => sizes.push(b.series.len()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(sizes, vec![2, 2, 1]);
    }
}
