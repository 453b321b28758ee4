//! The HTTP client for the one Prometheus a sidecar serves: configuration
//! (external labels), build info, lowest timestamp, the series/labels API,
//! and remote read (streamed frame by frame).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use skein_promql::{Label, LabelMatcher, Labels};
use skein_proto::prometheus as prompb;

use super::remote_read::{self, FrameDecoder, RawSeries, RemoteReadError};

/// Answer types a sidecar accepts from remote read, preferred first.
pub const DEFAULT_ACCEPTED: [prompb::read_request::ResponseType; 2] = [
    prompb::read_request::ResponseType::StreamedXorChunks,
    prompb::read_request::ResponseType::Samples,
];

/// Earliest and latest times (ms) sent to Prometheus's HTTP API: years 0001
/// and 9999, which its time parser takes without overflow.
const API_MIN_MS: i64 = -62_135_596_800_000;
const API_MAX_MS: i64 = 253_402_300_799_000;

/// Most bytes of an error body kept for the error message.
const ERROR_BODY_LIMIT: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("invalid Prometheus URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot build HTTP client: {0}")]
    Client(String),
    #[error("Prometheus {endpoint} request failed: {reason}")]
    Request { endpoint: String, reason: String },
    #[error("Prometheus {endpoint} did not answer within {after:?}")]
    Timeout { endpoint: String, after: Duration },
    #[error("Prometheus {endpoint} answered HTTP {status}: {body}")]
    Status {
        endpoint: String,
        status: u16,
        body: String,
    },
    #[error("Prometheus {endpoint} failed ({error_type}): {error}")]
    Api {
        endpoint: String,
        error_type: String,
        error: String,
    },
    #[error("cannot parse the answer of Prometheus {endpoint}: {reason}")]
    Parse { endpoint: String, reason: String },
    #[error(
        "Prometheus at {url} has no external labels; set `global.external_labels` in its \
         configuration (the StoreAPI needs them to route queries to this sidecar)"
    )]
    NoExternalLabels { url: String },
    #[error(
        "Prometheus /metrics exposes neither prometheus_tsdb_lowest_timestamp_seconds nor prometheus_tsdb_lowest_timestamp"
    )]
    NoLowestTimestamp,
    #[error("Prometheus remote read: {0}")]
    RemoteRead(#[from] RemoteReadError),
    #[error("Prometheus remote read answered with unexpected content type {0:?}")]
    ContentType(String),
    #[error("Prometheus {endpoint} answered more than {max} bytes; refused")]
    BodyTooLarge { endpoint: String, max: usize },
}

/// Largest whole answer read from Prometheus (JSON APIs, /metrics, a
/// remote-read SAMPLES answer). A SAMPLES body decompresses to at most
/// [`remote_read::MAX_FRAME_BYTES`] (50 MiB), and snappy output is at most
/// about 1/6 larger than its input, so every valid SAMPLES body fits; the
/// bound is what one answer can make the sidecar hold.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Talks to one Prometheus. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PrometheusClient {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
    read_bytes: Option<Counter>,
}

#[derive(Deserialize)]
struct ApiEnvelope<T> {
    status: String,
    data: Option<T>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct ConfigData {
    yaml: String,
}

#[derive(Deserialize, Default)]
struct PromConfig {
    #[serde(default)]
    global: Option<GlobalConfig>,
}

#[derive(Deserialize, Default)]
struct GlobalConfig {
    #[serde(default)]
    external_labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct BuildInfo {
    version: String,
}

impl PrometheusClient {
    /// `url` is Prometheus's base URL (`http://host:9090`, maybe with a
    /// path prefix); `timeout` bounds each API call and each read of the
    /// remote-read body.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, PrometheusError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| PrometheusError::BadUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(PrometheusError::BadUrl {
                url: url.to_string(),
                reason: "scheme must be http or https".into(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .build()
            .map_err(|e| PrometheusError::Client(error_chain(&e)))?;
        Ok(PrometheusClient {
            http,
            base: url.trim_end_matches('/').to_string(),
            timeout,
            read_bytes: None,
        })
    }

