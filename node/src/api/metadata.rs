//! `/api/v1/series`, `/api/v1/labels`, `/api/v1/label/{name}/values`.

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use skein_actors::query::{Answer, FanoutError, LabelsQuery, QueryHandle};

use super::disconnect::until_disconnect;
use super::format;
use super::params::{
    ApiError, MAX_TIME_MS, MIN_TIME_MS, Params, limit_param, match_param, reject, request_options,
    time_param,
};

fn fanout_error(e: FanoutError) -> ApiError {
    match e {
        FanoutError::BadRequest(m) => ApiError::bad_data(m),
        FanoutError::Unavailable(m) => ApiError::unavailable(m),
    }
}

/// Common parameters: `start`, `end` (default: all time), `match[]`,
/// `limit` and the Thanos options.
fn labels_query(
    handle: &QueryHandle,
    p: &Params,
    require_match: bool,
) -> Result<LabelsQuery, ApiError> {
    if require_match && p.all("match[]").is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let start = time_param(p, "start", MIN_TIME_MS)?;
    let end = time_param(p, "end", MAX_TIME_MS)?;
    let sets = match_param(p, require_match)?;
    let limit = limit_param(p)?;
    let opts = request_options(p)?;
    Ok(handle.labels_query(start, end, sets, &opts, limit))
}

/// The client left; nobody reads this answer, but count it.
fn canceled(handle: &QueryHandle, endpoint: &str, started: Instant) -> HttpResponse {
    handle
        .metrics()
        .observe(endpoint, "canceled", started.elapsed());
    let status = actix_web::http::StatusCode::from_u16(499)
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    format::error(
        status,
        "canceled",
        "request canceled: the client went away",
        &[],
    )
}

fn finish<T>(
    handle: &QueryHandle,
    endpoint: &str,
    started: Instant,
    res: Result<Answer<T>, FanoutError>,
    to_json: impl FnOnce(&T) -> String,
) -> HttpResponse {
    match res {
        Ok(a) => {
            handle
                .metrics()
                .observe(endpoint, "success", started.elapsed());
            format::success(&to_json(&a.data), &a.warnings)
        }
        Err(e) => {
            let e = fanout_error(e);
            handle
                .metrics()
                .observe(endpoint, e.error_type, started.elapsed());
            e.response()
        }
    }
}

/// `GET|POST /api/v1/series`.
pub async fn series(
    req: HttpRequest,
    body: web::Bytes,
    handle: web::Data<QueryHandle>,
) -> HttpResponse {
    let started = Instant::now();
    let p = Params::from_request(&req, &body);
    let q = match labels_query(&handle, &p, true) {
        Ok(q) => q,
        Err(e) => return reject(&handle, "series", &e),
    };
    let Some(res) = until_disconnect(&req, handle.series(&q)).await else {
        return canceled(&handle, "series", started);
    };
    finish(&handle, "series", started, res, |sets| {
        let items: Vec<String> = sets.iter().map(format::labels_json).collect();
        format!("[{}]", items.join(","))
    })
}

/// `GET|POST /api/v1/labels`.
pub async fn label_names(
    req: HttpRequest,
    body: web::Bytes,
    handle: web::Data<QueryHandle>,
) -> HttpResponse {
    let started = Instant::now();
    let p = Params::from_request(&req, &body);
    let q = match labels_query(&handle, &p, false) {
        Ok(q) => q,
        Err(e) => return reject(&handle, "labels", &e),
    };
    let Some(res) = until_disconnect(&req, handle.label_names(&q)).await else {
        return canceled(&handle, "labels", started);
    };
    finish(&handle, "labels", started, res, |v| format::strings_json(v))
}

/// A label name as Prometheus accepts it.
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `GET /api/v1/label/{name}/values`.
pub async fn label_values(
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
    handle: web::Data<QueryHandle>,
) -> HttpResponse {
    let started = Instant::now();
    let name = path.into_inner();
    if !valid_label_name(&name) {
        let e = ApiError::bad_data(format!("invalid label name: {name:?}"));
        return reject(&handle, "label_values", &e);
    }
    let p = Params::from_request(&req, &body);
    let q = match labels_query(&handle, &p, false) {
        Ok(q) => q,
        Err(e) => return reject(&handle, "label_values", &e),
    };
    let Some(res) = until_disconnect(&req, handle.label_values(&name, &q)).await else {
        return canceled(&handle, "label_values", started);
    };
    finish(&handle, "label_values", started, res, |v| {
        format::strings_json(v)
    })
}
