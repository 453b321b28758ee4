//! The store set: a static list of StoreAPI addresses, each asked for its
//! Info every interval. Readers get a cheap snapshot.
//!
//! A store found through gossip comes with a [`Promise`]: the cluster it was
//! announced for and the label sets it announced. Over TLS its certificate
//! must name an identity of that cluster (checked in the handshake), and its
//! Info label sets must be the promised ones; otherwise it is not used, its
//! `last_error` says why, the refusal is counted, and it is checked again
//! at every round. A store whose label sets change while its announcement
//! has not caught up yet keeps its last verified label sets for a grace of
//! [`LABEL_GRACE_ROUNDS`] Info rounds, so a reconfigured Prometheus
//! converges instead of flapping. Static and file-listed stores are trusted
//! as configured.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use futures::future::join_all;
use skein_promql::Labels;
use tonic::transport::Channel;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use skein_tls::identity::{ExpectedIdentity, IdentityVerifier};

use super::client::{self, StoreInfo};

/// Info rounds a changed label set may disagree with a healthy store's
/// promise before the store is refused (its announcement catching up).
pub const LABEL_GRACE_ROUNDS: u32 = 6;

/// What gossip said a store is: the cluster its certificate must name
/// (federation and cluster) and the label sets its Info must report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promise {
    pub federation: String,
    pub cluster: String,
    /// Sorted, unique, empty sets dropped (see [`normalize_label_sets`]).
    pub label_sets: Vec<Labels>,
}

impl Promise {
    pub fn new(federation: &str, cluster: &str, label_sets: Vec<Labels>) -> Promise {
        Promise {
            federation: federation.to_string(),
            cluster: cluster.to_string(),
            label_sets: normalize_label_sets(label_sets),
        }
    }
}

/// Label sets as compared: sorted, unique, without empty sets.
pub fn normalize_label_sets(mut sets: Vec<Labels>) -> Vec<Labels> {
    sets.retain(|l| !l.is_empty());
    sets.sort();
    sets.dedup();
    sets
}

fn show_sets(sets: &[Labels]) -> String {
    let shown: Vec<String> = sets.iter().map(|l| l.to_string()).collect();
    format!("[{}]", shown.join(", "))
}

/// Why a discovered store is not used; the `reason` label of
/// `skein_query_store_rejected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreRejection {
    /// Its certificate names no identity of the promised cluster.
    Identity,
    /// Its Info label sets are not the announced ones.
    LabelSets,
}

impl StoreRejection {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreRejection::Identity => "identity",
            StoreRejection::LabelSets => "label_sets",
        }
    }
}

/// What the querier knows about one store.
#[derive(Clone, Debug)]
pub struct StoreStatus {
    /// The address it was configured with (or discovered at).
    pub name: String,
    /// TLS server name announced by the store (default: the address's host).
    pub server_name: Option<String>,
    /// Found through gossip (removed when it leaves the view), not configured.
    pub discovered: bool,
    /// When a discovered store that was failing left the gossip view. It
    /// stays (as unavailable, so queries warn about its data) until
    /// [`DEPARTED_GRACE`] has passed; a store that leaves while healthy (a
    /// graceful shutdown) goes at once.
    pub departed: Option<SystemTime>,
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
    /// The last Info call succeeded (and kept its promise).
    pub healthy: bool,
    /// What gossip promised about it (`None`: configured, trusted).
    pub promise: Option<Promise>,
    /// Why it is refused now, if it is.
    pub refused: Option<StoreRejection>,
    /// Its announcement promised no label sets yet (a node starting).
    pub awaiting_announcement: bool,
    /// Info rounds its label sets have disagreed with the promise while it
    /// was healthy.
    pub mismatch_rounds: u32,
    verifier: Option<Arc<IdentityVerifier>>,
}

impl StoreStatus {
    /// A plaintext store (development mode).
    pub fn new(name: &str) -> Self {
        StoreStatus::with_tls(name, None, None, false)
    }

