//! Blocking HTTP helpers for the Prometheus query API (used against Prometheus
//! itself and against the Skein querier).

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

use crate::promjson::{QueryData, parse_query_data};
use crate::timefmt::secs_string;

/// A client for one server's HTTP API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    http: reqwest::blocking::Client,
}

/// A raw API answer: HTTP status, parsed JSON body (Null if not JSON), text.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub elapsed: Duration,
}

impl ApiResponse {
    /// The parsed query data; fails unless HTTP 200 and `status: success`.
    pub fn data(&self) -> anyhow::Result<QueryData> {
        self.ensure_success()?;
        parse_query_data(self.body.get("data").context("answer without data")?)
    }

    /// Fails unless HTTP 200 and `status: success`.
    pub fn ensure_success(&self) -> anyhow::Result<()> {
        if self.status != 200 || self.body.get("status").and_then(Value::as_str) != Some("success")
        {
            bail!("HTTP {}: {}", self.status, truncate(&self.text, 600));
        }
        Ok(())
    }

    /// The `warnings` array as strings (empty when absent).
    pub fn warnings(&self) -> Vec<String> {
        self.body
            .get("warnings")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|w| w.as_str().map_or_else(|| w.to_string(), str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `errorType` of an error answer.
    pub fn error_type(&self) -> Option<&str> {
        self.body.get("errorType").and_then(Value::as_str)
    }

    /// `error` text of an error answer.
    pub fn error(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    }
}

impl ApiClient {
    /// A client for `base` (e.g. `http://127.0.0.1:9090`), with a 60 s request timeout.
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Self::with_timeout(base, Duration::from_secs(60))
    }

    /// A client with a custom per-request timeout.
    pub fn with_timeout(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET `path` with query parameters.
    pub fn get(&self, path: &str, params: &[(&str, String)]) -> anyhow::Result<ApiResponse> {
        let url = format!("{}{}", self.base, path);
        let started = Instant::now();
        let resp = self
            .http
            .get(&url)
            .query(params)
            .send()
            .map_err(|e| anyhow!("GET {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().map_err(|e| anyhow!("GET {url}: body: {e}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(ApiResponse {
            status,
            body,
            text,
            elapsed: started.elapsed(),
        })
    }

    /// POST `path` with a form body (what Grafana sends by default).
    pub fn post_form(&self, path: &str, params: &[(&str, String)]) -> anyhow::Result<ApiResponse> {
        let url = format!("{}{}", self.base, path);
        let body = params
            .iter()
            .map(|(k, v)| format!("{}={}", form_escape(k), form_escape(v)))
            .collect::<Vec<_>>()
            .join("&");
        let started = Instant::now();
        let resp = self
            .http
            .post(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .map_err(|e| anyhow!("POST {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().map_err(|e| anyhow!("POST {url}: body: {e}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(ApiResponse {
            status,
            body,
            text,
            elapsed: started.elapsed(),
        })
    }

    /// Status code of a GET (for /-/healthy, /-/ready, /metrics).
    pub fn status_of(&self, path: &str) -> anyhow::Result<u16> {
        Ok(self.get(path, &[])?.status)
    }

    /// Raw instant query at `time_ms`.
    pub fn query_raw(&self, expr: &str, time_ms: i64) -> anyhow::Result<ApiResponse> {
        self.get(
            "/api/v1/query",
            &[("query", expr.to_string()), ("time", secs_string(time_ms))],
        )
    }

    /// Raw range query.
    pub fn query_range_raw(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> anyhow::Result<ApiResponse> {
        self.get(
            "/api/v1/query_range",
            &[
                ("query", expr.to_string()),
                ("start", secs_string(start_ms)),
                ("end", secs_string(end_ms)),
                ("step", secs_string(step_ms)),
            ],
        )
    }

    /// Instant query that must succeed.
    pub fn query(&self, expr: &str, time_ms: i64) -> anyhow::Result<QueryData> {
        self.query_raw(expr, time_ms)?
            .data()
            .with_context(|| format!("instant query {expr:?} on {}", self.base))
    }

    /// Range query that must succeed.
    pub fn query_range(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> anyhow::Result<QueryData> {
        self.query_range_raw(expr, start_ms, end_ms, step_ms)?
            .data()
            .with_context(|| format!("range query {expr:?} on {}", self.base))
    }
}

/// application/x-www-form-urlencoded escaping.
fn form_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
