//! `/api/v1/query` and `/api/v1/query_range`.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use skein_actors::query::QueryHandle;
use skein_promql::{QueryError, QueryOutput};

use super::disconnect::until_disconnect;
use super::format;
use super::params::{
    ApiError, MAX_POINTS, Params, now_ms, parse_duration_ms, reject, request_options,
    required_time_param, time_param,
};

/// Turns the engine's answer into the API response and counts it.
fn respond(
    handle: &QueryHandle,
    endpoint: &str,
    started: Instant,
    res: Result<QueryOutput, QueryError>,
) -> HttpResponse {
    match res {
        Ok(out) => {
            handle
                .metrics()
                .observe(endpoint, "success", started.elapsed());
            format::success(&format::value_json(&out.value), &out.warnings)
        }
        Err(e) => {
            handle
                .metrics()
                .observe(endpoint, e.error_type(), started.elapsed());
            // The engine put the parse position in front already (found
            // off the HTTP worker, within a budget). Prometheus names the
            // parameter for instant queries only.
            let message = match &e {
                QueryError::Parse { message } if endpoint == "query" => {
                    ApiError::invalid_param("query", message).message
                }
                QueryError::Rejected {
                    error_type: "bad_data",
                    message,
                    ..
                } if endpoint == "query" => ApiError::invalid_param("query", message).message,
                other => other.to_string(),
            };
            let status =
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            format::error(status, e.error_type(), &message, &[])
        }
    }
}

/// `GET|POST /api/v1/query`: `query`, `time` (default now), `timeout`,
/// `lookback_delta`, `dedup`, `partial_response`, `replicaLabels[]`.
pub async fn instant(
    req: HttpRequest,
    body: web::Payload,
    handle: web::Data<QueryHandle>,
) -> HttpResponse {
    let started = Instant::now();
    let p = match Params::read(&req, body, handle.config().limits.max_body_bytes).await {
        Ok(p) => p,
        Err(e) => return reject(&handle, "query", &e),
    };
    let parsed = time_param(&p, "time", now_ms()).and_then(|t| request_options(&p).map(|o| (t, o)));
    let (time_ms, opts) = match parsed {
        Ok(v) => v,
        Err(e) => return reject(&handle, "query", &e),
    };
    let query = p.get("query").unwrap_or("");
    let res = until_disconnect(&req, handle.query_instant(query, time_ms, &opts))
        .await
        .unwrap_or(Err(QueryError::Canceled));
    respond(&handle, "query", started, res)
}

struct RangeParams {
    start: i64,
    end: i64,
    step: i64,
}

fn range_params(p: &Params) -> Result<RangeParams, ApiError> {
    let start = required_time_param(p, "start")?;
    let end = required_time_param(p, "end")?;
    if end < start {
        return Err(ApiError::invalid_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step = parse_duration_ms(p.get("step").unwrap_or(""))
        .map_err(|e| ApiError::invalid_param("step", e))?;
    if step <= 0 {
        return Err(ApiError::invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(ApiError::limit(
            "too_many_points",
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    Ok(RangeParams { start, end, step })
}

/// `GET|POST /api/v1/query_range`: `query`, `start`, `end`, `step`, and
/// the options of [`instant`].
pub async fn range(
    req: HttpRequest,
    body: web::Payload,
    handle: web::Data<QueryHandle>,
) -> HttpResponse {
    let started = Instant::now();
    let p = match Params::read(&req, body, handle.config().limits.max_body_bytes).await {
        Ok(p) => p,
        Err(e) => return reject(&handle, "query_range", &e),
    };
    let parsed = range_params(&p).and_then(|r| request_options(&p).map(|o| (r, o)));
    let (r, opts) = match parsed {
        Ok(v) => v,
        Err(e) => return reject(&handle, "query_range", &e),
    };
    let query = p.get("query").unwrap_or("");
    let res = until_disconnect(
        &req,
        handle.query_range(query, r.start, r.end, r.step, &opts),
    )
    .await
    .unwrap_or(Err(QueryError::Canceled));
    respond(&handle, "query_range", started, res)
}
