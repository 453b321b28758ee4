//! What the harness asks the running system: baseline answers, store-set
//! and gossip-view convergence, departures, and bucket state.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::datagen::DataSpec;
use crate::oracle::{Kind, Oracle, Query};
use crate::workload::{self, Inject, Outcome, Target};

/// Where the newest local block of a killed sidecar was at the kill.
pub async fn upload_state(
    client: &reqwest::Client,
    s3: &crate::s3::S3,
    dir: &std::path::Path,
) -> String {
    let Some(newest) = crate::bucket::local_blocks(dir)
        .into_iter()
        .max_by(|a, b| a.ulid.cmp(&b.ulid))
    else {
        return "no local block".into();
    };
    match s3.list(client).await {
        Err(e) => format!("bucket not listable at the kill: {e}"),
        Ok(objs) => {
            let prefix = format!("{}/", newest.ulid);
            let files: Vec<&String> = objs
                .iter()
                .map(|(k, _)| k)
                .filter(|k| k.starts_with(&prefix))
                .collect();
            let state = if files.is_empty() {
                "not uploaded yet".to_string()
            } else if files.iter().any(|k| k.ends_with("/meta.json")) {
                "already complete".to_string()
            } else {
                format!("partially uploaded ({} objects, no meta.json)", files.len())
            };
            format!("new block {} at the kill: {state}", newest.ulid)
        }
    }
}

/// Audits the bucket until it matches every replica's blocks (the
/// shippers get up to 90 s after the last fault), and returns the verdict.
pub async fn settle_bucket(
    client: &reqwest::Client,
    s3: &crate::s3::S3,
    uploads: &BTreeMap<String, (usize, PathBuf)>,
    abort: &AtomicBool,
) -> crate::invariants::Check {
    use crate::bucket::{Replica, audit, local_blocks};
    let start = Instant::now();
    loop {
        let replicas: Vec<Replica> = uploads
            .iter()
            .map(|(name, (c, dir))| Replica {
                cluster: DataSpec::cluster_name(*c),
                replica: name.chars().last().map(String::from).unwrap_or_default(),
                blocks: local_blocks(dir),
            })
            .collect();
        let a = audit(s3, client, &replicas).await;
        if a.problems.is_empty() {
            return crate::invariants::Check::Pass(format!(
                "{} local blocks, each in the bucket exactly once and whole ({} bucket blocks, none partial) after {:.1}s",
                a.local_blocks,
                a.bucket_blocks,
                start.elapsed().as_secs_f64()
            ));
        }
        if start.elapsed() > Duration::from_secs(90) || abort.load(Ordering::SeqCst) {
            return crate::invariants::Check::Fail(format!(
                "after {:.0}s: {}",
                start.elapsed().as_secs_f64(),
                a.problems.join("; ")
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits until every querier answers a count exactly (bounded).
pub async fn baseline(
    client: &reqwest::Client,
    oracle: &Oracle,
    targets: &[Target],
    inject: Inject,
    abort: &AtomicBool,
) -> Result<(), String> {
    let spec = oracle.spec();
    let q = Query {
        kind: Kind::CountByCluster,
        promql: Kind::CountByCluster.promql(),
        start_ms: spec.start_ms + 3_600_000,
        range: None,
    };
    let within = if inject == Inject::None { 60 } else { 10 };
    let deadline = Instant::now() + Duration::from_secs(within);
    let mut last = String::new();
    for t in targets {
        loop {
            if abort.load(Ordering::SeqCst) {
                return Err("aborted".into());
            }
            let r = workload::one(client, oracle, t, q.clone(), inject, Instant::now()).await;
            if r.outcome == Outcome::Exact {
                break;
            }
            last = format!("{}: {:?} {} {:?}", t.name, r.outcome, r.detail, r.warnings);
            if Instant::now() > deadline {
                return Err(format!(
                    "no exact answer within {within}s of start-up: {last}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let _ = last;
    Ok(())
}

/// Seconds until `store` is gone from the querier's gossip view
/// (`/api/v1/members`); `None` when it was still there when `within`
/// ended. (The store set keeps a crashed store, unavailable and warned
/// about, for a grace period after it leaves the view; that is by design.)
pub async fn departure(
    client: reqwest::Client,
    base: String,
    store: String,
    within: Duration,
) -> Option<f64> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(members) = member_stores(&client, &base).await
            && !members.contains(&store)
        {
            return Some(start.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// StoreAPI addresses of the live peers in a node's gossip view.
pub async fn member_stores(client: &reqwest::Client, base: &str) -> Option<Vec<String>> {
    let r = client
        .get(format!("{base}/api/v1/members"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let v: Value = r.json_value().await?;
    Some(
        v.pointer("/data/peers")?
            .as_array()?
            .iter()
            .filter_map(|p| {
                p.get("storeInternal")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .collect(),
    )
}

/// Seconds until every querier's /api/v1/stores lists `n` healthy stores,
/// or None if that does not happen within `bound`.
pub async fn converge(
    client: reqwest::Client,
    targets: Vec<Target>,
    n: usize,
    members: Option<BTreeMap<usize, Vec<String>>>,
    bound: Duration,
) -> Option<f64> {
    let start = Instant::now();
    while start.elapsed() < bound {
        let mut all = true;
        for (c, t) in targets.iter().enumerate() {
            if healthy_stores(&client, &t.base_url).await != Some(n) {
                all = false;
                break;
            }
            if let Some(want) = members.as_ref().and_then(|m| m.get(&c)) {
                let have = member_stores(&client, &t.base_url)
                    .await
                    .unwrap_or_default();
                if !want.iter().all(|s| have.contains(s)) {
                    all = false;
                    break;
                }
            }
        }
        if all {
            return Some(start.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// Number of stores with no last error, from `/api/v1/stores`.
pub async fn healthy_stores(client: &reqwest::Client, base: &str) -> Option<usize> {
    let r = client
        .get(format!("{base}/api/v1/stores"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    let v: Value = r.json_value().await?;
    let groups = v.get("data")?.as_object()?;
    Some(
        groups
            .values()
            .filter_map(Value::as_array)
            .flatten()
            .filter(|s| s.get("lastError").is_none_or(Value::is_null))
            .filter(|s| {
                s.get("lastCheck")
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.starts_with("0001-"))
            })
            .count(),
    )
}

trait JsonValue {
    async fn json_value(self) -> Option<Value>;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> Option<Value> {
        let b = self.bytes().await.ok()?;
        serde_json::from_slice(&b).ok()
    }
}
