//! The Prometheus HTTP API of the querier (plus Thanos's `/api/v1/stores`
//! and its `dedup`, `partial_response`, `replicaLabels[]` parameters).
//! Handlers read `web::Data<skein_actors::query::QueryHandle>`.

pub mod disconnect;
pub mod format;
pub mod metadata;
pub mod params;
pub mod query;
pub mod stores;

#[cfg(test)]
mod compat_tests;
#[cfg(test)]
mod tests;

use actix_web::{HttpResponse, web};

// For `HttpServer::on_connect` in node/src/http.rs (until it is wired
// there, only the tests use it).
#[allow(unused_imports)]
pub use disconnect::on_connect;

/// Registers every `/api/v1/...` route. Request bodies are read by the
/// handlers themselves, up to `--query.max-body-size`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/query")
            .route(web::get().to(query::instant))
            .route(web::post().to(query::instant)),
    )
    .service(
        web::resource("/api/v1/query_range")
            .route(web::get().to(query::range))
            .route(web::post().to(query::range)),
    )
    .service(
        web::resource("/api/v1/series")
            .route(web::get().to(metadata::series))
            .route(web::post().to(metadata::series)),
    )
    .service(
        web::resource("/api/v1/labels")
            .route(web::get().to(metadata::label_names))
            .route(web::post().to(metadata::label_names)),
    )
    .service(
        web::resource("/api/v1/label/{name}/values").route(web::get().to(metadata::label_values)),
    )
    .route("/api/v1/status/buildinfo", web::get().to(buildinfo))
    .route("/api/v1/stores", web::get().to(stores::stores))
    .service(
        web::resource("/api/v1/query_exemplars")
            .route(web::get().to(exemplars))
            .route(web::post().to(exemplars)),
    )
    .route("/api/v1/rules", web::get().to(rules))
    .route("/api/v1/metadata", web::get().to(metric_metadata));
}

/// `GET /api/v1/status/buildinfo` (Prometheus shape, without `features`).
async fn buildinfo() -> HttpResponse {
    let field = |s: Option<&str>| format::json_str(s.unwrap_or("unknown"));
    let data = format!(
        "{{\"version\":{},\"revision\":{},\"branch\":{},\"buildUser\":{},\"buildDate\":{},\"goVersion\":{}}}",
        format::json_str(env!("CARGO_PKG_VERSION")),
        field(option_env!("SKEIN_BUILD_REVISION")),
        field(option_env!("SKEIN_BUILD_BRANCH")),
        field(option_env!("SKEIN_BUILD_USER")),
        field(option_env!("SKEIN_BUILD_DATE")),
        field(option_env!("SKEIN_BUILD_RUSTC")),
    );
    format::success(&data, &[])
}

/// Exemplars are not stored: always an empty list.
async fn exemplars() -> HttpResponse {
    format::success("[]", &[])
}

/// No rules are evaluated here: no groups.
async fn rules() -> HttpResponse {
    format::success("{\"groups\":[]}", &[])
}

/// Metric metadata is not collected: an empty object.
async fn metric_metadata() -> HttpResponse {
    format::success("{}", &[])
}
