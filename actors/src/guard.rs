//! [`GuardedStore`]: the limits every served StoreAPI (sidecar, store,
//! querier) applies before its own code runs: matchers per request and
//! their size (INVALID_ARGUMENT), and Series calls served at once across
//! every connection of the node, with a bounded wait for a slot, then
//! RESOURCE_EXHAUSTED (Thanos: `--store.grpc.series-max-concurrency`).
//! Each rejection is counted in `skein_grpc_requests_rejected_total`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use skein_proto::thanos::{
    self, LabelNamesRequest, LabelNamesResponse, LabelValuesRequest, LabelValuesResponse,
    SeriesRequest, SeriesResponse, info, store_server,
};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

/// Limits of the served StoreAPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreApiLimits {
    /// Series calls served at once across all connections.
    pub series_max_concurrency: usize,
    /// How long a Series call waits for a slot.
    pub series_queue_timeout: Duration,
    /// Matchers per request.
    pub max_matchers: usize,
    /// Bytes of one matcher (name plus value).
    pub max_matcher_bytes: usize,
}

impl Default for StoreApiLimits {
    fn default() -> Self {
        StoreApiLimits {
            series_max_concurrency: 20,
            series_queue_timeout: Duration::from_secs(5),
            max_matchers: 128,
            max_matcher_bytes: 64 << 10,
        }
    }
}