    /// Counts remote-read bytes into `counter`.
    pub fn with_read_bytes_counter(mut self, counter: Counter) -> Self {
        self.read_bytes = Some(counter);
        self
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// Parses `global.external_labels` out of Prometheus's config YAML; an
    /// error if there are none.
    pub fn parse_external_labels(&self, yaml: &str) -> Result<Labels, PrometheusError> {
        let cfg: PromConfig = serde_saphyr::from_str(yaml).map_err(|e| PrometheusError::Parse {
            endpoint: "/api/v1/status/config".into(),
            reason: e.to_string(),
        })?;
        let labels = Labels::new(
            cfg.global
                .and_then(|g| g.external_labels)
                .unwrap_or_default()
                .into_iter()
                .map(|(n, v)| Label::new(n, v))
                .collect(),
        );
        if labels.is_empty() {
            return Err(PrometheusError::NoExternalLabels {
                url: self.base.clone(),
            });
        }
        Ok(labels)
    }

    /// Reads the external labels from `/api/v1/status/config`.
    pub async fn fetch_external_labels(&self) -> Result<Labels, PrometheusError> {
        let data: ConfigData = self.get_api("/api/v1/status/config", &[]).await?;
        self.parse_external_labels(&data.yaml)
    }

    /// Prometheus's version from `/api/v1/status/buildinfo`.
    pub async fn version(&self) -> Result<String, PrometheusError> {
        let info: BuildInfo = self.get_api("/api/v1/status/buildinfo", &[]).await?;
        Ok(info.version)
    }

    /// The lowest timestamp (ms) in Prometheus's TSDB, from its own metrics.
    pub async fn min_time(&self) -> Result<i64, PrometheusError> {
        let body = self.get_text("/metrics").await?;
        parse_lowest_timestamp(&body)
    }

    /// `/api/v1/series`: label sets of the series matching `selector`.
    pub async fn series(
        &self,
        selector: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, PrometheusError> {
        let q = time_params(start_ms, end_ms, Some(selector));
        let sets: Vec<BTreeMap<String, String>> = self.get_api("/api/v1/series", &q).await?;
        Ok(sets
            .into_iter()
            .map(|m| Labels::new(m.into_iter().map(|(n, v)| Label::new(n, v)).collect()))
            .collect())
    }

    /// `/api/v1/labels`.
    pub async fn label_names(
        &self,
        selector: Option<&str>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, PrometheusError> {
        let q = time_params(start_ms, end_ms, selector);
        Ok(self
            .get_api::<Option<Vec<String>>>("/api/v1/labels", &q)
            .await?
            .unwrap_or_default())
    }

    /// `/api/v1/label/<name>/values`; `name` must be a valid label name.
    pub async fn label_values(
        &self,
        name: &str,
        selector: Option<&str>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, PrometheusError> {
        let q = time_params(start_ms, end_ms, selector);
        let path = format!("/api/v1/label/{name}/values");
        Ok(self
            .get_api::<Option<Vec<String>>>(&path, &q)
            .await?
            .unwrap_or_default())
    }

    /// Starts a remote read for one query. The answer is read as the caller
    /// pulls series from the returned stream.
    pub async fn remote_read(
        &self,
        start_ms: i64,
        end_ms: i64,
        matchers: &[LabelMatcher],
        accepted: &[prompb::read_request::ResponseType],
    ) -> Result<RemoteReadStream, PrometheusError> {
        const EP: &str = "/api/v1/read";
        let body = remote_read::encode_request(start_ms, end_ms, matchers, accepted)?;
        let req = self
            .http
            .post(format!("{}{EP}", self.base))
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Read-Version", "0.1.0")
            .header("User-Agent", "skein-sidecar")
            .body(body);
        let resp = self.send(EP, req).await?;
        let resp = check_status(EP, resp).await?;
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if content_type.starts_with("application/x-streamed-protobuf") {
            Ok(RemoteReadStream {
                inner: Inner::Streamed {
                    resp,
                    decoder: FrameDecoder::new(),
                    pending: VecDeque::new(),
                    done: false,
                },
                timeout: self.timeout,
                read_bytes: self.read_bytes.clone(),
            })
        } else if content_type.starts_with("application/x-protobuf") {
            let body = self.body_bytes(EP, resp).await?;
            if let Some(c) = &self.read_bytes {
                c.inc_by(body.len() as u64);
            }
            let series = remote_read::decode_samples_response(&body)?;
            Ok(RemoteReadStream {
                inner: Inner::Samples(series.into_iter()),
                timeout: self.timeout,
                read_bytes: None,
            })
        } else {
            Err(PrometheusError::ContentType(content_type))
        }
    }

    async fn send(
        &self,
        endpoint: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, PrometheusError> {
        match tokio::time::timeout(self.timeout, req.send()).await {
            Err(_) => Err(PrometheusError::Timeout {
                endpoint: endpoint.to_string(),
                after: self.timeout,
            }),
            Ok(Err(e)) => Err(PrometheusError::Request {
                endpoint: endpoint.to_string(),
                reason: error_chain(&e),
            }),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// Reads a whole answer, at most [`MAX_BODY_BYTES`]: a larger one (by its
    /// Content-Length or by what arrives) is refused before it is held.
    async fn body_bytes(
        &self,
        endpoint: &str,
        mut resp: reqwest::Response,
    ) -> Result<bytes::Bytes, PrometheusError> {
        let too_large = || PrometheusError::BodyTooLarge {
            endpoint: endpoint.to_string(),
            max: MAX_BODY_BYTES,
        };
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(too_large());
        }
        let read = async {
            let mut body = bytes::BytesMut::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| PrometheusError::Request {
                endpoint: endpoint.to_string(),
                reason: error_chain(&e),
            })? {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body.freeze())
        };
        match tokio::time::timeout(self.timeout, read).await {
            Err(_) => Err(PrometheusError::Timeout {
                endpoint: endpoint.to_string(),
                after: self.timeout,
            }),
            Ok(r) => r,
        }
    }

    async fn get_text(&self, endpoint: &str) -> Result<String, PrometheusError> {
        let resp = self
            .send(endpoint, self.http.get(format!("{}{endpoint}", self.base)))
            .await?;
        let resp = check_status(endpoint, resp).await?;
        let body = self.body_bytes(endpoint, resp).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    async fn get_api<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        query: &[(&str, String)],
    ) -> Result<T, PrometheusError> {
        let req = self
            .http
            .get(format!("{}{endpoint}", self.base))
            .query(query);
        let resp = self.send(endpoint, req).await?;
        let status = resp.status();
        let body = self.body_bytes(endpoint, resp).await?;
        let env: ApiEnvelope<T> = match serde_json::from_slice(&body) {
            Ok(env) => env,
            Err(e) if status.is_success() => {
                return Err(PrometheusError::Parse {
                    endpoint: endpoint.to_string(),
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                return Err(PrometheusError::Status {
                    endpoint: endpoint.to_string(),
                    status: status.as_u16(),
                    body: truncate(&String::from_utf8_lossy(&body)),
                });
            }
        };
        if env.status != "success" {
            return Err(PrometheusError::Api {
                endpoint: endpoint.to_string(),
                error_type: env.error_type.unwrap_or_else(|| "unknown".into()),
                error: env.error.unwrap_or_else(|| format!("HTTP {status}")),
            });
        }
        env.data.ok_or_else(|| PrometheusError::Parse {
            endpoint: endpoint.to_string(),
            reason: "no data in a successful answer".into(),
        })
    }
}

/// Series of a remote-read answer, pulled one at a time.
pub struct RemoteReadStream {
    inner: Inner,
    timeout: Duration,
    read_bytes: Option<Counter>,
}

enum Inner {
    Streamed {
        resp: reqwest::Response,
        decoder: FrameDecoder,
        pending: VecDeque<prompb::ChunkedSeries>,
        done: bool,
    },
    Samples(std::vec::IntoIter<RawSeries>),
}

impl RemoteReadStream {
    /// The next series, `None` at the end of the answer.
    pub async fn next(&mut self) -> Result<Option<RawSeries>, PrometheusError> {
        let (resp, decoder, pending, done) = match &mut self.inner {
            Inner::Samples(it) => return Ok(it.next()),
            Inner::Streamed {
                resp,
                decoder,
                pending,
                done,
            } => (resp, decoder, pending, done),
        };
        loop {
            if let Some(s) = pending.pop_front() {
                return Ok(Some(remote_read::from_chunked_series(s)?));
            }
            if let Some(frame) = decoder.next_frame()? {
                pending.extend(frame.chunked_series);
                continue;
            }
            if *done {
                decoder.finish()?;
                return Ok(None);
            }
            let chunk = match tokio::time::timeout(self.timeout, resp.chunk()).await {
                Err(_) => {
                    return Err(PrometheusError::Timeout {
                        endpoint: "/api/v1/read".into(),
                        after: self.timeout,
                    });
                }
                Ok(Err(e)) => {
                    return Err(PrometheusError::Request {
                        endpoint: "/api/v1/read".into(),
                        reason: error_chain(&e),
                    });
                }
                Ok(Ok(c)) => c,
            };
            match chunk {
                Some(bytes) => {
                    if let Some(c) = &self.read_bytes {
                        c.inc_by(bytes.len() as u64);
                    }
                    decoder.push(&bytes);
                }
                None => *done = true,
            }
        }
    }
}

async fn check_status(
    endpoint: &str,
    resp: reqwest::Response,
) -> Result<reqwest::Response, PrometheusError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(PrometheusError::Status {
        endpoint: endpoint.to_string(),
        status: status.as_u16(),
        body: truncate(body.trim()),
    })
}

fn truncate(s: &str) -> String {
    if s.len() <= ERROR_BODY_LIMIT {
        return s.to_string();
    }
    let mut end = ERROR_BODY_LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// An error with its causes, `a: b: c`, since reqwest's own message leaves
/// the cause (connection refused, ...) out.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// Milliseconds as the decimal seconds Prometheus's API takes, clamped to
/// what its time parser accepts.
pub fn api_time(ms: i64) -> String {
    let ms = ms.clamp(API_MIN_MS, API_MAX_MS);
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn time_params(start_ms: i64, end_ms: i64, selector: Option<&str>) -> Vec<(&'static str, String)> {
    let mut q = vec![("start", api_time(start_ms)), ("end", api_time(end_ms))];
    if let Some(s) = selector {
        q.push(("match[]", s.to_string()));
    }
    q
}

/// Reads the lowest TSDB timestamp (ms) from Prometheus's metrics text.
pub fn parse_lowest_timestamp(metrics: &str) -> Result<i64, PrometheusError> {
    let value = |name: &str| {
        metrics.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(' ')?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
    };
    if let Some(s) = value("prometheus_tsdb_lowest_timestamp_seconds") {
        // `as` saturates; an empty TSDB reports a huge value.
        return Ok((s * 1000.0) as i64);
    }
    if let Some(ms) = value("prometheus_tsdb_lowest_timestamp") {
        return Ok(ms as i64);
    }
    Err(PrometheusError::NoLowestTimestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> PrometheusClient {
        PrometheusClient::new("http://127.0.0.1:9090/", Duration::from_secs(1)).unwrap()
    }

    /// A one-connection HTTP server on 127.0.0.1 that answers any request
    /// with `head` and then `body_mib` MiB of zeros in 1 MiB chunked pieces
    /// (stopping when the client hangs up). Returns its base URL.
    async fn oversized_server(head: &'static str, body_mib: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = vec![0u8; 64 * 1024];
            let _ = s.read(&mut req).await;
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let piece = vec![0u8; 1 << 20];
            for _ in 0..body_mib {
                let frame = format!("{:x}\r\n", piece.len());
                if s.write_all(frame.as_bytes()).await.is_err()
                    || s.write_all(&piece).await.is_err()
                    || s.write_all(b"\r\n").await.is_err()
                {
                    return;
                }
            }
            let _ = s.write_all(b"0\r\n\r\n").await;
        });
        url
    }

    #[tokio::test]
    async fn answers_over_the_body_limit_are_refused_before_they_are_held() {
        use prompb::read_request::ResponseType;
        // A SAMPLES answer that keeps coming: refused once it passes the bound.
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n";
        let url = oversized_server(head, MAX_BODY_BYTES / (1 << 20) + 8).await;
        let c = PrometheusClient::new(&url, Duration::from_secs(20)).unwrap();
        let m = [LabelMatcher::new(
            "__name__",
            skein_promql::MatchOp::Equal,
            "up",
        )];
        let e = c
            .remote_read(0, 1, &m, &[ResponseType::Samples])
            .await
            .err()
            .expect("an oversized answer must be refused");
        assert!(
            matches!(e, PrometheusError::BodyTooLarge { max, .. } if max == MAX_BODY_BYTES),
            "{e}"
        );
        // A JSON API answer announcing a huge Content-Length: refused from
        // the header alone.
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4294967296\r\n\r\n";
        let url = oversized_server(head, 0).await;
        let c = PrometheusClient::new(&url, Duration::from_secs(20)).unwrap();
        let e = c.label_names(None, 0, 1).await.unwrap_err();
        assert!(matches!(e, PrometheusError::BodyTooLarge { .. }), "{e}");
    }

    #[test]
    fn external_labels_are_read_and_missing_ones_refused() {
        let c = client();
        let yaml = "global:\n  scrape_interval: 1m\n  external_labels:\n    cluster: c1\n    replica: \"0\"\nscrape_configs: []\n";
        assert_eq!(
            c.parse_external_labels(yaml).unwrap(),
            Labels::from_pairs([("cluster", "c1"), ("replica", "0")])
        );
        for yaml in [
            "global:\n  scrape_interval: 1m\n",
            "{}\n",
            "global:\n  external_labels: {}\n",
        ] {
            let e = c.parse_external_labels(yaml).unwrap_err();
            assert!(e.to_string().contains("global.external_labels"), "{e}");
        }
    }

    #[test]
    fn lowest_timestamp_prefers_seconds_and_falls_back_to_ms() {
        let both = "# HELP x\nprometheus_tsdb_lowest_timestamp 1.795641852e+12\nprometheus_tsdb_lowest_timestamp_seconds 1.795641852e+09\n";
        assert_eq!(parse_lowest_timestamp(both).unwrap(), 1_795_641_852_000);
        let ms = "prometheus_tsdb_lowest_timestamp 1.5e+03\n";
        assert_eq!(parse_lowest_timestamp(ms).unwrap(), 1500);
        assert!(parse_lowest_timestamp("up 1\n").is_err());
    }

    #[test]
    fn api_time_is_decimal_seconds_and_clamped() {
        assert_eq!(api_time(1500), "1.500");
        assert_eq!(api_time(-1500), "-2.500");
        assert_eq!(api_time(i64::MAX), "253402300799.000");
        assert_eq!(api_time(i64::MIN), "-62135596800.000");
    }

    #[test]
    fn bad_urls_are_refused() {
        assert!(PrometheusClient::new("not a url", Duration::from_secs(1)).is_err());
        assert!(PrometheusClient::new("ftp://x", Duration::from_secs(1)).is_err());
        assert_eq!(client().url(), "http://127.0.0.1:9090");
    }
}
