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
use skein_actors::query::Admitted;

fn fanout_error(e: FanoutError) -> ApiError {
    match e {
        FanoutError::BadRequest(m) => ApiError::bad_data(m),
        FanoutError::Unavailable(m) => ApiError::unavailable(m),
    }
}

/// Common parameters: `start`, `end` (default: all time), `match[]`,
/// `limit` and the Thanos options. Admits the request first (the
/// `match[]` parsing and regex compilation are work), then parses
/// `match[]` off the HTTP worker.
async fn labels_query(
    handle: &QueryHandle,
    p: &Params,
    require_match: bool,
) -> Result<(Admitted, LabelsQuery), ApiError> {
    let matches = p.all("match[]");
    if require_match && matches.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    handle
        .check_match_count(matches.len())
        .map_err(|e| ApiError::from_query(&e))?;
    let start = time_param(p, "start", MIN_TIME_MS)?;
    let end = time_param(p, "end", MAX_TIME_MS)?;
    let limit = limit_param(p)?;
    let opts = request_options(p)?;
    let slot = handle
        .admit_request(opts.timeout)
        .await
        .map_err(|e| ApiError::from_query(&e))?;
    let sets = match_param(handle, p, require_match).await?;
    Ok((slot, handle.labels_query(start, end, sets, &opts, limit)))
}

/// Runs a labels-side fan-out within the admitted request's deadline.
async fn within<T>(
    slot: &Admitted,
    fut: impl Future<Output = Result<Answer<T>, FanoutError>>,
) -> Result<Answer<T>, FanoutError> {
    tokio::time::timeout_at(slot.deadline().into(), fut)
        .await
        .unwrap_or_else(|_| {
            Err(FanoutError::Unavailable(
                "query timed out in query execution".into(),
            ))
        })
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
    body: web::Payload,
    handle: web::Data<QueryHandle>,
) -> HttpResponse {
    let started = Instant::now();
    let run = async {
        let p = Params::read(&req, body, handle.config().limits.max_body_bytes).await?;
        let (slot, q) = labels_query(&handle, &p, true).await?;
        Ok::<_, ApiError>(within(&slot, handle.series(&q)).await)
    };
    let res = match until_disconnect(&req, run).await {
        None => return canceled(&handle, "series", started),
        Some(Err(e)) => return reject(&handle, "series", &e),
        Some(Ok(res)) => res,
    };
    finish(&handle, "series", started, res, |sets| {
        let items: Vec<String> = sets.iter().map(format::labels_json).collect();
        format!("[{}]", items.join(","))
    })
}

/// `GET|POST /api/v1/labels`.
pub async fn label_names(
    req: HttpRequest,
    body: web::Payload,
    handle: web::Data<QueryHandle>,
) -> HttpResponse {
    let started = Instant::now();
    let run = async {
        let p = Params::read(&req, body, handle.config().limits.max_body_bytes).await?;
        let (slot, q) = labels_query(&handle, &p, false).await?;
        Ok::<_, ApiError>(within(&slot, handle.label_names(&q)).await)
    };
    let res = match until_disconnect(&req, run).await {
        None => return canceled(&handle, "labels", started),
        Some(Err(e)) => return reject(&handle, "labels", &e),
        Some(Ok(res)) => res,
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
    body: web::Payload,
    path: web::Path<String>,
    handle: web::Data<QueryHandle>,
) -> HttpResponse {
    let started = Instant::now();
    let name = path.into_inner();
    if !valid_label_name(&name) {
        let shown: String = name.chars().take(200).collect();
        let e = ApiError::bad_data(format!("invalid label name: {shown:?}"));
        return reject(&handle, "label_values", &e);
    }
    let run = async {
        let p = Params::read(&req, body, handle.config().limits.max_body_bytes).await?;
        let (slot, q) = labels_query(&handle, &p, false).await?;
        Ok::<_, ApiError>(within(&slot, handle.label_values(&name, &q)).await)
    };
    let res = match until_disconnect(&req, run).await {
        None => return canceled(&handle, "label_values", started),
        Some(Err(e)) => return reject(&handle, "label_values", &e),
        Some(Ok(res)) => res,
    };
    finish(&handle, "label_values", started, res, |v| {
        format::strings_json(v)
    })
}
