//! The query actor: the store set, fan-out over StoreAPIs, merge and HA
//! dedup, the [`skein_promql::SeriesSource`] the engine reads from, and the
//! label APIs. [`QueryHandle`] is what the HTTP API holds.

pub mod admission;
pub mod client;
pub mod config;
pub mod dedup;
pub mod fanout;
pub mod labels_api;
pub mod memstore;
pub mod merge;
pub mod metrics;
pub mod selector;
pub mod source;
pub mod store_set;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use prometheus_client::registry::Registry;
use skein_promql::{Engine, EngineOptions, QueryError, QueryOptions, QueryOutput, SourceError};

pub use admission::{Admission, Admitted};
pub use client::StoreLimits;
pub use config::{QueryConfig, QueryLimits};
pub use fanout::FanoutError;
pub use labels_api::{Answer, LabelsQuery};
pub use metrics::QueryMetrics;
pub use selector::{parse_match_params, parse_match_params_blocking, parse_selector};
pub use source::{SourceOptions, StoreApiSource};
pub use store_set::{
    Candidate, CheckNow, GetStores, Promise, SetDiscovered, StoreRejection, StoreSetActor,
    StoreStatus,
};

/// Per-request options of a PromQL query (the Thanos/Prometheus params).
#[derive(Clone, Debug, Default)]
pub struct RequestOptions {
    /// Merge HA replicas (Thanos `dedup`, default true at the API).
    pub dedup: bool,
    /// `None`: the configured default.
    pub partial_response: Option<bool>,
    /// `None`: the configured replica labels.
    pub replica_labels: Option<Vec<String>>,
    pub lookback_delta: Option<Duration>,
    /// Shorter deadline than the configured one.
    pub timeout: Option<Duration>,
}

