//! The workload: queries at a steady rate through every querier, each
//! answer parsed and checked against the oracle.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::oracle::{self, Answer, Labels, Oracle, Query};
use crate::schedule::Rng;

/// How one answer compares with the oracle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Equal to the oracle, no warning.
    Exact,
    /// Equal to the oracle, with a warning.
    ExactWarned,
    /// Differs from the oracle, with a warning (allowed partial answer).
    PartialWarned,
    /// Differs from the oracle without any warning: an invariant violation.
    SilentWrong,
    /// No answer: transport error, timeout, or an error status.
    Failed,
}

impl Outcome {
    pub fn answered(self) -> bool {
        !matches!(self, Outcome::Failed)
    }

    pub fn warned(self) -> bool {
        matches!(self, Outcome::ExactWarned | Outcome::PartialWarned)
    }
}

/// One query and what came back.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    pub at_s: f64,
    pub querier: String,
    pub kind: &'static str,
    pub promql: String,
    pub range: bool,
    pub outcome: Outcome,
    pub latency_ms: f64,
    pub warnings: Vec<String>,
    pub detail: String,
}

/// Test-only switches that break the harness's own response path, to
/// show the invariants catch a bug.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Inject {
    #[default]
    None,
    /// Strip warnings from every response before checking it.
    DropWarnings,
    /// Add 1 to every expected value.
    WrongOracle,
    /// Run queriers with a replica label no series carries (no HA dedup).
    NoDedup,
}

/// A querier the workload sends to.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub base_url: String,
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// Parses a `/api/v1/query{,_range}` success body.
pub fn parse_answer(v: &Value) -> Result<(Answer, Vec<String>), String> {
    if v.get("status").and_then(Value::as_str) != Some("success") {
        return Err(format!("status not success: {}", truncate(&v.to_string())));
    }
    let warnings: Vec<String> = v
        .get("warnings")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|w| w.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let result = v
        .pointer("/data/result")
        .and_then(Value::as_array)
        .ok_or("no data.result")?;
    let point = |p: &Value| -> Result<(i64, f64), String> {
        let t = p.get(0).and_then(Value::as_f64).ok_or("bad point time")?;
        let s = p.get(1).and_then(Value::as_str).ok_or("bad point value")?;
        let x = s.parse::<f64>().map_err(|e| e.to_string())?;
        Ok(((t * 1000.0).round() as i64, x))
    };
    let mut out = Answer::new();
    for s in result {
        let labels: Labels = s
            .get("metric")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut pts = Vec::new();
        if let Some(p) = s.get("value") {
            pts.push(point(p)?);
        }
        if let Some(ps) = s.get("values").and_then(Value::as_array) {
            for p in ps {
                pts.push(point(p)?);
            }
        }
        if out.insert(labels.clone(), pts).is_some() {
            return Err(format!("duplicate series {labels:?}"));
        }
    }
    Ok((out, warnings))
}

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Sends one query; returns the parsed answer and warnings, or an error.
pub async fn send(
    client: &reqwest::Client,
    base_url: &str,
    q: &Query,
    timeout: Duration,
) -> Result<(Answer, Vec<String>), String> {
    let mut params = vec![("query", q.promql.clone())];
    let url = match q.range {
        None => {
            params.push(("time", secs(q.start_ms)));
            format!("{base_url}/api/v1/query")
        }
        Some((end, step)) => {
            params.push(("start", secs(q.start_ms)));
            params.push(("end", secs(end)));
            params.push(("step", secs(step)));
            format!("{base_url}/api/v1/query_range")
        }
    };
    let resp = client
        .post(url)
        .form(&params)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("transport: {e}"))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| format!("body: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            truncate(&String::from_utf8_lossy(&body))
        ));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| format!("json: {e}"))?;
    parse_answer(&v)
}

/// Classifies an answer.
pub fn classify(want: &Answer, got: &Answer, warnings: &[String]) -> (Outcome, String) {
    match (oracle::compare(want, got), warnings.is_empty()) {
        (Ok(()), true) => (Outcome::Exact, String::new()),
        (Ok(()), false) => (Outcome::ExactWarned, String::new()),
        (Err(d), false) => (Outcome::PartialWarned, d),
        (Err(d), true) => (Outcome::SilentWrong, d),
    }
}

/// Runs one query end to end and records it.
pub async fn one(
    client: &reqwest::Client,
    oracle: &Oracle,
    target: &Target,
    q: Query,
    inject: Inject,
    t0: Instant,
) -> Record {
    let at_s = t0.elapsed().as_secs_f64();
    let started = Instant::now();
    let res = send(client, &target.base_url, &q, Duration::from_secs(25)).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut want = oracle.answer(&q);
    if inject == Inject::WrongOracle {
        for pts in want.values_mut() {
            for p in pts.iter_mut() {
                p.1 += 1.0;
            }
        }
    }
    let (outcome, warnings, detail) = match res {
        Err(e) => (Outcome::Failed, vec![], e),
        Ok((got, mut warnings)) => {
            if inject == Inject::DropWarnings {
                warnings.clear();
            }
            let (o, d) = classify(&want, &got, &warnings);
            (o, warnings, d)
        }
    };
    Record {
        at_s,
        querier: target.name.clone(),
        kind: q.kind.label(),
        promql: q.promql,
        range: q.range.is_some(),
        outcome,
        latency_ms,
        warnings,
        detail,
    }
}

/// Everything the load loop needs.
pub struct Load {
    pub client: reqwest::Client,
    pub oracle: Arc<Oracle>,
    pub targets: Vec<Target>,
    pub seed: u64,
    pub qps: f64,
    pub inject: Inject,
    pub t0: Instant,
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    pub records: Arc<Mutex<Vec<Record>>>,
}

/// Sends `qps` queries per second, round-robin over `targets`, until
/// `stop` is set; returns when every sent query has finished.
pub async fn run(load: Load) {
    let Load {
        client,
        oracle,
        targets,
        seed,
        qps,
        inject,
        t0,
        stop,
        records,
    } = load;
    let mut rng = Rng::new(seed ^ 0x0a11_0a11);
    let period = Duration::from_secs_f64(1.0 / qps.max(0.1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 0usize;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        tick.tick().await;
        let Some(target) = targets.get(n % targets.len().max(1)).cloned() else {
            break;
        };
        n += 1;
        let q = oracle.random_query(&mut rng);
        let (client, oracle, records) = (client.clone(), oracle.clone(), records.clone());
        tasks.spawn(async move {
            let r = one(&client, &oracle, &target, q, inject, t0).await;
            if let Ok(mut v) = records.lock() {
                v.push(r);
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}