    pub fn with_tls(
        name: &str,
        tls: Option<&skein_tls::TlsMaterial>,
        server_name: Option<String>,
        discovered: bool,
    ) -> Self {
        StoreStatus::promised(name, tls, server_name, discovered, None)
    }

    /// A store with what gossip promised about it.
    pub fn promised(
        name: &str,
        tls: Option<&skein_tls::TlsMaterial>,
        server_name: Option<String>,
        discovered: bool,
        promise: Option<Promise>,
    ) -> Self {
        let (channel, verifier, last_error) =
            match dial(name, tls, server_name.as_deref(), promise.as_ref()) {
                Ok((ch, v)) => (Some(ch), v, None),
                Err(e) => (None, None, Some(e)),
            };
        StoreStatus {
            name: name.to_string(),
            server_name,
            discovered,
            departed: None,
            channel,
            component_type: String::new(),
            label_sets: Vec::new(),
            min_time: i64::MIN,
            max_time: i64::MAX,
            last_check: None,
            last_error,
            healthy: false,
            promise,
            refused: None,
            awaiting_announcement: false,
            mismatch_rounds: 0,
            verifier,
        }
    }

    /// Refused, or waiting for its announcement: queries neither use it nor
    /// warn about it (what it would serve is not known to be its own).
    pub fn excluded(&self) -> bool {
        self.refused.is_some() || self.awaiting_announcement
    }

    /// Rebuilds the channel (new TLS material); keeps what Info said.
    fn redial(&mut self, tls: Option<&skein_tls::TlsMaterial>) {
        match dial(
            &self.name,
            tls,
            self.server_name.as_deref(),
            self.promise.as_ref(),
        ) {
            Ok((ch, v)) => {
                self.channel = Some(ch);
                self.verifier = v;
            }
            Err(e) => {
                self.channel = None;
                self.verifier = None;
                self.last_error = Some(e);
            }
        }
    }

    /// Applies an Info result; returns the refusal when the store has just
    /// been refused (to count it once per refusal, not per round).
    pub(crate) fn apply(
        &mut self,
        res: Result<StoreInfo, String>,
        at: SystemTime,
    ) -> Option<StoreRejection> {
        self.last_check = Some(at);
        let was_refused = self.refused;
        match res {
            Ok(info) => self.apply_info(info),
            Err(e) => {
                let identity = self.verifier.as_ref().and_then(|v| v.last_refusal());
                let e = match identity {
                    Some(why) => {
                        self.refused = Some(StoreRejection::Identity);
                        format!(
                            "refused: the store's certificate does not match what gossip announced: {why}"
                        )
                    }
                    None => e,
                };
                if self.healthy {
                    tracing::warn!(store = %self.name, error = %e, "store became unhealthy");
                }
                self.last_error = Some(e);
                self.healthy = false;
                self.mismatch_rounds = 0;
            }
        }
        match self.refused {
            Some(r) if was_refused != Some(r) => {
                tracing::warn!(store = %self.name, reason = r.as_str(),
                    error = self.last_error.as_deref().unwrap_or(""), "discovered store refused");
                Some(r)
            }
            _ => None,
        }
    }

