//! The store set: a static list of StoreAPI addresses, each asked for its
//! Info every interval. Readers get a cheap snapshot.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use futures::future::join_all;
use skein_promql::Labels;
use tonic::transport::Channel;

use super::client::{self, StoreInfo};

/// What the querier knows about one store.
#[derive(Clone, Debug)]
pub struct StoreStatus {
    /// The address it was configured with.
    pub name: String,
    /// `None` when the address could not be turned into a channel.
    pub channel: Option<Channel>,
    /// `sidecar`, `store`, ... as the store reports it; empty until known.
    pub component_type: String,
    /// External label sets (sorted, unique).
    pub label_sets: Vec<Labels>,
    pub min_time: i64,
    pub max_time: i64,
    pub last_check: Option<SystemTime>,
    pub last_error: Option<String>,
    /// The last Info call succeeded.
    pub healthy: bool,
}

impl StoreStatus {
    pub fn new(name: &str) -> Self {
        let (channel, last_error) = match client::channel(name) {
            Ok(ch) => (Some(ch), None),
            Err(e) => (None, Some(e.to_string())),
        };
        StoreStatus {
            name: name.to_string(),
            channel,
            component_type: String::new(),
            label_sets: Vec::new(),
            min_time: i64::MIN,
            max_time: i64::MAX,
            last_check: None,
            last_error,
            healthy: false,
        }
    }

    pub(crate) fn apply(&mut self, res: Result<StoreInfo, String>, at: SystemTime) {
        self.last_check = Some(at);
        match res {
            Ok(info) => {
                self.component_type = info.component_type;
                self.label_sets = info.label_sets;
                self.min_time = info.min_time;
                self.max_time = info.max_time;
                self.last_error = None;
                self.healthy = true;
            }
            Err(e) => {
                if self.healthy {
                    tracing::warn!(store = %self.name, error = %e, "store became unhealthy");
                }
                self.last_error = Some(e);
                self.healthy = false;
            }
        }
    }
}

/// Owns the store set. Started by [`super::QueryHandle::start`].
pub struct StoreSetActor {
    stores: Vec<StoreStatus>,
    snapshot: Arc<Vec<StoreStatus>>,
    info_interval: Duration,
    info_timeout: Duration,
    round_in_flight: bool,
}

impl StoreSetActor {
    /// Must be created inside a running actix System (channels need tokio).
    pub fn new(addrs: &[String], info_interval: Duration, info_timeout: Duration) -> Self {
        let stores: Vec<StoreStatus> = addrs.iter().map(|a| StoreStatus::new(a)).collect();
        StoreSetActor {
            snapshot: Arc::new(stores.clone()),
            stores,
            info_interval,
            info_timeout,
            round_in_flight: false,
        }
    }

    /// One Info call per store, concurrently; results come back to the actor.
    fn check_round(&mut self) -> impl ActorFuture<Self, Output = ()> + use<> {
        let timeout = self.info_timeout;
        let calls: Vec<_> = self
            .stores
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.channel.clone().map(|ch| (i, ch)))
            .map(|(i, ch)| async move {
                let res = client::info(ch, timeout).await.map_err(|e| e.to_string());
                (i, res)
            })
            .collect();
        async move { join_all(calls).await }
            .into_actor(self)
            .map(|results, act, _ctx| {
                let now = SystemTime::now();
                for (i, res) in results {
                    if let Some(s) = act.stores.get_mut(i) {
                        s.apply(res, now);
                    }
                }
                act.snapshot = Arc::new(act.stores.clone());
            })
    }
}

impl Actor for StoreSetActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let round = self.check_round();
        ctx.spawn(round);
        let every = self.info_interval.max(Duration::from_millis(10));
        ctx.run_interval(every, |act, ctx| {
            if act.round_in_flight {
                return;
            }
            act.round_in_flight = true;
            let round = act
                .check_round()
                .map(|(), act, _| act.round_in_flight = false);
            ctx.spawn(round);
        });
    }
}

/// Asks for the current store set.
#[derive(Message)]
#[rtype(result = "Arc<Vec<StoreStatus>>")]
pub struct GetStores;

impl Handler<GetStores> for StoreSetActor {
    type Result = MessageResult<GetStores>;

    fn handle(&mut self, _: GetStores, _: &mut Context<Self>) -> Self::Result {
        MessageResult(Arc::clone(&self.snapshot))
    }
}

/// Checks every store now and answers once the results are applied.
#[derive(Message)]
#[rtype(result = "Arc<Vec<StoreStatus>>")]
pub struct CheckNow;

impl Handler<CheckNow> for StoreSetActor {
    type Result = ResponseActFuture<Self, Arc<Vec<StoreStatus>>>;

    fn handle(&mut self, _: CheckNow, _: &mut Context<Self>) -> Self::Result {
        Box::pin(
            self.check_round()
                .map(|(), act, _| Arc::clone(&act.snapshot)),
        )
    }
}
