//! A StoreAPI (`thanos.Store` + `thanos.info.Info`) over a fixed set of
//! series held in memory, served by a real tonic server. Used by tests of
//! the querier and the HTTP API, and handy for demos.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use skein_promql::{Labels, Sample, Series};
use skein_proto::thanos::info::info_server::{Info, InfoServer};
use skein_proto::thanos::info::{InfoRequest, InfoResponse, StoreInfo};
use skein_proto::thanos::store_server::{Store, StoreServer};
use skein_proto::thanos::{
    AggrChunk, Chunk, LabelNamesRequest, LabelNamesResponse, LabelValuesRequest,
    LabelValuesResponse, SeriesRequest, SeriesResponse, ZLabelSet, chunk::Encoding,
    series_response,
};
use skein_tsdb::chunkenc::encode_xor;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};
use xxhash_rust::xxh64::xxh64;

use crate::matchers::{
    CompiledMatcher, all_match, compile_all, from_wire_matchers, labels_to_wire,
};

/// Samples per chunk, as Prometheus cuts them.
const SAMPLES_PER_CHUNK: usize = 120;

/// How the store behaves.
#[derive(Clone, Debug, Default)]
pub struct MemStoreOptions {
    pub component_type: String,
    /// External labels, added to every series and announced in Info.
    pub external_labels: Labels,
    /// Wait this long before answering Series/LabelNames/LabelValues.
    pub delay: Option<Duration>,
    /// In-band warning sent with every Series answer.
    pub warning: Option<String>,
    /// Answer every Series call with this error instead.
    pub fail_series: Option<String>,
    /// Wait this long before answering Info.
    pub info_delay: Option<Duration>,
    /// Stream series in reverse label order (a misbehaving store).
    pub unsorted: bool,
    /// Send each series twice, its chunks split over two frames.
    pub split_frames: bool,
    /// Misbehave on purpose (tests of the querier's defences).
    pub hostile: Option<Hostile>,
}

/// Ways a purpose-built hostile store breaks the StoreAPI contract. The
/// chunk faults hit the last series of an answer only, so the series before
/// it look fine (a querier must still drop the store's whole answer).
#[derive(Clone, Debug)]
pub enum Hostile {
    /// The first Series frame carries an extra label of this many bytes.
    HugeFrame(usize),
    /// The first series is sent again at the end of the answer.
    RepeatedSeries,
    /// XOR chunks whose bytes after the header are garbage.
    CorruptXor,
    /// Chunks with an encoding number that does not exist.
    UnknownEncoding,
    /// Chunks whose min_time is after their max_time.
    MinAfterMax,
    /// Chunks dated far after the requested range.
    ChunkOutOfRange,
    /// This many series (the first matching one, renamed) and this many
    /// label names and values.
    Endless(usize),
    /// The answer, then an empty frame every this often, forever.
    Trickle(Duration),
}

struct Inner {
    /// Series calls being answered right now.
    in_flight: std::sync::atomic::AtomicUsize,
    /// Sorted by labels (external labels included).
    series: Vec<(Labels, Vec<AggrChunk>)>,
    opts: MemStoreOptions,
    min_time: i64,
    max_time: i64,
}

/// The store; cheap to clone.
#[derive(Clone)]
pub struct MemStore {
    inner: Arc<Inner>,
}

fn chunks_of(samples: &[Sample]) -> Vec<AggrChunk> {
    samples
        .chunks(SAMPLES_PER_CHUNK)
        .filter_map(|part| {
            let first = part.first()?;
            let last = part.last()?;
            let data = encode_xor(&part.iter().map(|s| (s.t, s.v)).collect::<Vec<_>>());
            Some(AggrChunk {
                min_time: first.t,
                max_time: last.t,
                raw: Some(Chunk {
                    r#type: Encoding::Xor as i32,
                    hash: xxh64(&data, 0),
                    data,
                }),
                ..Default::default()
            })
        })
        .collect()
}