    fn apply_info(&mut self, info: StoreInfo) {
        let reported = normalize_label_sets(info.label_sets.clone());
        let promised = self.promise.as_ref().map(|p| p.label_sets.clone());
        let keep = match &promised {
            None => true,
            Some(p) => *p == reported,
        };
        if keep {
            self.component_type = info.component_type;
            self.label_sets = info.label_sets;
            self.min_time = info.min_time;
            self.max_time = info.max_time;
            self.last_error = None;
            self.healthy = true;
            self.refused = None;
            self.awaiting_announcement = false;
            self.mismatch_rounds = 0;
            return;
        }
        let promised = promised.unwrap_or_default();
        // A healthy store whose labels changed: its announcement may not
        // have caught up yet. Keep what was verified for a few rounds.
        if self.healthy && self.mismatch_rounds < LABEL_GRACE_ROUNDS {
            self.mismatch_rounds += 1;
            tracing::debug!(store = %self.name, reported = %show_sets(&reported),
                promised = %show_sets(&promised), rounds = self.mismatch_rounds,
                "store's label sets differ from its announcement; waiting for the announcement");
            return;
        }
        self.healthy = false;
        self.mismatch_rounds = 0;
        if promised.is_empty() {
            // The announcement has no label sets yet (a node starting):
            // not a refusal, only not usable yet.
            self.awaiting_announcement = true;
            self.refused = None;
            self.last_error = Some(format!(
                "waiting for the store's announced label sets (it reports {})",
                show_sets(&reported)
            ));
            return;
        }
        self.refused = Some(StoreRejection::LabelSets);
        self.awaiting_announcement = false;
        self.last_error = Some(format!(
            "refused: the store reports label sets {} but announced {}",
            show_sets(&reported),
            show_sets(&promised)
        ));
    }
}

/// The channel to a store; with TLS and a promise, the handshake also
/// checks the identity in the store's certificate.
fn dial(
    name: &str,
    tls: Option<&skein_tls::TlsMaterial>,
    server_name: Option<&str>,
    promise: Option<&Promise>,
) -> Result<(Channel, Option<Arc<IdentityVerifier>>), String> {
    match (tls, promise) {
        (Some(m), Some(p)) => {
            let expect = ExpectedIdentity {
                federation: p.federation.clone(),
                cluster: p.cluster.clone(),
            };
            client::channel_expecting(name, m, server_name, expect)
                .map(|(ch, v)| (ch, Some(v)))
                .map_err(|e| e.to_string())
        }
        _ => client::channel(name, tls, server_name)
            .map(|ch| (ch, None))
            .map_err(|e| e.to_string()),
    }
}

/// How long a store that failed and then dropped out of gossip keeps
/// producing "unavailable" warnings (Thanos: `--store.unhealthy-timeout`).
pub const DEPARTED_GRACE: Duration = Duration::from_secs(5 * 60);

/// Owns the store set. Started by [`super::QueryHandle::start`].
pub struct StoreSetActor {
    stores: Vec<StoreStatus>,
    tls: Option<Arc<skein_tls::TlsReloader>>,
    /// The TLS generation the channels were built with.
    tls_generation: u64,
    snapshot: Arc<Vec<StoreStatus>>,
    info_interval: Duration,
    info_timeout: Duration,
    round_in_flight: bool,
    /// The latest candidates of each discovery source (gossip, files).
    sources: std::collections::BTreeMap<&'static str, Vec<Candidate>>,
    /// `skein_query_store_rejected_total{reason}`.
    rejected: Family<Vec<(&'static str, String)>, Counter>,
}

impl StoreSetActor {
    /// Must be created inside a running actix System (channels need tokio).
    pub fn new(addrs: &[String], info_interval: Duration, info_timeout: Duration) -> Self {
        Self::with_tls(addrs, info_interval, info_timeout, None)
    }

    /// Like [`StoreSetActor::new`], dialing every store over mutual TLS
    /// with the reloader's current material (channels are rebuilt when it
    /// reloads).
    pub fn with_tls(
        addrs: &[String],
        info_interval: Duration,
        info_timeout: Duration,
        tls: Option<Arc<skein_tls::TlsReloader>>,
    ) -> Self {
        let material = tls.as_ref().map(|t| t.material());
        let stores: Vec<StoreStatus> = addrs
            .iter()
            .map(|a| StoreStatus::with_tls(a, material.as_deref(), None, false))
            .collect();
        StoreSetActor {
            snapshot: Arc::new(stores.clone()),
            tls_generation: tls.as_ref().map_or(0, |t| t.generation()),
            tls,
            stores,
            info_interval,
            info_timeout,
            round_in_flight: false,
            sources: Default::default(),
            rejected: Family::default(),
        }
    }

