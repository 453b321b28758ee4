//! Request parameters: query string and url-encoded form body, parsed the
//! way the Prometheus API parses them, with its error messages.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, web};
use futures::StreamExt;
use skein_actors::query::{QueryHandle, RequestOptions};
use skein_promql::QueryError;

use super::format;

/// Prometheus's earliest and latest representable times (ms), and how it
/// writes them.
pub const MIN_TIME_MS: i64 = -9_223_309_901_257_974_000;
pub const MAX_TIME_MS: i64 = 9_223_309_901_257_974_999;
const MIN_TIME_FORMATTED: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME_FORMATTED: &str = "292277025-08-18T07:12:54.999999999Z";

/// Most points one series of a range query may have.
pub const MAX_POINTS: i64 = 11_000;

/// An API error: its Prometheus error type, HTTP status and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub error_type: &'static str,
    pub status: StatusCode,
    pub message: String,
    /// The limit that refused the request, if one did (counted in
    /// `skein_query_rejected_total{reason}`).
    pub reason: Option<&'static str>,
}

impl ApiError {
    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError {
            error_type: "bad_data",
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            reason: None,
        }
    }

    /// Refused by the limit `reason`, as bad data.
    pub fn limit(reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            reason: Some(reason),
            ..Self::bad_data(message)
        }
    }

    /// An engine or handle error, as the API answers it (the handle
    /// already counted it if a limit refused it).
    pub fn from_query(e: &QueryError) -> Self {
        ApiError {
            error_type: e.error_type(),
            status: StatusCode::from_u16(e.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: e.to_string(),
            reason: None,
        }
    }

    pub fn invalid_param(name: &str, err: impl std::fmt::Display) -> Self {
        Self::bad_data(format!("invalid parameter {name:?}: {err}"))
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            error_type: "unavailable",
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
            reason: None,
        }
    }

    pub fn response(&self) -> actix_web::HttpResponse {
        format::error(self.status, self.error_type, &self.message, &[])
    }
}

/// Every parameter of a request, form body first (as Go's `r.Form`).
#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Reads the query string and, for a url-encoded form, the body, both
    /// limited to `max_bytes` (a larger one is refused without reading
    /// it all).
    pub async fn read(
        req: &HttpRequest,
        payload: web::Payload,
        max_bytes: usize,
    ) -> Result<Params, ApiError> {
        let too_large = |what: &str, n: usize| {
            ApiError::limit(
                "body_too_large",
                format!(
                    "{what} too large: {n} bytes, the limit is {max_bytes} bytes (--query.max-body-size)"
                ),
            )
        };
        let qs = req.query_string();
        if qs.len() > max_bytes {
            return Err(too_large("query string", qs.len()));
        }
        let is_form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        let mut pairs: Vec<(String, String)> = Vec::new();
        if is_form {
            let declared = req
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let mut payload = payload;
            if let Some(n) = declared
                && n > max_bytes as u64
            {
                // Announced bytes past the drain limit are not waited for:
                // the connection closes after the answer.
                if n <= DRAIN_MAX_BYTES as u64 {
                    drain(&mut payload).await;
                }
                return Err(too_large(
                    "request body",
                    usize::try_from(n).unwrap_or(usize::MAX),
                ));
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::bad_data(format!("cannot read the request body: {e}"))
                })?;
                if body.len() + chunk.len() > max_bytes {
                    let n = body.len() + chunk.len();
                    drop(body);
                    drain(&mut payload).await;
                    return Err(too_large("request body", n));
                }
                body.extend_from_slice(&chunk);
            }
            pairs.extend(form_urlencoded::parse(&body).into_owned());
        }
        pairs.extend(form_urlencoded::parse(qs.as_bytes()).into_owned());
        Ok(Params { pairs })
    }

    #[cfg(test)]
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Params {
        Params {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The first value of `name` (empty values count, as in Go).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value, treating empty as absent.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Every value of a repeated parameter (`match[]`).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Most bytes of a refused body read and thrown away, so the client reads
/// the answer instead of a connection reset; past this the connection is
/// simply closed.
const DRAIN_MAX_BYTES: usize = 16 << 20;

/// Reads and discards what is left of a refused body (up to
/// [`DRAIN_MAX_BYTES`], for at most 10 s), keeping nothing.
async fn drain(payload: &mut web::Payload) {
    let mut seen = 0usize;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(Ok(chunk)) = payload.next().await {
            seen += chunk.len();
            if seen > DRAIN_MAX_BYTES {
                break;
            }
        }
    })
    .await;
}

/// Parses a time: float unix seconds (rounded to ms) or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let err = || format!("cannot parse {s:?} to a valid timestamp");
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return Err(err());
        }
        let secs = f.trunc();
        let ms = secs * 1000.0 + (f.fract() * 1000.0).round();
        if ms < i64::MIN as f64 || ms > i64::MAX as f64 {
            return Err(err());
        }
        return Ok(ms as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    match s {
        MIN_TIME_FORMATTED => Ok(MIN_TIME_MS),
        MAX_TIME_FORMATTED => Ok(MAX_TIME_MS),
        _ => Err(err()),
    }
}

/// A time parameter, `default` when absent or empty.
pub fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match p.non_empty(name) {
        None => Ok(default),
        Some(s) => parse_time(s).map_err(|e| {
            ApiError::invalid_param(name, format!("Invalid time value for '{name}': {e}"))
        }),
    }
}