impl MemStore {
    pub fn new(series: Vec<Series>, opts: MemStoreOptions) -> Self {
        let mut all: Vec<(Labels, Vec<AggrChunk>)> = series
            .into_iter()
            .map(|s| {
                let mut ls = s.labels;
                for l in opts.external_labels.iter() {
                    ls.set(&l.name, l.value.clone());
                }
                (ls, chunks_of(&s.samples))
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let times = all.iter().flat_map(|(_, cs)| cs.iter());
        let min_time = times.clone().map(|c| c.min_time).min().unwrap_or(i64::MAX);
        let max_time = times.map(|c| c.max_time).max().unwrap_or(i64::MIN);
        MemStore {
            inner: Arc::new(Inner {
                in_flight: std::sync::atomic::AtomicUsize::new(0),
                series: all,
                opts,
                min_time,
                max_time,
            }),
        }
    }

    fn select(
        &self,
        matchers: &[skein_proto::thanos::LabelMatcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<(&Labels, &Vec<AggrChunk>)>, Status> {
        let ms: Vec<CompiledMatcher> = from_wire_matchers(matchers)
            .map_err(|e| Status::invalid_argument(e.to_string()))
            .and_then(|m| compile_all(&m).map_err(|e| Status::invalid_argument(e.to_string())))?;
        Ok(self
            .inner
            .series
            .iter()
            .filter(|(ls, _)| all_match(&ms, ls))
            .filter(|(_, cs)| {
                cs.iter()
                    .any(|c| c.max_time >= min_t && c.min_time <= max_t)
            })
            .map(|(ls, cs)| (ls, cs))
            .collect())
    }

    /// Applies a chunk fault of [`Hostile`] to the chunks of one series.
    fn spoil(&self, chunks: &mut [AggrChunk]) {
        for c in chunks.iter_mut() {
            match &self.inner.opts.hostile {
                Some(Hostile::CorruptXor) => {
                    if let Some(raw) = c.raw.as_mut() {
                        // Keep the sample count, garble the samples.
                        raw.data.truncate(2);
                        raw.data.extend_from_slice(&[0xff; 3]);
                        raw.hash = 0;
                    }
                }
                Some(Hostile::UnknownEncoding) => {
                    if let Some(raw) = c.raw.as_mut() {
                        raw.r#type = 77;
                    }
                }
                Some(Hostile::MinAfterMax) => {
                    std::mem::swap(&mut c.min_time, &mut c.max_time);
                    c.min_time += 1;
                }
                Some(Hostile::ChunkOutOfRange) => {
                    c.min_time += 1_000_000_000_000;
                    c.max_time += 1_000_000_000_000;
                }
                _ => {}
            }
        }
    }

    /// Series calls in progress (a call dropped by its client leaves).
    pub fn series_in_flight(&self) -> usize {
        self.inner
            .in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn pause(&self) {
        if let Some(d) = self.inner.opts.delay {
            tokio::time::sleep(d).await;
        }
    }

    /// Serves the store on `127.0.0.1` on a free port until dropped.
    pub async fn serve(self) -> std::io::Result<RunningStore> {
        self.serve_at("127.0.0.1:0".parse().map_err(std::io::Error::other)?)
            .await
    }

    /// Serves the store on `addr` until dropped.
    pub async fn serve_at(self, addr: SocketAddr) -> std::io::Result<RunningStore> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(StoreServer::new(self.clone()))
            .add_service(InfoServer::new(self))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = rx.await;
            });
        let task = tokio::spawn(server);
        Ok(RunningStore {
            addr,
            shutdown: Some(tx),
            task,
        })
    }
}

/// A served store; stops when dropped.
pub struct RunningStore {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningStore {
    /// `host:port` to put in the querier's store list.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for RunningStore {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}

/// Counts a call while it runs, also when its future is dropped.
struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(n: &'a std::sync::atomic::AtomicUsize) -> Self {
        n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

type SeriesStream = std::pin::Pin<Box<dyn Stream<Item = Result<SeriesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Store for MemStore {
    type SeriesStream = SeriesStream;

    async fn series(
        &self,
        request: Request<SeriesRequest>,
    ) -> Result<Response<Self::SeriesStream>, Status> {
        let _guard = InFlight::enter(&self.inner.in_flight);
        self.pause().await;
        if let Some(e) = &self.inner.opts.fail_series {
            return Err(Status::unavailable(e.clone()));
        }
        let req = request.into_inner();
        let mut out: Vec<Result<SeriesResponse, Status>> = Vec::new();
        if let Some(w) = &self.inner.opts.warning {
            out.push(Ok(SeriesResponse {
                result: Some(series_response::Result::Warning(w.clone())),
            }));
        }
        let mut selected = self.select(&req.matchers, req.min_time, req.max_time)?;
        if self.inner.opts.unsorted {
            selected.reverse();
        }
        let fault_at = selected.len().saturating_sub(1);
        let first = selected
            .first()
            .map(|(ls, cs)| ((*ls).clone(), (*cs).clone()));
        if let Some(Hostile::Endless(n)) = &self.inner.opts.hostile
            && let Some((ls, cs)) = first.clone()
        {
            let n = *n;
            let (lo, hi) = (req.min_time, req.max_time);
            let chunks: Vec<AggrChunk> = if req.skip_chunks {
                Vec::new()
            } else {
                cs.into_iter()
                    .filter(|c| c.max_time >= lo && c.min_time <= hi)
                    .collect()
            };
            let stream = futures::stream::iter(0..n).map(move |i| {
                let mut ls = ls.clone();
                ls.set("endless", format!("{i:012}"));
                Ok(SeriesResponse {
                    result: Some(series_response::Result::Series(
                        skein_proto::thanos::Series {
                            labels: labels_to_wire(&ls),
                            chunks: chunks.clone(),
                        },
                    )),
                })
            });
            return Ok(Response::new(Box::pin(stream)));
        }
        for (i, (ls, cs)) in selected.into_iter().enumerate() {
            let chunks: Vec<AggrChunk> = if req.skip_chunks {
                Vec::new()
            } else {
                cs.iter()
                    .filter(|c| c.max_time >= req.min_time && c.min_time <= req.max_time)
                    .cloned()
                    .collect()
            };
            let mut chunks = chunks;
            let mut ls = ls.clone();
            if i == fault_at {
                self.spoil(&mut chunks);
            }
            if i == 0
                && let Some(Hostile::HugeFrame(n)) = &self.inner.opts.hostile
            {
                ls.set("zz_padding", "x".repeat(*n));
            }
            let ls = &ls;
            let parts = if self.inner.opts.split_frames && chunks.len() > 1 {
                let (a, b) = chunks.split_at(chunks.len() / 2);
                vec![a.to_vec(), b.to_vec()]
            } else {
                vec![chunks]
            };
            for part in parts {
                out.push(Ok(SeriesResponse {
                    result: Some(series_response::Result::Series(
                        skein_proto::thanos::Series {
                            labels: labels_to_wire(ls),
                            chunks: part,
                        },
                    )),
                }));
            }
        }
        if let (Some(Hostile::RepeatedSeries), Some((ls, cs))) = (&self.inner.opts.hostile, first) {
            out.push(Ok(SeriesResponse {
                result: Some(series_response::Result::Series(
                    skein_proto::thanos::Series {
                        labels: labels_to_wire(&ls),
                        chunks: if req.skip_chunks {
                            Vec::new()
                        } else {
                            cs.into_iter()
                                .filter(|c| {
                                    c.max_time >= req.min_time && c.min_time <= req.max_time
                                })
                                .collect()
                        },
                    },
                )),
            }));
        }
        if let Some(Hostile::Trickle(every)) = &self.inner.opts.hostile {
            let every = *every;
            let forever = futures::stream::unfold((), move |()| async move {
                tokio::time::sleep(every).await;
                Some((Ok(SeriesResponse { result: None }), ()))
            });
            return Ok(Response::new(Box::pin(
                futures::stream::iter(out).chain(forever),
            )));
        }
        Ok(Response::new(Box::pin(futures::stream::iter(out))))
    }

    async fn label_names(
        &self,
        request: Request<LabelNamesRequest>,
    ) -> Result<Response<LabelNamesResponse>, Status> {
        self.pause().await;
        let req = request.into_inner();
        let mut names: Vec<String> = self
            .select(&req.matchers, req.start, req.end)?
            .iter()
            .flat_map(|(ls, _)| ls.iter().map(|l| l.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        if let Some(Hostile::Endless(n)) = &self.inner.opts.hostile {
            names = (0..*n).map(|i| format!("endless_{i:012}")).collect();
        }
        Ok(Response::new(LabelNamesResponse {
            names,
            ..Default::default()
        }))
    }

    async fn label_values(
        &self,
        request: Request<LabelValuesRequest>,
    ) -> Result<Response<LabelValuesResponse>, Status> {
        self.pause().await;
        let req = request.into_inner();
        let mut values: Vec<String> = self
            .select(&req.matchers, req.start, req.end)?
            .iter()
            .filter_map(|(ls, _)| ls.get(&req.label).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        if let Some(Hostile::Endless(n)) = &self.inner.opts.hostile {
            values = (0..*n).map(|i| format!("endless_{i:012}")).collect();
        }
        Ok(Response::new(LabelValuesResponse {
            values,
            ..Default::default()
        }))
    }
}

#[tonic::async_trait]
impl Info for MemStore {
    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        if let Some(d) = self.inner.opts.info_delay {
            tokio::time::sleep(d).await;
        }
        let ext = &self.inner.opts.external_labels;
        Ok(Response::new(InfoResponse {
            label_sets: if ext.is_empty() {
                Vec::new()
            } else {
                vec![ZLabelSet {
                    labels: labels_to_wire(ext),
                }]
            },
            component_type: if self.inner.opts.component_type.is_empty() {
                "store".to_string()
            } else {
                self.inner.opts.component_type.clone()
            },
            store: Some(StoreInfo {
                min_time: self.inner.min_time,
                max_time: self.inner.max_time,
                ..Default::default()
            }),
            ..Default::default()
        }))
    }
}
