//! The node's HTTP server: probes, /metrics and, with the query role, the
//! Prometheus HTTP API.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, dev::ServerHandle, web};
use prometheus_client::registry::Registry;

use crate::readiness::Readiness;

pub struct HttpState {
    pub registry: Arc<Registry>,
    pub readiness: Readiness,
    pub membership: Option<Arc<skein_discovery::Membership>>,
}

async fn healthy() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("Skein is Healthy.\n")
}

async fn ready(state: web::Data<HttpState>) -> HttpResponse {
    match state.readiness.check().await {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("Skein is Ready.\n"),
        Err(reasons) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body(format!("Skein is not ready: {}\n", reasons.join("; "))),
    }
}

async fn metrics(state: web::Data<HttpState>) -> HttpResponse {
    let mut out = String::new();
    match prometheus_client::encoding::text::encode(&mut out, &state.registry) {
        Ok(()) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(out),
        Err(e) => HttpResponse::InternalServerError().body(format!("encoding metrics: {e}")),
    }
}

/// Starts the server on the actix System; returns its handle for shutdown.
pub fn start(
    addr: SocketAddr,
    state: HttpState,
    query: Option<skein_actors::query::QueryHandle>,
) -> anyhow::Result<ServerHandle> {
    let membership = state.membership.clone().map(web::Data::new);
    let state = web::Data::new(state);
    let query = query.map(web::Data::new);
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(state.clone())
            .route("/-/healthy", web::get().to(healthy))
            .route("/-/ready", web::get().to(ready))
            .route("/metrics", web::get().to(metrics));
        if let Some(m) = &membership {
            app = app
                .app_data(m.clone())
                .route("/api/v1/members", web::get().to(crate::members::handler));
        }
        if let Some(q) = &query {
            app = app.app_data(q.clone()).configure(crate::api::configure);
        }
        app
    })
    .on_connect(crate::api::on_connect)
    .workers(2)
    .disable_signals()
    .shutdown_timeout(5)
    .bind(addr)
    .map_err(|e| anyhow::anyhow!("cannot listen for HTTP on {addr}: {e}"))?
    .run();
    let handle = server.handle();
    actix_rt::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    Ok(handle)
}