/// Cheap to clone; everything the HTTP API needs.
#[derive(Clone)]
pub struct QueryHandle {
    store_set: Addr<StoreSetActor>,
    engine: Arc<Engine>,
    config: Arc<QueryConfig>,
    metrics: QueryMetrics,
    admission: Admission,
    /// While store discovery (gossip) has not settled: until when.
    settling_until: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl QueryHandle {
    /// Starts the store set actor and builds the engine. Must run inside a
    /// running actix System.
    pub fn start(cfg: QueryConfig, registry: &mut Registry) -> QueryHandle {
        Self::start_with_tls(cfg, None, registry)
    }

    /// Like [`QueryHandle::start`], dialing stores over mutual TLS.
    pub fn start_with_tls(
        cfg: QueryConfig,
        tls: Option<Arc<skein_tls::TlsReloader>>,
        registry: &mut Registry,
    ) -> QueryHandle {
        let metrics = QueryMetrics::register(registry);
        let actor = StoreSetActor::with_tls(&cfg.stores, cfg.info_interval, cfg.info_timeout, tls)
            .counting_rejections(metrics.store_rejected());
        let store_set = actor.start();
        let engine = Engine::new(EngineOptions {
            lookback_delta: cfg.lookback_delta,
            max_samples: cfg.max_samples,
            timeout: cfg.timeout,
            parse: cfg.limits.parse.clone(),
        });
        let admission = Admission::new(
            cfg.limits.max_concurrent,
            cfg.limits.max_queued,
            metrics.clone(),
        );
        QueryHandle {
            store_set,
            engine: Arc::new(engine),
            config: Arc::new(cfg),
            metrics,
            admission,
            settling_until: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// Store discovery (gossip) is still finding stores until `until`:
    /// meanwhile answers carry a warning and [`QueryHandle::ready`] is false,
    /// so a fresh querier never answers silently without stores it has not
    /// heard of yet.
    pub fn discovery_settles_at(&self, until: std::time::Instant) {
        *self
            .settling_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(until);
    }

    /// How long store discovery still settles, if it does.
    pub fn discovery_settling(&self) -> Option<Duration> {
        let mut g = self
            .settling_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match *g {
            Some(t) => match t.checked_duration_since(std::time::Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => {
                    *g = None;
                    None
                }
            },
            None => None,
        }
    }

    /// Ready: discovery has settled and every known store was checked once.
    pub async fn ready(&self) -> Result<(), String> {
        if let Some(left) = self.discovery_settling() {
            return Err(format!("store discovery settles in {left:?}"));
        }
        let stores = self.stores().await.map_err(|e| e.to_string())?;
        match stores.iter().find(|s| s.last_check.is_none()) {
            Some(s) => Err(format!("store {} not checked yet", s.name)),
            None => Ok(()),
        }
    }

    fn settling_warning(&self, out: &mut QueryOutput) {
        if let Some(left) = self.discovery_settling() {
            out.warnings.push(format!(
                "store discovery has not settled yet ({}s left): stores not yet discovered are missing from this answer",
                left.as_secs_f64().ceil()
            ));
        }
    }

    pub fn config(&self) -> &QueryConfig {
        &self.config
    }

    pub fn metrics(&self) -> &QueryMetrics {
        &self.metrics
    }

    /// The current store set.
    pub async fn stores(&self) -> Result<Arc<Vec<StoreStatus>>, FanoutError> {
        self.store_set
            .send(GetStores)
            .await
            .map_err(|e| FanoutError::Unavailable(format!("store set unavailable: {e}")))
    }

    /// Replaces the stores found through gossip (configured ones stay).
    pub fn set_discovered(&self, cands: Vec<Candidate>) {
        let cands = self.admit("gossip", cands);
        self.store_set.do_send(SetDiscovered(cands));
    }

    /// Keeps the candidates whose address is `host:port` and nothing else;
    /// the others are logged, counted by `source` and never dialled.
    fn admit(&self, source: &str, cands: Vec<Candidate>) -> Vec<Candidate> {
        cands
            .into_iter()
            .filter(|c| match client::check_store_address(&c.address) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(%source, node = %c.node_id, error = %e,
                        "store address refused; not dialled");
                    self.metrics.store_address_rejected(source);
                    false
                }
            })
            .collect()
    }

    /// Replaces the stores one discovery source found (e.g. `"file"`);
    /// the set holds the union of all sources plus the configured stores.
    pub fn set_source(&self, source: &'static str, cands: Vec<Candidate>) {
        let cands = self.admit(source, cands);
        self.store_set.do_send(store_set::SetSource(source, cands));
    }

    /// Checks every store now and returns the updated set.
    pub async fn check_stores_now(&self) -> Result<Arc<Vec<StoreStatus>>, FanoutError> {
        self.store_set
            .send(CheckNow)
            .await
            .map_err(|e| FanoutError::Unavailable(format!("store set unavailable: {e}")))
    }

    fn budget(&self) -> fanout::StoreBudget {
        (self.config.store_timeout, self.config.store_limits).into()
    }

    fn partial(&self, p: Option<bool>) -> bool {
        p.unwrap_or(self.config.partial_response)
    }

    fn replica_labels(&self, r: &Option<Vec<String>>) -> Vec<String> {
        r.clone()
            .unwrap_or_else(|| self.config.replica_labels.clone())
    }

    async fn source(&self, opts: &RequestOptions) -> Result<StoreApiSource, QueryError> {
        let stores = self
            .stores()
            .await
            .map_err(|e| QueryError::Source(SourceError::Unavailable(e.to_string())))?;
        Ok(StoreApiSource::new(
            stores,
            SourceOptions {
                dedup: opts.dedup,
                replica_labels: self.replica_labels(&opts.replica_labels),
                partial_response: self.partial(opts.partial_response),
                store_timeout: self.config.store_timeout,
                store_limits: self.config.store_limits,
            },
            self.metrics.clone(),
        ))
    }

    /// Waits for an evaluation slot (bounded queue, then 503). The
    /// request's deadline starts now, so time in the queue counts: the
    /// configured timeout, or the request's `timeout` when shorter.
    pub async fn admit_request(&self, timeout: Option<Duration>) -> Result<Admitted, QueryError> {
        let t = timeout.map_or(self.config.timeout, |t| t.min(self.config.timeout));
        self.admission.admit(std::time::Instant::now() + t).await
    }

    /// Counts a refusal by a limit (the rejection metrics) and passes the
    /// result on.
    fn counted<T>(&self, res: Result<T, QueryError>) -> Result<T, QueryError> {
        if let Err(e) = &res
            && let Some(reason) = e.rejection_reason()
        {
            self.metrics.rejected(reason);
        }
        res
    }

    /// Runs `fut` in an admitted slot, within the request's deadline.
    async fn admitted(
        &self,
        timeout: Option<Duration>,
        fut: impl Future<Output = Result<QueryOutput, QueryError>>,
    ) -> Result<QueryOutput, QueryError> {
        let slot = self.admit_request(timeout).await?;
        let res = tokio::time::timeout_at(slot.deadline().into(), fut)
            .await
            .unwrap_or(Err(QueryError::Timeout));
        self.counted(res)
    }

    /// Runs a PromQL instant query at `time_ms`.
    pub async fn query_instant(
        &self,
        query: &str,
        time_ms: i64,
        opts: &RequestOptions,
    ) -> Result<QueryOutput, QueryError> {
        self.counted(
            skein_promql::parse::check_length(query, &self.config.limits.parse)
                .map_err(QueryError::from),
        )?;
        let mut out = self
            .admitted(opts.timeout, async {
                let source = self.source(opts).await?;
                let qo = QueryOptions {
                    lookback_delta: opts.lookback_delta,
                };
                self.engine
                    .query_instant(&source, query, time_ms, &qo)
                    .await
            })
            .await?;
        self.settling_warning(&mut out);
        Ok(out)
    }

    /// Runs a PromQL range query.
    pub async fn query_range(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        opts: &RequestOptions,
    ) -> Result<QueryOutput, QueryError> {
        self.counted(
            skein_promql::parse::check_length(query, &self.config.limits.parse)
                .map_err(QueryError::from),
        )?;
        let mut out = self
            .admitted(opts.timeout, async {
                let source = self.source(opts).await?;
                let qo = QueryOptions {
                    lookback_delta: opts.lookback_delta,
                };
                self.engine
                    .query_range(&source, query, start_ms, end_ms, step_ms, &qo)
                    .await
            })
            .await?;
        self.settling_warning(&mut out);
        Ok(out)
    }

    /// Refuses more `match[]` values than the limit (before queueing).
    pub fn check_match_count(&self, n: usize) -> Result<(), QueryError> {
        let max = self.config.limits.max_match;
        if n > max {
            return self.counted(Err(QueryError::Rejected {
                reason: "too_many_matchers",
                error_type: "bad_data",
                message: format!(
                    "too many match[] parameters: {n}, the limit is {max} (--query.max-match)"
                ),
            }));
        }
        Ok(())
    }

    /// Parses `match[]` values through the parse guard and compiles their
    /// regexes, on a blocking thread (never on the HTTP worker).
    pub async fn parse_matchers(
        &self,
        values: Vec<String>,
    ) -> Result<Vec<Vec<skein_promql::LabelMatcher>>, QueryError> {
        self.check_match_count(values.len())?;
        let res =
            selector::parse_match_params_blocking(values, self.config.limits.parse.clone()).await;
        self.counted(res)
    }

    /// Fills the defaults of a labels-side request: partial response from
    /// the config when `None`, replica labels stripped only with dedup.
    pub fn labels_query(
        &self,
        start: i64,
        end: i64,
        matcher_sets: Vec<Vec<skein_promql::LabelMatcher>>,
        opts: &RequestOptions,
        limit: usize,
    ) -> LabelsQuery {
        LabelsQuery {
            start,
            end,
            matcher_sets,
            partial_response: self.partial(opts.partial_response),
            replica_labels: if opts.dedup {
                self.replica_labels(&opts.replica_labels)
            } else {
                Vec::new()
            },
            limit,
        }
    }

    pub async fn label_names(&self, q: &LabelsQuery) -> Result<Answer<Vec<String>>, FanoutError> {
        let stores = self.stores().await?;
        labels_api::label_names(&stores, q, self.budget(), &self.metrics).await
    }

    pub async fn label_values(
        &self,
        name: &str,
        q: &LabelsQuery,
    ) -> Result<Answer<Vec<String>>, FanoutError> {
        let stores = self.stores().await?;
        labels_api::label_values(&stores, name, q, self.budget(), &self.metrics).await
    }

    pub async fn series(
        &self,
        q: &LabelsQuery,
    ) -> Result<Answer<Vec<skein_promql::Labels>>, FanoutError> {
        let stores = self.stores().await?;
        labels_api::series(&stores, q, self.budget(), &self.metrics).await
    }
}