type LabelPairs = Vec<(&'static str, String)>;

#[derive(Clone, Debug, Default)]
struct GuardMetrics {
    rejected: Family<LabelPairs, Counter>,
    series_in_flight: Gauge,
}

/// A StoreAPI with [`StoreApiLimits`] in front. Cheap to clone; clones
/// share the Series slots.
#[derive(Clone)]
pub struct GuardedStore<S> {
    inner: S,
    limits: StoreApiLimits,
    series_slots: Arc<Semaphore>,
    metrics: GuardMetrics,
}

impl<S> GuardedStore<S> {
    /// Registers `skein_grpc_requests_rejected_total{api,reason}` and
    /// `skein_grpc_series_in_flight`.
    pub fn new(inner: S, limits: StoreApiLimits, registry: &mut Registry) -> Self {
        let metrics = GuardMetrics::default();
        registry.register(
            "skein_grpc_requests_rejected",
            "StoreAPI requests refused by the node's limits, by API and reason",
            metrics.rejected.clone(),
        );
        registry.register(
            "skein_grpc_series_in_flight",
            "Series calls being served",
            metrics.series_in_flight.clone(),
        );
        GuardedStore {
            inner,
            limits,
            series_slots: Arc::new(Semaphore::new(limits.series_max_concurrency.max(1))),
            metrics,
        }
    }

    fn reject(&self, api: &str, reason: &str, status: Status) -> Status {
        self.metrics
            .rejected
            .get_or_create(&vec![
                ("api", api.to_string()),
                ("reason", reason.to_string()),
            ])
            .inc();
        tracing::debug!(api, reason, error = %status.message(), "StoreAPI request refused");
        status
    }

    fn check_matchers(&self, api: &str, ms: &[thanos::LabelMatcher]) -> Result<(), Status> {
        let l = &self.limits;
        if ms.len() > l.max_matchers {
            return Err(self.reject(
                api,
                "too_many_matchers",
                Status::invalid_argument(format!(
                    "{} matchers, more than the {} allowed (grpc.max_matchers)",
                    ms.len(),
                    l.max_matchers
                )),
            ));
        }
        if let Some(m) = ms
            .iter()
            .find(|m| m.name.len().saturating_add(m.value.len()) > l.max_matcher_bytes)
        {
            let name: String = m.name.chars().take(64).collect();
            return Err(self.reject(
                api,
                "matcher_too_large",
                Status::invalid_argument(format!(
                    "matcher on {name:?} is {} bytes, more than the {} allowed (grpc.max_matcher_size)",
                    m.name.len() + m.value.len(),
                    l.max_matcher_bytes
                )),
            ));
        }
        Ok(())
    }
}

type GuardedStream = Pin<Box<dyn Stream<Item = Result<SeriesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl<S: store_server::Store> store_server::Store for GuardedStore<S> {
    type SeriesStream = GuardedStream;

    async fn series(
        &self,
        request: Request<SeriesRequest>,
    ) -> Result<Response<Self::SeriesStream>, Status> {
        self.check_matchers("series", &request.get_ref().matchers)?;
        let wait = self.limits.series_queue_timeout;
        let permit =
            match tokio::time::timeout(wait, self.series_slots.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => {
                    return Err(self.reject(
                        "series",
                        "series_concurrency",
                        Status::resource_exhausted(format!(
                            "{} Series calls in flight (grpc.series_max_concurrency) and no slot \
                             freed within {wait:?}",
                            self.limits.series_max_concurrency
                        )),
                    ));
                }
            };
        let gauge = self.metrics.series_in_flight.clone();
        gauge.inc();
        // The slot is held until the answer stream is dropped.
        let held = SlotHeld {
            _permit: permit,
            gauge,
        };
        let (meta, stream, ext) = self.inner.series(request).await?.into_parts();
        let stream: GuardedStream = Box::pin(stream.map(move |item| {
            let _ = &held;
            item
        }));
        Ok(Response::from_parts(meta, stream, ext))
    }

    async fn label_names(
        &self,
        request: Request<LabelNamesRequest>,
    ) -> Result<Response<LabelNamesResponse>, Status> {
        self.check_matchers("label_names", &request.get_ref().matchers)?;
        self.inner.label_names(request).await
    }

    async fn label_values(
        &self,
        request: Request<LabelValuesRequest>,
    ) -> Result<Response<LabelValuesResponse>, Status> {
        self.check_matchers("label_values", &request.get_ref().matchers)?;
        self.inner.label_values(request).await
    }
}

#[tonic::async_trait]
impl<S: info::info_server::Info> info::info_server::Info for GuardedStore<S> {
    async fn info(
        &self,
        request: Request<info::InfoRequest>,
    ) -> Result<Response<info::InfoResponse>, Status> {
        self.inner.info(request).await
    }
}

struct SlotHeld {
    _permit: tokio::sync::OwnedSemaphorePermit,
    gauge: Gauge,
}

impl Drop for SlotHeld {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::memstore::{MemStore, MemStoreOptions};
    use skein_promql::{Labels, Sample, Series};
    use skein_proto::thanos::info::info_server::InfoServer;
    use skein_proto::thanos::store_client::StoreClient;
    use skein_proto::thanos::store_server::StoreServer;
    use tokio_stream::wrappers::TcpListenerStream;

    async fn serve(limits: StoreApiLimits, delay: Option<Duration>) -> (String, Registry) {
        let mut registry = Registry::default();
        let store = MemStore::new(
            vec![Series::new(
                Labels::from_pairs([("__name__", "up")]),
                vec![Sample { t: 0, v: 1.0 }],
            )],
            MemStoreOptions {
                delay,
                ..Default::default()
            },
        );
        let guarded = GuardedStore::new(store, limits, &mut registry);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(StoreServer::new(guarded.clone()))
                .add_service(InfoServer::new(guarded))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        (format!("http://{addr}"), registry)
    }

    fn metrics_text(r: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, r).unwrap();
        text
    }

    fn eq(name: &str, value: &str) -> thanos::LabelMatcher {
        thanos::LabelMatcher {
            r#type: thanos::label_matcher::Type::Eq as i32,
            name: name.into(),
            value: value.into(),
        }
    }

    async fn series(url: &str, matchers: Vec<thanos::LabelMatcher>) -> Result<usize, Status> {
        let mut c = StoreClient::connect(url.to_string()).await.unwrap();
        let mut s = c
            .series(SeriesRequest {
                min_time: 0,
                max_time: 10,
                matchers,
                ..Default::default()
            })
            .await?
            .into_inner();
        let mut n = 0;
        while s.message().await?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    #[tokio::test]
    async fn too_many_or_too_large_matchers_are_invalid_argument_and_counted() {
        let limits = StoreApiLimits {
            max_matchers: 3,
            max_matcher_bytes: 100,
            ..Default::default()
        };
        let (url, registry) = serve(limits, None).await;
        assert_eq!(series(&url, vec![eq("__name__", "up")]).await.unwrap(), 1);
        let many: Vec<_> = (0..4).map(|i| eq(&format!("l{i}"), "v")).collect();
        let e = series(&url, many).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        assert!(e.message().contains("grpc.max_matchers"), "{e}");
        let e = series(&url, vec![eq("__name__", &"x".repeat(200))])
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        let mut c = StoreClient::connect(url.clone()).await.unwrap();
        let e = c
            .label_values(LabelValuesRequest {
                label: "job".into(),
                matchers: (0..10).map(|i| eq(&format!("l{i}"), "v")).collect(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        let text = metrics_text(&registry);
        assert!(
            text.contains(
                r#"skein_grpc_requests_rejected_total{api="series",reason="too_many_matchers"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"skein_grpc_requests_rejected_total{api="series",reason="matcher_too_large"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"skein_grpc_requests_rejected_total{api="label_values",reason="too_many_matchers"} 1"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn series_calls_over_the_concurrency_limit_get_resource_exhausted() {
        let limits = StoreApiLimits {
            series_max_concurrency: 2,
            series_queue_timeout: Duration::from_millis(300),
            ..Default::default()
        };
        // Each call holds its slot for 3 s.
        let (url, registry) = serve(limits, Some(Duration::from_secs(3))).await;
        let calls = (0..5).map(|_| {
            let url = url.clone();
            tokio::spawn(async move { series(&url, vec![eq("__name__", "up")]).await })
        });
        let calls: Vec<_> = calls.collect();
        let mut ok = 0;
        let mut exhausted = 0;
        for c in calls {
            match c.await.unwrap() {
                Ok(1) => ok += 1,
                Err(e) if e.code() == tonic::Code::ResourceExhausted => exhausted += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((ok, exhausted), (2, 3));
        let text = metrics_text(&registry);
        assert!(
            text.contains(
                r#"skein_grpc_requests_rejected_total{api="series",reason="series_concurrency"} 3"#
            ),
            "{text}"
        );
        // Slots are given back: a later call is served.
        assert_eq!(series(&url, vec![eq("__name__", "up")]).await.unwrap(), 1);
        assert!(text.contains("skein_grpc_series_in_flight"), "{text}");
    }
}
