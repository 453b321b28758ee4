//! Query cases for comparing the querier with the Prometheus servers behind it,
//! and how each case's expected answer is built from per-cluster answers.

use std::fmt;

use anyhow::{Context, bail};

use crate::compare::{Combine, add_labels, combine, compare, divide, union};
use crate::fixture::Cluster;
use crate::http::ApiClient;
use crate::promjson::QueryData;

/// How the querier's answer relates to the per-cluster Prometheus answers.
#[derive(Debug, Clone)]
pub enum Expect {
    /// The query keeps series identity: querier(Q) == union over clusters of
    /// prometheus_c(P_c) with c's external labels added. `None` for a cluster
    /// means it contributes nothing (e.g. Q matches on `cluster`).
    Union(Vec<Option<String>>),
    /// An aggregation across clusters: querier(Q) == op over clusters of
    /// prometheus_c(P), series by series (sum of sums, max of maxes, min of
    /// mins; count = sum of counts).
    Combine(Combine, String),
    /// avg across clusters: (sum over c of prometheus_c(SUM)) / (sum over c of
    /// prometheus_c(COUNT)).
    Avg { sum: String, count: String },
}

/// When a case is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eval {
    /// Instant query at t (ms).
    Instant(i64),
    /// Range query start, end, step (ms).
    Range(i64, i64, i64),
}

impl fmt::Display for Eval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Eval::Instant(t) => write!(f, "instant@{t}"),
            Eval::Range(s, e, step) => write!(f, "range[{s},{e}] step {}s", step / 1000),
        }
    }
}

/// One query case: the querier expression, how to build its expected answer, and
/// whether an empty answer is acceptable (never by default: a case that matches
/// nothing proves nothing).
#[derive(Debug, Clone)]
pub struct Case {
    pub query: String,
    pub expect: Expect,
    pub allow_empty: bool,
}

impl Case {
    /// Union of the same query on every cluster.
    pub fn union(q: &str, clusters: usize) -> Self {
        Self::union_as(q, q, clusters)
    }

    /// Union of `prom` on every cluster, for querier query `q`.
    pub fn union_as(q: &str, prom: &str, clusters: usize) -> Self {
        Self {
            query: q.to_string(),
            expect: Expect::Union(vec![Some(prom.to_string()); clusters]),
            allow_empty: false,
        }
    }

    /// Only cluster `idx` answers, with `prom`.
    pub fn only(q: &str, idx: usize, prom: &str, clusters: usize) -> Self {
        let mut per = vec![None; clusters];
        per[idx] = Some(prom.to_string());
        Self {
            query: q.to_string(),
            expect: Expect::Union(per),
            allow_empty: false,
        }
    }

    /// Cross-cluster aggregation of the same query.
    pub fn combine(op: Combine, q: &str) -> Self {
        Self::combine_as(op, q, q)
    }

    /// Cross-cluster aggregation of `prom` answers for querier query `q`.
    pub fn combine_as(op: Combine, q: &str, prom: &str) -> Self {
        Self {
            query: q.to_string(),
            expect: Expect::Combine(op, prom.to_string()),
            allow_empty: false,
        }
    }

    /// Cross-cluster average.
    pub fn avg(q: &str, sum: &str, count: &str) -> Self {
        Self {
            query: q.to_string(),
            expect: Expect::Avg {
                sum: sum.to_string(),
                count: count.to_string(),
            },
            allow_empty: false,
        }
    }
}

fn run(client: &ApiClient, q: &str, eval: Eval) -> anyhow::Result<QueryData> {
    match eval {
        Eval::Instant(t) => client.query(q, t),
        Eval::Range(s, e, step) => client.query_range(q, s, e, step),
    }
}

/// The expected querier answer for `case` at `eval`, from the Prometheus servers.
pub fn expected(clusters: &[Cluster], case: &Case, eval: Eval) -> anyhow::Result<QueryData> {
    match &case.expect {
        Expect::Union(per) => {
            if per.len() != clusters.len() {
                bail!(
                    "case has {} per-cluster queries for {} clusters",
                    per.len(),
                    clusters.len()
                );
            }
            let mut parts = Vec::new();
            for (c, q) in clusters.iter().zip(per) {
                if let Some(q) = q {
                    let d = run(&c.prometheus.client, q, eval)?;
                    parts.push(add_labels(d, &c.external_labels));
                }
            }
            union(parts)
        }
        Expect::Combine(op, q) => {
            let parts = clusters
                .iter()
                .map(|c| run(&c.prometheus.client, q, eval))
                .collect::<anyhow::Result<Vec<_>>>()?;
            combine(parts, *op)
        }
        Expect::Avg { sum, count } => {
            let sums = clusters
                .iter()
                .map(|c| run(&c.prometheus.client, sum, eval))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let counts = clusters
                .iter()
                .map(|c| run(&c.prometheus.client, count, eval))
                .collect::<anyhow::Result<Vec<_>>>()?;
            divide(
                &combine(sums, Combine::Sum)?,
                &combine(counts, Combine::Sum)?,
            )
        }
    }
}

/// Run `case` at `eval` on the querier and compare with the expectation.
/// `Err` holds a readable report (query, eval, differences).
pub fn check(
    querier: &ApiClient,
    clusters: &[Cluster],
    case: &Case,
    eval: Eval,
) -> Result<(), String> {
    let want = expected(clusters, case, eval)
        .with_context(|| format!("expected answer for {:?}", case.query))
        .map_err(|e| {
            format!(
                "{} {eval}: harness could not build the expectation: {e:#}",
                case.query
            )
        })?;
    if !case.allow_empty && want.series_count() == 0 {
        return Err(format!(
            "{} {eval}: expectation is empty; the case proves nothing",
            case.query
        ));
    }
    let got = run(querier, &case.query, eval)
        .map_err(|e| format!("{} {eval}: querier failed: {e:#}", case.query))?;
    compare(&want, &got).map_err(|d| format!("{} {eval}: {d}", case.query))
}