    /// Counts refusals of discovered stores in `counter` (registered by the
    /// caller as `skein_query_store_rejected_total`).
    pub fn counting_rejections(
        mut self,
        counter: Family<Vec<(&'static str, String)>, Counter>,
    ) -> Self {
        self.rejected = counter;
        self
    }

    /// Rebuilds every channel when the TLS material was reloaded.
    fn follow_tls(&mut self) {
        let Some(tls) = &self.tls else { return };
        let generation = tls.generation();
        if generation == self.tls_generation {
            return;
        }
        let material = tls.material();
        for s in &mut self.stores {
            s.redial(Some(&material));
        }
        self.tls_generation = generation;
        tracing::info!("TLS material reloaded: store channels rebuilt");
    }

    /// Drops departed stores whose grace period is over.
    fn forget_departed(&mut self, now: SystemTime) {
        let before = self.stores.len();
        self.stores.retain(|s| match s.departed {
            Some(t) => now.duration_since(t).map_or(true, |d| d < DEPARTED_GRACE),
            None => true,
        });
        if self.stores.len() != before {
            tracing::info!(
                removed = before - self.stores.len(),
                "departed stores forgotten"
            );
            self.snapshot = Arc::new(self.stores.clone());
        }
    }

    /// Replaces the discovered stores with `cands` (configured ones stay).
    fn set_discovered(&mut self, cands: Vec<Candidate>) -> bool {
        let material = self.tls.as_ref().map(|t| t.material());
        let now = SystemTime::now();
        let mut departed = 0;
        let mut returned = 0;
        let mut repromised = 0;
        for s in self.stores.iter_mut().filter(|s| s.discovered) {
            let found = cands.iter().find(|c| same_store(c, s));
            if let Some(c) = found {
                if s.departed.take().is_some() {
                    returned += 1;
                }
                if c.promise != s.promise {
                    // Same store and cluster, new label sets announced:
                    // the next check compares against them.
                    s.promise = c.promise.clone();
                    repromised += 1;
                }
            } else if s.departed.is_none() {
                // Decided by the next Info check: a store that still answers
                // left gracefully and goes; one that does not has crashed,
                // and stays as unavailable so answers warn about its data.
                s.departed = Some(now);
                departed += 1;
            }
        }
        let mut added = 0;
        for c in cands {
            // Behind an SNI-routing ingress several stores share an address:
            // a store is its address and its server name.
            if self
                .stores
                .iter()
                .any(|s| s.discovered && same_store(&c, s))
                || self
                    .stores
                    .iter()
                    .any(|s| !s.discovered && s.name == c.address && s.server_name == c.server_name)
            {
                continue;
            }
            tracing::info!(store = %c.address, node = %c.node_id,
                cluster = c.promise.as_ref().map_or("", |p| p.cluster.as_str()),
                "store discovered through gossip");
            self.stores.push(StoreStatus::promised(
                &c.address,
                material.as_deref(),
                c.server_name,
                true,
                c.promise,
            ));
            added += 1;
        }
        if departed > 0 {
            tracing::info!(
                departed,
                "stores left the gossip view; checking whether they still answer"
            );
        }
        let changed = added > 0 || departed > 0 || returned > 0 || repromised > 0;
        if changed {
            self.snapshot = Arc::new(self.stores.clone());
        }
        changed
    }

    /// After an Info round: departed stores that answered left gracefully
    /// and go now; those that did not stay (unavailable) until the grace
    /// period ends.
    fn settle_departed(&mut self) {
        let before = self.stores.len();
        self.stores
            .retain(|s| !(s.departed.is_some() && s.healthy && s.last_check >= s.departed));
        let gone = before - self.stores.len();
        if gone > 0 {
            tracing::info!(
                gone,
                "stores that left gracefully removed from the store set"
            );
        }
        if self
            .stores
            .iter()
            .any(|s| s.departed.is_some() && !s.healthy)
        {
            tracing::warn!(
                "failing stores left the gossip view; their data is reported missing for a while"
            );
        }
    }

    /// One Info call per store, concurrently; results come back to the actor.
    fn check_round(&mut self) -> impl ActorFuture<Self, Output = ()> + use<> {
        self.follow_tls();
        self.forget_departed(SystemTime::now());
        let timeout = self.info_timeout;
        let calls: Vec<_> = self
            .stores
            .iter()
            .enumerate()
            .filter(|(_, s)| s.channel.is_some())
            .map(|(i, s)| (i, s.name.clone(), s.channel.clone()))
            .map(|(i, name, ch)| async move {
                let res = match ch {
                    Some(ch) => client::info(ch, timeout).await.map_err(|e| e.to_string()),
                    None => Err("no channel".to_string()),
                };
                (i, name, res)
            })
            .collect();
        async move { join_all(calls).await }
            .into_actor(self)
            .map(|results, act, _ctx| {
                let now = SystemTime::now();
                for (i, name, res) in results {
                    // The set may have changed during the round (gossip).
                    if let Some(s) = act.stores.get_mut(i).filter(|s| s.name == name)
                        && let Some(r) = s.apply(res, now)
                    {
                        act.rejected
                            .get_or_create(&vec![("reason", r.as_str().to_string())])
                            .inc();
                    }
                }
                act.settle_departed();
                act.snapshot = Arc::new(act.stores.clone());
            })
    }
}

impl Actor for StoreSetActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let round = self.check_round();
        ctx.spawn(round);
        let every = crate::interval::loop_interval(self.info_interval);
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

/// A store found through gossip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// StoreAPI `host:port` to dial.
    pub address: String,
    /// Name its certificate carries (SNI), as it announced it.
    pub server_name: Option<String>,
    pub node_id: String,
    /// What its announcement promised (gossip); `None` trusts the store as
    /// configured (a file of endpoints).
    pub promise: Option<Promise>,
}

/// A candidate names a discovered store when address, server name and
/// promised cluster agree (a store announced for two clusters is two
/// entries, and its certificate settles which one holds).
fn same_store(c: &Candidate, s: &StoreStatus) -> bool {
    c.address == s.name
        && c.server_name == s.server_name
        && c.promise.as_ref().map(|p| &p.cluster) == s.promise.as_ref().map(|p| &p.cluster)
}

/// Replaces what gossip discovered (see [`SetSource`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetDiscovered(pub Vec<Candidate>);

impl Handler<SetDiscovered> for StoreSetActor {
    type Result = ();

    fn handle(&mut self, msg: SetDiscovered, ctx: &mut Context<Self>) {
        self.handle(SetSource("gossip", msg.0), ctx);
    }
}

/// Replaces the candidates of one discovery source (`gossip`, `file`);
/// the discovered part of the set is the union of every source's.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetSource(pub &'static str, pub Vec<Candidate>);

impl Handler<SetSource> for StoreSetActor {
    type Result = ();

    fn handle(&mut self, msg: SetSource, ctx: &mut Context<Self>) {
        self.sources.insert(msg.0, msg.1);
        let mut union: Vec<Candidate> = self.sources.values().flatten().cloned().collect();
        let key = |c: &Candidate| {
            (
                c.address.clone(),
                c.server_name.clone(),
                c.promise.as_ref().map(|p| p.cluster.clone()),
            )
        };
        union.sort_by_key(key);
        union.dedup_by(|a, b| key(a) == key(b));
        let changed = self.set_discovered(union);
        // Check newcomers and leavers now rather than at the next interval.
        if changed || self.stores.iter().any(|s| s.last_check.is_none()) {
            let round = self.check_round();
            ctx.spawn(round);
        }
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