/// A required time parameter (an empty value fails like Prometheus does).
pub fn required_time_param(p: &Params, name: &str) -> Result<i64, ApiError> {
    parse_time(p.get(name).unwrap_or("")).map_err(|e| ApiError::invalid_param(name, e))
}

/// Parses a duration in milliseconds: float seconds (may be negative) or a
/// Prometheus duration ("5m").
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if !ms.is_finite() || ms >= i64::MAX as f64 / 1e6 || ms <= i64::MIN as f64 / 1e6 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ms as i64);
    }
    skein_promql::parse_duration(s)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

/// An optional duration parameter.
pub fn duration_param(p: &Params, name: &str) -> Result<Option<Duration>, ApiError> {
    let Some(s) = p.non_empty(name) else {
        return Ok(None);
    };
    let ms = parse_duration_ms(s).map_err(|e| ApiError::invalid_param(name, e))?;
    // A negative duration is an already expired deadline, as in Go.
    Ok(Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0))))
}

/// A boolean as Go's `strconv.ParseBool` reads it.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A Thanos boolean parameter, `None` when absent or empty.
pub fn bool_param(p: &Params, name: &str) -> Result<Option<bool>, ApiError> {
    match p.non_empty(name) {
        None => Ok(None),
        Some(s) => parse_bool(s).map(Some).ok_or_else(|| {
            ApiError::bad_data(format!(
                "'{name}' parameter: strconv.ParseBool: parsing {s:?}: invalid syntax"
            ))
        }),
    }
}

/// `limit`: 0 or absent for no limit.
pub fn limit_param(p: &Params) -> Result<usize, ApiError> {
    let Some(s) = p.non_empty("limit") else {
        return Ok(0);
    };
    let n: i64 = s.parse().map_err(|_| {
        ApiError::invalid_param(
            "limit",
            format!("strconv.Atoi: parsing {s:?}: invalid syntax"),
        )
    })?;
    usize::try_from(n).map_err(|_| ApiError::invalid_param("limit", "limit must be non-negative"))
}

/// The Thanos and Prometheus per-request options: `dedup` (default true),
/// `partial_response`, `replicaLabels[]`, `lookback_delta`, `timeout`.
pub fn request_options(p: &Params) -> Result<RequestOptions, ApiError> {
    let replica_labels = p.all("replicaLabels[]");
    Ok(RequestOptions {
        dedup: bool_param(p, "dedup")?.unwrap_or(true),
        partial_response: bool_param(p, "partial_response")?,
        replica_labels: (!replica_labels.is_empty()).then_some(replica_labels),
        lookback_delta: duration_param(p, "lookback_delta")?,
        timeout: duration_param(p, "timeout")?,
    })
}

/// Parses the `match[]` selectors (count limit, then the parse guard and
/// regex compilation on a blocking thread); `wrap` names the parameter in
/// parse errors (Prometheus does so for `/series` only).
pub async fn match_param(
    handle: &QueryHandle,
    p: &Params,
    wrap: bool,
) -> Result<Vec<Vec<skein_promql::LabelMatcher>>, ApiError> {
    handle.parse_matchers(p.all("match[]")).await.map_err(|e| {
        let mut a = ApiError::from_query(&e);
        if wrap && a.error_type == "bad_data" && a.reason != Some("too_many_matchers") {
            a.message = ApiError::invalid_param("match[]", &a.message).message;
        }
        a
    })
}

/// Now, in milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Counts a rejected request and turns the error into a response.
pub fn reject(handle: &QueryHandle, endpoint: &str, e: &ApiError) -> actix_web::HttpResponse {
    handle.metrics().bad_request(endpoint);
    if let Some(r) = e.reason {
        handle.metrics().rejected(r);
    }
    e.response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("4"), Ok(4000));
        assert_eq!(parse_time("-1.5"), Ok(-1500));
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z"),
            Ok(1_435_781_451_781)
        );
        assert_eq!(
            parse_time("2015-07-01T22:10:51.781+02:00"),
            Ok(1_435_781_451_781)
        );
        assert_eq!(parse_time(MIN_TIME_FORMATTED), Ok(MIN_TIME_MS));
        assert_eq!(
            parse_time("abc"),
            Err("cannot parse \"abc\" to a valid timestamp".to_string())
        );
        assert!(parse_time("NaN").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("15"), Ok(15_000));
        assert_eq!(parse_duration_ms("0.5"), Ok(500));
        assert_eq!(parse_duration_ms("-1"), Ok(-1000));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(
            parse_duration_ms("x"),
            Err("cannot parse \"x\" to a valid duration".to_string())
        );
    }

    #[test]
    fn params_keep_repeats_and_body_first() {
        let p = Params::from_pairs([("match[]", "a"), ("q", "1"), ("match[]", "b"), ("q", "2")]);
        assert_eq!(p.all("match[]"), vec!["a", "b"]);
        assert_eq!(p.get("q"), Some("1"));
        let o = request_options(&Params::from_pairs([("dedup", "false")])).unwrap();
        assert!(!o.dedup);
        let e = request_options(&Params::from_pairs([("dedup", "x")])).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(request_options(&Params::default()).unwrap().dedup);
        assert_eq!(
            limit_param(&Params::from_pairs([("limit", "-1")]))
                .unwrap_err()
                .message,
            "invalid parameter \"limit\": limit must be non-negative"
        );
    }
}
